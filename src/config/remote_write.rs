//! The `remote_write:` section: the stores every complete bucket is pushed
//! to. Its keys are Prometheus's own (`url`, `name`, `remote_timeout`,
//! `headers`, `basic_auth`, `authorization`, `sigv4`, `tls_config`), so a user pastes
//! what their Prometheus or agent already has; `external_labels`, `max_gap`
//! and `self_metrics_interval` are ours. Secrets come from files only.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

/// Default timeout of one push.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest gap filled from Adobe after an outage.
pub const DEFAULT_MAX_GAP: Duration = Duration::from_secs(24 * 3600);
/// Default pace of the self-metrics' push.
pub const DEFAULT_SELF_METRICS_INTERVAL: Duration = Duration::from_secs(60);
/// The `job` label pushed series carry unless `external_labels` sets one:
/// the one the shipped scrape configuration and ServiceMonitor give.
pub const DEFAULT_JOB: &str = "cmu-exporter";

/// Headers the exporter sets itself, refused in `headers`.
const RESERVED_HEADERS: [&str; 5] = [
    "authorization",
    "content-encoding",
    "content-type",
    "user-agent",
    "x-prometheus-remote-write-version",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteWrite {
    url: Option<String>,
    name: Option<String>,
    remote_timeout: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    sigv4: Option<RawSigV4>,
    tls_config: Option<RawTls>,
    external_labels: Option<BTreeMap<String, String>>,
    max_gap: Option<String>,
    self_metrics_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: Option<String>,
    password_file: Option<PathBuf>,
    /// Refused (secrets come from files), never printed.
    password: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    #[serde(rename = "type")]
    kind: Option<String>,
    credentials_file: Option<PathBuf>,
    /// Refused (secrets come from files), never printed.
    credentials: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigV4 {
    region: Option<String>,
    access_key: Option<String>,
    secret_key_file: Option<PathBuf>,
    /// Refused (secrets come from files or the environment), never printed.
    secret_key: Option<serde::de::IgnoredAny>,
    profile: Option<String>,
    role_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
}

/// One store pushed to.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    /// `[a-z0-9_]+`, unique: the `remote` label, the cursor file's name,
    /// and what `backfill --remote-write NAME` takes.
    pub name: String,
    pub url: Url,
    pub remote_timeout: Duration,
    /// Extra headers (`X-Scope-OrgID`...), in the file's order.
    pub headers: Vec<(String, String)>,
    pub auth: Option<RemoteAuth>,
    pub tls: RemoteTls,
    /// Labels every pushed series carries, sorted by name; `job` and
    /// `instance` are added at start when not given (see [`Self::labels`]).
    pub external_labels: Vec<(String, String)>,
    /// The longest gap filled from Adobe; older buckets are left to `backfill`.
    pub max_gap: Duration,
    /// How often the self-metrics are pushed (zero: never).
    pub self_metrics_interval: Duration,
}

/// How a push authenticates; the secret stays in its file until sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAuth {
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// `Authorization: <type> <credentials>` (type `Bearer` by default).
    Authorization {
        kind: String,
        credentials_file: PathBuf,
    },
    /// AWS Signature Version 4 (Amazon Managed Prometheus).
    SigV4(SigV4Config),
}

/// Prometheus's `sigv4:` keys; the secret from `secret_key_file` or the
/// environment, never the configuration (see `push::sigv4`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigV4Config {
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub profile: Option<String>,
    pub role_arn: Option<String>,
}

/// TLS towards the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

impl RemoteWriteConfig {
    /// The labels pushed series carry: `external_labels`, with `job` and
    /// `instance` as a scrape of this process would set them when not
    /// given (`instance`: this host and the first listening port).
    pub fn labels(&self, instance: &str) -> Vec<(String, String)> {
        let mut labels = self.external_labels.clone();
        for (name, value) in [("job", DEFAULT_JOB), ("instance", instance)] {
            if !labels.iter().any(|(n, _)| n == name) {
                labels.push((name.to_owned(), value.to_owned()));
            }
        }
        labels.sort();
        labels
    }
}

