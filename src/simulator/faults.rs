//! Fault injection and the request log of the simulator.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which simulated endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Register,
    Token,
    Cmu,
    Esm,
}

impl Endpoint {
    /// The endpoint that serves reports of `api`.
    pub fn of(api: crate::report::ReportApi) -> Self {
        match api {
            crate::report::ReportApi::Cmu => Endpoint::Cmu,
            crate::report::ReportApi::Esm => Endpoint::Esm,
        }
    }
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Register,
    Token,
    /// Both DCR endpoints.
    Dcr,
    Cmu,
    Esm,
}

impl Target {
    fn matches(self, endpoint: Endpoint) -> bool {
        matches!(
            (self, endpoint),
            (Target::Register, Endpoint::Register)
                | (Target::Token, Endpoint::Token)
                | (Target::Dcr, Endpoint::Register | Endpoint::Token)
                | (Target::Cmu, Endpoint::Cmu)
                | (Target::Esm, Endpoint::Esm)
        )
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a short text body (5xx, 403, ...).
    Status(u16),
    /// 429 with a text body, and `Retry-After` when given.
    Throttle { retry_after: Option<u64> },
    /// 200 with the JSON body cut in half.
    TruncatedJson,
    /// 400 with `{"error": code}`, as the DCR server answers.
    OAuthError(String),
    /// Answer normally after this delay.
    Slow(Duration),
    /// Answer exactly this: any status, headers and body (a hostile answer).
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
    },
    /// Send the first half of the normal answer, then nothing for this long.
    Stall(Duration),
    /// Send the first half of the normal answer, then break the connection.
    Broken,
    /// 200 with a JSON-looking body of this many bytes, streamed as it goes
    /// (no `Content-Length`): far more than anyone should read.
    Endless(u64),
}

impl Fault {
    /// A hostile answer: `status`, a content type and `body`.
    pub fn raw(status: u16, content_type: &str, body: impl Into<bytes::Bytes>) -> Self {
        Fault::Raw {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
}

/// Random faults on a share of the requests, on every endpoint, for the
/// chaos soak: 5xx, 429 with and without `Retry-After`, truncated and slow
/// answers. A queued fault (`Recorder::inject`) still comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Seed of the draws, so a run can be repeated.
    pub seed: u64,
    /// Share of the requests that get a fault (0 to 1).
    pub share: f64,
    /// Longest delay of a slow answer (real time).
    pub slowest: Duration,
    /// Largest `Retry-After` of a 429, in seconds.
    pub longest_retry_after: u64,
}

/// The kinds of fault chaos draws from, as `Recorder::chaos_counts` names them.
pub const CHAOS_KINDS: [&str; 5] = [
    "5xx",
    "429 with Retry-After",
    "429 without Retry-After",
    "truncated",
    "slow",
];

impl Chaos {
    /// One draw: no fault, or a fault and the name of its kind.
    fn draw(&self, rng: &mut StdRng) -> Option<(&'static str, Fault)> {
        if !rng.random_bool(self.share.clamp(0.0, 1.0)) {
            return None;
        }
        let kind = CHAOS_KINDS[rng.random_range(0..CHAOS_KINDS.len())];
        let fault = match kind {
            "5xx" => Fault::Status([500, 502, 503, 504][rng.random_range(0..4)]),
            "429 with Retry-After" => Fault::Throttle {
                retry_after: Some(rng.random_range(1..=self.longest_retry_after.max(1))),
            },
            "429 without Retry-After" => Fault::Throttle { retry_after: None },
            "truncated" => Fault::TruncatedJson,
            _ => Fault::Slow(self.slowest.mul_f64(rng.random::<f64>())),
        };
        Some((kind, fault))
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub endpoint: Endpoint,
    /// Real time of arrival, to measure request rates.
    pub at: Instant,
    /// Simulated time of arrival.
    pub sim_time: Timestamp,
    /// Path as requested (no query).
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Status of the answer.
    pub status: u16,
}

/// Requests kept at most in the log (the counters keep counting past it).
const LOG_CAPACITY: usize = 100_000;

/// Pending faults, the request log and counters.
#[derive(Debug, Default)]
pub struct Recorder {
    faults: Mutex<Vec<(Target, Fault, usize)>>,
    log: Mutex<Vec<Request>>,
    chaos: Mutex<Option<(Chaos, StdRng)>>,
    /// Faults chaos injected, by endpoint and kind.
    chaos_counts: Mutex<BTreeMap<(Endpoint, &'static str), u64>>,
    /// DCR requests the throttle refused (injected 429s not included).
    throttled: AtomicU64,
}

impl Recorder {
    /// Queues `fault` for the next `count` requests to `target`.
    pub fn inject(&self, target: Target, fault: Fault, count: usize) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((target, fault, count));
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Starts (or, with `None`, stops) random faults.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        *self.chaos.lock().unwrap_or_else(|e| e.into_inner()) =
            chaos.map(|c| (c.clone(), StdRng::seed_from_u64(c.seed)));
    }

    /// Faults chaos injected so far, by endpoint and kind.
    pub fn chaos_counts(&self) -> BTreeMap<(Endpoint, &'static str), u64> {
        self.chaos_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a DCR request the throttle refused.
    pub fn note_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// DCR requests the throttle refused.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Takes the next fault for `endpoint`: a queued one, else one chaos draws.
    pub fn take(&self, endpoint: Endpoint) -> Option<Fault> {
        self.take_queued(endpoint).or_else(|| {
            let mut chaos = self.chaos.lock().unwrap_or_else(|e| e.into_inner());
            let (settings, rng) = chaos.as_mut()?;
            let (kind, fault) = settings.draw(rng)?;
            *self
                .chaos_counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry((endpoint, kind))
                .or_default() += 1;
            Some(fault)
        })
    }

    fn take_queued(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let i = faults
            .iter()
            .position(|(t, _, n)| t.matches(endpoint) && *n > 0)?;
        faults[i].2 -= 1;
        let fault = faults[i].1.clone();
        if faults[i].2 == 0 {
            faults.remove(i);
        }
        Some(fault)
    }

    pub fn record(&self, request: Request) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= LOG_CAPACITY {
            log.drain(..LOG_CAPACITY / 10);
        }
        log.push(request);
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests hit `endpoint` (any status).
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .count()
    }

    /// How many requests hit `endpoint` and got `status`.
    pub fn count_status(&self, endpoint: Endpoint, status: u16) -> usize {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .filter(|r| r.endpoint == endpoint && r.status == status)
            .count()
    }
}
