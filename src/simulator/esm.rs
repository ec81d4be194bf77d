//! The simulated Entitlement Service Monitoring API (ESM reference): the
//! programmer tree rooted at `media-company` as the live API is, with the
//! documented `year/...` tree beside it, metric sets that change with the
//! path, Pacific-time buckets, `Last-Modified`, undocumented names
//! (`decision-type` and the `decision-*` metrics, `api`), and MVPD outages.

use std::sync::Mutex;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::Shared;
use super::data::RowBasis;
use super::wolap::Dataset;
use crate::report::ReportApi;
use crate::report::catalog::ESM_UNIQUE_METRICS;
use crate::report::tree::Tree;
use crate::report::{Granularity, ReportPath};

/// An MVPD outage: its authorizations fail or slow down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outage {
    /// Share of authorization attempts the MVPD denies (0..=1).
    pub failure_ratio: f64,
    /// Multiplier of the time spent on the MVPD's endpoint (1: normal).
    pub latency_factor: f64,
}

/// ESM as the simulator serves it.
#[derive(Debug)]
pub(crate) struct Esm {
    tree: Tree,
    time_zone: TimeZone,
    mvpds: Vec<String>,
    media_companies: Vec<String>,
    outages: Mutex<Vec<(String, Outage)>>,
}

/// The 5 authorization metrics.
const AUTHZ: [&str; 5] = [
    "authz-attempts",
    "authz-successful",
    "authz-failed",
    "authz-rejected",
    "authz-latency",
];
/// The authentication metrics of plain branches.
const AUTHN: [&str; 3] = ["authn-attempts", "authn-pending", "authn-successful"];
/// The Clientless metrics of plain branches.
const CLIENTLESS: [&str; 2] = ["clientless-failures", "clientless-tokens"];
/// Under `eap`, the only place `authn-failed` appears.
const EAP: [&str; 4] = [
    "authn-attempts",
    "authn-failed",
    "authn-pending",
    "authn-successful",
];
/// Under `decision-type`: served live, documented nowhere.
const DECISION: [&str; 4] = [
    "decision-attempts",
    "decision-failed",
    "decision-media-tokens",
    "decision-successful",
];

impl Esm {
    pub fn new(tenants: Vec<String>, mvpds: Vec<String>, time_zone: TimeZone) -> Self {
        Self {
            tree: Tree::documented(ReportApi::Esm).clone(),
            time_zone,
            mvpds,
            media_companies: tenants,
            outages: Mutex::new(Vec::new()),
        }
    }

    /// Starts (`Some`) or ends (`None`) an outage of `mvpd`.
    pub fn set_outage(&self, mvpd: &str, outage: Option<Outage>) {
        let mut outages = self.outages.lock().unwrap_or_else(|e| e.into_inner());
        outages.retain(|(m, _)| m != mvpd);
        if let Some(outage) = outage {
            outages.push((mvpd.to_owned(), outage));
        }
    }

    fn outage(&self, mvpd: Option<&str>) -> Option<Outage> {
        let mvpd = mvpd?;
        let outages = self.outages.lock().unwrap_or_else(|e| e.into_inner());
        outages.iter().find(|(m, _)| m == mvpd).map(|(_, o)| *o)
    }

    /// The proxy an MVPD is reached through.
    fn proxy_of(mvpd: &str) -> &'static str {
        if matches!(mvpd, "Cox" | "Verizon") || mvpd.starts_with("Regional_") {
            "Synacor"
        } else {
            "Direct"
        }
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

impl Dataset for Esm {
    fn prefix(&self) -> &'static str {
        "/esm/v3"
    }

