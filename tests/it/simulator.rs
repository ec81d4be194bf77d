//! The simulator behaves as the reference describes Adobe's servers.

use std::time::{Duration, Instant};

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::simulator::{Endpoint, Fault, SimulatorConfig, Target};
use serde_json::{Value, json};

/// A simulator whose throttle does not get in the way of many DCR calls.
async fn unthrottled_simulator() -> cmu_exporter::simulator::Simulator {
    simulator_with(unthrottled(SimulatorConfig::default())).await
}

async fn register(dcr: &str, content_type: &str, body: String) -> (u16, Value) {
    let r = http()
        .post(format!("{dcr}/o/client/register"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn register_answers_201_or_each_documented_error() {
    let sim = unthrottled_simulator().await;
    let dcr = sim.dcr_url();
    let good = json!({ "software_statement": sim.software_statement(), "redirect_uri": "https://example.com" });
    let (status, body) = register(&dcr, "application/json;charset=utf-8", good.to_string()).await;
    assert_eq!(status, 201);
    for field in [
        "client_id",
        "client_secret",
        "grant_types",
        "redirect_uris",
        "scopes",
        "client_id_issued_at",
    ] {
        assert!(body.get(field).is_some(), "missing {field} in {body}");
    }
    assert_eq!(body["grant_types"], json!(["client_credentials"]));

    let cases = [
        ("text/plain", good.to_string(), "invalid_request"),
        (
            "application/json",
            "{not json".to_owned(),
            "invalid_request",
        ),
        (
            "application/json",
            json!({ "redirect_uri": "https://x" }).to_string(),
            "invalid_request",
        ),
        (
            "application/json",
            json!({ "software_statement": sim.software_statement(), "redirect_uri": "not a uri" })
                .to_string(),
            "invalid_redirect_uri",
        ),
        (
            "application/json",
            json!({ "software_statement": "abc.def" }).to_string(),
            "invalid_software_statement",
        ),
        (
            "application/json",
            json!({ "software_statement": sim.mint_statement(false, None) }).to_string(),
            "unapproved_software_statement",
        ),
    ];
    for (content_type, body, expected) in cases {
        let (status, answer) = register(&dcr, content_type, body).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(expected)));
    }
    sim.approve_all();
}

#[tokio::test]
async fn token_answers_201_in_body_or_query_and_each_error() {
    let sim = simulator_with(SimulatorConfig {
        throttle_burst: 1000,
        token_lifetime: Duration::from_secs(600),
        ..SimulatorConfig::default()
    })
    .await;
    let dcr = sim.dcr_url();
    let good = json!({ "software_statement": sim.software_statement() });
    let (_, client) = register(&dcr, "application/json", good.to_string()).await;
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let token = |form: Vec<(&'static str, String)>, in_query: bool| {
        let url = format!("{dcr}/o/client/token");
        async move {
            let request = if in_query {
                http().post(url).query(&form)
            } else {
                http().post(url).form(&form)
            };
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let form = |grant: &str, secret: &str| {
        vec![
            ("grant_type", grant.to_owned()),
            ("client_id", id.to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    let (status, body) = token(form("client_credentials", secret), false).await;
    assert_eq!(status, 201);
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["token_type"], "bearer");
    assert!(
        body["created_at"].as_i64().unwrap() > 1_600_000_000_000,
        "created_at is in milliseconds"
    );
    assert_eq!(
        token(form("client_credentials", secret), true).await.0,
        201,
        "the screenshot's query-string form"
    );
    assert_eq!(
        token(form("password", secret), false).await.1["error"],
        "unsupported_grant_type"
    );
    assert_eq!(
        token(form("client_credentials", "wrong"), false).await.1["error"],
        "invalid_client"
    );
    assert_eq!(
        token(vec![("grant_type", "client_credentials".into())], false)
            .await
            .1["error"],
        "invalid_request"
    );
    sim.revoke_credentials();
    assert_eq!(
        token(form("client_credentials", secret), false).await.1["error"],
        "invalid_client"
    );
}

#[tokio::test]
async fn dcr_throttle_is_a_one_time_burst_then_one_per_second() {
    // Time runs at a quarter of real speed: one throttle second is 4 s of
    // real time, so a stalled machine cannot slip a request into the next one.
    let clock = Clock::warped(jiff::Timestamp::now(), 0.25);
    let sim = simulator_with(SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    })
    .await;
    let url = format!("{}/o/client/token", sim.dcr_url());
    // A malformed token request: 400 when admitted, 429 when throttled.
    let send = || http().post(&url).form(&[("grant_type", "x")]).send();
    for _ in 0..10 {
        assert_eq!(send().await.unwrap().status(), 400);
    }
    let throttled = send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    let body = throttled.text().await.unwrap();
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "a text body, not JSON: {body}"
    );
    clock.sleep(Duration::from_millis(1100)).await;
    assert_eq!(send().await.unwrap().status(), 400);
    assert_eq!(send().await.unwrap().status(), 429);
    assert_eq!(sim.count_status(Endpoint::Token, 429), 2);
}

async fn cmu_get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = http().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn cmu_authenticates_and_answers_like_adobe() {
    let sim = simulator().await;
    let token = own_token(&sim).await;
    let cmu = sim.cmu_url();
    assert_eq!(
        cmu_get(&format!("{cmu}/tenant/year/month/day"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        cmu_get(&format!("{cmu}/tenant/year/month/day"), Some("forged"))
            .await
            .0,
        401
    );
    assert_eq!(
        cmu_get(
            &format!("{cmu}/tenant/year/month/day?access_token={token}"),
            None
        )
        .await
        .0,
        200
    );
    let post = http()
        .post(format!("{cmu}/tenant"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    let (status, text) = cmu_get(&format!("{cmu}/tenant/mvpd"), Some(&token)).await;
    assert_eq!(status, 404, "{text}");
    let (status, text) = cmu_get(
        &format!("{cmu}/tenant/year/month/day/hour?hour=3"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("cannot be filtered"));
    assert_eq!(
        cmu_get(&format!("{cmu}/tenant?limit=999999999"), Some(&token))
            .await
            .0,
        400
    );

    // Root: one record of totals and drill-down links to the root dimensions.
    let root = cmu_json(&cmu, &token).await;
    assert_eq!(root["report"].as_array().unwrap().len(), 1);
    let names: Vec<&str> = root["_links"]["drill-down"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mvpd", "tenant", "year"]);

    // Every value is a string; drill-down is an object for one child, an array for several.
    let day = cmu_json(&format!("{cmu}/tenant/year/month/day/?mvpd=DTV"), &token).await;
    for row in day["report"].as_array().unwrap() {
        assert!(
            row.as_object().unwrap().values().all(Value::is_string),
            "{row}"
        );
    }
    assert!(day["_links"]["drill-down"].is_array());
    assert_eq!(
        day["_links"]["roll-up"]["href"],
        "/cmu/v2/tenant/year/month"
    );
    let self_href = day["_links"]["self"]["href"].as_str().unwrap();
    assert!(
        self_href.starts_with("/cmu/v2/tenant/year/month/day?"),
        "{self_href}"
    );
    for part in ["mvpd=DTV", "start=", "end=", "limit=1000"] {
        assert!(self_href.contains(part), "{self_href} lacks {part}");
    }
    let one_child = cmu_json(
        &format!("{cmu}/tenant/year/month/day/hour/minute/application-id"),
        &token,
    )
    .await;
    assert!(one_child["_links"]["drill-down"].is_object());
    assert_eq!(
        one_child["_links"]["drill-down"]["href"],
        "/cmu/v2/tenant/year/month/day/hour/minute/application-id/application"
    );

    // The alias prefix answers with /cmu/v2 links.
    let alias = cmu_json(&format!("{}/billing/daily", sim.alias_cmu_url()), &token).await;
    assert!(
        alias["_links"]["self"]["href"]
            .as_str()
            .unwrap()
            .starts_with("/cmu/v2/year/month/day/tenant?")
    );
}

#[tokio::test]
async fn cmu_filters_limits_metrics_and_gzip() {
    let sim = simulator().await;
    let token = own_token(&sim).await;
    let base = format!(
        "{}/tenant/year/month/day/mvpd?start=2026-01-01",
        sim.cmu_url()
    );
    let rows = |v: &Value| v["report"].as_array().unwrap().clone();
    let mvpds = |v: &Value| {
        rows(v)
            .iter()
            .map(|r| r["mvpd"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let included = cmu_json(&format!("{base}&mvpd=DTV&mvpd=Cox&limit=100000"), &token).await;
    assert!(!rows(&included).is_empty());
    assert!(mvpds(&included).iter().all(|m| m == "DTV" || m == "Cox"));
    let excluded = cmu_json(&format!("{base}&mvpd!=DTV&limit=100000"), &token).await;
    assert!(!mvpds(&excluded).contains(&"DTV".to_owned()));
    for kept in mvpds(&included).iter().filter(|m| *m != "DTV") {
        assert!(mvpds(&excluded).contains(kept), "{kept} is not excluded");
    }
    assert_eq!(
        rows(&cmu_json(&format!("{base}&limit=5"), &token).await).len(),
        5
    );
    let two = cmu_json(
        &format!("{base}&limit=3&metrics=active-users&metrics=failed-attempts"),
        &token,
    )
    .await;
    let first = rows(&two)[0].clone();
    let mut fields: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "active-users",
            "day",
            "failed-attempts",
            "month",
            "mvpd",
            "tenant",
            "year"
        ]
    );

    let r = http_builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(&base)
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn faults_are_injected_in_order() {
    let sim = simulator().await;
    let token = own_token(&sim).await;
    let url = format!("{}/tenant/year/month/day", sim.cmu_url());
    sim.inject(Target::Cmu, Fault::Status(503), 2);
    assert_eq!(cmu_get(&url, Some(&token)).await.0, 503);
    assert_eq!(cmu_get(&url, Some(&token)).await.0, 503);
    assert_eq!(cmu_get(&url, Some(&token)).await.0, 200);
    sim.inject(
        Target::Cmu,
        Fault::Throttle {
            retry_after: Some(7),
        },
        1,
    );
    let r = http().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    sim.inject(Target::Cmu, Fault::TruncatedJson, 1);
    let (status, body) = cmu_get(&url, Some(&token)).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());
    sim.inject(Target::Cmu, Fault::Slow(Duration::from_millis(300)), 1);
    let started = Instant::now();
    assert_eq!(cmu_get(&url, Some(&token)).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    sim.expire_tokens();
    assert_eq!(cmu_get(&url, Some(&token)).await.0, 401);
}

#[tokio::test]
async fn answers_hold_data_as_of_adobes_last_computation() {
    // 1 real second is 10 simulated minutes; hour reports are computed at
    // 7 min 40 s past each hour (the simulator's default phase).
    let start: jiff::Timestamp = "2026-11-22T20:05:00Z".parse().unwrap();
    let config = SimulatorConfig {
        clock: Clock::warped(start, 600.0),
        ..SimulatorConfig::default()
    };
    let sim = simulator_with(config.clone()).await;
    let token = own_token(&sim).await;
    let url = format!(
        "{}/tenant/year/month/day/hour?start=2026-11-22T19:00:00&tenant=ACME",
        sim.cmu_url()
    );
    let values = |v: Value| {
        v["report"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["active-users"].as_str().unwrap().parse::<u64>().unwrap())
            .collect::<Vec<_>>()
    };
    let before = values(cmu_json(&url, &token).await);
    assert_eq!(
        before.len(),
        1,
        "at 20:05 Adobe last computed at 19:07:40: hour 19 is partial and hour 20 absent, though our clock is past 20:00"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = values(cmu_json(&url, &token).await);
    assert_eq!(
        after.len(),
        2,
        "the computation at 20:07:40 completed hour 19 and began hour 20"
    );
    assert!(
        after[0] > before[0],
        "hour 19 grew to its final value: {before:?} -> {after:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = values(cmu_json(&url, &token).await);
    assert_eq!(again, after, "nothing changes between two computations");

    // Another simulator with the same seed serves the same complete bucket.
    let twin = simulator_with(config).await;
    let twin_token = own_token(&twin).await;
    let twin_url = url.replace(&sim.cmu_url(), &twin.cmu_url());
    assert_eq!(values(cmu_json(&twin_url, &twin_token).await)[0], after[0]);
}
