//! RFC 6062 TCP relaying through the real driver on loopback: a control connection allocates
//! a TCP relay, CONNECTs to a peer the test listens with, binds data connections (several, so
//! with two shards some land on the other shard and are forwarded), and bytes flow both ways;
//! then the peer connects in and a ConnectionAttempt announces it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use natter_stun::{Class, Message, Method};
use natter_turn::server::{PeerPolicy, ServerConfig};
use natter_turn_io::turn_server::{self, TurnConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

mod common;
use common::{key, request, Alice, REALM, T};

fn start(shards: usize) -> turn_server::TurnHandle {
    let cfg = TurnConfig {
        udp: vec![],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        tls: vec![],
        dtls: vec![],
        relay_ipv4: Some("127.0.0.1".parse().unwrap()),
        relay_ipv6: None,
        ports: (42000, 42999),
        core: ServerConfig {
            realm: REALM.into(),
            peers: PeerPolicy {
                allow_loopback: true,
                ..PeerPolicy::default()
            },
            ..ServerConfig::default()
        },
        shards,
        tls_config: None,
    };
    turn_server::start(cfg, Arc::new(Alice)).unwrap()
}

/// Reads one STUN message off a stream.
async fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 20];
    timeout(T, s.read_exact(&mut buf)).await.unwrap().unwrap();
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    buf.resize(20 + len, 0);
    timeout(T, s.read_exact(&mut buf[20..]))
        .await
        .unwrap()
        .unwrap();
    buf
}

async fn ask(s: &mut TcpStream, req: Vec<u8>) -> Vec<u8> {
    s.write_all(&req).await.unwrap();
    read_msg(s).await
}

fn ok(bytes: &[u8]) -> Message<'_> {
    let m = Message::parse(bytes).unwrap();
    assert_eq!(m.class(), Class::Success, "{:?}", m.error_code());
    m.verify_integrity(&key()).unwrap();
    m
}

/// Binds a new data connection to `id`; returns it, ready for raw bytes.
async fn data_connection(server: SocketAddr, nonce: &str, id: u32, n: u8) -> TcpStream {
    let mut d = TcpStream::connect(server).await.unwrap();
    let r = ask(
        &mut d,
        request(Method::CONNECTION_BIND, n, Some(nonce), |w| {
            w.add_connection_id(id);
        }),
    )
    .await;
    let m = ok(&r);
    assert_eq!(m.method(), Method::CONNECTION_BIND);
    d
}

async fn echo_both_ways(data: &mut TcpStream, peer: &mut TcpStream, tag: &str) {
    let to_peer = format!("to peer {tag}");
    data.write_all(to_peer.as_bytes()).await.unwrap();
    let mut got = vec![0u8; to_peer.len()];
    timeout(T, peer.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, to_peer.as_bytes());
    let to_client = format!("to client {tag}");
    peer.write_all(to_client.as_bytes()).await.unwrap();
    let mut got = vec![0u8; to_client.len()];
    timeout(T, data.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, to_client.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_bind_and_peer_initiated_connections_relay_bytes() {
    let handle = start(2);
    let server = handle.tcp_addrs[0];
    let peer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer_listener.local_addr().unwrap();

    let mut ctl = TcpStream::connect(server).await.unwrap();
    let r = ask(
        &mut ctl,
        request(Method::ALLOCATE, 1, None, |w| {
            w.add_requested_transport(6);
        }),
    )
    .await;
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 401);
    let nonce = m.nonce().unwrap().unwrap().to_owned();
    let r = ask(
        &mut ctl,
        request(Method::ALLOCATE, 2, Some(&nonce), |w| {
            w.add_requested_transport(6);
        }),
    )
    .await;
    let relayed = ok(&r).xor_relayed_address().unwrap().unwrap();

    // Client-initiated connections, several, each on its own data connection.
    for n in 0..4u8 {
        let r = ask(
            &mut ctl,
            request(Method::CONNECT, 10 + n, Some(&nonce), |w| {
                w.add_xor_peer_address(peer_addr);
            }),
        )
        .await;
        let (mut peer, from) = timeout(T, peer_listener.accept()).await.unwrap().unwrap();
        assert_eq!(from, relayed, "CONNECT comes from the relayed address");
        let id = ok(&r).connection_id().unwrap().unwrap();
        let mut d = data_connection(server, &nonce, id, 20 + n).await;
        echo_both_ways(&mut d, &mut peer, &format!("connect {n}")).await;
        // The peer hanging up closes the data connection.
        drop(peer);
        let mut rest = Vec::new();
        let got = timeout(T, d.read_to_end(&mut rest)).await.unwrap();
        assert!(got.is_ok() && rest.is_empty(), "{got:?} {rest:?}");
    }

    // A second CONNECT while one to the same peer exists is 446.
    let r = ask(
        &mut ctl,
        request(Method::CONNECT, 30, Some(&nonce), |w| {
            w.add_xor_peer_address(peer_addr);
        }),
    )
    .await;
    let (_held, _) = timeout(T, peer_listener.accept()).await.unwrap().unwrap();
    ok(&r);
    let r = ask(
        &mut ctl,
        request(Method::CONNECT, 31, Some(&nonce), |w| {
            w.add_xor_peer_address(peer_addr);
        }),
    )
    .await;
    assert_eq!(
        Message::parse(&r)
            .unwrap()
            .error_code()
            .unwrap()
            .unwrap()
            .code,
        446
    );

    // A CONNECT to a closed port is 447.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let r = ask(
        &mut ctl,
        request(Method::CONNECT, 32, Some(&nonce), |w| {
            w.add_xor_peer_address(closed_addr);
        }),
    )
    .await;
    assert_eq!(
        Message::parse(&r)
            .unwrap()
            .error_code()
            .unwrap()
            .unwrap()
            .code,
        447
    );

    // Peer-initiated: refused without a permission (closed at once), announced with one.
    let mut early = TcpStream::connect(relayed).await.unwrap();
    let mut b = [0u8; 1];
    let n = timeout(T, early.read(&mut b)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let r = ask(
        &mut ctl,
        request(Method::CREATE_PERMISSION, 40, Some(&nonce), |w| {
            w.add_xor_peer_address(SocketAddr::new(peer_addr.ip(), 0));
        }),
    )
    .await;
    ok(&r);
    let mut peer = TcpStream::connect(relayed).await.unwrap();
    // The peer may speak first: the server holds its bytes until the bind.
    peer.write_all(b"early bytes").await.unwrap();
    let ind = read_msg(&mut ctl).await;
    let m = Message::parse(&ind).unwrap();
    assert_eq!(
        (m.method(), m.class()),
        (Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(
        m.xor_peer_address().unwrap(),
        Some(peer.local_addr().unwrap())
    );
    let id = m.connection_id().unwrap().unwrap();
    let mut d = data_connection(server, &nonce, id, 41).await;
    let mut got = [0u8; 11];
    timeout(T, d.read_exact(&mut got)).await.unwrap().unwrap();
    assert_eq!(&got, b"early bytes");
    echo_both_ways(&mut d, &mut peer, "incoming").await;

    // The control connection closing ends the allocation and its connections.
    drop(ctl);
    let mut rest = Vec::new();
    let got = timeout(T, peer.read_to_end(&mut rest)).await.unwrap();
    assert!(got.is_ok(), "{got:?}");
    handle.shutdown();
}
