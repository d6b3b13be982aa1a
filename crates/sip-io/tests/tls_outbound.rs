//! The proxy opens TLS connections to next hops (`;transport=tls`), checks their
//! certificate, and fails a branch at once when the next hop cannot be reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip::{Framing, Limits, Message};
use natter_sip_io::{bind, SipServeConfig};
use natter_sip_server::{MemoryBindings, StaticCredentials, Transport};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

fn options(to: &str, me: SocketAddr, branch: &str) -> String {
    format!(
        "OPTIONS {to} SIP/2.0\r\n\
Via: SIP/2.0/UDP {me};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=a{branch}\r\n\
To: <{to}>\r\n\
Call-ID: {branch}@test\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

async fn proxy(trust: rustls::pki_types::CertificateDer<'static>) -> SocketAddr {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust).expect("root");
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.tcp.clear();
    cfg.server.auth = false;
    cfg.tls_client = Some(Arc::new(client));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let (bound, fut) = bind(
        cfg,
        Arc::new(StaticCredentials::new()),
        Arc::new(MemoryBindings::new()),
        rx,
    )
    .await
    .expect("bind");
    tokio::spawn(async move {
        let _keep = _tx;
        let _ = fut.await;
    });
    bound.of(Transport::Udp)[0]
}

async fn recv_response(sock: &UdpSocket) -> Message<'static> {
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(20), sock.recv(&mut buf))
        .await
        .expect("a response")
        .expect("recv");
    Message::parse(&buf[..n]).expect("parses").into_owned()
}

#[tokio::test]
async fn proxy_forwards_over_a_tls_connection_it_opens() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.2".to_owned()]).expect("cert");
    let cert_der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .expect("server config");
    let uas = TcpListener::bind("127.0.0.2:0")
        .await
        .expect("uas listener");
    let uas_addr = uas.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
    // The UAS answers the first request on the connection with 200.
    let uas_task = tokio::spawn(async move {
        let (tcp, _) = uas.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("handshake");
        let mut buf = vec![0u8; 65535];
        let mut got = Vec::new();
        loop {
            let n = tls.read(&mut buf).await.expect("read");
            assert!(n > 0, "connection closed before a whole request");
            got.extend_from_slice(&buf[..n]);
            if let Ok(m) = Message::parse_with(&got, Framing::Stream, &Limits::default()) {
                let m = m.into_owned();
                let resp = Message::response_to(&m, 200, None, Some("uas"));
                tls.write_all(&resp.to_bytes()).await.expect("write");
                return m;
            }
        }
    });

    let proxy_addr = proxy(cert_der).await;
    let ua = UdpSocket::bind("127.0.0.1:0").await.expect("ua");
    ua.connect(proxy_addr).await.expect("connect");
    let me = ua.local_addr().expect("addr");
    let target = format!("sip:bob@{uas_addr};transport=tls");
    ua.send(options(&target, me, "tls1").as_bytes())
        .await
        .expect("send");
    let seen = uas_task.await.expect("uas");
    assert_eq!(seen.request_uri_str(), Some(target.as_str()));
    let top = seen.top_via().expect("via");
    assert_eq!(
        top.transport, "TLS",
        "the proxy's Via names the TLS transport"
    );
    assert_eq!(recv_response(&ua).await.code(), Some(200));
}

#[tokio::test]
async fn unreachable_tls_next_hop_fails_at_once() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.2".to_owned()]).expect("cert");
    // A port with nobody listening.
    let closed = {
        let l = TcpListener::bind("127.0.0.2:0").await.expect("listener");
        l.local_addr().expect("addr")
    };
    let proxy_addr = proxy(cert.cert.der().clone()).await;
    let ua = UdpSocket::bind("127.0.0.1:0").await.expect("ua");
    ua.connect(proxy_addr).await.expect("connect");
    let me = ua.local_addr().expect("addr");
    let target = format!("sip:bob@{closed};transport=tls");
    ua.send(options(&target, me, "tls2").as_bytes())
        .await
        .expect("send");
    // A transport error (503 for the branch, sent upstream as 500: RFC 3261
    // §16.7 step 6), not Timer F's 408 thirty-two seconds later.
    assert_eq!(recv_response(&ua).await.code(), Some(500));
}
