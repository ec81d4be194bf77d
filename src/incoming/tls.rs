//! The TLS side of `--web.config.file`: certificate, key, client CAs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

/// `tls_server_config` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
}

/// What is wrong with `tls_server_config`: the key, its file, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("tls_server_config.{key}{}: {problem}", file.as_ref().map(|f| format!(" {}", f.display())).unwrap_or_default())]
pub struct TlsError {
    pub key: &'static str,
    pub file: Option<PathBuf>,
    pub problem: String,
}

fn error(key: &'static str, file: Option<&Path>, problem: impl Into<String>) -> TlsError {
    TlsError {
        key,
        file: file.map(Path::to_owned),
        problem: problem.into(),
    }
}

/// The TLS acceptor `raw` describes; relative files are relative to `dir`.
pub(super) fn tls_acceptor(raw: RawTls, dir: &Path) -> Result<TlsAcceptor, TlsError> {
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
            error(
                "cert_file",
                Some(&cert_file),
                format!("{e}: give a PEM certificate chain"),
            )
        })?;
    if certs.is_empty() {
        return Err(error(
            "cert_file",
            Some(&cert_file),
            "holds no certificate: give a PEM certificate chain",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        error(
            "key_file",
            Some(&key_file),
            format!("{e}: give the PEM private key of the certificate"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| error("cert_file", None, format!("TLS set-up failed: {e}")))?;
    let verify = match (raw.client_auth_type.as_deref(), &raw.client_ca_file) {
        (None, None) | (Some("NoClientCert"), _) => None,
        (None | Some("RequireAndVerifyClientCert"), Some(ca)) => Some((resolve(ca), true)),
        (Some("VerifyClientCertIfGiven"), Some(ca)) => Some((resolve(ca), false)),
        (Some(kind @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")), None) => {
            return Err(error(
                "client_auth_type",
                None,
                format!(
                    "{kind} needs client_ca_file: name the CA that signs the client certificates"
                ),
            ));
        }
        (Some(other), _) => {
            return Err(error(
                "client_auth_type",
                None,
                format!(
                    "`{other}` is not supported: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
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
                    error(
                        "client_ca_file",
                        Some(&ca_file),
                        format!("{e}: give PEM CA certificates"),
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(error(
                    "client_ca_file",
                    Some(&ca_file),
                    "holds no usable CA certificate",
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
                    .map_err(|e| error("client_ca_file", Some(&ca_file), e.to_string()))?,
            )
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        error(
            "key_file",
            Some(&key_file),
            format!("the key does not fit the certificate: {e}"),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
