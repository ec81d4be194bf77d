//! The deployment files. The Kubernetes base renders with kustomize and
//! validates against the Kubernetes schemas; its Prometheus Operator objects
//! are generated from the rules and dashboards users import by hand (which
//! the mixin renders, `mixin/render.py`), and never drift from them
//! (`UPDATE_DEPLOY=1 cargo test --test it deploy` writes them again).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// The Helm chart.
const CHART: &str = "deploy/helm/cmu-exporter";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `text` with every non-empty line indented by `spaces`.
fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The PrometheusRule: the groups of the rules file, as they are.
fn prometheus_rule() -> String {
    let rules = std::fs::read_to_string(repo("deploy/prometheus/cmu-exporter.rules.yml")).unwrap();
    let groups: String = rules
        .lines()
        .skip_while(|l| !l.starts_with("groups:"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "# Generated from deploy/prometheus/cmu-exporter.rules.yml by tests/it/deploy.rs:\n\
         # edit mixin/, run `python3 mixin/render.py`, then `UPDATE_DEPLOY=1 cargo test --test it deploy`.\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: cmu-exporter\n\
         spec:\n{}\n",
        indent(&groups, 2)
    )
}

/// The shipped dashboards, `dashboards/*.json`, in name order.
fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// The dashboards as ConfigMaps for Grafana's dashboard sidecar.
fn dashboard_config_maps() -> String {
    let mut out = String::from(
        "# Generated from dashboards/*.json by tests/it/deploy.rs: edit mixin/dashboards/,\n\
         # run `python3 mixin/render.py`, then `UPDATE_DEPLOY=1 cargo test --test it deploy`.\n",
    );
    for file in dashboard_files() {
        let name = file.file_name().unwrap().to_str().unwrap();
        let json = std::fs::read_to_string(&file).unwrap();
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: grafana-dashboard-{}\n  labels:\n    grafana_dashboard: \"1\"\ndata:\n  {name}: |\n{}\n",
            name.trim_end_matches(".json"),
            indent(json.trim_end(), 4)
        ));
    }
    out
}

