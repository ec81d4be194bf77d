//! OpenMetrics text with timestamps, as `promtool tsdb
//! create-blocks-from openmetrics` reads it: the file `backfill` writes.

use std::ops::Range;

use super::text::{write_header_escaped, write_label};
use crate::export::samples::Family;
use crate::export::snapshot::FamilyKind;
use crate::names::write_value;

/// The line that ends an OpenMetrics exposition.
pub const EOF: &[u8] = b"# EOF\n";

/// Appends a family's `# HELP` and `# TYPE` lines (OpenMetrics escapes the
/// quote in HELP too).
pub fn write_header(name: &str, help: &str, kind: FamilyKind, out: &mut Vec<u8>) {
    write_header_escaped(name, help, kind, escape_help, out);
}

/// A HELP text escaped as OpenMetrics wants it: backslash, newline, quote.
fn escape_help(help: &str, out: &mut Vec<u8>) {
    for c in help.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '"' => out.extend_from_slice(b"\\\""),
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Appends `family`'s samples stamped `timestamp` (Unix seconds), each
/// with the `extra` labels after its own, in the byte order of their lines
/// (one order whatever the order of Adobe's rows). `series` sees each
/// series' name and own labels (without the extra ones). Returns the
/// number of samples.
pub fn write_family(
    family: &Family<'_>,
    extra: &[(String, String)],
    timestamp: i64,
    out: &mut Vec<u8>,
    mut series: impl FnMut(&[u8]),
) -> usize {
    let mut lines = Vec::new();
    let mut spans: Vec<Range<usize>> = Vec::new();
    let stamp = format!(" {timestamp}\n");
    family.for_each(|sample| {
        let start = lines.len();
        lines.extend_from_slice(sample.name.as_bytes());
        let open = lines.len();
        lines.push(b'{');
        let mut first = true;
        sample.labels.for_each(|name, value| {
            write_label(first, name, value, &mut lines);
            first = false;
        });
        let own = lines.len();
        for (name, value) in extra {
            write_label(first, name, value.as_bytes(), &mut lines);
            first = false;
        }
        if first {
            lines.truncate(open); // No label: no braces.
        } else {
            lines.push(b'}');
        }
        series(&lines[start..own.min(lines.len())]);
        lines.push(b' ');
        write_value(sample.value, &mut lines);
        lines.extend_from_slice(stamp.as_bytes());
        spans.push(start..lines.len());
    });
    spans.sort_unstable_by(|a, b| lines[a.clone()].cmp(&lines[b.clone()]));
    out.reserve(lines.len());
    for span in &spans {
        out.extend_from_slice(&lines[span.clone()]);
    }
    spans.len()
}
