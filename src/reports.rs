//! Every configured report's state, kept in one place: its last good
//! snapshot (the [`ExportStore`] behind `/metrics`), its status (landing
//! page, `/readyz`) and its self-metrics.
//!
//! A poller only says what happened ([`PollOutcome`], with the time it
//! happened); [`Reports::apply`] writes it everywhere it belongs: the
//! status, the self-metrics and every [`Sink`] of snapshots (the export
//! store first). [`Reports::remove`] takes a report out of all of them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::export::ReportSnapshot;

use crate::config::ReportConfig;
use crate::export::ExportStore;
use crate::outcome::{Answer, PollOutcome};
use crate::telemetry::Telemetry;

/// The state of one configured report.
#[derive(Debug, Clone, Default)]
pub struct ReportStatus {
    pub path: String,
    pub interval: Duration,
    /// Row limit asked of Adobe: an answer that long may be truncated.
    limit: u32,
    /// The cardinality guard, for the message when it drops series.
    max_series: Option<usize>,
    /// How long the last good values survive failing polls.
    max_age: Duration,
    pub last_attempt: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    /// The last poll's error, cleared by a success.
    pub last_error: Option<String>,
    /// Whether `last_error` needs a person (it will not heal by retrying).
    pub needs_person: bool,
    pub next_poll: Option<Timestamp>,
    /// Series exported now (0 once expired).
    pub series: usize,
    /// End of the newest bucket Adobe has computed past, and how that is known.
    pub complete_until: Option<(Timestamp, crate::report::Evidence)>,
    /// How long after Adobe computed it that bucket was first exported, at most.
    pub complete_lag: Option<Duration>,
}

/// Where a report's snapshots go once a poll built them: the export store
/// behind `/metrics`, and any other output.
pub trait Sink: std::fmt::Debug + Send + Sync {
    /// A poller of `report` starts (at start, on reload, after a restart).
    fn configured(&self, _report: &ReportConfig) {}
    /// A poll of `report` that ended at `at` built `snapshot` from `answer`.
    fn published(
        &self,
        report: &str,
        snapshot: &Arc<ReportSnapshot>,
        answer: &Arc<Answer>,
        at: Timestamp,
    );
    /// `report`'s series are gone: expired, redefined or no longer configured.
    fn withdrawn(&self, report: &str);
    /// The configuration's thresholds and stream limits are these (at
    /// start and on each reload that changes them).
    fn thresholds(&self, _thresholds: &crate::thresholds::Thresholds) {}
}

impl Sink for ExportStore {
    fn published(
        &self,
        report: &str,
        snapshot: &Arc<ReportSnapshot>,
        _answer: &Arc<Answer>,
        _at: Timestamp,
    ) {
        self.publish(report, snapshot.clone());
    }

    fn withdrawn(&self, report: &str) {
        self.remove(report);
    }
}

/// Every report's snapshot, status and self-metrics.
#[derive(Debug)]
pub struct Reports {
    store: Arc<ExportStore>,
    /// The store first, then every other output.
    sinks: Vec<Arc<dyn Sink>>,
    status: RwLock<BTreeMap<String, ReportStatus>>,
    telemetry: Telemetry,
}

impl Reports {
    /// The reports' state, their snapshots going to the export store then
    /// to each of `outputs` (the push).
    pub fn new(telemetry: Telemetry, outputs: Vec<Arc<dyn Sink>>) -> Self {
        let store = Arc::new(ExportStore::default());
        let mut sinks: Vec<Arc<dyn Sink>> = vec![store.clone()];
        sinks.extend(outputs);
        Self {
            sinks,
            store,
            status: RwLock::default(),
            telemetry,
        }
    }

    fn withdraw(&self, report: &str) {
        for sink in &self.sinks {
            sink.withdrawn(report);
        }
    }

    /// The snapshots behind `/metrics`.
    pub fn store(&self) -> &ExportStore {
        &self.store
    }

    fn update(&self, report: &str, change: impl FnOnce(&mut ReportStatus)) {
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        change(status.entry(report.to_owned()).or_default());
    }

    /// The configuration's thresholds and stream limits, exported beside
    /// the reports (at start and on each reload that changes them).
    pub fn configure_thresholds(&self, thresholds: &crate::thresholds::Thresholds) {
        self.store.publish(
            crate::thresholds::STORE_KEY,
            Arc::new(thresholds.snapshot()),
        );
        for sink in &self.sinks {
            sink.thresholds(thresholds);
        }
    }

    /// A poller starts for `report` (at start, on reload, or after a restart).
    pub fn configured(&self, report: &ReportConfig) {
        let name = report.name.as_str();
        self.update(name, |s| {
            s.path = report.path.to_string();
            s.interval = report.interval;
            s.limit = report.limit;
            s.max_series = report.max_series;
            s.max_age = report.max_age;
        });
        self.telemetry
            .report_configured(name, report.interval, report.max_age);
        for sink in &self.sinks {
            sink.configured(report);
        }
    }

