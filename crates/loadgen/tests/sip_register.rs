//! `sip-register` against a scripted registrar on loopback: every request answered (200, or
//! 401 then 200 for a correct digest), one request in ten dropped, and wrong credentials
//! refused. The report's counts are checked against what the registrar saw. Every loop is
//! bounded; nothing sleeps to wait.

// Test helpers outside #[test] functions may panic: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

use md5::{Digest, Md5};
use natter_loadgen::flow::PaceConfig;
use natter_loadgen::sip_register::{self, RegisterConfig};

/// What the registrar saw.
#[derive(Debug, Default)]
struct Seen {
    requests: usize,
    dropped: usize,
    authorized: usize,
    bad_digest: usize,
    aors: HashSet<String>,
    contacts: HashSet<String>,
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.split("\r\n")
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or("")
}

fn quoted<'a>(line: &'a str, name: &str) -> &'a str {
    let at = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    &line[at..at + line[at..].find('"').unwrap()]
}

/// A registrar that copies Via, From, To, Call-ID and CSeq into its answers, drops every
/// `drop_every`-th request and, with `password`, challenges requests without credentials.
fn registrar(
    password: Option<&'static str>,
    drop_every: usize,
    max: usize,
) -> (SocketAddr, thread::JoinHandle<Seen>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let mut seen = Seen::default();
        let mut buf = [0u8; 4096];
        for _ in 0..max {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            let msg = std::str::from_utf8(&buf[..len]).unwrap().to_owned();
            assert!(msg.starts_with("REGISTER sip:"), "{msg}");
            assert!(msg.ends_with("\r\n\r\n"));
            seen.requests += 1;
            if drop_every > 0 && seen.requests % drop_every == 0 {
                seen.dropped += 1;
                continue;
            }
            seen.aors.insert(header(&msg, "To: ").to_owned());
            seen.contacts.insert(header(&msg, "Contact: ").to_owned());
            let copied: String = ["Via: ", "From: ", "To: ", "Call-ID: ", "CSeq: "]
                .iter()
                .map(|h| format!("{h}{}\r\n", header(&msg, h)))
                .collect();
            let auth = header(&msg, "Authorization: ");
            let status = match password {
                None => "200 OK".to_owned(),
                Some(_) if auth.is_empty() => "401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"test\", nonce=\"n0nce\", qop=\"auth\"".to_owned(),
                Some(pw) => {
                    let hex = |s: String| format!("{:x}", Md5::digest(s.as_bytes()));
                    let ha1 = hex(format!("{}:test:{pw}", quoted(auth, "username")));
                    let ha2 = hex(format!("REGISTER:{}", quoted(auth, "uri")));
                    let want = hex(format!(
                        "{ha1}:n0nce:00000001:{}:auth:{ha2}",
                        quoted(auth, "cnonce")
                    ));
                    if quoted(auth, "response") == want {
                        seen.authorized += 1;
                        "200 OK".to_owned()
                    } else {
                        seen.bad_digest += 1;
                        "403 Forbidden".to_owned()
                    }
                }
            };
            let answer = format!("SIP/2.0 {status}\r\n{copied}Content-Length: 0\r\n\r\n");
            socket.send_to(answer.as_bytes(), from).unwrap();
        }
        seen
    });
    (addr, handle)
}

fn config(server: SocketAddr, auth: Option<(&str, &str)>, requests: u64) -> RegisterConfig {
    RegisterConfig {
        server,
        pace: PaceConfig {
            rate_per_s: 2000,
            duration: Duration::from_millis(requests / 2),
            batch: 8,
            tick: Duration::from_micros(500),
            gso: false,
        },
        sockets: 2,
        users: 7,
        auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        drain: Duration::from_secs(2),
        server_pid: None,
    }
}

fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_owned()
}

#[test]
fn every_answer_counts_once_and_drops_count_as_lost() {
    let (server, handle) = registrar(None, 10, 200);
    let report = sip_register::run(&config(server, None, 200))
        .unwrap()
        .line();
    let seen = handle.join().unwrap();
    assert_eq!(seen.requests, 200, "{report}");
    assert_eq!(field(&report, "sent"), "200");
    assert_eq!(
        field(&report, "ok"),
        (200 - seen.dropped).to_string(),
        "{report}"
    );
    assert_eq!(field(&report, "lost"), seen.dropped.to_string());
    assert_eq!(field(&report, "stray"), "0");
    // Requests cycle through the 7 AORs lg00000000..lg00000006.
    assert_eq!(seen.aors.len(), 7, "{:?}", seen.aors);
    // One contact per AOR whatever the client socket, so runs refresh rather than add.
    assert_eq!(seen.contacts.len(), 7, "{:?}", seen.contacts);
}

#[test]
fn digest_challenges_are_answered() {
    let (server, handle) = registrar(Some("pw"), 0, 200);
    let report = sip_register::run(&config(server, Some(("alice", "pw")), 100))
        .unwrap()
        .line();
    let seen = handle.join().unwrap();
    assert_eq!(seen.requests, 200, "{report}");
    assert_eq!(seen.authorized, 100);
    assert_eq!(seen.bad_digest, 0);
    assert_eq!(field(&report, "ok"), "100", "{report}");
    assert_eq!(field(&report, "challenges"), "100");
    assert_eq!(field(&report, "stray"), "0");
}

#[test]
fn a_wrong_password_is_an_error_not_a_success() {
    let (server, handle) = registrar(Some("pw"), 0, 40);
    let report = sip_register::run(&config(server, Some(("alice", "nope")), 20))
        .unwrap()
        .line();
    let seen = handle.join().unwrap();
    assert_eq!(seen.bad_digest, 20, "{report}");
    assert_eq!(field(&report, "ok"), "0");
    assert_eq!(field(&report, "error_answers"), "20");
}
