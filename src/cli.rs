//! The command line: the service and its helper commands.

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, Options};
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::SoftwareStatement;
use crate::export::{Exposition, SnapshotSpec, build_snapshot_from};
use crate::report::{BucketChoice, ReportPath};
use crate::simulator::{Simulator, SimulatorConfig};
use crate::web::WebConfig;

/// Default port: below the exporters' range of Prometheus's port list
/// (9100-9999, fully allocated) and clear of Prometheus's own 9090-9094.
pub const DEFAULT_PORT: u16 = 9063;

/// Prometheus exporter for Adobe Pass Concurrency Monitoring Usage reports.
#[derive(Debug, Parser)]
#[command(name = "cmu-exporter", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(
        long = "config.file",
        env = "CMU_EXPORTER_CONFIG_FILE",
        global = true,
        value_name = "FILE"
    )]
    config_file: Option<PathBuf>,
    /// Address to serve metrics on (repeat for several); `:9063` means every interface.
    #[arg(
        long = "web.listen-address",
        env = "CMU_EXPORTER_WEB_LISTEN_ADDRESS",
        global = true,
        value_name = "ADDR",
        value_delimiter = ','
    )]
    listen: Vec<String>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "CMU_EXPORTER_WEB_TELEMETRY_PATH", global = true, default_value = "/metrics", value_parser = telemetry_path)]
    telemetry_path: String,
    /// TLS and basic auth settings, in the Prometheus exporter toolkit's format.
    #[arg(
        long = "web.config.file",
        env = "CMU_EXPORTER_WEB_CONFIG_FILE",
        global = true,
        value_name = "FILE"
    )]
    web_config_file: Option<PathBuf>,
    /// Time a client has to send its request headers (and finish a TLS
    /// handshake); idle keep-alive connections close after it too.
    #[arg(
        long = "web.read-header-timeout",
        env = "CMU_EXPORTER_WEB_READ_HEADER_TIMEOUT",
        global = true,
        default_value = "10s",
        value_name = "DURATION"
    )]
    read_header_timeout: humantime::Duration,
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

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum CredentialsAction {
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
    Demo,
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
    },
    /// Validates a configuration file and explains what it will do (exit 0 or 1).
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
        /// Also ask Adobe whether each report path exists (walks the drill-down links).
        #[arg(long, env = "CMU_EXPORTER_CHECK_ONLINE")]
        online: bool,
    },
    /// Lists every report path Adobe serves, with a ready configuration snippet.
    Discover,
    /// Shows, registers or forgets the stored client credentials.
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
    /// Prints the Prometheus exposition of one saved CMU JSON report.
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
        /// Time zone of the report's buckets (IANA name).
        #[arg(long, env = "CMU_EXPORTER_RENDER_TIME_ZONE", default_value = "UTC")]
        time_zone: String,
    },
}

/// Runs the command line; the binary's `main` is only this.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    let outcome = match cli.command {
        None => run_async(serve(&cli)),
        Some(Command::Demo) => run_async(demo(&cli)),
        Some(Command::Simulate {
            listen,
            token_lifetime,
            scale,
        }) => run_async(simulate(&listen, token_lifetime.into(), scale)),
        Some(Command::CheckConfig { file, online }) => check_config(&file).and_then(|()| {
            if online {
                run_async(check_online(&file))
            } else {
                Ok(())
            }
        }),
        Some(Command::Discover) => run_async(discover(cli.config_file)),
        Some(Command::Credentials { action }) => run_async(credentials(cli.config_file, action)),
        Some(Command::Render {
            file,
            report,
            path,
            partial,
            time_zone,
        }) => render(file, report, path, partial, &time_zone),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cmu-exporter: {message}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own heap arena, each holding
/// on to freed memory. An exporter is a few mostly idle threads: two arenas
/// keep its memory small at no visible cost. `MALLOC_ARENA_MAX` still wins.
/// Runs `work` on a multi-threaded runtime, built only for the commands that
/// need one (`render` and an offline `check-config` start no threads).
fn run_async(work: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(work)
}

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
fn telemetry_path(text: &str) -> Result<String, String> {
    let taken = ["/", "/healthz", "/readyz"];
    if !text.starts_with('/') || taken.contains(&text) || text.contains(['{', '}', '*']) {
        return Err(format!(
            "`{text}` cannot serve metrics: give an absolute path other than / /healthz /readyz, e.g. /metrics"
        ));
    }
    Ok(text.to_owned())
}

/// Parses `host:port`, `:port` (every interface) or `[v6]:port`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("--web.listen-address `{text}` is not host:port, e.g. `:{DEFAULT_PORT}` or `127.0.0.1:{DEFAULT_PORT}`"))
}

fn listen_addresses(given: &[String], default: &str) -> Result<Vec<SocketAddr>, String> {
    if given.is_empty() {
        return Ok(vec![parse_listen(default)?]);
    }
    given.iter().map(|a| parse_listen(a)).collect()
}

