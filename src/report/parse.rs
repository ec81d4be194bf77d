//! Streaming parser for CMU HAL+JSON reports.
//!
//! A report of 10^5 rows is parsed in one pass over the bytes (see
//! `cursor`): each record is decoded into reusable buffers and handed
//! to a [`RowSink`] before the next one is read, so no tree of the whole
//! document is ever built, and the document may arrive in pieces. Field roles
//! come from the report path and the documented dimension list: time
//! dimensions pick the bucket, other dimensions become labels, and every
//! other field (documented or not, like `bstreams-30`) is a metric.

use std::io::{ErrorKind, Read};

use super::catalog::{TIME_DIMENSIONS, is_known_dimension};
use super::cursor::{Cursor, Pattern, RawStr, Stop, unescape};
use super::links::{Links, path_of_href};
use super::path::{Bucket, ReportPath};

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
    /// Values of `Columns::dimensions`, same order (empty where absent):
    /// valid UTF-8, checked by the parser.
    pub dimensions: &'a [Vec<u8>],
    /// Values of `Columns::metrics`, same order (`None` where absent).
    pub metrics: &'a [Option<f64>],
}

/// Receives rows as they are parsed.
pub trait RowSink {
    /// Takes one row; an `Err` aborts the parse with that message.
    fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String>;
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
    #[error("the document has no `report` array: is this a CMU or ESM JSON report?")]
    NoReport,
    #[error("cannot read the report: {reason}")]
    Read { reason: String },
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
    let mut parser = ReportParser::new(path, sink);
    parser.feed(json, true)?;
    parser.finish()
}

/// Bytes asked of a reader at a time by [`parse_report_from`].
const READ_CHUNK: usize = 256 * 1024;

/// Like [`parse_report`], reading the document from `reader` a piece at a
/// time: memory holds one piece (and the record that straddles it), not the
/// whole document.
pub fn parse_report_from(
    reader: &mut dyn Read,
    path: Option<&ReportPath>,
    sink: &mut dyn RowSink,
) -> Result<Parsed, ParseError> {
    parse_in_pieces(reader, path, sink, READ_CHUNK)
}

/// [`parse_report_from`] with a buffer of `piece` bytes to start with.
fn parse_in_pieces(
    reader: &mut dyn Read,
    path: Option<&ReportPath>,
    sink: &mut dyn RowSink,
    piece: usize,
) -> Result<Parsed, ParseError> {
    let mut parser = ReportParser::new(path, sink);
    let mut buffer = vec![0u8; piece.max(1)];
    // Bytes of `buffer` read but not yet consumed by the parser.
    let (mut start, mut end) = (0, 0);
    loop {
        if end == buffer.len() {
            if start > 0 {
                buffer.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else {
                // One unit (a record, or a member before the rows) fills the
                // buffer: double it, so that a large unit is read again only
                // a logarithmic number of times.
                buffer.resize(buffer.len() * 2, 0);
            }
        }
        let read = match reader.read(&mut buffer[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ParseError::Read {
                    reason: e.to_string(),
                });
            }
        };
        end += read;
        if read > 0 && end < buffer.len() {
            continue; // Parse full buffers only (pipes hand out small reads).
        }
        start += parser.feed(&buffer[start..end], read == 0)?;
        if read == 0 {
            return parser.finish();
        }
    }
}

/// serde_json's message without its trailing " at line X column Y".
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Where the parser is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the opening `{`.
    Start,
    /// Between members of the top-level object.
    Members { first: bool },
    /// Inside the `report` array.
    Rows { first: bool },
    /// After the closing `}`: only whitespace may follow.
    End,
}

/// A parse step's outcome; the report error is boxed to keep results small
/// (they are returned for every token).
type Step<T> = Result<T, Stop<Box<ParseError>>>;

