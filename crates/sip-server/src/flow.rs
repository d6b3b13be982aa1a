//! Flows (RFC 5626 §3.2): the transport plus remote address a message really
//! arrived from. Behind a NAT the Contact a UA registers is a private address
//! nobody outside can reach; the only way back is the flow its REGISTER (or
//! its INVITE) came in on. This module decides when a flow must be used
//! instead of the Contact, and encodes flows as tamper-proof *flow tokens*
//! carried in the user part of our Record-Route entries, so in-dialog
//! requests find the NATed UA again without any per-dialog state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use natter_sip::Uri;
use sha2::Sha256;

use crate::peer::{Peer, Transport};

/// Prefix of a flow token in a Record-Route user part (`nf` = natter flow).
const TOKEN_PREFIX: &str = "nf";
/// Bytes of HMAC-SHA256 kept in a token: enough that guessing a token that
/// redirects traffic to an arbitrary address is hopeless, short enough to
/// keep Record-Route readable.
const MAC_LEN: usize = 6;

fn transport_byte(t: Transport) -> u8 {
    match t {
        Transport::Udp => b'u',
        Transport::Tcp => b't',
        Transport::Tls => b's',
        Transport::Ws => b'w',
        Transport::Wss => b'x',
    }
}

fn byte_transport(b: u8) -> Option<Transport> {
    Some(match b {
        b'u' => Transport::Udp,
        b't' => Transport::Tcp,
        b's' => Transport::Tls,
        b'w' => Transport::Ws,
        b'x' => Transport::Wss,
        _ => return None,
    })
}

/// The bytes a token authenticates: transport, IP, port.
fn flow_bytes(peer: Peer) -> Vec<u8> {
    let mut v = Vec::with_capacity(19);
    v.push(transport_byte(peer.transport));
    match peer.addr.ip() {
        IpAddr::V4(ip) => v.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => v.extend_from_slice(&ip.octets()),
    }
    v.extend_from_slice(&peer.addr.port().to_be_bytes());
    v
}

fn mac(secret: &[u8; 32], data: &[u8]) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    // HMAC accepts keys of any length, so this cannot fail.
    if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) {
        m.update(data);
        let tag = m.finalize().into_bytes();
        for (o, t) in out.iter_mut().zip(tag.iter()) {
            *o = *t;
        }
    }
    out
}

fn hex(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 128 {
        return None;
    }
    let digit = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

/// Encode `flow` as a token usable as a SIP URI user part (hex only, so no
/// escaping): `nf` + hex(transport, IP, port, HMAC-SHA256(secret)[..6]).
pub fn encode_token(flow: Peer, secret: &[u8; 32]) -> String {
    let data = flow_bytes(flow);
    let tag = mac(secret, &data);
    let mut s = String::with_capacity(TOKEN_PREFIX.len() + 2 * (data.len() + MAC_LEN));
    s.push_str(TOKEN_PREFIX);
    hex(&data, &mut s);
    hex(&tag, &mut s);
    s
}

/// Decode a token made by [`encode_token`] with the same secret. Anything
/// else (a user name, a forged or truncated token) is `None`.
pub fn decode_token(user: &str, secret: &[u8; 32]) -> Option<Peer> {
    let raw = unhex(user.strip_prefix(TOKEN_PREFIX)?)?;
    let (data, tag) = raw.split_at(raw.len().checked_sub(MAC_LEN)?);
    let expect = mac(secret, data);
    // Constant-time compare: the MAC is the only thing guarding the token.
    let diff = expect
        .iter()
        .zip(tag.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return None;
    }
    let (&t, rest) = data.split_first()?;
    let transport = byte_transport(t)?;
    let (ip, port) = match rest.len() {
        6 => {
            let o: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(o)), rest.get(4..6)?)
        }
        18 => {
            let o: [u8; 16] = rest.get(..16)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(o)), rest.get(16..18)?)
        }
        _ => return None,
    };
    let port = u16::from_be_bytes([*port.first()?, *port.get(1)?]);
    Some(Peer {
        transport,
        addr: SocketAddr::new(ip, port),
    })
}

