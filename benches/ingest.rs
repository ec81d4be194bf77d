//! `cargo bench`: ingest (parse + build the series) and encode (assemble +
//! gzip) of a 100,000-row report shaped like `python_baseline.py --make`.
//! Whole-process comparisons against the Python baseline and the parse floor
//! are in `benches/run`.

use std::hint::black_box;

use cmu_exporter::export::{Exposition, SnapshotSpec, build_snapshot};
use cmu_exporter::report::BucketChoice;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The baseline's synthetic report: six hours of rows over tenant, mvpd,
/// platform and application-id, seven metrics each.
fn report(rows: usize) -> Vec<u8> {
    const METRICS: [&str; 7] = [
        "active-users",
        "active-sessions",
        "started-sessions",
        "completed-sessions",
        "failed-attempts",
        "dismissed-sessions",
        "killed-sessions",
    ];
    let per_hour = (rows / 6).max(1);
    // Like the Python generator: six full hours, the remainder left out.
    let rows = rows.min(6 * per_hour);
    let mut out = String::from(
        r#"{"_links": {"self": {"href": "/cmu/v2/year/month/day/hour/tenant/mvpd/platform/application-id"}}, "report": ["#,
    );
    for i in 0..rows {
        let (hour, k) = (i / per_hour, i % per_hour);
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!(
            r#"{{"year": "2026", "month": "11", "day": "22", "hour": "{hour}", "tenant": "tenant-{}", "mvpd": "mvpd-{}", "platform": "platform-{}", "application-id": "app-{k}""#,
            k % 7,
            k % 113,
            k % 11
        ));
        for (j, m) in METRICS.iter().enumerate() {
            out.push_str(&format!(r#", "{m}": "{}""#, (i * 31 + j * 7) % 10007));
        }
        out.push('}');
    }
    out.push_str("]}");
    out.into_bytes()
}

fn spec() -> SnapshotSpec {
    SnapshotSpec {
        api: cmu_exporter::report::ReportApi::Cmu,
        report: "bench".into(),
        account: None,
        path: None,
        choice: BucketChoice::Complete,
        now: "2026-11-23T00:00:00Z".parse().unwrap(),
        time_zone: jiff::tz::TimeZone::UTC,
        labels: Vec::new(),
        max_series: None,
        computed_at: None,
        computed_through: None,
    }
}

fn benches(c: &mut Criterion) {
    let json = report(100_000);
    let spec = spec();
    let mut group = c.benchmark_group("report_100k_rows");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("ingest", |b| {
        b.iter(|| build_snapshot(black_box(&json), &spec).unwrap())
    });
    let snapshot = build_snapshot(&json, &spec).unwrap();
    assert!(
        snapshot.series > 100_000,
        "the newest hour holds {} series",
        snapshot.series
    );
    group.throughput(Throughput::Bytes(
        Exposition::assemble([&snapshot]).len() as u64
    ));
    group.bench_function("encode", |b| {
        b.iter(|| {
            let exposition = Exposition::assemble([black_box(&snapshot)]);
            exposition.gzip_with(&cmu_exporter::export::Tail::new(bytes::Bytes::new()))
        })
    });
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
