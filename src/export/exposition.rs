//! The `/metrics` body of all reports, assembled once per poll.
//!
//! The text format wants every family's samples together under one HELP and
//! TYPE, while several reports may feed the same family (`cmu_active_users`
//! with different `report` labels). Assembly groups the reports' encoded
//! chunks by family; it runs when a poll publishes, never on a scrape.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::encode::write_family_header;
use super::snapshot::{FamilyKind, ReportSnapshot};

/// The assembled exposition of every report's last good snapshot.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The text, as chunks to send in order: family headers, and the
    /// snapshots' own bodies shared (not copied) with the snapshots.
    chunks: Vec<Bytes>,
    /// Total length of the chunks.
    len: usize,
    /// Compressed `text`, made on first demand and kept until the next poll.
    compressed: OnceLock<Compressed>,
    /// CMU series in `text` (info metrics excluded).
    pub series: usize,
}

/// A gzip member left open: header plus deflate blocks of `text`, ending on
/// a sync flush so more blocks can follow, and the CRC of what it holds.
#[derive(Debug)]
struct Compressed {
    head: Bytes,
    crc: flate2::Crc,
}

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Exposition {
    /// Groups the snapshots' families by name and encodes them.
    pub fn assemble<'a>(snapshots: impl IntoIterator<Item = &'a ReportSnapshot>) -> Self {
        let mut families: BTreeMap<&str, (&str, FamilyKind, Vec<&Bytes>)> = BTreeMap::new();
        let mut series = 0;
        let mut size = 0;
        for snapshot in snapshots {
            series += snapshot.series;
            for family in &snapshot.families {
                let entry =
                    families
                        .entry(&family.name)
                        .or_insert((&family.help, family.kind, Vec::new()));
                entry.2.push(&family.body);
                size += family.body.len();
            }
        }
        let mut chunks = Vec::with_capacity(families.len() * 2);
        for (name, (help, kind, bodies)) in families {
            let mut header = Vec::with_capacity(help.len() + 2 * name.len() + 32);
            write_family_header(name, help, kind, &mut header);
            chunks.push(Bytes::from(header));
            chunks.extend(bodies.into_iter().cloned());
        }
        let len = chunks.iter().map(Bytes::len).sum();
        debug_assert!(len >= size);
        Self {
            chunks,
            len,
            compressed: OnceLock::new(),
            series,
        }
    }

    /// The chunks to send, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Length of the whole text in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no text at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole text in one buffer (for `render` and tests; serving uses the chunks).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut text = Vec::with_capacity(self.len);
        self.chunks.iter().for_each(|c| text.extend_from_slice(c));
        text
    }

    /// One gzip member holding `text` followed by `tail`, as two chunks to
    /// send in order. `text` is compressed once per poll; only `tail` (the
    /// self-metrics, a few kilobytes) is compressed per scrape.
    pub fn gzip_with(&self, tail: &[u8]) -> [Bytes; 2] {
        let compressed = self.compressed.get_or_init(|| {
            let mut encoder = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::fast());
            // Writing to a Vec cannot fail; flush() ends on a byte-aligned sync point.
            for chunk in &self.chunks {
                let _ = encoder.write_all(chunk);
            }
            let _ = encoder.flush();
            let head = std::mem::take(encoder.get_mut());
            let mut crc = flate2::Crc::new();
            self.chunks.iter().for_each(|c| crc.update(c));
            Compressed {
                head: Bytes::from(head),
                crc,
            }
        });
        let mut encoder =
            DeflateEncoder::new(Vec::with_capacity(tail.len() / 4 + 64), Compression::fast());
        let _ = encoder.write_all(tail);
        let mut rest = encoder.finish().unwrap_or_default();
        let mut crc = flate2::Crc::new();
        crc.update(tail);
        let mut total = flate2::Crc::new();
        total.combine(&compressed.crc);
        total.combine(&crc);
        rest.extend_from_slice(&total.sum().to_le_bytes());
        rest.extend_from_slice(&total.amount().to_le_bytes());
        [compressed.head.clone(), Bytes::from(rest)]
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::export::Family;

    fn snapshot(report: &str, value: u32) -> ReportSnapshot {
        let body = format!("cmu_active_users{{report=\"{report}\"}} {value}\n").into_bytes();
        let family = Family {
            name: "cmu_active_users".into(),
            kind: FamilyKind::Gauge,
            help: "Users.".into(),
            body: body.into(),
        };
        ReportSnapshot {
            families: vec![family],
            series: 1,
            ..Default::default()
        }
    }

    #[test]
    fn families_of_several_reports_share_one_header() {
        let (a, b) = (snapshot("a", 1), snapshot("b", 2));
        let text = Exposition::assemble([&a, &b]).to_vec();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "# HELP cmu_active_users Users.\n# TYPE cmu_active_users gauge\n\
             cmu_active_users{report=\"a\"} 1\ncmu_active_users{report=\"b\"} 2\n"
        );
    }

    #[test]
    fn gzip_member_decodes_to_text_and_tail() {
        let a = snapshot("a", 1);
        let exposition = Exposition::assemble([&a]);
        for tail in [&b"# self metrics\nx 1\n"[..], b""] {
            let gz: Vec<u8> = exposition.gzip_with(tail).concat();
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, [&exposition.to_vec()[..], tail].concat());
        }
    }
}
