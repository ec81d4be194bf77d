#!/usr/bin/env python3
"""Writes the threshold groups of cmu-exporter.rules.yml (between the
`# BEGIN thresholds` and `# END thresholds` lines): the recording rules that
resolve each configured threshold (`cmu_threshold`, `cmu_stream_limit`) for
every tenant or MVPD the data shows, and the alerts that compare with them.

The rules are many and alike (a family, a severity, a level each), so they
are written here once. Run `python3 deploy/prometheus/thresholds.py` after an
edit; `--check` (run by the test suite) fails when the file differs.

How a threshold is resolved: the exporter exports each configured threshold
with the labels of its match and a `match` label naming them (`""`,
`"tenant"`, `"mvpd"`, `"mvpd,tenant"`). For each tenant (or tenant and MVPD)
the data shows, the most specific threshold in force wins: its own, else the
one of its MVPD (MVPD level), else the unnarrowed default. The comparison is
`>` on the family summed to that level.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "cmu-exporter.rules.yml")
BEGIN, END = "  # BEGIN thresholds\n", "  # END thresholds\n"
RUNBOOK = "https://github.com/cmu-exporter/cmu-exporter/blob/main/docs/runbook.md"
SEVERITIES = ("warning", "critical")
J = "job, instance"


def sq(text):
    """A YAML single-quoted scalar: the templates' double quotes stay as they are."""
    return "'" + text.replace("'", "''") + "'"


def threshold_of(family, severity, match):
    return f'cmu_threshold{{family="{family}", severity="{severity}", match="{match}"}}'


def resolved(record, family, severity, keys, data, fallback_match, fallback_keys):
    """A recording rule: the threshold of `family` for each group `keys` of
    the data: its own (match = keys), else the one matching only
    `fallback_keys` (match = fallback_match)."""
    own = ",".join(sorted(keys))
    by = ", ".join(keys)
    on_fallback = ", ".join([J] + fallback_keys)
    return f"""      - record: {record}
        labels:
          severity: {severity}
        expr: |
          max by ({J}, {by}, severity) ({threshold_of(family, severity, own)})
          or on ({J}, {by})
          (
            group by ({J}, {by}) ({data})
            * on ({on_fallback}) group_left (severity)
            max by ({on_fallback}, severity) ({threshold_of(family, severity, fallback_match)})
          )
"""


def query_value(record, severity, keys, shown="humanize"):
    """A template that reads the resolved threshold back from Prometheus."""
    selector = ",".join([f'severity=\\"{severity}\\"', 'instance=\\"%s\\"'] + [f'{k}=\\"%s\\"' for k in keys])
    args = " ".join(["$labels.instance"] + [f"$labels.{k}" for k in keys])
    return f'{{{{ with printf "{record}{{{selector}}}" {args} | query }}}}{{{{ . | first | value | {shown} }}}}{{{{ end }}}}'


def bucket_of(api):
    return ('{{ with printf "' + api + '_report_bucket_start_timestamp_seconds{instance=\\"%s\\",report=\\"%s\\"}" '
            '$labels.instance $labels.report | query }}{{ . | first | value | humanizeTimestamp }}{{ end }}')


