//! The exporter's own health: `cmu_exporter_*` metrics and log lines.
//!
//! Each outcome (a poll succeeded or failed, an HTTP call ended, a token was
//! renewed, a registration happened) is one method here that both logs and
//! updates its metrics, so the two always tell the same story.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

mod push;
pub mod streaks;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};

use self::streaks::{Say, Streaks, human};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

/// Which remote API a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Dcr,
    /// A report API: CMU or ESM.
    Report(crate::report::ReportApi),
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Api::Dcr => "dcr",
            Api::Report(api) => api.as_str(),
        }
    }
}

/// Removes one report's series from one metric vector.
type Forget = Arc<dyn Fn(&str) + Send + Sync>;

/// Every metric vector labelled by `report`, to forget a report in one go.
#[derive(Clone, Default)]
struct PerReport(Vec<Forget>);

impl std::fmt::Debug for PerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PerReport({} vectors)", self.0.len())
    }
}

/// A `Forget` for `vec`: removes every series whose `report` label is the one given.
/// What one exchange came to, as `cmu_exporter_http_requests_total`'s
/// `code` label says it: a request whose body never arrived whole is not
/// counted under the status its headers carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole answer was read; its HTTP status.
    Status(u16),
    /// No answer came: the connection failed or timed out before the headers.
    NoAnswer,
    /// The headers came, then the body timed out (`adobe.request_timeout`).
    BodyTimeout,
    /// The headers came, then the body broke (connection reset, bad gzip...).
    BodyBroken,
    /// The body was longer than allowed (`adobe.max_answer_size`).
    TooLarge,
}

impl Outcome {
    /// Every value of the `code` label but the HTTP statuses.
    pub const CODES: [&'static str; 4] = ["error", "body_timeout", "body_broken", "too_large"];

    /// The `code` label's value.
    pub fn code(self) -> std::borrow::Cow<'static, str> {
        match self {
            Outcome::Status(status) => status.to_string().into(),
            Outcome::NoAnswer => Self::CODES[0].into(),
            Outcome::BodyTimeout => Self::CODES[1].into(),
            Outcome::BodyBroken => Self::CODES[2].into(),
            Outcome::TooLarge => Self::CODES[3].into(),
        }
    }

    /// Whether the headers came but the body did not arrive whole.
    pub fn is_broken_body(self) -> bool {
        matches!(
            self,
            Outcome::BodyTimeout | Outcome::BodyBroken | Outcome::TooLarge
        )
    }
}

fn forgetter<T: MetricVecBuilder + 'static>(vec: MetricVec<T>) -> Forget {
    Arc::new(move |report: &str| remove_where(&vec, REPORT, report))
}

/// Removes from `vec` every series whose label `name` is `value`.
fn remove_where<T: MetricVecBuilder>(vec: &MetricVec<T>, name: &str, value: &str) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if labels.get(name) == Some(&value) {
                let _ = vec.remove(&labels);
            }
        }
    }
}

/// The label of per-report self-metrics.
const REPORT: &str = crate::names::REPORT_LABEL;

/// The label of per-account self-metrics, when several accounts are configured.
const ACCOUNT: &str = crate::names::ACCOUNT_LABEL;

