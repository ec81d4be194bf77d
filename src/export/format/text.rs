//! The Prometheus text format (0.0.4): `# HELP`, `# TYPE`, then
//! `name{labels} value` lines. Report families are written once per poll
//! and served as they are; each kept row's labels are rendered once, for
//! all its families.

use std::ops::Range;

use crate::export::samples::{Family, Samples};
use crate::export::snapshot::FamilyKind;
use crate::names::{escape_help, escape_label_value, write_value};

/// Appends a family's `# HELP` and `# TYPE` lines.
pub fn write_header(name: &str, help: &str, kind: FamilyKind, out: &mut Vec<u8>) {
    write_header_escaped(name, help, kind, escape_help, out);
}

/// `# HELP` and `# TYPE` lines, the HELP text escaped by `escape` (each
/// format escapes its own characters).
pub(super) fn write_header_escaped(
    name: &str,
    help: &str,
    kind: FamilyKind,
    escape: fn(&str, &mut Vec<u8>),
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape(help, out);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'\n');
}

/// Appends `name="value"` (the value escaped), after a comma unless first.
pub(super) fn write_label(first: bool, name: &str, value: &[u8], out: &mut Vec<u8>) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(value, out);
    out.push(b'"');
}

/// What is handed each label of a sample, name and value, in order.
pub type EachLabel<'f> = &'f mut dyn FnMut(&str, &[u8]);

/// Appends one sample line: `name{labels} value`. `labels` calls its
/// argument with each label in order.
pub fn write_sample(name: &str, labels: impl FnOnce(EachLabel<'_>), value: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    let open = out.len();
    out.push(b'{');
    let mut first = true;
    labels(&mut |name, value| {
        write_label(first, name, value, out);
        first = false;
    });
    if first {
        out.truncate(open); // No label: no braces.
    } else {
        out.push(b'}');
    }
    out.push(b' ');
    write_value(value, out);
    out.push(b'\n');
}

/// Every kept row's labels rendered once, in one buffer.
pub struct RowLabels {
    text: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl RowLabels {
    pub fn of(samples: &Samples<'_>) -> Self {
        let rows = samples.rows();
        let mut text = Vec::with_capacity(rows * 48 + samples.value_bytes() * 2);
        let mut spans = Vec::with_capacity(rows);
        for row in 0..rows {
            let start = text.len();
            let mut first = true;
            samples.row_labels(row, |name, value| {
                write_label(first, name, value, &mut text);
                first = false;
            });
            spans.push(start..text.len());
        }
        Self { text, spans }
    }

    fn get(&self, row: usize) -> &[u8] {
        self.spans
            .get(row)
            .map_or(&[][..], |span| &self.text[span.clone()])
    }
}

/// Room for a family's body, with names up to `name_len` bytes: no
/// regrowth (each one a copy of megabytes) while writing it.
fn body_capacity(family: &Family<'_>, rows: &RowLabels, name_len: usize) -> usize {
    // Braces, space, newline and 24 bytes of value (a longer one grows the body).
    const PER_SAMPLE: usize = 4 + 24;
    let per_row = match family.desc.kind {
        FamilyKind::Histogram => 13,
        _ => 1,
    };
    per_row * (rows.text.len() + rows.spans.len() * (name_len + PER_SAMPLE + per_row * 2))
}

/// A family's sample lines (no HELP/TYPE), and how many there are.
pub fn family_body(family: &Family<'_>, rows: &RowLabels) -> (Vec<u8>, usize) {
    let name_len = family.desc.name.len() + 16;
    let mut body = if family.is_about_the_report() {
        Vec::with_capacity(256)
    } else {
        Vec::with_capacity(body_capacity(family, rows, name_len))
    };
    let mut count = 0;
    family.for_each(|sample| {
        count += 1;
        let Some(row) = sample.labels.row() else {
            write_sample(
                sample.name,
                |f| sample.labels.for_each(f),
                sample.value,
                &mut body,
            );
            return;
        };
        body.extend_from_slice(sample.name.as_bytes());
        body.push(b'{');
        body.extend_from_slice(rows.get(row));
        for (name, value) in sample.labels.own() {
            write_label(false, name, value.as_bytes(), &mut body);
        }
        body.extend_from_slice(b"} ");
        write_value(sample.value, &mut body);
        body.push(b'\n');
    });
    (body, count)
}
