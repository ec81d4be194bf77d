//! The landing page: credentials, the concurrency charts, the MVPD health
//! of ESM reports and a table of every report's state.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;
use jiff::Timestamp;

use super::state::AppState;
use crate::credentials::Health;
use crate::export::ExportStore;

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let secs = now.duration_since(t).as_secs();
            let rel = if secs >= 0 {
                format!("{secs}s ago")
            } else {
                format!("in {}s", -secs)
            };
            format!("{} ({rel})", t.strftime("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

/// The concurrency and activity charts of the first report serving each.
fn charts_section(store: &ExportStore) -> String {
    let mut out = String::new();
    for (dimension, what) in [
        ("concurrency-level", "streams opened at once"),
        ("activity-level", "streams tried at once"),
    ] {
        let Some((report, levels)) = store.levels(dimension).into_iter().next() else {
            continue;
        };
        let report = escape_html(&report);
        out.push_str("<div class=\"charts\">");
        out.push_str(&super::charts::distribution_svg(
            &format!("Users per level of {what} (report {report})"),
            &levels,
        ));
        out.push_str(&super::charts::what_if_svg(
            &format!("What-if: users a limit of N would stop ({what}), from a limit of 1"),
            &levels,
        ));
        out.push_str("</div>");
    }
    if out.is_empty() {
        return "<p>Charts appear here once a concurrency-level or activity-level report has been polled.</p>".into();
    }
    format!("<h2>Concurrency</h2>{out}")
}

/// A ratio as a percentage, or a dash when there is nothing to divide.
fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", 100.0 * part / whole)
    } else {
        "–".into()
    }
}

/// Share of failed authorizations above which an MVPD is shown in red.
const FAILING_AUTHZ: f64 = 0.10;

/// Which bucket a view shows, in the report's time zone, and how far it
/// is: `2026-12-07 10:31 PST (minute), complete`, or `2026-12-07 10:32 PST
/// (minute), filling: 12s of 1m` for a bucket still filling, whose counts
/// are only that part of it (and near zero in its first seconds).
fn bucket_state(
    bucket: Option<crate::report::Bucket>,
    start: Option<&jiff::Zoned>,
    now: jiff::Timestamp,
) -> String {
    use crate::report::Granularity;
    let (Some(bucket), Some(zoned)) = (bucket, start) else {
        return "–".into();
    };
    let shown = zoned.strftime(match bucket.granularity {
        Granularity::Minute | Granularity::Hour => "%Y-%m-%d %H:%M %Z",
        _ => "%Y-%m-%d %Z",
    });
    let start = zoned.timestamp();
    let name = bucket.granularity.as_str();
    let length = match bucket.granularity {
        Granularity::Minute => 60,
        Granularity::Hour => 3_600,
        Granularity::Day => 86_400,
        _ => return format!("{shown} ({name})"),
    };
    let into = now.duration_since(start).as_secs();
    if (0..length).contains(&into) {
        let human = |s: i64| humantime::format_duration(std::time::Duration::from_secs(s as u64));
        format!(
            "{shown} ({name}), filling: {} of {}",
            human(into),
            human(length)
        )
    } else {
        format!("{shown} ({name}), complete")
    }
}

/// The MVPD health table of every ESM report by MVPD.
fn mvpd_section(store: &ExportStore, now: jiff::Timestamp) -> String {
    let reports = store.mvpd_health();
    if reports.is_empty() {
        return String::new();
    }
    let mut out = String::from(concat!(
        "<h2>MVPD health (ESM)</h2><table class=\"mvpd-health\"><tr><th>report</th><th>bucket</th><th>MVPD</th>",
        "<th>authorizations</th><th>authorized</th><th>failed</th><th>average latency</th>",
        "<th>authentication conversion</th></tr>"
    ));
    for view in reports {
        let report = view.report.as_str();
        let bucket = bucket_state(view.bucket, view.bucket_start.as_ref(), now);
        for m in view.mvpds {
            let failing =
                m.authz_attempts > 0.0 && m.authz_failed / m.authz_attempts > FAILING_AUTHZ;
            let latency = if m.authz_attempts > 0.0 {
                format!(
                    "{:.0} ms",
                    1000.0 * m.authz_latency_seconds / m.authz_attempts
                )
            } else {
                "–".into()
            };
            let conversion = match (m.authn_successful, m.authn_attempts) {
                (Some(ok), Some(all)) => percent(ok, all),
                _ => "–".into(),
            };
            let _ = write!(
                out,
                "<tr{}><td>{}</td><td>{bucket}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{latency}</td><td>{conversion}</td></tr>",
                if failing { " class=\"bad\"" } else { "" },
                escape_html(report),
                escape_html(&m.mvpd),
                m.authz_attempts,
                percent(m.authz_successful, m.authz_attempts),
                percent(m.authz_failed, m.authz_attempts),
            );
        }
    }
    out.push_str("</table>");
    out
}

