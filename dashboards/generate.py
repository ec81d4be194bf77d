#!/usr/bin/env python3
"""Writes the Grafana dashboards of this folder and prints the README's panel table.

Edit the panels here, run `python3 dashboards/generate.py`, and paste the
printed table into the README's "Dashboards" section. tests/it/monitoring.rs
checks every query against a real Prometheus and every metric name against
the exporter's output.
"""
import os
import json
DS = {"type": "prometheus", "uid": "${datasource}"}
J = 'job=~"$job", instance=~"$instance", account=~"$account"'
def var_ds():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": []}
def var_q(name, label, query, all_value=".+", multi=True, include_all=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
            "definition": query, "refresh": 2, "includeAll": include_all, "multi": multi,
            "allValue": all_value if include_all else None, "current": {}, "options": [], "sort": 1, "hide": 0}
def common_vars():
    return [var_ds(),
            var_q("job", "Job", "label_values(cmu_exporter_build_info, job)"),
            var_q("instance", "Instance", 'label_values(cmu_exporter_build_info{job=~"$job"}, instance)'),
            # Several Adobe accounts: their series carry `account`; with one account none
            # does, and All (.*) matches the absent label.
            var_q("account", "Account", 'label_values(cmu_report_info{job=~"$job", instance=~"$instance"}, account)', ".*")]
def tenant_mvpd(metric):
    return [var_q("tenant", "Tenant", f'label_values({metric}{{{J}}}, tenant)', ".*"),
            var_q("mvpd", "MVPD", f'label_values({metric}{{{J}, tenant=~"$tenant"}}, mvpd)', ".*")]
pid = [0]
def panel(title, question, exprs, unit="short", kind="timeseries", w=12, h=8, instant=False, extra_field=None, options=None):
    pid[0] += 1
    targets = []
    for i, (expr, legend) in enumerate(exprs):
        t = {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend, "range": not instant, "instant": instant}
        if instant: t["format"] = "time_series"
        targets.append(t)
    defaults = {"unit": unit}
    if extra_field: defaults.update(extra_field)
    p = {"id": pid[0], "type": kind, "title": title, "description": question, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": 0, "y": 0}, "fieldConfig": {"defaults": defaults, "overrides": []},
         "options": options or {}, "targets": targets}
    return p
def layout(panels):
    x = y = 0; rowh = 0
    for p in panels:
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24: x = 0; y += rowh; rowh = 0
        p["gridPos"].update(x=x, y=y); x += w; rowh = max(rowh, h)
    return panels
def dashboard(uid, title, description, variables, panels):
    return {"uid": uid, "title": title, "description": description, "tags": ["cmu-exporter", "adobe-pass"],
            "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "1m",
            "time": {"from": "now-24h", "to": "now"}, "timezone": "browser",
            "templating": {"list": variables}, "annotations": {"list": []}, "links": [],
            "panels": layout(panels)}

