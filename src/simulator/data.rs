//! Deterministic synthetic CMU data.
//!
//! A value depends only on the seed, the dimension values and the time
//! bucket, so a complete bucket reads the same whenever it is asked for,
//! while the bucket still filling grows with the clock. The numbers are
//! plausible: sessions >= users, a daily rhythm, big and small MVPDs, and
//! fewer users at each higher concurrency level.

use jiff::civil::DateTime;

use crate::report::catalog::{DURATION_METRICS, GENERAL_METRICS, LEVEL_DIMENSIONS, USERS_METRIC};
use crate::report::{Granularity, ReportPath};

/// The values each dimension takes.
#[derive(Debug, Clone)]
pub struct Universe {
    tenants: Vec<String>,
    mvpds: Vec<String>,
    platforms: Vec<String>,
    /// (application-id, application name)
    applications: Vec<(String, String)>,
    channels: Vec<String>,
}

/// Undocumented metric Adobe served in one real response.
pub const UNDOCUMENTED_METRIC: &str = "bstreams-30";

impl Universe {
    /// The default universe; `scale` > 1 adds MVPDs and applications for large reports.
    pub fn new(scale: usize) -> Self {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut mvpds = strings(&[
            "Comcast_SSO",
            "DTV",
            "Charter_Direct",
            "Cox",
            "Verizon",
            "ATT",
        ]);
        let mut applications: Vec<(String, String)> = [
            ("a5c3f2d1-0001", "ACME Now iOS"),
            ("a5c3f2d1-0002", "ACME Now Android"),
            ("a5c3f2d1-0003", "ACME Now Web"),
            ("a5c3f2d1-0004", "ACME Now TV"),
        ]
        .iter()
        .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
        .collect();
        for i in 1..scale.max(1) {
            mvpds.push(format!("Regional_MVPD_{i:03}"));
            applications.push((format!("b7e1-{i:04}"), format!("Partner App {i}")));
        }
        Self {
            tenants: strings(&["ACME", "ACME-Kids"]),
            mvpds,
            platforms: strings(&["iOS", "Android", "Web", "Roku", "tvOS", "FireTV"]),
            applications,
            channels: strings(&["ACME News", "ACME Sports", "ACME Movies", "Unknown"]),
        }
    }

    /// The values of a non-time dimension, or `None` for an unknown one.
    pub fn values(&self, dimension: &str) -> Option<Vec<String>> {
        let levels = |n: usize| (1..=n).map(|l| l.to_string()).collect();
        Some(match dimension {
            "tenant" => self.tenants.clone(),
            "mvpd" => self.mvpds.clone(),
            "platform" => self.platforms.clone(),
            "channel" => self.channels.clone(),
            "application-id" => self.applications.iter().map(|(id, _)| id.clone()).collect(),
            "application" => self
                .applications
                .iter()
                .map(|(_, name)| name.clone())
                .collect(),
            "concurrency-level" => levels(6),
            "activity-level" => levels(8),
            "occurrences" => levels(3),
            _ => return None,
        })
    }

    /// The application name that goes with an application id.
    pub fn application_name(&self, id: &str) -> Option<&str> {
        self.applications
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.as_str())
    }
}

/// Which metrics a path serves.
pub fn metrics_for(path: &ReportPath) -> Vec<&'static str> {
    if LEVEL_DIMENSIONS.iter().any(|d| path.contains(d)) {
        return vec![USERS_METRIC];
    }
    let mut metrics: Vec<&'static str> = GENERAL_METRICS.iter().map(|m| m.name).collect();
    let first = path.segments().first().map(String::as_str);
    if matches!(first, Some("tenant" | "mvpd")) {
        metrics.extend(DURATION_METRICS.iter().map(|(n, _)| *n));
    }
    if first == Some("tenant") && path.granularity() >= Granularity::Hour {
        metrics.push(UNDOCUMENTED_METRIC);
    }
    metrics
}