/// A resumable parser of one report. [`ReportParser::feed`] takes the
/// document in pieces of any size and hands each record to the sink as soon
/// as it is whole; a record cut by the end of a piece is read again, whole,
/// from the next call.
pub struct ReportParser<'s> {
    reader: RecordReader<'s>,
    phase: Phase,
    /// Bytes of the document consumed by earlier calls (and given up by the caller).
    consumed: usize,
    /// Newlines in those bytes, and the offset after the last one: error positions.
    lines: usize,
    line_start: usize,
}

impl<'s> ReportParser<'s> {
    pub fn new(path: Option<&ReportPath>, sink: &'s mut dyn RowSink) -> Self {
        Self {
            reader: RecordReader::new(path.cloned(), sink),
            phase: Phase::Start,
            consumed: 0,
            lines: 0,
            line_start: 0,
        }
    }

    /// Parses the whole units (records, top-level members) at the start of
    /// `input` and returns how many bytes they took. The caller gives the
    /// rest again, with more bytes after it; `last` says none will come.
    pub fn feed(&mut self, input: &[u8], last: bool) -> Result<usize, ParseError> {
        let mut cursor = Cursor::new(input);
        loop {
            let unit = cursor.pos;
            match self.step(&mut cursor) {
                Ok(true) => {}
                Ok(false) => {
                    if !last {
                        self.consume(input);
                    }
                    return Ok(input.len());
                }
                Err(Stop::More) if !last => {
                    self.consume(&input[..unit]);
                    return Ok(unit);
                }
                Err(Stop::More) => {
                    let reason = "the document ends in the middle of a value";
                    return Err(self.json_error(input, input.len(), reason));
                }
                Err(Stop::Json(reason)) => return Err(self.json_error(input, cursor.pos, reason)),
                Err(Stop::Report(e)) => return Err(*e),
            }
        }
    }

    /// What the parse saw, once the whole document was fed.
    pub fn finish(self) -> Result<Parsed, ParseError> {
        if self.phase != Phase::End {
            let reason = "the document ends in the middle of a value";
            return Err(self.json_error(b"", 0, reason));
        }
        if !self.reader.saw_report {
            return Err(ParseError::NoReport);
        }
        Ok(Parsed {
            links: self.reader.links,
            rows: self.reader.rows,
            columns: self.reader.columns,
        })
    }

    /// Reads one unit; `Ok(false)` when only whitespace is left after the document.
    fn step(&mut self, c: &mut Cursor<'_>) -> Step<bool> {
        match self.phase {
            Phase::Start => {
                // A UTF-8 byte order mark is allowed before the document.
                const BOM: &[u8] = b"\xEF\xBB\xBF";
                let rest = &c.bytes[c.pos..];
                if rest.starts_with(BOM) {
                    c.pos += BOM.len();
                } else if !rest.is_empty() && rest.len() < BOM.len() && BOM.starts_with(rest) {
                    return Err(Stop::More);
                }
                c.eat(b'{', "expected a report object")?;
                self.phase = Phase::Members { first: true };
            }
            Phase::Members { first } => {
                if c.peek()? == b'}' {
                    c.pos += 1;
                    self.phase = Phase::End;
                    return Ok(true);
                }
                if !first {
                    c.eat(b',', "expected `,` or `}`")?;
                }
                let key = c.string()?;
                c.eat(b':', "expected `:`")?;
                let mut scratch = std::mem::take(&mut self.reader.scratch);
                let outcome = self.member(c, decoded(c.bytes, &key, &mut scratch)?);
                self.reader.scratch = scratch;
                outcome?;
            }
            Phase::Rows { first } => {
                if c.peek()? == b']' {
                    c.pos += 1;
                    self.phase = Phase::Members { first: false };
                    return Ok(true);
                }
                if !first {
                    c.eat(b',', "expected `,` or `]`")?;
                }
                self.reader.record(c)?;
                self.phase = Phase::Rows { first: false };
            }
            Phase::End => {
                return match c.peek::<()>() {
                    Err(Stop::More) => Ok(false),
                    _ => Err(Stop::Json("trailing characters after the report object")),
                };
            }
        }
        Ok(true)
    }

