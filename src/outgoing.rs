//! Outgoing HTTP: the one client for Adobe's servers, and the one exchange
//! (send, time, record, read the answer) that the DCR and CMU clients share.
//!
//! rustls on the `ring` provider (no OpenSSL, nothing from the system but its
//! CA certificates), gzip, a `User-Agent` naming the exporter and timeouts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use crate::telemetry::{Api, Outcome, Telemetry};

/// `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("cmu-exporter/", env!("CARGO_PKG_VERSION"));

/// Makes `ring` the process's TLS crypto provider (idempotent). Every
/// reqwest client needs it; [`client`] calls it.
pub fn install_crypto_provider() {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why the outgoing client could not be set up. Each names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("adobe.proxy_url: {reason}")]
    Proxy { reason: String },
    #[error("adobe.ca_file {}: {reason}", file.display())]
    CaFile { file: PathBuf, reason: String },
    #[error("cannot set up the HTTP client: {reason}")]
    Build { reason: String },
}

/// Builds the shared client for Adobe: `proxy_url` (with `NO_PROXY`
/// honoured) or else the usual proxy variables, and the CAs of `ca_file`
/// trusted next to the system's. Errors name the setting.
pub fn client(
    timeout: Duration,
    proxy_url: Option<&reqwest::Url>,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, ClientError> {
    install_crypto_provider();
    // Redirects are never followed: Adobe's APIs do not redirect, and a
    // redirect elsewhere must not take a request (and its token) along.
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .gzip(true);
    if let Some(url) = proxy_url {
        let proxy = reqwest::Proxy::all(url.clone())
            .map_err(|e| ClientError::Proxy {
                reason: e.to_string(),
            })?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    if let Some(file) = ca_file {
        let ca_error = |reason: String| ClientError::CaFile {
            file: file.to_owned(),
            reason,
        };
        let pem = std::fs::read(file).map_err(|e| ca_error(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ca_error(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(ca_error(
                "holds no certificate: give PEM CA certificates".into(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| ClientError::Build {
        reason: error_text(&e),
    })
}

/// Most bytes read of a DCR answer (a few hundred are expected).
pub const DCR_MAX_ANSWER: u64 = 1 << 20;

/// The `Retry-After` header in seconds, if the server sent one.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `Last-Modified` header (an HTTP date), if the server sent a valid one.
fn last_modified(headers: &reqwest::header::HeaderMap) -> Option<jiff::Timestamp> {
    http_date(headers, reqwest::header::LAST_MODIFIED)
}

/// The header `name` as an HTTP date, if the server sent a valid one.
fn http_date(
    headers: &reqwest::header::HeaderMap,
    name: reqwest::header::HeaderName,
) -> Option<jiff::Timestamp> {
    let value = headers.get(name)?.to_str().ok()?;
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value.trim())
        .ok()
}

/// Adobe's answer to one request, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The `Retry-After` header in seconds, if the server sent one.
    pub retry_after: Option<Duration>,
    /// The `Last-Modified` header, if the server sent a valid one.
    pub last_modified: Option<jiff::Timestamp>,
    /// The `Date` header: the server's clock when it answered.
    pub date: Option<jiff::Timestamp>,
    pub body: Bytes,
}

/// No usable answer came.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// The connection failed, timed out, or broke mid-body.
    #[error("{reason}")]
    Unreachable { reason: String },
    /// The answer (decompressed) was longer than allowed; reading stopped there.
    #[error("answer larger than {limit} bytes: reading stopped there (adobe.max_answer_size)")]
    TooLarge { limit: u64 },
}

/// Sends `request` and reads its answer, at most `max_bytes` of it
/// (decompressed): a longer one is abandoned as soon as it is known, from
/// its `Content-Length` or while reading. Records the exchange, once its
/// body is read or failed, in `cmu_exporter_http_requests_total` and its
/// duration (`endpoint` labels it; see [`Outcome`]). Whatever the status,
/// it is the caller's to interpret.
pub async fn exchange(
    telemetry: &Telemetry,
    api: Api,
    endpoint: &str,
    request: reqwest::RequestBuilder,
    max_bytes: u64,
) -> Result<Answer, ExchangeError> {
    let started = Instant::now();
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            telemetry.http_request(api, endpoint, Outcome::NoAnswer, started.elapsed());
            return Err(ExchangeError::Unreachable {
                reason: error_text(&e),
            });
        }
    };
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let last_modified = last_modified(response.headers());
    let date = http_date(response.headers(), reqwest::header::DATE);
    let (body, outcome) = match read_bounded(response, max_bytes).await {
        Ok(body) => (Ok(body), Outcome::Status(status.as_u16())),
        Err((error, outcome)) => (Err(error), outcome),
    };
    telemetry.http_request(api, endpoint, outcome, started.elapsed());
    Ok(Answer {
        status,
        retry_after,
        last_modified,
        date,
        body: body?,
    })
}

/// The body of `response`, or an error (and how it failed) as soon as it
/// exceeds `max_bytes`.
async fn read_bounded(
    mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Bytes, (ExchangeError, Outcome)> {
    let too_large = (
        ExchangeError::TooLarge { limit: max_bytes },
        Outcome::TooLarge,
    );
    // A compressed body's length says nothing of what it expands to.
    let compressed = response
        .headers()
        .contains_key(reqwest::header::CONTENT_ENCODING);
    let announced = response.content_length().filter(|_| !compressed);
    if announced.is_some_and(|n| n > max_bytes) {
        return Err(too_large);
    }
    let mut body = bytes::BytesMut::with_capacity(
        announced
            .map_or(64 * 1024, |n| n as usize)
            .min(max_bytes as usize),
    );
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > max_bytes {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => {
                let outcome = if e.is_timeout() {
                    Outcome::BodyTimeout
                } else {
                    Outcome::BodyBroken
                };
                let reason = format!("the body broke after the headers: {}", error_text(&e));
                return Err((ExchangeError::Unreachable { reason }, outcome));
            }
        }
    }
}

/// The first line of an error body, short, for messages.
pub fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// A transport error described without its URL's query (which never holds
/// secrets here, but stays short) and with its cause chain.
pub fn error_text(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_reads_http_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(last_modified(&headers), None);
        headers.insert(
            "last-modified",
            "Sat, 28 Nov 2026 03:15:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            last_modified(&headers).unwrap().to_string(),
            "2026-11-28T03:15:00Z"
        );
        headers.insert("last-modified", "yesterday".parse().unwrap());
        assert_eq!(last_modified(&headers), None);
    }
}
