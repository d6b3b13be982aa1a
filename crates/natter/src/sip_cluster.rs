//! The location service of a cluster: SIP bindings live in the shared store (Redis), so any
//! instance can route to a user registered through another.
//!
//! * Writes are synchronous: a REGISTER's changes go to the store in one MULTI/EXEC before the
//!   registrar answers, and a store that cannot take them makes the registrar answer 500 with
//!   `Retry-After` (nothing is acknowledged that was not written).
//! * Reads go to the store first (another instance may have changed the bindings a moment
//!   ago); what they return is cached, and when the store cannot answer the cache keeps
//!   serving, so calls to recently seen users go on through an outage. A user with nothing
//!   cached then gets a 500, never a 404.
//! * A binding whose UA can only be reached over the flow its REGISTER came in on (NAT,
//!   TCP/TLS/WS, RFC 5626 outbound) can only be reached through the instance that holds that
//!   flow, its *owner*. Other instances see such a binding with a Path (RFC 3327) of one entry:
//!   the owner, with the flow as a token in the user part, exactly as if the owner were an edge
//!   proxy. The owner recognises its own token and sends the request over the flow
//!   (see `strip_own_routes` in natter-sip-server). Tokens are MACed with the cluster secret.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use natter_sip::Uri;
use natter_sip_server::flow;
use natter_sip_server::{Binding, BindingStore, Change, MemoryBindings, Peer, Unavailable};
use natter_store::{BindingChange, SharedStore};

use crate::sip_serve::{from_record, to_record, Clock};

/// Bindings in the shared store, with a read-through cache.
pub struct ClusterBindings {
    store: SharedStore,
    cache: MemoryBindings,
    /// Our SIP address (`host:port`) as other instances reach it: the `owner` of the
    /// bindings registered through us.
    me: RwLock<String>,
    secret: [u8; 32],
}

impl ClusterBindings {
    /// Bindings in `store`; `secret` is the cluster secret (flow tokens).
    pub fn new(store: SharedStore, secret: [u8; 32]) -> Arc<Self> {
        Arc::new(Self {
            store,
            cache: MemoryBindings::new(),
            me: RwLock::new(String::new()),
            secret,
        })
    }

    /// Sets the address other instances use to reach us (once the listeners are bound).
    pub fn set_owner(&self, me: String) {
        if let Ok(mut m) = self.me.write() {
            *m = me;
        }
    }

    fn owner(&self) -> String {
        self.me.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// A binding as this instance must use it: its own as stored; another instance's that
    /// needs its flow, routed through that instance.
    fn localise(&self, r: natter_store::BindingRecord, clock: Clock, me: &str) -> Binding {
        let owner = r.owner.clone();
        let mut b = from_record(r, clock);
        if owner.is_empty() || owner == me || !b.path.is_empty() {
            return b;
        }
        let Some((transport, addr)) = b.source else {
            return b;
        };
        let f = Peer { transport, addr };
        let needs = match Uri::parse(&b.contact) {
            Ok(u) => b.is_outbound() || flow::needs_flow(Some(&u), f),
            Err(_) => true,
        };
        if needs {
            let token = flow::encode_token(f, &self.secret);
            b.path = vec![format!("<sip:{token}@{owner};lr>")];
        }
        // The flow is the owner's, not ours: never match it against our own connections.
        b.source = None;
        b
    }

    fn refresh(&self, aor: &str, now: Instant) -> Result<Vec<Binding>, Unavailable> {
        let clock = Clock::now();
        let records = self
            .store
            .bindings(aor, clock.unix)
            .map_err(|e| Unavailable(e.to_string()))?;
        let me = self.owner();
        let fresh: Vec<Binding> = records
            .into_iter()
            .map(|r| self.localise(r, clock, &me))
            .filter(|b| b.expires_at > now)
            .collect();
        self.cache.remove_all(aor);
        for b in &fresh {
            self.cache.upsert(b.clone());
        }
        Ok(fresh)
    }

    fn write(&self, changes: &[Change]) -> Result<(), Unavailable> {
        let clock = Clock::now();
        let me = self.owner();
        let ops: Vec<BindingChange> = changes
            .iter()
            .map(|c| match c {
                Change::Upsert(b) => {
                    let mut r = to_record(b, clock);
                    r.owner = me.clone();
                    BindingChange::Put(r)
                }
                Change::Remove { aor, contact } => BindingChange::Remove {
                    aor: aor.clone(),
                    contact: contact.clone(),
                },
                Change::RemoveAll { aor } => BindingChange::RemoveAll { aor: aor.clone() },
            })
            .collect();
        self.store
            .write_bindings(&ops)
            .map_err(|e| Unavailable(e.to_string()))?;
        for c in changes {
            match c {
                Change::Upsert(b) => self.cache.upsert(b.clone()),
                Change::Remove { aor, contact } => self.cache.remove(aor, contact),
                Change::RemoveAll { aor } => self.cache.remove_all(aor),
            }
        }
        Ok(())
    }
}

impl BindingStore for ClusterBindings {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.try_lookup(aor, now).unwrap_or_default()
    }

