//! The chaos soak, short (`scripts/soak` runs long ones): every fault kind
//! and every event happens, and no invariant breaks. Its own test binary,
//! because it captures the whole process's log to search it for secrets.

// The soak is test machinery: it exists with the `testkit` feature only
// (a `[[test]]` entry cannot say so: the image's build context has no tests/).
#![cfg(feature = "testkit")]

use std::time::Duration;

use cmu_exporter::faulty_store::STORE_FAULT_KINDS;
use cmu_exporter::simulator::CHAOS_KINDS;
use cmu_exporter::soak::{LogCapture, SoakOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_soak_breaks_no_invariant() {
    let logs = LogCapture::install().unwrap();
    let figures = run(
        SoakOptions {
            chaos_time: Duration::from_secs(30),
            ..SoakOptions::default()
        },
        &logs,
    )
    .await
    .unwrap();
    println!("{figures}");
    assert_eq!(figures.violation_count, 0, "{figures}");
    for kind in CHAOS_KINDS.iter().chain(&STORE_FAULT_KINDS).chain(&[
        "token expiry",
        "credential revocation",
        "statement unapproved",
        "clock jump",
        "store outage",
    ]) {
        assert!(
            figures.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}: {figures}"
        );
    }
    assert!(figures.converged_after.is_some(), "{figures}");
    assert!(figures.buckets_pushed > 100, "{figures}");
    assert!(
        figures.registrations >= 2,
        "revocations lead to registrations: {figures}"
    );
    assert!(
        figures.scrapes > 100 && figures.state_reads > 100,
        "{figures}"
    );
}
