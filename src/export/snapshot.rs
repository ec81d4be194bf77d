//! One report's snapshot, the types: everything a successful poll
//! contributes to `/metrics` ([`ReportSnapshot`], built by
//! `build`) and how to build it ([`SnapshotSpec`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::deflated::Deflated;
use crate::report::{Bucket, BucketChoice, ReportPath};

/// How to build a snapshot of one report.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    /// The API the report comes from: it names the families.
    pub api: crate::report::ReportApi,
    /// Configured report name (value of the `report` label).
    pub report: String,
    /// The report's account (the `account` label), with several accounts.
    pub account: Option<String>,
    /// The configured path; `None` for a saved file (taken from its `self` link).
    pub path: Option<ReportPath>,
    pub choice: BucketChoice,
    /// When the answer was read, by Adobe's clock when it is behind ours:
    /// with CMU's documented cadence, it tells a quiet report's complete
    /// buckets ([`crate::report::Computed::judge`]).
    pub now: Timestamp,
    /// Time zone of the report's buckets.
    pub time_zone: TimeZone,
    /// Static labels added to every series of the report.
    pub labels: Vec<(String, String)>,
    /// Most series the report may export; rows beyond are dropped and counted.
    pub max_series: Option<usize>,
    /// When Adobe computed the answer, for an API whose `Last-Modified`
    /// says so (ESM): exported as `esm_report_last_modified_timestamp_seconds`.
    pub computed_at: Option<Timestamp>,
    /// An instant Adobe is known to have computed the report through,
    /// beside what the answer's rows show: ESM's `Last-Modified` (the
    /// answer's time when absent), or for history what a live answer showed.
    pub computed_through: Option<Timestamp>,
}

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Gauge,
    /// A `_total` that only grows (the self-metrics).
    Counter,
    /// Cumulative `_bucket{le}` and `_count` series (report histograms
    /// have no `_sum`: Adobe gives ranges only).
    Histogram,
}

impl FamilyKind {
    /// The type's name in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Gauge => "gauge",
            FamilyKind::Counter => "counter",
            FamilyKind::Histogram => "histogram",
        }
    }
}

/// One metric family's share of a report: exposition lines without HELP/TYPE.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: FamilyKind,
    /// Sample lines, each ending in `\n`, shared with the exposition.
    pub body: bytes::Bytes,
    /// `body` compressed for gzip scrapes, once per poll ([`ReportSnapshot::deflate`]).
    pub deflated: Option<Deflated>,
}

/// Users per concurrency or activity level in a level report's shown bucket,
/// summed over its other dimensions (the landing page's charts).
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// `concurrency-level` or `activity-level`.
    pub dimension: String,
    /// Users by level.
    pub users: BTreeMap<u32, f64>,
}

/// One MVPD's authorization and authentication totals in an ESM report's
/// shown bucket, summed over its other dimensions (the landing page's MVPD
/// health table). Authentication is `None` on paths that do not serve it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MvpdHealth {
    pub mvpd: String,
    pub authz_attempts: f64,
    pub authz_successful: f64,
    pub authz_failed: f64,
    /// Total time on the MVPD's endpoint, in seconds.
    pub authz_latency_seconds: f64,
    pub authn_attempts: Option<f64>,
    pub authn_successful: Option<f64>,
}

/// Everything one successful poll of a report contributes to `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ReportSnapshot {
    /// Families sorted by name.
    pub families: Vec<Family>,
    /// Number of CMU series (samples) in `families`, info metrics excluded.
    pub series: usize,
    /// The bucket shown, if the report has time dimensions and any row qualified.
    pub bucket: Option<Bucket>,
    /// Start of the shown bucket, in the report's time zone.
    pub bucket_start: Option<jiff::Zoned>,
    /// Rows in the document.
    pub rows: usize,
    /// Rows dropped because an identical label set was already kept.
    pub duplicates: usize,
    /// Series dropped by the `max_series` guard.
    pub dropped: usize,
    /// Links of the document, for discovery and the landing page.
    pub links: crate::report::Links,
    /// Users per level, when this is a level report.
    pub levels: Option<Levels>,
    /// Health per MVPD, when this is an ESM report by MVPD with authorizations.
    pub mvpds: Vec<MvpdHealth>,
    /// How far Adobe had computed the report, as the answer showed.
    pub computed: crate::report::Computed,
    /// The newest bucket in the answer, complete or not.
    pub newest: Option<Bucket>,
    /// A digest of the newest bucket's rows in the answer, complete or not:
    /// it changes when Adobe recomputes the report with other values.
    pub digest: u64,
}

impl ReportSnapshot {
    /// Compresses every family body for gzip scrapes. The service does it in
    /// the poll, off the scrape path; `render` has no use for it.
    pub fn deflate(&mut self) {
        for family in &mut self.families {
            family.deflated = Some(Deflated::best(&family.body));
        }
    }
}
