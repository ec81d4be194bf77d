//! Client of the CMU report API (reference §6), and [`AuthorizedClient`]:
//! the one way to GET a report with the shared token (poller, discovery).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::civil::DateTime;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::credentials::{Credentials, CredentialsError};
use crate::outgoing::{exchange, first_line};
use crate::report::ReportPath;
use crate::retry::{RetryPolicy, Verdict};
use crate::telemetry::{Api, Telemetry};

/// What to ask a report for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub limit: Option<u32>,
    /// Metrics to return (all when empty).
    pub metrics: Vec<String>,
    /// `dim=v` or `dim!=v`, repeated for IN / NOT IN.
    pub filters: Vec<Filter>,
}

/// One filter of a report query: `dimension=value`, or `dimension!=value` when negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: String,
    pub value: String,
    pub negated: bool,
}

/// Why a report could not be fetched. Never carries the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CmuError {
    #[error("CMU refused the access token (HTTP 401)")]
    Unauthorized,
    #[error(
        "CMU has no report at /{path} (HTTP 404: no pre-aggregation for this path): fix the path; `cmu-exporter discover` lists the valid ones"
    )]
    NotFound { path: String },
    #[error("CMU refused the query (HTTP 400): {reason}")]
    BadRequest { reason: String },
    #[error("CMU throttled the exporter (HTTP 429)")]
    Throttled {
        retry_after: Option<std::time::Duration>,
    },
    #[error("CMU answered HTTP {status}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Status {
        status: u16,
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("CMU unreachable: {0}")]
    Transport(String),
}

impl CmuError {
    /// Whether asking again soon may succeed: timeouts, connection errors,
    /// 5xx and 429. Never other 4xx (401 has its own rule: renew the token).
    pub fn is_transient(&self) -> bool {
        match self {
            CmuError::Transport(_) | CmuError::Throttled { .. } => true,
            CmuError::Status { status, .. } => *status >= 500,
            CmuError::Unauthorized | CmuError::NotFound { .. } | CmuError::BadRequest { .. } => {
                false
            }
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CmuError::Throttled { retry_after } | CmuError::Status { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// Attempts of one CMU request when the failures are transient.
pub const ATTEMPTS: u32 = 3;

/// How one request of a report polled every `interval` is retried: first
/// after a tenth of the interval (between 100 ms and 1 s, so retries stay
/// well inside it), doubling up to ten times that, [`ATTEMPTS`] in all.
pub fn request_retry(interval: Duration) -> RetryPolicy {
    let first = (interval / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
    RetryPolicy {
        first,
        cap: first * 10,
        attempts: ATTEMPTS,
    }
}

/// Longest `Retry-After` waited out inside a poll; a longer one ends the
/// poll and the poller comes back after it.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Talks to `{cmu}/<path>` with a bearer token.
#[derive(Debug, Clone)]
pub struct CmuClient {
    http: reqwest::Client,
    base: Url,
    telemetry: Telemetry,
    clock: Clock,
}

fn iso(t: DateTime) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

impl CmuClient {
    pub fn new(http: reqwest::Client, base: Url, telemetry: Telemetry, clock: Clock) -> Self {
        Self {
            http,
            base,
            telemetry,
            clock,
        }
    }

    /// The URL of `path` with `query`: the path is appended to the configured base.
    pub fn url(&self, path: &ReportPath, query: &ReportQuery) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        let suffix = path.to_string();
        url.set_path(&if suffix.is_empty() {
            prefix
        } else {
            format!("{prefix}/{suffix}")
        });
        url.set_query(None);
        {
            let mut pairs = url.query_pairs_mut();
            for filter in &query.filters {
                let key = if filter.negated {
                    format!("{}!", filter.dimension)
                } else {
                    filter.dimension.clone()
                };
                pairs.append_pair(&key, &filter.value);
            }
            if let Some(start) = query.start {
                pairs.append_pair("start", &iso(start));
            }
            if let Some(end) = query.end {
                pairs.append_pair("end", &iso(end));
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            for metric in &query.metrics {
                pairs.append_pair("metrics", metric);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    /// GETs a report; `endpoint` labels the request in self-metrics.
    ///
    /// Transient failures are retried as `retry` says, or after the
    /// server's `Retry-After` when it asks for longer (up to
    /// [`MAX_RETRY_AFTER`]; a longer one ends the request).
    pub async fn get(
        &self,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
        retry: RetryPolicy,
    ) -> Result<Bytes, CmuError> {
        let judge = |e: &CmuError| match e.retry_after() {
            _ if !e.is_transient() => Verdict::GiveUp,
            Some(wait) if wait > MAX_RETRY_AFTER => Verdict::GiveUp,
            retry_after => Verdict::Retry { retry_after },
        };
        let wait = |attempt: u32, pause: Duration, e: &CmuError| {
            tracing::debug!(report = %endpoint, error = %e, attempt, pause_ms = pause.as_millis() as u64, "CMU request failed; retrying");
            self.clock.sleep(pause)
        };
        retry
            .run(
                || self.get_once(endpoint, path, url.clone(), token),
                judge,
                wait,
            )
            .await
    }

    async fn get_once(
        &self,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
    ) -> Result<Bytes, CmuError> {
        let request = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("accept", "application/json");
        let answer = exchange(&self.telemetry, Api::Cmu, endpoint, request)
            .await
            .map_err(|e| CmuError::Transport(e.reason))?;
        let body = answer.body;
        match answer.status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(CmuError::Unauthorized),
            StatusCode::NOT_FOUND => Err(CmuError::NotFound {
                path: path.to_string(),
            }),
            StatusCode::BAD_REQUEST => Err(CmuError::BadRequest {
                reason: first_line(&body),
            }),
            StatusCode::TOO_MANY_REQUESTS => Err(CmuError::Throttled {
                retry_after: answer.retry_after,
            }),
            s => Err(CmuError::Status {
                status: s.as_u16(),
                reason: first_line(&body),
                retry_after: answer.retry_after,
            }),
        }
    }
}

/// Why an authorized GET failed: no token could be had, or CMU refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Cmu(#[from] CmuError),
}

impl FetchError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Cmu(e) => e.retry_after(),
            FetchError::Credentials(_) => None,
        }
    }

    /// Whether only a person can fix it (retrying at a fast pace will not help).
    pub fn needs_person(&self) -> bool {
        matches!(
            self,
            FetchError::Credentials(CredentialsError::NeedsPerson(_))
                | FetchError::Cmu(CmuError::NotFound { .. })
        )
    }
}

/// GETs reports with the shared access token: on 401 the token is
/// rejected, renewed once, and the request sent again.
#[derive(Debug, Clone)]
pub struct AuthorizedClient {
    pub cmu: CmuClient,
    pub credentials: Arc<Credentials>,
}

impl AuthorizedClient {
    /// The report at `path` for `query`; `endpoint` labels the requests in
    /// self-metrics, `retry` paces retries of transient failures.
    pub async fn get(
        &self,
        endpoint: &str,
        path: &ReportPath,
        query: &ReportQuery,
        retry: RetryPolicy,
    ) -> Result<Bytes, FetchError> {
        let url = self.cmu.url(path, query);
        let token = self.credentials.access_token().await?;
        match self
            .cmu
            .get(endpoint, path, url.clone(), &token, retry)
            .await
        {
            Err(CmuError::Unauthorized) => {
                self.credentials.reject(&token).await;
                let token = self.credentials.access_token().await?;
                Ok(self.cmu.get(endpoint, path, url, &token, retry).await?)
            }
            other => Ok(other?),
        }
    }
}
