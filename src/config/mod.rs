//! The YAML configuration, validated once at the edge.
//!
//! The raw serde types (`raw`) mirror the file; [`Config::from_yaml`]
//! turns them into the types here, which cannot hold a bad value
//! ([`ReportName`], [`ReportPath`], URLs, intervals), one section at a time
//! (`adobe`, `accounts`, `reports`, `remote_write`; `thresholds` in
//! `crate::thresholds`).
//! Every problem is reported at once, each naming the key, the value and
//! the fix. [`Config::explain`] says what a valid one will do.

mod accounts;
mod adobe;
mod explain;
mod raw;
mod remote_write;
mod reports;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::tz::TimeZone;
use reqwest::Url;
use secrecy::SecretString;

use crate::report::{BucketChoice, Filter, PerApi, ReportApi, ReportPath};
pub use remote_write::{
    DEFAULT_JOB, DEFAULT_MAX_GAP, RemoteAuth, RemoteTls, RemoteWriteConfig, SigV4Config,
};

/// Adobe's production DCR host.
pub const DEFAULT_DCR_URL: &str = "https://api.auth.adobe.com";
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
/// Default timeout of one request to Adobe, answer included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The stores each complete bucket is pushed to (`remote_write:`).
    pub remote_write: Vec<RemoteWriteConfig>,
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
    /// Base URL of each report API (`adobe.cmu_url`, `adobe.esm_url`).
    pub urls: PerApi<Url>,
    /// Time zone of each API's buckets (`adobe.time_zone`: CMU, undocumented
    /// by Adobe, UTC by default; `adobe.esm_time_zone`: Pacific by default).
    pub time_zones: PerApi<TimeZone>,
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
    /// The time zone of `api`'s buckets.
    pub fn time_zone_of(&self, api: ReportApi) -> &TimeZone {
        &self.time_zones[api]
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
            return Err(SecretSourceError::Empty(self.origin()));
        }
        Ok(SecretString::from(value))
    }

    /// Where the value comes from, for messages.
    pub fn origin(&self) -> String {
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

/// Which of the single account's secrets the environment holds (names
/// only: the values are read when used). Read once, at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsInEnv {
    pub statement: bool,
    pub client_id: bool,
    pub client_secret: bool,
}

impl SecretsInEnv {
    /// What this process's environment holds.
    pub fn of_process() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some();
        Self {
            statement: set(STATEMENT_ENV),
            client_id: set(CLIENT_ID_ENV),
            client_secret: set(CLIENT_SECRET_ENV),
        }
    }
}

/// Every problem found in a configuration, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    pub(super) fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

/// The IANA time zone `name`. UTC is answered without the system's time
/// zone database, whose first lookup reads every directory of it (a few ms).
pub fn time_zone(name: &str) -> Option<TimeZone> {
    if name == "UTC" {
        return Some(TimeZone::UTC);
    }
    TimeZone::get(name).ok()
}

/// A failing report keeps its last good values for this many intervals by
/// default, after its longest bucket.
pub const DEFAULT_MAX_AGE_INTERVALS: u32 = 3;

impl Config {
    /// Reads and validates a configuration file, with the secrets the
    /// process environment holds: the edge where the environment is read.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::one(format!(
                "cannot read config file {}: {e}: check the path given to --config.file",
                path.display()
            ))
        })?;
        Self::from_yaml_in(
            &text,
            &path.display().to_string(),
            &SecretsInEnv::of_process(),
        )
    }

    /// Validates configuration text; `origin` names it in messages. A
    /// function of the text alone: no secret is taken from the environment.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_in(text, origin, &SecretsInEnv::default())
    }

    /// Validates configuration text, the single account's secrets missing
    /// from it taken from the environment variables `env` says are set.
    pub fn from_yaml_in(text: &str, origin: &str, env: &SecretsInEnv) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Err(ConfigError::one(format!(
                "{origin} is empty: it needs at least `reports:` with one report (see docs/configuration.md)"
            )));
        }
        let raw: raw::RawConfig = serde_saphyr::from_str(text)
            .map_err(|e| ConfigError::one(format!("{origin} is not a valid configuration: {e}")))?;
        let mut problems = Vec::new();
        let mut raw_adobe = raw.adobe;
        let single = raw::RawAccount {
            name: String::new(),
            software_statement_file: raw_adobe.software_statement_file.take(),
            client_id_file: raw_adobe.client_id_file.take(),
            client_secret_file: raw_adobe.client_secret_file.take(),
        };
        let listed: Vec<String> = raw.accounts.iter().map(|a| a.name.clone()).collect();
        let accounts = accounts::validate(single, raw.accounts, env, &mut problems);
        let adobe = adobe::validate(raw_adobe, &mut problems);
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
                reports::validate(i, r, &mut names, (&accounts, &listed), &mut problems)
            })
            .collect();
        let thresholds =
            crate::thresholds::validate(raw.thresholds, raw.stream_limits, &mut problems);
        let remote_write = remote_write::validate(raw.remote_write, &mut problems);
        match adobe {
            Some(adobe) if problems.is_empty() => Ok(Self {
                adobe,
                accounts,
                state_dir,
                reports,
                thresholds,
                remote_write,
            }),
            _ => {
                if problems.is_empty() {
                    problems.push("adobe: not usable: check every key of the section".into());
                }
                Err(ConfigError { problems })
            }
        }
    }
}

#[cfg(test)]
mod tests;
