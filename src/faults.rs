//! Faults injected into the exporter's own code, for the tests that prove a
//! bug fails one poll and never the poller. (Faults in Adobe's answers are
//! the simulator's business: see [`crate::simulator::Fault`].)
//!
//! Nothing injects a fault unless a test calls [`inject`]; the check is one
//! uncontended lock per poll.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Where a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InjectedFault {
    /// Building the report's snapshot panics (inside a poll).
    PanicWhileBuilding,
    /// The report's poller task panics between two polls (outside any poll).
    PanicInPoller,
}

static ARMED: Mutex<BTreeMap<(String, InjectedFault), usize>> = Mutex::new(BTreeMap::new());

/// Makes the next `times` passes of `report` through `fault`'s place panic.
pub fn inject(report: &str, fault: InjectedFault, times: usize) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed.insert((report.to_owned(), fault), times);
}

/// Panics if a test armed `fault` for `report` (and disarms it once).
pub(crate) fn strike(report: &str, fault: InjectedFault) {
    let fire = {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        if armed.is_empty() {
            return;
        }
        match armed.get_mut(&(report.to_owned(), fault)) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    };
    if fire {
        panic!("injected fault {fault:?} in report {report}");
    }
}
