//! The demo's built-in configuration (`demo.yaml`, next to this file), used
//! by `cmu-exporter demo` and by the tests that prove the dashboards.

use crate::config::{Config, ConfigError};
use crate::simulator::Simulator;

/// The demo's built-in configuration for `sim`, with the statement already
/// written to `statement_file` and credentials kept in `state_dir`.
pub fn config(
    sim: &Simulator,
    statement_file: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<Config, ConfigError> {
    Config::from_yaml(
        &yaml(sim, statement_file, state_dir),
        "the built-in demo configuration",
    )
}

/// The text of the demo's configuration for `sim` (a file the tests reload).
pub fn yaml(
    sim: &Simulator,
    statement_file: &std::path::Path,
    state_dir: &std::path::Path,
) -> String {
    include_str!("demo.yaml")
        .replace("{dcr_url}", &sim.dcr_url())
        .replace("{cmu_url}", &sim.cmu_url())
        .replace("{esm_url}", &sim.esm_url())
        .replace("{statement_file}", &statement_file.display().to_string())
        .replace("{state_dir}", &state_dir.display().to_string())
}

/// Writes `bytes` to a new file only its owner can read.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// What one simulated day of polling cost in calls to Adobe, and how soon
/// after Adobe's computations the exporter fetched each new bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct DayFigures {
    pub registrations: usize,
    pub token_calls: usize,
    /// ⌈a day / token lifetime⌉: what a perfect client needs.
    pub minimum_token_calls: usize,
    /// Successful CMU calls of the hourly report (24 is the minimum).
    pub cmu_calls: usize,
    /// Successful ESM calls of the hourly ESM report, polled hourly too (24).
    pub esm_calls: usize,
    /// CMU and ESM answers 401 (a token that expired on the way).
    pub unauthorized: usize,
    /// Per CMU report (minute, hourly, daily), how its polls followed
    /// Adobe's computations.
    pub freshness: Vec<Freshness>,
}

/// How one report's polls followed Adobe's computations over the day.
#[derive(Debug, Clone, PartialEq)]
pub struct Freshness {
    pub report: &'static str,
    /// Calls while the exporter learnt when Adobe computes, and the periods.
    pub calls_learning: usize,
    pub periods_learning: f64,
    /// Calls after, and the periods (the minimum is one call a period).
    pub calls_after: usize,
    pub periods_after: f64,
    /// From each computation after learning to the poll that fetched its
    /// new bucket: the median and the worst, and of how many buckets.
    pub buckets: usize,
    pub median_lag: std::time::Duration,
    pub worst_lag: std::time::Duration,
}

impl std::fmt::Display for DayFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "simulated day, token lifetime 2h, hourly CMU and ESM reports: registrations {}, token calls {} (minimum {}), CMU calls {} (minimum 24), ESM calls {} (minimum 24), 401s {}",
            self.registrations,
            self.token_calls,
            self.minimum_token_calls,
            self.cmu_calls,
            self.esm_calls,
            self.unauthorized
        )?;
        for r in &self.freshness {
            write!(
                f,
                "\nfreshness {}: {} calls in {:.1} periods while learning, {} calls in {:.1} periods after; lag of {} buckets median {} s, worst {} s",
                r.report,
                r.calls_learning,
                r.periods_learning,
                r.calls_after,
                r.periods_after,
                r.buckets,
                r.median_lag.as_secs(),
                r.worst_lag.as_secs()
            )?;
        }
        Ok(())
    }
}

