//! Streaming parser for CMU HAL+JSON reports.
//!
//! A report of 10^5 rows is parsed in one pass over the bytes: each record is
//! decoded into reusable buffers and handed to a [`RowSink`] before the next
//! one is read, so no tree of the whole document is ever built. Field roles
//! come from the report path and the documented dimension list: time
//! dimensions pick the bucket, other dimensions become labels, and every
//! other field (documented or not, like `bstreams-30`) is a metric.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::path::{Bucket, ReportPath};
use crate::names::{KNOWN_DIMENSIONS, TIME_DIMENSIONS};

/// What a report's rows contain, as discovered while parsing.
#[derive(Debug, Default, Clone)]
pub struct Columns {
    /// Non-time dimension names, in order of first appearance.
    pub dimensions: Vec<String>,
    /// Metric names, in order of first appearance.
    pub metrics: Vec<String>,
    /// Bumped whenever a column is added, so sinks can cache derived data.
    pub version: u32,
}

/// One decoded record.
#[derive(Debug)]
pub struct Row<'a> {
    /// Zero-based position in the `report` array (for error messages).
    pub index: usize,
    /// Time bucket; `None` when the path has no time dimension.
    pub bucket: Option<Bucket>,
    /// Values of `Columns::dimensions`, same order ("" where absent).
    pub dimensions: &'a [String],
    /// Values of `Columns::metrics`, same order (`None` where absent).
    pub metrics: &'a [Option<f64>],
}

/// Receives rows as they are parsed.
pub trait RowSink {
    /// Takes one row; an `Err` aborts the parse with that message.
    fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String>;
}

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

/// What the parse saw besides the rows.
#[derive(Debug, Default)]
pub struct Parsed {
    pub links: Links,
    pub rows: usize,
    pub columns: Columns,
}

/// Why a document is not a usable CMU report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON at line {line}, column {column}: {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("row {row}, field `{field}`: {reason}")]
    Field {
        row: usize,
        field: String,
        reason: String,
    },
    #[error("row {row}: {reason}")]
    Row { row: usize, reason: String },
    #[error("the document has no `report` array: is this a CMU JSON report?")]
    NoReport,
}

/// Parses `json` (a CMU report for `path`, if known) and feeds each row to `sink`.
///
/// Without a path (a saved file), the path in the `self` link is used when it
/// comes before the rows, as in Adobe's answers.
pub fn parse_report(
    json: &[u8],
    path: Option<&ReportPath>,
    sink: &mut dyn RowSink,
) -> Result<Parsed, ParseError> {
    let mut state = State::new(path.cloned(), sink);
    let mut de = serde_json::Deserializer::from_slice(json);
    let outcome = DocumentSeed { state: &mut state }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(err) = state.error.take() {
        return Err(err);
    }
    if let Err(e) = outcome {
        return Err(ParseError::Json {
            line: e.line(),
            column: e.column(),
            reason: json_reason(&e),
        });
    }
    if !state.saw_report {
        return Err(ParseError::NoReport);
    }
    Ok(Parsed {
        links: state.links,
        rows: state.rows,
        columns: state.columns,
    })
}

/// serde_json's message without its trailing " at line X column Y".
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The role a field plays in every row of a report.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Index into TIME_DIMENSIONS.
    Time(usize),
    /// Index into `Columns::dimensions`.
    Dimension(usize),
    /// Index into `Columns::metrics`.
    Metric(usize),
}

struct State<'s> {
    path: Option<ReportPath>,
    sink: &'s mut dyn RowSink,
    columns: Columns,
    /// Field name -> role, in order of first appearance.
    fields: Vec<(String, Role)>,
    /// Per-row buffers, reused across rows.
    dims: Vec<String>,
    metrics: Vec<Option<f64>>,
    time: [Option<i32>; 5],
    /// Row number at which each dimension was last set (absent ones are cleared).
    dim_seen: Vec<usize>,
    /// Position of the next field within the current record (a lookup hint).
    position: usize,
    /// The last time fields seen and their bucket: rows come grouped by bucket.
    last_time: [Option<i32>; 5],
    last_bucket: Option<Bucket>,
    links: Links,
    rows: usize,
    saw_report: bool,
    error: Option<ParseError>,
}

