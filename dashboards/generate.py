#!/usr/bin/env python3
"""Writes the Grafana dashboards of this folder and prints the README's panel table.

Edit the panels here, run `python3 dashboards/generate.py`, and paste the
printed table into the README's "Dashboards" section. tests/it/monitoring.rs
checks every query against a real Prometheus and every metric name against
the exporter's output.
"""
import os
import sys
import json
DS = {"type": "prometheus", "uid": "${datasource}"}
J = 'job=~"$job", instance=~"$instance", account=~"$account"'
def var_ds():
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "hide": 0, "refresh": 1, "options": []}
def var_q(name, label, query, all_value=".+", multi=True, include_all=True):
    # No `current`: Grafana picks the first option (or All) on load. No
    # `allValue` without All (Grafana's schema has no null for it).
    variable = {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
                "refresh": 2, "includeAll": include_all, "multi": multi,
                "options": [], "sort": 1, "hide": 0}
    if include_all:
        variable["allValue"] = all_value
    return variable
def common_vars(info="cmu_report_info"):
    return [var_ds(),
            var_q("job", "Job", "label_values(cmu_exporter_build_info, job)"),
            var_q("instance", "Instance", 'label_values(cmu_exporter_build_info{job=~"$job"}, instance)'),
            # Several Adobe accounts: their series carry `account`; with one account none
            # does, and All (.*) matches the absent label.
            var_q("account", "Account", f'label_values({info}{{job=~"$job", instance=~"$instance"}}, account)', ".*")]
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
def row(title):
    """A row header across the dashboard, above the panels that follow it."""
    pid[0] += 1
    return {"id": pid[0], "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}}
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
   panel("Active sessions by tenant, and their thresholds", "How many streaming sessions were active, per tenant, against the warning and critical thresholds in force (thresholds: cmu_active_sessions; alert CmuActiveSessionsHigh)?", [(f"sum by (tenant) (cmu_active_sessions{{{S}}})", "{{tenant}}"), (f'cmu:active_sessions_threshold:tenant{{job=~"$job", instance=~"$instance", tenant=~"$tenant"}}', "{{tenant}} {{severity}} threshold")]),
   panel("Started vs completed sessions", "Do sessions that start also finish? A widening gap means sessions end abnormally.", [(f"sum(cmu_started_sessions{{{S}}})", "started"), (f"sum(cmu_completed_sessions{{{S}}})", "completed")]),
   panel("Failed attempts ratio", "What share of session initialisations did Concurrency Monitoring deny? (recording rule cmu:failed_attempts:ratio; alert CmuFailedAttemptsRatioHigh above its threshold, by default 10%)", [(f"cmu:failed_attempts:ratio{{{S}}}", "{{tenant}} {{mvpd}}")], unit="percentunit"),
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
   panel("Users per concurrency level", "For each N, how many users had N streams open at once at most (Adobe counts each user once, at the highest level reached in the bucket)?", [(f"sum by (level) (cmu_concurrency_level_users{{{CR}}})", "{{level}}")], kind="bargauge", instant=True, options={"displayMode": "gradient", "orientation": "horizontal"}),
   panel("Users per activity level", "For each N, how many users tried N streams at once at most (denied attempts included; each user counted once, at the highest level reached)?", [(f"sum by (level) (cmu_activity_level_users{{{AR}}})", "{{level}}")], kind="bargauge", instant=True, options={"displayMode": "gradient", "orientation": "horizontal"}),
   panel("What-if: share of users a limit would stop (opened)", "For each possible limit N, what share of users opened more than N streams at once, so that a limit of N would have stopped them? (cmu:concurrency_users_over_limit:share)", [(f"cmu:concurrency_users_over_limit:share{{{CR}}}", "limit {{limit}}")], unit="percentunit", kind="bargauge", instant=True, options={"displayMode": "basic", "orientation": "horizontal"}),
   panel("What-if: share of users a limit would stop (tried)", "For each possible limit N, what share of users tried more than N streams at once? (cmu:activity_users_over_limit:share)", [(f"cmu:activity_users_over_limit:share{{{AR}}}", "limit {{limit}}")], unit="percentunit", kind="bargauge", instant=True, options={"displayMode": "basic", "orientation": "horizontal"}),
   panel("Users over their tenant's stream limit", "How many users tried more streams than their tenant's configured limit (stream_limits:)? Activity levels, the limit in force in the legend (alert CmuUsersOverStreamLimit).", [(f'cmu:activity_users_over_stream_limit:count{{{AR}}}', "{{tenant}} {{mvpd}} over {{limit}}")], unit="short"),
   panel("Share of users over their stream limit, and its threshold", "What share of users tried more streams than their limit, against the threshold in force (thresholds: cmu:activity_users_over_limit:share)?", [(f'cmu:activity_users_over_stream_limit:share{{{AR}}}', "{{tenant}} {{mvpd}} over {{limit}}"), (f'cmu:activity_users_over_stream_limit_threshold:tenant{{job=~"$job", instance=~"$instance", tenant=~"$tenant"}}', "{{tenant}} {{severity}} threshold")], unit="percentunit"),
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
   row("Push (remote write)"),
   panel("Push lag per report", "How long ago the first bucket each store lacks became complete (0: it holds them all). CmuExporterPushLagging fires past twice the report's interval.", [(f"cmu_exporter_remote_write_lag_seconds{{{H}}}", "{{remote}} {{report}}")], unit="s"),
   panel("Samples pushed per second", "Samples each store accepted.", [(f"sum by (remote) (rate(cmu_exporter_remote_write_samples_total{{{H}}}[$__rate_interval]))", "{{remote}}")], unit="cps"),
   panel("Push failures and refusals per second", "Requests retried (transient: 5xx, 429, no answer; refusing: 401, 403, 404) and samples refused for good, by reason.", [(f"sum by (remote, kind) (rate(cmu_exporter_remote_write_failures_total{{{H}}}[$__rate_interval])) or sum by (remote, reason) (rate(cmu_exporter_remote_write_rejected_samples_total{{{H}}}[$__rate_interval]))", "{{remote}} {{kind}}{{reason}}")], unit="cps"),
   panel("Push queue", "Polled answers waiting for each store (at most 4; a full queue defers answers to the gap fill).", [(f"cmu_exporter_remote_write_queue_length{{{H}}}", "{{remote}}")]),
  ])
