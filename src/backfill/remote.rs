//! The backfill's other destination: straight into a remote-write store,
//! with the journal of the file's path (`state_dir/remote_write/<remote>.backfill.json`)
//! so that an interrupted run resumes. A window's samples are delivered
//! before the journal says it is done: a crash re-sends at most one
//! window, samples the store takes as duplicates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::output::{Journal, OutputError};
use crate::clock::Clock;
use crate::config::RemoteWriteConfig;
use crate::export::format::remote_write::WriteRequest;
use crate::push::{MAX_BATCH, Store};
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
    store: Store,
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
                store,
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

    async fn flush(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let delivered = self
            .store
            .deliver(batch, &self.clock, &self.telemetry, &mut self.stop, |why| {
                tracing::warn!(remote = %self.remote, error = why, "the store did not take a backfill request: retried");
            })
            .await;
        // The stop signal never fires: a delivery always ends.
        if let Ok(delivery) = delivered {
            self.pushed.accepted += delivery.accepted as u64;
            self.pushed.requests += delivery.requests as u64;
            for (reason, n, _) in delivery.rejected {
                *self.pushed.rejected.entry(reason.as_str()).or_default() += n as u64;
            }
        }
    }

    /// Delivers what is batched, then records the journal.
    pub async fn checkpoint(&mut self) -> Result<(), OutputError> {
        self.flush().await;
        self.journal.save(&self.journal_path)
    }

    /// The run is complete: its journal goes.
    pub async fn finish(mut self) -> Result<Pushed, OutputError> {
        self.checkpoint().await?;
        let _ = std::fs::remove_file(&self.journal_path);
        Ok(self.pushed)
    }
}
