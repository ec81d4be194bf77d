//! Faults injected into the exporter's own code, for the tests that prove a
//! bug fails one poll and never the poller, and for the tests that kill the
//! process while it writes state. (Faults in Adobe's answers are the
//! simulator's business: see [`crate::simulator::Fault`].)
//!
//! All of it exists only with the `testkit` feature (tests, examples,
//! scripts): without it, `strike` and the state-write hooks are empty
//! functions, and the release binary reads no `CMU_EXPORTER_TEST_*`
//! variable. With it, nothing injects a fault unless a test calls `inject`
//! or sets `STATE_WRITES_ENV` or `CLOCK_ENV`.

#[cfg(feature = "testkit")]
use std::collections::BTreeMap;
#[cfg(feature = "testkit")]
use std::sync::Mutex;

/// Where a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InjectedFault {
    /// Building the report's snapshot panics (inside a poll).
    PanicWhileBuilding,
    /// The report's poller task panics between two polls (outside any poll).
    PanicInPoller,
}

#[cfg(feature = "testkit")]
static ARMED: Mutex<BTreeMap<(String, InjectedFault), usize>> = Mutex::new(BTreeMap::new());

#[cfg(feature = "testkit")]
/// Makes the next `times` passes of `report` through `fault`'s place panic.
pub fn inject(report: &str, fault: InjectedFault, times: usize) {
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed.insert((report.to_owned(), fault), times);
}

/// Panics if a test armed `fault` for `report` (and disarms it once).
#[cfg(feature = "testkit")]
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

/// Without the test machinery, no fault strikes.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn strike(_report: &str, _fault: InjectedFault) {}

/// Environment variable of a spawned exporter, for crash and disk tests
/// only: `slow:MS` sleeps MS milliseconds at each step of a state write
/// (widening the window a SIGKILL can hit); `full` and `read-only` fail
/// every state write as a full disk or a read-only `state_dir` would.
#[cfg(feature = "testkit")]
pub const STATE_WRITES_ENV: &str = "CMU_EXPORTER_TEST_STATE_WRITES";

/// What a test asked of state writes (see `STATE_WRITES_ENV`).
#[cfg(feature = "testkit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateWrites {
    Normal,
    Slow(std::time::Duration),
    Fail(i32),
}

/// The state-write fault of this process, read once.
#[cfg(feature = "testkit")]
pub(crate) fn state_writes() -> StateWrites {
    static ONCE: std::sync::OnceLock<StateWrites> = std::sync::OnceLock::new();
    *ONCE.get_or_init(|| match std::env::var(STATE_WRITES_ENV).as_deref() {
        Ok("full") => StateWrites::Fail(libc::ENOSPC),
        Ok("read-only") => StateWrites::Fail(libc::EROFS),
        Ok(other) => other
            .strip_prefix("slow:")
            .and_then(|ms| ms.parse().ok())
            .map_or(StateWrites::Normal, |ms| {
                StateWrites::Slow(std::time::Duration::from_millis(ms))
            }),
        Err(_) => StateWrites::Normal,
    })
}

/// Says on standard error that a state write begins, when writes are slowed
/// for a test: the test kills the process at a random point from there.
#[cfg(feature = "testkit")]
pub(crate) fn state_write_begins(path: &std::path::Path) {
    if matches!(state_writes(), StateWrites::Slow(_)) {
        eprintln!("test hook: state write begins: {}", path.display());
    }
}

/// One step of a state write: a pause or an error when a test asked for it.
#[cfg(feature = "testkit")]
pub(crate) fn state_write_step() -> std::io::Result<()> {
    match state_writes() {
        StateWrites::Normal => Ok(()),
        StateWrites::Slow(pause) => {
            std::thread::sleep(pause);
            Ok(())
        }
        StateWrites::Fail(code) => Err(std::io::Error::from_raw_os_error(code)),
    }
}

/// Without the test machinery, a state write is only a state write.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn state_write_begins(_path: &std::path::Path) {}

/// Without the test machinery, a state write's steps never fail.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn state_write_step() -> std::io::Result<()> {
    Ok(())
}

/// Environment variable of a spawned exporter, for the tests that kill the
/// binary while it pushes: `ORIGIN_MS:FACTOR:SINCE_MS` runs its clock warped
/// as [`crate::clock::Clock::warped_since`] (Unix milliseconds), the test's
/// simulator's clock. See [`clock_env`].
#[cfg(feature = "testkit")]
pub const CLOCK_ENV: &str = "CMU_EXPORTER_TEST_CLOCK";

/// The value of `CLOCK_ENV` for a clock warped since `since`.
#[cfg(feature = "testkit")]
pub fn clock_env(origin: jiff::Timestamp, factor: f64, since: jiff::Timestamp) -> String {
    format!(
        "{}:{factor}:{}",
        origin.as_millisecond(),
        since.as_millisecond()
    )
}

/// The clock of this process: the wall clock, unless a test set `CLOCK_ENV`.
#[cfg(feature = "testkit")]
pub(crate) fn process_clock() -> crate::clock::Clock {
    let warped = std::env::var(CLOCK_ENV).ok().and_then(|value| {
        let mut parts = value.split(':');
        let ms = |part: Option<&str>| {
            part.and_then(|p| p.parse().ok())
                .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        };
        let origin = ms(parts.next())?;
        let factor: f64 = parts.next()?.parse().ok()?;
        let since = ms(parts.next())?;
        (factor.is_finite() && factor > 0.0)
            .then(|| crate::clock::Clock::warped_since(origin, factor, since))
    });
    warped.unwrap_or_else(crate::clock::Clock::wall)
}

/// Without the test machinery, the process runs on the wall clock.
#[cfg(not(feature = "testkit"))]
#[inline(always)]
pub(crate) fn process_clock() -> crate::clock::Clock {
    crate::clock::Clock::wall()
}