    /// Records what a poller of `report` did.
    pub fn apply(&self, report: &str, outcome: PollOutcome) {
        match outcome {
            PollOutcome::Scheduled { at } => {
                self.telemetry
                    .poll_scheduled(report, at.as_millisecond() as f64 / 1000.0);
                self.update(report, |s| s.next_poll = Some(at));
            }
            PollOutcome::Succeeded {
                snapshot,
                answer,
                took,
                at: now,
            } => {
                let (limit, max_series) = self.limits(report);
                if snapshot.rows as u64 >= u64::from(limit) {
                    self.telemetry.poll_truncated(report, limit);
                }
                if snapshot.duplicates > 0 {
                    self.telemetry.duplicate_rows(report, snapshot.duplicates);
                }
                if snapshot.dropped > 0 {
                    self.telemetry.series_dropped(
                        report,
                        snapshot.dropped,
                        max_series.unwrap_or_default(),
                    );
                }
                let series = snapshot.series;
                for sink in &self.sinks {
                    sink.published(report, &snapshot, &answer, now);
                }
                self.telemetry.poll_succeeded(report, series, took, now);
                let until = complete_until(&answer);
                self.update(report, |s| {
                    if let Some(until) = until {
                        if s.complete_until.is_none_or(|(before, _)| until > before) {
                            // First shown now: Adobe computed it after the
                            // poll before and after the bucket's end.
                            let since = [s.last_success, Some(until), answer.spec.computed_at]
                                .into_iter()
                                .flatten()
                                .max()
                                .unwrap_or(until);
                            let lag = s
                                .complete_until
                                .map(|_| now.duration_since(since).unsigned_abs());
                            s.complete_lag = lag.or(s.complete_lag);
                            self.telemetry.report_complete(report, until, lag);
                        }
                        s.complete_until = Some((until, answer.computed.by));
                    }
                    s.last_attempt = Some(now);
                    s.last_success = Some(now);
                    s.last_error = None;
                    s.needs_person = false;
                    s.series = series;
                });
            }
            PollOutcome::Failed {
                error,
                took,
                retry_in,
                at: now,
            } => {
                let message = error.to_string();
                if error.is_internal() {
                    self.telemetry.poll_internal_error(report, &message);
                }
                self.expire_if_stale(report, now);
                self.telemetry
                    .poll_failed(report, &message, took, retry_in, now);
                self.update(report, |s| {
                    s.last_attempt = Some(now);
                    s.last_error = Some(message);
                    s.needs_person = error.needs_person();
                });
            }
        }
    }

    fn limits(&self, report: &str) -> (u32, Option<usize>) {
        let status = self.status.read().unwrap_or_else(|e| e.into_inner());
        status
            .get(report)
            .map_or((u32::MAX, None), |s| (s.limit, s.max_series))
    }

    /// Drops a failing report's last good values once they are older than its `max_age`.
    fn expire_if_stale(&self, report: &str, now: Timestamp) {
        let Some((last_success, max_age)) = self
            .status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(report)
            .and_then(|s| Some((s.last_success?, s.max_age)))
        else {
            return;
        };
        let age = now.duration_since(last_success);
        if age > SignedDuration::try_from(max_age).unwrap_or(SignedDuration::MAX)
            && self.store.snapshot(report).is_some()
        {
            self.withdraw(report);
            self.update(report, |s| s.series = 0);
            self.telemetry.report_expired(report, max_age);
        }
    }

    /// Takes `report` out of everything: its series, status and self-metrics.
    pub fn remove(&self, report: &str) {
        self.withdraw(report);
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        status.remove(report);
        self.telemetry.forget_report(report);
    }

    /// Drops `report`'s series (its definition changed), keeping its status
    /// and self-metrics for the poller that replaces it.
    pub fn clear_series(&self, report: &str) {
        self.withdraw(report);
        self.update(report, |s| s.series = 0);
    }

    /// A copy of every status, sorted by report name.
    pub fn all(&self) -> Vec<(String, ReportStatus)> {
        let status = self.status.read().unwrap_or_else(|e| e.into_inner());
        status.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The end of the newest bucket `answer` shows complete, as an instant; for
/// a report without time, when it was read.
fn complete_until(answer: &Answer) -> Option<Timestamp> {
    let granularity = answer.spec.path.as_ref()?.granularity();
    if granularity.span().is_none() {
        return Some(answer.spec.now);
    }
    let end = answer.computed.complete_until(granularity)?;
    end.to_zoned(answer.spec.time_zone.clone())
        .ok()
        .map(|z| z.timestamp())
}
