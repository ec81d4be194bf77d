//! The demo's built-in configuration (`demo.yaml`, next to this file), used
//! by `cmu-exporter demo` and by the tests that prove the dashboards.

use crate::config::{Config, ConfigError};
use crate::simulator::Simulator;

/// The demo's built-in configuration for `sim`, with the statement already
/// written to `statement_file` and credentials kept in `state_dir`.
pub fn config(
    sim: &Simulator,
    statement_file: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<Config, ConfigError> {
    let yaml = include_str!("demo.yaml")
        .replace("{dcr_url}", &sim.dcr_url())
        .replace("{cmu_url}", &sim.cmu_url())
        .replace("{statement_file}", &statement_file.display().to_string())
        .replace("{state_dir}", &state_dir.display().to_string());
    Config::from_yaml(&yaml, "the built-in demo configuration")
}

/// Writes `bytes` to a new file only its owner can read.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
