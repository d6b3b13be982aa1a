//! The proxy opens TLS connections to next hops (`;transport=tls`), checks their
//! certificate, and fails a branch at once when the next hop cannot be reached.

mod common;

use std::sync::Arc;

use common::{options, proxy, recv_response};
use natter_sip::{Framing, Limits, Message};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

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

    let proxy_addr = proxy(Some(cert_der)).await;
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
    let proxy_addr = proxy(Some(cert.cert.der().clone())).await;
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
