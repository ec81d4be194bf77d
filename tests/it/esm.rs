//! Entitlement Service Monitoring: ESM reports ride the CMU credentials,
//! keep Adobe's Pacific buckets, export `esm_*` families in base units and
//! say when Adobe computed them; an MVPD outage shows per MVPD.

use std::path::Path;

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::report::BucketChoice;
use cmu_exporter::simulator::{Endpoint, Outage, Simulator, SimulatorConfig};
use jiff::Timestamp;

/// 02:30 in Los Angeles (PST, UTC-8) on 2026-11-22: the newest complete
/// day there is the 21st, which began at 08:00 UTC.
const NOW: &str = "2026-11-22T10:30:00Z";

const ESM_REPORTS: &str = "  - name: cmu_daily
    path: tenant/year/month/day
  - name: esm_daily_dc
    api: esm
    path: media-company/year/month/day/dc
  - name: esm_hourly_mvpd
    api: esm
    path: media-company/year/month/day/hour/proxy/mvpd
  - name: esm_minute_mvpd
    api: esm
    path: media-company/year/month/day/hour/minute/proxy/mvpd/requestor-id/platform/nsdk/nsdk-version
    bucket: partial
  - name: esm_failures
    api: esm
    path: media-company/year/month/day/hour/event/requestor-id/proxy/mvpd/reason
  - name: esm_apple_sso
    api: esm
    path: year/month/day/proxy/mvpd/requestor-id/eap
";

async fn fixed_simulator() -> Simulator {
    simulator_with(SimulatorConfig {
        clock: Clock::warped(NOW.parse().unwrap(), 1.0),
        ..SimulatorConfig::default()
    })
    .await
}

/// The exporter's `/metrics` once every ESM report above has published.
async fn esm_metrics(base: &str) -> String {
    wait_for("every ESM report published", WAIT, || async {
        let (_, text) = get_text(&format!("{base}/metrics")).await;
        let published = [
            "esm_daily_dc",
            "esm_hourly_mvpd",
            "esm_minute_mvpd",
            "esm_failures",
            "esm_apple_sso",
        ]
        .iter()
        .all(|r| text.contains(&format!("esm_report_info{{report=\"{r}\"")));
        published.then_some(text)
    })
    .await
}

fn samples_of<'a>(samples: &'a [Sample], name: &str, report: &str) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && s.labels.get("report").map(String::as_str) == Some(report))
        .collect()
}

