//! One remote's task: every polled answer queued for it becomes the
//! complete buckets its store lacks, pushed in time order, and the
//! self-metrics, thresholds and stream limits are pushed at their pace.
//!
//! For an answer of report R: the cursor (end of the last bucket the store
//! holds) says where R stands. Buckets between the cursor and the answer's
//! first one are a gap: they are read from Adobe in the backfill's windows
//! ([`History`]) and pushed first, the newest `max_gap` of it at most (the
//! rest is counted and left to `backfill`). Then the answer's complete
//! buckets after the cursor are pushed, and the cursor moves to the newest
//! one pushed, or to the start of the newest complete bucket (every bucket
//! before it is settled: the answer had all of them), whichever is later.
//! A gap fill that fails pushes nothing of the answer, so the cursor never
//! moves past a bucket the store lacks. "Complete" is what the answer
//! showed of Adobe's computations ([`Answer::computed`]), never our clock.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;

use super::cursor::Cursors;
use super::store::{Stopped, Store};
use super::{MAX_BATCH, PushContext};
use crate::config::{RemoteWriteConfig, ReportConfig};
use crate::export::Samples;
use crate::export::build_history;
use crate::export::format::remote_write::WriteRequest;
use crate::history::{History, add, bucket_count};
use crate::outcome::Answer;
use crate::report::Computed;
use crate::shutdown::ShutdownSignal;

/// A polled answer of `report`, queued for the push.
pub(super) struct Job {
    pub(super) report: String,
    pub(super) answer: Arc<Answer>,
}

/// What the landing page shows of a remote.
#[derive(Debug, Clone, Default)]
pub struct RemoteStatus {
    pub url: String,
    /// Whether the last request was accepted (true before the first).
    pub up: bool,
    /// Why the last request was not, while it fails.
    pub last_error: Option<String>,
    /// Per report, the end of the newest bucket the store holds.
    pub cursors: BTreeMap<String, Timestamp>,
    pub samples: u64,
    pub rejected: u64,
    /// Requests the store took in part (409, Mimir's 400).
    pub taken_in_part: u64,
}

pub(super) struct Remote {
    pub(super) config: RemoteWriteConfig,
    /// `external_labels`, with `job` and `instance`.
    pub(super) labels: Vec<(String, String)>,
    pub(super) store: Store,
    pub(super) cursors: Cursors,
    pub(super) ctx: PushContext,
    pub(super) reports: Arc<RwLock<BTreeMap<String, ReportConfig>>>,
    pub(super) thresholds: Arc<RwLock<Option<crate::thresholds::Thresholds>>>,
    pub(super) status: Arc<Mutex<RemoteStatus>>,
    pub(super) stop: ShutdownSignal,
    /// Reports whose first push or lack of time dimension was said.
    pub(super) said: HashSet<String>,
}

/// Runs `remote` until it is stopped or its queue closes.
pub(super) async fn run(mut remote: Remote, mut jobs: mpsc::Receiver<Job>) {
    let interval = remote.config.self_metrics_interval;
    let clock = remote.ctx.clock.clone();
    let step = jiff::SignedDuration::try_from(interval).unwrap_or_default();
    let mut next_tick = clock.now() + step;
    let mut stop = remote.stop.clone();
    loop {
        let tick = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            }
            clock.sleep_until(next_tick).await;
        };
        let done = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => {
                    remote.ctx.telemetry.push_queue(&remote.config.name, jobs.len());
                    remote.push_answer(job).await
                }
                None => return,
            },
            () = tick => {
                next_tick = (next_tick + step).max(clock.now());
                remote.push_self_metrics().await
            },
            () = stop.wait() => return,
        };
        if done.is_err() {
            return;
        }
        remote.show_lag();
    }
}

/// One bucket's samples as a write request, stamped `end`.
pub fn bucket_request(
    samples: &Samples<'_>,
    labels: &[(String, String)],
    end: Timestamp,
) -> WriteRequest {
    let mut request = WriteRequest::default();
    for family in samples.families() {
        request.append_family(&family, labels, end.as_millisecond());
    }
    request
}

impl Remote {
    fn civil(tz: &TimeZone, at: Timestamp) -> DateTime {
        at.to_zoned(tz.clone()).datetime()
    }

    fn instant(tz: &TimeZone, at: DateTime) -> Option<Timestamp> {
        at.to_zoned(tz.clone()).ok().map(|z| z.timestamp())
    }

