//! The remote-write encoder against a real store: Debian's Prometheus with
//! its receiver on stores what we send, labels and stamps as sent.

use std::time::Duration;

use crate::common::*;
use cmu_exporter::export::format::remote_write::{HEADERS, WriteRequest};
use cmu_exporter::export::{SnapshotSpec, build_history};
use cmu_exporter::report::{BucketChoice, ReportApi, ReportPath};

#[tokio::test]
async fn prometheus_stores_every_sample_of_a_write_request_at_its_bucket_end() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    // Two complete days ending yesterday midnight, UTC: inside any store's window.
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let days = [today - jiff::ToSpan::days(2), today - jiff::ToSpan::days(1)];
    let rows: Vec<String> = days
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            [("ACME", 10 + i), ("Glo\"bex", 20 + i)].map(|(tenant, users)| {
                format!(
                    r#"{{"year": "{}", "month": "{}", "day": "{}", "tenant": "{}", "active-users": "{users}"}}"#,
                    d.year(),
                    d.month(),
                    d.day(),
                    tenant.replace('"', "\\\"")
                )
            })
        })
        .collect();
    let json = format!(r#"{{"report": [{}]}}"#, rows.join(","));
    let spec = SnapshotSpec {
        api: ReportApi::Cmu,
        report: "daily".into(),
        account: None,
        path: Some(ReportPath::parse("tenant/year/month/day").unwrap()),
        choice: BucketChoice::Complete,
        now,
        time_zone: jiff::tz::TimeZone::UTC,
        labels: Vec::new(),
        max_series: None,
        computed_at: None,
        computed_through: None,
    };
    let extra = vec![
        ("job".to_owned(), "cmu-exporter".to_owned()),
        ("instance".to_owned(), "test:9063".to_owned()),
    ];
    let mut request = WriteRequest::default();
    let mut stamps = Vec::new();
    build_history(
        json.as_bytes(),
        &spec,
        |_| true,
        |bucket, samples| {
            let end = bucket
                .end()
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap();
            let ms = end.timestamp().as_millisecond();
            stamps.push(ms / 1000);
            for family in samples.families() {
                request.append_family(&family, &extra, ms);
            }
            Ok::<(), ()>(())
        },
    )
    .unwrap()
    .unwrap();
    // Per bucket: two tenants' users, the info family and the bucket start.
    assert_eq!(request.series(), 8);

    let port = free_port();
    let _prometheus = remote_write_store(work, port);
    let prometheus = format!("http://127.0.0.1:{port}");
    let body = request.compressed();
    let status = wait_for(
        "the store takes the request",
        Duration::from_secs(60),
        || {
            let (url, body) = (format!("{prometheus}/api/v1/write"), body.clone());
            async move {
                let mut post = http().post(url).body(body);
                for (name, value) in HEADERS {
                    post = post.header(name, value);
                }
                // 503 while its storage is still starting (a loaded machine).
                post.send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16())
                    .filter(|&code| code != 503)
            }
        },
    )
    .await;
    assert_eq!(
        status,
        204,
        "{}",
        std::fs::read_to_string(work.join("prometheus.log")).unwrap_or_default()
    );

    let result = query(
        &prometheus,
        "cmu_active_users{report=\"daily\",job=\"cmu-exporter\",instance=\"test:9063\"}[5d]",
    )
    .await;
    let mut stored: Vec<(String, Vec<(i64, String)>)> = result
        .iter()
        .map(|series| {
            let values = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v[0].as_f64().unwrap() as i64,
                        v[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (
                series["metric"]["tenant"].as_str().unwrap().to_owned(),
                values,
            )
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            (
                "ACME".to_owned(),
                vec![(stamps[0], "10".to_owned()), (stamps[1], "11".to_owned())]
            ),
            (
                "Glo\"bex".to_owned(),
                vec![(stamps[0], "20".to_owned()), (stamps[1], "21".to_owned())]
            ),
        ],
        "every sample stored once, at its bucket's end"
    );
    let info = query(&prometheus, "cmu_report_info[5d]").await;
    assert_eq!(info[0]["metric"]["granularity"], "day");
}
