//! Which rows of a report become series: the rows of the newest bucket that
//! may be shown, one per label set, at most `max_series` series.
//!
//! [`Selection`] is the parser's [`RowSink`]. Rows stream in and only those
//! of the best bucket so far are kept (their dimension values in one arena,
//! their values in one vector); a newer bucket starts the selection over.
//! What they are as Prometheus data is said later ([`super::samples`]),
//! for the rows kept only.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::ops::Range;

use jiff::civil::DateTime;
use nohash_hasher::BuildNoHashHasher;

use crate::report::catalog::DURATION_METRICS;
use crate::report::{Bucket, BucketChoice, Columns, Row, RowSink};

/// The bucket whose rows are kept so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// No row kept yet.
    Nothing,
    /// Rows without time (a path with no time dimension).
    Timeless,
    Bucket(Bucket),
}

impl Shown {
    fn of(bucket: Option<Bucket>) -> Self {
        bucket.map_or(Shown::Timeless, Shown::Bucket)
    }
}

/// A kept row: its key in the arena and its values.
pub(super) struct Kept {
    key: Range<usize>,
    values: Range<usize>,
}

/// The rows to export, chosen as they stream in.
pub(super) struct Selection {
    now: DateTime,
    choice: BucketChoice,
    shown: Shown,
    /// The `Columns::version` the cached `durations` were computed for.
    columns_version: u32,
    /// The keys of kept rows: their dimension values, each after its length
    /// (four bytes), trailing empty ones left out. An empty value is no
    /// label, so equal keys are exactly equal label sets.
    arena: Vec<u8>,
    /// (metric index, value) pairs of kept rows.
    values: Vec<(u32, f64)>,
    kept: Vec<Kept>,
    /// Key hash -> the kept row with that key, to drop duplicates. A true
    /// 64-bit collision between different keys falls back to a scan.
    seen: HashMap<u64, u32, BuildNoHashHasher<u64>>,
    /// The last bucket judged and whether it may be shown (rows come grouped).
    judged: Option<(Option<Bucket>, bool)>,
    duplicates: usize,
    /// Metric indexes of the twelve `duration_*` ranges, when all are present.
    durations: Option<[usize; 12]>,
    /// Series kept so far, and the guard's limit.
    series: usize,
    max_series: usize,
    dropped: usize,
}

impl Selection {
    pub(super) fn new(choice: BucketChoice, now: DateTime, max_series: Option<usize>) -> Self {
        Self {
            now,
            choice,
            shown: Shown::Nothing,
            columns_version: u32::MAX,
            arena: Vec::new(),
            values: Vec::new(),
            kept: Vec::new(),
            seen: HashMap::default(),
            judged: None,
            duplicates: 0,
            durations: None,
            series: 0,
            max_series: max_series.unwrap_or(usize::MAX),
            dropped: 0,
        }
    }

    /// The rows kept, in the order they came.
    pub(super) fn kept(&self) -> &[Kept] {
        &self.kept
    }

    /// The shown bucket, if the report has time dimensions and a row qualified.
    pub(super) fn bucket(&self) -> Option<Bucket> {
        match self.shown {
            Shown::Bucket(b) => Some(b),
            Shown::Nothing | Shown::Timeless => None,
        }
    }

    /// Rows dropped because an identical label set was already kept.
    pub(super) fn duplicates(&self) -> usize {
        self.duplicates
    }

    /// Series dropped by the `max_series` guard.
    pub(super) fn dropped(&self) -> usize {
        self.dropped
    }

    /// Metric indexes of the twelve duration ranges, when the report has them all.
    pub(super) fn durations(&self) -> Option<[usize; 12]> {
        self.durations
    }

    /// Bytes of dimension values kept, all rows together.
    pub(super) fn value_bytes(&self) -> usize {
        self.arena.len()
    }

