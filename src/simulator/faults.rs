//! Fault injection and the request log of the simulator.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// Which simulated endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Register,
    Token,
    Cmu,
    Esm,
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

    /// Takes the next fault for `endpoint`, if one is pending.
    pub fn take(&self, endpoint: Endpoint) -> Option<Fault> {
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