    fn try_lookup(&self, aor: &str, now: Instant) -> Result<Vec<Binding>, Unavailable> {
        match self.refresh(aor, now) {
            Ok(v) => Ok(v),
            Err(e) => {
                let cached = self.cache.lookup(aor, now);
                if cached.is_empty() {
                    Err(e)
                } else {
                    tracing::debug!(%aor, error = %e, "store unavailable; routing from the cache");
                    Ok(cached)
                }
            }
        }
    }

    fn apply(&self, changes: Vec<Change>) -> Result<(), Unavailable> {
        self.write(&changes)
    }

    fn upsert(&self, binding: Binding) {
        if let Err(e) = self.write(&[Change::Upsert(binding)]) {
            tracing::warn!(error = %e, "cannot store a SIP binding");
        }
    }

    fn remove(&self, aor: &str, contact: &str) {
        let c = Change::Remove {
            aor: aor.to_owned(),
            contact: contact.to_owned(),
        };
        if let Err(e) = self.write(&[c]) {
            tracing::warn!(error = %e, "cannot remove a SIP binding");
        }
    }

    fn remove_all(&self, aor: &str) {
        let c = Change::RemoveAll {
            aor: aor.to_owned(),
        };
        if let Err(e) = self.write(&[c]) {
            tracing::warn!(error = %e, "cannot remove SIP bindings");
        }
    }

    fn purge_expired(&self, now: Instant) -> usize {
        // The store's keys expire on their own (and expired fields are skipped on read);
        // the cluster runtime purges stray fields now and then.
        self.cache.purge_expired(now)
    }

    fn len(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_sip_server::Transport;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A redis-server of the test's own on a free loopback port (None: binary missing).
    fn redis() -> Option<(Child, u16, std::path::PathBuf)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir = std::env::temp_dir().join(format!("natter-sipcl-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let mut child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let ready = BufReader::new(out)
            .lines()
            .take(200)
            .map_while(Result::ok)
            .any(|l| l.contains("Ready to accept connections"));
        ready.then_some((child, port, dir))
    }

    fn nat_binding(now: Instant) -> Binding {
        Binding {
            aor: "sip:nat@natter.test".into(),
            contact: "sip:nat@10.0.0.5:5060".into(),
            q: 1000,
            expires_at: now + Duration::from_secs(600),
            call_id: "c".into(),
            cseq: 1,
            path: Vec::new(),
            source: Some((Transport::Udp, "203.0.113.9:40000".parse().unwrap())),
            instance: None,
            reg_id: None,
        }
    }

    /// A NATed UA registered through A is seen by B with a Path through A carrying the flow
    /// token; A sees its own binding as registered. With Redis gone, B still routes from its
    /// cache, an unknown AoR is "unavailable" (not "no bindings"), and writes are refused.
    #[test]
    fn other_instances_route_flow_bindings_through_their_owner() {
        let Some((mut child, port, dir)) = redis() else {
            eprintln!("SKIPPED: no redis-server binary (apt-get install redis-server)");
            return;
        };
        let url = format!("redis://127.0.0.1:{port}");
        let open = || -> SharedStore {
            Arc::new(natter_store::RedisStore::open(&url, Duration::from_millis(300)).unwrap())
        };
        let secret = [3u8; 32];
        let a = ClusterBindings::new(open(), secret);
        a.set_owner("127.0.0.1:5060".into());
        let b = ClusterBindings::new(open(), secret);
        b.set_owner("127.0.0.2:5060".into());
        let now = Instant::now();
        let reg = nat_binding(now);
        a.apply(vec![Change::Upsert(reg.clone())]).unwrap();

        let mine = a.try_lookup(&reg.aor, now).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].source, reg.source);
        assert!(mine[0].path.is_empty());

        let seen = b.try_lookup(&reg.aor, now).unwrap();
        assert_eq!(seen.len(), 1);
        let flow = Peer {
            transport: Transport::Udp,
            addr: "203.0.113.9:40000".parse().unwrap(),
        };
        let token = flow::encode_token(flow, &secret);
        assert_eq!(
            seen[0].path,
            vec![format!("<sip:{token}@127.0.0.1:5060;lr>")]
        );
        assert_eq!(seen[0].source, None);
        assert_eq!(seen[0].contact, reg.contact);

        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            b.try_lookup(&reg.aor, now).unwrap(),
            seen,
            "served from the cache"
        );
        assert!(b.try_lookup("sip:nobody@natter.test", now).is_err());
        assert!(a.apply(vec![Change::Upsert(nat_binding(now))]).is_err());
    }
}