/// Self-metrics registry and the event methods that feed it.
#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Registry,
    /// Bumped by every event: a scrape re-encodes the self-metrics only
    /// when it moved (or when the process metrics are a second old).
    generation: Arc<std::sync::atomic::AtomicU64>,
    per_report: PerReport,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    dcr_requests: IntCounterVec,
    /// Whether the credentials metrics carry an `account` label (several accounts).
    by_account: bool,
    registrations: IntCounterVec,
    token_expiry: GaugeVec,
    credentials_ok: IntGaugeVec,
    credentials_needs_person: IntGaugeVec,
    report_interval: GaugeVec,
    credentials_info: GaugeVec,
    report_up: IntGaugeVec,
    report_last_success: GaugeVec,
    report_series: IntGaugeVec,
    report_poll_duration: HistogramVec,
    report_next_poll: GaugeVec,
    report_complete_until: GaugeVec,
    report_max_age: GaugeVec,
    report_complete_lag: GaugeVec,
    polls: IntCounterVec,
    truncated: IntCounterVec,
    duplicates: IntCounterVec,
    connections_refused: IntCounter,
    state_write_failures: IntCounter,
    /// Unix second of the last "connection refused" log line.
    refusal_logged: Arc<std::sync::atomic::AtomicU64>,
    /// Runs of failures of each report and each account's credentials, so
    /// a failure that lasts is logged at its start, now and then, and at its end.
    streaks: Arc<Streaks>,
    dropped: IntCounterVec,
    reload_ok: IntGauge,
    reload_success: Gauge,
    internal_errors: IntCounterVec,
    poller_restarts: IntCounterVec,
    shard_info: IntGaugeVec,
    total_shards: IntGauge,
    /// The push to remote-write stores.
    push: push::PushMetrics,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    registry
        .register(Box::new(metric.clone()))
        .expect("self-metric names are unique");
    metric
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// The self-metrics of one account: no `account` label.
    pub fn new() -> Self {
        Self::build(false)
    }

    /// The self-metrics of several accounts: the credentials metrics carry `account`.
    pub fn with_accounts() -> Self {
        Self::build(true)
    }

    fn build(by_account: bool) -> Self {
        let r = Registry::new();
        let account: &[&str] = if by_account { &[ACCOUNT] } else { &[] };
        let per_report = RefCell::new(Vec::new());
        // Registers a vector, and notes it as per-report when `report` is its first label.
        let vector = |labels: &[&str], make: &dyn Fn() -> Forget| {
            if labels.first() == Some(&REPORT) {
                per_report.borrow_mut().push(make());
            }
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let v = register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            );
            vector(labels, &|| forgetter(v.clone()));
            v
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let v = register(
                &r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            );
            vector(labels, &|| forgetter(v.clone()));
            v
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| {
            let v = register(
                &r,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            );
            vector(labels, &|| forgetter(v.clone()));
            v
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let v = register(
                &r,
                HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                    .expect("valid metric"),
            );
            vector(labels, &|| forgetter(v.clone()));
            v
        };
        let latency = vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
        let build_info = int_gauge(
            "cmu_exporter_build_info",
            "Version, git revision and compiler of the running exporter. Always 1.",
            &["version", "revision", "rustc_version"],
        );
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("CMU_EXPORTER_REVISION"),
                env!("CMU_EXPORTER_RUSTC_VERSION"),
            ])
            .set(1);
        // The usual process_* metrics: CPU, memory, open fds, start time.
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process metrics register once");
        Self {
            http_requests: counter(
                "cmu_exporter_http_requests_total",
                "Requests the exporter sent to Adobe, by API (dcr, cmu or esm), endpoint (register, token, or the report name) and code: the HTTP status of an answer read whole, \"error\" when no answer came, \"body_timeout\" or \"body_broken\" when the body did not arrive whole after its headers, \"too_large\" when it exceeded adobe.max_answer_size.",
                &["api", "endpoint", "code"],
            ),
            http_duration: histogram(
                "cmu_exporter_http_request_duration_seconds",
                "Time from sending a request to Adobe to having its whole answer, or to its failure (no answer, a broken or too large body).",
                &["api", "endpoint"],
                latency.clone(),
            ),
            dcr_requests: counter(
                "cmu_exporter_dcr_requests_total",
                "Deprecated, to be removed: the same count as cmu_exporter_http_requests_total{api=\"dcr\"}. Requests to Adobe's DCR server, by endpoint (register or token) and code.",
                &["endpoint", "code"],
            ),
            registrations: counter(
                "cmu_exporter_registrations_total",
                "Client registrations with the software statement. Expected once per installation (per account), then only when Adobe revokes the credentials.",
                account,
            ),
            token_expiry: gauge(
                "cmu_exporter_token_expiry_timestamp_seconds",
                "When the current access token expires, as a Unix timestamp (0 before the first token).",
                account,
            ),
            credentials_ok: int_gauge(
                "cmu_exporter_credentials_ok",
                "1 while the exporter holds or can obtain a working access token, 0 while it cannot (the log and /readyz say why).",
                account,
            ),
            credentials_info: gauge(
                "cmu_exporter_credentials_info",
                "The application the software statement belongs to (software_id, or sub where there is none) and its issuer. Always 1.",
                &[&["application_id", "issuer"][..], account].concat(),
            ),
            credentials_needs_person: int_gauge(
                "cmu_exporter_credentials_needs_person",
                "1 while Adobe refuses the credentials for a reason only a person can fix (statement not approved, pre-registered client revoked...): /readyz and the log say which. 0 otherwise.",
                account,
            ),
            by_account,
            report_interval: gauge(
                "cmu_exporter_report_interval_seconds",
                "Configured time between polls of the report: compare with the age of its last success.",
                &[REPORT],
            ),
            report_up: int_gauge(
                "cmu_exporter_report_up",
                "1 if the last poll of the report succeeded, 0 if it failed.",
                &[REPORT],
            ),
            report_last_success: gauge(
                "cmu_exporter_report_last_success_timestamp_seconds",
                "When the report was last polled successfully, as a Unix timestamp.",
                &[REPORT],
            ),
            report_series: int_gauge(
                "cmu_exporter_report_series",
                "Series the report currently exports.",
                &[REPORT],
            ),
            report_poll_duration: histogram(
                "cmu_exporter_report_poll_duration_seconds",
                "Time one poll of a report took: token, request, parsing and encoding.",
                &[REPORT],
                latency,
            ),
            report_complete_until: gauge(
                "cmu_exporter_report_complete_until_timestamp_seconds",
                "End of the newest bucket Adobe has computed past, as the last good answer showed, as a Unix timestamp: time() minus it is the age of the newest complete values.",
                &[REPORT],
            ),
            report_max_age: gauge(
                "cmu_exporter_report_max_age_seconds",
                "The report's max_age: its values are dropped when no poll succeeded for that long, and the bundled rules read them only while its newest complete bucket is younger.",
                &[REPORT],
            ),
            report_complete_lag: gauge(
                "cmu_exporter_report_complete_lag_seconds",
                "How long after Adobe computed it the newest complete bucket was first exported, at most: from the later of the poll before and the bucket's end (ESM: its Last-Modified) to the poll that showed it.",
                &[REPORT],
            ),
            report_next_poll: gauge(
                "cmu_exporter_report_next_poll_timestamp_seconds",
                "When the report will be polled next, as a Unix timestamp.",
                &[REPORT],
            ),
            polls: counter(
                "cmu_exporter_report_polls_total",
                "Polls of each report, by result (success or failure).",
                &[REPORT, "result"],
            ),
            truncated: counter(
                "cmu_exporter_report_truncated_total",
                "Polls whose answer had as many rows as the limit asked for, so rows may be missing: raise the report's limit.",
                &[REPORT],
            ),
            state_write_failures: register(
                &r,
                IntCounter::new(
                    "cmu_exporter_state_write_failures_total",
                    "Writes of the credentials state file that failed (full disk, read-only state_dir): the exporter keeps serving with the credentials it holds.",
                )
                .expect("valid metric"),
            ),
            connections_refused: register(
                &r,
                IntCounter::new(
                    "cmu_exporter_http_connections_refused_total",
                    "Connections to the exporter's own server closed at once because --web.max-connections were open.",
                )
                .expect("valid metric"),
            ),
            duplicates: counter(
                "cmu_exporter_report_duplicate_rows_total",
                "Rows of a report's answers that repeated the labels of an earlier row: the first was kept.",
                &[REPORT],
            ),
            dropped: counter(
                "cmu_exporter_series_dropped_total",
                "Series the max_series guard dropped from a report's polls: raise max_series or narrow the report.",
                &[REPORT],
            ),
            reload_ok: register(
                &r,
                IntGauge::new(
                    "cmu_exporter_config_last_reload_successful",
                    "1 if the last configuration load (at start, SIGHUP or POST /-/reload) succeeded, 0 if the new file was refused and the previous one kept running.",
                )
                .expect("valid metric"),
            ),
            reload_success: register(
                &r,
                Gauge::new(
                    "cmu_exporter_config_last_reload_success_timestamp_seconds",
                    "When the configuration was last loaded successfully, as a Unix timestamp.",
                )
                .expect("valid metric"),
            ),
            internal_errors: counter(
                "cmu_exporter_report_internal_errors_total",
                "Polls of the report that failed on a bug in the exporter (a panic while fetching, parsing or building). The poll is retried; each one is logged at ERROR: please report it.",
                &[REPORT],
            ),
            poller_restarts: counter(
                "cmu_exporter_poller_restarts_total",
                "Times the report's poller task ended unasked (a bug in the exporter) and was started again. Each one is logged at ERROR: please report it.",
                &[REPORT],
            ),
            total_shards: register(
                &r,
                IntGauge::new(
                    "cmu_exporter_total_shards",
                    "How many shards this deployment expects (--total-shards), as a value: the alert CmuExporterShardMissing compares it with the shards that answer.",
                )
                .expect("valid metric"),
            ),
            shard_info: int_gauge(
                "cmu_exporter_shard_info",
                "This process's shard (from 0) among total_shards: it polls the reports whose name hashes to it (FNV-1a of the name, modulo total_shards). Always 1.",
                &["shard", "total_shards"],
            ),
            push: push::PushMetrics::new(&r),
            per_report: PerReport(per_report.take()),
            generation: Arc::default(),
            refusal_logged: Arc::default(),
            streaks: Arc::default(),
            registry: r,
        }
    }

    /// This process polls the reports of `shard`.
    pub fn shard(&self, shard: crate::shard::Shard) {
        self.touch();
        self.shard_info.reset();
        self.shard_info
            .with_label_values(&[shard.index.to_string(), shard.total.to_string()])
            .set(1);
        self.total_shards.set(i64::from(shard.total));
    }

    /// The configuration was loaded (at start or by a reload) at `now` (Unix seconds).
    pub fn config_loaded(&self, now: f64) {
        self.touch();
        self.reload_ok.set(1);
        self.reload_success.set(now);
    }

    /// A new configuration was refused; the previous one keeps running.
    pub fn config_refused(&self, reason: &str) {
        self.touch();
        self.reload_ok.set(0);
        tracing::error!(
            reason,
            "configuration reload refused; the previous configuration keeps running"
        );
    }

    /// A report left the configuration: its series go with it.
    pub fn forget_report(&self, report: &str) {
        self.streaks.forget(report);
        self.touch();
        for forget in &self.per_report.0 {
            forget(report);
        }
    }

    /// Changes with every event that changes a self-metric.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn touch(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The self-metrics in text exposition format, through the same text
    /// writer as the report series.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_text(&self.registry.gather(), out);
    }

    /// The self-metrics as they are now, appended to a remote-write
    /// request: one sample per series stamped `timestamp_ms`, with `extra`.
    pub fn append_to(
        &self,
        request: &mut crate::export::format::remote_write::WriteRequest,
        extra: &[(String, String)],
        timestamp_ms: i64,
    ) {
        each_sample(
            &self.registry.gather(),
            |_, _, _| {},
            |name, pairs, le, value| {
                request.append_series(
                    name,
                    |f| {
                        for pair in pairs {
                            f(pair.name(), pair.value().as_bytes());
                        }
                        if let Some(le) = le {
                            f("le", le.as_bytes());
                        }
                    },
                    value,
                    extra,
                    timestamp_ms,
                )
            },
        );
    }

    /// An HTTP exchange with Adobe ended as `outcome` says. A body that
    /// broke after its headers is a WARN (a retry may hide it from the
    /// poll's result, never from this counter).
    pub fn http_request(&self, api: Api, endpoint: &str, outcome: Outcome, took: Duration) {
        self.touch();
        let code = outcome.code();
        self.http_requests
            .with_label_values(&[api.as_str(), endpoint, &code])
            .inc();
        self.http_duration
            .with_label_values(&[api.as_str(), endpoint])
            .observe(took.as_secs_f64());
        if api == Api::Dcr {
            self.dcr_requests
                .with_label_values(&[endpoint, &code])
                .inc();
        }
        if outcome.is_broken_body() {
            tracing::warn!(
                api = api.as_str(),
                endpoint,
                code = %code,
                took_ms = took.as_millis() as u64,
                "the answer's headers came but its body did not arrive whole (counted under this code, not under its HTTP status)"
            );
        } else {
            tracing::debug!(
                api = api.as_str(),
                endpoint,
                code = %code,
                took_ms = took.as_millis() as u64,
                "request to Adobe ended"
            );
        }
    }

    /// The `account` label values for `account` (none with a single account).
    fn account<'a>(&self, account: Option<&'a str>) -> Vec<&'a str> {
        if self.by_account {
            vec![account.unwrap_or_default()]
        } else {
            Vec::new()
        }
    }

    /// A new client was registered with the software statement.
    pub fn registered(&self, account: Option<&str>, client_id: &str) {
        self.touch();
        self.registrations
            .with_label_values(&self.account(account))
            .inc();
        tracing::info!(
            account,
            client_id,
            "registered a new client with the software statement"
        );
    }

    /// An account's credentials are in use: its counters are present at 0.
    pub fn account_opened(&self, account: Option<&str>) {
        self.touch();
        self.registrations.with_label_values(&self.account(account));
    }

    /// The statement's public claims, for `cmu_exporter_credentials_info`.
    pub fn statement_claims(&self, account: Option<&str>, application_id: &str, issuer: &str) {
        self.touch();
        if !self.by_account {
            self.credentials_info.reset();
        }
        let mut labels = vec![application_id, issuer];
        labels.extend(self.account(account));
        self.credentials_info.with_label_values(&labels).set(1.0);
    }

    /// A token is in hand, valid until `expires_at` (Unix seconds), at `now`.
    pub fn token_ready(
        &self,
        account: Option<&str>,
        expires_at: f64,
        fetched: bool,
        now: Timestamp,
    ) {
        self.touch();
        let labels = self.account(account);
        self.token_expiry.with_label_values(&labels).set(expires_at);
        self.credentials_ok.with_label_values(&labels).set(1);
        self.credentials_needs_person
            .with_label_values(&labels)
            .set(0);
        if fetched {
            tracing::debug!(account, expires_at, "fetched a new access token");
        }
        if let Some(up) = self.streaks.succeeded(&credentials_subject(account), now) {
            tracing::info!(
                account,
                failures = up.failures,
                over = %human(up.over),
                "credentials work again after {} failures over {}",
                up.failures,
                human(up.over)
            );
        }
    }

    /// Credentials cannot be had at `now`; `needs_person` when retrying
    /// will not help. A failure that lasts is logged at its start, then at
    /// most every [`streaks::REPEAT_EVERY`].
    pub fn credentials_failed(
        &self,
        account: Option<&str>,
        reason: &str,
        needs_person: bool,
        now: Timestamp,
    ) {
        self.touch();
        let labels = self.account(account);
        self.credentials_ok.with_label_values(&labels).set(0);
        self.credentials_needs_person
            .with_label_values(&labels)
            .set(i64::from(needs_person));
        let say = self.streaks.failed(&credentials_subject(account), now);
        let (since_last_line, failing_for) = match say {
            Say::Started => (1, String::new()),
            Say::StillFailing {
                since_last_line,
                failing_for,
            } => (since_last_line, human(failing_for)),
            Say::Quiet => {
                tracing::debug!(account, reason, "could not obtain an access token (still)");
                return;
            }
        };
        match (needs_person, say) {
            (true, Say::Started) => tracing::error!(account, reason, "credentials need a person"),
            (false, Say::Started) => {
                tracing::warn!(account, reason, "could not obtain an access token")
            }
            (true, _) => tracing::error!(
                account,
                reason,
                failures = since_last_line,
                failing_for = %failing_for,
                "credentials still need a person"
            ),
            (false, _) => tracing::warn!(
                account,
                reason,
                failures = since_last_line,
                failing_for = %failing_for,
                "still no access token"
            ),
        }
    }

    /// A report is configured to be polled every `interval`.
    /// Its counters are present at 0 from now on, so that `increase()`
    /// sees their first increment.
    pub fn report_configured(&self, report: &str, interval: Duration, max_age: Duration) {
        self.touch();
        self.report_interval
            .with_label_values(&[report])
            .set(interval.as_secs_f64());
        self.report_max_age
            .with_label_values(&[report])
            .set(max_age.as_secs_f64());
        for result in ["success", "failure"] {
            self.polls.with_label_values(&[report, result]);
        }
        for counter in [
            &self.truncated,
            &self.duplicates,
            &self.dropped,
            &self.internal_errors,
            &self.poller_restarts,
        ] {
            counter.with_label_values(&[report]);
        }
    }

    /// A report poll is scheduled for `at` (Unix seconds).
    pub fn poll_scheduled(&self, report: &str, at: f64) {
        self.touch();
        self.report_next_poll.with_label_values(&[report]).set(at);
    }

    /// A report's newest complete bucket ends at `until`; it was first
    /// exported `lag` after Adobe computed it, at most.
    pub fn report_complete(&self, report: &str, until: Timestamp, lag: Option<Duration>) {
        self.touch();
        self.report_complete_until
            .with_label_values(&[report])
            .set(until.as_millisecond() as f64 / 1000.0);
        if let Some(lag) = lag {
            self.report_complete_lag
                .with_label_values(&[report])
                .set(lag.as_secs_f64());
        }
    }

    /// A report was polled and its snapshot published at `now`.
    pub fn poll_succeeded(&self, report: &str, series: usize, took: Duration, now: Timestamp) {
        self.touch();
        self.report_up.with_label_values(&[report]).set(1);
        self.report_last_success
            .with_label_values(&[report])
            .set(now.as_millisecond() as f64 / 1000.0);
        self.report_series
            .with_label_values(&[report])
            .set(series as i64);
        self.report_poll_duration
            .with_label_values(&[report])
            .observe(took.as_secs_f64());
        self.polls.with_label_values(&[report, "success"]).inc();
        tracing::debug!(
            report,
            series,
            took_ms = took.as_millis() as u64,
            "polled report"
        );
        if let Some(up) = self.streaks.succeeded(report, now) {
            tracing::info!(
                report,
                failures = up.failures,
                over = %human(up.over),
                "report polled again after {} failed polls over {}",
                up.failures,
                human(up.over)
            );
        }
    }

    /// A report poll failed at `now`; the last good values stay. A failure
    /// that lasts is a WARN at its start, then at most every
    /// [`streaks::REPEAT_EVERY`] with the polls failed since; every one is
    /// counted.
    pub fn poll_failed(
        &self,
        report: &str,
        error: &str,
        took: Duration,
        retry_in: Duration,
        now: Timestamp,
    ) {
        self.touch();
        self.report_up.with_label_values(&[report]).set(0);
        self.report_poll_duration
            .with_label_values(&[report])
            .observe(took.as_secs_f64());
        self.polls.with_label_values(&[report, "failure"]).inc();
        let retry = humantime::format_duration(Duration::from_secs(retry_in.as_secs())).to_string();
        match self.streaks.failed(report, now) {
            Say::Started => {
                tracing::warn!(report, error, retry_in = %retry, "poll failed; keeping the last good values")
            }
            Say::StillFailing {
                since_last_line,
                failing_for,
            } => tracing::warn!(
                report,
                error,
                failures = since_last_line,
                failing_for = %human(failing_for),
                retry_in = %retry,
                "report still failing ({} failed polls since the last line); keeping the last good values",
                since_last_line
            ),
            Say::Quiet => {
                tracing::debug!(report, error, retry_in = %retry, "poll failed again")
            }
        }
    }

    /// A report's answer had as many rows as the limit.
    pub fn poll_truncated(&self, report: &str, limit: u32) {
        self.touch();
        self.truncated.with_label_values(&[report]).inc();
        tracing::warn!(
            report,
            limit,
            "answer has as many rows as the limit: rows may be missing; raise the report's limit"
        );
    }

    /// The credentials state file could not be written.
    pub fn state_write_failed(&self, account: Option<&str>, reason: &str) {
        self.touch();
        self.state_write_failures.inc();
        tracing::error!(
            account,
            reason,
            "cannot write the credentials state: the exporter keeps serving with the credentials it holds, but a restart before the next successful write must register again; free the disk or make state_dir writable"
        );
    }

    /// A connection to our server was refused: `max` were open already.
    /// Logged at most once a minute (a flood must not flood the log too).
    pub fn connection_refused(&self, max: usize) {
        self.touch();
        self.connections_refused.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self
            .refusal_logged
            .load(std::sync::atomic::Ordering::Relaxed);
        if now >= last + 60
            && self
                .refusal_logged
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            tracing::warn!(
                max_connections = max,
                "connection refused: --web.max-connections are open (counted in cmu_exporter_http_connections_refused_total)"
            );
        }
    }

    /// A report's answer repeated rows; the first of each was kept.
    pub fn duplicate_rows(&self, report: &str, rows: usize) {
        self.touch();
        self.duplicates
            .with_label_values(&[report])
            .inc_by(rows as u64);
        tracing::warn!(
            report,
            rows,
            "answer repeats rows with the same labels: the first of each is kept"
        );
    }

    /// The `max_series` guard dropped series from a poll.
    pub fn series_dropped(&self, report: &str, dropped: usize, max_series: usize) {
        self.touch();
        self.dropped
            .with_label_values(&[report])
            .inc_by(dropped as u64);
        tracing::warn!(
            report,
            dropped,
            max_series,
            "report exceeds max_series: series dropped; raise max_series or narrow the report"
        );
    }

    /// A failing report's last good values grew older than `max_age` and were dropped.
    pub fn report_expired(&self, report: &str, max_age: Duration) {
        self.touch();
        self.report_series.with_label_values(&[report]).set(0);
        let age = humantime::format_duration(max_age).to_string();
        tracing::warn!(report, max_age = %age, "no successful poll within max_age: the report's series are no longer exported");
    }

    /// A poll failed on a bug of ours (a panic); it is retried like any failure.
    pub fn poll_internal_error(&self, report: &str, error: &str) {
        self.touch();
        self.internal_errors.with_label_values(&[report]).inc();
        tracing::error!(
            report,
            error,
            "poll failed on an internal error (a bug in the exporter): the poll is retried; please report this"
        );
    }

    /// A report's poller task ended unasked and starts again after `pause`.
    pub fn poller_restarted(&self, report: &str, why: &str, pause: Duration) {
        self.touch();
        self.poller_restarts.with_label_values(&[report]).inc();
        let pause = humantime::format_duration(Duration::from_secs(pause.as_secs())).to_string();
        tracing::error!(report, why, restart_in = %pause, "the report's poller stopped unasked (a bug in the exporter): restarting it; please report this");
    }
}

