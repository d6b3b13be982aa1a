//! Several `natter serve` instances as one cluster over a shared store (Redis).
//!
//! What each instance runs here, beside its servers:
//!
//! * a heartbeat: every [`HEARTBEAT_EVERY`] it writes `natter:instance:ID` (listeners, load)
//!   with a TTL of [`HEARTBEAT_TTL`], so `natter cluster status` sees who is alive, and reads
//!   back who else is (for cluster-wide TURN quotas, which only count live instances);
//! * the TURN REST secrets rotated into the store (`natter cluster rest-secret`), re-read
//!   on every beat;
//! * store health for `/metrics` (up, round-trip time, failures).
//!
//! And the operator commands `natter cluster status` and `natter cluster rest-secret`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use natter_store::{InstanceInfo, SharedStore};
use natter_turn::server::QuotaHook;

use crate::auth::Keys;
use crate::sip_serve::unix_now;

/// How often an instance announces itself.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// How long an announcement lasts: an instance that misses a few beats (or was killed)
/// drops out of `cluster status` and of quota counts.
pub const HEARTBEAT_TTL: u64 = 10;
/// How often stray expired binding fields are purged from the store (keys expire alone).
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Figures an instance reports with each heartbeat (`key=value`).
pub type LoadFn = Box<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Store health, for `/metrics` and logs.
#[derive(Default)]
struct Health {
    up: AtomicBool,
    rtt_us: AtomicU64,
    failures: AtomicU64,
    beats: AtomicU64,
    instances: AtomicU64,
}

/// The cluster side of one `natter serve`.
pub struct Cluster {
    store: SharedStore,
    id: String,
    live: Arc<RwLock<Vec<String>>>,
    health: Arc<Health>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Cluster {
    /// The cluster state of instance `id` over `store` (nothing runs until [`Cluster::start`]).
    pub fn new(store: SharedStore, id: String) -> Arc<Self> {
        Arc::new(Self {
            store,
            id,
            live: Arc::new(RwLock::new(Vec::new())),
            health: Arc::new(Health::default()),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            thread: Mutex::new(None),
        })
    }

    /// This instance's name in the store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cluster-wide per-user TURN quota of `limit` allocations.
    pub fn quota_hook(self: &Arc<Self>, limit: u32) -> Arc<dyn QuotaHook> {
        Arc::new(ClusterQuota {
            cluster: self.clone(),
            limit,
        })
    }

    /// One heartbeat: announce, learn who is alive, refresh REST secrets.
    fn beat(&self, keys: &Keys, load: &LoadFn) {
        let t = Instant::now();
        let mut fields = load();
        fields.push(("pid".into(), std::process::id().to_string()));
        fields.push(("version".into(), env!("CARGO_PKG_VERSION").into()));
        let info = InstanceInfo {
            id: self.id.clone(),
            fields,
            seen_unix: unix_now(),
        };
        let r = self
            .store
            .heartbeat(&info, HEARTBEAT_TTL)
            .and_then(|()| self.store.instances())
            .and_then(|list| Ok((list, self.store.rest_secrets()?)));
        match r {
            Ok((list, secrets)) => {
                let was_up = self.health.up.swap(true, Ordering::Relaxed);
                if !was_up && self.health.beats.load(Ordering::Relaxed) > 0 {
                    tracing::info!(store = %self.store.describe(), "cluster store reachable again");
                }
                self.health
                    .rtt_us
                    .store(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                self.health
                    .instances
                    .store(list.len() as u64, Ordering::Relaxed);
                if let Ok(mut l) = self.live.write() {
                    *l = list.into_iter().map(|i| i.id).collect();
                }
                keys.set_rest_secrets(secrets);
            }
            Err(e) => {
                self.health.failures.fetch_add(1, Ordering::Relaxed);
                if self.health.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "cluster store unreachable: serving from caches, refusing writes");
                }
            }
        }
        self.health.beats.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the heartbeat thread (first beat before returning, so the instance is listed
    /// as soon as it serves).
    pub fn start(self: &Arc<Self>, keys: Arc<Keys>, load: LoadFn) -> std::io::Result<()> {
        self.beat(&keys, &load);
        let me = self.clone();
        let h = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || {
                let mut last_purge = Instant::now();
                loop {
                    {
                        let (m, cv) = &*me.stop;
                        let g = match m.lock() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        let (g, _) = match cv.wait_timeout_while(g, HEARTBEAT_EVERY, |s| !*s) {
                            Ok(v) => v,
                            Err(p) => p.into_inner(),
                        };
                        if *g {
                            return;
                        }
                    }
                    me.beat(&keys, &load);
                    if last_purge.elapsed() >= PURGE_EVERY {
                        last_purge = Instant::now();
                        if let Err(e) = me.store.purge_expired(unix_now()) {
                            tracing::debug!(error = %e, "purging expired bindings failed");
                        }
                    }
                }
            })?;
        if let Ok(mut t) = self.thread.lock() {
            *t = Some(h);
        }
        Ok(())
    }

    /// Stops the heartbeat (the instance's key lapses after its TTL).
    pub fn stop(&self) {
        let (m, cv) = &*self.stop;
        if let Ok(mut g) = m.lock() {
            *g = true;
        }
        cv.notify_all();
        if let Some(h) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }

    /// Prometheus text for the store's health as this instance sees it.
    pub fn render(&self) -> String {
        use natter_turn_io::metrics::push;
        let h = &self.health;
        let mut o = String::new();
        push(
            &mut o,
            "natter_cluster_store_up",
            "gauge",
            "1 when the last heartbeat reached the shared store.",
            u64::from(h.up.load(Ordering::Relaxed)),
        );
        push(
            &mut o,
            "natter_cluster_store_rtt_microseconds",
            "gauge",
            "Duration of the last heartbeat round (write, list, read secrets).",
            h.rtt_us.load(Ordering::Relaxed),
        );
        push(
            &mut o,
            "natter_cluster_store_failures_total",
            "counter",
            "Heartbeats that could not reach the shared store.",
            h.failures.load(Ordering::Relaxed),
        );
        push(
            &mut o,
            "natter_cluster_instances",
            "gauge",
            "Instances with a live heartbeat, this one included.",
            h.instances.load(Ordering::Relaxed),
        );
        o
    }
}

/// Per-user TURN allocations counted in the store across live instances.
struct ClusterQuota {
    cluster: Arc<Cluster>,
    limit: u32,
}

impl QuotaHook for ClusterQuota {
    fn acquire(&self, user: &str) -> bool {
        let live = self
            .cluster
            .live
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        match self
            .cluster
            .store
            .acquire_allocation(user, &self.cluster.id, self.limit, &live)
        {
            Ok(ok) => ok,
            Err(e) => {
                // Availability over strictness: the local quota still holds.
                tracing::debug!(error = %e, %user, "cluster quota unavailable; allowing");
                true
            }
        }
    }

