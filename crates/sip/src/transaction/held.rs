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

//!
//! Most of a final response is the request's own Via, From, To, Call-ID and
//! CSeq (RFC 3261 §8.2.6.2), which every retransmission of the request brings
//! along again. So a response built that way is held as a *recipe*: status
//! code, reason phrase when not the default, To tag and the headers the TU
//! added (for a REGISTER: its Contacts and Content-Length); the identical
//! bytes are written again from the retransmitted request when it arrives
//! (§17.2.2: the same response is sent again). That is ~130 bytes per
//! REGISTER instead of ~380. A response that would not come out identical
//! (headers of those kinds among the added ones, a body) is held as bytes.
//! This relies on what §8.2.6.2 requires of every response: its Via, From,
//! Call-ID and CSeq equal the request's, and its To too, plus a tag when the
//! request's had none.

use std::collections::{HashMap, VecDeque};

use super::idhash::IdHash;
use std::time::{Duration, Instant};

use super::layer::TxId;
use crate::build::{copied_kind, reason_phrase, write_response_head};
use crate::header::HeaderName;
use crate::message::{Message, StartLine};

/// Chunk size: large enough that glibc serves it from its own mapping (so
/// freeing it returns the memory to the kernel), small enough that a quiet
/// server holds little.
const CHUNK: usize = 256 * 1024;

/// Record header: tx id (8), key digest (16), expiry in nanoseconds after the
/// epoch (8), length of what follows (4; its top bit marks a recipe).
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
    index: HashMap<u128, u64, IdHash>,
    /// Origin of the stored expiry times (the first time a record was held).
    epoch: Option<Instant>,
    /// Reused buffers for encoding recipes.
    scratch: Vec<u8>,
    recipe: Vec<u8>,
}

/// Top bit of the stored length: the record is a recipe, not wire bytes.
const RECIPE: u32 = 1 << 31;

/// Recipe flags.
const CUSTOM_REASON: u8 = 1;
const HAS_TAG: u8 = 2;

/// A record read back.
pub(crate) struct Record<'a> {
    pub tx: TxId,
    pub key: u128,
    pub expires: Instant,
    /// Wire bytes, or a recipe (see [`Record::response`]).
    pub bytes: &'a [u8],
    pub recipe: bool,
}

impl Record<'_> {
    /// The held response's wire bytes, for a retransmission `req` of the
    /// request it answered.
    pub fn response(&self, req: &Message<'_>) -> Vec<u8> {
        if !self.recipe {
            return self.bytes.to_vec();
        }
        let mut out = Vec::with_capacity(400);
        rebuild(self.bytes, req, &mut out);
        out
    }
}

/// Encode `resp` (serialized as `bytes`) as a recipe into `out`, if rebuilding
/// it from the request gives exactly `bytes`. `scratch` is reused memory.
fn encode_recipe(
    resp: &Message<'_>,
    bytes: &[u8],
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> bool {
    let StartLine::Response { code, reason } = &resp.start else {
        return false;
    };
    let (code, reason): (u16, &str) = (*code, reason);
    if !resp.body.is_empty() {
        return false;
    }
    // The copied headers come first, none after the added ones.
    let copied = |k: HeaderName| copied_kind(k, code) || k == HeaderName::To;
    let k = resp.headers.iter().take_while(|h| copied(h.kind)).count();
    if resp
        .headers
        .get(k..)
        .is_some_and(|rest| rest.iter().any(|h| copied(h.kind)))
    {
        return false;
    }
    let to_tag = resp.to_tag();
    let custom = reason != reason_phrase(code);
    if reason.len() > 255 || to_tag.is_some_and(|t| t.len() > 255) {
        return false;
    }
    scratch.clear();
    write_response_head(resp, code, reason, to_tag, scratch);
    let Some(added) = bytes
        .strip_prefix(scratch.as_slice())
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
    else {
        return false;
    };
    out.clear();
    out.extend_from_slice(&code.to_le_bytes());
    let mut flags = 0;
    if custom {
        flags |= CUSTOM_REASON;
    }
    if to_tag.is_some() {
        flags |= HAS_TAG;
    }
    out.push(flags);
    if custom {
        out.push(reason.len() as u8);
        out.extend_from_slice(reason.as_bytes());
    }
    if let Some(t) = to_tag {
        out.push(t.len() as u8);
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(added);
    true
}

/// The parts of a recipe: code, reason phrase, To tag, added headers.
type Parts<'r> = (u16, &'r str, Option<&'r str>, &'r [u8]);

fn parse_recipe(recipe: &[u8]) -> Option<Parts<'_>> {
    fn take<'r>(r: &mut &'r [u8]) -> Option<&'r str> {
        let (&n, rest) = r.split_first()?;
        let s = rest.get(..usize::from(n))?;
        *r = rest.get(usize::from(n)..)?;
        std::str::from_utf8(s).ok()
    }
    let mut r = recipe;
    let code = u16::from_le_bytes([*r.first()?, *r.get(1)?]);
    let flags = *r.get(2)?;
    r = r.get(3..)?;
    let reason = if flags & CUSTOM_REASON != 0 {
        take(&mut r)?
    } else {
        reason_phrase(code)
    };
    let tag = if flags & HAS_TAG != 0 {
        Some(take(&mut r)?)
    } else {
        None
    };
    Some((code, reason, tag, r))
}

