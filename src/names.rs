//! The one place that maps CMU names to Prometheus names.
//!
//! CMU metric and dimension names contain dashes and digits
//! (`active-users`, `application-id`, `duration_0-15`) and Adobe serves names
//! no page documents (`bstreams-30`, `occurrences`). Every name, known or not,
//! goes through the same rules here, so the output is always legal
//! exposition and an unknown name never fails a poll.

use crate::swar;

/// Prefix of every gauge derived from a CMU report.
pub const METRIC_PREFIX: &str = "cmu_";

/// Label that carries the configured report name on every CMU series.
pub const REPORT_LABEL: &str = "report";

/// Time dimensions, coarsest first. They select a time bucket and never
/// become labels.
pub const TIME_DIMENSIONS: [&str; 5] = ["year", "month", "day", "hour", "minute"];

/// Dimensions documented by Adobe (plus `tenant`, used by every example).
pub const KNOWN_DIMENSIONS: [&str; 13] = [
    "tenant",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "application",
    "application-id",
    "channel",
    "mvpd",
    "platform",
    "concurrency-level",
    "activity-level",
];

/// Whether a CMU field name is a time dimension.
pub fn is_time_dimension(name: &str) -> bool {
    TIME_DIMENSIONS.contains(&name)
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

/// Prometheus metric family name of a CMU metric: `active-users` -> `cmu_active_users`.
pub fn metric_family(metric: &str) -> String {
    let mut out = String::with_capacity(METRIC_PREFIX.len() + metric.len());
    out.push_str(METRIC_PREFIX);
    sanitize(metric, &mut out);
    out
}

/// Prometheus label name of a CMU dimension: `application-id` -> `application_id`.
///
/// Names that would be illegal or reserved get a `dim_` prefix (a leading
/// digit, a leading `__`), and a dimension called `report` becomes
/// `cmu_report` so it cannot collide with the exporter's own `report` label.
pub fn label_name(dimension: &str) -> String {
    let mut out = String::with_capacity(dimension.len() + 4);
    sanitize(dimension, &mut out);
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert_str(0, "dim_");
    }
    if out == REPORT_LABEL {
        out.insert_str(0, "cmu_");
    }
    out
}

/// Appends `value` escaped for use inside a label value's double quotes.
pub fn escape_label_value(value: impl AsRef<[u8]>, out: &mut Vec<u8>) {
    let bytes = value.as_ref();
    // Most values need no escape: one search, one copy.
    let special = |w| swar::equal(w, b'\\') | swar::equal(w, b'"') | swar::equal(w, b'\n');
    let Some(first) = swar::find(bytes, special, |b| matches!(b, b'\\' | b'"' | b'\n')) else {
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
        write_integer(value as i64, out);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Appends the decimal digits of `n` (faster than `fmt` on the encoding path).
fn write_integer(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_one_rule() {
        assert_eq!(metric_family("active-users"), "cmu_active_users");
        assert_eq!(metric_family("duration_0-15"), "cmu_duration_0_15");
        assert_eq!(metric_family("bstreams-30"), "cmu_bstreams_30");
    }

    #[test]
    fn label_names_are_legal_and_never_reserved() {
        assert_eq!(label_name("application-id"), "application_id");
        assert_eq!(label_name("occurrences"), "occurrences");
        assert_eq!(label_name("30-day"), "dim_30_day");
        assert_eq!(label_name("__name__"), "dim___name__");
        assert_eq!(label_name("report"), "cmu_report");
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
