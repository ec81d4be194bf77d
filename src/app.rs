//! Wires the parts into a running exporter: the same code serves the
//! `cmu-exporter` service, the `demo` mode and the integration tests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::{AccountConfig, Config};
use crate::credentials::{
    Credentials, CredentialsError, DcrClient, SoftwareStatement, StateStore, StoreError,
};
use crate::incoming::{AppState, router};
use crate::outgoing::ClientError;
use crate::poller::PollContext;
use crate::push::{PushContext, Pusher};
use crate::reports::Reports;
use crate::shutdown::Shutdown;
use crate::supervisor::Supervisor;
use crate::telemetry::Telemetry;
use crate::wolap::{AuthorizedClient, ReportClient};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Addresses to serve on (port 0 for an ephemeral one).
    pub listen: Vec<SocketAddr>,
    /// Path of the metrics page (`--web.telemetry-path`).
    pub telemetry_path: String,
    pub clock: Clock,
    /// The configuration file, read again on reload (`None` for the demo).
    pub config_file: Option<std::path::PathBuf>,
    /// TLS, basic auth and client limits (`--web.config.file`).
    pub web: crate::incoming::WebConfig,
    /// Which reports this process polls (`--shard`, `--total-shards`).
    pub shard: crate::shard::Shard,
}

impl Options {
    /// One ephemeral port on 127.0.0.1, `/metrics`, no configuration file,
    /// plain HTTP, every report: for tests, examples and the simulated day.
    pub fn loopback(clock: Clock) -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            telemetry_path: "/metrics".into(),
            clock,
            config_file: None,
            web: crate::incoming::WebConfig::default(),
            shard: crate::shard::Shard::ALL,
        }
    }
}

/// Why the exporter did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Http(#[from] ClientError),
    #[error("cannot listen on {addr}: {reason}: pick a free address with --web.listen-address")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Push(#[from] crate::push::SetupError),
    #[error("account {account}: {error}")]
    InAccount {
        account: String,
        error: Box<StartError>,
    },
}

/// What the service would refuse at start from its files alone, checked
/// without changing them: each account's `state_dir` (a directory that can
/// be created and written), its software statement (needed unless client
/// credentials are stored there or preset) and its pre-registered client's
/// files, and the outgoing client's proxy and CA file. [`start`] runs it
/// first and `check-config` runs it too, so the two say the same.
pub fn preflight(config: &Config) -> Result<(), StartError> {
    for account in &config.accounts {
        let checked = (|| {
            let stored = StateStore::check(&account.state_dir(&config.state_dir))?;
            let preset = account
                .client
                .as_ref()
                .map(crate::credentials::load_preset)
                .transpose()?;
            if let Err(e) = SoftwareStatement::load(&account.software_statement)
                && !stored
                && preset.is_none()
            {
                return Err(StartError::Credentials(e.into()));
            }
            Ok(())
        })();
        checked.map_err(|error| match account.label() {
            Some(name) => StartError::InAccount {
                account: name.to_owned(),
                error: Box::new(error),
            },
            None => error,
        })?;
    }
    adobe_client(&config.adobe)?;
    crate::push::check(&config.remote_write)?;
    Ok(())
}

/// This host's name (`localhost` when it has none): the pod's name on Kubernetes.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The `instance` a scrape of this process would give: its host name and
/// first listening port.
fn instance(addr: Option<&SocketAddr>) -> String {
    let host = host_name();
    match addr {
        Some(addr) => format!("{host}:{}", addr.port()),
        None => host,
    }
}

/// A running exporter.
pub struct Running {
    /// The addresses actually bound.
    pub addrs: Vec<SocketAddr>,
    /// Every report's snapshot, status and self-metrics.
    pub reports: Arc<Reports>,
    pub telemetry: Telemetry,
    /// Every account's credentials (one in the single-account form).
    pub accounts: Vec<Arc<Credentials>>,
    /// The pollers; `Supervisor::reload` applies a new configuration file.
    pub supervisor: Arc<Supervisor>,
    /// The remote-write stores pushed to.
    pub pusher: Arc<Pusher>,
    shutdown: Shutdown,
    tasks: JoinSet<()>,
}

/// The credentials of one account of `config`: its state store, statement
/// and pre-registered client, calling DCR through `dcr`.
pub fn open_account(
    config: &Config,
    account: &AccountConfig,
    dcr: DcrClient,
    clock: Clock,
    telemetry: Telemetry,
) -> Result<Credentials, StartError> {
    let store = StateStore::open(&account.state_dir(&config.state_dir))?;
    let statement = SoftwareStatement::load(&account.software_statement);
    let preset = account
        .client
        .as_ref()
        .map(crate::credentials::load_preset)
        .transpose()?;
    Ok(Credentials::open(
        dcr,
        store,
        statement,
        preset,
        clock,
        telemetry,
        account.label().map(str::to_owned),
    )?)
}