    /// Sends `request` and moves `report`'s cursor to `end` once the store
    /// took (or refused for good) every series of it.
    async fn send(
        &mut self,
        report: &str,
        request: WriteRequest,
        end: Option<Timestamp>,
    ) -> Result<(), Stopped> {
        let status = self.status.clone();
        let trouble = move |why: &str| {
            let mut status = status.lock().unwrap_or_else(|e| e.into_inner());
            status.up = false;
            status.last_error = Some(why.to_owned());
        };
        let delivery = self
            .store
            .deliver(
                request,
                &self.ctx.clock,
                &self.ctx.telemetry,
                &mut self.stop,
                trouble,
            )
            .await;
        let delivery = match delivery {
            Ok(d) => d,
            Err(Stopped) => {
                self.note(|s| s.up = false);
                return Err(Stopped);
            }
        };
        let rejected: usize = delivery.rejected.iter().map(|(_, n, _)| n).sum();
        let in_part: usize = delivery.taken_in_part.values().sum();
        self.note(|s| {
            s.up = true;
            s.last_error = None;
            s.samples += delivery.accepted as u64;
            s.rejected += rejected as u64;
            s.taken_in_part += in_part as u64;
        });
        if let Some(end) = end {
            self.advance(report, end);
        }
        Ok(())
    }

    fn advance(&mut self, report: &str, end: Timestamp) {
        if self.cursors.get(report).is_some_and(|c| c >= end) {
            return;
        }
        if let Err(e) = self.cursors.advance(report, end) {
            // The store has the samples; a restart re-sends them (duplicates it takes).
            tracing::warn!(remote = %self.config.name, report, error = %e, "cannot write the push cursor: a restart will send these buckets again; make state_dir writable");
        }
        self.note(|s| {
            s.cursors.insert(report.to_owned(), end);
        });
        self.show_cursor(report, end, self.ctx.clock.now());
    }

    /// `report`'s cursor and lag in the self-metrics: the lag counts from
    /// when the first bucket the store lacks became complete.
    fn show_cursor(&self, report: &str, cursor: Timestamp, now: Timestamp) {
        let reports = self.reports.read().unwrap_or_else(|e| e.into_inner());
        let due = reports.get(report).and_then(|config| {
            let tz = self.ctx.adobe.time_zone_of(config.api);
            let span = config.path.granularity().span()?;
            let next = Self::civil(tz, cursor).checked_add(span).ok()?;
            Self::instant(tz, next)
        });
        self.ctx.telemetry.push_cursor(
            &self.config.name,
            report,
            cursor,
            due.unwrap_or(cursor),
            now,
        );
    }

