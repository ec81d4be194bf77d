//! The two report APIs Adobe serves from the same WOLAP engine, with the
//! same query language, HAL+JSON and DCR token: Concurrency Monitoring
//! (`/cmu/v2`) and Entitlement Service Monitoring (`/esm/v3`).
//!
//! What differs between them is one [`ApiProfile`] each, here, and their
//! vocabularies in [`super::catalog`] (with the documented trees of
//! [`super::tree`]). Everything else reads the profile of a [`ReportApi`]
//! or keeps a value per API in a [`PerApi`]: a third API is one more
//! profile and its catalog.

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

/// Everything that differs between the APIs, apart from their vocabulary.
#[derive(Debug)]
pub struct ApiProfile {
    /// Lowercase name, as written in the configuration (`api: esm`) and in
    /// the `api` label of request self-metrics.
    pub name: &'static str,
    /// The name people use (`CMU`), in messages and HELP texts.
    pub title: &'static str,
    /// What the API is about, for messages.
    pub about: &'static str,
    /// Prefix of every family of the API's data (`cmu_`).
    pub metric_prefix: &'static str,
    /// The report's info family (path and granularity).
    pub info_family: &'static str,
    /// Start of the bucket a report's series show.
    pub bucket_start_family: &'static str,
    /// The `adobe:` key of the API's base URL, and Adobe's production base.
    pub url_key: &'static str,
    pub default_url: &'static str,
    /// The `adobe:` key of the time zone of its buckets, and its default.
    pub time_zone_key: &'static str,
    pub default_time_zone: &'static str,
    /// A path of the API, for examples in messages.
    pub example_path: &'static str,
    /// A metric of the API, for examples in messages.
    pub example_metric: &'static str,
    /// Whether `Last-Modified` says when the data was computed. ESM: yes
    /// (absent: computed in real time). CMU: no, its header means nothing.
    pub last_modified_is_computation: bool,
    /// Whether concurrency and activity levels are a dimension of it (the
    /// level families, the what-if charts).
    pub levels: bool,
    /// Whether its reports by MVPD carry authorizations (the landing
    /// page's MVPD health table).
    pub mvpd_health: bool,
    /// How often a report is polled by default ([`super::default_interval`]).
    pub schedule: Schedule,
    /// Metrics exported under a family of their own rather than the
    /// prefixed metric name: (metric, family, factor to the base unit).
    pub renamed: &'static [(&'static str, &'static str, f64)],
}

/// How often a report is polled by default, in seconds, by the
/// granularity of its path: as often as its data changes, and no more,
/// since polling faster only burns requests.
#[derive(Debug)]
pub struct Schedule {
    pub minute: u64,
    pub hour: u64,
    pub day: u64,
    pub month_or_year: u64,
    /// A path without time dimensions.
    pub total: u64,
    /// A path by concurrency or activity level, whatever its granularity.
    pub levels: Option<u64>,
}

impl Schedule {
    /// The interval of a path of `granularity` (not by level).
    pub fn of(&self, granularity: super::Granularity) -> u64 {
        use super::Granularity;
        match granularity {
            Granularity::Minute => self.minute,
            Granularity::Hour => self.hour,
            Granularity::Day => self.day,
            Granularity::Month | Granularity::Year => self.month_or_year,
            Granularity::Total => self.total,
        }
    }
}

const HOUR: u64 = 3600;

const CMU: ApiProfile = ApiProfile {
    name: "cmu",
    title: "CMU",
    about: "Concurrency Monitoring",
    metric_prefix: "cmu_",
    info_family: "cmu_report_info",
    bucket_start_family: "cmu_report_bucket_start_timestamp_seconds",
    url_key: "cmu_url",
    default_url: "https://mgmt.auth.adobe.com/cmu/v2",
    time_zone_key: "time_zone",
    // Undocumented by Adobe.
    default_time_zone: "UTC",
    example_path: "tenant/year/month/day",
    example_metric: "active-users",
    last_modified_is_computation: false,
    levels: true,
    mvpd_health: false,
    // CMU documents its recompute schedule (reference §7).
    schedule: Schedule {
        minute: 60,
        hour: HOUR,
        day: 3 * HOUR,
        month_or_year: 48 * HOUR,
        total: HOUR,
        levels: Some(24 * HOUR),
    },
    renamed: &[],
};

