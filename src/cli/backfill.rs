//! `cmu-exporter backfill`: runs [`crate::backfill`] with a progress line on
//! a terminal (log lines otherwise) and prints the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use crate::backfill::{Options, Output, Progress};
use crate::clock::Clock;
use crate::config::{Config, RemoteWriteConfig};

/// The command's arguments, as given.
pub(super) struct Arguments {
    pub from: String,
    pub to: Option<String>,
    pub reports: Vec<String>,
    pub output: Option<PathBuf>,
    pub remote_write: Option<String>,
    pub max_requests: Option<u64>,
    pub max_limit: u32,
    pub labels: Vec<String>,
}

fn date(flag: &str, text: &str) -> anyhow::Result<jiff::civil::Date> {
    text.parse()
        .map_err(|_| anyhow!("{flag} `{text}` is not a date: write YYYY-MM-DD, e.g. 2025-01-01"))
}

pub(super) async fn run(config: super::ConfigFile, args: Arguments) -> anyhow::Result<()> {
    let file = config.required("the reports and credentials come from it")?;
    let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let config = Config::load(&file)?;
    let from = date("--from", &args.from)?;
    let to = args.to.as_deref().map(|t| date("--to", t)).transpose()?;
    let mut labels = Vec::new();
    for pair in &args.labels {
        let (name, value) = pair
            .split_once('=')
            .filter(|(n, _)| {
                n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .ok_or_else(|| {
                anyhow!("--label `{pair}` is not NAME=VALUE, e.g. --label job=cmu-exporter")
            })?;
        labels.push((name.to_owned(), value.to_owned()));
    }
    let output = match (&args.output, &args.remote_write) {
        (Some(file), _) => Output::File(file.clone()),
        (None, Some(target)) => {
            let remote = match config.remote_write.iter().find(|r| &r.name == target) {
                Some(remote) => remote.clone(),
                None if target.contains("://") => RemoteWriteConfig::for_url(target)?,
                None => {
                    let names: Vec<&str> = config
                        .remote_write
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect();
                    return Err(anyhow!(
                        "--remote-write {target}: no remote of that name in {} (names: {}); give a name or a write URL such as http://prometheus:9090/api/v1/write",
                        file.display(),
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ));
                }
            };
            // The labels live pushed series carry, `--label` first.
            let instance = format!("{}:9063", crate::app::host_name());
            for (name, value) in remote.labels(&instance) {
                if !labels.iter().any(|(n, _)| *n == name) {
                    labels.push((name, value));
                }
            }
            Output::Remote(Box::new(remote))
        }
        (None, None) => return Err(anyhow!("give --output FILE or --remote-write URL|NAME")),
    };
    // A rerun with the same configuration and arguments resumes.
    let fingerprint = format!(
        "config={:016x} from={from} to={to:?} reports={:?} max_limit={} labels={labels:?} output={output:?}",
        crate::shard::stable_hash(&text),
        args.reports,
        args.max_limit
    );
    let options = Options {
        from,
        to,
        reports: args.reports,
        output: output.clone(),
        max_requests: args.max_requests,
        max_limit: args.max_limit,
        labels,
        fingerprint,
    };
    let terminal = std::io::stderr().is_terminal();
    let mut last_log = Instant::now();
    let show = |p: &Progress<'_>| {
        let share = p.buckets_done as f64 / p.buckets.max(1) as f64;
        let left = if share > 0.0 {
            humantime::format_duration(Duration::from_secs(
                (p.elapsed.as_secs_f64() * (1.0 - share) / share) as u64,
            ))
            .to_string()
        } else {
            "?".into()
        };
        let line = format!(
            "{}: {}/{} buckets ({:.0}%), {} rows, {} calls, {:.0} rows/s, {} left",
            p.report,
            p.buckets_done,
            p.buckets,
            share * 100.0,
            p.rows,
            p.calls,
            p.rows as f64 / p.elapsed.as_secs_f64().max(0.001),
            left
        );
        if terminal {
            {
                use std::io::Write as _;
                let _ = write!(std::io::stderr(), "\r\x1b[2K{line}");
            }
        } else if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!("{line}");
        }
    };
    let outcome = crate::backfill::run(config, options, Clock::wall(), show).await;
    if terminal {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }
    let summary = outcome?;
    match output {
        Output::File(file) => {
            outln!("backfill: wrote {}: {summary}", file.display());
            outln!(
                "next: promtool tsdb create-blocks-from openmetrics {} DATA_DIR",
                file.display()
            );
        }
        Output::Remote(remote) => {
            outln!(
                "backfill: pushed to {} ({}): {summary}",
                remote.name,
                remote.url
            );
            if summary
                .pushed
                .as_ref()
                .is_some_and(|p| !p.rejected.is_empty())
            {
                outln!(
                    "refused samples: for Prometheus as the store, run it with --web.enable-remote-write-receiver and an out_of_order_time_window reaching --from; for Mimir, raise out_of_order_time_window and past_grace_period"
                );
            }
        }
    }
    Ok(())
}
