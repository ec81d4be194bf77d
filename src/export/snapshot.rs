//! Turns one parsed report into a snapshot of encoded series.
//!
//! The snapshot builder is a [`RowSink`]: rows stream in from the parser,
//! only the rows of the bucket to export are kept (label text in one arena,
//! values in one vector), duplicates are dropped, and at the end every metric
//! family is encoded once into exposition text. `/metrics` later serves these
//! bytes without touching them again.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasherDefault;
use std::io::{Read, Write};
use std::ops::Range;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::names::{
    REPORT_LABEL, escape_help, escape_label_value, label_name, metric_family, write_value,
};
use crate::report::catalog::{DURATION_METRICS, LEVEL_DIMENSIONS};
use crate::report::{
    Bucket, Columns, ParseError, Parsed, ReportPath, Row, RowSink, catalog, parse_report,
    parse_report_from,
};

/// Which time bucket of a report becomes the exported value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketChoice {
    /// The newest bucket that has ended: its values no longer change.
    #[default]
    Complete,
    /// The newest bucket, even while it is still filling up.
    Partial,
}

/// How to build a snapshot of one report.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    /// Configured report name (value of the `report` label).
    pub report: String,
    /// The configured path; `None` for a saved file (taken from its `self` link).
    pub path: Option<ReportPath>,
    pub choice: BucketChoice,
    /// Current time, to tell complete buckets from the one still filling.
    pub now: Timestamp,
    /// Time zone of the report's buckets.
    pub time_zone: TimeZone,
    /// Static labels added to every series of the report.
    pub labels: Vec<(String, String)>,
    /// Most series the report may export; rows beyond are dropped and counted.
    pub max_series: Option<usize>,
}

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Gauge,
    /// Cumulative `_bucket{le}` and `_count` series (no `_sum`: Adobe gives ranges only).
    Histogram,
}

/// One metric family's share of a report: exposition lines without HELP/TYPE.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: FamilyKind,
    /// Sample lines, each ending in `\n`, shared with the exposition.
    pub body: bytes::Bytes,
}

/// Everything one successful poll of a report contributes to `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ReportSnapshot {
    /// Families sorted by name.
    pub families: Vec<Family>,
    /// Number of CMU series (samples) in `families`, info metrics excluded.
    pub series: usize,
    /// The bucket shown, if the report has time dimensions and any row qualified.
    pub bucket: Option<Bucket>,
    /// Start of the shown bucket as a Unix timestamp.
    pub bucket_start: Option<Timestamp>,
    /// Rows in the document.
    pub rows: usize,
    /// Rows dropped because an identical label set was already kept.
    pub duplicates: usize,
    /// Series dropped by the `max_series` guard.
    pub dropped: usize,
    /// Links of the document, for discovery and the landing page.
    pub links: crate::report::Links,
}

/// Parses `json` and builds the snapshot described by `spec`.
pub fn build_snapshot(json: &[u8], spec: &SnapshotSpec) -> Result<ReportSnapshot, ParseError> {
    build(spec, |path, builder| parse_report(json, path, builder))
}

/// Like [`build_snapshot`], reading the report from `reader` a piece at a
/// time, so that a large file is never held whole in memory.
pub fn build_snapshot_from(
    reader: &mut dyn Read,
    spec: &SnapshotSpec,
) -> Result<ReportSnapshot, ParseError> {
    build(spec, |path, builder| {
        parse_report_from(reader, path, builder)
    })
}

fn build(
    spec: &SnapshotSpec,
    parse: impl FnOnce(Option<&ReportPath>, &mut Builder) -> Result<Parsed, ParseError>,
) -> Result<ReportSnapshot, ParseError> {
    let now_civil = spec.now.to_zoned(spec.time_zone.clone()).datetime();
    let mut builder = Builder::new(spec, now_civil);
    let parsed = parse(spec.path.as_ref(), &mut builder)?;
    Ok(builder.finish(spec, parsed))
}

/// A finished body, its spare capacity given back, shareable without copies.
fn frozen(mut body: Vec<u8>) -> bytes::Bytes {
    body.shrink_to_fit();
    bytes::Bytes::from(body)
}

/// A fast 64-bit hash of label text (FxHash-style, eight bytes at a time).
/// Equal hashes are always confirmed by comparing the texts.
fn fast_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 29)
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Name of the histogram built from the `duration_*` ranges.
pub const DURATION_FAMILY: &str = "cmu_session_duration_seconds";

