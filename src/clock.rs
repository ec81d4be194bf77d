//! One notion of "now" for the exporter and the simulator.
//!
//! Production uses the wall clock. Tests and benchmarks that must cover a
//! simulated day in seconds use a warped clock: simulated time runs `factor`
//! times faster than real time. Everything that schedules polls, judges token
//! expiry or decides which time bucket is complete asks this clock, so the
//! exporter and the simulator agree on the time when they share one.
//!
//! "Now" may jump, as a host's clock does when NTP steps it or a VM resumes:
//! the wall clock reads the system time each time, and [`Clock::jump`] moves
//! any clock by an offset (the chaos soak does that to the exporter's clock
//! only, with [`Clock::detached`]). Sleeps are measured on the monotonic
//! clock, so a jump never lengthens a sleep already begun.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A wall clock, optionally running faster than real time.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Real instant at which the clock was created.
    origin_real: Instant,
    /// Simulated timestamp at `origin_real`; `None`: the system's wall clock.
    origin: Option<Timestamp>,
    /// Simulated seconds per real second (1.0 for the wall clock).
    factor: f64,
    /// Nanoseconds added to every reading, shared by the clones that
    /// [`Clock::jump`] together.
    offset: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::wall()
    }
}

impl Clock {
    /// The real wall clock.
    pub fn wall() -> Self {
        Self {
            origin_real: Instant::now(),
            origin: None,
            factor: 1.0,
            offset: Arc::default(),
        }
    }

    /// A clock that starts at `origin` and runs `factor` times faster than real time.
    pub fn warped(origin: Timestamp, factor: f64) -> Self {
        assert!(
            factor.is_finite() && factor > 0.0,
            "clock factor must be positive"
        );
        Self {
            origin_real: Instant::now(),
            origin: Some(origin),
            factor,
            offset: Arc::default(),
        }
    }

    /// A warped clock that read `origin` when the wall clock read `since`:
    /// two processes built with the same three values agree on the time
    /// (a test's simulator and the exporter binary it spawns).
    pub fn warped_since(origin: Timestamp, factor: f64, since: Timestamp) -> Self {
        let clock = Self::warped(origin, factor);
        let ago = Timestamp::now().duration_since(since);
        let origin_real = if ago.is_negative() {
            clock.origin_real.checked_add(ago.unsigned_abs())
        } else {
            clock.origin_real.checked_sub(ago.unsigned_abs())
        };
        Self {
            origin_real: origin_real.unwrap_or(clock.origin_real),
            ..clock
        }
    }

    /// The current (possibly simulated) time.
    pub fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_nanos(self.offset.load(Ordering::Relaxed));
        let unshifted = match self.origin {
            None => Timestamp::now(),
            Some(origin) => {
                let elapsed = self.origin_real.elapsed().as_secs_f64() * self.factor;
                let nanos = (elapsed * 1e9).min(i64::MAX as f64) as i64;
                origin
                    .checked_add(SignedDuration::from_nanos(nanos))
                    .unwrap_or(origin)
            }
        };
        unshifted.checked_add(offset).unwrap_or(unshifted)
    }

    /// Moves "now" by `by` (forward or back) for this clock and every clone
    /// of it, as a clock step would.
    pub fn jump(&self, by: SignedDuration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.offset.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How far the jumps so far have moved this clock.
    pub fn jumped(&self) -> SignedDuration {
        SignedDuration::from_nanos(self.offset.load(Ordering::Relaxed))
    }

    /// The same clock, but one that jumps on its own from now on (another
    /// machine's clock): the jumps of one are not seen by the other.
    pub fn detached(&self) -> Self {
        Self {
            offset: Arc::new(AtomicI64::new(self.offset.load(Ordering::Relaxed))),
            ..self.clone()
        }
    }

    /// Real duration that corresponds to `simulated` on this clock.
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        Duration::try_from_secs_f64(simulated.as_secs_f64() / self.factor).unwrap_or(Duration::MAX)
    }

    /// The monotonic instant a simulated `pause` from now: a deadline that
    /// no step of the wall clock moves (a year away at most).
    pub fn deadline(&self, pause: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(self.real_duration(pause))
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
    }

    /// Sleeps for a simulated duration.
    pub async fn sleep(&self, simulated: Duration) {
        tokio::time::sleep(self.real_duration(simulated)).await;
    }

    /// Sleeps until the simulated time `at` (returns at once when it has passed).
    pub async fn sleep_until(&self, at: Timestamp) {
        let remaining = at.duration_since(self.now());
        if remaining.is_positive() {
            self.sleep(remaining.unsigned_abs()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warped_clock_runs_faster() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::warped(start, 3600.0);
        std::thread::sleep(Duration::from_millis(20));
        let advanced = clock.now().duration_since(start).as_secs_f64();
        // 20 ms real is 72 s simulated; allow generous slack for a loaded machine.
        assert!(advanced >= 70.0, "advanced only {advanced}s");
        assert_eq!(
            clock.real_duration(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        let deadline = clock.deadline(Duration::from_secs(3600));
        assert!(deadline > Instant::now() + Duration::from_millis(900));
        let far = clock.deadline(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(364 * 86_400));
    }

    #[test]
    fn clocks_warped_since_one_instant_agree() {
        let origin: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let since = Timestamp::now() - SignedDuration::from_secs(2);
        let clock = Clock::warped_since(origin, 60.0, since);
        // Two real seconds ago at 60x: two simulated minutes in.
        let elapsed = clock.now().duration_since(origin).as_secs_f64();
        assert!((119.0..180.0).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn jumps_move_the_clones_but_not_a_detached_clock() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::warped(start, 1.0);
        let clone = clock.clone();
        let other = clock.detached();
        clock.jump(SignedDuration::from_hours(-2));
        let behind = start.duration_since(clone.now());
        assert!(behind > SignedDuration::from_mins(119), "{behind}");
        assert!(other.now() >= start, "a detached clock keeps its own time");
        assert_eq!(clone.jumped(), SignedDuration::from_hours(-2));
        clone.jump(SignedDuration::from_hours(2));
        assert_eq!(clock.jumped(), SignedDuration::ZERO);
        let wall = Clock::wall();
        wall.jump(SignedDuration::from_hours(1));
        let ahead = wall.now().duration_since(Timestamp::now());
        assert!(ahead > SignedDuration::from_mins(59), "{ahead}");
    }
}
