//! `cmu-exporter credentials show|register|forget`.

use anyhow::Context;

use super::CredentialsAction;
use crate::app;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::DcrClient;

pub(super) async fn run(
    config: super::ConfigFile,
    action: CredentialsAction,
    account: Option<String>,
) -> anyhow::Result<()> {
    let file = config.required("the state_dir and statement come from it")?;
    let config = Config::load(&file)?;
    let account = super::account(&config, account.as_deref(), false)?;
    let http = crate::app::adobe_client(&config.adobe)?;
    let telemetry = app::telemetry_for(&config);
    let dcr = DcrClient::new(
        http,
        &config.adobe.dcr_url,
        telemetry.clone(),
        Clock::wall(),
    );
    let credentials = app::open_account(&config, account, dcr, Clock::wall(), telemetry)?;
    if let Some(name) = account.label() {
        outln!("account:        {name}");
    }
    match action {
        CredentialsAction::Show => {
            let summary = credentials.summary().await;
            let (client_id, application_id, expiry) = (
                summary.client_id,
                summary.application_id,
                summary.token_expiry,
            );
            outln!("state file:     {}", credentials.state_file().display());
            outln!(
                "client id:      {}",
                client_id
                    .as_deref()
                    .unwrap_or("none (the exporter registers on its first poll)")
            );
            outln!(
                "application id: {}",
                application_id.as_deref().unwrap_or("unknown")
            );
            match expiry {
                Some(at) => outln!("access token:   expires {at}"),
                None => outln!("access token:   none stored"),
            }
        }
        CredentialsAction::Register => {
            let client_id = credentials
                .register_now()
                .await
                .context("registration failed")?;
            outln!(
                "registered client {client_id}; stored in {}",
                credentials.state_file().display()
            );
        }
        CredentialsAction::Forget => {
            let path = credentials.state_file().display().to_string();
            match credentials.forget()? {
                true => outln!("deleted {path}: the exporter registers again on its next start"),
                false => outln!("nothing stored at {path}"),
            }
        }
    }
    Ok(())
}
