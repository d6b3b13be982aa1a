//! What the driver's tests share: a proxy without authentication listening on
//! UDP, a request to send through it, and reading its answer.
#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip::Message;
use natter_sip_io::{bind_with_stats, SipServeConfig, StatsHandle};
use natter_sip_server::{MemoryBindings, StaticCredentials, Transport};
use rustls::pki_types::CertificateDer;
use tokio::net::UdpSocket;

/// An OPTIONS for `to`, sent from `me`.
pub fn options(to: &str, me: SocketAddr, branch: &str) -> String {
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

/// A proxy on 127.0.0.1 (UDP only) trusting `trust` for the TLS connections it opens.
pub async fn proxy(trust: Option<CertificateDer<'static>>) -> SocketAddr {
    let mut cfg = udp_proxy_config();
    if let Some(trust) = trust {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(trust).expect("root");
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.tls_client = Some(Arc::new(client));
    }
    start(cfg).await.0
}

/// A proxy for natter.test on 127.0.0.1 (UDP only, any port), without authentication.
pub fn udp_proxy_config() -> SipServeConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.tcp.clear();
    cfg.server.auth = false;
    cfg
}

/// Serves `cfg` (bindings in memory) until the test ends: its UDP address and its counters.
pub async fn start(cfg: SipServeConfig) -> (SocketAddr, StatsHandle) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound, stats, fut) = bind_with_stats(
        cfg,
        Arc::new(StaticCredentials::new()),
        Arc::new(MemoryBindings::new()),
        rx,
    )
    .await
    .expect("bind");
    tokio::spawn(async move {
        let _keep = tx;
        let _ = fut.await;
    });
    (bound.of(Transport::Udp)[0], stats)
}

/// The next SIP message on `sock`, within 20 s.
pub async fn recv_response(sock: &UdpSocket) -> Message<'static> {
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(20), sock.recv(&mut buf))
        .await
        .expect("a response")
        .expect("recv");
    Message::parse(&buf[..n]).expect("parses").into_owned()
}
