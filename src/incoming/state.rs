//! What every handler reads: the exporter's shared state, and the cache
//! of the self-metrics text.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::credentials::Credentials;
use crate::export::Tail;
use crate::reports::Reports;
use crate::supervisor::Supervisor;
use crate::telemetry::Telemetry;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub reports: Arc<Reports>,
    pub telemetry: Telemetry,
    /// Every account's credentials (one in the single-account form).
    pub accounts: Vec<Arc<Credentials>>,
    pub supervisor: Arc<Supervisor>,
    /// The remote-write stores pushed to.
    pub pusher: Arc<crate::push::Pusher>,
    pub clock: Clock,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: String,
    /// The self-metrics as the last scrape encoded them.
    pub self_metrics: Arc<SelfMetricsCache>,
}

/// How old the process metrics (CPU, memory) on a page may be.
const SELF_METRICS_MAX_AGE: Duration = Duration::from_secs(1);

/// The self-metrics of the last scrape, served again while no event changed
/// them and for at most [`SELF_METRICS_MAX_AGE`]: a burst of scrapes
/// encodes and compresses them once.
#[derive(Debug, Default)]
pub struct SelfMetricsCache(Mutex<Option<(u64, Instant, Arc<Tail>)>>);

impl SelfMetricsCache {
    pub(super) fn current(&self, telemetry: &Telemetry) -> Arc<Tail> {
        // Read before encoding: an event during the encoding makes the next scrape encode again.
        let generation = telemetry.generation();
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, at, tail)) = cached.as_ref()
            && *seen == generation
            && at.elapsed() < SELF_METRICS_MAX_AGE
        {
            return tail.clone();
        }
        let mut text = Vec::with_capacity(16 * 1024);
        telemetry.encode(&mut text);
        let tail = Arc::new(Tail::new(text.into()));
        *cached = Some((generation, Instant::now(), tail.clone()));
        tail
    }
}
