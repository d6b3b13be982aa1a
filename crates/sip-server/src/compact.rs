//! The in-memory location service's per-AOR representation: all bindings of
//! an address-of-record packed into one byte string.
//!
//! A [`Binding`] as a struct is ~190 bytes plus three or four heap strings
//! (AOR, contact, Call-ID, ...), each with its allocator overhead, and the AOR
//! is the map key as well: ~440 bytes per typical registered user. Packed, a
//! user costs its map slot, the key and one allocation of ~100 bytes. Reading
//! a list back builds `Binding`s, which every lookup did anyway (it returned
//! clones).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use crate::peer::Transport;
use crate::store::Binding;

const HAS_SOURCE: u8 = 1;
const HAS_INSTANCE: u8 = 2;
const HAS_REG_ID: u8 = 4;
const SOURCE_V6: u8 = 8;

fn transport_code(t: Transport) -> u8 {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Tls => 2,
        Transport::Ws => 3,
        Transport::Wss => 4,
    }
}

fn transport_from(c: u8) -> Option<Transport> {
    Some(match c {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Ws,
        4 => Transport::Wss,
        _ => return None,
    })
}

/// `t` as signed nanoseconds after `epoch` (exact both ways within ±292 years).
fn offset(epoch: Instant, t: Instant) -> i64 {
    match t.checked_duration_since(epoch) {
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        None => i64::try_from(epoch.duration_since(t).as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

fn instant(epoch: Instant, n: i64) -> Instant {
    if n >= 0 {
        epoch + Duration::from_nanos(n.unsigned_abs())
    } else {
        epoch
            .checked_sub(Duration::from_nanos(n.unsigned_abs()))
            .unwrap_or(epoch)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append one binding (without its AOR) to `out`.
pub(crate) fn encode(epoch: Instant, b: &Binding, out: &mut Vec<u8>) {
    let mut flags = 0;
    if b.source.is_some() {
        flags |= HAS_SOURCE;
    }
    if let Some((_, SocketAddr::V6(_))) = b.source {
        flags |= SOURCE_V6;
    }
    if b.instance.is_some() {
        flags |= HAS_INSTANCE;
    }
    if b.reg_id.is_some() {
        flags |= HAS_REG_ID;
    }
    out.push(flags);
    put_str(out, &b.contact);
    put_str(out, &b.call_id);
    out.extend_from_slice(&b.cseq.to_le_bytes());
    out.extend_from_slice(&b.q.to_le_bytes());
    out.extend_from_slice(&offset(epoch, b.expires_at).to_le_bytes());
    if let Some((t, a)) = b.source {
        out.push(transport_code(t));
        match a {
            SocketAddr::V4(v4) => out.extend_from_slice(&v4.ip().octets()),
            SocketAddr::V6(v6) => {
                out.extend_from_slice(&v6.ip().octets());
                out.extend_from_slice(&v6.flowinfo().to_le_bytes());
                out.extend_from_slice(&v6.scope_id().to_le_bytes());
            }
        }
        out.extend_from_slice(&a.port().to_le_bytes());
    }
    if let Some(i) = &b.instance {
        put_str(out, i);
    }
    if let Some(r) = b.reg_id {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(b.path.len() as u32).to_le_bytes());
    for p in &b.path {
        put_str(out, p);
    }
}

/// Bytes [`encode`] appends for `b`: packing into a buffer of exactly this
/// size costs one allocation (growing from empty took four or five
/// reallocations, 5 % of a registrar's CPU at 50 000 REGISTERs/s).
fn encoded_len(b: &Binding) -> usize {
    let source = match b.source {
        None => 0,
        Some((_, SocketAddr::V4(_))) => 1 + 4 + 2,
        Some((_, SocketAddr::V6(_))) => 1 + 16 + 4 + 4 + 2,
    };
    1 + 4
        + b.contact.len()
        + 4
        + b.call_id.len()
        + 4
        + 2
        + 8
        + source
        + b.instance.as_ref().map_or(0, |i| 4 + i.len())
        + b.reg_id.map_or(0, |_| 4)
        + 4
        + b.path.iter().map(|p| 4 + p.len()).sum::<usize>()
}

/// Pack a whole list.
pub(crate) fn encode_all<'a>(
    epoch: Instant,
    list: impl IntoIterator<Item = &'a Binding> + Clone,
) -> Box<[u8]> {
    let len = list.clone().into_iter().map(encoded_len).sum();
    let mut out = Vec::with_capacity(len);
    for b in list {
        encode(epoch, b, &mut out);
    }
    debug_assert_eq!(out.len(), len);
    out.into_boxed_slice()
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Unpack a list for `aor` (bytes written by [`encode`] only; a malformed
/// tail ends the list).
pub(crate) fn decode(epoch: Instant, aor: &str, buf: &[u8]) -> Vec<Binding> {
    let mut r = Reader { buf };
    let mut out = Vec::with_capacity(1);
    while !r.buf.is_empty() {
        match decode_one(epoch, aor, &mut r) {
            Some(b) => out.push(b),
            None => break,
        }
    }
    out
}

fn decode_one(epoch: Instant, aor: &str, r: &mut Reader<'_>) -> Option<Binding> {
    let flags = r.take(1)?[0];
    let contact = r.string()?;
    let call_id = r.string()?;
    let cseq = r.u32()?;
    let q = u16::from_le_bytes(r.arr()?);
    let expires_at = instant(epoch, i64::from_le_bytes(r.arr()?));
    let source = if flags & HAS_SOURCE != 0 {
        let t = transport_from(r.take(1)?[0])?;
        let ip = if flags & SOURCE_V6 != 0 {
            let ip = Ipv6Addr::from(r.arr::<16>()?);
            let flow = r.u32()?;
            let scope = r.u32()?;
            let port = u16::from_le_bytes(r.arr()?);
            return finish(
                r,
                flags,
                Binding {
                    aor: aor.to_owned(),
                    contact,
                    q,
                    expires_at,
                    call_id,
                    cseq,
                    path: Vec::new(),
                    source: Some((t, SocketAddr::V6(SocketAddrV6::new(ip, port, flow, scope)))),
                    instance: None,
                    reg_id: None,
                },
            );
        } else {
            IpAddr::V4(Ipv4Addr::from(r.arr::<4>()?))
        };
        let port = u16::from_le_bytes(r.arr()?);
        Some((t, SocketAddr::new(ip, port)))
    } else {
        None
    };
    finish(
        r,
        flags,
        Binding {
            aor: aor.to_owned(),
            contact,
            q,
            expires_at,
            call_id,
            cseq,
            path: Vec::new(),
            source,
            instance: None,
            reg_id: None,
        },
    )
}

/// The fields after the source.
fn finish(r: &mut Reader<'_>, flags: u8, mut b: Binding) -> Option<Binding> {
    if flags & HAS_INSTANCE != 0 {
        b.instance = Some(r.string()?);
    }
    if flags & HAS_REG_ID != 0 {
        b.reg_id = Some(r.u32()?);
    }
    let n = r.u32()? as usize;
    b.path = Vec::with_capacity(n.min(16));
    for _ in 0..n {
        b.path.push(r.string()?);
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_round_trip_exactly() {
        let epoch = Instant::now();
        let a = Binding {
            aor: "sip:alice@example.com".into(),
            contact: "sip:alice@192.0.2.1:5060;transport=udp".into(),
            q: 500,
            expires_at: epoch + Duration::from_nanos(3_600_000_000_123),
            call_id: "abc@host".into(),
            cseq: 42,
            path: vec!["<sip:edge.example.com;lr;ob>".into(), "<sip:p2;lr>".into()],
            source: Some((Transport::Tcp, "192.0.2.1:40000".parse().unwrap())),
            instance: Some("\"<urn:uuid:0001>\"".into()),
            reg_id: Some(1),
        };
        let b = Binding {
            aor: "sip:alice@example.com".into(),
            contact: "sip:alice@[2001:db8::1]".into(),
            q: 1000,
            // Before the epoch (loaded from a store before the map existed).
            expires_at: epoch.checked_sub(Duration::from_millis(5)).unwrap_or(epoch),
            call_id: String::new(),
            cseq: 0,
            path: Vec::new(),
            source: Some((
                Transport::Wss,
                SocketAddr::V6(SocketAddrV6::new("2001:db8::1".parse().unwrap(), 443, 7, 3)),
            )),
            instance: None,
            reg_id: None,
        };
        let c = Binding {
            source: None,
            ..b.clone()
        };
        let packed = encode_all(epoch, [&a, &b, &c]);
        assert_eq!(
            packed.len(),
            [&a, &b, &c].map(encoded_len).iter().sum::<usize>()
        );
        assert_eq!(
            decode(epoch, "sip:alice@example.com", &packed),
            vec![a, b, c]
        );
        // A truncated list yields the complete bindings before the cut.
        assert_eq!(decode(epoch, "x", &packed[..packed.len() - 1]).len(), 2);
    }
}
