//! Credentials that look after themselves (reference §1, §3-§5).
//!
//! Register once with the software statement and keep the client
//! credentials; fetch an access token and reuse it until shortly before it
//! expires; register again only when Adobe says the credentials are no
//! longer valid. One token is shared by every poller and renewed by one of
//! them at a time (the others wait for it).

pub mod dcr;
pub mod statement;
pub mod store;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

pub use dcr::{DcrClient, DcrError, OAuthError};
pub use statement::{SoftwareStatement, StatementError};
pub use store::{AccessToken, ClientCredentials, StateStore, StoreError, StoredState, parse_state};

use crate::clock::Clock;
use crate::retry::{RetryPolicy, Verdict};
use crate::telemetry::Telemetry;

/// A token is renewed when less than this much of its life is left, so no
/// request ever leaves with a token that could expire on the way.
pub const RENEW_MARGIN: SignedDuration = SignedDuration::from_secs(60);

/// How long before its expiry a token that lives `lifetime` is renewed: a
/// minute ([`RENEW_MARGIN`]), or a third of its life when that is shorter.
/// A short-lived token (Adobe may grant any lifetime) is then used for two
/// thirds of it, and no request leaves in its last third.
pub fn renew_margin(lifetime: SignedDuration) -> SignedDuration {
    RENEW_MARGIN.min(lifetime / 3)
}

/// How a token answer Adobe's DCR server got wrong (no usable `expires_in`
/// or token) is retried: every DCR call waits 5 s, doubling up to 10 min,
/// rather than asking again at each poll of each report.
const INVALID_ANSWER_RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(5),
    cap: Duration::from_secs(600),
    attempts: u32::MAX,
};

/// After an error that needs a person, how long before trying again.
pub const NEEDS_PERSON_RETRY: SignedDuration = SignedDuration::from_secs(3600);

/// How a DCR call is retried while Adobe throttles (429): at least 1 s (or
/// `Retry-After`), doubling with jitter, seven attempts before the poll gives up.
const THROTTLE_RETRY: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(64),
    attempts: 7,
};

/// Why no token can be had now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// Retrying will not help until someone acts; the text says what to do.
    #[error("credentials need a person: {0}")]
    NeedsPerson(String),
    /// A passing failure (network, 5xx, throttling); the next poll retries.
    #[error(transparent)]
    Unavailable(#[from] DcrError),
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("pre-registered client credentials: {0}")]
    Preset(crate::config::SecretSourceError),
    #[error(
        "the configuration gives client credentials, so the exporter does not register: remove adobe.client_id_file and adobe.client_secret_file to let it register"
    )]
    PresetNeverRegisters,
}

/// State of the credentials as `/readyz` and the landing page report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// No token asked for yet.
    Unknown,
    Ok,
    /// Failing for a passing reason.
    Failing(String),
    /// Failing until someone acts.
    NeedsPerson(String),
}

struct Inner {
    client: Option<ClientCredentials>,
    token: Option<AccessToken>,
    application_id: Option<String>,
    registered_at: Option<Timestamp>,
    /// While set, a person must act: no DCR call before this time.
    /// Counted on the monotonic clock, so a step of the wall clock neither
    /// lengthens nor shortens the wait.
    blocked_until: Option<(std::time::Instant, String)>,
    /// After answers that were not usable (an `expires_in` of 0...): no DCR
    /// call before this monotonic time, the last error, and how many in a row.
    cooling_until: Option<(std::time::Instant, DcrError)>,
    invalid_answers: u32,
}

/// Reads pre-registered client credentials from where the config says.
pub fn load_preset(
    source: &crate::config::ClientSource,
) -> Result<ClientCredentials, CredentialsError> {
    let id = source.id.read().map_err(CredentialsError::Preset)?;
    let secret = source.secret.read().map_err(CredentialsError::Preset)?;
    Ok(ClientCredentials {
        client_id: id.expose_secret().to_owned(),
        client_secret: secret,
    })
}

