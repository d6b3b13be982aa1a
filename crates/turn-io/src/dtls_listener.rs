//! TURN over DTLS (RFC 7350; coturn's `turnutils_uclient -S` over UDP): a UDP listener whose
//! datagrams are DTLS 1.2 records, one [`DtlsEndpoint`] per client address.
//!
//! A child module of [`super`] (the TURN driver). Each shard binds the DTLS address with
//! `SO_REUSEPORT` like the plain UDP listeners, so a client's datagrams always reach the same
//! shard and its association. Decrypted records go to the core as datagrams of a
//! [`Transport::Dtls`] 5-tuple; what the core or a relay sends back to that 5-tuple goes
//! through the shard's per-client stream queue (as for TCP/TLS clients), and is encrypted
//! here. The certificate is the TLS listener's (leaf only; loaded at start, not on SIGHUP).
//!
//! Every association starts with a cookie exchange (HelloVerifyRequest, RFC 6347 §4.2.1):
//! a ClientHello from a spoofed address gets one datagram smaller than itself, never the
//! certificate flight, so the listener cannot be used to amplify traffic at a victim.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use natter_dtls::{DtlsCertificate, DtlsEndpoint, DtlsEvent};
use natter_turn::server::{ClientOutput, FiveTuple, Transport};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{ShardRef, MAX_DATAGRAM, STREAM_QUEUE};
use crate::tls::TlsFiles;

/// Associations per shard and listener: bounds what unauthenticated ClientHellos can cost.
const MAX_SESSIONS: usize = 20_000;
/// An association with no traffic for this long is dropped (its allocation, if any, expires
/// on its own as a UDP one would).
const IDLE: Duration = Duration::from_secs(3600);
/// DTLS content type of a handshake record: only these may open an association.
const HANDSHAKE: u8 = 22;

/// Why the DTLS certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DtlsCertError {
    /// Reading or parsing a PEM file.
    #[error("cannot read {0}: {1}")]
    Read(std::path::PathBuf, String),
    /// OpenSSL refused the pair.
    #[error("DTLS certificate: {0}")]
    Dtls(#[from] natter_dtls::DtlsError),
}

/// Loads the TLS listener's PEM certificate (first of the chain) and key for DTLS.
pub fn load_certificate(files: &TlsFiles) -> Result<DtlsCertificate, DtlsCertError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| DtlsCertError::Read(p.to_owned(), e.to_string()))
    };
    let cert_pem = read(&files.cert)?;
    let cert = rustls_pemfile::certs(&mut &cert_pem[..])
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| DtlsCertError::Read(files.cert.clone(), "no certificate".into()))?;
    let key_pem = read(&files.key)?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .ok()
        .flatten()
        .ok_or_else(|| DtlsCertError::Read(files.key.clone(), "no private key".into()))?;
    Ok(DtlsCertificate::from_der(cert.as_ref(), key.secret_der())?)
}

struct Session {
    ep: DtlsEndpoint,
    five: FiveTuple,
    connected: bool,
    last: Instant,
}

