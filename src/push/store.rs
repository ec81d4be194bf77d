//! One remote-write store: its client (TLS, credentials read from their
//! files at each push, headers) and how a request is delivered whatever
//! the store answers (docs/push-and-history.md, "What each store answers").
//!
//! - 2xx: accepted.
//! - 5xx, 429 and network errors: retried as they are, with the one retry
//!   policy (`Retry-After` honoured), until accepted or the exporter stops.
//! - 409 (Thanos Receive): the store took the request but for samples it
//!   holds already or will not take out of order, or too old. Taken in
//!   part: counted by reason, never sent again, and the push moves on.
//! - 400 from a store that keeps the good samples of a request (Mimir,
//!   Cortex, Grafana Cloud, Amazon Managed Prometheus: their messages say
//!   `err-mimir-...` or `user=...`): taken in part likewise. Sending halves
//!   again would meet the samples it stored as out of order.
//! - Any other 400 (and 422): a store that refuses a whole request for one
//!   bad sample (Prometheus 2 and 3 do), so the request is split in halves
//!   until the refused series are alone; only those are lost, counted by
//!   reason.
//! - 413: split likewise; a single series too large is rejected.
//! - Any other 4xx (401, 403, 404...) refuses every push, whatever it
//!   holds: nothing is lost, the request is held and tried again slowly
//!   until a person fixes the cause (the message says which).

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::clock::Clock;
use crate::config::{RemoteAuth, RemoteWriteConfig, SecretSource};
use crate::export::format::remote_write::{HEADERS, WriteRequest};
use crate::retry::RetryPolicy;
use crate::shutdown::ShutdownSignal;
use crate::telemetry::Telemetry;

/// Pauses between retries of a request the store could not take (5xx,
/// 429, no answer): 1 s doubling to 2 min.
const TRANSIENT: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(120),
    attempts: u32::MAX,
};

/// Pauses while the store refuses every push (401, 404...): 30 s doubling to 10 min.
const REFUSING: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(30),
    cap: Duration::from_secs(600),
    attempts: u32::MAX,
};

/// Most bytes of a store's answer read, for its message.
const MAX_MESSAGE: usize = 4096;

/// Why a remote cannot be set up. Names the key and the file, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote_write {remote}: {reason}")]
pub struct SetupError {
    pub remote: String,
    pub reason: String,
}

/// Why some series were lost: the store refused them alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    /// Older than the store takes (Prometheus's "out of bounds", Mimir's "too old").
    OutOfBounds,
    /// Older than the series' newest sample, outside the out-of-order window.
    OutOfOrder,
    /// Another value at the same time.
    Duplicate,
    /// A per-tenant limit of the store (series, labels, rate).
    Limits,
    /// Larger than the store takes alone (413).
    TooLarge,
    /// A conflict with what the store holds, no more said (a bare 409).
    Conflict,
    /// Any other refusal.
    Invalid,
}

impl RejectReason {
    /// Every reason, for the self-metrics to start at zero.
    pub const ALL: [Self; 7] = [
        Self::OutOfBounds,
        Self::OutOfOrder,
        Self::Duplicate,
        Self::Limits,
        Self::TooLarge,
        Self::Conflict,
        Self::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfBounds => "out_of_bounds",
            Self::OutOfOrder => "out_of_order",
            Self::Duplicate => "duplicate",
            Self::Limits => "limits",
            Self::TooLarge => "too_large",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
        }
    }

    /// Reads a refusal from the store's message (Prometheus, Mimir, Thanos,
    /// VictoriaMetrics word them alike).
    fn of(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("out of order") || m.contains("out-of-order") {
            Self::OutOfOrder
        } else if m.contains("out of bounds")
            || m.contains("too old")
            || m.contains("too far in the past")
        {
            Self::OutOfBounds
        } else if m.contains("duplicate") {
            Self::Duplicate
        } else if m.contains("limit") || m.contains("too many") {
            Self::Limits
        } else {
            Self::Invalid
        }
    }

    /// A 409's reason: a refusal it does not name is a conflict.
    fn or_conflict(self) -> Self {
        if self == Self::Invalid {
            Self::Conflict
        } else {
            self
        }
    }

    /// What to change so that such samples are taken.
    pub fn fix(self) -> &'static str {
        match self {
            Self::OutOfBounds | Self::OutOfOrder => {
                "the store refuses samples this old: for Prometheus, run it with --web.enable-remote-write-receiver and set storage.tsdb.out_of_order_time_window to at least this remote's max_gap; for Mimir, raise out_of_order_time_window and past_grace_period; or lower max_gap"
            }
            Self::Duplicate => {
                "another writer sends the same series with other values: push and scrape into one store only under different job or instance labels"
            }
            Self::Limits => {
                "raise the store's per-tenant limits, or narrow the reports (filters, max_series)"
            }
            Self::TooLarge => "raise the store's request size limit",
            Self::Conflict => {
                "the store holds other samples at these times: another writer pushes these series (two replicas need the same external_labels), or the store has no out-of-order window for a gap fill"
            }
            Self::Invalid => "see the store's message",
        }
    }
}