/// What `credentials show` prints: identifiers and times, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsSummary {
    pub client_id: Option<String>,
    pub application_id: Option<String>,
    pub token_expiry: Option<Timestamp>,
}

/// The shared source of access tokens.
pub struct Credentials {
    dcr: DcrClient,
    store: StateStore,
    statement: Result<SoftwareStatement, StatementError>,
    clock: Clock,
    telemetry: Telemetry,
    inner: tokio::sync::Mutex<Inner>,
    health: std::sync::RwLock<Health>,
    /// Client credentials given by the operator: never register.
    preset: bool,
    /// The account's name, with several accounts (labels, log lines).
    account: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Opens the state store and reads the statement. A missing statement is
    /// fatal only when no credentials were stored before and none are preset.
    pub fn open(
        dcr: DcrClient,
        store: StateStore,
        statement: Result<SoftwareStatement, StatementError>,
        preset: Option<ClientCredentials>,
        clock: Clock,
        telemetry: Telemetry,
        account: Option<String>,
    ) -> Result<Self, CredentialsError> {
        let (mut stored, warning) = store.load();
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        if let (Err(e), None, None) = (&statement, &stored, &preset) {
            return Err(e.clone().into());
        }
        let is_preset = preset.is_some();
        if let Some(client) = preset {
            // A token stored for the same client is still good; anything else is not ours.
            let token = stored
                .take()
                .filter(|s| s.client.client_id == client.client_id)
                .and_then(|s| s.token);
            tracing::info!(client_id = %client.client_id, "using pre-registered client credentials: the exporter will not register");
            stored = Some(StoredState {
                client,
                token,
                application_id: None,
                registered_at: None,
            });
        }
        telemetry.account_opened(account.as_deref());
        if let Ok(s) = &statement {
            telemetry.statement_claims(
                account.as_deref(),
                s.application_id.as_deref().unwrap_or(""),
                s.issuer.as_deref().unwrap_or(""),
            );
            tracing::info!(
                application_id = s.application_id.as_deref().unwrap_or("unknown"),
                issuer = s.issuer.as_deref().unwrap_or("unknown"),
                "software statement loaded"
            );
        }
        let inner = match stored {
            Some(s) => {
                if !is_preset {
                    tracing::info!(client_id = %s.client.client_id, file = %store.path().display(), "reusing stored client credentials");
                }
                Inner {
                    client: Some(s.client),
                    token: s.token,
                    application_id: s.application_id,
                    registered_at: s.registered_at,
                    blocked_until: None,
                    cooling_until: None,
                    invalid_answers: 0,
                }
            }
            None => Inner {
                client: None,
                token: None,
                application_id: None,
                registered_at: None,
                blocked_until: None,
                cooling_until: None,
                invalid_answers: 0,
            },
        };
        if let Some(t) = &inner.token {
            telemetry.token_ready(
                account.as_deref(),
                t.expires_at.as_millisecond() as f64 / 1000.0,
                false,
                clock.now(),
            );
        }
        Ok(Self {
            dcr,
            store,
            statement,
            clock,
            telemetry,
            inner: tokio::sync::Mutex::new(inner),
            health: std::sync::RwLock::new(Health::Unknown),
            preset: is_preset,
            account,
        })
    }

