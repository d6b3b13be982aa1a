//! Interop with OpenSSL's own DTLS 1.2 implementation (the `openssl` command-line tool) over
//! real UDP on 127.0.0.1: an independent peer that must export the same SRTP keying
//! material. This is also what baresip 1.0 runs (libre over OpenSSL 3.0, RSA certificate).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use natter_dtls::{
    DtlsCertificate, DtlsEndpoint, DtlsEvent, DtlsRole, SRTP_AES128_CM_HMAC_SHA1_80,
};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};

const WALL_LIMIT: Duration = Duration::from_secs(5);
/// What the OpenSSL tool offers for use_srtp, and what must come out of the handshake.
struct Srtp {
    /// `-use_srtp` argument.
    offer: &'static str,
    /// Profile OpenSSL must name in its "SRTP Extension negotiated" line (client side only
    /// prints it for s_server).
    name: &'static str,
    id: u16,
    export_len: usize,
}

const CM_80: Srtp = Srtp {
    offer: "SRTP_AES128_CM_SHA1_80",
    name: "SRTP_AES128_CM_SHA1_80",
    id: SRTP_AES128_CM_HMAC_SHA1_80,
    export_len: 60,
};

impl Srtp {
    fn args(&self) -> Vec<String> {
        vec![
            "-use_srtp".into(),
            self.offer.into(),
            "-keymatexport".into(),
            "EXTRACTOR-dtls_srtp".into(),
            "-keymatexportlen".into(),
            self.export_len.to_string(),
        ]
    }
}

/// A running `openssl s_server`/`s_client`, killed on drop.
struct Tool {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    dir: PathBuf,
}

impl Tool {
    fn spawn(args: &[String], dir: PathBuf) -> Self {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command-line tool must be installed");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            dir,
        }
    }

    /// Waits for a line containing `needle`; returns it.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + WALL_LIMIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("openssl never printed {needle:?}; it printed {seen:#?}");
    }

    fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natter-dtls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `cert.pem` and `key.pem` into `dir`.
fn write_pem(dir: &Path, prefix: &str, cert_der: &[u8], key_der: &[u8]) -> (String, String) {
    let cert = X509::from_der(cert_der).unwrap();
    let key = PKey::private_key_from_der(key_der).unwrap();
    let cert_path = dir.join(format!("{prefix}-cert.pem"));
    let key_path = dir.join(format!("{prefix}-key.pem"));
    std::fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (
        cert_path.to_string_lossy().into_owned(),
        key_path.to_string_lossy().into_owned(),
    )
}

