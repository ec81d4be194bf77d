//! `cmu-exporter discover` and `check-config` (offline, and `--online`).

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use crate::app;
use crate::clock::Clock;
use crate::config::{AccountConfig, Config};
use crate::credentials::{DcrClient, SoftwareStatement};

/// An authorized CMU client of `account` for the one-off commands.
fn online_client(
    config: &Config,
    account: &AccountConfig,
) -> anyhow::Result<crate::cmu::AuthorizedClient> {
    let http = crate::outgoing::adobe_client(&config.adobe)?;
    let telemetry = app::telemetry_for(config);
    let dcr = DcrClient::new(
        http.clone(),
        &config.adobe.dcr_url,
        telemetry.clone(),
        Clock::wall(),
    );
    let credentials = app::open_account(config, account, dcr, Clock::wall(), telemetry.clone())?;
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

pub(super) async fn discover(
    config_file: Option<PathBuf>,
    account: Option<String>,
) -> anyhow::Result<()> {
    let file = config_file.ok_or_else(|| {
        anyhow!("--config.file is required: the CMU URL and credentials come from it")
    })?;
    let config = Config::load(&file)?;
    let account = super::account(&config, account.as_deref(), true)?;
    let client = online_client(&config, account)?;
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
    let mut missing = Vec::new();
    let mut served = 0;
    // Each account sees its own tree: check each report with its account's credentials.
    for account in &config.accounts {
        let client = online_client(&config, account)?;
        let paths = crate::discovery::walk(&client)
            .await
            .context("online check failed")?;
        served = served.max(paths.len());
        missing.extend(
            config
                .reports
                .iter()
                .filter(|r| r.account == account.name && !paths.contains(&r.path))
                .map(|r| format!("reports: {}: Adobe serves no report at /{} (`cmu-exporter discover` lists the valid paths)", r.name, r.path)),
        );
    }
    if missing.is_empty() {
        println!("online: every report path exists ({served} paths served)");
        Ok(())
    } else {
        Err(anyhow!(missing.join("\n")))
    }
}

pub(super) fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file).context("configuration is not valid")?;
    print!("{}", config.explain());
    for account in &config.accounts {
        let who = account
            .label()
            .map_or(String::new(), |n| format!("account {n}: "));
        match SoftwareStatement::load(&account.software_statement) {
            Ok(s) => println!(
                "{who}software statement: readable; application id {} (issuer {})",
                s.application_id.as_deref().unwrap_or("unknown"),
                s.issuer.as_deref().unwrap_or("unknown")
            ),
            Err(e) if account.client.is_some() => {
                println!(
                    "{who}software statement: not available ({e}); not needed with pre-registered client credentials"
                )
            }
            Err(e) => return Err(anyhow!("configuration is valid, but {who}{e}")),
        }
    }
    println!("configuration is valid");
    Ok(())
}
