//! The one mapping from Adobe's rows to what we export: typed samples.
//!
//! [`Samples`] borrows a `Selection` (the rows kept of one bucket) and
//! says what they are as Prometheus data: families (name, type, HELP,
//! unit), and per family its samples (labels and value). Family names, unit
//! factors, the duration histogram, the info families and the label names
//! are decided here and nowhere else; each output is a writer over the
//! samples ([`super::format`]), and the landing page's views are computed
//! from them (`views`). Nothing is allocated per sample: labels
//! are borrowed from the selection's arena and the spec.

use super::select::{Kept, Selection};
use super::snapshot::{FamilyKind, SnapshotSpec};
use crate::names::{
    ACCOUNT_LABEL, DURATION_FAMILY, LAST_MODIFIED_FAMILY, LE_LABEL, LEVEL_LABEL, MetricFamily,
    REPORT_LABEL, bucket_start_family, label_name, level_family, metric_family, report_info_family,
};
use crate::report::catalog::{self, DURATION_METRICS, LEVEL_DIMENSIONS};
use crate::report::{Bucket, Parsed, ReportApi};

/// The base unit of a family's values, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    None,
    Seconds,
}

impl Unit {
    /// The unit's name as OpenMetrics and remote-write metadata spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Seconds => "seconds",
        }
    }
}

/// What a family is, whatever its output.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyDesc {
    pub name: String,
    pub help: String,
    pub kind: FamilyKind,
    pub unit: Unit,
}

/// Where a family's values come from.
#[derive(Debug, Clone)]
enum Source {
    /// One metric column, times a unit factor.
    Metric { column: usize, factor: f64 },
    /// The twelve `duration_*` columns as one cumulative histogram.
    Durations {
        columns: [usize; 12],
        bucket: String,
        count: String,
    },
    /// `cmu_report_info`: 1, with the path and granularity labels.
    Info,
    /// One value about the report (a bucket start, a computation time).
    About(f64),
}

/// One family of a selection, and where its samples come from.
#[derive(Debug, Clone)]
struct Entry {
    desc: FamilyDesc,
    source: Source,
}

/// The labels of one sample, borrowed, in the order every output writes
/// them: the report's own (`report`, `account`, static labels), the row's
/// dimensions by label name (empty values are no label), then the
/// sample's own (`le`; `path` and `granularity` of the info family).
#[derive(Clone, Copy)]
pub struct Labels<'s> {
    samples: &'s Samples<'s>,
    head: &'s [(&'s str, &'s str)],
    /// Index of the kept row, for a sample of Adobe's data.
    row: Option<usize>,
    tail: &'s [(&'static str, String)],
}

impl<'s> Labels<'s> {
    /// Calls `f` with each label name and value, in order.
    pub fn for_each(&self, mut f: impl FnMut(&str, &[u8])) {
        for (name, value) in self.head {
            f(name, value.as_bytes());
        }
        if let Some(row) = self.kept() {
            let selection = self.samples.selection;
            for (dimension, name) in &self.samples.dimensions {
                if let Some(value) = selection.dimension_value(row, *dimension) {
                    f(name, value);
                }
            }
        }
        for (name, value) in self.tail {
            f(name, value.as_bytes());
        }
    }

    /// The value of label `name`, if the sample has it.
    pub fn get(&self, name: &str) -> Option<&'s [u8]> {
        if let Some((_, value)) = self.head.iter().find(|(n, _)| *n == name) {
            return Some(value.as_bytes());
        }
        if let (Some(row), Some((dimension, _))) = (
            self.kept(),
            self.samples.dimensions.iter().find(|(_, n)| n == name),
        ) {
            return self.samples.selection.dimension_value(row, *dimension);
        }
        self.tail
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }

    /// The kept row these labels come from, if any: rows are numbered in
    /// the order they were kept, so a writer may render a row's labels
    /// once ([`Samples::row_labels`]).
    pub fn row(&self) -> Option<usize> {
        self.row
    }

    fn kept(&self) -> Option<&'s Kept> {
        self.row
            .and_then(|row| self.samples.selection.kept().get(row))
    }

    /// The labels the sample adds after the row's (`le`, `path`, ...).
    pub fn own(&self) -> &'s [(&'static str, String)] {
        self.tail
    }
}

/// One sample: its name (the family's, or `_bucket`/`_count` of a
/// histogram), its labels and its value in the family's unit.
#[derive(Clone, Copy)]
pub struct Sample<'s> {
    pub name: &'s str,
    pub labels: Labels<'s>,
    pub value: f64,
}

/// One family of a selection: its description and its samples. A family
/// may have no sample (a metric no kept row holds): writers leave it out.
#[derive(Clone, Copy)]
pub struct Family<'s> {
    pub desc: &'s FamilyDesc,
    samples: &'s Samples<'s>,
    source: &'s Source,
}

