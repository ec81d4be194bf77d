//! Inline SVG charts for the landing page, for people without Grafana yet:
//! the concurrency distribution (users per level) and the what-if curve
//! (for each limit N, the share of users who reached more than N streams).
//!
//! Adobe counts each user once, at the highest level reached in the bucket,
//! so the users above a limit N are the sum of the levels above N: those a
//! limit of N would stop. The curve starts at a limit of 1 (a limit of 0
//! would stop everyone) and gives user counts beside the shares.

use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 12.0;

/// What a limit of N streams would do: the users above level N and their share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WhatIf {
    pub limit: u32,
    pub users: f64,
    pub share: f64,
}

/// For each limit N from 1 to the highest level minus one, the users above N.
pub fn what_if(levels: &BTreeMap<u32, f64>) -> Vec<WhatIf> {
    let total: f64 = levels.values().sum();
    let highest = levels.keys().next_back().copied().unwrap_or(0);
    if total <= 0.0 {
        return Vec::new();
    }
    (1..highest)
        .map(|limit| {
            let users: f64 = levels.range(limit + 1..).map(|(_, users)| users).sum();
            WhatIf {
                limit,
                users,
                share: users / total,
            }
        })
        .collect()
}

/// The axes, their end labels and their titles.
fn frame(out: &mut String, kind: &str, title: &str, max_label: &str, axes: (&str, &str)) {
    let _ = write!(
        out,
        "<figure><figcaption>{title}</figcaption><svg class=\"chart\" data-chart=\"{kind}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{title}\">"
    );
    let (x0, y0, y1) = (LEFT, HEIGHT - BOTTOM, TOP);
    let _ = write!(
        out,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{WIDTH}\" y2=\"{y0}\" stroke=\"#888\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{max_label}</text><text x=\"{}\" y=\"{y0}\" font-size=\"11\" text-anchor=\"end\">0</text>",
        x0 - 4.0,
        y1 + 10.0,
        x0 - 4.0
    );
    let (x_title, y_title) = axes;
    let _ = write!(
        out,
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{x_title}</text>\
         <text class=\"axis-title\" x=\"12\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{y_title}</text>",
        (x0 + WIDTH) / 2.0,
        HEIGHT - 2.0,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
}

/// Bars of users per level.
pub fn distribution_svg(title: &str, levels: &BTreeMap<u32, f64>) -> String {
    let mut out = String::new();
    let max = levels.values().copied().fold(0.0, f64::max).max(1.0);
    frame(
        &mut out,
        "distribution",
        title,
        &format!("{max:.0}"),
        ("highest number of streams at once (level)", "users"),
    );
    let slot = (WIDTH - LEFT) / levels.len().max(1) as f64;
    let plot = HEIGHT - BOTTOM - TOP;
    for (i, (level, users)) in levels.iter().enumerate() {
        let h = plot * users / max;
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#3b7dd8\"><title>level {level}: {users:.0} users</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{level}</text>",
            HEIGHT - BOTTOM - h,
            slot * 0.7,
            x + slot * 0.35,
            HEIGHT - BOTTOM + 14.0
        );
    }
    out.push_str("</svg></figure>");
    out
}

/// The what-if curve: share of users above each limit.
pub fn what_if_svg(title: &str, levels: &BTreeMap<u32, f64>) -> String {
    let points = what_if(levels);
    let mut out = String::new();
    frame(
        &mut out,
        "whatif",
        title,
        "100%",
        ("limit N (streams)", "share of users above N"),
    );
    let step = (WIDTH - LEFT - 20.0) / points.len().saturating_sub(1).max(1) as f64;
    let plot = HEIGHT - BOTTOM - TOP;
    let coords: Vec<(f64, f64, WhatIf)> = points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            (
                LEFT + 10.0 + step * i as f64,
                HEIGHT - BOTTOM - plot * point.share,
                *point,
            )
        })
        .collect();
    let path: Vec<String> = coords
        .iter()
        .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"curve\" points=\"{}\" fill=\"none\" stroke=\"#d83b3b\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    for (
        x,
        y,
        WhatIf {
            limit,
            users,
            share,
        },
    ) in coords
    {
        let _ = write!(
            out,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#d83b3b\"><title>limit {limit}: {users:.0} users ({:.1}%) above it</title></circle>\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{limit}</text>",
            share * 100.0,
            HEIGHT - BOTTOM + 14.0
        );
    }
    out.push_str("</svg>");
    // The figures themselves, for reading rather than guessing from the curve.
    out.push_str(
        "<table class=\"whatif\"><tr><th>limit</th><th>users above it</th><th>share</th></tr>",
    );
    for WhatIf {
        limit,
        users,
        share,
    } in &points
    {
        let _ = write!(
            out,
            "<tr><td>{limit}</td><td>{users:.0}</td><td>{:.1}%</td></tr>",
            share * 100.0
        );
    }
    out.push_str("</table></figure>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_if_counts_and_shares_the_users_above_each_limit_from_one() {
        // A hand-made distribution: each user at the highest level reached.
        let levels = BTreeMap::from([(1, 600.0), (2, 300.0), (3, 80.0), (5, 20.0)]);
        let point = |limit, users, share| WhatIf {
            limit,
            users,
            share,
        };
        assert_eq!(
            what_if(&levels),
            vec![
                point(1, 400.0, 0.4),
                point(2, 100.0, 0.1),
                point(3, 20.0, 0.02),
                point(4, 20.0, 0.02)
            ]
        );
        assert!(what_if(&BTreeMap::new()).is_empty());
        assert!(
            what_if(&BTreeMap::from([(1, 10.0)])).is_empty(),
            "no limit stops anyone"
        );
    }

    #[test]
    fn charts_have_one_mark_per_value() {
        let levels = BTreeMap::from([(1, 600.0), (2, 300.0), (3, 100.0)]);
        assert_eq!(distribution_svg("t", &levels).matches("<rect").count(), 3);
        let whatif = what_if_svg("t", &levels);
        assert_eq!(whatif.matches("<circle").count(), 2, "limits 1 and 2");
        assert!(
            whatif.contains("<td>1</td><td>400</td><td>40.0%</td>"),
            "{whatif}"
        );
        assert!(whatif.contains("share of users above N") && whatif.contains("limit N (streams)"));
        assert!(distribution_svg("t", &levels).contains(">users</text>"));
    }
}
