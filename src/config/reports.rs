//! The `reports:` section.

use std::collections::HashSet;
use std::time::Duration;

use super::raw::RawReport;
use super::{AccountConfig, DEFAULT_LIMIT, DEFAULT_MAX_AGE_INTERVALS, ReportConfig, ReportName};
use crate::report::catalog::{ESM_DIMENSIONS, KNOWN_DIMENSIONS, is_known_dimension};
use crate::report::{BucketChoice, Filter, ReportApi, ReportPath, default_interval};

/// Parses `dimension=value` or `dimension!=value`.
fn parse_filter(text: &str) -> Result<Filter, String> {
    let (dimension, value, negated) = match text.split_once("!=") {
        Some((d, v)) => (d, v, true),
        None => match text.split_once('=') {
            Some((d, v)) => (d, v, false),
            None => {
                return Err(format!(
                    "`{text}` is not a filter: write `dimension=value` or `dimension!=value`, e.g. `mvpd!=Comcast_SSO`"
                ));
            }
        },
    };
    let (dimension, value) = (dimension.trim(), value.trim());
    let named = dimension.starts_with(|c: char| c.is_ascii_lowercase())
        && dimension
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !named {
        return Err(format!(
            "`{text}`: `{dimension}` is not a dimension name, e.g. `mvpd`"
        ));
    }
    if crate::report::catalog::is_time_dimension(dimension) {
        return Err(format!(
            "`{text}`: time dimensions cannot be filtered (Adobe answers 400); the exporter chooses the time window itself"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "`{text}` has no value: write e.g. `{dimension}=value`"
        ));
    }
    Ok(Filter {
        dimension: dimension.to_owned(),
        value: value.to_owned(),
        negated,
    })
}

/// A static label must be a legal, unreserved name that no series already uses.
fn check_static_label(name: &str, path: Option<&ReportPath>) -> Result<(), String> {
    let legal = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__");
    if !legal {
        return Err("not a label name: use letters, digits and underscores, not starting with a digit or `__`".into());
    }
    let taken = crate::names::RESERVED_LABELS.contains(&name)
        || path.is_some_and(|p| {
            p.segments()
                .iter()
                .any(|d| crate::names::label_name(d) == name)
        });
    if taken {
        return Err(
            "the exporter already uses this label on the report's series: pick another name".into(),
        );
    }
    Ok(())
}

