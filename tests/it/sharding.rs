//! Sharding: M processes with `--shard 0..M --total-shards M` export
//! exactly the series one process exports, each series once.

use std::collections::BTreeSet;

use cmu_exporter::app::{self, Options, Running};
use cmu_exporter::clock::Clock;
use cmu_exporter::config::Config;
use cmu_exporter::shard::Shard;
use cmu_exporter::simulator::SimulatorConfig;

use crate::common::*;

/// Reports named `esm_*` read ESM.
const REPORTS: [(&str, &str); 9] = [
    ("daily", "tenant/year/month/day"),
    ("hourly", "tenant/year/month/day/hour"),
    ("monthly", "tenant/year/month"),
    ("by_mvpd", "tenant/year/month/day/mvpd"),
    ("by_platform", "tenant/year/month/day/channel/platform"),
    ("levels", "year/month/day/concurrency-level/tenant"),
    ("durations", "year/month/day/tenant"),
    ("esm_daily", "media-company/year/month/day/proxy/mvpd"),
    ("esm_hourly", "media-company/year/month/day/hour/dc"),
];

/// The CMU and ESM series of an exporter once every report it owns was polled.
async fn series_once_polled(exporter: &Running, owned: &[&str]) -> BTreeSet<String> {
    let base = exporter.url();
    for report in owned {
        let up = format!("cmu_exporter_report_up{{report=\"{report}\"}}");
        wait_for_value(&format!("{report} polled"), WAIT, &base, &up, 1.0).await;
    }
    let text = get_text(&format!("{base}/metrics")).await.1;
    // The reports' data; the configuration's thresholds are every shard's.
    text.lines()
        .filter(|l| {
            (l.starts_with("cmu_") && !l.starts_with("cmu_exporter_")) || l.starts_with("esm_")
        })
        .filter(|l| !l.starts_with("cmu_threshold") && !l.starts_with("cmu_stream_limit"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn shards_together_export_exactly_what_one_process_exports() {
    // One fixed moment for all four processes: the same buckets, the same values.
    let clock = Clock::warped("2026-11-22T10:30:00Z".parse().unwrap(), 1.0);
    let sim = simulator_with(SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    })
    .await;
    let reports: String = REPORTS
        .iter()
        .map(|(name, path)| {
            let api = if name.starts_with("esm_") {
                "    api: esm\n"
            } else {
                ""
            };
            format!("  - name: {name}\n{api}    path: {path}\n")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let start = |shard: Shard| {
        // Each process keeps its own credentials, as each replica does.
        let own = dir
            .path()
            .join(format!("shard-{}-of-{}", shard.index, shard.total));
        std::fs::create_dir_all(&own).unwrap();
        let file = write_config(&own, &sim, &reports);
        let options = Options {
            shard,
            ..Options::loopback(clock.clone())
        };
        async move {
            app::start(Config::load(&file).unwrap(), options)
                .await
                .unwrap()
        }
    };
    let names: Vec<&str> = REPORTS.iter().map(|(n, _)| *n).collect();
    let whole = start(Shard::ALL).await;
    let all = series_once_polled(&whole, &names).await;
    assert!(all.len() > 50, "the reports export series: {}", all.len());

    let total = 3;
    let mut union = BTreeSet::new();
    let mut count = 0;
    let mut busy = 0;
    for index in 0..total {
        let shard = Shard::new(index, total).unwrap();
        let owned: Vec<&str> = names.iter().copied().filter(|n| shard.owns(n)).collect();
        busy += usize::from(!owned.is_empty());
        let exporter = start(shard).await;
        let series = series_once_polled(&exporter, &owned).await;
        let (ready, why) = get_text(&format!("{}/readyz", exporter.url())).await;
        assert_eq!(ready, 200, "shard {index} is ready: {why}");
        let text = get_text(&format!("{}/metrics", exporter.url())).await.1;
        assert!(
            text.contains(&format!(
                "cmu_exporter_shard_info{{shard=\"{index}\",total_shards=\"{total}\"}} 1"
            )),
            "shard {index} says which it is"
        );
        for report in names.iter().filter(|n| !shard.owns(n)) {
            assert!(
                !text.contains(&format!("report=\"{report}\"")),
                "shard {index} does not poll {report}"
            );
        }
        count += series.len();
        union.extend(series);
        exporter.stop().await;
    }
    assert!(busy >= 2, "the reports spread over the shards");
    assert_eq!(count, all.len(), "no series is exported twice");
    assert_eq!(union, all, "together the shards export every series");
    whole.stop().await;
}
