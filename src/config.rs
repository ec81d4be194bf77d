//! The YAML configuration, validated once at the edge.
//!
//! Raw serde types mirror the file; [`Config::from_yaml`] turns them into
//! types that cannot hold a bad value ([`ReportName`], [`ReportPath`], URLs,
//! intervals). Every problem is reported at once, each naming the key, the
//! value and the fix.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use reqwest::Url;
use secrecy::SecretString;
use serde::Deserialize;

use crate::report::catalog::LEVEL_DIMENSIONS;
use crate::report::{BucketChoice, Granularity, ReportApi, ReportPath};
use crate::wolap::Filter;

/// Adobe's production DCR host.
pub const DEFAULT_DCR_URL: &str = "https://api.auth.adobe.com";
/// Adobe's production CMU base.
pub const DEFAULT_CMU_URL: &str = "https://mgmt.auth.adobe.com/cmu/v2";
/// Adobe's production ESM base.
pub const DEFAULT_ESM_URL: &str = "https://mgmt.auth.adobe.com/esm/v3";
/// ESM reports in Pacific time ("PST"); a client that builds its windows in
/// America/Los_Angeles is seen working against the live API.
pub const DEFAULT_ESM_TIME_ZONE: &str = "America/Los_Angeles";
/// Environment variable that may hold the software statement itself.
pub const STATEMENT_ENV: &str = "CMU_SOFTWARE_STATEMENT";
/// Environment variables that may hold pre-registered client credentials.
pub const CLIENT_ID_ENV: &str = "CMU_CLIENT_ID";
pub const CLIENT_SECRET_ENV: &str = "CMU_CLIENT_SECRET";
/// Adobe's default `limit`; we ask for more so hourly drill-downs fit.
pub const DEFAULT_LIMIT: u32 = 10_000;
/// Default most bytes read of one answer: the widest report (about 700
/// bytes a row) at `limit: 100000` is about 70 MB, so twice that.
pub const DEFAULT_MAX_ANSWER_SIZE: u64 = 128 << 20;

/// A configuration that passed validation.
#[derive(Debug, Clone)]
pub struct Config {
    pub adobe: AdobeConfig,
    /// The programmer accounts: one unnamed account built from `adobe.*`
    /// in the single-account form, or the `accounts:` listed, by name.
    pub accounts: Vec<AccountConfig>,
    /// Where credentials and tokens are persisted.
    pub state_dir: PathBuf,
    pub reports: Vec<ReportConfig>,
    /// Alert thresholds and stream limits (exported as gauges; a reload applies them).
    pub thresholds: crate::thresholds::Thresholds,
}

/// One Adobe Pass programmer account: its statement and, optionally,
/// pre-registered client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// `None` in the single-account form: no `account` label anywhere.
    pub name: Option<AccountName>,
    pub software_statement: SecretSource,
    /// Pre-registered client credentials: when set, the account never registers.
    pub client: Option<ClientSource>,
}

impl AccountConfig {
    /// Where this account keeps its client credentials and token:
    /// `state_dir` itself, or `state_dir/accounts/<name>`.
    pub fn state_dir(&self, state_dir: &Path) -> PathBuf {
        match &self.name {
            None => state_dir.to_owned(),
            Some(name) => state_dir.join("accounts").join(name.as_str()),
        }
    }

    /// The value of the `account` label, if accounts are configured.
    pub fn label(&self) -> Option<&str> {
        self.name.as_ref().map(AccountName::as_str)
    }
}

impl Config {
    /// The account `name` (`None`: the single account).
    pub fn account(&self, name: Option<&AccountName>) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name.as_ref() == name)
    }
}

/// How to reach and authenticate with Adobe.
#[derive(Debug, Clone, PartialEq)]
pub struct AdobeConfig {
    pub dcr_url: Url,
    pub cmu_url: Url,
    pub esm_url: Url,
    /// Time zone of CMU time buckets (undocumented by Adobe; UTC by default).
    pub time_zone: TimeZone,
    /// Time zone of ESM time buckets (Pacific by default).
    pub esm_time_zone: TimeZone,
    /// Most CMU requests in flight at once, across all reports.
    pub max_concurrent_requests: usize,
    /// Proxy for every request to Adobe (else `HTTPS_PROXY`/`HTTP_PROXY`).
    pub proxy_url: Option<Url>,
    /// Extra CA certificates (PEM) trusted for Adobe's servers, next to the system's.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one request to Adobe, the whole answer included.
    pub request_timeout: Duration,
    /// Most bytes of one answer read (decompressed); a longer answer fails the poll.
    pub max_answer_size: u64,
}

impl AdobeConfig {
    /// Where each report API lives.
    pub fn bases(&self) -> crate::wolap::Bases {
        crate::wolap::Bases {
            cmu: self.cmu_url.clone(),
            esm: self.esm_url.clone(),
        }
    }

