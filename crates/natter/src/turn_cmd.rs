//! `natter turn allocate`: allocate on a TURN server, bind a channel to a peer, exchange a few
//! packets with it (the peer is expected to echo, as `turnutils_peer` does), and print each step.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_turn::client::{Client, ClientConfig, ClientEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use natter_ice_io::ServerUri;

/// Arguments of `natter turn allocate`.
#[derive(Debug, clap::Args)]
pub struct AllocateArgs {
    /// `turn:HOST[:PORT][?transport=udp|tcp]`.
    pub uri: String,
    /// Credentials, NAME:PASSWORD.
    #[arg(long)]
    pub user: String,
    /// Peer to exchange packets with (it should echo them).
    #[arg(long)]
    pub peer: Option<SocketAddr>,
    /// Packets to send to the peer.
    #[arg(long, default_value_t = 5)]
    pub count: u32,
    /// Use Send indications instead of a channel.
    #[arg(long)]
    pub send_indication: bool,
    /// Seconds to wait for each step.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

impl Conn {
    async fn send(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Udp(s) => s.send(b).await.map(|_| ()),
            Self::Tcp(s, _) => s.write_all(b).await,
        }
    }

    /// Next datagram or stream frame.
    async fn recv(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::Udp(s) => {
                let mut b = vec![0u8; 2048];
                let n = s.recv(&mut b).await?;
                b.truncate(n);
                Ok(b)
            }
            Self::Tcp(s, buf) => loop {
                if let Ok(Some(n)) = natter_stun::stream_frame_len(buf) {
                    if buf.len() >= n {
                        return Ok(buf.drain(..n).collect());
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            },
        }
    }
}

struct Session {
    conn: Conn,
    client: Client,
    received: Vec<(SocketAddr, Vec<u8>)>,
}

impl Session {
    async fn flush(&mut self) -> std::io::Result<()> {
        while let Some(b) = self.client.poll_transmit() {
            self.conn.send(&b).await?;
        }
        Ok(())
    }

    /// Drives I/O until `want` accepts an event or the deadline passes.
    async fn until(
        &mut self,
        deadline: Instant,
        mut want: impl FnMut(&ClientEvent) -> bool,
    ) -> Result<ClientEvent, String> {
        loop {
            self.flush().await.map_err(|e| e.to_string())?;
            while let Some(e) = self.client.poll_event() {
                if let ClientEvent::Failed {
                    method,
                    code,
                    reason,
                } = &e
                {
                    return Err(format!(
                        "{} failed: {code} {reason}",
                        method.name().unwrap_or("request")
                    ));
                }
                if want(&e) {
                    return Ok(e);
                }
            }
            if Instant::now() >= deadline {
                return Err("timed out".into());
            }
            let next = self.client.poll_timeout().unwrap_or(deadline).min(deadline);
            let wait = next.saturating_duration_since(Instant::now());
            tokio::select! {
                r = self.conn.recv() => {
                    let b = r.map_err(|e| format!("connection: {e}"))?;
                    if let Some((peer, data)) = self.client.handle_input(Instant::now(), &b) {
                        self.received.push((peer, data.to_vec()));
                    }
                }
                _ = tokio::time::sleep(wait) => self.client.handle_timeout(Instant::now()),
            }
        }
    }
}

/// Runs the allocate command.
pub async fn allocate(a: AllocateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let uri = ServerUri::parse(&a.uri, "turn")?;
    if uri.scheme == "turns" || uri.scheme == "stuns" {
        return Err("turns: is not supported by this command yet; use turn:?transport=tcp".into());
    }
    let server = uri.resolve()?;
    let (user, password) = crate::config::parse_user(&a.user)?;
    let reliable = uri.transport == "tcp";
    let conn = if reliable {
        Conn::Tcp(TcpStream::connect(server).await?, Vec::new())
    } else {
        let s = UdpSocket::bind(if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .await?;
        s.connect(server).await?;
        Conn::Udp(s)
    };
    let client = Client::new(
        Instant::now(),
        ClientConfig {
            username: user,
            password,
            reliable,
            lifetime: 600,
            software: Some(concat!("natter/", env!("CARGO_PKG_VERSION")).into()),
        },
    );
    let mut s = Session {
        conn,
        client,
        received: Vec::new(),
    };
    let step = Duration::from_secs(a.timeout.max(1));
    let ev = s
        .until(Instant::now() + step, |e| {
            matches!(e, ClientEvent::Allocated { .. })
        })
        .await?;
    if let ClientEvent::Allocated {
        relayed,
        mapped,
        lifetime,
    } = ev
    {
        let m = mapped.map_or_else(|| "none".into(), |m| m.to_string());
        println!("allocated relayed={relayed} mapped={m} lifetime={lifetime} server={server} transport={}", uri.transport);
    }
    let mut ok = true;
    if let Some(peer) = a.peer {
        let now = Instant::now();
        s.client.create_permission(now, peer.ip());
        s.until(now + step, |e| matches!(e, ClientEvent::Permission(_)))
            .await?;
        println!("permission {}", peer.ip());
        if !a.send_indication {
            let n = s.client.bind_channel(Instant::now(), peer);
            s.until(Instant::now() + step, |e| {
                matches!(e, ClientEvent::Channel { .. })
            })
            .await?;
            println!("channel {n:#06x} -> {peer}");
        }
        for i in 0..a.count {
            let payload = format!("natter packet {i}");
            let b = s.client.send_to(peer, payload.as_bytes());
            s.conn.send(&b).await?;
        }
        let deadline = Instant::now() + step;
        while s.received.len() < a.count as usize && Instant::now() < deadline {
            let _ = s
                .until(
                    deadline.min(Instant::now() + Duration::from_millis(100)),
                    |_| false,
                )
                .await;
        }
        let echoed = s
            .received
            .iter()
            .filter(|(p, d)| *p == peer && d.starts_with(b"natter packet "))
            .count();
        println!(
            "sent {} via {}, received {echoed} from {peer}",
            a.count,
            if a.send_indication {
                "send-indication"
            } else {
                "channel"
            }
        );
        ok = echoed == a.count as usize;
    }
    s.client.delete(Instant::now());
    match s
        .until(Instant::now() + step, |e| matches!(e, ClientEvent::Deleted))
        .await
    {
        Ok(_) => println!("deleted"),
        Err(e) => println!("delete: {e}"),
    }
    if ok {
        Ok(())
    } else {
        Err("not every packet came back".into())
    }
}
