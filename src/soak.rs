//! The chaos soak: the exporter against the simulator in chaos mode, at
//! accelerated time, with its invariants checked all the while.
//!
//! For a while the simulator answers a share of all requests with a random
//! fault (5xx, 429 with and without `Retry-After`, truncated and slow
//! answers), and now and then tokens expire, the exporter's credentials are
//! revoked, its statement loses its approval for a while, and the
//! exporter's clock (only its own) jumps forward or back. The exporter
//! pushes to a remote-write store of the tests' own ([`crate::faulty_store`])
//! that answers a share of requests with 500, 503, 429, 413 or too slowly,
//! and is down now and then. Then the faults stop: every report must
//! converge to what the simulator serves, and the store must hold every
//! bucket of every report from the first it got to the push's cursor, with
//! the simulator's values. Throughout: no panic, `/metrics` answers every scrape, DCR calls stay
//! within Adobe's throttle, registrations follow revocations only, the
//! state file always parses, and no secret shows in a page or a log line.
//!
//! `scripts/soak [SECONDS]` runs it (`examples/soak.rs`); the test suite runs
//! a short one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::Clock;
use crate::config::{Config, ReportConfig};
use crate::credentials::store::STATE_FILE;
use crate::export::{Exposition, SnapshotSpec, build_history, build_snapshot};
use crate::faulty_store::{self, STORE_FAULT_KINDS, StoreChaos};
use crate::simulator::{CHAOS_KINDS, Chaos, Endpoint, Simulator, SimulatorConfig};

/// How a soak runs.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Real time under faults; the convergence check comes after it.
    pub chaos_time: Duration,
    /// Simulated seconds per real second.
    pub factor: f64,
    /// Seed of the faults and events (the same seed, the same draws).
    pub seed: u64,
    /// Share of the requests that get a random fault.
    pub fault_share: f64,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            chaos_time: Duration::from_secs(60),
            factor: 360.0,
            seed: 1,
            fault_share: 0.2,
        }
    }
}

/// What the soak does now and then, besides the simulator's random faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Every token expires.
    TokenExpiry,
    /// The exporter's clock (not Adobe's) jumps forward or back.
    ClockJump,
    /// The exporter's client is revoked.
    Revocation,
    /// The exporter's client is revoked and its statement loses its
    /// approval for a while.
    Unapproved,
    /// The remote-write store answers 503 to everything for a while.
    StoreDown,
}

impl Event {
    /// Every event and its weight. An unapproved statement stops the
    /// exporter for an hour (it needs a person), so it is the rarest.
    const ALL: [(Event, u32); 5] = [
        (Event::TokenExpiry, 4),
        (Event::ClockJump, 3),
        (Event::Revocation, 2),
        (Event::Unapproved, 1),
        (Event::StoreDown, 2),
    ];

    fn name(self) -> &'static str {
        match self {
            Event::TokenExpiry => "token expiry",
            Event::ClockJump => "clock jump",
            Event::Revocation => "credential revocation",
            Event::Unapproved => "statement unapproved",
            Event::StoreDown => "store outage",
        }
    }

    /// One event, drawn by weight.
    fn draw(rng: &mut StdRng) -> Event {
        let total: u32 = Event::ALL.iter().map(|(_, w)| w).sum();
        let mut pick = rng.random_range(0..total);
        for (event, weight) in Event::ALL {
            if pick < weight {
                return event;
            }
            pick -= weight;
        }
        Event::TokenExpiry
    }

    /// Makes it happen; an unapproved statement or a store down returns
    /// when to end it.
    fn cause(
        self,
        sim: &Simulator,
        store: &faulty_store::Store,
        clock: &Clock,
        exporter_clock: &Clock,
        rng: &mut StdRng,
    ) -> Option<Timestamp> {
        let statement = sim.software_statement();
        match self {
            Event::StoreDown => {
                store.state.lock().unwrap_or_else(|e| e.into_inner()).down = true;
                let minutes = rng.random_range(10..120);
                return Some(clock.now() + SignedDuration::from_mins(minutes));
            }
            Event::TokenExpiry => sim.expire_tokens(),
            Event::Revocation => sim.revoke_credentials_of(statement),
            Event::Unapproved => {
                sim.revoke_credentials_of(statement);
                sim.set_statement_approved(statement, false);
                let minutes = rng.random_range(10..90);
                return Some(clock.now() + SignedDuration::from_mins(minutes));
            }
            Event::ClockJump => {
                let minutes = rng.random_range(1..=LONGEST_CLOCK_STEP.as_mins());
                let mut by = SignedDuration::from_mins(minutes);
                if rng.random_bool(0.5) {
                    by = -by;
                }
                // Keep the exporter's clock within the longest step of the truth.
                if (exporter_clock.jumped() + by).abs() > LONGEST_CLOCK_STEP {
                    by = -by;
                }
                exporter_clock.jump(by);
            }
        }
        None
    }
}

