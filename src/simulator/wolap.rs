//! The simulated WOLAP engine behind both report APIs: `GET {base}/<dimension
//! path>` with Adobe's query language, HAL+JSON and status codes (CMU
//! reference §6, ESM reference §2 and §6). What each API serves (its tree,
//! dimension values, metrics, numbers and freshness) is a [`Dataset`].

use std::fmt::Write as _;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::Shared;
use super::data::exists;
use crate::report::catalog::is_time_dimension;
use crate::report::tree::Tree;
use crate::report::{Granularity, ReportPath};

/// What one simulated report API serves.
pub(crate) trait Dataset: Send + Sync {
    /// The prefix of its links (`/cmu/v2`, `/esm/v3`).
    fn prefix(&self) -> &'static str;
    /// The path after the API prefix of a request, if it names this API
    /// (`/v2/...` is CMU's staging alias).
    fn strip_prefix<'a>(&self, uri_path: &'a str) -> Option<&'a str>;
    /// The report path an alias stands for, if `rest` is one.
    fn alias(&self, rest: &str) -> Option<ReportPath>;
    fn tree(&self) -> &Tree;
    /// Time zone of its buckets.
    fn time_zone(&self) -> &TimeZone;
    /// The dimension of Adobe's implicit per-account filter (`tenant`, `media-company`).
    fn scope_dimension(&self) -> &'static str;
    /// The values of a non-time dimension, `None` for an unknown one.
    fn values(&self, dimension: &str) -> Option<Vec<String>>;
    /// Whether a combination of values can occur (an application id goes
    /// with its name, an MVPD with its proxy).
    fn consistent(&self, dims: &[(&str, &str)]) -> bool;
    /// Whether a dimension takes all its values in every combination
    /// (levels), rather than only in most.
    fn dense(&self, dimension: &str) -> bool;
    /// The metrics `path` serves.
    fn metrics_for(&self, path: &ReportPath) -> Vec<&'static str>;
    /// The values of one row, in the order of `metrics`.
    #[allow(clippy::too_many_arguments)]
    fn row_values(
        &self,
        shared: &Shared,
        seed: u64,
        dims: &[(&str, &str)],
        bucket: DateTime,
        granularity: Granularity,
        filled: f64,
        metrics: &[&str],
    ) -> Vec<u64>;
    /// What an answer for `path` at `now` holds: data as of the last
    /// computation (a civil time in its time zone), and the `Last-Modified`
    /// it carries, if any.
    fn computed(
        &self,
        shared: &Shared,
        path: &ReportPath,
        now: jiff::Timestamp,
    ) -> (DateTime, Option<jiff::Timestamp>);
}

/// A CMU error: status and a plain-text explanation, as Adobe sends them.
type Rejection = (StatusCode, String);

fn text(status: StatusCode, message: impl Into<String>) -> Rejection {
    (status, message.into() + "\n")
}

/// Whether a request carries a live token (header or `access_token` parameter).
/// The tenants the caller's statement may see (`None`: every tenant), or
/// `None` when the request carries no valid token.
fn authorised(
    shared: &Shared,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Option<Option<Vec<String>>> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let from_query = query
        .iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.clone());
    let token = from_header.or(from_query)?;
    let now = shared.clock.now();
    let registry = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
    let token = registry.tokens.get(&token).filter(|t| t.expires_at > now)?;
    let client = registry.clients.get(&token.client_id)?;
    Some(registry.scopes.get(&client.sub).cloned())
}

/// A parsed time parameter: ISO prefix (`2012`, `2012-07-30`, `2012-07-30T10:15`) or milliseconds.
fn parse_time(text: &str, time_zone: &TimeZone) -> Option<DateTime> {
    if text.len() > 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        let ts = jiff::Timestamp::from_millisecond(text.parse().ok()?).ok()?;
        return Some(ts.to_zoned(time_zone.clone()).datetime());
    }
    let template = "0000-01-01T00:00:00";
    if text.len() > template.len() || !text.is_char_boundary(text.len()) {
        return None;
    }
    let full = format!("{text}{}", &template[text.len()..]);
    full.parse().ok()
}

fn format_time(t: DateTime) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Splits a request path into the report path, after the API prefix.
fn report_path(dataset: &dyn Dataset, uri_path: &str) -> Result<ReportPath, Rejection> {
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            format!("No pre-aggregation for path {uri_path}"),
        )
    };
    let rest = dataset
        .strip_prefix(uri_path)
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .ok_or_else(not_found)?;
    let rest = rest.trim_matches('/');
    if let Some(target) = dataset.alias(rest) {
        return Ok(target);
    }
    if let Some((_, ext)) = rest.rsplit_once('.')
        && ext != "json"
    {
        return Err(text(
            StatusCode::NOT_ACCEPTABLE,
            format!("the simulator serves json only, not {ext}"),
        ));
    }
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    ReportPath::parse(rest).map_err(|_| not_found())
}

