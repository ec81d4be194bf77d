//! From parsed reports to the bytes `/metrics` serves.
//!
//! Each poll builds a fresh [`ReportSnapshot`] and [`ExportStore::publish`]es
//! it; the store re-assembles the [`Exposition`] and swaps it in. A scrape
//! only clones an `Arc`, so it never waits for, or calls, Adobe.

pub mod exposition;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub use exposition::Exposition;
pub use snapshot::{
    BucketChoice, Family, ReportSnapshot, SnapshotSpec, build_snapshot, build_snapshot_from,
};

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

    /// Users per level of every report that exports `family` (a level
    /// family such as `cmu_concurrency_level_users`), summed over the other
    /// labels, by report name.
    pub fn levels(&self, family: &str) -> Vec<(String, BTreeMap<u32, f64>)> {
        let snapshots = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snapshots
            .iter()
            .filter_map(|(report, snapshot)| {
                let body = &snapshot.families.iter().find(|f| f.name == family)?.body;
                let mut levels = BTreeMap::new();
                for line in std::str::from_utf8(body).ok()?.lines() {
                    let level = line
                        // `level` follows `report`, so it is never the first label.
                        .split_once(",level=\"")
                        .and_then(|(_, rest)| rest.split_once('"'))
                        .and_then(|(n, _)| n.parse::<u32>().ok());
                    let value = line
                        .rsplit_once(' ')
                        .and_then(|(_, v)| v.parse::<f64>().ok());
                    if let (Some(level), Some(value)) = (level, value) {
                        *levels.entry(level).or_insert(0.0) += value;
                    }
                }
                (!levels.is_empty()).then(|| (report.clone(), levels))
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
