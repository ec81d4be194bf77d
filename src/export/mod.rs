//! From parsed reports to the bytes `/metrics` serves.
//!
//! `select` keeps the rows to show, `samples` says what they are as
//! Prometheus data (the one mapping), `format` writes samples as each
//! output wants them, `views` computes the landing page's sums from them,
//! `build` runs it all once per poll into a `snapshot`, and `exposition`
//! assembles the snapshots into the page (`deflated` its gzip pieces).
//!
//! Each poll builds a fresh [`ReportSnapshot`] and [`ExportStore::publish`]es
//! it; the store re-assembles the [`Exposition`] and swaps it in. A scrape
//! only clones an `Arc`, so it never waits for, or calls, Adobe.

mod build;
mod deflated;
pub mod exposition;
pub mod format;
pub mod samples;
mod select;
pub mod snapshot;
mod views;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub use build::{build_history, build_snapshot, build_snapshot_from, computed};
pub use deflated::Deflated;
pub use exposition::{Exposition, Tail};
pub use samples::{FamilyDesc, Labels, Sample, Samples, Unit};
pub use snapshot::{Family, FamilyKind, Levels, MvpdHealth, ReportSnapshot, SnapshotSpec};

/// One ESM report's MVPD health, and the bucket it was read from.
#[derive(Debug, Clone)]
pub struct MvpdReport {
    pub report: String,
    pub bucket: Option<crate::report::Bucket>,
    /// Start of that bucket.
    pub bucket_start: Option<jiff::Zoned>,
    pub mvpds: Vec<MvpdHealth>,
}

/// The last good snapshot of every report and their assembled exposition.
#[derive(Debug, Default)]
pub struct ExportStore {
    snapshots: Mutex<BTreeMap<String, Arc<ReportSnapshot>>>,
    current: RwLock<Arc<Exposition>>,
}

impl ExportStore {
    /// Replaces the snapshot of `report` and re-assembles the exposition.
    pub fn publish(&self, report: &str, snapshot: Arc<ReportSnapshot>) {
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snapshots.insert(report.to_owned(), snapshot);
        self.swap(&snapshots);
    }

    /// Drops the series of `report` (expired or no longer configured).
    pub fn remove(&self, report: &str) {
        let mut snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        if snapshots.remove(report).is_some() {
            self.swap(&snapshots);
        }
    }

    fn swap(&self, snapshots: &BTreeMap<String, Arc<ReportSnapshot>>) {
        let exposition = Arc::new(Exposition::assemble(snapshots.values().map(Arc::as_ref)));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = exposition;
    }

    /// The exposition to serve now.
    pub fn current(&self) -> Arc<Exposition> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The users per level of every report whose level dimension is
    /// `dimension` (`concurrency-level`, `activity-level`), by report name.
    pub fn levels(&self, dimension: &str) -> Vec<(String, BTreeMap<u32, f64>)> {
        let snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snapshots
            .iter()
            .filter_map(|(report, snapshot)| {
                let levels = snapshot.levels.as_ref()?;
                (levels.dimension == dimension).then(|| (report.clone(), levels.users.clone()))
            })
            .collect()
    }

    /// The MVPD health of every ESM report by MVPD, by report name, with
    /// the bucket it comes from.
    pub fn mvpd_health(&self) -> Vec<MvpdReport> {
        let snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snapshots
            .iter()
            .filter(|(_, s)| !s.mvpds.is_empty())
            .map(|(report, s)| MvpdReport {
                report: report.clone(),
                bucket: s.bucket,
                bucket_start: s.bucket_start.clone(),
                mvpds: s.mvpds.clone(),
            })
            .collect()
    }

    /// The last good snapshot of `report`, if any.
    pub fn snapshot(&self, report: &str) -> Option<Arc<ReportSnapshot>> {
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(report)
            .cloned()
    }
}