impl<'s> Family<'s> {
    /// Whether the family describes the report (info, timestamps) rather
    /// than holding Adobe's data: it counts as no series.
    pub fn is_about_the_report(&self) -> bool {
        matches!(self.source, Source::Info | Source::About(_))
    }

    /// Calls `f` with every sample, in row order (a histogram's buckets in
    /// `le` order, then its count).
    pub fn for_each(&self, mut f: impl FnMut(Sample<'s>)) {
        let samples = self.samples;
        let selection = samples.selection;
        let series = |row: usize, tail: &'s [(&'static str, String)]| Labels {
            samples,
            head: &samples.head,
            row: Some(row),
            tail,
        };
        let about = |tail: &'s [(&'static str, String)]| Labels {
            samples,
            head: &samples.head[..samples.identity],
            row: None,
            tail,
        };
        let name = self.desc.name.as_str();
        match self.source {
            Source::Metric { column, factor } => {
                for (i, row) in selection.kept().iter().enumerate() {
                    if let Some(value) = selection.value(row, *column) {
                        let value = if *factor == 1.0 {
                            value
                        } else {
                            value * factor
                        };
                        let labels = series(i, &[]);
                        f(Sample {
                            name,
                            labels,
                            value,
                        });
                    }
                }
            }
            Source::Durations {
                columns,
                bucket,
                count,
            } => {
                for (i, row) in selection.kept().iter().enumerate() {
                    let mut counts = [0.0; 12];
                    let all = columns.iter().zip(&mut counts).all(|(m, slot)| {
                        selection
                            .value(row, *m)
                            .map(|value| *slot = value)
                            .is_some()
                    });
                    if !all {
                        continue; // A row without every range cannot be made cumulative.
                    }
                    let mut cumulative = 0.0;
                    for (b, count) in counts.iter().enumerate() {
                        cumulative += count;
                        f(Sample {
                            name: bucket,
                            labels: series(i, &samples.bounds[b..b + 1]),
                            value: cumulative,
                        });
                    }
                    f(Sample {
                        name: count,
                        labels: series(i, &[]),
                        value: cumulative,
                    });
                }
            }
            Source::Info => f(Sample {
                name,
                labels: about(&samples.info),
                value: 1.0,
            }),
            Source::About(value) => f(Sample {
                name,
                labels: about(&[]),
                value: *value,
            }),
        }
    }
}

