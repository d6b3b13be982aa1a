//! Behaviour on loopback: the TURN control exchanges against a scripted fake server, the bare
//! forwarder in both modes, and batched I/O. Every loop is bounded; nothing sleeps to wait.

// Test helpers outside #[test] functions may panic: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use natter_loadgen::batch::{bind_udp, wait_readable, RecvBatch, SendBatch};
use natter_loadgen::binding::{self, BindingConfig};
use natter_loadgen::flow::PaceConfig;
use natter_loadgen::forwarder::{self, Target};
use natter_loadgen::relay::{self, RelayConfig, RelayMode};
use natter_loadgen::turn_client::{Credentials, TurnClient, TurnError};
use natter_stun::credentials::long_term_key;
use natter_stun::{Class, Message, MessageWriter, Method};

const RELAYED: &str = "127.0.0.1:50000";

/// What the fake server saw, in order.
#[derive(Debug, Eq, PartialEq)]
enum Seen {
    Unsigned(Method),
    Signed(Method),
    Dropped(Method),
}

/// A scripted TURN server: 401 for unsigned requests, success for correctly signed ones
/// (XOR-RELAYED-ADDRESS on Allocate), 441-style rejection for a wrong key, and it drops the
/// first `drop_first` requests to exercise retransmission. Serves at most `max` requests.
fn fake_turn(drop_first: usize, max: usize) -> (SocketAddr, thread::JoinHandle<Vec<Seen>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let key = long_term_key("u", "natter", "p");
    let handle = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        let mut dropped = 0;
        for _ in 0..max {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let Ok(request) = Message::parse(&buf[..len]) else {
                continue;
            };
            let method = request.method();
            if dropped < drop_first {
                dropped += 1;
                seen.push(Seen::Dropped(method));
                continue;
            }
            let tid = request.transaction_id();
            if request.username() == Ok(None) {
                seen.push(Seen::Unsigned(method));
                MessageWriter::new(&mut out, method, Class::Error, tid)
                    .add_error_code(401, "Unauthorized")
                    .add_realm("natter")
                    .add_nonce("nonce-1")
                    .finish()
                    .unwrap();
            } else if request.verify_integrity(&key).is_ok() {
                seen.push(Seen::Signed(method));
                let mut writer = MessageWriter::new(&mut out, method, Class::Success, tid);
                if method == Method::ALLOCATE {
                    writer
                        .add_xor_relayed_address(RELAYED.parse().unwrap())
                        .add_lifetime(600);
                }
                writer.finish().unwrap();
            } else {
                seen.push(Seen::Signed(method));
                MessageWriter::new(&mut out, method, Class::Error, tid)
                    .add_error_code(441, "Wrong Credentials")
                    .finish()
                    .unwrap();
            }
            socket.send_to(&out, from).unwrap();
        }
        seen
    });
    (addr, handle)
}

fn client(server: SocketAddr, user: &str) -> TurnClient {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server).unwrap();
    TurnClient::new(Arc::new(socket), user.parse::<Credentials>().unwrap())
}

#[test]
fn allocate_answers_the_challenge_then_binds_refreshes_and_deletes() {
    let (server, fake) = fake_turn(0, 5);
    let mut turn = client(server, "u:p");
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    assert_eq!(turn.allocate(600).unwrap(), RELAYED.parse().unwrap());
    assert_eq!(turn.relayed(), Some(RELAYED.parse().unwrap()));
    turn.channel_bind(peer, 0x4000).unwrap();
    turn.create_permission(peer).unwrap();
    turn.refresh(0).unwrap();
    assert_eq!(
        fake.join().unwrap(),
        vec![
            Seen::Unsigned(Method::ALLOCATE),
            Seen::Signed(Method::ALLOCATE),
            Seen::Signed(Method::CHANNEL_BIND),
            Seen::Signed(Method::CREATE_PERMISSION),
            Seen::Signed(Method::REFRESH),
        ]
    );
}

#[test]
fn a_lost_request_is_retransmitted() {
    let (server, fake) = fake_turn(1, 3);
    let mut turn = client(server, "u:p");
    turn.allocate(600).unwrap();
    assert_eq!(
        fake.join().unwrap(),
        vec![
            Seen::Dropped(Method::ALLOCATE),
            Seen::Unsigned(Method::ALLOCATE),
            Seen::Signed(Method::ALLOCATE),
        ]
    );
}

