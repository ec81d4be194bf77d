//! The backfill's output: one spill file per metric family (samples appended
//! in time order as windows arrive), a journal that makes an interrupted run
//! resumable, and the final OpenMetrics file assembled from the spills.
//!
//! OpenMetrics wants each family's samples together under one `# TYPE`, and
//! promtool silently drops a sample older than one it already read for the
//! same series: appending every window's samples, oldest bucket first, to
//! the file of its family keeps both rules with memory bounded by a window.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::export::FamilyKind;
use crate::export::format::openmetrics;

/// Why the output could not be written or resumed. Names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct OutputError {
    pub path: PathBuf,
    pub reason: String,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |e| OutputError {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// What a run has written so far: enough to resume it exactly.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Journal {
    /// The run's arguments: a rerun with others starts over.
    pub arguments: String,
    /// The end of the range, resolved when the run began (`--to` or the
    /// newest complete bucket then), so a resumed run ends at the same place.
    pub to: String,
    /// Per report, the start of the next bucket to fetch (absent: not begun).
    pub next: BTreeMap<String, String>,
    /// Reports finished.
    pub done: Vec<String>,
    /// Per family: HELP, TYPE and the length of its spill file.
    pub families: BTreeMap<String, FamilyState>,
    /// Calls to Adobe so far (all runs).
    pub calls: u64,
}

impl Journal {
    /// The journal at `path` when a run with `arguments` wrote it (resumed:
    /// true), else a new one.
    pub fn open(path: &Path, arguments: &str) -> (Self, bool) {
        let previous = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Journal>(&bytes).ok())
            .filter(|j| j.arguments == arguments);
        match previous {
            Some(journal) => (journal, true),
            None => (
                Journal {
                    arguments: arguments.to_owned(),
                    ..Journal::default()
                },
                false,
            ),
        }
    }

    /// Writes the journal to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), OutputError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| OutputError {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        crate::durable::replace(path, &bytes, 0o644, |_| Ok(())).map_err(io_error(path))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FamilyState {
    pub help: String,
    pub histogram: bool,
    pub length: u64,
}

/// The spill files and the journal of a run writing `output`.
pub struct Spill {
    output: PathBuf,
    dir: PathBuf,
    journal_path: PathBuf,
    pub journal: Journal,
    open: BTreeMap<String, BufWriter<File>>,
}

impl Spill {
    /// Opens the work of a run with `arguments`: resumed when the journal
    /// beside `output` was written by the same arguments, else started over.
    pub fn open(output: &Path, arguments: &str) -> Result<(Self, bool), OutputError> {
        let dir = PathBuf::from(format!("{}.parts", output.display()));
        let journal_path = PathBuf::from(format!("{}.journal", output.display()));
        let (journal, resumed) = Journal::open(&journal_path, arguments);
        let journal = match resumed {
            true => {
                // Data written after the last checkpoint is cut off again.
                for (family, state) in &journal.families {
                    let path = dir.join(family);
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_error(&path))?;
                    file.set_len(state.length).map_err(io_error(&path))?;
                }
                journal
            }
            false => {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
                }
                journal
            }
        };
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok((
            Self {
                output: output.to_owned(),
                dir,
                journal_path,
                journal,
                open: BTreeMap::new(),
            },
            resumed,
        ))
    }

    /// Appends sample lines of `family` (already stamped, each ending in `\n`).
    pub fn append(
        &mut self,
        family: &str,
        help: &str,
        kind: FamilyKind,
        lines: &[u8],
    ) -> Result<(), OutputError> {
        if !self.open.contains_key(family) {
            let path = self.dir.join(family);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            self.open
                .insert(family.to_owned(), BufWriter::with_capacity(64 * 1024, file));
            self.journal
                .families
                .entry(family.to_owned())
                .or_insert(FamilyState {
                    help: help.to_owned(),
                    histogram: kind == FamilyKind::Histogram,
                    length: 0,
                });
        }
        let path = self.dir.join(family);
        let writer = self.open.get_mut(family).expect("opened above");
        writer.write_all(lines).map_err(io_error(&path))
    }

    /// Makes everything appended so far durable, then records it in the
    /// journal (written atomically): a crash after this resumes from here.
    pub fn checkpoint(&mut self) -> Result<(), OutputError> {
        for (family, writer) in &mut self.open {
            let path = self.dir.join(family);
            writer.flush().map_err(io_error(&path))?;
            writer.get_ref().sync_data().map_err(io_error(&path))?;
            let length = writer
                .get_mut()
                .seek(SeekFrom::End(0))
                .map_err(io_error(&path))?;
            if let Some(state) = self.journal.families.get_mut(family) {
                state.length = length;
            }
        }
        self.journal.save(&self.journal_path)
    }

    /// Writes the OpenMetrics file: every family in name order, its HELP and
    /// TYPE then its samples, and `# EOF`; then removes the spills and the
    /// journal. Returns the bytes written.
    pub fn finish(mut self) -> Result<u64, OutputError> {
        self.checkpoint()?;
        self.open.clear();
        let tmp = PathBuf::from(format!("{}.tmp", self.output.display()));
        let file = File::create(&tmp).map_err(io_error(&tmp))?;
        let mut out = BufWriter::with_capacity(256 * 1024, file);
        for (family, state) in &self.journal.families {
            let mut header = Vec::new();
            let kind = if state.histogram {
                FamilyKind::Histogram
            } else {
                FamilyKind::Gauge
            };
            openmetrics::write_header(family, &state.help, kind, &mut header);
            out.write_all(&header).map_err(io_error(&tmp))?;
            let path = self.dir.join(family);
            let mut part = File::open(&path)
                .map_err(io_error(&path))?
                .take(state.length);
            std::io::copy(&mut part, &mut out).map_err(io_error(&path))?;
        }
        out.write_all(openmetrics::EOF).map_err(io_error(&tmp))?;
        let file = out.into_inner().map_err(|e| OutputError {
            path: tmp.clone(),
            reason: e.error().to_string(),
        })?;
        file.sync_all().map_err(io_error(&tmp))?;
        let written = file.metadata().map_err(io_error(&tmp))?.len();
        std::fs::rename(&tmp, &self.output).map_err(io_error(&self.output))?;
        // The journal goes first: a crash before it is gone finishes again
        // from intact spills; after, a new run starts clean (and removes
        // whatever spills are left). Spills gone first would strand a journal.
        let step = || crate::faults::state_write_step().map_err(io_error(&self.journal_path));
        step()?;
        let _ = std::fs::remove_file(&self.journal_path);
        if let Some(parent) = self.output.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = File::open(parent).and_then(|d| d.sync_all());
        }
        step()?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(written)
    }
}
