//! The shipped dashboards and rules, proven against the exporter's real
//! output, promtool, a real Prometheus and a real Alertmanager (Debian's
//! `prometheus` and `prometheus-alertmanager`; scripts/test installs them).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use cmu_exporter::app::{self, Options, Running};
use cmu_exporter::clock::Clock;
use cmu_exporter::simulator::Simulator;

/// Prometheus and Alertmanager take their time: scrape, evaluate, notify.
const PROMETHEUS_WAIT: Duration = Duration::from_secs(90);
const RULES: &str = "deploy/prometheus/cmu-exporter.rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/cmu-exporter.rules.test.yml";
const DASHBOARDS: [&str; 4] = [
    "dashboards/cmu-overview.json",
    "dashboards/cmu-concurrency.json",
    "dashboards/cmu-exporter-health.json",
    "dashboards/esm-auth.json",
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs promtool with `args` from the repository's root; fails the test,
/// with promtool's report, unless it succeeds.
fn assert_promtool<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    assert_promtool(&["check", "rules", RULES]);
    assert_promtool(&["test", "rules", RULE_TESTS]);
}

/// The rules file and the dashboards are what the monitoring mixin renders
/// (mixin/render.py `--check`, which also checks the manual's panel
/// tables), and every alert has its runbook section.
#[test]
fn the_rules_and_dashboards_are_the_mixins_and_every_alert_has_a_runbook_section() {
    let (ok, report) = python_script("mixin/render.py", ["--check"]);
    assert!(ok, "{report}");
    let rules = std::fs::read_to_string(repo(RULES)).unwrap();
    let runbook = std::fs::read_to_string(repo("docs/runbook.md")).unwrap();
    let mut alerts = 0;
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            alerts += 1;
            let section = name.trim_end_matches("ForMvpd");
            assert!(
                runbook.contains(&format!("## {section}\n")),
                "docs/runbook.md has no section for {name}"
            );
        }
    }
    assert!(alerts >= 20, "{alerts} alerts");
}

/// The rules of a rules file, parsed: (group, rule) for each.
fn parsed_rules(file: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let mut rules = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            rules.push((group["name"].as_str().unwrap().to_owned(), rule.clone()));
        }
    }
    rules
}

/// Renders `mixin`, the text of a jsonnet file that imports the mixin, into
/// `dir/rendered` with mixin/render.py: whether it succeeded, and its report.
fn try_render_mixin(mixin: &str, dir: &Path) -> (bool, String) {
    let file = dir.join("mine.jsonnet");
    std::fs::write(&file, mixin).unwrap();
    let out = dir.join("rendered");
    python_script(
        "mixin/render.py",
        [
            "--mixin".as_ref(),
            file.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    )
}

/// [`try_render_mixin`] that must succeed: the folder holding the rules
/// file and the dashboards.
fn render_mixin(mixin: &str, dir: &Path) -> PathBuf {
    let (ok, report) = try_render_mixin(mixin, dir);
    assert!(ok, "{report}");
    dir.join("rendered")
}

/// A misspelt setting would change nothing, silently; a number where a
/// duration belongs would make a rules file Prometheus refuses. The
/// renderer refuses both, naming the setting.
#[test]
fn the_mixin_refuses_a_misspelt_setting_and_a_number_for_a_duration_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (config, expected) in [
        (
            "staleIntervls: 3",
            "_config.staleIntervls is no setting of the mixin (did you mean _config.staleIntervals?)",
        ),
        (
            "alertFor+: { CmuExporterAbsnt: '1m' }",
            "_config.alertFor.CmuExporterAbsnt is no setting of the mixin (did you mean _config.alertFor.CmuExporterAbsent?)",
        ),
        (
            "alertFor+: { CmuExporterAbsent: 5 }",
            "rule CmuExporterAbsent: `for` must hold text",
        ),
    ] {
        let (ok, report) = try_render_mixin(
            &format!("(import 'mixin.libsonnet') + {{ _config+:: {{ {config} }} }}\n"),
            dir.path(),
        );
        assert!(!ok, "{config}: rendered");
        assert!(report.contains(expected), "{config}: {report}");
        assert!(!report.contains("Traceback"), "{config}: {report}");
    }
}

