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

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{Config, ReportConfig};
use crate::poller::{self, PollContext};
use crate::shutdown::Shutdown;

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
        )
    }
}

/// Owns the pollers and the configuration they run.
pub struct Supervisor {
    /// The file reloads read; `None` when started from text (the demo).
    file: Option<PathBuf>,
    ctx: PollContext,
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
    pub fn start(config: Config, file: Option<PathBuf>, ctx: PollContext) -> Self {
        let pollers = config
            .reports
            .iter()
            .map(|r| (r.name.to_string(), spawn(r.clone(), &ctx)))
            .collect();
        ctx.telemetry
            .config_loaded(ctx.clock.now().as_millisecond() as f64 / 1000.0);
        Self {
            file,
            ctx,
            state: Mutex::new(State {
                config,
                pollers,
                stopped: false,
            }),
        }
    }

    /// Reads the configuration file again and applies it; on error nothing
    /// changes and the reason is returned (and logged, and counted).
    pub async fn reload(&self) -> Result<ReloadSummary, String> {
        let result = self.try_reload().await;
        match &result {
            Ok(summary) => {
                self.ctx
                    .telemetry
                    .config_loaded(self.ctx.clock.now().as_millisecond() as f64 / 1000.0);
                tracing::info!(%summary, "configuration reloaded");
            }
            Err(reason) => self.ctx.telemetry.config_refused(reason),
        }
        result
    }

    async fn try_reload(&self) -> Result<ReloadSummary, String> {
        let file = self.file.as_ref().ok_or(
            "the exporter was started without --config.file (the demo's built-in configuration): there is no file to reload",
        )?;
        let new = Config::load(file).map_err(|e| e.to_string())?;
        let mut state = self.state.lock().await;
        if state.stopped {
            return Err("the exporter is stopping".into());
        }
        let restart_needed = needs_restart(&state.config, &new);
        if !restart_needed.is_empty() {
            return Err(format!(
                "{} changed in {}: these hold the credentials and the HTTP client, so restart the exporter to apply them (nothing was changed)",
                restart_needed.join(", "),
                file.display()
            ));
        }
        let mut summary = ReloadSummary::default();
        let wanted: BTreeMap<String, &ReportConfig> = new
            .reports
            .iter()
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
            let poller = state.pollers.remove(&name).expect("listed above");
            stop(poller).await;
            self.ctx.store.remove(&name);
            if wanted.contains_key(&name) {
                summary.restarted.push(name);
            } else {
                self.ctx.board.remove(&name);
                self.ctx.telemetry.forget_report(&name);
                summary.removed.push(name);
            }
        }
        for (name, report) in wanted {
            if let Entry::Vacant(slot) = state.pollers.entry(name.clone()) {
                slot.insert(spawn(report.clone(), &self.ctx));
                if !summary.restarted.contains(&name) {
                    summary.added.push(name);
                }
            }
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

fn spawn(config: ReportConfig, ctx: &PollContext) -> Poller {
    let stop = Shutdown::new();
    let task = tokio::spawn(poller::run(config.clone(), ctx.clone(), stop.signal()));
    Poller { config, stop, task }
}

async fn stop(poller: Poller) {
    poller.stop.trigger();
    let _ = poller.task.await;
}

/// The keys outside `reports` whose change needs a restart.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&old.adobe, &new.adobe);
    [
        ("adobe.dcr_url", a.dcr_url != b.dcr_url),
        ("adobe.cmu_url", a.cmu_url != b.cmu_url),
        (
            "adobe.software_statement_file",
            a.software_statement != b.software_statement,
        ),
        (
            "adobe.client_id_file/client_secret_file",
            a.client != b.client,
        ),
        ("adobe.time_zone", a.time_zone != b.time_zone),
        (
            "adobe.max_concurrent_requests",
            a.max_concurrent_requests != b.max_concurrent_requests,
        ),
        ("adobe.proxy_url", a.proxy_url != b.proxy_url),
        ("adobe.ca_file", a.ca_file != b.ca_file),
        ("state_dir", old.state_dir != new.state_dir),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}
