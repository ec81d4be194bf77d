//! What the landing page shows of a report, computed from its samples
//! beside the writers: users per level (the what-if charts) and each
//! MVPD's health (the ESM table).

use std::collections::BTreeMap;

use super::samples::Samples;
use super::snapshot::{Levels, MvpdHealth};
use crate::names::{LEVEL_LABEL, level_family, metric_family};
use crate::report::catalog::{self, LEVEL_DIMENSIONS, USERS_METRIC};

/// Users per level, summed over the other labels, when the samples hold a
/// level report's users.
pub fn levels(samples: &Samples<'_>) -> Option<Levels> {
    if !samples.api().profile().levels {
        return None;
    }
    LEVEL_DIMENSIONS.iter().find_map(|dimension| {
        let family = samples.family(&level_family(samples.api(), dimension, USERS_METRIC))?;
        let mut users = BTreeMap::new();
        family.for_each(|sample| {
            let level = sample
                .labels
                .get(LEVEL_LABEL)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(level) = level {
                *users.entry(level).or_insert(0.0) += sample.value;
            }
        });
        (!users.is_empty()).then(|| Levels {
            dimension: (*dimension).to_owned(),
            users,
        })
    })
}

/// Authorization and authentication totals per MVPD of an ESM report;
/// empty unless it has `mvpd` and `authz-attempts`.
pub fn mvpd_health(samples: &Samples<'_>) -> Vec<MvpdHealth> {
    let api = samples.api();
    if !api.profile().mvpd_health {
        return Vec::new();
    }
    let family = |metric: &str| samples.family(&metric_family(api, metric).name);
    let Some(attempts) = family("authz-attempts") else {
        return Vec::new();
    };
    let mut per_mvpd: BTreeMap<String, MvpdHealth> = BTreeMap::new();
    let authn = family("authn-attempts").is_some();
    attempts.for_each(|sample| {
        let Some(mvpd) = sample.labels.get("mvpd") else {
            return;
        };
        let mvpd = String::from_utf8_lossy(mvpd).into_owned();
        let health = per_mvpd.entry(mvpd.clone()).or_insert_with(|| MvpdHealth {
            mvpd,
            authn_attempts: authn.then_some(0.0),
            authn_successful: authn.then_some(0.0),
            ..MvpdHealth::default()
        });
        health.authz_attempts += sample.value;
    });
    type Field = fn(&mut MvpdHealth) -> Option<&mut f64>;
    let fields: [(&str, Field); 5] = [
        ("authz-successful", |h| Some(&mut h.authz_successful)),
        ("authz-failed", |h| Some(&mut h.authz_failed)),
        (catalog::ESM_LATENCY_METRIC, |h| {
            Some(&mut h.authz_latency_seconds)
        }),
        ("authn-attempts", |h| h.authn_attempts.as_mut()),
        ("authn-successful", |h| h.authn_successful.as_mut()),
    ];
    for (metric, field) in fields {
        let Some(family) = family(metric) else {
            continue;
        };
        family.for_each(|sample| {
            let health = sample
                .labels
                .get("mvpd")
                .and_then(|m| per_mvpd.get_mut(String::from_utf8_lossy(m).as_ref()));
            if let Some(slot) = health.and_then(field) {
                *slot += sample.value; // Latency is in seconds already.
            }
        });
    }
    per_mvpd.into_values().collect()
}
