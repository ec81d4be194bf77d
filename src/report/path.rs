//! Report paths (`tenant/year/month/day/hour/mvpd`) and their time granularity.

use std::fmt;

use super::catalog::{TIME_DIMENSIONS, is_time_dimension};

/// A validated CMU report path: the dimensions to GROUP BY, in order.
///
/// Slashes are normalised (Adobe's own examples carry a trailing slash), each
/// segment is a lowercase dimension name, no dimension repeats, and the time
/// dimensions appear in calendar order starting at `year`, none skipped
/// (other dimensions may stand between them: Adobe's tree has
/// `tenant/year/month/day/mvpd/hour`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportPath {
    segments: Vec<String>,
}

/// Why a string is not a report path. The message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "segment `{0}` is not a dimension name: use lowercase letters, digits and dashes, e.g. `application-id`"
    )]
    BadSegment(String),
    #[error("dimension `{0}` appears twice: a report groups by each dimension once")]
    Repeated(String),
    #[error(
        "time dimensions must come in the order year/month/day/hour/minute, starting at year, none skipped (found `{0}` out of place): e.g. `tenant/year/month/day/hour/mvpd`"
    )]
    TimeOrder(String),
}

impl ReportPath {
    /// Parses and normalises a path; the empty path is the CMU root.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let segments: Vec<String> = text
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for (i, seg) in segments.iter().enumerate() {
            let ok = seg.starts_with(|c: char| c.is_ascii_lowercase())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return Err(PathError::BadSegment(seg.clone()));
            }
            if segments[..i].contains(seg) {
                return Err(PathError::Repeated(seg.clone()));
            }
        }
        for (k, name) in segments.iter().filter(|s| is_time_dimension(s)).enumerate() {
            if name.as_str() != TIME_DIMENSIONS[k] {
                return Err(PathError::TimeOrder(name.clone()));
            }
        }
        Ok(Self { segments })
    }

    /// The dimensions, in path order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether `dimension` is one of this path's segments.
    pub fn contains(&self, dimension: &str) -> bool {
        self.segments.iter().any(|s| s == dimension)
    }

    /// The finest time dimension of the path.
    pub fn granularity(&self) -> Granularity {
        let depth = self
            .segments
            .iter()
            .filter(|s| is_time_dimension(s))
            .count();
        Granularity::from_depth(depth)
    }

    /// The path one level up (`roll-up`), or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.segments.split_last()?;
        Some(Self {
            segments: rest.to_vec(),
        })
    }

    /// This path with one more dimension (`drill-down`).
    pub fn child(&self, dimension: &str) -> Self {
        let mut segments = self.segments.clone();
        segments.push(dimension.to_owned());
        Self { segments }
    }

    /// The CMU root: no dimension.
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// Whether this is the CMU root (no dimension).
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

impl fmt::Display for ReportPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

/// The size of a report's time buckets: its finest time dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    /// No time dimension: one bucket covering the whole query.
    Total,
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl Granularity {
    /// Granularity of a path with `depth` time dimensions (year=1 ... minute=5).
    pub fn from_depth(depth: usize) -> Self {
        match depth {
            0 => Self::Total,
            1 => Self::Year,
            2 => Self::Month,
            3 => Self::Day,
            4 => Self::Hour,
            _ => Self::Minute,
        }
    }

    /// Number of time dimensions a row of this granularity carries.
    pub fn depth(self) -> usize {
        self as usize
    }

    /// Lowercase name, as used in labels and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Year => "year",
            Self::Month => "month",
            Self::Day => "day",
            Self::Hour => "hour",
            Self::Minute => "minute",
        }
    }

    /// The calendar span of one bucket (`None` for `Total`).
    pub fn span(self) -> Option<jiff::Span> {
        use jiff::ToSpan;
        Some(match self {
            Self::Total => return None,
            Self::Year => 1.year(),
            Self::Month => 1.month(),
            Self::Day => 1.day(),
            Self::Hour => 1.hour(),
            Self::Minute => 1.minute(),
        })
    }

    /// The longest a bucket lasts (a day of a clock change, a long month,
    /// a leap year); zero for `Total`.
    pub fn longest(self) -> std::time::Duration {
        std::time::Duration::from_secs(match self {
            Self::Total => 0,
            Self::Year => 366 * 86_400,
            Self::Month => 31 * 86_400,
            Self::Day => 25 * 3600,
            Self::Hour => 3600,
            Self::Minute => 60,
        })
    }

    /// Start of the bucket that contains `at`.
    pub fn floor(self, at: jiff::civil::DateTime) -> jiff::civil::DateTime {
        let d = at;
        let (y, mo, da, h, mi) = (d.year(), d.month(), d.day(), d.hour(), d.minute());
        let parts = match self {
            Self::Total => return d,
            Self::Year => (y, 1, 1, 0, 0),
            Self::Month => (y, mo, 1, 0, 0),
            Self::Day => (y, mo, da, 0, 0),
            Self::Hour => (y, mo, da, h, 0),
            Self::Minute => (y, mo, da, h, mi),
        };
        jiff::civil::datetime(parts.0, parts.1, parts.2, parts.3, parts.4, 0, 0)
    }
}

