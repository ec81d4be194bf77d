//! `cmu-exporter render`: the exposition of one saved CMU or ESM JSON report.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, anyhow};

use crate::export::{Exposition, SnapshotSpec, build_snapshot_from};
use crate::report::{BucketChoice, ReportApi, ReportPath};

pub(super) fn run(
    file: Option<PathBuf>,
    report: String,
    path: Option<String>,
    partial: bool,
    time_zone: Option<&str>,
    api: &str,
) -> anyhow::Result<()> {
    let api = ReportApi::parse(api)
        .ok_or_else(|| anyhow!("--api `{api}`: write `cmu` (default) or `esm`"))?;
    let time_zone = time_zone.unwrap_or(api.profile().default_time_zone);
    // The report is streamed through the parser: a large file is never held whole.
    let mut input: Box<dyn Read> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
    };
    let path = match path {
        Some(p) => Some(ReportPath::parse(&p).with_context(|| format!("--path `{p}`"))?),
        None => None,
    };
    let time_zone = crate::config::time_zone(time_zone).ok_or_else(|| {
        anyhow!("--time-zone `{time_zone}` is not a known time zone: use an IANA name such as UTC")
    })?;
    let choice = if partial {
        BucketChoice::Partial
    } else {
        BucketChoice::Complete
    };
    let spec = SnapshotSpec {
        api,
        report,
        account: None,
        path,
        choice,
        now: jiff::Timestamp::now(),
        time_zone,
        labels: Vec::new(),
        max_series: None,
        computed_at: None,
        computed_through: None,
    };
    let origin = file
        .as_deref()
        .map_or("standard input".to_owned(), |p| p.display().to_string());
    let snapshot = build_snapshot_from(&mut input, &spec).context(origin)?;
    let exposition = Exposition::assemble([&snapshot]);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = exposition
        .chunks()
        .iter()
        .try_for_each(|chunk| out.write_all(chunk))
        .and_then(|()| out.flush());
    match written {
        // A reader that has read enough (`| head`, `| grep -q`) is not a failure.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write the output"),
    }
}
