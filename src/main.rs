//! The `cmu-exporter` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    cmu_exporter::cli::main()
}