/// A self-signed RSA-2048 certificate like the one baresip 1.0 makes (`tls_set_selfsigned_rsa`).
fn rsa_certificate() -> (Vec<u8>, Vec<u8>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "dtls@baresip")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (
        b.build().to_der().unwrap(),
        key.private_key_to_pkcs8().unwrap(),
    )
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ep` over `sock` until it reports Connected (returned) or the wall limit passes.
/// `peer` is learnt from the first datagram when not given (server role).
fn drive_until_connected(
    ep: &mut DtlsEndpoint,
    sock: &UdpSocket,
    peer: &mut Option<SocketAddr>,
    sent: &mut Vec<Vec<u8>>,
    received: &mut usize,
) -> (u16, Vec<u8>, String, &'static str) {
    let deadline = Instant::now() + WALL_LIMIT;
    let mut buf = [0u8; 2048];
    loop {
        assert!(
            Instant::now() < deadline,
            "no DTLS connection within {WALL_LIMIT:?}"
        );
        if let Some(addr) = *peer {
            while let Some(d) = ep.poll_datagram() {
                sock.send_to(&d, addr).unwrap();
                sent.push(d);
            }
        }
        if let Some(ev) = ep.poll_event() {
            match ev {
                DtlsEvent::Connected {
                    profile_id,
                    keying_material,
                    peer_fingerprint,
                    version,
                } => return (profile_id, keying_material, peer_fingerprint, version),
                other => panic!("unexpected event {other:?}"),
            }
        }
        let now = Instant::now();
        let wait = ep
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        sock.set_read_timeout(Some(wait)).unwrap();
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            peer.get_or_insert(from);
            *received += 1;
            ep.handle_datagram(&buf[..n], Instant::now()).unwrap();
        }
        ep.handle_timeout(Instant::now());
    }
}

/// Receives until one application-data event arrives.
fn receive_app_data(ep: &mut DtlsEndpoint, sock: &UdpSocket) -> Vec<u8> {
    let deadline = Instant::now() + WALL_LIMIT;
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            ep.handle_datagram(&buf[..n], Instant::now()).unwrap();
        }
        if let Some(ev) = ep.poll_event() {
            match ev {
                DtlsEvent::ApplicationData(data) => return data,
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    panic!("no application data within {WALL_LIMIT:?}");
}

fn keying_material_line(line: &str) -> Vec<u8> {
    let hex = line.split("Keying material:").nth(1).unwrap().trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Our client against `openssl s_server` holding `server_cert`; `extra` adds options.
fn client_against_s_server(
    name: &str,
    srtp: &Srtp,
    server_cert_der: &[u8],
    server_key_der: &[u8],
    extra: &[&str],
) {
    let dir = scratch_dir(name);
    let (cert_pem, key_pem) = write_pem(&dir, "server", server_cert_der, server_key_der);
    let port = free_udp_port();
    let mut args: Vec<String> = [
        "s_server",
        "-dtls1_2",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
        &cert_pem,
        "-key",
        &key_pem,
        "-verify",
        "1",
        "-naccept",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(srtp.args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut server = Tool::spawn(&args, dir);
    server.wait_line("ACCEPT");

    let our_cert = DtlsCertificate::generate().unwrap();
    let server_fp = natter_dtls::fingerprint_sha256_of_der(server_cert_der);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut peer = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut client = DtlsEndpoint::new(
        DtlsRole::Client,
        &our_cert,
        Some(server_fp.clone()),
        Instant::now(),
    )
    .unwrap();
    let mut sent = Vec::new();
    let mut received = 0;
    let (profile, material, peer_fp, version) =
        drive_until_connected(&mut client, &sock, &mut peer, &mut sent, &mut received);
    // s_server always answers the first ClientHello with a HelloVerifyRequest cookie, so
    // exactly two ClientHellos (epoch-0 handshake records of type 1) went out.
    let client_hellos = sent
        .iter()
        .filter(|d| d.len() > 13 && d[0] == 22 && d[3..5] == [0, 0] && d[13] == 1)
        .count();
    assert_eq!(client_hellos, 2);
    // How s_server packs its flights into datagrams varies (HelloVerifyRequest, flight 4,
    // final flight: 3 to 8 datagrams); with `-mtu 300` its ~800-byte RSA certificate cannot
    // travel in one piece.
    assert!(received >= 3, "received {received} datagrams");
    assert_eq!(profile, srtp.id);
    assert_eq!(version, "1.2");
    assert_eq!(peer_fp, server_fp);
    assert_eq!(material.len(), srtp.export_len);

    server.wait_line(&format!("SRTP Extension negotiated, profile={}", srtp.name));
    let theirs = keying_material_line(&server.wait_line("Keying material:"));
    assert_eq!(theirs, material);

    // Application data both ways: s_server prints what it receives and sends what is typed.
    client
        .send_application_data(b"hello from natter\n")
        .unwrap();
    while let Some(d) = client.poll_datagram() {
        sock.send_to(&d, peer.unwrap()).unwrap();
    }
    server.wait_line("hello from natter");
    server.type_line("hello from openssl\n");
    assert_eq!(
        receive_app_data(&mut client, &sock),
        b"hello from openssl\n".to_vec()
    );
}

#[test]
fn client_interops_with_openssl_s_server_ecdsa() {
    let cert = DtlsCertificate::generate().unwrap();
    client_against_s_server(
        "s_server_ecdsa",
        &CM_80,
        &cert.certificate_der(),
        &cert.private_key_der(),
        &[],
    );
}

/// `-listen` makes s_server check the cookie statelessly (`DTLSv1_listen`) before it creates
/// any connection state, as a server protecting itself against spoofed sources does.
#[test]
fn client_passes_a_stateless_cookie_check() {
    let cert = DtlsCertificate::generate().unwrap();
    client_against_s_server(
        "s_server_cookie",
        &CM_80,
        &cert.certificate_der(),
        &cert.private_key_der(),
        &["-listen"],
    );
}

#[test]
fn client_interops_with_openssl_s_server_rsa_like_baresip() {
    let (cert, key) = rsa_certificate();
    client_against_s_server("s_server_rsa", &CM_80, &cert, &key, &[]);
}

/// `openssl s_client` holding `client_cert` against our server.
fn server_against_s_client(
    name: &str,
    srtp: &Srtp,
    client_cert_der: &[u8],
    client_key_der: &[u8],
    extra: &[&str],
) {
    let dir = scratch_dir(name);
    let (cert_pem, key_pem) = write_pem(&dir, "client", client_cert_der, client_key_der);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();

    let our_cert = DtlsCertificate::generate().unwrap();
    let client_fp = natter_dtls::fingerprint_sha256_of_der(client_cert_der);
    let mut server = DtlsEndpoint::new(
        DtlsRole::Server,
        &our_cert,
        Some(client_fp.clone()),
        Instant::now(),
    )
    .unwrap();

    let mut args: Vec<String> = [
        "s_client",
        "-dtls1_2",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-cert",
        &cert_pem,
        "-key",
        &key_pem,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(srtp.args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut client = Tool::spawn(&args, dir);

    let mut peer = None;
    let mut received = 0;
    let (profile, material, peer_fp, version) = drive_until_connected(
        &mut server,
        &sock,
        &mut peer,
        &mut Vec::new(),
        &mut received,
    );
    assert_eq!(profile, srtp.id);
    assert_eq!(version, "1.2");
    assert_eq!(peer_fp, client_fp);
    // Client flights 1 and 3, one datagram each, unless `-mtu` forced s_client to fragment
    // them.
    if extra.contains(&"-mtu") {
        assert!(received >= 5, "received {received} datagrams");
    } else {
        assert_eq!(received, 2);
    }

    let theirs = keying_material_line(&client.wait_line("Keying material:"));
    assert_eq!(theirs, material);

    client.type_line("hello from openssl\n");
    assert_eq!(
        receive_app_data(&mut server, &sock),
        b"hello from openssl\n".to_vec()
    );
    server
        .send_application_data(b"hello from natter\n")
        .unwrap();
    while let Some(d) = server.poll_datagram() {
        sock.send_to(&d, peer.unwrap()).unwrap();
    }
    client.wait_line("hello from natter");
}

#[test]
fn server_interops_with_openssl_s_client_ecdsa() {
    let cert = DtlsCertificate::generate().unwrap();
    server_against_s_client(
        "s_client_ecdsa",
        &CM_80,
        &cert.certificate_der(),
        &cert.private_key_der(),
        &[],
    );
}

#[test]
fn server_interops_with_openssl_s_client_rsa_like_baresip() {
    let (cert, key) = rsa_certificate();
    server_against_s_client("s_client_rsa", &CM_80, &cert, &key, &[]);
}

#[test]
fn aes_256_gcm_exports_88_bytes() {
    let cert = DtlsCertificate::generate().unwrap();
    let srtp = Srtp {
        offer: "SRTP_AEAD_AES_256_GCM",
        name: "SRTP_AEAD_AES_256_GCM",
        id: natter_dtls::SRTP_AEAD_AES_256_GCM,
        export_len: 88,
    };
    client_against_s_server(
        "s_server_gcm256",
        &srtp,
        &cert.certificate_der(),
        &cert.private_key_der(),
        &[],
    );
}

#[test]
fn cm_32_is_accepted() {
    let cert = DtlsCertificate::generate().unwrap();
    let srtp = Srtp {
        offer: "SRTP_AES128_CM_SHA1_32",
        name: "SRTP_AES128_CM_SHA1_32",
        id: natter_dtls::SRTP_AES128_CM_HMAC_SHA1_32,
        export_len: 60,
    };
    server_against_s_client(
        "s_client_cm32",
        &srtp,
        &cert.certificate_der(),
        &cert.private_key_der(),
        &[],
    );
}

/// baresip 1.0's offer, CM_80 first: as the server we pick by our own preference, AES-128-GCM.
#[test]
fn server_prefers_gcm_from_baresips_offer() {
    let (cert, key) = rsa_certificate();
    let srtp = Srtp {
        offer: "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32:SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM",
        name: "SRTP_AEAD_AES_128_GCM",
        id: natter_dtls::SRTP_AEAD_AES_128_GCM,
        export_len: 56,
    };
    server_against_s_client("s_client_baresip_offer", &srtp, &cert, &key, &[]);
}

/// With a 300-byte link MTU, OpenSSL fragments every flight over several datagrams (an RSA
/// certificate alone needs four or more): our side must reassemble them, and its
/// retransmission bookkeeping must not run out while whole flights trickle in.
#[test]
fn fragmented_flights_both_ways() {
    let (cert, key) = rsa_certificate();
    client_against_s_server("s_server_mtu", &CM_80, &cert, &key, &["-mtu", "300"]);
    server_against_s_client("s_client_mtu", &CM_80, &cert, &key, &["-mtu", "300"]);
}
