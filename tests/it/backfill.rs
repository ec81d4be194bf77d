//! History: `backfill` writes Adobe's past buckets as OpenMetrics, promtool
//! turns them into blocks, and a real Prometheus serves them joined with
//! the live exporter's series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cmu_exporter::backfill::{self, BackfillError, Options, Summary};
use cmu_exporter::clock::Clock;
use cmu_exporter::config::Config;
use cmu_exporter::simulator::{Fault, Simulator, SimulatorConfig, Target};

use crate::common::*;

/// The simulated world's "now": well inside an hour and a day.
const NOW: &str = "2026-11-22T10:30:00Z";

fn clock() -> Clock {
    Clock::warped(NOW.parse().unwrap(), 1.0)
}

async fn simulator_at_now(config: SimulatorConfig) -> Simulator {
    simulator_with(SimulatorConfig {
        clock: clock(),
        ..config
    })
    .await
}

const REPORTS: &str = "  - name: daily\n    path: tenant/year/month/day\n  - name: hourly\n    path: tenant/year/month/day/hour\n    limit: 10\n";

fn options(output: &Path, from: &str, reports: &[&str]) -> Options {
    Options {
        from: from.parse().unwrap(),
        to: None,
        reports: reports.iter().map(|r| (*r).to_owned()).collect(),
        output: cmu_exporter::backfill::Output::File(output.to_owned()),
        max_requests: None,
        max_limit: 100_000,
        labels: Vec::new(),
        fingerprint: format!("test {from} {reports:?}"),
    }
}

async fn backfill(config: &Path, options: Options) -> Result<Summary, BackfillError> {
    let config = Config::load(config).unwrap();
    backfill::run(config, options, clock(), |_| {}).await
}

/// Every sample of the file: series (name and labels) -> [(timestamp, value)].
fn samples(text: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let value: f64 = parts.next().unwrap().parse().unwrap();
        out.entry(parts.next().unwrap().to_owned())
            .or_default()
            .push((ts, value));
    }
    out
}