/// What a soak did and found.
#[derive(Debug, Clone, Default)]
pub struct SoakFigures {
    pub real_time: Duration,
    /// Simulated time covered, faults and convergence.
    pub simulated: SignedDuration,
    /// Requests the simulator served, per endpoint.
    pub requests: BTreeMap<&'static str, u64>,
    /// Faults injected and events caused, per kind.
    pub faults: BTreeMap<&'static str, u64>,
    pub scrapes: u64,
    pub state_reads: u64,
    /// Registrations the exporter obtained, and the most the revocations allowed.
    pub registrations: usize,
    pub registrations_allowed: usize,
    /// Simulated time from the end of the faults to the last report's convergence.
    pub converged_after: Option<SignedDuration>,
    /// Buckets the remote-write store was seen to hold whole, every report.
    pub buckets_pushed: usize,
    /// Every broken invariant, in order (the first 100 are kept in full).
    pub violations: Vec<String>,
    pub violation_count: usize,
}

impl std::fmt::Display for SoakFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "chaos soak: {:.0} s real, {:.1} h simulated",
            self.real_time.as_secs_f64(),
            self.simulated.as_secs_f64() / 3600.0
        )?;
        writeln!(f, "requests: {}", counts(&self.requests))?;
        writeln!(f, "faults: {}", counts(&self.faults))?;
        writeln!(
            f,
            "scrapes {}, state file reads {}, registrations {} (at most {} allowed)",
            self.scrapes, self.state_reads, self.registrations, self.registrations_allowed
        )?;
        match self.converged_after {
            Some(after) => writeln!(
                f,
                "every report converged to the simulator's truth {:.0} simulated minutes after the faults stopped",
                after.as_secs_f64() / 60.0
            )?,
            None => writeln!(f, "the reports did not converge")?,
        }
        writeln!(
            f,
            "buckets found in the store, none missing, values as served: {}",
            self.buckets_pushed
        )?;
        write!(f, "invariant violations: {}", self.violation_count)?;
        for violation in &self.violations {
            write!(f, "\n  {violation}")?;
        }
        Ok(())
    }
}

/// "total (kind n, kind n, ...)".
fn counts<N: Copy + Into<u64>>(by_kind: &BTreeMap<&'static str, N>) -> String {
    let total: u64 = by_kind.values().map(|n| (*n).into()).sum();
    let each: Vec<String> = by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {}", (*n).into()))
        .collect();
    format!("{total} ({})", each.join(", "))
}

/// Broken invariants, shared by the checking tasks.
#[derive(Debug, Default)]
struct Violations {
    kept: Mutex<Vec<String>>,
    count: AtomicU64,
}

impl Violations {
    fn report(&self, what: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < 100 {
            kept.push(what);
        }
    }
}

