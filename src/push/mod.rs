//! Push to Prometheus-compatible stores (remote write 1.0): every complete
//! bucket of every report reaches each configured store once, as one
//! sample per series stamped at the end of its bucket (the backfill's
//! rule), in time order per series, whatever was down in between: the
//! exporter, Adobe or the store. Scraping `/metrics` works beside it.
//!
//! - [`Pusher`] is a `Sink` of `Reports`: each
//!   successful poll's answer is queued for every remote (a bounded
//!   queue; a full one defers the answer to the gap fill, never blocks a
//!   poll or `/metrics`).
//! - `remote`: one task per remote turns answers into pushes, fills gaps
//!   from Adobe up to `max_gap`, and pushes the self-metrics with the
//!   configuration's thresholds and stream limits.
//! - `store`: the store's client and what its answers mean (retry, split,
//!   reject, hold).
//! - `cursor`: where each report stands on each remote, durable in
//!   `state_dir`.

mod cursor;
mod remote;
pub mod sigv4;
mod store;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{AdobeConfig, RemoteWriteConfig, ReportConfig};
use crate::export::ReportSnapshot;
use crate::outcome::Answer;
use crate::reports::Sink;
use crate::shutdown::Shutdown;
use crate::telemetry::Telemetry;
use crate::thresholds::Thresholds;
use crate::wolap::AuthorizedClient;

pub use cursor::Cursors;
pub use remote::{RemoteStatus, bucket_request};
pub use store::{Delivery, RejectReason, SetupError, Stopped, Store};

/// Most series in one write request (Prometheus's own default sends up to 2000).
pub const MAX_BATCH: usize = 2000;

/// Polled answers a remote holds at most while its store is slow.
const QUEUE: usize = 4;

/// How long a remote may finish its request in flight when the exporter stops.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the push shares with the pollers.
#[derive(Clone)]
pub struct PushContext {
    /// One authorized client per account, for the gap fill.
    pub clients: Arc<BTreeMap<Option<String>, AuthorizedClient>>,
    pub adobe: Arc<AdobeConfig>,
    pub clock: Clock,
    pub telemetry: Telemetry,
    pub state_dir: PathBuf,
    /// The `instance` pushed series carry unless `external_labels` sets one.
    pub instance: String,
    /// Bounds concurrent requests to Adobe, the pollers' included.
    pub permits: Arc<Semaphore>,
}

struct Running {
    config: RemoteWriteConfig,
    queue: mpsc::Sender<remote::Job>,
    status: Arc<Mutex<RemoteStatus>>,
    stop: Shutdown,
    task: JoinHandle<()>,
}

/// Every configured remote.
pub struct Pusher {
    ctx: PushContext,
    reports: Arc<RwLock<BTreeMap<String, ReportConfig>>>,
    /// The configuration's thresholds and stream limits, pushed with the
    /// self-metrics (the rules join the reports with them).
    thresholds: Arc<RwLock<Option<Thresholds>>>,
    remotes: Mutex<BTreeMap<String, Running>>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remotes = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Pusher")
            .field("remotes", &remotes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Checks every remote of the configuration can be set up (its files read).
pub fn check(remotes: &[RemoteWriteConfig]) -> Result<(), SetupError> {
    for remote in remotes {
        Store::new(remote)?;
    }
    Ok(())
}

impl Pusher {
    pub fn new(ctx: PushContext) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            reports: Arc::default(),
            thresholds: Arc::default(),
            remotes: Mutex::default(),
        })
    }

    /// Runs the remotes of `remotes`: an unchanged one keeps its task, a
    /// changed one is restarted, a removed one stopped (its cursors stay
    /// in `state_dir`). A remote that cannot be set up changes nothing.
    pub async fn configure(&self, remotes: &[RemoteWriteConfig]) -> Result<(), SetupError> {
        let mut stores = Vec::new();
        for config in remotes {
            stores.push((config.clone(), Store::new(config)?));
        }
        let wanted: HashSet<&str> = remotes.iter().map(|r| r.name.as_str()).collect();
        let mut stopping = Vec::new();
        {
            let mut running = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
            let names: Vec<String> = running.keys().cloned().collect();
            for name in names {
                let same = remotes
                    .iter()
                    .any(|r| r.name == name && *r == running[&name].config);
                if !same && let Some(old) = running.remove(&name) {
                    if !wanted.contains(name.as_str()) {
                        self.ctx.telemetry.push_forgotten(&name);
                    }
                    stopping.push(old);
                }
            }
        }
        for old in stopping {
            stop(old).await;
        }
        let mut running = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        for (config, store) in stores {
            if running.contains_key(&config.name) {
                continue;
            }
            running.insert(config.name.clone(), self.start(config, store));
        }
        Ok(())
    }

    fn start(&self, config: RemoteWriteConfig, store: Store) -> Running {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let stop = Shutdown::new();
        let status = Arc::new(Mutex::new(RemoteStatus {
            url: config.url.to_string(),
            up: true,
            ..RemoteStatus::default()
        }));
        self.ctx.telemetry.push_configured(
            &config.name,
            store::RejectReason::ALL.map(store::RejectReason::as_str),
        );
        let remote = remote::Remote {
            labels: config.labels(&self.ctx.instance),
            cursors: Cursors::open(&self.ctx.state_dir, &config.name),
            config: config.clone(),
            store,
            ctx: self.ctx.clone(),
            reports: self.reports.clone(),
            thresholds: self.thresholds.clone(),
            status: status.clone(),
            stop: stop.signal(),
            said: HashSet::new(),
        };
        let task = tokio::spawn(remote::run(remote, jobs));
        Running {
            config,
            queue,
            status,
            stop,
            task,
        }
    }

    /// Stops every remote; a request in flight may finish, briefly.
    pub async fn stop_all(&self) {
        let running = std::mem::take(&mut *self.remotes.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, remote) in running {
            stop(remote).await;
        }
    }

    /// Each remote's state, by name.
    pub fn statuses(&self) -> Vec<(String, RemoteStatus)> {
        let running = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        running
            .iter()
            .map(|(name, r)| {
                (
                    name.clone(),
                    r.status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                )
            })
            .collect()
    }
}

async fn stop(remote: Running) {
    remote.stop.trigger();
    let mut task = remote.task;
    if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
        task.abort();
    }
}

impl Sink for Pusher {
    fn configured(&self, report: &ReportConfig) {
        self.reports
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(report.name.to_string(), report.clone());
    }

    fn published(
        &self,
        report: &str,
        _snapshot: &Arc<ReportSnapshot>,
        answer: &Arc<Answer>,
        _at: Timestamp,
    ) {
        let running = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        for (name, remote) in running.iter() {
            let job = remote::Job {
                report: report.to_owned(),
                answer: answer.clone(),
            };
            if remote.queue.try_send(job).is_err() {
                self.ctx.telemetry.push_deferred(name);
            }
            self.ctx
                .telemetry
                .push_queue(name, QUEUE - remote.queue.capacity());
        }
    }

    fn withdrawn(&self, _report: &str) {}

    fn thresholds(&self, thresholds: &Thresholds) {
        *self.thresholds.write().unwrap_or_else(|e| e.into_inner()) = Some(thresholds.clone());
    }
}
