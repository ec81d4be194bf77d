//! Client of the CMU report API (reference §6).

use std::time::{Duration, Instant};

use bytes::Bytes;
use jiff::civil::DateTime;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::http::{backoff, describe, retry_after};
use crate::report::ReportPath;
use crate::telemetry::{Api, Telemetry};

/// What to ask a report for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    pub start: Option<DateTime>,
    pub end: Option<DateTime>,
    pub limit: Option<u32>,
    /// Metrics to return (all when empty).
    pub metrics: Vec<String>,
    /// `(dimension, value, negated)`: `dim=v` or `dim!=v`, repeated for IN / NOT IN.
    pub filters: Vec<(String, String, bool)>,
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

/// The first line of an error body, short, for messages.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
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
            for (dimension, value, negated) in &query.filters {
                let key = if *negated {
                    format!("{dimension}!")
                } else {
                    dimension.clone()
                };
                pairs.append_pair(&key, value);
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
    /// Transient failures are retried up to [`ATTEMPTS`] times in all, after
    /// pauses that start at `first_pause` and double (with jitter) up to
    /// `10 * first_pause`, or after the server's `Retry-After` when it asks
    /// for longer (up to [`MAX_RETRY_AFTER`]).
    pub async fn get(
        &self,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
        first_pause: Duration,
    ) -> Result<Bytes, CmuError> {
        let mut attempt = 1;
        loop {
            match self.get_once(endpoint, path, url.clone(), token).await {
                Err(e)
                    if e.is_transient()
                        && attempt < ATTEMPTS
                        && e.retry_after().is_none_or(|w| w <= MAX_RETRY_AFTER) =>
                {
                    let pause = backoff(attempt, first_pause, first_pause * 10, e.retry_after());
                    tracing::debug!(report = %endpoint, error = %e, attempt, pause_ms = pause.as_millis() as u64, "CMU request failed; retrying");
                    self.clock.sleep(pause).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn get_once(
        &self,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
    ) -> Result<Bytes, CmuError> {
        let started = Instant::now();
        let request = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("accept", "application/json");
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.telemetry
                    .http_request(Api::Cmu, endpoint, None, started.elapsed());
                return Err(CmuError::Transport(describe(&e)));
            }
        };
        let status = response.status();
        let wait = retry_after(response.headers());
        let body = response.bytes().await;
        self.telemetry
            .http_request(Api::Cmu, endpoint, Some(status.as_u16()), started.elapsed());
        let body = body.map_err(|e| CmuError::Transport(describe(&e)))?;
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::UNAUTHORIZED => Err(CmuError::Unauthorized),
            StatusCode::NOT_FOUND => Err(CmuError::NotFound {
                path: path.to_string(),
            }),
            StatusCode::BAD_REQUEST => Err(CmuError::BadRequest {
                reason: first_line(&body),
            }),
            StatusCode::TOO_MANY_REQUESTS => Err(CmuError::Throttled { retry_after: wait }),
            s => Err(CmuError::Status {
                status: s.as_u16(),
                reason: first_line(&body),
                retry_after: wait,
            }),
        }
    }
}