/// Runs the exporter against the simulator for one simulated day with
/// 2-hour tokens and an hourly CMU report and an hourly ESM report on the
/// same token, `factor` times faster than real time
/// (2160 makes the day last 40 s), and counts what it asked of Adobe in
/// the day. With `follow`, a minute and a daily CMU report poll beside them
/// and the run goes on six hours more, so that the daily report completes a
/// day once learnt; Adobe computes at phases drawn from a fixed seed.
pub async fn simulated_day(factor: f64, follow: bool) -> anyhow::Result<DayFigures> {
    use crate::clock::Clock;
    use crate::report::ReportPath;
    use crate::simulator::{Computations, Endpoint, SimulatorConfig};
    use jiff::{SignedDuration, Timestamp};
    let lifetime = std::time::Duration::from_secs(2 * 3600);
    let start: Timestamp = "2026-11-22T00:00:30Z".parse()?;
    let day_end = start + SignedDuration::from_hours(24) - SignedDuration::from_mins(1);
    let run_end = start + SignedDuration::from_hours(if follow { 30 } else { 24 });
    let clock = Clock::warped(start, factor);
    let computations = Computations::random(2026);
    let sim = Simulator::start(
        SimulatorConfig {
            clock: clock.clone(),
            token_lifetime: lifetime,
            computations,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let statement = dir.path().join("statement.jwt");
    write_private(&statement, sim.software_statement().as_bytes())?;
    // (name, path, Adobe's period in seconds, learning time in hours)
    let hourly = ("hourly", "tenant/year/month/day/hour", 3600, 8);
    let followed: Vec<(&'static str, &str, i64, i64)> = if follow {
        vec![
            ("minute", "tenant/year/month/day/hour/minute", 60, 1),
            hourly,
            ("daily", "tenant/year/month/day", 3 * 3600, 24),
        ]
    } else {
        vec![hourly]
    };
    let reports: String = followed
        .iter()
        .map(|(name, path, _, _)| format!("  - name: {name}\n    path: {path}\n"))
        .collect();
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\n  software_statement_file: {}\nstate_dir: {}\nreports:\n{reports}  - name: esm_hourly\n    api: esm\n    path: media-company/year/month/day/hour/proxy/mvpd\n    interval: 1h\n",
        sim.dcr_url(),
        sim.cmu_url(),
        sim.esm_url(),
        statement.display(),
        dir.path().join("state").display()
    );
    let options = crate::app::Options::loopback(clock.clone());
    let exporter =
        crate::app::start(Config::from_yaml(&yaml, "the simulated day")?, options).await?;
    clock.sleep_until(run_end).await;
    exporter.stop().await;
    let requests = sim.requests();
    let in_day = |endpoint: Endpoint, ok: bool| {
        requests
            .iter()
            .filter(|r| r.endpoint == endpoint && r.sim_time <= day_end)
            .filter(|r| !ok || r.status == 200)
            .count()
    };
    let polls_of = |path: &str| -> Vec<Timestamp> {
        let path = format!("/cmu/v2/{path}");
        requests
            .iter()
            .filter(|r| r.endpoint == Endpoint::Cmu && r.path == path && r.status == 200)
            .map(|r| r.sim_time)
            .collect()
    };
    let tz = jiff::tz::TimeZone::UTC;
    let mut freshness = Vec::new();
    for &(name, path, period, learning) in &followed {
        let polls = polls_of(path);
        let learnt = start + SignedDuration::from_hours(learning);
        let report_path = ReportPath::parse(path)?;
        let granularity = report_path.granularity();
        let span = granularity.span().unwrap_or_default();
        let mut lags = Vec::new();
        let mut bucket = granularity.floor(start.to_zoned(tz.clone()).datetime());
        while let Ok(end) = bucket.checked_add(span) {
            let computed = computations
                .first_after(&report_path, &tz, end)
                .to_zoned(tz.clone())?
                .timestamp();
            if computed > run_end {
                break;
            }
            if computed > learnt
                && let Some(fetched) = polls.iter().find(|t| **t >= computed)
            {
                lags.push(fetched.duration_since(computed).unsigned_abs());
            }
            bucket = end;
        }
        lags.sort();
        let count = |from: Timestamp, to: Timestamp| {
            polls.iter().filter(|t| **t >= from && **t < to).count()
        };
        let periods =
            |from: Timestamp, to: Timestamp| to.duration_since(from).as_secs_f64() / period as f64;
        freshness.push(Freshness {
            report: name,
            calls_learning: count(start, learnt),
            periods_learning: periods(start, learnt),
            calls_after: count(learnt, run_end),
            periods_after: periods(learnt, run_end),
            buckets: lags.len(),
            median_lag: lags.get(lags.len() / 2).copied().unwrap_or_default(),
            worst_lag: lags.last().copied().unwrap_or_default(),
        });
    }
    let hourly = format!("/cmu/v2/{}", hourly.1);
    let figures = DayFigures {
        registrations: in_day(Endpoint::Register, false),
        token_calls: in_day(Endpoint::Token, false),
        minimum_token_calls: (24 * 3600u64).div_ceil(lifetime.as_secs()) as usize,
        cmu_calls: requests
            .iter()
            .filter(|r| r.path == hourly && r.status == 200 && r.sim_time <= day_end)
            .count(),
        esm_calls: in_day(Endpoint::Esm, true),
        unauthorized: requests
            .iter()
            .filter(|r| r.status == 401 && r.sim_time <= day_end)
            .filter(|r| matches!(r.endpoint, Endpoint::Cmu | Endpoint::Esm))
            .count(),
        freshness,
    };
    sim.stop().await;
    Ok(figures)
}
