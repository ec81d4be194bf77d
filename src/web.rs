//! How the exporter's pages are served: plain HTTP or TLS, optional basic
//! auth, and limits against slow or hostile clients.
//!
//! The `--web.config.file` format is the Prometheus exporter toolkit's:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_ca_file: clients-ca.crt        # optional: require client certificates
//!   client_auth_type: RequireAndVerifyClientCert
//! basic_auth_users:
//!   prometheus: $2y$10$...                 # bcrypt hash (htpasswd -nB, or mkpasswd)
//! ```
//!
//! Relative file names are relative to the web configuration file. Every
//! page but `/healthz` needs the basic auth credentials when users are set.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::shutdown::ShutdownSignal;

/// Default time a client has to send a request's headers (and, with TLS,
/// to finish the handshake). It also closes idle keep-alive connections.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of request line and headers buffered per connection; beyond
/// it the request is refused (431). Scrapes send a few hundred.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Time connections get to finish after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(5);

/// A bcrypt hash of a random password nobody knows: unknown users are
/// checked against it so that they take as long as known ones.
const DUMMY_HASH: &str = "$2b$10$o7bVWC8bQo9y8WkW2M4n5uV4Hn7x3wQF3n1r5FJm1Vq8p5V6C9Q5K";

/// The validated web configuration.
#[derive(Clone)]
pub struct WebConfig {
    tls: Option<TlsAcceptor>,
    auth: Option<Arc<BasicAuth>>,
    /// See [`DEFAULT_READ_HEADER_TIMEOUT`].
    pub read_header_timeout: Duration,
}

