//! What each report is doing, for the landing page and `/readyz`.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;

use jiff::Timestamp;

/// The state of one configured report.
#[derive(Debug, Clone, Default)]
pub struct ReportStatus {
    pub path: String,
    pub interval: Duration,
    pub last_attempt: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    /// The last poll's error, cleared by a success.
    pub last_error: Option<String>,
    /// Whether `last_error` needs a person (it will not heal by retrying).
    pub needs_person: bool,
    pub next_poll: Option<Timestamp>,
    pub series: usize,
    pub rows: usize,
    pub bucket_start: Option<Timestamp>,
}

/// Every report's status, by name.
#[derive(Debug, Default)]
pub struct StatusBoard {
    reports: RwLock<BTreeMap<String, ReportStatus>>,
}

impl StatusBoard {
    /// Changes the status of `report` (creating it if new).
    pub fn update(&self, report: &str, change: impl FnOnce(&mut ReportStatus)) {
        let mut reports = self.reports.write().unwrap_or_else(|e| e.into_inner());
        change(reports.entry(report.to_owned()).or_default());
    }

    /// Forgets a report that left the configuration.
    pub fn remove(&self, report: &str) {
        let mut reports = self.reports.write().unwrap_or_else(|e| e.into_inner());
        reports.remove(report);
    }

    /// When `report` last polled successfully.
    pub fn last_success(&self, report: &str) -> Option<Timestamp> {
        self.reports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(report)
            .and_then(|s| s.last_success)
    }

    /// A copy of every status, sorted by report name.
    pub fn all(&self) -> Vec<(String, ReportStatus)> {
        let reports = self.reports.read().unwrap_or_else(|e| e.into_inner());
        reports
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
