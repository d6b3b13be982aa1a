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

#[tokio::test]
async fn client_helpers_register_options_message() {
    use natter_sip_io::client::{self, ClientConfig, Direction};
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.tcp.clear();
    let creds = StaticCredentials::new()
        .with_user("alice", "pw")
        .with_user("bob", "pw2");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound, fut) = bind(cfg, Arc::new(creds), Arc::new(MemoryBindings::new()), rx)
        .await
        .unwrap();
    let server = tokio::spawn(fut);
    let udp_addr = bound.listeners[0].1;
    let mut c = ClientConfig {
        server: udp_addr,
        bind: any,
        user: "alice".into(),
        domain: "natter.test".into(),
        password: Some("pw".into()),
        timeout: Duration::from_secs(5),
        contact: None,
    };
    let ex = client::register(&c, 300).await.unwrap();
    assert_eq!(ex.code, 200);
    // REGISTER, 401, REGISTER with credentials, 200.
    let dirs: Vec<Direction> = ex.log.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        dirs,
        vec![
            Direction::Sent,
            Direction::Received,
            Direction::Sent,
            Direction::Received
        ]
    );
    assert!(ex.log[1].1.starts_with("SIP/2.0 401"));
    assert!(ex.log[2]
        .1
        .contains("Authorization: Digest username=\"alice\""));
    let ex = client::options(&c, "sip:natter.test").await.unwrap();
    assert_eq!(ex.code, 200);
    // MESSAGE to a known but unregistered user: 407 answered, then 480.
    let ex = client::message(&c, "sip:bob@natter.test", "hello")
        .await
        .unwrap();
    assert_eq!(ex.code, 480);
    // Wrong password: refused.
    c.password = Some("nope".into());
    let ex = client::register(&c, 300).await.unwrap();
    assert_eq!(ex.code, 403);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// RFC 5626 keep-alives on real sockets: a STUN Binding request on the SIP
/// UDP port is answered with the client's own address (XOR-MAPPED-ADDRESS),
/// and a CRLFCRLF ping on TCP with a CRLF pong. Then a NATed TCP
/// registration goes away with its connection.
#[tokio::test]
async fn keepalives_and_connection_bound_bindings() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.server.auth = false;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let bindings = Arc::new(MemoryBindings::new());
    let (bound, fut) = bind(
        cfg,
        Arc::new(StaticCredentials::new()),
        bindings.clone(),
        rx,
    )
    .await
    .unwrap();
    let server = tokio::spawn(fut);
    let udp_addr = bound.of(Transport::Udp)[0];
    let tcp_addr = bound.of(Transport::Tcp)[0];

    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(b"keepalive-01");
    sock.send_to(&req, udp_addr).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("STUN answer within 5 s")
        .unwrap();
    let resp = &buf[..n];
    assert_eq!(n, 32);
    assert_eq!(&resp[..4], &[0x01, 0x01, 0x00, 0x0c]);
    assert_eq!(&resp[8..20], b"keepalive-01");
    assert_eq!(&resp[20..26], &[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
    let port = u16::from_be_bytes([resp[26], resp[27]]) ^ 0x2112;
    let ip: Vec<u8> = resp[28..32]
        .iter()
        .zip([0x21, 0x12, 0xa4, 0x42])
        .map(|(a, b)| a ^ b)
        .collect();
    assert_eq!(port, me.port());
    assert_eq!(ip, vec![127, 0, 0, 1]);

    let mut tcp = TcpStream::connect(tcp_addr).await.unwrap();
    tcp.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut pong))
        .await
        .expect("pong within 5 s")
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    // A TCP registration whose Contact is a private address (a UA behind a
    // NAT) lives on its connection: closing the connection drops it.
    let reg =         "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKnat1;rport\r\n\
Max-Forwards: 70\r\nFrom: <sip:nat@natter.test>;tag=n1\r\nTo: <sip:nat@natter.test>\r\nCall-ID: nat1@test\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:nat@10.0.0.5:5060;transport=tcp>\r\nContent-Length: 0\r\n\r\n";
    tcp.write_all(reg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("200 within 5 s")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"));
    assert_eq!(bindings.len(), 1);
    drop(tcp);
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while bindings.len() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "binding dropped with its connection");
    let _ = tx.send(true);
    let _ = server.await;
}
