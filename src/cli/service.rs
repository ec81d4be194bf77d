//! Running the exporter: the service, the demo, the simulator alone, and
//! the signals (SIGINT/SIGTERM stop, SIGHUP reloads).

use std::path::PathBuf;

use anyhow::Context;

use super::{DEFAULT_PORT, ServiceArgs, WebArgs, listen_addresses, parse_listen, shard};
use crate::app::{self, Options};
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

/// The options of what is served from the command line's `--web.*` flags.
fn web_options(
    web: &WebArgs,
    default_listen: &str,
    config_file: Option<PathBuf>,
) -> anyhow::Result<Options> {
    let limits = web.connection_limits();
    let web_config = match &web.web_config.web_config_file {
        Some(file) => WebConfig::load(file, limits)?,
        None => WebConfig::plain(limits),
    };
    Ok(Options {
        listen: listen_addresses(&web.listen, default_listen)?,
        telemetry_path: web.telemetry_path.clone(),
        clock: crate::faults::process_clock(),
        config_file,
        web: web_config,
        shard: crate::shard::Shard::new(0, 1)?,
    })
}

pub(super) async fn serve(service: &ServiceArgs) -> anyhow::Result<()> {
    let file = service.config.required(
        "it names the reports and the credentials to run the service on (or try `cmu-exporter demo`)",
    )?;
    let config = Config::load(&file)?;
    let options = Options {
        shard: shard(service)?,
        ..web_options(&service.web, &format!(":{DEFAULT_PORT}"), Some(file))?
    };
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

pub(super) async fn demo(web: &WebArgs) -> anyhow::Result<()> {
    let options = web_options(web, &format!("127.0.0.1:{DEFAULT_PORT}"), None)?;
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
    outln!("cmu-exporter demo: {reports} reports from the built-in Adobe Pass simulator");
    outln!("  metrics:        {url}{telemetry_path}");
    outln!("  landing page:   {url}/");
    outln!("  simulated DCR:  {}", sim.dcr_url());
    outln!("  simulated CMU:  {}", sim.cmu_url());
    outln!("  simulated ESM:  {}", sim.esm_url());
    outln!("Press Ctrl-C to stop.");
    running.wait().await;
    sim.stop().await;
    drop(dir);
    outln!("cmu-exporter demo: stopped");
    Ok(())
}

pub(super) async fn simulate(
    listen: &str,
    token_lifetime: std::time::Duration,
    scale: usize,
    statement_file: Option<PathBuf>,
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
    if let Some(file) = &statement_file {
        crate::demo::write_private(file, sim.software_statement().as_bytes())
            .with_context(|| format!("--statement-file: cannot write {}", file.display()))?;
    }
    outln!("Adobe Pass simulator");
    outln!("  adobe.dcr_url: {}", sim.dcr_url());
    outln!("  adobe.cmu_url: {}", sim.cmu_url());
    outln!("  adobe.esm_url: {}", sim.esm_url());
    outln!("  software statement (approved, save it to a file for adobe.software_statement_file):");
    outln!("{}", sim.software_statement());
    outln!("Press Ctrl-C to stop.");
    stop_signal().await;
    sim.stop().await;
    Ok(())
}
