//! The push's self-metrics (`cmu_exporter_remote_write_*`, by `remote`)
//! and its log lines: a store that keeps failing is logged at its start,
//! now and then, and when it takes pushes again; each refusal reason once
//! per remote, with the store's own message and the fix.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::streaks::{Say, human};
use super::{Telemetry, register, remove_where};

#[derive(Debug, Clone)]
pub(super) struct PushMetrics {
    samples: IntCounterVec,
    batches: IntCounterVec,
    failures: IntCounterVec,
    rejected: IntCounterVec,
    in_part: IntCounterVec,
    left_out: IntCounterVec,
    dropped: IntCounterVec,
    queue: IntGaugeVec,
    up: IntGaugeVec,
    cursor: GaugeVec,
    lag: GaugeVec,
    /// (remote, reason) pairs already logged.
    said: std::sync::Arc<Mutex<HashSet<(String, String)>>>,
}

impl PushMetrics {
    /// Whether `what` is said of `remote` for the first time (it is logged once).
    fn first_said(&self, remote: &str, what: &str) -> bool {
        self.said
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((remote.to_owned(), what.to_owned()))
    }

    pub(super) fn new(r: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        Self {
            samples: counter(
                "cmu_exporter_remote_write_samples_total",
                "Samples the store accepted, by remote.",
                &["remote"],
            ),
            batches: counter(
                "cmu_exporter_remote_write_requests_total",
                "Write requests the store accepted, by remote (a split request counts each part).",
                &["remote"],
            ),
            failures: counter(
                "cmu_exporter_remote_write_failures_total",
                "Write requests the store did not take and that are tried again, by remote and kind: \"transient\" (5xx, 429, no answer) or \"refusing\" (401, 403, 404...: a person must act). Nothing is lost while they are retried.",
                &["remote", "kind"],
            ),
            rejected: counter(
                "cmu_exporter_remote_write_rejected_samples_total",
                "Samples the store refused alone, for good, by remote and reason (out_of_bounds, out_of_order, duplicate, limits, too_large, invalid): the log says the store's message and the fix.",
                &["remote", "reason"],
            ),
            in_part: counter(
                "cmu_exporter_remote_write_requests_taken_in_part_total",
                "Requests the store took in part, by remote and reason: it stored the rest and refused some samples (Thanos Receive's 409 for samples it holds already, out of order or too old; Mimir's and Cortex's 400, which keep the good samples). Not sent again; the log says the store's message once per reason.",
                &["remote", "reason"],
            ),
            left_out: counter(
                "cmu_exporter_remote_write_buckets_left_out_total",
                "Buckets older than max_gap left out of a gap fill, by remote and report: `cmu-exporter backfill --remote-write` fills them.",
                &["remote", "report"],
            ),
            dropped: counter(
                "cmu_exporter_remote_write_answers_deferred_total",
                "Polled answers not queued for the push because its queue was full (a slow store): their buckets are fetched again by the gap fill.",
                &["remote"],
            ),
            queue: int_gauge(
                "cmu_exporter_remote_write_queue_length",
                "Polled answers waiting to be pushed, by remote.",
                &["remote"],
            ),
            up: int_gauge(
                "cmu_exporter_remote_write_up",
                "1 when the last write request to the remote was accepted (or nothing was sent yet), 0 while it fails.",
                &["remote"],
            ),
            cursor: gauge(
                "cmu_exporter_remote_write_cursor_timestamp_seconds",
                "End of the newest bucket of the report the store holds, by remote and report (Unix seconds).",
                &["remote", "report"],
            ),
            lag: gauge(
                "cmu_exporter_remote_write_lag_seconds",
                "How late the store is, by remote and report: how long ago the first bucket it lacks became complete (0 while it holds every complete bucket). A bucket is pushed about one poll after it ends, so this stays under the report's interval but for Adobe's own delay.",
                &["remote", "report"],
            ),
            said: Default::default(),
        }
    }
}

