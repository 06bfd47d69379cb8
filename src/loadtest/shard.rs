//! Shards: `--shard i/n` runs the accounts whose stable hash of the user id is `i` mod `n`.
//! The hash is FNV-1a 64 (fixed, documented, the same on every machine and build), so N
//! shards of one plan cover every account exactly once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One slice of a plan: `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Index.
    pub index: u32,
    /// Count.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Whether this shard runs `user_id`.
    pub fn owns(&self, user_id: &str) -> bool {
        self.count <= 1 || stable_hash(user_id) % u64::from(self.count) == u64::from(self.index)
    }
}

/// FNV-1a, 64 bit.
pub fn stable_hash(text: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `i/n` with `0 <= i < n`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("{s:?} is not a shard: write i/n with 0 <= i < n, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let index: u32 = i.trim().parse().map_err(|_| usage())?;
        let count: u32 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(
            "4/4".parse::<Shard>().unwrap_err(),
            "\"4/4\" is not a shard: write i/n with 0 <= i < n, e.g. 0/4"
        );
        assert!("x".parse::<Shard>().is_err());
        assert!("1/0".parse::<Shard>().is_err());
        assert!("-1/2".parse::<Shard>().is_err());
    }

    #[test]
    fn shards_partition_the_accounts_evenly() {
        let n = 4u32;
        let mut per = [0u32; 4];
        for i in 0..10_000 {
            let id = format!("lt-{i}");
            let owners: Vec<u32> = (0..n)
                .filter(|&k| Shard { index: k, count: n }.owns(&id))
                .collect();
            assert_eq!(owners.len(), 1, "{id} owned by {owners:?}");
            per[owners[0] as usize] += 1;
        }
        assert!(per.iter().all(|&c| (2_300..2_700).contains(&c)), "{per:?}");
    }

    #[test]
    fn hash_is_fixed() {
        // FNV-1a reference values: a change here would re-shard every deployed plan.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