S = f'{J}, report=~"$report", tenant=~"$tenant", mvpd=~"$mvpd"'
overview = dashboard("cmu-overview", "CMU overview",
  "Adobe Pass Concurrency Monitoring usage as exported by cmu-exporter: users, sessions, failures, stream durations. Values describe the report's shown time bucket.",
  common_vars() + [var_q("report", "Report", f'label_values(cmu_active_users{{{J}}}, report)', include_all=False, multi=False)] + tenant_mvpd("cmu_active_users"),
  [
   panel("Active users by tenant", "How many distinct accounts streamed, per tenant, in the report's bucket? (Sums across MVPDs and platforms count a user once per group.)", [(f"sum by (tenant) (cmu_active_users{{{S}}})", "{{tenant}}")], w=8),
   panel("Active users by MVPD", "Which MVPDs bring the viewers?", [(f"sum by (mvpd) (cmu_active_users{{{S}}})", "{{mvpd}}")], w=8),
   panel("Active users by platform", "On which platforms do users watch? Empty unless the report has the platform dimension.", [(f"sum by (platform) (cmu_active_users{{{S}}})", "{{platform}}")], w=8),
   panel("Active sessions by tenant", "How many streaming sessions were active, per tenant?", [(f"sum by (tenant) (cmu_active_sessions{{{S}}})", "{{tenant}}")]),
   panel("Started vs completed sessions", "Do sessions that start also finish? A widening gap means sessions end abnormally.", [(f"sum(cmu_started_sessions{{{S}}})", "started"), (f"sum(cmu_completed_sessions{{{S}}})", "completed")]),
   panel("Failed attempts ratio", "What share of session initialisations did Concurrency Monitoring deny? (recording rule cmu:failed_attempts:ratio; alert CmuFailedAttemptsRatioHigh above 10%)", [(f"cmu:failed_attempts:ratio{{{S}}}", "{{tenant}} {{mvpd}}")], unit="percentunit"),
   panel("Killed and dismissed sessions", "How many sessions were ended by policy: killed by a newer session (X-Terminate) or dismissed during playback?", [(f"sum(cmu_killed_sessions{{{S}}})", "killed"), (f"sum(cmu_dismissed_sessions{{{S}}})", "dismissed")]),
   panel("Stream duration: median and p90", "How long do streams last? Estimated from Adobe's duration ranges (cmu_session_duration_seconds histogram); empty unless the report serves duration metrics.", [(f"histogram_quantile(0.5, sum by (le) (cmu_session_duration_seconds_bucket{{{S}}}))", "median"), (f"histogram_quantile(0.9, sum by (le) (cmu_session_duration_seconds_bucket{{{S}}}))", "p90")], unit="s"),
   panel("Bucket shown", "Which time bucket do the values describe? (start of the report's shown bucket)", [(f'cmu_report_bucket_start_timestamp_seconds{{{J}, report=~"$report"}} * 1000', "{{report}}")], unit="dateTimeAsIso", kind="stat", w=24, h=4, instant=True),
  ])

C = f'{J}, tenant=~"$tenant", mvpd=~"$mvpd"'
CR = C + ', report=~"$concurrency_report"'
AR = C + ', report=~"$activity_report"'
concurrency = dashboard("cmu-concurrency", "CMU concurrency",
  "How many streams users open and try to open at once, and what a concurrency limit would do to them: the question Adobe's concurrency-level and activity-level reports exist to answer.",
  common_vars() + [var_q("concurrency_report", "Concurrency report", f'label_values(cmu_concurrency_level_users{{{J}}}, report)', include_all=False, multi=False),
                   var_q("activity_report", "Activity report", f'label_values(cmu_activity_level_users{{{J}}}, report)', include_all=False, multi=False)] + tenant_mvpd("cmu_concurrency_level_users"),
  [
   panel("Users per concurrency level", "How many users had at most N streams opened (approved) at once, for each N?", [(f"sum by (level) (cmu_concurrency_level_users{{{CR}}})", "{{level}}")], kind="bargauge", instant=True, options={"displayMode": "gradient", "orientation": "horizontal"}),
   panel("Users per activity level", "How many users tried to have N streams at once (denied attempts included), for each N?", [(f"sum by (level) (cmu_activity_level_users{{{AR}}})", "{{level}}")], kind="bargauge", instant=True, options={"displayMode": "gradient", "orientation": "horizontal"}),
   panel("What-if: share of users a limit would stop (opened)", "For each possible limit N, what share of users opened more than N streams at once, so that a limit of N would have stopped them? (cmu:concurrency_users_over_limit:share)", [(f"cmu:concurrency_users_over_limit:share{{{CR}}}", "limit {{limit}}")], unit="percentunit", kind="bargauge", instant=True, options={"displayMode": "basic", "orientation": "horizontal"}),
   panel("What-if: share of users a limit would stop (tried)", "For each possible limit N, what share of users tried more than N streams at once? (cmu:activity_users_over_limit:share)", [(f"cmu:activity_users_over_limit:share{{{AR}}}", "limit {{limit}}")], unit="percentunit", kind="bargauge", instant=True, options={"displayMode": "basic", "orientation": "horizontal"}),
   panel("Share of users at 3+ streams over time", "Is concurrency growing? The share of users with 3 or more streams opened at once (alert CmuConcurrencyOverThreshold above 5%).", [(f'cmu:concurrency_users_over_limit:share{{{CR}, limit="2"}}', "{{tenant}} {{mvpd}}")], unit="percentunit", w=24),
  ])

