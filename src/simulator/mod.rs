//! A faithful simulator of Adobe Pass: the DCR server and the CMU and ESM
//! report APIs, on the same tokens.
//!
//! The real servers need a licence and cannot be reached from our machines,
//! so tests, the `demo` mode and the benchmarks all run against this one
//! simulator. It follows Adobe's documented behaviour (the CMU and ESM API
//! references): 201 answers
//! from DCR with Adobe's error codes, a per-IP throttle with a one-time burst,
//! HAL+JSON reports whose values are all strings, drill-down links that are an
//! object or an array, links with the `/cmu/v2` prefix whatever prefix was
//! requested, gzip when asked, and an undocumented metric and dimension.
//! Each answer holds data as of Adobe's last computation of the report
//! ([`Computations`]: CMU's documented cadences, at phases of their own;
//! ESM's `Last-Modified`), so its newest bucket is partial.
//!
//! It counts every request and can inject faults, for tests:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cmu_exporter::simulator::{Simulator, SimulatorConfig, Target, Fault};
//! let sim = Simulator::start(SimulatorConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! sim.inject(Target::Cmu, Fault::Status(503), 2);
//! println!("DCR {} CMU {}", sim.dcr_url(), sim.cmu_url());
//! # Ok(()) }
//! ```

mod cmu;
mod computation;
pub mod data;
mod dcr;
mod esm;
mod faults;
mod wolap;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use jiff::tz::TimeZone;
use tokio::task::JoinHandle;
use tower_http::compression::CompressionLayer;

pub use computation::Computations;
pub use esm::Outage;
pub use faults::{CHAOS_KINDS, Chaos, Endpoint, Fault, Request, Target};

use crate::clock::Clock;
use crate::report::tree::Tree;
use crate::shutdown::Shutdown;
use cmu::Cmu;
use data::Universe;
use dcr::{Registry, Throttle};
use esm::Esm;
use faults::Recorder;
use wolap::Dataset;

/// How the simulated servers behave.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Seed of the synthetic data.
    pub seed: u64,
    /// `expires_in` of access tokens (Adobe: 6 h).
    pub token_lifetime: Duration,
    /// DCR throttle: one-time burst per client IP...
    pub throttle_burst: u32,
    /// ...then this many requests per second.
    pub throttle_rate: f64,
    /// Largest `limit` a query may ask for before it is "too large" (400).
    pub max_limit: u32,
    /// Most time buckets one query may span before it is "too large" (400),
    /// as Adobe refuses oversized queries; `None`: no such bound.
    pub max_query_buckets: Option<u64>,
    /// Serve rows in a shuffled order (Adobe promises none).
    pub shuffle_rows: bool,
    /// Extra MVPDs and applications (1 = the default universe).
    pub scale: usize,
    /// Time zone of the CMU report buckets.
    pub time_zone: TimeZone,
    /// Time zone of the ESM report buckets (Adobe: Pacific).
    pub esm_time_zone: TimeZone,
    /// The clock of the simulated world.
    pub clock: Clock,
    /// When CMU computes each kind of report: its answers hold data as of
    /// the last computation (the newest bucket partial, later ones absent).
    pub computations: Computations,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            token_lifetime: Duration::from_secs(21_600),
            throttle_burst: 10,
            throttle_rate: 1.0,
            max_limit: 200_000,
            max_query_buckets: None,
            shuffle_rows: false,
            scale: 1,
            time_zone: TimeZone::UTC,
            esm_time_zone: TimeZone::get(crate::report::ReportApi::Esm.profile().default_time_zone)
                .unwrap_or(TimeZone::UTC),
            clock: Clock::wall(),
            computations: Computations::default(),
        }
    }
}