    /// The time zone of `api`'s buckets.
    pub fn time_zone_of(&self, api: ReportApi) -> &TimeZone {
        match api {
            ReportApi::Cmu => &self.time_zone,
            ReportApi::Esm => &self.esm_time_zone,
        }
    }
}

/// Where a value kept out of the YAML comes from: the software statement,
/// or pre-registered client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// An environment variable (`CMU_SOFTWARE_STATEMENT`, `CMU_CLIENT_ID`...).
    Env(&'static str),
}

/// Why a [`SecretSource`] gave nothing. Names the source, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretSourceError {
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{0} is not set")]
    Unset(&'static str),
    #[error("{0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the value, trimmed, straight into a secret.
    pub fn read(&self) -> Result<SecretString, SecretSourceError> {
        let text = match self {
            Self::File(path) => {
                std::fs::read_to_string(path).map_err(|e| SecretSourceError::Unreadable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            Self::Env(name) => std::env::var(name).map_err(|_| SecretSourceError::Unset(name))?,
        };
        let value = text.trim();
        if value.is_empty() {
            return Err(SecretSourceError::Empty(self.describe()));
        }
        Ok(SecretString::from(value))
    }

    /// Where the value comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("file {}", path.display()),
            Self::Env(name) => format!("environment variable {name}"),
        }
    }
}

/// Pre-registered client credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSource {
    pub id: SecretSource,
    pub secret: SecretSource,
}

/// One configured report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportConfig {
    pub name: ReportName,
    /// The API the report reads: CMU (default) or ESM.
    pub api: ReportApi,
    /// The account whose credentials poll it (`None` in the single-account form).
    pub account: Option<AccountName>,
    pub path: ReportPath,
    /// Time between polls.
    pub interval: Duration,
    /// Whether the newest complete or the still-filling bucket is exported.
    pub bucket: BucketChoice,
    /// Row limit sent to Adobe.
    pub limit: u32,
    /// Filters sent to Adobe (`dim=v`, `dim!=v`).
    pub filters: Vec<Filter>,
    /// Metrics to ask for (all when empty).
    pub metrics: Vec<String>,
    /// Static labels added to every series of the report.
    pub labels: Vec<(String, String)>,
    /// Cardinality guard: most series the report may export.
    pub max_series: Option<usize>,
    /// How long the last good values survive failing polls.
    pub max_age: Duration,
}

/// A report name: `[a-z0-9_]+`, unique in the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportName(String);

/// A name that is not `[a-z0-9_]+`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not {kind} name: use lowercase letters, digits and underscores, e.g. `{example}`"
)]
pub struct BadName {
    pub text: String,
    /// `a report`, `an account`.
    kind: &'static str,
    example: &'static str,
}

/// `text` when it is `[a-z0-9_]+`; else the error for `kind` (`a report`, `an account`).
fn parse_name(text: &str, kind: &'static str, example: &'static str) -> Result<String, BadName> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(BadName {
            text: text.to_owned(),
            kind,
            example,
        })
    }
}

