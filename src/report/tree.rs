//! Adobe's documented drill-down trees of each report API: CMU's
//! (reference §9 and §10) and ESM's (ESM reference §5.3). The simulator
//! serves exactly these; `check-config` names a configured path outside
//! them with the nearest documented one (Adobe may still serve it: an
//! account's real tree can differ, which `check-config --online` asks).
//!
//! Valid report paths are every prefix of the leaves below. The tenant-first
//! branch is the tree Adobe documents for CM tenants; the year-first and
//! mvpd-first branches carry the paths of Adobe's examples page, including
//! the concurrency reports. `occurrences` is an undocumented dimension, as
//! seen in one of Adobe's real responses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use crate::report::{ReportApi, ReportPath};

const CMU_LEAVES: &[&str] = &[
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

/// The live programmer tree (ESM reference §5.3), a representative part of
/// it: every prefix of a leaf is a report. Each leaf is also served
/// without its `media-company` root, as the documented trees draw it.
const ESM_LEAVES: &[&str] = &[
    "media-company/year/month/day/dc",
    "media-company/year/month/day/event/requestor-id/proxy/mvpd/reason/dc",
    "media-company/year/month/day/proxy/mvpd/dc",
    "media-company/year/month/day/proxy/mvpd/requestor-id/dc",
    "media-company/year/month/day/proxy/mvpd/requestor-id/eap/platform/nsdk/nsdk-version/dc",
    "media-company/year/month/day/proxy/mvpd/requestor-id/platform/nsdk/nsdk-version/sso-type/dc",
    "media-company/year/month/day/requestor-id/dc",
    "media-company/year/month/day/requestor-id/application-name/application-version/channel/dc",
    "media-company/year/month/day/requestor-id/cdt/channel/platform-version/dc",
    "media-company/year/month/day/requestor-id/cdt/sso-type/dc",
    "media-company/year/month/day/requestor-id/customer-app/content-category/channel/dc",
    "media-company/year/month/day/requestor-id/device/os-family/dc",
    "media-company/year/month/day/requestor-id/os-family/browser-family/browser-version/dc",
    "media-company/year/month/day/requestor-id/platform/application-name/application-version/api/dc",
    "media-company/year/month/day/requestor-id/platform/nsdk/nsdk-version/sso-type/dc",
    "media-company/year/month/day/requestor-id/proxy/mvpd/device/dc",
    "media-company/year/month/day/requestor-id/proxy/mvpd/platform/customer-app/channel/decision-type/dc",
    "media-company/year/month/day/hour/dc",
    "media-company/year/month/day/hour/event/requestor-id/proxy/mvpd/reason/dc",
    "media-company/year/month/day/hour/proxy/mvpd/dc",
    "media-company/year/month/day/hour/proxy/mvpd/requestor-id/channel/dc",
    "media-company/year/month/day/hour/proxy/mvpd/requestor-id/cdt/channel/platform-version/dc",
    "media-company/year/month/day/hour/proxy/mvpd/requestor-id/eap/platform/nsdk/nsdk-version/dc",
    "media-company/year/month/day/hour/proxy/mvpd/requestor-id/platform/nsdk/nsdk-version/sso-type/dc",
    "media-company/year/month/day/hour/requestor-id/platform/application-name/application-version/channel/dc",
    "media-company/year/month/day/hour/minute/event/requestor-id/proxy/mvpd/reason/dc",
    "media-company/year/month/day/hour/minute/proxy/mvpd/requestor-id/channel/dc",
    "media-company/year/month/day/hour/minute/proxy/mvpd/requestor-id/platform/nsdk/nsdk-version/dc",
    "media-company/year/month/day/hour/minute/requestor-id/platform/dc",
];

/// Named alias paths (Adobe's staging screenshot called `/v2/billing/daily`).
pub const ALIASES: &[(&str, &str)] = &[("billing/daily", "year/month/day/tenant")];

/// Every valid path and its children.
#[derive(Debug, Clone)]
pub struct Tree {
    children: BTreeMap<ReportPath, BTreeSet<String>>,
}

static CMU_TREE: LazyLock<Tree> = LazyLock::new(|| Tree::from_leaves(CMU_LEAVES));

/// ESM's leaves are also served without their `media-company` root, as the
/// documented trees draw them.
static ESM_TREE: LazyLock<Tree> = LazyLock::new(|| {
    let bare = ESM_LEAVES
        .iter()
        .filter_map(|l| l.strip_prefix("media-company/"));
    let leaves: Vec<&str> = ESM_LEAVES.iter().copied().chain(bare).collect();
    Tree::from_leaves(&leaves)
});

impl Tree {
    /// The tree Adobe documents for `api`.
    pub fn documented(api: ReportApi) -> &'static Tree {
        match api {
            ReportApi::Cmu => &CMU_TREE,
            ReportApi::Esm => &ESM_TREE,
        }
    }

    /// The documented path closest to `path` (fewest characters to change
    /// in its text), for a "did you mean"; `None` when `path` is in the tree.
    pub fn nearest(&self, path: &ReportPath) -> Option<&ReportPath> {
        if self.contains(path) {
            return None;
        }
        let text = path.to_string();
        self.paths()
            .filter(|p| !p.is_root())
            .min_by_key(|p| edit_distance(&text, &p.to_string()))
    }

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

/// For a configured path outside `api`'s documented tree (and not one of
/// its named aliases), the nearest documented path.
pub fn did_you_mean(api: ReportApi, path: &ReportPath) -> Option<&'static ReportPath> {
    let text = path.to_string();
    if api == ReportApi::Cmu && ALIASES.iter().any(|(alias, _)| *alias == text) {
        return None;
    }
    Tree::documented(api).nearest(path)
}

/// Levenshtein distance between two short ASCII-ish texts.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_holds_documented_paths_and_nothing_else() {
        let tree = Tree::documented(ReportApi::Cmu);
        let has = |p: &str| tree.contains(&ReportPath::parse(p).unwrap());
        assert!(has(""));
        assert!(has("tenant/year/month/day/hour/mvpd"));
        assert!(has("year/month/concurrency-level/tenant"));
        assert!(!has("tenant/mvpd"));
        assert!(!has("year/month/day/hour/minute/mvpd"));
        let root: Vec<&str> = tree.children(&ReportPath::parse("").unwrap()).collect();
        assert_eq!(root, vec!["mvpd", "tenant", "year"]);
    }

    #[test]
    fn a_typo_is_named_with_the_nearest_documented_path() {
        let nearest = |api, p: &str| {
            Tree::documented(api)
                .nearest(&ReportPath::parse(p).unwrap())
                .map(ToString::to_string)
        };
        assert_eq!(
            nearest(
                ReportApi::Cmu,
                "year/month/day/concurency-level/tenant/mvpd"
            )
            .as_deref(),
            Some("year/month/day/concurrency-level/tenant/mvpd")
        );
        assert_eq!(
            nearest(ReportApi::Cmu, "tenant/year/month/day/hour/mvdp").as_deref(),
            Some("tenant/year/month/day/hour/mvpd")
        );
        assert_eq!(
            nearest(
                ReportApi::Esm,
                "media-company/year/month/day/hour/proxy/mvpd/dcc"
            )
            .as_deref(),
            Some("media-company/year/month/day/hour/proxy/mvpd/dc")
        );
        assert_eq!(nearest(ReportApi::Cmu, "tenant/year/month/day"), None);
        assert_eq!(nearest(ReportApi::Esm, "year/month/day/proxy/mvpd"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
