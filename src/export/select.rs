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

use nohash_hasher::BuildNoHashHasher;

use crate::report::catalog::DURATION_METRICS;
use crate::report::{Bucket, BucketChoice, Columns, Computed, Row, RowSink};

/// The bucket whose rows are kept so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Shown {
    /// No row kept yet.
    #[default]
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

/// The rows of one bucket kept so far.
#[derive(Default)]
struct Generation {
    shown: Shown,
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
    duplicates: usize,
    /// Series kept so far.
    series: usize,
    dropped: usize,
    /// A digest of the rows kept, whatever their order: it changes when
    /// Adobe recomputes the bucket with other values.
    digest: u64,
}

impl Generation {
    fn start_over(&mut self, bucket: Option<Bucket>) {
        self.shown = Shown::of(bucket);
        self.arena.clear();
        self.values.clear();
        self.kept.clear();
        self.seen.clear();
        self.duplicates = 0;
        self.series = 0;
        self.dropped = 0;
        self.digest = 0;
    }
}

/// The rows to export, chosen as they stream in: those of the newest
/// bucket and, unless the partial bucket is wanted, of the one before it,
/// since which of them is complete is known only once the answer was read
/// whole ([`Selection::finish`]).
pub(super) struct Selection {
    choice: BucketChoice,
    /// The newest bucket's rows (after `finish`: the rows shown).
    top: Generation,
    /// The rows of the newest bucket before `top`'s.
    below: Generation,
    /// The `Columns::version` the cached `durations` were computed for.
    columns_version: u32,
    /// Metric indexes of the twelve `duration_*` ranges, when all are present.
    durations: Option<[usize; 12]>,
    /// The guard's limit of series.
    max_series: usize,
}

impl Selection {
    pub(super) fn new(choice: BucketChoice, max_series: Option<usize>) -> Self {
        Self {
            choice,
            top: Generation::default(),
            below: Generation::default(),
            columns_version: u32::MAX,
            durations: None,
            max_series: max_series.unwrap_or(usize::MAX),
        }
    }

    /// The newest bucket any row had (`None` before `finish` also when the
    /// report has no time dimension).
    pub(super) fn newest(&self) -> Option<Bucket> {
        match self.top.shown {
            Shown::Bucket(b) => Some(b),
            Shown::Nothing | Shown::Timeless => None,
        }
    }

    /// Keeps the rows to show once the answer was read: the newest bucket
    /// that `computed` says is complete (any, for the partial choice).
    /// Returns the digest of the newest bucket's rows.
    pub(super) fn finish(&mut self, computed: &Computed) -> u64 {
        let digest = self.top.digest;
        let bucket_of = |g: &Generation| match g.shown {
            Shown::Bucket(b) => Some(b),
            Shown::Nothing | Shown::Timeless => None,
        };
        let shows = |g: &Generation| match g.shown {
            Shown::Nothing => false,
            Shown::Timeless => true,
            Shown::Bucket(b) => computed.complete(Some(b)),
        };
        if self.choice == BucketChoice::Partial || shows(&self.top) {
            self.below = Generation::default();
        } else if shows(&self.below) && bucket_of(&self.below) < bucket_of(&self.top) {
            std::mem::swap(&mut self.top, &mut self.below);
            self.below = Generation::default();
        } else {
            self.top.start_over(None);
            self.top.shown = Shown::Nothing;
            self.below = Generation::default();
        }
        digest
    }

    /// The rows kept, in the order they came.
    pub(super) fn kept(&self) -> &[Kept] {
        &self.top.kept
    }

    /// The shown bucket, if the report has time dimensions and a row qualified.
    pub(super) fn bucket(&self) -> Option<Bucket> {
        self.newest()
    }

    /// Rows dropped because an identical label set was already kept.
    pub(super) fn duplicates(&self) -> usize {
        self.top.duplicates
    }

    /// Series dropped by the `max_series` guard.
    pub(super) fn dropped(&self) -> usize {
        self.top.dropped
    }

    /// Metric indexes of the twelve duration ranges, when the report has them all.
    pub(super) fn durations(&self) -> Option<[usize; 12]> {
        self.durations
    }

