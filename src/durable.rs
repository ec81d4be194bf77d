//! Files replaced whole, so that a crash at any point (a SIGKILL, a power
//! loss) leaves the old content or the new one, never a mix: the new bytes
//! go to a temporary file beside the target, which is fsynced, renamed over
//! the target, and the directory fsynced. Used for the credentials state
//! and the backfill journal.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `bytes` (created with `mode`). `before_rename` runs
/// once the temporary file is complete (tests use it to crash half-way). A
/// failed replacement removes its temporary file and leaves `path` as it was.
pub fn replace(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    before_rename: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let step = crate::faults::state_write_step;
    crate::faults::state_write_begins(path);
    let result = (|| {
        step()?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        file.write_all(head)?;
        step()?;
        file.write_all(tail)?;
        file.sync_all()?;
        drop(file);
        step()?;
        before_rename(&tmp)?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