#[tokio::test]
async fn esm_reports_ride_the_cmu_token_and_export_in_base_units_and_pacific_time() {
    let sim = fixed_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, ESM_REPORTS);
    let exporter = exporter_with_clock(&config, Clock::warped(NOW.parse().unwrap(), 1.0)).await;
    let text = esm_metrics(&exporter.url()).await;
    let samples = parse_exposition(&text);

    // One registration and one token for both APIs.
    assert_eq!(sim.count(Endpoint::Register), 1);
    assert_eq!(sim.count(Endpoint::Token), 1);
    assert!(sim.count_status(Endpoint::Esm, 200) >= 5);

    // Families `esm_<metric>`, dimensions as labels; the day is Pacific.
    let day_start: Timestamp = "2026-11-21T08:00:00Z".parse().unwrap();
    let start = samples_of(
        &samples,
        "esm_report_bucket_start_timestamp_seconds",
        "esm_daily_dc",
    );
    assert_eq!(start[0].value, day_start.as_second() as f64, "{text}");
    let attempts = samples_of(&samples, "esm_authz_attempts", "esm_daily_dc");
    assert!(!attempts.is_empty());
    for s in &attempts {
        assert!(s.labels.contains_key("media_company") && s.labels.contains_key("dc"));
    }
    // Uniques come with `dc` and say they must not be summed.
    assert!(!samples_of(&samples, "esm_unique_accounts", "esm_daily_dc").is_empty());
    let help = text
        .lines()
        .find(|l| l.starts_with("# HELP esm_unique_accounts "))
        .unwrap();
    assert!(help.contains("never sum it across time or dc"), "{help}");

    // The latency is Adobe's total in milliseconds, exported in seconds:
    // compare with the simulator's own answer for the bucket shown.
    let token = own_token(&sim).await;
    let raw = cmu_json(
        &format!(
            "{}/media-company/year/month/day/hour/proxy/mvpd?start=2026-11-22T01:00:00&end=2026-11-22T01:59:59&limit=1000",
            sim.esm_url()
        ),
        &token,
    )
    .await;
    let rows = raw["report"].as_array().unwrap();
    assert!(!rows.is_empty());
    let latency = samples_of(&samples, "esm_authz_latency_seconds", "esm_hourly_mvpd");
    assert_eq!(latency.len(), rows.len(), "{text}");
    for row in rows {
        let (company, mvpd) = (
            row["media-company"].as_str().unwrap(),
            row["mvpd"].as_str().unwrap(),
        );
        let ms: f64 = row["authz-latency"].as_str().unwrap().parse().unwrap();
        let exported = latency
            .iter()
            .find(|s| s.labels["mvpd"] == mvpd && s.labels["media_company"] == company)
            .unwrap_or_else(|| panic!("no latency for {company} {mvpd}"));
        assert!(
            (exported.value - ms / 1000.0).abs() < 1e-9,
            "{mvpd}: {ms} ms"
        );
    }
    assert!(
        !text.contains("esm_authz_latency{"),
        "only the seconds family"
    );

    // Last-Modified, when Adobe computed the answer: 5-minute steps for hours;
    // minute data has none (real time): the time of the answer.
    let computed = |report: &str| {
        samples_of(
            &samples,
            "esm_report_last_modified_timestamp_seconds",
            report,
        )[0]
        .value
    };
    let now = Timestamp::from_second(NOW.parse::<Timestamp>().unwrap().as_second()).unwrap();
    assert_eq!(computed("esm_hourly_mvpd"), now.as_second() as f64);
    assert!((computed("esm_minute_mvpd") - now.as_second() as f64).abs() < 60.0);
    assert!(
        !text.contains("esm_report_last_modified_timestamp_seconds{report=\"cmu_daily\""),
        "CMU's Last-Modified means nothing and is not exported"
    );

    // Each path's own metric set: events count by reason, Apple SSO fails under eap.
    let counts = samples_of(&samples, "esm_events", "esm_failures");
    assert!(counts.iter().any(|s| s.labels["reason"] == "MVPD error"));
    assert!(!samples_of(&samples, "esm_authn_failed", "esm_apple_sso").is_empty());
    assert!(samples_of(&samples, "esm_authz_attempts", "esm_apple_sso").is_empty());
    // The documented `year/...` tree works too, without a media-company label.
    assert!(
        samples_of(&samples, "esm_authn_attempts", "esm_apple_sso")
            .iter()
            .all(|s| !s.labels.contains_key("media_company"))
    );
    exporter.stop().await;
}

#[tokio::test]
async fn an_mvpd_outage_raises_its_failure_ratio_and_latency_alone() {
    // Half an hour into the hour, whatever the time of day: the bucket
    // still filling holds enough authorizations for a ratio to mean something.
    let clock = Clock::warped("2026-11-22T18:30:00Z".parse().unwrap(), 1.0);
    let (sim, _dir, config) = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..SimulatorConfig::default()
        },
        "  - name: esm_now
    api: esm
    path: media-company/year/month/day/hour/proxy/mvpd
    bucket: partial
    interval: 1s
