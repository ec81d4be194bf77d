//! The two report APIs Adobe serves from the same WOLAP engine, with the
//! same query language, HAL+JSON and DCR token: Concurrency Monitoring
//! (`/cmu/v2`) and Entitlement Service Monitoring (`/esm/v3`). What differs
//! between them is decided here, by a [`ReportApi`] value, not by a second
//! copy of the code.

use std::fmt;

/// Which API a report reads (`api:` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ReportApi {
    /// Concurrency Monitoring usage: streams, sessions, concurrency levels.
    #[default]
    Cmu,
    /// Entitlement Service Monitoring: authentication and authorization per MVPD.
    Esm,
}

impl ReportApi {
    pub const ALL: [ReportApi; 2] = [ReportApi::Cmu, ReportApi::Esm];

    /// Lowercase name, as written in the configuration (`api: esm`) and in
    /// the `api` label of request self-metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportApi::Cmu => "cmu",
            ReportApi::Esm => "esm",
        }
    }

    /// The API named `text` (`cmu`, `esm`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|api| api.as_str() == text)
    }

    /// Whether `Last-Modified` says when the data was computed. ESM: yes
    /// (absent: computed in real time). CMU: no, its header means nothing.
    pub fn has_freshness(self) -> bool {
        self == ReportApi::Esm
    }
}

impl fmt::Display for ReportApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportApi::Cmu => "CMU",
            ReportApi::Esm => "ESM",
        })
    }
}