def concurrency():
    rules, alerts = [], []
    for family, what in (("cmu_active_sessions", "active sessions"), ("cmu_active_users", "active users")):
        stem = family.removeprefix("cmu_")
        name = "".join(w.capitalize() for w in stem.split("_"))
        for level, keys, fallback, fallback_keys, suffix in (
            ("tenant", ["tenant"], "", [], ""),
            ("tenant_mvpd", ["tenant", "mvpd"], "mvpd", ["mvpd"], "ForMvpd"),
        ):
            record = f"cmu:{stem}_threshold:{level}"
            for severity in SEVERITIES:
                rules.append(resolved(record, family, severity, keys, family, fallback, fallback_keys))
                by = ", ".join(keys)
                who = "tenant {{ $labels.tenant }}" + (", MVPD {{ $labels.mvpd }}" if "mvpd" in keys else "")
                alerts.append(f"""      - alert: Cmu{name}High{suffix}
        expr: |
          sum by ({J}, report, {by}) ({family})
          > on ({J}, {by}) group_left
          {record}{{severity="{severity}"}}
        labels:
          severity: {severity}
        annotations:
          summary: {sq(f"{what.capitalize()} of {who} above the {severity} threshold.")}
          description: {sq(f"{{{{ $value | humanize }}}} {what} for {who} (report {{{{ $labels.report }}}}, bucket of {bucket_of('cmu')}), above the {severity} threshold of {query_value(record, severity, keys)} set in the exporter's configuration (thresholds: {family}).")}
          runbook_url: "{RUNBOOK}#cmu{name.lower()}high"
""")
    return rules, alerts


def stream_limit():
    rules = ["""      # Each tenant's stream limit (its own, else the default), with the
      # limit also as a label so the what-if series of that limit can be picked.
      - record: cmu:stream_limit:tenant
        expr: |
          max by (job, instance, tenant, limit) (cmu_stream_limit{tenant!=""})
          or on (job, instance, tenant)
          (
            group by (job, instance, tenant) (cmu_activity_level_users or cmu_concurrency_level_users)
            * on (job, instance) group_left (limit)
            max by (job, instance, limit) (cmu_stream_limit{tenant=""})
          )
      # Users who tried more streams than their tenant's limit (activity
      # levels count denied attempts: under a limit of N hardly anyone opens
      # more than N, but many may try).
      - record: cmu:activity_users_over_stream_limit:count
        expr: |
          cmu:activity_users_over_limit:count
          * on (job, instance, tenant, limit) group_left
          group by (job, instance, tenant, limit) (cmu:stream_limit:tenant)
      - record: cmu:activity_users_over_stream_limit:share
        expr: |
          cmu:activity_users_over_limit:share
          * on (job, instance, tenant, limit) group_left
          group by (job, instance, tenant, limit) (cmu:stream_limit:tenant)
"""]
    alerts = []
    family = "cmu:activity_users_over_limit:share"
    record = "cmu:activity_users_over_stream_limit_threshold:tenant"
    for severity in SEVERITIES:
        rules.append(resolved(record, family, severity, ["tenant"], "cmu:activity_users_over_stream_limit:share", "", []))
        count = ('{{ with printf "cmu:activity_users_over_stream_limit:count{instance=\\"%s\\",report=\\"%s\\",tenant=\\"%s\\",mvpd=\\"%s\\"}" '
                 '$labels.instance $labels.report $labels.tenant $labels.mvpd | query }}{{ . | first | value | humanize }}{{ end }}')
        alerts.append(f"""      - alert: CmuUsersOverStreamLimit
        expr: |
          cmu:activity_users_over_stream_limit:share
          > on ({J}, tenant) group_left
          {record}{{severity="{severity}"}}
        labels:
          severity: {severity}
        annotations:
          summary: {sq("Users of tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} try more streams than their limit of {{ $labels.limit }}.")}
          description: {sq(f"{count} users ({{{{ $value | humanizePercentage }}}}) of tenant {{{{ $labels.tenant }}}}, MVPD {{{{ $labels.mvpd }}}} tried more than {{{{ $labels.limit }}}} streams at once (report {{{{ $labels.report }}}}, activity levels, bucket of {bucket_of('cmu')}), above the {severity} share of {query_value(record, severity, ['tenant'], 'humanizePercentage')}. Check for account sharing, or whether the policy's limit fits its users.")}
          runbook_url: "{RUNBOOK}#cmuusersoverstreamlimit"
""")
    return rules, alerts


