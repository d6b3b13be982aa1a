//! Issue 10: `natter turn allocate turns:...` allocates over TLS against `natter serve`'s
//! TLS listener (self-signed certificate), and refuses to connect without a trust decision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

#[test]
fn allocates_over_turns_with_insecure_tls() {
    let dir = std::env::temp_dir().join(format!("natter-turns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args([
            "serve",
            "--turn-listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--no-sip",
            "--realm",
            "natter.test",
            "--user",
            "alice:s3cret",
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
    let tls: SocketAddr = loop {
        let line = lines.next().expect("readiness line").unwrap();
        if let Some(rest) = line.strip_prefix("natter: turn ") {
            let t = rest.split("tls=").nth(1).unwrap();
            break t.split([' ', ',']).next().unwrap().parse().unwrap();
        }
    };
    let uri = format!("turns:{tls}");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_natter"))
            .args([
                "turn",
                "allocate",
                &uri,
                "--user",
                "alice:s3cret",
                "--timeout",
                "5",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run(&["--tls-insecure"]);
    let refused = run(&[]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("allocated relayed="), "{out}");
    assert!(out.contains("transport=tcp+tls"), "{out}");
    assert!(out.contains("deleted"), "{out}");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--tls-ca FILE or --tls-insecure"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
