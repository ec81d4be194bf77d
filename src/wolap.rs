//! Client of Adobe's WOLAP report APIs, CMU and ESM (same query language,
//! same HAL+JSON, same token), and [`AuthorizedClient`]: the one way to GET
//! a report with the shared token (poller, discovery, backfill).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use jiff::civil::DateTime;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::credentials::{Credentials, CredentialsError};
use crate::outgoing::{ExchangeError, exchange, first_line};
use crate::report::{Filter, PerApi, ReportApi, ReportPath};
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

/// Why a report could not be fetched. Never carries the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{api} refused the access token (HTTP 401)")]
    Unauthorized { api: ReportApi },
    #[error(
        "{api} has no report at /{path} (HTTP 404: no pre-aggregation for this path): fix the path; `cmu-exporter discover{}` lists the valid ones",
        api.flag()
    )]
    NotFound { api: ReportApi, path: String },
    #[error("{api} refused the query (HTTP 400): {reason}")]
    BadRequest { api: ReportApi, reason: String },
    #[error("{api} throttled the exporter (HTTP 429)")]
    Throttled {
        api: ReportApi,
        retry_after: Option<std::time::Duration>,
    },
    #[error("{api} answered HTTP {status}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Status {
        api: ReportApi,
        status: u16,
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("{api} unreachable: {reason}")]
    Transport { api: ReportApi, reason: String },
    #[error(
        "{api} answer larger than {limit} bytes: reading stopped there; raise adobe.max_answer_size, or lower the report's limit or narrow it with filters"
    )]
    TooLarge { api: ReportApi, limit: u64 },
}

