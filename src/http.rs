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