/// Resolves when SIGINT (Ctrl-C) or SIGTERM arrives.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The service's options from the command line: `--web.*` and the config file.
fn service_options(
    cli: &Cli,
    default_listen: &str,
    config_file: Option<PathBuf>,
) -> Result<Options, String> {
    let timeout = cli.read_header_timeout.into();
    let web = match &cli.web_config_file {
        Some(file) => WebConfig::load(file, timeout)?,
        None => WebConfig::plain(timeout),
    };
    Ok(Options {
        listen: listen_addresses(&cli.listen, default_listen)?,
        telemetry_path: cli.telemetry_path.clone(),
        clock: Clock::wall(),
        config_file,
        web,
    })
}

async fn serve(cli: &Cli) -> Result<(), String> {
    let file = cli
        .config_file
        .clone()
        .ok_or("--config.file is required to run the service (or try `cmu-exporter demo`)")?;
    let config = Config::load(&file).map_err(|e| e.to_string())?;
    let options = service_options(cli, &format!(":{DEFAULT_PORT}"), Some(file))?;
    let running = start_until_signal(config, options).await?;
    for addr in &running.addrs {
        tracing::info!(%addr, "serving metrics");
    }
    running.wait().await;
    Ok(())
}

/// Starts the exporter; SIGINT or SIGTERM will stop it, SIGHUP reloads its
/// configuration file.
async fn start_until_signal(config: Config, options: Options) -> Result<app::Running, String> {
    let running = app::start(config, options)
        .await
        .map_err(|e| e.to_string())?;
    let handle = running.shutdown_handle();
    tokio::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping");
        handle.trigger();
    });
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let supervisor = running.supervisor.clone();
        let mut hangup =
            signal(SignalKind::hangup()).map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // The outcome is logged and counted by the supervisor.
                let _ = supervisor.reload().await;
            }
        });
    }
    Ok(running)
}

async fn demo(cli: &Cli) -> Result<(), String> {
    let options = service_options(cli, &format!("127.0.0.1:{DEFAULT_PORT}"), None)?;
    let telemetry_path = options.telemetry_path.clone();
    let sim = Simulator::start(
        SimulatorConfig::default(),
        "127.0.0.1:0".parse().expect("literal address"),
    )
    .await
    .map_err(|e| format!("cannot start the simulator: {e}"))?;
    let dir = tempfile::Builder::new()
        .prefix("cmu-exporter-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary state directory: {e}"))?;
    let statement_file = dir.path().join("software-statement.jwt");
    write_private(&statement_file, sim.software_statement().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", statement_file.display()))?;
    let config = demo_config(&sim, &statement_file, &dir.path().join("state"))?;
    let reports = config.reports.len();
    let running = start_until_signal(config, options).await?;
    let url = running.url();
    println!("cmu-exporter demo: {reports} reports from the built-in Adobe Pass simulator");
    println!("  metrics:        {url}{telemetry_path}");
    println!("  landing page:   {url}/");
    println!("  simulated DCR:  {}", sim.dcr_url());
    println!("  simulated CMU:  {}", sim.cmu_url());
    println!("Press Ctrl-C to stop.");
    running.wait().await;
    sim.stop().await;
    drop(dir);
    println!("cmu-exporter demo: stopped");
    Ok(())
}