    /// The value of dimension `i` of `row` (in `Columns::dimensions`
    /// order), unless it is empty or missing: an empty value is no label.
    pub(super) fn dimension_value<'a>(&'a self, row: &Kept, i: usize) -> Option<&'a [u8]> {
        let mut key = &self.arena[row.key.clone()];
        for _ in 0..i {
            let (len, rest) = key.split_first_chunk::<4>()?;
            key = rest.get(u32::from_le_bytes(*len) as usize..)?;
        }
        let (len, rest) = key.split_first_chunk::<4>()?;
        let value = rest.get(..u32::from_le_bytes(*len) as usize)?;
        (!value.is_empty()).then_some(value)
    }

    /// The value of metric `m` in a kept row.
    pub(super) fn value(&self, row: &Kept, m: usize) -> Option<f64> {
        self.values[row.values.clone()]
            .iter()
            .find(|(i, _)| *i as usize == m)
            .map(|(_, v)| *v)
    }

    fn may_show(&mut self, bucket: Option<Bucket>) -> bool {
        if let Some((judged, verdict)) = self.judged
            && judged == bucket
        {
            return verdict;
        }
        let verdict = self.choice.shows(bucket, self.now);
        self.judged = Some((bucket, verdict));
        verdict
    }

    fn start_over(&mut self, bucket: Option<Bucket>) {
        self.shown = Shown::of(bucket);
        self.arena.clear();
        self.values.clear();
        self.kept.clear();
        self.seen.clear();
        self.duplicates = 0;
        self.series = 0;
        self.dropped = 0;
    }
}

impl RowSink for Selection {
    fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String> {
        use std::cmp::Ordering;
        if !self.may_show(row.bucket) {
            return Ok(());
        }
        // Rows without time sort before every bucket, as `Option` does.
        let against_shown = match self.shown {
            Shown::Nothing => Ordering::Greater,
            Shown::Timeless => row.bucket.map_or(Ordering::Equal, |_| Ordering::Greater),
            Shown::Bucket(best) => row.bucket.map_or(Ordering::Less, |b| b.cmp(&best)),
        };
        match against_shown {
            Ordering::Less => return Ok(()),
            Ordering::Equal => {}
            Ordering::Greater => self.start_over(row.bucket),
        }
        if self.columns_version != columns.version {
            let position = |name: &str| columns.metrics.iter().position(|m| m == name);
            let mut durations = [0; 12];
            let mut all = true;
            for (slot, (name, _)) in durations.iter_mut().zip(DURATION_METRICS) {
                match position(name) {
                    Some(m) => *slot = m,
                    None => all = false,
                }
            }
            self.durations = all.then_some(durations);
            self.columns_version = columns.version;
        }
        let start = self.arena.len();
        let used = row.dimensions.iter().rposition(|v| !v.is_empty());
        for value in &row.dimensions[..used.map_or(0, |last| last + 1)] {
            self.arena
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(value);
        }
        let key = start..self.arena.len();
        let hash = rustc_hash::FxBuildHasher.hash_one(&self.arena[key.clone()]);
        let index = self.kept.len() as u32;
        match self.seen.entry(hash) {
            Entry::Occupied(e) => {
                let text = &self.arena[key.clone()];
                let same = &self.arena[self.kept[*e.get() as usize].key.clone()] == text
                    || self.kept.iter().any(|k| &self.arena[k.key.clone()] == text);
                if same {
                    self.arena.truncate(start);
                    self.duplicates += 1;
                    return Ok(());
                }
            }
            Entry::Vacant(e) => {
                e.insert(index);
            }
        }
        let present = row.metrics.iter().filter(|v| v.is_some()).count();
        let row_series = present + usize::from(self.durations.is_some());
        if self.series + row_series > self.max_series {
            self.arena.truncate(start);
            self.dropped += row_series;
            if self.seen.get(&hash) == Some(&index) {
                self.seen.remove(&hash);
            }
            return Ok(());
        }
        self.series += row_series;
        let first = self.values.len();
        for (m, value) in row.metrics.iter().enumerate() {
            if let Some(v) = value {
                self.values.push((m as u32, *v));
            }
        }
        self.kept.push(Kept {
            key,
            values: first..self.values.len(),
        });
        Ok(())
    }
}
