//! The push against a real store: Debian's Prometheus 2.42 with its
//! remote-write receiver and an out-of-order window, read back raw through
//! its API. The world runs on a warped clock, hours behind the wall clock
//! so that every stamp is in the store's past.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::simulator::{Endpoint, Fault, SimulatorConfig, Target};
use jiff::Timestamp;

/// Simulated seconds per real second.
const FACTOR: f64 = 240.0;

async fn wait_ready(prometheus: &str) {
    wait_for("Prometheus is ready", Duration::from_secs(60), || async {
        let r = http()
            .get(format!("{prometheus}/-/ready"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// Every raw sample of `selector` the store holds: per series (its name
/// and labels), its (Unix second, value) pairs.
async fn stored(prometheus: &str, selector: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let result = query(prometheus, &format!("{selector}[2d]")).await;
    result
        .iter()
        .map(|series| {
            let mut labels: Vec<String> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            labels.sort();
            (labels.join(","), raw_samples(series))
        })
        .collect()
}

/// The world of a push test: a simulator and a store on a shared warped clock.
struct World {
    sim: cmu_exporter::simulator::Simulator,
    clock: Clock,
    dir: tempfile::TempDir,
    config: PathBuf,
    prometheus: String,
    port: u16,
}

const REPORTS: &str = "  - {name: minute, path: tenant/year/month/day/hour/minute, interval: 1m}\n  - {name: hourly, path: tenant/year/month/day/hour, interval: 10m}\n";

async fn world(remote: &str) -> (World, Daemon) {
    let start = Timestamp::now() - jiff::SignedDuration::from_hours(8);
    let clock = Clock::warped(start, FACTOR);
    let (sim, dir, config) = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..unthrottled(SimulatorConfig::default())
        },
        REPORTS,
    )
    .await;
    let port = free_port();
    let prometheus = format!("http://127.0.0.1:{port}");
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let daemon = remote_write_store(&store_dir, port);
    wait_ready(&prometheus).await;
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{yaml}remote_write:\n  - url: {prometheus}/api/v1/write\n    name: prom\n    self_metrics_interval: 0s\n{remote}"
        ),
    )
    .unwrap();
    (
        World {
            sim,
            clock,
            dir,
            config,
            prometheus,
            port,
        },
        daemon,
    )
}

impl World {
    /// Waits until the minute report's push is `minutes` past the
    /// current simulated minute (negative: before it).
    async fn minute_pushed(&self, exporter: &cmu_exporter::app::Running, minutes: i64) {
        let now = self.clock.now().as_second() / 60 * 60;
        let at = Timestamp::from_second(now + minutes * 60).unwrap();
        self.wait_cursor(exporter, "minute", at).await;
    }

    fn start_store(&self) -> Daemon {
        remote_write_store(&self.dir.path().join("store"), self.port)
    }

    /// Waits until `report`'s push is at least at `at` (simulated).
    async fn wait_cursor(
        &self,
        exporter: &cmu_exporter::app::Running,
        report: &str,
        at: Timestamp,
    ) {
        wait_for(
            &format!("{report} pushed up to {at}"),
            Duration::from_secs(90),
            || async {
                let statuses = exporter.pusher.statuses();
                let cursor = statuses.first()?.1.cursors.get(report).copied()?;
                (cursor >= at).then_some(())
            },
        )
        .await;
    }

    /// The simulator's own values of `report` (`path`) from `from` to `to`
    /// (simulated, UTC), per tenant and bucket end.
    async fn served(
        &self,
        path: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> BTreeMap<(String, i64), f64> {
        let token = own_token(&self.sim).await;
        let civil = |t: Timestamp| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .datetime()
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string()
        };
        let served = cmu_json(
            &format!(
                "{}/{path}?start={}&end={}&limit=100000",
                self.sim.cmu_url(),
                civil(from),
                civil(to - jiff::SignedDuration::from_secs(1))
            ),
            &token,
        )
        .await;
        let step = if path.ends_with("minute") { 60 } else { 3600 };
        served["report"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| {
                let n = |k: &str| row[k].as_str().map(|v| v.parse::<i64>().unwrap());
                let start =
                    jiff::civil::date(n("year")? as i16, n("month")? as i8, n("day")? as i8)
                        .at(n("hour")? as i8, n("minute").unwrap_or(0) as i8, 0, 0)
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .unwrap()
                        .timestamp()
                        .as_second();
                let users = row["active-users"].as_str()?.parse().ok()?;
                Some(((row["tenant"].as_str()?.to_owned(), start + step), users))
            })
            .collect()
    }
}

/// Checks the store holds `report`'s active users exactly as the
/// simulator serves them: every bucket from the first pushed on, once, at
/// its end. Returns the buckets' ends.
async fn assert_complete(world: &World, report: &str, path: &str, up_to: Timestamp) -> Vec<i64> {
    let held = stored(
        &world.prometheus,
        &format!("cmu_active_users{{report=\"{report}\",job=\"cmu-exporter\"}}"),
    )
    .await;
    assert!(!held.is_empty(), "{report}: nothing in the store");
    let mut got: BTreeMap<(String, i64), f64> = BTreeMap::new();
    let mut first = i64::MAX;
    for (labels, samples) in &held {
        let tenant = labels
            .split(',')
            .find_map(|l| l.strip_prefix("tenant="))
            .unwrap()
            .to_owned();
        for (at, value) in samples {
            first = first.min(*at);
            assert!(
                got.insert((tenant.clone(), *at), *value).is_none(),
                "{report}: {tenant} twice at {at}"
            );
        }
    }
    let step = if path.ends_with("minute") { 60 } else { 3600 };
    let from = Timestamp::from_second(first - step).unwrap();
    let served = world.served(path, from, up_to).await;
    let got: BTreeMap<(String, i64), f64> = got
        .into_iter()
        .filter(|((_, at), _)| *at <= up_to.as_second())
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        served.keys().collect::<Vec<_>>(),
        "{report}: the store holds exactly the simulator's buckets from {from} to {up_to}"
    );
    assert_eq!(got, served, "{report}: the values are the simulator's");
    let mut ends: Vec<i64> = got.keys().map(|(_, at)| *at).collect();
    ends.dedup();
    ends.sort();
    ends.dedup();
    ends
}

