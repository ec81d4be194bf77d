//! Records the git revision and the compiler version for `cmu_exporter_build_info`.

use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
}

fn main() {
    // A build without .git (a Docker image) passes the revision in.
    println!("cargo:rerun-if-env-changed=CMU_EXPORTER_REVISION");
    let revision = std::env::var("CMU_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty() && r != "unknown")
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.95.0 (59807616e 2026-04-14)" -> "1.95.0"
    let rustc_version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CMU_EXPORTER_REVISION={revision}");
    println!("cargo:rustc-env=CMU_EXPORTER_RUSTC_VERSION={rustc_version}");
    // A missing file would make cargo run this script (and rebuild) every time.
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    }
}
