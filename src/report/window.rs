//! Which time buckets of a report are complete, and so which window to ask
//! Adobe for.
//!
//! Adobe computes a report on a schedule: an answer holds data as of its
//! last computation, so the bucket holding that instant is partial and
//! later ones are absent. A bucket is complete once Adobe has computed past
//! its end, judged from what Adobe answered ([`Computed::judge`]), never
//! from our clock alone. This is the one rule `/metrics`, the push, its gap
//! fill and `backfill` share: [`window`] asks for buckets up to now, so
//! that an answer can show Adobe moved on, and [`Computed::complete`] says
//! which of them are final.

use std::time::Duration;

use jiff::civil::DateTime;

use super::ReportApi;
use super::catalog::LEVEL_DIMENSIONS;
use super::path::{Bucket, Granularity, ReportPath};

/// Which time bucket of a report becomes the exported value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketChoice {
    /// The newest bucket Adobe has computed past the end of: its values no
    /// longer change.
    #[default]
    Complete,
    /// The newest bucket, even while it is still filling up.
    Partial,
}

/// How it is known that Adobe computed a report through an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    /// Nothing shows that Adobe computed any bucket.
    Nothing,
    /// No later bucket came, but the documented recompute cadence, and a
    /// margin, passed since the instant (a report without activity).
    Cadence,
    /// The answer holds a later bucket: Adobe computed past its start.
    LaterBucket,
    /// Adobe said so: ESM's `Last-Modified` (absent: computed in real
    /// time), or, for history, a live answer read just before.
    Stated,
}

impl Evidence {
    /// Lowercase words, for the landing page, logs and the `evidence` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Nothing => "nothing",
            Evidence::Cadence => "cadence",
            Evidence::LaterBucket => "later bucket",
            Evidence::Stated => "stated",
        }
    }
}

/// How far Adobe had computed a report when it answered: every bucket
/// that ends at or before `through` (in the report's time zone) is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Computed {
    pub through: DateTime,
    pub by: Evidence,
}

impl Default for Computed {
    fn default() -> Self {
        Computed::NOTHING
    }
}

impl Computed {
    /// Nothing known: no bucket is complete.
    pub const NOTHING: Computed = Computed {
        through: DateTime::MIN,
        by: Evidence::Nothing,
    };

    /// What an answer shows: the start of its `newest` bucket (Adobe
    /// computed past it), what Adobe `stated` (ESM's `Last-Modified`, or
    /// what a live answer showed, for history), and, for an API whose
    /// answers say nothing of when they were computed (CMU), the
    /// documented cadence of `path`: a computation runs at least that
    /// often, so whatever ended a cadence and a margin before `as_of`
    /// (Adobe's clock when it answered) is computed. The latest wins.
    pub fn judge(
        api: ReportApi,
        path: Option<&ReportPath>,
        newest: Option<Bucket>,
        stated: Option<DateTime>,
        as_of: DateTime,
    ) -> Computed {
        let mut best = Computed::NOTHING;
        let mut consider = |through: Option<DateTime>, by: Evidence| {
            if let Some(through) = through
                && (through, by) > (best.through, best.by)
            {
                best = Computed { through, by };
            }
        };
        consider(newest.map(|b| b.start), Evidence::LaterBucket);
        consider(stated, Evidence::Stated);
        if !api.profile().last_modified_is_computation {
            let granularity = path.map_or_else(
                || newest.map_or(Granularity::Total, |b| b.granularity),
                ReportPath::granularity,
            );
            let cadence = path.map_or_else(
                || Duration::from_secs(api.profile().schedule.of(granularity)),
                |p| default_interval(api, p),
            );
            let waited = cadence + margin(cadence);
            consider(
                jiff::SignedDuration::try_from(waited)
                    .ok()
                    .and_then(|w| as_of.checked_sub(w).ok()),
                Evidence::Cadence,
            );
        }
        best
    }

    /// Whether the bucket is final; rows without time always are.
    pub fn complete(&self, bucket: Option<Bucket>) -> bool {
        bucket.is_none_or(|b| b.end().is_some_and(|end| end <= self.through))
    }

    /// The end of the newest complete bucket of `granularity`: every
    /// bucket that ends by then is complete.
    pub fn complete_until(&self, granularity: Granularity) -> Option<DateTime> {
        (self.by != Evidence::Nothing && granularity.span().is_some())
            .then(|| granularity.floor(self.through))
    }