/// `ends` run from the first to the last without a hole.
fn assert_no_hole(report: &str, ends: &[i64], step: i64) {
    for pair in ends.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            step,
            "{report}: a hole between {} and {}",
            pair[0],
            pair[1]
        );
    }
}

fn samples_sent(text: &str) -> f64 {
    parse_exposition(text)
        .iter()
        .filter(|s| s.name == "cmu_exporter_remote_write_samples_total")
        .map(|s| s.value)
        .sum()
}

/// Stops `exporter` and returns its self-metrics as they were at the end,
/// and each report's push cursor.
async fn stop(exporter: cmu_exporter::app::Running) -> (String, BTreeMap<String, Timestamp>) {
    let telemetry = exporter.telemetry.clone();
    let cursors = exporter
        .pusher
        .statuses()
        .first()
        .map(|(_, s)| s.cursors.clone());
    exporter.stop().await;
    let mut text = Vec::new();
    telemetry.encode(&mut text);
    (
        String::from_utf8(text).unwrap(),
        cursors.unwrap_or_default(),
    )
}

#[tokio::test]
async fn live_push_stores_every_complete_bucket_once_at_its_end() {
    let (world, _store) = world("").await;
    let cursors_dir = world.dir.path().join("state/remote_write/prom.json");
    let exporter = exporter_with_clock(&world.config, world.clock.clone()).await;
    let began = world.clock.now();
    // Seventy simulated minutes: a minute report, and an hourly one past an hour's end.
    let target = began + jiff::SignedDuration::from_mins(70);
    let hour = |t: Timestamp| Timestamp::from_second(t.as_second() / 3600 * 3600).unwrap();
    world
        .wait_cursor(
            &exporter,
            "minute",
            Timestamp::from_second(target.as_second() / 60 * 60 - 60).unwrap(),
        )
        .await;
    world
        .wait_cursor(
            &exporter,
            "hourly",
            hour(target) - jiff::SignedDuration::from_hours(1),
        )
        .await;
    let (_, page) = get_text(&format!("{}/metrics", exporter.url())).await;
    let (metrics, cursors) = stop(exporter).await;
    let minutes = assert_complete(
        &world,
        "minute",
        "tenant/year/month/day/hour/minute",
        cursors["minute"],
    )
    .await;
    assert!(minutes.len() >= 60, "{} minutes", minutes.len());
    assert_no_hole("minute", &minutes, 60);
    let hours = assert_complete(
        &world,
        "hourly",
        "tenant/year/month/day/hour",
        cursors["hourly"],
    )
    .await;
    assert!(hours.len() >= 3, "{hours:?}");
    assert_no_hole("hourly", &hours, 3600);
    // The store holds every sample the exporter counts as accepted, and no
    // more: none was pushed twice.
    let held: usize = stored(&world.prometheus, "{job=\"cmu-exporter\"}")
        .await
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(
        held as f64,
        samples_sent(&metrics),
        "samples held and samples sent"
    );
    // Scraping keeps working beside the push, and the cursors are on disk.
    assert!(
        page.contains("cmu_exporter_remote_write_lag_seconds{remote=\"prom\",report=\"minute\"}")
    );
    assert!(
        std::fs::read_to_string(cursors_dir)
            .unwrap()
            .contains("\"minute\"")
    );
}

