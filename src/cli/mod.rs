//! The command line: the clap model and the dispatch, one file per command
//! family beside it. This is the binary's glue: errors are `anyhow` with
//! context, printed as one line with their causes.

/// `println!` that never panics: a closed standard output (`cmu-exporter
/// demo | head`) loses the text, never the process.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that never panics (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod backfill;
mod credentials;
mod discover;
mod render;
mod service;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};

use crate::config::{AccountConfig, Config};
use crate::shard::Shard;

/// Default port: below the exporters' range of Prometheus's port list
/// (9100-9999, fully allocated) and clear of Prometheus's own 9090-9094.
pub const DEFAULT_PORT: u16 = 9063;

/// Prometheus exporter for Adobe Pass Concurrency Monitoring (CMU) and
/// Entitlement Service Monitoring (ESM) reports.
///
/// Without a command it runs the service on `--config.file`. Each command
/// takes only its own flags (`cmu-exporter COMMAND --help`); the log flags
/// apply to all.
#[derive(Debug, Parser)]
#[command(name = "cmu-exporter", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    /// Log level: error, warn, info, debug or trace (RUST_LOG overrides it).
    #[arg(
        long = "log.level",
        env = "CMU_EXPORTER_LOG_LEVEL",
        global = true,
        default_value = "info"
    )]
    log_level: String,
    /// Log format: text or json.
    #[arg(
        long = "log.format",
        env = "CMU_EXPORTER_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The configuration file, taken the same way by every command that reads one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigFile {
    /// Configuration file (YAML).
    #[arg(
        long = "config.file",
        env = "CMU_EXPORTER_CONFIG_FILE",
        value_name = "FILE"
    )]
    config_file: Option<PathBuf>,
}

impl ConfigFile {
    /// The file, or an error saying the command needs it and what for.
    fn required(&self, what_for: &str) -> anyhow::Result<PathBuf> {
        self.config_file
            .clone()
            .ok_or_else(|| anyhow!("--config.file is required: {what_for}"))
    }
}

/// [`ConfigFile`] for a command with actions of its own (`credentials
/// show`), where the flag may follow the action.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigFileOfActions {
    /// Configuration file (YAML).
    #[arg(
        long = "config.file",
        env = "CMU_EXPORTER_CONFIG_FILE",
        value_name = "FILE",
        global = true
    )]
    config_file: Option<PathBuf>,
}

impl From<ConfigFileOfActions> for ConfigFile {
    fn from(of_actions: ConfigFileOfActions) -> Self {
        Self {
            config_file: of_actions.config_file,
        }
    }
}

/// The service's flags: its configuration, what it serves and its shard.
#[derive(Debug, Clone, clap::Args)]
struct ServiceArgs {
    #[command(flatten)]
    config: ConfigFile,
    #[command(flatten)]
    web: WebArgs,
    /// This process's shard, from 0: it polls the reports whose name hashes
    /// to it. `auto` takes the ordinal at the end of the host name, as a
    /// StatefulSet names its pods (`cmu-exporter-2` is shard 2).
    #[arg(
        long = "shard",
        env = "CMU_EXPORTER_SHARD",
        default_value = "0",
        value_name = "N|auto"
    )]
    shard: String,
    /// How many shards share the configured reports (1: no sharding).
    #[arg(
        long = "total-shards",
        env = "CMU_EXPORTER_TOTAL_SHARDS",
        default_value_t = 1,
        value_name = "M"
    )]
    total_shards: u32,
}

