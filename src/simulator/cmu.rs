//! The simulated CMU report API (reference §6): its tree, its synthetic
//! data ([`super::data`]) and its failure spike.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::Shared;
use super::data::{Universe, metrics_for, row_values};
use super::wolap::Dataset;
use crate::report::catalog::LEVEL_DIMENSIONS;
use crate::report::tree::{ALIASES, Tree};
use crate::report::{Granularity, ReportPath};

/// CMU as the simulator serves it.
#[derive(Debug)]
pub(crate) struct Cmu {
    pub tree: Tree,
    pub universe: Universe,
    pub time_zone: TimeZone,
}

impl Dataset for Cmu {
    fn prefix(&self) -> &'static str {
        "/cmu/v2"
    }

    fn strip_prefix<'a>(&self, uri_path: &'a str) -> Option<&'a str> {
        uri_path
            .strip_prefix("/cmu/v2")
            .or_else(|| uri_path.strip_prefix("/v2"))
    }

    fn alias(&self, rest: &str) -> Option<ReportPath> {
        let (_, target) = ALIASES.iter().find(|(alias, _)| *alias == rest)?;
        ReportPath::parse(target).ok()
    }

    fn tree(&self) -> &Tree {
        &self.tree
    }

    fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    fn scope_dimension(&self) -> &'static str {
        "tenant"
    }

    fn values(&self, dimension: &str) -> Option<Vec<String>> {
        self.universe.values(dimension)
    }

    fn consistent(&self, dims: &[(&str, &str)]) -> bool {
        let find = |name: &str| dims.iter().find(|(d, _)| *d == name).map(|(_, v)| *v);
        match (find("application-id"), find("application")) {
            (Some(id), Some(name)) => self.universe.application_name(id) == Some(name),
            _ => true,
        }
    }

    fn dense(&self, dimension: &str) -> bool {
        LEVEL_DIMENSIONS.contains(&dimension)
    }

    fn metrics_for(&self, path: &ReportPath) -> Vec<&'static str> {
        metrics_for(path)
    }

    fn row_values(
        &self,
        shared: &Shared,
        seed: u64,
        dims: &[(&str, &str)],
        bucket: DateTime,
        granularity: Granularity,
        filled: f64,
        metrics: &[&str],
    ) -> Vec<u64> {
        let mut numbers = row_values(seed, dims, bucket, granularity, filled, metrics);
        let factor = super::Simulator::failure_factor(shared);
        if factor != 1.0 {
            for (value, metric) in numbers.iter_mut().zip(metrics) {
                if *metric == "failed-attempts" {
                    *value = (*value as f64 * factor).round() as u64;
                }
            }
        }
        numbers
    }

    /// As of the last computation on CMU's documented schedule (reference
    /// §7); its `Last-Modified` means nothing: it sends none.
    fn computed(
        &self,
        shared: &Shared,
        path: &ReportPath,
        now: jiff::Timestamp,
    ) -> (DateTime, Option<jiff::Timestamp>) {
        (
            shared.config.computations.last(path, &self.time_zone, now),
            None,
        )
    }
}
