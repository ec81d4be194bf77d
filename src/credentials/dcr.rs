//! Client of Adobe's DCR server: register a client, get an access token.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::statement::SoftwareStatement;
use super::store::{AccessToken, ClientCredentials};
use crate::clock::Clock;
use crate::outgoing::exchange;
use crate::telemetry::{Api, Telemetry};

/// An OAuth error code from a DCR 400 answer (reference §3, §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    InvalidRequest,
    InvalidRedirectUri,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedGrantType,
    Other(String),
}

impl OAuthError {
    fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_redirect_uri" => Self::InvalidRedirectUri,
            "invalid_software_statement" => Self::InvalidSoftwareStatement,
            "unapproved_software_statement" => Self::UnapprovedSoftwareStatement,
            "invalid_client" => Self::InvalidClient,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// The code as Adobe spells it.
    pub fn code(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Other(code) => code,
        }
    }

    /// What the operator must do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Self::InvalidSoftwareStatement => {
                "the software statement is not valid (revoked or damaged): download a new one from the TVE Dashboard and replace the file"
            }
            Self::UnapprovedSoftwareStatement => {
                "the software statement is not approved yet: ask Adobe support (tve-support@adobe.com) to approve the application"
            }
            Self::InvalidRedirectUri => {
                "Adobe refused the redirect URI: contact Adobe support with the application id"
            }
            Self::InvalidRequest => {
                "Adobe refused the request as malformed: check the statement file holds only the JWT"
            }
            Self::InvalidClient => {
                "the client credentials were revoked: the exporter registers again"
            }
            Self::UnauthorizedClient => {
                "the client may not use client_credentials: ask Adobe support to enable it for the application"
            }
            Self::UnsupportedGrantType => {
                "Adobe does not accept the client_credentials grant for this client: contact Adobe support"
            }
            Self::Other(_) => "an error Adobe does not document: contact Adobe support",
        }
    }
}

/// Why a DCR call failed. Never carries a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DcrError {
    #[error("DCR {endpoint} refused: {} ({})", code.code(), code.remedy())]
    Rejected {
        endpoint: &'static str,
        code: OAuthError,
    },
    #[error("DCR {endpoint} throttled the exporter (HTTP 429)")]
    Throttled {
        endpoint: &'static str,
        retry_after: Option<Duration>,
    },
    #[error("DCR {endpoint} answered HTTP {status}")]
    Status { endpoint: &'static str, status: u16 },
    #[error("DCR {endpoint} unreachable: {reason}")]
    Transport {
        endpoint: &'static str,
        reason: String,
    },
    #[error("DCR {endpoint} answer is not what Adobe documents: {reason}")]
    Invalid {
        endpoint: &'static str,
        reason: String,
    },
}

/// Keeps the whole process at or under one DCR call per second, Adobe's
/// per-IP rate, and holds calls back after a 429. Its seconds are those of
/// the shared clock (a warped test world keeps the same proportions), but
/// counted on the monotonic clock: a step of the wall clock neither stalls
/// DCR calls nor lets them through early.
#[derive(Debug)]
pub struct Pacer {
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    clock: Clock,
}

/// Time between two DCR calls on the shared clock (Adobe's throttle: 1 per second).
pub const DCR_SPACING: Duration = Duration::from_millis(1_050);

impl Pacer {
    fn new(clock: Clock) -> Self {
        Self {
            next: tokio::sync::Mutex::new(None),
            clock,
        }
    }

    fn after(&self, pause: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.clock.deadline(pause))
    }

    /// Runs `call` in its turn. The spacing counts from the answer, not
    /// from the call: however long the previous request took on the way
    /// to Adobe, the next one arrives at least a second after it.
    async fn paced<T>(&self, call: impl Future<Output = T>) -> T {
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        let answer = call.await;
        *next = Some(self.after(DCR_SPACING));
        answer
    }

    /// Holds every DCR call back for at least `pause`.
    pub async fn hold_off(&self, pause: Duration) {
        let mut next = self.next.lock().await;
        let until = self.after(pause.max(DCR_SPACING));
        *next = Some(next.map_or(until, |n| n.max(until)));
    }
}

/// Talks to `{dcr}/o/client/register` and `{dcr}/o/client/token`.
#[derive(Debug, Clone)]
pub struct DcrClient {
    http: reqwest::Client,
    register_url: Url,
    token_url: Url,
    telemetry: Telemetry,
    pacer: Arc<Pacer>,
}

