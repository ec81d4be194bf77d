//! A report's past buckets, fetched from Adobe in windows it accepts: the
//! one way `backfill` and the push's gap fill read history.
//!
//! Adobe has no paging (`limit` truncates silently) and answers 400 to an
//! oversized query. A window whose answer holds `limit` rows, or gets 400,
//! is halved and fetched again; one that comes back small lets the next one
//! double. A single bucket over `limit` raises it up to `max_limit`. Every
//! bucket goes through the snapshot builder the poller uses
//! (`build_history`), so history has the live series' names and labels,
//! and each is stamped at its end, in the report's time zone: the moment
//! the live exporter would first have shown it.

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};

use crate::config::ReportConfig;
use crate::export::{Samples, SnapshotSpec, build_history};
use crate::report::{BucketChoice, Computed, Evidence, Granularity, ParseError};
use crate::retry::RetryPolicy;
use crate::wolap::{ApiError, AuthorizedClient, FetchError, ReportQuery};

/// Largest window, in buckets, whatever the answers allow.
const MAX_WINDOW: i64 = 4096;

/// Rows a window aims at, at most: a window grows only while its answers
/// stay well under this, so memory stays bounded by one window.
const TARGET_ROWS: u32 = 20_000;

/// Retries of one history request (transient failures only).
pub const RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    attempts: 4,
};

/// Why a window could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "the budget of {calls} CMU calls is spent: rerun with the same arguments and a larger budget to go on where this run stopped"
    )]
    Budget { calls: u64 },
    #[error(transparent)]
    Fetch(FetchError),
    #[error(
        "bucket {bucket} alone has more than {limit} rows: raise --max-limit (Adobe's ceiling permitting), or narrow the report with filters"
    )]
    TooManyRows { bucket: DateTime, limit: u32 },
    #[error("Adobe refused even a single bucket ({bucket}): {reason}")]
    Refused { bucket: DateTime, reason: String },
    #[error("the answer is not a usable report: {0}")]
    Parse(ParseError),
}

/// One report's history, read window by window.
pub struct History<'a> {
    client: &'a AuthorizedClient,
    report: &'a ReportConfig,
    /// The name requests are counted under (`backfill`, or the report's).
    endpoint: &'a str,
    spec: SnapshotSpec,
    span: Span,
    window: i64,
    limit: u32,
    max_limit: u32,
    /// Most calls in all (`calls` included), if bounded.
    pub max_calls: Option<u64>,
    /// Calls so far.
    pub calls: u64,
    /// Windows halved after a truncated or refused answer.
    pub windows_split: u64,
}

impl<'a> History<'a> {
    /// The history of `report` as seen at `now`, complete as far as
    /// `computed` (what a live answer showed); `None` for a report
    /// without a time dimension (Adobe keeps no history of it).
    pub fn new(
        client: &'a AuthorizedClient,
        report: &'a ReportConfig,
        time_zone: TimeZone,
        now: Timestamp,
        endpoint: &'a str,
        max_limit: u32,
        computed: Computed,
    ) -> Option<Self> {
        let span = report.path.granularity().span()?;
        let through = (computed.by != Evidence::Nothing)
            .then(|| computed.through.to_zoned(time_zone.clone()).ok())
            .flatten()
            .map(|z| z.timestamp());
        let spec = SnapshotSpec {
            api: report.api,
            report: report.name.to_string(),
            account: report.account.as_ref().map(|a| a.as_str().to_owned()),
            path: Some(report.path.clone()),
            choice: BucketChoice::Complete,
            now,
            time_zone,
            labels: report.labels.clone(),
            max_series: report.max_series,
            // History has no "computed at": the live exporter's alone.
            computed_at: None,
            computed_through: through,
        };
        Some(Self {
            client,
            report,
            endpoint,
            spec,
            span,
            window: 64,
            limit: report.limit,
            max_limit: max_limit.max(report.limit),
            max_calls: None,
            calls: 0,
            windows_split: 0,
        })
    }

