//! The whole path over real HTTP: simulator -> DCR -> CMU -> /metrics.

use std::collections::BTreeMap;

use crate::common::*;
use cmu_exporter::simulator::Endpoint;

/// Waits until `report` was polled successfully and returns the exposition.
async fn scrape_after_poll(base: &str, report: &str) -> String {
    wait_for("the first successful poll", WAIT, || async {
        let (_, text) = get_text(&format!("{base}/metrics")).await;
        let needle = format!("cmu_exporter_report_up{{report=\"{report}\"}} 1");
        text.contains(&needle).then_some(text)
    })
    .await
}

#[tokio::test]
async fn exported_values_equal_what_the_simulator_served() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: hourly_by_mvpd\n    path: tenant/year/month/day/hour/mvpd\n",
    )
    .await;
    let exporter = exporter(&config).await;
    let text = scrape_after_poll(&exporter.url(), "hourly_by_mvpd").await;
    assert!(
        !text.contains("account="),
        "the single-account form adds no account label"
    );

    // Ask the simulator the very query the exporter sent.
    let sent = sim
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::Cmu && r.status == 200)
        .expect("the exporter called CMU");
    assert_eq!(sent.path, "/cmu/v2/tenant/year/month/day/hour/mvpd");
    for param in ["start=", "end=", "limit=10000"] {
        assert!(
            sent.query.contains(param),
            "query {:?} lacks {param}",
            sent.query
        );
    }
    let token = own_token(&sim).await;
    let served = cmu_json(
        &format!("{}{}?{}", sim.dcr_url(), sent.path, sent.query),
        &token,
    )
    .await;

    // Expected: every metric of the rows in the newest complete bucket.
    // The window reaches up to now: its newest bucket is the one Adobe is
    // still computing, so the bucket before it is the newest complete.
    let rows = served["report"].as_array().unwrap();
    assert!(!rows.is_empty());
    let bucket = |r: &serde_json::Value| {
        ["year", "month", "day", "hour"].map(|k| r[k].as_str().unwrap().parse::<u32>().unwrap())
    };
    let filling = rows.iter().map(bucket).max().unwrap();
    let newest = rows
        .iter()
        .map(bucket)
        .filter(|b| *b < filling)
        .max()
        .unwrap();
    // Durations are served as ranges and exported as one cumulative histogram.
    let ranges = cmu_exporter::report::catalog::DURATION_METRICS;
    let mut expected = BTreeMap::new();
    for row in rows.iter().filter(|r| bucket(r) == newest) {
        let labels = format!(
            "tenant={},mvpd={}",
            row["tenant"].as_str().unwrap(),
            row["mvpd"].as_str().unwrap()
        );
        let number = |field: &str| row[field].as_str().unwrap().parse::<f64>().unwrap();
        for (field, _) in row.as_object().unwrap() {
            let skip = ["year", "month", "day", "hour", "tenant", "mvpd"].contains(&field.as_str())
                || ranges.iter().any(|(name, _)| name == field);
            if !skip {
                expected.insert(
                    (format!("cmu_{}", field.replace('-', "_")), labels.clone()),
                    number(field),
                );
            }
        }
        let mut cumulative = 0.0;
        for (name, upper) in ranges {
            cumulative += number(name);
            let le = upper.map_or("+Inf".to_owned(), |s| s.to_string());
            expected.insert(
                (
                    "cmu_session_duration_seconds_bucket".into(),
                    format!("{labels},le={le}"),
                ),
                cumulative,
            );
        }
        expected.insert(
            ("cmu_session_duration_seconds_count".into(), labels),
            cumulative,
        );
    }
    let exported: BTreeMap<(String, String), f64> = parse_exposition(&text)
        .into_iter()
        .filter(|s| s.labels.get("report").map(String::as_str) == Some("hourly_by_mvpd"))
        .filter(|s| !s.name.starts_with("cmu_report_") && !s.name.starts_with("cmu_exporter_"))
        .map(|s| {
            let mut labels = format!("tenant={},mvpd={}", s.labels["tenant"], s.labels["mvpd"]);
            if let Some(le) = s.labels.get("le") {
                labels.push_str(&format!(",le={le}"));
            }
            ((s.name, labels), s.value)
        })
        .collect();
    assert_eq!(exported, expected);
    assert!(
        expected.keys().any(|(f, _)| f == "cmu_bstreams_30"),
        "the undocumented metric is exported too"
    );
    assert!(
        expected
            .keys()
            .any(|(f, _)| f == "cmu_session_duration_seconds_bucket")
    );
    assert!(text.contains("# HELP cmu_active_users Distinct accounts"));
    assert!(text.contains("Cached: values are from the last successful poll"));

    // One registration, one token, and /metrics never called Adobe itself.
    let cmu_calls = sim.count(Endpoint::Cmu);
    for _ in 0..5 {
        get_text(&format!("{}/metrics", exporter.url())).await;
    }
    assert_eq!(
        sim.count(Endpoint::Cmu),
        cmu_calls,
        "scrapes must not reach Adobe"
    );
    assert_eq!(
        sim.count_status(Endpoint::Register, 201),
        2,
        "the exporter's and the test's own"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_restart_reuses_stored_credentials_and_token() {
    let (sim, dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    let first = exporter(&config).await;
    scrape_after_poll(&first.url(), "daily").await;
    first.stop().await;
    assert_eq!(sim.count(Endpoint::Register), 1);
    assert_eq!(sim.count(Endpoint::Token), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("state/credentials.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let second = exporter(&config).await;
    scrape_after_poll(&second.url(), "daily").await;
    second.stop().await;
    assert_eq!(sim.count(Endpoint::Register), 1, "no second registration");
    assert_eq!(
        sim.count(Endpoint::Token),
        1,
        "the stored token was still valid"
    );
    assert_eq!(sim.count_status(Endpoint::Cmu, 200), 2);
}

#[tokio::test]
async fn links_with_another_prefix_and_gzip_are_taken_in_stride() {
    let (sim, _dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    // Point the exporter at the alias prefix: the links still say /cmu/v2.
    use_alias_prefix(&config, &sim);
    let exporter = exporter(&config).await;
    let text = scrape_after_poll(&exporter.url(), "daily").await;
    assert!(text.contains("cmu_active_users{report=\"daily\",tenant=\"ACME\"}"));
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v2/tenant/year/month/day")
    );

    // /metrics honours gzip, and the member decodes to the same series.
    let response = http_builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{}/metrics", exporter.url()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut plain,
    )
    .unwrap();
    assert!(plain.contains("cmu_active_users{report=\"daily\",tenant=\"ACME\"}"));
    assert!(plain.contains("cmu_exporter_report_up{report=\"daily\"} 1"));
    exporter.stop().await;
}
