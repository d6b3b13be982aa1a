//! The driver on real loopback sockets: REGISTER over UDP and TCP, and a
//! proxied MESSAGE between two registered UDP users.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip::{HeaderName, Message, Method};
use natter_sip_io::{bind, SipServeConfig};
use natter_sip_server::{BindingStore, MemoryBindings, StaticCredentials, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn register(user: &str, me: SocketAddr, proto: &str, branch: &str) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/{proto} {me};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\n\
From: <sip:{user}@natter.test>;tag=t{branch}\r\nTo: <sip:{user}@natter.test>\r\nCall-ID: {branch}@test\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:{user}@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn recv(sock: &UdpSocket) -> Message<'static> {
    let mut buf = vec![0u8; 65535];
    // Bounded wait: a missing answer fails the test instead of hanging it.
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("answer within 5 s")
        .expect("recv");
    Message::parse(&buf[..n]).expect("valid SIP").into_owned()
}

#[tokio::test]
async fn udp_and_tcp_register_then_proxied_message() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
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
    let udp_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Udp)
        .unwrap()
        .1;
    let tcp_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Tcp)
        .unwrap()
        .1;

    // UDP REGISTER for alice and bob.
    let alice = UdpSocket::bind(any).await.unwrap();
    let bob = UdpSocket::bind(any).await.unwrap();
    for (sock, user) in [(&alice, "alice"), (&bob, "bob")] {
        let me = sock.local_addr().unwrap();
        sock.send_to(register(user, me, "UDP", user).as_bytes(), udp_addr)
            .await
            .unwrap();
        let r = recv(sock).await;
        assert_eq!(r.code(), Some(200));
        assert_eq!(
            r.header(HeaderName::Contact).unwrap(),
            format!("<sip:{user}@{me}>;expires=3600")
        );
    }

    // TCP REGISTER for carol, framed with Content-Length.
    let mut carol = TcpStream::connect(tcp_addr).await.unwrap();
    let me = carol.local_addr().unwrap();
    carol
        .write_all(register("carol", me, "TCP", "carol").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let msg = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), carol.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        got.extend_from_slice(&buf[..n]);
        if let Ok(m) = Message::parse_with(
            &got,
            natter_sip::Framing::Stream,
            &natter_sip::Limits::default(),
        ) {
            break m.into_owned();
        }
    };
    assert_eq!(msg.code(), Some(200));
    assert_eq!(bindings.len(), 3);

    // alice -> bob MESSAGE through the proxy.
    let a = alice.local_addr().unwrap();
    let message = format!(
        "MESSAGE sip:bob@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKmsg1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=m1\r\nTo: <sip:bob@natter.test>\r\nCall-ID: msg1@test\r\nCSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    );
    alice.send_to(message.as_bytes(), udp_addr).await.unwrap();
    let fwd = recv(&bob).await;
    assert_eq!(fwd.method(), Some(&Method::Message));
    assert_eq!(&*fwd.body, b"hello");
    let ok = Message::response_to(&fwd, 200, None, Some("b1"));
    bob.send_to(&ok.to_bytes(), udp_addr).await.unwrap();
    let up = recv(&alice).await;
    assert_eq!(up.code(), Some(200));
    assert_eq!(up.vias().unwrap().len(), 1);

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
