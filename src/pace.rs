//! When to poll a report: soon after each of Adobe's computations.
//!
//! CMU computes a report on a documented cadence (reference §7: each
//! minute, hour, 3 hours, 2 days, or once a day for the level reports), at
//! a phase into each period that nobody is told. Polling on a grid of our
//! own, counted from when the exporter started, reads each new bucket up
//! to a whole period late. [`Pace`] learns the phase from what the polls
//! see, and then polls once per period just after it.
//!
//! The phase is known to lie on an arc of the period (a circle: a phase
//! just before its end neighbours one just after its start), at first the
//! whole of it. Two polls less than a period apart tell whether Adobe
//! computed between them: the newest bucket, or its values, changed (its
//! digest). A change puts the phase on the arc the two polls span; no
//! change takes that arc out. While the arc is wider than a 64th of the
//! period (and 5 s), each period has a probe at its middle and a poll just after its
//! end: two calls a period, halving the arc each time (six or seven
//! periods: minutes for a minute report, hours for an hourly one, less than
//! a day for a daily one). Then one call a period, just after the arc's
//! end. Every 48th period a probe goes just before the arc: when it sees
//! the computation, the computation moved earlier, and the arc is learnt
//! again from what the probe showed (about 2% more calls). A poll a whole
//! period after the last that sees nothing means the computation moved
//! later: the arc is learnt again from that poll on.
//!
//! A report whose answers do not change (no activity) teaches nothing
//! certain: it costs at most two calls a period, relearning.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The widest arc that counts as learnt, as a share of the period...
const LEARNT: u64 = 64;

/// ...and at least this, in milliseconds: a poll's time is known only to
/// within its round trip, so a minute report's arc stops at a few seconds.
const LEARNT_FLOOR: u64 = 5000;

/// Every this many learnt periods, the arc is widened back.
const RECHECK: u64 = 48;

/// What one successful poll saw, to compare with the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The newest bucket's start (`None`: no time dimension or no row).
    pub newest: Option<DateTime>,
    /// A digest of the newest bucket's rows.
    pub digest: u64,
}

/// The phases `(start, start + len]`, in milliseconds into the period,
/// modulo the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arc {
    start: u64,
    len: u64,
}

impl Arc {
    /// The part of `self` on `other`, the longest if two.
    fn intersect(self, other: Arc, period: u64) -> Option<Arc> {
        let (b0, b1) = (self.start as i128, (self.start + self.len) as i128);
        let p = period as i128;
        [-1, 0, 1]
            .into_iter()
            .filter_map(|k| {
                let a0 = other.start as i128 + k * p;
                let (lo, hi) = (a0.max(b0), (a0 + other.len as i128).min(b1));
                (hi > lo).then_some((lo, hi))
            })
            .max_by_key(|(lo, hi)| hi - lo)
            .map(|(lo, hi)| Arc {
                start: lo.rem_euclid(p) as u64,
                len: (hi - lo) as u64,
            })
    }

    /// `self` without `other`, the longest part if two.
    fn subtract(self, other: Arc, period: u64) -> Option<Arc> {
        if self.len >= period {
            // The whole circle without an arc is the one arc around it.
            return (other.len < period).then(|| Arc {
                start: (other.start + other.len) % period,
                len: period - other.len,
            });
        }
        let p = period as i128;
        let mut pieces = vec![(self.start as i128, (self.start + self.len) as i128)];
        for k in [-1, 0, 1] {
            let a0 = other.start as i128 + k * p;
            let a1 = a0 + other.len as i128;
            pieces = pieces
                .into_iter()
                .flat_map(|(b0, b1)| [(b0, b1.min(a0)), (b0.max(a1), b1)])
                .filter(|(lo, hi)| hi > lo)
                .collect();
        }
        pieces
            .into_iter()
            .max_by_key(|(lo, hi)| hi - lo)
            .map(|(lo, hi)| Arc {
                start: lo.rem_euclid(p) as u64,
                len: (hi - lo) as u64,
            })
    }
}

