//! `cmu-exporter backfill`: Adobe's history of each report as OpenMetrics
//! text, one sample per series per time bucket, for Prometheus's importer
//! (`promtool tsdb create-blocks-from openmetrics`), or pushed straight
//! into a remote-write store (`remote`).
//!
//! - **Same series as live**: every bucket goes through the snapshot
//!   builder the poller uses (read through `history`), so names and labels
//!   are the ones `/metrics` serves, and history and live join on one graph.
//! - **Time**: a sample is stamped at the end of its bucket, in the report's
//!   time zone: the moment the live exporter would first have shown it.
//!   Only complete buckets are written.
//! - **Windows Adobe accepts**: Adobe has no paging (`limit` truncates
//!   silently) and answers 400 to an oversized query. A window whose answer
//!   holds `limit` rows, or gets 400, is halved and fetched again; one that
//!   comes back small lets the next one double. A single bucket over `limit`
//!   raises it up to `--max-limit`.
//! - **Resumable**: [`output::Spill`] keeps a journal; a rerun with the same
//!   arguments goes on where the last one stopped and writes the same file.

pub mod output;
mod remote;

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::ToSpan;
use jiff::civil::{Date, DateTime};

use crate::app::{self, StartError};
use crate::clock::Clock;
use crate::config::{Config, ReportConfig};
use crate::export::format::openmetrics;
use crate::export::format::remote_write::WriteRequest;
use crate::history::{History, HistoryError, add, bucket_count};
use crate::push::bucket_request;
use crate::report::{Computed, ReportApi};
use crate::wolap::{AuthorizedClient, ReportClient};
use output::{OutputError, Spill};
use remote::{Pushed, Pushing};

/// How far back Adobe keeps CMU data.
pub const RETENTION_MONTHS: i64 = 25;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    /// First day (in the reports' time zone).
    pub from: Date,
    /// Last day, included (default: up to the newest complete bucket).
    pub to: Option<Date>,
    /// Report names (default: every report with a time dimension).
    pub reports: Vec<String>,
    pub output: Output,
    /// Hard budget of calls to CMU, over all runs of this backfill.
    pub max_requests: Option<u64>,
    /// The highest `limit` a single bucket may need.
    pub max_limit: u32,
    /// Labels added to every sample, to match those Prometheus adds when it
    /// scrapes the exporter (`job`, `instance`): history and live then
    /// share their series.
    pub labels: Vec<(String, String)>,
    /// Identifies the run for resuming: the configuration and the arguments.
    pub fingerprint: String,
}

/// Where a backfill writes.
#[derive(Debug, Clone)]
pub enum Output {
    /// An OpenMetrics file, for promtool, mimirtool or Thanos.
    File(PathBuf),
    /// Straight into a remote-write store.
    Remote(Box<crate::config::RemoteWriteConfig>),
}

/// The destination being written, with its journal (one per run).
#[allow(clippy::large_enum_variant)]
enum Writer {
    File(Spill),
    Remote(Pushing),
}

impl Writer {
    fn journal(&mut self) -> &mut output::Journal {
        match self {
            Writer::File(spill) => &mut spill.journal,
            Writer::Remote(pushing) => &mut pushing.journal,
        }
    }

    async fn checkpoint(&mut self) -> Result<(), OutputError> {
        match self {
            Writer::File(spill) => spill.checkpoint(),
            Writer::Remote(pushing) => pushing.checkpoint().await,
        }
    }
}

/// One bucket, written for the destination.
enum Written {
    Families(Vec<WrittenFamily>),
    Request(WriteRequest),
}

/// Why a backfill stopped. What was written so far stays, and a rerun with
/// the same arguments resumes.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(
        "--from {from} is more than {RETENTION_MONTHS} months back: Adobe keeps {RETENTION_MONTHS} months of CMU data, so the earliest allowed date is {earliest}"
    )]
    Retention { from: Date, earliest: Date },
    #[error("--from {from} is after --to {to}: give a range that starts before it ends")]
    EmptyRange { from: Date, to: Date },
    #[error("--report {0}: no such report in the configuration")]
    UnknownReport(String),
    #[error(
        "the budget of {calls} CMU calls (--max-requests) is spent: rerun with the same arguments and a larger budget to go on where this run stopped"
    )]
    Budget { calls: u64 },
    #[error("report {report}: {source}")]
    History {
        report: String,
        #[source]
        source: HistoryError,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error(transparent)]
    Start(#[from] StartError),
}

impl BackfillError {
    /// `report`'s history stopped with `error`.
    fn of_history(report: &str, error: HistoryError) -> Self {
        match error {
            HistoryError::Budget { calls } => Self::Budget { calls },
            source => Self::History {
                report: report.to_owned(),
                source,
            },
        }
    }
}

