//! A fast hasher for the layer's internal tables, whose keys are never attacker-chosen:
//! transaction ids are the layer's own counter, and key digests are already the output of
//! two keyed SipHashes over what the peer sent (see `TransactionLayer::digest`). Hashing
//! those again with SipHash cost ~2 % of a REGISTER; a folded multiply spreads them just as
//! well over hashbrown's bucket (low) and tag (high) bits.

use std::hash::{BuildHasher, Hasher};

/// `HashMap<K, V, IdHash>` for u64 and u128 keys that are ids or keyed digests.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHash;

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// The hasher behind [`IdHash`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHasher(u64);

/// The 64-bit golden ratio: odd, with well-mixed bits.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

fn fold(x: u64) -> u64 {
    let wide = u128::from(x ^ K) * u128::from(K);
    (wide as u64) ^ ((wide >> 64) as u64)
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by the keys above; kept correct for any other key type.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = fold(self.0 ^ x);
    }
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn counters_spread_over_low_and_high_bits() {
        let hashes: Vec<u64> = (0u64..4096).map(|i| IdHash.hash_one(i)).collect();
        let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let high: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2500, "bucket bits: {}", low.len());
        assert_eq!(high.len(), 128, "every tag value used");
    }

    #[test]
    fn maps_keyed_by_u128_work() {
        let mut m: HashMap<u128, u64, IdHash> = HashMap::default();
        for i in 0..1000u128 {
            m.insert(i << 64 | i, i as u64);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&(7u128 << 64 | 7)), Some(&7));
        assert_ne!(IdHash.hash_one(1u128), IdHash.hash_one(1u128 << 64));
    }
}
