//! Properties, over generated inputs (proptest): any CMU or ESM name and
//! any label value make legal exposition that parses back to the same
//! values (and promtool accepts it), and a snapshot does not depend on the
//! order of a row's fields nor on where the answer is cut into pieces.

use std::io::Read;

use cmu_exporter::export::{Exposition, SnapshotSpec, build_snapshot, build_snapshot_from};
use cmu_exporter::names::{label_name, metric_family};
use cmu_exporter::report::{BucketChoice, ReportApi, ReportPath};
use proptest::prelude::*;

use crate::common::*;

fn spec(api: ReportApi, path: ReportPath) -> SnapshotSpec {
    SnapshotSpec {
        api,
        report: "prop".into(),
        account: None,
        path: Some(path),
        choice: BucketChoice::Partial,
        now: "2026-11-22T10:30:00Z".parse().unwrap(),
        time_zone: jiff::tz::TimeZone::UTC,
        labels: Vec::new(),
        max_series: None,
        computed_at: None,
        computed_through: None,
    }
}

fn legal_metric_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn legal_label_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !name.starts_with("__")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Any metric name Adobe could send: any text but the time dimensions.
fn any_metric() -> impl Strategy<Value = String> {
    "\\PC{1,24}".prop_filter("not a time dimension or a known dimension", |m| {
        !cmu_exporter::report::catalog::is_time_dimension(m)
            && !cmu_exporter::report::catalog::is_known_dimension(m)
            && m != "dim"
    })
}

/// Any dimension a path can name.
fn any_dimension() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,15}".prop_filter("not a time dimension", |d| {
        !cmu_exporter::report::catalog::is_time_dimension(d)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_name_and_label_value_make_exposition_that_parses_back(
        esm in any::<bool>(),
        metric in any_metric(),
        dimension in any_dimension(),
        value in "\\PC{1,40}|[\"\\\\\n ]{1,5}",
        count in 0u32..1_000_000,
    ) {
        let api = if esm { ReportApi::Esm } else { ReportApi::Cmu };
        prop_assume!(metric != dimension);
        let path = ReportPath::parse(&format!("year/{dimension}")).unwrap();
        let doc = serde_json::json!({"report": [
            {"year": "2025", dimension.clone(): value.clone(), metric.clone(): count.to_string()}
        ]});
        let snapshot = build_snapshot(doc.to_string().as_bytes(), &spec(api, path)).unwrap();
        let text = String::from_utf8(Exposition::assemble([&snapshot]).to_vec()).unwrap();
        let family = metric_family(api, &metric);
        prop_assert!(legal_metric_name(&family.name), "{}", family.name);
        let label = label_name(&dimension);
        prop_assert!(legal_label_name(&label), "{label}");
        let samples = parse_exposition(&text);
        let sample = samples.iter().find(|s| s.name == family.name);
        prop_assert!(sample.is_some(), "{} in:\n{text}", family.name);
        let sample = sample.unwrap();
        prop_assert_eq!(&sample.labels[&label], &value);
        prop_assert_eq!(&sample.labels["report"], "prop");
        prop_assert_eq!(sample.value, f64::from(count) * family.factor);
        promtool_parses(&format!("{metric:?} {dimension:?} {value:?}"), &text);
    }

    #[test]
    fn a_snapshot_ignores_field_order_and_piece_boundaries(
        rows in prop::collection::vec(
            (0usize..3, 0usize..2, 0u32..3, any::<[u16; 3]>(), any::<u64>()),
            1..40,
        ),
        piece in 1usize..64,
    ) {
        let path = ReportPath::parse("tenant/year/month/day/hour/mvpd").unwrap();
        let fields = |(tenant, mvpd, hour, values, _): &(usize, usize, u32, [u16; 3], u64)| {
            vec![
                ("tenant", ["ACME", "ACME-Kids", "Other"][*tenant].to_owned()),
                ("year", "2026".to_owned()),
                ("month", "11".to_owned()),
                ("day", "22".to_owned()),
                ("hour", hour.to_string()),
                ("mvpd", ["DTV", "Cox"][*mvpd].to_owned()),
                ("active-users", values[0].to_string()),
                ("failed-attempts", values[1].to_string()),
                ("bstreams-30", values[2].to_string()),
            ]
        };
        let document = |shuffle: bool| {
            let records: Vec<String> = rows
                .iter()
                .map(|row| {
                    let mut row_fields = fields(row);
                    if shuffle {
                        // A permutation chosen by the row's own seed.
                        let mut seed = row.4;
                        for i in (1..row_fields.len()).rev() {
                            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            row_fields.swap(i, (seed >> 33) as usize % (i + 1));
                        }
                    }
                    let inner: Vec<String> = row_fields
                        .iter()
                        .map(|(k, v)| format!("{k:?}:{v:?}"))
                        .collect();
                    format!("{{{}}}", inner.join(","))
                })
                .collect();
            format!("{{\"report\":[{}]}}", records.join(","))
        };
        let spec = spec(ReportApi::Cmu, path);
        let render = |s: &cmu_exporter::export::ReportSnapshot| {
            Exposition::assemble([s]).to_vec()
        };
        let plain = render(&build_snapshot(document(false).as_bytes(), &spec).unwrap());
        let shuffled = render(&build_snapshot(document(true).as_bytes(), &spec).unwrap());
        prop_assert_eq!(&plain, &shuffled);
        let bytes = document(true).into_bytes();
        let mut reader = Pieces { bytes: &bytes, piece };
        let pieces = render(&build_snapshot_from(&mut reader, &spec).unwrap());
        prop_assert_eq!(&plain, &pieces);
    }
}

/// A reader that hands out `piece` bytes at a time.
struct Pieces<'a> {
    bytes: &'a [u8],
    piece: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.piece.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}
