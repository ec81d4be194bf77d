//! Which time buckets a report shows, and so which window to ask Adobe for.
//!
//! Both halves of the "newest complete bucket" rule live here: [`window`]
//! picks the buckets to ask for, [`BucketChoice::shows`] the rows to keep.

use jiff::civil::DateTime;

use super::ReportApi;
use super::catalog::LEVEL_DIMENSIONS;
use super::path::{Bucket, Granularity, ReportPath};

/// Which time bucket of a report becomes the exported value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketChoice {
    /// The newest bucket that has ended: its values no longer change.
    #[default]
    Complete,
    /// The newest bucket, even while it is still filling up.
    Partial,
}

impl BucketChoice {
    /// Whether rows of `bucket` may be shown at `now` (rows without time always may).
    pub fn shows(self, bucket: Option<Bucket>, now: DateTime) -> bool {
        match (self, bucket) {
            (_, None) | (BucketChoice::Partial, _) => true,
            (BucketChoice::Complete, Some(b)) => b.end().is_some_and(|end| end <= now),
        }
    }
}

/// The window to ask for: the buckets needed and no more.
///
/// For the newest complete bucket: the two buckets before the current one
/// (the older in case Adobe has not computed the newer yet), ending before
/// the current bucket starts. For the partial bucket: the current one and the
/// one before. Paths without a time dimension ignore the window.
pub fn window(
    granularity: Granularity,
    choice: BucketChoice,
    now: DateTime,
) -> (Option<DateTime>, Option<DateTime>) {
    let Some(span) = granularity.span() else {
        return (None, None);
    };
    let current = granularity.floor(now);
    let back = |n: i64| current.checked_sub(span.checked_mul(n).ok()?).ok();
    match choice {
        BucketChoice::Complete => (
            back(2),
            current.checked_sub(jiff::Span::new().seconds(1)).ok(),
        ),
        BucketChoice::Partial => (back(1), Some(now)),
    }
}

/// How often a report of `api` at `path` is polled by default: its API's
/// [`Schedule`](super::api::Schedule) for the path's granularity.
pub fn default_interval(api: ReportApi, path: &ReportPath) -> std::time::Duration {
    let schedule = &api.profile().schedule;
    let by_level = schedule
        .levels
        .filter(|_| LEVEL_DIMENSIONS.iter().any(|d| path.contains(d)));
    let seconds = by_level.unwrap_or(match path.granularity() {
        Granularity::Minute => schedule.minute,
        Granularity::Hour => schedule.hour,
        Granularity::Day => schedule.day,
        Granularity::Month | Granularity::Year => schedule.month_or_year,
        Granularity::Total => schedule.total,
    });
    std::time::Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_the_buckets_needed() {
        let now: DateTime = "2026-11-22T21:35:10".parse().unwrap();
        let (s, e) = window(Granularity::Hour, BucketChoice::Complete, now);
        assert_eq!(s.unwrap().to_string(), "2026-11-22T19:00:00");
        assert_eq!(e.unwrap().to_string(), "2026-11-22T20:59:59");
        let (s, e) = window(Granularity::Month, BucketChoice::Partial, now);
        assert_eq!(s.unwrap().to_string(), "2026-10-01T00:00:00");
        assert_eq!(e.unwrap(), now);
        assert_eq!(
            window(Granularity::Total, BucketChoice::Complete, now),
            (None, None)
        );
    }
}
