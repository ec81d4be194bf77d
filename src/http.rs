//! The one outgoing HTTP client, for DCR and CMU alike.
//!
//! rustls on the `ring` provider (no OpenSSL, nothing from the system but its
//! CA certificates), gzip, a `User-Agent` naming the exporter and timeouts.

use std::path::Path;
use std::time::Duration;

/// `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("cmu-exporter/", env!("CARGO_PKG_VERSION"));

/// Makes `ring` the process's TLS crypto provider (idempotent). Every
/// reqwest client needs it; [`client`] calls it.
pub fn install_crypto_provider() {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared client for Adobe: `proxy_url` (with `NO_PROXY`
/// honoured) or else the usual proxy variables, and the CAs of `ca_file`
/// trusted next to the system's. Errors name the setting.
pub fn client(
    timeout: Duration,
    proxy_url: Option<&reqwest::Url>,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .gzip(true);
    if let Some(url) = proxy_url {
        let proxy = reqwest::Proxy::all(url.clone())
            .map_err(|e| format!("adobe.proxy_url: {e}"))?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    if let Some(file) = ca_file {
        let pem =
            std::fs::read(file).map_err(|e| format!("adobe.ca_file {}: {e}", file.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "adobe.ca_file {}: not PEM certificates: {e}",
                file.display()
            )
        })?;
        if certs.is_empty() {
            return Err(format!(
                "adobe.ca_file {} holds no certificate: give PEM CA certificates",
                file.display()
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {}", describe(&e)))
}

/// The client for `adobe`'s settings with the standard request timeout.
pub fn adobe_client(adobe: &crate::config::AdobeConfig) -> Result<reqwest::Client, String> {
    client(
        REQUEST_TIMEOUT,
        adobe.proxy_url.as_ref(),
        adobe.ca_file.as_deref(),
    )
}

/// Timeout of one request to Adobe.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Retry-After` header in seconds, if the server sent one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Pause before retry number `attempt` (1 for the first retry): `first`,
/// doubling with each attempt up to `cap`, stretched by a random 0-50% so
/// that many clients do not retry in step, and never shorter than the
/// server's `Retry-After`.
pub fn backoff(
    attempt: u32,
    first: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    use rand::Rng;
    let base = first
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)))
        .min(cap);
    let jitter = rand::rng().random_range(0.0..0.5);
    base.mul_f64(1.0 + jitter)
        .max(retry_after.unwrap_or_default())
}

/// A transport error described without its URL's query (which never holds
/// secrets here, but stays short) and with its cause chain.
pub fn describe(err: &reqwest::Error) -> String {
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
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let s = Duration::from_secs;
        for attempt in 1..=4 {
            let base = s(1) * 2u32.pow(attempt - 1);
            let pause = backoff(attempt, s(1), s(4), None);
            let base = base.min(s(4));
            assert!(
                pause >= base && pause < base.mul_f64(1.5),
                "{attempt}: {pause:?}"
            );
        }
        assert_eq!(backoff(1, s(1), s(4), Some(s(30))), s(30));
        assert!(backoff(40, s(1), s(4), None) < s(6), "no overflow far out");
    }
}
