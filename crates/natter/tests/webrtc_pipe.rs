//! `natter webrtc --role offer` and `--role answer --echo` with their signaling lines piped
//! into each other, on loopback only (`--bind 127.0.0.1`): the offerer's channel opens,
//! text messages sent with `{"type":"message"}` come back as `echo:`+M in order, and both
//! processes print only JSON on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn spawn(args: &[&str], tag: char, tx: mpsc::Sender<(char, String)>) -> (Child, ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("webrtc")
        .args(["--bind", "127.0.0.1", "--connect-timeout", "20"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("natter runs");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((tag, line)).is_err() {
                return;
            }
        }
    });
    (child, stdin)
}

#[test]
fn offer_and_answer_piped_echo_in_order() {
    let (tx, rx) = mpsc::channel();
    let (mut o, mut o_in) = spawn(&["--role", "offer", "--data"], 'O', tx.clone());
    let (mut a, mut a_in) = spawn(&["--role", "answer", "--data", "--echo"], 'A', tx);
    let msgs: Vec<String> = (0..30)
        .map(|i| format!("m{i} {}", "é".repeat(i * 700)))
        .collect();
    let mut got = Vec::new();
    let mut connected = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while got.len() < msgs.len() && Instant::now() < deadline {
        let Ok((tag, line)) = rx.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{tag} printed a non-JSON line ({e}): {line}"));
        match v.get("event").and_then(|e| e.as_str()) {
            None => {
                let peer = if tag == 'O' { &mut a_in } else { &mut o_in };
                writeln!(peer, "{line}").unwrap();
            }
            Some("connected") => connected += 1,
            Some("channel-open") if tag == 'O' => {
                for m in &msgs {
                    let cmd = serde_json::json!({"type": "message", "data": m});
                    writeln!(o_in, "{cmd}").unwrap();
                }
            }
            Some("message") if tag == 'O' => {
                got.push(v["data"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    let _ = (o.kill(), a.kill(), o.wait(), a.wait());
    assert_eq!(connected, 2, "both sides report connected");
    let want: Vec<String> = msgs.iter().map(|m| format!("echo:{m}")).collect();
    assert_eq!(got, want);
}
