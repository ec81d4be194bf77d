//! # cmu-exporter
//!
//! A Prometheus exporter for Adobe Pass Concurrency Monitoring Usage (CMU)
//! reports. Where things live, following the data:
//!
//! - [`config`]: the YAML file, validated once into types that cannot hold
//!   bad values.
//! - [`credentials`]: the DCR lifecycle. The software statement, client
//!   credentials persisted in `state_dir`, and one access token shared by
//!   all pollers and renewed before it expires.
//! - [`cmu`]: the CMU HTTP client (report URLs, bearer auth, errors).
//! - [`discovery`]: walks the drill-down links to list every report path.
//! - [`report`]: what a CMU report is: paths, time buckets, the metric
//!   catalog, and the streaming HAL+JSON parser that hands rows to a sink.
//! - [`export`]: rows become a snapshot of encoded series per report. The
//!   snapshots are assembled into the exposition `/metrics` serves.
//! - [`poller`]: one task per report: poll at the report's pace, publish
//!   the snapshot, keep the last good one on failure.
//! - [`supervisor`]: runs the pollers and applies a reloaded configuration.
//! - [`charts`]: the landing page's SVG concurrency and what-if charts.
//! - [`server`]: `/metrics`, `/healthz`, `/readyz` and the landing page.
//! - [`web`]: serving those pages: TLS, basic auth, slow-client limits.
//! - [`telemetry`]: the `cmu_exporter_*` self-metrics and their log lines.
//! - [`status`]: each report's state, for the landing page and readiness.
//! - [`app`]: wires the above into a running exporter (service, demo, tests).
//! - [`cli`]: the command line; `main.rs` only calls [`cli::main`].
//! - [`simulator`]: a faithful simulator of Adobe's DCR and CMU servers,
//!   used by the tests, the demo and the benchmarks.
//! - [`names`]: the one place CMU names become Prometheus names.
//! - `swar`: byte search eight bytes at a time, for the parser and labels.
//! - [`clock`], [`shutdown`], [`http`]: the time source, the shutdown
//!   signal, and the outgoing HTTP client, shared by everything.
//!
//! Data flow: poller -> credentials (token) -> cmu (bytes) -> report::parse
//! -> export::snapshot -> ExportStore -> server.

pub mod app;
pub mod cli;
pub mod clock;
pub mod cmu;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod discovery;
pub mod export;
pub mod faults;
pub mod incoming;
pub mod names;
pub mod outgoing;
pub mod poller;
pub mod report;
pub mod reports;
pub mod retry;
pub mod shutdown;
pub mod simulator;
pub mod supervisor;
pub mod telemetry;
