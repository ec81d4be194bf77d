//! The drill-down tree a simulated API serves: CMU's here (reference §9 and
//! §10), ESM's in `super::esm`.
//!
//! Valid report paths are every prefix of the leaves below. The tenant-first
//! branch is the tree Adobe documents for CM tenants; the year-first and
//! mvpd-first branches carry the paths of Adobe's examples page, including
//! the concurrency reports. `occurrences` is an undocumented dimension, as
//! seen in one of Adobe's real responses.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::ReportPath;

const LEAVES: &[&str] = &[
    // Reference §9: tenant-first tree.
    "tenant/year/month/day/mvpd/platform/application-id/application",
    "tenant/year/month/day/mvpd/hour",
    "tenant/year/month/day/channel/platform/application-id/application",
    "tenant/year/month/day/hour/application-id/application",
    "tenant/year/month/day/hour/channel/platform/application-id/application",
    "tenant/year/month/day/hour/mvpd/platform/application-id/application",
    "tenant/year/month/day/hour/minute/application-id/application",
    "tenant/year/month/day/hour/minute/channel/platform/application-id/application",
    "tenant/year/month/day/hour/minute/mvpd/platform/application-id/application",
    "tenant/year/month/day/hour/occurrences",
    "tenant/year/month/day/application-id/application",
    // Reference §10: monthly tenant-first examples.
    "tenant/year/month/application-id/application",
    "tenant/year/month/mvpd/platform/application-id",
    "tenant/year/month/channel/platform/application-id",
    // Year-first examples, with the concurrency reports.
    "year/month/mvpd/tenant/application-id/application/platform",
    "year/month/concurrency-level/tenant/mvpd",
    "year/month/activity-level/tenant/mvpd",
    "year/month/day/mvpd/tenant/application-id/application/platform",
    "year/month/day/tenant/mvpd/platform/application-id",
    "year/month/day/tenant/channel",
    "year/month/day/concurrency-level/tenant/mvpd",
    "year/month/day/activity-level/tenant/mvpd",
    "year/month/day/hour/mvpd/tenant",
    // Mvpd-first examples.
    "mvpd/year/month/tenant",
    "mvpd/year/month/day/tenant",
    "mvpd/year/month/day/hour/tenant",
];

/// Named alias paths (Adobe's staging screenshot called `/v2/billing/daily`).
pub const ALIASES: &[(&str, &str)] = &[("billing/daily", "year/month/day/tenant")];

/// Every valid path and its children.
#[derive(Debug)]
pub struct Tree {
    children: BTreeMap<ReportPath, BTreeSet<String>>,
}

impl Default for Tree {
    /// The CMU tree.
    fn default() -> Self {
        Self::from_leaves(LEAVES)
    }
}

impl Tree {
    /// The tree whose paths are every prefix of `leaves`.
    pub fn from_leaves(leaves: &[&str]) -> Self {
        let mut children: BTreeMap<ReportPath, BTreeSet<String>> = BTreeMap::new();
        for leaf in leaves {
            let leaf = ReportPath::parse(leaf).expect("tree leaves are valid paths");
            let mut node = ReportPath::parse("").expect("root");
            children.entry(node.clone()).or_default();
            for seg in leaf.segments() {
                children
                    .entry(node.clone())
                    .or_default()
                    .insert(seg.clone());
                node = node.child(seg);
                children.entry(node.clone()).or_default();
            }
        }
        Self { children }
    }

    /// Whether `path` has a pre-aggregation.
    pub fn contains(&self, path: &ReportPath) -> bool {
        self.children.contains_key(path)
    }

    /// The dimensions one can drill down to from `path`.
    pub fn children(&self, path: &ReportPath) -> impl Iterator<Item = &str> {
        self.children
            .get(path)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// Every valid path, root first.
    pub fn paths(&self) -> impl Iterator<Item = &ReportPath> {
        self.children.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_holds_documented_paths_and_nothing_else() {
        let tree = Tree::default();
        let has = |p: &str| tree.contains(&ReportPath::parse(p).unwrap());
        assert!(has(""));
        assert!(has("tenant/year/month/day/hour/mvpd"));
        assert!(has("year/month/concurrency-level/tenant"));
        assert!(!has("tenant/mvpd"));
        assert!(!has("year/month/day/hour/minute/mvpd"));
        let root: Vec<&str> = tree.children(&ReportPath::parse("").unwrap()).collect();
        assert_eq!(root, vec!["mvpd", "tenant", "year"]);
    }
}
