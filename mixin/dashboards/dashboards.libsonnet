// The four Grafana dashboards. Every panel says the question it answers
// (its description); the manual's "Dashboards" tables (docs/alerts-and-dashboards.md) are these, printed by
// `python3 mixin/render.py`.
local g = import '../lib/grafana.libsonnet';
local promql = import '../lib/promql.libsonnet';
local panel = g.panel;
local v = g.queryVariable;

// `metric{matchers}`.
local q(metric, matchers) = metric + '{' + matchers + '}';
local J = 'job=~"$job", instance=~"$instance", account=~"$account"';

{
  local c = $._config,
  local dashboard(uid, title, description, variables, panels) =
    g.dashboard(c, uid, title, description, variables, panels),
  local build = promql.series(c.exporterSelector, 'cmu_exporter_build_info'),
  local common(info='cmu_report_info') = [
    g.datasourceVariable(),
    v('job', 'Job', 'label_values(%s, job)' % build),
    v('instance', 'Instance', 'label_values(%s, instance)' % promql.series(c.exporterSelector, 'cmu_exporter_build_info', 'job=~"$job"')),
    // Several Adobe accounts: their series carry `account`; with one account
    // none does, and All (.*) matches the absent label.
    v('account', 'Account', 'label_values(%s, account)' % q(info, 'job=~"$job", instance=~"$instance"'), '.*'),
  ],
  local tenantMvpd(metric) = [
    v('tenant', 'Tenant', 'label_values(%s, tenant)' % q(metric, J), '.*'),
    v('mvpd', 'MVPD', 'label_values(%s, mvpd)' % q(metric, J + ', tenant=~"$tenant"'), '.*'),
  ],
  local single(name, label, query) = v(name, label, query, multi=false, includeAll=false),

  local S = J + ', report=~"$report", tenant=~"$tenant", mvpd=~"$mvpd"',
  local overview = dashboard(
    'cmu-overview',
    'CMU overview',
    "Adobe Pass Concurrency Monitoring usage as exported by cmu-exporter: users, sessions, failures, stream durations. Values describe the report's shown time bucket.",
    common() + [single('report', 'Report', 'label_values(%s, report)' % q('cmu_active_users', J))] + tenantMvpd('cmu_active_users'),
    [
      panel('Active users by tenant', "How many distinct accounts streamed, per tenant, in the report's bucket? (Sums across MVPDs and platforms count a user once per group.)", [['sum by (tenant) (%s)' % q('cmu_active_users', S), '{{tenant}}']], w=8),
      panel('Active users by MVPD', 'Which MVPDs bring the viewers?', [['sum by (mvpd) (%s)' % q('cmu_active_users', S), '{{mvpd}}']], w=8),
      panel('Active users by platform', 'On which platforms do users watch? Empty unless the report has the platform dimension.', [['sum by (platform) (%s)' % q('cmu_active_users', S), '{{platform}}']], w=8),
      panel('Active sessions by tenant, and their thresholds', 'How many streaming sessions were active, per tenant, against the warning and critical thresholds in force (thresholds: cmu_active_sessions; alert CmuActiveSessionsHigh)?', [['sum by (tenant) (%s)' % q('cmu_active_sessions', S), '{{tenant}}'], [q('cmu:active_sessions_threshold:tenant', 'job=~"$job", instance=~"$instance", tenant=~"$tenant"'), '{{tenant}} {{severity}} threshold']]),
      panel('Started vs completed sessions', 'Do sessions that start also finish? A widening gap means sessions end abnormally.', [['sum(%s)' % q('cmu_started_sessions', S), 'started'], ['sum(%s)' % q('cmu_completed_sessions', S), 'completed']]),
      panel('Failed attempts ratio', 'What share of session initialisations did Concurrency Monitoring deny? (recording rule cmu:failed_attempts:ratio; alert CmuFailedAttemptsRatioHigh above its threshold, by default 10%)', [[q('cmu:failed_attempts:ratio', S), '{{tenant}} {{mvpd}}']], unit='percentunit'),
      panel('Killed and dismissed sessions', 'How many sessions were ended by policy: killed by a newer session (X-Terminate) or dismissed during playback?', [['sum(%s)' % q('cmu_killed_sessions', S), 'killed'], ['sum(%s)' % q('cmu_dismissed_sessions', S), 'dismissed']]),
      panel('Stream duration: median and p90', "How long do streams last? Estimated from Adobe's duration ranges (cmu_session_duration_seconds histogram); empty unless the report serves duration metrics.", [['histogram_quantile(0.5, sum by (le) (%s))' % q('cmu_session_duration_seconds_bucket', S), 'median'], ['histogram_quantile(0.9, sum by (le) (%s))' % q('cmu_session_duration_seconds_bucket', S), 'p90']], unit='s'),
      panel('Bucket shown', "Which time bucket do the values describe? (start of the report's shown bucket)", [[q('cmu_report_bucket_start_timestamp_seconds', J + ', report=~"$report"') + ' * 1000', '{{report}}']], unit='dateTimeAsIso', kind='stat', w=24, h=4, instant=true),
    ],
  ),

  local C = J + ', tenant=~"$tenant", mvpd=~"$mvpd"',
  local CR = C + ', report=~"$concurrency_report"',
  local AR = C + ', report=~"$activity_report"',
  local bars(mode) = { displayMode: mode, orientation: 'horizontal' },
  local concurrency = dashboard(
    'cmu-concurrency',
    'CMU concurrency',
    "How many streams users open and try to open at once, and what a concurrency limit would do to them: the question Adobe's concurrency-level and activity-level reports exist to answer.",
    common() + [
      single('concurrency_report', 'Concurrency report', 'label_values(%s, report)' % q('cmu_concurrency_level_users', J)),
      single('activity_report', 'Activity report', 'label_values(%s, report)' % q('cmu_activity_level_users', J)),
    ] + tenantMvpd('cmu_concurrency_level_users'),
    [
      panel('Users per concurrency level', 'For each N, how many users had N streams open at once at most (Adobe counts each user once, at the highest level reached in the bucket)?', [['sum by (level) (%s)' % q('cmu_concurrency_level_users', CR), '{{level}}']], kind='bargauge', instant=true, options=bars('gradient')),
      panel('Users per activity level', 'For each N, how many users tried N streams at once at most (denied attempts included; each user counted once, at the highest level reached)?', [['sum by (level) (%s)' % q('cmu_activity_level_users', AR), '{{level}}']], kind='bargauge', instant=true, options=bars('gradient')),
      panel('What-if: share of users a limit would stop (opened)', 'For each possible limit N, what share of users opened more than N streams at once, so that a limit of N would have stopped them? (cmu:concurrency_users_over_limit:share)', [[q('cmu:concurrency_users_over_limit:share', CR), 'limit {{limit}}']], unit='percentunit', kind='bargauge', instant=true, options=bars('basic')),
      panel('What-if: share of users a limit would stop (tried)', 'For each possible limit N, what share of users tried more than N streams at once? (cmu:activity_users_over_limit:share)', [[q('cmu:activity_users_over_limit:share', AR), 'limit {{limit}}']], unit='percentunit', kind='bargauge', instant=true, options=bars('basic')),
      panel("Users over their tenant's stream limit", 'How many users tried more streams than their tenant\'s configured limit (stream_limits:)? Activity levels, the limit in force in the legend (alert CmuUsersOverStreamLimit).', [[q('cmu:activity_users_over_stream_limit:count', AR), '{{tenant}} {{mvpd}} over {{limit}}']], unit='short'),
      panel('Share of users over their stream limit, and its threshold', 'What share of users tried more streams than their limit, against the threshold in force (thresholds: cmu:activity_users_over_limit:share)?', [[q('cmu:activity_users_over_stream_limit:share', AR), '{{tenant}} {{mvpd}} over {{limit}}'], [q('cmu:activity_users_over_stream_limit_threshold:tenant', 'job=~"$job", instance=~"$instance", tenant=~"$tenant"'), '{{tenant}} {{severity}} threshold']], unit='percentunit'),
    ],
  ),

  // Per-report self-metrics carry no account; the credentials ones do, with several accounts.
  local H = 'job=~"$job", instance=~"$instance"',
  local HA = H + ', account=~"$account"',
  local health = dashboard(
    'cmu-exporter-health',
    'cmu-exporter health',
    "Is the exporter doing its job: reports polled on time, Adobe's APIs answering, credentials working?",
    common(),
    [
      panel('Reports up', "Did each report's last poll succeed (1) or fail (0)?", [[q('cmu_exporter_report_up', H), '{{instance}} {{report}}']], unit='bool_yes_no', kind='stat', instant=true),
      panel('Age of last success, in intervals', "How old is each report's data compared with its poll interval? Above %s the report is stale (alert CmuExporterReportStale)." % c.staleIntervals, [['(time() - %s) / %s' % [q('cmu_exporter_report_last_success_timestamp_seconds', H), q('cmu_exporter_report_interval_seconds', H)], '{{instance}} {{report}}']], unit='none'),
      panel('API requests by endpoint and code', 'How many requests go to Adobe per second, and which fail? (code other than 2xx; `error` means no answer)', [['sum by (api, endpoint, code) (rate(%s[$__rate_interval]))' % q('cmu_exporter_http_requests_total', H), '{{api}} {{endpoint}} {{code}}']], unit='reqps'),
      panel('Token time left', 'How long until the current access token expires? It is renewed on demand when under a minute is left.', [[q('cmu_exporter_token_expiry_timestamp_seconds', HA) + ' - time()', '{{instance}} {{account}}']], unit='s'),
      panel('Poll duration p90', 'How long do polls take (token, request, parsing)?', [['histogram_quantile(0.9, sum by (le, report) (rate(%s[$__rate_interval])))' % q('cmu_exporter_report_poll_duration_seconds_bucket', H), '{{report}}']], unit='s'),
      panel('Polls by result', 'How often is each report polled, and how often does it fail?', [['sum by (report, result) (rate(%s[$__rate_interval]))' % q('cmu_exporter_report_polls_total', H), '{{report}} {{result}}']], unit='ops'),
      panel('Series per report', 'How many series does each report export (cardinality)?', [[q('cmu_exporter_report_series', H), '{{instance}} {{report}}']]),
      panel('Credentials', 'Does the exporter hold a working token (ok), or does Adobe refuse it for a reason only a person can fix (needs person)?', [[q('cmu_exporter_credentials_ok', HA), 'ok {{instance}} {{account}}'], [q('cmu_exporter_credentials_needs_person', HA), 'needs person {{instance}} {{account}}']], unit='bool_yes_no', kind='stat', instant=true),
      panel('Configuration reloads', 'Did the last configuration reload succeed?', [[q('cmu_exporter_config_last_reload_successful', H), '{{instance}}']], unit='bool_yes_no', kind='stat', instant=true),
      g.row('Push (remote write)'),
      panel('Push lag per report', "How long ago the first bucket each store lacks became complete (0: it holds them all). CmuExporterPushLagging fires past %s times the report's interval and %s." % [c.pushLagIntervals, promql.seconds(c.pushLagSlackSeconds)], [[q('cmu_exporter_remote_write_lag_seconds', H), '{{remote}} {{report}}']], unit='s'),
      panel('Samples pushed per second', 'Samples each store accepted.', [['sum by (remote) (rate(%s[$__rate_interval]))' % q('cmu_exporter_remote_write_samples_total', H), '{{remote}}']], unit='cps'),
      panel('Push failures and refusals per second', 'Requests retried (transient: 5xx, 429, no answer; refusing: 401, 403, 404) and samples refused for good, by reason.', [['sum by (remote, kind) (rate(%s[$__rate_interval])) or sum by (remote, reason) (rate(%s[$__rate_interval]))' % [q('cmu_exporter_remote_write_failures_total', H), q('cmu_exporter_remote_write_rejected_samples_total', H)], '{{remote}} {{kind}}{{reason}}']], unit='cps'),
      panel('Push queue', 'Polled answers waiting for each store (at most 4; a full queue defers answers to the gap fill).', [[q('cmu_exporter_remote_write_queue_length', H), '{{remote}}']]),
    ],
  ),

  // ESM: per MVPD, from the ESM report chosen; the secondary panels keep
  // `report` in their grouping, so that two reports are never added
  // together. unique-accounts and unique-sessions are never summed (per
  // bucket and dc).
  local E = J + ', report=~"$esm_report", media_company=~"$media_company", mvpd=~"$mvpd"',
  local EA = J + ', media_company=~"$media_company", mvpd=~"$mvpd"',
  local esm = dashboard(
    'esm-auth',
    'Adobe Pass authentication and authorization',
    "Entitlement Service Monitoring as exported by cmu-exporter: how each MVPD's logins and authorizations are doing. Values describe the report's shown time bucket (Pacific time).",
    common('esm_report_info') + [
      single('esm_report', 'ESM report', 'label_values(%s, report)' % q('esm:authz_attempts:sum', J)),
      v('media_company', 'Media company', 'label_values(%s, media_company)' % q('esm_authz_attempts', J), '.*'),
      v('mvpd', 'MVPD', 'label_values(%s, mvpd)' % q('esm_authz_attempts', J + ', media_company=~"$media_company"'), '.*'),
    ],
    [
      panel('Authentication conversion by MVPD', 'What share of login flows ends with an authentication, per MVPD? (esm:authn_conversion:ratio; alert EsmAuthnConversionDropping at %s of its own baseline)' % promql.percent(c.authnConversionDropFactor), [[q('esm:authn_conversion:ratio', E), '{{mvpd}}']], unit='percentunit', w=8),
      panel('Authorization success ratio by MVPD', 'What share of authorization attempts succeeds, per MVPD? (esm:authz_success:ratio)', [[q('esm:authz_success:ratio', E), '{{mvpd}}']], unit='percentunit', w=8),
      panel('Authorization failure ratio by MVPD', 'Which MVPD denies authorizations? (esm:authz_failure:ratio; alert EsmAuthzFailureRatioHigh above its threshold, by default 10%)', [[q('esm:authz_failure:ratio', E), '{{mvpd}}']], unit='percentunit', w=8),
      panel('Average authorization latency by MVPD', "How long does each MVPD's authorization endpoint take per attempt? (esm:authz_latency_seconds:average, Adobe's total over the attempts; alert EsmAuthzLatencyHigh above its threshold, by default 2 s)", [[q('esm:authz_latency_seconds:average', E), '{{mvpd}}']], unit='s'),
      panel('Authorizations by MVPD', 'How many authorization attempts does each MVPD see (the volume behind the ratios)?', [[q('esm:authz_attempts:sum', E), '{{mvpd}}']]),
      panel('Media tokens (plays) by requestor', 'How many plays start, per requestor? A media token is issued for about each play request (alert EsmMediaTokensStopped when one stops).', [['sum by (requestor_id) (%s)' % q('esm_media_tokens', E), '{{requestor_id}}']]),
      panel('Media tokens (plays) by platform', 'On which platforms do plays start?', [['sum by (platform) (%s)' % q('esm_media_tokens', E), '{{platform}}']]),
      panel('Authorization failures by reason', 'Why do authorizations fail, per MVPD? From event reports (esm_events of reasons other than None).', [['sum by (report, mvpd, reason) (%s)' % q('esm_events', EA + ', reason!="None"'), '{{report}} {{mvpd}} {{reason}}']], w=24),
      panel('Clientless tokens and failures', 'Do Clientless (smart TV, console) devices get their tokens? Clientless tokens issued and failures, per MVPD.', [['sum by (mvpd) (%s)' % q('esm_clientless_tokens', E), 'tokens {{mvpd}}'], ['sum by (mvpd) (%s)' % q('esm_clientless_failures', E), 'failures {{mvpd}}']]),
      panel('Plays by Clientless device type', 'Which Clientless device types play (cdt: N/A when not Clientless, Unknown when no device type was sent)?', [['sum by (report, cdt) (%s)' % q('esm_media_tokens', EA + ', cdt=~".+"'), '{{report}} {{cdt}}']]),
      panel('Authorizations by single sign-on type', 'How many successful authorizations reuse an authentication from another app, by SSO mechanism (platform, passive, adobe)?', [['sum by (report, sso_type) (%s)' % q('esm_authz_successful', EA + ', sso_type=~".+"'), '{{report}} {{sso_type}}']]),
      panel('Unique accounts by data center', 'How many distinct accounts authenticated or authorized, per data center? De-duplicated within the bucket and dc: shown per series, never summed.', [[q('esm_unique_accounts', J + ', media_company=~"$media_company"'), '{{report}} {{dc}}']]),
      panel('ESM data age', "How long ago did Adobe compute each ESM report's data (Last-Modified)? Alert EsmReportStale: %s for minute data, %s for hour, %s for day." % [promql.seconds(c.esmStaleSeconds.minute), promql.seconds(c.esmStaleSeconds.hour), promql.seconds(c.esmStaleSeconds.day)], [['time() - %s' % q('esm_report_last_modified_timestamp_seconds', J), '{{report}}']], unit='s', w=24),
    ],
  ),

  grafanaDashboards+:: {
    'cmu-overview.json': overview,
    'cmu-concurrency.json': concurrency,
    'cmu-exporter-health.json': health,
    'esm-auth.json': esm,
  },
}
