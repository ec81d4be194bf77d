//! CMU and ESM reports: which API, Adobe's vocabulary, paths, time buckets and the window to
//! ask for, and the streaming HAL+JSON parser.

pub mod api;
pub mod catalog;
mod cursor;
mod filter;
mod links;
pub mod parse;
pub mod path;
mod swar;
pub mod tree;
pub mod window;

pub use api::{ApiProfile, PerApi, ReportApi};
pub use filter::Filter;
pub use links::{Link, Links, path_of_href};
pub use parse::{
    Columns, ParseError, Parsed, ReportParser, Row, RowSink, parse_report, parse_report_from,
};
pub use path::{Bucket, BucketError, Granularity, PathError, ReportPath};
pub use window::{BucketChoice, Computed, Evidence, default_interval, margin, window};