/// 64-bit FNV-1a, mixed: stable across runs and platforms.
pub fn hash(seed: u64, parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A number in [0, 1) drawn from `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a combination of dimension values has any activity (80% do).
pub fn exists(seed: u64, dims: &[&str]) -> bool {
    dims.len() < 2 || hash(seed ^ 0x5eed, dims) % 10 < 8
}

/// Share of activity that a dimension value carries (big MVPDs, popular platforms).
fn weight(dimension: &str, value: &str, seed: u64) -> f64 {
    match dimension {
        "tenant" if value == "ACME" => 0.75,
        "tenant" => 0.25,
        "year" | "month" | "day" | "hour" | "minute" => 1.0,
        "concurrency-level" | "activity-level" | "occurrences" => 1.0,
        _ => 0.3 + unit(hash(seed, &[dimension, value])),
    }
}

/// What every synthetic value of a row shares, for CMU and ESM alike: a
/// per-metric noise, the share of activity of its dimension values, the
/// bucket's length in hours and a daily rhythm.
pub(crate) struct RowBasis {
    key: Vec<String>,
    seed: u64,
    /// Product of the weights of the dimension values.
    pub share: f64,
    pub hours: f64,
    pub rhythm: f64,
}

impl RowBasis {
    /// The basis of a row of `dims` in the bucket starting at `bucket_start`;
    /// dimensions for which `flat` holds carry no weight.
    pub fn new(
        seed: u64,
        dims: &[(&str, &str)],
        bucket_start: DateTime,
        granularity: Granularity,
        flat: impl Fn(&str) -> bool,
    ) -> Self {
        let mut key: Vec<String> = dims.iter().map(|(_, v)| (*v).to_owned()).collect();
        key.push(bucket_start.to_string());
        let share: f64 = dims
            .iter()
            .filter(|(d, _)| !flat(d))
            .map(|(d, v)| weight(d, v, seed))
            .product();
        let hours: f64 = match granularity {
            Granularity::Minute => 1.0 / 60.0,
            Granularity::Hour => 1.0,
            Granularity::Day => 24.0,
            Granularity::Month => 24.0 * 30.0,
            Granularity::Year | Granularity::Total => 24.0 * 365.0,
        };
        // A daily rhythm for hour and minute buckets: quiet at 5am, busy at 9pm.
        let rhythm = if granularity >= Granularity::Hour {
            let h = f64::from(bucket_start.hour()) + f64::from(bucket_start.minute()) / 60.0;
            0.6 + 0.4 * ((h - 15.0) / 24.0 * std::f64::consts::TAU).sin()
        } else {
            1.0
        };
        Self {
            key,
            seed,
            share,
            hours,
            rhythm,
        }
    }

    /// A factor in [0.85, 1.15) that depends on the row, the bucket and `salt`.
    pub fn noise(&self, salt: &str) -> f64 {
        let mut parts: Vec<&str> = self.key.iter().map(String::as_str).collect();
        parts.push(salt);
        0.85 + 0.3 * unit(hash(self.seed, &parts))
    }
}

/// Values of one row: `metric -> value`, in the order of `metrics`.
pub fn row_values(
    seed: u64,
    dims: &[(&str, &str)],
    bucket_start: DateTime,
    granularity: Granularity,
    filled: f64,
    metrics: &[&str],
) -> Vec<u64> {
    let basis = RowBasis::new(seed, dims, bucket_start, granularity, |d| {
        LEVEL_DIMENSIONS.contains(&d)
    });
    let noise = |salt: &str| basis.noise(salt);
    let (share, hours, rhythm) = (basis.share, basis.hours, basis.rhythm);
    // Distinct users grow slower than the length of the bucket.
    let users = 4000.0 * share * hours.powf(0.7) * rhythm * noise("users") * filled.powf(0.7);
    let sessions = users * (1.2 + 0.3 * noise("sessions")) * filled.powf(0.3);
    let started = sessions * 0.95;
    let level = dims.iter().find(|(d, _)| LEVEL_DIMENSIONS.contains(d));
    metrics
        .iter()
        .map(|m| {
            let v = match *m {
                USERS_METRIC => {
                    let level: f64 = level.and_then(|(_, v)| v.parse().ok()).unwrap_or(1.0);
                    // Each level up holds roughly a third of the users of the one below.
                    users * 0.62 * (0.36f64).powf(level - 1.0)
                }
                "active-users" => users,
                "active-sessions" => sessions,
                "started-sessions" => started,
                "completed-sessions" => started * 0.9,
                "failed-attempts" => users * 0.03 * noise("failed"),
                "dismissed-sessions" => users * 0.005 * noise("dismissed"),
                "killed-sessions" => users * 0.01 * noise("killed"),
                UNDOCUMENTED_METRIC => users * 0.02,
                other => match DURATION_METRICS.iter().position(|(n, _)| *n == other) {
                    Some(i) => {
                        const SHARE: [f64; 12] = [
                            0.30, 0.20, 0.18, 0.14, 0.08, 0.04, 0.02, 0.015, 0.01, 0.008, 0.005,
                            0.002,
                        ];
                        started * SHARE[i]
                    }
                    None => 0.0,
                },
            };
            v.round() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(dims: &[(&str, &str)], filled: f64) -> Vec<u64> {
        let start: DateTime = "2026-11-22T20:00:00".parse().unwrap();
        let metrics = [
            "active-users",
            "active-sessions",
            "completed-sessions",
            "started-sessions",
        ];
        row_values(7, dims, start, Granularity::Hour, filled, &metrics)
    }

    #[test]
    fn values_are_deterministic_and_plausible() {
        let dims = [("tenant", "ACME"), ("mvpd", "DTV")];
        let a = values(&dims, 1.0);
        assert_eq!(a, values(&dims, 1.0));
        assert!(a[1] >= a[0], "sessions {} < users {}", a[1], a[0]);
        assert!(a[3] >= a[2]);
        let partial = values(&dims, 0.5);
        assert!(partial[0] < a[0]);
    }

    #[test]
    fn fewer_users_at_higher_levels() {
        let start: DateTime = "2026-11-01T00:00:00".parse().unwrap();
        let at = |l: &str| {
            row_values(
                1,
                &[("concurrency-level", l)],
                start,
                Granularity::Month,
                1.0,
                &["users"],
            )[0]
        };
        assert!(at("1") > at("2") && at("2") > at("3") && at("5") > at("6"));
    }
}