impl<'s> State<'s> {
    fn new(path: Option<ReportPath>, sink: &'s mut dyn RowSink) -> Self {
        Self {
            path,
            sink,
            columns: Columns::default(),
            fields: Vec::new(),
            dims: Vec::new(),
            metrics: Vec::new(),
            time: [None; 5],
            dim_seen: Vec::new(),
            position: 0,
            last_time: [None; 5],
            last_bucket: None,
            links: Links::default(),
            rows: 0,
            saw_report: false,
            error: None,
        }
    }

    /// Index in `fields` of field `name`, registering it on first sight. The
    /// field at the same position in the previous row is tried first: rows
    /// nearly always list their fields in the same order.
    /// `None` when a new name is not valid UTF-8.
    fn field(&mut self, name: &[u8]) -> Option<usize> {
        let hint = self.position;
        self.position += 1;
        if let Some((n, _)) = self.fields.get(hint)
            && n.as_bytes() == name
        {
            return Some(hint);
        }
        if let Some(i) = self.fields.iter().position(|(n, _)| n.as_bytes() == name) {
            return Some(i);
        }
        let name = std::str::from_utf8(name).ok()?;
        let role = if let Some(t) = TIME_DIMENSIONS.iter().position(|t| *t == name) {
            Role::Time(t)
        } else if self.path.as_ref().is_some_and(|p| p.contains(name))
            || KNOWN_DIMENSIONS.contains(&name)
        {
            self.columns.dimensions.push(name.to_owned());
            self.dims.push(String::new());
            self.dim_seen.push(usize::MAX);
            Role::Dimension(self.columns.dimensions.len() - 1)
        } else {
            self.columns.metrics.push(name.to_owned());
            self.metrics.push(None);
            Role::Metric(self.columns.metrics.len() - 1)
        };
        self.columns.version += 1;
        self.fields.push((name.to_owned(), role));
        Some(self.fields.len() - 1)
    }

    fn fail<E: de::Error>(&mut self, err: ParseError) -> E {
        let message = err.to_string();
        self.error = Some(err);
        E::custom(message)
    }

    fn field_error<E: de::Error>(&mut self, field: usize, reason: String) -> E {
        let name = self.fields[field].0.clone();
        self.fail(ParseError::Field {
            row: self.rows,
            field: name,
            reason,
        })
    }

    /// Called after a record's fields were read: builds the bucket and hands the row on.
    fn finish_row<E: de::Error>(&mut self) -> Result<(), E> {
        let index = self.rows;
        let depth = self.time.iter().take_while(|t| t.is_some()).count();
        if self.time[depth..].iter().any(Option::is_some) {
            let missing = TIME_DIMENSIONS[depth];
            let reason = format!("has finer time fields but no `{missing}`");
            return Err(self.fail(ParseError::Row { row: index, reason }));
        }
        let bucket = if depth == 0 {
            None
        } else if self.time == self.last_time {
            self.last_bucket
        } else {
            let mut fields = [0i32; 5];
            for (f, t) in fields.iter_mut().zip(&self.time) {
                *f = t.unwrap_or_default();
            }
            match Bucket::from_fields(&fields[..depth]) {
                Ok(b) => {
                    self.last_time = self.time;
                    self.last_bucket = Some(b);
                    Some(b)
                }
                Err(reason) => return Err(self.fail(ParseError::Row { row: index, reason })),
            }
        };
        for (slot, seen) in self.dims.iter_mut().zip(&self.dim_seen) {
            if *seen != index {
                slot.clear();
            }
        }
        let row = Row {
            index,
            bucket,
            dimensions: &self.dims,
            metrics: &self.metrics,
        };
        if let Err(reason) = self.sink.row(&self.columns, &row) {
            return Err(self.fail(ParseError::Row { row: index, reason }));
        }
        self.rows += 1;
        self.position = 0;
        self.time = [None; 5];
        self.metrics.iter_mut().for_each(|m| *m = None);
        Ok(())
    }

    /// Stores the text value of `field` for the current row.
    fn store_text<E: de::Error>(&mut self, field: usize, text: &str) -> Result<(), E> {
        match self.fields[field].1 {
            Role::Time(t) => match parse_int(text) {
                Some(v) => self.time[t] = Some(v),
                None => {
                    let reason = format!("time value {} is not a whole number", quoted(text));
                    return Err(self.field_error(field, reason));
                }
            },
            Role::Dimension(d) => {
                let slot = &mut self.dims[d];
                slot.clear();
                slot.push_str(text);
                self.dim_seen[d] = self.rows;
            }
            Role::Metric(m) => match parse_number(text) {
                Some(v) => self.metrics[m] = Some(v),
                None => {
                    let reason = format!("metric value {} is not a number", quoted(text));
                    return Err(self.field_error(field, reason));
                }
            },
        }
        Ok(())
    }

