//! The backfill's other destination: straight into a remote-write store,
//! with the journal of the file's path (`state_dir/remote_write/<remote>.backfill.json`)
//! so that an interrupted run resumes. A window's samples are delivered
//! before the journal says it is done: a crash re-sends at most one
//! window, samples the store takes as duplicates. One request is in flight
//! while the next is read from Adobe and built, so the store's time and
//! Adobe's overlap; memory holds two batches at most.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::output::{Journal, OutputError};
use crate::clock::Clock;
use crate::config::RemoteWriteConfig;
use crate::export::format::remote_write::WriteRequest;
use crate::push::{Delivery, MAX_BATCH, Store};
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::telemetry::Telemetry;

/// What the store made of a backfill.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    pub accepted: u64,
    /// Samples refused alone, by reason.
    pub rejected: BTreeMap<&'static str, u64>,
    pub requests: u64,
}

pub struct Pushing {
    pub remote: String,
    store: std::sync::Arc<Store>,
    /// The batch being delivered, if any (`None` from the task: stopped).
    in_flight: Option<tokio::task::JoinHandle<Option<Delivery>>>,
    /// A delivery task that panicked: the journal is not advanced past it.
    broken: bool,
    journal_path: PathBuf,
    pub journal: Journal,
    batch: WriteRequest,
    pub pushed: Pushed,
    clock: Clock,
    telemetry: Telemetry,
    /// Never fires: a backfill retries until it is interrupted.
    _keep: Shutdown,
    stop: ShutdownSignal,
}

impl Pushing {
    pub fn open(
        state_dir: &std::path::Path,
        remote: &RemoteWriteConfig,
        arguments: &str,
        clock: Clock,
        telemetry: Telemetry,
    ) -> Result<(Self, bool), super::BackfillError> {
        let store = Store::new(remote).map_err(|e| OutputError {
            path: PathBuf::from(format!("remote_write {}", remote.name)),
            reason: e.reason,
        })?;
        let journal_path = state_dir
            .join("remote_write")
            .join(format!("{}.backfill.json", remote.name));
        if let Some(dir) = journal_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| OutputError {
                path: dir.to_owned(),
                reason: e.to_string(),
            })?;
        }
        let (journal, resumed) = Journal::open(&journal_path, arguments);
        let keep = Shutdown::new();
        Ok((
            Self {
                remote: remote.name.clone(),
                store: std::sync::Arc::new(store),
                in_flight: None,
                broken: false,
                journal_path,
                journal,
                batch: WriteRequest::default(),
                pushed: Pushed::default(),
                clock,
                telemetry,
                stop: keep.signal(),
                _keep: keep,
            },
            resumed,
        ))
    }

    /// Adds one bucket's samples, sending a batch once it is full.
    pub async fn append(&mut self, request: WriteRequest) {
        self.batch.append(request);
        if self.batch.series() >= MAX_BATCH {
            self.flush().await;
        }
    }

    /// Sends what is batched once the request before it is delivered.
    async fn flush(&mut self) {
        self.settle().await;
        let batch = std::mem::take(&mut self.batch);
        if batch.is_empty() {
            return;
        }
        let store = self.store.clone();
        let (clock, telemetry) = (self.clock.clone(), self.telemetry.clone());
        let (mut stop, remote) = (self.stop.clone(), self.remote.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let trouble = |why: &str| {
                tracing::warn!(remote = %remote, error = why, "the store did not take a backfill request: retried");
            };
            // The stop signal never fires: a delivery always ends.
            store
                .deliver(batch, &clock, &telemetry, &mut stop, trouble)
                .await
                .ok()
        }));
    }

    /// Waits for the request in flight and counts what the store made of it.
    async fn settle(&mut self) {
        let Some(task) = self.in_flight.take() else {
            return;
        };
        match task.await {
            Ok(Some(delivery)) => {
                self.pushed.accepted += delivery.accepted as u64;
                self.pushed.requests += delivery.requests as u64;
                for (reason, n, _) in delivery.rejected {
                    *self.pushed.rejected.entry(reason.as_str()).or_default() += n as u64;
                }
            }
            Ok(None) => {}
            Err(_) => self.broken = true,
        }
    }

    /// Delivers what is batched, then records the journal.
    pub async fn checkpoint(&mut self) -> Result<(), OutputError> {
        self.flush().await;
        self.settle().await;
        if self.broken {
            return Err(OutputError {
                path: self.journal_path.clone(),
                reason: "a delivery to the store broke off: the journal keeps the windows before it; run the same command again to resume".into(),
            });
        }
        self.journal.save(&self.journal_path)
    }

    /// The run is complete: its journal goes.
    pub async fn finish(mut self) -> Result<Pushed, OutputError> {
        self.checkpoint().await?;
        let _ = std::fs::remove_file(&self.journal_path);
        Ok(self.pushed)
    }
}
