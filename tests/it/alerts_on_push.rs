//! The shipped rules on a Prometheus fed only by the push, beside one that
//! scrapes the same exporter: the same concurrency alerts for a minute, an
//! hourly and a daily report, though a pushed bucket is stamped at its end
//! and reaches the store minutes or hours later; and on the pushed store an
//! alert resolves once its report's data stopped for longer than max_age.
//!
//! Prometheus evaluates rules at its wall clock, so this world runs on it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use cmu_exporter::simulator::SimulatorConfig;

use crate::common::*;

const REPORTS: &str = "  - {name: minute, path: tenant/year/month/day/hour/minute, max_age: 100s}
  - {name: hourly, path: tenant/year/month/day/hour}
  - {name: daily, path: tenant/year/month/day}
thresholds:
  - {family: cmu_active_sessions, warning: 1000000000000}
  - {family: cmu_active_sessions, match: {tenant: ACME}, warning: 1}
";

/// A Prometheus on `port` that evaluates the shipped rules every second:
/// a remote-write store (no scrape) or a scraper of `target`.
fn prometheus(dir: &Path, port: u16, target: Option<&str>) -> Daemon {
    std::fs::create_dir_all(dir).unwrap();
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/cmu-exporter.rules.yml");
    let scrape = target.map_or(String::new(), |t| {
        format!("scrape_configs:\n  - job_name: cmu-exporter\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{t}']\n")
    });
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nstorage:\n  tsdb:\n    out_of_order_time_window: 7d\nrule_files:\n  - {}\n{scrape}",
            rules.display()
        ),
    )
    .unwrap();
    let mut args = vec![
        format!("--config.file={}", dir.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    if target.is_none() {
        args.push("--web.enable-remote-write-receiver".into());
    }
    daemon("prometheus", &args, &dir.join("prometheus.log"))
}

/// The (report, tenant) pairs `CmuActiveSessionsHigh` fires for.
async fn firing(prometheus: &str) -> BTreeSet<(String, String)> {
    query(
        prometheus,
        "ALERTS{alertname=\"CmuActiveSessionsHigh\",alertstate=\"firing\"}",
    )
    .await
    .iter()
    .map(|a| {
        let label = |k: &str| a["metric"][k].as_str().unwrap_or_default().to_owned();
        (label("report"), label("tenant"))
    })
    .collect()
}

#[tokio::test]
async fn concurrency_alerts_fire_alike_on_a_pushed_and_a_scraped_prometheus_and_resolve_after_max_age()
 {
    let (_sim, dir, config) =
        simulator_and_config_with(unthrottled(SimulatorConfig::default()), REPORTS).await;
    let (pushed_port, scraped_port) = (free_port(), free_port());
    let pushed = format!("http://127.0.0.1:{pushed_port}");
    let scraped = format!("http://127.0.0.1:{scraped_port}");
    let _store = prometheus(&dir.path().join("pushed"), pushed_port, None);
    add_remote_write(
        &config,
        &format!("{pushed}/api/v1/write"),
        "name: prom\nself_metrics_interval: 5s",
    );
    let exporter = exporter(&config).await;
    let target = exporter.addrs[0].to_string();
    let _scraper = prometheus(&dir.path().join("scraped"), scraped_port, Some(&target));

    // ACME is over its threshold in every report, ACME-Kids under the
    // default: the same alerts on both stores.
    let expected: BTreeSet<(String, String)> = ["minute", "hourly", "daily"]
        .iter()
        .map(|r| ((*r).to_owned(), "ACME".to_owned()))
        .collect();
    let log = |which: &str| {
        std::fs::read_to_string(dir.path().join(which).join("prometheus.log")).unwrap_or_default()
    };
    for (name, url) in [("pushed", &pushed), ("scraped", &scraped)] {
        wait_for(
            &format!("CmuActiveSessionsHigh for ACME on every report, on the {name} Prometheus"),
            Duration::from_secs(240),
            || async {
                let now = firing(url).await;
                (now == expected).then_some(())
            },
        )
        .await;
        assert!(!log(name).contains("level=error"), "{}", log(name));
    }
    // Still alike a while later (ACME-Kids never fires on either).
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(firing(&pushed).await, expected);
    assert_eq!(firing(&scraped).await, expected);

    // The data stops. On the pushed store the alerts hold while the newest
    // complete bucket is younger than the report's max_age (the minute
    // report's 100 s), then the minute report's resolves; the hourly and
    // daily ones, with hours of max_age, hold.
    exporter.stop().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        firing(&pushed)
            .await
            .contains(&("minute".into(), "ACME".into())),
        "resolved before max_age"
    );
    wait_for(
        "the minute report's alert resolved after max_age",
        Duration::from_secs(240),
        || async {
            let now = firing(&pushed).await;
            let minute_gone = !now.iter().any(|(r, _)| r == "minute");
            (minute_gone && now.len() == 2).then_some(())
        },
    )
    .await;
}
