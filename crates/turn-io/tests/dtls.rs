//! TURN over DTLS (RFC 7350) through the real driver on loopback: a natter-dtls client
//! handshakes with the server's (self-signed TLS) certificate, allocates with long-term
//! credentials (after the server's cookie exchange), and a Send indication and a ChannelData both reach a UDP peer and come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use natter_dtls::{DtlsCertificate, DtlsEndpoint, DtlsEvent};
use natter_stun::{ChannelData, Class, Message, MessageWriter, Method, TransactionId};
use natter_turn::server::{PeerPolicy, ServerConfig};
use natter_turn_io::tls::{files_or_self_signed, ReloadableTls};
use natter_turn_io::turn_server::{self, TurnConfig};
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod common;
use common::{request, Alice, REALM, T};

/// A DTLS client association over a tokio UDP socket.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    ep: DtlsEndpoint,
}

impl Client {
    async fn flush(&mut self) {
        while let Some(d) = self.ep.poll_datagram() {
            self.sock.send_to(&d, self.server).await.unwrap();
        }
    }

    /// Receives until the association yields an event.
    async fn event(&mut self) -> DtlsEvent {
        let mut buf = vec![0u8; 4096];
        loop {
            if let Some(e) = self.ep.poll_event() {
                return e;
            }
            let wait = self
                .ep
                .poll_timeout()
                .map_or(T, |t| t.saturating_duration_since(Instant::now()));
            match timeout(wait.min(T), self.sock.recv_from(&mut buf)).await {
                Ok(r) => {
                    let (n, _) = r.unwrap();
                    let _ = self.ep.handle_datagram(&buf[..n], Instant::now());
                }
                Err(_) => self.ep.handle_timeout(Instant::now()),
            }
            self.flush().await;
        }
    }

    async fn send(&mut self, data: &[u8]) {
        self.ep.send_application_data(data).unwrap();
        self.flush().await;
    }

    async fn recv(&mut self) -> Vec<u8> {
        match self.event().await {
            DtlsEvent::ApplicationData(d) => d,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocate_and_relay_over_dtls() {
    let dir = std::env::temp_dir().join(format!("natter-dtls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = files_or_self_signed(None, &dir, &["localhost".into()]).unwrap();
    let server_cert = natter_turn_io::turn_server::dtls_listener::load_certificate(&files).unwrap();
    let cfg = TurnConfig {
        udp: vec![],
        tcp: vec![],
        tls: vec![],
        dtls: vec!["127.0.0.1:0".parse().unwrap()],
        relay_ipv4: Some("127.0.0.1".parse().unwrap()),
        relay_ipv6: None,
        ports: (43000, 43999),
        core: ServerConfig {
            realm: REALM.into(),
            peers: PeerPolicy {
                allow_loopback: true,
                ..PeerPolicy::default()
            },
            ..ServerConfig::default()
        },
        shards: 2,
        tls_config: Some(ReloadableTls::new(files).unwrap()),
    };
    let handle = turn_server::start(cfg, Arc::new(Alice)).unwrap();
    let server = handle.dtls_addrs[0];

    let ours = DtlsCertificate::generate().unwrap();
    let ep = DtlsEndpoint::new_plain_client(
        &ours,
        Some(server_cert.fingerprint_sha256()),
        Instant::now(),
    )
    .unwrap();
    let mut c = Client {
        sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        server,
        ep,
    };
    // The server's first answer is a HelloVerifyRequest (handshake type 3) no larger than
    // the ClientHello: it verifies the address before sending its certificate flight.
    let hello = c.ep.poll_datagram().unwrap();
    c.sock.send_to(&hello, server).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = timeout(T, c.sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (buf[0], buf.get(13).copied()),
        (22, Some(3)),
        "HelloVerifyRequest"
    );
    assert!(n < hello.len());
    c.ep.handle_datagram(&buf[..n], Instant::now()).unwrap();
    c.flush().await;
    assert!(matches!(c.event().await, DtlsEvent::Connected { .. }));

    c.send(&request(Method::ALLOCATE, 1, None, |w| {
        w.add_requested_transport(17);
    }))
    .await;
    let r = c.recv().await;
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 401);
    let nonce = m.nonce().unwrap().unwrap().to_owned();
    c.send(&request(Method::ALLOCATE, 2, Some(&nonce), |w| {
        w.add_requested_transport(17);
    }))
    .await;
    let r = c.recv().await;
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    let relayed = m.xor_relayed_address().unwrap().unwrap();
    let mapped = m.xor_mapped_address().unwrap().unwrap();
    assert_eq!(mapped, c.sock.local_addr().unwrap());

    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    c.send(&request(Method::CHANNEL_BIND, 3, Some(&nonce), |w| {
        w.add_channel_number(0x4001).add_xor_peer_address(peer_addr);
    }))
    .await;
    let r = c.recv().await;
    assert_eq!(Message::parse(&r).unwrap().class(), Class::Success);

    // Send indication out, peer answer back as ChannelData (a channel is bound).
    let mut ind = Vec::new();
    let mut w = MessageWriter::new(
        &mut ind,
        Method::SEND,
        Class::Indication,
        TransactionId([4; 12]),
    );
    w.add_xor_peer_address(peer_addr).add_data(b"over dtls");
    w.finish().unwrap();
    c.send(&ind).await;
    let mut buf = [0u8; 64];
    let (n, from) = timeout(T, peer.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!((&buf[..n], from), (&b"over dtls"[..], relayed));
    peer.send_to(b"back", relayed).await.unwrap();
    let r = c.recv().await;
    let cd = ChannelData::parse(&r).unwrap();
    assert_eq!((cd.channel, cd.payload), (0x4001, &b"back"[..]));
    assert_eq!(r.len(), 8, "datagram transport: no padding");

    // ChannelData out.
    let mut out = Vec::new();
    ChannelData::encode(0x4001, b"channel", false, &mut out).unwrap();
    c.send(&out).await;
    let (n, _) = timeout(T, peer.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"channel");
    handle.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
