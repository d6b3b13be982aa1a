//! `natter sip options|register|message`: one request to a SIP server, every message of the
//! exchange printed, exit status from the final response (2xx succeeds).
//!
//! The target URI picks the transport: `;transport=tcp|tls` (or `udp`), and `sips:` means TLS
//! (default port 5061). TLS checks the server certificate against `--tls-ca`, or not at all
//! with `--tls-insecure` (natter serve's first-start certificate is self-signed).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use natter_sip_io::client::{self, ClientConfig, ClientTransport, Direction, Exchange, TlsTrust};

/// Options shared by every `natter sip` command.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Where to send (default: host and port of the URI, port 5060).
    #[arg(long)]
    pub server: Option<String>,
    /// Our identity and digest credentials, NAME:PASSWORD (or just NAME).
    #[arg(long)]
    pub user: Option<String>,
    /// Domain of our address-of-record (default: the URI's host).
    #[arg(long)]
    pub domain: Option<String>,
    /// Local address to send from.
    #[arg(long, default_value = "0.0.0.0:0")]
    pub bind: SocketAddr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// TLS: PEM file with the CA (or self-signed certificate) to trust.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// TLS: accept any server certificate (testing against a self-signed server).
    #[arg(long)]
    pub tls_insecure: bool,
}

/// Transport named by the URI, before trust settings are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Udp,
    Tcp,
    Tls,
}

impl Kind {
    fn default_port(self) -> u16 {
        match self {
            Kind::Tls => 5061,
            _ => 5060,
        }
    }
}

/// The transport a URI asks for: its `transport` parameter, else TLS for `sips:`, else UDP.
fn uri_kind(uri: &str) -> Result<Kind, String> {
    let sips = uri.starts_with("sips:");
    let rest = uri.split_once(':').map_or("", |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find(['?', '>']).unwrap_or(rest.len());
    let params = rest.get(..end).unwrap_or(rest).split(';').skip(1);
    let mut kind = if sips { Kind::Tls } else { Kind::Udp };
    for p in params {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("transport") {
            continue;
        }
        kind = match value.trim().to_ascii_lowercase().as_str() {
            "udp" if !sips => Kind::Udp,
            "tcp" if !sips => Kind::Tcp,
            // sips: over TCP means TLS (RFC 3261 §19.1.2).
            "tcp" | "tls" => Kind::Tls,
            other => return Err(format!("unsupported transport {other:?} in {uri}")),
        };
    }
    Ok(kind)
}

/// `natter sip options URI`.
#[derive(Debug, Clone, clap::Args)]
pub struct OptionsArgs {
    /// Target, e.g. `sip:127.0.0.1:5060` or `sip:alice@natter`.
    pub uri: String,
    #[command(flatten)]
    pub common: Common,
}

/// `natter sip register URI`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// Registrar, e.g. `sip:127.0.0.1:5060` (the AOR is sip:USER@DOMAIN).
    pub uri: String,
    /// Requested binding lifetime in seconds (0 removes the binding).
    #[arg(long, default_value_t = 3600)]
    pub expires: u32,
    /// Contact URI to bind (default: this command's own socket).
    #[arg(long)]
    pub contact: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `natter sip message URI TEXT`.
#[derive(Debug, Clone, clap::Args)]
pub struct MessageArgs {
    /// Recipient, e.g. `sip:bob@natter`.
    pub uri: String,
    /// Text to send (text/plain).
    pub text: String,
    #[command(flatten)]
    pub common: Common,
}

/// The host[:port] of a sip:/sips: URI (user part, parameters and headers dropped).
fn uri_hostport(uri: &str) -> Result<&str, String> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .ok_or_else(|| format!("not a sip: URI: {uri}"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let hp = rest.get(..end).unwrap_or(rest);
    if hp.is_empty() {
        return Err(format!("no host in {uri}"));
    }
    Ok(hp)
}

/// Host without the port (IPv6 keeps its brackets).
fn host_of(hp: &str) -> &str {
    if hp.starts_with('[') {
        return hp.find(']').and_then(|i| hp.get(..=i)).unwrap_or(hp);
    }
    hp.rsplit_once(':').map_or(hp, |(h, _)| h)
}

fn resolve(hp: &str, default_port: u16) -> Result<SocketAddr, String> {
    let with_port = if hp.starts_with('[') {
        if hp.contains("]:") {
            hp.to_owned()
        } else {
            format!("{hp}:{default_port}")
        }
    } else if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {hp}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {hp}"))
}

fn config(
    uri: &str,
    c: &Common,
    contact: Option<String>,
) -> Result<(ClientConfig, ClientTransport), String> {
    let hp = uri_hostport(uri)?;
    let kind = uri_kind(uri)?;
    let server = resolve(c.server.as_deref().unwrap_or(hp), kind.default_port())?;
    let transport = match kind {
        Kind::Udp => ClientTransport::Udp,
        Kind::Tcp => ClientTransport::Tcp,
        // The certificate must name the URI's host (RFC 5922 §7.2), not where --server points.
        Kind::Tls => ClientTransport::Tls(TlsTrust {
            ca: c.tls_ca.clone(),
            insecure: c.tls_insecure,
            server_name: host_of(hp).trim_matches(['[', ']']).to_owned(),
        }),
    };
    let (user, password) = match c.user.as_deref() {
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (n.to_owned(), Some(p.to_owned())),
            None => (u.to_owned(), None),
        },
        None => ("natter".to_owned(), None),
    };
    let cfg = ClientConfig {
        server,
        bind: c.bind,
        user,
        domain: c.domain.clone().unwrap_or_else(|| host_of(hp).to_owned()),
        password,
        timeout: Duration::from_secs(c.timeout.max(1)),
        contact,
    };
    Ok((cfg, transport))
}

/// Prints every message and turns the final status into the command's result.
fn report(ex: &Exchange) -> Result<(), Box<dyn std::error::Error>> {
    for (dir, text) in &ex.log {
        let arrow = match dir {
            Direction::Sent => ">>> sent",
            Direction::Received => "<<< received",
        };
        println!("{arrow}\n{}", text.trim_end_matches(['\r', '\n']));
        println!();
    }
    match ex.code {
        200..=299 => {
            println!("result: {}", ex.code);
            Ok(())
        }
        0 => Err("no final response (timeout)".into()),
        c => Err(format!("final response {c}").into()),
    }
}

/// `natter sip options`.
pub async fn options(a: OptionsArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, t) = config(&a.uri, &a.common, None)?;
    report(&client::options_over(&cfg, &t, &a.uri).await?)
}