/// Overriding the mixin's `_config` as docs/alerts-and-dashboards.md shows (a jsonnet file that
/// imports the mixin) narrows every query to the selector and changes the
/// numbers, `for:` durations and links; what it renders passes promtool.
#[test]
fn the_mixins_config_overrides_reach_every_rule_and_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let out = render_mixin(
        "(import 'mixin.libsonnet') + { _config+:: {\n\
           exporterSelector: 'job=\"adobe\"',\n\
           runbookURLPattern: 'https://wiki.example/runbooks/%s',\n\
           alertFor+: { CmuExporterAbsent: '20m', CmuExporterReloadRefused: '1m' },\n\
           staleIntervals: 3,\n\
           esmMinAttempts: 50,\n\
           dashboardRefresh: '5m',\n\
         } }\n",
        dir.path(),
    );
    let rules_file = out.join(RULES);
    assert_promtool(&["check".as_ref(), "rules".as_ref(), rules_file.as_os_str()]);

    let rules = parsed_rules(&rules_file);
    assert_eq!(rules.len(), parsed_rules(&repo(RULES)).len());
    let rule = |name: &str| {
        rules
            .iter()
            .map(|(_, r)| r)
            .find(|r| r["alert"] == name)
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    let absent = rule("CmuExporterAbsent");
    assert_eq!(
        absent["expr"],
        "absent(cmu_exporter_build_info{job=\"adobe\"})\n"
    );
    assert_eq!(absent["for"], "20m");
    assert_eq!(
        absent["annotations"]["runbook_url"],
        "https://wiki.example/runbooks/cmuexporterabsent"
    );
    assert_eq!(rule("CmuExporterReloadRefused")["for"], "1m");
    let stale = rule("CmuExporterReportStale")["expr"].as_str().unwrap();
    assert!(
        stale.contains("> 3 * cmu_exporter_report_interval_seconds{job=\"adobe\"}"),
        "{stale}"
    );
    let guard = rule("EsmAuthzFailureRatioHigh")["expr"].as_str().unwrap();
    assert!(guard.contains("esm:authz_attempts:sum >= 50"), "{guard}");

    // Every exported name an expression reads carries the selector (a
    // name in a label value, `family="cmu_active_users"`, is no read).
    let unquoted = |text: &str| -> String { text.split('"').step_by(2).collect() };
    for (group, rule) in &rules {
        let expr = rule["expr"].as_str().unwrap();
        for name in metric_names(&unquoted(expr))
            .into_iter()
            .filter(|n| !n.contains(':'))
        {
            let narrowed = unquoted(&expr.replace(&format!("{name}{{job=\"adobe\""), "narrowed{"));
            assert!(
                !metric_names(&narrowed).contains(&name),
                "{group}: {name} is read without the selector in\n{expr}"
            );
        }
    }
    for file in DASHBOARDS {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(file)).unwrap()).unwrap();
        assert_eq!(json["refresh"], "5m", "{file}");
        let job = &json["templating"]["list"][1];
        assert_eq!(job["name"], "job");
        assert_eq!(
            job["query"]["query"], "label_values(cmu_exporter_build_info{job=\"adobe\"}, job)",
            "{file}"
        );
    }
}

/// Runs `deploy/check/grafana_schema.py` on `dashboards`: (success, its report).
fn grafana_schema(dashboards: &[PathBuf]) -> (bool, String) {
    let node = std::env::var("GRAFANA_SCHEMA_DIR")
        .unwrap_or_else(|_| repo("target/ecosystem/grafana").display().to_string());
    let args = std::iter::once(PathBuf::from(node)).chain(dashboards.iter().cloned());
    python_script("deploy/check/grafana_schema.py", args)
}

