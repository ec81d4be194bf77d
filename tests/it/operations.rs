//! Running the exporter in production: retries of the CMU client, the
//! self-metrics and readiness when Adobe fails, reload, and the web server's
//! defences. Everything over real HTTP against the simulator.

use std::time::Duration;

use crate::common::*;
use cmu_exporter::simulator::{Endpoint, Fault, Simulator, Target};

/// A daily report polled every hour: one poll per test, unless it fails.
const DAILY: &str = "  - name: daily\n    path: tenant/year/month/day\n    interval: 1h\n";

/// Arrival times of the CMU requests so far, with their status.
fn cmu_requests(sim: &Simulator) -> Vec<(std::time::Instant, u16)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Cmu)
        .map(|r| (r.at, r.status))
        .collect()
}

#[tokio::test]
async fn transient_cmu_failures_are_retried_with_growing_pauses() {
    let (sim, _dir, config) = simulator_and_config(DAILY).await;
    sim.inject(Target::Cmu, Fault::Status(503), 2);
    let exporter = exporter(&config).await;
    wait_for_cmu_successes(&sim, 1).await;
    let requests = cmu_requests(&sim);
    let statuses: Vec<u16> = requests.iter().map(|r| r.1).collect();
    assert_eq!(statuses, [503, 503, 200], "one poll, three attempts");
    let first = requests[1].0 - requests[0].0;
    let second = requests[2].0 - requests[1].0;
    // An hourly report's first pause is 1 s, then 2 s, each stretched by up to 50%.
    assert!(first >= Duration::from_secs(1), "first pause {first:?}");
    assert!(second >= Duration::from_secs(2), "second pause {second:?}");
    // The simulator counts the 200 before the exporter has parsed and
    // published the report: wait for the published state.
    let (base, up) = (exporter.url(), "cmu_exporter_report_up{report=\"daily\"}");
    wait_for_value("the report up after the retries", WAIT, &base, up, 1.0).await;
    exporter.stop().await;
}

#[tokio::test]
async fn client_errors_are_not_retried_and_retry_after_is_honoured() {
    let (sim, _dir, config) = simulator_and_config(DAILY).await;
    sim.inject(Target::Cmu, Fault::Status(403), 1);
    let first = exporter(&config).await;
    let metrics = format!("{}/metrics", first.url());
    wait_for("the failed poll", WAIT, || async {
        get_text(&metrics)
            .await
            .1
            .contains("cmu_exporter_report_up{report=\"daily\"} 0")
            .then_some(())
    })
    .await;
    // The poll has ended (it published its failure), retries included.
    assert_eq!(
        sim.count(Endpoint::Cmu),
        1,
        "a 403 is not retried inside the poll"
    );
    first.stop().await;

    let (sim, _dir, config) = simulator_and_config(DAILY).await;
    sim.inject(
        Target::Cmu,
        Fault::Throttle {
            retry_after: Some(3),
        },
        1,
    );
    let exporter = exporter(&config).await;
    wait_for_cmu_successes(&sim, 1).await;
    let requests = cmu_requests(&sim);
    assert_eq!(requests.iter().map(|r| r.1).collect::<Vec<_>>(), [429, 200]);
    let pause = requests[1].0 - requests[0].0;
    assert!(
        pause >= Duration::from_secs(3),
        "Retry-After: 3 was honoured, paused {pause:?}"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn self_metrics_and_readiness_follow_the_simulator_failing_and_recovering() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    )
    .await;
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let ready = |expected: u16| {
        let base = base.clone();
        async move {
            let (status, body) = get_text(&format!("{base}/readyz")).await;
            (status == expected).then_some(body)
        }
    };
    wait_for("ready", WAIT, || ready(200)).await;
    let up = "cmu_exporter_report_up{report=\"daily\"}";
    let failures = "cmu_exporter_report_polls_total{report=\"daily\",result=\"failure\"}";
    let errors_503 =
        "cmu_exporter_http_requests_total{api=\"cmu\",code=\"503\",endpoint=\"daily\"}";
    assert_eq!(metric_value(&base, up).await, Some(1.0));
    assert_eq!(metric_value(&base, errors_503).await, None);

    sim.inject(Target::Cmu, Fault::Status(503), 1_000);
    wait_for_value("report_up 0", WAIT, &base, up, 0.0).await;
    assert!(metric_value(&base, failures).await.unwrap() >= 1.0);
    assert!(
        metric_value(&base, errors_503).await.unwrap() >= 3.0,
        "every attempt is counted"
    );
    // A 503 is Adobe's trouble, not a person's: the exporter stays ready.
    assert_eq!(get_text(&format!("{base}/readyz")).await.0, 200);

    sim.clear_faults();
    wait_for_value("report_up back to 1", WAIT, &base, up, 1.0).await;

    // Revoked credentials whose re-registration is refused need a person.
    sim.revoke_credentials();
    sim.inject(
        Target::Register,
        Fault::OAuthError("unapproved_software_statement".into()),
        1,
    );
    let body = wait_for("not ready", WAIT, || ready(503)).await;
    assert!(body.contains("unapproved_software_statement"), "{body}");
    let ok = "cmu_exporter_credentials_ok";
    assert_eq!(metric_value(&base, ok).await, Some(0.0));
    exporter.stop().await;
}

