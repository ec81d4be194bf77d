//! The one outgoing HTTP client, for DCR and CMU alike.
//!
//! rustls on the `ring` provider (no OpenSSL, nothing from the system but its
//! CA certificates), gzip, a `User-Agent` naming the exporter and timeouts.

use std::time::Duration;

/// `User-Agent` of every outgoing request.
pub const USER_AGENT: &str = concat!("cmu-exporter/", env!("CARGO_PKG_VERSION"));

/// Makes `ring` the process's TLS crypto provider (idempotent). Every
/// reqwest client needs it; [`client`] calls it.
pub fn install_crypto_provider() {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared client. Fails only if TLS cannot be set up.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .gzip(true)
        .build()
}

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
