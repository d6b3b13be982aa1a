//! `natter serve` settings: flags, then environment (`NATTER_*`), then the TOML file, then
//! embedded defaults. Every key of the file has the flag's name with `-` turned into `_`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

/// Flags of `natter serve` (all optional, so the file and defaults can fill gaps).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "NATTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// STUN/TURN listening address, UDP and TCP (repeatable). Default 0.0.0.0:3478 and [::]:3478.
    #[arg(
        long = "turn-listen",
        env = "NATTER_TURN_LISTEN",
        value_delimiter = ','
    )]
    pub turn_listen: Vec<SocketAddr>,
    /// TURN over TLS listening address (repeatable). Default: port 5349 on each --turn-listen IP.
    /// The same addresses serve TURN over DTLS (RFC 7350) on UDP.
    #[arg(long = "tls-listen", env = "NATTER_TLS_LISTEN", value_delimiter = ',')]
    pub tls_listen: Vec<SocketAddr>,
    /// No TLS listener.
    #[arg(long)]
    pub no_tls: bool,
    /// No DTLS listener on the TLS addresses (TURN over TLS/TCP only).
    #[arg(long)]
    pub no_dtls: bool,
    /// PEM certificate chain for TLS (default: a self-signed one made in the data dir).
    #[arg(long, env = "NATTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, env = "NATTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Address relays bind on (repeatable: one IPv4 and one IPv6).
    #[arg(long = "relay-ip", env = "NATTER_RELAY_IP", value_delimiter = ',')]
    pub relay_ip: Vec<IpAddr>,
    /// Relay port range, LOW-HIGH (default 49152-65535).
    #[arg(long, env = "NATTER_RELAY_PORTS")]
    pub relay_ports: Option<String>,
    /// Public address to advertise for relays when behind 1:1 NAT (repeatable: v4 and v6).
    #[arg(
        long = "external-ip",
        env = "NATTER_EXTERNAL_IP",
        value_delimiter = ','
    )]
    pub external_ip: Vec<IpAddr>,
    /// Alternate IP for RFC 5780 NAT behaviour discovery (the server also listens there and on
    /// port+1 of each address).
    #[arg(long, env = "NATTER_ALT_IP")]
    pub alt_ip: Option<IpAddr>,
    /// Realm for long-term credentials.
    #[arg(long, env = "NATTER_REALM")]
    pub realm: Option<String>,
    /// A static user NAME:PASSWORD (repeatable).
    #[arg(long = "user", env = "NATTER_USERS", value_delimiter = ',')]
    pub user: Vec<String>,
    /// TURN REST API shared secret (coturn's use-auth-secret).
    #[arg(long, env = "NATTER_AUTH_SECRET")]
    pub auth_secret: Option<String>,
    /// Let relays reach loopback peers (tests, single-host set-ups).
    #[arg(long)]
    pub allow_loopback_peers: bool,
    /// Let relays reach private-range peers (RFC 1918, fc00::/7, link-local).
    #[arg(long)]
    pub allow_private_peers: bool,
    /// Always allow this peer range (CIDR, repeatable).
    #[arg(long = "allow-peer", value_delimiter = ',')]
    pub allow_peer: Vec<String>,
    /// Always deny this peer range (CIDR, repeatable).
    #[arg(long = "deny-peer", value_delimiter = ',')]
    pub deny_peer: Vec<String>,
    /// Allocations per user.
    #[arg(long, env = "NATTER_USER_QUOTA")]
    pub user_quota: Option<u32>,
    /// Allocations in total.
    #[arg(long, env = "NATTER_TOTAL_QUOTA")]
    pub total_quota: Option<u32>,
    /// Per-allocation bandwidth cap, bytes per second (0 = none).
    #[arg(long, env = "NATTER_MAX_BPS")]
    pub max_bps: Option<u64>,
    /// Unauthenticated requests per second per source IP (0 = unlimited).
    #[arg(long, env = "NATTER_UNAUTH_RATE")]
    pub unauth_rate: Option<u32>,
    /// Prometheus endpoint address (e.g. 127.0.0.1:9641).
    #[arg(long, env = "NATTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory for the user store and generated certificates.
    #[arg(long, env = "NATTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Shard threads (default: number of cores).
    #[arg(long, env = "NATTER_THREADS")]
    pub threads: Option<usize>,
    /// Do not start the SIP server.
    #[arg(long)]
    pub no_sip: bool,
    /// SIP listening address, UDP and TCP (repeatable). Default 0.0.0.0:5060.
    #[arg(long = "sip-listen", env = "NATTER_SIP_LISTEN", value_delimiter = ',')]
    pub sip_listen: Vec<SocketAddr>,
    /// SIP over TLS listening address (repeatable). Default: port 5061 on each --sip-listen IP.
    #[arg(long = "sip-tls-listen", value_delimiter = ',')]
    pub sip_tls_listen: Vec<SocketAddr>,
    /// The SIP domain this server is registrar and proxy for (default: the realm).
    #[arg(long, env = "NATTER_SIP_DOMAIN")]
    pub sip_domain: Option<String>,
    /// Accept REGISTER/INVITE without digest authentication (tests and closed networks only).
    #[arg(long)]
    pub no_sip_auth: bool,
    /// Answer with 302 redirects instead of proxying.
    #[arg(long)]
    pub sip_redirect: bool,
    /// Spread UDP requests over the SIP threads by Call-ID instead of by sender (4-tuple):
    /// for a registrar or proxy that most traffic reaches through few peers (an SBC, an edge
    /// proxy), which would otherwise each load one thread. Costs a hand-over between threads
    /// for most requests, so it is off by default.
    #[arg(long, env = "NATTER_SIP_SPREAD_BY_CALL_ID")]
    pub sip_spread_by_call_id: bool,
    /// Keep registrations in memory only, as Kamailio's usrloc does by default (db_mode 0):
    /// a restart forgets them until each UA refreshes, and no REGISTER waits for a write.
    /// Default: every binding is written to the store before its 200 OK.
    #[arg(long, env = "NATTER_SIP_VOLATILE_BINDINGS")]
    pub sip_volatile_bindings: bool,
    /// DNS server for locating SIP next hops by name (RFC 3263: NAPTR, SRV,
    /// A/AAAA), IP:PORT, repeatable. Default: the system's resolv.conf.
    #[arg(long = "dns-server", value_delimiter = ',')]
    pub dns_server: Vec<SocketAddr>,
    /// PEM file of CAs the proxy trusts for TLS next hops it connects to
    /// (default: the system bundle /etc/ssl/certs/ca-certificates.crt).
    #[arg(long, value_name = "FILE")]
    pub sip_tls_ca: Option<PathBuf>,
    /// Connect to TLS next hops without checking their certificate (tests only).
    #[arg(long)]
    pub sip_tls_insecure: bool,
    /// Store for users and SIP bindings: `redis://HOST:PORT[/DB]` (or a Redis Cluster,
    /// `redis+cluster://HOST:PORT,HOST:PORT,...`) makes this instance one of a cluster sharing
    /// that Redis; default the embedded SQLite file in --data-dir.
    #[arg(long, env = "NATTER_STORE")]
    pub store: Option<String>,
    /// Longest wait for one shared-store call, in milliseconds (default 300).
    #[arg(long, env = "NATTER_STORE_TIMEOUT_MS")]
    pub store_timeout_ms: Option<u64>,
    /// This instance's name in the cluster (default: its first listener and process id).
    #[arg(long, env = "NATTER_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Cluster-wide TURN allocations per user, counted across instances in the shared store
    /// (default: --user-quota).
    #[arg(long, env = "NATTER_CLUSTER_USER_QUOTA")]
    pub cluster_user_quota: Option<u32>,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub turn_listen: Option<Vec<SocketAddr>>,
    pub tls_listen: Option<Vec<SocketAddr>>,
    pub no_tls: Option<bool>,
    pub no_dtls: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub relay_ip: Option<Vec<IpAddr>>,
    pub relay_ports: Option<String>,
    pub external_ip: Option<Vec<IpAddr>>,
    pub alt_ip: Option<IpAddr>,
    pub realm: Option<String>,
    pub user: Option<Vec<String>>,
    pub auth_secret: Option<String>,
    pub allow_loopback_peers: Option<bool>,
    pub allow_private_peers: Option<bool>,
    pub allow_peer: Option<Vec<String>>,
    pub deny_peer: Option<Vec<String>>,
    pub user_quota: Option<u32>,
    pub total_quota: Option<u32>,
    pub max_bps: Option<u64>,
    pub unauth_rate: Option<u32>,
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub threads: Option<usize>,
    pub no_sip: Option<bool>,
    pub sip_listen: Option<Vec<SocketAddr>>,
    pub sip_tls_listen: Option<Vec<SocketAddr>>,
    pub sip_domain: Option<String>,
    pub no_sip_auth: Option<bool>,
    pub sip_redirect: Option<bool>,
    pub sip_spread_by_call_id: Option<bool>,
    pub sip_volatile_bindings: Option<bool>,
    pub dns_server: Option<Vec<SocketAddr>>,
    pub sip_tls_ca: Option<PathBuf>,
    pub sip_tls_insecure: Option<bool>,
    pub store: Option<String>,
    pub store_timeout_ms: Option<u64>,
    pub instance_id: Option<String>,
    pub cluster_user_quota: Option<u32>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for these keys.
    #[error("config {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    /// A value is malformed.
    #[error("{0}")]
    Invalid(String),
}

