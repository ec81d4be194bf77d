//! The selected rows as exposition text: label text, one gauge family per
//! metric, the duration histogram, the info families and HELP texts.
//!
//! Each family's body is encoded once per poll; `/metrics` serves it as is.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;

use jiff::Timestamp;

use super::select::Selection;
use super::snapshot::{Family, FamilyKind, Levels, MvpdHealth, SnapshotSpec};
use crate::names::{
    ACCOUNT_LABEL, DURATION_FAMILY, LAST_MODIFIED_FAMILY, LE_LABEL, LEVEL_LABEL, MetricFamily,
    REPORT_LABEL, bucket_start_family, escape_help, escape_label_value, label_name, level_family,
    metric_family, report_info_family, write_value,
};
use crate::report::catalog::{self, DURATION_METRICS, LEVEL_DIMENSIONS, USERS_METRIC};
use crate::report::{Bucket, Columns, Parsed, ReportApi};

/// What encoding a selection gives.
pub(super) struct Encoded {
    /// Families of CMU metrics and the info families, sorted by name.
    pub families: Vec<Family>,
    /// CMU series (samples) in `families`, info metrics excluded.
    pub series: usize,
    pub levels: Option<Levels>,
    pub mvpds: Vec<MvpdHealth>,
}

/// A finished body, its spare capacity given back, shareable without copies.
fn frozen(mut body: Vec<u8>) -> bytes::Bytes {
    body.shrink_to_fit();
    bytes::Bytes::from(body)
}

/// `report="name"` and the static labels, encoded once for every series.
fn report_labels(spec: &SnapshotSpec) -> Vec<u8> {
    let mut text = identity_labels(spec);
    for (name, value) in &spec.labels {
        append_label(name, value, &mut text);
    }
    text
}

/// `report="…"` and, with several accounts, `account="…"`: what names the
/// report on every family, the info families included.
fn identity_labels(spec: &SnapshotSpec) -> Vec<u8> {
    let mut text = Vec::new();
    text.extend_from_slice(REPORT_LABEL.as_bytes());
    text.extend_from_slice(b"=\"");
    escape_label_value(&spec.report, &mut text);
    text.push(b'"');
    if let Some(account) = &spec.account {
        append_label(ACCOUNT_LABEL, account, &mut text);
    }
    text
}

/// Appends `,name="value"`, the value escaped.
fn append_label(name: &str, value: &str, out: &mut Vec<u8>) {
    out.push(b',');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(value, out);
    out.push(b'"');
}

/// The concurrency or activity dimension of a report, if it has exactly one.
fn level_dimension(dimensions: &[String]) -> Option<&str> {
    let mut levels = dimensions
        .iter()
        .filter(|d| LEVEL_DIMENSIONS.contains(&d.as_str()));
    match (levels.next(), levels.next()) {
        (Some(one), None) => Some(one.as_str()),
        _ => None,
    }
}

/// Family of a metric: `cmu_<metric>` or `esm_<metric>`, or
/// `cmu_<level>_<metric>` in concurrency and activity reports
/// (`cmu_concurrency_level_users`).
fn family_of(api: ReportApi, metric: &str, level: Option<&str>) -> MetricFamily {
    match level {
        Some(level) => MetricFamily {
            name: level_family(level, metric),
            factor: 1.0,
        },
        None => metric_family(api, metric),
    }
}

/// The label text of every kept row, in one buffer with a range per row,
/// labels in name order.
fn label_texts(
    selection: &Selection,
    columns: &Columns,
    report_labels: &[u8],
) -> (Vec<u8>, Vec<Range<usize>>) {
    let level = level_dimension(&columns.dimensions);
    let mut order: Vec<(usize, Vec<u8>)> = columns
        .dimensions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let label = if Some(d.as_str()) == level {
                LEVEL_LABEL.to_owned()
            } else {
                label_name(d)
            };
            (i, format!(",{label}=\"").into_bytes())
        })
        .collect();
    order.sort_by(|a, b| a.1.cmp(&b.1));
    let kept = selection.kept();
    let prefixes: usize = order.iter().map(|(_, p)| p.len() + 1).sum();
    let per_row = report_labels.len() + prefixes;
    let mut text = Vec::with_capacity(kept.len() * per_row + selection.value_bytes());
    let mut spans = Vec::with_capacity(kept.len());
    let mut values: Vec<&[u8]> = Vec::with_capacity(order.len());
    for row in kept {
        selection.dimension_values(row, &mut values);
        let start = text.len();
        text.extend_from_slice(report_labels);
        for (dim, prefix) in &order {
            let Some(value) = values.get(*dim).filter(|v| !v.is_empty()) else {
                continue; // An empty label value is the same as no label.
            };
            text.extend_from_slice(prefix);
            escape_label_value(value, &mut text);
            text.push(b'"');
        }
        spans.push(start..text.len());
    }
    (text, spans)
}