# ESM: per MVPD, from the ESM report chosen; the secondary panels keep
# `report` in their grouping, so that two reports are never added together.
# unique-accounts and unique-sessions are never summed (per bucket and dc).
E = f'{J}, report=~"$esm_report", media_company=~"$media_company", mvpd=~"$mvpd"'
EA = f'{J}, media_company=~"$media_company", mvpd=~"$mvpd"'
esm = dashboard("esm-auth", "Adobe Pass authentication and authorization",
  "Entitlement Service Monitoring as exported by cmu-exporter: how each MVPD's logins and authorizations are doing. Values describe the report's shown time bucket (Pacific time).",
  common_vars("esm_report_info") + [
    var_q("esm_report", "ESM report", f'label_values(esm:authz_attempts:sum{{{J}}}, report)', include_all=False, multi=False),
    var_q("media_company", "Media company", f'label_values(esm_authz_attempts{{{J}}}, media_company)', ".*"),
    var_q("mvpd", "MVPD", f'label_values(esm_authz_attempts{{{J}, media_company=~"$media_company"}}, mvpd)', ".*")],
  [
   panel("Authentication conversion by MVPD", "What share of login flows ends with an authentication, per MVPD? (esm:authn_conversion:ratio; alert EsmAuthnConversionDropping at half its own baseline)", [(f"esm:authn_conversion:ratio{{{E}}}", "{{mvpd}}")], unit="percentunit", w=8),
   panel("Authorization success ratio by MVPD", "What share of authorization attempts succeeds, per MVPD? (esm:authz_success:ratio)", [(f"esm:authz_success:ratio{{{E}}}", "{{mvpd}}")], unit="percentunit", w=8),
   panel("Authorization failure ratio by MVPD", "Which MVPD denies authorizations? (esm:authz_failure:ratio; alert EsmAuthzFailureRatioHigh above 10%)", [(f"esm:authz_failure:ratio{{{E}}}", "{{mvpd}}")], unit="percentunit", w=8),
   panel("Average authorization latency by MVPD", "How long does each MVPD's authorization endpoint take per attempt? (esm:authz_latency_seconds:average, Adobe's total over the attempts; alert EsmAuthzLatencyHigh above 2 s)", [(f"esm:authz_latency_seconds:average{{{E}}}", "{{mvpd}}")], unit="s"),
   panel("Authorizations by MVPD", "How many authorization attempts does each MVPD see (the volume behind the ratios)?", [(f"esm:authz_attempts:sum{{{E}}}", "{{mvpd}}")]),
   panel("Media tokens (plays) by requestor", "How many plays start, per requestor? A media token is issued for about each play request (alert EsmMediaTokensStopped when one stops).", [(f"sum by (requestor_id) (esm_media_tokens{{{E}}})", "{{requestor_id}}")]),
   panel("Media tokens (plays) by platform", "On which platforms do plays start?", [(f"sum by (platform) (esm_media_tokens{{{E}}})", "{{platform}}")]),
   panel("Authorization failures by reason", "Why do authorizations fail, per MVPD? From event reports (esm_events of reasons other than None).", [(f'sum by (report, mvpd, reason) (esm_events{{{EA}, reason!="None"}})', "{{report}} {{mvpd}} {{reason}}")], w=24),
   panel("Clientless tokens and failures", "Do Clientless (smart TV, console) devices get their tokens? Clientless tokens issued and failures, per MVPD.", [(f"sum by (mvpd) (esm_clientless_tokens{{{E}}})", "tokens {{mvpd}}"), (f"sum by (mvpd) (esm_clientless_failures{{{E}}})", "failures {{mvpd}}")]),
   panel("Plays by Clientless device type", "Which Clientless device types play (cdt: N/A when not Clientless, Unknown when no device type was sent)?", [(f'sum by (report, cdt) (esm_media_tokens{{{EA}, cdt=~".+"}})', "{{report}} {{cdt}}")]),
   panel("Authorizations by single sign-on type", "How many successful authorizations reuse an authentication from another app, by SSO mechanism (platform, passive, adobe)?", [(f'sum by (report, sso_type) (esm_authz_successful{{{EA}, sso_type=~".+"}})', "{{report}} {{sso_type}}")]),
   panel("Unique accounts by data center", "How many distinct accounts authenticated or authorized, per data center? De-duplicated within the bucket and dc: shown per series, never summed.", [(f'esm_unique_accounts{{{J}, media_company=~"$media_company"}}', "{{report}} {{dc}}")]),
   panel("ESM data age", "How long ago did Adobe compute each ESM report's data (Last-Modified)? Alert EsmReportStale: 30 min for minute data, 3 h for hour, 36 h for day.", [(f"time() - esm_report_last_modified_timestamp_seconds{{{J}}}", "{{report}}")], unit="s", w=24),
  ])

# `--check`: write nothing, exit 1 if a dashboard file is not what this script writes.
check = "--check" in sys.argv[1:]
stale = []
for name, d in [("cmu-overview", overview), ("cmu-concurrency", concurrency), ("cmu-exporter-health", health), ("esm-auth", esm)]:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.json")
    text = json.dumps(d, indent=2) + "\n"
    if check:
        with open(path) as f:
            if f.read() != text:
                stale.append(f"dashboards/{name}.json")
        continue
    open(path, "w").write(text)
    print(f"\n### {d['title']} (`dashboards/{name}.json`)\n")
    print("| panel | the question it answers |\n|---|---|")
    for p in d["panels"]:
        if p["type"] == "row":
            print(f"| **{p['title']}** | |")
        else:
            print(f"| {p['title']} | {p['description']} |")
if stale:
    sys.exit(f"not what dashboards/generate.py writes (edit the panels there and run it): {', '.join(stale)}")