/// Whether a 400 comes from a store that stores the good samples of a
/// request and refuses the bad ones (cortexproject/cortex #2662): Mimir
/// names each refusal `err-mimir-...`, and both name the tenant
/// (`user=...:`). Prometheus refuses the whole request and names no tenant.
fn keeps_the_good_samples(message: &str) -> bool {
    message.contains("err-mimir-") || message.contains("user=")
}

/// What became of a request.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Series the store took.
    pub accepted: usize,
    /// Series refused alone, by reason, with the store's first message.
    pub rejected: Vec<(RejectReason, usize, String)>,
    /// Requests the store took in part (409, or a 400 from a store that
    /// keeps the good samples), by reason: it stored the rest.
    pub taken_in_part: std::collections::BTreeMap<RejectReason, usize>,
    /// Requests sent, the splits and retries included.
    pub requests: usize,
}

/// The exporter is stopping: the request was not delivered.
#[derive(Debug)]
pub struct Stopped;

/// A store's answer to one request.
enum Answer {
    /// Stored; `in_part`: but for some samples it refused for this reason
    /// (a 409, or a 400 of a store that keeps the good samples), which are
    /// never sent again.
    Accepted {
        in_part: Option<(RejectReason, String)>,
    },
    /// Not taken now: try again as it is.
    Transient {
        retry_after: Option<Duration>,
        why: String,
    },
    /// Refused for what it holds: split it.
    Split {
        reason: RejectReason,
        message: String,
    },
    /// Refused whatever it holds: hold it until a person acts.
    Refusing { why: String },
}

/// A store, as one remote of the configuration reaches it.
#[derive(Debug)]
pub struct Store {
    pub name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: HeaderMap,
    auth: Option<RemoteAuth>,
    /// With `sigv4:`, what signs each request.
    signer: Option<super::sigv4::Signer>,
}

/// The secret in `path` (trimmed), for `key`; the error names the file, never the value.
fn read_secret(remote: &str, key: &str, path: &Path) -> Result<SecretString, SetupError> {
    SecretSource::File(path.to_owned())
        .read()
        .map_err(|e| SetupError {
            remote: remote.to_owned(),
            reason: format!("{key}: {e}"),
        })
}

