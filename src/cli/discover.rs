//! `cmu-exporter discover` and `check-config` (offline, and `--online`).

use anyhow::{Context, anyhow};

use crate::app;
use crate::clock::Clock;
use crate::config::{AccountConfig, Config};
use crate::credentials::{DcrClient, SoftwareStatement};
use crate::report::ReportApi;

/// An authorized CMU client of `account` for the one-off commands.
fn online_client(
    config: &Config,
    account: &AccountConfig,
) -> anyhow::Result<crate::wolap::AuthorizedClient> {
    let http = crate::outgoing::adobe_client(&config.adobe)?;
    let telemetry = app::telemetry_for(config);
    let dcr = DcrClient::new(
        http.clone(),
        &config.adobe.dcr_url,
        telemetry.clone(),
        Clock::wall(),
    );
    let credentials = app::open_account(config, account, dcr, Clock::wall(), telemetry.clone())?;
    Ok(crate::wolap::AuthorizedClient {
        credentials: std::sync::Arc::new(credentials),
        reports: crate::wolap::ReportClient::new(http, &config.adobe, telemetry, Clock::wall()),
    })
}

pub(super) async fn discover(
    config: super::ConfigFile,
    account: Option<String>,
    api: &str,
) -> anyhow::Result<()> {
    let api = ReportApi::parse(api)
        .ok_or_else(|| anyhow!("--api `{api}`: write `cmu` (default) or `esm`"))?;
    let file = config.required("the report URLs and credentials come from it")?;
    let config = Config::load(&file)?;
    let account = super::account(&config, account.as_deref(), true)?;
    let client = online_client(&config, account)?;
    let paths = crate::discovery::walk(&client, api)
        .await
        .context("discovery failed")?;
    out!(
        "{}",
        crate::discovery::config_snippet(&paths, api, config.adobe.bases().of(api).as_str())
    );
    Ok(())
}

pub(super) async fn check_online(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    let mut missing = Vec::new();
    let mut served = 0;
    // Each account sees its own tree of each API: check each report with
    // its account's credentials, walking only the APIs its reports read.
    for account in &config.accounts {
        let client = online_client(&config, account)?;
        for api in ReportApi::ALL {
            let reports: Vec<_> = config
                .reports
                .iter()
                .filter(|r| r.account == account.name && r.api == api)
                .collect();
            if reports.is_empty() {
                continue;
            }
            let paths = crate::discovery::walk(&client, api)
                .await
                .with_context(|| format!("online check of the {api} API failed"))?;
            served += paths.len();
            let hint = match api {
                ReportApi::Cmu => "`cmu-exporter discover`",
                ReportApi::Esm => "`cmu-exporter discover --api esm`",
            };
            missing.extend(
                reports
                    .iter()
                    .filter(|r| !paths.contains(&r.path))
                    .map(|r| format!("reports: {}: Adobe serves no {api} report at /{} ({hint} lists the valid paths)", r.name, r.path)),
            );
        }
    }
    if missing.is_empty() {
        outln!("online: every report path exists ({served} paths served)");
        Ok(())
    } else {
        Err(anyhow!(missing.join("\n")))
    }
}

/// Checks the configuration file and, with `--web.config.file`, the web
/// configuration the service would load.
pub(super) fn check_config(
    file: &std::path::Path,
    web: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    // The web configuration's own content is checked; the connection
    // limits are flags of the service, not of the file.
    let limits = crate::incoming::ConnectionLimits::default();
    let config = Config::load(file).context("configuration is not valid")?;
    out!("{}", config.explain());
    for account in &config.accounts {
        let who = account
            .label()
            .map_or(String::new(), |n| format!("account {n}: "));
        match SoftwareStatement::load(&account.software_statement) {
            Ok(s) => outln!(
                "{who}software statement: readable; application id {} (issuer {})",
                s.application_id.as_deref().unwrap_or("unknown"),
                s.issuer.as_deref().unwrap_or("unknown")
            ),
            Err(e) if account.client.is_some() => {
                outln!(
                    "{who}software statement: not available ({e}); not needed with pre-registered client credentials"
                )
            }
            Err(e) => return Err(anyhow!("configuration is valid, but {who}{e}")),
        }
    }
    if let Some(web) = web {
        crate::incoming::WebConfig::load(web, limits)?;
        outln!("web configuration {}: valid", web.display());
    }
    outln!("configuration is valid");
    Ok(())
}
