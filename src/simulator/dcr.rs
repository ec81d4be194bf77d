//! Simulated DCR server: `/o/client/register` and `/o/client/token`
//! (reference §3-§5), with Adobe's per-IP throttle.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::json;

use super::Shared;

/// A registered client.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub secret: String,
    /// The `sub` of the statement it registered with.
    pub sub: String,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub client_id: String,
    pub expires_at: Timestamp,
}

/// Statements, clients and tokens the server knows.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// `sub` of statements that may register.
    pub approved: std::collections::HashSet<String>,
    /// `sub` of statements that are valid but not approved yet.
    pub unapproved: std::collections::HashSet<String>,
    pub clients: HashMap<String, Client>,
    /// Tenants each statement (`sub`) may see; absent: every tenant.
    pub scopes: HashMap<String, Vec<String>>,
    pub tokens: HashMap<String, Token>,
    /// Every secret value handed out (statements, client secrets, tokens), for leak tests.
    pub issued: Vec<String>,
}

/// Per-IP token bucket: a one-time burst, then `rate` requests per second
/// (seconds of the simulated clock).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    buckets: HashMap<IpAddr, (f64, Timestamp)>,
}

impl Throttle {
    /// Whether a request from `ip` may pass at `now`.
    pub fn admit(&mut self, ip: IpAddr, burst: u32, rate: f64, now: Timestamp) -> bool {
        let (tokens, last) = self.buckets.entry(ip).or_insert((f64::from(burst), now));
        if *tokens < 1.0 {
            // After the initial burst the bucket refills to one request, no more.
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(1.0);
        }
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Adobe's 429: a text body, no JSON.
pub(crate) fn throttled(retry_after: Option<u64>) -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert("retry-after", secs.into());
    }
    response
}

fn oauth_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": code })),
    )
        .into_response()
}

fn random_uuid() -> String {
    let v: u128 = rand::random();
    let h = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A compact JWS shaped like Adobe's real statements: `sub`, `nbf`, `iss`, `iat`
/// and no `software_id` (unless `software_id` is given, as in RFC 7591's sample).
pub fn mint_statement(software_id: Option<&str>, now: Timestamp) -> (String, String) {
    let sub = random_uuid();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let mut claims = json!({"sub": sub, "nbf": now.as_second(), "iss": "auth.adobe.com", "iat": now.as_second()});
    if let Some(id) = software_id {
        claims["software_id"] = json!(id);
        claims["client_name"] = json!("cmu-exporter simulator");
    }
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature: [u8; 64] = std::array::from_fn(|_| rand::random());
    (
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature)),
        sub,
    )
}

/// `sub` of a structurally valid statement from Adobe, or `None`.
pub(crate) fn statement_sub(statement: &str) -> Option<String> {
    let mut parts = statement.split('.');
    let (_, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || signature.is_empty() {
        return None;
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if claims.get("iss")?.as_str()? != "auth.adobe.com" {
        return None;
    }
    Some(claims.get("sub")?.as_str()?.to_owned())
}

/// `POST /o/client/register`.
pub(crate) fn register(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if !json_body {
        return oauth_error("invalid_request");
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return oauth_error("invalid_request");
    };
    let Some(statement) = request.get("software_statement").and_then(|s| s.as_str()) else {
        return oauth_error("invalid_request");
    };
    let redirect_uris = match request.get("redirect_uri") {
        None => vec![],
        Some(uri) => match uri.as_str().and_then(|u| reqwest::Url::parse(u).ok()) {
            Some(url) if url.scheme() == "https" => vec![url.to_string()],
            _ => return oauth_error("invalid_redirect_uri"),
        },
    };
    let Some(sub) = statement_sub(statement) else {
        return oauth_error("invalid_software_statement");
    };
    let now = shared.clock.now();
    let mut registry = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
    if registry.unapproved.contains(&sub) {
        return oauth_error("unapproved_software_statement");
    }
    if !registry.approved.contains(&sub) {
        return oauth_error("invalid_software_statement");
    }
    let (client_id, secret) = (random_uuid(), random_uuid());
    registry.clients.insert(
        client_id.clone(),
        Client {
            secret: secret.clone(),
            sub,
        },
    );
    registry.issued.push(secret.clone());
    let body = json!({
        "client_id": client_id,
        "client_secret": secret,
        "grant_types": ["client_credentials"],
        "redirect_uris": redirect_uris,
        "scopes": ["api:client:v2"],
        "client_id_issued_at": now.as_millisecond(),
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `POST /o/client/token`: the documented form body, or the query string
/// (as in Adobe's CMU screenshot).
pub(crate) fn token(shared: &Shared, query: &str, body: &[u8]) -> Response {
    let mut fields: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    fields.extend(form_urlencoded::parse(body).into_owned());
    match fields.get("grant_type").map(String::as_str) {
        None => return oauth_error("invalid_request"),
        Some("client_credentials") => {}
        Some(_) => return oauth_error("unsupported_grant_type"),
    }
    let (Some(id), Some(secret)) = (fields.get("client_id"), fields.get("client_secret")) else {
        return oauth_error("invalid_request");
    };
    let now = shared.clock.now();
    let mut registry = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
    if registry.clients.get(id).is_none_or(|c| &c.secret != secret) {
        return oauth_error("invalid_client");
    }
    let lifetime = shared.config.token_lifetime;
    let token: String = {
        let bytes: [u8; 32] = std::array::from_fn(|_| rand::random());
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let expires_at = now + jiff::SignedDuration::from_secs(lifetime.as_secs() as i64);
    registry.tokens.insert(
        token.clone(),
        Token {
            client_id: id.clone(),
            expires_at,
        },
    );
    registry.issued.push(token.clone());
    let body = json!({
        "id": random_uuid(),
        "access_token": token,
        "created_at": now.as_millisecond(),
        "expires_in": lifetime.as_secs(),
        "token_type": "bearer",
    });
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_allows_one_burst_then_one_per_second() {
        let mut t = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Timestamp::UNIX_EPOCH;
        assert!((0..10).all(|_| t.admit(ip, 10, 1.0, t0)));
        assert!(!t.admit(ip, 10, 1.0, t0));
        let later = t0 + jiff::SignedDuration::from_millis(1100);
        assert!(t.admit(ip, 10, 1.0, later));
        assert!(!t.admit(ip, 10, 1.0, later), "the burst must not come back");
        let much_later = later + jiff::SignedDuration::from_secs(60);
        assert!(t.admit(ip, 10, 1.0, much_later));
        assert!(
            !t.admit(ip, 10, 1.0, much_later),
            "a long pause refills one request only"
        );
    }

    #[test]
    fn minted_statements_decode_like_adobes() {
        let (jwt, sub) = mint_statement(None, Timestamp::UNIX_EPOCH);
        assert_eq!(statement_sub(&jwt), Some(sub));
        assert_eq!(statement_sub("a.b"), None);
    }
}
