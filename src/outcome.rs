//! What one step of a poller produced, and why a poll fails: what the
//! poller says and [`crate::reports::Reports::apply`] records.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::export::ReportSnapshot;
use crate::report::ParseError;
use crate::wolap::FetchError;

/// What one step of a poller produced.
#[derive(Debug)]
pub enum PollOutcome {
    /// The next poll will run at `at`.
    Scheduled { at: Timestamp },
    /// A poll built a new snapshot in `took`, ending at `at`.
    Succeeded {
        snapshot: Arc<ReportSnapshot>,
        /// What Adobe answered, the snapshot's source.
        answer: Arc<Answer>,
        took: Duration,
        at: Timestamp,
    },
    /// A poll failed in `took`, ending at `at`; the next attempt comes in
    /// `retry_in` (real time). The last good values stay, until `max_age`.
    Failed {
        error: PollError,
        took: Duration,
        retry_in: Duration,
        at: Timestamp,
    },
}

/// Adobe's answer a snapshot was built from, for an output that takes
/// every complete bucket in it (the push), not only the one `/metrics`
/// shows. Dropped once every sink is done with it.
#[derive(Debug)]
pub struct Answer {
    pub body: bytes::Bytes,
    /// How the snapshot was built (its time, time zone, labels).
    pub spec: crate::export::SnapshotSpec,
    /// The first bucket asked for: the answer covers the buckets from it
    /// up to the one still filling.
    pub start: Option<jiff::civil::DateTime>,
    /// Adobe's clock when it answered (its `Date` header), if it said.
    pub served_at: Option<jiff::Timestamp>,
    /// How far Adobe had computed the report, as the answer showed: its
    /// buckets that end by then are complete.
    pub computed: crate::report::Computed,
    /// Our clock when the request was sent and when its answer was read.
    pub asked_at: jiff::Timestamp,
    pub answered_at: jiff::Timestamp,
}

/// A successful poll: the snapshot and the answer it came from.
#[derive(Debug)]
pub struct Polled {
    pub snapshot: Arc<ReportSnapshot>,
    pub answer: Arc<Answer>,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("answer is not a usable report: {0}")]
    Parse(ParseError),
    /// A bug in the exporter (a panic while fetching, parsing or building):
    /// the poll fails, the poller goes on.
    #[error("internal error (a bug in the exporter, please report it): {0}")]
    Internal(String),
}

impl From<ParseError> for PollError {
    fn from(e: ParseError) -> Self {
        // The text carries the cause: no `source`, so a chain prints it once.
        PollError::Parse(e)
    }
}

impl PollError {
    /// How long the server asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Fetch(e) => e.retry_after(),
            _ => None,
        }
    }

    /// Whether only a person can fix it (retrying at a fast pace will not help).
    pub fn needs_person(&self) -> bool {
        matches!(self, PollError::Fetch(e) if e.needs_person())
    }

    /// Whether it is a bug of ours rather than a failure of Adobe's.
    pub fn is_internal(&self) -> bool {
        matches!(self, PollError::Internal(_))
    }

    pub(crate) fn from_panic(panic: Box<dyn std::any::Any + Send>) -> Self {
        PollError::Internal(panic_message(panic))
    }
}

/// What a caught panic said.
pub fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {text}")
}