    fn strip_prefix<'a>(&self, uri_path: &'a str) -> Option<&'a str> {
        uri_path.strip_prefix("/esm/v3")
    }

    fn alias(&self, _: &str) -> Option<ReportPath> {
        None
    }

    fn tree(&self) -> &Tree {
        &self.tree
    }

    fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    fn scope_dimension(&self) -> &'static str {
        "media-company"
    }

    fn values(&self, dimension: &str) -> Option<Vec<String>> {
        Some(match dimension {
            "media-company" => self.media_companies.clone(),
            "mvpd" => self.mvpds.clone(),
            "proxy" => strings(&["Direct", "Synacor"]),
            "requestor-id" => strings(&["ACME_NOW", "ACME_NEWS", "ACMEKIDS"]),
            "dc" => strings(&["ue1", "uw2"]),
            "platform" => strings(&["iOS", "Android", "Web", "Roku", "tvOS", "FireTV"]),
            "nsdk" => strings(&["iOS", "android", "js", "non-sdk", "tvOS", "fireTV"]),
            "nsdk-version" => strings(&["3.7.1", "3.6.0"]),
            "eap" => strings(&["N/A", "Apple"]),
            "cdt" => strings(&["N/A", "Unknown", "roku"]),
            "platform-version" => strings(&["1.0.4", "2.1.0"]),
            "sso-type" => strings(&["platform", "passive", "adobe"]),
            "channel" => strings(&["ACME News", "ACME Sports", "ACME Movies"]),
            "application-name" => strings(&["ACME Now"]),
            "application-version" => strings(&["5.2.0", "5.3.1"]),
            "customer-app" => strings(&["acme-now"]),
            "content-category" => strings(&["news", "sports", "movies"]),
            "device" => strings(&["mobile", "desktop", "tv"]),
            "os-family" => strings(&["iOS", "Android", "Windows"]),
            "browser-family" => strings(&["Chrome", "Safari"]),
            "browser-version" => strings(&["131", "18"]),
            "api" => strings(&["SDK", "REST V1", "REST V2"]),
            "event" => strings(&["authorize"]),
            "reason" => strings(&["None", "User not authorized", "MVPD error"]),
            "decision-type" => strings(&["authorize", "preauthorize"]),
            _ => return None,
        })
    }

    fn consistent(&self, dims: &[(&str, &str)]) -> bool {
        let find = |name: &str| dims.iter().find(|(d, _)| *d == name).map(|(_, v)| *v);
        let kids = |v: &str| v.contains("KIDS") || v.contains("Kids");
        let nsdk_of = |platform: &str| match platform {
            "iOS" => "iOS",
            "Android" => "android",
            "Web" => "js",
            "tvOS" => "tvOS",
            "FireTV" => "fireTV",
            _ => "non-sdk",
        };
        let pairs_fit = [
            match (find("mvpd"), find("proxy")) {
                (Some(m), Some(p)) => Self::proxy_of(m) == p,
                _ => true,
            },
            match (find("media-company"), find("requestor-id")) {
                (Some(c), Some(r)) => kids(c) == kids(r),
                _ => true,
            },
            match (find("platform"), find("nsdk")) {
                (Some(p), Some(n)) => nsdk_of(p) == n,
                _ => true,
            },
            // Apple's single sign-on serves Apple's platforms only.
            match (find("eap"), find("platform")) {
                (Some("Apple"), Some(p)) => matches!(p, "iOS" | "tvOS"),
                _ => true,
            },
        ];
        pairs_fit.iter().all(|fits| *fits)
    }

    fn dense(&self, dimension: &str) -> bool {
        // Every reason of an MVPD's events is reported, zero or not.
        dimension == "reason"
    }

    /// The metric set of a path, as the live crawl saw it (ESM reference §4.4).
    fn metrics_for(&self, path: &ReportPath) -> Vec<&'static str> {
        let has = |d: &str| path.contains(d);
        let minute = path.granularity() == Granularity::Minute;
        let mut metrics: Vec<&'static str> = if has("event") {
            return vec!["count"];
        } else if has("decision-type") {
            return DECISION.to_vec();
        } else if has("eap") {
            return EAP.to_vec();
        } else if has("channel") || has("sso-type") || has("content-category") {
            if minute && !has("platform") {
                AUTHZ.to_vec()
            } else {
                [&AUTHZ[..], &["media-tokens"]].concat()
            }
        } else if minute && !has("platform") {
            [&AUTHN[..], &AUTHZ[..]].concat()
        } else {
            [&AUTHN[..], &AUTHZ[..], &CLIENTLESS[..], &["media-tokens"]].concat()
        };
        if path.segments().last().is_some_and(|s| s == "dc") {
            metrics.extend(ESM_UNIQUE_METRICS);
        }
        metrics
    }

    fn row_values(
        &self,
        _: &Shared,
        seed: u64,
        dims: &[(&str, &str)],
        bucket: DateTime,
        granularity: Granularity,
        filled: f64,
        metrics: &[&str],
    ) -> Vec<u64> {
        let basis = RowBasis::new(seed, dims, bucket, granularity, |d| self.dense(d));
        let noise = |salt: &str| basis.noise(salt);
        let outage = self.outage(dims.iter().find(|(d, _)| *d == "mvpd").map(|(_, v)| *v));
        let activity = basis.share * basis.hours * basis.rhythm * filled;
        let authz = 900.0 * activity * noise("authz");
        let failed_ratio = outage.map_or(0.015 * noise("failed"), |o| o.failure_ratio);
        let authz_failed = authz * failed_ratio;
        let authz_rejected = authz * 0.001;
        let authz_successful = (authz - authz_failed - authz_rejected).max(0.0);
        let latency_ms = 180.0 * noise("latency") * outage.map_or(1.0, |o| o.latency_factor);
        let authn = 60.0 * activity * noise("authn");
        let unique_accounts = 0.35 * authz.powf(0.95);
        let reason = dims.iter().find(|(d, _)| *d == "reason").map(|(_, v)| *v);
        metrics
            .iter()
            .map(|m| {
                let v = match *m {
                    "authz-attempts" => authz,
                    "authz-successful" => authz_successful,
                    "authz-failed" => authz_failed,
                    "authz-rejected" => authz_rejected,
                    "authz-latency" => authz * latency_ms,
                    "media-tokens" => authz_successful * 1.2,
                    "authn-attempts" => authn,
                    "authn-pending" => authn * 0.85,
                    "authn-successful" => authn * 0.8 * noise("authn-ok"),
                    "authn-failed" => authn * 0.03,
                    "clientless-tokens" => authz * 0.08,
                    "clientless-failures" => authz * 0.002,
                    "unique-accounts" => unique_accounts,
                    "unique-sessions" => unique_accounts * 1.4,
                    "count" => match reason {
                        Some("None") | None => authz_successful,
                        Some("MVPD error") => authz_failed * 0.7,
                        Some(_) => authz_failed * 0.3,
                    },
                    "decision-attempts" => authz * 0.2,
                    "decision-successful" => authz_successful * 0.2,
                    "decision-failed" => authz_failed * 0.2,
                    "decision-media-tokens" => authz_successful * 0.22,
                    _ => 0.0,
                };
                v.round() as u64
            })
            .collect()
    }

    /// Its answers hold data as of their `Last-Modified`; without one (minute
    /// data), as of now: computed in real time.
    fn computed(
        &self,
        _: &super::Shared,
        path: &ReportPath,
        now: Timestamp,
    ) -> (jiff::civil::DateTime, Option<Timestamp>) {
        let last_modified = Self::last_modified(path, now);
        let as_of = last_modified.unwrap_or(now);
        (
            as_of.to_zoned(self.time_zone.clone()).datetime(),
            last_modified,
        )
    }
}