",
    )
    .await;
    let exporter = exporter_with_clock(&config, clock).await;
    let base = exporter.url();
    let ratio = |samples: &[Sample], mvpd: &str, name: &str| {
        let of = |family: &str| -> f64 {
            samples
                .iter()
                .filter(|s| s.name == family && s.labels["mvpd"] == mvpd)
                .map(|s| s.value)
                .sum()
        };
        of(name) / of("esm_authz_attempts")
    };
    let before = wait_for("ESM series", WAIT, || async {
        let (_, text) = get_text(&format!("{base}/metrics")).await;
        let samples = parse_exposition(&text);
        samples
            .iter()
            .any(|s| s.name == "esm_authz_failed")
            .then_some(samples)
    })
    .await;
    assert!(ratio(&before, "DTV", "esm_authz_failed") < 0.05);
    let (_, landing) = get_text(&format!("{base}/")).await;
    assert!(landing.contains("<h2>MVPD health (ESM)</h2>"), "{landing}");
    assert!(
        landing.contains("<tr><td>esm_now</td><td>")
            && landing.contains(" (hour), ")
            && landing.contains("<td>DTV</td>"),
        "{landing}"
    );
    let normal_latency = ratio(&before, "DTV", "esm_authz_latency_seconds");
    sim.mvpd_outage(
        "DTV",
        Some(Outage {
            failure_ratio: 0.6,
            latency_factor: 5.0,
        }),
    );
    let during = wait_for("DTV's authorizations failing", WAIT, || async {
        let (_, text) = get_text(&format!("{base}/metrics")).await;
        let samples = parse_exposition(&text);
        (ratio(&samples, "DTV", "esm_authz_failed") > 0.5).then_some(samples)
    })
    .await;
    assert!(ratio(&during, "DTV", "esm_authz_latency_seconds") > 3.0 * normal_latency);
    assert!(ratio(&during, "Comcast_SSO", "esm_authz_failed") < 0.05);
    // The landing page shows the failing MVPD, and only it, in red.
    let (_, landing) = get_text(&format!("{base}/")).await;
    let row_of = |mvpd: &str| {
        landing
            .split("<tr")
            .find(|row| {
                row.contains("<td>esm_now</td>") && row.contains(&format!("<td>{mvpd}</td>"))
            })
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row_of("DTV").starts_with(" class=\"bad\">"), "{landing}");
    assert!(
        row_of("Comcast_SSO").starts_with("><td>esm_now</td>"),
        "{landing}"
    );
    exporter.stop().await;
}

/// Two accounts, one media company each: Adobe's implicit filter.
fn accounts_config(dir: &Path, sim: &Simulator, acme: &str, kids: &str) -> std::path::PathBuf {
    let (acme_file, kids_file) = (dir.join("acme.jwt"), dir.join("kids.jwt"));
    std::fs::write(&acme_file, acme).unwrap();
    std::fs::write(&kids_file, kids).unwrap();
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\naccounts:\n  - name: acme\n    software_statement_file: {}\n  - name: kids\n    software_statement_file: {}\nstate_dir: {}\nreports:\n  - name: acme_esm\n    account: acme\n    api: esm\n    path: media-company/year/month/day\n    interval: 1s\n  - name: kids_esm\n    account: kids\n    api: esm\n    path: media-company/year/month/day\n    interval: 1s\n",
        sim.dcr_url(),
        sim.cmu_url(),
        sim.esm_url(),
        acme_file.display(),
        kids_file.display(),
        dir.join("state").display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test]