/// What the exporter serves and how (the service and the demo).
#[derive(Debug, Clone, clap::Args)]
struct WebArgs {
    /// Address to serve metrics on (repeat for several); `:9063` means every interface.
    #[arg(
        long = "web.listen-address",
        env = "CMU_EXPORTER_WEB_LISTEN_ADDRESS",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    listen: Vec<String>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "CMU_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics", value_parser = telemetry_path)]
    telemetry_path: String,
    #[command(flatten)]
    web_config: WebConfigFile,
    /// Time a client has to send its request headers (and finish a TLS
    /// handshake); idle keep-alive connections close after it too.
    #[arg(
        long = "web.read-header-timeout",
        env = "CMU_EXPORTER_WEB_READ_HEADER_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION"
    )]
    read_header_timeout: humantime::Duration,
    /// Time an answer may wait on a client that does not read it; then the
    /// connection is closed.
    #[arg(
        long = "web.write-timeout",
        env = "CMU_EXPORTER_WEB_WRITE_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    write_timeout: humantime::Duration,
    /// Most connections open at once; more are closed as soon as accepted
    /// (and counted in cmu_exporter_http_connections_refused_total).
    #[arg(
        long = "web.max-connections",
        env = "CMU_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = crate::incoming::config::DEFAULT_MAX_CONNECTIONS,
        value_name = "N",
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_connections: usize,
}

/// The `--web.config.file` (the service, the demo, and check-config's check of it).
#[derive(Debug, Clone, clap::Args)]
struct WebConfigFile {
    /// TLS and basic auth settings, in the Prometheus exporter toolkit's format.
    #[arg(
        long = "web.config.file",
        env = "CMU_EXPORTER_WEB_CONFIG_FILE",
        value_name = "FILE"
    )]
    web_config_file: Option<PathBuf>,
}