    fn release(&self, user: &str) {
        if let Err(e) = self
            .cluster
            .store
            .release_allocation(user, &self.cluster.id)
        {
            tracing::debug!(error = %e, %user, "cluster quota release failed");
        }
    }
}

/// `natter cluster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCmd {
    /// Instances seen through their heartbeats, their load, and the store's health.
    Status,
    /// Make SECRET the current TURN REST secret of the cluster (the previous ones stay valid
    /// for credentials already handed out; --keep says how many).
    RestSecret {
        /// The new shared secret.
        secret: String,
        /// Previous secrets kept valid.
        #[arg(long, default_value_t = 1)]
        keep: usize,
    },
}

/// Runs a cluster command against `store`.
pub fn run(cmd: ClusterCmd, store: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = natter_store::open(store)?;
    match cmd {
        ClusterCmd::Status => print!("{}", status(&store)?),
        ClusterCmd::RestSecret { secret, keep } => {
            store.rotate_rest_secret(&secret, keep)?;
            println!(
                "TURN REST secret set ({} kept valid)",
                store.rest_secrets()?.len()
            );
        }
    }
    Ok(())
}

/// The report `natter cluster status` prints.
pub fn status(store: &SharedStore) -> Result<String, Box<dyn std::error::Error>> {
    let mut o = String::new();
    let t = Instant::now();
    let health = store.ping();
    let rtt = t.elapsed();
    match &health {
        Ok(()) => writeln!(
            o,
            "store {} ({}): up, ping {:.2} ms",
            store.describe(),
            store.kind(),
            rtt.as_secs_f64() * 1000.0
        )?,
        Err(e) => {
            writeln!(
                o,
                "store {} ({}): DOWN: {e}",
                store.describe(),
                store.kind()
            )?;
            return Err(o.into());
        }
    }
    let now = unix_now();
    let instances = store.instances()?;
    let users = store.list_users()?.len();
    let bindings = store.live_bindings(now)?.len();
    let secrets = store.rest_secrets()?.len();
    writeln!(
        o,
        "users {users}, SIP bindings {bindings}, TURN REST secrets in store {secrets}"
    )?;
    writeln!(o, "instances {}:", instances.len())?;
    for i in &instances {
        let fields: Vec<String> = i.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(
            o,
            "  {}  seen {}s ago  {}",
            i.id,
            now.saturating_sub(i.seen_unix),
            fields.join(" ")
        )?;
    }
    Ok(o)
}
