//! The push against a real store: Debian's Prometheus 2.42 with its
//! remote-write receiver and an out-of-order window, read back raw through
//! its API. The world runs on a warped clock, hours behind the wall clock
//! so that every stamp is in the store's past.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::faulty_store as faulty;
use cmu_exporter::simulator::{Endpoint, Fault, SimulatorConfig, Target};
use jiff::Timestamp;

/// Simulated seconds per real second.
const FACTOR: f64 = 240.0;

async fn wait_ready(prometheus: &str) {
    StoreKind::Prometheus.wait_ready(prometheus).await;
}

/// Every raw sample of `selector` the store holds: per series (its name
/// and labels), its (Unix second, value) pairs.
async fn stored(prometheus: &str, selector: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    stored_over(prometheus, selector, "2d").await
}

/// Like [`stored`], over the last `range` (a PromQL duration).
async fn stored_over(
    prometheus: &str,
    selector: &str,
    range: &str,
) -> BTreeMap<String, Vec<(i64, f64)>> {
    // VictoriaMetrics makes what it was just given searchable on a flush
    // (Prometheus has no such endpoint and answers 404).
    let _ = http()
        .get(format!("{prometheus}/internal/force_flush"))
        .send()
        .await;
    let result = query(prometheus, &format!("{selector}[{range}]")).await;
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
    /// The store's base URL (Prometheus or VictoriaMetrics).
    prometheus: String,
    port: u16,
    kind: StoreKind,
    /// The clock's value for a spawned exporter's `CLOCK_ENV`.
    clock_env: String,
}

const REPORTS: &str = "  - {name: minute, path: tenant/year/month/day/hour/minute, interval: 1m}\n  - {name: hourly, path: tenant/year/month/day/hour, interval: 10m}\n";

async fn world(remote: &str) -> (World, Daemon) {
    world_in(StoreKind::Prometheus, remote).await
}

/// The world with a store of `kind`.
async fn world_in(kind: StoreKind, remote: &str) -> (World, Daemon) {
    let since = Timestamp::now();
    let start = since - jiff::SignedDuration::from_hours(12);
    let clock = Clock::warped_since(start, FACTOR, since);
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
    let daemon = kind.start(&store_dir, port);
    kind.wait_ready(&prometheus).await;
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
            kind,
            clock_env: cmu_exporter::faults::clock_env(start, FACTOR, since),
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
        self.kind.start(&self.dir.path().join("store"), self.port)
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
    assert_held_complete(world, held, report, path, up_to).await
}