async fn each_account_sees_its_own_media_company() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let acme = sim.mint_account_statement(&["ACME"]);
    let kids = sim.mint_account_statement(&["ACME-Kids"]);
    let config = accounts_config(dir.path(), &sim, &acme, &kids);
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let samples = wait_for("both accounts' ESM series", WAIT, || async {
        let (_, text) = get_text(&format!("{base}/metrics")).await;
        let samples = parse_exposition(&text);
        let reports: std::collections::BTreeSet<&str> = samples
            .iter()
            .filter(|s| s.name == "esm_authz_attempts")
            .map(|s| s.labels["report"].as_str())
            .collect();
        (reports.len() == 2).then(|| samples.clone())
    })
    .await;
    for s in samples.iter().filter(|s| s.name == "esm_authz_attempts") {
        let expected = match s.labels["account"].as_str() {
            "acme" => "ACME",
            "kids" => "ACME-Kids",
            other => panic!("unexpected account {other}"),
        };
        assert_eq!(s.labels["media_company"], expected, "{s:?}");
    }
    assert_eq!(
        sim.count(Endpoint::Register),
        2,
        "one registration per account"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn discover_walks_the_esm_tree_and_check_config_online_checks_esm_paths() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: good
    api: esm
    path: media-company/year/month/day/proxy/mvpd
",
    );
    let config_arg = config.to_str().unwrap();
    let ran = run_binary_async(
        ["discover", "--config.file", config_arg, "--api", "esm"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.contains(&format!(
            "{} report paths under {}",
            sim.esm_report_paths().len(),
            sim.esm_url()
        )),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("media-company/year/month/day/hour/proxy/mvpd  (hour, 15m)")
    );
    assert!(ran.stdout.contains("year/month/day/proxy/mvpd  (day, 1h)"));
    assert!(
        ran.stdout
            .contains("    api: esm\n    path: media-company/year/month/day\n")
    );
    let ran = run_binary_async(
        ["check-config", config_arg, "--online"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}{}", ran.stdout, ran.stderr);
    // A CMU path asked of ESM does not exist there.
    let wrong = write_config(
        dir.path(),
        &sim,
        "  - name: wrong
    api: esm
    path: tenant/year/month/day
",
    );
    let ran = run_binary_async(
        ["check-config", wrong.to_str().unwrap(), "--online"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains(
            "wrong: ESM has no report at /tenant/year/month/day (HTTP 404: no pre-aggregation for this path): fix the path; `cmu-exporter discover --api esm` lists the valid ones"
        ),
        "{}",
        ran.stderr
    );
}

/// The landing page's MVPD table says which bucket each row comes from and,
/// for a bucket still filling, how far into it: a minute 30 s old is not an
/// outage. The demo's minute report shows the newest complete minute.
#[tokio::test]
async fn the_mvpd_table_says_whether_its_bucket_is_complete_or_still_filling() {
    let clock = Clock::warped("2026-11-22T18:30:30Z".parse().unwrap(), 1.0);
    let (sim, dir, config) = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..SimulatorConfig::default()
        },
        "  - name: filling
    api: esm
    path: media-company/year/month/day/hour/minute/proxy/mvpd
    bucket: partial
  - name: done
    api: esm
    path: media-company/year/month/day/hour/minute/proxy/mvpd
",
    )
    .await;
    let exporter = exporter_with_clock(&config, clock).await;
    let base = exporter.url();
    let page = wait_for("both reports on the landing page", WAIT, || async {
        let (_, page) = get_text(&format!("{base}/")).await;
        (page.contains("<td>filling</td><td>2026-11-22 10:")
            && page.contains("<td>done</td><td>2026-11-22 10:"))
        .then_some(page)
    })
    .await;
    exporter.stop().await;
    // 18:30:30 UTC is 10:30:30 in Los Angeles: the page names the date and
    // the zone (Pacific standard time in November).
    assert!(
        page.contains("<td>filling</td><td>2026-11-22 10:30 PST (minute), filling: 3"),
        "half a minute into its bucket: {page}"
    );
    assert!(
        page.contains("<td>done</td><td>2026-11-22 10:29 PST (minute), complete</td>"),
        "{page}"
    );

    let statement = dir.path().join("statement.jwt");
    let demo = cmu_exporter::demo::config(&sim, &statement, &dir.path().join("demo")).unwrap();
    let minute = demo
        .reports
        .iter()
        .find(|r| r.name.as_str() == "esm_minute_by_mvpd")
        .unwrap();
    assert_eq!(
        minute.bucket,
        BucketChoice::Complete,
        "the demo shows complete minutes"
    );
}
