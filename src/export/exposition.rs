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
use flate2::write::GzEncoder;

use super::snapshot::{ReportSnapshot, write_family_header};

/// The assembled exposition of every report's last good snapshot.
#[derive(Debug, Default)]
pub struct Exposition {
    /// Plain text, ready to serve.
    pub text: Bytes,
    /// Gzip of `text`, made on first demand and kept until the next poll.
    gzip: OnceLock<Bytes>,
    /// CMU series in `text` (info metrics excluded).
    pub series: usize,
}

impl Exposition {
    /// Groups the snapshots' families by name and encodes them.
    pub fn assemble<'a>(snapshots: impl IntoIterator<Item = &'a ReportSnapshot>) -> Self {
        let mut families: BTreeMap<&str, (&str, Vec<&[u8]>)> = BTreeMap::new();
        let mut series = 0;
        let mut size = 0;
        for snapshot in snapshots {
            series += snapshot.series;
            for family in &snapshot.families {
                let entry = families
                    .entry(&family.name)
                    .or_insert((&family.help, Vec::new()));
                entry.1.push(&family.body);
                size += family.body.len();
            }
        }
        let mut text = Vec::with_capacity(size + families.len() * 200);
        for (name, (help, bodies)) in families {
            write_family_header(name, help, &mut text);
            for body in bodies {
                text.extend_from_slice(body);
            }
        }
        Self {
            text: Bytes::from(text),
            gzip: OnceLock::new(),
            series,
        }
    }

    /// The gzip-compressed text, compressed at most once.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut encoder =
                    GzEncoder::new(Vec::with_capacity(self.text.len() / 8), Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&self.text);
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}