/// One report's learnt phase and where its polls stand.
#[derive(Debug, Clone)]
pub struct Pace {
    /// The period, in milliseconds.
    period: u64,
    time_zone: TimeZone,
    /// Where the phase is.
    arc: Arc,
    /// The last successful poll: when it asked, when it was answered, and
    /// what it saw.
    last: Option<(Timestamp, Timestamp, Seen)>,
    /// The poll just made was a probe inside the arc (the arc's end follows).
    probed: bool,
    /// Learnt periods, for the recheck.
    learnt_periods: u64,
    /// The next poll is the recheck's probe, before the learnt arc.
    rechecking: bool,
}

impl Pace {
    /// A pace for a report recomputed every `period`, periods aligned on
    /// midnight in `time_zone`.
    pub fn new(period: Duration, time_zone: TimeZone) -> Self {
        let period = (period.as_millis() as u64).max(1);
        Self {
            period,
            time_zone,
            arc: Arc {
                start: 0,
                len: period,
            },
            last: None,
            probed: false,
            learnt_periods: 0,
            rechecking: false,
        }
    }

    /// Whether the phase is known closely enough for one call a period.
    pub fn learnt(&self) -> bool {
        self.arc.len <= self.learnt_width()
    }

    /// The widest arc that counts as learnt.
    fn learnt_width(&self) -> u64 {
        (self.period / LEARNT).max(LEARNT_FLOOR.min(self.period / 4))
    }

    /// A small delay after the arc's end: a computation's answers may take
    /// a moment to be served.
    fn slack(&self) -> u64 {
        2000 + self.period / 1000
    }

    /// How far into its period `at` falls, in milliseconds.
    fn phase_of(&self, at: Timestamp) -> u64 {
        let civil = at.to_zoned(self.time_zone.clone()).datetime();
        let origin = jiff::civil::date(1970, 1, 1).to_datetime(jiff::civil::Time::midnight());
        let since = civil.duration_since(origin).as_millis();
        since.rem_euclid(self.period as i128) as u64
    }

    /// The first instant after `now` at `phase` into a period.
    fn next_at(&self, now: Timestamp, phase: u64) -> Timestamp {
        let here = self.phase_of(now);
        let phase = phase % self.period;
        let mut ahead = (phase + self.period - here) % self.period;
        if ahead == 0 {
            ahead = self.period;
        }
        now + SignedDuration::from_millis(ahead as i64)
    }

    /// Like [`Pace::next_at`], in the next period: at least half a period
    /// after `now`, when a computation was just seen.
    fn next_period_at(&self, now: Timestamp, phase: u64) -> Timestamp {
        let at = self.next_at(now, phase);
        if at.duration_since(now).as_millis() < i128::from(self.period / 2) {
            at + SignedDuration::from_millis(self.period as i64)
        } else {
            at
        }
    }

    /// Learns from a successful poll, asked at `asked` and answered at
    /// `answered`, that saw `seen`: Adobe's data was as of a moment in
    /// between, so a change lies between the poll before's asking and this
    /// answer, and no change rules out only what lies between the poll
    /// before's answer and this asking.
    pub fn observe(&mut self, asked: Timestamp, answered: Timestamp, seen: Seen) {
        if let Some((asked_before, answered_before, last_seen)) = self.last {
            let changed = seen != last_seen;
            let active = seen.newest.is_some();
            let (from, to) = if changed {
                (asked_before, answered)
            } else {
                (answered_before, asked)
            };
            let apart = to.duration_since(from).as_millis().max(0) as u64;
            let slack = self.slack();
            let between = Arc {
                start: self.phase_of(from),
                len: apart.min(self.period),
            };
            if apart > 0 && apart + slack <= self.period {
                // Less than a period apart: one computation at most between.
                if changed && self.rechecking {
                    // The probe before the learnt arc saw the computation:
                    // it moved earlier, by how much is learnt again.
                    self.arc = between;
                } else if changed {
                    self.arc = self.arc.intersect(between, self.period).unwrap_or(between);
                } else if active {
                    self.arc = self.arc.subtract(between, self.period).unwrap_or(Arc {
                        start: 0,
                        len: self.period,
                    });
                }
            } else if !changed && active && apart + slack / 2 >= self.period {
                // Nothing for a whole period: the computation comes later
                // now, somewhere after this poll: learnt again from here.
                self.arc = Arc {
                    start: self.phase_of(asked),
                    len: self.period - slack,
                };
            }
        }
        self.last = Some((asked, answered, seen));
        self.rechecking = false;
    }