impl Telemetry {
    /// `remote` is configured: its series start at zero, a refusal for
    /// each of `reasons` among them.
    pub fn push_configured<'a>(&self, remote: &str, reasons: impl IntoIterator<Item = &'a str>) {
        self.touch();
        self.push.up.with_label_values(&[remote]).set(1);
        self.push.queue.with_label_values(&[remote]).set(0);
        for kind in ["transient", "refusing"] {
            self.push.failures.with_label_values(&[remote, kind]);
        }
        for reason in reasons {
            self.push.rejected.with_label_values(&[remote, reason]);
            self.push.in_part.with_label_values(&[remote, reason]);
        }
        self.push.samples.with_label_values(&[remote]);
        self.push.batches.with_label_values(&[remote]);
        self.push.dropped.with_label_values(&[remote]);
    }

    /// `remote` left the configuration: its series go.
    pub fn push_forgotten(&self, remote: &str) {
        self.touch();
        let p = &self.push;
        for vec in [
            &p.samples,
            &p.batches,
            &p.failures,
            &p.rejected,
            &p.in_part,
            &p.left_out,
            &p.dropped,
        ] {
            remove_where(vec, "remote", remote);
        }
        for vec in [&p.queue, &p.up] {
            remove_where(vec, "remote", remote);
        }
        for vec in [&p.cursor, &p.lag] {
            remove_where(vec, "remote", remote);
        }
        self.streaks.forget(&format!("remote_write {remote}"));
    }

    /// A request of `series` samples was accepted.
    pub fn push_sent(&self, remote: &str, series: usize) {
        self.touch();
        self.push
            .samples
            .with_label_values(&[remote])
            .inc_by(series as u64);
        self.push.batches.with_label_values(&[remote]).inc();
    }

    /// A request was accepted after failures, at `now`.
    pub fn push_recovered(&self, remote: &str, now: Timestamp) {
        self.touch();
        self.push.up.with_label_values(&[remote]).set(1);
        if let Some(up) = self
            .streaks
            .succeeded(&format!("remote_write {remote}"), now)
        {
            tracing::info!(
                remote,
                failures = up.failures,
                over = %human(up.over),
                "the store takes pushes again after {} failed requests over {}",
                up.failures,
                human(up.over)
            );
        }
    }

    /// A request was not taken (`why`); it is tried again after `pause`.
    /// `needs_person`: the store refuses every push (credentials, URL).
    pub fn push_failed(
        &self,
        remote: &str,
        why: &str,
        pause: Duration,
        needs_person: bool,
        now: Timestamp,
    ) {
        self.touch();
        let kind = if needs_person {
            "refusing"
        } else {
            "transient"
        };
        self.push.failures.with_label_values(&[remote, kind]).inc();
        self.push.up.with_label_values(&[remote]).set(0);
        let retry =
            humantime::format_duration(Duration::from_secs(pause.as_secs().max(1))).to_string();
        match self.streaks.failed(&format!("remote_write {remote}"), now) {
            Say::Started => tracing::warn!(
                remote,
                error = why,
                retry_in = %retry,
                "the store did not take a push: held and tried again; nothing is lost while the gap stays within max_gap"
            ),
            Say::StillFailing {
                since_last_line,
                failing_for,
            } => tracing::warn!(
                remote,
                error = why,
                failures = since_last_line,
                failing_for = %human(failing_for),
                "the store still does not take pushes"
            ),
            Say::Quiet => {}
        }
    }

    /// A series the store refused alone, for `reason`: lost, counted, and
    /// the first of each reason per remote logged with the fix.
    pub fn push_rejected(&self, remote: &str, reason: &str, message: &str, fix: &str) {
        self.touch();
        self.push
            .rejected
            .with_label_values(&[remote, reason])
            .inc();
        if self.push.first_said(remote, reason) {
            tracing::warn!(
                remote,
                reason,
                store_said = message,
                "the store refused samples for good (counted in cmu_exporter_remote_write_rejected_samples_total; this reason is logged once): {fix}"
            );
        }
    }

    /// A request the store took in part, for `reason`: counted, never sent
    /// again, and the first of each reason per remote logged with the fix
    /// (INFO for samples the store holds already, as after two replicas or
    /// a gap fill; WARN for samples it may have lost).
    pub fn push_taken_in_part(&self, remote: &str, reason: &str, message: &str, fix: &str) {
        self.touch();
        self.push.in_part.with_label_values(&[remote, reason]).inc();
        if !self.push.first_said(remote, &format!("in part: {reason}")) {
            return;
        }
        let held = matches!(reason, "duplicate" | "out_of_order" | "conflict");
        if held {
            tracing::info!(
                remote,
                reason,
                store_said = message,
                "the store took a request in part: it holds samples at these times already (another replica pushed them, or a gap fill re-sent them), or refuses them out of order; counted in cmu_exporter_remote_write_requests_taken_in_part_total, not sent again, this reason logged once; if no other writer pushes these series: {fix}"
            );
        } else {
            tracing::warn!(
                remote,
                reason,
                store_said = message,
                "the store took a request in part and refused some samples for good (counted in cmu_exporter_remote_write_requests_taken_in_part_total; this reason is logged once): {fix}"
            );
        }
    }

    /// A gap fill of `report` left `buckets` out, being older than `max_gap`.
    pub fn push_left_out(
        &self,
        remote: &str,
        report: &str,
        buckets: u64,
        max_gap: Duration,
        command: &str,
    ) {
        self.touch();
        self.push
            .left_out
            .with_label_values(&[remote, report])
            .inc_by(buckets);
        tracing::warn!(
            remote,
            report,
            buckets,
            max_gap = %humantime::format_duration(max_gap),
            "the gap is longer than max_gap: its newest max_gap is pushed, older buckets are left out; fill them with `{command}`"
        );
    }

    /// A polled answer found the push queue full.
    pub fn push_deferred(&self, remote: &str) {
        self.touch();
        self.push.dropped.with_label_values(&[remote]).inc();
    }

    /// Polled answers waiting for `remote`.
    pub fn push_queue(&self, remote: &str, length: usize) {
        self.touch();
        self.push
            .queue
            .with_label_values(&[remote])
            .set(length as i64);
    }

    /// `report`'s push to `remote` stands at `cursor` (the end of the
    /// newest bucket the store holds); the next bucket is complete at
    /// `due`; seen at `now`.
    pub fn push_cursor(
        &self,
        remote: &str,
        report: &str,
        cursor: Timestamp,
        due: Timestamp,
        now: Timestamp,
    ) {
        self.touch();
        let seconds = |t: Timestamp| t.as_millisecond() as f64 / 1000.0;
        // The report's count of buckets left out starts at zero with its cursor.
        self.push.left_out.with_label_values(&[remote, report]);
        self.push
            .cursor
            .with_label_values(&[remote, report])
            .set(seconds(cursor));
        self.push
            .lag
            .with_label_values(&[remote, report])
            .set((seconds(now) - seconds(due)).max(0.0));
    }
}
