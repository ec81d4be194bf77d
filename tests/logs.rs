//! What the exporter logs over time, captured from the whole process: its
//! own test binary, since it installs the global log subscriber (in the
//! shared binary another test's subscriber could take the lines).

#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use cmu_exporter::clock::Clock;
use cmu_exporter::simulator::{Fault, SimulatorConfig, Target};
use common::*;
use jiff::Timestamp;

/// The log lines of the whole process.
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Captures INFO and above of the whole process, for good (a test
    /// binary of its own).
    pub fn install_global() -> Self {
        let log = Self::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .init();
        log
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines that contain every one of `words`.
    pub fn lines_with(&self, words: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A failure that lasts (Adobe down for half an hour, then its token
/// endpoint) is a WARN when it starts, one every five minutes with the
/// polls failed since, and an INFO when it ends; every failure is counted.
#[tokio::test(flavor = "current_thread")]
async fn a_lasting_failure_is_logged_at_its_start_every_few_minutes_and_at_its_end() {
    let log = CapturedLog::install_global();
    // 1 real second is 10 simulated minutes.
    let clock = Clock::warped(Timestamp::now(), 600.0);
    let (sim, _dir, config) = simulator_and_config_with(
        SimulatorConfig {
            clock: clock.clone(),
            ..SimulatorConfig::default()
        },
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1m\n",
    )
    .await;
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    let base = exporter.url();
    let polls = |result: &'static str| {
        let base = base.clone();
        async move {
            metric_value(
                &base,
                &format!("cmu_exporter_report_polls_total{{report=\"daily\",result=\"{result}\"}}"),
            )
            .await
            .unwrap_or(0.0)
        }
    };
    wait_for("a first poll", WAIT, || async {
        (polls("success").await >= 1.0).then_some(())
    })
    .await;
    let half_an_hour = |clock: Clock| async move {
        let start = clock.now();
        wait_for("half a simulated hour", 3 * WAIT, || async {
            (clock.now().duration_since(start).as_mins() >= 30).then_some(())
        })
        .await;
    };

    // Adobe's report API down for half an hour.
    sim.inject(Target::Cmu, Fault::Status(503), 100_000);
    half_an_hour(clock.clone()).await;
    sim.clear_faults();
    // A loaded machine (the suite runs tests side by side) may take a while.
    let failed = wait_for("the recovery", 3 * WAIT, || async {
        let failed = polls("failure").await;
        let up = log.lines_with(&["INFO", "report polled again after"]);
        (!up.is_empty()).then_some(failed)
    })
    .await;
    assert!(
        failed >= 20.0,
        "a failed poll a minute or so is counted: {failed}"
    );
    let started = log.lines_with(&["WARN", "poll failed", "report=\"daily\""]);
    let repeated = log.lines_with(&["WARN", "report still failing", "report=\"daily\""]);
    assert_eq!(started.len(), 1, "one line at the start:\n{}", log.text());
    assert!(
        (4..=7).contains(&repeated.len()),
        "a line every five minutes of half an hour:\n{}",
        log.text()
    );
    let up = log.lines_with(&[
        "INFO",
        "report polled again after",
        &format!("after {failed} failed polls"),
    ]);
    assert_eq!(
        up.len(),
        1,
        "one line at the end, with the count:\n{}",
        log.text()
    );

    // The token endpoint down for half an hour, on a token that expired.
    sim.inject(Target::Token, Fault::Status(503), 100_000);
    sim.expire_tokens();
    half_an_hour(clock.clone()).await;
    sim.clear_faults();
    wait_for("the token again", 3 * WAIT, || async {
        (!log
            .lines_with(&["INFO", "credentials work again after"])
            .is_empty())
        .then_some(())
    })
    .await;
    let started = log.lines_with(&["WARN", "could not obtain an access token"]);
    let repeated = log.lines_with(&["WARN", "still no access token"]);
    assert_eq!(started.len(), 1, "{}", log.text());
    assert!((4..=7).contains(&repeated.len()), "{}", log.text());
    exporter.stop().await;
}