/// State shared by the request handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    config: SimulatorConfig,
    clock: Clock,
    cmu: Cmu,
    esm: Esm,
    recorder: Recorder,
    registry: Mutex<Registry>,
    throttle: Mutex<Throttle>,
    /// `(dimension, value)` pairs whose rows are no longer served.
    hidden: Mutex<Vec<(String, String)>>,
    /// Multiplier of `failed-attempts` (1 normally; more for a failure spike).
    failure_factor: Mutex<f64>,
}

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    statement: String,
    shutdown: Shutdown,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Starts both servers on `addr` (use port 0 for an ephemeral port).
    pub async fn start(config: SimulatorConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut registry = Registry::default();
        let (statement, sub) = dcr::mint_statement(None, config.clock.now());
        registry.approved.insert(sub);
        registry.issued.push(statement.clone());
        let universe = Universe::new(config.scale);
        let shared = Arc::new(Shared {
            clock: config.clock.clone(),
            esm: Esm::new(
                universe.values("tenant").unwrap_or_default(),
                universe.values("mvpd").unwrap_or_default(),
                config.esm_time_zone.clone(),
            ),
            cmu: Cmu {
                tree: Tree::documented(crate::report::ReportApi::Cmu).clone(),
                universe,
                time_zone: config.time_zone.clone(),
            },
            recorder: Recorder::default(),
            registry: Mutex::new(registry),
            throttle: Mutex::new(Throttle::default()),
            hidden: Mutex::new(Vec::new()),
            failure_factor: Mutex::new(1.0),
            config,
        });
        let app = axum::Router::new()
            .fallback(dispatch)
            .layer(axum::middleware::map_response_with_state(
                shared.clone(),
                stamp_date,
            ))
            .layer(
                CompressionLayer::new()
                    .gzip(true)
                    .no_br()
                    .no_deflate()
                    .no_zstd(),
            )
            .with_state(shared.clone());
        let shutdown = Shutdown::new();
        let mut signal = shutdown.signal();
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move { signal.wait().await })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            statement,
            shutdown,
            task: Some(task),
        })
    }

    /// The DCR registry, locked.
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The clock of the simulated world.
    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    /// Address the servers listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the DCR server (`/o/client/...` below it).
    pub fn dcr_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of the CMU API, with Adobe's documented `/cmu/v2` prefix.
    pub fn cmu_url(&self) -> String {
        format!("http://{}/cmu/v2", self.addr)
    }

    /// Base URL of the ESM API, with Adobe's documented `/esm/v3` prefix.
    pub fn esm_url(&self) -> String {
        format!("http://{}/esm/v3", self.addr)
    }

    /// Starts an outage of `mvpd` in ESM data (`None` ends it): its
    /// authorizations fail at `failure_ratio` and take `latency_factor` times
    /// as long.
    pub fn mvpd_outage(&self, mvpd: &str, outage: Option<Outage>) {
        self.shared.esm.set_outage(mvpd, outage);
    }

    /// The same API under another prefix (`/v2`), like Adobe's staging alias:
    /// its links still say `/cmu/v2`.
    pub fn alias_cmu_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// An approved software statement, shaped like Adobe's (no `software_id`).
    pub fn software_statement(&self) -> &str {
        &self.statement
    }

    /// Mints another statement: approved, or valid but not yet approved.
    pub fn mint_statement(&self, approved: bool, software_id: Option<&str>) -> String {
        let (statement, sub) = dcr::mint_statement(software_id, self.shared.clock.now());
        let mut registry = self.registry();
        if approved {
            registry.approved.insert(sub)
        } else {
            registry.unapproved.insert(sub)
        };
        registry.issued.push(statement.clone());
        statement
    }

    /// Mints an approved statement for a programmer account that sees only
    /// `tenants` (Adobe's implicit tenant filter).
    pub fn mint_account_statement(&self, tenants: &[&str]) -> String {
        let (statement, sub) = dcr::mint_statement(None, self.shared.clock.now());
        let mut registry = self.registry();
        registry.approved.insert(sub.clone());
        registry
            .scopes
            .insert(sub, tenants.iter().map(|t| (*t).to_owned()).collect());
        registry.issued.push(statement.clone());
        statement
    }

    /// Revokes the clients registered with `statement` only.
    pub fn revoke_credentials_of(&self, statement: &str) {
        let Some(sub) = dcr::statement_sub(statement) else {
            return;
        };
        let mut registry = self.registry();
        let revoked: Vec<String> = registry
            .clients
            .iter()
            .filter(|(_, c)| c.sub == sub)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &revoked {
            registry.clients.remove(id);
        }
        registry
            .tokens
            .retain(|_, t| !revoked.contains(&t.client_id));
    }

    /// Approves every statement minted unapproved.
    pub fn approve_all(&self) {
        let mut registry = self.registry();
        let pending: Vec<String> = registry.unapproved.drain().collect();
        registry.approved.extend(pending);
    }

    /// Revokes every client: their tokens stop working and the token
    /// endpoint answers `invalid_client`.
    pub fn revoke_credentials(&self) {
        let mut registry = self.registry();
        registry.clients.clear();
        registry.tokens.clear();
    }

    /// Makes every issued access token expire now.
    pub fn expire_tokens(&self) {
        let now = self.shared.clock.now();
        let mut registry = self.registry();
        registry
            .tokens
            .values_mut()
            .for_each(|t| t.expires_at = now);
    }

    /// Stops serving the rows where `dimension` is `value` (a series drops out).
    pub fn hide(&self, dimension: &str, value: &str) {
        self.shared
            .hidden
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((dimension.to_owned(), value.to_owned()));
    }

    /// Multiplies every `failed-attempts` value served from now on by
    /// `factor` (a failure spike; 1 restores normal data).
    pub fn set_failure_factor(&self, factor: f64) {
        *self
            .shared
            .failure_factor
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = factor;
    }

    pub(crate) fn failure_factor(shared: &Shared) -> f64 {
        *shared
            .failure_factor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `fault` for the next `count` requests to `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: usize) {
        self.shared.recorder.inject(target, fault, count);
    }

    /// Starts random faults on a share of all requests (`None` stops them).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.shared.recorder.set_chaos(chaos);
    }

    /// Faults chaos injected so far, by endpoint and kind.
    pub fn chaos_counts(&self) -> std::collections::BTreeMap<(Endpoint, &'static str), u64> {
        self.shared.recorder.chaos_counts()
    }

    /// DCR requests Adobe's throttle refused (injected 429s not included):
    /// a client that keeps to the throttle causes none.
    pub fn throttle_refusals(&self) -> u64 {
        self.shared.recorder.throttled()
    }

    /// Withdraws (or gives back) the approval of `statement`: while it is
    /// withdrawn, registering with it gets `unapproved_software_statement`.
    pub fn set_statement_approved(&self, statement: &str, approved: bool) {
        let Some(sub) = dcr::statement_sub(statement) else {
            return;
        };
        let mut registry = self.registry();
        if approved {
            registry.unapproved.remove(&sub);
            registry.approved.insert(sub);
        } else {
            registry.approved.remove(&sub);
            registry.unapproved.insert(sub);
        }
    }

    /// Cancels every pending fault.
    pub fn clear_faults(&self) {
        self.shared.recorder.clear_faults();
    }

    /// Requests seen so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.recorder.requests()
    }

    /// Requests that hit `endpoint`, whatever the answer.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.shared.recorder.count(endpoint)
    }

    /// Requests that hit `endpoint` and got `status`.
    pub fn count_status(&self, endpoint: Endpoint, status: u16) -> usize {
        self.shared.recorder.count_status(endpoint, status)
    }

    /// Every secret value the simulator handed out: statements, client
    /// secrets, access tokens. Tests search logs and pages for them.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .issued
            .clone()
    }

    /// Every report path the simulated CMU serves.
    pub fn report_paths(&self) -> Vec<crate::report::ReportPath> {
        self.shared.cmu.tree().paths().cloned().collect()
    }

    /// Every report path the simulated ESM serves.
    pub fn esm_report_paths(&self) -> Vec<crate::report::ReportPath> {
        self.shared.esm.tree().paths().cloned().collect()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// The client IP as Adobe sees it: the first `X-Forwarded-For` entry, else the peer.
fn client_ip(headers: &HeaderMap, peer: SocketAddr) -> std::net::IpAddr {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// Every answer's `Date` is the simulator's clock, as Adobe's is its own
/// (an exporter whose clock is off can tell).
async fn stamp_date(
    State(shared): State<Arc<Shared>>,
    mut response: axum::response::Response,
) -> axum::response::Response {
    let now = shared.clock.now();
    if let Ok(text) = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&now)
        && let Ok(value) = text.parse()
    {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let endpoint = match path.as_str() {
        "/o/client/register" => Endpoint::Register,
        "/o/client/token" => Endpoint::Token,
        p if p == "/cmu/v2" || p.starts_with("/cmu/v2/") || p == "/v2" || p.starts_with("/v2/") => {
            Endpoint::Cmu
        }
        p if p == "/esm/v3" || p.starts_with("/esm/v3/") => Endpoint::Esm,
        _ => return (StatusCode::NOT_FOUND, "Not Found\n").into_response(),
    };
    let expected = if matches!(endpoint, Endpoint::Cmu | Endpoint::Esm) {
        Method::GET
    } else {
        Method::POST
    };
    let sim_time = shared.clock.now();
    let at = std::time::Instant::now();
    let response = if method != expected {
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response()
    } else {
        answer(&shared, endpoint, &path, &query, &headers, &body, peer).await
    };
    shared.recorder.record(Request {
        endpoint,
        at,
        sim_time,
        path,
        query,
        status: response.status().as_u16(),
    });
    response
}

async fn answer(
    shared: &Shared,
    endpoint: Endpoint,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    peer: SocketAddr,
) -> Response {
    let mut truncate = false;
    let mut stall = None;
    let mut broken = false;
    match shared.recorder.take(endpoint) {
        Some(Fault::Raw {
            status,
            headers,
            body,
        }) => return raw_answer(status, &headers, body),
        Some(Fault::Endless(bytes)) => return endless(bytes),
        Some(Fault::Stall(pause)) => stall = Some(pause),
        Some(Fault::Broken) => broken = true,
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                format!(
                    "{} (injected)\n",
                    status.canonical_reason().unwrap_or("error")
                ),
            )
                .into_response();
        }
        Some(Fault::Throttle { retry_after }) => return dcr::throttled(retry_after),
        Some(Fault::OAuthError(code)) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({ "error": code })),
            )
                .into_response();
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::TruncatedJson) => truncate = true,
        None => {}
    }
    // Only the DCR endpoints are throttled (reference §1.3).
    if matches!(endpoint, Endpoint::Register | Endpoint::Token) {
        let admitted = shared
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(
                client_ip(headers, peer),
                shared.config.throttle_burst,
                shared.config.throttle_rate,
                shared.clock.now(),
            );
        if !admitted {
            shared.recorder.note_throttled();
            return dcr::throttled(None);
        }
    }
    let response = match endpoint {
        Endpoint::Register => dcr::register(shared, headers, body),
        Endpoint::Token => dcr::token(shared, query, body),
        Endpoint::Cmu => wolap::report(shared, &shared.cmu, path, query, headers).0,
        Endpoint::Esm => wolap::report(shared, &shared.esm, path, query, headers).0,
    };
    match (truncate, stall) {
        (true, _) => truncated(response).await,
        (_, Some(pause)) => stalled(response, pause).await,
        _ if broken => broken_off(response).await,
        _ => response,
    }
}

/// The first half of the answer, then the connection breaks (the body
/// stream fails, which aborts the response).
async fn broken_off(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let first = bytes.slice(..bytes.len() / 2);
    // The break comes a moment after the first half, which (with the
    // headers) has left by then.
    let pieces = futures_util::stream::iter([Some(first), None]).then(|piece| async move {
        match piece {
            Some(piece) => Ok(piece),
            None => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("connection broken (injected)"))
            }
        }
    });
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

/// Exactly the answer a fault describes.
fn raw_answer(status: u16, headers: &[(String, String)], body: Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// 200 and `total` bytes of a report that never closes, streamed.
fn endless(total: u64) -> Response {
    const CHUNK: usize = 64 * 1024;
    let filler = Bytes::from(
        br#"{"tenant":"ACME","active-users":"1"},"#
            .iter()
            .copied()
            .cycle()
            .take(CHUNK)
            .collect::<Vec<u8>>(),
    );
    let head = Bytes::from_static(br#"{"report":["#);
    let stream = futures_util::stream::unfold(0u64, move |sent| {
        let filler = filler.clone();
        let head = head.clone();
        async move {
            if sent >= total {
                return None;
            }
            let chunk = if sent == 0 { head } else { filler };
            let next = sent + chunk.len() as u64;
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    response
}

/// The same answer, its first half sent at once and the rest after `pause`.
async fn stalled(response: Response, pause: Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let (first, second) = (
        bytes.slice(..bytes.len() / 2),
        bytes.slice(bytes.len() / 2..),
    );
    let pieces = futures_util::stream::iter([(first, Duration::ZERO), (second, pause)]).then(
        |(piece, wait)| async move {
            tokio::time::sleep(wait).await;
            Ok::<_, std::io::Error>(piece)
        },
    );
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

/// The same answer with its body cut in half.
async fn truncated(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let mut parts = parts;
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from(half))
}
