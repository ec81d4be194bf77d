//! Several Adobe Pass programmer accounts in one process: each registers
//! once with its own statement, keeps its own credentials, sees only its own
//! tenants, and fails alone; DCR calls share one pacer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cmu_exporter::simulator::{Endpoint, Simulator};

use crate::common::*;

/// A config with the accounts `acme` and `globex` (their statements given)
/// and a daily report each, polled every second.
fn two_accounts(dir: &Path, sim: &Simulator, acme: &str, globex: &str) -> PathBuf {
    let acme_file = dir.join("acme.jwt");
    let globex_file = dir.join("globex.jwt");
    std::fs::write(&acme_file, acme).unwrap();
    std::fs::write(&globex_file, globex).unwrap();
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\naccounts:\n  - name: acme\n    software_statement_file: {}\n  - name: globex\n    software_statement_file: {}\nstate_dir: {}\nreports:\n  - name: acme_daily\n    account: acme\n    path: tenant/year/month/day\n    interval: 1s\n  - name: globex_daily\n    account: globex\n    path: tenant/year/month/day\n    interval: 1s\n",
        sim.dcr_url(),
        sim.cmu_url(),
        acme_file.display(),
        globex_file.display(),
        dir.join("state").display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A simulator, the accounts acme (tenant ACME) and globex (ACME-Kids), and
/// the exporter on them; acme's statement too, to revoke it.
async fn acme_and_globex() -> (
    Simulator,
    tempfile::TempDir,
    cmu_exporter::app::Running,
    String,
) {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let acme = sim.mint_account_statement(&["ACME"]);
    let globex = sim.mint_account_statement(&["ACME-Kids"]);
    let config = two_accounts(dir.path(), &sim, &acme, &globex);
    let exporter = exporter(&config).await;
    (sim, dir, exporter, acme)
}

#[tokio::test]
async fn each_account_registers_once_keeps_its_own_state_and_sees_its_own_tenants() {
    let (sim, dir, exporter, _) = acme_and_globex().await;
    let base = exporter.url();
    for report in ["acme_daily", "globex_daily"] {
        let up = format!("cmu_exporter_report_up{{report=\"{report}\"}}");
        wait_for_value(report, WAIT, &base, &up, 1.0).await;
    }
    let text = get_text(&format!("{base}/metrics")).await.1;
    let samples = parse_exposition(&text);
    let users: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "cmu_active_users")
        .collect();
    assert!(!users.is_empty());
    for sample in &users {
        let (report, account, tenant) = (
            &sample.labels["report"],
            &sample.labels["account"],
            &sample.labels["tenant"],
        );
        match report.as_str() {
            "acme_daily" => assert_eq!((account.as_str(), tenant.as_str()), ("acme", "ACME")),
            "globex_daily" => {
                assert_eq!((account.as_str(), tenant.as_str()), ("globex", "ACME-Kids"))
            }
            other => panic!("unexpected report {other}"),
        }
    }
    for account in ["acme", "globex"] {
        for (family, value) in [
            ("cmu_exporter_registrations_total", 1.0),
            ("cmu_exporter_credentials_ok", 1.0),
            ("cmu_exporter_credentials_needs_person", 0.0),
        ] {
            let series = format!("{family}{{account=\"{account}\"}}");
            assert_eq!(metric_value(&base, &series).await, Some(value), "{series}");
        }
        assert!(text.contains(&format!(
            "cmu_report_info{{report=\"{account}_daily\",account=\"{account}\""
        )));
        let state = dir
            .path()
            .join(format!("state/accounts/{account}/credentials.json"));
        let mode = std::fs::metadata(&state).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600, "{}", state.display());
    }
    assert_eq!(sim.count(Endpoint::Register), 2, "one registration each");
    // One pacer for the process: DCR calls of both accounts at least ~1 s apart.
    let mut dcr: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| matches!(r.endpoint, Endpoint::Register | Endpoint::Token))
        .map(|r| r.at)
        .collect();
    dcr.sort();
    for pair in dcr.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950), "DCR calls {gap:?} apart");
    }
    exporter.stop().await;
}

#[tokio::test]
async fn one_account_revoked_costs_one_registration_of_that_account_only() {
    let (sim, _dir, exporter, acme) = acme_and_globex().await;
    let base = exporter.url();
    let registrations =
        |account: &str| format!("cmu_exporter_registrations_total{{account=\"{account}\"}}");
    wait_for_value("acme registered", WAIT, &base, &registrations("acme"), 1.0).await;
    wait_for_value(
        "globex registered",
        WAIT,
        &base,
        &registrations("globex"),
        1.0,
    )
    .await;
    // Both accounts hold a working token before acme's is revoked.
    for report in ["acme_daily", "globex_daily"] {
        let up = format!("cmu_exporter_report_up{{report=\"{report}\"}}");
        wait_for_value(report, WAIT, &base, &up, 1.0).await;
    }
    sim.revoke_credentials_of(&acme);
    wait_for_value(
        "acme registered again",
        WAIT,
        &base,
        &registrations("acme"),
        2.0,
    )
    .await;
    // Both keep polling after it: a few more successes each.
    let polls = |report: &str| {
        format!("cmu_exporter_report_polls_total{{report=\"{report}\",result=\"success\"}}")
    };
    let acme_before = metric_value(&base, &polls("acme_daily")).await.unwrap();
    let globex_before = metric_value(&base, &polls("globex_daily")).await.unwrap();
    wait_for("both accounts polling on", WAIT, || async {
        let acme = metric_value(&base, &polls("acme_daily")).await?;
        let globex = metric_value(&base, &polls("globex_daily")).await?;
        (acme >= acme_before + 2.0 && globex >= globex_before + 2.0).then_some(())
    })
    .await;
    assert_eq!(metric_value(&base, &registrations("acme")).await, Some(2.0));
    assert_eq!(
        metric_value(&base, &registrations("globex")).await,
        Some(1.0),
        "globex undisturbed"
    );
    assert_eq!(sim.count(Endpoint::Register), 3);
    exporter.stop().await;
}

#[tokio::test]
async fn an_account_that_needs_a_person_leaves_the_others_polling_and_is_named() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let acme = sim.mint_account_statement(&["ACME"]);
    let unapproved = sim.mint_statement(false, None);
    let config = two_accounts(dir.path(), &sim, &acme, &unapproved);
    let exporter = exporter(&config).await;
    let base = exporter.url();
    let needs = "cmu_exporter_credentials_needs_person{account=\"globex\"}";
    wait_for_value("globex needs a person", WAIT, &base, needs, 1.0).await;
    let polls = "cmu_exporter_report_polls_total{report=\"acme_daily\",result=\"success\"}";
    let before = metric_value(&base, polls).await.unwrap_or(0.0);
    wait_for("acme polling on", WAIT, || async {
        (metric_value(&base, polls).await? >= before + 2.0).then_some(())
    })
    .await;
    let (status, ready) = get_text(&format!("{base}/readyz")).await;
    assert_eq!(status, 503);
    assert!(
        ready.contains("account globex: credentials need a person"),
        "{ready}"
    );
    let page = get_text(&format!("{base}/")).await.1;
    assert!(
        page.contains("Credentials of account globex: <span class=\"bad\">needs a person"),
        "the landing page names the account"
    );
    assert!(page.contains("Credentials of account acme: <span class=\"ok\">working"));
    exporter.stop().await;
}
