//! The software statement: a JWT held as a secret, with its public claims decoded.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{STATEMENT_ENV, SecretSource, SecretSourceError};

/// The statement and what its payload says about the application.
#[derive(Clone)]
pub struct SoftwareStatement {
    jwt: SecretString,
    /// Adobe's application id: `software_id`, or `sub` where there is none
    /// (Adobe's real statements carry no `software_id`).
    pub application_id: Option<String>,
    /// Issuer (`auth.adobe.com` for Adobe's statements).
    pub issuer: Option<String>,
}

impl fmt::Debug for SoftwareStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareStatement")
            .field("jwt", &"[REDACTED]")
            .field("application_id", &self.application_id)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Why the statement cannot be used. Never includes the statement itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StatementError {
    #[error(
        "cannot read the software statement file {path}: {reason}: download it from the TVE Dashboard (Applications tab, Download Software Statement) and point adobe.software_statement_file at it"
    )]
    Unreadable { path: String, reason: String },
    #[error(
        "{STATEMENT_ENV} is not set: set it to the software statement, or configure adobe.software_statement_file"
    )]
    NoEnv,
    #[error(
        "the software statement from {origin} is not a JWT (header.payload.signature in base64url): download it again from the TVE Dashboard"
    )]
    Malformed { origin: String },
}

#[derive(serde::Deserialize)]
struct Claims {
    software_id: Option<String>,
    sub: Option<String>,
    iss: Option<String>,
}

impl SoftwareStatement {
    /// Reads the statement from where the configuration says.
    pub fn load(source: &SecretSource) -> Result<Self, StatementError> {
        let origin = match source {
            SecretSource::File(path) => path.display().to_string(),
            SecretSource::Env(name) => (*name).to_owned(),
        };
        match source.read() {
            Ok(text) => Self::parse(text.expose_secret().to_owned(), &origin),
            Err(SecretSourceError::Unreadable { path, reason }) => {
                Err(StatementError::Unreadable {
                    path: path.display().to_string(),
                    reason,
                })
            }
            Err(SecretSourceError::Unset(_)) => Err(StatementError::NoEnv),
            Err(SecretSourceError::Empty(_)) => Err(StatementError::Malformed { origin }),
        }
    }

    /// Decodes a statement's payload (no signature check: the client has no key).
    pub fn parse(text: String, origin: &str) -> Result<Self, StatementError> {
        let malformed = || StatementError::Malformed {
            origin: origin.to_owned(),
        };
        let jwt = text.trim().to_owned();
        drop(text);
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(malformed());
        }
        let payload = URL_SAFE_NO_PAD
            .decode(parts[1].trim_end_matches('='))
            .map_err(|_| malformed())?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| malformed())?;
        Ok(Self {
            application_id: claims.software_id.or(claims.sub),
            issuer: claims.iss,
            jwt: SecretString::from(jwt),
        })
    }

    /// The JWT, to send to the register endpoint.
    pub fn jwt(&self) -> &SecretString {
        &self.jwt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn application_id_is_software_id_or_sub() {
        let s =
            SoftwareStatement::parse(jwt(r#"{"sub":"u-1","iss":"auth.adobe.com"}"#), "t").unwrap();
        assert_eq!(s.application_id.as_deref(), Some("u-1"));
        assert_eq!(s.issuer.as_deref(), Some("auth.adobe.com"));
        let s = SoftwareStatement::parse(jwt(r#"{"software_id":"app","sub":"u-1"}"#), "t").unwrap();
        assert_eq!(s.application_id.as_deref(), Some("app"));
    }

    #[test]
    fn malformed_statements_never_echo_the_text() {
        let secret = "not-a-jwt-but-secret".to_owned();
        let err = SoftwareStatement::parse(secret.clone(), "file x").unwrap_err();
        assert!(!err.to_string().contains(&secret));
        let s = SoftwareStatement::parse(jwt(r#"{"sub":"u"}"#), "t").unwrap();
        assert!(!format!("{s:?}").contains("c2ln"));
    }
}