impl ReportName {
    pub fn parse(text: &str) -> Result<Self, BadName> {
        parse_name(text, "a report", "hourly_by_mvpd").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account name: `[a-z0-9_]+`, unique; the value of the `account` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(text: &str) -> Result<Self, BadName> {
        parse_name(text, "an account", "acme").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ReportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every problem found in a configuration, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    adobe: RawAdobe,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    reports: Vec<RawReport>,
    #[serde(default)]
    thresholds: Vec<crate::thresholds::RawThreshold>,
    #[serde(default)]
    stream_limits: Vec<crate::thresholds::RawStreamLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    software_statement_file: Option<PathBuf>,
    client_id_file: Option<PathBuf>,
    client_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdobe {
    dcr_url: Option<String>,
    cmu_url: Option<String>,
    esm_url: Option<String>,
    software_statement_file: Option<PathBuf>,
    client_id_file: Option<PathBuf>,
    client_secret_file: Option<PathBuf>,
    time_zone: Option<String>,
    esm_time_zone: Option<String>,
    max_concurrent_requests: Option<usize>,
    proxy_url: Option<String>,
    ca_file: Option<PathBuf>,
    request_timeout: Option<String>,
    max_answer_size: Option<RawSize>,
}

/// A size: a number of bytes, or text with a unit (`64MiB`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    name: String,
    account: Option<String>,
    api: Option<String>,
    path: String,
    interval: Option<String>,
    bucket: Option<String>,
    limit: Option<u32>,
    #[serde(default)]
    filters: Vec<String>,
    #[serde(default)]
    metrics: Vec<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    max_series: Option<usize>,
    max_age: Option<String>,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::one(format!(
                "cannot read config file {}: {e}: check the path given to --config.file",
                path.display()
            ))
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Validates configuration text; `origin` names it in messages.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Err(ConfigError::one(format!(
                "{origin} is empty: it needs at least `reports:` with one report (see the README's configuration reference)"
            )));
        }
        let raw: RawConfig = serde_saphyr::from_str(text)
            .map_err(|e| ConfigError::one(format!("{origin} is not a valid configuration: {e}")))?;
        let mut problems = Vec::new();
        let mut raw_adobe = raw.adobe;
        let single = RawAccount {
            name: String::new(),
            software_statement_file: raw_adobe.software_statement_file.take(),
            client_id_file: raw_adobe.client_id_file.take(),
            client_secret_file: raw_adobe.client_secret_file.take(),
        };
        let listed: Vec<String> = raw.accounts.iter().map(|a| a.name.clone()).collect();
        let accounts = validate_accounts(single, raw.accounts, &mut problems);
        let adobe = validate_adobe(raw_adobe, &mut problems);
        let state_dir = raw.state_dir.unwrap_or_else(|| {
            problems.push("state_dir: missing: name a writable directory for credentials, e.g. `state_dir: /var/lib/cmu-exporter`".into());
            PathBuf::new()
        });
        if raw.reports.is_empty() {
            problems.push("reports: empty: configure at least one report, e.g. `- {name: daily, path: tenant/year/month/day}`".into());
        }
        let mut names = HashSet::new();
        let reports: Vec<ReportConfig> = raw
            .reports
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| {
                validate_report(i, r, &mut names, (&accounts, &listed), &mut problems)
            })
            .collect();
        let thresholds =
            crate::thresholds::validate(raw.thresholds, raw.stream_limits, &mut problems);
        match adobe {
            Some(adobe) if problems.is_empty() => Ok(Self {
                adobe,
                accounts,
                state_dir,
                reports,
                thresholds,
            }),
            _ => {
                if problems.is_empty() {
                    problems.push("adobe: not usable: check every key of the section".into());
                }
                Err(ConfigError { problems })
            }
        }
    }

    /// A readable account of what this configuration will do.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("DCR server:        {}\n", self.adobe.dcr_url));
        out.push_str(&format!("CMU base:          {}\n", self.adobe.cmu_url));
        if self.reports.iter().any(|r| r.api == ReportApi::Esm) {
            out.push_str(&format!("ESM base:          {}\n", self.adobe.esm_url));
        }
        for account in &self.accounts {
            let who = account
                .label()
                .map_or(String::new(), |n| format!("account {n}: "));
            out.push_str(&format!(
                "{who}software statement: {}\n",
                account.software_statement.describe()
            ));
            if let Some(client) = &account.client {
                out.push_str(&format!(
                    "{who}client credentials: pre-registered (id from {}, secret from {}): never registers\n",
                    client.id.describe(),
                    client.secret.describe()
                ));
            }
        }
        out.push_str(&format!(
            "bucket time zone:  {}\n",
            self.adobe.time_zone.iana_name().unwrap_or("fixed offset")
        ));
        if self.reports.iter().any(|r| r.api == ReportApi::Esm) {
            out.push_str(&format!(
                "ESM time zone:     {}\n",
                self.adobe
                    .esm_time_zone
                    .iana_name()
                    .unwrap_or("fixed offset")
            ));
        }
        out.push_str(&format!(
            "state directory:   {}\n",
            self.state_dir.display()
        ));
        out.push_str("thresholds (exported as cmu_threshold, cmu_stream_limit):\n");
        out.push_str(&self.thresholds.explain());
        out.push_str(&format!("{} report(s):\n", self.reports.len()));
        for r in &self.reports {
            let account = r
                .account
                .as_ref()
                .map_or(String::new(), |a| format!(" [account {a}]"));
            let api = match r.api {
                ReportApi::Cmu => String::new(),
                api => format!(" {api}"),
            };
            out.push_str(&format!(
                "  {}{account}:{api} /{} ({} buckets, {} bucket exported), every {}, limit {}\n",
                r.name,
                r.path,
                r.path.granularity().as_str(),
                match r.bucket {
                    BucketChoice::Complete => "newest complete",
                    BucketChoice::Partial => "current partial",
                },
                humantime::format_duration(r.interval),
                r.limit
            ));
        }
        out
    }
}

fn validate_url(
    key: &str,
    value: Option<String>,
    default: &str,
    problems: &mut Vec<String>,
) -> Option<Url> {
    let text = value.unwrap_or_else(|| default.to_owned());
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        _ => {
            problems.push(format!(
                "{key}: `{text}` is not an http(s) URL: write it in full, e.g. `{default}`"
            ));
            None
        }
    }
}