/// The subject of an account's credentials in [`Streaks`].
fn credentials_subject(account: Option<&str>) -> String {
    format!("credentials of {}", account.unwrap_or("the account"))
}

/// Walks the gathered self-metrics: `header` per family (counters, gauges
/// and histograms, the only kinds registered), then `sample` per sample
/// (name, label pairs, `le` of a histogram bucket, value), histograms with
/// `_sum` and a `+Inf` bucket.
fn each_sample(
    families: &[prometheus::proto::MetricFamily],
    mut header: impl FnMut(&str, &str, crate::export::FamilyKind),
    mut sample: impl FnMut(&str, &[prometheus::proto::LabelPair], Option<&str>, f64),
) {
    use crate::export::FamilyKind;
    use prometheus::proto::MetricType;
    for family in families {
        let kind = match family.get_field_type() {
            MetricType::COUNTER => FamilyKind::Counter,
            MetricType::GAUGE => FamilyKind::Gauge,
            MetricType::HISTOGRAM => FamilyKind::Histogram,
            MetricType::SUMMARY | MetricType::UNTYPED => continue,
        };
        let name = family.name();
        header(name, family.help(), kind);
        let (bucket, sum, count) = (
            format!("{name}_bucket"),
            format!("{name}_sum"),
            format!("{name}_count"),
        );
        for metric in family.get_metric() {
            let pairs = metric.get_label();
            match kind {
                FamilyKind::Counter => sample(name, pairs, None, metric.get_counter().get_value()),
                FamilyKind::Gauge => sample(name, pairs, None, metric.get_gauge().get_value()),
                FamilyKind::Histogram => {
                    let histogram = metric.get_histogram();
                    let total = histogram.get_sample_count() as f64;
                    let mut infinite = false;
                    for b in histogram.get_bucket() {
                        let upper = b.upper_bound();
                        infinite |= upper == f64::INFINITY;
                        let le = if upper == f64::INFINITY {
                            "+Inf".to_owned()
                        } else {
                            upper.to_string()
                        };
                        sample(&bucket, pairs, Some(&le), b.cumulative_count() as f64);
                    }
                    if !infinite {
                        sample(&bucket, pairs, Some("+Inf"), total);
                    }
                    sample(&sum, pairs, None, histogram.get_sample_sum());
                    sample(&count, pairs, None, total);
                }
            }
        }
    }
}

/// The gathered self-metrics as Prometheus text.
fn write_text(families: &[prometheus::proto::MetricFamily], out: &mut Vec<u8>) {
    use crate::export::format::text::{write_header, write_sample};
    let out = std::cell::RefCell::new(out);
    each_sample(
        families,
        |name, help, kind| write_header(name, help, kind, &mut out.borrow_mut()),
        |name, pairs, le, value| {
            write_sample(name, pair_labels(pairs, le), value, &mut out.borrow_mut())
        },
    );
}

/// A metric's label pairs, and `le` for a histogram bucket.
fn pair_labels<'a>(
    pairs: &'a [prometheus::proto::LabelPair],
    le: Option<&'a str>,
) -> impl FnOnce(crate::export::format::text::EachLabel<'_>) + 'a {
    move |f| {
        for pair in pairs {
            f(pair.name(), pair.value().as_bytes());
        }
        if let Some(le) = le {
            f("le", le.as_bytes());
        }
    }
}
