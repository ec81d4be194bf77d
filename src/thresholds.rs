//! Alert thresholds and stream limits: configuration, not data.
//!
//! The `thresholds:` section sets warning and critical levels for any
//! exported family (or one of the bundled ratios), optionally narrowed by
//! label values; `stream_limits:` sets each tenant's policy limit. Both are
//! exported beside the reports as gauges, `cmu_threshold{family, severity,
//! <match labels>}` and `cmu_stream_limit{limit, [tenant]}`, so the bundled
//! rules join on them, their alert texts read the numbers from them and the
//! dashboards draw them: a number lives in the configuration only, and a
//! reload changes it without a rule edited.
//!
//! Where the configuration sets none, [`BUNDLED`] keeps the numbers the
//! alerts had before they were configurable.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::export::format::text::{EachLabel, write_sample};
use crate::export::{Family, FamilyKind, ReportSnapshot};

/// Family of the thresholds.
pub const THRESHOLD_FAMILY: &str = "cmu_threshold";

/// Family of the stream limits.
pub const STREAM_LIMIT_FAMILY: &str = "cmu_stream_limit";

/// Key under which the configuration's families sit in the export store
/// (a report name can never start with a space).
pub const STORE_KEY: &str = " configuration";

/// The bundled rules' ratios a threshold may name besides exported families.
pub const RATIOS: [&str; 4] = [
    "cmu:activity_users_over_limit:share",
    "cmu:failed_attempts:ratio",
    "esm:authz_failure:ratio",
    "esm:authz_latency_seconds:average",
];

/// The defaults in force where the configuration sets no unnarrowed
/// threshold of the same family and severity: today's numbers.
pub const BUNDLED: [(&str, Severity, f64); 4] = [
    // 5% of users who tried more streams than their tenant's limit.
    (
        "cmu:activity_users_over_limit:share",
        Severity::Warning,
        0.05,
    ),
    // 10% of session initialisations denied.
    ("cmu:failed_attempts:ratio", Severity::Warning, 0.10),
    // 10% of authorizations denied by the MVPD.
    ("esm:authz_failure:ratio", Severity::Critical, 0.10),
    // 2 s on average on the MVPD's authorization endpoint.
    ("esm:authz_latency_seconds:average", Severity::Warning, 2.0),
];

/// Labels a match may not name: the threshold's own, and those a scrape sets.
const RESERVED: [&str; 7] = [
    "family", "match", "severity", "limit", "job", "instance", "__name__",
];

/// Highest stream limit the bundled rules evaluate (levels are single digits there).
pub const MAX_STREAM_LIMIT: u32 = 9;

/// How bad a crossing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One threshold of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// An exported family (`cmu_active_sessions`) or a bundled ratio.
    pub family: String,
    /// Label name (as exported) to value; empty: every series of the family.
    pub matchers: BTreeMap<String, String>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

/// A tenant's policy: at most `limit` streams per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimit {
    /// `None`: the default of every tenant without its own.
    pub tenant: Option<String>,
    pub limit: u32,
}

/// The `thresholds:` and `stream_limits:` sections, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    pub thresholds: Vec<Threshold>,
    pub stream_limits: Vec<StreamLimit>,
}

/// One `thresholds:` item as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    family: String,
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    warning: Option<f64>,
    critical: Option<f64>,
}

/// One `stream_limits:` item as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStreamLimit {
    #[serde(default, rename = "match")]
    matchers: BTreeMap<String, String>,
    limit: i64,
}