/// A kept row: its key in the arena and its values.
struct Kept {
    key: Range<usize>,
    values: Range<usize>,
}

struct Builder {
    now: jiff::civil::DateTime,
    choice: BucketChoice,
    /// `report="name"` encoded once.
    report_label: Vec<u8>,
    columns_version: u32,
    best: Option<Option<Bucket>>,
    /// The keys of kept rows: their dimension values, each after its length
    /// (four bytes), trailing empty ones left out. An empty value is no
    /// label, so equal keys are exactly equal label sets. Label text is only
    /// written at the end, for the rows still kept: most rows of a large
    /// report belong to earlier buckets and are dropped when a newer starts.
    arena: Vec<u8>,
    /// (metric index, value) pairs of kept rows.
    values: Vec<(u32, f64)>,
    kept: Vec<Kept>,
    /// Key hash -> the kept row with that key, to drop duplicates.
    /// A true 64-bit collision between different keys falls back to a scan.
    seen: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    /// The last bucket judged and whether it may be shown (rows come grouped).
    judged: Option<(Option<Bucket>, bool)>,
    duplicates: usize,
    /// Metric indexes of the twelve `duration_*` ranges, when all are present.
    durations: Option<[usize; 12]>,
    /// Series kept so far, and the guard's limit.
    series: usize,
    max_series: usize,
    dropped: usize,
}

impl Builder {
    fn new(spec: &SnapshotSpec, now: jiff::civil::DateTime) -> Self {
        let mut report_label = Vec::new();
        report_label.extend_from_slice(REPORT_LABEL.as_bytes());
        report_label.extend_from_slice(b"=\"");
        escape_label_value(&spec.report, &mut report_label);
        report_label.push(b'"');
        for (name, value) in &spec.labels {
            report_label.push(b',');
            report_label.extend_from_slice(name.as_bytes());
            report_label.extend_from_slice(b"=\"");
            escape_label_value(value, &mut report_label);
            report_label.push(b'"');
        }
        Self {
            now,
            choice: spec.choice,
            report_label,
            columns_version: u32::MAX,
            best: None,
            arena: Vec::new(),
            values: Vec::new(),
            kept: Vec::new(),
            seen: HashMap::default(),
            duplicates: 0,
            judged: None,
            durations: None,
            series: 0,
            max_series: spec.max_series.unwrap_or(usize::MAX),
            dropped: 0,
        }
    }

    fn eligible(&mut self, bucket: Option<Bucket>) -> bool {
        if let Some((judged, verdict)) = self.judged
            && judged == bucket
        {
            return verdict;
        }
        let verdict = match (self.choice, bucket) {
            (_, None) | (BucketChoice::Partial, _) => true,
            (BucketChoice::Complete, Some(b)) => b.end().is_some_and(|end| end <= self.now),
        };
        self.judged = Some((bucket, verdict));
        verdict
    }

    fn reset(&mut self, bucket: Option<Bucket>) {
        self.best = Some(bucket);
        self.arena.clear();
        self.values.clear();
        self.kept.clear();
        self.seen.clear();
        self.duplicates = 0;
        self.series = 0;
        self.dropped = 0;
    }

    /// The value of metric `m` in a kept row.
    fn value(&self, row: &Kept, m: usize) -> Option<f64> {
        self.values[row.values.clone()]
            .iter()
            .find(|(i, _)| *i as usize == m)
            .map(|(_, v)| *v)
    }

