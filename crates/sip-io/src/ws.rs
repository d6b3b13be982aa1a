//! WebSocket for SIP (RFC 7118 over RFC 6455), sans-IO: the opening
//! handshake (server side for accepted connections, client side for the
//! connections the proxy opens to `;transport=ws`/`wss` next hops) and a
//! frame codec for both roles. Each WebSocket message carries exactly one SIP
//! message, so no Content-Length framing is needed.
//!
//! Limits: handshake requests and messages are size-bounded; frames from a
//! client must be masked and frames from a server must not be (RFC 6455
//! §5.1); fragmented messages are reassembled.

use sha1::{Digest, Sha1};

/// RFC 6455 §1.3 GUID appended to the client key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a handshake or frame was refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// Not a valid WebSocket upgrade for the `sip` subprotocol.
    #[error("bad WebSocket handshake: {0}")]
    Handshake(&'static str),
    /// Frame syntax or protocol violation.
    #[error("bad WebSocket frame: {0}")]
    Frame(&'static str),
    /// Message or header block over the limit.
    #[error("WebSocket message too large")]
    TooLarge,
}

/// Standard base64 (RFC 4648) of `data`.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
                out.push(char::from(T[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Sec-WebSocket-Accept` for a client key.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64(&h.finalize())
}

/// The HTTP head at the start of `buf` (without its blank line) and where it
/// ends, once it is complete; an incomplete head longer than `max` is refused.
fn head_block(buf: &[u8], max: usize) -> Result<Option<(usize, &str)>, WsError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > max {
            Err(WsError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(buf.get(..end).unwrap_or(&[]))
        .map_err(|_| WsError::Handshake("not UTF-8"))?;
    Ok(Some((end, head)))
}

/// Parse a client opening handshake from the start of `buf`. Returns
/// `Ok(None)` while the request is incomplete, else the number of bytes it
/// used and the `101` response to send.
pub fn server_handshake(buf: &[u8], max: usize) -> Result<Option<(usize, Vec<u8>)>, WsError> {
    let Some((end, head)) = head_block(buf, max)? else {
        return Ok(None);
    };
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or("");
    if !request.starts_with("GET ") || !request.ends_with(" HTTP/1.1") {
        return Err(WsError::Handshake("not an HTTP/1.1 GET"));
    }
    let (mut key, mut upgrade, mut connection, mut version, mut sip) =
        (None, false, false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let has_token = |tok: &str| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(tok));
        if name.eq_ignore_ascii_case("Upgrade") {
            upgrade = has_token("websocket");
        } else if name.eq_ignore_ascii_case("Connection") {
            connection = has_token("upgrade");
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Key") {
            key = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Version") {
            version = value == "13";
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Protocol") {
            sip = has_token("sip");
        }
    }
    let key = key.ok_or(WsError::Handshake("missing Sec-WebSocket-Key"))?;
    if !(upgrade && connection && version) {
        return Err(WsError::Handshake("missing Upgrade/Connection/Version 13"));
    }
    if !sip {
        // RFC 7118 §4.1: the "sip" subprotocol is mandatory.
        return Err(WsError::Handshake("subprotocol sip not offered"));
    }
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
        accept_key(&key)
    );
    Ok(Some((end + 4, resp.into_bytes())))
}

/// The client side of the opening handshake: the GET request for `host`
/// (the `Host` header, a name or an address with port) and `path`, offering
/// the `sip` subprotocol with the 16-byte nonce `key` (RFC 6455 §4.1).
pub fn client_handshake(host: &str, path: &str, key: &[u8; 16]) -> (Vec<u8>, String) {
    let key = base64(key);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    );
    (req.into_bytes(), key)
}

/// Check the server's answer to [`client_handshake`] (sent with `key`, the
/// base64 text it returned). `Ok(None)` while incomplete, else the number of
/// bytes the response used; anything but a `101` that accepts our key and
/// picks `sip` is refused (RFC 6455 §4.2.2, RFC 7118 §4.1).
pub fn check_server_handshake(buf: &[u8], key: &str, max: usize) -> Result<Option<usize>, WsError> {
    let Some((end, head)) = head_block(buf, max)? else {
        return Ok(None);
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    if parts.next() != Some("HTTP/1.1") || parts.next() != Some("101") {
        return Err(WsError::Handshake("server did not switch protocols"));
    }
    let (mut accept, mut upgrade, mut connection, mut sip) = (false, false, false, false);
    let expected = accept_key(key);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let has_token = |tok: &str| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(tok));
        if name.eq_ignore_ascii_case("Upgrade") {
            upgrade = has_token("websocket");
        } else if name.eq_ignore_ascii_case("Connection") {
            connection = has_token("upgrade");
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Accept") {
            accept = value == expected;
        } else if name.eq_ignore_ascii_case("Sec-WebSocket-Protocol") {
            sip = value.eq_ignore_ascii_case("sip");
        }
    }
    if !(upgrade && connection) {
        return Err(WsError::Handshake("missing Upgrade/Connection"));
    }
    if !accept {
        return Err(WsError::Handshake("wrong Sec-WebSocket-Accept"));
    }
    if !sip {
        return Err(WsError::Handshake("server did not select subprotocol sip"));
    }
    Ok(Some(end + 4))
}

/// A decoded WebSocket event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text or binary message (one SIP message).
    Message(Vec<u8>),
    /// The peer sent a ping; reply with a pong (opcode 0xA) carrying this
    /// payload, encoded for our role.
    Pong(Vec<u8>),
    /// The peer closed; send a close frame (opcode 0x8) with this payload
    /// back and drop the connection.
    Close(Vec<u8>),
}

/// Which end of the connection we are: it decides whether frames we receive
/// must be masked and whether frames we send are (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: peer frames are masked, ours are not.
    Server,
    /// We opened the connection: ours are masked, the server's are not.
    Client,
}

/// One decoded frame and how many buffered bytes it used.
struct RawFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    used: usize,
}

/// Incremental frame decoder for the frames a peer sends us.
#[derive(Debug)]
pub struct WsDecoder {
    buf: Vec<u8>,
    partial: Option<Vec<u8>>,
    max: usize,
    role: Role,
}

impl WsDecoder {
    /// A server's decoder (client frames, masked) for messages up to `max` bytes.
    pub fn new(max: usize) -> WsDecoder {
        WsDecoder::with_role(max, Role::Server)
    }

    /// A decoder for our `role`, accepting messages up to `max` bytes.
    pub fn with_role(max: usize, role: Role) -> WsDecoder {
        WsDecoder {
            buf: Vec::new(),
            partial: None,
            max,
            role,
        }
    }

    /// Add received bytes.
    pub fn push(&mut self, data: &[u8]) -> Result<(), WsError> {
        if self.buf.len() + data.len() > self.max.saturating_mul(2) + 16 {
            return Err(WsError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Next event, if a full frame is buffered.
    pub fn next_event(&mut self) -> Result<Option<WsEvent>, WsError> {
        loop {
            let Some(RawFrame {
                fin,
                opcode,
                payload,
                used,
            }) = self.frame()?
            else {
                return Ok(None);
            };
            self.buf.drain(..used);
            match opcode {
                0x0 => {
                    let p = self
                        .partial
                        .as_mut()
                        .ok_or(WsError::Frame("continuation without start"))?;
                    if p.len() + payload.len() > self.max {
                        return Err(WsError::TooLarge);
                    }
                    p.extend_from_slice(&payload);
                    if fin {
                        return Ok(self.partial.take().map(WsEvent::Message));
                    }
                }
                0x1 | 0x2 => {
                    if self.partial.is_some() {
                        return Err(WsError::Frame("new message inside a fragmented one"));
                    }
                    if fin {
                        return Ok(Some(WsEvent::Message(payload)));
                    }
                    self.partial = Some(payload);
                }
                0x8 => {
                    return Ok(Some(WsEvent::Close(
                        payload.get(..2).unwrap_or(&[]).to_vec(),
                    )))
                }
                0x9 => return Ok(Some(WsEvent::Pong(payload))),
                0xA => {}
                _ => return Err(WsError::Frame("unknown opcode")),
            }
        }
    }

    /// Parse one frame header + payload from the buffer start.
    fn frame(&self) -> Result<Option<RawFrame>, WsError> {
        let b = &self.buf;
        let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(WsError::Frame("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(WsError::Frame("client frame not masked")),
            (Role::Client, true) => return Err(WsError::Frame("server frame masked")),
            _ => {}
        }
        let (len, mut at) = match b1 & 0x7f {
            126 => {
                let Some(x) = b.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([x[0], x[1]])), 4)
            }
            127 => {
                let Some(x) = b.get(2..10) else {
                    return Ok(None);
                };
                let mut a = [0u8; 8];
                a.copy_from_slice(x);
                (u64::from_be_bytes(a), 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode >= 0x8 && (len > 125 || !fin) {
            return Err(WsError::Frame("bad control frame"));
        }
        let len = usize::try_from(len).map_err(|_| WsError::TooLarge)?;
        if len > self.max {
            return Err(WsError::TooLarge);
        }
        let mut mask = [0u8; 4];
        if masked {
            let Some(m) = b.get(at..at + 4) else {
                return Ok(None);
            };
            mask.copy_from_slice(m);
            at += 4;
        }
        let Some(data) = b.get(at..at + len) else {
            return Ok(None);
        };
        let payload: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, x)| x ^ mask[i % 4])
            .collect();
        Ok(Some(RawFrame {
            fin,
            opcode,
            payload,
            used: at + len,
        }))
    }
}

/// One unmasked server frame with FIN set.
pub fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(opcode, payload, None)
}

/// One client frame with FIN set, masked with `mask`, which must be fresh
/// and unpredictable for every frame (RFC 6455 §5.3).
pub fn encode_masked(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    frame_with(opcode, payload, Some(mask))
}

fn frame_with(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | u8::try_from(n).unwrap_or(0)),
        n if n <= usize::from(u16::MAX) => {
            out.push(m | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client-side masked frame, for tests.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn rfc6455_accept_example_and_base64() {
        // RFC 6455 §1.3 example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn handshake_needs_sip_subprotocol() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\nrest";
        let (used, resp) = server_handshake(req, 8192).unwrap().unwrap();
        assert_eq!(&req[used..], b"rest");
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(resp.contains("Sec-WebSocket-Protocol: sip\r\n"));
        assert_eq!(server_handshake(&req[..20], 8192), Ok(None));
        let no_sip = String::from_utf8_lossy(req).replace("Sec-WebSocket-Protocol: sip\r\n", "");
        assert!(server_handshake(no_sip.as_bytes(), 8192).is_err());
        assert_eq!(server_handshake(&[b'a'; 100], 50), Err(WsError::TooLarge));
    }

    #[test]
    fn frames_masking_fragments_and_control() {
        let mut d = WsDecoder::new(1000);
        let mut bytes = client_frame(false, 0x1, b"REGISTER ", [1, 2, 3, 4]);
        bytes.extend(client_frame(true, 0x9, b"hi", [9, 9, 9, 9]));
        bytes.extend(client_frame(true, 0x0, b"sip:x SIP/2.0", [5, 6, 7, 8]));
        bytes.extend(client_frame(true, 0x1, &[b'a'; 300], [0, 1, 0, 1]));
        for chunk in bytes.chunks(5) {
            d.push(chunk).unwrap();
        }
        assert_eq!(d.next_event().unwrap(), Some(WsEvent::Pong(b"hi".to_vec())));
        assert_eq!(
            d.next_event().unwrap(),
            Some(WsEvent::Message(b"REGISTER sip:x SIP/2.0".to_vec()))
        );
        assert_eq!(
            d.next_event().unwrap(),
            Some(WsEvent::Message(vec![b'a'; 300]))
        );
        assert_eq!(d.next_event().unwrap(), None);
        // Unmasked client frame: protocol error.
        let mut d = WsDecoder::new(1000);
        d.push(&encode(0x1, b"x")).unwrap();
        assert!(d.next_event().is_err());
        // Oversized.
        let mut d = WsDecoder::new(10);
        d.push(&client_frame(true, 0x1, &[0; 20], [0; 4])).unwrap();
        assert_eq!(d.next_event(), Err(WsError::TooLarge));
    }

    #[test]
    fn client_handshake_round_trip_with_our_server() {
        let (req, key) = client_handshake("proxy.example.com:8080", "/", &[7; 16]);
        let req_text = String::from_utf8(req.clone()).unwrap();
        assert!(req_text.starts_with("GET / HTTP/1.1\r\nHost: proxy.example.com:8080\r\n"));
        let (_, mut resp) = server_handshake(&req, 8192).unwrap().unwrap();
        let n = resp.len();
        resp.extend_from_slice(&encode(0x1, b"SIP/2.0 200 OK"));
        assert_eq!(check_server_handshake(&resp, &key, 8192), Ok(Some(n)));
        assert_eq!(check_server_handshake(&resp[..n - 3], &key, 8192), Ok(None));
        // A different key's accept value, or no subprotocol, is refused.
        let (_, other) = client_handshake("h", "/", &[8; 16]);
        assert!(check_server_handshake(&resp, &other, 8192).is_err());
        let text =
            String::from_utf8_lossy(&resp[..n]).replace("Sec-WebSocket-Protocol: sip\r\n", "");
        assert!(check_server_handshake(text.as_bytes(), &key, 8192).is_err());
        let refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        assert!(check_server_handshake(refused, &key, 8192).is_err());
    }

    #[test]
    fn client_role_takes_unmasked_and_sends_masked() {
        // What a client sends, a server decodes.
        let frame = encode_masked(0x1, &[b'x'; 200], [1, 2, 3, 4]);
        assert_eq!(&frame[..4], &[0x81, 0x80 | 126, 0, 200]);
        assert_eq!(frame, client_frame(true, 0x1, &[b'x'; 200], [1, 2, 3, 4]));
        let mut server = WsDecoder::new(1000);
        server.push(&frame).unwrap();
        assert_eq!(
            server.next_event().unwrap(),
            Some(WsEvent::Message(vec![b'x'; 200]))
        );
        // A client takes unmasked server frames and refuses masked ones.
        let mut client = WsDecoder::with_role(1000, Role::Client);
        client.push(&encode(0x1, b"SIP/2.0 200 OK")).unwrap();
        client.push(&encode(0x9, b"p")).unwrap();
        assert_eq!(
            client.next_event().unwrap(),
            Some(WsEvent::Message(b"SIP/2.0 200 OK".to_vec()))
        );
        assert_eq!(
            client.next_event().unwrap(),
            Some(WsEvent::Pong(b"p".to_vec()))
        );
        let mut client = WsDecoder::with_role(1000, Role::Client);
        client.push(&frame).unwrap();
        assert_eq!(
            client.next_event(),
            Err(WsError::Frame("server frame masked"))
        );
    }

    #[test]
    fn server_frame_lengths() {
        assert_eq!(encode(0x1, b"abc"), vec![0x81, 3, b'a', b'b', b'c']);
        let long = encode(0x1, &[0; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut d = WsDecoder::new(512);
            let n = (seed % 64) as usize;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((seed >> 16) as u8);
            }
            if d.push(&v).is_ok() {
                for _ in 0..8 {
                    if !matches!(d.next_event(), Ok(Some(_))) {
                        break;
                    }
                }
            }
            let _ = server_handshake(&v, 512);
            let _ = check_server_handshake(&v, "k", 512);
            let mut c = WsDecoder::with_role(512, Role::Client);
            if c.push(&v).is_ok() {
                let _ = c.next_event();
            }
        }
    }
}