/// Host part of a URI as an IP (brackets stripped).
fn uri_ip(uri: &Uri<'_>) -> Option<IpAddr> {
    uri.host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether requests for a UA whose Contact is `contact` and whose messages
/// arrive on `flow` must be sent to the flow rather than to the Contact
/// (nathelper's `nat_uac_test` in one function):
///
/// * TLS and WebSocket: we cannot open those connections ourselves, and
///   WebSocket Contacts are often `*.invalid`;
/// * the Contact is not an IP literal (nothing to send to without DNS), or
///   it names a different IP than the packets come from: a NAT (or a
///   private address) is in between;
/// * the Contact carries `;ob` (RFC 5626 §5.4: the UA asks for its flow).
pub fn needs_flow(contact: Option<&Uri<'_>>, flow: Peer) -> bool {
    if flow.transport.needs_flow() {
        return true;
    }
    let Some(c) = contact else { return true };
    if c.param("ob").is_some() {
        return true;
    }
    uri_ip(c) != Some(flow.addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    fn peer(t: Transport, a: &str) -> Peer {
        Peer {
            transport: t,
            addr: a.parse().unwrap(),
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_forgery() {
        let p = peer(Transport::Udp, "203.0.113.9:40000");
        let t = encode_token(p, &SECRET);
        assert!(t.starts_with("nf75cb0071099c40"), "{t}");
        assert_eq!(t.len(), 2 + 2 * (7 + MAC_LEN));
        assert_eq!(decode_token(&t, &SECRET), Some(p));
        assert_eq!(decode_token(&t, &[8; 32]), None, "other secret");
        // Same MAC, different port: refused.
        let forged = t.replacen("9c40", "9c41", 1);
        assert_eq!(decode_token(&forged, &SECRET), None);
        assert_eq!(decode_token("alice", &SECRET), None);
        assert_eq!(decode_token("nf", &SECRET), None);
        assert_eq!(decode_token("nfzz", &SECRET), None);
        let v6 = peer(Transport::Tls, "[2001:db8::1]:5061");
        assert_eq!(decode_token(&encode_token(v6, &SECRET), &SECRET), Some(v6));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics_and_only_accepts_its_own_tokens(user in "\\PC{0,80}") {
            if let Some(p) = decode_token(&user, &SECRET) {
                proptest::prop_assert_eq!(encode_token(p, &SECRET), user.to_ascii_lowercase());
            }
        }

        #[test]
        fn any_flow_round_trips(v6 in proptest::bool::ANY, ip in proptest::prelude::any::<[u8; 16]>(), port: u16) {
            let addr = if v6 {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)
            } else {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])), port)
            };
            let p = Peer { transport: Transport::Tcp, addr };
            proptest::prop_assert_eq!(decode_token(&encode_token(p, &SECRET), &SECRET), Some(p));
        }
    }

    #[test]
    fn nat_detection() {
        let flow = peer(Transport::Udp, "203.0.113.9:40000");
        let private = Uri::parse("sip:alice@10.0.0.5:5060").unwrap();
        let public = Uri::parse("sip:alice@203.0.113.9:5060").unwrap();
        let ob = Uri::parse("sip:alice@203.0.113.9:5060;ob").unwrap();
        let name = Uri::parse("sip:alice@x.invalid;transport=ws").unwrap();
        assert!(needs_flow(Some(&private), flow));
        assert!(!needs_flow(Some(&public), flow));
        assert!(needs_flow(Some(&ob), flow));
        assert!(needs_flow(Some(&name), flow));
        assert!(needs_flow(None, flow));
        let ws = peer(Transport::Ws, "203.0.113.9:40000");
        assert!(needs_flow(Some(&public), ws));
    }
}
