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
    cfg.udp.clear();
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
    assert_eq!(bound.listeners[0].0, Transport::Tls);
    let server = tokio::spawn(fut);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let tcp = tokio::net::TcpStream::connect(bound.listeners[0].1)
        .await
        .unwrap();
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
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
