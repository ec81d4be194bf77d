//! The writers of [`super::samples`]: each output's bytes, and nothing
//! else's. `text` is the Prometheus text format `/metrics` serves (the
//! report series, the configuration families and the self-metrics),
//! `openmetrics` the file `backfill` writes for Prometheus's importer,
//! `remote_write` the requests a store takes (remote write 1.0).

pub mod openmetrics;
pub mod remote_write;
pub mod text;
