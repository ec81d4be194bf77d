//! The `adobe:` section: servers, time zones, the outgoing client's settings.

use std::time::Duration;

use reqwest::Url;

use super::raw::{RawAdobe, RawSize};
use super::{
    AdobeConfig, DEFAULT_DCR_URL, DEFAULT_MAX_ANSWER_SIZE, DEFAULT_REQUEST_TIMEOUT, time_zone,
};
use crate::report::{PerApi, ReportApi};

fn validate_url(
    key: &str,
    value: Option<String>,
    default: &str,
    problems: &mut Vec<String>,
) -> Option<Url> {
    let text = value.unwrap_or_else(|| default.to_owned());
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        _ => {
            problems.push(format!(
                "{key}: `{text}` is not an http(s) URL: write it in full, e.g. `{default}`"
            ));
            None
        }
    }
}

/// The `adobe:` section; `None` when a key is unusable (and said in `problems`).
pub(super) fn validate(mut raw: RawAdobe, problems: &mut Vec<String>) -> Option<AdobeConfig> {
    let (mut raw_urls, mut raw_zones) = raw.per_api();
    let dcr_url = validate_url("adobe.dcr_url", raw.dcr_url, DEFAULT_DCR_URL, problems);
    let zone = |key: &str, value: Option<String>, default: &str, problems: &mut Vec<String>| {
        let name = value.unwrap_or_else(|| default.to_owned());
        let found = time_zone(&name);
        if found.is_none() {
            problems.push(format!(
                "{key}: `{name}` is not a known time zone: use an IANA name such as `UTC` or `America/Los_Angeles`"
            ));
        }
        found
    };
    let urls = PerApi::new(|api: ReportApi| {
        let profile = api.profile();
        let key = format!("adobe.{}", profile.url_key);
        validate_url(&key, raw_urls.take(api), profile.default_url, problems)
    });
    let time_zones = PerApi::new(|api: ReportApi| {
        let profile = api.profile();
        let key = format!("adobe.{}", profile.time_zone_key);
        zone(
            &key,
            raw_zones.take(api),
            profile.default_time_zone,
            problems,
        )
    });
    let max_concurrent_requests = raw.max_concurrent_requests.unwrap_or(2);
    if max_concurrent_requests == 0 {
        problems.push("adobe.max_concurrent_requests: 0 would never poll: remove the key (default 2) or set 1 or more".into());
    }
    let proxy_url = match raw.proxy_url {
        None => Some(None),
        Some(text) => match Url::parse(&text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https" | "socks5") && url.host().is_some() =>
            {
                Some(Some(url))
            }
            _ => {
                problems.push(format!(
                    "adobe.proxy_url: `{text}` is not a proxy URL: write it in full, e.g. `http://proxy.internal:3128`"
                ));
                None
            }
        },
    };
    if let Some(file) = &raw.ca_file
        && !file.is_file()
    {
        problems.push(format!(
            "adobe.ca_file: {} is not a readable file: name a PEM file of CA certificates, or remove the key",
            file.display()
        ));
    }
    let request_timeout = match raw.request_timeout.as_deref() {
        None => Some(DEFAULT_REQUEST_TIMEOUT),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if d >= Duration::from_secs(1) => Some(d),
            Ok(_) => {
                problems.push(format!(
                    "adobe.request_timeout: `{text}` is shorter than 1s: no answer would arrive in time; remove the key (default 30s) or set e.g. `60s`"
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "adobe.request_timeout: `{text}` is not a duration ({e}): write e.g. `30s` or `2m`"
                ));
                None
            }
        },
    };
    let max_answer_size = match raw.max_answer_size {
        None => Some(DEFAULT_MAX_ANSWER_SIZE),
        Some(raw) => match parse_size(&raw) {
            Ok(n) if n >= 1024 => Some(n),
            Ok(n) => {
                problems.push(format!(
                    "adobe.max_answer_size: {n} bytes would refuse every report: remove the key (default 128MiB) or set e.g. `256MiB`"
                ));
                None
            }
            Err(text) => {
                problems.push(format!(
                    "adobe.max_answer_size: `{text}` is not a size: write bytes, or a number with B, KiB, MiB or GiB, e.g. `256MiB`"
                ));
                None
            }
        },
    };
    Some(AdobeConfig {
        request_timeout: request_timeout?,
        max_answer_size: max_answer_size?,
        max_concurrent_requests,
        proxy_url: proxy_url?,
        ca_file: raw.ca_file,
        dcr_url: dcr_url?,
        urls: PerApi::transpose(urls)?,
        time_zones: PerApi::transpose(time_zones)?,
    })
}

/// Bytes of a size written as a number or with a unit (`B`, `KiB`, `MiB`,
/// `GiB`, or `KB`, `MB`, `GB` in powers of 1000); the text when it is not one.
pub(super) fn parse_size(raw: &RawSize) -> Result<u64, String> {
    let text = match raw {
        RawSize::Bytes(n) => return Ok(*n),
        RawSize::Text(text) => text.trim(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(text.to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| text.to_owned())
}