    /// The label text of every kept row, in one buffer with a range per row,
    /// labels in name order.
    fn label_texts(&self, columns: &Columns) -> (Vec<u8>, Vec<Range<usize>>) {
        let level = level_dimension(&columns.dimensions);
        let mut order: Vec<(usize, Vec<u8>)> = columns
            .dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let label = if Some(d.as_str()) == level {
                    "level".to_owned()
                } else {
                    label_name(d)
                };
                (i, format!(",{label}=\"").into_bytes())
            })
            .collect();
        order.sort_by(|a, b| a.1.cmp(&b.1));
        let prefixes: usize = order.iter().map(|(_, p)| p.len() + 1).sum();
        let per_row = self.report_label.len() + prefixes;
        let mut text = Vec::with_capacity(self.kept.len() * per_row + self.arena.len());
        let mut spans = Vec::with_capacity(self.kept.len());
        let mut values: Vec<&[u8]> = Vec::with_capacity(order.len());
        for row in &self.kept {
            values.clear();
            let mut key = &self.arena[row.key.clone()];
            while let Some((len, rest)) = key.split_first_chunk::<4>() {
                let (value, rest) = rest.split_at(u32::from_le_bytes(*len) as usize);
                values.push(value);
                key = rest;
            }
            let start = text.len();
            text.extend_from_slice(&self.report_label);
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
    fn body_capacity(&self, samples: usize, name_len: usize, label_bytes: usize) -> usize {
        // Braces, space, newline and 24 bytes of value (a longer one grows the body).
        const PER_SAMPLE: usize = 4 + 24;
        samples * (label_bytes + self.kept.len() * (name_len + PER_SAMPLE))
    }

    fn write_sample(
        &self,
        name: &str,
        labels: &[u8],
        extra: &[u8],
        value: f64,
        body: &mut Vec<u8>,
    ) {
        body.extend_from_slice(name.as_bytes());
        body.push(b'{');
        body.extend_from_slice(labels);
        body.extend_from_slice(extra);
        body.extend_from_slice(b"} ");
        write_value(value, body);
        body.push(b'\n');
    }

    fn finish(self, spec: &SnapshotSpec, parsed: Parsed) -> ReportSnapshot {
        let metrics = &parsed.columns.metrics;
        let level = level_dimension(&parsed.columns.dimensions);
        let (labels, spans) = self.label_texts(&parsed.columns);
        let mut families = Vec::with_capacity(metrics.len() + 3);
        let mut series = 0;
        for (m, metric) in metrics.iter().enumerate() {
            if self.durations.is_some_and(|d| d.contains(&m)) {
                continue; // Exported as the histogram below.
            }
            let name = family_name(metric, level);
            let mut body = Vec::with_capacity(self.body_capacity(1, name.len(), labels.len()));
            for (row, span) in self.kept.iter().zip(&spans) {
                if let Some(value) = self.value(row, m) {
                    self.write_sample(&name, &labels[span.clone()], b"", value, &mut body);
                    series += 1;
                }
            }
            if !body.is_empty() {
                families.push(Family {
                    name,
                    help: help_text(metric),
                    kind: FamilyKind::Gauge,
                    body: frozen(body),
                });
            }
        }
        if let Some(columns) = self.durations {
            let (bucket_name, count_name) = (
                format!("{DURATION_FAMILY}_bucket"),
                format!("{DURATION_FAMILY}_count"),
            );
            let samples = DURATION_METRICS.len() + 1;
            let capacity = self.body_capacity(samples, bucket_name.len() + 16, labels.len());
            let mut body = Vec::with_capacity(capacity);
            for (row, span) in self.kept.iter().zip(&spans) {
                let row_labels = &labels[span.clone()];
                let Some(counts) = columns
                    .iter()
                    .map(|m| self.value(row, *m))
                    .collect::<Option<Vec<f64>>>()
                else {
                    continue; // A row without every range cannot be made cumulative.
                };
                let mut cumulative = 0.0;
                for ((_, upper), count) in DURATION_METRICS.iter().zip(counts) {
                    cumulative += count;
                    let le = match upper {
                        Some(seconds) => format!(",le=\"{seconds}\""),
                        None => ",le=\"+Inf\"".to_owned(),
                    };
                    self.write_sample(
                        &bucket_name,
                        row_labels,
                        le.as_bytes(),
                        cumulative,
                        &mut body,
                    );
                }
                self.write_sample(&count_name, row_labels, b"", cumulative, &mut body);
                series += DURATION_METRICS.len() + 1;
            }
            if !body.is_empty() {
                let help = "Streams by duration in the report's shown time bucket, from the duration_* ranges: cumulative, \
                            for histogram_quantile (no _sum: Adobe gives ranges only). Cached from the last poll.";
                families.push(Family {
                    name: DURATION_FAMILY.into(),
                    help: help.into(),
                    kind: FamilyKind::Histogram,
                    body: frozen(body),
                });
            }
        }
        let bucket = self.best.flatten();
        let bucket_start = bucket
            .and_then(|b| b.start.to_zoned(spec.time_zone.clone()).ok())
            .map(|z| z.timestamp());
        let info = info_families(spec, &parsed, bucket, bucket_start);
        families.extend(info);
        families.sort_by(|a, b| a.name.cmp(&b.name));
        ReportSnapshot {
            families,
            series,
            bucket,
            bucket_start,
            rows: parsed.rows,
            duplicates: self.duplicates,
            dropped: self.dropped,
            links: parsed.links,
        }
    }
}