impl Esm {
    /// Minute data is computed in real time (no header); coarser data is
    /// recomputed every 5 minutes (hour), hour (day) or 6 hours (month, year).
    fn last_modified(path: &ReportPath, now: Timestamp) -> Option<Timestamp> {
        let every = match path.granularity() {
            Granularity::Minute => return None,
            Granularity::Hour => 5.minutes(),
            Granularity::Day | Granularity::Total => 1.hour(),
            Granularity::Month | Granularity::Year => 6.hours(),
        };
        let step = jiff::SignedDuration::try_from(every).ok()?.as_secs();
        let secs = now.as_second();
        Timestamp::from_second(secs - secs.rem_euclid(step)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esm() -> Esm {
        Esm::new(
            strings(&["ACME", "ACME-Kids"]),
            strings(&["Comcast_SSO", "DTV", "Cox"]),
            TimeZone::UTC,
        )
    }

    #[test]
    fn the_live_root_and_the_documented_tree_are_both_served() {
        let esm = esm();
        let has = |p: &str| esm.tree().contains(&ReportPath::parse(p).unwrap());
        assert!(has("media-company/year/month/day/proxy/mvpd"));
        assert!(has("year/month/day/proxy/mvpd"));
        assert!(!has("mvpd/year"));
        let root: Vec<&str> = esm.tree().children(&ReportPath::root()).collect();
        assert_eq!(root, vec!["media-company", "year"]);
    }

    #[test]
    fn metric_sets_change_with_the_path() {
        let esm = esm();
        let of = |p: &str| esm.metrics_for(&ReportPath::parse(p).unwrap());
        let plain = of("media-company/year/month/day/proxy/mvpd");
        assert!(plain.contains(&"media-tokens") && !plain.contains(&"authn-failed"));
        assert!(of("media-company/year/month/day/proxy/mvpd/dc").contains(&"unique-accounts"));
        assert!(of("year/month/day/proxy/mvpd/requestor-id/eap").contains(&"authn-failed"));
        assert_eq!(
            of("media-company/year/month/day/event/requestor-id/proxy/mvpd/reason"),
            vec!["count"]
        );
        let channel = of("media-company/year/month/day/hour/proxy/mvpd/requestor-id/channel");
        assert!(!channel.iter().any(|m| m.starts_with("authn")));
    }
}
