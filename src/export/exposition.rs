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
use crc32fast::Hasher as Crc;
use flate2::Compression;
use flate2::write::DeflateEncoder;

use super::deflated::Deflated;
use super::format::text::write_header;
use super::snapshot::{FamilyKind, ReportSnapshot};

/// What follows the report series on every page (the self-metrics), with
/// its final deflate piece made on first demand: a scrape that finds the
/// same tail as the one before compresses nothing.
#[derive(Debug)]
pub struct Tail {
    pub text: Bytes,
    last: OnceLock<(Bytes, Crc)>,
}

impl Tail {
    pub fn new(text: Bytes) -> Self {
        Self {
            text,
            last: OnceLock::new(),
        }
    }

    /// The text as the final deflate block of a member, and its CRC.
    fn last(&self) -> &(Bytes, Crc) {
        self.last.get_or_init(|| {
            let mut encoder = DeflateEncoder::new(
                Vec::with_capacity(self.text.len() / 4 + 64),
                Compression::fast(),
            );
            // Writing to a Vec cannot fail.
            let _ = encoder.write_all(&self.text);
            let blocks = encoder.finish().unwrap_or_default();
            let mut crc = Crc::new();
            crc.update(&self.text);
            (Bytes::from(blocks), crc)
        })
    }
}

/// The start of the gzip member: its header and the report series as
/// deflate pieces in one buffer (one write per scrape, not one per family),
/// with the CRC and length of the text they hold.
#[derive(Debug)]
struct Head {
    blob: Bytes,
    crc: Crc,
    len: u64,
}

/// The assembled exposition of every report's last good snapshot.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The text, as chunks to send in order: family headers, and the
    /// snapshots' own bodies shared (not copied) with the snapshots.
    chunks: Vec<Bytes>,
    /// The same text as deflate pieces (the bodies' own, compressed at
    /// their poll), assembled on first demand and kept until the next poll.
    deflated: OnceLock<Head>,
    /// For each chunk, its body's pieces when the snapshot brought them.
    bodies: Vec<Option<Deflated>>,
    /// Total length of the chunks.
    len: usize,
    /// CMU series in the text (info metrics excluded).
    pub series: usize,
}

/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

impl Exposition {
    /// Groups the snapshots' families by name and encodes them.
    pub fn assemble<'a>(snapshots: impl IntoIterator<Item = &'a ReportSnapshot>) -> Self {
        type Bodies<'a> = Vec<(&'a Bytes, Option<&'a Deflated>)>;
        let mut families: BTreeMap<&str, (&str, FamilyKind, Bodies<'a>)> = BTreeMap::new();
        let mut series = 0;
        for snapshot in snapshots {
            series += snapshot.series;
            for family in &snapshot.families {
                let entry =
                    families
                        .entry(&family.name)
                        .or_insert((&family.help, family.kind, Vec::new()));
                entry.2.push((&family.body, family.deflated.as_ref()));
            }
        }
        let mut chunks = Vec::with_capacity(families.len() * 2);
        let mut bodies = Vec::with_capacity(families.len() * 2);
        for (name, (help, kind, family_bodies)) in families {
            let mut header = Vec::with_capacity(help.len() + 2 * name.len() + 32);
            write_header(name, help, kind, &mut header);
            chunks.push(Bytes::from(header));
            bodies.push(None);
            for (body, deflated) in family_bodies {
                chunks.push(body.clone());
                bodies.push(deflated.cloned());
            }
        }
        let len = chunks.iter().map(Bytes::len).sum();
        Self {
            chunks,
            deflated: OnceLock::new(),
            bodies,
            len,
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

    /// One gzip member holding the text followed by `tail`, as chunks to
    /// send in order. The report bodies were compressed at their poll, the
    /// family headers once after it, and the tail once per change of the
    /// self-metrics: a scrape itself only combines two CRCs.
    pub fn gzip_with(&self, tail: &Tail) -> Vec<Bytes> {
        let head = self.deflated.get_or_init(|| {
            let mut crc = Crc::new();
            let mut len = 0;
            let pieces: Vec<Deflated> = self
                .chunks
                .iter()
                .zip(&self.bodies)
                .map(|(chunk, ready)| ready.clone().unwrap_or_else(|| Deflated::best(chunk)))
                .collect();
            let size = GZIP_HEADER.len() + pieces.iter().map(|p| p.blocks.len()).sum::<usize>();
            let mut blob = Vec::with_capacity(size);
            blob.extend_from_slice(&GZIP_HEADER);
            for piece in &pieces {
                crc.combine(&piece.crc);
                len += piece.len;
                blob.extend_from_slice(&piece.blocks);
            }
            Head {
                blob: Bytes::from(blob),
                crc,
                len,
            }
        });
        let (last, tail_crc) = tail.last();
        let mut crc = head.crc.clone();
        crc.combine(tail_crc);
        let len = head.len + tail.text.len() as u64;
        let mut end = Vec::with_capacity(last.len() + 8);
        end.extend_from_slice(last);
        end.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE: the length modulo 2^32, as gzip defines it.
        end.extend_from_slice(&(len as u32).to_le_bytes());
        vec![head.blob.clone(), Bytes::from(end)]
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
            deflated: None,
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
        // One snapshot deflated at its poll, one not (compressed at assembly).
        let mut a = snapshot("a", 1);
        a.deflate();
        let b = snapshot("b", 2);
        let exposition = Exposition::assemble([&a, &b]);
        for tail in [&b"# self metrics\nx 1\n"[..], b""] {
            let tail_piece = Tail::new(Bytes::from_static(tail));
            let gz: Vec<u8> = exposition.gzip_with(&tail_piece).concat();
            assert!(gz.len() < exposition.len() + tail.len() + 64);
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain, [&exposition.to_vec()[..], tail].concat());
        }
    }
}
