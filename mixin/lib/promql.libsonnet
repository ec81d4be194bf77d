// Small helpers the rules, alerts and dashboards share.
{
  // `metric` narrowed by `selector` (the mixin's exporterSelector) and by
  // `matchers`, each a string of PromQL matchers that may be empty.
  series(selector, metric, matchers=''):: 
    local all = std.filter(function(m) m != '', [selector, matchers]);
    if all == [] then metric else metric + '{' + std.join(', ', all) + '}',

  // A family of report data as the rules read it. Pushed series are
  // stamped at the end of their bucket and reach a store when Adobe has
  // computed it, often past PromQL's 5-minute lookback: with
  // `config.reportLookback` set, the newest sample within it is read, unless
  // the report is stale (its newest complete bucket older than its max_age,
  // recorded as cmu:report:stale). Scraped series read the same, so the rules
  // give one answer on a store that scrapes and one fed only by the push.
  report(config, metric, matchers='')::
    local sel = $.series(config.exporterSelector, metric, matchers);
    if config.reportLookback == '' then sel
    else '(last_over_time(%s[%s]) unless on (job, instance, report) cmu:report:stale)' % [sel, config.reportLookback],

  // An alert's runbook link: the pattern with the anchor of its section.
  runbook(pattern, alert):: pattern % std.asciiLower(alert),

  // `{for: ...}` when the alert has a duration, nothing when it has none.
  forOf(alertFor, alert)::
    local d = std.get(alertFor, alert, null);
    if d == null then {} else { 'for': d },

  // A template of an alert's text that reads `record` of the alert's
  // instance (and of `keys`, its labels) back from Prometheus, shown
  // through `shown`.
  queryValue(record, severity, keys, shown='humanize')::
    local matchers = ['severity=\\"' + severity + '\\"', 'instance=\\"%s\\"'] + ['%s=\\"%%s\\"' % k for k in keys];
    local args = ['$labels.instance'] + ['$labels.' + k for k in keys];
    '{{ with printf "' + record + '{' + std.join(',', matchers) + '}" ' + std.join(' ', args)
    + ' | query }}{{ . | first | value | ' + shown + ' }}{{ end }}',

  // A template that shows the start of the alert's report bucket (`api`: cmu or esm).
  bucketOf(api)::
    '{{ with printf "' + api + '_report_bucket_start_timestamp_seconds{instance=\\"%s\\",report=\\"%s\\"}" '
    + '$labels.instance $labels.report | query }}{{ . | first | value | humanizeTimestamp }}{{ end }}',

  // A `for:` duration as a text says it: '15m' is '15 minutes' (a
  // duration of several units, '1h30m', stays as it is).
  spoken(duration)::
    local unit = duration[std.length(duration) - 1];
    local number = std.substr(duration, 0, std.length(duration) - 1);
    local words = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };
    local digits = std.length(number) > 0 && std.all([std.member('0123456789', ch) for ch in std.stringChars(number)]);
    if digits && std.objectHas(words, unit)
    then number + ' ' + words[unit] + (if number == '1' then '' else 's')
    else duration,

  // A number of seconds as a text says it: 1800 is '30 min', 10800 '3 h'.
  seconds(n)::
    if n % 3600 == 0 then '%d h' % (n / 3600)
    else if n % 60 == 0 then '%d min' % (n / 60)
    else '%d s' % n,

  // A fraction as a percentage: 0.5 is '50%'.
  percent(f):: std.toString(std.round(f * 1000) / 10) + '%',

  // An alert of the mixin: its labels, texts and runbook link, and the
  // `for:` of `config.alertFor`. `section` names its runbook section and its
  // `for:` when alerts share them (CmuActiveUsersHigh and its ForMvpd form).
  alert(config, name, severity, expr, summary, description, section=name):: {
    alert: name,
    expr: expr,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: $.runbook(config.runbookURLPattern, section),
    },
  } + $.forOf(config.alertFor, section),
}