    /// Stores a JSON null: an absent metric or dimension; a time field must have a value.
    fn store_null<E: de::Error>(&mut self, field: usize) -> Result<(), E> {
        match self.fields[field].1 {
            Role::Time(_) => {
                Err(self.field_error(field, "time value null is not a whole number".into()))
            }
            Role::Dimension(_) => Ok(()),
            Role::Metric(m) => {
                self.metrics[m] = None;
                Ok(())
            }
        }
    }
}

/// A whole number, with a fast path for plain digits (Adobe's usual form).
fn parse_int(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if !bytes.is_empty() && bytes.len() <= 9 && bytes.iter().all(u8::is_ascii_digit) {
        return Some(bytes.iter().fold(0i32, |n, b| n * 10 + i32::from(b - b'0')));
    }
    text.trim().parse().ok()
}

/// A number, with a fast path for plain digits (Adobe sends counts as strings).
fn parse_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    if !bytes.is_empty() && bytes.len() <= 15 && bytes.iter().all(u8::is_ascii_digit) {
        return Some(bytes.iter().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64);
    }
    text.trim().parse().ok()
}

/// A value for an error message: quoted, and cut short if long.
fn quoted(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    if cut.len() < value.len() {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
    }
}

struct DocumentSeed<'a, 's> {
    state: &'a mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CMU report object with `_links` and `report`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "_links" => {
                    let links: Links = map.next_value()?;
                    if self.state.path.is_none()
                        && let Some(link) = &links.self_link
                    {
                        self.state.path = path_of_href(&link.href);
                    }
                    self.state.links = links;
                }
                "report" => {
                    self.state.saw_report = true;
                    map.next_value_seed(RowsSeed { state: self.state })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The report path named by a CMU link (`/cmu/v2/year/month?x=y` -> `year/month`).
///
/// Links may carry another prefix than the URL that was requested (Adobe's
/// aliases), so the path is what follows the last `/v2/` (or the whole path
/// when there is none).
pub fn path_of_href(href: &str) -> Option<ReportPath> {
    let no_query = href.split(['?', '#']).next().unwrap_or_default();
    let after_host = match no_query.find("://") {
        Some(i) => no_query[i + 3..]
            .find('/')
            .map_or("", |j| &no_query[i + 3 + j..]),
        None => no_query,
    };
    let tail = match after_host.rfind("/v2/") {
        Some(i) => &after_host[i + 4..],
        None if after_host.ends_with("/v2") => "",
        None => after_host,
    };
    ReportPath::parse(tail).ok()
}

struct RowsSeed<'a, 's> {
    state: &'a mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of report records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(RecordSeed {
                state: &mut *self.state,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct RecordSeed<'a, 's> {
    state: &'a mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a report record (an object of strings)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        while let Some(field) = map.next_key_seed(KeySeed { state: &mut *state })? {
            map.next_value_seed(ValueSeed {
                state: &mut *state,
                field,
            })?;
        }
        state.finish_row()
    }
}

/// Reads a field name straight from the input and resolves it to a field index.
struct KeySeed<'a, 's> {
    state: &'a mut State<'s>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = usize;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        // Bytes, not str: a known name is matched without a UTF-8 check.
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        Ok(self.state.field(v.as_bytes()).unwrap_or_default())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<usize, E> {
        self.state
            .field(v)
            .ok_or_else(|| E::custom("a field name is not valid UTF-8"))
    }
}

