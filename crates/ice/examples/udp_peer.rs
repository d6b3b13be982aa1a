//! A minimal real-socket ICE peer speaking the `natter ice connect` line contract, as a
//! reference for the CLI and for interop runs against libnice's `nice_peer.py`.
//!
//! stdout: `a=ice-ufrag:`, `a=ice-pwd:`, one `a=candidate:` per local candidate,
//! `a=end-of-candidates`, then `connected LTYPE LADDR RTYPE RADDR`, then every line
//! received from the peer. stdin: the peer's lines up to `a=end-of-candidates`, then
//! lines to send. Options: `--role controlling|controlled`, `--bind IP` (default
//! 127.0.0.1), `--stun IP:PORT`, `--timeout SECS` (default 20), `--echo`.
//!
//! Example: `cargo run -p natter-ice --example udp_peer -- --role controlling`

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use natter_ice::{Agent, AgentConfig, Event, IceState, InterfaceFilter, RemoteLines};

fn main() {
    let mut controlling = true;
    let mut bind: IpAddr = IpAddr::from([127, 0, 0, 1]);
    let mut stun = Vec::new();
    let mut timeout = Duration::from_secs(20);
    let mut echo = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--role" => controlling = args.next().as_deref() != Some("controlled"),
            "--bind" => bind = args.next().and_then(|s| s.parse().ok()).unwrap_or(bind),
            "--stun" => stun.extend(args.next().and_then(|s| s.parse::<SocketAddr>().ok())),
            "--timeout" => {
                timeout =
                    Duration::from_secs(args.next().and_then(|s| s.parse().ok()).unwrap_or(20))
            }
            "--echo" => echo = true,
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(3);
            }
        }
    }
    let code = run(controlling, bind, stun, timeout, echo);
    std::process::exit(code);
}

fn run(
    controlling: bool,
    bind: IpAddr,
    stun: Vec<SocketAddr>,
    timeout: Duration,
    echo: bool,
) -> i32 {
    let Ok(sock) = UdpSocket::bind((bind, 0)) else {
        return 3;
    };
    let Ok(local) = sock.local_addr() else {
        return 3;
    };
    let cfg = AgentConfig {
        controlling,
        stun_servers: stun,
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    };
    let mut agent = Agent::new(cfg);
    let t0 = Instant::now();
    let out = std::io::stdout();
    let mut out = out.lock();
    for l in agent.credential_lines() {
        let _ = writeln!(out, "{l}");
    }
    agent.add_host_candidate(1, "bind", local);
    agent.gather(t0);

    let (tx, rx) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(None);
    });

    let mut remote = RemoteLines::new();
    let mut remote_at: Option<Instant> = None;
    let mut remote_done = false;
    let mut connected = false;
    let mut stdin_eof = false;
    let mut pending_data: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        if now - t0 > timeout {
            eprintln!("timeout");
            return 2;
        }
        loop {
            match rx.try_recv() {
                Ok(Some(line)) => {
                    let line = line.trim().to_owned();
                    if !remote_done {
                        match remote.apply(&mut agent, &line) {
                            Ok(done) => {
                                remote_done = done;
                                if remote_at.is_none() && line.starts_with("a=candidate") {
                                    remote_at = Some(Instant::now());
                                }
                            }
                            Err(e) => eprintln!("skipping line ({e}): {line}"),
                        }
                    } else if !line.is_empty() {
                        pending_data.push(line);
                    }
                }
                Ok(None) => {
                    stdin_eof = true;
                    break;
                }
                Err(_) => break,
            }
        }
        while let Some(ev) = agent.poll_event() {
            match ev {
                Event::LocalCandidate(c) => {
                    let _ = writeln!(out, "{}", c.to_sdp_line());
                }
                Event::GatheringComplete => {
                    let _ = writeln!(out, "a=end-of-candidates");
                }
                Event::StateChanged(IceState::Connected | IceState::Completed) if !connected => {
                    if let Some((l, r)) = agent.selected_pair(1) {
                        connected = true;
                        let _ =
                            writeln!(out, "connected {} {} {} {}", l.kind, l.addr, r.kind, r.addr);
                        let since = remote_at.map(|r| now.saturating_duration_since(r));
                        eprintln!(
                            "connected after {:?} (since first remote candidate {since:?})",
                            now - t0
                        );
                    }
                }
                Event::StateChanged(IceState::Failed) => {
                    let _ = writeln!(out, "failed");
                    return 1;
                }
                _ => {}
            }
        }
        let _ = out.flush();
        if connected {
            for line in pending_data.drain(..) {
                if let Ok(t) = agent.send(now, 1, line.as_bytes()) {
                    let _ = sock.send_to(&t.data, t.destination);
                }
            }
            if stdin_eof {
                return 0;
            }
        }
        while let Some(t) = agent.poll_transmit() {
            let _ = sock.send_to(&t.data, t.destination);
        }
        let wait = agent
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(10))
            .clamp(Duration::from_micros(200), Duration::from_millis(2));
        let _ = sock.set_read_timeout(Some(wait));
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let now = Instant::now();
            let data = buf.get(..n).unwrap_or(&[]);
            if !agent.handle_receive(now, local, from, data) {
                let text = String::from_utf8_lossy(data).into_owned();
                let _ = writeln!(out, "{text}");
                if echo {
                    if let Ok(t) = agent.send(now, 1, data) {
                        let _ = sock.send_to(&t.data, t.destination);
                    }
                }
            }
        }
        let now = Instant::now();
        if agent.poll_timeout().is_some_and(|t| t <= now) {
            agent.handle_timeout(now);
        }
    }
}