/// `natter sip register`.
pub async fn register(a: RegisterArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, t) = config(&a.uri, &a.common, a.contact.clone())?;
    report(&client::register_over(&cfg, &t, a.expires).await?)
}

/// `natter sip message`.
pub async fn message(a: MessageArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, t) = config(&a.uri, &a.common, None)?;
    report(&client::message_over(&cfg, &t, &a.uri, &a.text).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts() {
        assert_eq!(
            uri_hostport("sip:alice@127.0.0.1:5070;transport=udp").unwrap(),
            "127.0.0.1:5070"
        );
        assert_eq!(uri_hostport("sip:natter").unwrap(), "natter");
        assert_eq!(uri_hostport("sips:[::1]:5061").unwrap(), "[::1]:5061");
        assert!(uri_hostport("tel:+123").is_err());
        assert!(uri_hostport("sip:bob@").is_err());
        assert_eq!(host_of("127.0.0.1:5070"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5061"), "[::1]");
        assert_eq!(host_of("natter"), "natter");
        assert_eq!(
            resolve("127.0.0.1", 5060).unwrap(),
            "127.0.0.1:5060".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]", 5061).unwrap(),
            "[::1]:5061".parse().unwrap()
        );
    }

    #[test]
    fn transport_from_uri() {
        assert_eq!(uri_kind("sip:natter").unwrap(), Kind::Udp);
        assert_eq!(uri_kind("sip:a@h;transport=TCP").unwrap(), Kind::Tcp);
        assert_eq!(uri_kind("sip:h:5070;lr;transport=tls").unwrap(), Kind::Tls);
        assert_eq!(uri_kind("sip:h;transport=udp").unwrap(), Kind::Udp);
        assert_eq!(uri_kind("sips:h").unwrap(), Kind::Tls);
        assert_eq!(uri_kind("sips:h;transport=tcp").unwrap(), Kind::Tls);
        // A user-part parameter is not the URI's.
        assert_eq!(uri_kind("sip:a;transport=tcp@h").unwrap(), Kind::Udp);
        assert!(uri_kind("sip:h;transport=sctp").is_err());
        assert!(uri_kind("sips:h;transport=udp").is_err());
    }

    #[test]
    fn config_picks_transport_and_port() {
        let common = Common {
            server: None,
            user: Some("alice:pw".into()),
            domain: None,
            bind: "0.0.0.0:0".parse().unwrap(),
            timeout: 5,
            tls_ca: Some("ca.pem".into()),
            tls_insecure: false,
        };
        let (cfg, t) = config("sips:127.0.0.1", &common, None).unwrap();
        assert_eq!(cfg.server, "127.0.0.1:5061".parse().unwrap());
        match t {
            ClientTransport::Tls(trust) => {
                assert_eq!(trust.server_name, "127.0.0.1");
                assert_eq!(trust.ca, Some(PathBuf::from("ca.pem")));
                assert!(!trust.insecure);
            }
            other => panic!("expected TLS, got {other:?}"),
        }
        let (cfg, t) = config("sip:127.0.0.1:5070;transport=tcp", &common, None).unwrap();
        assert_eq!(cfg.server, "127.0.0.1:5070".parse().unwrap());
        assert!(matches!(t, ClientTransport::Tcp));
        let (cfg, t) = config("sip:[::1];transport=tls", &common, None).unwrap();
        assert_eq!(cfg.server, "[::1]:5061".parse().unwrap());
        assert!(matches!(t, ClientTransport::Tls(ref tr) if tr.server_name == "::1"));
        let (cfg, t) = config("sip:127.0.0.1", &common, None).unwrap();
        assert_eq!(cfg.server, "127.0.0.1:5060".parse().unwrap());
        assert!(matches!(t, ClientTransport::Udp));
    }
}
