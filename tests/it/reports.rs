//! Every report, faithfully: metric model, time buckets, options, lifecycle, discovery.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::export::{Exposition, SnapshotSpec, build_snapshot};
use cmu_exporter::report::{BucketChoice, ReportApi, ReportPath};
use cmu_exporter::simulator::{Endpoint, Fault, SimulatorConfig, Target};
use jiff::Timestamp;

/// A fixed "now" for golden outputs, well inside an hour and a day.
const NOW: &str = "2026-11-22T10:30:00Z";

fn fixed_clock() -> Clock {
    Clock::warped(NOW.parse().unwrap(), 1.0)
}

/// A clock that all but stands still at `NOW`, for answers compared byte
/// for byte: the bucket still filling must not move while a loaded machine
/// runs the test. (No exporter can run on it: its waits would never end.)
fn frozen_clock() -> Clock {
    Clock::warped(NOW.parse().unwrap(), 1e-9)
}

/// One report of each family and each granularity, rendered exactly as the
/// service renders it, compared with `tests/golden/<name>.prom`.
/// `UPDATE_GOLDEN=1 cargo test --test it golden` rewrites the files.
#[tokio::test]
async fn golden_expositions_for_each_family_and_granularity() {
    let cases = [
        ("general_total", "tenant", ""),
        ("general_year", "tenant/year", "start=2025-01-01"),
        (
            "general_month",
            "tenant/year/month",
            "start=2026-09-01&tenant=ACME",
        ),
        (
            "general_day",
            "tenant/year/month/day/mvpd",
            "start=2026-11-20&end=2026-11-21T23:59:59&tenant=ACME&mvpd=DTV&mvpd=Cox",
        ),
        (
            "general_hour",
            "tenant/year/month/day/hour/occurrences",
            "start=2026-11-22T08:00:00&tenant=ACME",
        ),
        (
            "general_minute",
            "tenant/year/month/day/hour/minute",
            "start=2026-11-22T09:58:00&end=2026-11-22T09:59:59&tenant=ACME",
        ),
        (
            "durations_month",
            "mvpd/year/month/tenant",
            "start=2026-09-01&mvpd=DTV",
        ),
        (
            "concurrency_day",
            "year/month/day/concurrency-level/tenant",
            "start=2026-11-20&end=2026-11-21T23:59:59&tenant=ACME",
        ),
        (
            "concurrency_month",
            "year/month/concurrency-level",
            "start=2026-09-01",
        ),
        (
            "activity_day",
            "year/month/day/activity-level/tenant/mvpd",
            "start=2026-11-20&end=2026-11-21T23:59:59&tenant=ACME&mvpd=DTV",
        ),
        // ESM (names starting `esm_`): Pacific days, uniques under `dc`,
        // latency in seconds, events by reason, undocumented decisions.
        (
            "esm_day_dc",
            "media-company/year/month/day/dc",
            "start=2026-11-20&end=2026-11-21T23:59:59&media-company=ACME",
        ),
        (
            "esm_hour_mvpd",
            "media-company/year/month/day/hour/proxy/mvpd",
            "start=2026-11-22T00:00:00&end=2026-11-22T01:59:59&media-company=ACME",
        ),
        (
            "esm_event_reason",
            "media-company/year/month/day/event/requestor-id/proxy/mvpd/reason",
            "start=2026-11-20&end=2026-11-21T23:59:59&mvpd=DTV",
        ),
        (
            "esm_decisions",
            "media-company/year/month/day/requestor-id/proxy/mvpd/platform/customer-app/channel/decision-type",
            "start=2026-11-21&end=2026-11-21T23:59:59&mvpd=DTV&platform=iOS",
        ),
    ];
    let sim = simulator_with(SimulatorConfig {
        clock: frozen_clock(),
        ..SimulatorConfig::default()
    })
    .await;
    let token = own_token(&sim).await;
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, path, query) in cases {
        let (api, base, time_zone, computed_at) = if name.starts_with("esm_") {
            let pacific = jiff::tz::TimeZone::get("America/Los_Angeles").unwrap();
            (
                ReportApi::Esm,
                sim.esm_url(),
                pacific,
                Some(NOW.parse().unwrap()),
            )
        } else {
            (ReportApi::Cmu, sim.cmu_url(), jiff::tz::TimeZone::UTC, None)
        };
        let url = format!("{base}/{path}?{query}&limit=100000");
        let json = cmu_bytes(&url, &token).await;
        // The answer itself is kept too: the fuzz corpora start from it.
        let answer =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.json"));
        if update {
            std::fs::write(&answer, &json).unwrap();
        } else if std::fs::read(&answer).ok().as_deref() != Some(&json[..]) {
            mismatches.push(format!(
                "{name}: the answer differs from {}",
                answer.display()
            ));
        }
        let spec = SnapshotSpec {
            api,
            report: name.into(),
            account: None,
            path: Some(ReportPath::parse(path).unwrap()),
            choice: BucketChoice::Complete,
            now: NOW.parse().unwrap(),
            time_zone,
            labels: vec![],
            max_series: None,
            computed_at,
            computed_through: computed_at,
        };
        let snapshot = build_snapshot(&json, &spec).unwrap();
        assert!(snapshot.series > 0, "{name}: no series");
        let text = String::from_utf8(Exposition::assemble([&snapshot]).to_vec()).unwrap();
        promtool_accepts(name, &text);
        let file =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.prom"));
        if update {
            std::fs::write(&file, &text).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            mismatches.push(format!(
                "{name}: output differs from {}:\n{text}",
                file.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_families_have_the_documented_shape() {
    let golden = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/golden/{name}.prom",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let durations = golden("durations_month");
    assert!(durations.contains("# TYPE cmu_session_duration_seconds histogram"));
    let samples = parse_exposition(&durations);
    let first = samples
        .iter()
        .find(|s| s.name == "cmu_session_duration_seconds_bucket")
        .expect("histogram series");
    assert_eq!(first.labels["le"], "900", "15 minutes, in seconds");
    let tenant = first.labels["tenant"].clone();
    assert!(durations.contains("le=\"+Inf\"}"));
    assert!(
        !durations.contains("cmu_duration_0_15"),
        "the ranges are exported once, as the histogram"
    );
    // Cumulative: each bucket at least the one before, +Inf equal to _count.
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == "cmu_session_duration_seconds_bucket" && s.labels["tenant"] == tenant)
        .map(|s| s.value)
        .collect();
    assert_eq!(buckets.len(), 12);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    let count = samples
        .iter()
        .find(|s| s.name == "cmu_session_duration_seconds_count" && s.labels["tenant"] == tenant)
        .unwrap();
    assert_eq!(count.value, buckets[11]);

    let levels = golden("concurrency_day");
    assert!(levels.contains(
        "cmu_concurrency_level_users{report=\"concurrency_day\",level=\"1\",tenant=\"ACME\"}"
    ));
    let users: Vec<f64> = parse_exposition(&levels)
        .iter()
        .filter(|s| s.name == "cmu_concurrency_level_users")
        .map(|s| s.value)
        .collect();
    assert!(
        users.windows(2).all(|w| w[0] >= w[1]),
        "fewer users at each higher level: {users:?}"
    );
    assert!(
        golden("activity_day")
            .contains("cmu_activity_level_users{report=\"activity_day\",level=\"1\"")
    );
    let hour = golden("general_hour");
    assert!(hour.contains("cmu_bstreams_30{"), "the undocumented metric");
    assert!(
        hour.contains("occurrences=\"1\""),
        "the undocumented dimension"
    );
    assert!(
        hour.contains(
            "cmu_report_bucket_start_timestamp_seconds{report=\"general_hour\"} 1795338000"
        ),
        "09:00 UTC"
    );
    assert!(golden("general_minute").contains("granularity=\"minute\""));
    assert!(
        golden("general_year").contains(
            "cmu_report_bucket_start_timestamp_seconds{report=\"general_year\"} 1735689600"
        ),
        "2025, the newest complete year"
    );
}

#[test]
fn odd_label_values_are_escaped_and_parse_back() {
    let long = "x".repeat(200);
    let odd = [
        "quote \" inside",
        "back\\slash",
        "new\nline",
        "unicodé ✓ 日本",
        long.as_str(),
    ];
    let rows: Vec<serde_json::Value> = odd
        .iter()
        .enumerate()
        .map(|(i, v)| serde_json::json!({"year": "2025", "tenant": v, "mvpd": format!("m{i}"), "active-users": "1"}))
        .collect();
    let doc = serde_json::json!({"_links": {"self": {"href": "/cmu/v2/year/tenant/mvpd"}}, "report": rows});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let text = render_file(&file, &[]);
    promtool_accepts("odd label values", &text);
    let tenants: BTreeSet<String> = parse_exposition(&text)
        .into_iter()
        .filter(|s| s.name == "cmu_active_users")
        .map(|s| s.labels["tenant"].clone())
        .collect();
    assert_eq!(tenants, odd.iter().map(|s| s.to_string()).collect());
}

#[tokio::test]
async fn the_window_limit_filters_and_metrics_are_sent_as_configured() {
    let sim = simulator_with(SimulatorConfig {
        clock: fixed_clock(),
        ..SimulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: hourly\n    path: tenant/year/month/day/hour/mvpd/platform/application-id/application\n    limit: 5\n    filters: [\"mvpd=DTV\", \"platform!=Roku\"]\n    metrics: [active-users, failed-attempts]\n    labels: {team: streaming}\n    max_series: 4\n",
    );
    let exporter = exporter_with_clock(&config, fixed_clock()).await;
    let text = wait_for("the first poll", WAIT, || async {
        let (_, t) = get_text(&format!("{}/metrics", exporter.url())).await;
        t.contains("cmu_exporter_report_up{report=\"hourly\"} 1")
            .then_some(t)
    })
    .await;
    exporter.stop().await;
    let sent = sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::Cmu)
        .unwrap();
    let pairs: BTreeSet<(String, String)> = form_urlencoded::parse(sent.query.as_bytes())
        .into_owned()
        .collect();
    // The window reaches up to now (10:30 and the seconds the test took):
    // an answer with hour 10 in it shows that Adobe computed past hour 9.
    let end = pairs.iter().find(|(k, _)| k == "end").unwrap().1.clone();
    assert!(
        end.starts_with("2026-11-22T10:3"),
        "the window ends now, not at the end of the last hour: end={end}"
    );
    for (k, v) in [
        ("start", "2026-11-22T08:00:00"),
        ("limit", "5"),
        ("mvpd", "DTV"),
        ("platform!", "Roku"),
        ("metrics", "active-users"),
        ("metrics", "failed-attempts"),
    ] {
        assert!(
            pairs.contains(&(k.to_owned(), v.to_owned())),
            "{k}={v} not in {:?}",
            sent.query
        );
    }
    // 5 rows came back: the answer is full, so it is counted as truncated.
    assert!(
        text.contains("cmu_exporter_report_truncated_total{report=\"hourly\"} 1"),
        "{text}"
    );
    // max_series 4: two rows of two metrics kept, the rest dropped and counted.
    let series: Vec<Sample> = parse_exposition(&text)
        .into_iter()
        .filter(|s| s.name == "cmu_active_users" || s.name == "cmu_failed_attempts")
        .collect();
    assert_eq!(series.len(), 4, "{series:?}");
    assert!(series.iter().all(|s| s.labels["team"] == "streaming"
        && s.labels["mvpd"] == "DTV"
        && s.labels["platform"] != "Roku"));
    assert!(text.contains("cmu_exporter_series_dropped_total{report=\"hourly\"}"));
}

#[tokio::test]
async fn a_series_missing_from_the_newest_answer_disappears() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day/mvpd\n    interval: 1s\n",
    )
    .await;
    let exporter = exporter(&config).await;
    let metrics = format!("{}/metrics", exporter.url());
    let has = |text: &str, mvpd: &str| {
        text.contains(&format!(
            "cmu_active_users{{report=\"daily\",mvpd=\"{mvpd}\""
        ))
    };
    let text = wait_for("DTV series", WAIT, || async {
        Some(get_text(&metrics).await.1).filter(|t| has(t, "DTV"))
    })
    .await;
    let other = ["Cox", "ATT", "Verizon", "Comcast_SSO", "Charter_Direct"]
        .into_iter()
        .find(|m| has(&text, m))
        .unwrap();
    sim.hide("mvpd", "DTV");
    let text = wait_for("DTV to drop out", WAIT, || async {
        Some(get_text(&metrics).await.1).filter(|t| !has(t, "DTV"))
    })
    .await;
    assert!(has(&text, other), "the other series stay");
    exporter.stop().await;
}

#[tokio::test]
async fn a_failing_report_keeps_its_values_until_max_age_then_drops_them() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n    max_age: 3s\n",
    )
    .await;
    let exporter = exporter(&config).await;
    let metrics = format!("{}/metrics", exporter.url());
    let series = "cmu_active_users{report=\"daily\",tenant=\"ACME\"}";
    wait_for("values", WAIT, || async {
        get_text(&metrics).await.1.contains(series).then_some(())
    })
    .await;
    sim.inject(Target::Cmu, Fault::Status(503), 1_000);
    let failing = wait_for("a failed poll", WAIT, || async {
        Some(get_text(&metrics).await.1)
            .filter(|t| t.contains("cmu_exporter_report_up{report=\"daily\"} 0"))
    })
    .await;
    assert!(
        failing.contains(series),
        "the last good values stay while younger than max_age"
    );
    let expired = wait_for("expiry", WAIT, || async {
        Some(get_text(&metrics).await.1).filter(|t| !t.contains(series))
    })
    .await;
    assert!(expired.contains("cmu_exporter_report_series{report=\"daily\"} 0"));
    sim.clear_faults();
    wait_for("recovery", WAIT, || async {
        get_text(&metrics).await.1.contains(series).then_some(())
    })
    .await;
    exporter.stop().await;
}

