// cmu-exporter's monitoring mixin: its recording rules (prometheusRules),
// alerts (prometheusAlerts) and Grafana dashboards (grafanaDashboards), with
// the settings a user overrides in `_config` (config.libsonnet).
// `python3 mixin/render.py` writes the repository's rules file and
// dashboards from it.
(import 'config.libsonnet')
+ (import 'rules/rules.libsonnet')
// The thresholds of the exporter's configuration: recording rules that
// resolve them, and the alerts on them (its groups go to both).
+ (import 'rules/thresholds.libsonnet')
+ (import 'alerts/alerts.libsonnet')
+ (import 'dashboards/dashboards.libsonnet')