impl RemoteWriteConfig {
    /// A remote of `url` alone, every other key at its default (`backfill
    /// --remote-write URL`).
    pub fn for_url(url: &str) -> Result<Self, super::ConfigError> {
        let raw = RawRemoteWrite {
            url: Some(url.to_owned()),
            name: None,
            remote_timeout: None,
            headers: BTreeMap::new(),
            basic_auth: None,
            authorization: None,
            sigv4: None,
            tls_config: None,
            external_labels: None,
            max_gap: None,
            self_metrics_interval: None,
        };
        let mut problems = Vec::new();
        let mut remotes = validate(vec![raw], &mut problems);
        match remotes.pop() {
            Some(remote) if problems.is_empty() => Ok(remote),
            _ => Err(super::ConfigError {
                problems: problems
                    .into_iter()
                    .map(|p| p.replacen("remote_write[0].url", "--remote-write", 1))
                    .collect(),
            }),
        }
    }

    /// What pushing to this remote does, in words; header values and
    /// secrets are not said, only where the secrets come from.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "remote_write {}: {} (timeout {}), every complete bucket at its end; gaps up to {} filled from Adobe\n",
            self.name,
            self.url,
            humantime::format_duration(self.remote_timeout),
            humantime::format_duration(self.max_gap),
        );
        let mut detail = Vec::new();
        match &self.auth {
            Some(RemoteAuth::Basic {
                username,
                password_file,
            }) => detail.push(format!(
                "basic auth as {username}, password from file {}",
                password_file.display()
            )),
            Some(RemoteAuth::Authorization {
                kind,
                credentials_file,
            }) => detail.push(format!(
                "{kind} credentials from file {}",
                credentials_file.display()
            )),
            Some(RemoteAuth::SigV4(sigv4)) => detail.push(format!(
                "signed with AWS SigV4{}, credentials from {}{}",
                sigv4
                    .region
                    .as_ref()
                    .map_or(String::new(), |r| format!(" for {r}")),
                match (&sigv4.access_key, &sigv4.secret_key_file, &sigv4.profile) {
                    (Some(key), Some(file), _) =>
                        format!("access key {key} and file {}", file.display()),
                    (Some(key), None, _) => format!("access key {key} and AWS_SECRET_ACCESS_KEY"),
                    (None, _, Some(profile)) => format!("profile {profile}"),
                    (None, _, None) =>
                        "the AWS chain (environment, shared files, web identity)".to_owned(),
                },
                sigv4
                    .role_arn
                    .as_ref()
                    .map_or(String::new(), |r| format!(", assuming {r}"))
            )),
            None => {}
        }
        if !self.headers.is_empty() {
            let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
            detail.push(format!("headers {}", names.join(", ")));
        }
        if let Some(ca) = &self.tls.ca_file {
            detail.push(format!("CA {}", ca.display()));
        }
        if let Some(cert) = &self.tls.cert_file {
            detail.push(format!("client certificate {}", cert.display()));
        }
        let labels: Vec<String> = self
            .labels("<host>:<port>")
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        detail.push(format!("labels {}", labels.join(", ")));
        if self.self_metrics_interval.is_zero() {
            detail.push("self-metrics not pushed".into());
        } else {
            detail.push(format!(
                "self-metrics every {}",
                humantime::format_duration(self.self_metrics_interval)
            ));
        }
        out.push_str(&format!("  {}\n", detail.join("; ")));
        out
    }
}

/// A name for a remote without one: its host (and port), as a label value.
fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("remote");
    let text = match url.port() {
        Some(port) => format!("{host}_{port}"),
        None => host.to_owned(),
    };
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn duration(
    key: &str,
    text: Option<String>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match text {
        None => default,
        Some(text) => match humantime::parse_duration(&text) {
            Ok(d) => d,
            Err(_) => {
                problems.push(format!(
                    "{key}: `{text}` is not a duration: write it as `30s`, `5m` or `24h`"
                ));
                default
            }
        },
    }
}

