//! Building a report's snapshot in one pass over Adobe's answer.
//!
//! Rows stream from the parser into a [`Selection`](super::select) (which
//! rows become series). Its [`Samples`] are then written once as text
//! ([`super::format::text`]) and the landing page's views computed from them
//! ([`views`]); `/metrics` later serves the text without touching it
//! again. History (`backfill`) gets every bucket's samples instead.

use std::collections::BTreeMap;
use std::io::Read;

use super::format::text::{RowLabels, family_body};
use super::samples::{Samples, bucket_start};
use super::select::Selection;
use super::snapshot::{Family, ReportSnapshot, SnapshotSpec};
use super::views;
use crate::report::{
    Bucket, BucketChoice, Computed, ParseError, Parsed, ReportPath, parse_report, parse_report_from,
};

/// Parses `json` and builds the snapshot described by `spec`.
pub fn build_snapshot(json: &[u8], spec: &SnapshotSpec) -> Result<ReportSnapshot, ParseError> {
    build(spec, |path, selection| parse_report(json, path, selection))
}

/// Like [`build_snapshot`], reading the report from `reader` a piece at a
/// time, so that a large file is never held whole in memory.
pub fn build_snapshot_from(
    reader: &mut dyn Read,
    spec: &SnapshotSpec,
) -> Result<ReportSnapshot, ParseError> {
    build(spec, |path, selection| {
        parse_report_from(reader, path, selection)
    })
}

/// Rows routed to one selection per time bucket (rows without time are dropped).
struct ByBucket {
    max_series: Option<usize>,
    buckets: BTreeMap<Bucket, Selection>,
}

impl crate::report::RowSink for ByBucket {
    fn row(
        &mut self,
        columns: &crate::report::Columns,
        row: &crate::report::Row<'_>,
    ) -> Result<(), String> {
        let Some(bucket) = row.bucket else {
            return Ok(());
        };
        let max_series = self.max_series;
        self.buckets
            .entry(bucket)
            .or_insert_with(|| Selection::new(BucketChoice::Partial, max_series))
            .row(columns, row)
    }
}

/// How far Adobe had computed the report `spec` describes, by an answer
/// whose newest bucket is `newest`: the one rule of completeness
/// ([`Computed::judge`]) with what the spec knows.
pub fn computed(spec: &SnapshotSpec, newest: Option<Bucket>) -> Computed {
    let civil = |at: jiff::Timestamp| at.to_zoned(spec.time_zone.clone()).datetime();
    Computed::judge(
        spec.api,
        spec.path.as_ref(),
        newest,
        spec.computed_through.map(civil),
        civil(spec.now),
    )
}