def ratios():
    rules, alerts = [], []
    cases = (
        # family, level keys, data (the ratio), alert name, guard, text
        ("cmu:failed_attempts:ratio", ["tenant"], "cmu:failed_attempts:ratio", "CmuFailedAttemptsRatioHigh", None,
         "for: 15m\n", "{{ $value | humanizePercentage }} of session initialisations for tenant {{ $labels.tenant }}, MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) were denied by Concurrency Monitoring, above the SEVERITY threshold of THRESHOLD. Users are hitting limits, or a policy or integration is broken.",
         "Session initialisations of {{ $labels.tenant }} {{ $labels.mvpd }} denied above the SEVERITY threshold."),
        ("esm:authz_failure:ratio", ["mvpd"], "esm:authz_failure:ratio", "EsmAuthzFailureRatioHigh", "esm:authz_attempts:sum >= 20 # THRESHOLD: at least 20 attempts in the bucket",
         "for: 10m\n", "{{ $value | humanizePercentage }} of authorization attempts with MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) failed, above the SEVERITY threshold of THRESHOLD. Its subscribers cannot play: check the MVPD's status, then tell Adobe and the MVPD.",
         "MVPD {{ $labels.mvpd }} denies authorizations above the SEVERITY threshold."),
        ("esm:authz_latency_seconds:average", ["mvpd"], "esm:authz_latency_seconds:average", "EsmAuthzLatencyHigh", "esm:authz_attempts:sum >= 20 # THRESHOLD: at least 20 attempts in the bucket",
         "for: 15m\n", "Authorizations with MVPD {{ $labels.mvpd }} (report {{ $labels.report }}) take {{ $value | humanizeDuration }} on average on the MVPD's endpoint, above the SEVERITY threshold of THRESHOLD. Playback starts slowly, and timeouts turn into failures next.",
         "MVPD {{ $labels.mvpd }} is slow to authorize, above the SEVERITY threshold."),
    )
    for family, keys, data, name, guard, for_, description, summary in cases:
        shown = "humanizeDuration" if "latency" in family else "humanizePercentage"
        stem = family.split(":")[1]
        level = "_".join(keys)
        record = f"{family.split(':')[0]}:{stem}_threshold:{level}"
        by = ", ".join(keys)
        esm = family.startswith("esm:")
        ident = f"{J}, account, report, media_company, mvpd" if esm else f"{J}, report, tenant, mvpd"
        for severity in SEVERITIES:
            rules.append(resolved(record, family, severity, keys, data, "", []))
            guarded = f"\n          and on ({ident})\n          {guard}" if guard else ""
            alerts.append(f"""      - alert: {name}
        expr: |
          {data}
          > on ({J}, {by}) group_left
          {record}{{severity="{severity}"}}{guarded}
        {for_}        labels:
          severity: {severity}
        annotations:
          summary: {sq(summary.replace('SEVERITY', severity))}
          description: {sq(description.replace('SEVERITY', severity).replace('THRESHOLD', query_value(record, severity, keys, shown)))}
          runbook_url: "{RUNBOOK}#{name.lower()}"
""")
    return rules, alerts


def groups():
    c_rules, c_alerts = concurrency()
    s_rules, s_alerts = stream_limit()
    r_rules, r_alerts = ratios()
    return (BEGIN
            + "  # Generated by deploy/prometheus/thresholds.py: edit it, not this.\n"
            + "  - name: cmu-exporter.thresholds\n    rules:\n"
            + "".join(c_rules + s_rules + r_rules)
            + "  - name: cmu-exporter.threshold-alerts\n    rules:\n"
            + "".join(c_alerts + s_alerts + r_alerts)
            + END)


def main():
    with open(RULES) as f:
        text = f.read()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + groups() + text[end:]
    if "--check" in sys.argv:
        if new != text:
            sys.exit("deploy/prometheus/cmu-exporter.rules.yml: the threshold groups differ from "
                     "deploy/prometheus/thresholds.py: run `python3 deploy/prometheus/thresholds.py`")
        return
    with open(RULES, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