#[test]
fn every_dashboard_passes_grafanas_schema_and_a_broken_one_is_refused() {
    let dashboards: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(dashboards.len(), 4);
    let (ok, report) = grafana_schema(&dashboards);
    assert!(
        ok,
        "Grafana's schema (the test command installs it into target/ecosystem/grafana):\n{report}"
    );
    assert_eq!(report.matches("OK ").count(), 4, "{report}");
    // An unknown key, a wrong type and a value outside an enum are each refused.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&dashboards[0]).unwrap();
    let cases = [
        ("\"graphTooltip\": 1", "\"graphTooltip\": 7"),
        ("\"editable\": true", "\"editable\": \"yes\""),
        (
            "\"refresh\": \"1m\"",
            "\"refresh\": \"1m\", \"colour\": \"red\"",
        ),
        ("\"type\": \"query\"", "\"type\": \"guess\""),
    ];
    for (from, to) in cases {
        assert!(text.contains(from), "{from} in the dashboard");
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let (ok, report) = grafana_schema(&[broken]);
        assert!(
            !ok && report.contains("error TS"),
            "`{to}` is refused:\n{report}"
        );
    }
}

/// The rules of grafana/dashboard-linter that apply to ours, as our own
/// check: each problem as "rule: where: what".
fn dashboard_lint(dashboard: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name);
    let uses_datasource =
        |v: &serde_json::Value| matches!(v["uid"].as_str(), Some("${datasource}" | "$datasource"));
    match variable("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => problems.push(
            "template-datasource-rule: no `datasource` variable of Prometheus data sources".into(),
        ),
    }
    for name in ["job", "instance"] {
        match variable(name) {
            Some(v)
                if v["type"] == "query"
                    && uses_datasource(&v["datasource"])
                    && v["includeAll"] == true => {}
            _ => problems.push(format!(
                "template-{name}-rule: no `{name}` query variable on ${{datasource}} with All"
            )),
        }
    }
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap_or_default();
        if title.trim().is_empty() {
            problems.push(format!(
                "panel-title-description-rule: panel {} has no title",
                panel["id"]
            ));
        }
        if panel["description"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            problems.push(format!(
                "panel-title-description-rule: {title}: no description"
            ));
        }
        if panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            problems.push(format!("panel-units-rule: {title}: no unit"));
        }
        if !uses_datasource(&panel["datasource"]) {
            problems.push(format!(
                "panel-datasource-rule: {title}: not on ${{datasource}}"
            ));
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            if !uses_datasource(&target["datasource"]) {
                problems.push(format!(
                    "panel-datasource-rule: {title}: a query not on ${{datasource}}"
                ));
            }
            for (label, rule) in [
                ("job", "target-job-rule"),
                ("instance", "target-instance-rule"),
            ] {
                if !expr.contains(&format!("{label}=~\"${label}\"")) {
                    problems.push(format!(
                        "{rule}: {title}: `{expr}` does not select {label}=~\"${label}\""
                    ));
                }
            }
            for (at, _) in expr
                .match_indices("rate(")
                .chain(expr.match_indices("increase("))
            {
                let inner = &expr[at..];
                let name: String = inner[inner.find('(').unwrap_or(0) + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if !["_total", "_count", "_sum", "_bucket"]
                    .iter()
                    .any(|s| name.ends_with(s))
                {
                    problems.push(format!(
                        "target-counter-agg-rule: {title}: rate of `{name}`, which is no counter"
                    ));
                }
                let range = inner.find('[').and_then(|open| {
                    inner[open + 1..]
                        .find(']')
                        .map(|close| &inner[open + 1..open + 1 + close])
                });
                if range != Some("$__rate_interval") {
                    problems.push(format!(
                        "target-rate-interval-rule: {title}: `{expr}` takes a range other than $__rate_interval"
                    ));
                }
            }
        }
    }
    problems
}

/// Replaces `from` by `to` in the first query of panel `panel`.
fn edit_expr(dashboard: &mut serde_json::Value, panel: usize, from: &str, to: &str) {
    let target = &mut dashboard["panels"][panel]["targets"][0]["expr"];
    let edited = target.as_str().unwrap().replace(from, to);
    *target = edited.into();
}

