//! One shutdown mechanism for every task: a signal that all tasks watch.
//!
//! [`Shutdown::trigger`] flips a watch channel; every task holds a
//! [`ShutdownSignal`] and selects on [`ShutdownSignal::wait`] next to its work.

use tokio::sync::watch;

/// The sending side: whoever decides the process stops.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

/// The receiving side, cloned into every task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    receiver: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    /// A signal for one more task.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            receiver: self.sender.subscribe(),
        }
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (at once if it already was).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which also means: stop.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown was triggered (or the sender is gone).
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow() || self.receiver.has_changed().is_err()
    }
}