/// The config file with `reports` in place of the old list.
fn rewrite_reports(config: &std::path::Path, reports: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let head = &text[..text.find("reports:\n").unwrap()];
    std::fs::write(config, format!("{head}reports:\n{reports}")).unwrap();
}

fn cmu_calls_to(sim: &Simulator, path: &str) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::Cmu && r.path.ends_with(path))
        .count()
}

const HOURLY_REPORT: &str =
    "  - name: hourly\n    path: tenant/year/month/day/hour\n    interval: 1h\n";
const MONTHLY: &str = "  - name: monthly\n    path: tenant/year/month\n    interval: 1h\n";

#[tokio::test]
async fn reload_keeps_unchanged_reports_and_refuses_a_bad_file() {
    let (sim, _dir, config) = simulator_and_config(&format!("{DAILY}{HOURLY_REPORT}")).await;
    let exporter = exporter(&config).await;
    let base = exporter.url();
    wait_for("both reports polled", WAIT, || async {
        let up = |r: &str| format!("cmu_exporter_report_up{{report=\"{r}\"}} 1");
        let text = get_text(&format!("{base}/metrics")).await.1;
        (text.contains(&up("daily")) && text.contains(&up("hourly"))).then_some(())
    })
    .await;
    let next_daily = "cmu_exporter_report_next_poll_timestamp_seconds{report=\"daily\"}";
    let scheduled = metric_value(&base, next_daily).await.unwrap();
    let daily_series = "cmu_active_users{report=\"daily\",tenant=\"ACME\"}";

    rewrite_reports(&config, &format!("{DAILY}{MONTHLY}"));
    let (status, body) = post(&format!("{base}/-/reload")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("kept: daily;")
            && body.contains("added: monthly;")
            && body.contains("removed: hourly"),
        "{body}"
    );
    wait_for_value(
        "the new report",
        WAIT,
        &base,
        "cmu_exporter_report_up{report=\"monthly\"}",
        1.0,
    )
    .await;
    let text = get_text(&format!("{base}/metrics")).await.1;
    assert!(
        !text.contains("report=\"hourly\""),
        "the removed report's series are gone"
    );
    assert!(text.contains(daily_series), "the kept report's series stay");
    assert_eq!(
        metric_value(&base, next_daily).await,
        Some(scheduled),
        "the kept report's schedule did not move"
    );
    assert_eq!(
        cmu_calls_to(&sim, "/tenant/year/month/day"),
        1,
        "the kept report was not polled again"
    );
    assert_eq!(
        cmu_calls_to(&sim, "/tenant/year/month"),
        1,
        "the added one was"
    );
    let reloaded = "cmu_exporter_config_last_reload_successful";
    assert_eq!(metric_value(&base, reloaded).await, Some(1.0));

    // An ESM report is added the same way, on the same credentials.
    let esm = "  - name: esm_daily\n    api: esm\n    path: media-company/year/month/day\n";
    rewrite_reports(&config, &format!("{DAILY}{MONTHLY}{esm}"));
    let (status, body) = post(&format!("{base}/-/reload")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("added: esm_daily"), "{body}");
    wait_for_value(
        "the ESM report",
        WAIT,
        &base,
        "cmu_exporter_report_up{report=\"esm_daily\"}",
        1.0,
    )
    .await;
    let text = get_text(&format!("{base}/metrics")).await.1;
    assert!(
        text.contains("esm_authz_attempts{report=\"esm_daily\""),
        "{text}"
    );
    assert_eq!(sim.count(cmu_exporter::simulator::Endpoint::Register), 1);

    // A bad file is refused with its reason; the running configuration stays.
    rewrite_reports(
        &config,
        &format!("{DAILY}  - name: broken\n    path: tenant/year\n    interval: soon\n"),
    );
    let (status, body) = post(&format!("{base}/-/reload")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("interval") && body.contains("soon"), "{body}");
    assert_eq!(metric_value(&base, reloaded).await, Some(0.0));
    let text = get_text(&format!("{base}/metrics")).await.1;
    assert!(text.contains(daily_series) && text.contains("report=\"monthly\""));

    // So is a change that needs a restart, with 409 (a conflict, not a bad file).
    use_alias_prefix(&config, &sim);
    rewrite_reports(&config, DAILY);
    let (status, body) = post(&format!("{base}/-/reload")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("adobe.cmu_url") && body.contains("restart"),
        "{body}"
    );
    assert!(
        get_text(&format!("{base}/metrics"))
            .await
            .1
            .contains("report=\"monthly\"")
    );
    exporter.stop().await;
}

