//! A remote-write store of our own making (`testkit` only), for the
//! answers a real one gives only when it is in trouble: the push tests
//! script its replies one by one, the chaos soak gives it random faults and
//! outages. Each request takes the next scripted reply, else a random
//! fault when chaos is on, else 503 while it is down. Else its samples are
//! judged as a TSDB judges them: a poisoned series is out of bounds; with
//! `in_order`, a sample older than its series' newest is out of order and
//! another value at the newest's time a duplicate (the same value is taken
//! silently). What it refuses, it refuses in its [`Dialect`]: Prometheus
//! refuses the whole request (400), Mimir stores the rest and answers 400,
//! Thanos Receive stores the rest and answers 409. What it stored can be
//! read back decoded, series by series.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A reply a test asks for.
#[derive(Debug, Clone)]
pub enum Reply {
    Status {
        code: u16,
        body: &'static str,
        retry_after: Option<u64>,
    },
    /// Answers 204 after this long (past the exporter's timeout: a failure).
    Slow(Duration),
}

/// Random trouble on a share of the requests: 500, 503, 429 with a
/// `Retry-After` of a few seconds, 413 (the request is split), or a reply
/// slower than `slowest`.
#[derive(Debug, Clone)]
pub struct StoreChaos {
    pub seed: u64,
    pub share: f64,
    pub slowest: Duration,
}

/// The kinds of trouble [`StoreChaos`] gives, as the store counts them.
pub const STORE_FAULT_KINDS: [&str; 5] = [
    "store 500",
    "store 503",
    "store 429",
    "store 413",
    "store slow",
];

/// How a store answers a request holding samples it refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// 400 for the whole request: nothing stored (Prometheus 2 and 3).
    #[default]
    Prometheus,
    /// The rest stored, 400 naming the first refusal `err-mimir-...`
    /// (Mimir, Cortex, Grafana Cloud).
    Mimir,
    /// The rest stored, 409 Conflict (Thanos Receive).
    Thanos,
}

/// Every dialect, for the soak to alternate.
pub const DIALECTS: [Dialect; 3] = [Dialect::Prometheus, Dialect::Mimir, Dialect::Thanos];

#[derive(Default)]
pub struct State {
    /// How refusals are answered.
    pub dialect: Dialect,
    /// Samples older than their series' newest are refused (a store with
    /// no out-of-order window).
    pub in_order: bool,
    /// Per series (its labels), the newest sample taken.
    newest: BTreeMap<BTreeMap<String, String>, (i64, f64)>,
    /// Samples refused, per reason (`out of bounds`, `out of order`, `duplicate`).
    pub refused: BTreeMap<&'static str, usize>,
    /// Requests taken in part (Mimir's 400, Thanos's 409).
    pub taken_in_part: usize,
    pub script: VecDeque<Reply>,
    /// Series holding these bytes are refused.
    pub poison: Option<Vec<u8>>,
    /// Every request answered 503 while set (a store down for a while).
    pub down: bool,
    chaos: Option<(StoreChaos, StdRng)>,
    /// Random faults given, per kind, and requests refused while down.
    pub faults: BTreeMap<&'static str, u64>,
    /// Each stored series (its encoded labels and sample) and how often it came.
    pub stored: BTreeMap<Vec<u8>, usize>,
    pub requests: usize,
    /// Requests that came without the remote-write headers.
    pub bad_headers: usize,
    /// Bodies that were no snappy-compressed `WriteRequest`.
    pub bad_bodies: usize,
    pub largest_request: usize,
    /// Every `Authorization` header that came.
    pub authorizations: BTreeSet<String>,
}

impl State {
    /// Turns random faults on (or off with `None`).
    pub fn set_chaos(&mut self, chaos: Option<StoreChaos>) {
        self.chaos = chaos.map(|c| {
            let rng = StdRng::seed_from_u64(c.seed);
            (c, rng)
        });
    }