    /// The start of the newest complete bucket of `granularity`.
    pub fn newest_complete(&self, granularity: Granularity) -> Option<DateTime> {
        let until = self.complete_until(granularity)?;
        until.checked_sub(granularity.span()?).ok()
    }
}

/// How long past its cadence a computation may come before a report with
/// no later row is taken as computed: a tenth of the cadence, and 30 s.
pub fn margin(cadence: Duration) -> Duration {
    cadence / 10 + Duration::from_secs(30)
}

/// The window to ask for: the buckets needed and no more.
///
/// For the newest complete bucket: from two buckets before the current one
/// up to now. The current bucket, when Adobe has computed into it, shows
/// that the one before is complete; the older one is the newest complete
/// while Adobe has not. For the partial bucket: the current one and the
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
        BucketChoice::Complete => (back(2), Some(now)),
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
    std::time::Duration::from_secs(by_level.unwrap_or(schedule.of(path.granularity())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(g: Granularity, start: &str) -> Bucket {
        Bucket {
            granularity: g,
            start: start.parse().unwrap(),
        }
    }

    #[test]
    fn a_bucket_is_complete_once_adobe_computed_past_its_end() {
        let hourly = ReportPath::parse("tenant/year/month/day/hour").unwrap();
        let as_of: DateTime = "2026-11-22T21:05:00".parse().unwrap();
        // The answer holds 21:00: Adobe computed into it, so 20:00 is final.
        let c = Computed::judge(
            ReportApi::Cmu,
            Some(&hourly),
            Some(bucket(Granularity::Hour, "2026-11-22T21:00:00")),
            None,
            as_of,
        );
        assert_eq!(c.by, Evidence::LaterBucket);
        assert!(c.complete(Some(bucket(Granularity::Hour, "2026-11-22T20:00:00"))));
        assert!(!c.complete(Some(bucket(Granularity::Hour, "2026-11-22T21:00:00"))));
        // Our clock is past 21:00, but Adobe has not computed into it yet:
        // 20:00 is still partial.
        let c = Computed::judge(
            ReportApi::Cmu,
            Some(&hourly),
            Some(bucket(Granularity::Hour, "2026-11-22T20:00:00")),
            None,
            as_of,
        );
        assert!(!c.complete(Some(bucket(Granularity::Hour, "2026-11-22T20:00:00"))));
        assert_eq!(
            c.newest_complete(Granularity::Hour).unwrap().to_string(),
            "2026-11-22T19:00:00"
        );
        // No row at all (no activity): the cadence and a margin decide.
        let quiet = Computed::judge(ReportApi::Cmu, Some(&hourly), None, None, as_of);
        assert_eq!(quiet.by, Evidence::Cadence);
        // A cadence (1 h) and its margin (6.5 min) before 21:05.
        assert_eq!(quiet.through.to_string(), "2026-11-22T19:58:30");
        // ESM says when it computed: Last-Modified, whatever our clock.
        let esm = ReportPath::parse("media-company/year/month/day/hour").unwrap();
        let c = Computed::judge(
            ReportApi::Esm,
            Some(&esm),
            None,
            Some("2026-11-22T20:55:00".parse().unwrap()),
            as_of,
        );
        assert_eq!(
            (c.by, c.through.to_string().as_str()),
            (Evidence::Stated, "2026-11-22T20:55:00")
        );
        assert!(!c.complete(Some(bucket(Granularity::Hour, "2026-11-22T20:00:00"))));
        assert!(c.complete(None));
    }

    #[test]
    fn window_covers_the_buckets_needed() {
        let now: DateTime = "2026-11-22T21:35:10".parse().unwrap();
        let (s, e) = window(Granularity::Hour, BucketChoice::Complete, now);
        assert_eq!(s.unwrap().to_string(), "2026-11-22T19:00:00");
        assert_eq!(e.unwrap(), now);
        let (s, e) = window(Granularity::Month, BucketChoice::Partial, now);
        assert_eq!(s.unwrap().to_string(), "2026-10-01T00:00:00");
        assert_eq!(e.unwrap(), now);
        assert_eq!(
            window(Granularity::Total, BucketChoice::Complete, now),
            (None, None)
        );
    }
}
