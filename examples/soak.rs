//! The chaos soak (`scripts/soak [SECONDS]`): SECONDS of random faults at
//! 360x (a minute is an hour), then the convergence check; prints the
//! figures and fails when an invariant broke. `SOAK_SEED` picks the draws;
//! `SOAK_LOG=FILE` keeps the exporter's log.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::args().nth(1) {
        None => 60,
        Some(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("`{text}` is not a number of seconds: e.g. 600"))?,
    };
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let logs = cmu_exporter::soak::LogCapture::install()?;
    let options = cmu_exporter::soak::SoakOptions {
        chaos_time: std::time::Duration::from_secs(seconds),
        seed,
        ..Default::default()
    };
    let figures = cmu_exporter::soak::run(options, &logs).await?;
    if let Some(file) = std::env::var_os("SOAK_LOG") {
        std::fs::write(&file, logs.text())?;
    }
    println!("{figures}");
    anyhow::ensure!(figures.violation_count == 0, "invariants broke");
    Ok(())
}
