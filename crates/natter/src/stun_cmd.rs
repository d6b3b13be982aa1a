//! `natter stun probe`: the mapped address and the classic NAT type, via RFC 5780 tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::{
    FilteringBehavior, MappingBehavior, NatProbe, NatProbeConfig, NatProbeResult, NatType,
    TransactionId,
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

/// Why the behaviour tests could not run against a server without OTHER-ADDRESS.
const NO_ALTERNATE: &str = "server has no alternate address";

/// The lines `natter stun probe` prints. A server with one address cannot run the RFC 5780
/// behaviour tests, but the first answer still tells whether there is a NAT at all: a mapped
/// address equal to the local one means none. Say that rather than a bare "unknown".
fn report(local: SocketAddr, r: &NatProbeResult) -> Vec<String> {
    let mut out = vec![format!("local {local}")];
    out.push(match r.mapped {
        Some(m) => format!("mapped {m}"),
        None => "mapped none".to_owned(),
    });
    let (m, f) = behaviour(r.mapping, r.filtering);
    if r.nat_type == NatType::Unknown && r.other_address.is_none() && r.mapped.is_some() {
        let no_nat = r.mapped == Some(local);
        out.push(if no_nat {
            format!("nat-type no NAT (mapped = local); a firewall's filtering not measured ({NO_ALTERNATE})")
        } else {
            format!("nat-type behind a NAT (mapped != local); its type not measured ({NO_ALTERNATE})")
        });
        out.push(if no_nat {
            "mapping no NAT (mapped = local)".to_owned()
        } else {
            format!("mapping translated (mapped != local); behaviour not measured ({NO_ALTERNATE})")
        });
        out.push(format!("filtering not measured ({NO_ALTERNATE})"));
    } else {
        out.push(format!("nat-type {}", nat_name(r.nat_type)));
        out.push(format!("mapping {m}"));
        out.push(format!("filtering {f}"));
    }
    if let Some(o) = r.other_address {
        out.push(format!("other-address {o}"));
    }
    out
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
            for line in report(local, r) {
                println!("{line}");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn result(nat_type: NatType, mapped: &str, other: Option<&str>) -> NatProbeResult {
        NatProbeResult {
            nat_type,
            mapped: Some(mapped.parse().unwrap()),
            mapping: None,
            filtering: None,
            other_address: other.map(|o| o.parse().unwrap()),
            response_origin: None,
        }
    }

    #[test]
    fn single_address_server_without_nat_says_no_nat() {
        let local: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let r = result(NatType::Unknown, "192.0.2.10:40000", None);
        assert_eq!(
            report(local, &r),
            [
                "local 192.0.2.10:40000",
                "mapped 192.0.2.10:40000",
                "nat-type no NAT (mapped = local); a firewall's filtering not measured (server has no alternate address)",
                "mapping no NAT (mapped = local)",
                "filtering not measured (server has no alternate address)",
            ]
        );
    }

    #[test]
    fn single_address_server_behind_nat_says_translated() {
        let local: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let r = result(NatType::Unknown, "198.51.100.7:61000", None);
        let lines = report(local, &r);
        assert_eq!(
            lines[2],
            "nat-type behind a NAT (mapped != local); its type not measured (server has no alternate address)"
        );
        assert_eq!(
            lines[3],
            "mapping translated (mapped != local); behaviour not measured (server has no alternate address)"
        );
        assert_eq!(
            lines[4],
            "filtering not measured (server has no alternate address)"
        );
    }

    #[test]
    fn rfc5780_server_keeps_the_classic_lines() {
        let local: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let mut r = result(
            NatType::FullCone,
            "198.51.100.7:61000",
            Some("198.51.100.1:3479"),
        );
        r.mapping = Some(MappingBehavior::EndpointIndependent);
        r.filtering = Some(FilteringBehavior::EndpointIndependent);
        assert_eq!(
            report(local, &r)[2..],
            [
                "nat-type full cone",
                "mapping endpoint-independent",
                "filtering endpoint-independent",
                "other-address 198.51.100.1:3479",
            ]
        );
    }
}