/// What a backfill did, for the summary it prints.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub calls: u64,
    pub windows_split: u64,
    pub rows: u64,
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
    pub took: Duration,
    pub resumed: bool,
    /// What the store made of it, for a backfill into a remote.
    pub pushed: Option<Pushed>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let written = match &self.pushed {
            None => format!(
                "{} series, {} samples, {} bytes",
                self.series, self.samples, self.bytes
            ),
            Some(pushed) => {
                let refused: Vec<String> = pushed
                    .rejected
                    .iter()
                    .map(|(reason, n)| format!("{n} {reason}"))
                    .collect();
                format!(
                    "{} samples sent in {} requests: {} accepted, {} refused{}",
                    self.samples,
                    pushed.requests,
                    pushed.accepted,
                    pushed.rejected.values().sum::<u64>(),
                    if refused.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", refused.join(", "))
                    }
                )
            }
        };
        write!(
            f,
            "{} CMU calls, {} windows split, {} rows, {written}, in {:.1} s{}",
            self.calls,
            self.windows_split,
            self.rows,
            self.took.as_secs_f64(),
            if self.resumed {
                " (resumed an interrupted run)"
            } else {
                ""
            }
        )
    }
}

/// Where a backfill stands, for a progress bar or log lines.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub report: &'a str,
    /// Buckets of this report done, and in all.
    pub buckets_done: u64,
    pub buckets: u64,
    pub rows: u64,
    pub calls: u64,
    pub elapsed: Duration,
}

