//! SIP over WebSocket (RFC 7118): handshake, REGISTER in a masked text
//! frame, and a call from a UDP user delivered over the WebSocket flow with
//! RFC 5658 double Record-Route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip::{HeaderName, Message, Method};
use natter_sip_io::{bind, SipServeConfig};
use natter_sip_server::{BindingStore, MemoryBindings, StaticCredentials, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x81];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Read one unmasked server text frame.
async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if buf.len() >= 2 {
            let (len, at) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                126 => (usize::MAX, 0),
                n => (n as usize, 2),
            };
            if len != usize::MAX && buf.len() >= at + len {
                assert_eq!(buf[0], 0x81, "FIN + text frame");
                let payload = buf[at..at + len].to_vec();
                buf.drain(..at + len);
                return payload;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("frame within 5 s")
            .expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn register_and_receive_call_over_websocket() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.tcp.clear();
    cfg.ws_listen = vec![any];
    cfg.server.auth = false;
    let bindings = Arc::new(MemoryBindings::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound, fut) = bind(
        cfg,
        Arc::new(StaticCredentials::new()),
        bindings.clone(),
        rx,
    )
    .await
    .unwrap();
    let server = tokio::spawn(fut);
    let ws_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Ws)
        .unwrap()
        .1;
    let udp_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Udp)
        .unwrap()
        .1;

    let mut ws = TcpStream::connect(ws_addr).await.unwrap();
    ws.write_all(
        b"GET / HTTP/1.1\r\nHost: natter.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), ws.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            buf.drain(..end + 4);
            break head;
        }
    };
    assert!(head.starts_with("HTTP/1.1 101"));
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));

    // REGISTER over WS (RFC 7118 §5: Via transport WS, invalid .invalid host).
    let reg = "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws1\r\nMax-Forwards: 70\r\n\
From: <sip:web@natter.test>;tag=w1\r\nTo: <sip:web@natter.test>\r\nCall-ID: ws1@test\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:web@df7jal23ls0d.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n";
    ws.write_all(&masked_text(reg.as_bytes())).await.unwrap();
    let resp = read_frame(&mut ws, &mut buf).await;
    let resp = Message::parse(&resp).unwrap().into_owned();
    assert_eq!(resp.code(), Some(200));
    assert_eq!(bindings.len(), 1);

    // A UDP caller invites the WebSocket user.
    let alice = UdpSocket::bind(any).await.unwrap();
    let a = alice.local_addr().unwrap();
    let inv = format!(
        "INVITE sip:web@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKwsinv;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=a1\r\nTo: <sip:web@natter.test>\r\nCall-ID: wsinv@test\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"
    );
    alice.send_to(inv.as_bytes(), udp_addr).await.unwrap();
    let fwd = read_frame(&mut ws, &mut buf).await;
    let fwd = Message::parse(&fwd).unwrap().into_owned();
    assert_eq!(fwd.method(), Some(&Method::Invite));
    assert_eq!(fwd.top_via().unwrap().transport, "WS");
    let rr: Vec<&str> = fwd.header_values(HeaderName::RecordRoute).collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert_eq!(rr[1], format!("<sip:{udp_addr};lr>"));
    // The entry facing the WebSocket user names its connection (a flow
    // token), so in-dialog requests from alice go back over it.
    let token = rr[0]
        .strip_prefix("<sip:")
        .and_then(|r| r.strip_suffix(&format!("@{ws_addr};transport=ws;lr>")))
        .expect("token user part");
    assert_eq!(
        natter_sip_server::flow::decode_token(token, &[0x5a; 32]),
        Some(natter_sip_server::Peer {
            transport: Transport::Ws,
            addr: ws.local_addr().unwrap(),
        })
    );

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