#[derive(Deserialize)]
struct Registered {
    client_id: String,
    client_secret: String,
}

#[derive(Deserialize)]
struct Issued {
    access_token: String,
    expires_in: serde_json::Value,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl DcrClient {
    pub fn new(http: reqwest::Client, base: &Url, telemetry: Telemetry, clock: Clock) -> Self {
        let join = |p: &str| {
            let mut url = base.clone();
            let prefix = url.path().trim_end_matches('/').to_owned();
            url.set_path(&format!("{prefix}{p}"));
            url
        };
        Self {
            register_url: join("/o/client/register"),
            token_url: join("/o/client/token"),
            http,
            telemetry,
            pacer: Arc::new(Pacer::new(clock)),
        }
    }

    /// The process-wide pacer (also used to wait out a 429).
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Registers a client with the software statement.
    pub async fn register(
        &self,
        statement: &SoftwareStatement,
    ) -> Result<ClientCredentials, DcrError> {
        const ENDPOINT: &str = "register";
        let body = serde_json::json!({ "software_statement": statement.jwt().expose_secret() });
        let request = self
            .http
            .post(self.register_url.clone())
            .header("content-type", "application/json;charset=utf-8")
            .header("accept", "application/json")
            .body(body.to_string());
        let bytes = self.send(ENDPOINT, request).await?;
        let registered: Registered =
            serde_json::from_slice(&bytes).map_err(|_| DcrError::Invalid {
                endpoint: ENDPOINT,
                reason: "no client_id and client_secret".into(),
            })?;
        if registered.client_id.is_empty() || registered.client_secret.is_empty() {
            return Err(DcrError::Invalid {
                endpoint: ENDPOINT,
                reason: "empty client_id or client_secret".into(),
            });
        }
        Ok(ClientCredentials {
            client_id: registered.client_id,
            client_secret: registered.client_secret.into(),
        })
    }

    /// Gets an access token for `client`; its expiry is judged on `clock`.
    pub async fn token(
        &self,
        client: &ClientCredentials,
        clock: &Clock,
    ) -> Result<AccessToken, DcrError> {
        const ENDPOINT: &str = "token";
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.expose_secret()),
        ];
        let asked_at = clock.now();
        let request = self
            .http
            .post(self.token_url.clone())
            .header("accept", "application/json")
            .form(&form);
        let bytes = self.send(ENDPOINT, request).await?;
        let invalid = |reason: &str| DcrError::Invalid {
            endpoint: ENDPOINT,
            reason: reason.into(),
        };
        let issued: Issued = serde_json::from_slice(&bytes)
            .map_err(|_| invalid("no access_token and expires_in"))?;
        // Any positive lifetime is used, however short: OAuth lets the
        // server choose it. Only a missing, zero, negative or non-numeric one
        // is refused.
        let expires_in = match &issued.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|&seconds| seconds > 0)
        .ok_or_else(|| invalid("expires_in is not a positive number of seconds"))?;
        if issued.access_token.is_empty() {
            return Err(invalid("empty access_token"));
        }
        let lifetime = jiff::SignedDuration::from_secs(expires_in.min(10 * 365 * 86_400) as i64);
        // Counted from when we asked, so a slow answer errs on the safe side.
        Ok(AccessToken {
            value: issued.access_token.into(),
            expires_at: asked_at + lifetime,
            renew_margin: super::renew_margin(lifetime),
        })
    }

    /// Sends one paced request and returns the body of a 2xx answer.
    async fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<bytes::Bytes, DcrError> {
        let answer = self
            .pacer
            .paced(exchange(
                &self.telemetry,
                Api::Dcr,
                endpoint,
                request,
                crate::outgoing::DCR_MAX_ANSWER,
            ))
            .await
            .map_err(|e| DcrError::Transport {
                endpoint,
                reason: e.to_string(),
            })?;
        let status = answer.status;
        match status {
            s if s.is_success() => Ok(answer.body),
            StatusCode::TOO_MANY_REQUESTS => Err(DcrError::Throttled {
                endpoint,
                retry_after: answer.retry_after,
            }),
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                match serde_json::from_slice::<ErrorBody>(&answer.body) {
                    Ok(e) => Err(DcrError::Rejected {
                        endpoint,
                        code: OAuthError::parse(&e.error),
                    }),
                    Err(_) => Err(DcrError::Status {
                        endpoint,
                        status: status.as_u16(),
                    }),
                }
            }
            s => Err(DcrError::Status {
                endpoint,
                status: s.as_u16(),
            }),
        }
    }
}
