//! The proxy opens WebSocket connections (RFC 7118) to `;transport=ws` and
//! `;transport=wss` next hops. The next hop here is a hand-written WebSocket
//! server that checks the bytes: the HTTP upgrade offers the `sip`
//! subprotocol, and every frame from the proxy is masked (RFC 6455 §5.1).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{options, proxy, recv_response};
use natter_sip::Message;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

async fn read_until<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) {
    let mut chunk = vec![0u8; 65535];
    while !done(buf) {
        let n = s.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed early; got {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn b64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// Be a SIP-over-WebSocket server for one request: check the upgrade, answer
/// 101, read one masked text frame, answer the request with 200 in an
/// unmasked frame. Returns the request and the upgrade's header block.
async fn ws_uas<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> (Message<'static>, String) {
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, |b| b.windows(4).any(|w| w == b"\r\n\r\n")).await;
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("end") + 4;
    let head = String::from_utf8(buf[..end].to_vec()).expect("utf8");
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("a key")
        .trim()
        .to_owned();
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = b64(&h.finalize());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
    );
    s.write_all(resp.as_bytes()).await.expect("write 101");
    let mut frame = buf[end..].to_vec();
    read_until(&mut s, &mut frame, |b| b.len() >= 8).await;
    assert_eq!(frame[0], 0x81, "one final text frame");
    assert!(frame[1] & 0x80 != 0, "frames from a client are masked");
    let (len, at) = match frame[1] & 0x7f {
        126 => (usize::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
        n => (usize::from(n), 2),
    };
    read_until(&mut s, &mut frame, |b| b.len() >= at + 4 + len).await;
    let mask = [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
    let payload: Vec<u8> = frame[at + 4..at + 4 + len]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let req = Message::parse(&payload)
        .expect("a SIP request")
        .into_owned();
    let ok = Message::response_to(&req, 200, None, Some("uas")).to_bytes();
    let mut out = vec![0x81, 126];
    out.extend_from_slice(&(ok.len() as u16).to_be_bytes());
    out.extend_from_slice(&ok);
    s.write_all(&out).await.expect("write 200");
    (req, head)
}

async fn call_through(proxy_addr: SocketAddr, target: &str, branch: &str) -> Message<'static> {
    let ua = UdpSocket::bind("127.0.0.1:0").await.expect("ua");
    ua.connect(proxy_addr).await.expect("connect");
    let me = ua.local_addr().expect("addr");
    ua.send(options(target, me, branch).as_bytes())
        .await
        .expect("send");
    recv_response(&ua).await
}

#[tokio::test]
async fn proxy_forwards_over_a_websocket_it_opens() {
    let uas = TcpListener::bind("127.0.0.2:0").await.expect("listener");
    let uas_addr = uas.local_addr().expect("addr");
    let uas_task = tokio::spawn(async move {
        let (tcp, _) = uas.accept().await.expect("accept");
        ws_uas(tcp).await
    });
    let proxy_addr = proxy(None).await;
    let target = format!("sip:bob@{uas_addr};transport=ws");
    let resp = call_through(proxy_addr, &target, "ws1").await;
    let (req, head) = uas_task.await.expect("uas");
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("Host: {uas_addr}\r\n")), "{head}");
    assert!(head.contains("Sec-WebSocket-Protocol: sip\r\n"), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    assert_eq!(req.request_uri_str(), Some(target.as_str()));
    assert_eq!(req.top_via().expect("via").transport, "WS");
    assert_eq!(resp.code(), Some(200));
}

#[tokio::test]
async fn proxy_forwards_over_a_secure_websocket_it_opens() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.2".to_owned()]).expect("cert");
    let cert_der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
    let uas = TcpListener::bind("127.0.0.2:0").await.expect("listener");
    let uas_addr = uas.local_addr().expect("addr");
    let uas_task = tokio::spawn(async move {
        let (tcp, _) = uas.accept().await.expect("accept");
        let tls = acceptor.accept(tcp).await.expect("TLS handshake");
        ws_uas(tls).await
    });
    let proxy_addr = proxy(Some(cert_der)).await;
    let target = format!("sip:bob@{uas_addr};transport=wss");
    let resp = call_through(proxy_addr, &target, "wss1").await;
    let (req, _) = uas_task.await.expect("uas");
    assert_eq!(req.top_via().expect("via").transport, "WSS");
    assert_eq!(resp.code(), Some(200));
}

#[tokio::test]
async fn websocket_upgrade_refused_fails_the_branch_at_once() {
    let uas = TcpListener::bind("127.0.0.2:0").await.expect("listener");
    let uas_addr = uas.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut tcp, _) = uas.accept().await.expect("accept");
        let mut buf = Vec::new();
        read_until(&mut tcp, &mut buf, |b| {
            b.windows(4).any(|w| w == b"\r\n\r\n")
        })
        .await;
        // A web server that does not speak SIP over WebSocket.
        let _ = tcp
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let proxy_addr = proxy(None).await;
    let target = format!("sip:bob@{uas_addr};transport=ws");
    // Transport error: 503 for the branch, 500 upstream (RFC 3261 §16.7).
    assert_eq!(
        call_through(proxy_addr, &target, "ws2").await.code(),
        Some(500)
    );
}