/// Log lines written by the process, kept in memory so the soak can search
/// them for secrets. [`LogCapture::install`] makes it the global subscriber.
#[derive(Debug, Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Sends the process's log lines (at `RUST_LOG`, else `info`) here.
    pub fn install() -> anyhow::Result<Self> {
        let capture = Self::default();
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(capture.clone())
            .try_init()
            .map_err(|e| anyhow::anyhow!("cannot capture the log: {e}"))?;
        Ok(capture)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Panics anywhere in the process since the soak began.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// The soak's own reports: CMU and ESM, minute and coarser, one with a
/// level dimension; every bucket complete, so the truth does not move.
const REPORTS: &str = "reports:
  - name: cmu_minute
    path: tenant/year/month/day/hour/minute/mvpd
  - name: cmu_hourly
    path: tenant/year/month/day/hour/mvpd
    interval: 10m
  - name: cmu_concurrency
    path: year/month/day/concurrency-level/tenant
    interval: 30m
  - name: esm_minute
    api: esm
    path: media-company/year/month/day/hour/minute/proxy/mvpd
  - name: esm_hourly
    api: esm
    path: media-company/year/month/day/hour/proxy/mvpd
";

/// The longest the reports may take to converge once the faults stop: a
/// statement refused just before is tried again an hour later, then the
/// longest interval and its backoff; ten hours leave room for a loaded machine.
const CONVERGENCE_DEADLINE: SignedDuration = SignedDuration::from_hours(10);

/// Farthest the exporter's clock is moved from the true time.
const LONGEST_CLOCK_STEP: SignedDuration = SignedDuration::from_hours(3);

/// The address the soak's own DCR calls come from (as `X-Forwarded-For`),
/// so they do not eat the exporter's throttle budget.
const CHECKER_IP: &str = "192.0.2.99";

/// Runs a soak and returns its figures (violations included: the caller
/// decides what fails). `logs` must hold this process's log lines.
pub async fn run(options: SoakOptions, logs: &LogCapture) -> anyhow::Result<SoakFigures> {
    let real_start = Instant::now();
    let start: Timestamp = "2026-11-22T00:00:30Z".parse()?;
    let clock = Clock::warped(start, options.factor);
    let sim = Simulator::start(
        SimulatorConfig {
            clock: clock.clone(),
            token_lifetime: Duration::from_secs(30 * 60),
            // Adobe computes at phases nobody is told: drawn from the seed.
            computations: crate::simulator::Computations::random(options.seed),
            ..SimulatorConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    crate::outgoing::install_crypto_provider();
    // Long enough for a loaded test machine (the soak runs beside the
    // integration tests): /metrics answering slowly is not a broken
    // invariant, not answering is. Speed is the benchmarks' to prove.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    // The checker's own client, on a statement of its own: revocations of
    // the exporter's credentials leave it alone.
    let checker = Checker::register(&http, &clock, &sim).await?;

    let store = faulty_store::start().await?;
    let dir = tempfile::tempdir()?;
    let statement = dir.path().join("statement.jwt");
    crate::demo::write_private(&statement, sim.software_statement().as_bytes())?;
    let state_dir = dir.path().join("state");
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\n  software_statement_file: {}\n  request_timeout: 10s\nstate_dir: {}\n{REPORTS}remote_write:\n  - url: {}\n    name: soak\n    remote_timeout: 2s\n",
        sim.dcr_url(),
        sim.cmu_url(),
        sim.esm_url(),
        statement.display(),
        state_dir.display(),
        store.url
    );
    let config = Config::from_yaml(&yaml, "the soak's configuration")?;
    let exporter_clock = clock.detached();

    let previous_hook = Arc::new(std::panic::take_hook());
    {
        let previous = previous_hook.clone();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            previous(info);
        }));
    }
    let panics_before = PANICS.load(Ordering::Relaxed);

    let exporter = crate::app::start(
        config.clone(),
        crate::app::Options::loopback(exporter_clock.clone()),
    )
    .await?;
    let violations = Arc::new(Violations::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sim = Arc::new(sim);
    let scrapes = tokio::spawn(scrape_all_along(
        http.clone(),
        exporter.url(),
        sim.clone(),
        violations.clone(),
        stop.clone(),
    ));
    let state_reads = tokio::spawn(read_state_all_along(
        state_dir.join(STATE_FILE),
        violations.clone(),
        stop.clone(),
    ));

    let mut rng = StdRng::seed_from_u64(options.seed);
    sim.set_chaos(Some(Chaos {
        seed: options.seed,
        share: options.fault_share,
        slowest: Duration::from_millis(1500),
        longest_retry_after: 120,
    }));
    store
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_chaos(Some(StoreChaos {
            seed: options.seed,
            share: options.fault_share,
            slowest: Duration::from_secs(3),
        }));
    let mut events: BTreeMap<Event, u64> = BTreeMap::new();
    let mut approval_back_at: Option<Timestamp> = None;
    let mut store_back_at: Option<Timestamp> = None;
    let chaos_end = real_start + options.chaos_time;
    while Instant::now() < chaos_end {
        let pause = Duration::from_millis(rng.random_range(1000..3000));
        tokio::time::sleep(pause.min(chaos_end.saturating_duration_since(Instant::now()))).await;
        if approval_back_at.is_some_and(|at| clock.now() >= at) {
            sim.set_statement_approved(sim.software_statement(), true);
            approval_back_at = None;
        }
        if store_back_at.is_some_and(|at| clock.now() >= at) {
            let mut state = store.state.lock().unwrap_or_else(|e| e.into_inner());
            state.down = false;
            // It comes back speaking the next store's dialect: how it
            // answers what it refuses (Prometheus, Mimir, Thanos Receive).
            let next = faulty_store::DIALECTS
                .iter()
                .position(|d| *d == state.dialect)
                .map_or(0, |i| (i + 1) % faulty_store::DIALECTS.len());
            state.dialect = faulty_store::DIALECTS[next];
            store_back_at = None;
        }
        if Instant::now() >= chaos_end {
            break;
        }
        // Each event once first, so that even a short soak has them all.
        let event = match Event::ALL.get(events.len()) {
            Some((event, _)) => *event,
            None => Event::draw(&mut rng),
        };
        if let Some(at) = event.cause(&sim, &store, &clock, &exporter_clock, &mut rng) {
            match event {
                Event::StoreDown => store_back_at = Some(at),
                _ => approval_back_at = Some(at),
            }
        }
        *events.entry(event).or_default() += 1;
    }

    // The faults stop: the statement is approved, the clock is right again.
    sim.set_chaos(None);
    sim.clear_faults();
    sim.set_statement_approved(sim.software_statement(), true);
    exporter_clock.jump(-exporter_clock.jumped());
    {
        let mut store = store.state.lock().unwrap_or_else(|e| e.into_inner());
        store.set_chaos(None);
        store.down = false;
    }
    let quiet_since = clock.now();
    let converged_at = checker
        .converge(&sim, &config, &exporter.url(), quiet_since)
        .await
        .map_err(|why| violations.report(format!("no convergence: {why}")))
        .ok();
    let pushed = checker
        .pushed_whole(&sim, &config, &exporter, &store, quiet_since)
        .await
        .map_err(|why| violations.report(format!("the store lacks buckets: {why}")))
        .unwrap_or(0);

    stop.store(true, Ordering::Relaxed);
    let scrapes = scrapes.await.unwrap_or_default();
    let state_reads = state_reads.await.unwrap_or_default();
    exporter.stop().await;

    // Invariants over the whole run.
    let panics = PANICS.load(Ordering::Relaxed) - panics_before;
    drop(std::panic::take_hook());
    if let Ok(previous) = Arc::try_unwrap(previous_hook) {
        std::panic::set_hook(previous);
    }
    if panics > 0 {
        violations.report(format!("{panics} panics (see the log)"));
    }
    let refused = sim.throttle_refusals();
    if refused > 0 {
        violations.report(format!(
            "{refused} DCR calls over Adobe's throttle (burst 10, then 1 per second)"
        ));
    }
    let chaos = sim.chaos_counts();
    // A registration whose answer was cut in half is lost to the exporter:
    // it may register again without a revocation.
    let lost = chaos
        .get(&(Endpoint::Register, "truncated"))
        .copied()
        .unwrap_or(0) as usize;
    let revocations = [Event::Revocation, Event::Unapproved]
        .iter()
        .map(|e| events.get(e).copied().unwrap_or(0))
        .sum::<u64>() as usize;
    let registrations =
        sim.count_status(Endpoint::Register, 201) - checker.calls(Endpoint::Register);
    let registrations_allowed = 1 + revocations + lost;
    if registrations > registrations_allowed {
        violations.report(format!(
            "{registrations} registrations after {revocations} revocations ({lost} answers lost)"
        ));
    }
    let log = logs.text();
    if log.is_empty() {
        violations.report("the log capture holds nothing: the secret check is blind".into());
    }
    for secret in sim.issued_secrets() {
        if log.contains(&secret) {
            violations.report("a secret issued by Adobe is in the log".into());
        }
    }

    let mut faults: BTreeMap<&'static str, u64> = CHAOS_KINDS.iter().map(|k| (*k, 0)).collect();
    for ((_, kind), n) in chaos {
        *faults.entry(kind).or_default() += n;
    }
    for (event, _) in Event::ALL {
        faults.insert(event.name(), events.get(&event).copied().unwrap_or(0));
    }
    {
        let store = store.state.lock().unwrap_or_else(|e| e.into_inner());
        for kind in STORE_FAULT_KINDS {
            faults.insert(kind, store.faults.get(kind).copied().unwrap_or(0));
        }
        if store.bad_headers + store.bad_bodies > 0 {
            violations.report(format!(
                "{} remote-write requests without the protocol's headers, {} not decodable",
                store.bad_headers, store.bad_bodies
            ));
        }
    }
    let requests = [
        ("register", Endpoint::Register),
        ("token", Endpoint::Token),
        ("cmu", Endpoint::Cmu),
        ("esm", Endpoint::Esm),
    ]
    .into_iter()
    .map(|(name, endpoint)| (name, (sim.count(endpoint) - checker.calls(endpoint)) as u64))
    .collect();
    let figures = SoakFigures {
        real_time: real_start.elapsed(),
        simulated: clock.now().duration_since(start),
        requests,
        faults,
        scrapes,
        state_reads,
        registrations,
        registrations_allowed,
        converged_after: converged_at.map(|at| at.duration_since(quiet_since)),
        buckets_pushed: pushed,
        violations: violations
            .kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        violation_count: violations.count.load(Ordering::Relaxed) as usize,
    };
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.stop().await;
    }
    Ok(figures)
}

