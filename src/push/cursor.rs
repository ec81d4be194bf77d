//! Where each report's push stands on one remote: the end of the newest
//! bucket the store accepted (or refused for good), per report, in
//! `state_dir/remote_write/<remote>.json`, replaced whole on each advance
//! ([`crate::durable::replace`]): a crash leaves the old cursor or the new
//! one, and re-sends at most the last batch, samples the store already
//! holds, which it takes as duplicates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// Per report, the end of the last bucket pushed (RFC 3339).
    reports: BTreeMap<String, String>,
}

/// The cursors of one remote.
#[derive(Debug)]
pub struct Cursors {
    path: PathBuf,
    file: File,
}

impl Cursors {
    /// The cursors of `remote` kept under `state_dir`. A missing file is
    /// no cursor yet; an unreadable one is said (the push then starts
    /// afresh, as on a first start, rather than not at all).
    pub fn open(state_dir: &Path, remote: &str) -> Self {
        let path = state_dir
            .join("remote_write")
            .join(format!("{remote}.json"));
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(remote, file = %path.display(), error = %e, "the push cursors are unreadable: pushing from the newest buckets on; fill the gap with `cmu-exporter backfill --remote-write {remote}`");
                File::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => {
                tracing::warn!(remote, file = %path.display(), error = %e, "cannot read the push cursors: pushing from the newest buckets on");
                File::default()
            }
        };
        Self { path, file }
    }

    /// The end of `report`'s last bucket pushed, if any.
    pub fn get(&self, report: &str) -> Option<Timestamp> {
        self.file.reports.get(report).and_then(|t| t.parse().ok())
    }

    /// Moves `report`'s cursor to `end` (never back) and writes the file.
    pub fn advance(&mut self, report: &str, end: Timestamp) -> std::io::Result<()> {
        if self.get(report).is_some_and(|at| at >= end) {
            return Ok(());
        }
        self.file.reports.insert(report.to_owned(), end.to_string());
        self.write()
    }

    /// Forgets reports no longer configured.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) -> std::io::Result<()> {
        let before = self.file.reports.len();
        self.file.reports.retain(|name, _| keep(name));
        if self.file.reports.len() == before {
            return Ok(());
        }
        self.write()
    }

    fn write(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(&self.file).map_err(std::io::Error::other)?;
        crate::durable::replace(&self.path, &bytes, 0o644, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_reopen_never_go_back_and_a_bad_file_is_no_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let mut c = Cursors::open(dir.path(), "prom");
        assert_eq!(c.get("daily"), None);
        c.advance("daily", t("2026-12-01T00:00:00Z")).unwrap();
        c.advance("daily", t("2026-11-01T00:00:00Z")).unwrap();
        let c = Cursors::open(dir.path(), "prom");
        assert_eq!(c.get("daily"), Some(t("2026-12-01T00:00:00Z")));
        std::fs::write(dir.path().join("remote_write/prom.json"), b"{not json").unwrap();
        assert_eq!(Cursors::open(dir.path(), "prom").get("daily"), None);
    }
}
