//! (XOR-)address attribute values: MAPPED-ADDRESS, XOR-MAPPED-ADDRESS and
//! every attribute that shares their layout (RFC 8489 sections 14.1 and 14.2).
//!
//! ```text
//!  0                   1                   2                   3
//! |0 0 0 0 0 0 0 0|    Family     |         (X-)Port              |
//! |                 (X-)Address (32 bits or 128 bits)             |
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::message::{TransactionId, MAGIC_COOKIE};

/// Address family numbers shared by the address attributes and by
/// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY (RFC 8656).
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum AddressFamily {
    /// IPv4, wire value 0x01.
    V4,
    /// IPv6, wire value 0x02.
    V6,
}

impl AddressFamily {
    /// The wire value.
    pub const fn to_wire(self) -> u8 {
        match self {
            Self::V4 => 0x01,
            Self::V6 => 0x02,
        }
    }

    /// Parses a wire value.
    pub const fn from_wire(v: u8) -> Option<Self> {
        match v {
            0x01 => Some(Self::V4),
            0x02 => Some(Self::V6),
            _ => None,
        }
    }

    /// The family of an address.
    pub const fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }
}

/// Decodes a plain (not XORed) address value.
pub fn decode_plain(value: &[u8]) -> Option<SocketAddr> {
    let (family, port) = family_and_port(value)?;
    let ip = ip_from(family, value.get(4..)?)?;
    Some(SocketAddr::new(ip, port))
}

/// Decodes an XORed address value: port XOR the top of the cookie, IPv4 XOR
/// the cookie, IPv6 XOR cookie followed by the transaction ID.
pub fn decode_xor(value: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    let (family, xport) = family_and_port(value)?;
    let port = xport ^ ((MAGIC_COOKIE >> 16) as u16);
    let mut raw = [0u8; 16];
    let src = value.get(4..)?;
    let n = match family {
        AddressFamily::V4 => 4,
        AddressFamily::V6 => 16,
    };
    if src.len() != n {
        return None;
    }
    let mask = xor_mask(tid);
    for (i, (out, b)) in raw.iter_mut().zip(src).enumerate() {
        *out = b ^ mask.get(i).copied().unwrap_or(0);
    }
    let ip = ip_from(family, raw.get(..n)?)?;
    Some(SocketAddr::new(ip, port))
}

/// Appends a plain address value (8 or 20 bytes) to `out`.
pub fn encode_plain(addr: &SocketAddr, out: &mut Vec<u8>) {
    out.push(0);
    out.push(AddressFamily::of(addr).to_wire());
    out.extend_from_slice(&addr.port().to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
}

/// Appends an XORed address value (8 or 20 bytes) to `out`.
pub fn encode_xor(addr: &SocketAddr, tid: &TransactionId, out: &mut Vec<u8>) {
    out.push(0);
    out.push(AddressFamily::of(addr).to_wire());
    let xport = addr.port() ^ ((MAGIC_COOKIE >> 16) as u16);
    out.extend_from_slice(&xport.to_be_bytes());
    let mask = xor_mask(tid);
    match addr.ip() {
        IpAddr::V4(ip) => out.extend(ip.octets().iter().zip(mask).map(|(a, m)| a ^ m)),
        IpAddr::V6(ip) => out.extend(ip.octets().iter().zip(mask).map(|(a, m)| a ^ m)),
    }
}

fn xor_mask(tid: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(&tid.0);
    mask
}

fn family_and_port(value: &[u8]) -> Option<(AddressFamily, u16)> {
    let head = value.first_chunk::<4>()?;
    let family = AddressFamily::from_wire(head[1])?;
    Some((family, u16::from_be_bytes([head[2], head[3]])))
}

fn ip_from(family: AddressFamily, bytes: &[u8]) -> Option<IpAddr> {
    match family {
        AddressFamily::V4 => {
            let b: [u8; 4] = bytes.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        AddressFamily::V6 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = TransactionId([
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ]);

    #[test]
    fn rfc5769_xor_addresses() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let mut out = Vec::new();
        encode_xor(&v4, &TID, &mut out);
        assert_eq!(out, [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]);
        assert_eq!(decode_xor(&out, &TID), Some(v4));

        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        out.clear();
        encode_xor(&v6, &TID, &mut out);
        assert_eq!(
            out,
            [
                0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
                0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9
            ]
        );
        assert_eq!(decode_xor(&out, &TID), Some(v6));
    }

    #[test]
    fn plain_addresses_round_trip_and_reject_bad_lengths() {
        let a: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        let mut out = Vec::new();
        encode_plain(&a, &mut out);
        assert_eq!(out.len(), 20);
        assert_eq!(decode_plain(&out), Some(a));
        assert_eq!(decode_plain(&out[..19]), None);
        assert_eq!(decode_plain(&[0, 3, 0, 1, 1, 2, 3, 4]), None);
        assert_eq!(decode_xor(&[0, 1, 0, 1, 1, 2, 3], &TID), None);
    }
}
