//! The integration tests, as one binary (one link of the crate instead of
//! eight). Each module is a theme; every test talks to the simulator and the
//! exporter over real HTTP on 127.0.0.1.

mod common;

mod accounts;
mod alerts_on_push;
mod backfill;
mod bad_config;
mod cli;
#[cfg(feature = "testkit")]
mod crash;
mod credentials;
mod deploy;
mod docs;
mod end_to_end;
mod esm;
#[cfg(feature = "testkit")]
mod freshness;
mod hostile;
mod house;
mod monitoring;
mod operations;
mod properties;
// Its faulty store, clock and kill hooks are test machinery.
#[cfg(feature = "testkit")]
mod push;
mod remote_write;
mod reports;
mod sharding;
mod sigv4;
mod simulator;
mod web;
