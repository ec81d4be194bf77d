//! Adobe's vocabulary: the CMU dimensions (reference §5) and metrics
//! (reference §8), and the ESM ones (ESM reference §3 and §4), in one place
//! used by the parser, the snapshot builder, the configuration checks and
//! the simulator alike. What we *export* (family and label names) lives in
//! [`crate::names`].

use super::ReportApi;

/// Time dimensions, coarsest first. They select a time bucket and never
/// become labels.
pub const TIME_DIMENSIONS: [&str; 5] = ["year", "month", "day", "hour", "minute"];

/// Whether `name` is a dimension Adobe documents for either API: the parser
/// reads such a field as a label even when the path does not name it.
pub fn is_known_dimension(name: &str) -> bool {
    KNOWN_DIMENSIONS.contains(&name) || ESM_DIMENSIONS.contains(&name)
}

/// CMU dimensions documented by Adobe (plus `tenant`, used by every example).
pub const KNOWN_DIMENSIONS: [&str; 13] = [
    "tenant",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "application",
    "application-id",
    "channel",
    "mvpd",
    "platform",
    "concurrency-level",
    "activity-level",
];

/// Whether a CMU field name is a time dimension.
pub fn is_time_dimension(name: &str) -> bool {
    TIME_DIMENSIONS.contains(&name)
}

/// A documented CMU metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    /// CMU name, as it appears in reports.
    pub name: &'static str,
    /// What it counts, for HELP texts.
    pub meaning: &'static str,
}

/// General usage metrics: counts over one time bucket.
pub const GENERAL_METRICS: [MetricDoc; 7] = [
    MetricDoc {
        name: "active-users",
        meaning: "Distinct accounts that started at least one stream",
    },
    MetricDoc {
        name: "active-sessions",
        meaning: "Streaming sessions that reported activity (denied initialisations excluded)",
    },
    MetricDoc {
        name: "started-sessions",
        meaning: "Sessions started",
    },
    MetricDoc {
        name: "completed-sessions",
        meaning: "Sessions finished, explicitly or by timeout",
    },
    MetricDoc {
        name: "failed-attempts",
        meaning: "Session initialisations that were denied",
    },
    MetricDoc {
        name: "dismissed-sessions",
        meaning: "Sessions ended during playback by a policy (FIFO, last one wins)",
    },
    MetricDoc {
        name: "killed-sessions",
        meaning: "Sessions killed when a new one started (X-Terminate)",
    },
];

/// Stream-duration ranges, shortest first, with the upper bound in seconds
/// (`None` for the last, open range).
pub const DURATION_METRICS: [(&str, Option<u64>); 12] = [
    ("duration_0-15", Some(15 * 60)),
    ("duration_15-30", Some(30 * 60)),
    ("duration_30-60", Some(60 * 60)),
    ("duration_60-120", Some(120 * 60)),
    ("duration_2h-4h", Some(4 * 3600)),
    ("duration_4h-8h", Some(8 * 3600)),
    ("duration_8h-16h", Some(16 * 3600)),
    ("duration_16h-1d", Some(24 * 3600)),
    ("duration_1d-3d", Some(3 * 86400)),
    ("duration_3d-7d", Some(7 * 86400)),
    ("duration_1w-1m", Some(30 * 86400)),
    ("duration_over-1m", None),
];

/// The metric of concurrency-level and activity-level reports.
pub const USERS_METRIC: &str = "users";

/// Dimensions that make a report a concurrency report (served daily or monthly only).
pub const LEVEL_DIMENSIONS: [&str; 2] = ["concurrency-level", "activity-level"];

/// ESM dimensions: the programmer and MVPD tables, and those only the
/// diagrams or the live API show (`api`, `decision-type`,
/// `application-software-id`, `arch`). Time dimensions are in [`TIME_DIMENSIONS`].
pub const ESM_DIMENSIONS: [&str; 31] = [
    "media-company",
    "dc",
    "proxy",
    "mvpd",
    "requestor-id",
    "channel",
    "resource-id",
    "device",
    "eap",
    "os-family",
    "browser-family",
    "browser-version",
    "cdt",
    "platform-version",
    "os-type",
    "nsdk",
    "nsdk-version",
    "event",
    "reason",
    "sso-type",
    "platform",
    "application-name",
    "application-version",
    "customer-app",
    "content-category",
    "sdk-type",
    "sdk-version",
    "api",
    "decision-type",
    "application-software-id",
    "arch",
];

/// The ESM metric of event-oriented reports (under `event`).
pub const ESM_EVENTS_METRIC: &str = "count";

/// The ESM metric whose value is a total time in milliseconds.
pub const ESM_LATENCY_METRIC: &str = "authz-latency";

/// ESM metrics de-duplicated within their bucket and data center: a sum
/// across time or `dc` counts the same user or session more than once.
pub const ESM_UNIQUE_METRICS: [&str; 2] = ["unique-accounts", "unique-sessions"];

