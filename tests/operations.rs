//! Running the exporter in production: retries of the CMU client, the
//! self-metrics and readiness when Adobe fails, reload, and the web server's
//! defences. Everything over real HTTP against the simulator.

mod common;

use std::time::Duration;

use cmu_exporter::simulator::{Endpoint, Fault, Simulator, Target};
use common::*;

const WAIT: Duration = Duration::from_secs(30);

const HOURLY: &str = "  - name: daily\n    path: tenant/year/month/day\n    interval: 1h\n";

/// Arrival times of the CMU requests so far, with their status.
fn cmu_requests(sim: &Simulator) -> Vec<(std::time::Instant, u16)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Cmu)
        .map(|r| (r.at, r.status))
        .collect()
}

async fn wait_for_cmu_success(sim: &Simulator) {
    wait_for("a successful CMU request", WAIT, || async {
        (sim.count_status(Endpoint::Cmu, 200) > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn transient_cmu_failures_are_retried_with_growing_pauses() {
    let (sim, _dir, config) = simulator_and_config(HOURLY).await;
    sim.inject(Target::Cmu, Fault::Status(503), 2);
    let exporter = exporter(&config).await;
    wait_for_cmu_success(&sim).await;
    let requests = cmu_requests(&sim);
    let statuses: Vec<u16> = requests.iter().map(|r| r.1).collect();
    assert_eq!(statuses, [503, 503, 200], "one poll, three attempts");
    let first = requests[1].0 - requests[0].0;
    let second = requests[2].0 - requests[1].0;
    // An hourly report's first pause is 1 s, then 2 s, each stretched by up to 50%.
    assert!(first >= Duration::from_secs(1), "first pause {first:?}");
    assert!(second >= Duration::from_secs(2), "second pause {second:?}");
    let metrics = format!("{}/metrics", exporter.url());
    let text = get_text(&metrics).await.1;
    assert!(text.contains("cmu_exporter_report_up{report=\"daily\"} 1"));
    exporter.stop().await;
}

#[tokio::test]
async fn client_errors_are_not_retried_and_retry_after_is_honoured() {
    let (sim, _dir, config) = simulator_and_config(HOURLY).await;
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sim.count(Endpoint::Cmu),
        1,
        "a 403 is not retried inside the poll"
    );
    first.stop().await;

    let (sim, _dir, config) = simulator_and_config(HOURLY).await;
    sim.inject(
        Target::Cmu,
        Fault::Throttle {
            retry_after: Some(3),
        },
        1,
    );
    let exporter = exporter(&config).await;
    wait_for_cmu_success(&sim).await;
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
    wait_for("report_up 0", WAIT, || async {
        (metric_value(&base, up).await == Some(0.0)).then_some(())
    })
    .await;
    assert!(metric_value(&base, failures).await.unwrap() >= 1.0);
    assert!(
        metric_value(&base, errors_503).await.unwrap() >= 3.0,
        "every attempt is counted"
    );
    // A 503 is Adobe's trouble, not a person's: the exporter stays ready.
    assert_eq!(get_text(&format!("{base}/readyz")).await.0, 200);

    sim.clear_faults();
    wait_for("report_up back to 1", WAIT, || async {
        (metric_value(&base, up).await == Some(1.0)).then_some(())
    })
    .await;

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
