//! The exporter's HTTP face: `/metrics`, `/healthz`, `/readyz` and a landing page.
//!
//! `POST /-/reload` reloads the configuration file, as SIGHUP does.
//!
//! `/metrics` serves the exposition assembled at the last poll plus the
//! self-metrics; it never calls Adobe and never re-encodes report series.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;

use crate::clock::Clock;
use crate::credentials::{Credentials, Health};
use crate::export::ExportStore;
use crate::reports::Reports;
use crate::supervisor::{ReloadError, Supervisor};
use crate::telemetry::Telemetry;

/// Content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub reports: Arc<Reports>,
    pub telemetry: Telemetry,
    pub credentials: Arc<Credentials>,
    pub supervisor: Arc<Supervisor>,
    pub clock: Clock,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: String,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing))
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
    let mut own = Vec::with_capacity(16 * 1024);
    state.telemetry.encode(&mut own);
    let mut response = if accepts_gzip(&headers) {
        let mut r = Response::new(Body::from_stream(chunk_stream(
            exposition.gzip_with(&own).to_vec(),
        )));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut chunks = exposition.chunks().to_vec();
        chunks.push(own.into());
        Response::new(Body::from_stream(chunk_stream(chunks)))
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// A stream over chunks already in memory.
fn chunk_stream(
    chunks: Vec<bytes::Bytes>,
) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    struct Ready(std::vec::IntoIter<bytes::Bytes>);
    impl futures_core::Stream for Ready {
        type Item = Result<bytes::Bytes, std::convert::Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Ready(chunks.into_iter())
}

/// Why the exporter is not ready, or `None` when it is.
pub fn unready_reason(state: &AppState) -> Option<String> {
    match state.credentials.health() {
        Health::NeedsPerson(why) => return Some(format!("credentials need a person: {why}")),
        Health::Failing(why) => return Some(format!("no access token: {why}")),
        Health::Unknown | Health::Ok => {}
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
    if !waiting.is_empty() {
        return Some(format!("not polled yet: {}", waiting.join(", ")));
    }
    (state.credentials.health() == Health::Unknown)
        .then(|| "no access token asked for yet".to_owned())
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
                ReloadError::NoFile | ReloadError::Invalid(_) => StatusCode::BAD_REQUEST,
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

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let secs = now.duration_since(t).as_secs();
            let rel = if secs >= 0 {
                format!("{secs}s ago")
            } else {
                format!("in {}s", -secs)
            };
            format!("{} ({rel})", t.strftime("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

/// The concurrency and activity charts of the first report serving each.
fn charts_section(store: &ExportStore) -> String {
    let mut out = String::new();
    for (dimension, what) in [
        ("concurrency-level", "streams opened at once"),
        ("activity-level", "streams tried at once"),
    ] {
        let Some((report, levels)) = store.levels(dimension).into_iter().next() else {
            continue;
        };
        let report = escape_html(&report);
        out.push_str("<div class=\"charts\">");
        out.push_str(&crate::charts::distribution_svg(
            &format!("Users per level of {what} (report {report})"),
            &levels,
        ));
        out.push_str(&crate::charts::what_if_svg(
            &format!("What-if: share of users a limit of N would stop ({what})"),
            &levels,
        ));
        out.push_str("</div>");
    }
    if out.is_empty() {
        return "<p>Charts appear here once a concurrency-level or activity-level report has been polled.</p>".into();
    }
    format!("<h2>Concurrency</h2>{out}")
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let now = state.clock.now();
    let mut page = String::with_capacity(8 * 1024);
    page.push_str(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>cmu-exporter</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}",
        ".bad{color:#b00}.ok{color:#070}.charts{display:flex;flex-wrap:wrap;gap:1em}",
        "figure{margin:0}figcaption{font-size:.9em;margin-bottom:.3em}</style></head><body>",
        "<h1>cmu-exporter</h1><p>Prometheus exporter for Adobe Pass Concurrency Monitoring Usage reports. ",
    ));
    let _ = write!(
        page,
        "<a href=\"{}\">Metrics</a> · <a href=\"healthz\">Health</a> · <a href=\"readyz\">Readiness</a></p>",
        escape_html(&state.telemetry_path)
    );
    let credentials = match state.credentials.health() {
        Health::Ok => "<span class=\"ok\">working</span>".to_owned(),
        Health::Unknown => "not used yet".to_owned(),
        Health::Failing(why) => {
            format!("<span class=\"bad\">failing: {}</span>", escape_html(&why))
        }
        Health::NeedsPerson(why) => format!(
            "<span class=\"bad\">needs a person: {}</span>",
            escape_html(&why)
        ),
    };
    let _ = write!(page, "<p>Credentials: {credentials}</p>");
    page.push_str(&charts_section(state.reports.store()));
    page.push_str("<h2>Reports</h2><table><tr><th>report</th><th>path</th><th>interval</th><th>last poll</th><th>last success</th><th>next poll</th><th>series</th><th>state</th></tr>");
    for (name, s) in state.reports.all() {
        let state_cell = match &s.last_error {
            None if s.last_success.is_some() => "<span class=\"ok\">up</span>".to_owned(),
            None => "waiting for the first poll".to_owned(),
            Some(e) => format!("<span class=\"bad\">{}</span>", escape_html(e)),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&name),
            escape_html(&s.path),
            humantime::format_duration(s.interval),
            when(s.last_attempt, now),
            when(s.last_success, now),
            when(s.next_poll, now),
            s.series,
            state_cell
        );
    }
    page.push_str("</table>");
    // Marks how many charts the browser laid out, for people and for the
    // headless-browser test alike.
    page.push_str(concat!(
        "<script>addEventListener('load',function(){var n=0;",
        "document.querySelectorAll('svg.chart').forEach(function(c){",
        "var b=c.getBBox();if(b.width>0&&b.height>0&&c.querySelector('rect.bar,circle'))n++;});",
        "document.body.setAttribute('data-charts-drawn',String(n));});</script>",
    ));
    page.push_str("</body></html>\n");
    Html(page)
}
