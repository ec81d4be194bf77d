//! Adobe's CMU vocabulary: the dimensions (reference §5) and the metrics
//! (reference §8) it documents, in one place used by the parser, the
//! snapshot builder, the configuration checks and the simulator alike.
//! What we *export* (family and label names) lives in [`crate::names`].

/// Time dimensions, coarsest first. They select a time bucket and never
/// become labels.
pub const TIME_DIMENSIONS: [&str; 5] = ["year", "month", "day", "hour", "minute"];

/// Dimensions documented by Adobe (plus `tenant`, used by every example).
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

/// HELP text meaning of a CMU metric, or `None` when Adobe does not document it.
pub fn meaning(metric: &str) -> Option<String> {
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
        .then(|| "Users who reached each concurrency or activity level".to_owned())
}