fn pick<T>(flag: Vec<T>, file: Option<Vec<T>>) -> Vec<T> {
    if flag.is_empty() {
        file.unwrap_or_default()
    } else {
        flag
    }
}

impl ServeArgs {
    /// Fills unset flags from the config file, if one is named.
    pub fn merged(mut self) -> Result<Self, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| ConfigError::Read(path.clone(), e))?;
        let f: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse(path, e))?;
        self.turn_listen = pick(self.turn_listen, f.turn_listen);
        self.tls_listen = pick(self.tls_listen, f.tls_listen);
        self.no_tls |= f.no_tls.unwrap_or(false);
        self.no_dtls |= f.no_dtls.unwrap_or(false);
        self.tls_cert = self.tls_cert.or(f.tls_cert);
        self.tls_key = self.tls_key.or(f.tls_key);
        self.relay_ip = pick(self.relay_ip, f.relay_ip);
        self.relay_ports = self.relay_ports.or(f.relay_ports);
        self.external_ip = pick(self.external_ip, f.external_ip);
        self.alt_ip = self.alt_ip.or(f.alt_ip);
        self.realm = self.realm.or(f.realm);
        self.user = pick(self.user, f.user);
        self.auth_secret = self.auth_secret.or(f.auth_secret);
        self.allow_loopback_peers |= f.allow_loopback_peers.unwrap_or(false);
        self.allow_private_peers |= f.allow_private_peers.unwrap_or(false);
        self.allow_peer = pick(self.allow_peer, f.allow_peer);
        self.deny_peer = pick(self.deny_peer, f.deny_peer);
        self.user_quota = self.user_quota.or(f.user_quota);
        self.total_quota = self.total_quota.or(f.total_quota);
        self.max_bps = self.max_bps.or(f.max_bps);
        self.unauth_rate = self.unauth_rate.or(f.unauth_rate);
        self.metrics_listen = self.metrics_listen.or(f.metrics_listen);
        self.data_dir = self.data_dir.or(f.data_dir);
        self.threads = self.threads.or(f.threads);
        self.no_sip |= f.no_sip.unwrap_or(false);
        self.sip_listen = pick(self.sip_listen, f.sip_listen);
        self.sip_tls_listen = pick(self.sip_tls_listen, f.sip_tls_listen);
        self.sip_domain = self.sip_domain.or(f.sip_domain);
        self.no_sip_auth |= f.no_sip_auth.unwrap_or(false);
        self.sip_redirect |= f.sip_redirect.unwrap_or(false);
        self.sip_spread_by_call_id |= f.sip_spread_by_call_id.unwrap_or(false);
        self.sip_volatile_bindings |= f.sip_volatile_bindings.unwrap_or(false);
        self.dns_server = pick(self.dns_server, f.dns_server);
        self.sip_tls_ca = self.sip_tls_ca.or(f.sip_tls_ca);
        self.sip_tls_insecure |= f.sip_tls_insecure.unwrap_or(false);
        self.store = self.store.or(f.store);
        self.store_timeout_ms = self.store_timeout_ms.or(f.store_timeout_ms);
        self.instance_id = self.instance_id.or(f.instance_id);
        self.cluster_user_quota = self.cluster_user_quota.or(f.cluster_user_quota);
        Ok(self)
    }
}

