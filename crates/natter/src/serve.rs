//! `natter serve`: every server with embedded defaults. STUN/TURN on UDP+TCP 3478 and TLS 5349.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use natter_store::{RedisStore, SharedStore, Store};
use natter_turn::server::{IpNet, PeerPolicy, QuotaHookRef, ServerConfig};
use natter_turn_io::tls::{files_or_self_signed, ReloadableTls, TlsFiles};
use natter_turn_io::turn_server::{self, TurnConfig};

use crate::auth::Keys;
use crate::config::{self, ServeArgs};

/// Runs until SIGINT/SIGTERM; SIGHUP reloads the TLS certificate and forgets cached user keys.
pub fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let args = args.merged()?;
    raise_fd_limit();
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(config::default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let stores = open_stores(&args, &data_dir)?;
    let store = stores.backend.clone();
    let realm = args.realm.clone().unwrap_or_else(|| "natter".into());
    let users = args
        .user
        .iter()
        .map(|u| config::parse_user(u))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = Arc::new(Keys::new(
        &realm,
        &users,
        args.auth_secret.clone(),
        Some(store.clone()),
    ));
    if keys.is_empty() {
        tracing::warn!(
            "no users configured: every TURN request will be refused. Add one with \
             `natter user add NAME --password PW` or `--user NAME:PASSWORD`"
        );
    }

    let turn_listen = if args.turn_listen.is_empty() {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3478),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 3478),
        ]
    } else {
        args.turn_listen.clone()
    };
    let mut udp = turn_listen.clone();
    let mut alternates = Vec::new();
    if let Some(alt) = args.alt_ip {
        // RFC 5780: answer from (alt IP, port+1) and friends; listen on all four combinations
        // of each primary address of alt's family.
        for a in turn_listen.iter().filter(|a| a.is_ipv4() == alt.is_ipv4()) {
            let p2 = a.port().wrapping_add(1);
            let extra = [
                SocketAddr::new(a.ip(), p2),
                SocketAddr::new(alt, a.port()),
                SocketAddr::new(alt, p2),
            ];
            alternates.push((*a, alt, p2));
            alternates.push((extra[0], alt, a.port()));
            alternates.push((extra[1], a.ip(), p2));
            alternates.push((extra[2], a.ip(), a.port()));
            udp.extend(extra);
        }
    }
    let tls_listen = if args.no_tls {
        Vec::new()
    } else if args.tls_listen.is_empty() {
        turn_listen
            .iter()
            .map(|a| SocketAddr::new(a.ip(), 5349))
            .collect()
    } else {
        args.tls_listen.clone()
    };
    let tls = if tls_listen.is_empty() {
        None
    } else {
        let configured = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some(TlsFiles {
                cert: c.clone(),
                key: k.clone(),
            }),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let files = files_or_self_signed(configured, &data_dir, &["localhost".to_owned()])?;
        Some(ReloadableTls::new(files)?)
    };

    let relay_ipv4 = args
        .relay_ip
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .or_else(|| {
            turn_listen
                .iter()
                .map(SocketAddr::ip)
                .find(|i| i.is_ipv4() && !i.is_unspecified())
        })
        .or_else(|| config::first_interface_ip(true))
        .or(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let relay_ipv6 = args
        .relay_ip
        .iter()
        .copied()
        .find(IpAddr::is_ipv6)
        .or_else(|| {
            turn_listen
                .iter()
                .map(SocketAddr::ip)
                .find(|i| i.is_ipv6() && !i.is_unspecified())
        })
        .or_else(|| config::first_interface_ip(false));
    let ports = match &args.relay_ports {
        Some(p) => config::parse_ports(p)?,
        None => (49152, 65535),
    };
    let parse_nets = |v: &[String]| -> Result<Vec<IpNet>, String> {
        v.iter()
            .map(|s| IpNet::parse(s).map_err(|e| format!("peer range {s:?}: {e}")))
            .collect()
    };
    let defaults = ServerConfig::default();
    let cluster = stores.cluster(&args)?;
    let user_quota = args.user_quota.unwrap_or(defaults.user_quota);
    let core = ServerConfig {
        nonce_secret: cluster.as_ref().map(|c| c.turn_secret),
        quota_hook: cluster.as_ref().map(|c| {
            QuotaHookRef(
                c.runtime
                    .quota_hook(args.cluster_user_quota.unwrap_or(user_quota)),
            )
        }),
        realm: realm.clone(),
        user_quota,
        total_quota: args.total_quota.unwrap_or(defaults.total_quota),
        bandwidth_limit: args.max_bps.unwrap_or(0),
        unauth_rate: args.unauth_rate.unwrap_or(defaults.unauth_rate),
        peers: PeerPolicy {
            allow_loopback: args.allow_loopback_peers,
            allow_private: args.allow_private_peers,
            allowed: parse_nets(&args.allow_peer)?,
            denied: parse_nets(&args.deny_peer)?,
        },
        external_ipv4: args.external_ip.iter().copied().find(IpAddr::is_ipv4),
        external_ipv6: args.external_ip.iter().copied().find(IpAddr::is_ipv6),
        alternates,
        ..defaults
    };
    let shards = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let cfg = TurnConfig {
        udp,
        tcp: turn_listen.clone(),
        // TURN over DTLS (RFC 7350) on the TLS addresses' UDP ports, as coturn does.
        dtls: if args.no_dtls {
            Vec::new()
        } else {
            tls_listen.clone()
        },
        tls: tls_listen,
        relay_ipv4,
        relay_ipv6,
        ports,
        core,
        shards,
        tls_config: tls.clone(),
    };
    // IPv6 wildcard listeners are best effort: a host without IPv6 still serves IPv4.
    let handle = match turn_server::start(cfg.clone(), keys.clone()) {
        Ok(h) => h,
        Err(e) if args.turn_listen.is_empty() => {
            tracing::warn!(error = %e, "IPv6 listeners unavailable; serving IPv4 only");
            let v4 = |v: &Vec<SocketAddr>| v.iter().copied().filter(SocketAddr::is_ipv4).collect();
            let cfg = TurnConfig {
                udp: v4(&cfg.udp),
                tcp: v4(&cfg.tcp),
                tls: v4(&cfg.tls),
                dtls: v4(&cfg.dtls),
                ..cfg
            };
            turn_server::start(cfg, keys.clone())?
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        udp = ?handle.udp_addrs, tcp = ?handle.tcp_addrs, tls = ?handle.tls_addrs,
        relay_v4 = ?relay_ipv4, relay_v6 = ?relay_ipv6, realm = %realm, shards,
        "STUN/TURN server listening"
    );
    // Scripts wait for this line on stdout to know the server is up.
    println!(
        "natter: turn udp={} tcp={} tls={} dtls={}",
        join(&handle.udp_addrs),
        join(&handle.tcp_addrs),
        join(&handle.tls_addrs),
        join(&handle.dtls_addrs)
    );

    let sip = if args.no_sip {
        None
    } else {
        let listen = if args.sip_listen.is_empty() {
            crate::sip_serve::default_listen()
        } else {
            args.sip_listen.clone()
        };
        let tls_listen = if args.sip_tls_listen.is_empty() {
            listen
                .iter()
                .map(|a| SocketAddr::new(a.ip(), 5061))
                .collect()
        } else {
            args.sip_tls_listen.clone()
        };
        let settings = crate::sip_serve::SipSettings {
            domain: args.sip_domain.clone().unwrap_or_else(|| realm.clone()),
            realm: realm.clone(),
            auth: !args.no_sip_auth,
            redirect: args.sip_redirect,
            spread_by_call_id: args.sip_spread_by_call_id,
            volatile_bindings: args.sip_volatile_bindings,
            tls: tls.as_ref().map(ReloadableTls::current),
            store_file: Some(data_dir.join("natter.sqlite3")),
            listen,
            tls_listen,
            threads: shards,
            tls_client: crate::sip_serve::tls_client(
                args.sip_tls_ca.clone(),
                args.sip_tls_insecure,
            )?,
            dns: if args.dns_server.is_empty() {
                natter_sip_io::DnsConfig::System
            } else {
                natter_sip_io::DnsConfig::Servers(args.dns_server.clone())
            },
        };
        let sip_store = match (&cluster, &stores.local) {
            (Some(c), _) => crate::sip_serve::SipStore::Shared {
                store: store.clone(),
                secret: c.sip_secret,
                epoch_unix: c.epoch_unix,
            },
            (None, Some(local)) => crate::sip_serve::SipStore::Local(local.clone()),
            (None, None) => return Err("no store for SIP bindings".into()),
        };
        let h = crate::sip_serve::start(settings, keys.clone(), sip_store)?;
        println!("{}", h.ready_line());
        Some(h)
    };
    let sip_metrics = sip
        .as_ref()
        .map(crate::sip_serve::SipHandle::metrics_source);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stats, quotas) = handle.stats_source();
    if let Some(c) = &cluster {
        let sip_m = sip_metrics.clone();
        let q = quotas.clone();
        let turn_udp = join(&handle.udp_addrs);
        let sip_addrs = sip.as_ref().map(|h| h.ready_line()).unwrap_or_default();
        let load: crate::cluster::LoadFn = Box::new(move || {
            let mut f = vec![
                ("turn".to_owned(), turn_udp.clone()),
                ("turn_allocations".to_owned(), q.total().to_string()),
            ];
            if let Some(m) = &sip_m {
                f.push((
                    "sip".to_owned(),
                    sip_addrs.trim_start_matches("natter: sip ").to_owned(),
                ));
                f.extend(m.figures());
            }
            f
        });
        c.runtime.start(keys.clone(), load)?;
        tracing::info!(id = %c.runtime.id(), store = %store.describe(), "cluster member");
    }
    let cluster_metrics = cluster.as_ref().map(|c| c.runtime.clone());
    let metrics = args.metrics_listen;
    rt.block_on(async move {
        if let Some(addr) = metrics {
            let l = natter_turn_io::metrics::bind(addr)
                .await
                .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
            println!("natter: metrics http://{}/metrics", l.local_addr()?);
            let render: natter_turn_io::metrics::Render = Arc::new(move || {
                let v = match stats.lock() {
                    Ok(v) => v.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                let mut o = render_metrics(&turn_server::sum(&v), quotas.total());
                if let Some(m) = &sip_metrics {
                    o.push_str(&m.render());
                }
                if let Some(c) = &cluster_metrics {
                    o.push_str(&c.render());
                }
                o
            });
            tokio::spawn(natter_turn_io::metrics::serve(l, render));
        }
        wait_for_signals(tls, keys).await
    })?;
    tracing::info!("shutting down: deleting allocations");
    handle.shutdown();
    if let Some(s) = sip {
        s.shutdown();
    }
    if let Some(c) = &cluster {
        c.runtime.stop();
    }
    Ok(())
}

/// The stores `natter serve` runs on: the backend every server reads, and for the embedded
/// store its concrete type (the SIP location service batches its writes to the file).
struct Stores {
    backend: SharedStore,
    local: Option<Arc<Store>>,
}

/// What a cluster member shares with the others, read from the store at start.
struct ClusterState {
    runtime: Arc<crate::cluster::Cluster>,
    sip_secret: [u8; 32],
    turn_secret: [u8; 32],
    epoch_unix: u64,
}

/// How long `natter serve` waits for a shared store at start before giving up.
const STORE_WAIT: Duration = Duration::from_secs(15);

fn open_stores(
    args: &ServeArgs,
    data_dir: &std::path::Path,
) -> Result<Stores, Box<dyn std::error::Error>> {
    match args.store.as_deref() {
        Some(spec) if natter_store::is_redis_url(spec) => {
            let timeout = Duration::from_millis(args.store_timeout_ms.unwrap_or(300));
            let r: SharedStore = Arc::new(RedisStore::open(spec, timeout)?);
            let t = std::time::Instant::now();
            // Bounded: a store still down after STORE_WAIT is a configuration problem.
            while let Err(e) = r.ping() {
                if t.elapsed() > STORE_WAIT {
                    return Err(format!("shared store {}: {e}", r.describe()).into());
                }
                tracing::warn!(error = %e, "waiting for the shared store");
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(Stores {
                backend: r,
                local: None,
            })
        }
        Some(spec) if spec.contains("://") => {
            Err(natter_store::StoreError::Unsupported(spec.to_owned()).into())
        }
        other => {
            let dir = other
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.to_owned());
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create store dir {}: {e}", dir.display()))?;
            let s = Arc::new(Store::open(&dir.join("natter.sqlite3"))?);
            Ok(Stores {
                backend: s.clone(),
                local: Some(s),
            })
        }
    }
}

impl Stores {
    /// For a shared store: the cluster secrets and the member runtime.
    fn cluster(
        &self,
        args: &ServeArgs,
    ) -> Result<Option<ClusterState>, Box<dyn std::error::Error>> {
        if !self.backend.is_shared() {
            return Ok(None);
        }
        let s = &self.backend;
        let sip_secret = s.shared_secret("sip", &rand::random())?;
        let turn_secret = s.shared_secret("turn-nonce", &rand::random())?;
        // The epoch is "secret" only in name: the first instance's start second, agreed on
        // by all so SIP nonce ages read the same everywhere.
        let mut epoch = [0u8; 32];
        epoch[..8].copy_from_slice(&crate::sip_serve::unix_now().to_be_bytes());
        let epoch = s.shared_secret("sip-epoch", &epoch)?;
        let mut e8 = [0u8; 8];
        e8.copy_from_slice(&epoch[..8]);
        let first = args
            .sip_listen
            .first()
            .or(args.turn_listen.first())
            .map(ToString::to_string)
            .unwrap_or_else(|| "natter".to_owned());
        let id = format!(
            "{}#{}",
            args.instance_id.clone().unwrap_or(first),
            std::process::id()
        );
        Ok(Some(ClusterState {
            runtime: crate::cluster::Cluster::new(s.clone(), id),
            sip_secret,
            turn_secret,
            epoch_unix: u64::from_be_bytes(e8),
        }))
    }
}

/// Every allocation holds a relay socket, so the default soft limit of 1024 descriptors would cap
/// a server at about a thousand allocations. Raise the soft limit to the hard limit.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                tracing::debug!(
                    from = r.rlim_cur,
                    to = r.rlim_max,
                    "raised the open-file limit"
                );
            }
        }
    }
}

