//! Crash safety: SIGKILL at random points, 200 times, while the exporter
//! registers, renews and writes its state, and while `backfill` writes its
//! journal (writes slowed by a test hook to widen the window). After each
//! kill the files parse and hold the old or the new content; the next start
//! needs at most one registration; a resumed backfill writes the same file.
//! And a full disk or a read-only `state_dir` is an ERROR that says so
//! while the exporter keeps serving.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cmu_exporter::credentials::parse_state;
use cmu_exporter::faults::STATE_WRITES_ENV;
use cmu_exporter::simulator::{Endpoint, SimulatorConfig};

use crate::common::*;

/// Kills per test.
pub(crate) const KILLS: usize = 200;

/// A pause in [0, `max_ms`) chosen by `seed` (a fixed sequence: reruns kill
/// at the same points).
pub(crate) fn pause(seed: usize, max_ms: u64) -> Duration {
    let mut x = (seed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    Duration::from_millis(x % max_ms)
}

/// Runs the binary with `args` and `envs`, its state writes slowed by 10 ms
/// a step, and kills it with SIGKILL `after` the first state write begins (or
/// after `after` plus a second if none begins). Returns whether it was
/// still running when killed.
pub(crate) async fn kill_during_writes(
    args: &[&str],
    envs: &[(&str, &str)],
    after: Duration,
) -> bool {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .env(STATE_WRITES_ENV, "slow:10")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (began, mut begins) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("state write begins") {
                let _ = began.send(());
            }
        }
    });
    let wait = tokio::time::timeout(Duration::from_secs(5), begins.recv()).await;
    tokio::time::sleep(match wait {
        Ok(Some(())) => after,
        _ => after + Duration::from_secs(1),
    })
    .await;
    let ended = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    !ended
}