#[tokio::test]
async fn sighup_applies_a_good_file_and_refuses_a_bad_one() {
    let (_sim, _dir, config) = simulator_and_config(DAILY).await;
    let process = spawn_binary(&config, &[], &[]);
    let base = process.base.clone();
    let up = |r: &'static str| format!("cmu_exporter_report_up{{report=\"{r}\"}}");
    wait_for_value("the first poll", WAIT, &base, &up("daily"), 1.0).await;
    let hangup = || {
        let pid = process.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    rewrite_reports(&config, &format!("{DAILY}{MONTHLY}"));
    hangup();
    wait_for_value("the added report", WAIT, &base, &up("monthly"), 1.0).await;

    std::fs::write(&config, "reports: [oops").unwrap();
    hangup();
    let reloaded = "cmu_exporter_config_last_reload_successful";
    wait_for_value("the refusal", WAIT, &base, reloaded, 0.0).await;
    assert_eq!(
        metric_value(&base, &up("monthly")).await,
        Some(1.0),
        "still running"
    );
    let (status, log) = process.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("reload refused"), "{log}");
}

/// The config file with `extra` lines added to its `adobe:` section.
fn add_adobe_settings(config: &std::path::Path, extra: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        config,
        text.replacen("adobe:\n", &format!("adobe:\n{extra}"), 1),
    )
    .unwrap();
}

#[tokio::test]
async fn a_configured_proxy_carries_every_request_to_adobe() {
    let (sim, _dir, config) = simulator_and_config(DAILY).await;
    let proxy = forwarder(None, cmu_exporter::incoming::WebConfig::default()).await;
    add_adobe_settings(&config, &format!("  proxy_url: http://{}\n", proxy.addr));
    let exporter = exporter(&config).await;
    let base = exporter.url();
    wait_for_value(
        "a poll through the proxy",
        WAIT,
        &base,
        "cmu_exporter_report_up{report=\"daily\"}",
        1.0,
    )
    .await;
    let seen = proxy.seen.lock().unwrap().clone();
    let through = |path: &str| seen.iter().filter(|u| u.contains(path)).count();
    assert_eq!(through("/o/client/register"), sim.count(Endpoint::Register));
    assert_eq!(through("/o/client/token"), sim.count(Endpoint::Token));
    assert_eq!(through("/cmu/"), sim.count(Endpoint::Cmu));
    assert!(sim.count(Endpoint::Cmu) >= 1 && sim.count(Endpoint::Register) == 1);
    exporter.stop().await;
}

#[tokio::test]
async fn an_extra_ca_file_makes_a_privately_signed_adobe_endpoint_trusted() {
    let (sim, dir, config) = simulator_and_config(DAILY).await;
    let pki = make_pki("private");
    let front = forwarder(
        Some(format!("http://{}", sim.addr())),
        tls_web_config(&pki, dir.path()),
    )
    .await;
    let https = format!("https://127.0.0.1:{}", front.addr.port());
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(&format!("http://{}", sim.addr()), &https);
    std::fs::write(&config, &text).unwrap();

    // Without the CA the exporter refuses the endpoint's certificate.
    let untrusted = exporter(&config).await;
    let base = untrusted.url();
    let reason = wait_for("the TLS refusal", WAIT, || async {
        let (status, body) = get_text(&format!("{base}/readyz")).await;
        (status == 503 && body.contains("certificate")).then_some(body)
    })
    .await;
    assert!(reason.contains("DCR"), "{reason}");
    assert_eq!(sim.count(Endpoint::Register), 0);
    untrusted.stop().await;

    let ca_file = dir.path().join("private-ca.pem");
    std::fs::write(&ca_file, &pki.ca).unwrap();
    add_adobe_settings(&config, &format!("  ca_file: {}\n", ca_file.display()));
    let trusted = exporter(&config).await;
    let base = trusted.url();
    wait_for_value(
        "a poll over TLS",
        WAIT,
        &base,
        "cmu_exporter_report_up{report=\"daily\"}",
        1.0,
    )
    .await;
    assert!(
        front
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|u| u.contains("/cmu/"))
    );
    trusted.stop().await;
}