/// Parses `LOW-HIGH`.
pub fn parse_ports(s: &str) -> Result<(u16, u16), ConfigError> {
    let bad = || ConfigError::Invalid(format!("relay ports must be LOW-HIGH, got {s:?}"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses `NAME:PASSWORD` (the password may contain ':'), or a TURN REST `EXPIRY:NAME:PASSWORD`.
pub fn parse_user(s: &str) -> Result<(String, String), ConfigError> {
    // A TURN REST user name is `EXPIRY:NAME` (coturn, Prosody's mod_turn_external): when
    // the first field is a timestamp the password follows the last colon.
    let rest = s
        .split_once(':')
        .is_some_and(|(first, _)| !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()));
    let split = if rest {
        s.rsplit_once(':')
    } else {
        s.split_once(':')
    };
    match split {
        Some((u, p)) if !u.is_empty() => Ok((u.to_owned(), p.to_owned())),
        _ => Err(ConfigError::Invalid(format!(
            "user must be NAME:PASSWORD, got {:?}",
            s.split(':').next().unwrap_or("")
        ))),
    }
}

/// The default data directory: `$XDG_DATA_HOME/natter`, `~/.local/share/natter`, or
/// `./natter-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("natter");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".local/share/natter");
    }
    PathBuf::from("natter-data")
}

