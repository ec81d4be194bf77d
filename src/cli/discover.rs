//! `cmu-exporter discover` and `check-config` (offline, and `--online`).

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::SoftwareStatement;

/// An authorized CMU client for the one-off commands.
fn online_client(config: &Config) -> anyhow::Result<crate::cmu::AuthorizedClient> {
    let http = crate::outgoing::adobe_client(&config.adobe)?;
    let telemetry = crate::telemetry::Telemetry::new();
    let credentials =
        app::open_credentials(config, http.clone(), Clock::wall(), telemetry.clone())?;
    Ok(crate::cmu::AuthorizedClient {
        credentials: std::sync::Arc::new(credentials),
        cmu: crate::cmu::CmuClient::new(
            http,
            config.adobe.cmu_url.clone(),
            telemetry,
            Clock::wall(),
        ),
    })
}

pub(super) async fn discover(config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let file = config_file.ok_or_else(|| {
        anyhow!("--config.file is required: the CMU URL and credentials come from it")
    })?;
    let config = Config::load(&file)?;
    let client = online_client(&config)?;
    let paths = crate::discovery::walk(&client)
        .await
        .context("discovery failed")?;
    print!(
        "{}",
        crate::discovery::config_snippet(&paths, config.adobe.cmu_url.as_str())
    );
    Ok(())
}

pub(super) async fn check_online(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    let client = online_client(&config)?;
    let paths = crate::discovery::walk(&client)
        .await
        .context("online check failed")?;
    let missing: Vec<String> = config
        .reports
        .iter()
        .filter(|r| !paths.contains(&r.path))
        .map(|r| format!("reports: {}: Adobe serves no report at /{} (`cmu-exporter discover` lists the valid paths)", r.name, r.path))
        .collect();
    if missing.is_empty() {
        println!(
            "online: every report path exists ({} paths served)",
            paths.len()
        );
        Ok(())
    } else {
        Err(anyhow!(missing.join("\n")))
    }
}

pub(super) fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file).context("configuration is not valid")?;
    print!("{}", config.explain());
    match SoftwareStatement::load(&config.adobe.software_statement) {
        Ok(s) => println!(
            "software statement: readable; application id {} (issuer {})",
            s.application_id.as_deref().unwrap_or("unknown"),
            s.issuer.as_deref().unwrap_or("unknown")
        ),
        Err(e) if config.adobe.client.is_some() => {
            println!(
                "software statement: not available ({e}); not needed with pre-registered client credentials"
            )
        }
        Err(e) => return Err(anyhow!("configuration is valid, but {e}")),
    }
    println!("configuration is valid");
    Ok(())
}
