//! The API economy and freshness figures of docs/performance.md: one simulated day
//! at 2160x (40 s, and six hours more for the daily report), with the
//! expectations (`benches/run` prints its lines). The test suite runs the
//! same day, without the minute and daily reports, with some headroom for
//! a loaded machine. `simulated_day FACTOR` runs it faster (the
//! benchmark's smoke mode).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let factor = match std::env::args().nth(1) {
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f > 0.0)
            .ok_or_else(|| anyhow::anyhow!("FACTOR `{text}` is not a positive number"))?,
        None => 2160.0,
    };
    let day = cmu_exporter::demo::simulated_day(factor, true).await?;
    println!("{day}");
    // The hourly report learns when Adobe computes it in its first hours,
    // at most two calls an hour meanwhile. The minute report's poll every
    // simulated minute (28 ms here) may renew a token once early.
    let exact = day.registrations == 1
        && day.token_calls <= day.minimum_token_calls + 1
        && (24..=32).contains(&day.cmu_calls)
        && day.esm_calls == 24
        && day.unauthorized == 0;
    anyhow::ensure!(exact, "the day cost more than expected: {day}");
    Ok(())
}