impl ApiError {
    /// Whether asking again soon may succeed: timeouts, connection errors,
    /// 5xx and 429. Never other 4xx (401 has its own rule: renew the token).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::Throttled { .. } => true,
            ApiError::Status { status, .. } => *status >= 500,
            ApiError::Unauthorized { .. }
            | ApiError::NotFound { .. }
            | ApiError::BadRequest { .. }
            | ApiError::TooLarge { .. } => false,
        }
    }

    /// Whether Adobe refused the query itself (404, 400, or another 4xx but
    /// 401, 408 and 429): asking the same again cannot succeed.
    pub fn is_refusal(&self) -> bool {
        match self {
            ApiError::NotFound { .. } | ApiError::BadRequest { .. } => true,
            ApiError::Status { status, .. } => (400..500).contains(status) && *status != 408,
            _ => false,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Throttled { retry_after, .. } | ApiError::Status { retry_after, .. } => {
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

/// A report as fetched: its body, and when Adobe says it was computed.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    /// The `Last-Modified` header, if the answer had a valid one.
    pub last_modified: Option<Timestamp>,
    /// Adobe's clock when it answered (the `Date` header), if valid.
    pub date: Option<Timestamp>,
    /// Our clock when the request that got this answer was sent, and when
    /// its answer was read: Adobe's data is as of a moment in between.
    pub asked_at: Timestamp,
    pub answered_at: Timestamp,
}

/// Talks to `{base}/<path>` of either report API with a bearer token.
#[derive(Debug, Clone)]
pub struct ReportClient {
    http: reqwest::Client,
    /// Where each report API lives (`adobe.cmu_url`, `adobe.esm_url`).
    bases: PerApi<Url>,
    /// Most bytes of an answer read (`adobe.max_answer_size`).
    max_answer: u64,
    telemetry: Telemetry,
    clock: Clock,
}

fn iso(t: DateTime) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

impl ReportClient {
    /// The client of both APIs as `adobe` configures them.
    pub fn new(
        http: reqwest::Client,
        adobe: &crate::config::AdobeConfig,
        telemetry: Telemetry,
        clock: Clock,
    ) -> Self {
        Self {
            http,
            bases: adobe.urls.clone(),
            max_answer: adobe.max_answer_size,
            telemetry,
            clock,
        }
    }

    /// The URL of `path` with `query`: the path is appended to `api`'s base.
    pub fn url(&self, api: ReportApi, path: &ReportPath, query: &ReportQuery) -> Url {
        let mut url = self.bases[api].clone();
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
        api: ReportApi,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
        retry: RetryPolicy,
    ) -> Result<Fetched, ApiError> {
        let judge = |e: &ApiError| match e.retry_after() {
            _ if !e.is_transient() => Verdict::GiveUp,
            Some(wait) if wait > MAX_RETRY_AFTER => Verdict::GiveUp,
            retry_after => Verdict::Retry { retry_after },
        };
        let wait = |attempt: u32, pause: Duration, e: &ApiError| {
            tracing::debug!(report = %endpoint, error = %e, attempt, pause_ms = pause.as_millis() as u64, "report request failed; retrying");
            self.clock.sleep(pause)
        };
        retry
            .run(
                || self.get_once(api, endpoint, path, url.clone(), token),
                judge,
                wait,
            )
            .await
    }

    async fn get_once(
        &self,
        api: ReportApi,
        endpoint: &str,
        path: &ReportPath,
        url: Url,
        token: &SecretString,
    ) -> Result<Fetched, ApiError> {
        let request = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .header("accept", "application/json");
        let asked_at = self.clock.now();
        let answer = exchange(
            &self.telemetry,
            Api::Report(api),
            endpoint,
            request,
            self.max_answer,
        )
        .await
        .map_err(|e| match e {
            ExchangeError::Unreachable { reason } => ApiError::Transport { api, reason },
            ExchangeError::TooLarge { limit } => ApiError::TooLarge { api, limit },
        })?;
        let body = answer.body;
        match answer.status {
            s if s.is_success() => Ok(Fetched {
                body,
                last_modified: answer.last_modified,
                date: answer.date,
                asked_at,
                answered_at: self.clock.now(),
            }),
            StatusCode::UNAUTHORIZED => Err(ApiError::Unauthorized { api }),
            StatusCode::NOT_FOUND => Err(ApiError::NotFound {
                api,
                path: path.to_string(),
            }),
            StatusCode::BAD_REQUEST => Err(ApiError::BadRequest {
                api,
                reason: first_line(&body),
            }),
            StatusCode::TOO_MANY_REQUESTS => Err(ApiError::Throttled {
                api,
                retry_after: answer.retry_after,
            }),
            s => Err(ApiError::Status {
                api,
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
    Api(#[from] ApiError),
}

impl FetchError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Api(e) => e.retry_after(),
            FetchError::Credentials(_) => None,
        }
    }

    /// Whether only a person can fix it (retrying at a fast pace will not
    /// help): the credentials need one, or Adobe refuses the query itself
    /// with a 4xx (a path it does not serve, a filter or metric it does not
    /// know, 403). Such a report makes `/readyz` say so, and is retried at
    /// the pace of its interval.
    pub fn needs_person(&self) -> bool {
        match self {
            FetchError::Credentials(e) => matches!(e, CredentialsError::NeedsPerson(_)),
            FetchError::Api(e) => e.is_refusal(),
        }
    }
}

/// GETs reports with the shared access token: on 401 the token is
/// rejected, renewed once, and the request sent again.
#[derive(Debug, Clone)]
pub struct AuthorizedClient {
    pub reports: ReportClient,
    pub credentials: Arc<Credentials>,
}

impl AuthorizedClient {
    /// The report of `api` at `path` for `query`; `endpoint` labels the
    /// requests in self-metrics, `retry` paces retries of transient failures.
    pub async fn get(
        &self,
        api: ReportApi,
        endpoint: &str,
        path: &ReportPath,
        query: &ReportQuery,
        retry: RetryPolicy,
    ) -> Result<Fetched, FetchError> {
        let url = self.reports.url(api, path, query);
        let token = self.credentials.access_token().await?;
        match self
            .reports
            .get(api, endpoint, path, url.clone(), &token, retry)
            .await
        {
            Err(ApiError::Unauthorized { .. }) => {
                self.credentials.reject(&token).await;
                let token = self.credentials.access_token().await?;
                Ok(self
                    .reports
                    .get(api, endpoint, path, url, &token, retry)
                    .await?)
            }
            other => Ok(other?),
        }
    }
}
