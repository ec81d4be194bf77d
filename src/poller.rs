//! Polls each configured report at its own pace and says what happened.
//!
//! A report is polled once right away. A CMU report polled at Adobe's
//! documented cadence (its default interval) is then polled just after
//! each of Adobe's computations, whose phase it learns ([`Pace`]); any
//! other report on a fixed grid of its interval (shifted by a per-report
//! phase so reports do not fire together). A failed
//! poll keeps the last good values and is retried sooner, backing off up to
//! the interval. A global semaphore bounds concurrent CMU requests. Each
//! step's [`PollOutcome`] goes to [`Reports::apply`], which owns the state.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::config::{AdobeConfig, ReportConfig};
use crate::export::{SnapshotSpec, build_snapshot};
use crate::faults::{InjectedFault, strike};
use crate::outcome::{Answer, PollError, PollOutcome, Polled};
use crate::pace::{Pace, Seen};
use crate::report::window;
use crate::reports::Reports;
use crate::retry::RetryPolicy;
use crate::shutdown::ShutdownSignal;
use crate::wolap::{AuthorizedClient, ReportQuery, request_retry};

/// How long a poll in flight may still run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The schedule after failed polls: 30 s, doubling with jitter, never
/// longer than the report's interval (a regular poll comes by then anyway).
fn failure_retry(interval: Duration) -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_secs(30),
        cap: interval,
        attempts: u32::MAX,
    }
}

/// What every poller shares.
#[derive(Clone)]
pub struct PollContext {
    /// One authorized client per account (`None`: the single account).
    pub clients: Arc<BTreeMap<Option<String>, AuthorizedClient>>,
    pub reports: Arc<Reports>,
    pub clock: Clock,
    /// The Adobe settings the process started with (each API's time zone).
    pub adobe: Arc<AdobeConfig>,
    /// Bounds concurrent CMU requests across all reports.
    pub permits: Arc<Semaphore>,
}

/// A stable offset in [0, min(interval / 10, 5 min)) from the report's name.
fn phase(name: &str, interval: Duration) -> Duration {
    let spread = (interval / 10).min(Duration::from_secs(300)).as_millis() as u64;
    if spread == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(crate::shard::stable_hash(name.as_bytes()) % spread)
}

/// Polls one report until shutdown. A failed poll (a panic included)
/// only fails that poll; the loop goes on.
pub async fn run(report: ReportConfig, ctx: PollContext, mut shutdown: ShutdownSignal) {
    let name = report.name.to_string();
    ctx.reports.configured(&report);
    let step = jiff::SignedDuration::try_from(report.interval)
        .unwrap_or(jiff::SignedDuration::from_secs(3600));
    let first = ctx.clock.now();
    // The first poll runs at once; the regular grid starts one interval later.
    let phase = jiff::SignedDuration::try_from(phase(&name, report.interval)).unwrap_or_default();
    let mut next_regular = first + step + phase;
    let mut pace = follows_adobe(&report)
        .then(|| Pace::new(report.interval, ctx.adobe.time_zone_of(report.api).clone()));
    let mut failures = 0u32;
    let mut at = first;
    loop {
        strike(&name, InjectedFault::PanicInPoller);
        ctx.reports.apply(&name, PollOutcome::Scheduled { at });
        tokio::select! {
            () = ctx.clock.sleep_until(at) => {}
            () = shutdown.wait() => return,
        }
        let started = Instant::now();
        let poll = AssertUnwindSafe(poll_once(&report, &ctx))
            .catch_unwind()
            .map(|caught| caught.unwrap_or_else(|panic| Err(PollError::from_panic(panic))));
        tokio::pin!(poll);
        let result = tokio::select! {
            r = &mut poll => r,
            () = shutdown.wait() => {
                // Finish the poll in flight and publish what it fetched, but not for long.
                match tokio::time::timeout(SHUTDOWN_GRACE, poll).await {
                    Ok(Ok(Polled { snapshot, answer })) => ctx.reports.apply(&name, PollOutcome::Succeeded { snapshot, answer, took: started.elapsed(), at: ctx.clock.now() }),
                    Ok(Err(_)) => {}
                    Err(_) => tracing::warn!(report = %name, "stopping: the poll in flight did not finish in time and was abandoned"),
                }
                return;
            }
        };
        let took = started.elapsed();
        let now = ctx.clock.now();
        next_regular = match pace.as_mut() {
            Some(pace) => {
                if let Ok(polled) = &result {
                    pace.observe(
                        polled.answer.asked_at,
                        polled.answer.answered_at,
                        Seen {
                            newest: polled.snapshot.newest.map(|b| b.start),
                            digest: polled.snapshot.digest,
                        },
                    );
                }
                pace.next(now)
            }
            None => next_on_grid(next_regular, now, step, phase),
        };
        let outcome = match result {
            Ok(Polled { snapshot, answer }) => {
                failures = 0;
                at = next_regular;
                PollOutcome::Succeeded {
                    snapshot,
                    answer,
                    took,
                    at: now,
                }
            }
            Err(error) => {
                failures += 1;
                let retry = if error.needs_person() {
                    report.interval
                } else {
                    failure_retry(report.interval).pause(failures, None)
                };
                at = next_attempt(now, retry, error.retry_after(), next_regular);
                PollOutcome::Failed {
                    error,
                    took,
                    retry_in: ctx
                        .clock
                        .real_duration(at.duration_since(now).unsigned_abs()),
                    at: now,
                }
            }
        };
        ctx.reports.apply(&name, outcome);
    }
}

