//! Bad configuration files, each with a snapshot of the exact message
//! (`tests/bad-config/NAME.yaml` and `NAME.txt`; bad `--web.config.file`
//! files are `NAME.yml`). For each: `check-config` exits 1 with the
//! message, the service refuses to start with it, and a reload with it
//! answers 400 and keeps the running configuration.
//! `UPDATE_SNAPSHOTS=1 cargo test --test it bad_config` rewrites the snapshots.

use std::path::{Path, PathBuf};

use crate::common::*;

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-config")
}

/// The bad files with extension `ext`, sorted.
fn files(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(snapshots())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Compares `message` with the snapshot of `file` (or writes it).
fn matches_snapshot(file: &Path, message: &str, mismatches: &mut Vec<String>) {
    let snapshot = file.with_extension("txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, message).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
    if expected != message {
        mismatches.push(format!(
            "{}:\n  expected: {expected:?}\n  got:      {message:?}",
            file.display()
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_configuration_is_named_refused_at_start_and_on_reload() {
    let bad = files("yaml");
    assert!(bad.len() >= 30, "{} bad configurations", bad.len());
    let (sim, dir, config) = simulator_and_config(
        "  - name: daily\n    path: tenant/year/month/day\n    interval: 1s\n",
    )
    .await;
    let good = std::fs::read_to_string(&config).unwrap();
    let exporter = spawn_binary(&config, &[], &[]);
    let base = exporter.base.clone();
    let up = "cmu_exporter_report_up{report=\"daily\"}";
    wait_for_value("the good configuration polls", WAIT, &base, up, 1.0).await;
    let reloaded = "cmu_exporter_config_last_reload_successful";

    // What the `start-` files point at: a regular file, a directory and a
    // good statement, under `{dir}`.
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir_all(fixtures.join("a-directory")).unwrap();
    std::fs::write(fixtures.join("a-file"), "not a directory").unwrap();
    std::fs::write(fixtures.join("statement.jwt"), sim.software_statement()).unwrap();
    let fixtures_text = fixtures.display().to_string();

    let mut mismatches = Vec::new();
    for file in &bad {
        // Each file is read where the exporter's own file is, under its name.
        let copy = dir.path().join("bad.yaml");
        let text = std::fs::read_to_string(file).unwrap();
        std::fs::write(&copy, text.replace("{dir}", &fixtures_text)).unwrap();
        let shown = |text: &str| {
            text.replace(&copy.display().to_string(), "{file}")
                .replace(&fixtures_text, "{dir}")
        };
        // Valid files the service would refuse at start from what they
        // point at: check-config must refuse them in the same words.
        let at_start = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("start-"));

        let checked =
            run_binary_async(vec!["check-config".into(), copy.display().to_string()]).await;
        assert_eq!(
            checked.code,
            Some(1),
            "{}: {}",
            file.display(),
            checked.stderr
        );
        let message = shown(
            checked
                .stderr
                .strip_prefix("cmu-exporter: configuration is not valid: ")
                .unwrap_or(&checked.stderr),
        );
        matches_snapshot(file, &message, &mut mismatches);

        let started = run_binary_async(vec![
            "--config.file".into(),
            copy.display().to_string(),
            "--web.listen-address".into(),
            "127.0.0.1:0".into(),
        ])
        .await;
        assert_eq!(
            started.code,
            Some(1),
            "{}: the service refuses to start",
            file.display()
        );
        assert!(
            shown(&started.stderr).ends_with(&format!("cmu-exporter: {message}")),
            "{}: the service says why:\n{}",
            file.display(),
            started.stderr
        );

        if at_start {
            // A reload of state_dir or the statement needs a restart, whose
            // refusal is what check-config and the service agreed on above.
            assert!(
                !fixtures.join("a-file/state").exists() && !fixtures.join("state").exists(),
                "{}: check-config and the refused start leave no directory behind",
                file.display()
            );
            continue;
        }
        std::fs::copy(file, &config).unwrap();
        let (status, body) = post(&format!("{base}/-/reload")).await;
        assert_eq!(status, 400, "{}: {body}", file.display());
        let said = body.replace(&config.display().to_string(), "{file}");
        assert!(
            said.contains(message.trim_end()),
            "{}: the reload says why:\n{said}",
            file.display()
        );
        assert_eq!(metric_value(&base, reloaded).await, Some(0.0));
        assert_eq!(
            metric_value(&base, up).await,
            Some(1.0),
            "{}",
            file.display()
        );
    }
    // The running configuration stayed, and takes the good file again.
    std::fs::write(&config, good).unwrap();
    let (status, body) = post(&format!("{base}/-/reload")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kept: daily"), "{body}");
    assert_eq!(metric_value(&base, reloaded).await, Some(1.0));
    let (_, log) = exporter.stop();
    assert!(!log.contains("panicked"), "{log}");
    drop(sim);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_web_configuration_is_named_and_refused() {
    let bad = files("yml");
    assert!(bad.len() >= 5, "{} bad web configurations", bad.len());
    let (_sim, _dir, config) =
        simulator_and_config("  - name: daily\n    path: tenant/year/month/day\n").await;
    let mut mismatches = Vec::new();
    for file in &bad {
        let web = file.display().to_string();
        let shown = |text: &str| text.replace(&web, "{file}");
        let checked = run_binary_async(vec![
            "check-config".into(),
            "--web.config.file".into(),
            web.clone(),
            config.display().to_string(),
        ])
        .await;
        assert_eq!(checked.code, Some(1), "{web}: {}", checked.stderr);
        // The error is the last thing said, after what the configuration does.
        let at = checked.stderr.rfind("cmu-exporter: ").unwrap_or(0);
        let message = shown(&checked.stderr[at..].replacen("cmu-exporter: ", "", 1));
        matches_snapshot(file, &message, &mut mismatches);
        let started = run_binary_async(vec![
            "--config.file".into(),
            config.display().to_string(),
            "--web.config.file".into(),
            web.clone(),
            "--web.listen-address".into(),
            "127.0.0.1:0".into(),
        ])
        .await;
        assert_eq!(started.code, Some(1), "{web}: the service refuses to start");
        assert!(
            shown(&started.stderr).contains(&message),
            "{web}: the service says why:\n{}",
            started.stderr
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