    /// Every sample stored, per series (its labels, `__name__` among
    /// them): stamp in milliseconds to value. A series sent twice with the
    /// same stamp is kept once, as a store takes duplicates.
    pub fn samples(&self) -> BTreeMap<BTreeMap<String, String>, BTreeMap<i64, f64>> {
        let mut out: BTreeMap<_, BTreeMap<i64, f64>> = BTreeMap::new();
        for bytes in self.stored.keys() {
            if let Some(series) = decode_series(bytes) {
                out.entry(series.labels).or_default().extend(series.samples);
            }
        }
        out
    }

    fn chaos_reply(&mut self) -> Option<Reply> {
        let (chaos, rng) = self.chaos.as_mut()?;
        if !rng.random_bool(chaos.share.clamp(0.0, 1.0)) {
            return None;
        }
        let kind = rng.random_range(0..STORE_FAULT_KINDS.len());
        let reply = match kind {
            0 => Reply::Status {
                code: 500,
                body: "internal error",
                retry_after: None,
            },
            1 => Reply::Status {
                code: 503,
                body: "unavailable",
                retry_after: None,
            },
            2 => Reply::Status {
                code: 429,
                body: "too many requests",
                retry_after: Some(rng.random_range(1..4)),
            },
            3 => Reply::Status {
                code: 413,
                body: "request too large",
                retry_after: None,
            },
            _ => Reply::Slow(chaos.slowest),
        };
        *self.faults.entry(STORE_FAULT_KINDS[kind]).or_default() += 1;
        Some(reply)
    }
}

/// A running store: `url` takes `POST` remote-write requests.
pub struct Store {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
}

/// The length-delimited fields of a message: (field number, bytes).
fn fields(bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        match tag & 7 {
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).ok()?;
                out.push((tag >> 3, bytes.get(at..at.checked_add(len)?)?));
                at += len;
            }
            1 => {
                out.push((tag >> 3, bytes.get(at..at + 8)?));
                at += 8;
            }
            0 => {
                let start = at;
                varint(bytes, &mut at)?;
                out.push((tag >> 3, &bytes[start..at]));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The `TimeSeries` of a `WriteRequest`, each as its bytes; `None` when
/// the body is no `WriteRequest`.
pub fn series(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let fields = fields(body)?;
    fields
        .iter()
        .map(|(number, bytes)| (*number == 1).then(|| bytes.to_vec()))
        .collect()
}

/// One `TimeSeries` as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels, `__name__` among them.
    pub labels: BTreeMap<String, String>,
    /// Its (milliseconds, value) samples.
    pub samples: Vec<(i64, f64)>,
}