/// The demo's built-in configuration for `sim`, with the statement already
/// written to `statement_file` and credentials kept in `state_dir`.
pub fn demo_config(
    sim: &Simulator,
    statement_file: &std::path::Path,
    state_dir: &std::path::Path,
) -> Result<Config, String> {
    let yaml = include_str!("demo.yaml")
        .replace("{dcr_url}", &sim.dcr_url())
        .replace("{cmu_url}", &sim.cmu_url())
        .replace("{statement_file}", &statement_file.display().to_string())
        .replace("{state_dir}", &state_dir.display().to_string());
    Config::from_yaml(&yaml, "the built-in demo configuration").map_err(|e| e.to_string())
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
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

async fn simulate(
    listen: &str,
    token_lifetime: std::time::Duration,
    scale: usize,
) -> Result<(), String> {
    let addr = parse_listen(listen)?;
    let config = SimulatorConfig {
        token_lifetime,
        scale,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config, addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("Adobe Pass simulator");
    println!("  adobe.dcr_url: {}", sim.dcr_url());
    println!("  adobe.cmu_url: {}", sim.cmu_url());
    println!(
        "  software statement (approved, save it to a file for adobe.software_statement_file):"
    );
    println!("{}", sim.software_statement());
    println!("Press Ctrl-C to stop.");
    stop_signal().await;
    sim.stop().await;
    Ok(())
}

async fn credentials(
    config_file: Option<PathBuf>,
    action: CredentialsAction,
) -> Result<(), String> {
    let file =
        config_file.ok_or("--config.file is required: the state_dir and statement come from it")?;
    let config = Config::load(&file).map_err(|e| e.to_string())?;
    let http = crate::outgoing::adobe_client(&config.adobe).map_err(|e| e.to_string())?;
    let telemetry = crate::telemetry::Telemetry::new();
    let credentials = app::open_credentials(&config, http, Clock::wall(), telemetry)
        .map_err(|e| e.to_string())?;
    match action {
        CredentialsAction::Show => {
            let (client_id, application_id, expiry) = credentials.describe().await;
            println!("state file:     {}", credentials.state_file().display());
            println!(
                "client id:      {}",
                client_id
                    .as_deref()
                    .unwrap_or("none (the exporter registers on its first poll)")
            );
            println!(
                "application id: {}",
                application_id.as_deref().unwrap_or("unknown")
            );
            match expiry {
                Some(at) => println!("access token:   expires {at}"),
                None => println!("access token:   none stored"),
            }
        }
        CredentialsAction::Register => {
            let client_id = credentials
                .register_now()
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "registered client {client_id}; stored in {}",
                credentials.state_file().display()
            );
        }
        CredentialsAction::Forget => {
            let path = credentials.state_file().display().to_string();
            match credentials.forget().map_err(|e| e.to_string())? {
                true => println!("deleted {path}: the exporter registers again on its next start"),
                false => println!("nothing stored at {path}"),
            }
        }
    }
    Ok(())
}

/// An authorized CMU client for the one-off commands.
fn online_client(config: &Config) -> Result<crate::cmu::AuthorizedClient, String> {
    let http = crate::outgoing::adobe_client(&config.adobe).map_err(|e| e.to_string())?;
    let telemetry = crate::telemetry::Telemetry::new();
    let credentials = app::open_credentials(config, http.clone(), Clock::wall(), telemetry.clone())
        .map_err(|e| e.to_string())?;
    Ok(crate::cmu::AuthorizedClient {
        credentials: std::sync::Arc::new(credentials),
        cmu: crate::cmu::CmuClient::new(
            http,
            config.adobe.cmu_url.clone(),
            telemetry,
            Clock::wall(),
        ),
    })
}

async fn discover(config_file: Option<PathBuf>) -> Result<(), String> {
    let file =
        config_file.ok_or("--config.file is required: the CMU URL and credentials come from it")?;
    let config = Config::load(&file).map_err(|e| e.to_string())?;
    let client = online_client(&config)?;
    let paths = crate::discovery::walk(&client)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    print!(
        "{}",
        crate::discovery::config_snippet(&paths, config.adobe.cmu_url.as_str())
    );
    Ok(())
}

async fn check_online(file: &std::path::Path) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let client = online_client(&config)?;
    let paths = crate::discovery::walk(&client)
        .await
        .map_err(|e| format!("online check failed: {e}"))?;
    let missing: Vec<String> = config
        .reports
        .iter()
        .filter(|r| !paths.contains(&r.path))
        .map(|r| format!("reports: {}: Adobe serves no report at /{} (`cmu-exporter discover` lists the valid paths)", r.name, r.path))
        .collect();
    if missing.is_empty() {
        println!(
            "online: every report path exists ({} paths served)",
            paths.len()
        );
        Ok(())
    } else {
        Err(missing.join("\n"))
    }
}

fn check_config(file: &std::path::Path) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| format!("configuration is not valid:\n{e}"))?;
    print!("{}", config.explain());
    match SoftwareStatement::load(&config.adobe.software_statement) {
        Ok(s) => println!(
            "software statement: readable; application id {} (issuer {})",
            s.application_id.as_deref().unwrap_or("unknown"),
            s.issuer.as_deref().unwrap_or("unknown")
        ),
        Err(e) if config.adobe.client.is_some() => {
            println!(
                "software statement: not available ({e}); not needed with pre-registered client credentials"
            )
        }
        Err(e) => return Err(format!("configuration is valid, but {e}")),
    }
    println!("configuration is valid");
    Ok(())
}

fn render(
    file: Option<PathBuf>,
    report: String,
    path: Option<String>,
    partial: bool,
    time_zone: &str,
) -> Result<(), String> {
    // The report is streamed through the parser: a large file is never held whole.
    let mut input: Box<dyn Read> = match file.as_deref() {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(
            std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        ),
    };
    let path = match path {
        Some(p) => Some(ReportPath::parse(&p).map_err(|e| format!("--path `{p}`: {e}"))?),
        None => None,
    };
    let time_zone = crate::config::time_zone(time_zone).ok_or_else(|| {
        format!("--time-zone `{time_zone}` is not a known time zone: use an IANA name such as UTC")
    })?;
    let choice = if partial {
        BucketChoice::Partial
    } else {
        BucketChoice::Complete
    };
    let spec = SnapshotSpec {
        report,
        path,
        choice,
        now: jiff::Timestamp::now(),
        time_zone,
        labels: Vec::new(),
        max_series: None,
    };
    let origin = file
        .as_deref()
        .map_or("standard input".to_owned(), |p| p.display().to_string());
    let snapshot = build_snapshot_from(&mut input, &spec).map_err(|e| format!("{origin}: {e}"))?;
    let exposition = Exposition::assemble([&snapshot]);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    exposition
        .chunks()
        .iter()
        .try_for_each(|chunk| out.write_all(chunk))
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the output: {e}"))
}