impl WebArgs {
    /// The limits every connection of the service is held to.
    fn connection_limits(&self) -> crate::incoming::ConnectionLimits {
        crate::incoming::ConnectionLimits {
            read_header_timeout: self.read_header_timeout.into(),
            write_timeout: self.write_timeout.into(),
            max_connections: self.max_connections,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CredentialsAction {
    /// Client id (never the secret), application id, token expiry, state file.
    Show,
    /// Registers a new client now and stores it (replacing the stored one).
    Register,
    /// Deletes the stored client credentials and token.
    Forget,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulator and exporter in one process, on a built-in configuration.
    Demo {
        #[command(flatten)]
        web: WebArgs,
    },
    /// The Adobe Pass simulator alone, for trying the service by hand.
    Simulate {
        /// Address of the simulated DCR and CMU servers.
        #[arg(
            long,
            env = "CMU_EXPORTER_SIMULATE_LISTEN",
            default_value = "127.0.0.1:9064"
        )]
        listen: String,
        /// Lifetime of issued access tokens.
        #[arg(
            long,
            env = "CMU_EXPORTER_SIMULATE_TOKEN_LIFETIME",
            default_value = "6h"
        )]
        token_lifetime: humantime::Duration,
        /// Extra MVPDs and applications, for large reports (1 = the default universe).
        #[arg(long, env = "CMU_EXPORTER_SIMULATE_SCALE", default_value_t = 1)]
        scale: usize,
        /// Also write the approved software statement to this file (mode
        /// 0600), for adobe.software_statement_file.
        #[arg(long = "statement-file", value_name = "FILE")]
        statement_file: Option<PathBuf>,
    },
    /// Validates a configuration file and explains what it will do (exit 0 or 1).
    CheckConfig {
        #[command(flatten)]
        config: ConfigFile,
        /// The configuration file, as a shorthand for --config.file.
        #[arg(value_name = "FILE", conflicts_with = "config_file")]
        file: Option<PathBuf>,
        #[command(flatten)]
        web_config: WebConfigFile,
        /// Also ask Adobe for each report's exact query once (path, filters,
        /// metrics, limit), with the configured credentials.
        #[arg(long, env = "CMU_EXPORTER_CHECK_ONLINE")]
        online: bool,
    },
    /// Lists every report path Adobe serves, with a ready configuration snippet.
    Discover {
        #[command(flatten)]
        config: ConfigFile,
        /// The account whose view to list (the first listed by default).
        #[arg(long, env = "CMU_EXPORTER_ACCOUNT")]
        account: Option<String>,
        /// The report API to walk: `cmu` (Concurrency Monitoring) or `esm`
        /// (Entitlement Service Monitoring).
        #[arg(long, env = "CMU_EXPORTER_DISCOVER_API", default_value = "cmu")]
        api: String,
    },
    /// Shows, registers or forgets the stored client credentials.
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
        #[command(flatten)]
        config: ConfigFileOfActions,
        /// The account, when the configuration lists `accounts:`.
        #[arg(long, env = "CMU_EXPORTER_ACCOUNT", global = true)]
        account: Option<String>,
    },
    /// Writes Adobe's history of the reports as OpenMetrics, for
    /// `promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`, or
    /// pushes it straight into a remote-write store (`--remote-write`).
    Backfill {
        #[command(flatten)]
        config: ConfigFile,
        /// First day, in the reports' time zone (YYYY-MM-DD; at most 25 months back).
        #[arg(long)]
        from: String,
        /// Last day, included (default: up to the newest complete bucket).
        #[arg(long)]
        to: Option<String>,
        /// A report to backfill (repeat; default: every report with a time dimension).
        #[arg(long = "report", value_name = "NAME")]
        reports: Vec<String>,
        /// The OpenMetrics file to write.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "remote_write",
            conflicts_with = "remote_write"
        )]
        output: Option<PathBuf>,
        /// Push the history into this store instead: a `remote_write` name
        /// of the configuration, or a write URL.
        #[arg(long = "remote-write", value_name = "URL|NAME")]
        remote_write: Option<String>,
        /// Most calls to CMU, over all runs of this backfill (a hard budget).
        #[arg(long = "max-requests", value_name = "N")]
        max_requests: Option<u64>,
        /// The highest `limit` one bucket may need before the backfill stops.
        #[arg(long = "max-limit", default_value_t = 100_000, value_name = "N")]
        max_limit: u32,
        /// A label added to every sample (repeat), to match the `job` and
        /// `instance` Prometheus gives the exporter's live series.
        #[arg(long = "label", value_name = "NAME=VALUE")]
        labels: Vec<String>,
    },
    /// Prints the Prometheus exposition of one saved CMU or ESM JSON report.
    Render {
        /// The report (JSON); `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// Value of the `report` label.
        #[arg(long, env = "CMU_EXPORTER_RENDER_REPORT", default_value = "report")]
        report: String,
        /// Report path, when the file's `self` link does not name it.
        #[arg(long, env = "CMU_EXPORTER_RENDER_PATH")]
        path: Option<String>,
        /// Export the newest bucket even if it is still filling.
        #[arg(long, env = "CMU_EXPORTER_RENDER_PARTIAL")]
        partial: bool,
        /// Time zone of the report's buckets (IANA name; default UTC for
        /// CMU, America/Los_Angeles for ESM).
        #[arg(long, env = "CMU_EXPORTER_RENDER_TIME_ZONE")]
        time_zone: Option<String>,
        /// The API the report comes from: `cmu` or `esm` (names the families).
        #[arg(long, env = "CMU_EXPORTER_RENDER_API", default_value = "cmu")]
        api: String,
    },
}