    /// Reads the value of top-level member `key`.
    fn member(&mut self, c: &mut Cursor<'_>, key: &[u8]) -> Step<()> {
        match key {
            b"report" => {
                c.eat(b'[', "`report` must be an array of records")?;
                self.reader.saw_report = true;
                self.phase = Phase::Rows { first: true };
                return Ok(());
            }
            b"_links" => {
                c.peek()?;
                let start = c.pos;
                c.skip_value()?;
                let links: Links = serde_json::from_slice(&c.bytes[start..c.pos]).map_err(|e| {
                    let reason = format!("`_links`: {}", json_reason(&e));
                    Stop::Report(Box::new(self.json_error(c.bytes, start, &reason)))
                })?;
                if self.reader.path.is_none()
                    && let Some(link) = &links.self_link
                {
                    self.reader.path = path_of_href(&link.href);
                }
                self.reader.links = links;
            }
            _ => c.skip_value()?,
        }
        self.phase = Phase::Members { first: false };
        Ok(())
    }

    /// Forgets `input` (consumed), keeping count of its lines.
    fn consume(&mut self, input: &[u8]) {
        if let Some(last) = memchr::memrchr(b'\n', input) {
            self.lines += memchr::memchr_iter(b'\n', input).count();
            self.line_start = self.consumed + last + 1;
        }
        self.consumed += input.len();
    }

    /// A JSON error at offset `at` of the current `input`.
    fn json_error(&self, input: &[u8], at: usize, reason: &str) -> ParseError {
        let before = &input[..at.min(input.len())];
        let column = match memchr::memrchr(b'\n', before) {
            Some(last) => at - last,
            None => self.consumed + at - self.line_start + 1,
        };
        ParseError::Json {
            line: self.lines + memchr::memchr_iter(b'\n', before).count() + 1,
            column,
            reason: reason.to_owned(),
        }
    }
}

/// The content of string `raw`, decoded into `scratch` only if it has escapes.
fn decoded<'a>(bytes: &'a [u8], raw: &RawStr, scratch: &'a mut Vec<u8>) -> Step<&'a [u8]> {
    let content = &bytes[raw.content.clone()];
    if !raw.escaped {
        return Ok(content);
    }
    scratch.clear();
    unescape(content, scratch).map_err(Stop::Json)?;
    Ok(scratch)
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

/// A field name seen in the records.
struct Field {
    name: String,
    role: Role,
    /// The bytes last seen from the end of what came before this field (the
    /// record's `{` or the previous value) to its string value's opening
    /// quote: `, "year": "`. The same bytes again at the same place in the
    /// next record read the same way: matching them skips reading the comma,
    /// the key, the colon and the whitespace one by one.
    lead: Option<Pattern>,
    /// Whether `lead` was seen as a record's first field (no comma): it is
    /// only tried there, and the other leads only elsewhere.
    lead_first: bool,
}

/// Reads the `report` array's records one by one, resumable between the
/// pieces of input, handing each finished row to the sink.
struct RecordReader<'s> {
    path: Option<ReportPath>,
    sink: &'s mut dyn RowSink,
    columns: Columns,
    /// Fields in order of first appearance.
    fields: Vec<Field>,
    /// Per-row buffers, reused across rows.
    dims: Vec<Vec<u8>>,
    metrics: Vec<Option<f64>>,
    time: [Option<i32>; 5],
    /// Row number at which each dimension was last set (absent ones are cleared).
    dim_seen: Vec<usize>,
    /// Position of the next field within the current record (a lookup hint).
    position: usize,
    /// The last time fields seen and their bucket: rows come grouped by bucket.
    last_time: [Option<i32>; 5],
    last_bucket: Option<Bucket>,
    /// Decoded text of an escaped string.
    scratch: Vec<u8>,
    links: Links,
    rows: usize,
    saw_report: bool,
}

