//! Helpers shared by the integration tests: start the simulator and the
//! exporter on ephemeral ports, talk to both over real HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cmu_exporter::app::{self, Options, Running};
use cmu_exporter::clock::Clock;
use cmu_exporter::config::Config;
use cmu_exporter::simulator::{Simulator, SimulatorConfig};

/// How long a test waits for what should happen within seconds.
pub const WAIT: Duration = Duration::from_secs(30);

/// A simulator with default settings on 127.0.0.1, ephemeral port.
pub async fn simulator() -> Simulator {
    simulator_with(SimulatorConfig::default()).await
}

pub async fn simulator_with(config: SimulatorConfig) -> Simulator {
    Simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

/// A temporary directory with the simulator's statement and a config file
/// listing `reports` (YAML list items, indented by two spaces).
pub fn write_config(dir: &Path, sim: &Simulator, reports: &str) -> PathBuf {
    let statement = dir.join("statement.jwt");
    std::fs::write(&statement, sim.software_statement()).unwrap();
    let yaml = format!(
        "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\n  software_statement_file: {}\nstate_dir: {}\nreports:\n{reports}",
        sim.dcr_url(),
        sim.cmu_url(),
        sim.esm_url(),
        statement.display(),
        dir.join("state").display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A simulator configuration without Adobe's DCR throttle: for tests of
/// something else than Adobe's pace.
pub fn unthrottled(config: SimulatorConfig) -> SimulatorConfig {
    SimulatorConfig {
        throttle_burst: 1_000_000,
        throttle_rate: 1_000_000.0,
        ..config
    }
}

/// A default simulator, a temporary directory, and a config file in it
/// listing `reports` (what most tests start from).
pub async fn simulator_and_config(reports: &str) -> (Simulator, tempfile::TempDir, PathBuf) {
    simulator_and_config_with(SimulatorConfig::default(), reports).await
}

/// Like [`simulator_and_config`], with a simulator of `config` (a warped clock...).
pub async fn simulator_and_config_with(
    config: SimulatorConfig,
    reports: &str,
) -> (Simulator, tempfile::TempDir, PathBuf) {
    let sim = simulator_with(config).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim, reports);
    (sim, dir, config)
}

/// Points the config file at the simulator's alias prefix, whose answers'
/// links still say `/cmu/v2`, as Adobe's do behind another prefix.
pub fn use_alias_prefix(config: &Path, sim: &Simulator) {
    let yaml = std::fs::read_to_string(config)
        .unwrap()
        .replace(&sim.cmu_url(), &sim.alias_cmu_url());
    std::fs::write(config, yaml).unwrap();
}

/// Waits until the simulator has answered `n` CMU requests with 200.
pub async fn wait_for_cmu_successes(sim: &Simulator, n: usize) {
    wait_for(&format!("{n} successful CMU calls"), WAIT, || async {
        (sim.count_status(cmu_exporter::simulator::Endpoint::Cmu, 200) >= n).then_some(())
    })
    .await;
}

/// Starts the exporter in-process on an ephemeral port.
pub async fn exporter(config_file: &Path) -> Running {
    exporter_with_clock(config_file, Clock::wall()).await
}

pub async fn exporter_with_clock(config_file: &Path, clock: Clock) -> Running {
    let config = Config::load(config_file).expect("test config is valid");
    let options = Options {
        config_file: Some(config_file.to_owned()),
        ..Options::loopback(clock)
    };
    app::start(config, options).await.expect("exporter starts")
}

/// Waits until `check` returns `Some`, or panics naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until sample `series` of the exporter at `base` reads `value`, or
/// panics naming `what`.
pub async fn wait_for_value(what: &str, timeout: Duration, base: &str, series: &str, value: f64) {
    wait_for(what, timeout, || async {
        (metric_value(base, series).await == Some(value)).then_some(())
    })
    .await;
}

/// An HTTP client for tests (rustls needs its crypto provider first).
pub fn http() -> reqwest::Client {
    http_builder().build().unwrap()
}

pub fn http_builder() -> reqwest::ClientBuilder {
    cmu_exporter::outgoing::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(30))
}

/// POSTs to `url` (no body): status and text.
pub async fn post(url: &str) -> (u16, String) {
    let response = http().post(url).send().await.expect("POST succeeds");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

pub async fn get_text(url: &str) -> (u16, String) {
    let response = http().get(url).send().await.expect("GET succeeds");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// One sample of an exposition: family name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of a text exposition (enough for our own output).
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => (
                name.to_owned(),
                parse_labels(rest.strip_suffix('}').expect("closing brace")),
            ),
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().expect("numeric value"),
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

/// Registers a client by hand, as an operator would: `(client_id, client_secret)`.
pub async fn register_client(sim: &Simulator) -> (String, String) {
    let registered: serde_json::Value = http()
        .post(format!("{}/o/client/register", sim.dcr_url()))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "software_statement": sim.software_statement() }).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let field = |name: &str| registered[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// Registers a client of our own with the simulator and returns a token,
/// to ask it directly what it serves.
pub async fn own_token(sim: &Simulator) -> String {
    let (id, secret) = register_client(sim).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &id),
        ("client_secret", &secret),
    ];
    let token: serde_json::Value = http()
        .post(format!("{}/o/client/token", sim.dcr_url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

/// GETs `url` from the simulated CMU with `token`: the raw answer.
pub async fn cmu_bytes(url: &str, token: &str) -> bytes::Bytes {
    let response = http().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.bytes().await.unwrap()
}

/// GETs `url` from the simulated CMU with `token`, as JSON.
pub async fn cmu_json(url: &str, token: &str) -> serde_json::Value {
    serde_json::from_slice(&cmu_bytes(url, token).await).expect("a JSON answer")
}

/// `promtool`, which the README's test command installs.
pub fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    let found = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "promtool not found: run the README's test command (scripts/test), which installs Debian's prometheus package"
    );
    path
}

/// The `cmu-exporter` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_cmu-exporter");

/// What a run of the binary left: exit code, standard output, standard error.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` to its end.
pub fn run_binary(args: &[&str]) -> Ran {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`run_binary`] off the async runtime, which serves the simulator meanwhile.
pub async fn run_binary_async(args: Vec<String>) -> Ran {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_binary(&args)
    })
    .await
    .unwrap()
}