/// Every account's credentials. One DCR client serves them all, so one
/// pacer keeps the whole process at Adobe's per-IP rate.
pub fn open_accounts(
    config: &Config,
    http: reqwest::Client,
    clock: Clock,
    telemetry: Telemetry,
) -> Result<Vec<Arc<Credentials>>, StartError> {
    let dcr = DcrClient::new(
        http,
        &config.adobe.dcr_url,
        telemetry.clone(),
        clock.clone(),
    );
    config
        .accounts
        .iter()
        .map(|account| {
            open_account(
                config,
                account,
                dcr.clone(),
                clock.clone(),
                telemetry.clone(),
            )
            .map(Arc::new)
        })
        .collect()
}

/// The telemetry `config` needs: an `account` label when accounts are listed.
pub fn telemetry_for(config: &Config) -> Telemetry {
    if config.accounts.iter().any(|a| a.name.is_some()) {
        Telemetry::with_accounts()
    } else {
        Telemetry::new()
    }
}

/// Starts polling and serving. Returns once every address is bound.
pub async fn start(config: Config, options: Options) -> Result<Running, StartError> {
    preflight(&config)?;
    let telemetry = telemetry_for(&config);
    let http = adobe_client(&config.adobe)?;
    let accounts = open_accounts(
        &config,
        http.clone(),
        options.clock.clone(),
        telemetry.clone(),
    )?;
    let mut listeners = Vec::new();
    for addr in &options.listen {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Listen {
                addr: *addr,
                reason: e.to_string(),
            })?;
        listeners.push(listener);
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let clients: Arc<BTreeMap<Option<String>, AuthorizedClient>> = {
        let reports = ReportClient::new(
            http,
            &config.adobe,
            telemetry.clone(),
            options.clock.clone(),
        );
        Arc::new(
            accounts
                .iter()
                .map(|credentials| {
                    let client = AuthorizedClient {
                        reports: reports.clone(),
                        credentials: credentials.clone(),
                    };
                    (credentials.account().map(str::to_owned), client)
                })
                .collect(),
        )
    };
    let adobe = Arc::new(config.adobe.clone());
    let permits = Arc::new(tokio::sync::Semaphore::new(
        config.adobe.max_concurrent_requests,
    ));
    let pusher = Pusher::new(PushContext {
        clients: clients.clone(),
        adobe: adobe.clone(),
        clock: options.clock.clone(),
        telemetry: telemetry.clone(),
        state_dir: config.state_dir.clone(),
        instance: instance(addrs.first()),
        permits: permits.clone(),
    });
    pusher.configure(&config.remote_write).await?;
    let reports = Arc::new(Reports::new(telemetry.clone(), vec![pusher.clone()]));
    let ctx = PollContext {
        clients,
        reports: reports.clone(),
        clock: options.clock.clone(),
        adobe,
        permits,
    };
    telemetry.shard(options.shard);
    let supervisor = Arc::new(Supervisor::start(
        config,
        options.config_file.clone(),
        ctx,
        pusher.clone(),
        telemetry.clone(),
        options.shard,
    ));
    let shutdown = Shutdown::new();
    let mut tasks = JoinSet::new();
    let state = AppState {
        reports: reports.clone(),
        telemetry: telemetry.clone(),
        accounts: accounts.clone(),
        supervisor: supervisor.clone(),
        pusher: pusher.clone(),
        clock: options.clock.clone(),
        telemetry_path: options.telemetry_path.clone(),
        self_metrics: Arc::default(),
    };
    for listener in listeners {
        let app = options.web.protect(router(state.clone()));
        tasks.spawn(crate::incoming::serve(
            listener,
            app,
            options.web.clone(),
            telemetry.clone(),
            shutdown.signal(),
        ));
    }
    Ok(Running {
        addrs,
        reports,
        telemetry,
        accounts,
        supervisor,
        pusher,
        shutdown,
        tasks,
    })
}

impl Running {
    /// Base URL of the first listener, e.g. `http://127.0.0.1:9063`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addrs[0])
    }

    /// A handle that stops the exporter when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.wait().await;
    }

    /// Runs until shutdown is triggered, then stops the pollers (each
    /// finishes its poll in flight, briefly) and waits for every task.
    pub async fn wait(mut self) {
        let mut signal = self.shutdown.signal();
        signal.wait().await;
        self.supervisor.stop_all().await;
        self.pusher.stop_all().await;
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The one client for Adobe, as `adobe` sets it up (its request timeout,
/// proxy and CAs).
pub fn adobe_client(
    adobe: &crate::config::AdobeConfig,
) -> Result<reqwest::Client, crate::outgoing::ClientError> {
    crate::outgoing::client(
        adobe.request_timeout,
        adobe.proxy_url.as_ref(),
        adobe.ca_file.as_deref(),
    )
}
