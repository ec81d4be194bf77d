//! The HAL `_links` of Adobe's answers, and the report path a link names.

use serde::{Deserialize, de};

use super::path::ReportPath;

/// A HAL link (`href` plus optional `name`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Link {
    pub href: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The `_links` object; `drill-down` is an object or an array in Adobe's answers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Links {
    #[serde(rename = "self", default)]
    pub self_link: Option<Link>,
    #[serde(rename = "roll-up", default)]
    pub roll_up: Option<Link>,
    #[serde(rename = "drill-down", default, deserialize_with = "one_or_many")]
    pub drill_down: Vec<Link>,
}

fn one_or_many<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<Link>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Link),
        Many(Vec<Link>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(link)) => vec![link],
        Some(OneOrMany::Many(links)) => links,
    })
}

/// The report path named by a link (`/cmu/v2/year/month?x=y` -> `year/month`,
/// `/esm/v3/media-company/year` -> `media-company/year`).
///
/// Links may carry another prefix than the URL that was requested (Adobe's
/// aliases), so the path is what follows the last version segment (`v2`,
/// `v3`), or the whole path when there is none.
pub fn path_of_href(href: &str) -> Option<ReportPath> {
    let no_query = href.split(['?', '#']).next().unwrap_or_default();
    let after_host = match no_query.find("://") {
        Some(i) => no_query[i + 3..]
            .find('/')
            .map_or("", |j| &no_query[i + 3 + j..]),
        None => no_query,
    };
    // The path starts after the API version segment (`/cmu/v2/`, `/v2/`,
    // `/esm/v3/`), whatever prefix stands before it.
    let segments: Vec<&str> = after_host.split('/').collect();
    let is_version =
        |s: &&str| s.len() > 1 && s.starts_with('v') && s[1..].bytes().all(|b| b.is_ascii_digit());
    let tail = match segments.iter().rposition(is_version) {
        Some(i) => segments[i + 1..].join("/"),
        None => after_host.to_owned(),
    };
    ReportPath::parse(&tail).ok()
}