pub(super) fn validate(
    i: usize,
    raw: RawReport,
    names: &mut HashSet<String>,
    (accounts, listed_names): (&[AccountConfig], &[String]),
    problems: &mut Vec<String>,
) -> Option<ReportConfig> {
    let key = |field: &str| format!("reports[{i}].{field}");
    let before = problems.len();
    let api = match raw.api.as_deref() {
        None => ReportApi::default(),
        Some(text) => ReportApi::parse(text).unwrap_or_else(|| {
            let choices: Vec<String> = ReportApi::ALL
                .iter()
                .map(|api| {
                    let default = if api.is_default() { "default, " } else { "" };
                    format!("`{}` ({default}{})", api.as_str(), api.profile().about)
                })
                .collect();
            problems.push(format!(
                "{}: `{text}` is not a report API: write {}",
                key("api"),
                choices.join(" or ")
            ));
            ReportApi::default()
        }),
    };
    let example_path = api.profile().example_path;
    let listed = !listed_names.is_empty();
    let account = match (&raw.account, listed) {
        (None, false) => None,
        (Some(name), false) => {
            problems.push(format!(
                "{}: `{name}` names an account, but no `accounts:` are listed: remove the key, or list the accounts (docs/configuration.md: Several accounts)",
                key("account")
            ));
            None
        }
        (None, true) => {
            let names: Vec<&str> = accounts.iter().filter_map(AccountConfig::label).collect();
            problems.push(format!(
                "{}: missing: with `accounts:` listed, each report names the account that polls it, one of {}",
                key("account"),
                names.join(", ")
            ));
            None
        }
        (Some(name), true) => match accounts.iter().find(|a| a.label() == Some(name.as_str())) {
            Some(a) => a.name.clone(),
            // Listed but refused: its own problem already says why.
            None if listed_names.contains(name) => None,
            None => {
                let names: Vec<&str> = accounts.iter().filter_map(AccountConfig::label).collect();
                problems.push(format!(
                    "{}: `{name}` is not a listed account: use one of {}",
                    key("account"),
                    names.join(", ")
                ));
                None
            }
        },
    };
    let name = ReportName::parse(&raw.name)
        .map_err(|e| problems.push(format!("{}: {e}", key("name"))))
        .ok();
    if !names.insert(raw.name.clone()) {
        problems.push(format!(
            "{}: `{}` is used by an earlier report: give each report its own name",
            key("name"),
            raw.name
        ));
    }
    // A path that does not parse because of a segment one or two keystrokes
    // from a dimension Adobe documents (`dya` upsets the time order) names
    // that segment. A path that parses is checked against Adobe's tree
    // later, with a warning: Adobe may serve more than it documents.
    let misspelt = raw.path.split('/').find_map(|segment| {
        let a_name = segment.starts_with(|c: char| c.is_ascii_lowercase())
            && segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        (a_name && !is_known_dimension(segment))
            .then(|| {
                crate::spelling::misspelt(
                    segment,
                    KNOWN_DIMENSIONS
                        .iter()
                        .chain(ESM_DIMENSIONS.iter())
                        .copied(),
                )
            })
            .flatten()
            .map(|nearest| (segment, nearest))
    });
    let path = ReportPath::parse(&raw.path)
        .map_err(|e| {
            let why = match misspelt {
                Some((segment, nearest)) => format!(
                    "`{segment}` is no dimension Adobe documents: did you mean `{nearest}`?"
                ),
                None => e.to_string(),
            };
            problems.push(format!("{}: `{}`: {why}", key("path"), raw.path));
        })
        .ok();
    if path.as_ref().is_some_and(ReportPath::is_root) {
        problems.push(format!(
            "{}: empty: name the dimensions to group by, e.g. `{example_path}`",
            key("path")
        ));
    }
    let interval = match raw.interval.as_deref() {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                problems.push(format!(
                    "{}: `{text}` is shorter than 1s: poll at most once a second",
                    key("interval")
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "{}: `{text}` is not a duration ({e}): write e.g. `1h`, `30m` or `3h 30m`",
                    key("interval")
                ));
                None
            }
        },
    };
    let bucket = match raw.bucket.as_deref() {
        None | Some("complete") => BucketChoice::Complete,
        Some("partial") => BucketChoice::Partial,
        Some(other) => {
            problems.push(format!(
                "{}: `{other}` is not a bucket choice: write `complete` (default) or `partial`",
                key("bucket")
            ));
            BucketChoice::Complete
        }
    };
    let filters: Vec<Filter> = raw
        .filters
        .iter()
        .filter_map(|f| {
            parse_filter(f)
                .map_err(|e| problems.push(format!("{}: {e}", key("filters"))))
                .ok()
        })
        .collect();
    for metric in &raw.metrics {
        let ok = !metric.is_empty()
            && metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            problems.push(format!(
                "{}: `{metric}` is not a valid {api} metric name: e.g. `{}`",
                key("metrics"),
                api.profile().example_metric
            ));
        }
    }
    let mut labels = Vec::new();
    for (name, value) in &raw.labels {
        match check_static_label(name, path.as_ref()) {
            Ok(()) => labels.push((name.clone(), value.clone())),
            Err(e) => problems.push(format!("{}: `{name}`: {e}", key("labels"))),
        }
    }
    if raw.max_series == Some(0) {
        problems.push(format!(
            "{}: 0 would export nothing: remove the key or set e.g. `max_series: 50000`",
            key("max_series")
        ));
    }
    let max_age = match raw.max_age.as_deref() {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                problems.push(format!(
                    "{}: `{text}` is not a duration ({e}): write e.g. `3h`",
                    key("max_age")
                ));
                None
            }
        },
    };
    let effective_interval = interval.or_else(|| path.as_ref().map(|p| default_interval(api, p)));
    if let (Some(age), Some(every)) = (max_age, effective_interval)
        && age < every
    {
        problems.push(format!(
            "{}: `{}` is shorter than the interval ({}): values would vanish between two good polls; use at least the interval",
            key("max_age"),
            humantime::format_duration(age),
            humantime::format_duration(every)
        ));
    }
    let limit = raw.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        problems.push(format!(
            "{}: 0 rows would return nothing: remove the key or set e.g. `limit: 10000`",
            key("limit")
        ));
    }
    if problems.len() > before {
        return None;
    }
    let path = path?;
    let interval = interval.unwrap_or_else(|| default_interval(api, &path));
    // Long enough that the newest complete bucket of a healthy report is
    // never too old: it ended up to a bucket and one of Adobe's computations
    // ago (the next bucket is complete only once Adobe computed past its
    // end), and the polls that show it come up to an interval later.
    let max_age = max_age.unwrap_or(
        interval * DEFAULT_MAX_AGE_INTERVALS
            + path.granularity().longest()
            + default_interval(api, &path),
    );
    Some(ReportConfig {
        name: name?,
        api,
        account,
        interval,
        path,
        bucket,
        limit,
        filters,
        metrics: raw.metrics,
        labels,
        max_series: raw.max_series,
        max_age,
    })
}
