//! Running the exporter: the service, the demo, the simulator alone, and
//! the signals (SIGINT/SIGTERM stop, SIGHUP reloads).

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use super::{Cli, DEFAULT_PORT, listen_addresses, parse_listen, shard};
use crate::app::{self, Options};
use crate::clock::Clock;
use crate::config::Config;
use crate::incoming::WebConfig;
use crate::simulator::{Simulator, SimulatorConfig};

/// Resolves when SIGINT (Ctrl-C) or SIGTERM arrives.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The service's options from the command line: `--web.*` and the config file.
fn service_options(
    cli: &Cli,
    default_listen: &str,
    config_file: Option<PathBuf>,
) -> anyhow::Result<Options> {
    let limits = cli.connection_limits();
    let web = match &cli.web_config_file {
        Some(file) => WebConfig::load(file, limits)?,
        None => WebConfig::plain(limits),
    };
    Ok(Options {
        listen: listen_addresses(&cli.listen, default_listen)?,
        telemetry_path: cli.telemetry_path.clone(),
        clock: Clock::wall(),
        config_file,
        web,
        shard: shard(cli)?,
    })
}

pub(super) async fn serve(cli: &Cli) -> anyhow::Result<()> {
    let file = cli.config_file.clone().ok_or_else(|| {
        anyhow!("--config.file is required to run the service (or try `cmu-exporter demo`)")
    })?;
    let config = Config::load(&file)?;
    let options = service_options(cli, &format!(":{DEFAULT_PORT}"), Some(file))?;
    let running = start_until_signal(config, options).await?;
    for addr in &running.addrs {
        tracing::info!(%addr, "serving metrics");
    }
    running.wait().await;
    Ok(())
}

/// Starts the exporter; SIGINT or SIGTERM will stop it, SIGHUP reloads its
/// configuration file.
async fn start_until_signal(config: Config, options: Options) -> anyhow::Result<app::Running> {
    let running = app::start(config, options).await?;
    let handle = running.shutdown_handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping");
        handle.trigger();
    });
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let supervisor = running.supervisor.clone();
        let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // The outcome is logged and counted by the supervisor.
                let _ = supervisor.reload().await;
            }
        });
    }
    Ok(running)
}

pub(super) async fn demo(cli: &Cli) -> anyhow::Result<()> {
    let options = service_options(cli, &format!("127.0.0.1:{DEFAULT_PORT}"), None)?;
    let telemetry_path = options.telemetry_path.clone();
    let sim = Simulator::start(
        SimulatorConfig::default(),
        "127.0.0.1:0".parse().expect("literal address"),
    )
    .await
    .context("cannot start the simulator")?;
    let dir = tempfile::Builder::new()
        .prefix("cmu-exporter-demo-")
        .tempdir()
        .context("cannot create a temporary state directory")?;
    let statement_file = dir.path().join("software-statement.jwt");
    crate::demo::write_private(&statement_file, sim.software_statement().as_bytes())
        .with_context(|| format!("cannot write {}", statement_file.display()))?;
    let config = crate::demo::config(&sim, &statement_file, &dir.path().join("state"))?;
    let reports = config.reports.len();
    let running = start_until_signal(config, options).await?;
    let url = running.url();
    println!("cmu-exporter demo: {reports} reports from the built-in Adobe Pass simulator");
    println!("  metrics:        {url}{telemetry_path}");
    println!("  landing page:   {url}/");
    println!("  simulated DCR:  {}", sim.dcr_url());
    println!("  simulated CMU:  {}", sim.cmu_url());
    println!("  simulated ESM:  {}", sim.esm_url());
    println!("Press Ctrl-C to stop.");
    running.wait().await;
    sim.stop().await;
    drop(dir);
    println!("cmu-exporter demo: stopped");
    Ok(())
}

pub(super) async fn simulate(
    listen: &str,
    token_lifetime: std::time::Duration,
    scale: usize,
) -> anyhow::Result<()> {
    let addr = parse_listen(listen)?;
    let config = SimulatorConfig {
        token_lifetime,
        scale,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config, addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("Adobe Pass simulator");
    println!("  adobe.dcr_url: {}", sim.dcr_url());
    println!("  adobe.cmu_url: {}", sim.cmu_url());
    println!("  adobe.esm_url: {}", sim.esm_url());
    println!(
        "  software statement (approved, save it to a file for adobe.software_statement_file):"
    );
    println!("{}", sim.software_statement());
    println!("Press Ctrl-C to stop.");
    stop_signal().await;
    sim.stop().await;
    Ok(())
}
