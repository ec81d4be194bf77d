//! The API economy figure of the README: one simulated day at 2160x (40 s),
//! with the exact expectations (`benches/run` prints its line). The test
//! suite runs the same day with some headroom for a loaded machine.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let day = cmu_exporter::demo::simulated_day(2160.0).await?;
    println!("{day}");
    let exact = day.registrations == 1
        && day.token_calls == day.minimum_token_calls
        && day.cmu_calls == 24
        && day.esm_calls == 24
        && day.unauthorized == 0;
    anyhow::ensure!(exact, "the day cost more than the minimum: {day}");
    Ok(())
}
