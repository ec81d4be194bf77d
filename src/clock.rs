//! One notion of "now" for the exporter and the simulator.
//!
//! Production uses the wall clock. Tests and benchmarks that must cover a
//! simulated day in seconds use a warped clock: simulated time runs `factor`
//! times faster than real time. Everything that schedules polls, judges token
//! expiry or decides which time bucket is complete asks this clock, so the
//! exporter and the simulator agree on the time when they share one.

use std::time::{Duration, Instant};

use jiff::Timestamp;

/// A wall clock, optionally running faster than real time.
#[derive(Debug, Clone)]
pub struct Clock {
    /// Real instant at which the clock was created.
    origin_real: Instant,
    /// Simulated timestamp at `origin_real`.
    origin: Timestamp,
    /// Simulated seconds per real second (1.0 for the wall clock).
    factor: f64,
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
            origin: Timestamp::now(),
            factor: 1.0,
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
            origin,
            factor,
        }
    }

    /// The current (possibly simulated) time.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.origin_real.elapsed().as_secs_f64() * self.factor;
        let nanos = (elapsed * 1e9) as i128;
        self.origin
            .checked_add(jiff::SignedDuration::from_nanos(
                nanos.min(i64::MAX as i128) as i64,
            ))
            .unwrap_or(self.origin)
    }

    /// Real duration that corresponds to `simulated` on this clock.
    pub fn real_duration(&self, simulated: Duration) -> Duration {
        Duration::from_secs_f64(simulated.as_secs_f64() / self.factor)
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
    }
}
