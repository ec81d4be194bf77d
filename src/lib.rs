//! # cmu-exporter
//!
//! A Prometheus exporter for Adobe Pass Concurrency Monitoring Usage (CMU)
//! and Entitlement Service Monitoring (ESM) reports: two report APIs of one
//! WOLAP engine, on the same credentials. Where things live, following the
//! data:
//!
//! - [`config`]: the YAML file, validated once into types that cannot hold
//!   bad values: the types in `mod.rs`, the serde mirror (`raw`), one
//!   validator per section (`adobe`, `accounts`, `reports`) and `explain`.
//!   `Config::from_yaml` is a function of its text; the environment is
//!   read at the edge (`Config::load`, `SecretsInEnv`).
//! - [`credentials`]: the DCR lifecycle. The software statement, client
//!   credentials persisted in `state_dir`, and one access token shared by
//!   all pollers and renewed before it expires.
//! - [`outgoing`]: the one HTTP client for Adobe and the one exchange (send,
//!   time, record, read) that the DCR and report clients share.
//! - `retry`: the one retry policy (doubling pauses with jitter,
//!   `Retry-After` honoured) for requests, failed polls and poller restarts.
//! - `wolap`: the report client of both APIs (URLs, errors, `Last-Modified`)
//!   and `AuthorizedClient`, the one way to GET a report with the shared token.
//! - `discovery`: walks the drill-down links to list every report path.
//! - [`report`]: what Adobe sends: which API (`ReportApi` and its
//!   `ApiProfile`: everything that differs between CMU and ESM, beside
//!   their vocabularies in `catalog` and documented trees in `tree`),
//!   paths, time buckets, the window to ask for and the default intervals,
//!   filters, HAL links, and the streaming HAL+JSON parser.
//! - [`names`]: what we export: every family and label name, and the one
//!   mapping from Adobe's names to Prometheus names.
//! - [`export`]: rows become a snapshot per report: `select` keeps the rows
//!   to show, `samples` says what they are as Prometheus data (the one
//!   sample model), `format` writes samples (`text` for `/metrics`,
//!   `openmetrics` for `backfill`, `remote_write` for a store's
//!   `/api/v1/write`), `views` sums them for the landing page,
//!   `build` runs it once per poll; the snapshots are assembled into the
//!   exposition `/metrics` serves, plain or gzip (`deflated`).
//! - `outcome`: what a poller says happened (`PollOutcome`, with its time)
//!   and why a poll fails (`PollError`).
//! - `poller`: one task per report: poll at the report's pace and say what
//!   happened; a panic fails one poll, never the poller.
//! - `reports`: each report's status and self-metrics in one place; an
//!   outcome is applied there and its snapshot handed to every `Sink` (the
//!   `ExportStore` behind `/metrics` first).
//! - [`shard`]: which reports this process polls (`--shard`, `--total-shards`).
//! - `supervisor`: runs the pollers (restarting one that dies) and applies
//!   a reloaded configuration.
//! - [`incoming`]: what the exporter serves and how: pages and their shared
//!   state, landing page and charts, the `--web.config.file` (TLS, basic
//!   auth) and the accept loop.
//! - [`telemetry`]: the `cmu_exporter_*` self-metrics and their log lines
//!   (a failure that lasts is logged at its start, now and then, and at its
//!   end), written by the same text writer as the report series.
//! - `thresholds`: the configuration's alert thresholds and stream limits,
//!   exported as `cmu_threshold` and `cmu_stream_limit` for the rules to join on.
//! - [`app`]: wires the above into a running exporter (service, demo, tests).
//! - [`cli`]: the command line, one file per command; `main.rs` only calls
//!   [`cli::main`].
//! - `history`: a report's past buckets read from Adobe in windows it
//!   accepts (split on truncation or 400, grown when small): the one reader
//!   of history, for `backfill` and the push's gap fill.
//! - [`push`]: remote write to Prometheus-compatible stores: a `Sink` fed
//!   each poll's answer, one task per remote (`remote`), durable cursors in
//!   `state_dir` (`cursor`), the store's answers retried, split or held
//!   (`store`), gaps filled from Adobe up to `max_gap`.
//! - [`backfill`]: Adobe's history of each report as OpenMetrics for
//!   Prometheus's importer, or straight into a remote-write store;
//!   resumable.
//! - [`demo`]: the demo's configuration and the simulated day.
//! - [`simulator`]: a faithful simulator of Adobe's DCR, CMU and ESM servers,
//!   used by the tests, the demo and the benchmarks.
//! - [`faults`]: faults injected into our own code by tests (panics, state
//!   writes that fail or crawl); empty without the `testkit` feature.
//! - `soak` (`testkit` only): the chaos soak of `scripts/soak`.
//! - `faulty_store` (`testkit` only): a remote-write store with scripted
//!   or random trouble, for the push tests and the soak.
//! - `durable`: files replaced whole (state, journal), crash-safe.
//! - [`clock`], [`shutdown`]: the time source and the shutdown signal,
//!   shared by everything.
//!
//! Data flow: poller -> wolap::AuthorizedClient (credentials, outgoing) ->
//! report::parse -> export (select, samples, format, views) -> PollOutcome
//! -> reports -> sinks (ExportStore -> incoming::pages; push::Pusher ->
//! remote-write stores, gaps read through history).
//!
//! ## The public surface
//!
//! The modules linked above are public; the others are the exporter's own.
//! What tests, fuzz targets, benches and examples build on:
//!
//! - [`app::start`] and [`app::Options`]: a whole exporter in-process;
//!   [`demo`] and [`simulator::Simulator`]: what it talks to.
//! - [`config::Config::from_yaml`], [`incoming::WebConfig::parse`]: the
//!   configuration files (fuzzed).
//! - [`report::parse_report`], [`report::RowSink`]: the streaming parser
//!   (fuzzed, benched); [`export::build_snapshot`], [`export::Samples`] and
//!   [`export::Exposition`]: what a report becomes.
//! - [`credentials::parse_state`]: the state file (fuzzed).
//! - [`clock::Clock`]: accelerated time for every test of Adobe's pace.
//! - [`faults`], `soak`, `faulty_store` (`testkit`): the test machinery.

pub mod app;
pub mod backfill;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod demo;
mod discovery;
mod durable;
pub mod export;
pub mod faults;
#[cfg(feature = "testkit")]
pub mod faulty_store;
mod history;
pub mod incoming;
pub mod names;
mod outcome;
pub mod outgoing;
mod pace;
mod poller;
pub mod push;
pub mod report;
mod reports;
mod retry;
pub mod shard;
pub mod shutdown;
pub mod simulator;
#[cfg(feature = "testkit")]
pub mod soak;
mod spelling;
mod supervisor;
pub mod telemetry;
mod thresholds;
mod wolap;