/// The accounts: the `accounts:` listed, or one unnamed account from the
/// `adobe` keys (`single`) when none is.
fn validate_accounts(
    single: RawAccount,
    listed: Vec<RawAccount>,
    problems: &mut Vec<String>,
) -> Vec<AccountConfig> {
    if listed.is_empty() {
        return validate_credentials("adobe", single, true, problems)
            .map(|(software_statement, client)| AccountConfig {
                name: None,
                software_statement,
                client,
            })
            .into_iter()
            .collect();
    }
    for (key, set) in [
        (
            "software_statement_file",
            single.software_statement_file.is_some(),
        ),
        ("client_id_file", single.client_id_file.is_some()),
        ("client_secret_file", single.client_secret_file.is_some()),
    ] {
        if set {
            problems.push(format!(
                "adobe.{key}: set while `accounts:` is listed: each account names its own, so move it under its account"
            ));
        }
    }
    let mut names = HashSet::new();
    let mut accounts = Vec::new();
    for (i, raw) in listed.into_iter().enumerate() {
        let key = format!("accounts[{i}]");
        let name = match AccountName::parse(&raw.name) {
            Ok(name) => Some(name),
            Err(e) => {
                problems.push(format!("{key}.name: {e}"));
                None
            }
        };
        if !names.insert(raw.name.clone()) {
            problems.push(format!(
                "{key}.name: `{}` is used by an earlier account: give each account its own name",
                raw.name
            ));
        }
        let credentials = validate_credentials(&key, raw, false, problems);
        if let (Some(name), Some((software_statement, client))) = (name, credentials) {
            accounts.push(AccountConfig {
                name: Some(name),
                software_statement,
                client,
            });
        }
    }
    accounts
}

/// An account's statement and optional client credentials, under `key`
/// (`adobe` or `accounts[i]`). Only the single account may take them from
/// the environment.
fn validate_credentials(
    key: &str,
    raw: RawAccount,
    from_env: bool,
    problems: &mut Vec<String>,
) -> Option<(SecretSource, Option<ClientSource>)> {
    let env_set = |name: &str| from_env && std::env::var_os(name).is_some();
    let id = raw
        .client_id_file
        .map(SecretSource::File)
        .or_else(|| env_set(CLIENT_ID_ENV).then_some(SecretSource::Env(CLIENT_ID_ENV)));
    let secret = raw
        .client_secret_file
        .map(SecretSource::File)
        .or_else(|| env_set(CLIENT_SECRET_ENV).then_some(SecretSource::Env(CLIENT_SECRET_ENV)));
    let client = match (id, secret) {
        (Some(id), Some(secret)) => Some(ClientSource { id, secret }),
        (None, None) => None,
        (Some(_), None) | (None, Some(_)) => {
            problems.push(format!(
                "{key}.client_id_file / {key}.client_secret_file: only one is set: give both{}, or neither to let the exporter register",
                if from_env { format!(" (or {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV})") } else { String::new() }
            ));
            None
        }
    };
    let software_statement = match raw.software_statement_file {
        Some(p) if p.as_os_str().is_empty() => {
            problems.push(format!("{key}.software_statement_file: empty: name the file downloaded from the TVE Dashboard"));
            None
        }
        Some(p) => Some(SecretSource::File(p)),
        None if from_env && std::env::var_os(STATEMENT_ENV).is_some() => {
            Some(SecretSource::Env(STATEMENT_ENV))
        }
        // With pre-registered credentials the statement is only used to show the application.
        None if client.is_some() => Some(SecretSource::Env(STATEMENT_ENV)),
        None => {
            problems.push(format!(
                "{key}.software_statement_file: missing: name the software statement file downloaded from the TVE Dashboard{}",
                if from_env { format!(", or set {STATEMENT_ENV}") } else { String::new() }
            ));
            None
        }
    };
    Some((software_statement?, client))
}

