//! Completed non-INVITE server transactions on unreliable transports, held
//! for Timer J (64*T1, RFC 3261 §17.2.2) only to answer retransmissions.
//!
//! Such a transaction needs nothing but its final response's bytes, and at
//! high REGISTER rates there are tens of thousands of them. Keeping each as a
//! table entry with its own heap buffer cost ~700 bytes per transaction and,
//! worse, scattered the short-lived buffers between the long-lived bindings,
//! so the heap could not give the pages back once Timer J had fired. Here the
//! responses are appended to large chunks in arrival order (Timer J is the
//! same for all of them, so they also expire in that order) and a chunk is
//! freed whole once its last record has expired.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::layer::TxId;

/// Chunk size: large enough that glibc serves it from its own mapping (so
/// freeing it returns the memory to the kernel), small enough that a quiet
/// server holds little.
const CHUNK: usize = 256 * 1024;

/// Record header: tx id (8), key digest (16), expiry in nanoseconds after the
/// epoch (8), response length (4).
const HEADER: usize = 36;

#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Chunks in append order with the absolute position of their first byte.
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// Absolute position of the oldest unexpired record.
    front: u64,
    /// Absolute position the next record goes to.
    end: u64,
    /// Key digest -> record position of the live held transactions.
    index: HashMap<u128, u64>,
    /// Origin of the stored expiry times (the first time a record was held).
    epoch: Option<Instant>,
}

/// A record read back.
pub(crate) struct Record<'a> {
    pub tx: TxId,
    pub key: u128,
    pub expires: Instant,
    pub bytes: &'a [u8],
}

impl Held {
    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Hold `bytes` for transaction `tx` (key digest `key`) until `expires`.
    pub fn push(&mut self, tx: TxId, key: u128, expires: Instant, bytes: &[u8]) {
        let epoch = *self.epoch.get_or_insert(expires);
        let at =
            u64::try_from(expires.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        let need = HEADER + bytes.len();
        let fits = self
            .chunks
            .back()
            .is_some_and(|(_, c)| c.capacity() - c.len() >= need);
        if !fits {
            // Skip the tail of the current chunk: records never straddle two.
            if let Some((start, c)) = self.chunks.back() {
                self.end = start + c.capacity() as u64;
            }
            if self.chunks.is_empty() {
                self.front = self.end;
            }
            self.chunks
                .push_back((self.end, Vec::with_capacity(need.max(CHUNK))));
        }
        let Some((start, chunk)) = self.chunks.back_mut() else {
            return;
        };
        let pos = *start + chunk.len() as u64;
        chunk.extend_from_slice(&tx.to_le_bytes());
        chunk.extend_from_slice(&key.to_le_bytes());
        chunk.extend_from_slice(&at.to_le_bytes());
        chunk.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        chunk.extend_from_slice(bytes);
        self.end = pos + need as u64;
        self.index.insert(key, pos);
    }

    fn record(&self, pos: u64) -> Option<Record<'_>> {
        let i = self
            .chunks
            .partition_point(|(s, _)| *s <= pos)
            .checked_sub(1)?;
        let (start, chunk) = self.chunks.get(i)?;
        let off = usize::try_from(pos - start).ok()?;
        let h = chunk.get(off..off + HEADER)?;
        let tx = u64::from_le_bytes(h[0..8].try_into().ok()?);
        let key = u128::from_le_bytes(h[8..24].try_into().ok()?);
        let at = u64::from_le_bytes(h[24..32].try_into().ok()?);
        let len = u32::from_le_bytes(h[32..36].try_into().ok()?) as usize;
        let bytes = chunk.get(off + HEADER..off + HEADER + len)?;
        let expires = self.epoch? + Duration::from_nanos(at);
        Some(Record {
            tx,
            key,
            expires,
            bytes,
        })
    }

    /// The held response of the transaction with key digest `key`.
    pub fn get(&self, key: u128) -> Option<Record<'_>> {
        let pos = *self.index.get(&key)?;
        self.record(pos)
    }

    /// When the oldest record expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.front >= self.end {
            return None;
        }
        self.record(self.front).map(|r| r.expires)
    }

    /// Drop every record expired at `now`; returns the transactions that
    /// ended (those not already forgotten).
    pub fn expire(&mut self, now: Instant, ended: &mut Vec<TxId>) {
        while self.front < self.end {
            let Some(r) = self.record(self.front) else {
                // The rest of this chunk is padding: go to the next chunk.
                let next = self
                    .chunks
                    .iter()
                    .map(|(s, _)| *s)
                    .find(|s| *s > self.front)
                    .unwrap_or(self.end);
                self.front = next;
                self.drop_consumed();
                continue;
            };
            if r.expires > now {
                break;
            }
            let (tx, key, len) = (r.tx, r.key, r.bytes.len());
            if self.index.get(&key) == Some(&self.front) {
                self.index.remove(&key);
                ended.push(tx);
            }
            self.front += (HEADER + len) as u64;
            self.drop_consumed();
        }
        if self.front >= self.end {
            // Nothing held: start afresh (keeps the last chunk for reuse).
            while self.chunks.len() > 1 {
                self.chunks.pop_front();
            }
            if let Some((start, c)) = self.chunks.front_mut() {
                c.clear();
                self.front = *start;
                self.end = *start;
            }
            if self.index.capacity() > 4096 {
                self.index = HashMap::new();
            }
        } else if self.index.capacity() > 4 * self.index.len() + 4096 {
            self.index.shrink_to(2 * self.index.len());
        }
    }

    /// Free the chunks wholly before `front`.
    fn drop_consumed(&mut self) {
        while self.chunks.len() > 1 {
            let Some((start, c)) = self.chunks.front() else {
                break;
            };
            if start + c.len() as u64 <= self.front {
                self.chunks.pop_front();
            } else {
                break;
            }
        }
    }
}
