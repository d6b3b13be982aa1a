//! Issue 10: `natter serve` killed with SIGKILL under REGISTER load must not lose a binding
//! it acknowledged with 200 OK. A child `natter serve` gets a stream of REGISTERs over UDP,
//! is killed right after some 200s arrived (with more requests in flight), and every
//! acknowledged contact must be in the SQLite file it leaves behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn register(i: usize, me: SocketAddr) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKk9{i}\r\nMax-Forwards: 70\r\n\
From: <sip:u{i}@natter.test>;tag=k{i}\r\nTo: <sip:u{i}@natter.test>\r\nCall-ID: k9-{i}@test\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:u{i}@{me}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn kill_9_under_register_load_keeps_every_acknowledged_binding() {
    let dir = std::env::temp_dir().join(format!("natter-sip-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args([
            "serve",
            "--turn-listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--sip-listen",
            "127.0.0.1:0",
            "--sip-tls-listen",
            "127.0.0.1:0",
            "--realm",
            "natter.test",
            "--no-sip-auth",
            "--threads",
            "1",
            "--data-dir",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("natter serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let sip: SocketAddr = loop {
        let line = lines.next().expect("readiness line").unwrap();
        if let Some(rest) = line.strip_prefix("natter: sip udp=") {
            break rest.split([' ', ',']).next().unwrap().parse().unwrap();
        }
    };

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let mut acked = HashSet::new();
    let mut buf = [0u8; 4096];
    let mut next = 0;
    // Keep up to 200 requests in flight; kill once 1 000 are acknowledged.
    while acked.len() < 1_000 {
        while next < acked.len() + 200 {
            sock.send_to(register(next, me).as_bytes(), sip).unwrap();
            next += 1;
        }
        let (n, _) = sock.recv_from(&mut buf).expect("answers keep coming");
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.starts_with("SIP/2.0 200 ") {
            let call_id = text
                .split("\r\n")
                .find_map(|l| l.strip_prefix("Call-ID: "))
                .unwrap();
            let i: usize = call_id
                .trim_start_matches("k9-")
                .trim_end_matches("@test")
                .parse()
                .unwrap();
            acked.insert(format!("sip:u{i}@{me}"));
        }
    }
    child.kill().unwrap(); // SIGKILL: no flush, no shutdown
    child.wait().unwrap();

    let store = natter_store::Store::open(&dir.join("natter.sqlite3")).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stored: HashSet<String> = store
        .live_bindings(now)
        .unwrap()
        .into_iter()
        .map(|r| r.contact)
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|c| !stored.contains(*c)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged bindings lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        lost.first()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