/// Runs a backfill of `config`'s reports; `progress` is told after each window.
pub async fn run(
    config: Config,
    options: Options,
    clock: Clock,
    mut progress: impl FnMut(&Progress<'_>),
) -> Result<Summary, BackfillError> {
    let started = Instant::now();
    let now = clock.now();
    // `--from`, `--to` and the retention bound are dates of the default
    // API's time zone (CMU's).
    let today = now
        .to_zoned(config.adobe.time_zone_of(ReportApi::default()).clone())
        .date();
    let earliest = today
        .checked_sub(RETENTION_MONTHS.months())
        .unwrap_or(Date::MIN);
    if options.from < earliest {
        return Err(BackfillError::Retention {
            from: options.from,
            earliest,
        });
    }
    for name in &options.reports {
        if !config.reports.iter().any(|r| r.name.as_str() == name) {
            return Err(BackfillError::UnknownReport(name.clone()));
        }
    }
    let mut reports: Vec<&ReportConfig> = config
        .reports
        .iter()
        .filter(|r| {
            options.reports.is_empty() || options.reports.iter().any(|n| n == r.name.as_str())
        })
        .collect();
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    let telemetry = app::telemetry_for(&config);
    let (mut spill, resumed) = match &options.output {
        Output::File(path) => {
            let (spill, resumed) = Spill::open(path, &options.fingerprint)?;
            (Writer::File(spill), resumed)
        }
        Output::Remote(remote) => {
            let (pushing, resumed) = Pushing::open(
                &config.state_dir,
                remote,
                &options.fingerprint,
                clock.clone(),
                telemetry.clone(),
            )?;
            (Writer::Remote(pushing), resumed)
        }
    };
    // The end of the range is fixed when a run begins, so a resumed run ends there too.
    let to: Date = match spill.journal().to.parse() {
        Ok(to) => to,
        Err(_) => options.to.unwrap_or(today),
    };
    spill.journal().to = to.to_string();
    if options.from > to {
        return Err(BackfillError::EmptyRange {
            from: options.from,
            to,
        });
    }
    let http = crate::app::adobe_client(&config.adobe).map_err(StartError::from)?;
    let accounts = app::open_accounts(&config, http.clone(), clock.clone(), telemetry.clone())?;
    let report_client = ReportClient::new(http, &config.adobe, telemetry, clock.clone());
    let clients: BTreeMap<Option<String>, AuthorizedClient> = accounts
        .iter()
        .map(|credentials| {
            let client = AuthorizedClient {
                reports: report_client.clone(),
                credentials: Arc::clone(credentials),
            };
            (credentials.account().map(str::to_owned), client)
        })
        .collect();
    let mut summary = Summary {
        resumed,
        calls: spill.journal().calls,
        ..Summary::default()
    };
    let mut series = HashSet::new();
    let range_end = to
        .checked_add(1.day())
        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        .unwrap_or(DateTime::MAX);
    for report in reports {
        let name = report.name.as_str();
        if spill.journal().done.iter().any(|d| d == name) {
            continue;
        }
        let granularity = report.path.granularity();
        // Each API's buckets are in its own time zone (ESM: Pacific).
        let tz = config.adobe.time_zone_of(report.api).clone();
        let now_civil = now.to_zoned(tz.clone()).datetime();
        let Some(span) = granularity.span() else {
            tracing::warn!(
                report = name,
                "no time dimension: Adobe keeps no history of it; skipped"
            );
            continue;
        };
        let start_of_range =
            granularity.floor(options.from.to_datetime(jiff::civil::Time::midnight()));
        let client = clients
            .get(&report.account.as_ref().map(|a| a.as_str().to_owned()))
            .expect("every account has a client");
        let Some(mut history) = History::new(
            client,
            report,
            tz.clone(),
            now,
            "backfill",
            options.max_limit,
            Computed::NOTHING,
        ) else {
            continue;
        };
        history.calls = summary.calls;
        history.max_calls = options.max_requests;
        // The newest bucket that ends within the range, and that Adobe has
        // computed past the end of (asked of Adobe when the range reaches
        // its newest buckets).
        let mut last = granularity.floor(now_civil.min(range_end));
        while add(last, span, 1) > range_end {
            last = last.checked_sub(span).unwrap_or(DateTime::MIN);
        }
        if let Err(error) = history.learn_computed(last).await {
            summary.calls = history.calls;
            spill.journal().calls = summary.calls;
            spill.checkpoint().await?;
            return Err(BackfillError::of_history(name, error));
        }
        summary.calls = history.calls;
        last = history
            .newest_complete()
            .map_or(DateTime::MIN, |n| n.min(last));
        let buckets = bucket_count(granularity, start_of_range, last);
        let mut cursor = spill
            .journal()
            .next
            .get(name)
            .and_then(|t| t.parse::<DateTime>().ok())
            .unwrap_or(start_of_range);
        let mut done = bucket_count(granularity, start_of_range, cursor).saturating_sub(1);
        let mut rows_of_report = 0;
        while cursor <= last {
            let extra = options.labels.clone();
            let to_file = matches!(spill, Writer::File(_));
            let mut window_samples = 0u64;
            let mut window_series = Vec::new();
            let read = history
                .next(cursor, last, move |stamp, samples| {
                    if to_file {
                        Written::Families(written_bucket(samples, &extra, stamp.as_second()))
                    } else {
                        Written::Request(bucket_request(samples, &extra, stamp))
                    }
                })
                .await;
            let window = match read {
                Ok(mut reading) => {
                    while let Some(written) = reading.item().await {
                        match (written, &mut spill) {
                            (Written::Families(families), Writer::File(file)) => {
                                for family in families {
                                    window_samples += family.samples as u64;
                                    window_series.extend(family.series);
                                    file.append(
                                        &family.name,
                                        &family.help,
                                        family.kind,
                                        &family.lines,
                                    )?;
                                }
                            }
                            (Written::Request(request), Writer::Remote(pushing)) => {
                                window_samples += request.series() as u64;
                                pushing.append(request).await;
                            }
                            _ => {}
                        }
                    }
                    let last = reading.last;
                    reading.finish(&mut history).await.map(|rows| (last, rows))
                }
                Err(error) => Err(error),
            };
            summary.calls = history.calls;
            summary.windows_split = history.windows_split;
            let (window_last, rows) = match window {
                Ok(window) => window,
                Err(error) => {
                    spill.journal().calls = summary.calls;
                    spill.checkpoint().await?;
                    return Err(BackfillError::of_history(name, error));
                }
            };
            summary.samples += window_samples;
            series.extend(window_series);
            summary.rows += rows as u64;
            rows_of_report += rows as u64;
            done += bucket_count(granularity, cursor, window_last);
            cursor = add(window_last, span, 1);
            spill
                .journal()
                .next
                .insert(name.to_owned(), cursor.to_string());
            spill.journal().calls = summary.calls;
            spill.checkpoint().await?;
            progress(&Progress {
                report: name,
                buckets_done: done,
                buckets,
                rows: rows_of_report,
                calls: summary.calls,
                elapsed: started.elapsed(),
            });
        }
        spill.journal().next.remove(name);
        spill.journal().done.push(name.to_owned());
        spill.checkpoint().await?;
    }
    summary.series = series.len() as u64;
    match spill {
        Writer::File(file) => summary.bytes = file.finish()?,
        Writer::Remote(pushing) => summary.pushed = Some(pushing.finish().await?),
    }
    summary.took = started.elapsed();
    Ok(summary)
}

/// One family of a bucket, written as OpenMetrics lines for the spill.
struct WrittenFamily {
    name: String,
    help: String,
    kind: crate::export::FamilyKind,
    lines: Vec<u8>,
    samples: usize,
    /// Hashes of its series (name and labels), to count distinct series.
    series: Vec<u64>,
}

/// Every family of one bucket's samples, stamped `stamp`, with the
/// `--label`s after each series' own labels.
fn written_bucket(
    samples: &crate::export::Samples<'_>,
    extra: &[(String, String)],
    stamp: i64,
) -> Vec<WrittenFamily> {
    let hasher = rustc_hash::FxBuildHasher;
    samples
        .families()
        .filter_map(|family| {
            let mut lines = Vec::new();
            let mut series = Vec::new();
            let count = openmetrics::write_family(&family, extra, stamp, &mut lines, |key| {
                series.push(hasher.hash_one(key));
            });
            (count > 0).then(|| WrittenFamily {
                name: family.desc.name.clone(),
                help: family.desc.help.clone(),
                kind: family.desc.kind,
                lines,
                samples: count,
                series,
            })
        })
        .collect()
}