/// Whether the last kill left a temporary file of a replacement in `dir`
/// (it landed in the middle of a write). The file is removed, so that each
/// kill is counted on its own.
pub(crate) fn killed_mid_write(dir: &Path) -> bool {
    let mut found = false;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().contains(".tmp-") {
            found = true;
            let _ = std::fs::remove_file(entry.path());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_registering_renewing_and_writing_state_leaves_usable_state() {
    // No DCR throttle: the kills, not Adobe's pace, are under test.
    let sim = simulator_with(unthrottled(SimulatorConfig::default())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    );
    let state_dir = dir.path().join("state");
    let state_file = state_dir.join("credentials.json");
    let args = [
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "error",
    ];
    let (mut mid_write, mut with_state) = (0, 0);
    for i in 0..KILLS {
        // Each start finds its token expired (it renews and writes); one in
        // ten finds its client revoked (it registers again, a second later
        // at Adobe's pace, and writes twice).
        if i % 10 == 9 {
            sim.revoke_credentials();
        } else {
            sim.expire_tokens();
        }
        let registered = sim.count(Endpoint::Register);
        // From the start of the first write: before, during or after it.
        kill_during_writes(&args, &[], pause(i, 50)).await;
        mid_write += usize::from(killed_mid_write(&state_dir));
        assert!(
            sim.count(Endpoint::Register) - registered <= 1,
            "kill {i}: a start registers at most once"
        );
        if let Ok(bytes) = std::fs::read(&state_file) {
            with_state += 1;
            let state = parse_state(&bytes)
                .unwrap_or_else(|| panic!("kill {i}: the state file does not parse"));
            let issued = sim.issued_secrets();
            use secrecy::ExposeSecret;
            assert!(
                issued.contains(&state.client.client_secret.expose_secret().to_owned()),
                "kill {i}: the state holds a client Adobe issued"
            );
            if let Some(token) = &state.token {
                assert!(
                    issued.contains(&token.value.expose_secret().to_owned()),
                    "kill {i}: the state holds a token Adobe issued"
                );
            }
        }
    }
    println!(
        "{KILLS} kills: {mid_write} in the middle of a state write, {with_state} with a state file"
    );
    assert!(
        mid_write > KILLS / 10,
        "few kills landed in a write: widen the window"
    );
    // The next start, left alone, needs at most one registration and polls.
    let registered = sim.count(Endpoint::Register);
    let exporter = spawn_binary(&config, &[], &[]);
    let up = "cmu_exporter_report_up{report=\"daily\"}";
    wait_for_value("a start after the kills", WAIT, &exporter.base, up, 1.0).await;
    assert!(sim.count(Endpoint::Register) - registered <= 1);
    let (status, log) = exporter.stop();
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_backfill_leaves_a_journal_that_resumes_to_the_same_file() {
    let sim = simulator_with(unthrottled(SimulatorConfig {
        max_query_buckets: Some(6),
        ..SimulatorConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &sim,
        "  - name: hourly\n    path: tenant/year/month/day/hour\n    limit: 10\n",
    );
    let args = |output: &Path| {
        vec![
            "backfill".to_owned(),
            "--config.file".to_owned(),
            config.display().to_string(),
            "--log.level".to_owned(),
            "error".to_owned(),
            "--from".to_owned(),
            "2026-11-20".to_owned(),
            "--to".to_owned(),
            "2026-11-22".to_owned(),
            "--output".to_owned(),
            output.display().to_string(),
        ]
    };
    let reference = dir.path().join("reference.om");
    let clean = tokio::task::spawn_blocking({
        let args = args(&reference);
        move || Command::new(BIN).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let expected = std::fs::read(&reference).unwrap();

    let (mut kills, mut runs, mut mid_write_kills, mut finished) = (0, 0, 0, 0);
    while kills < KILLS {
        // One backfill, killed again and again until a run finishes it.
        let output = dir.path().join(format!("run-{runs}.om"));
        runs += 1;
        let journal = std::path::PathBuf::from(format!("{}.journal", output.display()));
        let mut session_kills = 0;
        loop {
            let args = args(&output);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // From the first journal write: each run gets a few windows further.
            let killed = kill_during_writes(&args, &[], pause(kills, 120)).await;
            if !killed {
                break;
            }
            kills += 1;
            session_kills += 1;
            mid_write_kills += usize::from(killed_mid_write(dir.path()));
            if let Ok(text) = std::fs::read_to_string(&journal) {
                let parsed: Result<serde_json::Value, _> = serde_json::from_str(&text);
                assert!(
                    parsed.is_ok(),
                    "kill {kills}: the journal does not parse:\n{text}"
                );
            }
            if kills >= KILLS || session_kills == 20 {
                break;
            }
        }
        // Finish it, and compare with the clean run.
        let done = tokio::task::spawn_blocking({
            let args = args(&output);
            move || Command::new(BIN).args(&args).output().unwrap()
        })
        .await
        .unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(
            std::fs::read(&output).unwrap() == expected,
            "run {runs}: a backfill killed and resumed writes the same file"
        );
        finished += 1;
    }
    println!(
        "{kills} kills over {runs} backfills, {mid_write_kills} in the middle of a journal write"
    );
    assert!(finished >= 2, "the kills covered several backfills");
}

#[tokio::test]
async fn a_full_disk_or_read_only_state_dir_is_an_error_and_the_exporter_serves_on() {
    for (fault, said) in [
        ("full", "No space left on device"),
        ("read-only", "Read-only file system"),
    ] {
        let (sim, _dir, config) = simulator_and_config(
            "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
        )
        .await;
        let exporter = spawn_binary(&config, &[], &[(STATE_WRITES_ENV, fault)]);
        let base = exporter.base.clone();
        let up = "cmu_exporter_report_up{report=\"daily\"}";
        wait_for_value("polls without a state file", WAIT, &base, up, 1.0).await;
        // A renewal must be written too: it fails again, and polls go on.
        sim.expire_tokens();
        let failures = "cmu_exporter_state_write_failures_total";
        wait_for("two failed writes", WAIT, || async {
            metric_value(&base, failures).await.filter(|n| *n >= 2.0)
        })
        .await;
        let polls = "cmu_exporter_report_polls_total{report=\"daily\",result=\"success\"}";
        let before = metric_value(&base, polls).await.unwrap();
        wait_for("polls after the failed writes", WAIT, || async {
            metric_value(&base, polls)
                .await
                .filter(|n| *n > before + 1.0)
        })
        .await;
        let (status, log) = exporter.stop();
        assert!(status.success(), "{log}");
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("cannot write the credentials state"))
            .collect();
        assert!(!errors.is_empty(), "{fault}: an ERROR:\n{log}");
        assert!(
            errors.iter().all(|l| l.contains(said)),
            "{fault}: says `{said}`:\n{log}"
        );
        assert_eq!(
            sim.count(Endpoint::Register),
            1,
            "{fault}: no registration more"
        );
    }
}