/// A filter parameter: `dim=v` (IN) or `dim!=v` (NOT IN).
struct Filter {
    dimension: String,
    values: Vec<String>,
    negated: bool,
}

impl Filter {
    fn admits(filters: &[Filter], dimension: &str, value: &str) -> bool {
        filters
            .iter()
            .filter(|f| f.dimension == dimension)
            .all(|f| f.values.iter().any(|v| v == value) != f.negated)
    }
}

/// `GET {base}/<path>`: a HAL+JSON report.
pub(crate) fn report(
    shared: &Shared,
    dataset: &dyn Dataset,
    uri_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
) -> (Response, bool) {
    let query: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let Some(scope) = authorised(shared, headers, &query) else {
        return (
            text(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: missing, expired or invalid access token",
            )
            .into_response(),
            false,
        );
    };
    match build(shared, dataset, uri_path, &query, scope.as_deref()) {
        Ok((body, last_modified)) => {
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                "application/hal+json;charset=UTF-8"
                    .parse()
                    .expect("static"),
            );
            if let Some(at) = last_modified
                && let Ok(value) =
                    jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&at)
                && let Ok(value) = value.parse()
            {
                headers.insert("last-modified", value);
            }
            (response, true)
        }
        Err(rejection) => (rejection.into_response(), false),
    }
}

/// The report at `uri_path` for `query`, and its `Last-Modified`, as the
/// caller whose statement sees the tenants or media companies of `scope`
/// (all when `None`): Adobe applies an implicit filter to each programmer
/// account's answers.
fn build(
    shared: &Shared,
    dataset: &dyn Dataset,
    uri_path: &str,
    query: &[(String, String)],
    scope: Option<&[String]>,
) -> Result<(String, Option<jiff::Timestamp>), Rejection> {
    let path = report_path(dataset, uri_path)?;
    if !dataset.tree().contains(&path) {
        return Err(text(
            StatusCode::NOT_FOUND,
            format!("No pre-aggregation for path /{path}"),
        ));
    }
    let bad = |m: String| text(StatusCode::BAD_REQUEST, m);
    let tz = dataset.time_zone();
    let now_ts = shared.clock.now();
    // Rows as of Adobe's last computation of this report: later buckets
    // are absent, the one holding it partial.
    let (now, last_modified) = dataset.computed(shared, &path, now_ts);
    let month_start = Granularity::Month.floor(now);
    let (mut start, mut end, mut limit) = (month_start, now, 1000u32);
    let mut metrics: Vec<String> = Vec::new();
    let mut filters: Vec<Filter> = Vec::new();
    for (key, value) in query {
        match key.as_str() {
            "start" => {
                start =
                    parse_time(value, tz).ok_or_else(|| bad(format!("Invalid start: {value}")))?
            }
            "end" => {
                end = parse_time(value, tz).ok_or_else(|| bad(format!("Invalid end: {value}")))?
            }
            "limit" => {
                limit = value
                    .parse()
                    .map_err(|_| bad(format!("Invalid limit: {value}")))?
            }
            "metrics" => metrics.extend(
                value
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
            ),
            "format" if value != "json" => {
                return Err(text(
                    StatusCode::NOT_ACCEPTABLE,
                    format!("the simulator serves json only, not {value}"),
                ));
            }
            "format" | "access_token" => {}
            _ => {
                let (dimension, negated) = match key.strip_suffix('!') {
                    Some(d) => (d, true),
                    None => (key.as_str(), false),
                };
                if is_time_dimension(dimension) {
                    return Err(bad(format!(
                        "Time dimension {dimension} cannot be filtered: use start and end"
                    )));
                }
                if dataset.values(dimension).is_none() {
                    return Err(bad(format!("Unknown dimension: {dimension}")));
                }
                if value.is_empty() {
                    continue; // Forces the dimension into the projection; nothing to filter.
                }
                match filters
                    .iter_mut()
                    .find(|f| f.dimension == dimension && f.negated == negated)
                {
                    Some(f) => f.values.push(value.clone()),
                    None => filters.push(Filter {
                        dimension: dimension.to_owned(),
                        values: vec![value.clone()],
                        negated,
                    }),
                }
            }
        }
    }
    if limit > shared.config.max_limit {
        return Err(bad(format!(
            "Query too large: limit {limit} exceeds {}",
            shared.config.max_limit
        )));
    }
    if let (Some(max), Some(span)) = (shared.config.max_query_buckets, path.granularity().span()) {
        let mut buckets = 0u64;
        let mut at = path.granularity().floor(start);
        while at <= end && buckets <= max {
            buckets += 1;
            at = at.checked_add(span).unwrap_or(DateTime::MAX);
        }
        if buckets > max {
            return Err(bad(format!(
                "Query too large: more than {max} time buckets between start and end"
            )));
        }
    }
    let served = dataset.metrics_for(&path);
    if let Some(unknown) = metrics.iter().find(|m| !served.contains(&m.as_str())) {
        return Err(bad(format!("Unknown metric for this report: {unknown}")));
    }
    let metrics: Vec<&str> = if metrics.is_empty() {
        served
    } else {
        metrics.iter().map(String::as_str).collect()
    };
    let scope_dimension = dataset.scope_dimension();
    if let Some(tenants) = scope {
        filters.push(Filter {
            dimension: scope_dimension.into(),
            values: tenants.to_vec(),
            negated: false,
        });
    }
    // Totals over the account's tenants differ from another account's.
    let seed = match scope {
        Some(tenants) if !path.contains(scope_dimension) => {
            let parts: Vec<&str> = tenants.iter().map(String::as_str).collect();
            shared.config.seed ^ super::data::hash(0, &parts)
        }
        _ => shared.config.seed,
    };
    let mut out = String::with_capacity(4096);
    write_links(dataset, &path, query, (start, end, limit), &mut out);
    out.push_str(",\"report\":[");
    let mut rows = String::with_capacity(4096);
    generate_rows(
        (shared, dataset),
        &path,
        (start, end, now),
        (&filters, seed),
        &metrics,
        limit,
        &mut rows,
    );
    if shared.config.shuffle_rows && !rows.is_empty() {
        // Rows are flat objects of strings: "},{" only ever separates two.
        let inner = &rows[1..rows.len() - 1];
        let mut each: Vec<&str> = inner.split("},{").collect();
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        each.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
            seed ^ rows.len() as u64,
        ));
        rows = format!("{{{}}}", each.join("},{"));
    }
    out.push_str(&rows);
    out.push_str("]}");
    Ok((out, last_modified))
}