fn validate_adobe(raw: RawAdobe, problems: &mut Vec<String>) -> Option<AdobeConfig> {
    let dcr_url = validate_url("adobe.dcr_url", raw.dcr_url, DEFAULT_DCR_URL, problems);
    let cmu_url = validate_url("adobe.cmu_url", raw.cmu_url, DEFAULT_CMU_URL, problems);
    let esm_url = validate_url("adobe.esm_url", raw.esm_url, DEFAULT_ESM_URL, problems);
    let zone = |key: &str, value: Option<String>, default: &str, problems: &mut Vec<String>| {
        let name = value.unwrap_or_else(|| default.to_owned());
        let found = time_zone(&name);
        if found.is_none() {
            problems.push(format!(
                "{key}: `{name}` is not a known time zone: use an IANA name such as `UTC` or `America/Los_Angeles`"
            ));
        }
        found
    };
    let time_zone = zone("adobe.time_zone", raw.time_zone, "UTC", problems);
    let esm_time_zone = zone(
        "adobe.esm_time_zone",
        raw.esm_time_zone,
        DEFAULT_ESM_TIME_ZONE,
        problems,
    );
    let max_concurrent_requests = raw.max_concurrent_requests.unwrap_or(2);
    if max_concurrent_requests == 0 {
        problems.push("adobe.max_concurrent_requests: 0 would never poll: remove the key (default 2) or set 1 or more".into());
    }
    let proxy_url = match raw.proxy_url {
        None => Some(None),
        Some(text) => match Url::parse(&text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https" | "socks5") && url.host().is_some() =>
            {
                Some(Some(url))
            }
            _ => {
                problems.push(format!(
                    "adobe.proxy_url: `{text}` is not a proxy URL: write it in full, e.g. `http://proxy.internal:3128`"
                ));
                None
            }
        },
    };
    if let Some(file) = &raw.ca_file
        && !file.is_file()
    {
        problems.push(format!(
            "adobe.ca_file: {} is not a readable file: name a PEM file of CA certificates, or remove the key",
            file.display()
        ));
    }
    let request_timeout = match raw.request_timeout.as_deref() {
        None => Some(crate::outgoing::REQUEST_TIMEOUT),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                problems.push(format!(
                    "adobe.request_timeout: `{text}` is shorter than 1s: no answer would arrive in time; remove the key (default 30s) or set e.g. `60s`"
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "adobe.request_timeout: `{text}` is not a duration ({e}): write e.g. `30s` or `2m`"
                ));
                None
            }
        },
    };
    let max_answer_size = match raw.max_answer_size {
        None => Some(DEFAULT_MAX_ANSWER_SIZE),
        Some(raw) => match parse_size(&raw) {
            Ok(n) if n >= 1024 => Some(n),
            Ok(n) => {
                problems.push(format!(
                    "adobe.max_answer_size: {n} bytes would refuse every report: remove the key (default 128MiB) or set e.g. `256MiB`"
                ));
                None
            }
            Err(text) => {
                problems.push(format!(
                    "adobe.max_answer_size: `{text}` is not a size: write bytes, or a number with B, KiB, MiB or GiB, e.g. `256MiB`"
                ));
                None
            }
        },
    };
    Some(AdobeConfig {
        request_timeout: request_timeout?,
        max_answer_size: max_answer_size?,
        max_concurrent_requests,
        proxy_url: proxy_url?,
        ca_file: raw.ca_file,
        dcr_url: dcr_url?,
        cmu_url: cmu_url?,
        esm_url: esm_url?,
        time_zone: time_zone?,
        esm_time_zone: esm_time_zone?,
    })
}

