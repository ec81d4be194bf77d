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
    let http = crate::app::adobe_client(&config.adobe)?;
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
        crate::discovery::config_snippet(&paths, api, config.adobe.urls[api].as_str())
    );
    Ok(())
}

/// Sends each report's exact query once (path, window, filters, metrics,
/// limit) with its account's credentials: a query Adobe refuses is named
/// with Adobe's reason, as its polls would fail.
pub(super) async fn check_online(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    let once = crate::retry::RetryPolicy {
        first: std::time::Duration::ZERO,
        cap: std::time::Duration::ZERO,
        attempts: 1,
    };
    let mut refused = Vec::new();
    for account in &config.accounts {
        let client = online_client(&config, account)?;
        for report in config.reports.iter().filter(|r| r.account == account.name) {
            let query = crate::poller::query_at(report, &config.adobe, jiff::Timestamp::now());
            match client
                .get(report.api, report.name.as_str(), &report.path, &query, once)
                .await
            {
                Ok(fetched) => outln!(
                    "online: {}: {} answered the query ({} bytes)",
                    report.name,
                    report.api,
                    fetched.body.len()
                ),
                Err(crate::wolap::FetchError::Api(e)) if e.is_refusal() => {
                    refused.push(format!("{}: {e}", report.name));
                }
                Err(e) => {
                    return Err(anyhow!(e))
                        .with_context(|| format!("online check of report {} failed", report.name));
                }
            }
        }
    }
    if refused.is_empty() {
        outln!("online: Adobe answered every report's query");
        Ok(())
    } else {
        Err(anyhow!(refused.join("\n")))
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
    let mut warnings = 0;
    for report in &config.reports {
        if let Some(nearest) = crate::report::tree::did_you_mean(report.api, &report.path) {
            warnings += 1;
            outln!(
                "warning: reports: {}: /{} is not in Adobe's documented {} tree: did you mean /{nearest}? (Adobe may still serve it for your account: `check-config --online` asks)",
                report.name,
                report.path,
                report.api
            );
        }
    }
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
            Err(e) => outln!("{who}software statement: not available ({e})"),
        }
    }
    // Whatever the service would refuse at start, refused here in its words.
    app::preflight(&config).context("configuration is not valid")?;
    if let Some(web) = web {
        crate::incoming::WebConfig::load(web, limits)?;
        outln!("web configuration {}: valid", web.display());
    }
    match warnings {
        0 => outln!("configuration is valid"),
        1 => outln!("configuration is valid, with 1 warning above"),
        n => outln!("configuration is valid, with {n} warnings above"),
    }
    Ok(())
}