    /// Bytes of dimension values kept, all rows together.
    pub(super) fn value_bytes(&self) -> usize {
        self.top.arena.len()
    }

    /// The value of dimension `i` of `row` (in `Columns::dimensions`
    /// order), unless it is empty or missing: an empty value is no label.
    pub(super) fn dimension_value<'a>(&'a self, row: &Kept, i: usize) -> Option<&'a [u8]> {
        let mut key = &self.top.arena[row.key.clone()];
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
        self.top.values[row.values.clone()]
            .iter()
            .find(|(i, _)| *i as usize == m)
            .map(|(_, v)| *v)
    }

    /// The generation a row of `bucket` belongs to, if any: a newer bucket
    /// than the newest pushes the newest down (or out, for the partial
    /// choice).
    fn generation_for(&mut self, bucket: Option<Bucket>) -> Option<&mut Generation> {
        use std::cmp::Ordering;
        // Rows without time sort before every bucket, as `Option` does.
        let against = |shown: Shown| match shown {
            Shown::Nothing => Ordering::Greater,
            Shown::Timeless => bucket.map_or(Ordering::Equal, |_| Ordering::Greater),
            Shown::Bucket(best) => bucket.map_or(Ordering::Less, |b| b.cmp(&best)),
        };
        let keep_below = self.choice == BucketChoice::Complete;
        match against(self.top.shown) {
            Ordering::Equal => Some(&mut self.top),
            Ordering::Greater => {
                if keep_below && self.top.shown != Shown::Nothing {
                    std::mem::swap(&mut self.top, &mut self.below);
                }
                self.top.start_over(bucket);
                Some(&mut self.top)
            }
            Ordering::Less if keep_below => match against(self.below.shown) {
                Ordering::Equal => Some(&mut self.below),
                Ordering::Greater => {
                    self.below.start_over(bucket);
                    Some(&mut self.below)
                }
                Ordering::Less => None,
            },
            Ordering::Less => None,
        }
    }
}

impl RowSink for Selection {
    fn row(&mut self, columns: &Columns, row: &Row<'_>) -> Result<(), String> {
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
        let (max_series, has_durations) = (self.max_series, self.durations.is_some());
        let Some(g) = self.generation_for(row.bucket) else {
            return Ok(());
        };
        let start = g.arena.len();
        let used = row.dimensions.iter().rposition(|v| !v.is_empty());
        for value in &row.dimensions[..used.map_or(0, |last| last + 1)] {
            g.arena
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
            g.arena.extend_from_slice(value);
        }
        let key = start..g.arena.len();
        let hash = rustc_hash::FxBuildHasher.hash_one(&g.arena[key.clone()]);
        let index = g.kept.len() as u32;
        match g.seen.entry(hash) {
            Entry::Occupied(e) => {
                let text = &g.arena[key.clone()];
                let same = &g.arena[g.kept[*e.get() as usize].key.clone()] == text
                    || g.kept.iter().any(|k| &g.arena[k.key.clone()] == text);
                if same {
                    g.arena.truncate(start);
                    g.duplicates += 1;
                    return Ok(());
                }
            }
            Entry::Vacant(e) => {
                e.insert(index);
            }
        }
        // The row's key and values folded into the bucket's digest (order
        // free): a multiply and a rotation per value, no hashing.
        let mut digest = hash;
        let mut present = 0;
        for value in row.metrics.iter().flatten() {
            digest = (digest ^ value.to_bits())
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
            present += 1;
        }
        g.digest ^= digest;
        let row_series = present + usize::from(has_durations);
        if g.series + row_series > max_series {
            g.arena.truncate(start);
            g.dropped += row_series;
            if g.seen.get(&hash) == Some(&index) {
                g.seen.remove(&hash);
            }
            return Ok(());
        }
        g.series += row_series;
        let first = g.values.len();
        for (m, value) in row.metrics.iter().enumerate() {
            if let Some(v) = value {
                g.values.push((m as u32, *v));
            }
        }
        g.kept.push(Kept {
            key,
            values: first..g.values.len(),
        });
        Ok(())
    }
}
