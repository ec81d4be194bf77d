//! Polls each configured report at its own pace and publishes snapshots.
//!
//! A report is polled once right away, then on a fixed grid of its interval
//! (shifted by a per-report phase so reports do not fire together). A failed
//! poll keeps the last good values and is retried sooner, backing off up to
//! the interval. A global semaphore bounds concurrent CMU requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::cmu::{CmuClient, CmuError, ReportQuery};
use crate::config::ReportConfig;
use crate::credentials::{Credentials, CredentialsError};
use crate::export::{BucketChoice, ExportStore, SnapshotSpec, build_snapshot};
use crate::report::{Granularity, ParseError};
use crate::shutdown::ShutdownSignal;
use crate::status::StatusBoard;
use crate::telemetry::Telemetry;

/// How long a poll in flight may still run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Shortest pause before retrying a failed poll.
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// What every poller shares.
#[derive(Clone)]
pub struct PollContext {
    pub cmu: CmuClient,
    pub credentials: Arc<Credentials>,
    pub store: Arc<ExportStore>,
    pub board: Arc<StatusBoard>,
    pub telemetry: Telemetry,
    pub clock: Clock,
    pub time_zone: TimeZone,
    /// Bounds concurrent CMU requests across all reports.
    pub permits: Arc<Semaphore>,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Cmu(#[from] CmuError),
    #[error("answer is not a usable report: {0}")]
    Parse(#[from] ParseError),
}

impl PollError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Cmu(e) => e.retry_after(),
            _ => None,
        }
    }

    /// Whether only a person can fix it (retrying at a fast pace will not help).
    pub fn needs_person(&self) -> bool {
        matches!(
            self,
            PollError::Credentials(CredentialsError::NeedsPerson(_))
                | PollError::Cmu(CmuError::NotFound { .. })
        )
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

/// A stable offset in [0, min(interval / 10, 5 min)) from the report's name.
fn phase(name: &str, interval: Duration) -> Duration {
    let spread = (interval / 10).min(Duration::from_secs(300)).as_millis() as u64;
    if spread == 0 {
        return Duration::ZERO;
    }
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Duration::from_millis(h % spread)
}

/// Polls one report until shutdown.
pub async fn run(report: ReportConfig, ctx: PollContext, mut shutdown: ShutdownSignal) {
    let name = report.name.to_string();
    ctx.board.update(&name, |s| {
        s.path = report.path.to_string();
        s.interval = report.interval;
    });
    ctx.telemetry.report_configured(&name, report.interval);
    let step = jiff::SignedDuration::try_from(report.interval)
        .unwrap_or(jiff::SignedDuration::from_secs(3600));
    let first = ctx.clock.now();
    // The first poll runs at once; the regular grid starts one interval later.
    let phase = jiff::SignedDuration::try_from(phase(&name, report.interval)).unwrap_or_default();
    let mut next_regular = first + step + phase;
    let mut failures = 0u32;
    let mut at = first;
    loop {
        ctx.telemetry
            .poll_scheduled(&name, at.as_millisecond() as f64 / 1000.0);
        ctx.board.update(&name, |s| s.next_poll = Some(at));
        tokio::select! {
            () = ctx.clock.sleep_until(at) => {}
            () = shutdown.wait() => return,
        }
        let started = Instant::now();
        let poll = poll_once(&report, &ctx);
        tokio::pin!(poll);
        let result = tokio::select! {
            r = &mut poll => r,
            () = shutdown.wait() => {
                // Finish the poll in flight (it publishes what it fetched), but not for long.
                if tokio::time::timeout(SHUTDOWN_GRACE, poll).await.is_err() {
                    tracing::warn!(report = %name, "stopping: the poll in flight did not finish in time and was abandoned");
                }
                return;
            }
        };
        let now = ctx.clock.now();
        while next_regular <= now {
            next_regular += step;
        }
        match result {
            Ok(()) => {
                failures = 0;
                at = next_regular;
            }
            Err(e) => {
                failures += 1;
                let retry = if e.needs_person() {
                    report.interval
                } else {
                    (FIRST_RETRY * 2u32.pow((failures - 1).min(10))).min(report.interval)
                };
                at = next_attempt(now, retry, e.retry_after(), next_regular);
                let message = e.to_string();
                expire_if_stale(&name, report.max_age, now, &ctx);
                ctx.telemetry.poll_failed(
                    &name,
                    &message,
                    started.elapsed(),
                    ctx.clock.real_duration(retry),
                );
                ctx.board.update(&name, |s| {
                    s.last_attempt = Some(now);
                    s.last_error = Some(message);
                    s.needs_person = e.needs_person();
                });
            }
        }
    }
}

/// When to poll again after a failure: after `retry`, or at the regular
/// poll if that comes sooner, but never before the server's `Retry-After`.
fn next_attempt(
    now: Timestamp,
    retry: Duration,
    retry_after: Option<Duration>,
    next_regular: Timestamp,
) -> Timestamp {
    let after = |d: Duration| now + jiff::SignedDuration::try_from(d).unwrap_or_default();
    after(retry)
        .min(next_regular)
        .max(after(retry_after.unwrap_or_default()))
}

/// GETs a report with the shared token; a 401 renews the token once and
/// retries. Transient failures are retried by [`CmuClient::get`], first
/// after `first_pause`.
pub async fn fetch(
    cmu: &CmuClient,
    credentials: &Credentials,
    endpoint: &str,
    path: &crate::report::ReportPath,
    url: reqwest::Url,
    first_pause: Duration,
) -> Result<bytes::Bytes, PollError> {
    let token = credentials.access_token().await?;
    match cmu
        .get(endpoint, path, url.clone(), &token, first_pause)
        .await
    {
        Err(CmuError::Unauthorized) => {
            credentials.reject(&token).await;
            let token = credentials.access_token().await?;
            Ok(cmu.get(endpoint, path, url, &token, first_pause).await?)
        }
        other => Ok(other?),
    }
}

/// First pause between attempts of one request: a tenth of the report's
/// interval, between 100 ms and 1 s, so retries stay well inside it.
pub fn first_retry_pause(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Drops a failing report's last good values once they are older than `max_age`.
fn expire_if_stale(name: &str, max_age: Duration, now: Timestamp, ctx: &PollContext) {
    let Some(snapshot_time) = ctx.board.last_success(name) else {
        return;
    };
    let age = now.duration_since(snapshot_time);
    if age > jiff::SignedDuration::try_from(max_age).unwrap_or(jiff::SignedDuration::MAX)
        && ctx.store.snapshot(name).is_some()
    {
        ctx.store.remove(name);
        ctx.board.update(name, |s| s.series = 0);
        ctx.telemetry.report_expired(name, max_age);
    }
}

/// One poll: token, request (one renewal and retry on 401), parse, publish.
pub async fn poll_once(report: &ReportConfig, ctx: &PollContext) -> Result<(), PollError> {
    let started = Instant::now();
    let _permit = ctx
        .permits
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let name = report.name.as_str();
    let now: Timestamp = ctx.clock.now();
    let civil_now = now.to_zoned(ctx.time_zone.clone()).datetime();
    let (start, end) = window(report.path.granularity(), report.bucket, civil_now);
    let query = ReportQuery {
        start,
        end,
        limit: Some(report.limit),
        metrics: report.metrics.clone(),
        filters: report.filters.clone(),
    };
    let url = ctx.cmu.url(&report.path, &query);
    let body = fetch(
        &ctx.cmu,
        &ctx.credentials,
        name,
        &report.path,
        url,
        first_retry_pause(report.interval),
    )
    .await?;
    let spec = SnapshotSpec {
        report: name.to_owned(),
        path: Some(report.path.clone()),
        choice: report.bucket,
        now,
        time_zone: ctx.time_zone.clone(),
        labels: report.labels.clone(),
        max_series: report.max_series,
    };
    let snapshot = tokio::task::spawn_blocking(move || build_snapshot(&body, &spec))
        .await
        .expect("snapshot building does not panic")?;
    if snapshot.rows as u64 >= u64::from(report.limit) {
        ctx.telemetry.poll_truncated(name, report.limit);
    }
    if snapshot.dropped > 0 {
        ctx.telemetry.series_dropped(
            name,
            snapshot.dropped,
            report.max_series.unwrap_or_default(),
        );
    }
    let (series, rows, bucket_start) = (snapshot.series, snapshot.rows, snapshot.bucket_start);
    ctx.store.publish(name, Arc::new(snapshot));
    let done = ctx.clock.now();
    ctx.telemetry.poll_succeeded(
        name,
        series,
        started.elapsed(),
        done.as_millisecond() as f64 / 1000.0,
    );
    ctx.board.update(name, |s| {
        s.last_attempt = Some(done);
        s.last_success = Some(done);
        s.last_error = None;
        s.needs_person = false;
        s.series = series;
        s.rows = rows;
        s.bucket_start = bucket_start;
    });
    Ok(())
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

    #[test]
    fn retry_after_is_never_undercut_by_the_regular_poll() {
        let now: Timestamp = "2026-11-22T21:00:00Z".parse().unwrap();
        let regular: Timestamp = "2026-11-22T21:00:20Z".parse().unwrap();
        let s = Duration::from_secs;
        assert_eq!(next_attempt(now, s(30), None, regular), regular);
        assert_eq!(
            next_attempt(now, s(10), None, regular).to_string(),
            "2026-11-22T21:00:10Z"
        );
        assert_eq!(
            next_attempt(now, s(30), Some(s(120)), regular).to_string(),
            "2026-11-22T21:02:00Z"
        );
    }

    #[test]
    fn phase_is_stable_and_bounded() {
        let hour = Duration::from_secs(3600);
        assert_eq!(phase("a", hour), phase("a", hour));
        assert!(phase("a", hour) < Duration::from_secs(300));
        assert_eq!(phase("a", Duration::from_millis(5)), Duration::ZERO);
    }
}
