//! The file as serde reads it: every key optional, unknown keys refused.
//! Validation ([`super::adobe`], [`super::accounts`], [`super::reports`])
//! turns it into the types of [`super`].

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) adobe: RawAdobe,
    pub(super) state_dir: Option<PathBuf>,
    #[serde(default)]
    pub(super) accounts: Vec<RawAccount>,
    #[serde(default)]
    pub(super) reports: Vec<RawReport>,
    #[serde(default)]
    pub(super) thresholds: Vec<crate::thresholds::RawThreshold>,
    #[serde(default)]
    pub(super) stream_limits: Vec<crate::thresholds::RawStreamLimit>,
    #[serde(default)]
    pub(super) remote_write: Vec<super::remote_write::RawRemoteWrite>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    pub(super) name: String,
    pub(super) software_statement_file: Option<PathBuf>,
    pub(super) client_id_file: Option<PathBuf>,
    pub(super) client_secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdobe {
    pub(super) dcr_url: Option<String>,
    pub(super) cmu_url: Option<String>,
    pub(super) esm_url: Option<String>,
    pub(super) software_statement_file: Option<PathBuf>,
    pub(super) client_id_file: Option<PathBuf>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) time_zone: Option<String>,
    pub(super) esm_time_zone: Option<String>,
    pub(super) max_concurrent_requests: Option<usize>,
    pub(super) proxy_url: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) request_timeout: Option<String>,
    pub(super) max_answer_size: Option<RawSize>,
}

/// A size: a number of bytes, or text with a unit (`64MiB`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawSize {
    Bytes(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    pub(super) name: String,
    pub(super) account: Option<String>,
    pub(super) api: Option<String>,
    pub(super) path: String,
    pub(super) interval: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) limit: Option<u32>,
    #[serde(default)]
    pub(super) filters: Vec<String>,
    #[serde(default)]
    pub(super) metrics: Vec<String>,
    #[serde(default)]
    pub(super) labels: std::collections::BTreeMap<String, String>,
    pub(super) max_series: Option<usize>,
    pub(super) max_age: Option<String>,
}

/// A value per API taken from the file, each taken once.
pub(super) struct Taken(Vec<(crate::report::ReportApi, Option<String>)>);

impl Taken {
    pub(super) fn take(&mut self, api: crate::report::ReportApi) -> Option<String> {
        self.0
            .iter_mut()
            .find(|(a, _)| *a == api)
            .and_then(|(_, value)| value.take())
    }
}

impl RawAdobe {
    /// The keys of the file that hold one value per API: each API's base
    /// URL (`cmu_url`, `esm_url`) and time zone (`time_zone`,
    /// `esm_time_zone`), as its profile names them.
    pub(super) fn per_api(&mut self) -> (Taken, Taken) {
        use crate::report::ReportApi;
        let mut urls = Vec::new();
        let mut zones = Vec::new();
        for api in ReportApi::ALL {
            let profile = api.profile();
            let (url, zone) = match (profile.url_key, profile.time_zone_key) {
                ("cmu_url", "time_zone") => (self.cmu_url.take(), self.time_zone.take()),
                ("esm_url", "esm_time_zone") => (self.esm_url.take(), self.esm_time_zone.take()),
                _ => (None, None),
            };
            urls.push((api, url));
            zones.push((api, zone));
        }
        (Taken(urls), Taken(zones))
    }
}