    /// The credentials' state for health reporting.
    pub fn health(&self) -> Health {
        self.health
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_health(&self, health: Health) {
        *self.health.write().unwrap_or_else(|e| e.into_inner()) = health;
    }

    /// The account these credentials belong to (`None`: the single account).
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// Path of the state file.
    pub fn state_file(&self) -> &std::path::Path {
        self.store.path()
    }

    /// A token valid for at least its renewal margin ([`renew_margin`]),
    /// fetched (and the client registered) only when needed. Concurrent
    /// callers share one renewal.
    pub async fn access_token(&self) -> Result<SecretString, CredentialsError> {
        let mut inner = self.inner.lock().await;
        let now = self.clock.now();
        if let Some(token) = &inner.token
            && token.expires_at.duration_since(now) > token.renew_margin
        {
            self.set_health(Health::Ok);
            return Ok(token.value.clone());
        }
        if let Some((until, why)) = &inner.blocked_until {
            if std::time::Instant::now() < *until {
                return Err(CredentialsError::NeedsPerson(why.clone()));
            }
            inner.blocked_until = None;
        }
        if let Some((until, error)) = &inner.cooling_until {
            if std::time::Instant::now() < *until {
                return Err(error.clone().into());
            }
            inner.cooling_until = None;
        }
        match self.renew(&mut inner).await {
            Ok(token) => {
                inner.invalid_answers = 0;
                self.set_health(Health::Ok);
                Ok(token)
            }
            Err(e) => {
                if let CredentialsError::Unavailable(invalid @ DcrError::Invalid { .. }) = &e {
                    inner.invalid_answers += 1;
                    let pause = INVALID_ANSWER_RETRY.pause(inner.invalid_answers, None);
                    inner.cooling_until = Some((self.clock.deadline(pause), invalid.clone()));
                }
                let needs_person = matches!(e, CredentialsError::NeedsPerson(_));
                if let CredentialsError::NeedsPerson(why) = &e {
                    let until = self.clock.deadline(NEEDS_PERSON_RETRY.unsigned_abs());
                    inner.blocked_until = Some((until, why.clone()));
                    self.set_health(Health::NeedsPerson(why.clone()));
                } else {
                    self.set_health(Health::Failing(e.to_string()));
                }
                self.telemetry.credentials_failed(
                    self.account.as_deref(),
                    &e.to_string(),
                    needs_person,
                    self.clock.now(),
                );
                Err(e)
            }
        }
    }

    /// Forgets `token` after Adobe refused it (401), so the next call renews.
    pub async fn reject(&self, token: &SecretString) {
        let mut inner = self.inner.lock().await;
        if inner
            .token
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == token.expose_secret())
        {
            inner.token = None;
        }
    }

    /// Registers now, replacing any stored client (the `credentials register` command).
    pub async fn register_now(&self) -> Result<String, CredentialsError> {
        let mut inner = self.inner.lock().await;
        inner.client = None;
        inner.token = None;
        self.register(&mut inner).await?;
        Ok(inner
            .client
            .as_ref()
            .map(|c| c.client_id.clone())
            .unwrap_or_default())
    }

    /// What is stored, for `credentials show` (never a secret).
    pub async fn summary(&self) -> CredentialsSummary {
        let inner = self.inner.lock().await;
        let application_id = inner.application_id.clone().or_else(|| {
            self.statement
                .as_ref()
                .ok()
                .and_then(|s| s.application_id.clone())
        });
        CredentialsSummary {
            client_id: inner.client.as_ref().map(|c| c.client_id.clone()),
            application_id,
            token_expiry: inner.token.as_ref().map(|t| t.expires_at),
        }
    }

