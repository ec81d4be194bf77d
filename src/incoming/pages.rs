//! The routes: `/metrics`, `/healthz`, `/readyz`, `POST /-/reload` (as
//! SIGHUP does) and the landing page (`landing`).
//!
//! `/metrics` serves the exposition assembled at the last poll plus the
//! self-metrics; it never calls Adobe and never re-encodes report series.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::state::AppState;

use crate::credentials::Health;
use crate::supervisor::ReloadError;

/// Content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(super::landing::page))
        .route(&state.telemetry_path, get(metrics))
        .route("/healthz", get(|| async { "OK\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .with_state(state)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                matches!(
                    p.trim().replace(' ', "").as_str(),
                    "q=0" | "q=0.0" | "q=0.00" | "q=0.000"
                )
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let exposition = state.reports.store().current();
    let own = state.self_metrics.current(&state.telemetry);
    let mut response = if accepts_gzip(&headers) {
        let mut r = chunks_response(exposition.gzip_with(&own));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut chunks = exposition.chunks().to_vec();
        chunks.push(own.text.clone());
        chunks_response(chunks)
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// A response of chunks already in memory, sent in order without copying,
/// with its length announced (no chunked transfer encoding).
fn chunks_response(chunks: Vec<bytes::Bytes>) -> Response {
    let len: usize = chunks.iter().map(bytes::Bytes::len).sum();
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
    )));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// Why the exporter is not ready, or `None` when it is.
pub fn unready_reason(state: &AppState) -> Option<String> {
    for credentials in &state.accounts {
        let who = credentials
            .account()
            .map_or(String::new(), |n| format!("account {n}: "));
        match credentials.health() {
            Health::NeedsPerson(why) => {
                return Some(format!("{who}credentials need a person: {why}"));
            }
            Health::Failing(why) => return Some(format!("{who}no access token: {why}")),
            Health::Unknown | Health::Ok => {}
        }
    }
    let reports = state.reports.all();
    if let Some((name, s)) = reports.iter().find(|(_, s)| s.needs_person) {
        return Some(format!(
            "report {name}: {}",
            s.last_error.as_deref().unwrap_or("failing")
        ));
    }
    let waiting: Vec<&str> = reports
        .iter()
        .filter(|(_, s)| s.last_attempt.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    // Ready once every report polled here was tried: an account no report of
    // this process (or shard) uses never asks for a token, and is no reason.
    (!waiting.is_empty()).then(|| format!("not polled yet: {}", waiting.join(", ")))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match unready_reason(&state) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// `POST /-/reload`: 200 with what changed, or why the new configuration
/// was refused (the previous one keeps running): 400 for a bad or missing
/// file, 409 for a change that needs a restart, 503 while stopping.
async fn reload(State(state): State<AppState>) -> Response {
    match state.supervisor.reload().await {
        Ok(summary) => (StatusCode::OK, format!("reloaded: {summary}\n")).into_response(),
        Err(reason) => {
            let status = match reason {
                ReloadError::NoFile | ReloadError::Invalid(_) | ReloadError::Push(_) => {
                    StatusCode::BAD_REQUEST
                }
                ReloadError::NeedsRestart { .. } => StatusCode::CONFLICT,
                ReloadError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            };
            (
                status,
                format!("reload refused, the previous configuration keeps running: {reason}\n"),
            )
                .into_response()
        }
    }
}