    /// Reads the next window: buckets from `first` up to `last` at most
    /// (bucket starts), as many as Adobe answers whole. Each bucket inside
    /// is turned into an item by `each` (off the async threads, given the
    /// bucket's end as its stamp); the [`Reading`] hands them out oldest
    /// first. A truncated or refused answer is fetched again smaller
    /// before anything is handed out.
    pub async fn next<T>(
        &mut self,
        first: DateTime,
        last: DateTime,
        each: impl FnMut(Timestamp, &Samples<'_>) -> T + Clone + Send + 'static,
    ) -> Result<Reading<T>, HistoryError>
    where
        T: Send + 'static,
    {
        loop {
            let window_last = add(first, self.span, self.window - 1).min(last);
            let answer = self
                .fetch(
                    Some(first),
                    add(window_last, self.span, 1).checked_sub(1.second()).ok(),
                )
                .await?;
            let body = match answer {
                Ok(fetched) => fetched.body,
                Err(FetchError::Api(ApiError::BadRequest { reason, .. })) => {
                    if self.window > 1 {
                        self.window /= 2;
                        self.windows_split += 1;
                        continue;
                    }
                    return Err(HistoryError::Refused {
                        bucket: first,
                        reason,
                    });
                }
                Err(source) => return Err(HistoryError::Fetch(source)),
            };
            // Parsing runs off the async threads; the buckets come back
            // one at a time, oldest first, through a bounded channel.
            let (sender, mut items) = tokio::sync::mpsc::channel(2);
            let (spec, limit, mut each) = (self.spec.clone(), self.limit, each.clone());
            let mut builder = tokio::task::spawn_blocking(move || {
                // A truncated answer is not used: the window is split and fetched again.
                let complete = |rows: usize| (rows as u64) < u64::from(limit);
                let tz = spec.time_zone.clone();
                let built = build_history(&body, &spec, complete, |bucket, samples| {
                    if bucket.start < first || bucket.start > window_last {
                        return Ok(());
                    }
                    let Some(stamp) = bucket
                        .end()
                        .and_then(|end| end.to_zoned(tz.clone()).ok())
                        .map(|z| z.timestamp())
                    else {
                        return Ok(());
                    };
                    sender.blocking_send(each(stamp, samples))
                });
                built.map(|read| read.map(|(rows, _)| rows))
            });
            let waiting = items.recv().await;
            if waiting.is_some() {
                // A bucket came: the answer was whole.
                return Ok(Reading {
                    waiting,
                    items,
                    builder,
                    last: window_last,
                });
            }
            let rows = built_rows((&mut builder).await)?;
            if rows as u64 >= u64::from(self.limit) {
                // Truncated: Adobe said nothing, but rows may be missing.
                if self.window > 1 {
                    self.window /= 2;
                    self.windows_split += 1;
                    continue;
                }
                if let Some(raised) = self.limit.checked_mul(2).filter(|l| *l <= self.max_limit) {
                    self.limit = raised;
                    continue;
                }
                return Err(HistoryError::TooManyRows {
                    bucket: first,
                    limit: self.limit,
                });
            }
            return Ok(Reading {
                waiting: None,
                items,
                builder: tokio::task::spawn_blocking(move || Ok(Ok(rows))),
                last: window_last,
            });
        }
    }

    /// Learns how far Adobe has computed the report now, with one request
    /// of the window a poll asks for (the newest buckets up to now), unless
    /// the documented cadence already shows `wanted` complete (history well
    /// in the past costs no call). From then on, the buckets it showed
    /// complete are handed out.
    pub async fn learn_computed(&mut self, wanted: DateTime) -> Result<Computed, HistoryError> {
        let civil_now = self
            .spec
            .now
            .to_zoned(self.spec.time_zone.clone())
            .datetime();
        let granularity = self.report.path.granularity();
        let by_cadence = crate::export::computed(&self.spec, None);
        let wanted = crate::report::Bucket {
            granularity,
            start: wanted,
        };
        let computed = if by_cadence.complete(Some(wanted)) {
            by_cadence
        } else {
            let (start, end) =
                crate::report::window(granularity, BucketChoice::Complete, civil_now);
            let fetched = self.fetch(start, end).await?.map_err(HistoryError::Fetch)?;
            let spec = self.spec.clone();
            let read = tokio::task::spawn_blocking(move || {
                build_history(&fetched.body, &spec, |_| true, |_, _| Ok::<(), ()>(()))
            })
            .await;
            match read {
                Ok(Ok(Ok((_, computed)))) => computed,
                Ok(Err(error)) => return Err(HistoryError::Parse(error)),
                _ => by_cadence,
            }
        };
        if computed.by != Evidence::Nothing {
            self.spec.computed_through = computed
                .through
                .to_zoned(self.spec.time_zone.clone())
                .ok()
                .map(|z| z.timestamp());
        }
        Ok(computed)
    }

    /// The start of the newest bucket known complete, when any is: the
    /// last a reading may hand out.
    pub fn newest_complete(&self) -> Option<DateTime> {
        let through = self.spec.computed_through?;
        let civil = through.to_zoned(self.spec.time_zone.clone()).datetime();
        let granularity = self.report.path.granularity();
        let span = granularity.span()?;
        granularity.floor(civil).checked_sub(span).ok()
    }

    /// One request of the report from `start` to `end`, within the budget
    /// of calls (its own error when spent; Adobe's answer otherwise).
    async fn fetch(
        &mut self,
        start: Option<DateTime>,
        end: Option<DateTime>,
    ) -> Result<Result<crate::wolap::Fetched, FetchError>, HistoryError> {
        if self.max_calls.is_some_and(|max| self.calls >= max) {
            return Err(HistoryError::Budget { calls: self.calls });
        }
        let query = ReportQuery {
            start,
            end,
            limit: Some(self.limit),
            metrics: self.report.metrics.clone(),
            filters: self.report.filters.clone(),
        };
        self.calls += 1;
        Ok(self
            .client
            .get(
                self.report.api,
                self.endpoint,
                &self.report.path,
                &query,
                RETRY,
            )
            .await)
    }

    /// A window of `rows` came back whole: the next one may be larger.
    pub fn grow(&mut self, rows: usize) {
        if (rows as u64) * 4 < u64::from(self.limit.min(TARGET_ROWS)) && self.window < MAX_WINDOW {
            self.window *= 2;
        }
    }
}

fn built_rows<E>(
    joined: Result<Result<Result<usize, E>, ParseError>, tokio::task::JoinError>,
) -> Result<usize, HistoryError> {
    match joined {
        Err(e) => Err(HistoryError::Parse(ParseError::Read {
            reason: format!("internal error: {e}"),
        })),
        Ok(Ok(Ok(rows))) => Ok(rows),
        // The receiver never closes early while reading: no send error.
        Ok(Ok(Err(_))) => Ok(0),
        Ok(Err(error)) => Err(HistoryError::Parse(error)),
    }
}

/// A window being read: its buckets' items, oldest first.
pub struct Reading<T> {
    waiting: Option<T>,
    items: tokio::sync::mpsc::Receiver<T>,
    builder: tokio::task::JoinHandle<
        Result<Result<usize, tokio::sync::mpsc::error::SendError<T>>, ParseError>,
    >,
    /// Start of the window's last bucket: the next window starts one bucket later.
    pub last: DateTime,
}

impl<T: Send + 'static> Reading<T> {
    /// The next bucket's item, or `None` once every one was handed out.
    pub async fn item(&mut self) -> Option<T> {
        match self.waiting.take() {
            Some(item) => Some(item),
            None => self.items.recv().await,
        }
    }

    /// The window's rows, once every item was taken; `history` learns how
    /// large the next window may be.
    pub async fn finish(self, history: &mut History<'_>) -> Result<usize, HistoryError> {
        drop(self.items);
        let rows = built_rows(self.builder.await)?;
        history.grow(rows);
        Ok(rows)
    }
}

/// The buckets of `granularity` from `first` to `last` (starts), included.
pub fn bucket_count(granularity: Granularity, first: DateTime, last: DateTime) -> u64 {
    let Some(span) = granularity.span() else {
        return 0;
    };
    let mut n = 0;
    let mut at = first;
    while at <= last {
        n += 1;
        match at.checked_add(span) {
            Ok(next) => at = next,
            Err(_) => break,
        }
    }
    n
}

/// `at` moved on by `times` spans (saturating).
pub fn add(at: DateTime, span: Span, times: i64) -> DateTime {
    span.checked_mul(times)
        .ok()
        .and_then(|s| at.checked_add(s).ok())
        .unwrap_or(DateTime::MAX)
}