/// Whether `name` is a family the exporter exports (or may, for a metric
/// Adobe adds): `cmu_` or `esm_`, a Prometheus name, not a self-metric.
fn is_exported_family(name: &str) -> bool {
    (name.starts_with("cmu_") || name.starts_with("esm_"))
        && !name.starts_with("cmu_exporter_")
        && name != THRESHOLD_FAMILY
        && name != STREAM_LIMIT_FAMILY
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The families the exporter exports from the metrics Adobe documents,
/// and the bundled ratios: what a threshold names, unless Adobe serves a
/// metric no page documents.
fn documented_families() -> Vec<String> {
    use crate::names::{DURATION_FAMILY, level_family, metric_family};
    use crate::report::ReportApi;
    use crate::report::catalog::{LEVEL_DIMENSIONS, USERS_METRIC, documented_metrics};
    let mut families = Vec::new();
    for api in ReportApi::ALL {
        families.extend(
            documented_metrics(api)
                .into_iter()
                .map(|m| metric_family(api, m).name),
        );
        if api.profile().levels {
            families.extend(
                LEVEL_DIMENSIONS
                    .iter()
                    .map(|d| level_family(api, d, USERS_METRIC)),
            );
        }
    }
    families.push(DURATION_FAMILY.to_owned());
    families.extend(RATIOS.iter().map(|r| (*r).to_owned()));
    families
}

/// The labels of the data a match may name: every dimension Adobe
/// documents, as exported (`requestor-id` is `requestor_id`).
fn documented_labels() -> Vec<String> {
    use crate::report::catalog::{ESM_DIMENSIONS, KNOWN_DIMENSIONS};
    KNOWN_DIMENSIONS
        .iter()
        .chain(ESM_DIMENSIONS.iter())
        .map(|d| crate::names::label_name(d))
        .collect()
}

/// A match's label names as exported (`requestor-id` is `requestor_id`).
fn validate_matchers(
    key: &str,
    matchers: BTreeMap<String, String>,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in matchers {
        let label = crate::names::label_name(&name);
        let valid = label.starts_with(|c: char| c.is_ascii_lowercase())
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            problems.push(format!(
                "{key}.match: `{name}` is not a label name: write a dimension as Adobe names it, e.g. `tenant`, `mvpd`, `requestor-id`"
            ));
        } else if RESERVED.contains(&label.as_str()) {
            problems.push(format!(
                "{key}.match: `{name}` cannot be matched (it is the threshold's own label or one Prometheus sets): match the dimensions of the data, e.g. `tenant`"
            ));
        } else if let Some(nearest) = {
            let labels = documented_labels();
            (!labels.contains(&label))
                .then(|| {
                    crate::spelling::misspelt(&label, labels.iter().map(String::as_str))
                        .map(str::to_owned)
                })
                .flatten()
        } {
            problems.push(format!(
                "{key}.match: `{name}`: no such label of the data; did you mean `{nearest}`?"
            ));
        } else if value.is_empty() {
            problems.push(format!(
                "{key}.match.{name}: empty: give the value to match, e.g. `{name}: ACME`"
            ));
        } else {
            out.insert(label, value);
        }
    }
    out
}

/// Validates both sections, adding each problem (key, value and fix) to `problems`.
pub(crate) fn validate(
    thresholds: Vec<RawThreshold>,
    stream_limits: Vec<RawStreamLimit>,
    problems: &mut Vec<String>,
) -> Thresholds {
    let mut out = Thresholds::default();
    for (i, raw) in thresholds.into_iter().enumerate() {
        let key = format!("thresholds[{i}]");
        let before = problems.len();
        let documented = documented_families();
        if !is_exported_family(&raw.family) && !RATIOS.contains(&raw.family.as_str()) {
            problems.push(format!(
                "{key}.family: `{}` is not an exported family: name one as /metrics shows it (e.g. `cmu_active_sessions`, `esm_authz_attempts`) or a bundled ratio ({})",
                raw.family,
                RATIOS.join(", ")
            ));
        } else if let Some(nearest) = (!documented.contains(&raw.family))
            .then(|| crate::spelling::misspelt(&raw.family, documented.iter().map(String::as_str)))
            .flatten()
        {
            // One or two keystrokes from a family: a typo that would never
            // apply (a family no page documents is taken as Adobe's own).
            problems.push(format!(
                "{key}.family: `{}`: no such family; did you mean `{nearest}`?",
                raw.family
            ));
        }
        let matchers = validate_matchers(&key, raw.matchers, problems);
        for (name, value) in [("warning", raw.warning), ("critical", raw.critical)] {
            if value.is_some_and(|v| !v.is_finite()) {
                problems.push(format!(
                    "{key}.{name}: not a finite number: write a number, e.g. `{name}: 40000`"
                ));
            }
        }
        match (raw.warning, raw.critical) {
            (None, None) => problems.push(format!(
                "{key}: neither warning nor critical: give at least one level, e.g. `warning: 40000`"
            )),
            (Some(w), Some(c)) if w > c => problems.push(format!(
                "{key}: warning {w} is above critical {c}: the warning level comes first (both alert when the value is above them)"
            )),
            _ => {}
        }
        if out
            .thresholds
            .iter()
            .any(|t| t.family == raw.family && t.matchers == matchers)
        {
            problems.push(format!(
                "{key}: a second threshold of {} with the same match: merge them into one item",
                raw.family
            ));
        }
        if problems.len() == before {
            out.thresholds.push(Threshold {
                family: raw.family,
                matchers,
                warning: raw.warning,
                critical: raw.critical,
            });
        }
    }
    for (i, raw) in stream_limits.into_iter().enumerate() {
        let key = format!("stream_limits[{i}]");
        let before = problems.len();
        let matchers = validate_matchers(&key, raw.matchers, problems);
        if let Some(other) = matchers.keys().find(|k| *k != "tenant") {
            problems.push(format!(
                "{key}.match: `{other}`: a stream limit is a tenant's policy: match `tenant` only, or nothing for the default"
            ));
        }
        if !(1..=i64::from(MAX_STREAM_LIMIT)).contains(&raw.limit) {
            problems.push(format!(
                "{key}.limit: {} is not a stream limit of 1 to {MAX_STREAM_LIMIT}: write the policy's maxstreams, e.g. `limit: 3`",
                raw.limit
            ));
        }
        let tenant = matchers.get("tenant").cloned();
        if out.stream_limits.iter().any(|s| s.tenant == tenant) {
            problems.push(format!(
                "{key}: a second stream limit for {}: keep one",
                tenant
                    .as_deref()
                    .map_or("the default".to_owned(), |t| format!("tenant {t}"))
            ));
        }
        if problems.len() == before {
            out.stream_limits.push(StreamLimit {
                tenant,
                limit: raw.limit as u32,
            });
        }
    }
    out
}

