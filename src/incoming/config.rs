//! The `--web.config.file`: TLS, basic auth and the read-header timeout.
//!
//! The format is the Prometheus exporter toolkit's:
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use super::auth::{AuthError, BasicAuth, require_basic_auth};
use super::tls::{RawTls, TlsError, tls_acceptor};

/// Default time a client has to send a request's headers (and, with TLS,
/// to finish the handshake). It also closes idle keep-alive connections.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time an answer may wait on a client that does not read it.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default most connections open at once: far more than any number of
/// Prometheus servers and browsers, far fewer than the file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// What a client may hold of the server: each limit ends the connections
/// that exceed it, so no client can hold memory or a connection for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send the request headers (and finish a TLS handshake); idle
    /// keep-alive connections close after it too.
    pub read_header_timeout: Duration,
    /// Time an answer may wait on a client that does not read it.
    pub write_timeout: Duration,
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: DEFAULT_READ_HEADER_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// The defaults, with this read-header timeout.
    pub fn with_read_header_timeout(read_header_timeout: Duration) -> Self {
        Self {
            read_header_timeout,
            ..Self::default()
        }
    }
}

/// Most bytes of request line and headers buffered per connection; beyond
/// it the request is refused (431). Scrapes send a few hundred.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why a web configuration file was refused. Each names the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web configuration {}: {cause}: check --web.config.file", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "web configuration {} is not valid: {reason} (the keys are tls_server_config and basic_auth_users, as in the Prometheus exporter toolkit)",
        path.display()
    )]
    Yaml { path: PathBuf, reason: String },
    #[error("web configuration {}: {cause}", path.display())]
    Tls { path: PathBuf, cause: TlsError },
    #[error("web configuration {}: {cause}", path.display())]
    Auth { path: PathBuf, cause: AuthError },
}

/// The validated web configuration.
#[derive(Clone)]
pub struct WebConfig {
    pub(super) tls: Option<TlsAcceptor>,
    auth: Option<Arc<BasicAuth>>,
    pub limits: ConnectionLimits,
}

impl Default for WebConfig {
    /// Plain HTTP, no auth, the default header timeout.
    fn default() -> Self {
        Self {
            tls: None,
            auth: None,
            limits: ConnectionLimits::default(),
        }
    }
}

impl std::fmt::Debug for WebConfig {
    // The user table holds password hashes: show only what is configured.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("basic_auth_users", &self.auth.as_ref().map(|a| a.users()))
            .field("limits", &self.limits)
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

impl WebConfig {
    /// Plain HTTP, no auth.
    pub fn plain(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Reads and checks a web configuration file. Errors name the key and the fix.
    pub fn load(path: &Path, limits: ConnectionLimits) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| WebConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        Self::parse(&text, path, limits)
    }

    /// Checks the text of a web configuration file read from `path` (its
    /// directory resolves relative file names).
    pub fn parse(
        text: &str,
        path: &Path,
        limits: ConnectionLimits,
    ) -> Result<Self, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig {
                tls_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| WebConfigError::Yaml {
                path: path.to_owned(),
                reason: e.to_string(),
            })?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = raw
            .tls_server_config
            .map(|t| tls_acceptor(t, dir))
            .transpose()
            .map_err(|cause| WebConfigError::Tls {
                path: path.to_owned(),
                cause,
            })?;
        let auth = if raw.basic_auth_users.is_empty() {
            None
        } else {
            let auth =
                BasicAuth::new(raw.basic_auth_users).map_err(|cause| WebConfigError::Auth {
                    path: path.to_owned(),
                    cause,
                })?;
            Some(Arc::new(auth))
        };
        Ok(Self { tls, auth, limits })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            WebConfig::load(&file, ConnectionLimits::default())
                .unwrap_err()
                .to_string()
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