fn json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn link(prefix: &str, path: &ReportPath, name: Option<&str>, out: &mut String) {
    out.push_str("{\"href\":");
    json_string(format!("{prefix}/{path}").trim_end_matches('/'), out);
    if let Some(name) = name {
        out.push_str(",\"name\":");
        json_string(name, out);
    }
    out.push('}');
}

/// `_links`: `self` with the resolved query, `roll-up`, and `drill-down` as
/// one object or an array, as Adobe serves them. Links always use the
/// API's own prefix (`/cmu/v2`), whatever prefix was requested.
fn write_links(
    dataset: &dyn Dataset,
    path: &ReportPath,
    query: &[(String, String)],
    (start, end, limit): (DateTime, DateTime, u32),
    out: &mut String,
) {
    let prefix = dataset.prefix();
    let mut resolved = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        if !matches!(
            k.as_str(),
            "start" | "end" | "limit" | "metrics" | "access_token" | "format"
        ) {
            resolved.append_pair(k, v);
        }
    }
    resolved.append_pair("start", &format_time(start));
    resolved.append_pair("end", &format_time(end));
    resolved.append_pair("limit", &limit.to_string());
    for (k, v) in query.iter().filter(|(k, _)| k == "metrics") {
        for m in v.split(',').filter(|m| !m.is_empty()) {
            resolved.append_pair(k, m);
        }
    }
    out.push_str("{\"_links\":{\"self\":{\"href\":");
    json_string(
        &format!("{prefix}/{path}?{}", resolved.finish()).replace("/?", "?"),
        out,
    );
    out.push('}');
    if let Some(parent) = path.parent() {
        out.push_str(",\"roll-up\":");
        link(
            prefix,
            &parent,
            parent.segments().last().map(String::as_str),
            out,
        );
    }
    let children: Vec<&str> = dataset.tree().children(path).collect();
    if !children.is_empty() {
        out.push_str(",\"drill-down\":");
        let one = |c: &str, out: &mut String| {
            // The `name` of a link is optional; leave it off the undocumented dimension.
            link(
                prefix,
                &path.child(c),
                (c != "occurrences").then_some(c),
                out,
            );
        };
        if let [only] = children.as_slice() {
            one(only, out);
        } else {
            out.push('[');
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                one(c, out);
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// One position of the nested enumeration: a dimension's values, or the time buckets.
enum Slot {
    Dimension(String, Vec<String>),
    Time,
}

/// Writes the rows of `path` for the window, in path order, up to `limit`.
fn generate_rows(
    (shared, dataset): (&Shared, &dyn Dataset),
    path: &ReportPath,
    (start, end, now): (DateTime, DateTime, DateTime),
    (filters, seed): (&[Filter], u64),
    metrics: &[&str],
    limit: u32,
    out: &mut String,
) {
    let granularity = path.granularity();
    // Data is kept 25 months; a path with no time dimension covers all of it
    // (stamped by day, so its values hold still within a day).
    let retention =
        Granularity::Day.floor(now.checked_sub(jiff::Span::new().months(25)).unwrap_or(now));
    let buckets: Vec<DateTime> = match granularity.span() {
        None => vec![retention],
        Some(span) => {
            let mut b = granularity.floor(start.max(retention));
            let mut all = Vec::new();
            while b < end && b <= now {
                all.push(b);
                match b.checked_add(span) {
                    Ok(next) => b = next,
                    Err(_) => break,
                }
            }
            all
        }
    };
    let mut slots = Vec::new();
    for seg in path.segments() {
        if is_time_dimension(seg) {
            if !matches!(slots.last(), Some(Slot::Time)) {
                slots.push(Slot::Time);
            }
        } else {
            let values = dataset.values(seg).unwrap_or_default();
            slots.push(Slot::Dimension(seg.clone(), values));
        }
    }
    let sizes: Vec<usize> = slots
        .iter()
        .map(|s| match s {
            Slot::Time => buckets.len(),
            Slot::Dimension(_, v) => v.len(),
        })
        .collect();
    if sizes.contains(&0) {
        return;
    }
    let hidden = shared
        .hidden
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut odometer = vec![0usize; slots.len()];
    let mut written = 0u32;
    'rows: loop {
        let bucket = slots
            .iter()
            .zip(&odometer)
            .find(|(s, _)| matches!(s, Slot::Time))
            .map(|(_, i)| buckets[*i]);
        let dims: Vec<(&str, &str)> = slots
            .iter()
            .zip(&odometer)
            .filter_map(|(s, i)| match s {
                Slot::Dimension(d, values) => Some((d.as_str(), values[*i].as_str())),
                Slot::Time => None,
            })
            .collect();
        let consistent = dataset.consistent(&dims);
        // Sparsity applies to who streams where; every level of a concurrency report exists.
        let values: Vec<&str> = dims
            .iter()
            .filter(|(d, _)| !dataset.dense(d))
            .map(|(_, v)| *v)
            .collect();
        if consistent
            && exists(seed, &values)
            && dims.iter().all(|(d, v)| Filter::admits(filters, d, v))
            && !dims
                .iter()
                .any(|(d, v)| hidden.iter().any(|(hd, hv)| hd == d && hv == v))
        {
            if written == limit {
                break 'rows;
            }
            let b = bucket.unwrap_or(retention);
            let filled = match granularity.span().and_then(|s| b.checked_add(s).ok()) {
                Some(bucket_end) if bucket_end > now => {
                    let total = bucket_end.duration_since(b).as_secs_f64();
                    (now.duration_since(b).as_secs_f64() / total).clamp(0.0, 1.0)
                }
                _ => 1.0,
            };
            let numbers = dataset.row_values(shared, seed, &dims, b, granularity, filled, metrics);
            if written > 0 {
                out.push(',');
            }
            out.push('{');
            let mut first = true;
            let mut field = |name: &str, value: &str, out: &mut String| {
                if !first {
                    out.push(',');
                }
                first = false;
                json_string(name, out);
                out.push(':');
                json_string(value, out);
            };
            for seg in path.segments() {
                let value = match seg.as_str() {
                    "year" => b.year().to_string(),
                    "month" => b.month().to_string(),
                    "day" => b.day().to_string(),
                    "hour" => b.hour().to_string(),
                    "minute" => b.minute().to_string(),
                    other => dims
                        .iter()
                        .find(|(d, _)| *d == other)
                        .map(|(_, v)| (*v).to_owned())
                        .unwrap_or_default(),
                };
                field(seg, &value, out);
            }
            for (metric, n) in metrics.iter().zip(numbers) {
                let mut buf = String::new();
                let _ = write!(buf, "{n}");
                field(metric, &buf, out);
            }
            out.push('}');
            written += 1;
        }
        // Advance the odometer, last slot fastest.
        let mut i = slots.len();
        loop {
            if i == 0 {
                break 'rows;
            }
            i -= 1;
            odometer[i] += 1;
            if odometer[i] < sizes[i] {
                break;
            }
            odometer[i] = 0;
        }
    }
}
