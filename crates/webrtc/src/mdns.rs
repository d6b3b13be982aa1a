//! mDNS (RFC 6762) one-shot resolution of the `<uuid>.local` host candidates browsers
//! signal instead of their addresses (draft-ietf-mmusic-mdns-ice-candidates), sans-IO.
//!
//! [`encode_query`] builds a query for A and AAAA of one name, [`parse_response`] reads the
//! address records of a response (answers and additionals; compression pointers bounded),
//! and [`Resolver`] keeps the names being asked for with their retransmissions (1 s, then
//! 2 s, RFC 6762 §5.2 style) and gives up after [`QUERY_ATTEMPTS`]. The driver owns the
//! socket on 224.0.0.251:5353. A name that never resolves is not fatal: the browser's
//! checks still reach us and ICE learns its address as a peer-reflexive candidate.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The mDNS IPv4 group and port.
pub const MDNS_V4: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);
/// Queries sent per name before giving up.
pub const QUERY_ATTEMPTS: u32 = 3;
/// Names resolved at once (a peer can signal many candidates).
const MAX_PENDING: usize = 32;
/// Compression pointers followed in one name.
const MAX_JUMPS: usize = 16;
/// Records read from one message.
const MAX_RECORDS: usize = 64;
/// Names remembered from answers nobody here asked for (announcements).
const MAX_CACHED: usize = 256;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// Why an mDNS message was not read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MdnsError {
    /// Shorter than a field says.
    #[error("mDNS message truncated")]
    Truncated,
    /// A query, not a response.
    #[error("not an mDNS response")]
    NotResponse,
    /// A name with a bad label, a loop of pointers or over 255 bytes.
    #[error("bad name in mDNS message")]
    BadName,
    /// A name we cannot ask for (empty label, label over 63 bytes, not `.local`).
    #[error("cannot query {0:?}")]
    BadQueryName(String),
}

/// Whether a candidate address is an mDNS name.
pub fn is_mdns_name(addr: &str) -> bool {
    let a = addr.trim_end_matches('.');
    a.len() > 6 && a.to_ascii_lowercase().ends_with(".local")
}

/// A query for A and AAAA records of `name` (id 0, as RFC 6762 §18.1 wants; QU bit clear:
/// the answer is multicast, which every responder sends).
pub fn encode_query(name: &str) -> Result<Vec<u8>, MdnsError> {
    let name = name.trim_end_matches('.');
    if !is_mdns_name(name) || name.len() > 253 {
        return Err(MdnsError::BadQueryName(name.to_owned()));
    }
    let mut out = Vec::with_capacity(12 + 2 * (name.len() + 6));
    out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
    for (i, qtype) in [TYPE_A, TYPE_AAAA].into_iter().enumerate() {
        if i == 0 {
            for label in name.split('.') {
                if label.is_empty() || label.len() > 63 {
                    return Err(MdnsError::BadQueryName(name.to_owned()));
                }
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
            out.push(0);
        } else {
            // The same name again, as a pointer to the first question's.
            out.extend_from_slice(&[0xc0, 12]);
        }
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
    }
    Ok(out)
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, MdnsError> {
    match b.get(i..i + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(MdnsError::Truncated),
    }
}

/// Reads the name at `pos`; returns it (lower case, no trailing dot) and the position after
/// it in the message (after the first pointer, if any).
fn read_name(b: &[u8], mut pos: usize) -> Result<(String, usize), MdnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(pos).ok_or(MdnsError::Truncated)?;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = b
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(MdnsError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
                if name.len() > 255 {
                    return Err(MdnsError::BadName);
                }
                pos += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let lo = *b.get(pos + 1).ok_or(MdnsError::Truncated)?;
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(MdnsError::BadName);
                }
                end.get_or_insert(pos + 2);
                pos = usize::from(len & 0x3f) << 8 | usize::from(lo);
            }
            _ => return Err(MdnsError::BadName),
        }
    }
}

