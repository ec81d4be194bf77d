//! Prometheus remote write 1.0: a `WriteRequest` (protobuf) of one sample
//! per series, snappy block-compressed, as `POST /api/v1/write` takes it.
//!
//! The protobuf is written by hand: four messages of two or three fields
//! each (`WriteRequest.timeseries = 1`; `TimeSeries.labels = 1`,
//! `.samples = 2`; `Label.name = 1`, `.value = 2`; `Sample.value = 1`,
//! `.timestamp = 2`, milliseconds). Labels are sorted by name, `__name__`
//! among them, as the spec requires.

use crate::export::samples::Family;

/// The headers every remote-write 1.0 request carries.
pub const HEADERS: [(&str, &str); 3] = [
    ("content-encoding", "snappy"),
    ("content-type", "application/x-protobuf"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// A `WriteRequest` being written: each series appended as it comes.
#[derive(Debug, Default)]
pub struct WriteRequest {
    body: Vec<u8>,
    series: usize,
}

impl WriteRequest {
    /// Appends every sample of `family` as a series of one sample at
    /// `timestamp_ms`, with the `extra` labels (`job`, `instance`, ...)
    /// beside its own; an extra label never replaces one of the sample's.
    pub fn append_family(
        &mut self,
        family: &Family<'_>,
        extra: &[(String, String)],
        timestamp_ms: i64,
    ) {
        let mut labels: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut series = Vec::new();
        family.for_each(|sample| {
            labels.clear();
            labels.push((b"__name__".to_vec(), sample.name.as_bytes().to_vec()));
            sample
                .labels
                .for_each(|name, value| labels.push((name.as_bytes().to_vec(), value.to_vec())));
            for (name, value) in extra {
                if !labels.iter().any(|(n, _)| n == name.as_bytes()) {
                    labels.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
                }
            }
            labels.sort_by(|a, b| a.0.cmp(&b.0));
            series.clear();
            for (name, value) in &labels {
                let mut label = Vec::with_capacity(name.len() + value.len() + 4);
                bytes_field(1, name, &mut label);
                bytes_field(2, value, &mut label);
                bytes_field(1, &label, &mut series);
            }
            let mut point = Vec::with_capacity(20);
            point.push(0x09); // field 1, 64-bit
            point.extend_from_slice(&sample.value.to_le_bytes());
            point.push(0x10); // field 2, varint
            varint(timestamp_ms as u64, &mut point);
            bytes_field(2, &point, &mut series);
            bytes_field(1, &series, &mut self.body);
            self.series += 1;
        });
    }

    /// Series appended so far.
    pub fn series(&self) -> usize {
        self.series
    }

    /// The request body: the protobuf, snappy block-compressed.
    pub fn compressed(&self) -> Vec<u8> {
        // Compressing a buffer in memory cannot fail but for a size beyond
        // what the format holds (4 GiB): such a request is sent empty.
        snap::raw::Encoder::new()
            .compress_vec(&self.body)
            .unwrap_or_default()
    }
}

/// Appends a length-delimited field.
fn bytes_field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
