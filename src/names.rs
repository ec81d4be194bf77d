//! Every name the exporter exports, and the one place that maps Adobe's
//! names to Prometheus names.
//!
//! CMU and ESM metric and dimension names contain dashes and digits
//! (`active-users`, `application-id`, `duration_0-15`) and Adobe serves names
//! no page documents (`bstreams-30`, `occurrences`). Every name, known or not,
//! goes through the same rules here, so the output is always legal
//! exposition and an unknown name never fails a poll. What Adobe *sends* is
//! described in [`crate::report::catalog`].

use crate::report::ReportApi;

/// Prefix of every family derived from a report of `api`: `cmu_`, `esm_`.
pub fn metric_prefix(api: ReportApi) -> &'static str {
    api.profile().metric_prefix
}

/// Label that carries the configured report name on every CMU series.
pub const REPORT_LABEL: &str = "report";

/// Label that carries the account on every series of an account's reports
/// (and on the credentials self-metrics), when several accounts are configured.
pub const ACCOUNT_LABEL: &str = "account";

/// Label of the concurrency or activity level in level families.
pub const LEVEL_LABEL: &str = "level";

/// Upper bound label of histogram buckets.
pub const LE_LABEL: &str = "le";

/// Labels the exporter sets itself: a dimension with one of these names is
/// renamed ([`label_name`]) and a static label may not take one.
pub const RESERVED_LABELS: [&str; 4] = [REPORT_LABEL, ACCOUNT_LABEL, LE_LABEL, LEVEL_LABEL];

/// Prefix given to a dimension whose label name would be reserved.
const RESERVED_PREFIX: &str = "cmu_";

/// `cmu_report_info{report, path, granularity} 1` (`esm_report_info` for ESM).
pub fn report_info_family(api: ReportApi) -> &'static str {
    api.profile().info_family
}

/// Start of the bucket a report's series show, per report.
pub fn bucket_start_family(api: ReportApi) -> &'static str {
    api.profile().bucket_start_family
}

/// When Adobe computed an ESM report's answer (`Last-Modified`), per report.
pub const LAST_MODIFIED_FAMILY: &str = "esm_report_last_modified_timestamp_seconds";

/// ESM's `authz-latency`, a total in milliseconds, exported in seconds.
pub const ESM_LATENCY_FAMILY: &str = "esm_authz_latency_seconds";

/// ESM's `count`: Adobe Pass events, by event and reason.
pub const ESM_EVENTS_FAMILY: &str = "esm_events";

/// The histogram built from the `duration_*` ranges.
pub const DURATION_FAMILY: &str = "cmu_session_duration_seconds";

/// Family of a metric in a level report of `api` (one whose profile has
/// levels): `cmu_concurrency_level_users` for `users` by `concurrency-level`.
pub fn level_family(api: ReportApi, level_dimension: &str, metric: &str) -> String {
    metric_family(api, &format!("{level_dimension}_{metric}")).name
}

/// Replaces every character that is not `[a-zA-Z0-9_]` with `_`.
fn sanitize(name: &str, out: &mut String) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// Suffixes that mean a counter, a histogram or a summary: a gauge's name
/// never ends with one.
pub const RESERVED_SUFFIXES: [&str; 5] = ["_count", "_sum", "_bucket", "_total", "_created"];

/// The family a metric of Adobe's becomes, and the factor from Adobe's
/// unit to the family's base unit.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    /// Multiplies Adobe's value (1, or 0.001 for milliseconds).
    pub factor: f64,
}

/// The family of a metric of `api`: `active-users` -> `cmu_active_users`,
/// `authz-attempts` -> `esm_authz_attempts`; ESM's `authz-latency`
/// (milliseconds) -> `esm_authz_latency_seconds`, divided by 1000.
///
/// ESM's `count` (events by event and reason) is `esm_events`: a gauge
/// named with a suffix of counters and histograms ([`RESERVED_SUFFIXES`])
/// would read as one, so any other such name gets `_value` appended.
pub fn metric_family(api: ReportApi, metric: &str) -> MetricFamily {
    if let Some((_, family, factor)) = api.profile().renamed.iter().find(|(m, ..)| *m == metric) {
        return MetricFamily {
            name: (*family).to_owned(),
            factor: *factor,
        };
    }
    let prefix = metric_prefix(api);
    let mut name = String::with_capacity(prefix.len() + metric.len() + 6);
    name.push_str(prefix);
    sanitize(metric, &mut name);
    if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        name.push_str("_value");
    }
    MetricFamily { name, factor: 1.0 }
}

