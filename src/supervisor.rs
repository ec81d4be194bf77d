//! Runs one poller per configured report and applies a new configuration
//! file without a restart (SIGHUP and `POST /-/reload`).
//!
//! A reload reads and validates the whole file first: a bad file is refused
//! with its problems and the running configuration stays as it was. A good
//! one is applied report by report: an unchanged report keeps its poller, so
//! its cached series and its schedule; a changed report is restarted (its
//! old series go, since they may no longer match its definition); a removed
//! report stops and its series, status and self-metrics go; a new one starts.
//! The `adobe` section and `state_dir` hold the credentials and the HTTP
//! client, so a change to them is refused with a request to restart.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{AdobeConfig, Config, ConfigError, ReportConfig};
use crate::poller::{self, PollContext};
use crate::retry::RetryPolicy;
use crate::shard::Shard;
use crate::shutdown::{Shutdown, ShutdownSignal};
use crate::telemetry::Telemetry;

/// Pauses before restarting a poller that died: 1 s, doubling to 5 min.
const RESTART: RetryPolicy = RetryPolicy {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(300),
    attempts: u32::MAX,
};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(
        "the exporter was started without --config.file (the demo's built-in configuration): there is no file to reload"
    )]
    NoFile,
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    #[error(
        "{} changed in {}: these hold the credentials and the HTTP client, so restart the exporter to apply them (nothing was changed)",
        keys.join(", "),
        file.display()
    )]
    NeedsRestart { keys: Vec<String>, file: PathBuf },
    #[error(transparent)]
    Push(#[from] crate::push::SetupError),
    #[error("the exporter is stopping")]
    Stopping,
}

/// One running poller.
struct Poller {
    config: ReportConfig,
    stop: Shutdown,
    task: JoinHandle<()>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub kept: Vec<String>,
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Whether the thresholds or stream limits changed (exported at once).
    pub thresholds_changed: bool,
    /// Whether `remote_write` changed (its remotes restarted).
    pub remote_write_changed: bool,
}

impl std::fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        write!(
            f,
            "kept: {}; restarted: {}; added: {}; removed: {}",
            list(&self.kept),
            list(&self.restarted),
            list(&self.added),
            list(&self.removed)
        )?;
        if self.thresholds_changed {
            f.write_str("; thresholds updated")?;
        }
        if self.remote_write_changed {
            f.write_str("; remote_write updated")?;
        }
        Ok(())
    }
}

/// Owns the pollers and the configuration they run.
pub struct Supervisor {
    /// The file reloads read; `None` when started from text (the demo).
    file: Option<PathBuf>,
    /// The reports of the configuration this process polls.
    shard: Shard,
    ctx: PollContext,
    /// The remote-write stores: a reload applies `remote_write`.
    pusher: std::sync::Arc<crate::push::Pusher>,
    telemetry: Telemetry,
    state: Mutex<State>,
}

struct State {
    config: Config,
    pollers: BTreeMap<String, Poller>,
    /// Set once the exporter stops: no reload may start pollers after it.
    stopped: bool,
}

impl Supervisor {
    /// Starts a poller for each report of `config`.
    pub fn start(
        config: Config,
        file: Option<PathBuf>,
        ctx: PollContext,
        pusher: std::sync::Arc<crate::push::Pusher>,
        telemetry: Telemetry,
        shard: Shard,
    ) -> Self {
        ctx.reports.configure_thresholds(&config.thresholds);
        let pollers = config
            .reports
            .iter()
            .filter(|r| shard.owns(r.name.as_str()))
            .map(|r| (r.name.to_string(), spawn(r.clone(), &ctx, &telemetry)))
            .collect();
        telemetry.config_loaded(ctx.clock.now().as_millisecond() as f64 / 1000.0);
        Self {
            file,
            shard,
            ctx,
            pusher,
            telemetry,
            state: Mutex::new(State {
                config,
                pollers,
                stopped: false,
            }),
        }
    }

    /// Reads the configuration file again and applies it; on error nothing
    /// changes and the reason is returned (and logged, and counted).
    pub async fn reload(&self) -> Result<ReloadSummary, ReloadError> {
        let result = self.try_reload().await;
        match &result {
            Ok(summary) => {
                self.telemetry
                    .config_loaded(self.ctx.clock.now().as_millisecond() as f64 / 1000.0);
                tracing::info!(%summary, "configuration reloaded");
            }
            Err(reason) => self.telemetry.config_refused(&reason.to_string()),
        }
        result
    }