/// The files the Helm chart packs: its copies of the rules and dashboards
/// (a chart reads no file outside its folder), and what each must equal.
fn chart_files() -> Vec<(String, String)> {
    let mut files = vec![(
        format!("{CHART}/files/cmu-exporter.rules.yml"),
        std::fs::read_to_string(repo("deploy/prometheus/cmu-exporter.rules.yml")).unwrap(),
    )];
    for path in dashboard_files() {
        let name = path.file_name().unwrap().to_str().unwrap();
        files.push((
            format!("{CHART}/files/dashboards/{name}"),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    files
}

#[test]
fn operator_objects_are_generated_from_the_rules_and_dashboards() {
    let mut generated = vec![
        (
            "deploy/kubernetes/prometheusrule.yaml".to_owned(),
            prometheus_rule(),
        ),
        (
            "deploy/kubernetes/dashboards.yaml".to_owned(),
            dashboard_config_maps(),
        ),
    ];
    generated.extend(chart_files());
    for (file, expected) in &generated {
        let file = file.as_str();
        let path = repo(file);
        if std::env::var_os("UPDATE_DEPLOY").is_some() {
            std::fs::write(&path, expected).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            &committed == expected,
            "{file} drifted from its source: run `UPDATE_DEPLOY=1 cargo test --test it deploy` and commit it"
        );
    }
}

/// The documents of a multi-document YAML stream.
fn documents(text: &str) -> Vec<String> {
    text.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n").to_owned())
        .filter(|d| !d.trim().is_empty())
        .collect()
}

fn kind(document: &str) -> &str {
    document
        .lines()
        .find_map(|l| l.strip_prefix("kind: "))
        .unwrap_or_default()
}

#[test]
fn the_configuration_of_the_base_is_valid_and_matches_its_mounts() {
    let text = std::fs::read_to_string(repo("deploy/kubernetes/config.yaml")).unwrap();
    let config = cmu_exporter::config::Config::from_yaml(&text, "deploy/kubernetes/config.yaml")
        .unwrap_or_else(|e| panic!("{e}"));
    let set = std::fs::read_to_string(repo("deploy/kubernetes/statefulset.yaml")).unwrap();
    assert!(set.contains(&format!("mountPath: {}", config.state_dir.display())));
    assert!(set.contains("mountPath: /etc/cmu-exporter/secret"));
    assert!(text.contains("/etc/cmu-exporter/secret/software-statement.jwt"));
}

/// The kustomize base as `kubectl kustomize` renders it, one string per object.
fn rendered_base() -> Vec<String> {
    rendered("deploy/kubernetes")
}

/// The kustomization in `dir` as `kubectl kustomize` renders it.
fn rendered(dir: &str) -> Vec<String> {
    let out = Command::new("kubectl")
        .args(["kustomize", repo(dir).to_str().unwrap()])
        .output()
        .expect("kubectl is installed (the README's test command checks for it)");
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

/// Runs `deploy/check/operator_schema.py` on `documents`: (success, its report).
fn operator_schema(documents: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("operator.yaml");
    std::fs::write(&file, documents.join("\n---\n")).unwrap();
    python_script("deploy/check/operator_schema.py", [&file])
}

#[test]
fn the_operator_objects_pass_the_operators_schemas_and_bad_fields_are_refused() {
    let docs = rendered_base();
    let monitor = docs.iter().find(|d| kind(d) == "ServiceMonitor").unwrap();
    let rule = docs.iter().find(|d| kind(d) == "PrometheusRule").unwrap();
    let (ok, report) = operator_schema(&[monitor, rule]);
    assert!(ok, "the Operator's schemas:\n{report}");
    assert_eq!(report.matches("OK ").count(), 2, "{report}");
    // Each way to break them is refused, and the field is named.
    let cases = [
        (monitor, "interval: 60s", "interval: 60", "interval"),
        (monitor, "scrapeTimeout:", "scrapeTimout:", "scrapeTimout"),
        (monitor, "  endpoints:", "  endpoint:", "spec.endpoint"),
        (rule, "  - name: ", "  - nam: ", "nam"),
        (rule, "for: ", "forr: ", "forr"),
        (rule, "  groups:", "  groups: 3\n  x:", "groups"),
    ];
    for (document, from, to, named) in cases {
        assert!(document.contains(from), "{from} in the object");
        let broken = document.replacen(from, to, 1);
        let (ok, report) = operator_schema(&[&broken]);
        assert!(!ok, "`{to}` is refused:\n{report}");
        assert!(
            report.contains("ERROR") && report.contains(named),
            "`{to}`: the report names {named}:\n{report}"
        );
    }
}

/// Validates the core objects of `docs` against the Kubernetes schemas,
/// refusing unknown fields (the Operator's kinds are checked elsewhere).
fn validate_core(docs: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let core: Vec<&String> = docs
        .iter()
        .filter(|d| !matches!(kind(d), "ServiceMonitor" | "PrometheusRule"))
        .collect();
    let core_file = dir.path().join("core.yaml");
    std::fs::write(
        &core_file,
        core.iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join("\n---\n"),
    )
    .unwrap();
    let validate = Command::new("kubernetes-validate")
        .args(["--strict", core_file.to_str().unwrap()])
        .output()
        .expect("kubernetes-validate is installed (the README's test command installs it)");
    let report = String::from_utf8_lossy(&validate.stdout);
    assert!(
        validate.status.success() && !report.contains("ERROR"),
        "kubernetes-validate --strict:\n{report}{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    assert_eq!(
        report.matches("INFO").count(),
        core.len(),
        "every core object was validated:\n{report}"
    );
}

#[test]
fn the_kube_prometheus_stack_example_labels_the_operator_objects_and_uses_a_registry() {
    let docs = rendered("deploy/examples/kube-prometheus-stack");
    validate_core(&docs);
    let version = env!("CARGO_PKG_VERSION");
    for wanted in ["ServiceMonitor", "PrometheusRule"] {
        let object = docs.iter().find(|d| kind(d) == wanted).unwrap();
        assert!(
            object.contains("    release: kube-prometheus-stack\n"),
            "{wanted} carries the label kube-prometheus-stack selects on:\n{}",
            &object[..object.len().min(400)]
        );
    }
    let operator: Vec<&str> = docs
        .iter()
        .filter(|d| matches!(kind(d), "ServiceMonitor" | "PrometheusRule"))
        .map(String::as_str)
        .collect();
    let (ok, report) = operator_schema(&operator);
    assert!(ok, "{report}");
    let set = docs.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    assert!(
        set.contains(&format!(
            "image: registry.example.com/cmu-exporter:{version}\n"
        )),
        "the image from the registry, tagged as Cargo.toml's version {version}"
    );
    for wanted in ["NetworkPolicy", "PodDisruptionBudget"] {
        assert!(docs.iter().any(|d| kind(d) == wanted), "{wanted} offered");
    }
    // The base's own image tag is the crate's version too.
    let base = rendered_base();
    let set = base.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    assert!(set.contains(&format!("image: cmu-exporter:{version}\n")));
}

#[test]
fn the_kubernetes_base_renders_and_validates() {
    let docs = rendered_base();
    let kinds: Vec<&str> = docs.iter().map(|d| kind(d)).collect();
    for wanted in [
        "Service",
        "StatefulSet",
        "ConfigMap",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&wanted), "{wanted} in {kinds:?}");
    }
    validate_core(&docs);
    let dir = tempfile::tempdir().unwrap();
    // The PrometheusRule's groups are a rules file promtool accepts.
    let rule = docs.iter().find(|d| kind(d) == "PrometheusRule").unwrap();
    let spec = rule.split_once("\nspec:\n").unwrap().1;
    let groups: String = spec
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let rules_file = dir.path().join("rules.yml");
    std::fs::write(&rules_file, groups).unwrap();
    let check = Command::new(promtool())
        .args(["check", "rules", rules_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check rules (PrometheusRule):\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // The ServiceMonitor scrapes the Service's named port, and the pods are hardened.
    let monitor = docs.iter().find(|d| kind(d) == "ServiceMonitor").unwrap();
    assert!(monitor.contains("port: metrics"), "{monitor}");
    let set = docs.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    for needle in [
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "- ALL",
        "type: RuntimeDefault",
        "path: /healthz",
        "path: /readyz",
        "volumeClaimTemplates:",
    ] {
        assert!(set.contains(needle), "StatefulSet lacks {needle}");
    }
    let dashboards = docs
        .iter()
        .filter(|d| kind(d) == "ConfigMap" && d.contains("grafana_dashboard: \"1\""))
        .count();
    let shipped = dashboard_files().len();
    assert_eq!(dashboards, shipped, "one ConfigMap per dashboard");
}

/// The chart rendered by `deploy/check/helm_chart.py` (lint, schema,
/// template) with the values files `values` (paths in the repository):
/// its objects, or the checker's report when it refused.
fn chart_rendered(values: &[&str], notes: bool) -> Result<String, String> {
    let mut args = vec![CHART.to_owned()];
    for file in values {
        args.push("-f".into());
        args.push(file.to_string());
    }
    if notes {
        args.push("--notes".into());
    }
    let out = Command::new("python3")
        .arg("deploy/check/helm_chart.py")
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The chart's objects for `values`, which must be accepted.
fn chart_objects(values: &[&str]) -> Vec<String> {
    let text = chart_rendered(values, false)
        .unwrap_or_else(|report| panic!("the chart with {values:?}:\n{report}"));
    documents(&text)
}

/// The chart's test values files (`ci/*.yaml`), as prometheus-community's
/// chart testing reads them.
fn chart_ci_values() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo(&format!("{CHART}/ci")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with("-values.yaml"))
        .map(|n| format!("{CHART}/ci/{n}"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_helm_chart_lints_and_renders_valid_objects_for_its_defaults_and_each_ci_file() {
    let ci = chart_ci_values();
    assert!(ci.len() >= 3, "{ci:?}");
    let mut cases: Vec<Vec<&str>> = vec![vec![]];
    cases.extend(ci.iter().map(|f| vec![f.as_str()]));
    for values in cases {
        let docs = chart_objects(&values);
        validate_core(&docs);
        let operator: Vec<&str> = docs
            .iter()
            .filter(|d| matches!(kind(d), "ServiceMonitor" | "PrometheusRule"))
            .map(String::as_str)
            .collect();
        if !operator.is_empty() {
            let (ok, report) = operator_schema(&operator);
            assert!(ok, "{values:?}: the Operator's schemas:\n{report}");
        }
        // The configuration the chart writes is one the exporter accepts.
        config_of(&docs);
    }
    // What the ci files set reaches the objects.
    let sharded = chart_objects(&[&format!("{CHART}/ci/sharded-values.yaml")]);
    let set = sharded.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    assert!(set.contains("replicas: 3\n") && set.contains("- --total-shards=3\n"));
    assert!(
        set.contains("- \"--log.level=debug\"\n") && set.contains("storageClassName: standard")
    );
    let secret = sharded.iter().find(|d| kind(d) == "Secret").unwrap();
    assert!(secret.contains("name: cmu-exporter-statement\n"));
    let own = chart_objects(&[&format!("{CHART}/ci/no-operator-values.yaml")]);
    let kinds: Vec<&str> = own.iter().map(|d| kind(d)).collect();
    assert_eq!(kinds, ["ConfigMap", "Service", "StatefulSet"], "{kinds:?}");
    let set = own.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    assert!(set.contains("secretName: adobe-pass-statement\n"));
    // NOTES.txt says how to reach /metrics and what the landing page shows.
    let notes = chart_rendered(&[], true).unwrap();
    for needle in [
        "port-forward pod/cmu-exporter-0 9063:metrics",
        "/metrics",
        "The landing page shows each report's path",
        "create secret generic cmu-exporter-statement",
    ] {
        assert!(notes.contains(needle), "NOTES.txt lacks {needle}:\n{notes}");
    }
}

#[test]
fn the_helm_charts_schema_refuses_bad_values_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("shards: 0", "/shards"),
        ("shards: two", "/shards"),
        ("serviceMonitor: {enabeld: true}", "enabeld"),
        ("serviceMonitor: {interval: 60}", "/serviceMonitor/interval"),
        ("extraArgs: [debug]", "/extraArgs/0"),
        ("persistence: {size: big}", "/persistence/size"),
        ("image: {pullPolicy: Sometimes}", "/image/pullPolicy"),
        ("config: {reports: []}", "/config/reports"),
        ("shard: 3", "shard"),
        (
            "softwareStatement: {existingSecret: a, value: b}",
            "existingSecret (a Secret of yours) or value",
        ),
    ];
    for (i, (values, named)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&file, values).unwrap();
        let report = chart_rendered(&[file.to_str().unwrap()], false)
            .err()
            .unwrap_or_else(|| panic!("`{values}` is refused"));
        assert!(
            report.contains("ERROR") && report.contains(named),
            "`{values}`: the report names {named}:\n{report}"
        );
    }
}

#[test]
fn the_charts_app_version_is_the_crates() {
    let chart = std::fs::read_to_string(repo(&format!("{CHART}/Chart.yaml"))).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        chart.contains(&format!("\nappVersion: \"{version}\"\n")),
        "Chart.yaml's appVersion is Cargo.toml's version {version}"
    );
    let set = chart_objects(&[]);
    let set = set.iter().find(|d| kind(d) == "StatefulSet").unwrap();
    assert!(set.contains(&format!("image: cmu-exporter:{version}\n")));
}

/// Runs `deploy/check/same_objects.py` on two renderings: (same, its report).
fn same_objects(first: &[String], second: &[String]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("first.yaml");
    let b = dir.path().join("second.yaml");
    std::fs::write(&a, first.join("\n---\n")).unwrap();
    std::fs::write(&b, second.join("\n---\n")).unwrap();
    python_script("deploy/check/same_objects.py", [&a, &b])
}

#[test]
fn the_helm_chart_and_the_kustomize_base_render_the_same_objects() {
    // The defaults are the base; the kube-prometheus-stack values are its overlay.
    let pairs = [
        (rendered_base(), chart_objects(&[])),
        (
            rendered("deploy/examples/kube-prometheus-stack"),
            chart_objects(&[&format!("{CHART}/ci/kube-prometheus-stack-values.yaml")]),
        ),
    ];
    for (kustomized, charted) in &pairs {
        let (same, report) = same_objects(kustomized, charted);
        assert!(
            same,
            "the chart drifted from the kustomize files:\n{report}"
        );
        assert!(report.contains(" 0 differences"), "{report}");
    }
    // A drift is seen, and named.
    let dir = tempfile::tempdir().unwrap();
    let drift = dir.path().join("drift.yaml");
    std::fs::write(&drift, "serviceMonitor: {interval: 30s}\nshards: 2\n").unwrap();
    let (same, report) = same_objects(&pairs[0].0, &chart_objects(&[drift.to_str().unwrap()]));
    assert!(!same, "{report}");
    for named in ["endpoints[0].interval", "spec.replicas", "--total-shards=2"] {
        assert!(
            report.contains(named),
            "the report names {named}:\n{report}"
        );
    }
}

/// The rendered configuration in a ConfigMap, as the exporter reads it.
fn config_of(docs: &[String]) -> cmu_exporter::config::Config {
    let map = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap" && d.contains("config.yaml: |"))
        .unwrap();
    let config: String = map
        .split_once("config.yaml: |\n")
        .unwrap()
        .1
        .lines()
        // The block ends where the ConfigMap's next key starts.
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    cmu_exporter::config::Config::from_yaml(&config, "the rendered config").unwrap()
}

/// Two replicas that both push (docs/deployment.md, Two replicas), as the
/// chart and the kustomize overlay offer them: two pods, one instance label
/// in every remote, no ServiceMonitor, a PodDisruptionBudget that keeps one
/// pushing through a drain. The chart refuses what would double every
/// series or poll shares twice.
#[test]
fn two_replicas_that_push_are_offered_by_the_chart_and_kustomize_and_misuse_is_refused() {
    let charted = chart_objects(&[&format!("{CHART}/ci/push-replicas-values.yaml")]);
    let kustomized = rendered("deploy/kubernetes-push-replicas");
    validate_core(&kustomized);
    for (what, docs) in [("chart", &charted), ("kustomize", &kustomized)] {
        let set = docs.iter().find(|d| kind(d) == "StatefulSet").unwrap();
        assert!(set.contains("replicas: 2\n"), "{what}: {set}");
        assert!(
            !docs.iter().any(|d| kind(d) == "ServiceMonitor"),
            "{what}: no scrape of the replicas"
        );
        let budget = docs
            .iter()
            .find(|d| kind(d) == "PodDisruptionBudget")
            .unwrap();
        assert!(budget.contains("maxUnavailable: 1"), "{what}: {budget}");
        let config = config_of(docs);
        assert!(!config.remote_write.is_empty(), "{what}: it pushes");
        for remote in &config.remote_write {
            assert!(
                remote.external_labels.iter().any(|(k, _)| k == "instance"),
                "{what}: {} gives both replicas one instance label",
                remote.name
            );
        }
    }
    // And refuses, naming the fix.
    let dir = tempfile::tempdir().unwrap();
    for (values, says) in [
        (
            "replicas: 2\nserviceMonitor: {enabled: false}\n",
            "needs config.remote_write",
        ),
        (
            "replicas: 2\nserviceMonitor: {enabled: false}\nconfig:\n  remote_write:\n    - url: http://vm:8428/api/v1/write\n",
            "needs external_labels.instance",
        ),
        (
            "replicas: 2\nconfig:\n  remote_write:\n    - url: http://vm:8428/api/v1/write\n      external_labels: {instance: x}\n",
            "serviceMonitor.enabled: false",
        ),
        (
            "replicas: 2\nshards: 2\nserviceMonitor: {enabled: false}\nconfig:\n  remote_write:\n    - url: http://vm:8428/api/v1/write\n      external_labels: {instance: x}\n",
            "keep replicas: 1",
        ),
    ] {
        let file = dir.path().join("values.yaml");
        std::fs::write(&file, values).unwrap();
        let refused = chart_rendered(&[file.to_str().unwrap()], false)
            .expect_err(&format!("the chart refuses {values}"));
        assert!(refused.contains(says), "{values}: {refused}");
    }
}
