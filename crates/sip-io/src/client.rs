//! One-shot client exchanges over UDP for operator commands (`natter sip
//! options|register|message`): runs the sans-IO [`UserAgent`] on a socket
//! until the request completes and returns every message sent and received,
//! so the CLI can print the exchange.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_sip::transaction::TimerConfig;
use natter_sip::ua::{UaConfig, UaEvent, UserAgent};
use tokio::net::UdpSocket;

use crate::Error;

/// Who we are and where the server is.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registrar/proxy address (all requests go there).
    pub server: SocketAddr,
    /// Local address to bind (port 0 = any).
    pub bind: SocketAddr,
    /// Our user name.
    pub user: String,
    /// Our domain (AOR host, registrar URI).
    pub domain: String,
    /// Password for digest challenges.
    pub password: Option<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Contact URI to register instead of our own socket address.
    pub contact: Option<String>,
}

/// Direction of a logged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it.
    Sent,
    /// We received it.
    Received,
}

/// Result of a client exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Final status code (0 if none arrived).
    pub code: u16,
    /// Every message, in order, as wire text.
    pub log: Vec<(Direction, String)>,
}

enum Op<'a> {
    Options(&'a str),
    Register(u32),
    Message(&'a str, &'a str),
}

async fn run(cfg: &ClientConfig, op: Op<'_>) -> Result<Exchange, Error> {
    let sock = UdpSocket::bind(cfg.bind).await?;
    let mut local = sock.local_addr()?;
    if local.ip().is_unspecified() {
        // Via and Contact need an address the server can reach: the one the
        // kernel would route from (a connected probe socket tells us).
        let probe = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?;
        if probe.connect(cfg.server).await.is_ok() {
            local.set_ip(probe.local_addr()?.ip());
        }
    }
    let mut ua = UserAgent::new(UaConfig {
        user: cfg.user.clone(),
        domain: cfg.domain.clone(),
        display: None,
        password: cfg.password.clone(),
        local: local.to_string(),
        transport: "UDP".into(),
        reliable: false,
        outbound: cfg.server,
        timers: TimerConfig::default(),
        seed: u64::from(local.port()) ^ 0x6e61_7474_6572,
    });
    if let Some(c) = &cfg.contact {
        ua.set_contact(c.clone());
    }
    let start = Instant::now();
    match op {
        Op::Options(uri) => {
            ua.options(start, uri);
        }
        Op::Register(exp) => ua.register(start, exp),
        Op::Message(uri, text) => {
            ua.message(start, uri, "text/plain", text.as_bytes().to_vec());
        }
    }
    let deadline = start + cfg.timeout;
    let mut log = Vec::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        while let Some((to, bytes)) = ua.poll_transmit() {
            log.push((
                Direction::Sent,
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
            sock.send_to(&bytes, to).await?;
        }
        while let Some(ev) = ua.poll_event() {
            match ev {
                UaEvent::Response { code, .. } | UaEvent::Registration { code, .. } => {
                    return Ok(Exchange { code, log });
                }
                UaEvent::RequestFailed { .. } => return Ok(Exchange { code: 408, log }),
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Exchange { code: 0, log });
        }
        let wake = ua.next_timeout().unwrap_or(deadline).min(deadline);
        let wait = wake.saturating_duration_since(now);
        match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let data = buf.get(..n).unwrap_or(&[]);
                log.push((
                    Direction::Received,
                    String::from_utf8_lossy(data).into_owned(),
                ));
                ua.handle(Instant::now(), from, data);
            }
            Ok(Err(e)) => return Err(Error::Io(e)),
            Err(_) => ua.on_timer(Instant::now()),
        }
    }
}

/// OPTIONS to `uri`.
pub async fn options(cfg: &ClientConfig, uri: &str) -> Result<Exchange, Error> {
    run(cfg, Op::Options(uri)).await
}

/// REGISTER our contact for `expires` seconds (0 removes it).
pub async fn register(cfg: &ClientConfig, expires: u32) -> Result<Exchange, Error> {
    run(cfg, Op::Register(expires)).await
}

/// MESSAGE (text/plain) to `uri`.
pub async fn message(cfg: &ClientConfig, uri: &str, text: &str) -> Result<Exchange, Error> {
    run(cfg, Op::Message(uri, text)).await
}