const ESM: ApiProfile = ApiProfile {
    name: "esm",
    title: "ESM",
    about: "Entitlement Service Monitoring",
    metric_prefix: "esm_",
    info_family: "esm_report_info",
    bucket_start_family: "esm_report_bucket_start_timestamp_seconds",
    url_key: "esm_url",
    default_url: "https://mgmt.auth.adobe.com/esm/v3",
    time_zone_key: "esm_time_zone",
    // ESM reports in Pacific time ("PST"); a client that builds its windows
    // in America/Los_Angeles is seen working against the live API.
    default_time_zone: "America/Los_Angeles",
    example_path: "media-company/year/month/day/proxy/mvpd",
    example_metric: "authz-attempts",
    last_modified_is_computation: true,
    levels: false,
    mvpd_health: true,
    // ESM documents none: its `Last-Modified` says when each answer was
    // computed, and finer data is refreshed sooner than coarse. Minute data
    // is meant for a dashboard that "calls the API every minute"; a
    // finished hour, day or month is fetched a few times per bucket, so it
    // shows soon after Adobe computes it without asking again for values
    // that cannot have moved.
    schedule: Schedule {
        minute: 60,
        hour: 15 * 60,
        day: HOUR,
        month_or_year: 6 * HOUR,
        total: HOUR,
        levels: None,
    },
    // `authz-latency` is a total in milliseconds; `count` (events by event
    // and reason) would read as a counter's `_count`.
    renamed: &[
        ("authz-latency", "esm_authz_latency_seconds", 0.001),
        ("count", "esm_events", 1.0),
    ],
};

impl ReportApi {
    pub const ALL: [ReportApi; 2] = [ReportApi::Cmu, ReportApi::Esm];

    /// What differs about this API.
    pub fn profile(self) -> &'static ApiProfile {
        match self {
            ReportApi::Cmu => &CMU,
            ReportApi::Esm => &ESM,
        }
    }

    /// Lowercase name, as written in the configuration (`api: esm`) and in
    /// the `api` label of request self-metrics.
    pub fn as_str(self) -> &'static str {
        self.profile().name
    }

    /// The API named `text` (`cmu`, `esm`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|api| api.as_str() == text)
    }

    /// Whether this is the API a report reads when it names none.
    pub fn is_default(self) -> bool {
        self == Self::default()
    }

    /// What a command line adds to choose this API (` --api esm`): nothing
    /// for the default one.
    pub fn flag(self) -> String {
        if self.is_default() {
            String::new()
        } else {
            format!(" --api {}", self.as_str())
        }
    }

    /// Position in [`Self::ALL`].
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ReportApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.profile().title)
    }
}

/// One value per API (a base URL, a time zone), indexed by [`ReportApi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerApi<T>([T; 2]);

impl<T> PerApi<T> {
    /// The value of each API, as `of` gives it.
    pub fn new(mut of: impl FnMut(ReportApi) -> T) -> Self {
        Self(ReportApi::ALL.map(&mut of))
    }

    /// Each API with its value.
    pub fn iter(&self) -> impl Iterator<Item = (ReportApi, &T)> {
        ReportApi::ALL.into_iter().zip(&self.0)
    }

    /// Every value, or `None` if one is missing.
    pub fn transpose(per_api: PerApi<Option<T>>) -> Option<Self> {
        let [a, b] = per_api.0;
        Some(Self([a?, b?]))
    }
}

impl<T> std::ops::Index<ReportApi> for PerApi<T> {
    type Output = T;
    fn index(&self, api: ReportApi) -> &T {
        &self.0[api.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_has_its_own_names() {
        let names: std::collections::BTreeSet<_> =
            ReportApi::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), ReportApi::ALL.len());
        for api in ReportApi::ALL {
            let p = api.profile();
            assert_eq!(ReportApi::parse(p.name), Some(api));
            assert!(p.info_family.starts_with(p.metric_prefix));
            assert!(p.bucket_start_family.starts_with(p.metric_prefix));
            assert!(p.default_url.contains(&format!("/{}/", p.name)));
        }
        assert_eq!(ReportApi::Esm.flag(), " --api esm");
        assert_eq!(ReportApi::Cmu.flag(), "");
        let per = PerApi::new(|api| api.as_str().len());
        assert_eq!(per[ReportApi::Esm], 3);
    }
}