#[test]
fn wrong_password_is_reported_with_the_server_code() {
    let (server, fake) = fake_turn(0, 2);
    let mut turn = client(server, "u:wrong");
    match turn.allocate(600) {
        Err(TurnError::Rejected { code, .. }) => assert_eq!(code, 441),
        other => panic!("unexpected {other:?}"),
    }
    fake.join().unwrap();
}

/// Runs the forwarder in a thread until the returned flag is raised.
fn start_forwarder(target: Target) -> (SocketAddr, Arc<AtomicBool>, thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        forwarder::run(
            "127.0.0.1:0".parse().unwrap(),
            target,
            forwarder::Batching {
                batch: 32,
                coalesce: Duration::ZERO,
                gso: true,
            },
            Duration::from_secs(60),
            |addr| tx.send(addr).unwrap(),
            || thread_stop.load(Ordering::Relaxed),
        )
        .unwrap();
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, stop, handle)
}

/// Receives until `want` datagrams arrived on `socket` (bounded by 100 polls of 100 ms).
fn receive(socket: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
    let mut batch = RecvBatch::new(64);
    let mut got = Vec::new();
    let mut ready = Vec::new();
    for _ in 0..100 {
        if got.len() >= want {
            break;
        }
        wait_readable(
            &[socket.as_raw_fd()],
            Duration::from_millis(100),
            &mut ready,
        )
        .unwrap();
        let n = batch.recv(socket.as_raw_fd()).unwrap();
        got.extend((0..n).map(|i| batch.packet(i).to_vec()));
    }
    got
}

#[test]
fn forwarder_hands_batches_on_unchanged_and_in_order() {
    let peer = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
    let (addr, stop, handle) = start_forwarder(Target::Forward(peer.local_addr().unwrap()));
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(addr).unwrap();
    let packets: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1 + usize::from(i)]).collect();
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    assert_eq!(
        SendBatch::new().send(sender.as_raw_fd(), &refs).unwrap(),
        40
    );
    assert_eq!(receive(&peer, 40), packets);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

#[test]
fn echo_forwarder_answers_each_source() {
    let (addr, stop, handle) = start_forwarder(Target::Echo);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.send_to(b"from a", addr).unwrap();
    b.send_to(b"from b", addr).unwrap();
    assert_eq!(receive(&a, 1), vec![b"from a".to_vec()]);
    assert_eq!(receive(&b, 1), vec![b"from b".to_vec()]);
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

fn small_pace(rate: u64) -> PaceConfig {
    PaceConfig {
        rate_per_s: rate,
        duration: Duration::from_millis(100),
        batch: 8,
        tick: Duration::from_micros(500),
        gso: false,
    }
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or("")
}

#[test]
fn binding_run_against_the_echo_forwarder_counts_every_answer() {
    let (addr, stop, handle) = start_forwarder(Target::Echo);
    let report = binding::run(&BindingConfig {
        server: addr,
        pace: small_pace(2_000),
        sockets: 2,
        accept_echo: true,
        drain: Duration::from_secs(10),
        server_pid: Some(std::process::id()),
    })
    .unwrap();
    let line = report.line();
    assert_eq!(field(&line, "sent"), "200", "{line}");
    assert_eq!(field(&line, "received"), "200", "{line}");
    assert_eq!(field(&line, "lost"), "0", "{line}");
    assert_ne!(field(&line, "server_cpu_s"), "nan", "{line}");
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}

#[test]
fn raw_relay_through_the_forwarder_counts_every_payload() {
    // The peer address must be known before the forwarder starts: take a free port.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = probe.local_addr().unwrap();
    drop(probe);
    let (addr, stop, handle) = start_forwarder(Target::Forward(peer));
    let report = relay::run(&RelayConfig {
        server: addr,
        credentials: None,
        sessions: 3,
        pace: small_pace(1_000),
        payload: 100,
        mode: RelayMode::Raw,
        peer_bind: peer,
        drain: Duration::from_secs(10),
        server_pid: None,
    })
    .unwrap();
    let line = report.line();
    assert_eq!(field(&line, "mode"), "raw", "{line}");
    assert_eq!(field(&line, "sent"), "100", "{line}");
    assert_eq!(field(&line, "received"), "100", "{line}");
    assert_eq!(field(&line, "server_cpu_s"), "nan", "{line}");
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();
}
