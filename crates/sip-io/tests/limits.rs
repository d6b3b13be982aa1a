//! Stream connections under the limits of issue 10: a message that never
//! completes does not pin its connection, and a message over a size limit
//! is answered before the connection closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip_io::{bind, SipServeConfig, INCOMPLETE_MESSAGE_TIMEOUT};
use natter_sip_server::{MemoryBindings, StaticCredentials, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD: &str = "MESSAGE sip:bob@natter.test SIP/2.0\r\n\
Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKlim1\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=l1\r\nTo: <sip:bob@natter.test>\r\n\
Call-ID: lim1@test\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n";

async fn server(timeout: Duration) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.server.auth = false;
    cfg.incomplete_message_timeout = timeout;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound, fut) = bind(
        cfg,
        Arc::new(StaticCredentials::new()),
        Arc::new(MemoryBindings::new()),
        rx,
    )
    .await
    .unwrap();
    tokio::spawn(fut);
    (bound.of(Transport::Tcp)[0], tx)
}

/// Everything the server sends until it closes, or `None` if it is still
/// open after `wait`.
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let r = tokio::time::timeout(wait, s.read_to_end(&mut got)).await;
    match r {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&got).into_owned()),
        Ok(Err(_)) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn default_timeout_is_thirty_seconds() {
    assert_eq!(INCOMPLETE_MESSAGE_TIMEOUT, Duration::from_secs(30));
}

#[tokio::test]
async fn incomplete_message_closes_the_connection_after_the_timeout() {
    let (addr, _stop) = server(Duration::from_millis(300)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    // Promises 100 body bytes, sends 3, then keeps the connection open.
    c.write_all(format!("{HEAD}Content-Length: 100\r\n\r\nabc").as_bytes())
        .await
        .unwrap();
    let got = read_to_close(&mut c, Duration::from_secs(5)).await;
    assert_eq!(got.as_deref(), Some(""), "closed, nothing sent");
}

#[tokio::test]
async fn trickling_bytes_do_not_extend_the_timeout() {
    let (addr, _stop) = server(Duration::from_millis(400)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("{HEAD}Content-Length: 100\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if c.write_all(b"x").await.is_err() {
            closed = true;
            break;
        }
        let mut b = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), c.read(&mut b)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "closed while bytes kept trickling");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn body_over_the_limit_is_answered_413_then_closed() {
    let (addr, _stop) = server(Duration::from_secs(30)).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("{HEAD}Content-Length: 40000\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let got = read_to_close(&mut c, Duration::from_secs(5))
        .await
        .expect("closed");
    assert!(
        got.starts_with(
            "SIP/2.0 413 Request Entity Too Large (body too large (limit 32768 bytes))\r\n"
        ),
        "{got}"
    );
    assert!(got.contains("Call-ID: lim1@test\r\n"), "{got}");
}

/// A location service that counts changes not yet made durable.
#[derive(Default)]
struct Durable {
    mem: MemoryBindings,
    unsynced: std::sync::atomic::AtomicUsize,
    /// AORs changed since the last sync, and those made durable.
    pending: std::sync::Mutex<Vec<String>>,
    durable: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Changes asked for so far (`BindingStore::changes`).
    changes: std::sync::atomic::AtomicU64,
    /// While true, `sync` waits (up to 10 s) until it is set false: a commit held back.
    hold: std::sync::Mutex<bool>,
    released: std::sync::Condvar,
}

impl Durable {
    fn hold_syncs(&self, on: bool) {
        *self.hold.lock().unwrap() = on;
        self.released.notify_all();
    }
}

impl natter_sip_server::BindingStore for Durable {
    fn lookup(&self, aor: &str, now: std::time::Instant) -> Vec<natter_sip_server::Binding> {
        self.mem.lookup(aor, now)
    }
    fn upsert(&self, b: natter_sip_server::Binding) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.unsynced
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pending.lock().unwrap().push(b.aor.clone());
        self.mem.upsert(b);
    }
    fn remove(&self, aor: &str, contact: &str) {
        self.mem.remove(aor, contact);
    }
    fn remove_all(&self, aor: &str) {
        self.mem.remove_all(aor);
    }
    fn purge_expired(&self, now: std::time::Instant) -> usize {
        self.mem.purge_expired(now)
    }
    fn len(&self) -> usize {
        self.mem.len()
    }
    fn sync(&self) {
        let held = self.hold.lock().unwrap();
        let _ = self
            .released
            .wait_timeout_while(held, Duration::from_secs(10), |h| *h)
            .unwrap();
        let done = std::mem::take(&mut *self.pending.lock().unwrap());
        self.durable.lock().unwrap().extend(done);
        self.unsynced.store(0, std::sync::atomic::Ordering::SeqCst);
    }
    // Says so, like the SQLite store: the driver then lingers for more datagrams.
    fn needs_sync(&self) -> bool {
        self.unsynced.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
    fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A registrar without authentication on a loopback UDP port, over the `Durable` store, and a
/// client socket: (server address, client socket, store, the shutdown sender to keep alive).
async fn durable_registrar() -> (
    SocketAddr,
    tokio::net::UdpSocket,
    Arc<Durable>,
    tokio::sync::watch::Sender<bool>,
) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.server.auth = false;
    let store = Arc::new(Durable::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    // The driver gets a thread and a runtime of its own, as in `natter serve`: its commits
    // block that thread (held ones for seconds here), which on the test's shared runtime
    // could also hold back the test task waiting for an answer.
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let driver_store = store.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (bound, fut) = bind(cfg, Arc::new(StaticCredentials::new()), driver_store, rx)
                .await
                .unwrap();
            let _ = addr_tx.send(bound.of(Transport::Udp)[0]);
            let _ = fut.await;
        });
    });
    let server = addr_rx.await.unwrap();
    let sock = tokio::net::UdpSocket::bind(any).await.unwrap();
    (server, sock, store, tx)
}