/// Bytes of a size written as a number or with a unit (`B`, `KiB`, `MiB`,
/// `GiB`, or `KB`, `MB`, `GB` in powers of 1000); the text when it is not one.
fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let text = match raw {
        RawSize::Bytes(n) => return Ok(*n),
        RawSize::Text(text) => text.trim(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(text.to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| text.to_owned())
}

/// The IANA time zone `name`. UTC is answered without the system's time
/// zone database, whose first lookup reads every directory of it (a few ms).
pub fn time_zone(name: &str) -> Option<TimeZone> {
    if name == "UTC" {
        return Some(TimeZone::UTC);
    }
    TimeZone::get(name).ok()
}

/// How often a report is polled by default: as often as its data changes,
/// and no more, since polling faster only burns requests.
///
/// CMU documents its recompute schedule (reference §7). ESM documents none:
/// its `Last-Modified` says when each answer was computed, and finer data is
/// refreshed sooner than coarse. Minute data is meant for a dashboard that
/// "calls the API every minute"; a finished hour, day or month is fetched a
/// few times per bucket, so it shows soon after Adobe computes it without
/// asking again for values that cannot have moved.
pub fn default_interval(api: ReportApi, path: &ReportPath) -> Duration {
    const HOUR: u64 = 3600;
    if api == ReportApi::Esm {
        return Duration::from_secs(match path.granularity() {
            Granularity::Minute => 60,
            Granularity::Hour => 15 * 60,
            Granularity::Day | Granularity::Total => HOUR,
            Granularity::Month | Granularity::Year => 6 * HOUR,
        });
    }
    if LEVEL_DIMENSIONS.iter().any(|d| path.contains(d)) {
        return Duration::from_secs(24 * HOUR);
    }
    Duration::from_secs(match path.granularity() {
        Granularity::Year | Granularity::Month => 48 * HOUR,
        Granularity::Day => 3 * HOUR,
        Granularity::Hour | Granularity::Total => HOUR,
        Granularity::Minute => 60,
    })
}

/// A failing report keeps its last good values for this many intervals by default.
pub const DEFAULT_MAX_AGE_INTERVALS: u32 = 3;

/// Parses `dimension=value` or `dimension!=value`.
fn parse_filter(text: &str) -> Result<Filter, String> {
    let (dimension, value, negated) = match text.split_once("!=") {
        Some((d, v)) => (d, v, true),
        None => match text.split_once('=') {
            Some((d, v)) => (d, v, false),
            None => {
                return Err(format!(
                    "`{text}` is not a filter: write `dimension=value` or `dimension!=value`, e.g. `mvpd!=Comcast_SSO`"
                ));
            }
        },
    };
    let (dimension, value) = (dimension.trim(), value.trim());
    let named = dimension.starts_with(|c: char| c.is_ascii_lowercase())
        && dimension
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !named {
        return Err(format!(
            "`{text}`: `{dimension}` is not a dimension name, e.g. `mvpd`"
        ));
    }
    if crate::report::catalog::is_time_dimension(dimension) {
        return Err(format!(
            "`{text}`: time dimensions cannot be filtered (Adobe answers 400); the exporter chooses the time window itself"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "`{text}` has no value: write e.g. `{dimension}=value`"
        ));
    }
    Ok(Filter {
        dimension: dimension.to_owned(),
        value: value.to_owned(),
        negated,
    })
}

/// A static label must be a legal, unreserved name that no series already uses.
fn check_static_label(name: &str, path: Option<&ReportPath>) -> Result<(), String> {
    let legal = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__");
    if !legal {
        return Err("not a label name: use letters, digits and underscores, not starting with a digit or `__`".into());
    }
    let taken = crate::names::RESERVED_LABELS.contains(&name)
        || path.is_some_and(|p| {
            p.segments()
                .iter()
                .any(|d| crate::names::label_name(d) == name)
        });
    if taken {
        return Err(
            "the exporter already uses this label on the report's series: pick another name".into(),
        );
    }
    Ok(())
}

fn validate_report(
    i: usize,
    raw: RawReport,
    names: &mut HashSet<String>,
    (accounts, listed_names): (&[AccountConfig], &[String]),
    problems: &mut Vec<String>,
) -> Option<ReportConfig> {
    let key = |field: &str| format!("reports[{i}].{field}");
    let before = problems.len();
    let api = match raw.api.as_deref() {
        None => ReportApi::Cmu,
        Some(text) => ReportApi::parse(text).unwrap_or_else(|| {
            problems.push(format!(
                "{}: `{text}` is not a report API: write `cmu` (default, Concurrency Monitoring) or `esm` (Entitlement Service Monitoring)",
                key("api")
            ));
            ReportApi::Cmu
        }),
    };
    let example_path = match api {
        ReportApi::Cmu => "tenant/year/month/day",
        ReportApi::Esm => "media-company/year/month/day/proxy/mvpd",
    };
    let listed = !listed_names.is_empty();
    let account = match (&raw.account, listed) {
        (None, false) => None,
        (Some(name), false) => {
            problems.push(format!(
                "{}: `{name}` names an account, but no `accounts:` are listed: remove the key, or list the accounts (README: Several accounts)",
                key("account")
            ));
            None
        }
        (None, true) => {
            let names: Vec<&str> = accounts.iter().filter_map(AccountConfig::label).collect();
            problems.push(format!(
                "{}: missing: with `accounts:` listed, each report names the account that polls it, one of {}",
                key("account"),
                names.join(", ")
            ));
            None
        }
        (Some(name), true) => match accounts.iter().find(|a| a.label() == Some(name.as_str())) {
            Some(a) => a.name.clone(),
            // Listed but refused: its own problem already says why.
            None if listed_names.contains(name) => None,
            None => {
                let names: Vec<&str> = accounts.iter().filter_map(AccountConfig::label).collect();
                problems.push(format!(
                    "{}: `{name}` is not a listed account: use one of {}",
                    key("account"),
                    names.join(", ")
                ));
                None
            }
        },
    };
    let name = ReportName::parse(&raw.name)
        .map_err(|e| problems.push(format!("{}: {e}", key("name"))))
        .ok();
    if !names.insert(raw.name.clone()) {
        problems.push(format!(
            "{}: `{}` is used by an earlier report: give each report its own name",
            key("name"),
            raw.name
        ));
    }
    let path = ReportPath::parse(&raw.path)
        .map_err(|e| problems.push(format!("{}: `{}`: {e}", key("path"), raw.path)))
        .ok();
    if path.as_ref().is_some_and(ReportPath::is_root) {
        problems.push(format!(
            "{}: empty: name the dimensions to group by, e.g. `{example_path}`",
            key("path")
        ));
    }
    let interval = match raw.interval.as_deref() {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                problems.push(format!(
                    "{}: `{text}` is shorter than 1s: poll at most once a second",
                    key("interval")
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "{}: `{text}` is not a duration ({e}): write e.g. `1h`, `30m` or `3h 30m`",
                    key("interval")
                ));
                None
            }
        },
    };
    let bucket = match raw.bucket.as_deref() {
        None | Some("complete") => BucketChoice::Complete,
        Some("partial") => BucketChoice::Partial,
        Some(other) => {
            problems.push(format!(
                "{}: `{other}` is not a bucket choice: write `complete` (default) or `partial`",
                key("bucket")
            ));
            BucketChoice::Complete
        }
    };
    let filters: Vec<Filter> = raw
        .filters
        .iter()
        .filter_map(|f| {
            parse_filter(f)
                .map_err(|e| problems.push(format!("{}: {e}", key("filters"))))
                .ok()
        })
        .collect();
    for metric in &raw.metrics {
        let ok = !metric.is_empty()
            && metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            problems.push(format!(
                "{}: `{metric}` is not a valid {api} metric name: e.g. `{}`",
                key("metrics"),
                match api {
                    ReportApi::Cmu => "active-users",
                    ReportApi::Esm => "authz-attempts",
                }
            ));
        }
    }
    let mut labels = Vec::new();
    for (name, value) in &raw.labels {
        match check_static_label(name, path.as_ref()) {
            Ok(()) => labels.push((name.clone(), value.clone())),
            Err(e) => problems.push(format!("{}: `{name}`: {e}", key("labels"))),
        }
    }
    if raw.max_series == Some(0) {
        problems.push(format!(
            "{}: 0 would export nothing: remove the key or set e.g. `max_series: 50000`",
            key("max_series")
        ));
    }
    let max_age = match raw.max_age.as_deref() {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!(
                    "{}: `{text}` is not a duration ({e}): write e.g. `3h`",
                    key("max_age")
                ));
                None
            }
        },
    };
    let effective_interval = interval.or_else(|| path.as_ref().map(|p| default_interval(api, p)));
    if let (Some(age), Some(every)) = (max_age, effective_interval)
        && age < every
    {
        problems.push(format!(
            "{}: `{}` is shorter than the interval ({}): values would vanish between two good polls; use at least the interval",
            key("max_age"),
            humantime::format_duration(age),
            humantime::format_duration(every)
        ));
    }
    let limit = raw.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        problems.push(format!(
            "{}: 0 rows would return nothing: remove the key or set e.g. `limit: 10000`",
            key("limit")
        ));
    }
    if problems.len() > before {
        return None;
    }
    let path = path?;
    let interval = interval.unwrap_or_else(|| default_interval(api, &path));
    let max_age = max_age.unwrap_or(interval * DEFAULT_MAX_AGE_INTERVALS);
    Some(ReportConfig {
        name: name?,
        api,
        account,
        interval,
        path,
        bucket,
        limit,
        filters,
        metrics: raw.metrics,
        labels,
        max_series: raw.max_series,
        max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
adobe:
  software_statement_file: /etc/cmu-exporter/software-statement.jwt
state_dir: /var/lib/cmu-exporter
reports:
  - name: hourly_by_mvpd
    path: tenant/year/month/day/hour/mvpd
  - name: monthly_levels
    path: year/month/concurrency-level/tenant
  - name: daily
    path: /tenant/year/month/day/
    interval: 30m
    bucket: partial
";

    #[test]
    fn good_config_gets_defaults_from_the_recompute_schedule() {
        let c = Config::from_yaml(GOOD, "test").unwrap();
        assert_eq!(c.adobe.dcr_url.as_str(), "https://api.auth.adobe.com/");
        assert_eq!(c.adobe.cmu_url.as_str(), DEFAULT_CMU_URL);
        assert_eq!(c.reports[0].interval, Duration::from_secs(3600));
        assert_eq!(c.reports[1].interval, Duration::from_secs(86400));
        assert_eq!(c.reports[2].interval, Duration::from_secs(1800));
        assert_eq!(c.reports[2].path.to_string(), "tenant/year/month/day");
        assert_eq!(c.reports[2].bucket, BucketChoice::Partial);
        assert_eq!(c.reports[0].max_age, Duration::from_secs(3 * 3600));
        assert_eq!(c.adobe.max_concurrent_requests, 2);
    }

    #[test]
    fn report_options_are_validated() {
        let yaml = "
adobe:
  software_statement_file: /s.jwt
state_dir: /x
reports:
  - name: ok
    path: tenant/year/month/day/mvpd
    filters: [\"mvpd=DTV\", \"mvpd=Cox\", \"platform!=Roku\"]
    metrics: [active-users]
    labels: {team: tv}
    max_series: 100
    max_age: 12h
";
        let c = Config::from_yaml(yaml, "t").unwrap();
        let r = &c.reports[0];
        assert_eq!(
            r.filters[2],
            Filter {
                dimension: "platform".into(),
                value: "Roku".into(),
                negated: true
            }
        );
        assert_eq!(r.labels, vec![("team".into(), "tv".into())]);
        assert_eq!(
            (r.max_series, r.max_age),
            (Some(100), Duration::from_secs(12 * 3600))
        );
        let bad = yaml
            .replace("\"mvpd=DTV\"", "\"day=3\"")
            .replace("team: tv", "mvpd: x")
            .replace("max_age: 12h", "max_age: 1m");
        let err = Config::from_yaml(&bad, "t").unwrap_err().to_string();
        assert!(
            err.contains("reports[0].filters: `day=3`: time dimensions cannot be filtered"),
            "{err}"
        );
        assert!(
            err.contains("reports[0].labels: `mvpd`: the exporter already uses this label"),
            "{err}"
        );
        assert!(
            err.contains("reports[0].max_age: `1m` is shorter than the interval"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_names_key_value_and_fix() {
        let bad = "
adobe:
  cmu_url: mgmt.auth.adobe.com
  software_statement_file: /x.jwt
  time_zone: Mars/Olympus
  proxy_url: proxy:3128
  ca_file: /nonexistent/ca.pem
reports:
  - name: Hourly
    path: tenant/year/day
    interval: 5 parsecs
  - name: ok
    path: tenant/year
  - name: ok
    path: tenant/year
";
        let err = Config::from_yaml(bad, "test").unwrap_err();
        let text = err.to_string();
        for needle in [
            "adobe.cmu_url: `mgmt.auth.adobe.com` is not an http(s) URL",
            "adobe.time_zone: `Mars/Olympus`",
            "adobe.proxy_url: `proxy:3128` is not a proxy URL",
            "adobe.ca_file: /nonexistent/ca.pem is not a readable file",
            "state_dir: missing",
            "reports[0].name: `Hourly` is not a report name",
            "reports[0].path: `tenant/year/day`: time dimensions",
            "reports[0].interval: `5 parsecs` is not a duration",
            "reports[2].name: `ok` is used by an earlier report",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn unknown_keys_and_empty_files_are_explained() {
        let err = Config::from_yaml("state_dir: /x\nreprots: []\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `reprots`"), "{err}");
        let err = Config::from_yaml("  \n", "f.yaml").unwrap_err().to_string();
        assert!(err.contains("f.yaml is empty"), "{err}");
    }

    #[test]
    fn several_accounts_each_with_their_reports() {
        let yaml = "
adobe:
  dcr_url: https://api.auth.adobe.com
  cmu_url: https://mgmt.auth.adobe.com/cmu/v2
accounts:
  - name: acme
    software_statement_file: /etc/cmu-exporter/acme.jwt
  - name: globex
    software_statement_file: /etc/cmu-exporter/globex.jwt
    client_id_file: /etc/cmu-exporter/globex.id
    client_secret_file: /etc/cmu-exporter/globex.secret
state_dir: /var/lib/cmu-exporter
reports:
  - name: acme_hourly
    account: acme
    path: tenant/year/month/day/hour/mvpd
  - name: globex_daily
    account: globex
    path: tenant/year/month/day
";
        let c = Config::from_yaml(yaml, "t").unwrap();
        let names: Vec<_> = c.accounts.iter().map(|a| a.label()).collect();
        assert_eq!(names, [Some("acme"), Some("globex")]);
        assert!(c.accounts[1].client.is_some());
        assert_eq!(c.reports[0].account.as_ref().unwrap().as_str(), "acme");
        assert_eq!(
            c.accounts[0].state_dir(&c.state_dir),
            PathBuf::from("/var/lib/cmu-exporter/accounts/acme")
        );
        let single = Config::from_yaml(GOOD, "t").unwrap();
        assert_eq!(single.accounts.len(), 1);
        assert_eq!(single.accounts[0].label(), None);
        assert_eq!(
            single.accounts[0].state_dir(&single.state_dir),
            single.state_dir
        );

        let bad = yaml
            .replace("    account: globex\n", "")
            .replace("account: acme", "account: initech")
            .replace("- name: globex", "- name: Globex")
            .replace(
                "  cmu_url:",
                "  software_statement_file: /x.jwt\n  cmu_url:",
            );
        let err = Config::from_yaml(&bad, "t").unwrap_err().to_string();
        for needle in [
            "adobe.software_statement_file: set while `accounts:` is listed",
            "accounts[1].name: `Globex` is not an account name",
            "reports[0].account: `initech` is not a listed account: use one of acme",
            "reports[1].account: missing: with `accounts:` listed",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        let stray = GOOD.replace(
            "  - name: hourly_by_mvpd\n",
            "  - name: hourly_by_mvpd\n    account: acme\n",
        );
        let err = Config::from_yaml(&stray, "t").unwrap_err().to_string();
        assert!(
            err.contains(
                "reports[0].account: `acme` names an account, but no `accounts:` are listed"
            ),
            "{err}"
        );
    }
}