impl Default for WebConfig {
    /// Plain HTTP, no auth, the default header timeout.
    fn default() -> Self {
        Self {
            tls: None,
            auth: None,
            read_header_timeout: DEFAULT_READ_HEADER_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for WebConfig {
    // The user table holds password hashes: show only what is configured.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field(
                "basic_auth_users",
                &self.auth.as_ref().map(|a| a.users.len()),
            )
            .field("read_header_timeout", &self.read_header_timeout)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
}

impl WebConfig {
    /// Plain HTTP, no auth.
    pub fn plain(read_header_timeout: Duration) -> Self {
        Self {
            read_header_timeout,
            ..Self::default()
        }
    }

    /// Reads and checks a web configuration file. Errors name the key and the fix.
    pub fn load(path: &Path, read_header_timeout: Duration) -> Result<Self, String> {
        let origin = format!("web configuration {}", path.display());
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {origin}: {e}: check --web.config.file"))?;
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig {
                tls_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            serde_saphyr::from_str(&text).map_err(|e| {
                format!("{origin} is not valid: {e} (the keys are tls_server_config and basic_auth_users, as in the Prometheus exporter toolkit)")
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = raw
            .tls_server_config
            .map(|t| tls_acceptor(t, dir, &origin))
            .transpose()?;
        let auth = if raw.basic_auth_users.is_empty() {
            None
        } else {
            Some(Arc::new(BasicAuth::new(raw.basic_auth_users, &origin)?))
        };
        Ok(Self {
            tls,
            auth,
            read_header_timeout,
        })
    }

    /// Whether pages are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `app` behind basic auth, when users are configured.
    pub fn protect(&self, app: Router) -> Router {
        match &self.auth {
            None => app,
            Some(auth) => app.layer(axum::middleware::from_fn_with_state(
                auth.clone(),
                require_basic_auth,
            )),
        }
    }
}

fn tls_acceptor(raw: RawTls, dir: &Path, origin: &str) -> Result<TlsAcceptor, String> {
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            dir.join(p)
        }
    };
    let (cert_file, key_file) = (resolve(&raw.cert_file), resolve(&raw.key_file));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            format!(
                "{origin}: tls_server_config.cert_file {}: {e}: give a PEM certificate chain",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{origin}: tls_server_config.cert_file {} holds no certificate: give a PEM certificate chain",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        format!(
            "{origin}: tls_server_config.key_file {}: {e}: give the PEM private key of the certificate",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{origin}: TLS set-up failed: {e}"))?;
    let verify = match (raw.client_auth_type.as_deref(), &raw.client_ca_file) {
        (None, None) | (Some("NoClientCert"), _) => None,
        (None | Some("RequireAndVerifyClientCert"), Some(ca)) => Some((resolve(ca), true)),
        (Some("VerifyClientCertIfGiven"), Some(ca)) => Some((resolve(ca), false)),
        (Some(kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")), None) => {
            return Err(format!(
                "{origin}: tls_server_config.client_auth_type {kind} needs client_ca_file: name the CA that signs the client certificates"
            ));
        }
        (Some(other), _) => {
            return Err(format!(
                "{origin}: tls_server_config.client_auth_type `{other}` is not supported: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
    };
    let builder = match verify {
        None => builder.with_no_client_auth(),
        Some((ca_file, required)) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(&ca_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!(
                        "{origin}: tls_server_config.client_ca_file {}: {e}: give PEM CA certificates",
                        ca_file.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(format!(
                    "{origin}: tls_server_config.client_ca_file {} holds no usable CA certificate",
                    ca_file.display()
                ));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("{origin}: client CA: {e}"))?,
            )
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!("{origin}: tls_server_config: the key does not fit the certificate: {e}")
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Users and their bcrypt hashes, with a cache of recently verified
/// credentials so that each scrape does not pay for a bcrypt run.
struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Keyed hashes of `user:password` pairs that verified; never the password.
    verified: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

/// Cached verifications kept at most (the cache is emptied beyond it).
const CACHE_LIMIT: usize = 1024;

impl BasicAuth {
    fn new(users: BTreeMap<String, String>, origin: &str) -> Result<Self, String> {
        for (user, hash) in &users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "{origin}: basic_auth_users.{user} is not a bcrypt hash: store the output of `htpasswd -nBC 10 {user}` (the part after the colon), not the password"
                ));
            }
        }
        Ok(Self {
            users,
            verified: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
        })
    }

    async fn check(self: &Arc<Self>, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let key = self.hasher.hash_one((&user, &password));
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return true;
        }
        let this = self.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let (hash, known) = match this.users.get(&user) {
                Some(h) => (h.as_str(), true),
                None => (DUMMY_HASH, false),
            };
            bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) && known
        })
        .await
        .unwrap_or(false);
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= CACHE_LIMIT {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }
}

/// `Basic base64(user:password)`.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let pair = String::from_utf8(decoded).ok()?;
    let (user, password) = pair.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/healthz"
        || auth
            .check(request.headers().get(header::AUTHORIZATION))
            .await
    {
        return next.run(request).await;
    }
    let mut refused = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    refused.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"cmu-exporter\", charset=\"UTF-8\""),
    );
    refused
}

/// Serves `app` on `listener` until `shutdown`, then lets open connections
/// finish for a few seconds. Each connection must send its headers (and
/// finish its TLS handshake) within the read-header timeout, and within
/// [`MAX_HEADER_BYTES`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    web: WebConfig,
    mut shutdown: ShutdownSignal,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(web.read_header_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = web.tls.clone();
        let timeout = web.read_header_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the drain time were closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_valid_bcrypt_hash() {
        assert!(DUMMY_HASH.parse::<bcrypt::HashParts>().is_ok());
    }

    #[test]
    fn basic_credentials_are_parsed() {
        let value = HeaderValue::from_static("Basic YWxpY2U6czNjcjN0Ojo=");
        assert_eq!(
            parse_basic(&value),
            Some(("alice".into(), "s3cr3t::".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Bearer x")), None);
    }

    #[test]
    fn bad_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            WebConfig::load(&file, DEFAULT_READ_HEADER_TIMEOUT).unwrap_err()
        };
        let e = load("basic_auth_users:\n  alice: hunter2\n");
        assert!(
            e.contains("basic_auth_users.alice") && e.contains("bcrypt"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
        let e = load("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n");
        assert!(e.contains("cert_file") && e.contains("missing.crt"), "{e}");
        let e = load("tls_config:\n  cert_file: a\n");
        assert!(e.contains("tls_server_config"), "{e}");
    }
}