#[tokio::test]
async fn split_refused_and_shuffled_answers_give_the_same_file_in_time_order() {
    // A plain simulator, and one that refuses queries over 6 buckets and
    // shuffles its rows; the hourly report's limit (10) truncates 6 buckets
    // of 2 tenants, so windows are halved for both reasons.
    let plain = simulator_at_now(SimulatorConfig::default()).await;
    let hard = simulator_at_now(SimulatorConfig {
        max_query_buckets: Some(6),
        shuffle_rows: true,
        ..SimulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut summaries = Vec::new();
    for (i, sim) in [&plain, &hard].into_iter().enumerate() {
        let own = dir.path().join(format!("run{i}"));
        std::fs::create_dir_all(&own).unwrap();
        let config = write_config(&own, sim, REPORTS);
        let output = own.join("history.om");
        let summary = backfill(&config, options(&output, "2026-11-20", &["hourly"]))
            .await
            .unwrap();
        files.push(std::fs::read_to_string(&output).unwrap());
        summaries.push(summary);
    }
    // The plain simulator's answers were truncated at the limit (split for
    // that); the other refused oversized windows with 400 (split for that).
    assert!(summaries[0].windows_split > 0, "{}", summaries[0]);
    assert!(summaries[1].windows_split > 0, "{}", summaries[1]);
    assert_eq!(
        plain.count_status(cmu_exporter::simulator::Endpoint::Cmu, 400),
        0
    );
    assert!(hard.count_status(cmu_exporter::simulator::Endpoint::Cmu, 400) > 0);
    assert!(
        files[0] == files[1],
        "the same history whatever the answers"
    );
    // 2 days and 10 hours of complete buckets, for 2 tenants.
    let by_series = samples(&files[0]);
    let users = by_series
        .get("cmu_active_users{report=\"hourly\",tenant=\"ACME\"}")
        .expect("a series of the hourly report");
    assert_eq!(users.len(), 58, "every complete hour once");
    for series in by_series.values() {
        assert!(
            series.windows(2).all(|w| w[0].0 < w[1].0),
            "each series in time order"
        );
    }
    assert!(files[0].ends_with("# EOF\n"));
    // Economy: near the fewest calls the bounds allow (58 buckets, 6 a query at most).
    assert!(
        summaries[1].calls <= 58 / 5 * 2 + 4,
        "calls {}",
        summaries[1].calls
    );
}

#[tokio::test]
async fn esm_history_is_stamped_at_the_end_of_each_pacific_day() {
    let sim = simulator_at_now(SimulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: esm_daily\n    api: esm\n    path: media-company/year/month/day/proxy/mvpd\n",
    );
    let output = dir.path().join("history.om");
    backfill(&config, options(&output, "2026-11-18", &["esm_daily"]))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&output).unwrap();
    let by_series = samples(&text);
    let (series, points) = by_series
        .iter()
        .find(|(name, _)| name.starts_with("esm_authz_attempts{"))
        .expect("ESM families in the history");
    // 02:30 in Los Angeles on the 22nd: the 18th to the 21st are complete,
    // each stamped at the next Pacific midnight (08:00 UTC).
    let ends: Vec<i64> = points.iter().map(|(ts, _)| *ts).collect();
    let first: jiff::Timestamp = "2026-11-19T08:00:00Z".parse().unwrap();
    let expected: Vec<i64> = (0..4).map(|i| first.as_second() + i * 86_400).collect();
    assert_eq!(ends, expected, "{series}");
    assert!(
        by_series
            .keys()
            .any(|k| k.starts_with("esm_authz_latency_seconds{"))
    );
    assert!(
        !text.contains("esm_report_last_modified_timestamp_seconds"),
        "live only"
    );
}

#[tokio::test]
async fn a_budget_stops_the_run_and_a_rerun_resumes_to_the_same_file() {
    let sim = simulator_at_now(SimulatorConfig {
        max_query_buckets: Some(12),
        ..SimulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, REPORTS);
    let reference = dir.path().join("reference.om");
    backfill(&config, options(&reference, "2026-11-18", &["hourly"]))
        .await
        .unwrap();
    let output = dir.path().join("budget.om");
    let mut limited = options(&output, "2026-11-18", &["hourly"]);
    limited.max_requests = Some(3);
    let stopped = backfill(&config, limited.clone()).await.unwrap_err();
    assert!(
        matches!(stopped, BackfillError::Budget { calls: 3 }),
        "{stopped}"
    );
    assert!(
        stopped
            .to_string()
            .contains("rerun with the same arguments")
    );
    assert!(!output.exists(), "no partial file is left as the output");
    limited.max_requests = None;
    let summary = backfill(&config, limited).await.unwrap();
    assert!(summary.resumed, "{summary}");
    assert!(
        std::fs::read(&output).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed file is the uninterrupted one"
    );
}

#[tokio::test]
async fn a_range_beyond_adobes_retention_is_refused_with_the_earliest_date() {
    let sim = simulator_at_now(SimulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, REPORTS);
    let error = backfill(
        &config,
        options(&dir.path().join("x.om"), "2024-01-01", &[]),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("Adobe keeps 25 months") && text.contains("2024-10-22"),
        "{text}"
    );
    assert_eq!(sim.count(cmu_exporter::simulator::Endpoint::Cmu), 0);
}

#[tokio::test]
async fn a_killed_backfill_resumes_where_it_stopped_and_writes_the_same_file() {
    let sim = simulator_at_now(SimulatorConfig {
        max_query_buckets: Some(6),
        ..SimulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, REPORTS);
    let run = |output: &Path| {
        let mut command = Command::new(BIN);
        command.args([
            "backfill",
            "--config.file",
            config.to_str().unwrap(),
            "--log.level",
            "warn",
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-21",
            "--report",
            "hourly",
            "--output",
            output.to_str().unwrap(),
        ]);
        command
    };
    let reference = dir.path().join("reference.om");
    let done = tokio::task::spawn_blocking({
        let mut command = run(&reference);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    // Slow answers, then SIGKILL once a few windows are journaled.
    sim.inject(Target::Cmu, Fault::Slow(Duration::from_millis(300)), 1000);
    let output = dir.path().join("killed.om");
    let mut child = run(&output).spawn().unwrap();
    let journal = PathBuf::from(format!("{}.journal", output.display()));
    wait_for("a few windows journaled", WAIT, || async {
        let text = std::fs::read_to_string(&journal).ok()?;
        let calls = serde_json::from_str::<serde_json::Value>(&text).ok()?["calls"].as_u64()?;
        (calls >= 3).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!output.exists());
    sim.clear_faults();
    let resumed = tokio::task::spawn_blocking({
        let mut command = run(&output);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(said.contains("resumed"), "{said}");
    assert!(
        std::fs::read(&output).unwrap() == std::fs::read(&reference).unwrap(),
        "the resumed file is the uninterrupted one"
    );
}

#[tokio::test]
async fn prometheus_serves_the_history_and_the_live_exporter_continues_its_series() {
    let sim = simulator_at_now(SimulatorConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let config = write_config(work, &sim, REPORTS);
    let exporter = exporter_with_clock(&config, clock()).await;
    let instance = exporter.addrs[0].to_string();
    // History carries the labels Prometheus gives the live series.
    let labels = vec![
        ("job".to_owned(), "cmu".to_owned()),
        ("instance".to_owned(), instance.clone()),
    ];
    let data = work.join("prom-data");
    for (report, from) in [("daily", "2026-10-22"), ("hourly", "2026-11-20")] {
        let output = work.join(format!("{report}.om"));
        let mut options = options(&output, from, &[report]);
        options.labels = labels.clone();
        backfill(&config, options).await.unwrap();
        let out = Command::new(promtool())
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&output)
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the simulator serves for those days, asked directly.
    let token = own_token(&sim).await;
    let served = cmu_json(
        &format!(
            "{}/tenant/year/month/day?start=2026-10-22&end=2026-11-21T23:59:59&limit=1000",
            sim.cmu_url()
        ),
        &token,
    )
    .await;
    let mut expected: BTreeMap<i64, f64> = BTreeMap::new();
    for row in served["report"].as_array().unwrap() {
        if row["tenant"] != "ACME" {
            continue;
        }
        let field = |name: &str| -> i64 { row[name].as_str().unwrap().parse().unwrap() };
        let day = jiff::civil::date(
            field("year") as i16,
            field("month") as i8,
            field("day") as i8,
        );
        let end = day
            .tomorrow()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap();
        expected.insert(
            end.timestamp().as_second(),
            row["active-users"].as_str().unwrap().parse().unwrap(),
        );
    }
    assert_eq!(expected.len(), 31, "a month of days");

    let port = free_port();
    std::fs::write(
        work.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cmu\n    static_configs:\n      - targets: ['{instance}']\n"
        ),
    )
    .unwrap();
    let _prometheus = daemon(
        "prometheus",
        &[
            format!("--config.file={}", work.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", data.display()),
            "--storage.tsdb.retention.time=100y".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &work.join("prometheus.log"),
    );
    let prometheus = format!("http://127.0.0.1:{port}");
    let series = "cmu_active_users{report=\"daily\",tenant=\"ACME\"}";
    // Live samples arrive next to the imported ones, in the same series.
    let result = wait_for(
        "history and live in one series",
        Duration::from_secs(90),
        || async {
            let result = query(&prometheus, &format!("{series}[90d]")).await;
            let values = result.first()?["values"].as_array()?.clone();
            let newest = values.last()?[0].as_f64()? as i64;
            (result.len() == 1 && newest > *expected.keys().last().unwrap()).then_some(result)
        },
    )
    .await;
    assert_eq!(result[0]["metric"]["job"], "cmu");
    assert_eq!(result[0]["metric"]["instance"], instance.as_str());
    let stored: BTreeMap<i64, f64> = raw_samples(&result[0])
        .into_iter()
        .filter(|(ts, _)| expected.contains_key(ts))
        .collect();
    assert_eq!(
        stored, expected,
        "the imported samples are what Adobe served"
    );
    let count = query(
        &prometheus,
        "count(count_over_time(cmu_active_users{report=\"daily\"}[90d]))",
    )
    .await;
    assert_eq!(
        count[0]["value"][1], "2",
        "one series per tenant, no second one"
    );
    let hourly = query(
        &prometheus,
        "count_over_time(cmu_active_users{report=\"hourly\",tenant=\"ACME\"}[90d])",
    )
    .await;
    let hours: f64 = hourly[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(hours >= 58.0, "two days and ten hours imported: {hours}");
    exporter.stop().await;
}
