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

/// What one simulated day of polling cost in calls to Adobe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        )
    }
}

/// Runs the exporter against the simulator for one simulated day with
/// 2-hour tokens and an hourly CMU report and an hourly ESM report on the
/// same token, `factor` times faster than real time
/// (2160 makes the day last 40 s), and counts what it asked of Adobe.
pub async fn simulated_day(factor: f64) -> anyhow::Result<DayFigures> {
    use crate::clock::Clock;
    use crate::simulator::{Endpoint, SimulatorConfig};
    use jiff::{SignedDuration, Timestamp};
    let lifetime = std::time::Duration::from_secs(2 * 3600);
    let start: Timestamp = "2026-11-22T00:00:30Z".parse()?;
    let clock = Clock::warped(start, factor);
    let sim = Simulator::start(
        SimulatorConfig {
            clock: clock.clone(),
            token_lifetime: lifetime,
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let statement = dir.path().join("statement.jwt");
    write_private(&statement, sim.software_statement().as_bytes())?;
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\n  software_statement_file: {}\nstate_dir: {}\nreports:\n  - name: hourly\n    path: tenant/year/month/day/hour\n  - name: esm_hourly\n    api: esm\n    path: media-company/year/month/day/hour/proxy/mvpd\n    interval: 1h\n",
        sim.dcr_url(),
        sim.cmu_url(),
        sim.esm_url(),
        statement.display(),
        dir.path().join("state").display()
    );
    let options = crate::app::Options::loopback(clock.clone());
    let exporter =
        crate::app::start(Config::from_yaml(&yaml, "the simulated day")?, options).await?;
    clock
        .sleep_until(start + SignedDuration::from_hours(24) - SignedDuration::from_mins(1))
        .await;
    exporter.stop().await;
    let figures = DayFigures {
        registrations: sim.count(Endpoint::Register),
        token_calls: sim.count(Endpoint::Token),
        minimum_token_calls: (24 * 3600u64).div_ceil(lifetime.as_secs()) as usize,
        cmu_calls: sim.count_status(Endpoint::Cmu, 200),
        esm_calls: sim.count_status(Endpoint::Esm, 200),
        unauthorized: sim.count_status(Endpoint::Cmu, 401) + sim.count_status(Endpoint::Esm, 401),
    };
    sim.stop().await;
    Ok(figures)
}
