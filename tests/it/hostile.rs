//! Hostile answers: one exporter process against the simulator, and one
//! bad answer after another from CMU, ESM and DCR. After each, the exporter
//! is up, `/metrics` answers, the last good series are unchanged (or, for
//! the answers that can be read, exported as documented), the failure is
//! counted and logged once with the report, and memory stays bounded.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use cmu_exporter::simulator::{Endpoint, Fault, Simulator, Target};
use serde_json::Value;

use crate::common::*;

/// Most bytes the exporter may read of an answer in this test.
const MAX_ANSWER: usize = 16 << 20;

/// Polled every second; values kept an hour (a failure must not expire them).
const REPORTS: &str = "  - name: cmu_daily
    path: tenant/year/month/day
    interval: 1s
    max_age: 1h
  - name: esm_daily
    api: esm
    path: media-company/year/month/day
    interval: 1s
    max_age: 1h
";

/// What the exporter should make of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// The poll fails; the last good values stay.
    Refused,
    /// The answer is read; `/metrics` shows what it says.
    Read,
    /// The answer is read; the metric it gives no value (null) is absent.
    ReadAsAbsent,
}

/// What makes the exporter call DCR, for faults of the DCR endpoints.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// Every token expires: the next poll asks for one.
    ExpireTokens,
    /// The client is revoked: the next token call fails, and it registers.
    RevokeClient,
}

struct Case {
    name: &'static str,
    target: Target,
    faults: Vec<Fault>,
    verdict: Verdict,
    /// Words of the logged reason.
    reason: &'static str,
    trigger: Option<Trigger>,
}

impl Case {
    fn read_as_absent(self) -> Self {
        Self {
            verdict: Verdict::ReadAsAbsent,
            ..self
        }
    }

    fn after(self, trigger: Trigger) -> Self {
        Self {
            trigger: Some(trigger),
            ..self
        }
    }
}

fn case(name: &'static str, target: Target, fault: Fault, reason: &'static str) -> Case {
    Case {
        name,
        target,
        faults: vec![fault],
        verdict: Verdict::Refused,
        reason,
        trigger: None,
    }
}

/// The same fault for every attempt of one poll (transient failures are
/// retried within the poll, three attempts in all).
fn thrice(name: &'static str, target: Target, fault: Fault, reason: &'static str) -> Case {
    Case {
        faults: vec![fault.clone(), fault.clone(), fault],
        ..case(name, target, Fault::TruncatedJson, reason)
    }
}

fn read(name: &'static str, target: Target, fault: Fault) -> Case {
    Case {
        verdict: Verdict::Read,
        ..case(name, target, fault, "")
    }
}

fn json(status: u16, body: impl Into<Bytes>) -> Fault {
    Fault::raw(status, "application/json", body)
}

/// The simulator's own answer to the exporter's last request to `endpoint`.
async fn good_answer(sim: &Simulator, endpoint: Endpoint, token: &str) -> Value {
    let last = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.endpoint == endpoint && r.status == 200)
        .expect("a good answer was served");
    let base = format!("http://{}", sim.addr());
    cmu_json(&format!("{base}{}?{}", last.path, last.query), token).await
}

/// `answer` with every value of `metric` replaced by `value`.
fn with_metric(answer: &Value, metric: &str, value: Value) -> Bytes {
    let mut answer = answer.clone();
    for row in answer["report"].as_array_mut().unwrap() {
        row[metric] = value.clone();
    }
    Bytes::from(answer.to_string())
}

/// `answer` with every metric value a JSON number instead of a string.
fn numbers_as_numbers(answer: &Value, metrics: &[&str]) -> Bytes {
    let mut answer = answer.clone();
    for row in answer["report"].as_array_mut().unwrap() {
        for m in metrics {
            let n: u64 = row[*m].as_str().unwrap().parse().unwrap();
            row[*m] = Value::from(n);
        }
    }
    Bytes::from(answer.to_string())
}