/// A REGISTER of `sip:{user}@natter.test` from `me`, without authentication; `id` makes the
/// branch and the Call-ID (`{id}@test`).
fn register(me: SocketAddr, user: &str, id: &str) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
From: <sip:{user}@natter.test>;tag={id}\r\nTo: <sip:{user}@natter.test>\r\nCall-ID: {id}@test\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:{user}@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends `a` then `b` to `to` in one `sendmmsg`, so both are queued at the server before it
/// could finish handling `a`.
fn send_together(sock: &tokio::net::UdpSocket, to: SocketAddr, a: &str, b: &str) {
    use std::os::fd::AsRawFd;
    let mut batch = natter_udp_batch::SendSlices::new();
    let sent = batch
        .send(sock.as_raw_fd(), &[(a.as_bytes(), to), (b.as_bytes(), to)])
        .unwrap();
    assert_eq!(sent, 2);
}

/// The next datagram on `sock` as text, within 5 s (`what` names it when it does not come).
async fn recv_text(sock: &tokio::net::UdpSocket, what: &str) -> String {
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A burst of REGISTERs sharing commits (the driver gathers datagrams while a
/// commit is pending): every one answered 200, none before its binding is durable.
#[tokio::test]
async fn register_burst_is_answered_only_after_sync() {
    let (server, sock, store, _tx) = durable_registrar().await;
    let me = sock.local_addr().unwrap();
    for i in 0..40 {
        let reg = register(me, &format!("b{i}"), &format!("burst{i}"));
        sock.send_to(reg.as_bytes(), server).await.unwrap();
    }
    let mut answered = std::collections::HashSet::new();
    while answered.len() < 40 {
        let text = recv_text(&sock, "every REGISTER answered").await;
        assert!(text.starts_with("SIP/2.0 200 "), "{text}");
        let i = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: burst"))
            .and_then(|l| l.strip_suffix("@test"))
            .expect("Call-ID")
            .to_owned();
        assert!(
            store
                .durable
                .lock()
                .unwrap()
                .contains(&format!("sip:b{i}@natter.test")),
            "200 OK for b{i} sent before its binding was made durable"
        );
        answered.insert(i);
    }
}

/// Issue 10 item 4: the driver makes bindings durable before it sends the 200 OK.
#[tokio::test]
async fn register_is_answered_only_after_sync() {
    let (server, sock, store, _tx) = durable_registrar().await;
    for i in 0..10 {
        let me = sock.local_addr().unwrap();
        let reg = register(me, &format!("u{i}"), &format!("sync{i}"));
        sock.send_to(reg.as_bytes(), server).await.unwrap();
        let text = recv_text(&sock, "the REGISTER answered").await;
        assert!(text.starts_with("SIP/2.0 200 "), "{text}");
        assert_eq!(
            store.unsynced.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "200 OK sent before the binding was made durable"
        );
    }
}

/// Only answers behind a binding change wait for the commit: an OPTIONS that arrives with a
/// REGISTER is answered while the REGISTER's commit is still held back, and the REGISTER's
/// 200 OK leaves only once the commit is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_change_nothing_do_not_wait_for_the_commit() {
    let (server, sock, store, _tx) = durable_registrar().await;
    let me = sock.local_addr().unwrap();
    store.hold_syncs(true);
    let reg = register(me, "h1", "held1");
    let options = format!(
        "OPTIONS sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKheld2\r\nMax-Forwards: 70\r\n\
From: <sip:h2@natter.test>;tag=h2\r\nTo: <sip:natter.test>\r\nCall-ID: held2@test\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    );
    // One sendmmsg: the OPTIONS is queued while the driver still gathers for the REGISTER's
    // commit (or in the same read), never only after the driver has begun to wait for it.
    send_together(&sock, server, &reg, &options);
    let first = recv_text(&sock, "the OPTIONS is answered while the commit is held").await;
    assert!(first.starts_with("SIP/2.0 200 "), "{first}");
    assert!(first.contains("CSeq: 1 OPTIONS\r\n"), "{first}");
    assert!(store.durable.lock().unwrap().is_empty());
    store.hold_syncs(false);
    let second = recv_text(&sock, "the REGISTER is answered after the commit").await;
    assert!(second.contains("CSeq: 1 REGISTER\r\n"), "{second}");
    assert!(store.durable.lock().unwrap().contains("sip:h1@natter.test"));
}

/// A REGISTER retransmitted while its binding's commit is still pending is answered from the
/// held 200 OK, which must not leave before that commit either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_register_is_not_answered_before_the_commit() {
    let (server, sock, store, _tx) = durable_registrar().await;
    let me = sock.local_addr().unwrap();
    store.hold_syncs(true);
    let reg = register(me, "r1", "retrans1");
    // The original and its retransmission in one sendmmsg: the retransmission is handled
    // while the original's commit is still held back.
    send_together(&sock, server, &reg, &reg);
    // Release the commit a moment later (from a plain thread: the driver's own runtime is
    // blocked in the held commit); an answer sent before then finds nothing durable.
    let releaser = {
        let store = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            store.hold_syncs(false);
        })
    };
    for _ in 0..2 {
        let text = recv_text(&sock, "both REGISTERs answered").await;
        assert!(text.starts_with("SIP/2.0 200 "), "{text}");
        assert!(
            store.durable.lock().unwrap().contains("sip:r1@natter.test"),
            "200 OK sent before the binding was made durable"
        );
    }
    releaser.join().unwrap();
}