#[test]
fn the_dashboards_follow_the_dashboard_linters_rules_and_each_rule_can_fail() {
    for file in DASHBOARDS {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap()).unwrap();
        let problems = dashboard_lint(&json);
        assert!(problems.is_empty(), "{file}:\n{}", problems.join("\n"));
    }
    // Each rule, broken on purpose in the health dashboard.
    let text = std::fs::read_to_string(repo("dashboards/cmu-exporter-health.json")).unwrap();
    let health: serde_json::Value = serde_json::from_str(&text).unwrap();
    type Breaking = fn(&mut serde_json::Value);
    let cases: [(&str, Breaking); 10] = [
        ("template-datasource-rule", |d| {
            d["templating"]["list"][0]["type"] = "query".into()
        }),
        ("template-job-rule", |d| {
            d["templating"]["list"][1]["name"] = "jobs".into()
        }),
        ("template-instance-rule", |d| {
            d["templating"]["list"][2]["includeAll"] = false.into()
        }),
        ("panel-datasource-rule", |d| {
            d["panels"][0]["datasource"]["uid"] = "prometheus".into()
        }),
        ("panel-units-rule", |d| {
            d["panels"][0]["fieldConfig"]["defaults"]["unit"] = "".into()
        }),
        ("panel-title-description-rule", |d| {
            d["panels"][0]["description"] = "".into()
        }),
        ("target-job-rule", |d| {
            edit_expr(d, 0, "job=~\"$job\", ", "")
        }),
        ("target-instance-rule", |d| {
            edit_expr(d, 0, "instance=~\"$instance\"", "x=\"y\"")
        }),
        ("target-rate-interval-rule", |d| {
            edit_expr(d, 2, "$__rate_interval", "5m")
        }),
        ("target-counter-agg-rule", |d| {
            edit_expr(
                d,
                2,
                "cmu_exporter_http_requests_total",
                "cmu_exporter_report_series",
            )
        }),
    ];
    for (rule, break_it) in cases {
        let mut broken = health.clone();
        break_it(&mut broken);
        let problems = dashboard_lint(&broken);
        assert!(
            problems.iter().any(|p| p.starts_with(rule)),
            "{rule} catches its break: {problems:?}"
        );
    }
}

/// Every PromQL expression of the dashboards, with its panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for file in DASHBOARDS {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo(file)).unwrap()).unwrap();
        for panel in json["panels"].as_array().unwrap() {
            let title = format!("{file}: {}", panel["title"].as_str().unwrap());
            // A row has no queries of its own.
            for target in panel["targets"].as_array().into_iter().flatten() {
                queries.push((title.clone(), target["expr"].as_str().unwrap().to_owned()));
            }
        }
        for var in json["templating"]["list"].as_array().unwrap() {
            if let Some(q) = var["query"]["query"].as_str() {
                let inner = q.trim_start_matches("label_values(");
                let selector = inner.rsplit_once(',').map_or(inner, |(s, _)| s);
                queries.push((
                    format!("{file}: variable {}", var["name"]),
                    selector.to_owned(),
                ));
            }
        }
    }
    queries
}

/// Metric names (`cmu_...`, `cmu:...`, `esm_...`, `esm:...`) an expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["cmu_", "cmu:", "esm_", "esm:"]
            .iter()
            .any(|p| expr[i..].starts_with(p));
        // `$esm_report` is a dashboard variable, not a metric.
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b'$');
        if starts && boundary {
            let end = expr[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(expr.len(), |n| i + n);
            names.insert(expr[i..end].to_owned());
            i = end;
        } else {
            i += 1;
        }
    }
    names
}

/// The rule file's recorded names and the metric names its expressions read.
fn rule_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(repo(RULES)).unwrap();
    let mut recorded = BTreeSet::new();
    let mut read = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("- record: ") {
            recorded.insert(name.trim().to_owned());
        } else if !line.starts_with('#') {
            let code = line.split(" # ").next().unwrap_or_default();
            read.extend(metric_names(code));
        }
    }
    (recorded, read)
}

/// The demo's configuration run in-process against a simulator we control.
async fn demo_exporter() -> (Simulator, tempfile::TempDir, Running) {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let statement = dir.path().join("statement.jwt");
    std::fs::write(&statement, sim.software_statement()).unwrap();
    // The demo's configuration as a file, so that a test can reload it.
    let file = dir.path().join("demo.yaml");
    std::fs::write(
        &file,
        cmu_exporter::demo::yaml(&sim, &statement, &dir.path().join("state")),
    )
    .unwrap();
    let running = exporter_of(&file).await;
    (sim, dir, running)
}