/// Scrapes `/metrics` until `stop`, and the other pages now and then: every
/// answer must come, with 200 (`/readyz` may say 503), and hold no secret.
async fn scrape_all_along(
    http: reqwest::Client,
    base: String,
    sim: Arc<Simulator>,
    violations: Arc<Violations>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut scrapes = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut pages = vec!["/metrics"];
        if scrapes % 20 == 0 {
            pages.extend(["/", "/healthz", "/readyz"]);
        }
        let secrets = sim.issued_secrets();
        for page in pages {
            let answer = match http.get(format!("{base}{page}")).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    response.text().await.map(|text| (status, text))
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok((status, text)) => {
                    let fine = status == 200 || (page == "/readyz" && status == 503);
                    if !fine {
                        violations.report(format!("{page} answered {status}"));
                    }
                    if secrets.iter().any(|s| text.contains(s.as_str())) {
                        violations.report(format!("a secret issued by Adobe is on {page}"));
                    }
                }
                Err(e) => violations.report(format!("{page} did not answer: {e}")),
            }
        }
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    scrapes
}

/// Reads the state file until `stop`: whenever it exists, it must parse.
async fn read_state_all_along(
    file: std::path::PathBuf,
    violations: Arc<Violations>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut reads = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(bytes) = tokio::fs::read(&file).await {
            reads += 1;
            if crate::credentials::parse_state(&bytes).is_none() {
                violations.report(format!(
                    "{} does not parse ({} bytes)",
                    file.display(),
                    bytes.len()
                ));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reads
}

/// The soak's own client, to ask the simulator what it serves. Its calls
/// are left out of the figures, which count the exporter's.
struct Checker {
    http: reqwest::Client,
    clock: Clock,
    client_id: String,
    client_secret: String,
    /// A token and when it was fetched (simulated time).
    token: Mutex<Option<(String, Timestamp)>>,
    /// Calls it made, per endpoint.
    calls: Mutex<BTreeMap<Endpoint, usize>>,
}

impl Checker {
    async fn register(
        http: &reqwest::Client,
        clock: &Clock,
        sim: &Simulator,
    ) -> anyhow::Result<Self> {
        let statement = sim.mint_statement(true, None);
        let answer: serde_json::Value = http
            .post(format!("{}/o/client/register", sim.dcr_url()))
            .header("x-forwarded-for", CHECKER_IP)
            .json(&serde_json::json!({ "software_statement": statement }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("the simulator's registration lacks {name}"))
        };
        Ok(Self {
            http: http.clone(),
            clock: clock.clone(),
            client_id: field("client_id")?,
            client_secret: field("client_secret")?,
            token: Mutex::new(None),
            calls: Mutex::new(BTreeMap::from([(Endpoint::Register, 1)])),
        })
    }

    fn count(&self, endpoint: Endpoint) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint)
            .or_default() += 1;
    }

    /// Calls the checker made to `endpoint`.
    fn calls(&self, endpoint: Endpoint) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// A token fetched less than 10 simulated minutes ago (tokens live 30).
    async fn token(&self, sim: &Simulator) -> anyhow::Result<String> {
        let clock = &self.clock;
        let fresh = |at: Timestamp| clock.now().duration_since(at) < SignedDuration::from_mins(10);
        if let Some((token, at)) = &*self.token.lock().unwrap_or_else(|e| e.into_inner())
            && fresh(*at)
        {
            return Ok(token.clone());
        }
        let fetched_at = clock.now();
        self.count(Endpoint::Token);
        let answer: serde_json::Value = self
            .http
            .post(format!("{}/o/client/token", sim.dcr_url()))
            .header("x-forwarded-for", CHECKER_IP)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the simulator's token answer lacks access_token"))?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = Some((token.clone(), fetched_at));
        Ok(token)
    }

    /// The checker's own GET of a report.
    async fn get(&self, endpoint: Endpoint, url: &str, token: &str) -> Result<Vec<u8>, String> {
        self.count(endpoint);
        let failed = |e: reqwest::Error| format!("the checker's own GET failed: {e}");
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(failed)?;
        Ok(response.bytes().await.map_err(failed)?.to_vec())
    }

    /// Waits until every report shows what the simulator serves for the
    /// exporter's own latest query made after `quiet_since`; returns when
    /// the last one did, or why not by the deadline.
    async fn converge(
        &self,
        sim: &Simulator,
        config: &Config,
        exporter: &str,
        quiet_since: Timestamp,
    ) -> Result<Timestamp, String> {
        let (http, clock) = (&self.http, &self.clock);
        let mut pending: Vec<&ReportConfig> = config.reports.iter().collect();
        let mut last_reason = BTreeMap::new();
        let mut converged_at = quiet_since;
        let real_deadline = Instant::now() + Duration::from_secs(600);
        while !pending.is_empty() {
            let now = clock.now();
            if now.duration_since(quiet_since) > CONVERGENCE_DEADLINE
                || Instant::now() > real_deadline
            {
                let reasons: Vec<String> = last_reason
                    .iter()
                    .map(|(name, why)| format!("{name}: {why}"))
                    .collect();
                return Err(reasons.join("; "));
            }
            let page = match http.get(format!("{exporter}/metrics")).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let token = self.token(sim).await.map_err(|e| e.to_string())?;
            let mut still = Vec::new();
            for report in pending {
                match self
                    .matches_truth(sim, &token, config, report, &page, quiet_since)
                    .await
                {
                    Ok(()) => {
                        last_reason.remove(&report.name.to_string());
                        converged_at = converged_at.max(now);
                    }
                    Err(why) => {
                        last_reason.insert(report.name.to_string(), why);
                        still.push(report);
                    }
                }
            }
            pending = still;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(converged_at)
    }

    /// Whether `page` shows, for `report`, Adobe's final values of the bucket
    /// it shows as complete (the simulator's answer for that bucket alone,
    /// asked now), after a successful poll since the faults stopped.
    async fn matches_truth(
        &self,
        sim: &Simulator,
        token: &str,
        config: &Config,
        report: &ReportConfig,
        page: &str,
        quiet_since: Timestamp,
    ) -> Result<(), String> {
        let endpoint = Endpoint::of(report.api);
        let wanted = format!("{}{}", api_base(report), report.path);
        let requests = sim.requests();
        let mut polls = requests
            .iter()
            .rev()
            .filter(|r| r.endpoint == endpoint && r.path == wanted);
        let Some(sent) = polls
            .clone()
            .find(|r| r.status == 200 && r.sim_time >= quiet_since)
        else {
            let last = polls
                .next()
                .map(|r| format!("the last poll was at {} ({})", r.sim_time, r.status));
            return Err(format!(
                "no successful poll since the faults stopped at {quiet_since}; {}",
                last.unwrap_or_else(|| "it never polled".into())
            ));
        };
        // The bucket the page shows is complete: its values are Adobe's
        // final ones. Ask for that bucket alone, the exporter's query
        // otherwise (filters, metrics, limit), and compare.
        let tz = config.adobe.time_zone_of(report.api);
        let family = report.api.profile().bucket_start_family;
        let label = format!("{family}{{report=\"{}\"}} ", report.name);
        let shown_start = page
            .lines()
            .find_map(|l| l.strip_prefix(&label))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|secs| Timestamp::from_second(secs as i64).ok())
            .map(|t| t.to_zoned(tz.clone()).datetime());
        let mut query: Vec<(String, String)> = form_urlencoded::parse(sent.query.as_bytes())
            .into_owned()
            .collect();
        let now = self.clock.now();
        let mut spec = spec_of(report, tz, now);
        if let (Some(start), Some(span)) = (shown_start, report.path.granularity().span()) {
            let format = |at: jiff::civil::DateTime| at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
            let last = start
                .checked_add(span)
                .and_then(|end| end.checked_sub(jiff::ToSpan::seconds(1)))
                .map_err(|e| e.to_string())?;
            query.retain(|(k, _)| k != "start" && k != "end");
            query.push(("start".into(), format(start)));
            query.push(("end".into(), format(last)));
            spec.choice = crate::report::BucketChoice::Partial;
            spec.computed_through = Some(now);
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let url = format!("{}{}?{query}", sim.dcr_url(), sent.path);
        let body = self.get(endpoint, &url, token).await?;
        let snapshot =
            build_snapshot(&body, &spec).map_err(|e| format!("truth unreadable: {e}"))?;
        let truth = Exposition::assemble([&snapshot]).to_vec();
        let expected = samples_of(&String::from_utf8_lossy(&truth), &report.name.to_string());
        let shown = samples_of(page, &report.name.to_string());
        if expected.is_empty() {
            return Err("the simulator served no series".into());
        }
        if expected != shown {
            let missing = expected.difference(&shown).next();
            let extra = shown.difference(&expected).next();
            return Err(format!(
                "{} series expected, {} shown; first missing {missing:?}, first extra {extra:?}",
                expected.len(),
                shown.len()
            ));
        }
        Ok(())
    }
}

impl Checker {
    /// Waits until every report's push reached the bucket of `quiet_since`,
    /// then checks that the store holds each report's buckets from the
    /// first it got to its cursor, none missing, each with the values the
    /// simulator serves. Returns how many buckets it checked.
    async fn pushed_whole(
        &self,
        sim: &Simulator,
        config: &Config,
        exporter: &crate::app::Running,
        store: &faulty_store::Store,
        quiet_since: Timestamp,
    ) -> Result<usize, String> {
        let civil = |report: &ReportConfig, at: Timestamp| {
            at.to_zoned(config.adobe.time_zone_of(report.api).clone())
                .datetime()
        };
        let instant = |report: &ReportConfig, at: jiff::civil::DateTime| {
            at.to_zoned(config.adobe.time_zone_of(report.api).clone())
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string())
        };
        let real_deadline = Instant::now() + Duration::from_secs(120);
        let cursors = loop {
            let cursors = exporter
                .pusher
                .statuses()
                .into_iter()
                .next()
                .map(|(_, status)| status.cursors)
                .unwrap_or_default();
            let mut behind = Vec::new();
            for report in &config.reports {
                let due = instant(
                    report,
                    report.path.granularity().floor(civil(report, quiet_since)),
                )?;
                if cursors.get(report.name.as_str()).is_none_or(|at| *at < due) {
                    behind.push(format!("{} (due {due})", report.name));
                }
            }
            if behind.is_empty() {
                break cursors;
            }
            if Instant::now() > real_deadline {
                return Err(format!(
                    "the push did not catch up within 120 s: {}; cursors {cursors:?}",
                    behind.join(", ")
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let held = store
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples();
        let mut checked = 0;
        for report in &config.reports {
            let name = report.name.to_string();
            let cursor = cursors[name.as_str()];
            // What the store holds of the report, `job` and `instance` aside.
            let mut got: BTreeMap<(i64, Vec<(String, String)>), f64> = BTreeMap::new();
            for (labels, points) in &held {
                if labels.get("report") != Some(&name)
                    || labels["__name__"].starts_with("cmu_exporter_")
                    || labels["__name__"].starts_with(MOVING_FAMILY)
                {
                    continue;
                }
                let own: Vec<(String, String)> = labels
                    .iter()
                    .filter(|(k, _)| *k != "job" && *k != "instance")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (ms, value) in points {
                    if *ms <= cursor.as_millisecond() {
                        got.insert((*ms, own.clone()), *value);
                    }
                }
            }
            let Some(first) = got.keys().next().map(|(ms, _)| *ms) else {
                return Err(format!("{name}: nothing pushed"));
            };
            let span = report.path.granularity().span().unwrap_or_default();
            let first_end = Timestamp::from_millisecond(first).map_err(|e| e.to_string())?;
            let from = civil(report, first_end)
                .checked_sub(span)
                .map_err(|e| e.to_string())?;
            let expected = self
                .served(sim, config, report, from, civil(report, cursor))
                .await?;
            if expected != got {
                let missing = expected.keys().find(|k| !got.contains_key(k));
                let wrong = expected
                    .iter()
                    .find(|(k, v)| got.get(k).is_some_and(|g| g != *v));
                let extra = got.keys().find(|k| !expected.contains_key(k));
                return Err(format!(
                    "{name} from {first_end} to {cursor}: {} samples expected, {} held; first missing {missing:?}, first wrong {wrong:?}, first extra {extra:?}",
                    expected.len(),
                    got.len()
                ));
            }
            let mut ends: Vec<i64> = got.keys().map(|(ms, _)| *ms).collect();
            ends.dedup();
            checked += ends.len();
        }
        Ok(checked)
    }

    /// The simulator's samples of `report`'s buckets from `from` to `to`
    /// (starts, the API's time zone), each at its bucket's end, read in
    /// windows of a day.
    async fn served(
        &self,
        sim: &Simulator,
        config: &Config,
        report: &ReportConfig,
        from: jiff::civil::DateTime,
        to: jiff::civil::DateTime,
    ) -> Result<BTreeMap<(i64, Vec<(String, String)>), f64>, String> {
        let tz = config.adobe.time_zone_of(report.api).clone();
        let base = format!("{}{}", sim.dcr_url(), api_base(report));
        let format = |at: jiff::civil::DateTime| at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        let mut out = BTreeMap::new();
        let mut start = from;
        while start < to {
            let end = start
                .checked_add(jiff::ToSpan::days(1))
                .map_err(|e| e.to_string())?
                .min(to);
            let last = end
                .checked_sub(jiff::ToSpan::seconds(1))
                .map_err(|e| e.to_string())?;
            let url = format!(
                "{base}{}?start={}&end={}&limit=200000",
                report.path,
                format(start),
                format(last)
            );
            // A token of the last minutes per window: a long check outlives one.
            let token = self.token(sim).await.map_err(|e| e.to_string())?;
            let body = self.get(Endpoint::of(report.api), &url, &token).await?;
            let now = end.to_zoned(tz.clone()).map_err(|e| e.to_string())?;
            // Every bucket up to the cursor is complete: the store holds
            // Adobe's final values of each.
            let mut spec = spec_of(report, &tz, now.timestamp());
            spec.computed_through = to.to_zoned(tz.clone()).ok().map(|z| z.timestamp());
            let built = build_history(
                &body,
                &spec,
                |_| true,
                |bucket, samples| {
                    let Some(end) = bucket.end().and_then(|e| e.to_zoned(tz.clone()).ok()) else {
                        return Ok(());
                    };
                    let request = crate::push::bucket_request(samples, &[], end.timestamp());
                    let body = snap::raw::Decoder::new()
                        .decompress_vec(&request.compressed())
                        .map_err(|e| e.to_string())?;
                    for one in faulty_store::series(&body).unwrap_or_default() {
                        let Some(faulty_store::Series { labels, samples }) =
                            faulty_store::decode_series(&one)
                        else {
                            continue;
                        };
                        if labels["__name__"].starts_with(MOVING_FAMILY) {
                            continue;
                        }
                        let labels: Vec<(String, String)> = labels.into_iter().collect();
                        for (ms, value) in samples {
                            out.insert((ms, labels.clone()), value);
                        }
                    }
                    Ok::<(), String>(())
                },
            );
            built.map_err(|e| format!("truth unreadable: {e}"))??;
            start = end;
        }
        Ok(out)
    }
}

/// The path below `report`'s API base, `/cmu/v2/` as Adobe serves it (the
/// simulator serves every API at one address).
fn api_base(report: &ReportConfig) -> String {
    reqwest::Url::parse(report.api.profile().default_url)
        .map(|url| format!("{}/", url.path()))
        .unwrap_or_default()
}

/// What the exporter builds of `report`'s answer, as of `now`.
fn spec_of(report: &ReportConfig, time_zone: &jiff::tz::TimeZone, now: Timestamp) -> SnapshotSpec {
    SnapshotSpec {
        api: report.api,
        report: report.name.to_string(),
        account: None,
        path: Some(report.path.clone()),
        choice: report.bucket,
        now,
        time_zone: time_zone.clone(),
        labels: report.labels.clone(),
        max_series: report.max_series,
        computed_at: None,
        computed_through: None,
    }
}

/// Family left out of the comparison: ESM's `Last-Modified`, which the
/// simulator computes from the time of each request.
const MOVING_FAMILY: &str = crate::names::LAST_MODIFIED_FAMILY;

/// The sample lines of `text` that belong to `report`, self-metrics and the
/// moving family left out.
fn samples_of(text: &str, report: &str) -> std::collections::BTreeSet<String> {
    let label = format!("report=\"{report}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&label))
        .filter(|l| !l.starts_with("cmu_exporter_") && !l.starts_with(MOVING_FAMILY))
        .map(str::to_owned)
        .collect()
}