    async fn try_reload(&self) -> Result<ReloadSummary, ReloadError> {
        let file = self.file.as_ref().ok_or(ReloadError::NoFile)?;
        let new = Config::load(file)?;
        let mut state = self.state.lock().await;
        if state.stopped {
            return Err(ReloadError::Stopping);
        }
        let keys = needs_restart(&state.config, &new);
        if !keys.is_empty() {
            return Err(ReloadError::NeedsRestart {
                keys,
                file: file.clone(),
            });
        }
        let mut summary = ReloadSummary::default();
        if state.config.remote_write != new.remote_write {
            self.pusher.configure(&new.remote_write).await?;
            summary.remote_write_changed = true;
        }
        let wanted: BTreeMap<String, &ReportConfig> = new
            .reports
            .iter()
            .filter(|r| self.shard.owns(r.name.as_str()))
            .map(|r| (r.name.to_string(), r))
            .collect();
        let old_names: Vec<String> = state.pollers.keys().cloned().collect();
        for name in old_names {
            let keep = wanted
                .get(&name)
                .is_some_and(|r| **r == state.pollers[&name].config);
            if keep {
                summary.kept.push(name);
                continue;
            }
            if let Some(poller) = state.pollers.remove(&name) {
                stop(poller).await;
            }
            if wanted.contains_key(&name) {
                self.ctx.reports.clear_series(&name);
                summary.restarted.push(name);
            } else {
                self.ctx.reports.remove(&name);
                summary.removed.push(name);
            }
        }
        for (name, report) in wanted {
            if let Entry::Vacant(slot) = state.pollers.entry(name.clone()) {
                slot.insert(spawn(report.clone(), &self.ctx, &self.telemetry));
                if !summary.restarted.contains(&name) {
                    summary.added.push(name);
                }
            }
        }
        if state.config.thresholds != new.thresholds {
            self.ctx.reports.configure_thresholds(&new.thresholds);
            summary.thresholds_changed = true;
        }
        state.config = new;
        Ok(summary)
    }

    /// Stops every poller (each finishes its poll in flight, briefly) and waits.
    pub async fn stop_all(&self) {
        let mut state = self.state.lock().await;
        state.stopped = true;
        let pollers = std::mem::take(&mut state.pollers);
        for poller in pollers.values() {
            poller.stop.trigger();
        }
        for (_, poller) in pollers {
            let _ = poller.task.await;
        }
    }
}

/// Starts the poller of `config`, supervised: if its task ever ends
/// without being told to stop (a panic outside a poll), it is logged,
/// counted in `cmu_exporter_poller_restarts_total` and started again.
fn spawn(config: ReportConfig, ctx: &PollContext, telemetry: &Telemetry) -> Poller {
    let stop = Shutdown::new();
    let task = tokio::spawn(supervise(
        config.clone(),
        ctx.clone(),
        telemetry.clone(),
        stop.signal(),
    ));
    Poller { config, stop, task }
}

async fn supervise(
    config: ReportConfig,
    ctx: PollContext,
    telemetry: Telemetry,
    mut stop: ShutdownSignal,
) {
    let name = config.name.to_string();
    let mut restarts = 0;
    loop {
        let run = tokio::spawn(poller::run(config.clone(), ctx.clone(), stop.clone()));
        let ended = run.await;
        if stop.is_triggered() {
            return;
        }
        let why = match ended {
            Err(e) if e.is_panic() => crate::outcome::panic_message(e.into_panic()),
            Err(e) => e.to_string(),
            Ok(()) => "it returned".to_owned(),
        };
        restarts += 1;
        let pause = RESTART.pause(restarts, None);
        telemetry.poller_restarted(&name, &why, pause);
        tokio::select! {
            () = ctx.clock.sleep(pause) => {}
            () = stop.wait() => return,
        }
    }
}

async fn stop(poller: Poller) {
    poller.stop.trigger();
    let _ = poller.task.await;
}

/// The keys outside `reports` and `thresholds` whose change needs a
/// restart. Both configurations are taken apart field by field, with no
/// `..`: a new field is a compile error here until it is judged.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let Config {
        adobe,
        accounts,
        state_dir,
        // Applied by the reload itself.
        reports: _,
        thresholds: _,
        remote_write: _,
    } = old;
    let AdobeConfig {
        dcr_url,
        urls,
        time_zones,
        max_concurrent_requests,
        proxy_url,
        ca_file,
        request_timeout,
        max_answer_size,
    } = adobe;
    let b = &new.adobe;
    let mut changed: Vec<(String, bool)> = vec![("adobe.dcr_url".into(), *dcr_url != b.dcr_url)];
    for api in crate::report::ReportApi::ALL {
        let profile = api.profile();
        changed.push((
            format!("adobe.{}", profile.url_key),
            urls[api] != b.urls[api],
        ));
    }
    changed.push((
        "accounts (or adobe.software_statement_file, client_id_file, client_secret_file)".into(),
        *accounts != new.accounts,
    ));
    for api in crate::report::ReportApi::ALL {
        let profile = api.profile();
        changed.push((
            format!("adobe.{}", profile.time_zone_key),
            time_zones[api] != b.time_zones[api],
        ));
    }
    changed.extend([
        (
            "adobe.max_concurrent_requests".into(),
            *max_concurrent_requests != b.max_concurrent_requests,
        ),
        ("adobe.proxy_url".into(), *proxy_url != b.proxy_url),
        ("adobe.ca_file".into(), *ca_file != b.ca_file),
        (
            "adobe.request_timeout".into(),
            *request_timeout != b.request_timeout,
        ),
        (
            "adobe.max_answer_size".into(),
            *max_answer_size != b.max_answer_size,
        ),
        ("state_dir".into(), *state_dir != new.state_dir),
    ]);
    changed
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
}