/// `cmu-exporter render FILE ARGS...`, which must succeed: the exposition.
pub fn render_file(file: &Path, args: &[&str]) -> String {
    let mut all = vec!["render", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let ran = run_binary(&all);
    assert_eq!(
        ran.code,
        Some(0),
        "render {}: {}",
        file.display(),
        ran.stderr
    );
    ran.stdout
}

/// A free TCP port on 127.0.0.1 (free when asked), for third-party servers
/// (Prometheus, Alertmanager) that cannot report the port they bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The exporter binary running as a child process, its stderr collected.
pub struct Process {
    pub child: std::process::Child,
    pub base: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Starts the binary on `config` with extra arguments and environment, on
/// an ephemeral port, and waits for the address it reports it serves on.
pub fn spawn_binary(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> Process {
    use std::io::Read;
    let mut child = std::process::Command::new(BIN)
        .args([
            "--config.file",
            config.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    // Drain stderr continuously so a chatty child never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut process = Process {
        child,
        base: String::new(),
        log,
        reader: Some(reader),
    };
    let deadline = Instant::now() + WAIT;
    process.base = loop {
        if let Some(addr) = served_address(&process.log()) {
            break format!("http://{addr}");
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("the binary exited with {status}:\n{}", process.log());
        }
        assert!(
            Instant::now() < deadline,
            "no `serving metrics` line within {WAIT:?}:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    process
}

/// The address of the first `serving metrics` log line (text or JSON logs).
fn served_address(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("serving metrics"))?;
    let (_, rest) = line
        .split_once("addr=")
        .or_else(|| line.split_once("\"addr\":\""))?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

impl Process {
    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM, waits, and returns the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.log())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Reads the exporter's `/metrics` and returns the value of one sample line
/// prefix (`None` too while the exporter does not answer yet).
pub async fn metric_value(base: &str, series: &str) -> Option<f64> {
    let response = http().get(format!("{base}/metrics")).send().await.ok()?;
    let text = response.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Checks `text` with promtool, panicking with its complaint.
pub fn promtool_accepts(what: &str, text: &str) {
    let (ok, said) = promtool_check_metrics(text);
    assert!(ok, "promtool rejects {what}: {said}");
}

/// `promtool check metrics` on `text`: whether it passed, and what it said.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut check = std::process::Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Checks that promtool's text parser reads `text` (its style lints, such
/// as abbreviated units in an undocumented metric's name, are not errors).
pub fn promtool_parses(what: &str, text: &str) {
    let (_, said) = promtool_check_metrics(text);
    assert!(
        !said.contains("error while linting") && !said.contains("parsing error"),
        "promtool cannot parse {what}: {said}\n{text}"
    );
}

/// A small HTTP forwarder for tests of the outgoing client: as a forward
/// proxy (`upstream` `None`: requests carry absolute URLs) or as a reverse
/// proxy in front of `upstream` (TLS when `web` says so). It records the
/// URL of every request it forwarded.
pub struct Forwarder {
    pub addr: std::net::SocketAddr,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _stop: cmu_exporter::shutdown::Shutdown,
}

pub async fn forwarder(
    upstream: Option<String>,
    web: cmu_exporter::incoming::WebConfig,
) -> Forwarder {
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;
    type Shared = (
        Option<String>,
        reqwest::Client,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    );
    async fn forward(
        State(shared): State<std::sync::Arc<Shared>>,
        request: Request,
    ) -> axum::response::Response {
        let (upstream, client, seen) = &*shared;
        let target = match upstream {
            Some(base) => format!(
                "{base}{}",
                request.uri().path_and_query().map_or("/", |p| p.as_str())
            ),
            None => request.uri().to_string(),
        };
        seen.lock().unwrap().push(target.clone());
        let method = request.method().clone();
        let mut headers = request.headers().clone();
        headers.remove(axum::http::header::HOST);
        let body = axum::body::to_bytes(request.into_body(), 1 << 20)
            .await
            .unwrap();
        match client
            .request(method, &target)
            .headers(headers)
            .body(body)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status();
                let mut headers = r.headers().clone();
                headers.remove(axum::http::header::TRANSFER_ENCODING);
                headers.remove(axum::http::header::CONTENT_LENGTH);
                let body = r.bytes().await.unwrap_or_default();
                (status, headers, body).into_response()
            }
            Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let client = http_builder().no_proxy().no_gzip().build().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared: std::sync::Arc<Shared> = std::sync::Arc::new((upstream, client, seen.clone()));
    let app = axum::Router::new().fallback(forward).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = cmu_exporter::shutdown::Shutdown::new();
    tokio::spawn(cmu_exporter::incoming::serve(
        listener,
        app,
        web,
        cmu_exporter::telemetry::Telemetry::new(),
        stop.signal(),
    ));
    Forwarder {
        addr,
        seen,
        _stop: stop,
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client: String,
}

pub fn make_pki(name: &str) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["prometheus".into()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client: format!("{}{}", client.pem(), client_key.serialize_pem()),
    }
}

/// A web configuration serving TLS with `pki`'s server certificate, the
/// files written into `dir`.
pub fn tls_web_config(pki: &Pki, dir: &Path) -> cmu_exporter::incoming::WebConfig {
    std::fs::write(dir.join("server.crt"), &pki.server_cert).unwrap();
    std::fs::write(dir.join("server.key"), &pki.server_key).unwrap();
    let file = dir.join("tls-web.yml");
    std::fs::write(
        &file,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .unwrap();
    cmu_exporter::incoming::WebConfig::load(
        &file,
        cmu_exporter::incoming::ConnectionLimits::default(),
    )
    .unwrap()
}

/// A child process killed when dropped.
pub struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// The push tests, which use these, are test machinery (`testkit`).
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
impl Daemon {
    /// Stops it as a service manager does: SIGTERM, then its exit awaited
    /// (at most 30 s, then killed).
    pub fn terminate(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..300 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

pub fn daemon(program: &str, args: &[String], log: &Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    Daemon(
        std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program} (scripts/test installs it): {e}")),
    )
}

/// Adds a `remote_write:` list of one remote, `lines` its keys after `url`
/// (indented by four spaces), to the configuration file `config`.
pub fn add_remote_write(config: &Path, url: &str, lines: &str) {
    let yaml = std::fs::read_to_string(config).unwrap();
    let keys: String = lines.lines().map(|l| format!("    {l}\n")).collect();
    std::fs::write(
        config,
        format!("{yaml}remote_write:\n  - url: {url}\n{keys}"),
    )
    .unwrap();
}

/// A Prometheus on `port` with its data in `dir`, taking remote writes
/// (`--web.enable-remote-write-receiver`) as far back as 30 days
/// (`out_of_order_time_window`), as docs/push-and-history.md tells a store to, and
/// keeping what it is given (`retention.time`).
pub fn remote_write_store(dir: &Path, port: u16) -> Daemon {
    std::fs::write(
        dir.join("prometheus.yml"),
        "storage:\n  tsdb:\n    out_of_order_time_window: 60d\n",
    )
    .unwrap();
    daemon(
        "prometheus",
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--storage.tsdb.retention.time=100y".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".into(),
        ],
        &dir.join("prometheus.log"),
    )
}

/// A VictoriaMetrics (single node, Debian's `victoria-metrics`) on `port`
/// with its data in `dir`: remote write at `/api/v1/write`, Prometheus's
/// query API; keeping what it is given (`retentionPeriod`), showing the
/// newest samples at once (`search.latencyOffset`, no cache), and keeping
/// one of identical samples, as docs/push-and-history.md tells a store
/// with two replicas to (`dedup.minScrapeInterval`).
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
pub fn victoria_metrics_store(dir: &Path, port: u16) -> Daemon {
    daemon(
        "victoria-metrics",
        &[
            format!("-storageDataPath={}", dir.join("vm").display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-retentionPeriod=100y".into(),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
            "-dedup.minScrapeInterval=1ms".into(),
        ],
        &dir.join("victoria-metrics.log"),
    )
}

/// A remote-write store the tests run for real.
#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Prometheus,
    VictoriaMetrics,
}

#[cfg_attr(not(feature = "testkit"), allow(dead_code))]
impl StoreKind {
    /// Starts it on `port`, its data in `dir` (kept across restarts).
    pub fn start(self, dir: &Path, port: u16) -> Daemon {
        match self {
            Self::Prometheus => remote_write_store(dir, port),
            Self::VictoriaMetrics => victoria_metrics_store(dir, port),
        }
    }

    /// Waits until the store at `base` takes writes and answers queries.
    pub async fn wait_ready(self, base: &str) {
        let path = match self {
            Self::Prometheus => "/-/ready",
            Self::VictoriaMetrics => "/health",
        };
        wait_for(
            &format!("{self:?} is ready"),
            Duration::from_secs(60),
            || async {
                let r = http().get(format!("{base}{path}")).send().await.ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await;
    }
}

/// The raw (Unix second, value) samples of one series of a range-vector result.
pub fn raw_samples(series: &serde_json::Value) -> Vec<(i64, f64)> {
    series["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_f64().unwrap() as i64,
                v[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The result of an instant PromQL query (empty while Prometheus does not answer).
pub async fn query(prometheus: &str, expr: &str) -> Vec<serde_json::Value> {
    let response = http()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await;
    let Ok(response) = response else {
        return Vec::new();
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_ne!(body["status"], "error", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Peak resident memory of a process, in bytes (`VmHWM`).
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Runs the repository's Python `script` with `args` from the repository's
/// root: whether it succeeded, and its standard output and error.
pub fn python_script<I, S>(script: &str, args: I) -> (bool, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}
