//! CMU reports: paths, time buckets, and the streaming HAL+JSON parser.

mod cursor;
pub mod parse;
pub mod path;

pub use parse::{
    Columns, Link, Links, ParseError, Parsed, ReportParser, Row, RowSink, parse_report,
    parse_report_from, path_of_href,
};
pub use path::{Bucket, Granularity, PathError, ReportPath};
pub mod catalog;