/// Room for `samples` samples per kept row, with names up to `name_len`
/// bytes and `label_bytes` of label text in all: no regrowth (each one a
/// copy of megabytes) while writing a family.
fn body_capacity(rows: usize, samples: usize, name_len: usize, label_bytes: usize) -> usize {
    // Braces, space, newline and 24 bytes of value (a longer one grows the body).
    const PER_SAMPLE: usize = 4 + 24;
    samples * (label_bytes + rows * (name_len + PER_SAMPLE))
}

fn write_sample(name: &str, labels: &[u8], extra: &[u8], value: f64, body: &mut Vec<u8>) {
    body.extend_from_slice(name.as_bytes());
    body.push(b'{');
    body.extend_from_slice(labels);
    body.extend_from_slice(extra);
    body.extend_from_slice(b"} ");
    write_value(value, body);
    body.push(b'\n');
}

/// Encodes the rows `selection` kept.
pub(super) fn encode(selection: &Selection, spec: &SnapshotSpec, parsed: &Parsed) -> Encoded {
    let metrics = &parsed.columns.metrics;
    let level = level_dimension(&parsed.columns.dimensions).filter(|_| spec.api == ReportApi::Cmu);
    let (labels, spans) = label_texts(selection, &parsed.columns, &report_labels(spec));
    let kept = selection.kept();
    let durations = selection.durations();
    let mut families = Vec::with_capacity(metrics.len() + 3);
    let mut series = 0;
    for (m, metric) in metrics.iter().enumerate() {
        if durations.is_some_and(|d| d.contains(&m)) {
            continue; // Exported as the histogram below.
        }
        let MetricFamily { name, factor } = family_of(spec.api, metric, level);
        let mut body = Vec::with_capacity(body_capacity(kept.len(), 1, name.len(), labels.len()));
        for (row, span) in kept.iter().zip(&spans) {
            if let Some(value) = selection.value(row, m) {
                let value = if factor == 1.0 { value } else { value * factor };
                write_sample(&name, &labels[span.clone()], b"", value, &mut body);
                series += 1;
            }
        }
        if !body.is_empty() {
            families.push(Family {
                name,
                help: help_text(spec.api, metric, level),
                kind: FamilyKind::Gauge,
                body: frozen(body),
                deflated: None,
            });
        }
    }
    if let Some(columns) = durations {
        let (family, count) = duration_histogram(selection, columns, &labels, &spans);
        families.extend(family);
        series += count;
    }
    let levels = level.and_then(|dimension| levels(selection, parsed, dimension));
    let mvpds = match spec.api {
        ReportApi::Esm => mvpd_health(selection, parsed),
        ReportApi::Cmu => Vec::new(),
    };
    let bucket = selection.bucket();
    families.extend(info_families(spec, parsed, bucket));
    families.sort_by(|a, b| a.name.cmp(&b.name));
    Encoded {
        families,
        series,
        levels,
        mvpds,
    }
}