/// Write the response a recipe describes for request `req`.
fn rebuild(recipe: &[u8], req: &Message<'_>, out: &mut Vec<u8>) {
    // Records are only written by `encode_recipe`: always readable.
    if let Some((code, reason, tag, added)) = parse_recipe(recipe) {
        write_response_head(req, code, reason, tag, out);
        out.extend_from_slice(added);
        out.extend_from_slice(b"\r\n");
    }
}

impl Held {
    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Hold the final response `resp` (serialized as `bytes`) of transaction
    /// `tx` (key digest `key`) until `expires`: as a recipe when it can be
    /// rebuilt from a retransmitted request, else as bytes.
    pub fn hold(
        &mut self,
        tx: TxId,
        key: u128,
        expires: Instant,
        resp: &Message<'_>,
        bytes: &[u8],
    ) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut recipe = std::mem::take(&mut self.recipe);
        if encode_recipe(resp, bytes, &mut scratch, &mut recipe) {
            self.push(tx, key, expires, &recipe, true);
        } else {
            self.push(tx, key, expires, bytes, false);
        }
        self.scratch = scratch;
        self.recipe = recipe;
    }

    /// Hold `bytes` (a recipe or wire bytes) for transaction `tx` (key digest
    /// `key`) until `expires`.
    fn push(&mut self, tx: TxId, key: u128, expires: Instant, bytes: &[u8], is_recipe: bool) {
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
        let len = bytes.len() as u32 | if is_recipe { RECIPE } else { 0 };
        chunk.extend_from_slice(&len.to_le_bytes());
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
        let len = u32::from_le_bytes(h[32..36].try_into().ok()?);
        let recipe = len & RECIPE != 0;
        let len = (len & !RECIPE) as usize;
        let bytes = chunk.get(off + HEADER..off + HEADER + len)?;
        let expires = self.epoch? + Duration::from_nanos(at);
        Some(Record {
            tx,
            key,
            expires,
            bytes,
            recipe,
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
                self.index = HashMap::default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderName;

    const REGISTER: &str = "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5071;branch=z9hG4bK-1;rport=5071;received=127.0.0.1\r\n\
v: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-0\r\n\
f: <sip:u1@natter.test>;tag=abc\r\n\
t: <sip:u1@natter.test>\r\n\
i: 1-reg@10.0.0.1\r\n\
CSeq: 7 REGISTER\r\n\
Contact: <sip:u1@10.0.0.1:5071>\r\n\
Max-Forwards: 70\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n";

    fn req(text: &str) -> Message<'_> {
        Message::parse(text.as_bytes()).expect("parses")
    }

    /// A registrar's 200: the copied headers, Contacts, Content-Length.
    fn ok(req: &Message<'_>, code: u16, reason: Option<&str>) -> Message<'static> {
        let mut r = Message::response_to(req, code, reason, Some("nt1234"));
        r.remove(HeaderName::ContentLength);
        r.push(HeaderName::Contact, "<sip:u1@10.0.0.1:5071>;expires=3600");
        r.push(HeaderName::Contact, "<sip:u1@10.0.0.9>;expires=12");
        r.push(HeaderName::ContentLength, "0");
        r
    }

    fn held_one(resp: &Message<'_>) -> (Held, Vec<u8>) {
        let mut h = Held::default();
        let bytes = resp.to_bytes();
        h.hold(9, 42, Instant::now(), resp, &bytes);
        (h, bytes)
    }

    #[test]
    fn retransmission_gets_identical_bytes_from_a_recipe() {
        let r = req(REGISTER);
        for (code, reason) in [
            (200, None),
            (423, None),
            (500, Some("Out of order REGISTER")),
        ] {
            let resp = ok(&r, code, reason);
            let (h, bytes) = held_one(&resp);
            let rec = h.get(42).expect("held");
            assert!(rec.recipe, "{code} held as a recipe");
            assert!(
                rec.bytes.len() < bytes.len() / 2,
                "{} of {}",
                rec.bytes.len(),
                bytes.len()
            );
            // The retransmission is a new parse of the same bytes.
            let again = req(REGISTER);
            assert_eq!(rec.response(&again), bytes);
            assert_eq!(rec.tx, 9);
        }
    }

    #[test]
    fn request_with_a_to_tag_keeps_it() {
        let text = REGISTER.replace(
            "t: <sip:u1@natter.test>",
            "To: <sip:u1@natter.test>;tag=in-dialog",
        );
        let r = req(&text);
        let resp = ok(&r, 200, None);
        assert_eq!(resp.to_tag(), Some("in-dialog"));
        let (h, bytes) = held_one(&resp);
        let rec = h.get(42).expect("held");
        assert!(rec.recipe);
        assert_eq!(rec.response(&req(&text)), bytes);
    }

    #[test]
    fn responses_that_would_not_rebuild_are_held_as_bytes() {
        let r = req(REGISTER);
        // An added header of a copied kind.
        let mut extra_via = ok(&r, 200, None);
        extra_via.push(HeaderName::Via, "SIP/2.0/UDP elsewhere;branch=z9hG4bKx");
        // A body.
        let mut body = ok(&r, 200, None);
        body.set_body(Some("text/plain"), b"hi".to_vec());
        for resp in [extra_via, body] {
            let (h, bytes) = held_one(&resp);
            let rec = h.get(42).expect("held");
            assert!(!rec.recipe);
            assert_eq!(rec.response(&r), bytes);
        }
    }
}
