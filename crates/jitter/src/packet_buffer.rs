//! Packets waiting to be decoded, ordered by unwrapped RTP timestamp, plus the memory of
//! recently seen sequence numbers that duplicate detection needs.

use std::collections::{BTreeMap, BTreeSet};

/// How many sequence numbers behind the highest one we still remember. Anything older is
/// treated as late rather than remembered forever.
pub(crate) const SEQ_MEMORY: i64 = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub(crate) seq: i64,
    pub(crate) payload: Vec<u8>,
    /// When this packet would have arrived on the fastest recent path (ms since the
    /// buffer's time origin): arrival minus its relative delay.
    pub(crate) earliest_ms: f64,
}

#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Audio(Packet),
    /// RFC 3389 comfort noise starting at `ts` with level `level` (-dBov).
    Cn {
        level: u8,
    },
}

#[derive(Debug, Default, Clone)]
pub(crate) struct PacketBuffer {
    entries: BTreeMap<i64, Entry>,
    seen: BTreeSet<i64>,
}

impl PacketBuffer {
    /// True if `seq` was inserted before (and is still remembered).
    pub(crate) fn seen(&self, seq: i64) -> bool {
        self.seen.contains(&seq)
    }

    /// Remembers `seq`, forgetting numbers more than [`SEQ_MEMORY`] below `highest`.
    pub(crate) fn mark_seen(&mut self, seq: i64, highest: i64) {
        self.seen.insert(seq);
        let floor = highest - SEQ_MEMORY;
        while let Some(&first) = self.seen.first() {
            if first < floor {
                self.seen.pop_first();
            } else {
                break;
            }
        }
    }

    /// Inserts at `ts`; returns false (and drops the entry) if the slot is taken.
    pub(crate) fn insert(&mut self, ts: i64, entry: Entry) -> bool {
        if self.entries.contains_key(&ts) {
            return false;
        }
        self.entries.insert(ts, entry);
        true
    }

    pub(crate) fn front(&self) -> Option<(i64, &Entry)> {
        self.entries.first_key_value().map(|(&ts, e)| (ts, e))
    }

    pub(crate) fn pop_front(&mut self) -> Option<(i64, Entry)> {
        self.entries.pop_first()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