impl RowSink for Builder {
    fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String> {
        if !self.eligible(row.bucket) {
            return Ok(());
        }
        match self.best {
            Some(best) if row.bucket < best => return Ok(()),
            Some(best) if row.bucket == best => {}
            _ => self.reset(row.bucket),
        }
        if self.columns_version != columns.version {
            let position = |name: &str| columns.metrics.iter().position(|m| m == name);
            self.durations = DURATION_METRICS
                .iter()
                .map(|(name, _)| position(name))
                .collect::<Option<Vec<usize>>>()
                .map(|v| v.try_into().expect("twelve ranges"));
            self.columns_version = columns.version;
        }
        let start = self.arena.len();
        let used = row.dimensions.iter().rposition(|v| !v.is_empty());
        for value in &row.dimensions[..used.map_or(0, |last| last + 1)] {
            self.arena
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(value);
        }
        let key = start..self.arena.len();
        let hash = fast_hash(&self.arena[key.clone()]);
        let index = self.kept.len() as u32;
        match self.seen.entry(hash) {
            Entry::Occupied(e) => {
                let text = &self.arena[key.clone()];
                let same = &self.arena[self.kept[*e.get() as usize].key.clone()] == text
                    || self.kept.iter().any(|k| &self.arena[k.key.clone()] == text);
                if same {
                    self.arena.truncate(start);
                    self.duplicates += 1;
                    return Ok(());
                }
            }
            Entry::Vacant(e) => {
                e.insert(index);
            }
        }
        let present = row.metrics.iter().filter(|v| v.is_some()).count();
        let row_series = present + usize::from(self.durations.is_some());
        if self.series + row_series > self.max_series {
            self.arena.truncate(start);
            self.dropped += row_series;
            if self.seen.get(&hash) == Some(&index) {
                self.seen.remove(&hash);
            }
            return Ok(());
        }
        self.series += row_series;
        let first = self.values.len();
        for (m, value) in row.metrics.iter().enumerate() {
            if let Some(v) = value {
                self.values.push((m as u32, *v));
            }
        }
        self.kept.push(Kept {
            key,
            values: first..self.values.len(),
        });
        Ok(())
    }
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

/// Family name of a CMU metric: `cmu_<metric>`, or `cmu_<level>_<metric>`
/// in concurrency and activity reports (`cmu_concurrency_level_users`).
fn family_name(metric: &str, level: Option<&str>) -> String {
    match level {
        Some(level) => metric_family(&format!("{level}_{metric}")),
        None => metric_family(metric),
    }
}

/// HELP text of a CMU metric family.
fn help_text(metric: &str) -> String {
    let what = catalog::meaning(metric).unwrap_or_else(|| {
        format!("CMU metric \"{metric}\", not documented by Adobe, exported as served")
    });
    format!(
        "{what}, in the report's shown time bucket (cmu_report_bucket_start_timestamp_seconds). \
         Cached: values are from the last successful poll of the CMU API, not fetched at scrape time."
    )
}

/// `cmu_report_info` and `cmu_report_bucket_start_timestamp_seconds` for this report.
fn info_families(
    spec: &SnapshotSpec,
    parsed: &Parsed,
    bucket: Option<Bucket>,
    bucket_start: Option<Timestamp>,
) -> Vec<Family> {
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
    let mut labels = Vec::new();
    escape_label_value(&spec.report, &mut labels);
    let report = String::from_utf8_lossy(&labels).into_owned();
    let mut body = Vec::new();
    let mut path_text = Vec::new();
    escape_label_value(
        path.map(|p| p.to_string()).unwrap_or_default(),
        &mut path_text,
    );
    let _ = writeln!(
        body,
        "cmu_report_info{{report=\"{report}\",path=\"{}\",granularity=\"{}\"}} 1",
        String::from_utf8_lossy(&path_text),
        granularity.map_or("unknown", |g| g.as_str()),
    );
    let mut families = vec![Family {
        name: "cmu_report_info".into(),
        kind: FamilyKind::Gauge,
        help: "Configured CMU report: its path and time granularity. Always 1.".into(),
        body: frozen(body),
    }];
    if let Some(start) = bucket_start {
        let mut body = Vec::new();
        let _ = write!(
            body,
            "cmu_report_bucket_start_timestamp_seconds{{report=\"{report}\"}} "
        );
        write_value(start.as_second() as f64, &mut body);
        body.push(b'\n');
        families.push(Family {
            name: "cmu_report_bucket_start_timestamp_seconds".into(),
            kind: FamilyKind::Gauge,
            help: "Start of the time bucket whose values the report's series show, as a Unix timestamp.".into(),
            body: frozen(body),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(choice: BucketChoice) -> SnapshotSpec {
        SnapshotSpec {
            report: "daily".into(),
            path: Some(ReportPath::parse("year/month/day/tenant").unwrap()),
            choice,
            now: "2023-11-28T12:00:00Z".parse().unwrap(),
            time_zone: TimeZone::UTC,
            labels: Vec::new(),
            max_series: None,
        }
    }

    const DOC: &str = r#"{"report": [
        {"year": "2023", "month": "11", "day": "26", "tenant": "A", "active-users": "5"},
        {"year": "2023", "month": "11", "day": "27", "tenant": "A", "active-users": "6"},
        {"year": "2023", "month": "11", "day": "27", "tenant": "B", "active-users": "7", "bstreams-30": "1"},
        {"year": "2023", "month": "11", "day": "27", "tenant": "B", "active-users": "99"},
        {"year": "2023", "month": "11", "day": "28", "tenant": "A", "active-users": "1"}
    ]}"#;

    fn body(snapshot: &ReportSnapshot, family: &str) -> String {
        let f = snapshot.families.iter().find(|f| f.name == family).unwrap();
        String::from_utf8(f.body.to_vec()).unwrap()
    }

    #[test]
    fn newest_complete_bucket_is_shown_and_duplicates_dropped() {
        let s = build_snapshot(DOC.as_bytes(), &spec(BucketChoice::Complete)).unwrap();
        assert_eq!(
            body(&s, "cmu_active_users"),
            "cmu_active_users{report=\"daily\",tenant=\"A\"} 6\ncmu_active_users{report=\"daily\",tenant=\"B\"} 7\n"
        );
        assert_eq!(
            body(&s, "cmu_bstreams_30"),
            "cmu_bstreams_30{report=\"daily\",tenant=\"B\"} 1\n"
        );
        assert_eq!(s.series, 3);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.bucket_start.unwrap().to_string(), "2023-11-27T00:00:00Z");
        assert_eq!(
            body(&s, "cmu_report_info"),
            "cmu_report_info{report=\"daily\",path=\"year/month/day/tenant\",granularity=\"day\"} 1\n"
        );
    }

    #[test]
    fn rows_with_the_same_labels_are_one_series_whatever_their_columns() {
        // A dimension that appears mid-report, an empty value (no label),
        // another field order, and a value that needs escaping.
        let doc = r#"{"report": [
            {"tenant": "A", "users": "1"},
            {"tenant": "A", "mvpd": "", "users": "2"},
            {"tenant": "A", "mvpd": "M\"x", "users": "3"},
            {"mvpd": "M\"x", "tenant": "A", "users": "4"},
            {"channel": "c", "users": "5"},
            {"users": "6", "channel": "c", "tenant": "", "mvpd": ""}
        ]}"#;
        let spec = SnapshotSpec {
            path: None,
            ..spec(BucketChoice::Complete)
        };
        let s = build_snapshot(doc.as_bytes(), &spec).unwrap();
        assert_eq!(
            body(&s, "cmu_users"),
            "cmu_users{report=\"daily\",tenant=\"A\"} 1\n\
             cmu_users{report=\"daily\",mvpd=\"M\\\"x\",tenant=\"A\"} 3\n\
             cmu_users{report=\"daily\",channel=\"c\"} 5\n"
        );
        assert_eq!((s.series, s.duplicates), (3, 3));
    }

    #[test]
    fn partial_choice_shows_the_bucket_still_filling() {
        let s = build_snapshot(DOC.as_bytes(), &spec(BucketChoice::Partial)).unwrap();
        assert_eq!(
            body(&s, "cmu_active_users"),
            "cmu_active_users{report=\"daily\",tenant=\"A\"} 1\n"
        );
        assert_eq!(s.bucket.unwrap().start.to_string(), "2023-11-28T00:00:00");
    }
}