    fn note(&self, change: impl FnOnce(&mut RemoteStatus)) {
        change(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Every report's lag, as of now.
    fn show_lag(&self) {
        let now = self.ctx.clock.now();
        let reports: Vec<String> = self
            .reports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for report in reports {
            if let Some(cursor) = self.cursors.get(&report) {
                self.show_cursor(&report, cursor, now);
            }
        }
    }

    async fn push_self_metrics(&mut self) -> Result<(), Stopped> {
        let mut request = WriteRequest::default();
        let now = self.ctx.clock.now();
        self.ctx
            .telemetry
            .append_to(&mut request, &self.labels, now.as_millisecond());
        if let Some(thresholds) = &*self.thresholds.read().unwrap_or_else(|e| e.into_inner()) {
            thresholds.append_to(&mut request, &self.labels, now.as_millisecond());
        }
        self.send("", request, None).await
    }

    async fn push_answer(&mut self, job: Job) -> Result<(), Stopped> {
        let Some(report) = self
            .reports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job.report)
            .cloned()
        else {
            return Ok(());
        };
        let name = report.name.as_str();
        let granularity = report.path.granularity();
        let Some(span) = granularity.span() else {
            if self.said.insert(job.report.clone()) {
                tracing::info!(remote = %self.config.name, report = name, "no time dimension: its values have no bucket to be stamped with, so they are scraped only, not pushed");
            }
            return Ok(());
        };
        let tz = job.answer.spec.time_zone.clone();
        // The answer's buckets are complete as far as Adobe had computed
        // when it answered (a queued answer may be old by now); the gap's
        // length is judged as of now.
        let computed = job.answer.computed;
        let now = self.ctx.clock.now();
        let Some(newest) = computed.newest_complete(granularity) else {
            return Ok(());
        };
        let first_asked = job.answer.start.unwrap_or(newest);
        let first_push = self.cursors.get(name).is_none();
        let from = match self.cursors.get(name) {
            Some(cursor) => Self::civil(&tz, cursor),
            None => {
                if self.said.insert(job.report.clone()) {
                    tracing::info!(
                        remote = %self.config.name,
                        report = name,
                        "first push of this report to this remote: from its newest buckets on; older history: `cmu-exporter backfill --remote-write {} --report {name} --from DATE`",
                        self.config.name
                    );
                }
                first_asked
            }
        };
        let max_gap = jiff::SignedDuration::try_from(self.config.max_gap)
            .unwrap_or(jiff::SignedDuration::MAX);
        let earliest = granularity.floor(Self::civil(
            &tz,
            now.checked_sub(max_gap).unwrap_or(Timestamp::MIN),
        ));
        // A first push has no gap: it starts from the answer's own buckets,
        // however old (a daily report's go back past max_gap).
        let from = if !first_push && from < earliest {
            let left_out = bucket_count(granularity, from, earliest).saturating_sub(1);
            if left_out > 0 {
                let command = format!(
                    "cmu-exporter backfill --remote-write {} --report {name} --from {} --to {}",
                    self.config.name,
                    from.date(),
                    earliest.date()
                );
                self.ctx.telemetry.push_left_out(
                    &self.config.name,
                    name,
                    left_out,
                    self.config.max_gap,
                    &command,
                );
            }
            if let Some(at) = Self::instant(&tz, earliest) {
                self.advance(name, at);
            }
            earliest
        } else {
            from
        };
        if from < first_asked {
            // Never past the newest complete bucket: our clock ahead of
            // Adobe's asks from buckets that are not complete yet.
            let last = first_asked
                .checked_sub(span)
                .unwrap_or(first_asked)
                .min(newest);
            if !self.fill(&report, &tz, computed, from, last).await? {
                return Ok(());
            }
        }
        // The answer's own complete buckets, after the cursor.
        let cursor = self.cursors.get(name);
        let answer = job.answer.clone();
        let labels = self.labels.clone();
        let limit = report.limit;
        let built = tokio::task::spawn_blocking(move || {
            let mut buckets = Vec::new();
            let read = build_history(
                &answer.body,
                &answer.spec,
                |rows| (rows as u64) < u64::from(limit),
                // Complete buckets only, by the answer's own evidence.
                |bucket, samples| {
                    let Some(end) = bucket
                        .end()
                        .and_then(|e| Self::instant(&answer.spec.time_zone, e))
                    else {
                        return Ok::<(), ()>(());
                    };
                    if cursor.is_none_or(|c| end > c) {
                        buckets.push((end, bucket_request(samples, &labels, end)));
                    }
                    Ok(())
                },
            );
            (read.map(|read| read.map_or(0, |(rows, _)| rows)), buckets)
        })
        .await;
        let (rows, buckets) = match built {
            Ok((Ok(rows), buckets)) => (rows, buckets),
            _ => return Ok(()),
        };
        if rows as u64 >= u64::from(limit) {
            // Truncated: read the same buckets in windows that fit.
            let from = cursor
                .map_or(first_asked, |c| Self::civil(&tz, c))
                .max(first_asked);
            self.fill(&report, &tz, computed, from, newest).await?;
            return Ok(());
        }
        let mut batch = WriteRequest::default();
        let mut batch_end = None;
        for (end, request) in buckets {
            batch.append(request);
            batch_end = Some(end);
            if batch.series() >= MAX_BATCH {
                self.send(name, std::mem::take(&mut batch), batch_end)
                    .await?;
            }
        }
        self.send(name, batch, batch_end).await?;
        if let Some(settled) = Self::instant(&tz, newest) {
            self.advance(name, settled);
        }
        Ok(())
    }

    /// Pushes `report`'s buckets from `first` to `last` (starts), read from
    /// Adobe and complete as far as `computed` (what the live answer
    /// showed). False when Adobe failed: the cursor stays where the store is.
    async fn fill(
        &mut self,
        report: &ReportConfig,
        tz: &TimeZone,
        computed: Computed,
        first: DateTime,
        last: DateTime,
    ) -> Result<bool, Stopped> {
        let account = report.account.as_ref().map(|a| a.as_str().to_owned());
        let Some(client) = self.ctx.clients.get(&account).cloned() else {
            return Ok(false);
        };
        let name = report.name.as_str();
        let Some(mut history) = History::new(
            &client,
            report,
            tz.clone(),
            self.ctx.clock.now(),
            name,
            report.limit.max(100_000),
            computed,
        ) else {
            return Ok(false);
        };
        let Some(last) = history.newest_complete().map(|newest| newest.min(last)) else {
            return Ok(true);
        };
        let span = report.path.granularity().span().unwrap_or_default();
        let mut cursor = first;
        while cursor <= last {
            if self.stop.is_triggered() {
                return Err(Stopped);
            }
            // A permit for the request to Adobe only: a slow store never
            // holds one, so it never slows the polls.
            let permit = self.ctx.permits.clone().acquire_owned().await;
            let labels = self.labels.clone();
            let mut batch = WriteRequest::default();
            let read = history
                .next(cursor, last, move |end, samples| {
                    (end, bucket_request(samples, &labels, end))
                })
                .await;
            drop(permit);
            let mut reading = match read {
                Ok(reading) => reading,
                Err(error) => {
                    tracing::warn!(remote = %self.config.name, report = name, error = %error, "cannot read the gap from Adobe: tried again after the next poll; nothing is lost while the gap stays within max_gap");
                    return Ok(false);
                }
            };
            while let Some((end, request)) = reading.item().await {
                batch.append(request);
                if batch.series() >= MAX_BATCH {
                    self.send(name, std::mem::take(&mut batch), Some(end))
                        .await?;
                }
            }
            let window_last = reading.last;
            if let Err(error) = reading.finish(&mut history).await {
                tracing::warn!(remote = %self.config.name, report = name, error = %error, "cannot read the gap from Adobe: tried again after the next poll");
                return Ok(false);
            }
            cursor = add(window_last, span, 1);
            // The whole window is settled: its empty buckets are done too.
            self.send(name, batch, Self::instant(tz, cursor)).await?;
        }
        Ok(true)
    }
}