impl Thresholds {
    /// Every threshold in force, the bundled defaults included, as
    /// (family, severity, match, level), sorted.
    pub fn levels(&self) -> Vec<(&str, Severity, &BTreeMap<String, String>, f64)> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        let mut levels = Vec::new();
        for t in &self.thresholds {
            for (severity, level) in [
                (Severity::Warning, t.warning),
                (Severity::Critical, t.critical),
            ] {
                if let Some(level) = level {
                    levels.push((t.family.as_str(), severity, &t.matchers, level));
                }
            }
        }
        for (family, severity, level) in BUNDLED {
            let configured = levels
                .iter()
                .any(|(f, s, m, _)| *f == family && *s == severity && m.is_empty());
            if !configured {
                levels.push((family, severity, &NONE, level));
            }
        }
        levels.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        levels
    }

    /// Hands every series of the two configuration families to `each`:
    /// its family, its labels (through the function given) and its value.
    fn each_series(&self, mut each: impl FnMut(&'static str, &dyn Fn(EachLabel<'_>), f64)) {
        for (family, severity, matchers, level) in self.levels() {
            let keys: Vec<&str> = matchers.keys().map(String::as_str).collect();
            let labels = |f: EachLabel<'_>| {
                f("family", family.as_bytes());
                f("match", keys.join(",").as_bytes());
                f("severity", severity.as_str().as_bytes());
                for (name, value) in matchers {
                    f(name, value.as_bytes());
                }
            };
            each(THRESHOLD_FAMILY, &labels, level);
        }
        for s in &self.stream_limits {
            let limit = s.limit.to_string();
            let labels = |f: EachLabel<'_>| {
                f("limit", limit.as_bytes());
                if let Some(tenant) = &s.tenant {
                    f("tenant", tenant.as_bytes());
                }
            };
            each(STREAM_LIMIT_FAMILY, &labels, f64::from(s.limit));
        }
    }

    /// The two configuration families appended to a remote-write request,
    /// stamped `timestamp_ms`, with `extra`: what a store fed only by the
    /// push joins the reports with, as a scrape would.
    pub fn append_to(
        &self,
        request: &mut crate::export::format::remote_write::WriteRequest,
        extra: &[(String, String)],
        timestamp_ms: i64,
    ) {
        self.each_series(|family, labels, value| {
            request.append_series(family, |f| labels(f), value, extra, timestamp_ms);
        });
    }

    /// The two configuration families, as a snapshot the export store
    /// publishes beside the reports (under [`STORE_KEY`]).
    pub fn snapshot(&self) -> ReportSnapshot {
        let (mut thresholds, mut limits) = (Vec::new(), Vec::new());
        self.each_series(|family, labels, value| {
            let out = if family == THRESHOLD_FAMILY {
                &mut thresholds
            } else {
                &mut limits
            };
            write_sample(family, |f| labels(f), value, out);
        });
        let mut families = vec![Family {
            name: THRESHOLD_FAMILY.into(),
            help: "Alert thresholds from the configuration's `thresholds:` (and the bundled defaults where it sets none): configuration, not data. `family` names what it applies to, `severity` is warning or critical, `match` lists the labels it is narrowed by (comma-separated, empty for the default) and those labels follow; the most specific match wins. The bundled rules and dashboards join on it.".into(),
            kind: FamilyKind::Gauge,
            body: bytes::Bytes::from(thresholds),
            deflated: None,
        }];
        if !limits.is_empty() {
            families.push(Family {
                name: STREAM_LIMIT_FAMILY.into(),
                help: "Each tenant's policy stream limit from the configuration's `stream_limits:` (no `tenant` label: the default of every tenant without its own): configuration, not data. The `limit` label repeats the value, so rules can pick the users over it.".into(),
                kind: FamilyKind::Gauge,
                body: bytes::Bytes::from(limits),
                deflated: None,
            });
        }
        let mut snapshot = ReportSnapshot {
            families,
            ..ReportSnapshot::default()
        };
        snapshot.deflate();
        snapshot
    }

    /// What `check-config` says about the sections.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (family, severity, matchers, level) in self.levels() {
            let narrowed = if matchers.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = matchers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(" for {}", pairs.join(", "))
            };
            let _ = writeln!(
                out,
                "  threshold {family} {}{narrowed}: above {level}",
                severity.as_str()
            );
        }
        for s in &self.stream_limits {
            let who = s
                .tenant
                .as_deref()
                .map_or("every other tenant".to_owned(), |t| format!("tenant {t}"));
            let _ = writeln!(out, "  stream limit of {who}: {}", s.limit);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Thresholds, Vec<String>> {
        #[derive(Deserialize)]
        struct Sections {
            #[serde(default)]
            thresholds: Vec<RawThreshold>,
            #[serde(default)]
            stream_limits: Vec<RawStreamLimit>,
        }
        let raw: Sections = serde_saphyr::from_str(yaml).unwrap();
        let mut problems = Vec::new();
        let t = validate(raw.thresholds, raw.stream_limits, &mut problems);
        if problems.is_empty() {
            Ok(t)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn thresholds_are_exported_with_their_match_and_the_bundled_defaults_fill_in() {
        let t = parse(
            "thresholds:\n  - family: cmu_active_sessions\n    match: {tenant: ACME}\n    warning: 40000\n    critical: 50000\n  - family: esm:authz_failure:ratio\n    critical: 0.2\n  - family: esm_authz_attempts\n    match: {requestor-id: nbc}\n    warning: 5\nstream_limits:\n  - match: {tenant: ACME}\n    limit: 3\n  - limit: 2\n",
        )
        .unwrap();
        let snapshot = t.snapshot();
        let text: String = snapshot
            .families
            .iter()
            .map(|f| String::from_utf8_lossy(&f.body).into_owned())
            .collect();
        assert!(text.contains("cmu_threshold{family=\"cmu_active_sessions\",match=\"tenant\",severity=\"warning\",tenant=\"ACME\"} 40000\n"), "{text}");
        assert!(text.contains("cmu_threshold{family=\"cmu_active_sessions\",match=\"tenant\",severity=\"critical\",tenant=\"ACME\"} 50000\n"), "{text}");
        assert!(text.contains("cmu_threshold{family=\"esm_authz_attempts\",match=\"requestor_id\",severity=\"warning\",requestor_id=\"nbc\"} 5\n"), "{text}");
        // The configured default replaces the bundled one; the others stay.
        assert!(text.contains("cmu_threshold{family=\"esm:authz_failure:ratio\",match=\"\",severity=\"critical\"} 0.2\n"), "{text}");
        assert!(!text.contains("severity=\"critical\"} 0.1\n"), "{text}");
        assert!(text.contains("cmu_threshold{family=\"esm:authz_latency_seconds:average\",match=\"\",severity=\"warning\"} 2\n"), "{text}");
        assert!(
            text.contains("cmu_stream_limit{limit=\"3\",tenant=\"ACME\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("cmu_stream_limit{limit=\"2\"} 2\n"), "{text}");
    }

    #[test]
    fn each_bad_threshold_is_named_with_its_fix() {
        let problems = parse(
            "thresholds:\n  - family: cmu_exporter_up\n    warning: 1\n  - family: cmu_active_users\n  - family: cmu_active_users\n    warning: 9\n    critical: 3\n  - family: cmu_active_users\n    match: {job: x, tenant: \"\"}\n    warning: 1\nstream_limits:\n  - limit: 0\n  - match: {mvpd: DTV}\n    limit: 2\n",
        )
        .unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "thresholds[0].family: `cmu_exporter_up` is not an exported family",
            "thresholds[1]: neither warning nor critical",
            "thresholds[2]: warning 9 is above critical 3",
            "thresholds[3].match: `job` cannot be matched",
            "thresholds[3].match.tenant: empty",
            "stream_limits[0].limit: 0 is not a stream limit of 1 to 9",
            "stream_limits[1].match: `mvpd`: a stream limit is a tenant's policy",
        ] {
            assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
        }
    }
}
