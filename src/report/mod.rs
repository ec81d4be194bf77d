//! CMU reports: paths, time buckets, and the streaming HAL+JSON parser.

pub mod parse;
pub mod path;

pub use parse::{
    Columns, Link, Links, ParseError, Parsed, Row, RowSink, parse_report, path_of_href,
};
pub use path::{Bucket, Granularity, PathError, ReportPath};
pub mod catalog;