# Per-report self-metrics carry no account; the credentials ones do, with several accounts.
H = 'job=~"$job", instance=~"$instance"'
HA = H + ', account=~"$account"'
health = dashboard("cmu-exporter-health", "cmu-exporter health",
  "Is the exporter doing its job: reports polled on time, Adobe's APIs answering, credentials working?",
  common_vars(),
  [
   panel("Reports up", "Did each report's last poll succeed (1) or fail (0)?", [(f"cmu_exporter_report_up{{{H}}}", "{{instance}} {{report}}")], unit="bool_yes_no", kind="stat", instant=True),
   panel("Age of last success, in intervals", "How old is each report's data compared with its poll interval? Above 2 the report is stale (alert CmuExporterReportStale).", [(f"(time() - cmu_exporter_report_last_success_timestamp_seconds{{{H}}}) / cmu_exporter_report_interval_seconds{{{H}}}", "{{instance}} {{report}}")], unit="none"),
   panel("API requests by endpoint and code", "How many requests go to Adobe per second, and which fail? (code other than 2xx; `error` means no answer)", [(f"sum by (api, endpoint, code) (rate(cmu_exporter_http_requests_total{{{H}}}[$__rate_interval]))", "{{api}} {{endpoint}} {{code}}")], unit="reqps"),
   panel("Token time left", "How long until the current access token expires? It is renewed on demand when under a minute is left.", [(f"cmu_exporter_token_expiry_timestamp_seconds{{{HA}}} - time()", "{{instance}} {{account}}")], unit="s"),
   panel("Poll duration p90", "How long do polls take (token, request, parsing)?", [(f"histogram_quantile(0.9, sum by (le, report) (rate(cmu_exporter_report_poll_duration_seconds_bucket{{{H}}}[$__rate_interval])))", "{{report}}")], unit="s"),
   panel("Polls by result", "How often is each report polled, and how often does it fail?", [(f"sum by (report, result) (rate(cmu_exporter_report_polls_total{{{H}}}[$__rate_interval]))", "{{report}} {{result}}")], unit="ops"),
   panel("Series per report", "How many series does each report export (cardinality)?", [(f"cmu_exporter_report_series{{{H}}}", "{{instance}} {{report}}")]),
   panel("Credentials", "Does the exporter hold a working token (ok), or does Adobe refuse it for a reason only a person can fix (needs person)?", [(f"cmu_exporter_credentials_ok{{{HA}}}", "ok {{instance}} {{account}}"), (f"cmu_exporter_credentials_needs_person{{{HA}}}", "needs person {{instance}} {{account}}")], unit="bool_yes_no", kind="stat", instant=True),
   panel("Configuration reloads", "Did the last configuration reload succeed?", [(f"cmu_exporter_config_last_reload_successful{{{H}}}", "{{instance}}")], unit="bool_yes_no", kind="stat", instant=True),
  ])
for name, d in [("cmu-overview", overview), ("cmu-concurrency", concurrency), ("cmu-exporter-health", health)]:
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.json"), "w").write(json.dumps(d, indent=2) + "\n")
    print(f"\n### {d['title']} (`dashboards/{name}.json`)\n")
    print("| panel | the question it answers |\n|---|---|")
    for p in d["panels"]:
        print(f"| {p['title']} | {p['description']} |")
