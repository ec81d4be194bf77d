//! Failures that last, logged without repeating themselves: a failure is
//! logged when it starts, then at most once every [`REPEAT_EVERY`] with how
//! many failed since, and once when it ends ("up again after N failures
//! over T"). The counters still count every failure; only the log is spared.
//!
//! Times are those of the shared clock, given by the caller, so a warped
//! test world keeps the same proportions.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// Longest silence of a failure that lasts.
pub const REPEAT_EVERY: SignedDuration = SignedDuration::from_mins(5);

/// One subject's run of failures (a report, an account's credentials).
#[derive(Debug, Clone, Copy)]
struct Streak {
    /// When the first failure of the run happened.
    since: Timestamp,
    /// Failures in the run.
    failures: u64,
    /// When the run was last logged.
    logged_at: Timestamp,
    /// Failures since that line.
    unlogged: u64,
}

/// What to log for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// The first failure of a run: log it.
    Started,
    /// The run goes on and the last line is old: log it with these figures.
    StillFailing {
        /// Failures since the last line, this one included.
        since_last_line: u64,
        /// How long the run has lasted.
        failing_for: SignedDuration,
    },
    /// Logged recently: say nothing above DEBUG.
    Quiet,
}

/// The end of a run of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub failures: u64,
    /// From the first failure to the success.
    pub over: SignedDuration,
}

/// Every subject's current run of failures.
#[derive(Debug, Default)]
pub struct Streaks {
    runs: Mutex<HashMap<String, Streak>>,
}

impl Streaks {
    /// `subject` failed at `now`: what to log.
    pub fn failed(&self, subject: &str, now: Timestamp) -> Say {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(run) = runs.get_mut(subject) else {
            runs.insert(
                subject.to_owned(),
                Streak {
                    since: now,
                    failures: 1,
                    logged_at: now,
                    unlogged: 0,
                },
            );
            return Say::Started;
        };
        run.failures += 1;
        run.unlogged += 1;
        let silent_for = now.duration_since(run.logged_at);
        // A clock that went back counts as time passed: better one line
        // too many than a silence as long as the step.
        if silent_for >= REPEAT_EVERY || silent_for.is_negative() {
            let say = Say::StillFailing {
                since_last_line: run.unlogged,
                failing_for: now.duration_since(run.since),
            };
            run.logged_at = now;
            run.unlogged = 0;
            say
        } else {
            Say::Quiet
        }
    }

    /// `subject` succeeded at `now`: the run it ends, if it was failing.
    pub fn succeeded(&self, subject: &str, now: Timestamp) -> Option<Recovered> {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.remove(subject).map(|run| Recovered {
            failures: run.failures,
            over: now.duration_since(run.since),
        })
    }

    /// `subject` is gone (a report removed): its run with it.
    pub fn forget(&self, subject: &str) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.remove(subject);
    }
}

/// A duration for a log line, to the second (`1h 2m 5s`).
pub fn human(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0) as u64;
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_logged_at_its_start_every_five_minutes_and_at_its_end() {
        let streaks = Streaks::default();
        let t0: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        assert_eq!(streaks.failed("r", at(0)), Say::Started);
        // A poll every 30 s for an hour: 120 failures.
        let mut lines = 1;
        for i in 1..120 {
            match streaks.failed("r", at(30 * i)) {
                Say::Quiet => {}
                Say::StillFailing {
                    since_last_line, ..
                } => {
                    assert_eq!(since_last_line, 10, "ten polls of 30 s in five minutes");
                    lines += 1;
                }
                Say::Started => panic!("a run starts once"),
            }
        }
        assert_eq!(lines, 12, "one line every five minutes of an hour");
        assert_eq!(
            streaks.succeeded("r", at(3600)),
            Some(Recovered {
                failures: 120,
                over: SignedDuration::from_secs(3600)
            })
        );
        assert_eq!(streaks.succeeded("r", at(3630)), None, "no run, no line");
        assert_eq!(streaks.failed("r", at(3660)), Say::Started, "a new run");
        assert_eq!(
            streaks.failed("other", at(3660)),
            Say::Started,
            "each subject its own"
        );
    }

    #[test]
    fn a_clock_that_went_back_does_not_silence_a_failure_for_the_length_of_the_step() {
        let streaks = Streaks::default();
        let t0: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        streaks.failed("r", t0);
        assert!(matches!(
            streaks.failed("r", t0 - SignedDuration::from_hours(2)),
            Say::StillFailing { .. }
        ));
    }
}