#[tokio::test]
async fn no_bucket_is_lost_when_the_exporter_adobe_or_the_store_is_down() {
    let (world, store_daemon) = world("").await;
    let mins = jiff::SignedDuration::from_mins;
    let exporter = exporter_with_clock(&world.config, world.clock.clone()).await;
    world.minute_pushed(&exporter, 5).await;

    // The exporter stopped for about ten simulated minutes.
    exporter.stop().await;
    let stopped_at = world.clock.now();
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    let exporter = exporter_with_clock(&world.config, world.clock.clone()).await;
    world.minute_pushed(&exporter, -1).await;
    assert!(world.clock.now() > stopped_at + mins(10));

    // Adobe answering 503 for about ten simulated minutes of polls.
    world.sim.inject(Target::Cmu, Fault::Status(503), 400);
    let failing_from = world.sim.count_status(Endpoint::Cmu, 503);
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    world.sim.clear_faults();
    assert!(world.sim.count_status(Endpoint::Cmu, 503) > failing_from + 5);
    world.minute_pushed(&exporter, -1).await;

    // The store down for about ten simulated minutes.
    drop(store_daemon);
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    let _store = world.start_store();
    wait_ready(&world.prometheus).await;
    world.minute_pushed(&exporter, -1).await;
    let (metrics, cursors) = stop(exporter).await;

    let minutes = assert_complete(
        &world,
        "minute",
        "tenant/year/month/day/hour/minute",
        cursors["minute"],
    )
    .await;
    assert_no_hole("minute", &minutes, 60);
    assert!(minutes.len() >= 30, "{} minutes", minutes.len());
    let failures: f64 = parse_exposition(&metrics)
        .iter()
        .filter(|s| s.name == "cmu_exporter_remote_write_failures_total")
        .map(|s| s.value)
        .sum();
    assert!(failures >= 1.0, "the store's outage was counted");
}

#[tokio::test]
async fn a_gap_longer_than_max_gap_pushes_its_newest_part_and_counts_the_rest() {
    let (world, _store) = world("    max_gap: 10m\n").await;
    let exporter = exporter_with_clock(&world.config, world.clock.clone()).await;
    world.minute_pushed(&exporter, 2).await;
    exporter.stop().await;
    let before = world.exporter_cursor("minute");
    // Down for half a simulated hour: three times max_gap.
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(1800))).await;
    let exporter = exporter_with_clock(&world.config, world.clock.clone()).await;
    let restarted = world.clock.now();
    world.minute_pushed(&exporter, 0).await;
    let (metrics, _) = stop(exporter).await;
    let left_out: f64 = parse_exposition(&metrics)
        .iter()
        .filter(|s| {
            s.name == "cmu_exporter_remote_write_buckets_left_out_total"
                && s.labels.get("report").map(String::as_str) == Some("minute")
        })
        .map(|s| s.value)
        .sum();
    let gap = (restarted.as_second() - before.as_second()) / 60;
    assert!(
        (gap - 12..=gap - 8).contains(&(left_out as i64)),
        "{left_out} buckets left out of a gap of {gap} minutes with max_gap 10m"
    );
    // The store has the newest ten minutes of the gap, not the older ones.
    let held = stored(&world.prometheus, "cmu_active_users{report=\"minute\"}").await;
    let ends: std::collections::BTreeSet<i64> =
        held.values().flatten().map(|(at, _)| *at).collect();
    let in_gap: Vec<i64> = ends
        .iter()
        .copied()
        .filter(|at| *at > before.as_second() && *at <= restarted.as_second() - 120)
        .collect();
    assert!(!in_gap.is_empty());
    assert!(
        in_gap[0] >= restarted.as_second() - 11 * 60,
        "only the newest max_gap of the gap is pushed: {} is {} s before the restart",
        in_gap[0],
        restarted.as_second() - in_gap[0]
    );
}

impl World {
    /// The minute report's cursor as the state file holds it.
    fn exporter_cursor(&self, report: &str) -> Timestamp {
        let text =
            std::fs::read_to_string(self.dir.path().join("state/remote_write/prom.json")).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        file["reports"][report].as_str().unwrap().parse().unwrap()
    }
}
