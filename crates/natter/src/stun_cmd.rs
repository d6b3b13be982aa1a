//! `natter stun probe`: the mapped address and the classic NAT type, via RFC 5780 tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::{
    FilteringBehavior, MappingBehavior, NatProbe, NatProbeConfig, NatType, TransactionId,
};
use tokio::net::UdpSocket;

use natter_ice_io::ServerUri;

/// Arguments of `natter stun probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// `stun:HOST[:PORT]`.
    pub uri: String,
    /// Initial retransmission timeout in milliseconds (RFC default 500).
    #[arg(long, default_value_t = 500)]
    pub rto_ms: u64,
    /// Requests sent per test before giving up on it (RFC default 7; fewer is quicker).
    #[arg(long, default_value_t = 4)]
    pub rc: u32,
}

fn nat_name(t: NatType) -> &'static str {
    match t {
        NatType::OpenInternet => "open internet",
        NatType::FullCone => "full cone",
        NatType::RestrictedCone => "restricted cone",
        NatType::PortRestrictedCone => "port-restricted cone",
        NatType::Symmetric => "symmetric",
        NatType::SymmetricUdpFirewall => "symmetric UDP firewall",
        NatType::UdpBlocked => "UDP blocked",
        _ => "unknown (server lacks RFC 5780 OTHER-ADDRESS)",
    }
}

fn behaviour(m: Option<MappingBehavior>, f: Option<FilteringBehavior>) -> (String, String) {
    let m = match m {
        Some(MappingBehavior::EndpointIndependent) => "endpoint-independent",
        Some(MappingBehavior::AddressDependent) => "address-dependent",
        Some(MappingBehavior::AddressAndPortDependent) => "address-and-port-dependent",
        _ => "not measured",
    };
    let f = match f {
        Some(FilteringBehavior::EndpointIndependent) => "endpoint-independent",
        Some(FilteringBehavior::AddressDependent) => "address-dependent",
        Some(FilteringBehavior::AddressAndPortDependent) => "address-and-port-dependent",
        _ => "not measured",
    };
    (m.into(), f.into())
}

/// Runs the probe and prints `mapped`, `nat-type`, `mapping`, `filtering` lines.
pub async fn probe(a: ProbeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let uri = ServerUri::parse(&a.uri, "stun")?;
    let server = uri.resolve()?;
    // Learn which local address routes to the server, then bind an unconnected socket there:
    // the probe must send to the server's other address too, and report "no NAT" correctly.
    let local_ip = {
        let s = UdpSocket::bind(if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .await?;
        s.connect(server).await?;
        s.local_addr()?.ip()
    };
    let sock = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await?;
    let local = sock.local_addr()?;
    let cfg = NatProbeConfig {
        rto: Duration::from_millis(a.rto_ms.max(10)),
        rc: a.rc.max(1),
        rm: 4,
    };
    let mut p = NatProbe::new(Instant::now(), local, server, TransactionId::random(), cfg);
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = p.poll_transmit() {
            let _ = sock.send_to(t.payload, t.destination).await;
        }
        if let Some(r) = p.result() {
            println!("local {local}");
            match r.mapped {
                Some(m) => println!("mapped {m}"),
                None => println!("mapped none"),
            }
            println!("nat-type {}", nat_name(r.nat_type));
            let (m, f) = behaviour(r.mapping, r.filtering);
            println!("mapping {m}");
            println!("filtering {f}");
            if let Some(o) = r.other_address {
                println!("other-address {o}");
            }
            return if r.nat_type == NatType::UdpBlocked {
                Err("no answer from the server".into())
            } else {
                Ok(())
            };
        }
        let deadline = p
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        let wait = deadline.saturating_duration_since(Instant::now());
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r?;
                p.handle_response(Instant::now(), from, &buf[..n]);
            }
            _ = tokio::time::sleep(wait) => p.handle_timeout(Instant::now()),
        }
    }
}