/// Every path of the reference's §9 tree: each prefix of these leaves.
const REFERENCE_TREE: &[&str] = &[
    "tenant/year/month/day/mvpd/platform/application-id/application",
    "tenant/year/month/day/mvpd/hour",
    "tenant/year/month/day/channel/platform/application-id/application",
    "tenant/year/month/day/hour/application-id/application",
    "tenant/year/month/day/hour/channel/platform/application-id/application",
    "tenant/year/month/day/hour/mvpd/platform/application-id/application",
    "tenant/year/month/day/hour/minute/application-id/application",
    "tenant/year/month/day/hour/minute/channel/platform/application-id/application",
    "tenant/year/month/day/hour/minute/mvpd/platform/application-id/application",
    "tenant/year/month/day/application-id/application",
];

#[tokio::test]
async fn discovery_finds_every_path_of_the_reference_tree() {
    let (sim, _dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    // Through the alias prefix: the links say /cmu/v2 and must still resolve.
    use_alias_prefix(&config, &sim);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["discover", "--config.file", config.to_str().unwrap()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let found: BTreeSet<String> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split("  (").next().unwrap().to_owned())
        .collect();
    for leaf in REFERENCE_TREE {
        let segments: Vec<&str> = leaf.split('/').collect();
        for n in 1..=segments.len() {
            let prefix = segments[..n].join("/");
            assert!(found.contains(&prefix), "discovery missed {prefix}");
        }
    }
    let served: BTreeSet<String> = sim
        .report_paths()
        .iter()
        .filter(|p| !p.is_root())
        .map(|p| p.to_string())
        .collect();
    assert_eq!(found, served, "exactly the paths the simulator serves");
    assert!(
        text.contains("tenant/year/month/day/hour  (hour, 1h)"),
        "granularity and default interval"
    );
    assert!(
        text.contains(
            "  - name: tenant_year_month_day_hour\n    path: tenant/year/month/day/hour\n"
        ),
        "a ready snippet"
    );
}

#[tokio::test]
async fn check_config_online_names_the_paths_adobe_does_not_serve() {
    let (_sim, _dir, config) = simulator_and_config("  - name: good\n    path: tenant/year/month/day\n  - name: wrong\n    path: year/month/day/hour/minute/mvpd\n").await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["check-config", config.to_str().unwrap(), "--online"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong: CMU has no report at /year/month/day/hour/minute/mvpd"),
        "{err}"
    );
    assert!(!err.contains("good:"), "{err}");
}

#[test]
fn each_granularity_gets_adobes_recompute_interval_by_default() {
    use cmu_exporter::report::ReportApi::{Cmu, Esm};
    use cmu_exporter::report::default_interval;
    let hours = |p: &str| default_interval(Cmu, &ReportPath::parse(p).unwrap()).as_secs() / 3600;
    assert_eq!(hours("tenant/year/month"), 48);
    assert_eq!(hours("tenant/year/month/day"), 3);
    assert_eq!(hours("tenant/year/month/day/hour"), 1);
    assert_eq!(
        default_interval(
            Cmu,
            &ReportPath::parse("tenant/year/month/day/hour/minute").unwrap()
        )
        .as_secs(),
        60
    );
    assert_eq!(hours("year/month/day/concurrency-level/tenant"), 24);
    // ESM documents no cadence: a few polls per bucket, never faster than a minute.
    let esm = |p: &str| default_interval(Esm, &ReportPath::parse(p).unwrap()).as_secs();
    assert_eq!(
        esm("media-company/year/month/day/hour/minute/proxy/mvpd"),
        60
    );
    assert_eq!(esm("media-company/year/month/day/hour/proxy/mvpd"), 15 * 60);
    assert_eq!(esm("media-company/year/month/day/proxy/mvpd"), 3600);
    assert_eq!(esm("media-company/year/month"), 6 * 3600);
    let _ = Timestamp::UNIX_EPOCH;
}