/// Serves one DTLS listening socket of one shard.
pub(super) async fn dtls_task(
    shard: ShardRef,
    sock: Rc<UdpSocket>,
    local: SocketAddr,
    cert: Rc<DtlsCertificate>,
) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    // What the core and the relays send to DTLS clients, tagged with the client.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(SocketAddr, Vec<u8>)>();
    let mut buf = vec![0u8; MAX_DATAGRAM + 512];
    let mut sweep_at = Instant::now() + Duration::from_secs(1);
    loop {
        let next = sessions
            .values()
            .filter_map(|s| s.ep.poll_timeout())
            .min()
            .unwrap_or(sweep_at)
            .min(sweep_at);
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, src)) = r else { continue };
                let now = Instant::now();
                let dg = &buf[..n];
                if !sessions.contains_key(&src) {
                    if dg.first() != Some(&HANDSHAKE) || sessions.len() >= MAX_SESSIONS {
                        continue;
                    }
                    let Ok(ep) = DtlsEndpoint::new_plain_server(&cert, now) else {
                        continue;
                    };
                    let five = FiveTuple { client: src, server: local, transport: Transport::Dtls };
                    sessions.insert(src, Session { ep, five, connected: false, last: now });
                }
                if let Some(s) = sessions.get_mut(&src) {
                    s.last = now;
                    let _ = s.ep.handle_datagram(dg, now);
                }
                if service(&shard, &sock, &mut sessions, src, &out_tx, now) {
                    super::settle(&shard);
                }
            }
            Some((client, data)) = out_rx.recv() => {
                if let Some(s) = sessions.get_mut(&client) {
                    if s.ep.send_application_data(&data).is_ok() {
                        flush(&sock, &mut s.ep, client);
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {
                let now = Instant::now();
                let clients: Vec<SocketAddr> = sessions.keys().copied().collect();
                for c in clients {
                    if let Some(s) = sessions.get_mut(&c) {
                        s.ep.handle_timeout(now);
                    }
                    service(&shard, &sock, &mut sessions, c, &out_tx, now);
                }
                if now >= sweep_at {
                    sweep_at = now + Duration::from_secs(1);
                    let idle: Vec<SocketAddr> = sessions
                        .iter()
                        .filter(|(_, s)| now.saturating_duration_since(s.last) > IDLE)
                        .map(|(c, _)| *c)
                        .collect();
                    for c in idle {
                        if let Some(s) = sessions.remove(&c) {
                            shard.borrow_mut().streams.remove(&s.five);
                        }
                    }
                }
                super::settle(&shard);
            }
        }
    }
}

fn flush(sock: &UdpSocket, ep: &mut DtlsEndpoint, to: SocketAddr) {
    while let Some(d) = ep.poll_datagram() {
        let _ = crate::batch::send_to(sock.as_raw_fd(), &d, to);
    }
}

/// Sends what the association of `client` queued and handles its events. True when the
/// core was called (the caller settles).
fn service(
    shard: &ShardRef,
    sock: &UdpSocket,
    sessions: &mut HashMap<SocketAddr, Session>,
    client: SocketAddr,
    out_tx: &mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    now: Instant,
) -> bool {
    let Some(s) = sessions.get_mut(&client) else {
        return false;
    };
    flush(sock, &mut s.ep, client);
    let mut called = false;
    let mut gone = false;
    while let Some(ev) = s.ep.poll_event() {
        match ev {
            DtlsEvent::Connected { .. } => {
                s.connected = true;
                // The shard's relays reach this client through a stream queue, like TCP.
                let (tx, mut rx) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE);
                shard.borrow_mut().streams.insert(s.five, tx);
                let out = out_tx.clone();
                tokio::task::spawn_local(async move {
                    while let Some(d) = rx.recv().await {
                        if out.send((client, d)).is_err() {
                            break;
                        }
                    }
                });
            }
            DtlsEvent::ApplicationData(d) if s.connected => {
                called = true;
                let mut guard = shard.borrow_mut();
                let sh = &mut *guard;
                match sh.core.handle_client(now, s.five, &d, &mut sh.out) {
                    ClientOutput::Drop => {}
                    ClientOutput::Reply { data, .. } => {
                        if s.ep.send_application_data(data).is_err() {
                            sh.send_errors += 1;
                        }
                    }
                    ClientOutput::ToPeer { relay, peer, data } => {
                        if let Some(r) = sh.relays.get(&relay) {
                            if crate::batch::send_to(r.sock.as_raw_fd(), data, peer).is_err() {
                                sh.send_errors += 1;
                            }
                        }
                    }
                }
            }
            DtlsEvent::ApplicationData(_) => {}
            DtlsEvent::Closed | DtlsEvent::Failed(_) => gone = true,
        }
    }
    flush(sock, &mut s.ep, client);
    if gone {
        let five = s.five;
        sessions.remove(&client);
        let mut sh = shard.borrow_mut();
        sh.streams.remove(&five);
        sh.core.connection_closed(five);
        called = true;
    }
    called
}