    /// When to poll next, after `now`.
    pub fn next(&mut self, now: Timestamp) -> Timestamp {
        let end = self.arc.start + self.arc.len + self.slack();
        if std::mem::take(&mut self.probed) {
            // After a probe, the arc's end in the same period: the next
            // probe then comes less than a period after a poll that followed
            // this period's computation.
            return self.next_at(now, end);
        }
        if self.learnt() {
            self.learnt_periods += 1;
            if self.learnt_periods % RECHECK != 0 {
                return self.next_period_at(now, end);
            }
            let widen = 2 * self.learnt_width();
            self.arc = Arc {
                start: (self.arc.start + self.period - widen) % self.period,
                len: (self.arc.len + widen).min(self.period),
            };
            self.rechecking = true;
        }
        self.probed = true;
        self.next_at(now, self.arc.start + self.arc.len / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls a report computed at `phase` into each `period` for `periods`,
    /// as the pace says; returns the calls and the worst lag after the
    /// first `learning` periods.
    fn run(period: u64, phase: u64, periods: i64, learning: i64) -> (u32, Duration) {
        run_from(period, phase, periods, learning, 1)
    }

    /// Like [`run`], the first poll `first` seconds into the first period.
    fn run_from(
        period: u64,
        phase: u64,
        periods: i64,
        learning: i64,
        first: i64,
    ) -> (u32, Duration) {
        let period_d = Duration::from_secs(period);
        let mut pace = Pace::new(period_d, TimeZone::UTC);
        let start: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let p = SignedDuration::from_secs(period as i64);
        let computed = |at: Timestamp| {
            // The number of computations so far.
            let since = at.duration_since(start).as_secs() - phase as i64;
            since.div_euclid(period as i64)
        };
        let mut at = start + SignedDuration::from_secs(first);
        let mut calls = 0;
        let mut worst = Duration::ZERO;
        let mut seen_count = i64::MIN;
        let end = start + p * periods as i32;
        while at < end {
            calls += 1;
            let n = computed(at);
            let seen = Seen {
                newest: None,
                digest: n as u64,
            };
            if n != seen_count {
                let when = start + SignedDuration::from_secs(n * period as i64 + phase as i64);
                let lag = at.duration_since(when).unsigned_abs();
                if seen_count != i64::MIN && at > start + p * learning as i32 {
                    worst = worst.max(lag);
                }
                seen_count = n;
            }
            pace.observe(
                at,
                at,
                Seen {
                    newest: Some(DateTime::MIN),
                    ..seen
                },
            );
            at = pace.next(at);
        }
        (calls, worst)
    }

    #[test]
    fn the_phase_is_learnt_and_polls_follow_it() {
        for (period, phase) in [
            (60, 23),
            (60, 0),
            (60, 59),
            (3600, 460),
            (10800, 6600),
            (3600, 3599),
        ] {
            let (calls, worst) = run(period, phase, 400, 12);
            assert!(
                worst <= Duration::from_secs((period / 64).max(5) + period / 1000 + 3),
                "period {period} phase {phase}: worst lag {worst:?}"
            );
            assert!(
                f64::from(calls) <= 400.0 * 1.1,
                "period {period} phase {phase}: {calls} calls in 400 periods"
            );
        }
    }

    #[test]
    fn a_start_after_the_periods_computation_teaches_nothing_wrong() {
        for (period, phase, first) in [
            (3600, 45, 1200),
            (60, 5, 30),
            (10800, 600, 9000),
            (3600, 3000, 3500),
        ] {
            let (calls, worst) = run_from(period, phase, 200, 12, first as i64);
            assert!(
                worst <= Duration::from_secs((period / 64).max(5) + period / 1000 + 3),
                "period {period} phase {phase} first poll at {first}: worst lag {worst:?}"
            );
            assert!(f64::from(calls) <= 200.0 * 1.1 + 12.0, "{calls} calls");
        }
    }

    #[test]
    fn learning_costs_at_most_two_calls_a_period() {
        let (calls, _) = run(3600, 1234, 8, 0);
        assert!(calls <= 16 + 1, "{calls} calls in 8 periods");
    }

    /// A computation that moves, later then earlier: found again, with the
    /// lag small soon after each move; a report that never changes
    /// costs at most two calls a period.
    #[test]
    fn a_phase_that_moves_is_followed_and_a_quiet_report_costs_little() {
        let period = 3600i64;
        let start: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let phase_at = |k: i64| match k {
            ..100 => 600,
            100..200 => 2400,
            _ => 300,
        };
        // The number of computations up to `at`: one per period at its phase.
        let computed = |at: Timestamp| {
            let since = at.duration_since(start).as_secs();
            let k = since.div_euclid(period);
            if since - k * period >= phase_at(k) {
                k
            } else {
                k - 1
            }
        };
        let mut pace = Pace::new(Duration::from_secs(period as u64), TimeZone::UTC);
        let mut at = start + SignedDuration::from_secs(1);
        let mut seen = i64::MIN;
        let mut worst_settled = Duration::ZERO;
        let mut calls = 0;
        while at < start + SignedDuration::from_secs(300 * period) {
            calls += 1;
            let n = computed(at);
            if n != seen && seen != i64::MIN {
                let when = start + SignedDuration::from_secs(n * period + phase_at(n));
                // Ten periods after a later move, the lag is small again;
                // an earlier one is found by the recheck (every 48 periods).
                if ![(0, 10), (100, 110), (200, 260)]
                    .iter()
                    .any(|(m, e)| (*m..*e).contains(&n))
                {
                    worst_settled = worst_settled.max(at.duration_since(when).unsigned_abs());
                }
            }
            seen = n;
            pace.observe(
                at,
                at,
                Seen {
                    newest: Some(DateTime::MIN),
                    digest: n as u64,
                },
            );
            at = pace.next(at);
        }
        assert!(
            worst_settled <= Duration::from_secs(60 + 6 + 3),
            "worst lag once settled: {worst_settled:?}"
        );
        assert!(calls <= 300 * 11 / 10 + 30, "{calls} calls in 300 periods");

        let mut quiet = Pace::new(Duration::from_secs(60), TimeZone::UTC);
        let mut at = start;
        let mut calls = 0;
        while at < start + SignedDuration::from_secs(60 * 100) {
            calls += 1;
            quiet.observe(
                at,
                at,
                Seen {
                    newest: Some(DateTime::MIN),
                    digest: 7,
                },
            );
            let next = quiet.next(at);
            assert!(next > at, "never a poll in the past");
            at = next;
        }
        assert!(
            calls <= 2 * 100 + 2,
            "{calls} calls in 100 periods of a quiet report"
        );
    }

    #[test]
    fn the_circle_without_an_arc_is_one_arc_around_it() {
        let whole = Arc {
            start: 0,
            len: 3600,
        };
        let cut = whole
            .subtract(
                Arc {
                    start: 1429,
                    len: 405,
                },
                3600,
            )
            .unwrap();
        assert_eq!(
            cut,
            Arc {
                start: 1834,
                len: 3195
            }
        );
        // What is left wraps past the period's end: a probe into it lands
        // before 1429 as well as after 1834.
        let later = cut
            .subtract(
                Arc {
                    start: 1834,
                    len: 1800,
                },
                3600,
            )
            .unwrap();
        assert_eq!(
            later,
            Arc {
                start: 34,
                len: 1395
            }
        );
    }
}
