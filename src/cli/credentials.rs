//! `cmu-exporter credentials show|register|forget`.

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use super::CredentialsAction;
use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::DcrClient;

pub(super) async fn run(
    config_file: Option<PathBuf>,
    action: CredentialsAction,
    account: Option<String>,
) -> anyhow::Result<()> {
    let file = config_file.ok_or_else(|| {
        anyhow!("--config.file is required: the state_dir and statement come from it")
    })?;
    let config = Config::load(&file)?;
    let account = super::account(&config, account.as_deref(), false)?;
    let http = crate::outgoing::adobe_client(&config.adobe)?;
    let telemetry = app::telemetry_for(&config);
    let dcr = DcrClient::new(
        http,
        &config.adobe.dcr_url,
        telemetry.clone(),
        Clock::wall(),
    );
    let credentials = app::open_account(&config, account, dcr, Clock::wall(), telemetry)?;
    if let Some(name) = account.label() {
        println!("account:        {name}");
    }
    match action {
        CredentialsAction::Show => {
            let summary = credentials.summary().await;
            let (client_id, application_id, expiry) = (
                summary.client_id,
                summary.application_id,
                summary.token_expiry,
            );
            println!("state file:     {}", credentials.state_file().display());
            println!(
                "client id:      {}",
                client_id
                    .as_deref()
                    .unwrap_or("none (the exporter registers on its first poll)")
            );
            println!(
                "application id: {}",
                application_id.as_deref().unwrap_or("unknown")
            );
            match expiry {
                Some(at) => println!("access token:   expires {at}"),
                None => println!("access token:   none stored"),
            }
        }
        CredentialsAction::Register => {
            let client_id = credentials
                .register_now()
                .await
                .context("registration failed")?;
            println!(
                "registered client {client_id}; stored in {}",
                credentials.state_file().display()
            );
        }
        CredentialsAction::Forget => {
            let path = credentials.state_file().display().to_string();
            match credentials.forget()? {
                true => println!("deleted {path}: the exporter registers again on its next start"),
                false => println!("nothing stored at {path}"),
            }
        }
    }
    Ok(())
}