/// The samples of one selection (one bucket of one report).
pub struct Samples<'s> {
    api: ReportApi,
    selection: &'s Selection,
    /// `report`, `account` (the first `identity`), then the static labels.
    head: Vec<(&'s str, &'s str)>,
    identity: usize,
    /// Dimension index and its label name, by label name.
    dimensions: Vec<(usize, String)>,
    /// Families by name.
    families: Vec<Entry>,
    /// `path` and `granularity` of the info family.
    info: Vec<(&'static str, String)>,
    /// The histogram's `le` labels, one per duration range.
    bounds: Vec<(&'static str, String)>,
}

impl<'s> Samples<'s> {
    /// The samples of the rows `selection` kept of a report parsed as `parsed`.
    pub(super) fn new(selection: &'s Selection, spec: &'s SnapshotSpec, parsed: &Parsed) -> Self {
        let columns = &parsed.columns;
        let level = level_dimension(&columns.dimensions).filter(|_| spec.api.profile().levels);
        let mut head = vec![(REPORT_LABEL, spec.report.as_str())];
        if let Some(account) = &spec.account {
            head.push((ACCOUNT_LABEL, account.as_str()));
        }
        let identity = head.len();
        head.extend(spec.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let mut dimensions: Vec<(usize, String)> = columns
            .dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let label = if Some(d.as_str()) == level {
                    LEVEL_LABEL.to_owned()
                } else {
                    label_name(d)
                };
                (i, label)
            })
            .collect();
        dimensions.sort_by(|a, b| a.1.cmp(&b.1));
        let durations = selection.durations();
        let mut families = Vec::with_capacity(columns.metrics.len() + 3);
        for (m, metric) in columns.metrics.iter().enumerate() {
            if durations.is_some_and(|d| d.contains(&m)) {
                continue; // Exported as the histogram below.
            }
            let MetricFamily { name, factor } = family_of(spec.api, metric, level);
            families.push(Entry {
                desc: FamilyDesc {
                    name,
                    help: help_text(spec.api, metric, level),
                    kind: FamilyKind::Gauge,
                    unit: if factor == 1.0 {
                        Unit::None
                    } else {
                        Unit::Seconds
                    },
                },
                source: Source::Metric { column: m, factor },
            });
        }
        if let Some(columns) = durations {
            families.push(Entry {
                desc: FamilyDesc {
                    name: DURATION_FAMILY.into(),
                    help: "Streams by duration in the report's shown time bucket, from the duration_* ranges: \
                           cumulative, for histogram_quantile (no _sum: Adobe gives ranges only). Cached from \
                           the last poll."
                        .into(),
                    kind: FamilyKind::Histogram,
                    unit: Unit::Seconds,
                },
                source: Source::Durations {
                    columns,
                    bucket: format!("{DURATION_FAMILY}_bucket"),
                    count: format!("{DURATION_FAMILY}_count"),
                },
            });
        }
        let bucket = selection.bucket();
        let (info, about) = about_the_report(spec, parsed, bucket);
        families.extend(about);
        families.sort_by(|a, b| a.desc.name.cmp(&b.desc.name));
        let bounds = DURATION_METRICS
            .map(|(_, upper)| match upper {
                Some(seconds) => (LE_LABEL, seconds.to_string()),
                None => (LE_LABEL, "+Inf".to_owned()),
            })
            .to_vec();
        Self {
            api: spec.api,
            selection,
            head,
            identity,
            dimensions,
            families,
            info,
            bounds,
        }
    }

    /// The API the report comes from.
    pub fn api(&self) -> ReportApi {
        self.api
    }

    /// The families, by name.
    pub fn families(&'s self) -> impl Iterator<Item = Family<'s>> + 's {
        self.families.iter().map(move |entry| Family {
            desc: &entry.desc,
            samples: self,
            source: &entry.source,
        })
    }

    /// The family named `name`, if the selection has it.
    pub fn family(&'s self, name: &str) -> Option<Family<'s>> {
        self.families().find(|f| f.desc.name == name)
    }

    /// Number of kept rows: [`Labels::row`] is below it.
    pub fn rows(&self) -> usize {
        self.selection.kept().len()
    }

    /// Calls `f` with the labels every sample of kept row `row` starts
    /// with (the report's, then the row's dimensions): what a writer may
    /// render once per row.
    pub fn row_labels(&self, row: usize, mut f: impl FnMut(&str, &[u8])) {
        Labels {
            samples: self,
            head: &self.head,
            row: Some(row),
            tail: &[],
        }
        .for_each(&mut f);
    }

    /// Bytes of label values in the kept rows (to size a writer's buffers).
    pub fn value_bytes(&self) -> usize {
        self.selection.value_bytes()
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

/// Family of a metric: `cmu_<metric>` or `esm_<metric>`, or
/// `cmu_<level>_<metric>` in concurrency and activity reports
/// (`cmu_concurrency_level_users`).
fn family_of(api: ReportApi, metric: &str, level: Option<&str>) -> MetricFamily {
    match level {
        Some(level) => MetricFamily {
            name: level_family(api, level, metric),
            factor: 1.0,
        },
        None => metric_family(api, metric),
    }
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

/// Start of `bucket`, in the report's time zone.
pub(super) fn bucket_start(spec: &SnapshotSpec, bucket: Option<Bucket>) -> Option<jiff::Zoned> {
    bucket.and_then(|b| b.start.to_zoned(spec.time_zone.clone()).ok())
}

/// The info family's labels, and the families about the report:
/// `cmu_report_info`, `cmu_report_bucket_start_timestamp_seconds` (`esm_…`
/// for ESM), and for ESM when its answer was computed.
fn about_the_report(
    spec: &SnapshotSpec,
    parsed: &Parsed,
    bucket: Option<Bucket>,
) -> (Vec<(&'static str, String)>, Vec<Entry>) {
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
    let info = vec![
        ("path", path.map(|p| p.to_string()).unwrap_or_default()),
        (
            "granularity",
            granularity.map_or("unknown", |g| g.as_str()).to_owned(),
        ),
    ];
    let gauge = |name: &str, help: String, source: Source| Entry {
        desc: FamilyDesc {
            name: name.to_owned(),
            help,
            kind: FamilyKind::Gauge,
            unit: Unit::None,
        },
        source,
    };
    let mut families = vec![gauge(
        report_info_family(spec.api),
        format!(
            "Configured {} report: its path and time granularity. Always 1.",
            spec.api
        ),
        Source::Info,
    )];
    if let Some(start) = bucket_start(spec, bucket).map(|z| z.timestamp()) {
        families.push(gauge(
            bucket_start_family(spec.api),
            "Start of the time bucket whose values the report's series show, as a Unix timestamp."
                .into(),
            Source::About(start.as_second() as f64),
        ));
    }
    if let Some(computed) = spec.computed_at {
        families.push(gauge(
            LAST_MODIFIED_FAMILY,
            "When Adobe computed the report's last good answer (its Last-Modified header; the time of \
             the answer when absent, as ESM then computed it in real time), as a Unix timestamp."
                .into(),
            Source::About(computed.as_second() as f64),
        ));
    }
    (info, families)
}
