// The mixin's settings. Override them where you import the mixin:
//
//   (import 'cmu-exporter/mixin/mixin.libsonnet') + {
//     _config+:: { exporterSelector: 'job="cmu-exporter"', staleIntervals: 3 },
//   }
//
// The thresholds of concurrency, stream limits and the CMU and ESM ratios
// are not here: they live in the exporter's configuration (`thresholds:`,
// `stream_limits:`), which exports them as cmu_threshold and
// cmu_stream_limit, so a reload changes them without a rule edited. The
// numbers below are the ones the exporter exports none for.
{
  _config+:: {
    // PromQL matchers that pick the exporter's series out of everything the
    // Prometheus holds, e.g. 'job="cmu-exporter"' or 'namespace="adobe"'.
    // Empty: every series of the exporter's metric names. Rules, alerts and
    // the dashboards' variables read it.
    exporterSelector: '',

    // Where each alert's runbook_url points: %s is the alert's name in
    // lower case (the anchor of its section in docs/runbook.md).
    runbookURLPattern: 'https://github.com/cmu-exporter/cmu-exporter/blob/main/docs/runbook.md#%s',

    // How long each alert's condition must hold before it fires (`for:`);
    // null: it fires at the first evaluation that sees it.
    alertFor: {
      CmuExporterAbsent: '5m',
      CmuExporterCredentialsNeedPerson: null,
      CmuExporterTokenRenewalFailing: '15m',
      CmuExporterReportStale: '10m',
      CmuExporterPushLagging: '10m',
      CmuKilledSessionsSpike: '30m',
      CmuExporterShardMissing: '10m',
      CmuExporterReportTruncated: null,
      CmuExporterSeriesDropped: null,
      CmuExporterReloadRefused: null,
      CmuActiveSessionsHigh: null,
      CmuActiveUsersHigh: null,
      CmuUsersOverStreamLimit: null,
      CmuFailedAttemptsRatioHigh: '15m',
      EsmAuthzFailureRatioHigh: '10m',
      EsmAuthzLatencyHigh: '15m',
      EsmAuthnConversionDropping: '30m',
      EsmMediaTokensStopped: '30m',
      EsmReportStale: '15m',
    },

    // How far back the rules look for a report's newest value. A pushed
    // sample is stamped at the end of its bucket and reaches the store once
    // Adobe has computed it: minutes for a minute or hour report, hours for
    // a day report, up to a day for the level reports, so a plain read would
    // miss it. The rules read the newest sample within this range and only
    // while the report is fresh (cmu:report:stale). '' reads plain instant
    // values: cheaper on a Prometheus that only scrapes the exporter.
    reportLookback: '3d',

    // CmuExporterReportStale: a report is stale after this many of its
    // poll intervals without a success.
    staleIntervals: 2,
    // CmuExporterPushLagging: a store lags when its first missing bucket
    // has been complete for this many intervals plus the slack.
    pushLagIntervals: 2,
    pushLagSlackSeconds: 300,
    // CmuKilledSessionsSpike: at least this share of sessions killed, and
    // this many times the share of the day before.
    killedSessionsShare: 0.02,
    killedSessionsFactor: 3,
    // ESM ratio alerts: no alert on a bucket with fewer attempts (one
    // failure would be a large share).
    esmMinAttempts: 20,
    // EsmAuthnConversionDropping: conversion below this fraction of its
    // own average of the day before.
    authnConversionDropFactor: 0.5,
    // EsmMediaTokensStopped: a requestor that issued more than this many
    // media tokens per bucket on average the day before.
    mediaTokensUsual: 10,
    // EsmReportStale: Adobe's data (Last-Modified) is stale past this age,
    // by the report's granularity (day stands for day and coarser).
    esmStaleSeconds: { minute: 1800, hour: 3 * 3600, day: 36 * 3600 },

    // The dashboards.
    dashboardTags: ['cmu-exporter', 'adobe-pass'],
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-24h',
    dashboardTimezone: 'browser',
  },
}
