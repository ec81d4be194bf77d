//! The whole DCR lifecycle against the simulator, over HTTP: no person needed.

use crate::common::*;
use cmu_exporter::clock::Clock;
use cmu_exporter::simulator::{Endpoint, Fault, Simulator, SimulatorConfig, Target};
use jiff::Timestamp;

fn stored_client_id(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("state/credentials.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// One simulated day with 2-hour tokens and hourly CMU and ESM reports, in ~40 s of
/// real time. At 2160x the 60 s renewal margin is 28 ms of real time, so
/// the suite leaves room for one late renewal on a loaded machine; the exact
/// figure of docs/performance.md comes from `cargo run --release --example simulated_day`
/// (in `benches/run`).
#[tokio::test]
async fn simulated_day_costs_one_registration_and_the_minimum_of_tokens() {
    let day = cmu_exporter::demo::simulated_day(2160.0, false)
        .await
        .unwrap();
    println!("{day}");
    assert_eq!(day.registrations, 1, "{day}");
    assert!(
        day.token_calls <= day.minimum_token_calls + 1,
        "at most one renewal more than the minimum: {day}"
    );
    assert!(
        day.unauthorized <= 1,
        "tokens are renewed before they expire: {day}"
    );
    assert!(
        (23..=32).contains(&day.cmu_calls),
        "one CMU call per computation of an hourly report, and at most one more an hour while the exporter learns when Adobe computes it (its first eight hours at most): {day}"
    );
    assert!(
        (23..=25).contains(&day.esm_calls),
        "the ESM report rides the same token, once an hour: {day}"
    );
}

#[tokio::test]
async fn ten_pollers_that_find_the_token_refused_cause_one_token_call() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let reports: String = (0..10)
        .map(|i| format!("  - name: r{i}\n    path: tenant/year/month/day\n    interval: 1s\n"))
        .collect();
    let config = write_config(dir.path(), &sim, &reports);
    let exporter = exporter(&config).await;
    wait_for_cmu_successes(&sim, 10).await;
    assert_eq!(sim.count(Endpoint::Token), 1, "one token for ten pollers");
    sim.expire_tokens();
    let before = sim.count_status(Endpoint::Cmu, 200);
    wait_for_cmu_successes(&sim, before + 20).await;
    exporter.stop().await;
    assert!(sim.count_status(Endpoint::Cmu, 401) >= 1);
    assert_eq!(
        sim.count(Endpoint::Token),
        2,
        "one renewal shared by every poller"
    );
    assert_eq!(sim.count(Endpoint::Register), 1);
}

#[tokio::test]
async fn revoked_credentials_lead_to_exactly_one_new_registration_persisted() {
    let (sim, dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    )
    .await;
    let exporter = exporter(&config).await;
    wait_for_cmu_successes(&sim, 1).await;
    let first = stored_client_id(dir.path());
    sim.revoke_credentials();
    let before = sim.count_status(Endpoint::Cmu, 200);
    wait_for_cmu_successes(&sim, before + 3).await;
    exporter.stop().await;
    assert_eq!(
        sim.count_status(Endpoint::Register, 201),
        2,
        "exactly one new registration"
    );
    assert_eq!(
        sim.count_status(Endpoint::Token, 400),
        1,
        "one invalid_client answer"
    );
    let second = stored_client_id(dir.path());
    assert_ne!(first, second, "the new client is persisted");
}

#[tokio::test]
async fn a_throttle_storm_is_ridden_out_at_one_dcr_call_per_second() {
    // 1 real second is 1 simulated minute: the backoff plays out quickly.
    let clock = Clock::warped(Timestamp::now(), 60.0);
    let sim = simulator_with(SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    })
    .await;
    sim.inject(Target::Dcr, Fault::Throttle { retry_after: None }, 4);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: daily\n    path: tenant/year/month/day\n",
    );
    let exporter = exporter_with_clock(&config, clock).await;
    wait_for_cmu_successes(&sim, 1).await;
    exporter.stop().await;
    let dcr: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.endpoint != Endpoint::Cmu)
        .collect();
    assert_eq!(dcr.iter().filter(|r| r.status == 429).count(), 4);
    assert_eq!(sim.count_status(Endpoint::Register, 201), 1);
    assert_eq!(sim.count_status(Endpoint::Token, 201), 1);
    for pair in dcr.windows(2) {
        let gap = pair[1]
            .sim_time
            .duration_since(pair[0].sim_time)
            .as_secs_f64();
        assert!(
            gap >= 1.0,
            "DCR calls {gap:.3}s apart: {:?} then {:?}",
            pair[0].path,
            pair[1].path
        );
    }
}