/// Parses a window of a report and hands the samples of every complete
/// bucket in it ([`computed`]), built the way the live exporter builds its
/// newest one, to `each`, oldest first (whatever the order of the rows).
/// `keep` first sees how many rows the document held: when it says no (a
/// truncated answer), no bucket is handed. Returns the rows, and how far
/// Adobe had computed.
pub fn build_history<E>(
    json: &[u8],
    spec: &SnapshotSpec,
    keep: impl FnOnce(usize) -> bool,
    mut each: impl FnMut(Bucket, &Samples<'_>) -> Result<(), E>,
) -> Result<Result<(usize, Computed), E>, ParseError> {
    let mut sink = ByBucket {
        max_series: spec.max_series,
        buckets: BTreeMap::new(),
    };
    let parsed = parse_report(json, spec.path.as_ref(), &mut sink)?;
    let computed = computed(spec, sink.buckets.keys().next_back().copied());
    if !keep(parsed.rows) {
        return Ok(Ok((parsed.rows, computed)));
    }
    for (bucket, selection) in &mut sink.buckets {
        if !computed.complete(Some(*bucket)) {
            break;
        }
        selection.finish(&computed);
        if let Err(e) = each(*bucket, &Samples::new(selection, spec, &parsed)) {
            return Ok(Err(e));
        }
    }
    Ok(Ok((parsed.rows, computed)))
}

fn build(
    spec: &SnapshotSpec,
    parse: impl FnOnce(Option<&ReportPath>, &mut Selection) -> Result<Parsed, ParseError>,
) -> Result<ReportSnapshot, ParseError> {
    crate::faults::strike(
        &spec.report,
        crate::faults::InjectedFault::PanicWhileBuilding,
    );
    let mut selection = Selection::new(spec.choice, spec.max_series);
    let parsed = parse(spec.path.as_ref(), &mut selection)?;
    let newest = selection.newest();
    let computed = computed(spec, newest);
    let digest = selection.finish(&computed);
    let samples = Samples::new(&selection, spec, &parsed);
    let (families, series) = text_families(&samples);
    let bucket = selection.bucket();
    Ok(ReportSnapshot {
        families,
        series,
        bucket,
        bucket_start: bucket_start(spec, bucket),
        rows: parsed.rows,
        duplicates: selection.duplicates(),
        dropped: selection.dropped(),
        levels: views::levels(&samples),
        mvpds: views::mvpd_health(&samples),
        links: parsed.links,
        computed,
        newest,
        digest,
    })
}

/// The samples' families as text bodies (families without a sample left
/// out), and the number of series of Adobe's data among them.
fn text_families(samples: &Samples<'_>) -> (Vec<Family>, usize) {
    let rows = RowLabels::of(samples);
    let mut series = 0;
    let families = samples
        .families()
        .filter_map(|family| {
            let (mut body, count) = family_body(&family, &rows);
            if count == 0 {
                return None;
            }
            if !family.is_about_the_report() {
                series += count;
            }
            body.shrink_to_fit();
            Some(Family {
                name: family.desc.name.clone(),
                help: family.desc.help.clone(),
                kind: family.desc.kind,
                body: bytes::Bytes::from(body),
                deflated: None,
            })
        })
        .collect();
    (families, series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn spec(choice: BucketChoice) -> SnapshotSpec {
        SnapshotSpec {
            api: crate::report::ReportApi::Cmu,
            report: "daily".into(),
            account: None,
            path: Some(ReportPath::parse("year/month/day/tenant").unwrap()),
            choice,
            now: "2023-11-28T12:00:00Z".parse().unwrap(),
            time_zone: TimeZone::UTC,
            labels: Vec::new(),
            max_series: None,
            computed_at: None,
            computed_through: None,
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
        assert_eq!(
            s.bucket_start.as_ref().unwrap().timestamp().to_string(),
            "2023-11-27T00:00:00Z"
        );
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

    #[test]
    fn level_reports_carry_users_per_level_summed_over_other_labels() {
        let doc = r#"{"report": [
            {"year": "2023", "month": "11", "day": "27", "concurrency-level": "1", "tenant": "A", "users": "10"},
            {"year": "2023", "month": "11", "day": "27", "concurrency-level": "1", "tenant": "B", "users": "5"},
            {"year": "2023", "month": "11", "day": "27", "concurrency-level": "2", "tenant": "A", "users": "3"}
        ]}"#;
        let spec = SnapshotSpec {
            path: Some(ReportPath::parse("year/month/day/concurrency-level/tenant").unwrap()),
            ..spec(BucketChoice::Complete)
        };
        // Computed once a day: at noon the next day, the 27th may still be
        // partial, and nothing is shown.
        let s = build_snapshot(doc.as_bytes(), &spec).unwrap();
        assert_eq!((s.levels.clone(), s.series), (None, 0));
        let spec = SnapshotSpec {
            now: "2023-11-29T03:00:00Z".parse().unwrap(),
            ..spec
        };
        let s = build_snapshot(doc.as_bytes(), &spec).unwrap();
        let levels = s.levels.clone().unwrap();
        assert_eq!(levels.dimension, "concurrency-level");
        assert_eq!(levels.users, BTreeMap::from([(1, 15.0), (2, 3.0)]));
        assert!(body(&s, "cmu_concurrency_level_users").contains("level=\"2\""));
        let plain = build_snapshot(DOC.as_bytes(), &self::spec(BucketChoice::Complete)).unwrap();
        assert_eq!(plain.levels, None);
    }

    #[test]
    fn a_dimension_named_like_an_exporter_label_is_renamed_not_duplicated() {
        let doc = r#"{"report": [
            {"report": "r", "le": "x", "level": "3", "duration_0-15": "1", "duration_15-30": "1",
             "duration_30-60": "1", "duration_60-120": "1", "duration_2h-4h": "1", "duration_4h-8h": "1",
             "duration_8h-16h": "1", "duration_16h-1d": "1", "duration_1d-3d": "1", "duration_3d-7d": "1",
             "duration_1w-1m": "1", "duration_over-1m": "1"}
        ]}"#;
        let spec = SnapshotSpec {
            path: Some(ReportPath::parse("report/le/level").unwrap()),
            ..spec(BucketChoice::Complete)
        };
        let s = build_snapshot(doc.as_bytes(), &spec).unwrap();
        let histogram = body(&s, "cmu_session_duration_seconds");
        let first = histogram.lines().next().unwrap();
        assert_eq!(
            first,
            "cmu_session_duration_seconds_bucket{report=\"daily\",cmu_le=\"x\",cmu_level=\"3\",cmu_report=\"r\",le=\"900\"} 1"
        );
        for line in histogram.lines() {
            let labels = &line[line.find('{').unwrap() + 1..line.find('}').unwrap()];
            let names: Vec<&str> = labels
                .split(',')
                .map(|l| l.split('=').next().unwrap())
                .collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(names.len(), unique.len(), "duplicate label in {line}");
        }
    }
}
