// Recording rules: the CMU ratios and the concurrency what-if, the ESM
// ratios. CMU and ESM values are gauges of a time bucket (not counters):
// the ratios divide values of the same bucket and never use rate(). ESM's
// unique-accounts and unique-sessions are de-duplicated within their bucket
// and data center: no rule sums them.
local promql = import '../lib/promql.libsonnet';

// Levels are small integers: level!~"[0-N]" keeps the levels above N, so
// the what-if covers limits 1 to 9 (the exporter refuses stream limits
// above 9 for that reason).
local whatIfLimits = std.range(1, 9);

{
  local s(metric, matchers='') = promql.series($._config.exporterSelector, metric, matchers),
  // Report data: the newest value, scraped or pushed (promql.report).
  local r(metric, matchers='') = promql.report($._config, metric, matchers),
  local lookback = if $._config.reportLookback == '' then '5m' else $._config.reportLookback,
  local cmuBy = 'job, instance, report, tenant, mvpd',
  local esmBy = 'job, instance, account, report, media_company, mvpd',

  // What-if: for a limit of N streams (label `limit`), the share (and the
  // number) of users above level N. Adobe counts each user once, at the
  // highest level the user reached in the bucket: `concurrency` the most
  // streams open at once, `activity` the most tried at once (denied
  // attempts included). Users above level N are those a limit of N would
  // stop (concurrency) or did stop (activity, under a policy of N).
  local overLimit(kind, limit) =
    'sum by (%s) (%s) or cmu:%s_users:sum * 0' % [cmuBy, r('cmu_%s_level_users' % kind, 'level!~"[0-%d]"' % limit), kind],
  local whatIf(kind, measure) = [
    {
      record: 'cmu:%s_users_over_limit:%s' % [kind, measure],
      labels: { limit: std.toString(limit) },
      expr: if measure == 'share'
      then '(%s)\n/ cmu:%s_users:sum\n' % [overLimit(kind, limit), kind]
      else overLimit(kind, limit) + '\n',
    }
    for limit in whatIfLimits
  ],

  // An ESM ratio per MVPD (and per report, account and media company) of
  // the report's shown bucket; authorization metrics add up across the
  // other dimensions (requestor, platform, dc...).
  local esmRatio(record, numerator, denominator) = {
    record: record,
    expr: |||
      sum by (%(by)s) (%(numerator)s)
      /
      (sum by (%(by)s) (%(denominator)s) > 0)
    ||| % { by: esmBy, numerator: r(numerator), denominator: r(denominator) },
  },

  prometheusRules+:: {
    groups+: [
      {
        name: 'cmu-exporter.recording',
        rules: [
          // Reports whose newest complete bucket is older than their
          // max_age, as the exporter last said (scraped or pushed): the
          // rules read no value of theirs.
          {
            record: 'cmu:report:stale',
            expr: |||
              time() - max_over_time(%(until)s[%(lookback)s])
              > on (job, instance, report)
              last_over_time(%(maxAge)s[%(lookback)s])
            ||| % {
              until: s('cmu_exporter_report_complete_until_timestamp_seconds'),
              maxAge: s('cmu_exporter_report_max_age_seconds'),
              lookback: lookback,
            },
          },
          // Denied session initialisations among all attempts (started + denied).
          {
            record: 'cmu:failed_attempts:ratio',
            expr: |||
              sum by (%(by)s) (%(failed)s)
              /
              (sum by (%(by)s) (%(started)s) + sum by (%(by)s) (%(failed)s))
            ||| % { by: cmuBy, failed: r('cmu_failed_attempts'), started: r('cmu_started_sessions') },
          },
          // Sessions killed by a newer one (X-Terminate) among sessions started.
          {
            record: 'cmu:killed_sessions:ratio',
            expr: |||
              sum by (%(by)s) (%(killed)s)
              /
              sum by (%(by)s) (%(started)s)
            ||| % { by: cmuBy, killed: r('cmu_killed_sessions'), started: r('cmu_started_sessions') },
          },
          // Users per report (the denominator of the what-if shares).
          { record: 'cmu:concurrency_users:sum', expr: 'sum by (%s) (%s)' % [cmuBy, r('cmu_concurrency_level_users')] },
          { record: 'cmu:activity_users:sum', expr: 'sum by (%s) (%s)' % [cmuBy, r('cmu_activity_level_users')] },
        ]
        + whatIf('concurrency', 'share')
        + whatIf('activity', 'share')
        + whatIf('concurrency', 'count')
        + whatIf('activity', 'count'),
      },
      {
        name: 'esm.recording',
        rules: [
          esmRatio('esm:authz_failure:ratio', 'esm_authz_failed', 'esm_authz_attempts'),
          esmRatio('esm:authz_success:ratio', 'esm_authz_successful', 'esm_authz_attempts'),
          // Average time on the MVPD's authorization endpoint: the total over the attempts.
          esmRatio('esm:authz_latency_seconds:average', 'esm_authz_latency_seconds', 'esm_authz_attempts'),
          // Authorization attempts per MVPD: the volume guard of the alerts.
          { record: 'esm:authz_attempts:sum', expr: 'sum by (%s) (%s)' % [esmBy, r('esm_authz_attempts')] },
          // Authentication conversion: tokens obtained among login flows started.
          esmRatio('esm:authn_conversion:ratio', 'esm_authn_successful', 'esm_authn_attempts'),
          { record: 'esm:authn_attempts:sum', expr: 'sum by (%s) (%s)' % [esmBy, r('esm_authn_attempts')] },
          // Media tokens (about one per play) per requestor.
          {
            record: 'esm:media_tokens_by_requestor:sum',
            expr: 'sum by (job, instance, account, report, media_company, requestor_id) (%s)' % r('esm_media_tokens'),
          },
        ],
      },
    ],
  },
}