/// Authorization and authentication totals per MVPD, for the landing page;
/// empty unless the report has `mvpd` and `authz-attempts`.
fn mvpd_health(selection: &Selection, parsed: &Parsed) -> Vec<MvpdHealth> {
    let columns = &parsed.columns;
    let metric = |name: &str| columns.metrics.iter().position(|m| m == name);
    let (Some(at), Some(attempts)) = (
        columns.dimensions.iter().position(|d| d == "mvpd"),
        metric("authz-attempts"),
    ) else {
        return Vec::new();
    };
    let (successful, failed, latency) = (
        metric("authz-successful"),
        metric("authz-failed"),
        metric(catalog::ESM_LATENCY_METRIC),
    );
    let (authn_attempts, authn_successful) = (metric("authn-attempts"), metric("authn-successful"));
    let mut per_mvpd: BTreeMap<String, MvpdHealth> = BTreeMap::new();
    let mut values = Vec::new();
    for row in selection.kept() {
        selection.dimension_values(row, &mut values);
        let Some(mvpd) = values
            .get(at)
            .map(|v| String::from_utf8_lossy(v).into_owned())
        else {
            continue;
        };
        let value = |m: Option<usize>| m.and_then(|m| selection.value(row, m)).unwrap_or(0.0);
        let health = per_mvpd.entry(mvpd.clone()).or_insert_with(|| MvpdHealth {
            mvpd,
            ..MvpdHealth::default()
        });
        health.authz_attempts += value(Some(attempts));
        health.authz_successful += value(successful);
        health.authz_failed += value(failed);
        health.authz_latency_seconds += value(latency) / 1000.0;
        if authn_attempts.is_some() {
            *health.authn_attempts.get_or_insert(0.0) += value(authn_attempts);
            *health.authn_successful.get_or_insert(0.0) += value(authn_successful);
        }
    }
    per_mvpd.into_values().collect()
}

/// The `duration_*` ranges of each row as one cumulative histogram, and its series count.
fn duration_histogram(
    selection: &Selection,
    columns: [usize; 12],
    labels: &[u8],
    spans: &[Range<usize>],
) -> (Option<Family>, usize) {
    let kept = selection.kept();
    let (bucket_name, count_name) = (
        format!("{DURATION_FAMILY}_bucket"),
        format!("{DURATION_FAMILY}_count"),
    );
    let samples = DURATION_METRICS.len() + 1;
    let capacity = body_capacity(kept.len(), samples, bucket_name.len() + 16, labels.len());
    let mut body = Vec::with_capacity(capacity);
    let mut series = 0;
    let bounds = DURATION_METRICS.map(|(_, upper)| match upper {
        Some(seconds) => format!(",{LE_LABEL}=\"{seconds}\""),
        None => format!(",{LE_LABEL}=\"+Inf\""),
    });
    for (row, span) in kept.iter().zip(spans) {
        let row_labels = &labels[span.clone()];
        let Some(counts) = columns
            .iter()
            .map(|m| selection.value(row, *m))
            .collect::<Option<Vec<f64>>>()
        else {
            continue; // A row without every range cannot be made cumulative.
        };
        let mut cumulative = 0.0;
        for (le, count) in bounds.iter().zip(counts) {
            cumulative += count;
            write_sample(
                &bucket_name,
                row_labels,
                le.as_bytes(),
                cumulative,
                &mut body,
            );
        }
        write_sample(&count_name, row_labels, b"", cumulative, &mut body);
        series += samples;
    }
    if body.is_empty() {
        return (None, 0);
    }
    let help = "Streams by duration in the report's shown time bucket, from the duration_* ranges: cumulative, \
                for histogram_quantile (no _sum: Adobe gives ranges only). Cached from the last poll.";
    let family = Family {
        name: DURATION_FAMILY.into(),
        help: help.into(),
        kind: FamilyKind::Histogram,
        body: frozen(body),
        deflated: None,
    };
    (Some(family), series)
}

/// Users per level, summed over the other labels, for the landing page's charts.
fn levels(selection: &Selection, parsed: &Parsed, dimension: &str) -> Option<Levels> {
    let columns = &parsed.columns;
    let at = columns.dimensions.iter().position(|d| d == dimension)?;
    let users = columns.metrics.iter().position(|m| m == USERS_METRIC)?;
    let mut per_level = BTreeMap::new();
    let mut values = Vec::new();
    for row in selection.kept() {
        selection.dimension_values(row, &mut values);
        let level = values
            .get(at)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u32>().ok());
        if let (Some(level), Some(count)) = (level, selection.value(row, users)) {
            *per_level.entry(level).or_insert(0.0) += count;
        }
    }
    (!per_level.is_empty()).then(|| Levels {
        dimension: dimension.to_owned(),
        users: per_level,
    })
}