/// Reads a field's value straight from the input into the row buffers: a
/// string as Adobe sends it, or leniently a number or null.
struct ValueSeed<'a, 's> {
    state: &'a mut State<'s>,
    field: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.state.store_text(self.field, v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.state.store_text(self.field, &v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.state.store_text(self.field, &v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.state.store_text(self.field, &v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.state.store_null(self.field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = (Option<String>, Vec<String>, Vec<Option<f64>>);

    #[derive(Default)]
    struct Collect(Vec<Seen>, Columns);
    impl RowSink for Collect {
        fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String> {
            self.1 = columns.clone();
            let bucket = row.bucket.map(|b| b.start.to_string());
            self.0
                .push((bucket, row.dimensions.to_vec(), row.metrics.to_vec()));
            Ok(())
        }
    }

    const SAMPLE: &str = r#"{
      "_links": {
        "self": {"href": "/cmu/v2/year/month/day/tenant?tenant=ACME&limit=1000"},
        "roll-up": {"href": "/cmu/v2/year/month/day", "name": "day"},
        "drill-down": {"href": "/cmu/v2/year/month/day/tenant/channel"}
      },
      "report": [
        {"year": "2023", "month": "11", "day": "27", "tenant": "AC\"ME",
         "active-users": "1830", "bstreams-30": "4"},
        {"tenant": "Other", "day": "28", "month": "11", "year": "2023", "active-users": "7"}
      ]
    }"#;

    #[test]
    fn parses_rows_links_and_unknown_metrics() {
        let mut sink = Collect::default();
        let parsed = parse_report(SAMPLE.as_bytes(), None, &mut sink).unwrap();
        assert_eq!(parsed.rows, 2);
        assert_eq!(parsed.links.drill_down.len(), 1);
        assert_eq!(parsed.links.drill_down[0].name, None);
        assert_eq!(sink.1.dimensions, vec!["tenant"]);
        assert_eq!(sink.1.metrics, vec!["active-users", "bstreams-30"]);
        assert_eq!(sink.0[0].0.as_deref(), Some("2023-11-27T00:00:00"));
        assert_eq!(sink.0[0].1, vec!["AC\"ME"]);
        assert_eq!(sink.0[0].2, vec![Some(1830.0), Some(4.0)]);
        // Field order differs and a metric is missing in the second row.
        assert_eq!(sink.0[1].1, vec!["Other"]);
        assert_eq!(sink.0[1].2, vec![Some(7.0), None]);
    }

    #[test]
    fn undocumented_dimension_in_the_path_is_a_label() {
        let path = ReportPath::parse("tenant/occurrences").unwrap();
        let doc = r#"{"report": [{"tenant": "A", "occurrences": "3", "users": "9"}]}"#;
        let mut sink = Collect::default();
        parse_report(doc.as_bytes(), Some(&path), &mut sink).unwrap();
        assert_eq!(sink.1.dimensions, vec!["tenant", "occurrences"]);
        assert_eq!(sink.1.metrics, vec!["users"]);
    }

    #[test]
    fn bad_values_name_row_and_field() {
        let doc = r#"{"report": [{"year": "2023", "active-users": "1"}, {"year": "2023", "active-users": "lots"}]}"#;
        let err = parse_report(doc.as_bytes(), None, &mut Collect::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 1, field `active-users`: metric value \"lots\" is not a number"
        );
        let doc = r#"{"report": [{"year": "2023", "month": "13", "users": "1"}]}"#;
        let err = parse_report(doc.as_bytes(), None, &mut Collect::default()).unwrap_err();
        assert!(err.to_string().contains("row 0: month 13"), "{err}");
    }

    #[test]
    fn truncated_or_foreign_documents_are_errors() {
        let err =
            parse_report(&SAMPLE.as_bytes()[..200], None, &mut Collect::default()).unwrap_err();
        assert!(matches!(err, ParseError::Json { .. }), "{err}");
        let err = parse_report(b"{\"error\": \"x\"}", None, &mut Collect::default()).unwrap_err();
        assert_eq!(err, ParseError::NoReport);
        let err = parse_report(b"[1, 2]", None, &mut Collect::default()).unwrap_err();
        assert!(matches!(err, ParseError::Json { .. }), "{err}");
    }

    #[test]
    fn links_resolve_by_path_after_v2() {
        let p = |h: &str| path_of_href(h).map(|p| p.to_string());
        assert_eq!(
            p("/cmu/v2/year/month/day/tenant?x=1").as_deref(),
            Some("year/month/day/tenant")
        );
        assert_eq!(
            p("https://cm.example/v2/year/month").as_deref(),
            Some("year/month")
        );
        assert_eq!(p("/cmu/v2").as_deref(), Some(""));
        assert_eq!(
            p("/cmu/v2/year/month/day/hour/mvpd/").as_deref(),
            Some("year/month/day/hour/mvpd")
        );
    }
}
