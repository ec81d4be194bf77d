//! The `cmu-exporter` binary itself: bad report paths, render, check-config.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn a_path_outside_the_tree_is_a_clear_error_not_a_crash() {
    let (_sim, _dir, config) = simulator_and_config(
        "  - name: good\n    path: tenant/year/month/day\n  - name: wrong\n    path: tenant/mvpd\n",
    )
    .await;
    let process = spawn_binary(&config, &[], &[]);
    let base = process.base.clone();
    let page = wait_for(
        "the error on the landing page",
        Duration::from_secs(20),
        || async {
            let text = http().get(&base).send().await.ok()?.text().await.ok()?;
            text.contains("CMU has no report at /tenant/mvpd")
                .then_some(text)
        },
    )
    .await;
    assert!(
        page.contains("cmu-exporter discover"),
        "the error says how to find valid paths"
    );
    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    assert!(metrics.contains("cmu_exporter_report_up{report=\"wrong\"} 0"));
    assert!(
        metrics.contains("cmu_active_users{report=\"good\""),
        "the good report still works"
    );
    let (status, ready) = get_text(&format!("{base}/readyz")).await;
    assert_eq!(status, 503);
    assert!(ready.contains("report wrong"), "{ready}");

    // SIGTERM: a clean exit (so it was still running), and the log names the report and the fix.
    let (status, log) = process.stop();
    assert!(status.success(), "exit status {status:?}");
    let line = log
        .lines()
        .find(|l| l.contains("poll failed"))
        .expect("a log line for the failed poll");
    assert!(
        line.contains("report=wrong") || line.contains("report=\"wrong\""),
        "{line}"
    );
    assert!(line.contains("/tenant/mvpd"), "{line}");
}

