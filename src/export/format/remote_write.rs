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
/// A request can be split between its series (a store that refuses a
/// request for one bad sample is sent halves until that one is isolated).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteRequest {
    body: Vec<u8>,
    /// Where each series starts in `body`.
    starts: Vec<usize>,
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
        family.for_each(|sample| {
            self.append_series(
                sample.name,
                |f| sample.labels.for_each(f),
                sample.value,
                extra,
                timestamp_ms,
            );
        });
    }

    /// Appends one series of one sample: `name`, the labels `labels` gives
    /// (each to the function it is handed) and the `extra` ones it lacks.
    pub fn append_series(
        &mut self,
        name: &str,
        labels: impl FnOnce(&mut dyn FnMut(&str, &[u8])),
        value: f64,
        extra: &[(String, String)],
        timestamp_ms: i64,
    ) {
        let mut pairs: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(8 + extra.len());
        let mut owned: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        labels(&mut |name, value| owned.push((name.as_bytes().to_vec(), value.to_vec())));
        pairs.push((b"__name__", name.as_bytes().to_vec()));
        for (n, v) in &owned {
            pairs.push((n, v.clone()));
        }
        for (n, v) in extra {
            if !pairs.iter().any(|(have, _)| *have == n.as_bytes()) {
                pairs.push((n.as_bytes(), v.as_bytes().to_vec()));
            }
        }
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut series = Vec::with_capacity(64);
        for (name, value) in &pairs {
            let mut label = Vec::with_capacity(name.len() + value.len() + 4);
            bytes_field(1, name, &mut label);
            bytes_field(2, value, &mut label);
            bytes_field(1, &label, &mut series);
        }
        let mut point = Vec::with_capacity(20);
        point.push(0x09); // field 1, 64-bit
        point.extend_from_slice(&value.to_le_bytes());
        point.push(0x10); // field 2, varint
        varint(timestamp_ms as u64, &mut point);
        bytes_field(2, &point, &mut series);
        self.starts.push(self.body.len());
        bytes_field(1, &series, &mut self.body);
    }

    /// Appends every series of `other`, after this request's own.
    pub fn append(&mut self, other: WriteRequest) {
        let at = self.body.len();
        self.starts.extend(other.starts.iter().map(|s| s + at));
        self.body.extend_from_slice(&other.body);
    }

    /// Series appended so far.
    pub fn series(&self) -> usize {
        self.starts.len()
    }

    /// Bytes of the protobuf, before compression.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The request cut in two halves of whole series (the second empty
    /// for a request of one series).
    pub fn split(mut self) -> (WriteRequest, WriteRequest) {
        let half = self.starts.len() / 2;
        if half == 0 {
            return (self, WriteRequest::default());
        }
        let at = self.starts[half];
        let tail = WriteRequest {
            body: self.body.split_off(at),
            starts: self.starts.split_off(half).iter().map(|s| s - at).collect(),
        };
        (self, tail)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: usize) -> WriteRequest {
        let mut r = WriteRequest::default();
        for i in 0..n {
            let v = i.to_string();
            r.append_series("m", |f| f("i", v.as_bytes()), i as f64, &[], 1000);
        }
        r
    }

    #[test]
    fn halves_are_the_same_series_as_the_whole() {
        let whole = request(5);
        let (head, tail) = whole.clone().split();
        assert_eq!((head.series(), tail.series()), (2, 3));
        let mut joined = head.body.clone();
        joined.extend_from_slice(&tail.body);
        assert_eq!(joined, whole.body);
        assert_eq!(tail, request(5).split().1);
        let (one, none) = request(1).split();
        assert_eq!((one.series(), none.series()), (1, 0));
        // Each half's offsets point at its own series.
        let (a, b) = tail.split();
        assert_eq!((a.series(), b.series()), (1, 2));
        assert_eq!(b.starts[0], 0);
    }

    #[test]
    fn labels_are_sorted_with_the_name_and_extra_ones_never_replace_own() {
        let mut r = WriteRequest::default();
        let extra = vec![
            ("job".to_owned(), "x".to_owned()),
            ("a".to_owned(), "extra".to_owned()),
        ];
        r.append_series("m", |f| f("a", b"own"), 1.0, &extra, 5);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let at = |s: &str| body.find(s).unwrap();
        assert!(at("__name__") < at("own") && at("own") < at("job"));
        assert!(!body.contains("extra"));
    }
}
