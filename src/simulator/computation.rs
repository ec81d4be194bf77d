//! When the simulated Adobe computes a report (CMU reference §7): every
//! minute for minute paths, every hour for hour paths, every 3 hours for
//! day paths, every 2 days for month and year paths, and once a day for
//! the concurrency and activity level reports, each at a phase of its own
//! into its period that the exporter is not told.
//!
//! An answer holds data as of the last computation: the bucket holding
//! that instant is partial and later buckets are absent, as Adobe's are.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::report::catalog::LEVEL_DIMENSIONS;
use crate::report::{Granularity, ReportPath};

/// How often CMU recomputes a report of each kind, in seconds (reference §7).
pub const MINUTE_PERIOD: u64 = 60;
pub const HOUR_PERIOD: u64 = 3600;
pub const DAY_PERIOD: u64 = 3 * 3600;
pub const MONTH_PERIOD: u64 = 48 * 3600;
pub const LEVELS_PERIOD: u64 = 24 * 3600;

/// The offset of each kind's computations into its period (midnight-aligned
/// periods in the report's time zone). Each is taken modulo its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Computations {
    pub minute: Duration,
    pub hour: Duration,
    pub day: Duration,
    pub month: Duration,
    pub levels: Duration,
}

impl Default for Computations {
    /// Phases well into each period, so that a client which takes a
    /// bucket for complete once its end has passed reads partial values.
    fn default() -> Self {
        Self {
            minute: Duration::from_secs(23),
            hour: Duration::from_secs(7 * 60 + 40),
            day: Duration::from_secs(3600 + 50 * 60),
            month: Duration::from_secs(30 * 3600),
            levels: Duration::from_secs(5 * 3600 + 20 * 60),
        }
    }
}

impl Computations {
    /// Phases drawn from `seed`, anywhere in each period.
    pub fn random(seed: u64) -> Self {
        let draw = |salt: u64, period: u64| {
            let h = super::data::hash(seed, &[&salt.to_string()]);
            Duration::from_millis(h % (period * 1000))
        };
        Self {
            minute: draw(1, MINUTE_PERIOD),
            hour: draw(2, HOUR_PERIOD),
            day: draw(3, DAY_PERIOD),
            month: draw(4, MONTH_PERIOD),
            levels: draw(5, LEVELS_PERIOD),
        }
    }

    /// The period and phase of `path`'s computations, in seconds
    /// (milliseconds for the phase); `None` for a path without time.
    fn of(&self, path: &ReportPath) -> Option<(u64, Duration)> {
        if LEVEL_DIMENSIONS.iter().any(|d| path.contains(d)) {
            return Some((LEVELS_PERIOD, self.levels));
        }
        Some(match path.granularity() {
            Granularity::Total => return None,
            Granularity::Minute => (MINUTE_PERIOD, self.minute),
            Granularity::Hour => (HOUR_PERIOD, self.hour),
            Granularity::Day => (DAY_PERIOD, self.day),
            Granularity::Month | Granularity::Year => (MONTH_PERIOD, self.month),
        })
    }

    /// The last computation of `path` at or before `now`, in the report's
    /// time zone `tz`: the instant its answers hold data as of. A path
    /// without time is computed in real time (`now`).
    pub fn last(&self, path: &ReportPath, tz: &TimeZone, now: Timestamp) -> DateTime {
        let civil = now.to_zoned(tz.clone()).datetime();
        let Some((period, phase)) = self.of(path) else {
            return civil;
        };
        let period_ms = i64::try_from(period * 1000).unwrap_or(i64::MAX);
        let phase_ms = i64::try_from(phase.as_millis()).unwrap_or(0) % period_ms;
        // Milliseconds of the civil time since a midnight-aligned origin.
        let origin = jiff::civil::date(1970, 1, 1).to_datetime(jiff::civil::Time::midnight());
        let Ok(since) = civil.duration_since(origin).as_millis().try_into() else {
            return civil;
        };
        let since: i64 = since;
        let mut at = since - (since - phase_ms).rem_euclid(period_ms);
        if at > since {
            at -= period_ms;
        }
        origin
            .checked_add(jiff::SignedDuration::from_millis(at))
            .unwrap_or(civil)
    }

    /// When the computation that first holds data of the bucket starting
    /// at `start` ran: the first computation at or after `start`.
    pub fn first_after(&self, path: &ReportPath, tz: &TimeZone, start: DateTime) -> DateTime {
        let Some((period, _)) = self.of(path) else {
            return start;
        };
        let Ok(zoned) = start.to_zoned(tz.clone()) else {
            return start;
        };
        let later = zoned.timestamp() + jiff::SignedDuration::from_secs(period as i64);
        let last = self.last(path, tz, later);
        // The last computation before `start + period` is the first at or
        // after `start`, unless it fell exactly on `start + period`.
        if last > start {
            last.checked_sub(jiff::SignedDuration::from_secs(period as i64))
                .ok()
                .filter(|earlier| *earlier >= start)
                .unwrap_or(last)
        } else {
            last
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        format!("{s}Z").parse().unwrap()
    }

    #[test]
    fn answers_hold_data_as_of_the_last_computation() {
        let c = Computations::default();
        let tz = TimeZone::UTC;
        let minute = ReportPath::parse("tenant/year/month/day/hour/minute").unwrap();
        let hour = ReportPath::parse("tenant/year/month/day/hour").unwrap();
        let day = ReportPath::parse("tenant/year/month/day").unwrap();
        let levels = ReportPath::parse("year/month/day/tenant/concurrency-level").unwrap();
        assert_eq!(
            c.last(&minute, &tz, at("2026-12-07T10:05:10")).to_string(),
            "2026-12-07T10:04:23"
        );
        assert_eq!(
            c.last(&minute, &tz, at("2026-12-07T10:05:30")).to_string(),
            "2026-12-07T10:05:23"
        );
        assert_eq!(
            c.last(&hour, &tz, at("2026-12-07T10:05:00")).to_string(),
            "2026-12-07T09:07:40"
        );
        assert_eq!(
            c.last(&day, &tz, at("2026-12-07T01:00:00")).to_string(),
            "2026-12-06T22:50:00"
        );
        assert_eq!(
            c.last(&levels, &tz, at("2026-12-07T06:00:00")).to_string(),
            "2026-12-07T05:20:00"
        );
        let start: DateTime = "2026-12-07T00:00:00".parse().unwrap();
        assert_eq!(
            c.first_after(&day, &tz, start).to_string(),
            "2026-12-07T01:50:00"
        );
        let start: DateTime = "2026-12-07T10:00:00".parse().unwrap();
        assert_eq!(
            c.first_after(&hour, &tz, start).to_string(),
            "2026-12-07T10:07:40"
        );
    }
}