#[tokio::test]
async fn the_proxy_variables_are_honoured_with_no_proxy() {
    let (sim, _dir, config) = simulator_and_config(DAILY).await;
    let proxy = forwarder(None, cmu_exporter::incoming::WebConfig::default()).await;
    let proxy_url = format!("http://{}", proxy.addr);
    let up = "cmu_exporter_report_up{report=\"daily\"}";
    let process = spawn_binary(&config, &[], &[("HTTP_PROXY", &proxy_url)]);
    let base = process.base.clone();
    wait_for_value("a poll through HTTP_PROXY", WAIT, &base, up, 1.0).await;
    assert!(process.stop().0.success());
    let proxied = proxy.seen.lock().unwrap().len();
    assert!(
        proxied >= 3,
        "register, token and CMU went through the proxy: {proxied}"
    );

    let process = spawn_binary(
        &config,
        &[],
        &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")],
    );
    let base = process.base.clone();
    let before = sim.count(Endpoint::Cmu);
    wait_for_value("a direct poll", WAIT, &base, up, 1.0).await;
    assert!(process.stop().0.success());
    assert!(sim.count(Endpoint::Cmu) > before);
    assert_eq!(
        proxy.seen.lock().unwrap().len(),
        proxied,
        "NO_PROXY bypassed it"
    );
}

#[cfg(feature = "testkit")]
#[tokio::test]
async fn a_panic_while_building_fails_the_poll_not_the_poller_and_max_age_still_expires() {
    use cmu_exporter::faults::{InjectedFault, inject};
    // A name of its own: injected faults are per report and process-wide.
    let (_sim, _dir, config) = simulator_and_config(
        "  - name: panicky\n    path: tenant/year/month/day\n    interval: 1s\n    max_age: 2s\n",
    )
    .await;
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let up = "cmu_exporter_report_up{report=\"panicky\"}";
    wait_for_value("the first good poll", WAIT, &base, up, 1.0).await;
    let series = "cmu_exporter_report_series{report=\"panicky\"}";
    let before = metric_value(&base, series).await.unwrap();
    assert!(before > 0.0, "the report exports series");

    inject("panicky", InjectedFault::PanicWhileBuilding, 5);
    let errors = "cmu_exporter_report_internal_errors_total{report=\"panicky\"}";
    wait_for_value("a caught panic", WAIT, &base, errors, 1.0).await;
    assert_eq!(metric_value(&base, up).await, Some(0.0), "the poll failed");
    // The poller lives on: it keeps polling, and the stale values expire.
    wait_for_value(
        "max_age expiring the stale series",
        WAIT,
        &base,
        series,
        0.0,
    )
    .await;
    let text = get_text(&format!("{base}/metrics")).await.1;
    assert!(
        !text.contains("cmu_active_users{report=\"panicky\""),
        "expired series are gone"
    );
    wait_for_value("every injected panic caught", WAIT, &base, errors, 5.0).await;
    wait_for_value("the report back after the faults", WAIT, &base, up, 1.0).await;
    assert_eq!(metric_value(&base, series).await, Some(before));
    let restarts = "cmu_exporter_poller_restarts_total{report=\"panicky\"}";
    assert_eq!(
        metric_value(&base, restarts).await,
        Some(0.0),
        "no poller died (the counter is present at 0)"
    );
    exporter.stop().await;
}

#[cfg(feature = "testkit")]
#[tokio::test]
async fn a_poller_that_dies_is_restarted_and_counted() {
    use cmu_exporter::faults::{InjectedFault, inject};
    let (_sim, _dir, config) = simulator_and_config(
        "  - name: restless\n    path: tenant/year/month/day\n    interval: 1s\n",
    )
    .await;
    inject("restless", InjectedFault::PanicInPoller, 2);
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let restarts = "cmu_exporter_poller_restarts_total{report=\"restless\"}";
    wait_for_value("two restarts", WAIT, &base, restarts, 2.0).await;
    let up = "cmu_exporter_report_up{report=\"restless\"}";
    wait_for_value("the restarted poller polling", WAIT, &base, up, 1.0).await;
    assert_eq!(metric_value(&base, restarts).await, Some(2.0));
    exporter.stop().await;
}