/// The `remote_write:` list, every problem said in `problems`.
pub(super) fn validate(
    raw: Vec<RawRemoteWrite>,
    problems: &mut Vec<String>,
) -> Vec<RemoteWriteConfig> {
    let mut remotes: Vec<RemoteWriteConfig> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let at = format!("remote_write[{i}]");
        let Some(url_text) = raw.url else {
            problems.push(format!(
                "{at}.url: missing: give the store's write endpoint, e.g. `http://prometheus:9090/api/v1/write`"
            ));
            continue;
        };
        let url = match Url::parse(&url_text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
            _ => {
                problems.push(format!(
                    "{at}.url: `{url_text}` is not an http(s) URL: write it in full, e.g. `http://prometheus:9090/api/v1/write`"
                ));
                continue;
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            problems.push(format!(
                "{at}.url: holds credentials: move them to `basic_auth` with `password_file`, so that no secret sits in the file"
            ));
        }
        let name = raw.name.unwrap_or_else(|| default_name(&url));
        if crate::config::ReportName::parse(&name).is_err() {
            problems.push(format!(
                "{at}.name: `{name}` is not a remote name: use lowercase letters, digits and underscores, e.g. `mimir`"
            ));
        }
        if remotes.iter().any(|r| r.name == name) {
            problems.push(format!(
                "{at}.name: `{name}` is already used by another remote: give each remote its own `name`"
            ));
        }
        let mut headers = Vec::new();
        for (header, value) in raw.headers {
            let lower = header.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                problems.push(format!(
                    "{at}.headers.{header}: set by the exporter itself: remove it (credentials go in `basic_auth` or `authorization`)"
                ));
            } else if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(&value).is_err()
            {
                problems.push(format!(
                    "{at}.headers.{header}: not a valid HTTP header name and value: use visible ASCII, e.g. `X-Scope-OrgID: tenant-1`"
                ));
            } else {
                headers.push((header, value));
            }
        }
        let sigv4 = match raw.sigv4 {
            None => None,
            Some(raw_sigv4) if raw_sigv4.secret_key.is_some() => {
                problems.push(format!(
                    "{at}.sigv4.secret_key: a secret in the configuration: put it in a file readable by the exporter only and name it with `secret_key_file`, or set AWS_SECRET_ACCESS_KEY"
                ));
                None
            }
            Some(raw_sigv4)
                if raw_sigv4.secret_key_file.is_some() && raw_sigv4.access_key.is_none() =>
            {
                problems.push(format!(
                    "{at}.sigv4.secret_key_file: needs `access_key`, the key the secret belongs to"
                ));
                None
            }
            Some(raw_sigv4) if raw_sigv4.access_key.is_some() && raw_sigv4.profile.is_some() => {
                problems.push(format!(
                    "{at}.sigv4: both `access_key` and `profile`: keep one source of credentials"
                ));
                None
            }
            Some(raw_sigv4) => Some(SigV4Config {
                region: raw_sigv4.region,
                access_key: raw_sigv4.access_key,
                secret_key_file: raw_sigv4.secret_key_file,
                profile: raw_sigv4.profile,
                role_arn: raw_sigv4.role_arn,
            }),
        };
        if sigv4.is_some() && (raw.basic_auth.is_some() || raw.authorization.is_some()) {
            problems.push(format!(
                "{at}: `sigv4` with `basic_auth` or `authorization`: keep the one the store expects (Amazon Managed Prometheus: sigv4)"
            ));
        }
        let auth = match (raw.basic_auth, raw.authorization) {
            _ if sigv4.is_some() => sigv4.map(RemoteAuth::SigV4),
            (Some(_), Some(_)) => {
                problems.push(format!(
                    "{at}: both `basic_auth` and `authorization`: keep the one the store expects"
                ));
                None
            }
            (Some(basic), None) if basic.password.is_some() => {
                problems.push(format!(
                    "{at}.basic_auth.password: a secret in the configuration: put it in a file readable by the exporter only and name it with `password_file`"
                ));
                None
            }
            (None, Some(authorization)) if authorization.credentials.is_some() => {
                problems.push(format!(
                    "{at}.authorization.credentials: a secret in the configuration: put it in a file readable by the exporter only and name it with `credentials_file`"
                ));
                None
            }
            (Some(basic), None) => match (basic.username, basic.password_file) {
                (Some(username), Some(password_file)) if !username.is_empty() => {
                    Some(RemoteAuth::Basic {
                        username,
                        password_file,
                    })
                }
                _ => {
                    problems.push(format!(
                        "{at}.basic_auth: needs `username` and `password_file` (the password is read from the file, never from the configuration)"
                    ));
                    None
                }
            },
            (None, Some(authorization)) => match authorization.credentials_file {
                Some(credentials_file) => {
                    let kind = authorization.kind.unwrap_or_else(|| "Bearer".to_owned());
                    if kind.is_empty()
                        || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    {
                        problems.push(format!(
                            "{at}.authorization.type: `{kind}` is not an authorization scheme: use e.g. `Bearer`"
                        ));
                    }
                    Some(RemoteAuth::Authorization {
                        kind,
                        credentials_file,
                    })
                }
                None => {
                    problems.push(format!(
                        "{at}.authorization: needs `credentials_file` (the token is read from the file, never from the configuration)"
                    ));
                    None
                }
            },
            (None, None) => None,
        };
        let tls = raw
            .tls_config
            .map_or_else(RemoteTls::default, |t| RemoteTls {
                ca_file: t.ca_file,
                cert_file: t.cert_file,
                key_file: t.key_file,
                server_name: t.server_name,
            });
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            problems.push(format!(
                "{at}.tls_config: `cert_file` and `key_file` go together: give both for a client certificate, or neither"
            ));
        }
        let mut external_labels = Vec::new();
        for (label, value) in raw.external_labels.unwrap_or_default() {
            let valid = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !label.starts_with("__");
            if !valid {
                problems.push(format!(
                    "{at}.external_labels.{label}: not a label name: use letters, digits and underscores, not starting with a digit or `__`"
                ));
            } else if value.is_empty() {
                problems.push(format!(
                    "{at}.external_labels.{label}: empty: an empty value is no label in Prometheus; remove the key or give a value"
                ));
            } else {
                external_labels.push((label, value));
            }
        }
        let remote_timeout = duration(
            &format!("{at}.remote_timeout"),
            raw.remote_timeout,
            DEFAULT_REMOTE_TIMEOUT,
            problems,
        );
        if remote_timeout.is_zero() {
            problems.push(format!(
                "{at}.remote_timeout: 0 would fail every push: remove the key (default 30s) or give a positive duration"
            ));
        }
        let max_gap = duration(
            &format!("{at}.max_gap"),
            raw.max_gap,
            DEFAULT_MAX_GAP,
            problems,
        );
        let self_metrics_interval = duration(
            &format!("{at}.self_metrics_interval"),
            raw.self_metrics_interval,
            DEFAULT_SELF_METRICS_INTERVAL,
            problems,
        );
        if !self_metrics_interval.is_zero() && self_metrics_interval < Duration::from_secs(1) {
            problems.push(format!(
                "{at}.self_metrics_interval: under a second: use `60s` (the default), or `0s` to push no self-metrics"
            ));
        }
        remotes.push(RemoteWriteConfig {
            name,
            url,
            remote_timeout,
            headers,
            auth,
            tls,
            external_labels,
            max_gap,
            self_metrics_interval,
        });
    }
    remotes
}
