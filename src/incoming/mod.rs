//! Incoming HTTP: the pages the exporter serves and how it serves them.
//!
//! - [`pages`]: the routes (`/metrics`, `/healthz`, `/readyz`, reload),
//!   over the shared state of `state` ([`AppState`]).
//! - `landing` and [`charts`]: the landing page and its SVG charts.
//! - [`config`]: `--web.config.file` (exporter toolkit format), read into a
//!   [`WebConfig`]; [`tls`] and [`auth`] are its two halves.
//! - [`serve`](mod@serve): the accept loop with its limits against slow or hostile clients.

pub mod auth;
pub mod charts;
pub mod config;
mod landing;
pub mod pages;
pub mod serve;
mod state;
pub mod tls;

pub use config::{
    ConnectionLimits, DEFAULT_READ_HEADER_TIMEOUT, MAX_HEADER_BYTES, WebConfig, WebConfigError,
};
pub use pages::{TEXT_FORMAT, router};
pub use serve::serve;
pub use state::AppState;