impl Store {
    /// The client of `config`'s store: its files (CA, client certificate
    /// and key, credentials) are read now, so a bad one is said at start
    /// and by `check-config`.
    pub fn new(config: &RemoteWriteConfig) -> Result<Self, SetupError> {
        let name = config.name.clone();
        let fail = |reason: String| SetupError {
            remote: name.clone(),
            reason,
        };
        crate::outgoing::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(crate::outgoing::USER_AGENT)
            .connect_timeout(Duration::from_secs(10).min(config.remote_timeout))
            .timeout(config.remote_timeout)
            .redirect(reqwest::redirect::Policy::none());
        let tls = &config.tls;
        if let Some(file) = &tls.ca_file {
            let pem = std::fs::read(file).map_err(|e| {
                fail(format!(
                    "tls_config.ca_file: cannot read {}: {e}",
                    file.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
            if certs.is_empty() {
                return Err(fail(format!(
                    "tls_config.ca_file: {} holds no PEM certificate",
                    file.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem = std::fs::read(cert).map_err(|e| {
                fail(format!(
                    "tls_config.cert_file: cannot read {}: {e}",
                    cert.display()
                ))
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|e| {
                fail(format!(
                    "tls_config.key_file: cannot read {}: {e}",
                    key.display()
                ))
            })?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
                fail(format!(
                    "tls_config: {} and {} are not a PEM certificate and its private key",
                    cert.display(),
                    key.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        let mut url = config.url.clone();
        if let Some(server_name) = &tls.server_name {
            // The certificate is checked against `server_name`: the request
            // goes to the URL's address under that name.
            let port = url.port_or_known_default().unwrap_or(443);
            let host = url.host_str().unwrap_or_default().to_owned();
            let addrs: Vec<std::net::SocketAddr> =
                std::net::ToSocketAddrs::to_socket_addrs(&(host.trim_matches(['[', ']']), port))
                    .map_err(|e| fail(format!("url: cannot resolve {host}: {e}")))?
                    .collect();
            url.set_host(Some(server_name)).map_err(|_| {
                fail(format!(
                    "tls_config.server_name: `{server_name}` is not a host name"
                ))
            })?;
            builder = builder.resolve_to_addrs(server_name, &addrs);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
        for (name, value) in &config.headers {
            // Both were checked by the configuration.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let client = builder.build().map_err(|e| {
            fail(format!(
                "cannot build its client: {}",
                crate::outgoing::error_text(&e)
            ))
        })?;
        let signer = match &config.auth {
            Some(RemoteAuth::SigV4(sigv4)) => {
                Some(super::sigv4::Signer::new(sigv4, client.clone()).map_err(fail)?)
            }
            _ => None,
        };
        let store = Self {
            name: name.clone(),
            url,
            client,
            headers,
            auth: config.auth.clone(),
            signer,
        };
        store.authorization()?;
        Ok(store)
    }

    /// The `Authorization` header, read from its file now (a rotated
    /// secret is used from the next push).
    fn authorization(&self) -> Result<Option<HeaderValue>, SetupError> {
        let value = match &self.auth {
            None | Some(RemoteAuth::SigV4(_)) => return Ok(None),
            Some(RemoteAuth::Basic {
                username,
                password_file,
            }) => {
                use base64::Engine;
                let password = read_secret(&self.name, "basic_auth.password_file", password_file)?;
                let pair = SecretString::from(format!("{username}:{}", password.expose_secret()));
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.expose_secret())
                )
            }
            Some(RemoteAuth::Authorization {
                kind,
                credentials_file,
            }) => {
                let token = read_secret(
                    &self.name,
                    "authorization.credentials_file",
                    credentials_file,
                )?;
                format!("{kind} {}", token.expose_secret())
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| SetupError {
            remote: self.name.clone(),
            reason: "the credentials file holds characters an HTTP header cannot carry".into(),
        })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    async fn send_once(&self, request: &WriteRequest) -> Answer {
        let authorization = match self.authorization() {
            Ok(a) => a,
            Err(e) => return Answer::Refusing { why: e.reason },
        };
        let body = request.compressed();
        let mut send = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone());
        if let Some(value) = authorization {
            send = send.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(signer) = &self.signer {
            match signer.sign(&self.url, &self.headers, &body).await {
                Ok(signed) => {
                    for (name, value) in signed {
                        send = send.header(name, value);
                    }
                }
                // No credentials now (STS unreachable, a file missing):
                // nothing is lost, the push is held and asked again slowly.
                Err(why) => return Answer::Refusing { why },
            }
        }
        let send = send.body(body);
        let response = match send.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Transient {
                    retry_after: None,
                    why: crate::outgoing::error_text(&e),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Accepted { in_part: None };
        }
        let retry_after = crate::outgoing::retry_after(response.headers());
        let body = match tokio::time::timeout(Duration::from_secs(10), response.bytes()).await {
            Ok(Ok(bytes)) => bytes,
            _ => bytes::Bytes::new(),
        };
        let message = String::from_utf8_lossy(&body[..body.len().min(MAX_MESSAGE)])
            .trim()
            .to_owned();
        let said = if message.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {}: {message}", status.as_u16())
        };
        match status.as_u16() {
            429 | 500..=599 => Answer::Transient {
                retry_after,
                why: said,
            },
            409 => Answer::Accepted {
                in_part: Some((RejectReason::of(&message).or_conflict(), said)),
            },
            400 if keeps_the_good_samples(&message) => Answer::Accepted {
                in_part: Some((RejectReason::of(&message), said)),
            },
            400 | 422 => Answer::Split {
                reason: RejectReason::of(&message),
                message: said,
            },
            413 => Answer::Split {
                reason: RejectReason::TooLarge,
                message: said,
            },
            401 | 403 => Answer::Refusing {
                why: format!(
                    "{said}: check this remote's basic_auth, authorization or sigv4 and their files"
                ),
            },
            404 | 405 => Answer::Refusing {
                why: format!(
                    "{said}: is the url the store's write endpoint? (Prometheus: /api/v1/write with --web.enable-remote-write-receiver)"
                ),
            },
            _ => Answer::Refusing { why: said },
        }
    }

    /// Delivers `request`: accepted whole, or split until what the store
    /// refuses is alone (rejected), retried while the store cannot take
    /// it. Returns only when every series is accepted or rejected, or with
    /// [`Stopped`] once `stop` fires. `trouble` hears why while it fails.
    pub async fn deliver(
        &self,
        request: WriteRequest,
        clock: &Clock,
        telemetry: &Telemetry,
        stop: &mut ShutdownSignal,
        trouble: impl Fn(&str),
    ) -> Result<Delivery, Stopped> {
        let mut delivery = Delivery::default();
        // Halves waiting, the next one last: series go in the order appended.
        let mut parts = vec![request];
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            let (mut transient, mut refusing) = (0u32, 0u32);
            loop {
                delivery.requests += 1;
                let pause = match self.send_once(&part).await {
                    Answer::Accepted { in_part } => {
                        // Taken in part, the store does not say how many it
                        // refused: the request counts as sent whole.
                        delivery.accepted += part.series();
                        telemetry.push_sent(&self.name, part.series());
                        if let Some((reason, message)) = in_part {
                            telemetry.push_taken_in_part(
                                &self.name,
                                reason.as_str(),
                                &message,
                                reason.fix(),
                            );
                            *delivery.taken_in_part.entry(reason).or_default() += 1;
                        }
                        if transient + refusing > 0 {
                            telemetry.push_recovered(&self.name, clock.now());
                        }
                        break;
                    }
                    Answer::Split { reason, message } => {
                        if part.series() > 1 {
                            let (head, tail) = part.split();
                            parts.push(tail);
                            parts.push(head);
                        } else {
                            telemetry.push_rejected(
                                &self.name,
                                reason.as_str(),
                                &message,
                                reason.fix(),
                            );
                            match delivery.rejected.iter_mut().find(|(r, _, _)| *r == reason) {
                                Some((_, n, _)) => *n += 1,
                                None => delivery.rejected.push((reason, 1, message)),
                            }
                        }
                        break;
                    }
                    Answer::Transient { retry_after, why } => {
                        transient += 1;
                        trouble(&why);
                        let pause = TRANSIENT.pause(transient, retry_after);
                        telemetry.push_failed(&self.name, &why, pause, false, clock.now());
                        pause
                    }
                    Answer::Refusing { why } => {
                        refusing += 1;
                        trouble(&why);
                        let pause = REFUSING.pause(refusing, None);
                        telemetry.push_failed(&self.name, &why, pause, true, clock.now());
                        pause
                    }
                };
                tokio::select! {
                    () = clock.sleep(pause) => {}
                    () = stop.wait() => return Err(Stopped),
                }
            }
        }
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_the_stores_words() {
        for (message, reason) in [
            ("out of bounds", RejectReason::OutOfBounds),
            ("err: out of order sample", RejectReason::OutOfOrder),
            (
                "the sample has been rejected because its timestamp is too old",
                RejectReason::OutOfBounds,
            ),
            ("duplicate sample for timestamp", RejectReason::Duplicate),
            (
                "per-user series limit of 150000 exceeded",
                RejectReason::Limits,
            ),
            ("snappy: corrupt input", RejectReason::Invalid),
        ] {
            assert_eq!(RejectReason::of(message), reason, "{message}");
        }
    }

    #[test]
    fn a_store_that_keeps_the_good_samples_is_known_by_its_words() {
        for (message, keeps) in [
            (
                "failed pushing to ingester: user=anonymous: the sample has been rejected because its timestamp is too old (err-mimir-sample-timestamp-too-old)",
                true,
            ),
            (
                "user=fake: sample timestamp out of order; last timestamp: 2, incoming timestamp: 1",
                true,
            ),
            ("out of bounds", false),
            ("out of order sample", false),
        ] {
            assert_eq!(keeps_the_good_samples(message), keeps, "{message}");
        }
        assert_eq!(
            RejectReason::of("conflict").or_conflict(),
            RejectReason::Conflict
        );
        assert_eq!(
            RejectReason::of("add 2 samples: out of order sample").or_conflict(),
            RejectReason::OutOfOrder
        );
    }
}
