//! Basic auth for every page but `/healthz`, with bcrypt hashes and a cache
//! of verified credentials.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// A bcrypt hash of a random password nobody knows: unknown users are
/// checked against it so that they take as long as known ones.
const DUMMY_HASH: &str = "$2b$10$o7bVWC8bQo9y8WkW2M4n5uV4Hn7x3wQF3n1r5FJm1Vq8p5V6C9Q5K";

/// A `basic_auth_users` entry that is not a bcrypt hash (the value is never shown).
#[derive(Debug, thiserror::Error)]
#[error(
    "basic_auth_users.{user} is not a bcrypt hash: store the output of `htpasswd -nBC 10 {user}` (the part after the colon), not the password"
)]
pub struct AuthError {
    pub user: String,
}

/// Users and their bcrypt hashes, with a cache of recently verified
/// credentials so that each scrape does not pay for a bcrypt run.
pub(super) struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Keyed hashes of `user:password` pairs that verified; never the password.
    verified: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

/// Cached verifications kept at most (the cache is emptied beyond it).
const CACHE_LIMIT: usize = 1024;

impl BasicAuth {
    pub(super) fn new(users: BTreeMap<String, String>) -> Result<Self, AuthError> {
        for (user, hash) in &users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(AuthError { user: user.clone() });
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

    /// How many users are configured.
    pub(super) fn users(&self) -> usize {
        self.users.len()
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

pub(super) async fn require_basic_auth(
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
}