/// HELP text of a metric family of `api`.
fn help_text(api: ReportApi, metric: &str, level: Option<&str>) -> String {
    let what = level
        .and_then(|dimension| catalog::level_meaning(dimension, metric))
        .or_else(|| catalog::meaning(api, metric))
        .unwrap_or_else(|| {
            format!("{api} metric \"{metric}\", not documented by Adobe, exported as served")
        });
    let unit = match metric_family(api, metric).factor {
        1.0 => "",
        _ => ", in seconds (Adobe sends milliseconds)",
    };
    format!(
        "{what}{unit}, in the report's shown time bucket ({}). \
         Cached: values are from the last successful poll of the {api} API, not fetched at scrape time.",
        bucket_start_family(api)
    )
}

/// Start of `bucket` as a Unix timestamp, in the report's time zone.
pub(super) fn bucket_start(spec: &SnapshotSpec, bucket: Option<Bucket>) -> Option<Timestamp> {
    bucket
        .and_then(|b| b.start.to_zoned(spec.time_zone.clone()).ok())
        .map(|z| z.timestamp())
}

/// `cmu_report_info` and `cmu_report_bucket_start_timestamp_seconds` for
/// this report (`esm_…` for ESM), and for ESM when its answer was computed.
fn info_families(spec: &SnapshotSpec, parsed: &Parsed, bucket: Option<Bucket>) -> Vec<Family> {
    let path = spec.path.clone().or_else(|| {
        parsed
            .links
            .self_link
            .as_ref()
            .and_then(|l| crate::report::path_of_href(&l.href))
    });
    let granularity = bucket
        .map(|b| b.granularity)
        .or(path.as_ref().map(|p| p.granularity()));
    let report = String::from_utf8_lossy(&identity_labels(spec)).into_owned();
    let mut body = Vec::new();
    let mut path_text = Vec::new();
    escape_label_value(
        path.map(|p| p.to_string()).unwrap_or_default(),
        &mut path_text,
    );
    let (info_family, start_family) = (report_info_family(spec.api), bucket_start_family(spec.api));
    let _ = writeln!(
        body,
        "{info_family}{{{report},path=\"{}\",granularity=\"{}\"}} 1",
        String::from_utf8_lossy(&path_text),
        granularity.map_or("unknown", |g| g.as_str()),
    );
    let mut families = vec![Family {
        name: info_family.into(),
        kind: FamilyKind::Gauge,
        help: format!(
            "Configured {} report: its path and time granularity. Always 1.",
            spec.api
        ),
        body: frozen(body),
        deflated: None,
    }];
    if let Some(start) = bucket_start(spec, bucket) {
        let mut body = Vec::new();
        let _ = write!(body, "{start_family}{{{report}}} ");
        write_value(start.as_second() as f64, &mut body);
        body.push(b'\n');
        families.push(Family {
            name: start_family.into(),
            kind: FamilyKind::Gauge,
            help: "Start of the time bucket whose values the report's series show, as a Unix timestamp.".into(),
            body: frozen(body),
            deflated: None,
        });
    }
    if let Some(computed) = spec.computed_at {
        let mut body = Vec::new();
        let _ = write!(body, "{LAST_MODIFIED_FAMILY}{{{report}}} ");
        write_value(computed.as_second() as f64, &mut body);
        body.push(b'\n');
        families.push(Family {
            name: LAST_MODIFIED_FAMILY.into(),
            kind: FamilyKind::Gauge,
            help: "When Adobe computed the report's last good answer (its Last-Modified header; the time of \
                   the answer when absent, as ESM then computed it in real time), as a Unix timestamp."
                .into(),
            body: frozen(body),
            deflated: None,
        });
    }
    families
}

/// Appends a family's `# HELP` and `# TYPE` lines.
pub fn write_family_header(name: &str, help: &str, kind: FamilyKind, out: &mut Vec<u8>) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_help(help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(match kind {
        FamilyKind::Gauge => b" gauge\n".as_slice(),
        FamilyKind::Histogram => b" histogram\n".as_slice(),
    });
}