    async fn renew(&self, inner: &mut Inner) -> Result<SecretString, CredentialsError> {
        let mut registered_now = false;
        loop {
            if inner.client.is_none() {
                self.register(inner).await?;
                registered_now = true;
            }
            let client = inner.client.clone().expect("registered above");
            match self
                .paced_through_throttling(|| self.dcr.token(&client, &self.clock))
                .await
            {
                Ok(token) => {
                    let value = token.value.clone();
                    self.telemetry.token_ready(
                        self.account.as_deref(),
                        token.expires_at.as_millisecond() as f64 / 1000.0,
                        true,
                        self.clock.now(),
                    );
                    inner.token = Some(token);
                    self.persist(inner);
                    return Ok(value);
                }
                Err(DcrError::Rejected {
                    code: OAuthError::InvalidClient,
                    ..
                }) if self.preset => {
                    return Err(CredentialsError::NeedsPerson(format!(
                        "Adobe refused the pre-registered client {} (invalid_client): replace adobe.client_id_file and adobe.client_secret_file with working credentials, or remove them to let the exporter register",
                        client.client_id
                    )));
                }
                Err(DcrError::Rejected {
                    code: OAuthError::InvalidClient,
                    ..
                }) if !registered_now => {
                    tracing::warn!(client_id = %client.client_id, "Adobe no longer accepts the client credentials (invalid_client): registering again");
                    inner.client = None;
                    inner.token = None;
                }
                Err(e @ DcrError::Rejected { .. }) => {
                    return Err(CredentialsError::NeedsPerson(e.to_string()));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn register(&self, inner: &mut Inner) -> Result<(), CredentialsError> {
        if self.preset {
            return Err(CredentialsError::PresetNeverRegisters);
        }
        let statement = self
            .statement
            .as_ref()
            .map_err(|e| CredentialsError::Statement(e.clone()))?;
        let client = match self
            .paced_through_throttling(|| self.dcr.register(statement))
            .await
        {
            Ok(client) => client,
            Err(e @ DcrError::Rejected { .. }) => {
                return Err(CredentialsError::NeedsPerson(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        self.telemetry
            .registered(self.account.as_deref(), &client.client_id);
        inner.client = Some(client);
        inner.token = None;
        inner.application_id = statement.application_id.clone();
        inner.registered_at = Some(self.clock.now());
        self.persist(inner);
        Ok(())
    }

    /// Runs a DCR call, waiting out Adobe's throttling ([`THROTTLE_RETRY`]):
    /// each pause holds back every DCR call of the process, not just this one.
    async fn paced_through_throttling<T, F>(&self, call: impl FnMut() -> F) -> Result<T, DcrError>
    where
        F: Future<Output = Result<T, DcrError>>,
    {
        let judge = |e: &DcrError| match e {
            DcrError::Throttled { retry_after, .. } => Verdict::Retry {
                retry_after: *retry_after,
            },
            _ => Verdict::GiveUp,
        };
        let wait = |attempt: u32, pause: Duration, _: &DcrError| {
            tracing::warn!(
                attempt,
                pause_ms = pause.as_millis() as u64,
                "Adobe's DCR server throttled the exporter (429): waiting"
            );
            self.dcr.pacer().hold_off(pause)
        };
        THROTTLE_RETRY.run(call, judge, wait).await
    }

    /// Writes the state. A failure (a full disk, a read-only `state_dir`)
    /// is an ERROR that says so, and nothing more: the exporter keeps
    /// serving with the credentials it holds, and writes them again at the
    /// next change.
    fn persist(&self, inner: &Inner) {
        let Some(client) = &inner.client else {
            return;
        };
        let state = StoredState {
            client: client.clone(),
            token: inner.token.clone(),
            application_id: inner.application_id.clone(),
            registered_at: inner.registered_at,
        };
        if let Err(e) = self.store.save(&state) {
            self.telemetry
                .state_write_failed(self.account.as_deref(), &e.to_string());
        }
    }

    /// Deletes the stored credentials (the `credentials forget` command).
    pub fn forget(&self) -> Result<bool, StoreError> {
        self.store.forget()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renewal_margin_is_a_minute_or_a_third_of_a_short_life() {
        let s = SignedDuration::from_secs;
        assert_eq!(renew_margin(s(21_600)), s(60), "Adobe's documented 6 h");
        assert_eq!(renew_margin(s(180)), s(60));
        assert_eq!(renew_margin(s(120)), s(40));
        assert_eq!(renew_margin(s(119)), s(119) / 3);
        assert_eq!(
            renew_margin(s(4)),
            SignedDuration::from_millis(1_333) + SignedDuration::from_nanos(333_333)
        );
        assert_eq!(renew_margin(s(1)), SignedDuration::from_nanos(333_333_333));
    }
}