/// Runs the command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    let outcome = match cli.command {
        None => run_async(service::serve(&cli.service)),
        Some(Command::Demo { web }) => run_async(service::demo(&web)),
        Some(Command::Simulate {
            listen,
            token_lifetime,
            scale,
            statement_file,
        }) => run_async(service::simulate(
            &listen,
            token_lifetime.into(),
            scale,
            statement_file,
        )),
        Some(Command::CheckConfig {
            config,
            file,
            web_config,
            online,
        }) => file
            .map_or_else(|| config.required("the file to check"), Ok)
            .and_then(|file| {
                discover::check_config(&file, web_config.web_config_file.as_deref())?;
                if online {
                    run_async(discover::check_online(&file))
                } else {
                    Ok(())
                }
            }),
        Some(Command::Discover {
            config,
            account,
            api,
        }) => run_async(discover::discover(config, account, &api)),
        Some(Command::Credentials {
            action,
            config,
            account,
        }) => run_async(credentials::run(config.into(), action, account)),
        Some(Command::Backfill {
            config,
            from,
            to,
            reports,
            output,
            remote_write,
            max_requests,
            max_limit,
            labels,
        }) => run_async(backfill::run(
            config,
            backfill::Arguments {
                from,
                to,
                reports,
                output,
                remote_write,
                max_requests,
                max_limit,
                labels,
            },
        )),
        Some(Command::Render {
            file,
            report,
            path,
            partial,
            time_zone,
            api,
        }) => render::run(file, report, path, partial, time_zone.as_deref(), &api),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "cmu-exporter: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a multi-threaded runtime, built only for the commands that
/// need one (`render` and an offline `check-config` start no threads).
fn run_async(work: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

/// glibc gives every thread that allocates its own heap arena, each holding
/// on to freed memory. An exporter is a few mostly idle threads: two arenas
/// keep its memory small at no visible cost. `MALLOC_ARENA_MAX` still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator tuning; it is called before any
        // other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A telemetry path: absolute, and not one of the other pages.
fn telemetry_path(text: &str) -> anyhow::Result<String> {
    let taken = ["/", "/healthz", "/readyz"];
    if !text.starts_with('/') || taken.contains(&text) || text.contains(['{', '}', '*']) {
        return Err(anyhow!(
            "`{text}` cannot serve metrics: give an absolute path other than / /healthz /readyz, e.g. /metrics"
        ));
    }
    Ok(text.to_owned())
}

/// Parses `host:port`, `:port` (every interface) or `[v6]:port`.
fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| anyhow!("--web.listen-address `{text}` is not host:port, e.g. `:{DEFAULT_PORT}` or `127.0.0.1:{DEFAULT_PORT}`"))
}

/// The account `--account` names; without it, the only account (or, where
/// `first_by_default`, the first listed).
fn account<'a>(
    config: &'a Config,
    name: Option<&str>,
    first_by_default: bool,
) -> anyhow::Result<&'a AccountConfig> {
    let names: Vec<&str> = config.accounts.iter().filter_map(|a| a.label()).collect();
    match name {
        Some(name) => config
            .accounts
            .iter()
            .find(|a| a.label() == Some(name))
            .ok_or_else(|| {
                if names.is_empty() {
                    anyhow!("--account {name}: the configuration lists no `accounts:`; leave --account out")
                } else {
                    anyhow!("--account {name}: not a listed account; use one of {}", names.join(", "))
                }
            }),
        None if config.accounts.len() == 1 || first_by_default => config
            .accounts
            .first()
            .ok_or_else(|| anyhow!("the configuration has no account")),
        None => Err(anyhow!(
            "the configuration lists several accounts: name one with --account ({})",
            names.join(", ")
        )),
    }
}

/// The shard that `--shard` and `--total-shards` name.
fn shard(cli: &ServiceArgs) -> anyhow::Result<Shard> {
    Ok(match cli.shard.as_str() {
        "auto" => {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .unwrap_or_default();
            Shard::from_hostname(host.trim(), cli.total_shards)?
        }
        n => {
            let index = n.parse().map_err(|_| {
                anyhow!("--shard `{n}` is not a shard number: give 0, 1, ... or `auto`")
            })?;
            Shard::new(index, cli.total_shards)?
        }
    })
}

fn listen_addresses(given: &[String], default: &str) -> anyhow::Result<Vec<SocketAddr>> {
    if given.is_empty() {
        return Ok(vec![parse_listen(default)?]);
    }
    given.iter().map(|a| parse_listen(a)).collect()
}