/// The exporter of the configuration file `file`, in-process.
async fn exporter_of(file: &Path) -> Running {
    let config = cmu_exporter::config::Config::load(file).unwrap();
    let options = Options {
        config_file: Some(file.to_owned()),
        ..Options::loopback(Clock::wall())
    };
    app::start(config, options).await.unwrap()
}

/// The demo's exposition once every demo report was polled.
async fn full_exposition(exporter: &Running) -> String {
    exposition_once_polled(exporter, 13).await
}

/// The exposition once `reports` reports were polled.
async fn exposition_once_polled(exporter: &Running, reports: usize) -> String {
    let url = format!("{}/metrics", exporter.url());
    wait_for("every report polled", PROMETHEUS_WAIT, || async {
        let text = get_text(&url).await.1;
        let up = parse_exposition(&text)
            .into_iter()
            .filter(|s| s.name == "cmu_exporter_report_up" && s.value == 1.0)
            .count();
        (up == reports).then_some(text)
    })
    .await
}

/// What the dashboards and rules read that the exposition `text` neither
/// exports nor the rules record, one line each, and how many names were read.
fn unread_metrics(text: &str) -> (Vec<String>, usize) {
    let exported: BTreeSet<String> = parse_exposition(text).into_iter().map(|s| s.name).collect();
    let (recorded, read_by_rules) = rule_names();
    // The push's series exist with `remote_write:` only; the push tests read
    // them on `/metrics` (push::live_push_...).
    let pushing = |name: &str| name.starts_with("cmu_exporter_remote_write_");
    let mut missing = Vec::new();
    let mut checked = 0;
    for (place, expr) in dashboard_queries() {
        for name in metric_names(&expr) {
            if !(exported.contains(&name) || recorded.contains(&name) || pushing(&name)) {
                missing.push(format!(
                    "{place}: `{name}` is neither exported nor recorded"
                ));
            }
            checked += 1;
        }
    }
    for name in read_by_rules.difference(&recorded) {
        if !(exported.contains(name) || pushing(name)) {
            missing.push(format!("the rules read `{name}`, which is not exported"));
        }
    }
    (missing, checked)
}

#[tokio::test]
async fn every_metric_of_the_dashboards_and_rules_is_exported_or_recorded() {
    let (_sim, _dir, exporter) = demo_exporter().await;
    let text = full_exposition(&exporter).await;
    let (missing, checked) = unread_metrics(&text);
    assert!(missing.is_empty(), "the demo:\n{}", missing.join("\n"));
    assert!(checked > 50, "the dashboards were read: {checked} names");
    exporter.stop().await;
}

#[tokio::test]
async fn the_kubernetes_bases_configuration_polls_what_its_rules_and_dashboards_read() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let statement = dir.path().join("statement.jwt");
    std::fs::write(&statement, sim.software_statement()).unwrap();
    // The base's file as it is, pointed at the simulator and a scratch state.
    let base = std::fs::read_to_string(repo("deploy/kubernetes/config.yaml")).unwrap();
    let local = base
        .replacen(
            "adobe:\n",
            &format!(
                "adobe:\n  dcr_url: {}\n  cmu_url: {}\n  esm_url: {}\n",
                sim.dcr_url(),
                sim.cmu_url(),
                sim.esm_url()
            ),
            1,
        )
        .replace(
            "/etc/cmu-exporter/secret/software-statement.jwt",
            statement.to_str().unwrap(),
        )
        .replace(
            "state_dir: /var/lib/cmu-exporter",
            &format!("state_dir: {}", dir.path().join("state").display()),
        );
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, &local).unwrap();
    let reports = cmu_exporter::config::Config::load(&file)
        .unwrap()
        .reports
        .len();
    let exporter = exporter_of(&file).await;
    let text = exposition_once_polled(&exporter, reports).await;
    let (missing, _) = unread_metrics(&text);
    assert!(
        missing.is_empty(),
        "deploy/kubernetes/config.yaml polls too little:\n{}",
        missing.join("\n")
    );
    exporter.stop().await;
}

