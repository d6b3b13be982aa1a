//! DNS for the SIP driver: runs the RFC 3263 [`Locator`] against a real
//! resolver (hickory), for the proxy's named next hops and for the client.
//!
//! The procedure itself (which records, in which order, what to fall back
//! to) lives in the sans-IO `natter_sip_server::locate`; this module only
//! asks the questions it poses, with bounded time per question.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use natter_sip_server::locate::{Locator, Naptr, Query, Srv, Step};
use natter_sip_server::{Lookup, Peer};

/// Where DNS questions go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DnsConfig {
    /// The system's resolver configuration (`/etc/resolv.conf`).
    #[default]
    System,
    /// These name servers (UDP, TCP fallback), in order.
    Servers(Vec<SocketAddr>),
}

/// Upper bound on the time one question may take (the resolver retries
/// within it); a whole RFC 3263 walk asks at most a few dozen.
const QUESTION_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound on questions in one walk, whatever the zone says.
const MAX_QUESTIONS: usize = 40;

/// A resolver for SIP targets.
#[derive(Clone)]
pub struct SipResolver {
    inner: Option<Arc<TokioResolver>>,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipResolver")
            .field("configured", &self.inner.is_some())
            .finish()
    }
}

impl SipResolver {
    /// A resolver for `cfg`. Without a usable system configuration, names
    /// simply do not resolve (and the proxy answers 478), which is logged
    /// once here.
    pub fn new(cfg: &DnsConfig) -> SipResolver {
        let provider = TokioRuntimeProvider::default();
        let builder = match cfg {
            DnsConfig::System => match TokioResolver::builder_tokio() {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(
                        "no system DNS configuration ({e}); SIP host names will not resolve"
                    );
                    None
                }
            },
            DnsConfig::Servers(addrs) => {
                let mut rc = ResolverConfig::from_name_servers(Vec::new());
                for a in addrs {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    rc.add_name_server(NameServerConfig::new(a.ip(), true, vec![udp, tcp]));
                }
                Some(TokioResolver::builder_with_config(rc, provider))
            }
        };
        let inner = builder.and_then(|mut b| {
            b.options_mut().timeout = QUESTION_TIMEOUT;
            b.options_mut().attempts = 2;
            match b.build() {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    tracing::warn!(
                        "cannot build a DNS resolver ({e}); SIP host names will not resolve"
                    );
                    None
                }
            }
        });
        SipResolver { inner }
    }

    /// RFC 3263 §4 for `lookup`: destinations in the order to try them,
    /// empty when nothing resolves.
    pub async fn locate(&self, lookup: &Lookup) -> Vec<Peer> {
        let seed = rand_seed();
        let (mut loc, mut step) = Locator::start(
            &lookup.host,
            lookup.port,
            lookup.transport,
            lookup.sips,
            seed,
        );
        for _ in 0..MAX_QUESTIONS {
            let q = match step {
                Step::Done(d) => return d,
                Step::Query(q) => q,
            };
            step = match q {
                Query::Naptr(name) => loc.on_naptr(self.naptr(&name).await),
                Query::Srv(name) => loc.on_srv(self.srv(&name).await),
                Query::Addr(name) => loc.on_addr(self.addrs(&name).await),
            };
        }
        tracing::warn!(host = %lookup.host, "DNS walk for a SIP target asked too many questions");
        Vec::new()
    }

    /// One question with its time bound; failures and timeouts count as
    /// "no records" (the locator then falls back), logged at debug level.
    async fn ask<T, F>(&self, what: &str, name: &str, fut: F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, hickory_resolver::net::NetError>>,
    {
        match tokio::time::timeout(QUESTION_TIMEOUT * 3, fut).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::debug!("{what} {name}: {e}");
                None
            }
            Err(_) => {
                tracing::debug!("{what} {name}: timed out");
                None
            }
        }
    }

    async fn naptr(&self, name: &str) -> Vec<Naptr> {
        let Some(r) = &self.inner else {
            return Vec::new();
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Some(l) = self
            .ask("NAPTR", name, r.lookup(fqdn.as_str(), RecordType::NAPTR))
            .await
        else {
            return Vec::new();
        };
        l.answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    service: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Some(r) = &self.inner else {
            return Vec::new();
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Some(l) = self
            .ask("SRV", name, r.lookup(fqdn.as_str(), RecordType::SRV))
            .await
        else {
            return Vec::new();
        };
        l.answers()
            .iter()
            .filter_map(|rec| match &rec.data {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                }),
                _ => None,
            })
            .collect()
    }

    async fn addrs(&self, name: &str) -> Vec<IpAddr> {
        let Some(r) = &self.inner else {
            return Vec::new();
        };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        self.ask("A/AAAA", name, r.lookup_ip(fqdn.as_str()))
            .await
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    }
}

/// SRV weighting only spreads load: the clock's nanoseconds are enough.
fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