/// The time bucket a row belongs to: its time dimensions, coarsest first.
/// Fields finer than the granularity are at their first value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    pub granularity: Granularity,
    pub start: jiff::civil::DateTime,
}

/// Why a row's time fields name no time bucket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    #[error("{field} {value} is outside {low}..={high}")]
    OutOfRange {
        field: &'static str,
        value: i32,
        low: i32,
        high: i32,
    },
    #[error("not a calendar time: {0}")]
    NotInCalendar(String),
}

impl Bucket {
    /// Builds a bucket from the time fields of a row (`year` first, contiguous).
    /// The error names the bad field when a value is out of range.
    pub fn from_fields(fields: &[i32]) -> Result<Self, BucketError> {
        let get = |i: usize, default: i32| fields.get(i).copied().unwrap_or(default);
        let (y, mo, d, h, mi) = (get(0, 2000), get(1, 1), get(2, 1), get(3, 0), get(4, 0));
        let check = |field: &'static str, value: i32, low: i32, high: i32| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(BucketError::OutOfRange {
                    field,
                    value,
                    low,
                    high,
                })
            }
        };
        check("year", y, 1970, 9999)?;
        check("month", mo, 1, 12)?;
        check("day", d, 1, 31)?;
        check("hour", h, 0, 23)?;
        check("minute", mi, 0, 59)?;
        let start =
            jiff::civil::DateTime::new(y as i16, mo as i8, d as i8, h as i8, mi as i8, 0, 0)
                .map_err(|e| BucketError::NotInCalendar(e.to_string()))?;
        Ok(Self {
            granularity: Granularity::from_depth(fields.len()),
            start,
        })
    }

    /// Start of the following bucket (`None` for `Total`).
    pub fn end(&self) -> Option<jiff::civil::DateTime> {
        self.start.checked_add(self.granularity.span()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_validated() {
        let p = ReportPath::parse("/year//month/day/hour/mvpd/").unwrap();
        assert_eq!(p.to_string(), "year/month/day/hour/mvpd");
        assert_eq!(p.granularity(), Granularity::Hour);
        assert_eq!(
            ReportPath::parse("mvpd/year/month").unwrap().granularity(),
            Granularity::Month
        );
        assert_eq!(
            ReportPath::parse("tenant").unwrap().granularity(),
            Granularity::Total
        );
        assert!(matches!(
            ReportPath::parse("year/day"),
            Err(PathError::TimeOrder(_))
        ));
        assert!(matches!(
            ReportPath::parse("month/year"),
            Err(PathError::TimeOrder(_))
        ));
        let split = ReportPath::parse("tenant/year/month/day/mvpd/hour").unwrap();
        assert_eq!(split.granularity(), Granularity::Hour);
        assert!(matches!(
            ReportPath::parse("mvpd/mvpd"),
            Err(PathError::Repeated(_))
        ));
        assert!(matches!(
            ReportPath::parse("Tenant"),
            Err(PathError::BadSegment(_))
        ));
        assert!(ReportPath::parse("").unwrap().is_root());
    }

    #[test]
    fn buckets_know_their_span() {
        let b = Bucket::from_fields(&[2024, 2, 29]).unwrap();
        assert_eq!(b.granularity, Granularity::Day);
        assert_eq!(b.end().unwrap().to_string(), "2024-03-01T00:00:00");
        assert!(Bucket::from_fields(&[2023, 2, 29]).is_err());
        assert!(
            Bucket::from_fields(&[2023, 13])
                .unwrap_err()
                .to_string()
                .contains("month 13")
        );
    }
}