fn join(v: &[SocketAddr]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

async fn wait_for_signals(
    tls: Option<ReloadableTls>,
    keys: Arc<Keys>,
) -> Result<(), Box<dyn std::error::Error>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                keys.clear_cache();
                if let Some(t) = &tls {
                    match t.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the old certificate"),
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // Give in-flight work a moment; the shards delete allocations on their own.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// Prometheus text for the TURN counters.
pub fn render_metrics(s: &natter_turn::server::Stats, allocations: u32) -> String {
    use natter_turn_io::metrics::push;
    let mut o = String::new();
    push(
        &mut o,
        "natter_turn_allocations",
        "gauge",
        "Live TURN allocations.",
        u64::from(allocations),
    );
    push(
        &mut o,
        "natter_turn_allocations_created_total",
        "counter",
        "Allocations created.",
        s.allocations_created,
    );
    push(
        &mut o,
        "natter_turn_allocations_ended_total",
        "counter",
        "Allocations ended (deleted, expired, closed).",
        s.allocations_ended,
    );
    push(
        &mut o,
        "natter_stun_binding_requests_total",
        "counter",
        "STUN Binding requests answered.",
        s.binding_requests,
    );
    push(
        &mut o,
        "natter_turn_auth_failures_total",
        "counter",
        "Requests refused for bad credentials.",
        s.auth_failures,
    );
    push(
        &mut o,
        "natter_turn_relayed_packets_to_peer_total",
        "counter",
        "Packets relayed client to peer.",
        s.to_peer_packets,
    );
    push(
        &mut o,
        "natter_turn_relayed_bytes_to_peer_total",
        "counter",
        "Payload bytes relayed client to peer.",
        s.to_peer_bytes,
    );
    push(
        &mut o,
        "natter_turn_relayed_packets_to_client_total",
        "counter",
        "Packets relayed peer to client.",
        s.to_client_packets,
    );
    push(
        &mut o,
        "natter_turn_relayed_bytes_to_client_total",
        "counter",
        "Payload bytes relayed peer to client.",
        s.to_client_bytes,
    );
    push(
        &mut o,
        "natter_turn_dropped_total",
        "counter",
        "Datagrams dropped (malformed, no permission, over budget, rate limited).",
        s.dropped,
    );
    push(
        &mut o,
        "natter_turn_rate_limited_total",
        "counter",
        "Unauthenticated requests dropped by the rate limiter.",
        s.rate_limited,
    );
    push(
        &mut o,
        "natter_turn_bad_requests_total",
        "counter",
        "Requests answered 400.",
        s.bad_requests,
    );
    let _ = write!(o, "");
    o
}

/// Where the data dir is when none is given (for `natter user`).
pub fn data_dir_or_default(d: Option<PathBuf>) -> PathBuf {
    d.unwrap_or_else(config::default_data_dir)
}