impl<'s> RecordReader<'s> {
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
            scratch: Vec::new(),
            links: Links::default(),
            rows: 0,
            saw_report: false,
        }
    }

    /// Reads one record (the cursor is before its `{`) and hands it to the sink.
    /// Everything it changes before the sink is called is redone by a retry.
    fn record(&mut self, c: &mut Cursor<'_>) -> Step<()> {
        if c.peek()? != b'{' {
            return Err(Stop::Json(
                "expected a report record (an object of strings)",
            ));
        }
        c.pos += 1;
        self.position = 0;
        self.time = [None; 5];
        self.metrics.fill(None);
        loop {
            // Rows nearly always list their fields in the same order and
            // spacing: the field at this position in the previous row is
            // tried first, straight on the input.
            let hint = self.position;
            self.position += 1;
            let first = hint == 0;
            if let Some(field) = self.fields.get(hint)
                && let Some(lead) = field.lead.as_ref()
                && field.lead_first == first
                && lead.matches(&c.bytes[c.pos..])
            {
                c.pos += lead.len();
                let raw = c.string_rest(c.pos)?;
                self.store_string(c, hint, raw)?;
                continue;
            }
            let lead_start = c.pos;
            match (c.peek()?, first) {
                (b'}', _) => {
                    c.pos += 1;
                    return self.finish_row();
                }
                (b',', false) => c.pos += 1,
                (_, false) => return Err(Stop::Json("expected `,` or `}`")),
                (_, true) => {}
            }
            let field = self.key(c)?;
            c.eat(b':', "expected `:`")?;
            if c.peek()? == b'"' {
                let f = &mut self.fields[field];
                f.lead = Pattern::new(&c.bytes[lead_start..=c.pos]);
                f.lead_first = first;
            }
            self.value(c, field)?;
        }
    }

    /// Reads a key and resolves it to a field index.
    fn key(&mut self, c: &mut Cursor<'_>) -> Step<usize> {
        let raw = c.string()?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let field = decoded(c.bytes, &raw, &mut scratch).and_then(|name| {
            self.field(name)
                .ok_or(Stop::Json("a field name is not valid UTF-8"))
        });
        self.scratch = scratch;
        field
    }

    /// Index in `fields` of field `name`, registering it on first sight.
    /// `None` when a new name is not valid UTF-8.
    fn field(&mut self, name: &[u8]) -> Option<usize> {
        if let Some(i) = self.fields.iter().position(|f| f.name.as_bytes() == name) {
            return Some(i);
        }
        let name = std::str::from_utf8(name).ok()?;
        let role = if let Some(t) = TIME_DIMENSIONS.iter().position(|t| *t == name) {
            Role::Time(t)
        } else if self.path.as_ref().is_some_and(|p| p.contains(name)) || is_known_dimension(name) {
            self.columns.dimensions.push(name.to_owned());
            self.dims.push(Vec::new());
            self.dim_seen.push(usize::MAX);
            Role::Dimension(self.columns.dimensions.len() - 1)
        } else {
            self.columns.metrics.push(name.to_owned());
            self.metrics.push(None);
            Role::Metric(self.columns.metrics.len() - 1)
        };
        self.columns.version += 1;
        self.fields.push(Field {
            name: name.to_owned(),
            role,
            lead: None,
            lead_first: false,
        });
        Some(self.fields.len() - 1)
    }

    /// Reads the value of `field`: a string as Adobe sends it, or leniently a
    /// number or null.
    #[inline]
    fn value(&mut self, c: &mut Cursor<'_>, field: usize) -> Step<()> {
        match c.peek()? {
            b'"' => {
                let raw = c.string()?;
                self.store_string(c, field, raw)
            }
            b'-' | b'0'..=b'9' => {
                let number = c.number()?;
                self.store_text(field, &c.bytes[number], true)
            }
            b'n' => {
                c.literal(b"null")?;
                self.store_null(field)
            }
            b't' | b'f' => {
                Err(self.field_error(field, "a true/false value is not a string".into()))
            }
            b'{' | b'[' => {
                Err(self.field_error(field, "an object or array is not a string".into()))
            }
            _ => Err(Stop::Json("expected a value")),
        }
    }

    /// Stores string `raw` as the value of `field`, decoding its escapes if any.
    #[inline]
    fn store_string(&mut self, c: &Cursor<'_>, field: usize, raw: RawStr) -> Step<()> {
        if !raw.escaped {
            return self.store_text(field, &c.bytes[raw.content], raw.ascii);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let stored = decoded(c.bytes, &raw, &mut scratch)
            .and_then(|text| self.store_text(field, text, false));
        self.scratch = scratch;
        stored
    }

    fn field_error(&self, field: usize, reason: String) -> Stop<Box<ParseError>> {
        row_error(ParseError::Field {
            row: self.rows,
            field: self.fields[field].name.clone(),
            reason,
        })
    }

    /// Called after a record's fields were read: builds the bucket and hands the row on.
    fn finish_row(&mut self) -> Step<()> {
        let index = self.rows;
        let depth = self.time.iter().take_while(|t| t.is_some()).count();
        if self.time[depth..].iter().any(Option::is_some) {
            let missing = TIME_DIMENSIONS[depth];
            let reason = format!("has finer time fields but no `{missing}`");
            return Err(row_error(ParseError::Row { row: index, reason }));
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
            let b = Bucket::from_fields(&fields[..depth]).map_err(|e| {
                row_error(ParseError::Row {
                    row: index,
                    reason: e.to_string(),
                })
            })?;
            self.last_time = self.time;
            self.last_bucket = Some(b);
            Some(b)
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
        self.sink
            .row(&self.columns, &row)
            .map_err(|reason| row_error(ParseError::Row { row: index, reason }))?;
        self.rows += 1;
        Ok(())
    }

    /// Stores the text value of `field` for the current row; `ascii` when
    /// the scanner already knows the text is ASCII (so valid UTF-8).
    #[inline(always)]
    fn store_text(&mut self, field: usize, text: &[u8], ascii: bool) -> Step<()> {
        match self.fields[field].role {
            Role::Time(t) => match parse_int(text) {
                Some(v) => self.time[t] = Some(v),
                None => return Err(self.bad_value(field, "time value", text, "a whole number")),
            },
            Role::Dimension(d) => {
                if !ascii && std::str::from_utf8(text).is_err() {
                    return Err(self.bad_value(field, "value", text, "valid UTF-8"));
                }
                if text.len() > MAX_DIMENSION_VALUE {
                    let reason = format!(
                        "a value of {} bytes is longer than any label should be ({MAX_DIMENSION_VALUE} at most)",
                        text.len()
                    );
                    return Err(self.field_error(field, reason));
                }
                let slot = &mut self.dims[d];
                slot.clear();
                slot.extend_from_slice(text);
                self.dim_seen[d] = self.rows;
            }
            Role::Metric(m) => match parse_number(text) {
                // Every metric of both APIs counts something: none is negative.
                Some(v) if v < 0.0 => {
                    return Err(self.bad_value(
                        field,
                        "metric value",
                        text,
                        "a count (it is negative)",
                    ));
                }
                Some(v) => self.metrics[m] = Some(v),
                None => return Err(self.bad_value(field, "metric value", text, "a number")),
            },
        }
        Ok(())
    }

    /// The error for a value `text` of `field` that is not `wanted`. Out of
    /// line: formatting is rare, and kept out of the hot path's registers.
    #[cold]
    #[inline(never)]
    fn bad_value(
        &self,
        field: usize,
        what: &str,
        text: &[u8],
        wanted: &str,
    ) -> Stop<Box<ParseError>> {
        let reason = format!("{what} {} is not {wanted}", quoted(text));
        self.field_error(field, reason)
    }

    /// Stores a JSON null: an absent metric or dimension; a time field must have a value.
    fn store_null(&mut self, field: usize) -> Step<()> {
        match self.fields[field].role {
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

/// A report error that stops the parse.
fn row_error(e: ParseError) -> Stop<Box<ParseError>> {
    Stop::Report(Box::new(e))
}

/// Longest dimension value accepted: it becomes a label value on every
/// series of its row, and no MVPD or platform name comes near it.
pub const MAX_DIMENSION_VALUE: usize = 4096;

/// A whole number, with a fast path for plain digits (Adobe's usual form).
fn parse_int(text: &[u8]) -> Option<i32> {
    if text.len() <= 9
        && let Some(n) = digits(text)
    {
        return i32::try_from(n).ok();
    }
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// A number, with a fast path for plain digits (Adobe sends counts as strings).
fn parse_number(text: &[u8]) -> Option<f64> {
    if text.len() <= 15
        && let Some(n) = digits(text)
    {
        return Some(n as f64);
    }
    // `NaN`, `inf` and numbers beyond f64 (`1e400`) are no count: refused.
    std::str::from_utf8(text)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// The value of 1 to 15 decimal digits, in one pass; `None` for anything else.
#[inline]
fn digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for &b in text {
        // A plain loop: counts are a few digits, too short to vectorize.
        let digit = b.wrapping_sub(b'0');
        if digit >= 10 {
            return None;
        }
        n = n * 10 + u64::from(digit);
    }
    Some(n)
}

/// A value for an error message: quoted, and cut short if long.
fn quoted(value: &[u8]) -> String {
    let value = String::from_utf8_lossy(value);
    let cut: String = value.chars().take(40).collect();
    if cut.len() < value.len() {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
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
            let dimensions = row.dimensions.iter();
            let dimensions = dimensions.map(|d| String::from_utf8(d.clone()).unwrap());
            self.0
                .push((bucket, dimensions.collect(), row.metrics.to_vec()));
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

    /// A reader that hands out at most `step` bytes per call (like a pipe),
    /// read into a buffer of `step` bytes to start with: records straddle
    /// pieces and are read again.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn whole(doc: &str) -> (Result<usize, ParseError>, Vec<Seen>) {
        let mut sink = Collect::default();
        let outcome = parse_report(doc.as_bytes(), None, &mut sink).map(|p| p.rows);
        (outcome, sink.0)
    }

    fn trickled(doc: &str, step: usize) -> (Result<usize, ParseError>, Vec<Seen>) {
        let mut sink = Collect::default();
        let mut reader = Trickle {
            bytes: doc.as_bytes(),
            step,
        };
        let outcome = parse_in_pieces(&mut reader, None, &mut sink, step).map(|p| p.rows);
        (outcome, sink.0)
    }

    /// Records whose keys, order, spacing and value kinds change from row to
    /// row: the learned key-to-value leads must never misread one.
    const SHIFTING: &str = "{\"_links\": {\"self\": {\"href\": \"/cmu/v2/year/month/tenant\"}},\n \"report\": [\n\
        {\"year\": \"2023\", \"month\": \"11\", \"tenant\": \"A\", \"users\": \"1\"},\n\
        {\"year\": \"2023\", \"month\": \"11\", \"tenant\": \"B\", \"users\": 2},\n\
        {\"year\":\"2023\",\"month\":\"11\",\"tenant\":\"C\",\"users\":\"3\"},\n\
        {\"month\": \"11\", \"year\": \"2023\", \"users\": \"4\", \"tenant\": \"D\"},\n\
        {\"year\": \"2023\", \"month\": \"11\", \"ten\\u0061nt\": \"\\u00c9\\\"\", \"users\": null},\n\
        {\"year\" : \"2023\" , \"month\" :\"12\", \"tenant\": \"caf\u{e9}\", \"users\": \"6\", \"extra\": \"7\"},\n\
        {\"year\": \"2023\", \"month\": \"12\", \"users\": \"8\"}\n\
        ]}\n";

    #[test]
    fn changing_field_order_spacing_and_escapes_read_the_same() {
        let (outcome, rows) = whole(SHIFTING);
        assert_eq!(outcome, Ok(7));
        let tenants: Vec<&str> = rows.iter().map(|r| r.1[0].as_str()).collect();
        assert_eq!(tenants, ["A", "B", "C", "D", "\u{c9}\"", "caf\u{e9}", ""]);
        let users: Vec<Option<f64>> = rows.iter().map(|r| r.2[0]).collect();
        let expected = [1.0, 2.0, 3.0, 4.0].map(Some);
        assert_eq!(users[..4], expected);
        assert_eq!(users[4..], [None, Some(6.0), Some(8.0)]);
        assert_eq!(rows[5].2[1], Some(7.0), "a new metric in a later row");
        assert_eq!(rows[6].0.as_deref(), Some("2023-12-01T00:00:00"));
    }

    #[test]
    fn a_document_in_pieces_of_any_size_reads_like_the_whole() {
        let expected = whole(SHIFTING);
        for step in [1, 2, 3, 5, 7, 13, 64, 1000] {
            assert_eq!(trickled(SHIFTING, step), expected, "pieces of {step} bytes");
        }
        // Errors too, with the same position, whatever the pieces.
        let broken = SHIFTING.replace("\"users\": 2}", "\"users\": 2 \"x\"}");
        let expected = whole(&broken);
        assert_eq!(
            expected.0,
            Err(ParseError::Json {
                line: 4,
                column: 59,
                reason: "expected `,` or `}`".into()
            })
        );
        for step in [1, 3, 64] {
            assert_eq!(
                trickled(&broken, step).0,
                expected.0,
                "pieces of {step} bytes"
            );
        }
        let cut = &SHIFTING[..SHIFTING.len() - 4];
        assert!(matches!(trickled(cut, 7).0, Err(ParseError::Json { .. })));
    }

    /// Messages of JSON errors about a valid document of the wrong shape.
    const SHAPE_ERRORS: [&str; 4] = [
        "expected a CMU report object",
        "`report` must be an array of records",
        "expected a report record (an object of strings)",
        "`_links`: ",
    ];

    #[test]
    fn mutated_documents_agree_with_serde_json_and_read_the_same_in_pieces() {
        let original = SHIFTING.as_bytes();
        let replacements = b"\",:{}[] \\1an-.e";
        let mut checked = 0;
        for at in 0..original.len() {
            let deleted = [&original[..at], &original[at + 1..]].concat();
            let replaced = replacements.iter().map(|&b| {
                let mut doc = original.to_vec();
                doc[at] = b;
                doc
            });
            for doc in std::iter::once(deleted).chain(replaced) {
                let mut sink = Collect::default();
                let ours = parse_report(&doc, None, &mut sink).map(|p| p.rows);
                let valid = serde_json::from_slice::<serde_json::Value>(&doc).is_ok();
                let text = String::from_utf8_lossy(&doc);
                match &ours {
                    Ok(_) => assert!(valid, "accepted invalid JSON: {text}"),
                    Err(ParseError::Json { reason, .. }) if valid => assert!(
                        SHAPE_ERRORS.iter().any(|shape| reason.starts_with(shape)),
                        "refused valid JSON ({reason}): {text}"
                    ),
                    Err(_) => {}
                }
                let step = 1 + at % 9;
                let mut pieces = Collect::default();
                let mut reader = Trickle { bytes: &doc, step };
                let in_pieces =
                    parse_in_pieces(&mut reader, None, &mut pieces, step).map(|p| p.rows);
                assert_eq!(in_pieces, ours, "pieces of {step} bytes: {text}");
                assert_eq!(pieces.0, sink.0, "pieces of {step} bytes: {text}");
                checked += 1;
            }
        }
        assert!(checked > 8_000, "{checked}");
    }

    #[test]
    fn learned_leads_never_accept_a_comma_where_none_may_be() {
        // After the second row, `a` was last seen after a comma: its lead
        // starts with `, `. A record that starts with that is still refused.
        let doc = br#"{"report": [{"a": "1", "b": "2"}, {"b": "2", "a": "1"}, {, "a": "1"}]}"#;
        let err = parse_report(doc, None, &mut Collect::default()).unwrap_err();
        assert!(matches!(err, ParseError::Json { column: 58, .. }), "{err}");
        let doc = br#"{"report": [{"a": "1", "b": "2"}, {"a": "1" "b": "2"}]}"#;
        let err = parse_report(doc, None, &mut Collect::default()).unwrap_err();
        assert!(err.to_string().contains("expected `,` or `}`"), "{err}");
    }

    #[test]
    fn values_that_are_not_text_or_not_utf8_name_their_field() {
        let check = |doc: &[u8], message: &str| {
            let err = parse_report(doc, None, &mut Collect::default()).unwrap_err();
            assert_eq!(err.to_string(), message);
        };
        check(
            br#"{"report": [{"tenant": {"a": 1}}]}"#,
            "row 0, field `tenant`: an object or array is not a string",
        );
        check(
            br#"{"report": [{"users": true}]}"#,
            "row 0, field `users`: a true/false value is not a string",
        );
        check(
            b"{\"report\": [{\"tenant\": \"a\xff\"}]}",
            "row 0, field `tenant`: value \"a\u{fffd}\" is not valid UTF-8",
        );
        check(
            br#"{"report": [{"year": null}]}"#,
            "row 0, field `year`: time value null is not a whole number",
        );
        check(
            br#"{"report": [{"users": "1"}]} x"#,
            "not valid JSON at line 1, column 30: trailing characters after the report object",
        );
        check(
            br#"{"report": {"users": "1"}}"#,
            "not valid JSON at line 1, column 12: `report` must be an array of records",
        );
        check(
            br#"{"_links": {"self": 3}, "report": []}"#,
            "not valid JSON at line 1, column 12: `_links`: invalid type: integer `3`, expected struct Link",
        );
    }

    #[test]
    fn hostile_values_are_refused_and_readable_ones_documented() {
        let check = |doc: &[u8], message: &str| {
            let err = parse_report(doc, None, &mut Collect::default()).unwrap_err();
            assert_eq!(err.to_string(), message);
        };
        for (value, shown) in [("NaN", "NaN"), ("1e400", "1e400"), ("inf", "inf")] {
            check(
                format!(r#"{{"report": [{{"users": "{value}"}}]}}"#).as_bytes(),
                &format!("row 0, field `users`: metric value \"{shown}\" is not a number"),
            );
        }
        check(
            br#"{"report": [{"users": 1e400}]}"#,
            "row 0, field `users`: metric value \"1e400\" is not a number",
        );
        check(
            br#"{"report": [{"users": "-3"}]}"#,
            "row 0, field `users`: metric value \"-3\" is not a count (it is negative)",
        );
        let long = format!(r#"{{"report": [{{"tenant": "{}"}}]}}"#, "x".repeat(5000));
        check(
            long.as_bytes(),
            "row 0, field `tenant`: a value of 5000 bytes is longer than any label should be (4096 at most)",
        );
        // Readable, and exported as served: numbers as JSON numbers,
        // fractional and 30-digit values, a byte order mark before the document.
        let doc = "\u{feff}{\"report\": [{\"tenant\": \"A\", \"a\": 7, \"b\": \"0\", \"c\": \"2.5\", \"d\": \"123456789012345678901234567890\"}]}";
        let mut sink = Collect::default();
        parse_report(doc.as_bytes(), None, &mut sink).unwrap();
        assert_eq!(
            sink.0[0].2,
            vec![Some(7.0), Some(0.0), Some(2.5), Some(1.2345678901234568e29)]
        );
        for step in 1..4 {
            let mut pieces = Collect::default();
            let mut reader = Trickle {
                bytes: doc.as_bytes(),
                step,
            };
            parse_in_pieces(&mut reader, None, &mut pieces, step).unwrap();
            assert_eq!(pieces.0, sink.0, "a BOM read {step} bytes at a time");
        }
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
        assert_eq!(
            p("/esm/v3/media-company/year/month/day/proxy/mvpd?start=2026-11-27").as_deref(),
            Some("media-company/year/month/day/proxy/mvpd")
        );
        assert_eq!(p("https://mgmt.auth.adobe.com/esm/v3").as_deref(), Some(""));
    }
}
