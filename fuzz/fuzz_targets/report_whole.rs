//! The report parser and snapshot builder on a whole answer, as CMU and as
//! ESM, with and without a path: any bytes give a snapshot or an error.
#![no_main]

use cmu_exporter::export::{Exposition, SnapshotSpec, build_snapshot};
use cmu_exporter::report::{BucketChoice, ReportApi, ReportPath};
use libfuzzer_sys::fuzz_target;

fn spec(api: ReportApi, path: Option<&str>) -> SnapshotSpec {
    SnapshotSpec {
        api,
        report: "fuzz".into(),
        account: None,
        path: path.map(|p| ReportPath::parse(p).expect("a valid path")),
        choice: BucketChoice::Complete,
        now: jiff::Timestamp::from_second(1_795_343_400).expect("a time"),
        time_zone: jiff::tz::TimeZone::UTC,
        labels: Vec::new(),
        max_series: Some(10_000),
        computed_at: None,
    }
}

fuzz_target!(|data: &[u8]| {
    for spec in [
        spec(ReportApi::Cmu, None),
        spec(ReportApi::Cmu, Some("tenant/year/month/day/mvpd")),
        spec(ReportApi::Esm, Some("media-company/year/month/day/hour/proxy/mvpd")),
    ] {
        if let Ok(snapshot) = build_snapshot(data, &spec) {
            // What is built can be served.
            let _ = Exposition::assemble([&snapshot]).to_vec();
        }
    }
});