/// Prometheus label name of a CMU dimension: `application-id` -> `application_id`.
///
/// Names that would be illegal get a `dim_` prefix (a leading digit, a
/// leading `__`), and a dimension named like one of the exporter's own
/// labels ([`RESERVED_LABELS`]: `report`, `account`, `le`, `level`) becomes
/// `cmu_report`, `cmu_account`, `cmu_le`, `cmu_level`: never a duplicate.
pub fn label_name(dimension: &str) -> String {
    let mut out = String::with_capacity(dimension.len() + 4);
    sanitize(dimension, &mut out);
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert_str(0, "dim_");
    }
    if RESERVED_LABELS.contains(&out.as_str()) {
        out.insert_str(0, RESERVED_PREFIX);
    }
    out
}

/// Appends `value` escaped for use inside a label value's double quotes.
pub fn escape_label_value(value: impl AsRef<[u8]>, out: &mut Vec<u8>) {
    let bytes = value.as_ref();
    // Most values need no escape: one search, one copy.
    let Some(first) = memchr::memchr3(b'\\', b'"', b'\n', bytes) else {
        out.extend_from_slice(bytes);
        return;
    };
    out.extend_from_slice(&bytes[..first]);
    let mut start = first;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `text` escaped for a `# HELP` line (backslash and newline only).
pub fn escape_help(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            _ => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Appends a sample value the way Prometheus clients print it: integers
/// without a fraction, other values in the shortest form that round-trips.
pub fn write_value(value: f64, out: &mut Vec<u8>) {
    use std::io::Write;
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 9.0e15 {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_one_rule() {
        let cmu = |m: &str| metric_family(ReportApi::Cmu, m).name;
        let esm = |m: &str| metric_family(ReportApi::Esm, m);
        assert_eq!(cmu("active-users"), "cmu_active_users");
        assert_eq!(cmu("duration_0-15"), "cmu_duration_0_15");
        assert_eq!(cmu("bstreams-30"), "cmu_bstreams_30");
        assert_eq!(esm("authz-attempts").name, "esm_authz_attempts");
        assert_eq!(
            esm("decision-media-tokens").name,
            "esm_decision_media_tokens"
        );
        assert_eq!(esm("some.new+metric").name, "esm_some_new_metric");
        assert_eq!(esm("unique-accounts").factor, 1.0);
        let latency = esm("authz-latency");
        assert_eq!(
            (latency.name.as_str(), latency.factor),
            ("esm_authz_latency_seconds", 0.001)
        );
        assert_eq!(esm("count").name, "esm_events");
        // The profile's renames are the catalog's metrics and our families.
        use crate::report::catalog::{ESM_EVENTS_METRIC, ESM_LATENCY_METRIC};
        assert_eq!(esm(ESM_LATENCY_METRIC).name, ESM_LATENCY_FAMILY);
        assert_eq!(esm(ESM_EVENTS_METRIC).name, ESM_EVENTS_FAMILY);
        assert_eq!(esm("retry-count").name, "esm_retry_count_value");
        assert_eq!(cmu("streams-total"), "cmu_streams_total_value");
        assert_eq!(cmu("bstreams_sum"), "cmu_bstreams_sum_value");
        // CMU has no such metric: the rule is ESM's alone.
        assert_eq!(cmu("authz-latency"), "cmu_authz_latency");
    }

    #[test]
    fn label_names_are_legal_and_never_reserved() {
        assert_eq!(label_name("application-id"), "application_id");
        assert_eq!(label_name("occurrences"), "occurrences");
        assert_eq!(label_name("30-day"), "dim_30_day");
        assert_eq!(label_name("__name__"), "dim___name__");
        assert_eq!(label_name("report"), "cmu_report");
        assert_eq!(label_name("le"), "cmu_le");
        assert_eq!(label_name("level"), "cmu_level");
        assert_eq!(label_name("account"), "cmu_account");
        assert_eq!(label_name(""), "dim_");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        escape_label_value("a\"b\\c\nd é", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\"b\\\\c\\nd é");
    }

    #[test]
    fn values_print_like_prometheus_clients() {
        let render = |v: f64| {
            let mut out = Vec::new();
            write_value(v, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render(1830.0), "1830");
        assert_eq!(render(0.0), "0");
        assert_eq!(render(-42.0), "-42");
        assert_eq!(render(0.25), "0.25");
        assert_eq!(render(f64::INFINITY), "+Inf");
        assert_eq!(render(1e20), "100000000000000000000");
    }
}
