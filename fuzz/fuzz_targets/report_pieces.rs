//! The streaming parser fed in pieces gives what the whole answer gives:
//! the first byte chooses the piece size, the rest is the answer.
#![no_main]

use std::io::Read;

use cmu_exporter::export::{Exposition, SnapshotSpec, build_snapshot, build_snapshot_from};
use cmu_exporter::report::{BucketChoice, ReportApi};
use libfuzzer_sys::fuzz_target;

struct Pieces<'a> {
    bytes: &'a [u8],
    piece: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.piece.min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, doc)) = data.split_first() else {
        return;
    };
    let spec = SnapshotSpec {
        api: if first & 0x80 == 0 { ReportApi::Cmu } else { ReportApi::Esm },
        report: "fuzz".into(),
        account: None,
        path: None,
        choice: BucketChoice::Partial,
        now: jiff::Timestamp::from_second(1_795_343_400).expect("a time"),
        time_zone: jiff::tz::TimeZone::UTC,
        labels: Vec::new(),
        max_series: Some(10_000),
        computed_at: None,
    };
    let piece = usize::from(first & 0x3f) + 1;
    let whole = build_snapshot(doc, &spec);
    let mut reader = Pieces { bytes: doc, piece };
    let pieces = build_snapshot_from(&mut reader, &spec);
    match (whole, pieces) {
        (Ok(a), Ok(b)) => assert_eq!(
            Exposition::assemble([&a]).to_vec(),
            Exposition::assemble([&b]).to_vec(),
            "pieces of {piece} bytes"
        ),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "whole {:?} but pieces of {piece} bytes {:?}",
            a.map(|s| s.rows),
            b.map(|s| s.rows)
        ),
    }
});