/// Every address of every up interface (see [`natter_ice_io::netif`]).
pub fn interface_addresses() -> Vec<(String, IpAddr)> {
    natter_ice_io::netif::interface_addresses()
}

/// The first non-loopback, non-link-local address of `v4`/v6 family on an up interface.
pub fn first_interface_ip(v4: bool) -> Option<IpAddr> {
    interface_addresses()
        .into_iter()
        .map(|(_, ip)| ip)
        .find(|ip| match ip {
            IpAddr::V4(a) => v4 && !(a.is_loopback() || a.is_link_local() || a.is_unspecified()),
            IpAddr::V6(a) => {
                let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
                !v4 && !a.is_loopback() && !link_local && !a.is_unspecified()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_users_parse() {
        assert_eq!(parse_ports("49152-65535").unwrap(), (49152, 65535));
        assert!(parse_ports("5-1").is_err());
        assert!(parse_ports("x").is_err());
        assert_eq!(
            parse_user("a:b:c").unwrap(),
            ("a".to_owned(), "b:c".to_owned())
        );
        assert!(parse_user(":x").is_err());
        assert_eq!(
            parse_user("1700000000:bob:PASS").unwrap(),
            ("1700000000:bob".to_owned(), "PASS".to_owned())
        );
    }

    #[test]
    fn file_fills_what_flags_left_unset() {
        let dir = std::env::temp_dir().join(format!("natter-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("n.toml");
        std::fs::write(
            &p,
            "realm = \"example.org\"\nturn_listen = [\"127.0.0.1:4000\"]\nallow_loopback_peers = true\n",
        )
        .unwrap();
        let a = ServeArgs {
            config: Some(p.clone()),
            realm: Some("flag.org".into()),
            ..Default::default()
        }
        .merged()
        .unwrap();
        assert_eq!(a.realm.as_deref(), Some("flag.org"));
        assert_eq!(a.turn_listen, vec!["127.0.0.1:4000".parse().unwrap()]);
        assert!(a.allow_loopback_peers);
        std::fs::write(&p, "relam = \"typo\"\n").unwrap();
        let e = ServeArgs {
            config: Some(p),
            ..Default::default()
        }
        .merged()
        .unwrap_err();
        assert!(e.to_string().contains("relam"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
