// The thresholds of the exporter's configuration, resolved and alerted on:
// this file adds groups to both prometheusRules and prometheusAlerts.
//
// The exporter exports each configured threshold (and its bundled
// defaults) with the labels of its match and a `match` label naming them
// ("", "tenant", "mvpd", "mvpd,tenant"). For each tenant (or tenant and
// MVPD) the data shows, the recording rules pick the most specific
// threshold in force: its own, else the one of its MVPD (MVPD level), else
// the unnarrowed default. The alerts compare with `>` on the family summed
// to that level, and their texts read the number back from Prometheus.
local promql = import '../lib/promql.libsonnet';

local severities = ['warning', 'critical'];
local J = 'job, instance';

{
  local c = $._config,
  local s(metric, matchers='') = promql.series(c.exporterSelector, metric, matchers),
  // Report data: the newest value, scraped or pushed (promql.report).
  local r(metric, matchers='') = promql.report(c, metric, matchers),
  local thresholdOf(family, severity, match) =
    s('cmu_threshold', 'family="%s", severity="%s", match="%s"' % [family, severity, match]),

  // The threshold of `family` for each group `keys` of `data`: its own
  // (match = keys), else the one matching only `fallbackKeys`.
  local resolved(record, family, severity, keys, data, fallbackMatch, fallbackKeys) = {
    record: record,
    labels: { severity: severity },
    expr: |||
      max by (%(J)s, %(by)s, severity) (%(own)s)
      or on (%(J)s, %(by)s)
      (
        group by (%(J)s, %(by)s) (%(data)s)
        * on (%(fallbackOn)s) group_left (severity)
        max by (%(fallbackOn)s, severity) (%(fallback)s)
      )
    ||| % {
      J: J,
      by: std.join(', ', keys),
      own: thresholdOf(family, severity, std.join(',', std.sort(keys))),
      data: data,
      fallbackOn: std.join(', ', [J] + fallbackKeys),
      fallback: thresholdOf(family, severity, fallbackMatch),
    },
  },

  local alert = function(name, severity, expr, summary, description, section=name)
    promql.alert(c, name, severity, expr, summary, description, section),

  // Active sessions and users, per tenant and per tenant and MVPD.
  local concurrencyFamilies = [
    { family: 'cmu_active_sessions', what: 'active sessions', name: 'ActiveSessions' },
    { family: 'cmu_active_users', what: 'active users', name: 'ActiveUsers' },
  ],
  local concurrencyLevels = [
    { level: 'tenant', keys: ['tenant'], fallback: '', fallbackKeys: [], suffix: '' },
    { level: 'tenant_mvpd', keys: ['tenant', 'mvpd'], fallback: 'mvpd', fallbackKeys: ['mvpd'], suffix: 'ForMvpd' },
  ],
  local concurrencyRecord(f, l) = 'cmu:%s_threshold:%s' % [f.family[std.length('cmu_'):], l.level],
  local concurrencyRules = [
    resolved(concurrencyRecord(f, l), f.family, severity, l.keys, r(f.family), l.fallback, l.fallbackKeys)
    for f in concurrencyFamilies
    for l in concurrencyLevels
    for severity in severities
  ],
  local concurrencyAlerts = [
    local record = concurrencyRecord(f, l);
    local by = std.join(', ', l.keys);
    local who = 'tenant {{ $labels.tenant }}' + (if std.member(l.keys, 'mvpd') then ', MVPD {{ $labels.mvpd }}' else '');
    local What = std.asciiUpper(f.what[0]) + f.what[1:];
    alert(
      'Cmu%sHigh%s' % [f.name, l.suffix],
      severity,
      |||
        sum by (%(J)s, report, %(by)s) (%(family)s)
        > on (%(J)s, %(by)s) group_left
        %(record)s{severity="%(severity)s"}
      ||| % { J: J, by: by, family: r(f.family), record: record, severity: severity },
      What + ' of ' + who + ' above the ' + severity + ' threshold.',
      '{{ $value | humanize }} ' + f.what + ' for ' + who + ' (report {{ $labels.report }}, bucket of '
      + promql.bucketOf('cmu') + '), above the ' + severity + ' threshold of '
      + promql.queryValue(record, severity, l.keys) + " set in the exporter's configuration (thresholds: " + f.family + ').',
      'Cmu%sHigh' % f.name,
    )
    for f in concurrencyFamilies
    for l in concurrencyLevels
    for severity in severities
  ],

  // Each tenant's stream limit, and the users who tried more streams.
  local overStreamLimit = 'cmu:activity_users_over_stream_limit_threshold:tenant',
  local streamLimitRules = [
    // Each tenant's stream limit (its own, else the default), with the
    // limit also as a label so the what-if series of that limit can be picked.
    {
      record: 'cmu:stream_limit:tenant',
      expr: |||
        max by (job, instance, tenant, limit) (%(own)s)
        or on (job, instance, tenant)
        (
          group by (job, instance, tenant) (%(activity)s or %(concurrency)s)
          * on (job, instance) group_left (limit)
          max by (job, instance, limit) (%(default)s)
        )
      ||| % {
        own: s('cmu_stream_limit', 'tenant!=""'),
        activity: r('cmu_activity_level_users'),
        concurrency: r('cmu_concurrency_level_users'),
        default: s('cmu_stream_limit', 'tenant=""'),
      },
    },
  ] + [
    // Users who tried more streams than their tenant's limit (activity
    // levels count denied attempts: under a limit of N hardly anyone opens
    // more than N, but many may try).
    {
      record: 'cmu:activity_users_over_stream_limit:%s' % measure,
      expr: |||
        cmu:activity_users_over_limit:%s
        * on (job, instance, tenant, limit) group_left
        group by (job, instance, tenant, limit) (cmu:stream_limit:tenant)
      ||| % measure,
    }
    for measure in ['count', 'share']
  ] + [
    resolved(overStreamLimit, 'cmu:activity_users_over_limit:share', severity, ['tenant'], 'cmu:activity_users_over_stream_limit:share', '', [])
    for severity in severities
  ],
  local streamLimitAlerts = [
    alert(
      'CmuUsersOverStreamLimit',
      severity,
      |||
        cmu:activity_users_over_stream_limit:share
        > on (%(J)s, tenant) group_left
        %(record)s{severity="%(severity)s"}
      ||| % { J: J, record: overStreamLimit, severity: severity },
      'Users of tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} try more streams than their limit of {{ $labels.limit }}.',
      '{{ with printf "cmu:activity_users_over_stream_limit:count{instance=\\"%s\\",report=\\"%s\\",tenant=\\"%s\\",mvpd=\\"%s\\"}" '
      + '$labels.instance $labels.report $labels.tenant $labels.mvpd | query }}{{ . | first | value | humanize }}{{ end }}'
      + ' users ({{ $value | humanizePercentage }}) of tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} tried more than {{ $labels.limit }} streams at once (report {{ $labels.report }}, activity levels, bucket of '
      + promql.bucketOf('cmu') + '), above the ' + severity + ' share of '
      + promql.queryValue(overStreamLimit, severity, ['tenant'], 'humanizePercentage')
      + ". Check for account sharing, or whether the policy's limit fits its users.",
    )
    for severity in severities
  ],

  // The bundled ratios. ESM ones alert only on buckets with enough attempts.
  local esmGuard = 'esm:authz_attempts:sum >= %s # THRESHOLD: _config.esmMinAttempts' % c.esmMinAttempts,
  local ratios = [
    {
      family: 'cmu:failed_attempts:ratio',
      keys: ['tenant'],
      name: 'CmuFailedAttemptsRatioHigh',
      guard: null,
      shown: 'humanizePercentage',
      summary: 'Session initialisations of {{ $labels.tenant }} {{ $labels.mvpd }} denied above the %(severity)s threshold.',
      description: '{{ $value | humanizePercentage }} of session initialisations for tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) were denied by Concurrency Monitoring, above the %(severity)s threshold of %(threshold)s. Users are hitting limits, or a policy or integration is broken.',
    },
    {
      family: 'esm:authz_failure:ratio',
      keys: ['mvpd'],
      name: 'EsmAuthzFailureRatioHigh',
      guard: esmGuard,
      shown: 'humanizePercentage',
      summary: 'MVPD {{ $labels.mvpd }} denies authorizations above the %(severity)s threshold.',
      description: "{{ $value | humanizePercentage }} of authorization attempts with MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) failed, above the %(severity)s threshold of %(threshold)s. Its subscribers cannot play: check the MVPD's status, then tell Adobe and the MVPD.",
    },
    {
      family: 'esm:authz_latency_seconds:average',
      keys: ['mvpd'],
      name: 'EsmAuthzLatencyHigh',
      guard: esmGuard,
      shown: 'humanizeDuration',
      summary: 'MVPD {{ $labels.mvpd }} is slow to authorize, above the %(severity)s threshold.',
      description: "Authorizations with MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) take {{ $value | humanizeDuration }} on average on the MVPD's endpoint, above the %(severity)s threshold of %(threshold)s. Playback starts slowly, and timeouts turn into failures next.",
    },
  ],
  local ratioRecord(r) =
    local parts = std.split(r.family, ':');
    '%s:%s_threshold:%s' % [parts[0], parts[1], std.join('_', r.keys)],
  local ratioRules = [
    resolved(ratioRecord(r), r.family, severity, r.keys, r.family, '', [])
    for r in ratios
    for severity in severities
  ],
  local ratioAlerts = [
    local record = ratioRecord(r);
    local guarded = if r.guard == null then '' else
      'and on (job, instance, account, report, media_company, mvpd)\n%s\n' % r.guard;
    // The texts' templates are filled by concatenation: they hold printf's %s.
    local fill(text, threshold) =
      std.strReplace(std.strReplace(text, '%(severity)s', severity), '%(threshold)s', threshold);
    alert(
      r.name,
      severity,
      |||
        %(family)s
        > on (%(J)s, %(by)s) group_left
        %(record)s{severity="%(severity)s"}
      ||| % { family: r.family, J: J, by: std.join(', ', r.keys), record: record, severity: severity } + guarded,
      fill(r.summary, ''),
      fill(r.description, promql.queryValue(record, severity, r.keys, r.shown)),
    )
    for r in ratios
    for severity in severities
  ],

  prometheusRules+:: {
    groups+: [{ name: 'cmu-exporter.thresholds', rules: concurrencyRules + streamLimitRules + ratioRules }],
  },
  prometheusAlerts+:: {
    groups+: [{ name: 'cmu-exporter.threshold-alerts', rules: concurrencyAlerts + streamLimitAlerts + ratioAlerts }],
  },
}