/// Whether `report`'s polls follow Adobe's computations: a CMU report with
/// time, polled at the documented cadence of its path (its default).
/// ESM documents no cadence (its `Last-Modified` tells each answer's time),
/// and a chosen interval is kept as chosen.
fn follows_adobe(report: &ReportConfig) -> bool {
    !report.api.profile().last_modified_is_computation
        && report.path.granularity() != crate::report::Granularity::Total
        && report.interval == crate::report::default_interval(report.api, &report.path)
}

/// The next regular poll after `now`: the grid moves on by whole steps, and
/// when the clock went back (a step of the wall clock) it starts again one
/// step from now rather than waiting out the jump.
fn next_on_grid(
    mut next_regular: Timestamp,
    now: Timestamp,
    step: jiff::SignedDuration,
    phase: jiff::SignedDuration,
) -> Timestamp {
    if next_regular.duration_since(now) > step + phase {
        return now + step;
    }
    if next_regular <= now {
        // Whole steps at once: a clock that jumped a year ahead costs no loop.
        let behind = now.duration_since(next_regular).as_nanos();
        let steps = behind / step.as_nanos().max(1) + 1;
        let skipped = i64::try_from(steps * step.as_nanos()).unwrap_or(i64::MAX);
        next_regular = next_regular
            .checked_add(jiff::SignedDuration::from_nanos(skipped))
            .unwrap_or(now + step);
    }
    next_regular
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

/// The exact query a poll of `report` sends at `now`: its window in its
/// API's time zone, its limit, metrics and filters (the online check sends
/// the same).
pub fn query_at(report: &ReportConfig, adobe: &AdobeConfig, now: Timestamp) -> ReportQuery {
    let civil_now = now
        .to_zoned(adobe.time_zone_of(report.api).clone())
        .datetime();
    let (start, end) = window(report.path.granularity(), report.bucket, civil_now);
    ReportQuery {
        start,
        end,
        limit: Some(report.limit),
        metrics: report.metrics.clone(),
        filters: report.filters.clone(),
    }
}

/// One poll: a window of the report, fetched with the shared token,
/// parsed and built into a snapshot.
pub async fn poll_once(report: &ReportConfig, ctx: &PollContext) -> Result<Polled, PollError> {
    let _permit = ctx
        .permits
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let name = report.name.as_str();
    let now: Timestamp = ctx.clock.now();
    let time_zone = ctx.adobe.time_zone_of(report.api).clone();
    let query = query_at(report, &ctx.adobe, now);
    let account = report.account.as_ref().map(|a| a.as_str().to_owned());
    let client = ctx
        .clients
        .get(&account)
        .ok_or_else(|| PollError::Internal(format!("no credentials for account {account:?}")))?;
    let fetched = client
        .get(
            report.api,
            name,
            &report.path,
            &query,
            request_retry(report.interval),
        )
        .await?;
    // Buckets are judged as of when Adobe answered: by its clock when it
    // is behind ours (our clock stepped ahead must never make a bucket
    // still filling look complete).
    let as_of = fetched.date.map_or(now, |adobe| adobe.min(now));
    // Absent `Last-Modified`: ESM computed the answer in real time.
    let computed_at = report
        .api
        .profile()
        .last_modified_is_computation
        .then(|| fetched.last_modified.unwrap_or(as_of));
    let spec = SnapshotSpec {
        api: report.api,
        report: name.to_owned(),
        account,
        path: Some(report.path.clone()),
        choice: report.bucket,
        now: as_of,
        time_zone,
        labels: report.labels.clone(),
        max_series: report.max_series,
        computed_at,
        computed_through: computed_at,
    };
    let (body, start) = (fetched.body, query.start);
    let built = tokio::task::spawn_blocking(move || {
        let snapshot = build_snapshot(&body, &spec).map(|mut snapshot| {
            snapshot.deflate();
            snapshot
        });
        (snapshot, body, spec)
    })
    .await
    .map_err(|e| match e.try_into_panic() {
        Ok(panic) => PollError::from_panic(panic),
        Err(e) => PollError::Internal(e.to_string()),
    })?;
    let (snapshot, body, spec) = built;
    let snapshot = snapshot?;
    let answer = Arc::new(Answer {
        body,
        spec,
        start,
        served_at: fetched.date,
        computed: snapshot.computed,
        asked_at: fetched.asked_at,
        answered_at: fetched.answered_at,
    });
    Ok(Polled {
        snapshot: Arc::new(snapshot),
        answer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_grid_survives_clock_steps() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let (step, phase) = (
            jiff::SignedDuration::from_mins(1),
            jiff::SignedDuration::from_secs(5),
        );
        let next = at("2026-11-22T21:01:05Z");
        assert_eq!(
            next_on_grid(next, at("2026-11-22T21:00:30Z"), step, phase),
            next
        );
        assert_eq!(
            next_on_grid(next, at("2026-11-22T21:03:30Z"), step, phase),
            at("2026-11-22T21:04:05Z"),
            "whole steps ahead, on the grid"
        );
        assert_eq!(
            next_on_grid(next, at("2026-11-22T19:00:00Z"), step, phase),
            at("2026-11-22T19:01:00Z"),
            "the clock went back two hours: one step from now, not two hours"
        );
        let next_year = next_on_grid(next, at("2027-11-22T21:00:00Z"), step, phase);
        assert_eq!(next_year, at("2027-11-22T21:00:05Z"));
    }

    #[test]
    fn phase_is_stable_and_bounded() {
        let hour = Duration::from_secs(3600);
        assert_eq!(phase("a", hour), phase("a", hour));
        assert!(phase("a", hour) < Duration::from_secs(300));
        assert_eq!(phase("a", Duration::from_millis(5)), Duration::ZERO);
    }
}