#[tokio::test]
async fn each_error_that_needs_a_person_gives_not_ready_the_gauge_and_one_log_line() {
    for code in [
        "invalid_software_statement",
        "unapproved_software_statement",
        "invalid_redirect_uri",
        "invalid_request",
    ] {
        let sim = simulator().await;
        sim.inject(Target::Register, Fault::OAuthError(code.into()), 1);
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &sim,
            "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
        );
        let process = spawn_binary(&config, &[], &[]);
        let ready = wait_for("not ready with the reason", WAIT, || async {
            let (status, body) = http()
                .get(format!("{}/readyz", process.base))
                .send()
                .await
                .ok()
                .map(|r| (r.status(), r))?;
            let body = body.text().await.ok()?;
            (status == 503 && body.contains(code)).then_some(body)
        })
        .await;
        assert!(ready.contains("credentials need a person"), "{ready}");
        assert_eq!(
            metric_value(&process.base, "cmu_exporter_credentials_ok").await,
            Some(0.0)
        );
        // Two more polls come and go; Adobe is not asked again before the hourly retry.
        let failures = "cmu_exporter_report_polls_total{report=\"daily\",result=\"failure\"}";
        let before = metric_value(&process.base, failures).await.unwrap_or(0.0);
        wait_for("two more failed polls", WAIT, || async {
            (metric_value(&process.base, failures).await? >= before + 2.0).then_some(())
        })
        .await;
        assert_eq!(sim.count(Endpoint::Register), 1, "{code}: no retry storm");
        let (status, log) = process.stop();
        assert!(status.success());
        // One error line says what to do; each failed poll adds its own warning.
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("credentials need a person"))
            .collect();
        assert_eq!(lines.len(), 1, "{code}: one error line, got {lines:?}");
        assert!(lines[0].contains(code), "{}", lines[0]);
    }
}

#[tokio::test]
async fn no_secret_reaches_logs_pages_or_metrics_even_at_trace_level() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    )
    .await;
    let process = spawn_binary(&config, &["--log.level", "trace"], &[]);
    let mut pages = Vec::new();
    let mut faults = 0;
    let mut step = |sim: &Simulator| {
        faults += 1;
        match faults {
            1 => sim.expire_tokens(),
            2 => sim.inject(Target::Cmu, Fault::Status(503), 1),
            3 => sim.inject(Target::Cmu, Fault::TruncatedJson, 1),
            4 => sim.revoke_credentials(),
            _ => sim.inject(
                Target::Dcr,
                Fault::Throttle {
                    retry_after: Some(1),
                },
                1,
            ),
        }
    };
    for round in 1..=6 {
        wait_for_cmu_successes(&sim, round * 2).await;
        for path in ["/metrics", "/", "/readyz"] {
            pages.push(get_text(&format!("{}{path}", process.base)).await.1);
        }
        step(&sim);
    }
    let (status, log) = process.stop();
    assert!(status.success());
    assert!(log.contains("TRACE"), "the run logged at trace level");
    assert!(sim.count(Endpoint::Register) >= 2 && sim.count(Endpoint::Token) >= 3);
    let secrets = sim.issued_secrets();
    assert!(
        secrets.len() >= 5,
        "statement, client secrets and tokens: {}",
        secrets.len()
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
        for page in &pages {
            assert!(!page.contains(secret.as_str()), "a secret is on a page");
        }
    }
}

#[tokio::test]
async fn pre_registered_credentials_are_used_and_never_replaced() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    // Register a client by hand, as an operator would, and hand it over in files.
    let (id, secret) = register_client(&sim).await;
    std::fs::write(dir.path().join("id"), id).unwrap();
    std::fs::write(dir.path().join("secret"), secret).unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    );
    let yaml = std::fs::read_to_string(&config).unwrap().replace(
        "  software_statement_file:",
        &format!("  client_id_file: {0}/id\n  client_secret_file: {0}/secret\n  software_statement_file:", dir.path().display()),
    );
    std::fs::write(&config, yaml).unwrap();
    let process = spawn_binary(&config, &[], &[]);
    wait_for_cmu_successes(&sim, 1).await;
    assert_eq!(
        sim.count(Endpoint::Register),
        1,
        "only the operator's registration"
    );
    sim.revoke_credentials();
    let ready = wait_for("not ready after the revocation", WAIT, || async {
        let r = http()
            .get(format!("{}/readyz", process.base))
            .send()
            .await
            .ok()?;
        let (status, body) = (r.status(), r.text().await.ok()?);
        (status == 503 && body.contains("pre-registered")).then_some(body)
    })
    .await;
    assert!(ready.contains("client_id_file"), "{ready}");
    process.stop();
    assert_eq!(
        sim.count(Endpoint::Register),
        1,
        "the exporter never registers by itself"
    );
}

