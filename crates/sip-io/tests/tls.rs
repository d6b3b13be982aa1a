//! REGISTER over TLS (tokio-rustls) against a self-signed certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip::{Framing, Limits, Message};
use natter_sip_io::{bind, SipServeConfig};
use natter_sip_server::{BindingStore, MemoryBindings, StaticCredentials, Transport};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn register_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();

    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.tcp.clear();
    cfg.tls_listen = vec![any];
    cfg.tls = Some(Arc::new(server_tls));
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
    let tls_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Tls)
        .unwrap()
        .1;
    let udp_addr = bound
        .listeners
        .iter()
        .find(|(t, _)| *t == Transport::Udp)
        .unwrap()
        .1;
    let server = tokio::spawn(fut);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let me = tcp.local_addr().unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let reg = format!(
        "REGISTER sips:natter.test SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bKtls1\r\nMax-Forwards: 70\r\n\
From: <sips:dave@natter.test>;tag=d1\r\nTo: <sips:dave@natter.test>\r\nCall-ID: tls1@test\r\nCSeq: 1 REGISTER\r\n\
Contact: <sips:dave@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    tls.write_all(reg.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    let resp = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "TLS connection closed");
        got.extend_from_slice(&buf[..n]);
        if let Ok(m) = Message::parse_with(&got, Framing::Stream, &Limits::default()) {
            break m.into_owned();
        }
    };
    assert_eq!(resp.code(), Some(200));
    assert_eq!(bindings.len(), 1);

    // A MESSAGE from a UDP user reaches dave over his own TLS connection.
    let alice = tokio::net::UdpSocket::bind(any).await.unwrap();
    let a = alice.local_addr().unwrap();
    let msg = format!(
        "MESSAGE sip:dave@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKtlsmsg;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=a1\r\nTo: <sip:dave@natter.test>\r\nCall-ID: tlsmsg@test\r\nCSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    );
    alice.send_to(msg.as_bytes(), udp_addr).await.unwrap();
    let mut got = Vec::new();
    let fwd = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "TLS connection closed");
        got.extend_from_slice(&buf[..n]);
        if let Ok(m) = Message::parse_with(&got, Framing::Stream, &Limits::default()) {
            break m.into_owned();
        }
    };
    assert_eq!(fwd.method(), Some(&natter_sip::Method::Message));
    assert_eq!(&*fwd.body, b"hi");
    assert_eq!(fwd.top_via().unwrap().transport, "TLS");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