/// A webhook receiver: the bodies Alertmanager posted.
async fn webhook() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

/// Substitutes the dashboards' variables: every job, instance, tenant and
/// MVPD, and a report that serves the panel's metrics.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$job", ".+")
        .replace("$instance", ".+")
        .replace("$account", ".*")
        .replace("$tenant", ".*")
        .replace("$mvpd", ".*")
        .replace("$concurrency_report", "daily_concurrency")
        .replace("$activity_report", "daily_activity")
        .replace("$report", "hourly_by_mvpd")
        .replace("$esm_report", "esm_hourly_by_mvpd")
        .replace("$media_company", ".*")
}

#[tokio::test]
async fn prometheus_answers_every_panel_and_a_failure_spike_reaches_alertmanager() {
    let (sim, dir, exporter) = demo_exporter().await;
    full_exposition(&exporter).await;
    let (hook_port, received) = webhook().await;
    let work = dir.path();

    // The mixin's rules, with every `for:` wait cut to a second through its
    // `_config` (so the test need not wait a quarter of an hour) and the
    // selector of this test's job; the expressions are otherwise the shipped
    // ones.
    let rendered = render_mixin(
        "(import 'mixin.libsonnet') + { _config+:: {\n\
           local shipped = super.alertFor,\n\
           alertFor: { [a]: if shipped[a] == null then null else '1s' for a in std.objectFields(shipped) },\n\
           exporterSelector: 'job=\"cmu-exporter-test\"',\n\
         } }\n",
        work,
    );
    std::fs::copy(rendered.join(RULES), work.join("rules.yml")).unwrap();

    let am_port = free_port();
    std::fs::write(
        work.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname, tenant, mvpd]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{hook_port}/hook\n"
        ),
    )
    .unwrap();
    let _alertmanager = daemon(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", work.join("alertmanager.yml").display()),
            format!("--storage.path={}", work.join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &work.join("alertmanager.log"),
    );

    let prom_port = free_port();
    let target = exporter.addrs[0];
    std::fs::write(
        work.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\nscrape_configs:\n  - job_name: cmu-exporter-test\n    static_configs:\n      - targets: ['{target}']\n",
            work.join("rules.yml").display()
        ),
    )
    .unwrap();
    let _prometheus = daemon(
        "prometheus",
        &[
            format!("--config.file={}", work.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", work.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        &work.join("prometheus.log"),
    );
    let prometheus = format!("http://127.0.0.1:{prom_port}");
    let log = || std::fs::read_to_string(work.join("prometheus.log")).unwrap_or_default();

    // Data, and the recording rules evaluated on it.
    wait_for(
        "scraped data and recorded what-if shares",
        PROMETHEUS_WAIT,
        || async {
            let shares = query(&prometheus, "cmu:activity_users_over_limit:share").await;
            let rated = query(&prometheus, "rate(cmu_exporter_http_requests_total[30s])").await;
            (!shares.is_empty() && !rated.is_empty()).then_some(())
        },
    )
    .await;
    let queries = dashboard_queries();
    assert!(queries.len() > 25);
    for (place, expr) in &queries {
        // The demo pushes nowhere: the push panels' series are read by
        // the push tests on /metrics.
        if expr.contains("cmu_exporter_remote_write_") {
            continue;
        }
        let expr = substitute(expr);
        let result = wait_for(
            &format!("{place}: {expr}"),
            Duration::from_secs(45),
            || async { Some(query(&prometheus, &expr).await).filter(|r| !r.is_empty()) },
        )
        .await;
        assert!(!result.is_empty(), "{place}: {expr}\n{}", log());
    }

    // The demo with the shipped rules fires nothing.
    let firing = query(&prometheus, "ALERTS{alertstate=\"firing\"}").await;
    if !firing.is_empty() {
        // What the threshold alerts compare, to tell a real breach from a
        // transient one (seen once under load, not reproduced alone).
        let sums = query(
            &prometheus,
            "sum by (report, tenant) (cmu_active_sessions) or cmu:active_sessions_threshold:tenant",
        )
        .await;
        panic!(
            "the demo fires nothing: {firing:?}\ncompared: {sums:?}\n{}",
            log()
        );
    }
    let hooked = |name: &str| {
        received.lock().unwrap().iter().any(|body| {
            body["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["labels"]["alertname"] == name && x["status"] == "firing")
            })
        })
    };
    assert!(!hooked("CmuFailedAttemptsRatioHigh"));

    // A tenant's active sessions over the threshold a reload configures:
    // exactly one alert (the report with the largest sum), carrying the number.
    let per_report = query(
        &prometheus,
        "sum by (report) (cmu_active_sessions{tenant=\"ACME\"})",
    )
    .await;
    let of = |r: &serde_json::Value| -> f64 { r["value"][1].as_str().unwrap().parse().unwrap() };
    // The report whose sum is the largest (which one depends on the hour
    // of the day the simulator draws), and the largest of the others.
    let mut sums: Vec<(f64, String)> = per_report
        .iter()
        .map(|r| (of(r), r["metric"]["report"].as_str().unwrap().to_owned()))
        .collect();
    sums.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (acme, top) = sums[0].clone();
    let others = sums.get(1).map_or(0.0, |s| s.0);
    assert!(
        others < acme,
        "one report's sum is the largest: {per_report:?}"
    );
    let demo_file = work.join("demo.yaml");
    let demo_yaml = std::fs::read_to_string(&demo_file).unwrap();
    let configure = |warning: f64| {
        let extra = format!(
            "  - family: cmu_active_sessions\n    match:\n      tenant: ACME\n    warning: {warning}\n    critical: {}\n",
            warning * 10.0
        );
        let text = demo_yaml.replace(
            "# Each tenant's policy",
            &format!("{}# Each tenant's policy", extra),
        );
        std::fs::write(&demo_file, text).unwrap();
    };
    // A round number between the other reports' sums and the largest.
    let threshold = (((acme + others) / 2.0) / 100.0).floor() * 100.0;
    assert!(threshold > others && threshold < acme);
    configure(threshold);
    exporter.supervisor.reload().await.unwrap();
    let sessions_alert = "ALERTS{alertname=\"CmuActiveSessionsHigh\",alertstate=\"firing\"}";
    wait_for("the tenant's sessions alert", PROMETHEUS_WAIT, || async {
        (!query(&prometheus, sessions_alert).await.is_empty()).then_some(())
    })
    .await;
    let fired = query(&prometheus, sessions_alert).await;
    assert_eq!(fired.len(), 1, "one alert: {fired:?}");
    assert_eq!(fired[0]["metric"]["tenant"], "ACME");
    assert_eq!(fired[0]["metric"]["report"], top.as_str());
    wait_for("its page at the webhook", PROMETHEUS_WAIT, || async {
        hooked("CmuActiveSessionsHigh").then_some(())
    })
    .await;
    let page = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == "CmuActiveSessionsHigh")
        .unwrap();
    let described = page["annotations"]["description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        described.contains(&format!("the warning threshold of {}k", threshold / 1000.0)),
        "the configured number is in the text: {described}"
    );
    // A new threshold above the sessions: the alert follows, no rule edited.
    configure(acme * 4.0);
    exporter.supervisor.reload().await.unwrap();
    wait_for("the alert resolved", PROMETHEUS_WAIT, || async {
        query(&prometheus, sessions_alert)
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // Users over the stream limit: a limit of 1 for ACME fires from the
    // activity report, never from the concurrency report.
    let over = demo_yaml.replace(
        "stream_limits:\n",
        "stream_limits:\n  - match:\n      tenant: ACME\n    limit: 1\n",
    );
    std::fs::write(&demo_file, over).unwrap();
    exporter.supervisor.reload().await.unwrap();
    let over_alert = "ALERTS{alertname=\"CmuUsersOverStreamLimit\",alertstate=\"firing\"}";
    let fired = wait_for("users over the stream limit", PROMETHEUS_WAIT, || async {
        Some(query(&prometheus, over_alert).await).filter(|a| !a.is_empty())
    })
    .await;
    assert!(
        fired
            .iter()
            .all(|a| a["metric"]["report"] == "daily_activity"
                && a["metric"]["tenant"] == "ACME"
                && a["metric"]["limit"] == "1"),
        "from the activity levels, with the limit in force: {fired:?}"
    );
    std::fs::write(&demo_file, &demo_yaml).unwrap();
    exporter.supervisor.reload().await.unwrap();

    // A failure spike: ten times the denied attempts.
    sim.set_failure_factor(10.0);
    wait_for("the alert at the webhook", PROMETHEUS_WAIT, || async {
        hooked("CmuFailedAttemptsRatioHigh").then_some(())
    })
    .await;
    let bodies = received.lock().unwrap().clone();
    let alert = bodies
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["labels"]["alertname"] == "CmuFailedAttemptsRatioHigh")
        .unwrap();
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["labels"]["job"], "cmu-exporter-test");
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("#cmufailedattemptsratiohigh")
    );

    // An MVPD outage in ESM: DTV denies most authorizations.
    assert!(!hooked("EsmAuthzFailureRatioHigh"));
    sim.mvpd_outage(
        "DTV",
        Some(cmu_exporter::simulator::Outage {
            failure_ratio: 0.5,
            latency_factor: 1.0,
        }),
    );
    wait_for("the ESM alert at the webhook", PROMETHEUS_WAIT, || async {
        hooked("EsmAuthzFailureRatioHigh").then_some(())
    })
    .await;
    let bodies = received.lock().unwrap().clone();
    let outage: Vec<serde_json::Value> = bodies
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == "EsmAuthzFailureRatioHigh")
        .collect();
    assert!(
        outage.iter().all(|a| a["labels"]["mvpd"] == "DTV"),
        "only the failing MVPD: {outage:?}"
    );
    assert_eq!(outage[0]["labels"]["severity"], "critical");
    // Several ESM reports see the outage: one incident, one notification
    // group (Alertmanager's group_by of the quick start), so one page.
    let groups: BTreeSet<String> = bodies
        .iter()
        .filter(|b| {
            b["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["labels"]["alertname"] == "EsmAuthzFailureRatioHigh")
            })
        })
        .map(|b| b["groupKey"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(groups.len(), 1, "one page for the outage: {groups:?}");
    exporter.stop().await;
}

/// Debian's chromium, headless (scripts/test installs it).
fn chromium(profile: &Path, args: &[String]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("chromium runs (scripts/test installs Debian's chromium)")
}

#[tokio::test]
async fn the_landing_page_draws_the_concurrency_charts_in_a_real_browser() {
    let (_sim, dir, exporter) = demo_exporter().await;
    full_exposition(&exporter).await;
    let url = format!("{}/", exporter.url());
    let page = get_text(&url).await.1;
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 4, "{page}");
    let profile = dir.path().join("chromium");
    let dom = tokio::task::spawn_blocking({
        let (profile, url) = (profile.clone(), url.clone());
        move || {
            chromium(
                &profile,
                &["--dump-dom".into(), "--window-size=1280,1000".into(), url],
            )
        }
    })
    .await
    .unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    // The whole page fits a 1280-pixel screen: no sideways scrolling (the
    // page marks how wide it came out).
    let width: u32 = dom_text
        .split("data-page-width=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the page marks its width: {}",
                dom_text.chars().take(2000).collect::<String>()
            )
        });
    assert!(
        width <= 1280,
        "the landing page is {width} pixels wide on a 1280-pixel screen"
    );
    assert!(
        dom_text.contains("data-charts-drawn=\"4\""),
        "the browser laid out 4 charts with their marks:\n{}\n{}",
        dom_text.chars().take(2000).collect::<String>(),
        String::from_utf8_lossy(&dom.stderr)
    );
    // A screenshot, as in the manual (CMU_SCREENSHOT=path keeps it).
    let shot = std::env::var("CMU_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("landing.png"));
    let taken = tokio::task::spawn_blocking({
        let shot = shot.clone();
        move || {
            chromium(
                &profile,
                &[
                    format!("--screenshot={}", shot.display()),
                    "--window-size=1100,1000".into(),
                    url,
                ],
            )
        }
    })
    .await
    .unwrap();
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot was taken: {}",
        String::from_utf8_lossy(&taken.stderr)
    );
    exporter.stop().await;
}