/// One `TimeSeries` decoded.
pub fn decode_series(bytes: &[u8]) -> Option<Series> {
    let mut labels = BTreeMap::new();
    let mut samples = Vec::new();
    for (number, field) in fields(bytes)? {
        let inner = fields(field)?;
        let text = |n: u64| {
            inner
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        match number {
            1 => {
                labels.insert(text(1), text(2));
            }
            2 => {
                let mut value = 0.0;
                let mut stamp = 0;
                for (k, v) in &inner {
                    match k {
                        1 => value = f64::from_le_bytes((*v).try_into().ok()?),
                        2 => stamp = varint(v, &mut 0)? as i64,
                        _ => {}
                    }
                }
                samples.push((stamp, value));
            }
            _ => {}
        }
    }
    Some(Series { labels, samples })
}

fn status(code: u16, body: &'static str) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, body).into_response()
}

async fn write(state: Arc<Mutex<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        let has = |name: &str, value: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()) == Some(value)
        };
        if !(has("content-encoding", "snappy") && has("x-prometheus-remote-write-version", "0.1.0"))
        {
            s.bad_headers += 1;
        }
        if let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
            s.authorizations.insert(value.to_owned());
        }
        match s.script.pop_front().or_else(|| s.chaos_reply()) {
            None if s.down => {
                *s.faults.entry("store down").or_default() += 1;
                return status(503, "the store is down");
            }
            reply => reply,
        }
    };
    match reply {
        Some(Reply::Status {
            code,
            body,
            retry_after,
        }) => {
            let mut response = status(code, body);
            if let Some(seconds) = retry_after {
                response.headers_mut().insert("retry-after", seconds.into());
            }
            return response;
        }
        Some(Reply::Slow(pause)) => tokio::time::sleep(pause).await,
        None => {}
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let decoded = snap::raw::Decoder::new().decompress_vec(&body).ok();
    let Some(series) = decoded.as_deref().and_then(series) else {
        s.bad_bodies += 1;
        return status(400, "not a snappy-compressed WriteRequest");
    };
    s.largest_request = s.largest_request.max(decoded.map_or(0, |d| d.len()));
    // Each series judged: taken, or refused with a reason.
    let mut refusals: Vec<&'static str> = Vec::new();
    let mut taken = Vec::new();
    let mut newest = s.newest.clone();
    for one in series {
        let poisoned = s
            .poison
            .as_ref()
            .is_some_and(|p| one.windows(p.len()).any(|w| w == p.as_slice()));
        let refusal = if poisoned {
            Some("out of bounds")
        } else {
            decode_series(&one).and_then(|decoded| {
                let mut refusal = None;
                for (at, value) in decoded.samples {
                    let entry = newest.get(&decoded.labels).copied();
                    match entry {
                        Some((t, _)) if s.in_order && at < t => {
                            refusal = Some("out of order sample")
                        }
                        Some((t, v)) if at == t && value.to_bits() != v.to_bits() => {
                            refusal = Some("duplicate sample for timestamp")
                        }
                        Some((t, _)) if at <= t => {}
                        _ => {
                            newest.insert(decoded.labels.clone(), (at, value));
                        }
                    }
                }
                refusal
            })
        };
        match refusal {
            Some(reason) => refusals.push(reason),
            None => taken.push(one),
        }
    }
    for reason in &refusals {
        *s.refused.entry(reason).or_default() += 1;
    }
    let in_part = match (refusals.first(), s.dialect) {
        (None, _) => None,
        // All or nothing: the samples taken are not kept.
        (Some(&first), Dialect::Prometheus) => return status(400, first),
        (Some(&first), Dialect::Mimir) => Some((
            StatusCode::BAD_REQUEST,
            format!(
                "failed pushing to ingester: user=anonymous: {first} (err-mimir-sample-{})",
                first.replace(' ', "-")
            ),
        )),
        (Some(&first), Dialect::Thanos) => Some((
            StatusCode::CONFLICT,
            format!(
                "store locally for endpoint 127.0.0.1:10901: add {} series: {first}",
                refusals.len()
            ),
        )),
    };
    s.newest = newest;
    for one in taken {
        *s.stored.entry(one).or_default() += 1;
    }
    match in_part {
        None => StatusCode::NO_CONTENT.into_response(),
        Some((code, message)) => {
            s.taken_in_part += 1;
            (code, message).into_response()
        }
    }
}

/// Starts a store on an ephemeral port of 127.0.0.1.
pub async fn start() -> std::io::Result<Store> {
    let state: Arc<Mutex<State>> = Arc::default();
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/api/v1/write",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            write(shared.clone(), headers, body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api/v1/write", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the faulty store stopped");
        }
    });
    Ok(Store { url, state })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::remote_write::WriteRequest;

    #[test]
    fn what_the_exporter_encodes_decodes_to_its_labels_and_sample() {
        let mut request = WriteRequest::default();
        let extra = vec![("job".to_owned(), "cmu-exporter".to_owned())];
        request.append_series(
            "m",
            |f| f("tenant", b"ACME"),
            2.5,
            &extra,
            1_796_000_000_000,
        );
        request.append_series("m", |f| f("tenant", b"Kids"), 0.0, &extra, 5);
        let body = snap::raw::Decoder::new()
            .decompress_vec(&request.compressed())
            .unwrap();
        let all = series(&body).unwrap();
        assert_eq!(all.len(), 2);
        let first = decode_series(&all[0]).unwrap();
        assert_eq!(first.labels["__name__"], "m");
        assert_eq!(first.labels["tenant"], "ACME");
        assert_eq!(first.labels["job"], "cmu-exporter");
        assert_eq!(first.samples, vec![(1_796_000_000_000, 2.5)]);
        assert_eq!(decode_series(&all[1]).unwrap().samples, vec![(5, 0.0)]);
        assert!(series(b"\x0a\xff").is_none(), "a cut body is no request");
    }
}