/// 1 GiB of `[` compressed (about a megabyte): a gzip bomb.
fn gzip_bomb() -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = vec![b'['; 1 << 20];
    for _ in 0..1024 {
        encoder.write_all(&block).unwrap();
    }
    Bytes::from(encoder.finish().unwrap())
}

/// The series lines of `report` (its data, not its freshness).
async fn series_of(base: &str, report: &str) -> Vec<String> {
    let (status, text) = get_text(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "/metrics answers");
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.contains(&format!("{{report=\"{report}\"")))
        .filter(|l| !l.starts_with("cmu_exporter_") && !l.starts_with("esm_report_last_modified"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

async fn counter(base: &str, series: &str) -> f64 {
    metric_value(base, series).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_fail_one_poll_keep_the_values_and_bound_memory() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, REPORTS);
    let yaml = std::fs::read_to_string(&config).unwrap().replace(
        "adobe:\n",
        &format!("adobe:\n  request_timeout: 2s\n  max_answer_size: {MAX_ANSWER}\n"),
    );
    std::fs::write(&config, yaml).unwrap();
    // A host the exporter must never be sent to.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    let visits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = visits.clone();
    tokio::spawn(async move {
        while let Ok((_, _)) = elsewhere.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let exporter = spawn_binary(&config, &[], &[]);
    let base = exporter.base.clone();
    for report in ["cmu_daily", "esm_daily"] {
        let up = format!("cmu_exporter_report_up{{report=\"{report}\"}}");
        wait_for_value(&format!("{report} up"), WAIT, &base, &up, 1.0).await;
    }
    let token = own_token(&sim).await;
    let cmu = good_answer(&sim, Endpoint::Cmu, &token).await;
    let esm = good_answer(&sim, Endpoint::Esm, &token).await;
    let good = [
        ("cmu_daily", series_of(&base, "cmu_daily").await),
        ("esm_daily", series_of(&base, "esm_daily").await),
    ];
    assert!(good.iter().all(|(_, s)| s.len() > 5), "{good:?}");

    let cmu_metrics = [
        "active-users",
        "active-sessions",
        "started-sessions",
        "completed-sessions",
        "failed-attempts",
        "dismissed-sessions",
        "killed-sessions",
    ];
    let mut duplicated = cmu.clone();
    let rows = duplicated["report"].as_array_mut().unwrap();
    rows.extend(rows.clone());
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(cmu.to_string().as_bytes());
    let cases = vec![
        // The body.
        case(
            "truncated JSON",
            Target::Cmu,
            Fault::TruncatedJson,
            "ends in the middle",
        ),
        case(
            "null for a count",
            Target::Cmu,
            json(200, with_metric(&cmu, "active-users", Value::Null)),
            "",
        )
        .read_as_absent(),
        case(
            "negative count",
            Target::Cmu,
            json(200, with_metric(&cmu, "active-users", "-5".into())),
            "negative",
        ),
        read(
            "fractional count",
            Target::Cmu,
            json(200, with_metric(&cmu, "active-users", "2.5".into())),
        ),
        case(
            "NaN",
            Target::Cmu,
            json(200, with_metric(&cmu, "active-users", "NaN".into())),
            "is not a number",
        ),
        case(
            "1e400",
            Target::Cmu,
            json(200, with_metric(&cmu, "active-users", "1e400".into())),
            "is not a number",
        ),
        read(
            "30-digit value",
            Target::Cmu,
            json(
                200,
                with_metric(
                    &cmu,
                    "active-users",
                    "123456789012345678901234567890".into(),
                ),
            ),
        ),
        read(
            "numbers as JSON numbers",
            Target::Cmu,
            json(200, numbers_as_numbers(&cmu, &cmu_metrics)),
        ),
        case(
            "no report array",
            Target::Cmu,
            json(200, r#"{"_links":{}}"#),
            "no `report` array",
        ),
        case(
            "report not an array",
            Target::Cmu,
            json(200, r#"{"report":{"tenant":"ACME"}}"#),
            "must be an array",
        ),
        case(
            "top-level array",
            Target::Cmu,
            json(200, "[{\"tenant\":\"ACME\"}]"),
            "expected a report object",
        ),
        read(
            "duplicate rows",
            Target::Cmu,
            json(200, duplicated.to_string()),
        ),
        read("UTF-8 byte order mark", Target::Cmu, json(200, bom)),
        case(
            "invalid UTF-8",
            Target::Cmu,
            json(
                200,
                &b"{\"report\":[{\"tenant\":\"AC\xffME\",\"active-users\":\"1\"}]}"[..],
            ),
            "valid UTF-8",
        ),
        case(
            "10 MB string",
            Target::Cmu,
            json(
                200,
                format!(
                    r#"{{"report":[{{"tenant":"{}","active-users":"1"}}]}}"#,
                    "x".repeat(10 << 20)
                ),
            ),
            "longer than any label",
        ),
        case(
            "100,000 nested brackets",
            Target::Cmu,
            json(
                200,
                format!("{{\"report\":[{{\"tenant\":{}}}]}}", "[".repeat(100_000)),
            ),
            "not a string",
        ),
        case(
            "HTML error page, status 200",
            Target::Cmu,
            Fault::raw(
                200,
                "text/html",
                "<html><body><h1>Service Unavailable</h1></body></html>",
            ),
            "not valid JSON",
        ),
        case(
            "JSON error, status 200",
            Target::Cmu,
            json(200, r#"{"error":"internal_error","message":"try later"}"#),
            "no `report` array",
        ),
        read(
            "wrong content type",
            Target::Cmu,
            Fault::raw(200, "text/plain", cmu.to_string()),
        ),
        // The transfer.
        thrice(
            "gzip claimed, plain body",
            Target::Cmu,
            Fault::Raw {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("content-encoding".into(), "gzip".into()),
                ],
                body: Bytes::from(cmu.to_string()),
            },
            "unreachable",
        ),
        case(
            "gzip bomb (1 GiB)",
            Target::Cmu,
            Fault::Raw {
                status: 200,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("content-encoding".into(), "gzip".into()),
                ],
                body: gzip_bomb(),
            },
            "larger than",
        ),
        case(
            "body of 1 GiB",
            Target::Cmu,
            Fault::Endless(1 << 30),
            "larger than",
        ),
        thrice(
            "body stalls after its first half",
            Target::Cmu,
            Fault::Stall(Duration::from_secs(60)),
            "timed out",
        ),
        case(
            "redirect to another host",
            Target::Cmu,
            Fault::Raw {
                status: 302,
                headers: vec![(
                    "location".into(),
                    format!(
                        "http://localhost:{}/cmu/v2/tenant/year/month/day",
                        elsewhere_addr.port()
                    ),
                )],
                body: Bytes::new(),
            },
            "HTTP 302",
        ),
        // ESM.
        case(
            "ESM: truncated JSON",
            Target::Esm,
            Fault::TruncatedJson,
            "ends in the middle",
        ),
        case(
            "ESM: NaN latency",
            Target::Esm,
            json(200, with_metric(&esm, "authz-latency", "NaN".into())),
            "is not a number",
        ),
        case(
            "ESM: report a string",
            Target::Esm,
            json(200, r#"{"report":"none"}"#),
            "must be an array",
        ),
        // DCR: a token or a registration that cannot be used.
        case(
            "token without expires_in",
            Target::Token,
            json(201, r#"{"access_token":"t0k3n","token_type":"bearer"}"#),
            "expires_in",
        )
        .after(Trigger::ExpireTokens),
        case(
            "token with expires_in 0",
            Target::Token,
            json(
                201,
                r#"{"access_token":"t0k3n","expires_in":0,"token_type":"bearer"}"#,
            ),
            "positive number",
        )
        .after(Trigger::ExpireTokens),
        case(
            "register without client_secret",
            Target::Register,
            json(
                201,
                r#"{"client_id":"c1","grant_types":["client_credentials"]}"#,
            ),
            "client_secret",
        )
        .after(Trigger::RevokeClient),
    ];
    assert!(cases.len() >= 25, "{} kinds", cases.len());

    for case in cases {
        // A DCR fault fails whichever report asks for the token first.
        let reports: &[&str] = match case.target {
            Target::Cmu => &["cmu_daily"],
            Target::Esm => &["esm_daily"],
            _ => &["cmu_daily", "esm_daily"],
        };
        let count = |result: &'static str| {
            let base = base.clone();
            async move {
                let mut total = 0.0;
                for report in reports {
                    let series = format!(
                        "cmu_exporter_report_polls_total{{report=\"{report}\",result=\"{result}\"}}"
                    );
                    total += counter(&base, &series).await;
                }
                total
            }
        };
        let failures = count("failure").await;
        let report_failures = || {
            let base = base.clone();
            async move {
                let mut each = Vec::new();
                for report in reports {
                    let series = format!(
                        "cmu_exporter_report_polls_total{{report=\"{report}\",result=\"failure\"}}"
                    );
                    each.push(counter(&base, &series).await);
                }
                each
            }
        };
        let failures_before = report_failures().await;
        let log_before = exporter.log().len();
        // An answer that is read stays until seen on /metrics (a loaded
        // machine may scrape after the next poll); a refusal comes once.
        let times = match case.verdict {
            Verdict::Refused => 1,
            Verdict::Read | Verdict::ReadAsAbsent => 10_000,
        };
        for fault in &case.faults {
            sim.inject(case.target, fault.clone(), times);
        }
        match case.trigger {
            Some(Trigger::ExpireTokens) => sim.expire_tokens(),
            Some(Trigger::RevokeClient) => sim.revoke_credentials(),
            None => {}
        }
        let good_of = |report: &str| good.iter().find(|(r, _)| *r == report).unwrap().1.clone();
        match case.verdict {
            Verdict::Refused => {
                wait_for(&format!("{}: a failed poll", case.name), WAIT, || async {
                    (count("failure").await > failures).then_some(())
                })
                .await;
                for report in reports {
                    let now = series_of(&base, report).await;
                    assert!(
                        now == good_of(report),
                        "{}: the last good values stay: {now:?}\n{}",
                        case.name,
                        &exporter.log()[log_before..]
                    );
                }
            }
            Verdict::Read | Verdict::ReadAsAbsent => {
                let report = reports[0];
                let successes = count("success").await;
                let seen = wait_for(&format!("{}: read", case.name), WAIT, || async {
                    let now = series_of(&base, report).await;
                    let read = count("success").await > successes;
                    let users = |suffix: &str| {
                        now.iter()
                            .any(|l| l.starts_with("cmu_active_users{") && l.ends_with(suffix))
                    };
                    let expected = match case.name {
                        "fractional count" => users(" 2.5"),
                        "30-digit value" => users(" 123456789012345680000000000000"),
                        _ if case.verdict == Verdict::ReadAsAbsent => {
                            !now.iter().any(|l| l.starts_with("cmu_active_users{"))
                        }
                        _ => now == good_of(report),
                    };
                    (read && expected).then_some(now)
                })
                .await;
                assert!(!seen.is_empty(), "{}", case.name);
                assert_eq!(
                    count("failure").await,
                    failures,
                    "{}: no failure",
                    case.name
                );
            }
        }
        let successes = count("success").await;
        sim.clear_faults();
        // Back to normal: a successful poll (a refused token answer makes
        // the exporter wait before it asks again), with Adobe's own answers.
        wait_for(
            &format!("{}: a successful poll", case.name),
            WAIT,
            || async { (count("success").await > successes).then_some(()) },
        )
        .await;
        for report in reports {
            wait_for(&format!("{}: recovery", case.name), WAIT, || async {
                (series_of(&base, report).await == good_of(report)).then_some(())
            })
            .await;
        }
        // The log is drained from the child's stderr by a thread: let it catch up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = exporter.log()[log_before..].to_owned();
        // A run of failures is logged once at its start (and again only
        // after minutes); the success that ends it says so at INFO.
        let failing: Vec<&str> = reports
            .iter()
            .zip(report_failures().await.iter().zip(&failures_before))
            .filter(|(_, (after, before))| after > before)
            .map(|(report, _)| *report)
            .collect();
        let logged: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("poll failed")
                    && reports
                        .iter()
                        .any(|r| l.contains(&format!("report=\"{r}\"")))
            })
            .collect();
        assert_eq!(
            logged.len(),
            failing.len(),
            "{}: each run of failures logged once:\n{log}",
            case.name
        );
        for report in &failing {
            assert!(
                log.lines().any(|l| l.contains("INFO")
                    && l.contains("polled again after")
                    && l.contains(&format!("report=\"{report}\""))),
                "{}: the recovery of {report} is logged:\n{log}",
                case.name
            );
        }
        if case.verdict == Verdict::Refused {
            assert!(
                logged.iter().any(|l| l.contains(case.reason)),
                "{}: the reason says `{}`:\n{log}",
                case.name,
                case.reason
            );
            assert!(
                logged.iter().all(|l| l.len() < 600),
                "{}: a short reason:\n{log}",
                case.name
            );
        }
        assert!(!log.contains("panicked"), "{}:\n{log}", case.name);
    }
    assert_eq!(
        visits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    let peak = peak_rss(exporter.child.id());
    println!("hostile answers: peak resident memory {} MiB", peak >> 20);
    assert!(
        peak < 160 << 20,
        "peak memory {} MiB after 1 GiB answers",
        peak >> 20
    );
    let (status, log) = exporter.stop();
    assert!(status.success(), "{log}");
    for secret in sim.issued_secrets() {
        assert!(!log.contains(&secret), "a secret reached the log");
    }
    for code in ["body_timeout", "too_large"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("code={code}"))),
            "a broken body is a WARN naming its code {code}:\n{log}"
        );
    }
}

/// A body that breaks or times out after its headers is counted under a
/// code of its own, never as the 200 its headers said, and so stays seen
/// when the retry inside the poll then succeeds.
#[tokio::test]
async fn a_body_broken_after_its_headers_is_not_counted_as_a_200() {
    let (sim, dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 10s\n",
    )
    .await;
    let yaml = std::fs::read_to_string(&config)
        .unwrap()
        .replace("adobe:\n", "adobe:\n  request_timeout: 2s\n");
    std::fs::write(&config, yaml).unwrap();
    sim.inject(Target::Cmu, Fault::Stall(Duration::from_secs(30)), 1);
    sim.inject(Target::Cmu, Fault::Broken, 1);
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let code = |code: &'static str| {
        let base = base.clone();
        async move {
            counter(
                &base,
                &format!(
                    "cmu_exporter_http_requests_total{{api=\"cmu\",code=\"{code}\",endpoint=\"daily\"}}"
                ),
            )
            .await
        }
    };
    wait_for(
        "a successful poll after two broken bodies",
        WAIT,
        || async {
            (counter(
                &base,
                "cmu_exporter_report_polls_total{report=\"daily\",result=\"success\"}",
            )
            .await
                >= 1.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(code("body_timeout").await, 1.0);
    assert_eq!(code("body_broken").await, 1.0);
    assert_eq!(
        code("200").await,
        1.0,
        "only the answer read whole is a 200"
    );
    assert_eq!(
        counter(
            &base,
            "cmu_exporter_report_polls_total{report=\"daily\",result=\"failure\"}"
        )
        .await,
        0.0,
        "the retry inside the poll succeeded"
    );
    let (_, text) = get_text(&format!("{base}/metrics")).await;
    let observed: f64 = text
        .lines()
        .find(|l| {
            l.starts_with(
                "cmu_exporter_http_request_duration_seconds_count{api=\"cmu\",endpoint=\"daily\"}",
            )
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap();
    assert_eq!(observed, 3.0, "the broken requests are timed too");
    exporter.stop().await;
    drop(dir);
}
