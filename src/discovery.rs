//! Finds every report path Adobe serves by walking the drill-down links
//! from the root of the CMU or ESM API (`cmu-exporter discover [--api esm]`,
//! `check-config --online`).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::outcome::PollError;
use crate::report::{ReportApi, ReportPath, path_of_href};
use crate::retry::RetryPolicy;
use crate::wolap::{AuthorizedClient, ReportQuery};

/// The `endpoint` label of discovery requests in self-metrics.
const ENDPOINT: &str = "discover";

/// Retries of one discovery request: 1 s, then 2 s.
const RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(10),
    attempts: crate::wolap::ATTEMPTS,
};

/// Every path reachable from the root, in sorted order.
///
/// Each node is asked for one row only (`limit=1`): the links are what
/// matters. Links are resolved by their path after `/v2/`, whatever prefix
/// they carry.
pub async fn walk(
    client: &AuthorizedClient,
    api: ReportApi,
) -> Result<BTreeSet<ReportPath>, PollError> {
    let root = ReportPath::root();
    let mut found = BTreeSet::new();
    let mut queue = VecDeque::from([root]);
    let query = ReportQuery {
        limit: Some(1),
        ..ReportQuery::default()
    };
    while let Some(path) = queue.pop_front() {
        if !found.insert(path.clone()) {
            continue;
        }
        let fetched = client.get(api, ENDPOINT, &path, &query, RETRY).await?;
        let links = links_of(&fetched.body)?;
        for link in links.drill_down {
            match path_of_href(&link.href) {
                Some(child) if !found.contains(&child) => queue.push_back(child),
                Some(_) => {}
                None => {
                    tracing::warn!(href = %link.href, parent = %path, "drill-down link is not a report path; skipped")
                }
            }
        }
    }
    Ok(found)
}

/// The `_links` of a report, read with the same parser the polls use.
fn links_of(body: &[u8]) -> Result<crate::report::Links, PollError> {
    struct Ignore;
    impl crate::report::RowSink for Ignore {
        fn row(
            &mut self,
            _: &crate::report::Columns,
            _: &crate::report::Row<'_>,
        ) -> Result<(), String> {
            Ok(())
        }
    }
    Ok(crate::report::parse_report(body, None, &mut Ignore)?.links)
}

/// A report name suggested for a path: `tenant/year/month/day/hour` -> `tenant_hourly`.
pub fn suggested_name(path: &ReportPath) -> String {
    path.segments()
        .iter()
        .map(|s| s.replace('-', "_"))
        .collect::<Vec<_>>()
        .join("_")
}

/// The text `discover` prints: a table, then a configuration snippet.
pub fn config_snippet(paths: &BTreeSet<ReportPath>, api: ReportApi, base: &str) -> String {
    let mut out = format!(
        "# {} report paths under {base}\n# path  (time granularity, default interval)\n",
        paths.len()
    );
    for path in paths.iter().filter(|p| !p.is_root()) {
        let interval = humantime::format_duration(crate::report::default_interval(api, path));
        out.push_str(&format!(
            "{path}  ({}, {interval})\n",
            path.granularity().as_str()
        ));
    }
    out.push_str("\n# Ready to paste under `reports:` (keep the ones you need):\nreports:\n");
    let api_line = if api.is_default() {
        String::new()
    } else {
        format!("    api: {}\n", api.as_str())
    };
    for path in paths.iter().filter(|p| !p.is_root()) {
        out.push_str(&format!(
            "  - name: {}\n{api_line}    path: {path}\n",
            suggested_name(path)
        ));
    }
    out
}
