//! Deflate pieces that can follow one another inside one gzip member: a
//! report's families are compressed once per poll and reused by every
//! gzip scrape ([`super::exposition`]).

use std::io::Write;

use bytes::Bytes;
use crc32fast::Hasher as Crc;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// A piece of the text as raw deflate blocks that end on a byte boundary
/// and are not final, so that pieces can follow one another inside one
/// gzip member; with the CRC and length of the text it holds.
#[derive(Debug, Clone)]
pub struct Deflated {
    pub blocks: Bytes,
    pub(super) crc: Crc,
    pub(super) len: u64,
}

impl Deflated {
    /// Compresses `text` as well as deflate can: a report's families are
    /// compressed once per poll, off the scrape path, and sent to every scrape.
    pub fn best(text: &[u8]) -> Self {
        let mut encoder =
            DeflateEncoder::new(Vec::with_capacity(text.len() / 8 + 64), Compression::best());
        // Writing to a Vec cannot fail; flush() ends on a byte-aligned sync point.
        let _ = encoder.write_all(text);
        let _ = encoder.flush();
        let mut blocks = std::mem::take(encoder.get_mut());
        blocks.shrink_to_fit();
        let mut crc = Crc::new();
        crc.update(text);
        Self {
            blocks: Bytes::from(blocks),
            crc,
            len: text.len() as u64,
        }
    }
}
