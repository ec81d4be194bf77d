//! The push to a store that takes only AWS Signature Version 4 (Amazon
//! Managed Prometheus): a store of the tests' own recomputes every
//! signature with botocore, the AWS SDK for Python's signer
//! (`tests/it/sigv4_store.py`); it accepts ours, from static keys and from
//! a web identity exchanged at a fake STS, and refuses a wrong secret,
//! which holds the push without a loop of requests.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

const REGION: &str = "eu-west-1";
const ACCESS_KEY: &str = "AKIDCMUEXPORTERTEST";
const SECRET: &str = "cmu-exporter-test/secret+KEY";
const WEB_TOKEN: &str = "eyJ.web-identity.token";

/// The botocore-checked store on a free port (and its fake STS).
fn signed_store(dir: &Path) -> (Daemon, String) {
    let secret = dir.join("store-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sigv4_store.py");
    let daemon = daemon(
        "python3",
        &[
            script.display().to_string(),
            port.to_string(),
            REGION.into(),
            ACCESS_KEY.into(),
            secret.display().to_string(),
            WEB_TOKEN.into(),
        ],
        &dir.join("sigv4-store.log"),
    );
    (daemon, format!("http://127.0.0.1:{port}"))
}

async fn status(store: &str) -> serde_json::Value {
    let Ok(response) = http().get(format!("{store}/status")).send().await else {
        return serde_json::Value::Null;
    };
    response.json().await.unwrap_or_default()
}

/// A configuration pushing a daily report (its newest complete day goes at
/// the first poll) to `store` with `sigv4` keys.
fn config(
    dir: &Path,
    sim: &cmu_exporter::simulator::Simulator,
    store: &str,
    sigv4: &str,
) -> std::path::PathBuf {
    let config = write_config(dir, sim, "  - {name: daily, path: tenant/year/month/day}\n");
    add_remote_write(
        &config,
        &format!("{store}/workspaces/ws-test/api/v1/remote_write"),
        &format!("name: amp\nsigv4:\n{sigv4}"),
    );
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_checking_signatures_with_botocore_accepts_ours_and_refuses_a_wrong_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, store) = signed_store(dir.path());
    wait_for("the signed store", WAIT, || async {
        status(&store).await.get("accepted").map(|_| ())
    })
    .await;
    let sim = simulator().await;

    // Static keys: the secret from its file.
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::write(good.join("secret"), format!("{SECRET}\n")).unwrap();
    let keys = format!(
        "  region: {REGION}\n  access_key: {ACCESS_KEY}\n  secret_key_file: {}\n",
        good.join("secret").display()
    );
    let exporter = spawn_binary(&config(&good, &sim, &store, &keys), &[], &[]);
    wait_for("signed pushes accepted", WAIT, || async {
        (status(&store).await["accepted"].as_u64()? > 0).then_some(())
    })
    .await;
    let (_, metrics) = get_text(&format!("{}/metrics", exporter.base)).await;
    let (_, landing) = get_text(&exporter.base).await;
    let (_, log) = exporter.stop();
    let seen = status(&store).await;
    assert_eq!(seen["refused"], 0, "{seen}");
    for (what, text) in [
        ("/metrics", &metrics),
        ("the landing page", &landing),
        ("the log", &log),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the secret key");
    }

    // A web identity, as an EKS service account has it: the region, the
    // token file, the role and STS from the environment.
    let web = dir.path().join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("token"), WEB_TOKEN).unwrap();
    let accepted_before = seen["accepted"].as_u64().unwrap();
    let token_file = web.join("token").display().to_string();
    let sts = format!("{store}/sts");
    let exporter = spawn_binary(
        &config(&web, &sim, &store, "  {}\n"),
        &[],
        &[
            ("AWS_REGION", REGION),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file),
            (
                "AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/cmu-exporter",
            ),
            ("AWS_ENDPOINT_URL_STS", &sts),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ("AWS_ACCESS_KEY_ID", ""),
        ],
    );
    wait_for(
        "pushes signed with the web identity's keys",
        WAIT,
        || async { (status(&store).await["accepted"].as_u64()? > accepted_before).then_some(()) },
    )
    .await;
    let (_, log) = exporter.stop();
    let seen = status(&store).await;
    assert_eq!(seen["refused"], 0, "{seen}\n{log}");
    assert_eq!(seen["sts"], 1, "one exchange at STS, its keys kept: {seen}");
    assert!(!log.contains("temporary-secret-key") && !log.contains(WEB_TOKEN));

    // A wrong secret: refused, counted, and asked again slowly, not in a loop.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("secret"), "not-the-secret").unwrap();
    let keys = format!(
        "  region: {REGION}\n  access_key: {ACCESS_KEY}\n  secret_key_file: {}\n",
        bad.join("secret").display()
    );
    let exporter = spawn_binary(&config(&bad, &sim, &store, &keys), &[], &[]);
    let up = wait_for("the push held", WAIT, || async {
        metric_value(
            &exporter.base,
            "cmu_exporter_remote_write_up{remote=\"amp\"}",
        )
        .await
        .filter(|v| *v == 0.0)
    })
    .await;
    assert_eq!(up, 0.0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let refusing = metric_value(
        &exporter.base,
        "cmu_exporter_remote_write_failures_total{kind=\"refusing\",remote=\"amp\"}",
    )
    .await
    .unwrap_or_default();
    let (_, log) = exporter.stop();
    let seen = status(&store).await;
    let refused = seen["refused"].as_u64().unwrap();
    assert!(
        (1..=2).contains(&refused),
        "a refusal is asked again after 30 s, not at once: {refused} refused\n{seen}"
    );
    assert!(refusing >= 1.0, "counted as refusing: {refusing}");
    assert!(
        seen["why"][0]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{seen}"
    );
    assert!(
        log.contains("403"),
        "the log says the store's answer:\n{log}"
    );
    assert!(!log.contains("not-the-secret"));
}