/// Each remote-write store: its state and where each report stands on it.
fn push_section(pusher: &crate::push::Pusher, now: Timestamp) -> String {
    let remotes = pusher.statuses();
    if remotes.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2>Push (remote write)</h2><table><tr><th>remote</th><th>url</th><th>state</th><th>samples accepted</th><th>refused for good</th><th>requests taken in part</th><th>newest bucket held, per report</th></tr>",
    );
    for (name, s) in remotes {
        let state = match (&s.last_error, s.up) {
            (Some(e), false) => format!(
                "<span class=\"bad\">failing, retried: {}</span>",
                escape_html(e)
            ),
            _ if s.samples == 0 => "nothing sent yet".to_owned(),
            _ => "<span class=\"ok\">up</span>".to_owned(),
        };
        let cursors: Vec<String> = s
            .cursors
            .iter()
            .map(|(report, at)| format!("{}: {}", escape_html(report), when(Some(*at), now)))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&name),
            escape_html(&s.url),
            s.samples,
            s.rejected,
            s.taken_in_part,
            cursors.join("<br>")
        );
    }
    out.push_str("</table>");
    out
}

/// `GET /`.
pub(super) async fn page(State(state): State<AppState>) -> Html<String> {
    let now = state.clock.now();
    let mut page = String::with_capacity(8 * 1024);
    page.push_str(concat!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>cmu-exporter</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;max-width:100%}",
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;overflow-wrap:break-word}",
        ".bad{color:#b00}.ok{color:#070}.charts{display:flex;flex-wrap:wrap;gap:1em}",
        "figure{margin:0}figcaption{font-size:.9em;margin-bottom:.3em}</style></head><body>",
        "<h1>cmu-exporter</h1><p>Prometheus exporter for Adobe Pass Concurrency Monitoring and Entitlement Service Monitoring reports. ",
    ));
    let _ = write!(
        page,
        "<a href=\"{}\">Metrics</a> · <a href=\"healthz\">Health</a> · <a href=\"readyz\">Readiness</a></p>",
        escape_html(&state.telemetry_path)
    );
    for account in &state.accounts {
        let credentials = match account.health() {
            Health::Ok => "<span class=\"ok\">working</span>".to_owned(),
            Health::Unknown => "not used yet".to_owned(),
            Health::Failing(why) => {
                format!("<span class=\"bad\">failing: {}</span>", escape_html(&why))
            }
            Health::NeedsPerson(why) => format!(
                "<span class=\"bad\">needs a person: {}</span>",
                escape_html(&why)
            ),
        };
        let whose = account
            .account()
            .map_or(String::new(), |n| format!(" of account {}", escape_html(n)));
        let _ = write!(page, "<p>Credentials{whose}: {credentials}</p>");
    }
    page.push_str(&charts_section(state.reports.store()));
    page.push_str(&mvpd_section(state.reports.store(), now));
    page.push_str("<h2>Reports</h2><table><tr><th>report</th><th>path</th><th>interval</th><th>last poll</th><th>last success</th><th>next poll</th><th>complete until (known by)</th><th>lag from Adobe</th><th>series</th><th>state</th></tr>");
    for (name, s) in state.reports.all() {
        let complete = match s.complete_until {
            None => "nothing yet".to_owned(),
            Some((until, by)) => format!("{} ({})", when(Some(until), now), by.as_str()),
        };
        let lag = s.complete_lag.map_or("not measured yet".to_owned(), |lag| {
            format!(
                "at most {}",
                humantime::format_duration(std::time::Duration::from_secs(lag.as_secs()))
            )
        });
        let state_cell = match &s.last_error {
            None if s.last_success.is_some() => "<span class=\"ok\">up</span>".to_owned(),
            None => "waiting for the first poll".to_owned(),
            Some(e) => format!("<span class=\"bad\">{}</span>", escape_html(e)),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&name),
            // A long path breaks at its slashes, so the table fits the screen.
            escape_html(&s.path).replace('/', "/<wbr>"),
            humantime::format_duration(s.interval),
            when(s.last_attempt, now),
            when(s.last_success, now),
            when(s.next_poll, now),
            complete,
            lag,
            s.series,
            state_cell
        );
    }
    page.push_str("</table>");
    page.push_str(&push_section(&state.pusher, now));
    // Marks how many charts the browser laid out and how wide the page
    // came out, for people and for the headless-browser test alike.
    page.push_str(concat!(
        "<script>addEventListener('load',function(){var n=0;",
        "document.querySelectorAll('svg.chart').forEach(function(c){",
        "var b=c.getBBox();if(b.width>0&&b.height>0&&c.querySelector('rect.bar,circle'))n++;});",
        "document.body.setAttribute('data-charts-drawn',String(n));",
        "document.body.setAttribute('data-page-width',String(document.documentElement.scrollWidth));});</script>",
    ));
    page.push_str("</body></html>\n");
    Html(page)
}