/// [`assert_complete`] of the series `held` (as [`stored`] gives them).
async fn assert_held_complete(
    world: &World,
    held: BTreeMap<String, Vec<(i64, f64)>>,
    report: &str,
    path: &str,
    up_to: Timestamp,
) -> Vec<i64> {
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

/// [`assert_complete`] of the minute report, without a hole.
async fn assert_minutes_whole(world: &World, up_to: Timestamp) -> Vec<i64> {
    let path = "tenant/year/month/day/hour/minute";
    let minutes = assert_complete(world, "minute", path, up_to).await;
    assert_no_hole("minute", &minutes, 60);
    minutes
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
    live_push(StoreKind::Prometheus).await;
}

#[tokio::test]
async fn live_push_into_victoria_metrics_stores_every_complete_bucket_once_at_its_end() {
    live_push(StoreKind::VictoriaMetrics).await;
}

async fn live_push(kind: StoreKind) {
    let (world, _store) = world_in(kind, "").await;
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
    let minutes = assert_minutes_whole(&world, cursors["minute"]).await;
    assert!(minutes.len() >= 60, "{} minutes", minutes.len());
    let hours = assert_complete(
        &world,
        "hourly",
        "tenant/year/month/day/hour",
        cursors["hourly"],
    )
    .await;
    // The first push holds the newest hour Adobe had computed past; at least
    // one more follows once it computes past the next hour's end.
    assert!(hours.len() >= 2, "{hours:?}");
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
    outages(StoreKind::Prometheus).await;
}

#[tokio::test]
async fn no_bucket_is_lost_in_victoria_metrics_when_the_exporter_adobe_or_it_is_down() {
    outages(StoreKind::VictoriaMetrics).await;
}

async fn outages(kind: StoreKind) {
    let (world, store_daemon) = world_in(kind, "").await;
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

    // The store down for about ten simulated minutes: Prometheus killed
    // (its write-ahead log keeps what it took), VictoriaMetrics stopped
    // (killed, it loses the samples of its last seconds it acknowledged:
    // docs/push-and-history.md).
    match kind {
        StoreKind::Prometheus => drop(store_daemon),
        StoreKind::VictoriaMetrics => store_daemon.terminate(),
    }
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    let _store = world.start_store();
    kind.wait_ready(&world.prometheus).await;
    world.minute_pushed(&exporter, -1).await;
    let (metrics, cursors) = stop(exporter).await;

    let minutes = assert_minutes_whole(&world, cursors["minute"]).await;
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

#[tokio::test]
async fn an_exporter_clock_ahead_of_adobe_pushes_no_bucket_early_and_leaves_no_hole() {
    let (world, _store) = world("").await;
    // Ours only: Adobe's clock (the simulator's, and its `Date`) stays right.
    let ours = world.clock.detached();
    let exporter = exporter_with_clock(&world.config, ours.clone()).await;
    world.minute_pushed(&exporter, -1).await;
    ours.jump(jiff::SignedDuration::from_mins(30));
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    ours.jump(jiff::SignedDuration::from_mins(-30));
    world.minute_pushed(&exporter, -1).await;
    let (_, cursors) = stop(exporter).await;
    assert!(
        cursors["minute"] <= world.clock.now(),
        "the cursor {} is past Adobe's time {}",
        cursors["minute"],
        world.clock.now()
    );
    let minutes = assert_minutes_whole(&world, cursors["minute"]).await;
    assert!(minutes.len() >= 10, "{} minutes", minutes.len());
}

/// Every cursor the state file holds, checked whole: it parses and each
/// value is a time. None before the first push.
fn cursor_file(world: &World, kill: usize) -> Option<BTreeMap<String, Timestamp>> {
    let path = world.dir.path().join("state/remote_write/prom.json");
    let bytes = std::fs::read(&path).ok()?;
    let file: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("kill {kill}: the cursor file does not parse: {e}"));
    Some(
        file["reports"]
            .as_object()
            .unwrap_or_else(|| panic!("kill {kill}: the cursor file holds no reports"))
            .iter()
            .map(|(report, at)| {
                let at = at.as_str().and_then(|t| t.parse().ok());
                (
                    report.clone(),
                    at.unwrap_or_else(|| panic!("kill {kill}: {report}'s cursor is no time")),
                )
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_pushing_loses_no_bucket_and_leaves_readable_state() {
    use crate::crash::{KILLS, kill_during_writes, killed_mid_write, pause};
    use cmu_exporter::faults::CLOCK_ENV;
    // Each start listens on another ephemeral port: one `instance` for all.
    let (world, _store) = world("    external_labels: {instance: killed}\n").await;
    let config = world.config.display().to_string();
    let args = [
        "--config.file",
        config.as_str(),
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "error",
    ];
    let envs = [(CLOCK_ENV, world.clock_env.as_str())];
    let state_dir = world.dir.path().join("state");
    let mut last: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut mid_write = 0;
    for i in 0..KILLS {
        // From the first state write (a renewal or the first cursor): the
        // pushes and cursor writes of the next few simulated minutes.
        kill_during_writes(&args, &envs, pause(i, 250)).await;
        if i % 20 == 10 {
            // Down for ten simulated minutes: the next start fills a gap.
            tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
        }
        mid_write += usize::from(killed_mid_write(&state_dir))
            + usize::from(killed_mid_write(&state_dir.join("remote_write")));
        if let Ok(bytes) = std::fs::read(state_dir.join("credentials.json")) {
            assert!(
                cmu_exporter::credentials::parse_state(&bytes).is_some(),
                "kill {i}: the credentials state does not parse"
            );
        }
        if let Some(cursors) = cursor_file(&world, i) {
            for (report, at) in &last {
                assert!(
                    cursors.get(report).is_some_and(|now| now >= at),
                    "kill {i}: {report}'s cursor went back from {at}"
                );
            }
            last = cursors;
        }
    }
    println!("{KILLS} kills while pushing: {mid_write} in the middle of a state write");
    assert!(
        mid_write >= KILLS / 20,
        "few kills landed in a write: widen the window"
    );
    assert!(last.contains_key("minute"), "the killed exporters pushed");

    // Left alone, the next start fills what the kills interrupted.
    let exporter = spawn_binary(&world.config, &[], &envs);
    let cursor =
        "cmu_exporter_remote_write_cursor_timestamp_seconds{remote=\"prom\",report=\"minute\"}";
    let now = world.clock.now().as_second() / 60 * 60;
    wait_for(
        "the minute report pushed to now",
        Duration::from_secs(90),
        || async {
            metric_value(&exporter.base, cursor)
                .await
                .filter(|at| *at as i64 >= now)
        },
    )
    .await;
    let (status, log) = exporter.stop();
    assert!(status.success(), "{log}");
    let cursors = cursor_file(&world, KILLS).unwrap();
    let minutes = assert_minutes_whole(&world, cursors["minute"]).await;
    let simulated = minutes.last().unwrap() - minutes.first().unwrap();
    println!(
        "{} minute buckets over {simulated} s simulated",
        minutes.len()
    );
    assert!(minutes.len() >= 60, "{} minutes", minutes.len());
    assert_complete(
        &world,
        "hourly",
        "tenant/year/month/day/hour",
        cursors["hourly"],
    )
    .await;
}

impl World {
    /// The minute report's cursor as the state file holds it.
    fn exporter_cursor(&self, report: &str) -> Timestamp {
        cursor_file(self, 0).expect("a cursor file")[report]
    }
}

/// A warped clock hours behind the wall clock, and a simulator on it with a
/// config polling one minute report.
async fn minute_world() -> (
    Clock,
    (
        cmu_exporter::simulator::Simulator,
        tempfile::TempDir,
        PathBuf,
    ),
) {
    let clock = Clock::warped(
        Timestamp::now() - jiff::SignedDuration::from_hours(8),
        FACTOR,
    );
    let world = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..unthrottled(SimulatorConfig::default())
        },
        "  - {name: minute, path: tenant/year/month/day/hour/minute, interval: 1m}\n",
    )
    .await;
    (clock, world)
}

fn counter(metrics: &str, name: &str, label: (&str, &str)) -> f64 {
    parse_exposition(metrics)
        .iter()
        .filter(|s| s.name == name && s.labels.get(label.0).map(String::as_str) == Some(label.1))
        .map(|s| s.value)
        .sum()
}

#[tokio::test]
async fn a_faulty_store_loses_only_the_samples_it_refuses_alone() {
    use faulty::Reply;
    let store = faulty::start().await.unwrap();
    // One tenant's series are refused: they share requests with the others'.
    store.state.lock().unwrap().poison = Some(b"ACME-Kids".to_vec());
    let (clock, (sim, dir, config)) = minute_world().await;
    let yaml = std::fs::read_to_string(&config).unwrap();
    let password = dir.path().join("store-password");
    std::fs::write(&password, "s3cret-Pa55\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "{yaml}remote_write:\n  - url: {}\n    name: faulty\n    remote_timeout: 2s\n    self_metrics_interval: 0s\n    basic_auth: {{username: tenant, password_file: {}}}\n",
            store.url,
            password.display()
        ),
    )
    .unwrap();
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    let pushed = |report: &'static str, minutes: i64| {
        let at = Timestamp::from_second(clock.now().as_second() / 60 * 60 + minutes * 60).unwrap();
        let exporter = &exporter;
        async move {
            wait_for(
                &format!("{report} pushed to {at}"),
                Duration::from_secs(90),
                || async {
                    let statuses = exporter.pusher.statuses();
                    (statuses[0].1.cursors.get(report).copied()? >= at).then_some(())
                },
            )
            .await
        }
    };
    pushed("minute", 3).await;
    // Then the store's troubles, one request each: too large, busy (with
    // Retry-After), failing, slower than remote_timeout.
    store.state.lock().unwrap().script.extend([
        Reply::Status {
            code: 413,
            body: "request entity too large",
            retry_after: None,
        },
        Reply::Status {
            code: 429,
            body: "slow down",
            retry_after: Some(1),
        },
        Reply::Status {
            code: 500,
            body: "internal error",
            retry_after: None,
        },
        Reply::Status {
            code: 503,
            body: "unavailable",
            retry_after: None,
        },
        Reply::Slow(Duration::from_secs(4)),
        Reply::Status {
            code: 401,
            body: "unauthorized",
            retry_after: None,
        },
    ]);
    // /metrics answers while the store is slow, and the polls go on.
    let (status, _) = get_text(&format!("{}/metrics", exporter.url())).await;
    assert_eq!(status, 200);
    pushed("minute", 5).await;
    let (_, metrics) = get_text(&format!("{}/metrics", exporter.url())).await;
    let (_, landing) = get_text(&exporter.url()).await;
    let statuses = exporter.pusher.statuses();
    exporter.stop().await;
    drop(dir);
    drop(sim);
    for (what, text) in [("/metrics", &metrics), ("the landing page", &landing)] {
        assert!(
            !text.contains("s3cret"),
            "{what} shows the store's password"
        );
    }
    assert!(
        landing.contains("faulty"),
        "the landing page shows the remote"
    );

    let state = store.state.lock().unwrap();
    assert_eq!(
        state.bad_headers, 0,
        "every request had the remote-write headers"
    );
    // base64("tenant:s3cret-Pa55"), the password file's trailing newline trimmed.
    assert_eq!(
        state.authorizations.iter().collect::<Vec<_>>(),
        ["Basic dGVuYW50OnMzY3JldC1QYTU1"]
    );
    assert!(state.script.is_empty(), "every scripted trouble was met");
    // The poisoned tenant's series were refused alone and counted; the
    // other tenant's, sent in the same requests, were stored all along.
    let rejected = counter(
        &metrics,
        "cmu_exporter_remote_write_rejected_samples_total",
        ("reason", "out_of_bounds"),
    );
    assert!(rejected > 0.0, "{metrics}");
    let has = |series: &[u8], what: &[u8]| series.windows(what.len()).any(|w| w == what);
    assert!(state.stored.keys().all(|s| !has(s, b"ACME-Kids")));
    // A series ends with its sample's stamp: six varint bytes of milliseconds.
    let stamps: std::collections::BTreeSet<i64> = state
        .stored
        .keys()
        .filter(|s| has(s, b"active_users") && has(s, b"ACME"))
        .map(|s| {
            s[s.len() - 6..]
                .iter()
                .rev()
                .fold(0i64, |ms, b| ms << 7 | i64::from(b & 0x7f))
        })
        .collect();
    assert!(
        stamps.len() >= 6,
        "{} buckets of the good tenant",
        stamps.len()
    );
    let stamps: Vec<i64> = stamps.into_iter().collect();
    assert_no_hole(
        "minute",
        &stamps.iter().map(|ms| ms / 1000).collect::<Vec<_>>(),
        60,
    );
    let refusing = counter(
        &metrics,
        "cmu_exporter_remote_write_failures_total",
        ("kind", "refusing"),
    );
    assert!(
        refusing >= 1.0,
        "a 401 holds the push until it is taken: {refusing}"
    );
    assert!(
        statuses[0].1.cursors.contains_key("minute"),
        "the cursor moved past what was refused"
    );
    let transient = counter(
        &metrics,
        "cmu_exporter_remote_write_failures_total",
        ("kind", "transient"),
    );
    assert!(
        transient >= 4.0,
        "429, 500, 503 and the timeout are retried: {transient}"
    );
    assert!(
        counter(
            &metrics,
            "cmu_exporter_remote_write_queue_length",
            ("remote", "faulty")
        ) <= 4.0
    );
    assert!(
        state.largest_request < 4 << 20,
        "requests stay small: {}",
        state.largest_request
    );
}

#[tokio::test]
async fn a_reload_starts_and_stops_pushing() {
    let store = faulty::start().await.unwrap();
    let (clock, (sim, _dir, config)) = minute_world().await;
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    wait_for_cmu_successes(&sim, 1).await;
    assert!(exporter.pusher.statuses().is_empty());
    let yaml = std::fs::read_to_string(&config).unwrap();
    add_remote_write(&config, &store.url, "name: added");
    let (status, said) = post(&format!("{}/-/reload", exporter.url())).await;
    assert_eq!(
        (status, said.contains("remote_write updated")),
        (200, true),
        "{said}"
    );
    wait_for("pushes after the reload", WAIT, || async {
        (!store.state.lock().unwrap().stored.is_empty()).then_some(())
    })
    .await;
    // The self-metrics too, every (simulated) minute by default, with the
    // labels a scrape would give.
    wait_for("the self-metrics pushed", WAIT, || async {
        let state = store.state.lock().unwrap();
        let has = |s: &[u8], what: &[u8]| s.windows(what.len()).any(|w| w == what);
        state
            .stored
            .keys()
            .any(|s| {
                has(s, b"cmu_exporter_report_up") && has(s, b"cmu-exporter") && has(s, b"instance")
            })
            .then_some(())
    })
    .await;
    std::fs::write(&config, yaml).unwrap();
    let (status, said) = post(&format!("{}/-/reload", exporter.url())).await;
    assert_eq!(status, 200, "{said}");
    assert!(
        exporter.pusher.statuses().is_empty(),
        "the remote is stopped"
    );
    let (_, metrics) = get_text(&format!("{}/metrics", exporter.url())).await;
    assert!(
        !metrics.contains("remote=\"added\""),
        "its self-metrics are gone"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn backfill_into_the_store_holds_what_the_file_and_promtool_give() {
    use cmu_exporter::backfill::{self, Options, Output};
    let (sim, dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n  - name: hourly\n    path: tenant/year/month/day/hour\n    limit: 200\n",
    )
    .await;
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let labels = vec![
        ("instance".to_owned(), "host:9063".to_owned()),
        ("job".to_owned(), "cmu-exporter".to_owned()),
    ];
    let options = |output: Output| Options {
        from: today - jiff::ToSpan::days(31),
        to: Some(today - jiff::ToSpan::days(1)),
        reports: Vec::new(),
        output,
        max_requests: None,
        max_limit: 100_000,
        labels: labels.clone(),
        fingerprint: "equivalence".to_owned(),
    };
    let run = |output: Output| {
        let config = cmu_exporter::config::Config::load(&config).unwrap();
        let options = options(output);
        async move {
            backfill::run(config, options, Clock::wall(), |_| {})
                .await
                .unwrap()
        }
    };

    // The file, imported by promtool into a data directory Prometheus serves.
    let file = dir.path().join("history.om");
    let by_file = run(Output::File(file.clone())).await;
    let imported = dir.path().join("imported");
    std::fs::create_dir_all(&imported).unwrap();
    let ran = std::process::Command::new(promtool())
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(imported.join("data"))
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let file_port = free_port();
    let _file_store = remote_write_store(&imported, file_port);
    let file_store = format!("http://127.0.0.1:{file_port}");

    // The same range pushed straight into another one.
    let pushed_dir = dir.path().join("pushed");
    std::fs::create_dir_all(&pushed_dir).unwrap();
    let push_port = free_port();
    let _push_store = remote_write_store(&pushed_dir, push_port);
    let push_store = format!("http://127.0.0.1:{push_port}");
    wait_ready(&push_store).await;
    wait_ready(&file_store).await;
    let calls_before = sim.count(Endpoint::Cmu);
    let remote =
        cmu_exporter::config::RemoteWriteConfig::for_url(&format!("{push_store}/api/v1/write"))
            .unwrap();
    let by_push = run(Output::Remote(Box::new(remote))).await;
    let pushed = by_push.pushed.clone().unwrap();
    assert!(pushed.rejected.is_empty(), "{pushed:?}");
    assert_eq!(
        pushed.accepted, by_file.samples,
        "every sample of the file was taken"
    );
    assert_eq!(by_push.calls, by_file.calls, "the same Adobe calls");
    assert!(sim.count(Endpoint::Cmu) - calls_before <= by_file.calls as usize + 1);

    // And into VictoriaMetrics.
    let vm_dir = dir.path().join("victoria-metrics");
    std::fs::create_dir_all(&vm_dir).unwrap();
    let vm_port = free_port();
    let _vm = StoreKind::VictoriaMetrics.start(&vm_dir, vm_port);
    let vm = format!("http://127.0.0.1:{vm_port}");
    StoreKind::VictoriaMetrics.wait_ready(&vm).await;
    let remote =
        cmu_exporter::config::RemoteWriteConfig::for_url(&format!("{vm}/api/v1/write")).unwrap();
    let by_vm = run(Output::Remote(Box::new(remote))).await;
    let into_vm = by_vm.pushed.clone().unwrap();
    assert!(into_vm.rejected.is_empty(), "{into_vm:?}");
    assert_eq!(into_vm.accepted, by_file.samples);

    let selector = "{job=\"cmu-exporter\"}";
    let held_by_file = stored_over(&file_store, selector, "40d").await;
    let held_by_push = stored_over(&push_store, selector, "40d").await;
    assert!(held_by_file.len() > 10, "{} series", held_by_file.len());
    assert_eq!(
        held_by_push, held_by_file,
        "the same samples, whichever the path"
    );
    let held_by_vm = stored_over(&vm, selector, "40d").await;
    let differing: Vec<String> = held_by_file
        .iter()
        .filter(|(series, samples)| held_by_vm.get(*series) != Some(*samples))
        .map(|(series, samples)| {
            let vm = held_by_vm.get(series).cloned().unwrap_or_default();
            let only = |a: &[(i64, f64)], b: &[(i64, f64)]| -> Vec<(i64, f64)> {
                a.iter().filter(|x| !b.contains(x)).copied().take(3).collect()
            };
            format!(
                "{series}: {} samples in Prometheus, {} in VictoriaMetrics; only in Prometheus {:?}, only in VictoriaMetrics {:?}",
                samples.len(),
                vm.len(),
                only(samples, &vm),
                only(&vm, samples)
            )
        })
        .collect();
    assert!(
        differing.is_empty() && held_by_vm.len() == held_by_file.len(),
        "VictoriaMetrics holds the same samples as Prometheus ({} and {} series):\n{}",
        held_by_vm.len(),
        held_by_file.len(),
        differing.join("\n")
    );
}

#[tokio::test]
async fn backfill_names_an_unknown_remote_and_refuses_two_destinations() {
    let (_sim, _dir, config) =
        simulator_and_config("  - {name: daily, path: tenant/year/month/day}\n").await;
    let config = config.display().to_string();
    let backfill = |destination: &[&str]| {
        let mut args = vec!["backfill", "--config.file", &config, "--from", "2026-11-01"];
        args.extend_from_slice(destination);
        run_binary(&args)
    };
    let ran = backfill(&["--remote-write", "nosuch"]);
    assert_ne!(ran.code, Some(0));
    assert!(
        ran.stderr
            .contains("--remote-write nosuch: no remote of that name"),
        "{}",
        ran.stderr
    );
    let ran = backfill(&["--remote-write", "x", "--output", "f.om"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    let ran = run_binary(&["backfill", "--config.file", &config, "--from", "2026-11-01"]);
    assert_eq!(
        ran.code,
        Some(2),
        "one destination is required: {}",
        ran.stderr
    );
}

/// A first push with no cursor starts from the answer's newest complete
/// buckets quietly: a daily report's reach back past max_gap (24 h), which
/// is no gap to fill and nothing left out.
#[tokio::test]
async fn a_first_push_of_a_daily_report_leaves_nothing_out_and_warns_of_nothing() {
    let store = faulty::start().await.unwrap();
    let clock = Clock::warped(
        Timestamp::now() - jiff::SignedDuration::from_hours(30),
        FACTOR,
    );
    let (_sim, _dir, config) = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..unthrottled(SimulatorConfig::default())
        },
        "  - {name: daily, path: tenant/year/month/day}\n",
    )
    .await;
    add_remote_write(
        &config,
        &store.url,
        "name: store\nself_metrics_interval: 0s",
    );
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    wait_for(
        "the first push of the daily report",
        Duration::from_secs(60),
        || async {
            exporter.pusher.statuses()[0]
                .1
                .cursors
                .get("daily")
                .copied()
        },
    )
    .await;
    let (_, metrics) = get_text(&format!("{}/metrics", exporter.url())).await;
    exporter.stop().await;
    let left_out = counter(
        &metrics,
        "cmu_exporter_remote_write_buckets_left_out_total",
        ("report", "daily"),
    );
    assert_eq!(left_out, 0.0, "a first push leaves nothing out");
    let held = store.state.lock().unwrap().samples();
    let days: std::collections::BTreeSet<i64> = held
        .iter()
        .filter(|(labels, _)| labels["__name__"] == "cmu_active_users")
        .flat_map(|(_, samples)| samples.keys().copied())
        .collect();
    assert!(!days.is_empty(), "the answer's complete days are pushed");
}

/// A store that takes a request in part (Mimir's 400 and Thanos Receive's
/// 409 store the rest of it) is counted request by request and never holds
/// the push: nothing is sent again, and the buckets after it arrive as
/// before. One tenant's series are refused as too old all along.
#[tokio::test]
async fn a_request_taken_in_part_is_counted_and_never_holds_the_push() {
    for dialect in [faulty::Dialect::Mimir, faulty::Dialect::Thanos] {
        let store = faulty::start().await.unwrap();
        {
            let mut state = store.state.lock().unwrap();
            state.dialect = dialect;
            state.in_order = true;
            state.poison = Some(b"ACME-Kids".to_vec());
        }
        let (clock, (sim, _dir, config)) = minute_world().await;
        add_remote_write(
            &config,
            &store.url,
            "name: store\nself_metrics_interval: 0s",
        );
        let exporter = exporter_with_clock(&config, clock.clone()).await;
        let first = clock.now();
        // Five minutes, each pushed in its own request after its poll.
        let until = Timestamp::from_second(first.as_second() / 60 * 60 + 5 * 60).unwrap();
        wait_for(
            &format!("{dialect:?}: pushed to {until}"),
            Duration::from_secs(90),
            || async {
                let statuses = exporter.pusher.statuses();
                (statuses[0].1.cursors.get("minute").copied()? >= until).then_some(())
            },
        )
        .await;
        let (_, metrics) = get_text(&format!("{}/metrics", exporter.url())).await;
        exporter.stop().await;
        drop(sim);
        let state = store.state.lock().unwrap();
        let in_part = counter(
            &metrics,
            "cmu_exporter_remote_write_requests_taken_in_part_total",
            ("reason", "out_of_bounds"),
        );
        assert!(
            state.taken_in_part >= 5,
            "{dialect:?}: {}",
            state.taken_in_part
        );
        assert_eq!(
            in_part, state.taken_in_part as f64,
            "{dialect:?}: every request taken in part is counted, as the store answered it"
        );
        let rejected: f64 = parse_exposition(&metrics)
            .iter()
            .filter(|s| s.name == "cmu_exporter_remote_write_rejected_samples_total")
            .map(|s| s.value)
            .sum();
        assert_eq!(
            rejected, 0.0,
            "{dialect:?}: nothing split and refused alone"
        );
        // Nothing was sent twice: halves sent again would have met the
        // store's own samples as out of order.
        assert!(
            state.stored.values().all(|&n| n == 1),
            "{dialect:?}: a series came twice"
        );
        assert!(
            state.refused.keys().all(|r| *r == "out of bounds"),
            "{dialect:?}: {:?}",
            state.refused
        );
        // The good tenant's minutes, every one once, no hole.
        let held = state.samples();
        let mut minutes: Vec<i64> = held
            .iter()
            .filter(|(l, _)| l["__name__"] == "cmu_active_users" && l["tenant"] == "ACME")
            .flat_map(|(_, samples)| samples.keys().map(|ms| ms / 1000))
            .collect();
        minutes.sort();
        assert!(minutes.len() >= 5, "{dialect:?}: {minutes:?}");
        assert_no_hole("minute", &minutes, 60);
        assert!(
            held.keys()
                .all(|l| l.get("tenant").map(String::as_str) != Some("ACME-Kids")),
            "{dialect:?}: the refused tenant is not stored"
        );
    }
}

/// What the tests' own store holds of `report`'s active users, as
/// [`stored`] gives a real store's.
fn faulty_stored(store: &faulty::Store, report: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    store
        .state
        .lock()
        .unwrap()
        .samples()
        .into_iter()
        .filter(|(labels, _)| {
            labels["__name__"] == "cmu_active_users"
                && labels.get("report").map(String::as_str) == Some(report)
                && labels.get("job").map(String::as_str) == Some("cmu-exporter")
        })
        .map(|(labels, samples)| {
            let name = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let samples = samples.into_iter().map(|(ms, v)| (ms / 1000, v)).collect();
            (name, samples)
        })
        .collect()
}

/// Where the two replicas push.
enum ReplicaStore {
    Real,
    /// The tests' store answering as Thanos Receive (409), samples in order only.
    Thanos(faulty::Store),
}

/// Two replicas push the same series with the same labels, no coordinator
/// (docs/deployment.md, Two replicas): one is away for ten simulated
/// minutes and fills its gap on its return, over buckets the other pushed;
/// then the other stops for good. The store holds every bucket once with
/// Adobe's value, and neither replica counts a sample lost.
async fn two_replicas(kind: StoreKind, thanos: bool) {
    let (world, _daemon) = world_in(kind, "    external_labels: {instance: replicas}\n").await;
    let store = if thanos {
        let store = faulty::start().await.unwrap();
        {
            let mut state = store.state.lock().unwrap();
            state.dialect = faulty::Dialect::Thanos;
            state.in_order = true;
        }
        let yaml = std::fs::read_to_string(&world.config)
            .unwrap()
            .replace(&format!("{}/api/v1/write", world.prometheus), &store.url);
        std::fs::write(&world.config, yaml).unwrap();
        ReplicaStore::Thanos(store)
    } else {
        ReplicaStore::Real
    };
    // The second replica: its own state (credentials, cursors), the same labels.
    let second = world.dir.path().join("second.yaml");
    std::fs::write(
        &second,
        std::fs::read_to_string(&world.config).unwrap().replace(
            &format!("state_dir: {}\n", world.dir.path().join("state").display()),
            &format!(
                "state_dir: {}\n",
                world.dir.path().join("state-second").display()
            ),
        ),
    )
    .unwrap();
    let first = exporter_with_clock(&world.config, world.clock.clone()).await;
    let other = exporter_with_clock(&second, world.clock.clone()).await;
    world.minute_pushed(&first, 3).await;
    world.minute_pushed(&other, 0).await;
    // The second away for ten simulated minutes; back, it fills its gap.
    let (away, _) = stop(other).await;
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(600))).await;
    let other = exporter_with_clock(&second, world.clock.clone()).await;
    world.minute_pushed(&other, -1).await;
    // The first stops for good; the second pushes on alone.
    let (first_metrics, _) = stop(first).await;
    tokio::time::sleep(world.clock.real_duration(Duration::from_secs(300))).await;
    world.minute_pushed(&other, -1).await;
    let (other_metrics, cursors) = stop(other).await;

    let held = match &store {
        ReplicaStore::Real => {
            stored(
                &world.prometheus,
                "cmu_active_users{report=\"minute\",job=\"cmu-exporter\"}",
            )
            .await
        }
        ReplicaStore::Thanos(store) => faulty_stored(store, "minute"),
    };
    let minutes = assert_held_complete(
        &world,
        held,
        "minute",
        "tenant/year/month/day/hour/minute",
        cursors["minute"],
    )
    .await;
    assert_no_hole("minute", &minutes, 60);
    assert!(minutes.len() >= 15, "{} minutes", minutes.len());
    for (who, metrics) in [
        ("the first", &first_metrics),
        ("the second, before it was away", &away),
        ("the second", &other_metrics),
    ] {
        for lost in [
            "cmu_exporter_remote_write_rejected_samples_total",
            "cmu_exporter_remote_write_buckets_left_out_total",
        ] {
            let n: f64 = parse_exposition(metrics)
                .iter()
                .filter(|s| s.name == lost)
                .map(|s| s.value)
                .sum();
            assert_eq!(n, 0.0, "{kind:?}, thanos {thanos}: {who} counts {lost} {n}");
        }
    }
    if let ReplicaStore::Thanos(store) = &store {
        // The returning replica's gap fill met the other's buckets: 409s,
        // taken in part, not sent again, and the push went on.
        let in_part: f64 = parse_exposition(&other_metrics)
            .iter()
            .filter(|s| s.name == "cmu_exporter_remote_write_requests_taken_in_part_total")
            .map(|s| s.value)
            .sum();
        let state = store.state.lock().unwrap();
        assert!(state.taken_in_part > 0, "the store answered 409");
        assert!(in_part > 0.0, "the returning replica counted its 409s");
        assert!(
            state.refused.keys().all(|r| *r == "out of order sample"),
            "{:?}",
            state.refused
        );
    }
}

#[tokio::test]
async fn two_replicas_into_prometheus_leave_every_bucket_once_and_nothing_lost() {
    two_replicas(StoreKind::Prometheus, false).await;
}

#[tokio::test]
async fn two_replicas_into_victoria_metrics_leave_every_bucket_once_and_nothing_lost() {
    two_replicas(StoreKind::VictoriaMetrics, false).await;
}

#[tokio::test]
async fn two_replicas_into_a_store_answering_as_thanos_leave_every_bucket_once() {
    two_replicas(StoreKind::Prometheus, true).await;
}