/// The A/AAAA records of a response, as (name, address) with names in lower case.
pub fn parse_response(b: &[u8]) -> Result<Vec<(String, IpAddr)>, MdnsError> {
    if b.len() < 12 {
        return Err(MdnsError::Truncated);
    }
    if b[2] & 0x80 == 0 {
        return Err(MdnsError::NotResponse);
    }
    let qd = u16_at(b, 4)?;
    let records = usize::from(u16_at(b, 6)?) + usize::from(u16_at(b, 10)?);
    let mut pos = 12;
    for _ in 0..qd {
        let (_, p) = read_name(b, pos)?;
        pos = p + 4;
    }
    let mut out = Vec::new();
    // Answers, then authority (skipped alike), then additionals.
    let total = records + usize::from(u16_at(b, 8)?);
    for _ in 0..total.min(MAX_RECORDS) {
        let (name, p) = read_name(b, pos)?;
        let rtype = u16_at(b, p)?;
        let class = u16_at(b, p + 2)? & 0x7fff;
        let rdlen = usize::from(u16_at(b, p + 8)?);
        let rdata = b.get(p + 10..p + 10 + rdlen).ok_or(MdnsError::Truncated)?;
        pos = p + 10 + rdlen;
        if class != CLASS_IN {
            continue;
        }
        match (rtype, rdata.len()) {
            (TYPE_A, 4) => out.push((
                name,
                IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            )),
            (TYPE_AAAA, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                out.push((name, IpAddr::V6(Ipv6Addr::from(a))));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct Pending {
    attempts: u32,
    next: Instant,
}

/// What a [`Resolver`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdnsEvent {
    /// A name we asked for has this address.
    Resolved {
        /// The name, lower case.
        name: String,
        /// Its address.
        addr: IpAddr,
    },
    /// No answer after every attempt.
    GaveUp {
        /// The name.
        name: String,
    },
}

/// Names being resolved, sans-IO: queries to send come out of [`Resolver::poll_query`],
/// responses go into [`Resolver::handle_response`].
#[derive(Debug, Default)]
pub struct Resolver {
    pending: BTreeMap<String, Pending>,
    resolved: BTreeMap<String, IpAddr>,
    queries: Vec<Vec<u8>>,
    events: Vec<MdnsEvent>,
}

impl Resolver {
    /// An idle resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts resolving `name` (a query goes out now). Already known: reported again as
    /// resolved; already pending or too many pending: nothing new.
    pub fn resolve(&mut self, name: &str, now: Instant) -> Result<(), MdnsError> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addr) = self.resolved.get(&name) {
            self.events.push(MdnsEvent::Resolved { name, addr: *addr });
            return Ok(());
        }
        if self.pending.contains_key(&name) || self.pending.len() >= MAX_PENDING {
            return Ok(());
        }
        self.queries.push(encode_query(&name)?);
        self.pending.insert(
            name,
            Pending {
                attempts: 1,
                next: now + Duration::from_secs(1),
            },
        );
        Ok(())
    }

    /// A datagram from the mDNS socket (it sees every mDNS packet on the link, our own
    /// queries too). Answers about pending names resolve them; other `.local` answers are
    /// remembered (bounded): a browser announces its name when it makes the candidate
    /// (RFC 6762 §8.3) and then may not repeat it on the link for a second (§6.2), so the
    /// announcement is the fastest answer there is.
    pub fn handle_response(&mut self, data: &[u8]) {
        let Ok(records) = parse_response(data) else {
            return;
        };
        for (name, addr) in records {
            if self.pending.remove(&name).is_some() {
                self.resolved.insert(name.clone(), addr);
                self.events.push(MdnsEvent::Resolved { name, addr });
            } else if is_mdns_name(&name)
                && (self.resolved.len() < MAX_CACHED || self.resolved.contains_key(&name))
            {
                self.resolved.insert(name, addr);
            }
        }
    }

    /// Retransmits queries and gives up on names that stay silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut gave_up = Vec::new();
        for (name, p) in &mut self.pending {
            if p.next > now {
                continue;
            }
            if p.attempts >= QUERY_ATTEMPTS {
                gave_up.push(name.clone());
                continue;
            }
            p.attempts += 1;
            p.next = now + Duration::from_secs(1 << (p.attempts - 1));
            if let Ok(q) = encode_query(name) {
                self.queries.push(q);
            }
        }
        for name in gave_up {
            self.pending.remove(&name);
            self.events.push(MdnsEvent::GaveUp { name });
        }
    }

    /// When [`Self::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.next).min()
    }

    /// Next query to send to [`MDNS_V4`].
    pub fn poll_query(&mut self) -> Option<Vec<u8>> {
        if self.queries.is_empty() {
            None
        } else {
            Some(self.queries.remove(0))
        }
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<MdnsEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";

    /// A response as Chromium's responder sends it: no question, one A answer with the
    /// cache-flush bit, TTL 120.
    fn chromium_response(name: &str, ip: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        for l in name.split('.') {
            b.push(l.len() as u8);
            b.extend_from_slice(l.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&[0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4]);
        b.extend_from_slice(&ip);
        b
    }

    #[test]
    fn query_bytes() {
        let q = encode_query("ab.local").unwrap();
        assert_eq!(
            q,
            [
                0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b', 5, b'l', b'o', b'c', b'a', b'l',
                0, 0, 1, 0, 1, 0xc0, 12, 0, 28, 0, 1
            ]
        );
        assert!(encode_query("example.com").is_err());
        assert!(encode_query("a..local").is_err());
    }

    #[test]
    fn parses_answer_and_ignores_queries() {
        let r = chromium_response(NAME, [10, 20, 0, 2]);
        assert_eq!(
            parse_response(&r).unwrap(),
            vec![(NAME.to_owned(), IpAddr::V4(Ipv4Addr::new(10, 20, 0, 2)))]
        );
        assert_eq!(
            parse_response(&encode_query(NAME).unwrap()),
            Err(MdnsError::NotResponse)
        );
    }

    #[test]
    fn compressed_names_and_pointer_loops() {
        // Question "x.local", answer name = pointer to it.
        let mut b = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[1, b'x', 5, b'l', b'o', b'c', b'a', b'l', 0, 0, 1, 0, 1]);
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 192, 0, 2, 1]);
        assert_eq!(
            parse_response(&b).unwrap(),
            vec![("x.local".into(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))]
        );
        // A pointer to itself.
        let mut l = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        l.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_response(&l), Err(MdnsError::BadName));
        for n in 0..b.len() {
            let _ = parse_response(&b[..n]);
        }
    }

    /// What the fuzz target checks, on a fixed sample: random bytes behind a response
    /// header never panic, and a valid response mangled byte by byte neither.
    #[test]
    fn random_and_mangled_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6762);
        let good = chromium_response(NAME, [10, 0, 0, 1]);
        for i in 0..20_000 {
            let mut b = if i % 2 == 0 {
                let mut h = vec![
                    0,
                    0,
                    0x84,
                    0,
                    0,
                    rng.gen_range(0..4),
                    0,
                    rng.gen_range(0..8),
                ];
                h.extend((0..rng.gen_range(0..80)).map(|_| rng.gen::<u8>()));
                h
            } else {
                good.clone()
            };
            if let Some(x) = b.get_mut(rng.gen_range(0..good.len())) {
                *x = rng.gen();
            }
            let _ = parse_response(&b);
            let mut r = Resolver::new();
            let _ = r.resolve(NAME, Instant::now());
            r.handle_response(&b);
        }
    }

    #[test]
    fn announcement_heard_earlier_resolves_without_a_query() {
        let mut r = Resolver::new();
        r.handle_response(&chromium_response(NAME, [10, 20, 0, 2]));
        assert_eq!(r.poll_event(), None, "nobody asked yet");
        r.resolve(NAME, Instant::now()).unwrap();
        assert_eq!(
            r.poll_query(),
            None,
            "answered from what the link announced"
        );
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::Resolved {
                name: NAME.into(),
                addr: IpAddr::V4(Ipv4Addr::new(10, 20, 0, 2))
            })
        );
    }

    #[test]
    fn resolver_retries_resolves_and_gives_up() {
        let t0 = Instant::now();
        let mut r = Resolver::new();
        r.resolve(NAME, t0).unwrap();
        r.resolve(&NAME.to_uppercase(), t0).unwrap();
        assert_eq!(r.poll_query(), Some(encode_query(NAME).unwrap()));
        assert_eq!(r.poll_query(), None);
        r.handle_timeout(t0 + Duration::from_secs(1));
        assert!(r.poll_query().is_some(), "retransmitted after 1 s");
        r.handle_response(&chromium_response(NAME, [10, 0, 0, 7]));
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::Resolved {
                name: NAME.into(),
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))
            })
        );
        assert_eq!(r.poll_timeout(), None);

        r.resolve("gone.local", t0).unwrap();
        let mut t = t0;
        for _ in 0..10 {
            match r.poll_timeout() {
                Some(next) => {
                    t = next;
                    r.handle_timeout(t);
                }
                None => break,
            }
        }
        assert_eq!(
            r.poll_event(),
            Some(MdnsEvent::GaveUp {
                name: "gone.local".into()
            })
        );
        assert_eq!(t, t0 + Duration::from_secs(1 + 2 + 4));
    }
}