#[tokio::test]
async fn credentials_command_shows_registers_and_forgets() {
    let (sim, _dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    let run = move |action: &str| {
        let out = std::process::Command::new(BIN)
            .args([
                "credentials",
                action,
                "--config.file",
                config.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let output = tokio::task::spawn_blocking({
        let run = run.clone();
        move || {
            (
                run("show"),
                run("register"),
                run("show"),
                run("forget"),
                run("show"),
            )
        }
    })
    .await
    .unwrap();
    let (empty, registered, shown, forgotten, gone) = output;
    assert!(empty.contains("client id:      none"), "{empty}");
    assert!(registered.contains("registered client"), "{registered}");
    let client_id = stored_client_id_from(&shown);
    assert!(registered.contains(&client_id));
    assert!(shown.contains("application id:"), "{shown}");
    assert!(forgotten.contains("deleted"), "{forgotten}");
    assert!(gone.contains("client id:      none"), "{gone}");
    for secret in sim.issued_secrets() {
        for text in [&empty, &registered, &shown, &forgotten, &gone] {
            assert!(!text.contains(&secret), "a secret was printed");
        }
    }
}

fn stored_client_id_from(show: &str) -> String {
    show.lines()
        .find_map(|l| l.strip_prefix("client id:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Adobe may grant any token lifetime: a 4 s token is used for two thirds
/// of its life and renewed ahead, so over a simulated minute of polls every
/// second there is one registration, no 401, no failed poll, and the token
/// calls keep to the DCR throttle.
#[tokio::test]
async fn a_four_second_token_is_used_and_renewed_ahead_without_a_401() {
    // 1 real second is 2 simulated ones: the renewal margin (1.3 s) is
    // still 0.67 s of real time, far above a loopback request.
    let clock = Clock::warped(Timestamp::now(), 2.0);
    let sim = simulator_with(SimulatorConfig {
        clock: clock.clone(),
        token_lifetime: std::time::Duration::from_secs(4),
        ..SimulatorConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    );
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    wait_for_cmu_successes(&sim, 1).await;
    let start = clock.now();
    wait_for("a simulated minute", WAIT * 2, || async {
        (clock.now().duration_since(start).as_secs() >= 60).then_some(())
    })
    .await;
    let base = exporter.url();
    let failed = metric_value(
        &base,
        "cmu_exporter_report_polls_total{report=\"daily\",result=\"failure\"}",
    )
    .await;
    exporter.stop().await;
    let requests = sim.requests();
    let in_minute = |endpoint: Endpoint| {
        requests
            .iter()
            .filter(|r| r.endpoint == endpoint && r.sim_time >= start)
            .count()
    };
    assert_eq!(sim.count(Endpoint::Register), 1, "one registration");
    assert_eq!(
        sim.count_status(Endpoint::Cmu, 401),
        0,
        "no request with an expired token"
    );
    assert_eq!(failed.unwrap_or(0.0), 0.0, "no failed poll");
    let polls = in_minute(Endpoint::Cmu);
    assert!(
        (55..=62).contains(&polls),
        "a poll every second, on time: {polls}"
    );
    let tokens = in_minute(Endpoint::Token);
    assert!(
        (15..=30).contains(&tokens),
        "a token every 2-4 s (renewed in its last third, never at every poll): {tokens}"
    );
    let dcr: Vec<_> = requests
        .iter()
        .filter(|r| r.endpoint != Endpoint::Cmu)
        .collect();
    for pair in dcr.windows(2) {
        let gap = pair[1]
            .sim_time
            .duration_since(pair[0].sim_time)
            .as_secs_f64();
        assert!(gap >= 1.0, "DCR calls {gap:.3}s apart");
    }
}

/// A token answer without a usable lifetime (0 here) is refused, and the
/// exporter then asks again at a slowing pace, not at every poll.
#[tokio::test]
async fn a_token_of_no_lifetime_is_refused_without_a_loop_of_token_calls() {
    let clock = Clock::warped(Timestamp::now(), 10.0);
    let sim = simulator_with(SimulatorConfig {
        clock: clock.clone(),
        ..SimulatorConfig::default()
    })
    .await;
    sim.inject(
        Target::Token,
        Fault::raw(
            201,
            "application/json",
            r#"{"access_token":"t0k3n","expires_in":0,"token_type":"bearer"}"#,
        ),
        1_000,
    );
    let dir = tempfile::tempdir().unwrap();
    let reports: String = (0..5)
        .map(|i| format!("  - name: r{i}\n    path: tenant/year/month/day\n    interval: 1s\n"))
        .collect();
    let config = write_config(dir.path(), &sim, &reports);
    let exporter = exporter_with_clock(&config, clock.clone()).await;
    let start = clock.now();
    wait_for("two simulated minutes", WAIT, || async {
        (clock.now().duration_since(start).as_secs() >= 120).then_some(())
    })
    .await;
    exporter.stop().await;
    let tokens = sim.count(Endpoint::Token);
    // 5 s, 10 s, 20 s, 40 s... (with jitter): at most 6 asks in two
    // minutes, where five reports polled every second asked hundreds of times.
    assert!(
        (2..=6).contains(&tokens),
        "{tokens} token calls in two minutes"
    );
    assert_eq!(sim.count(Endpoint::Cmu), 0);
}
