//! A small bounded per-SSRC table.
//!
//! A call has one or two SSRCs per direction, so a linear scan over a short vector beats
//! hashing. The bound stops a peer that sprays SSRCs from growing memory: receivers only
//! insert after a packet authenticated, and the least recently used entry is evicted.

/// Most SSRCs tracked per context and per RTP/RTCP; beyond this the least recently used
/// stream is forgotten (its next packet restarts with ROC 0 as for a new stream).
pub const MAX_SSRCS: usize = 32;

#[derive(Debug)]
struct Entry<T> {
    ssrc: u32,
    last_used: u64,
    state: T,
}

#[derive(Debug)]
pub(crate) struct SsrcTable<T> {
    entries: Vec<Entry<T>>,
    tick: u64,
}

impl<T> SsrcTable<T> {
    pub(crate) fn new() -> Self {
        SsrcTable {
            entries: Vec::new(),
            tick: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The state for `ssrc`, without marking it used.
    pub(crate) fn get(&self, ssrc: u32) -> Option<&T> {
        self.entries
            .iter()
            .find(|e| e.ssrc == ssrc)
            .map(|e| &e.state)
    }

    /// The state for `ssrc`, marking it used.
    pub(crate) fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.iter_mut().find(|e| e.ssrc == ssrc).map(|e| {
            e.last_used = tick;
            &mut e.state
        })
    }

    /// Insert or replace the state for `ssrc`, evicting the least recently used entry when
    /// full.
    pub(crate) fn insert(&mut self, ssrc: u32, state: T) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.entries.iter_mut().find(|e| e.ssrc == ssrc) {
            e.state = state;
            e.last_used = tick;
            return;
        }
        let entry = Entry {
            ssrc,
            last_used: tick,
            state,
        };
        if self.entries.len() < MAX_SSRCS {
            self.entries.push(entry);
        } else if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.last_used) {
            *oldest = entry;
        }
    }
}