/// The ESM metrics Adobe documents (ESM reference §4.1), and the
/// `decision-*` ones the live API serves under `decision-type` (§4.2).
pub const ESM_METRICS: [MetricDoc; 19] = [
    MetricDoc {
        name: "authn-attempts",
        meaning: "Authentication flows started (users sent to the MVPD login page)",
    },
    MetricDoc {
        name: "authn-successful",
        meaning: "Authentication tokens obtained by clients (AuthN granted)",
    },
    MetricDoc {
        name: "authn-pending",
        meaning: "Authentication tokens generated, fetched by the client or not",
    },
    MetricDoc {
        name: "authn-failed",
        meaning: "Authentications that failed in an external system (see eap)",
    },
    MetricDoc {
        name: "clientless-tokens",
        meaning: "Clientless tokens emitted",
    },
    MetricDoc {
        name: "clientless-failures",
        meaning: "Failed attempts to get tokens from the Clientless API",
    },
    MetricDoc {
        name: "authz-attempts",
        meaning: "Authorization attempts",
    },
    MetricDoc {
        name: "authz-successful",
        meaning: "Successful authorizations",
    },
    MetricDoc {
        name: "authz-failed",
        meaning: "Authorizations denied by the MVPD",
    },
    MetricDoc {
        name: "authz-rejected",
        meaning: "Authorization attempts rejected as malicious (DoS prevention)",
    },
    MetricDoc {
        name: ESM_LATENCY_METRIC,
        meaning: "Total time spent on the MVPD's authorization endpoint (a sum: divide by esm_authz_attempts for the average)",
    },
    MetricDoc {
        name: "media-tokens",
        meaning: "Short media tokens generated (about one per play request)",
    },
    MetricDoc {
        name: "unique-accounts",
        meaning: "Unique accounts that authenticated or authorized, de-duplicated within the bucket and data center: never sum it across time or dc",
    },
    MetricDoc {
        name: "unique-sessions",
        meaning: "Unique sessions that made authentication calls, de-duplicated within the bucket and data center: never sum it across time or dc",
    },
    MetricDoc {
        name: ESM_EVENTS_METRIC,
        meaning: "Adobe Pass events of each event and reason",
    },
    MetricDoc {
        name: "decision-attempts",
        meaning: "REST API v2 decisions asked (served by the live API, not documented by Adobe)",
    },
    MetricDoc {
        name: "decision-successful",
        meaning: "REST API v2 decisions granted (served by the live API, not documented by Adobe)",
    },
    MetricDoc {
        name: "decision-failed",
        meaning: "REST API v2 decisions denied (served by the live API, not documented by Adobe)",
    },
    MetricDoc {
        name: "decision-media-tokens",
        meaning: "Media tokens of REST API v2 decisions (served by the live API, not documented by Adobe)",
    },
];

/// The metrics of `api` that Adobe documents, as reports name them.
pub fn documented_metrics(api: ReportApi) -> Vec<&'static str> {
    match api {
        ReportApi::Cmu => GENERAL_METRICS.iter().map(|m| m.name).collect(),
        ReportApi::Esm => ESM_METRICS.iter().map(|m| m.name).collect(),
    }
}

/// HELP text meaning of a metric of `api`, or `None` when Adobe does not document it.
pub fn meaning(api: ReportApi, metric: &str) -> Option<String> {
    match api {
        ReportApi::Cmu => cmu_meaning(metric),
        ReportApi::Esm => ESM_METRICS
            .iter()
            .find(|m| m.name == metric)
            .map(|m| m.meaning.to_owned()),
    }
}

fn cmu_meaning(metric: &str) -> Option<String> {
    if let Some(doc) = GENERAL_METRICS.iter().find(|m| m.name == metric) {
        return Some(doc.meaning.to_owned());
    }
    if let Some((name, _)) = DURATION_METRICS.iter().find(|(n, _)| *n == metric) {
        let range = name.trim_start_matches("duration_");
        return Some(format!(
            "Streams whose duration fell in the range {range} (minutes unless marked)"
        ));
    }
    (metric == USERS_METRIC)
        .then(|| "Users per concurrency or activity level (each user counted once, at the highest level reached in the bucket)".to_owned())
}

/// What the users of a level report count, as Adobe defines the reports:
/// each user once, at the highest level reached in the bucket. The users
/// above level N are those a limit of N would stop (concurrency) or that a
/// policy of N did stop (activity).
pub fn level_meaning(dimension: &str, metric: &str) -> Option<String> {
    let streams = match dimension {
        "concurrency-level" => "streams open at once",
        "activity-level" => "streams tried at once (denied attempts included)",
        _ => return None,
    };
    (metric == USERS_METRIC).then(|| {
        format!(
            "Users whose highest number of {streams} in the bucket was this level: each user counted once, at the highest level reached, so the users above level N are those a limit of N {}",
            if dimension == "concurrency-level" { "would stop" } else { "stopped or would stop" }
        )
    })
}
