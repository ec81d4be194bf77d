// The alerts on the exporter itself, on CMU's killed sessions and on ESM.
// The numbers they use are the mixin's _config (config.libsonnet): the
// exporter exports no threshold for them.
local promql = import '../lib/promql.libsonnet';

{
  local c = $._config,
  local s(metric, matchers='') = promql.series(c.exporterSelector, metric, matchers),
  local alert = function(name, severity, expr, summary, description)
    promql.alert(c, name, severity, expr, summary, description),

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'cmu-exporter.alerts',
        rules: [
          alert(
            'CmuExporterAbsent',
            'critical',
            'absent(%s)\n' % s('cmu_exporter_build_info'),
            'No cmu-exporter is scraped.',
            'Prometheus has no cmu_exporter_build_info series: no cmu-exporter is being scraped, so no CMU data and no other cmu-exporter alert can fire.',
          ),
          alert(
            'CmuExporterCredentialsNeedPerson',
            'critical',
            '%s == 1\n' % s('cmu_exporter_credentials_needs_person'),
            'Adobe refuses the exporter\'s credentials: a person must act.',
            '{{ $labels.instance }}: Adobe refuses the credentials for a reason retrying will not fix (statement not approved, revoked pre-registered client...). /readyz and the exporter\'s log say which; no report is polled until it is fixed.',
          ),
          alert(
            'CmuExporterTokenRenewalFailing',
            'warning',
            '%s == 0 and %s == 0\n' % [s('cmu_exporter_credentials_ok'), s('cmu_exporter_credentials_needs_person')],
            'The exporter cannot obtain an access token.',
            '{{ $labels.instance }} has had no working access token'
            + (if c.alertFor.CmuExporterTokenRenewalFailing == null then '' else ' for ' + promql.spoken(c.alertFor.CmuExporterTokenRenewalFailing))
            + ' (DCR unreachable, throttled or failing). It retries by itself; /readyz says why.',
          ),
          alert(
            'CmuExporterReportStale',
            'warning',
            |||
              (time() - %(last)s) > %(n)s * %(interval)s # THRESHOLD: _config.staleIntervals
              or
              (%(up)s == 0 unless on (job, instance, report) %(last)s)
            ||| % {
              last: s('cmu_exporter_report_last_success_timestamp_seconds'),
              interval: s('cmu_exporter_report_interval_seconds'),
              up: s('cmu_exporter_report_up'),
              n: c.staleIntervals,
            },
            'Report {{ $labels.report }} has not been polled successfully for %s intervals.' % c.staleIntervals,
            '{{ $labels.instance }}: report {{ $labels.report }} had no successful poll within %s times its interval (or none since start). Its series are stale or gone; the landing page shows the last error.' % c.staleIntervals,
          ),
          alert(
            'CmuExporterPushLagging',
            'warning',
            |||
              %(lag)s
                > on (job, instance, report) group_left ()
              (%(n)s * %(interval)s + %(slack)s) # THRESHOLD: _config.pushLagIntervals, _config.pushLagSlackSeconds
            ||| % {
              lag: s('cmu_exporter_remote_write_lag_seconds'),
              interval: s('cmu_exporter_report_interval_seconds'),
              n: c.pushLagIntervals,
              slack: c.pushLagSlackSeconds,
            },
            'Remote {{ $labels.remote }} lacks buckets of report {{ $labels.report }}.',
            "{{ $labels.instance }}: the store {{ $labels.remote }} has lacked a complete bucket of report {{ $labels.report }} for {{ $value | humanizeDuration }}, over %(n)s times the report's interval and %(slack)s: the store refuses or cannot take pushes, or Adobe fails the gap fill. Nothing is lost until the gap exceeds max_gap; the landing page and the log say why." % { n: c.pushLagIntervals, slack: promql.seconds(c.pushLagSlackSeconds) },
          ),
          alert(
            'CmuKilledSessionsSpike',
            'info',
            |||
              cmu:killed_sessions:ratio > %(share)s # THRESHOLD: _config.killedSessionsShare
              and
              cmu:killed_sessions:ratio > %(factor)s * avg_over_time(cmu:killed_sessions:ratio[1d] offset 1h) # THRESHOLD: _config.killedSessionsFactor
            ||| % { share: c.killedSessionsShare, factor: c.killedSessionsFactor },
            'Killed sessions of {{ $labels.tenant }} {{ $labels.mvpd }} are %sx their usual share.' % c.killedSessionsFactor,
            '{{ $value | humanizePercentage }} of sessions for tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) were killed by newer ones, over %s times the share of the previous day.' % c.killedSessionsFactor,
          ),
          alert(
            'CmuExporterShardMissing',
            'critical',
            'max by (job) (%s) - count by (job) (%s) > 0\n' % [s('cmu_exporter_total_shards'), s('cmu_exporter_shard_info')],
            '{{ $value }} shard(s) of {{ $labels.job }} are not scraped.',
            'Job {{ $labels.job }} runs with --total-shards {{ with printf "max(cmu_exporter_total_shards{job=\\"%s\\"})" $labels.job | query }}{{ . | first | value }}{{ end }}, and {{ $value }} of its shards answer no scrape: their reports are polled by nobody, and neither CmuExporterAbsent nor CmuExporterReportStale can fire for them.',
          ),
          alert(
            'CmuExporterReportTruncated',
            'warning',
            'increase(%s[1h]) > 0\n' % s('cmu_exporter_report_truncated_total'),
            'Report {{ $labels.report }} hits its row limit: its numbers are an undercount.',
            "{{ $labels.instance }}: answers of report {{ $labels.report }} had as many rows as its limit ({{ $value | humanize }} times in the last hour): rows beyond it are missing, so sums and counts are too low. Raise the report's limit, or narrow it with filters.",
          ),
          alert(
            'CmuExporterSeriesDropped',
            'warning',
            'increase(%s[1h]) > 0\n' % s('cmu_exporter_series_dropped_total'),
            'Report {{ $labels.report }} exceeds its max_series: series are dropped.',
            '{{ $labels.instance }}: the cardinality guard of report {{ $labels.report }} dropped {{ $value | humanize }} series in the last hour: some tenants, MVPDs or applications are missing from it. Raise max_series, or poll a report with fewer dimensions.',
          ),
          alert(
            'CmuExporterReloadRefused',
            'warning',
            '%s == 0\n' % s('cmu_exporter_config_last_reload_successful'),
            'The exporter refused its new configuration file.',
            '{{ $labels.instance }}: the last reload (SIGHUP or POST /-/reload) found the configuration file invalid and kept the previous one running, so the change (a threshold, a report) is not in force. The log line and `cmu-exporter check-config` name each problem and its fix.',
          ),
        ],
      },
      {
        name: 'esm.alerts',
        rules: [
          alert(
            'EsmAuthnConversionDropping',
            'warning',
            |||
              esm:authn_conversion:ratio
                < %(factor)s * avg_over_time(esm:authn_conversion:ratio[1d] offset 1h) # THRESHOLD: _config.authnConversionDropFactor
              and on (job, instance, account, report, media_company, mvpd)
              esm:authn_attempts:sum >= %(min)s # THRESHOLD: _config.esmMinAttempts
            ||| % { factor: c.authnConversionDropFactor, min: c.esmMinAttempts },
            'Logins with MVPD {{ $labels.mvpd }} convert at %s or less of their usual rate.' % promql.percent(c.authnConversionDropFactor),
            'Only {{ $value | humanizePercentage }} of login flows with MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) end with an authentication, %s or less of its own average of the day before. Its login page may be broken or changed.' % promql.percent(c.authnConversionDropFactor),
          ),
          alert(
            'EsmMediaTokensStopped',
            'critical',
            |||
              avg_over_time(esm:media_tokens_by_requestor:sum[1d] offset 1h) > %(usual)s # THRESHOLD: _config.mediaTokensUsual
              unless on (job, instance, account, report, media_company, requestor_id)
              esm:media_tokens_by_requestor:sum > 0
              unless on (job, instance, report)
              %(up)s == 0
            ||| % { usual: c.mediaTokensUsual, up: s('cmu_exporter_report_up') },
            'Requestor {{ $labels.requestor_id }} issues no media tokens any more.',
            'Requestor {{ $labels.requestor_id }} (report {{ $labels.report }}) issued media tokens the day before and none now, while the report is polled fine: nobody can start a stream there.',
          ),
          alert(
            'EsmReportStale',
            'warning',
            |||
              (time() - %(modified)s > %(minute)s # THRESHOLD: _config.esmStaleSeconds.minute
                and on (job, instance, account, report) %(minuteInfo)s)
              or
              (time() - %(modified)s > %(hour)s # THRESHOLD: _config.esmStaleSeconds.hour
                and on (job, instance, account, report) %(hourInfo)s)
              or
              (time() - %(modified)s > %(day)s # THRESHOLD: _config.esmStaleSeconds.day (day and coarser data)
                and on (job, instance, account, report) %(dayInfo)s)
            ||| % {
              modified: s('esm_report_last_modified_timestamp_seconds'),
              minute: c.esmStaleSeconds.minute,
              hour: c.esmStaleSeconds.hour,
              day: c.esmStaleSeconds.day,
              minuteInfo: s('esm_report_info', 'granularity="minute"'),
              hourInfo: s('esm_report_info', 'granularity="hour"'),
              dayInfo: s('esm_report_info', 'granularity=~"day|month|year|total"'),
            },
            'Adobe has not recomputed ESM report {{ $labels.report }} for too long.',
            "ESM report {{ $labels.report }} says (Last-Modified) it was computed {{ $value | humanizeDuration }} ago. The exporter polls fine, but Adobe's data is not moving: its values describe the past.",
          ),
        ],
      },
    ],
  },
}
