//! Sharding without a coordinator, as kube-state-metrics does it:
//! `--shard N --total-shards M` keeps the reports whose name hashes to `N`.
//!
//! The hash is FNV-1a (64-bit) of the report's name, modulo `M`: stable
//! across versions, processes and machines, so `M` processes together poll
//! every report exactly once and never talk to each other. Prometheus (or
//! Thanos, Mimir above it) scrapes them all and sees the union.

/// Which share of the configured reports this process polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This process's shard, from 0.
    pub index: u32,
    /// How many shards share the reports.
    pub total: u32,
}

/// Why `--shard`/`--total-shards` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--total-shards 0: give the number of shards, 1 or more (1: no sharding)")]
    NoShards,
    #[error(
        "--shard {index} with --total-shards {total}: shards are numbered from 0 to {}, so raise --total-shards or lower --shard",
        total - 1
    )]
    OutOfRange { index: u32, total: u32 },
    #[error(
        "--shard auto: the host name `{0}` does not end in a pod ordinal (`-N`, as a StatefulSet names its pods): give --shard N"
    )]
    NoOrdinal(String),
}

/// FNV-1a, 64 bits: a hash that every version and machine computes alike.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Shard {
    /// Every report: no sharding.
    pub const ALL: Shard = Shard { index: 0, total: 1 };

    pub fn new(index: u32, total: u32) -> Result<Self, ShardError> {
        match (index, total) {
            (_, 0) => Err(ShardError::NoShards),
            (index, total) if index >= total => Err(ShardError::OutOfRange { index, total }),
            (index, total) => Ok(Self { index, total }),
        }
    }

    /// The shard of a StatefulSet pod: the ordinal its host name ends with
    /// (`cmu-exporter-2` is shard 2). With one shard every pod polls every
    /// report, whatever its ordinal: replicas that all push, the store
    /// keeping one copy (docs/deployment.md, Two replicas).
    pub fn from_hostname(hostname: &str, total: u32) -> Result<Self, ShardError> {
        if total == 1 {
            return Ok(Self::ALL);
        }
        let ordinal = hostname
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .ok_or_else(|| ShardError::NoOrdinal(hostname.to_owned()))?;
        Self::new(ordinal, total)
    }

    /// The shard that polls `report` among `total`.
    pub fn of(report: &str, total: u32) -> u32 {
        (stable_hash(report.as_bytes()) % u64::from(total.max(1))) as u32
    }

    /// Whether this shard polls `report`.
    pub fn owns(&self, report: &str) -> bool {
        Self::of(report, self.total) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_stable() {
        // Published FNV-1a 64 test vectors: the empty string and "a".
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Shard::of("daily", 1), 0);
        let names = [
            "daily",
            "hourly",
            "monthly_levels",
            "acme_hourly",
            "globex_daily",
        ];
        let shards: Vec<u32> = names.iter().map(|n| Shard::of(n, 3)).collect();
        assert_eq!(
            shards,
            names
                .iter()
                .map(|n| (stable_hash(n.as_bytes()) % 3) as u32)
                .collect::<Vec<_>>()
        );
        for total in 1..5 {
            for name in names {
                let owners = (0..total)
                    .filter(|i| Shard::new(*i, total).unwrap().owns(name))
                    .count();
                assert_eq!(owners, 1, "{name} has one owner among {total}");
            }
        }
    }

    #[test]
    fn shards_are_checked_and_read_from_pod_names() {
        assert_eq!(Shard::new(0, 0), Err(ShardError::NoShards));
        assert_eq!(
            Shard::new(3, 3),
            Err(ShardError::OutOfRange { index: 3, total: 3 })
        );
        assert_eq!(
            Shard::from_hostname("cmu-exporter-2", 3),
            Ok(Shard { index: 2, total: 3 })
        );
        assert!(matches!(
            Shard::from_hostname("laptop", 3),
            Err(ShardError::NoOrdinal(_))
        ));
        // One shard: every replica polls everything.
        assert_eq!(Shard::from_hostname("cmu-exporter-1", 1), Ok(Shard::ALL));
        assert_eq!(Shard::from_hostname("laptop", 1), Ok(Shard::ALL));
        assert!(
            Shard::new(3, 2)
                .unwrap_err()
                .to_string()
                .contains("from 0 to 1")
        );
    }
}