#[tokio::test]
async fn render_prints_exposition_that_promtool_accepts() {
    let sim = simulator().await;
    let token = own_token(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    for path in [
        "tenant/year/month/day/hour/mvpd",
        "year/month/concurrency-level/tenant",
        "tenant/year/month/day/hour/occurrences",
    ] {
        let json = cmu_bytes(
            &format!("{}/{path}?start=2026-01-01", sim.cmu_url()),
            &token,
        )
        .await;
        let file = dir.path().join("report.json");
        std::fs::write(&file, &json).unwrap();
        let text = render_file(&file, &["--report", "saved"]);
        assert!(text.contains("report=\"saved\""), "{path}: {text}");
        assert!(
            text.contains(&format!(
                "cmu_report_info{{report=\"saved\",path=\"{path}\""
            )),
            "{path}"
        );
        promtool_accepts(path, &text);
    }
}

#[test]
fn render_names_the_row_and_field_of_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    std::fs::write(&file, r#"{"report": [{"year": "2025", "active-users": "12"}, {"year": "2025", "active-users": "a lot"}]}"#)
        .unwrap();
    let out = Command::new(BIN)
        .args(["render", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("row 1, field `active-users`: metric value \"a lot\" is not a number"),
        "{err}"
    );
}

/// `cmu-exporter render FILE | grep -q ...`: a reader that stops early is
/// not a failure, so the pipeline's status is grep's.
#[test]
fn render_into_a_closed_pipe_exits_zero() {
    use std::os::fd::FromRawFd;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(
        &file,
        r#"{"report": [{"year": "2020", "active-users": "3"}]}"#,
    )
    .unwrap();
    let mut ends = [0; 2];
    assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
    // The reader is gone before render writes its first byte.
    unsafe { libc::close(ends[0]) };
    let writer = unsafe { std::process::Stdio::from_raw_fd(ends[1]) };
    let out = Command::new(BIN)
        .args(["render", file.to_str().unwrap(), "--path", "year"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

/// A readable statement (application id `app-1`) for offline checks, in `dir`.
fn offline_statement(dir: &std::path::Path) -> std::path::PathBuf {
    let statement = dir.join("s.jwt");
    std::fs::write(
        &statement,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAtMSIsImlzcyI6ImF1dGguYWRvYmUuY29tIn0.c2ln",
    )
    .unwrap();
    statement
}

#[test]
fn check_config_explains_or_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let statement = offline_statement(dir.path());
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!(
            "adobe:\n  software_statement_file: {}\nstate_dir: /tmp/x\nreports:\n  - name: hourly\n    path: tenant/year/month/day/hour\n",
            statement.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("hourly: /tenant/year/month/day/hour (hour buckets"),
        "{text}"
    );
    assert!(text.contains("every 1h"), "{text}");
    assert!(text.contains("application id app-1"), "{text}");
    assert!(!text.contains("c2ln"), "the statement never appears");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "state_dir: /tmp/x\nreports:\n  - name: Bad Name\n    path: hour/year\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("reports[0].name: `Bad Name`"), "{err}");
    assert!(err.contains("reports[0].path: `hour/year`"), "{err}");
    assert!(
        err.contains("adobe.software_statement_file: missing"),
        "{err}"
    );
}

#[tokio::test]
async fn telemetry_path_build_info_and_process_metrics() {
    let (_sim, _dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    let process = spawn_binary(&config, &["--web.telemetry-path", "/custom"], &[]);
    let text = wait_for("metrics at /custom", Duration::from_secs(20), || async {
        let r = http()
            .get(format!("{}/custom", process.base))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(r.text().await.ok()?)
    })
    .await;
    let build = parse_exposition(&text)
        .into_iter()
        .find(|s| s.name == "cmu_exporter_build_info")
        .unwrap();
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(build.labels["rustc_version"].starts_with("1."), "{build:?}");
    assert!(!build.labels["revision"].is_empty(), "{build:?}");
    let value = |name: &str| {
        parse_exposition(&text)
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    };
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(name).is_some_and(|v| v > 0.0),
            "{name}: {:?}",
            value(name)
        );
    }
    // CPU time is counted in 10 ms ticks: present, possibly still 0.
    assert!(value("process_cpu_seconds_total").is_some());
    assert_eq!(get_text(&format!("{}/metrics", process.base)).await.0, 404);
    assert!(get_text(&process.base).await.1.contains("href=\"/custom\""));
    let (status, _) = process.stop();
    assert!(status.success());
}

#[test]
fn a_telemetry_path_that_would_hide_a_page_is_refused() {
    let out = Command::new(BIN)
        .args([
            "--web.telemetry-path",
            "/healthz",
            "--config.file",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot serve metrics"));
}

#[tokio::test]
async fn sigterm_during_a_poll_finishes_it_then_exits_cleanly() {
    use cmu_exporter::simulator::{Endpoint, Fault, Target};
    let sim = simulator().await;
    sim.inject(Target::Cmu, Fault::Slow(Duration::from_millis(1500)), 1);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: daily\n    path: tenant/year/month/day\n",
    );
    let process = spawn_binary(&config, &[], &[]);
    // Wait until the token is in hand: the CMU request is then in flight (slow).
    wait_for("the token", Duration::from_secs(20), || async {
        (sim.count(Endpoint::Token) == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.count(Endpoint::Cmu),
        0,
        "the answer is still on its way"
    );
    let started = std::time::Instant::now();
    let (status, log) = tokio::task::spawn_blocking(move || process.stop())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(
        sim.count_status(Endpoint::Cmu, 200),
        1,
        "the poll in flight was finished, not cut"
    );
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    assert!(!log.contains("abandoned"), "{log}");
}

/// One command-line grammar: every command takes the configuration as
/// `--config.file` (or its variable), refuses a flag it would ignore, and
/// its help shows only its own flags.
#[test]
fn every_command_takes_the_configuration_the_same_way_and_refuses_what_it_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "reports: [\n").unwrap();
    let file = file.to_str().unwrap();
    // check-config takes --config.file, the variable, or its positional shorthand.
    for args in [
        vec!["check-config", "--config.file", file],
        vec!["check-config", file],
    ] {
        let ran = run_binary(&args);
        assert_eq!(ran.code, Some(1), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.contains("config.yaml"),
            "{args:?}: {}",
            ran.stderr
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cmu-exporter"))
        .arg("check-config")
        .env("CMU_EXPORTER_CONFIG_FILE", file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.yaml"));
    // What a command would ignore is refused (clap's usage error: exit 2).
    for args in [
        vec!["check-config", "--config.file", file, file],
        vec!["demo", "--config.file", file],
        vec!["--config.file", file, "check-config"],
        vec!["discover", "--web.listen-address", ":1"],
        vec!["render", "--config.file", file],
        vec!["check-config", file, "--shard", "1"],
    ] {
        let ran = run_binary(&args);
        assert_eq!(ran.code, Some(2), "{args:?} is refused: {}", ran.stderr);
    }
    // Each command's help shows its own flags, not the service's.
    let own: &[(&str, &[&str])] = &[
        (
            "check-config",
            &["--config.file", "--online", "--web.config.file"],
        ),
        ("discover", &["--config.file", "--account", "--api"]),
        ("backfill", &["--config.file", "--from", "--output"]),
        ("credentials", &["--config.file", "--account"]),
        ("demo", &["--web.listen-address"]),
        ("render", &["--report", "--api"]),
        ("simulate", &["--statement-file", "--token-lifetime"]),
    ];
    for (command, flags) in own {
        let help = run_binary(&[command, "--help"]).stdout;
        for flag in *flags {
            assert!(
                help.contains(flag),
                "{command} --help lists {flag}:\n{help}"
            );
        }
        let serves = *command == "demo";
        for service_only in ["--shard", "--total-shards", "--web.max-connections"] {
            if serves && service_only.starts_with("--web") {
                continue;
            }
            assert!(
                !help.contains(service_only),
                "{command} --help lists {service_only}:\n{help}"
            );
        }
    }
    let help = run_binary(&["--help"]).stdout;
    assert!(help.contains("ESM"), "the help names both APIs:\n{help}");
}

/// `cmu-exporter demo | head`: a closed standard output never panics the
/// process, which serves on and stops cleanly on SIGTERM.
#[test]
fn a_closed_stdout_never_panics_and_sigterm_still_stops_the_demo() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cmu-exporter"))
        .args(["demo", "--web.listen-address", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing: close the pipe, as `head` does once it has its lines.
    drop(child.stdout.take());
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "the demo still runs");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM stops the demo"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!log.contains("panicked"), "{log}");
    assert!(status.success(), "{status:?}: {log}");
}

/// A report whose every poll Adobe refuses with a 400 (a filter on a
/// dimension it does not know, a metric it does not serve) makes `/readyz`
/// say so, as a bad path does, and `check-config --online` refuses it,
/// sending the report's exact query once.
#[tokio::test]
async fn a_query_adobe_refuses_makes_readyz_say_so_and_fails_the_online_check() {
    let (sim, _dir, config) = simulator_and_config(
        "  - name: good\n    path: tenant/year/month/day\n  - name: typo\n    path: tenant/year/month/day\n    filters: [\"chanel=CNN\"]\n  - name: metric\n    path: tenant/year/month/day\n    metrics: [active-user]\n",
    )
    .await;
    let before = sim.requests().len();
    let ran = run_binary_async(vec![
        "check-config".into(),
        config.display().to_string(),
        "--online".into(),
    ])
    .await;
    assert_eq!(ran.code, Some(1), "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("typo: CMU refused the query (HTTP 400): Unknown dimension: chanel"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(
            "metric: CMU refused the query (HTTP 400): Unknown metric for this report: active-user"
        ),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("good:"), "{}", ran.stderr);
    let sent: Vec<_> = sim.requests()[before..]
        .iter()
        .filter(|r| r.endpoint == cmu_exporter::simulator::Endpoint::Cmu)
        .map(|r| format!("{}?{}", r.path, r.query))
        .collect();
    assert_eq!(sent.len(), 3, "one exact query per report: {sent:?}");
    assert!(
        sent.iter()
            .any(|q| q.contains("chanel=CNN") && q.contains("limit=")),
        "{sent:?}"
    );
    assert!(
        sent.iter().any(|q| q.contains("metrics=active-user")),
        "{sent:?}"
    );

    let exporter = exporter(&config).await;
    let base = exporter.url();
    let why = wait_for("readyz to name a refused report", WAIT, || async {
        let (status, text) = get_text(&format!("{base}/readyz")).await;
        (status == 503 && text.contains("HTTP 400")).then_some(text)
    })
    .await;
    assert!(
        why.contains("report metric") || why.contains("report typo"),
        "{why}"
    );
    exporter.stop().await;
}

/// Offline, a path outside Adobe's documented trees is named with the
/// nearest documented one: a typo in `concurrency-level` would otherwise
/// pass silently, with a default interval of three hours instead of a day.
#[test]
fn check_config_names_an_undocumented_path_with_the_nearest_documented_one() {
    let dir = tempfile::tempdir().unwrap();
    let statement = offline_statement(dir.path());
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "adobe:\n  software_statement_file: {}\nstate_dir: {}\nreports:\n  - name: levels\n    path: year/month/day/concurency-level/tenant/mvpd\n  - name: esm\n    api: esm\n    path: media-company/year/month/day/hour/proxy/mvdp\n  - name: fine\n    path: year/month/day/concurrency-level/tenant/mvpd\n  - name: alias\n    path: billing/daily\n",
            statement.display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let ran = run_binary(&["check-config", config.to_str().unwrap()]);
    assert_eq!(
        ran.code,
        Some(0),
        "a warning, not a refusal: {}",
        ran.stderr
    );
    assert!(
        ran.stdout.contains("warning: reports: levels: /year/month/day/concurency-level/tenant/mvpd is not in Adobe's documented CMU tree: did you mean /year/month/day/concurrency-level/tenant/mvpd?"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("esm: /media-company/year/month/day/hour/proxy/mvdp is not in Adobe's documented ESM tree: did you mean /media-company/year/month/day/hour/proxy/mvpd?"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("reports: fine:"), "{}", ran.stdout);
    assert!(!ran.stdout.contains("reports: alias:"), "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("configuration is valid, with 2 warnings above"),
        "{}",
        ran.stdout
    );
}
