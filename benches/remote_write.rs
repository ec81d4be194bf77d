//! `cargo bench --bench remote_write`: a remote-write request of 20,000
//! series (a bucket of a large report), encoded by hand as the exporter
//! does, against the same request built as `prost` messages and encoded by
//! `prost`, both snappy-compressed. The two bodies are checked equal first.

use std::hint::black_box;

use cmu_exporter::export::format::remote_write::WriteRequest;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[derive(Clone, PartialEq, prost::Message)]
struct ProstWriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<ProstTimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProstTimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<ProstLabel>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<ProstSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProstLabel {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProstSample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

const SERIES: usize = 20_000;
const STAMP: i64 = 1_796_000_000_000;

/// Each series' own labels (sorted by name) and value.
fn series() -> Vec<(Vec<(&'static str, String)>, f64)> {
    (0..SERIES)
        .map(|i| {
            let labels = vec![
                ("mvpd", format!("mvpd-{}", i % 113)),
                ("platform", format!("platform-{}", i % 11)),
                ("report", "hourly".to_owned()),
                ("tenant", format!("tenant-{}", i % 7)),
            ];
            (labels, 1.0 + i as f64)
        })
        .collect()
}

fn extra() -> Vec<(String, String)> {
    vec![
        ("instance".to_owned(), "cmu-exporter-0:9063".to_owned()),
        ("job".to_owned(), "cmu-exporter".to_owned()),
    ]
}

fn by_hand(series: &[(Vec<(&'static str, String)>, f64)], extra: &[(String, String)]) -> Vec<u8> {
    let mut request = WriteRequest::default();
    for (labels, value) in series {
        request.append_series(
            "cmu_active_users",
            |f| {
                for (name, value) in labels {
                    f(name, value.as_bytes());
                }
            },
            *value,
            extra,
            STAMP,
        );
    }
    request.compressed()
}

fn with_prost(
    series: &[(Vec<(&'static str, String)>, f64)],
    extra: &[(String, String)],
) -> Vec<u8> {
    use prost::Message;
    let timeseries = series
        .iter()
        .map(|(labels, value)| {
            let mut all: Vec<ProstLabel> = std::iter::once(("__name__", "cmu_active_users"))
                .chain(labels.iter().map(|(n, v)| (*n, v.as_str())))
                .chain(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .map(|(name, value)| ProstLabel {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })
                .collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            ProstTimeSeries {
                labels: all,
                samples: vec![ProstSample {
                    value: *value,
                    timestamp: STAMP,
                }],
            }
        })
        .collect();
    let body = ProstWriteRequest { timeseries }.encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

fn encode(c: &mut Criterion) {
    let series = series();
    let extra = extra();
    assert_eq!(
        by_hand(&series, &extra),
        with_prost(&series, &extra),
        "both encode the same request"
    );
    let mut group = c.benchmark_group("remote_write_20k_series");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("by_hand", |b| {
        b.iter(|| by_hand(black_box(&series), &extra))
    });
    group.bench_function("prost", |b| {
        b.iter(|| with_prost(black_box(&series), &extra))
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
