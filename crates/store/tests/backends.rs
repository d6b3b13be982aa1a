//! The same behaviour checks against both backends: the embedded SQLite store and Redis.
//!
//! The Redis run starts its own `redis-server` on a free loopback port in a temporary
//! directory (no persistence, nothing outside the test touched) and stops it by PID. Without
//! the binary it is skipped with a message (`scripts/test` installs `redis-server`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use natter_store::{
    md5_key, sha256_key, Backend, BindingChange, BindingRecord, InstanceInfo, RedisStore, Store,
    DEFAULT_TIMEOUT,
};

fn binding(aor: &str, contact: &str, expires_at: u64) -> BindingRecord {
    BindingRecord {
        aor: aor.into(),
        contact: contact.into(),
        expires_at,
        q: 0.5,
        call_id: "c1@x".into(),
        cseq: 7,
        path: "<sip:edge;lr>".into(),
        source: "UDP:192.0.2.1:5060".into(),
        owner: String::new(),
    }
}

/// Everything the servers rely on, in one pass. `now` is far in the future so Redis TTLs
/// (relative to the real clock) never interfere with the expiry checks done here.
fn exercise(s: &dyn Backend, owner: &str) {
    s.ping().unwrap();
    // Users: derived keys only, per realm; removal from every realm.
    s.add_user("alice", "natter", "pw").unwrap();
    s.add_user("alice", "other", "pw2").unwrap();
    s.add_user("bob", "natter", "pw").unwrap();
    let k = s.user_keys("alice", "natter").unwrap().unwrap();
    assert_eq!(k.md5, md5_key("alice", "natter", "pw"));
    assert_eq!(k.sha256, Some(sha256_key("alice", "natter", "pw")));
    assert_eq!(s.user_keys("carol", "natter").unwrap(), None);
    let users: Vec<(String, String)> = s
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| (u.name, u.realm))
        .collect();
    assert_eq!(
        users,
        [
            ("alice".to_owned(), "natter".to_owned()),
            ("alice".to_owned(), "other".to_owned()),
            ("bob".to_owned(), "natter".to_owned())
        ]
    );
    assert!(s.add_user("a:b", "natter", "x").is_err());
    assert_eq!(s.remove_user("alice", None).unwrap(), 2);
    assert_eq!(s.user_keys("alice", "other").unwrap(), None);

    // Bindings: an atomic batch, per-AoR reads, expiry on read, removal.
    let aor = "sip:alice@natter.test";
    let now = 4_000_000_000;
    let mut a = binding(aor, "sip:alice@192.0.2.1:5060", now + 600);
    a.owner = owner.to_owned();
    let b = binding(aor, "sip:alice@192.0.2.2:5060", now + 10);
    s.write_bindings(&[BindingChange::Put(a.clone()), BindingChange::Put(b.clone())])
        .unwrap();
    assert_eq!(s.bindings(aor, now).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(s.bindings(aor, now + 10).unwrap(), vec![a.clone()]);
    assert_eq!(s.live_bindings(now).unwrap().len(), 2);
    s.write_bindings(&[BindingChange::Remove {
        aor: aor.into(),
        contact: a.contact.clone(),
    }])
    .unwrap();
    assert_eq!(s.bindings(aor, now).unwrap(), vec![b.clone()]);
    assert_eq!(s.purge_expired(now + 10).unwrap(), 1);
    assert!(s.bindings(aor, 0).unwrap().is_empty());
    s.write_bindings(&[BindingChange::Put(a.clone())]).unwrap();
    s.write_bindings(&[BindingChange::RemoveAll { aor: aor.into() }])
        .unwrap();
    assert!(s.bindings(aor, now).unwrap().is_empty());

    // Secrets: first writer wins, later candidates get the stored one.
    let first = s.shared_secret("sip", &[1; 32]).unwrap();
    assert_eq!(first, [1; 32]);
    assert_eq!(s.shared_secret("sip", &[2; 32]).unwrap(), [1; 32]);
    // REST secret rotation keeps the previous one valid.
    assert!(s.rest_secrets().unwrap().is_empty());
    s.rotate_rest_secret("one", 1).unwrap();
    s.rotate_rest_secret("two", 1).unwrap();
    s.rotate_rest_secret("three", 1).unwrap();
    assert_eq!(s.rest_secrets().unwrap(), ["three", "two"]);

    // Cluster-wide allocation quota: counts of live instances only.
    let live = vec!["A".to_owned(), "B".to_owned()];
    assert!(s.acquire_allocation("u", "A", 2, &live).unwrap());
    assert!(s.acquire_allocation("u", "B", 2, &live).unwrap());
    assert!(!s.acquire_allocation("u", "A", 2, &live).unwrap(), "quota");
    // B died (no heartbeat): its count no longer holds anyone back.
    assert!(s.acquire_allocation("u", "A", 2, &live[..1]).unwrap());
    s.release_allocation("u", "A").unwrap();
    s.release_allocation("u", "A").unwrap();
    assert!(s.acquire_allocation("u", "A", 1, &live[..1]).unwrap());

    // Heartbeats.
    let info = InstanceInfo {
        id: "A".into(),
        fields: vec![("sip".into(), "127.0.0.1:5060".into())],
        seen_unix: 1,
    };
    s.heartbeat(&info, 3600).unwrap();
    let seen = s.instances().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, "A");
    assert_eq!(seen[0].fields, info.fields);
}

#[test]
fn sqlite_backend() {
    let s = Store::open_in_memory().unwrap();
    // The embedded store has one instance: no owner is kept.
    exercise(&s, "");
}

/// A `redis-server` of our own on a loopback port, stopped (by PID) when dropped.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Option<Redis> {
        Self::start_with(port, &[])
    }

    fn start_with(port: u16, extra: &[&str]) -> Option<Redis> {
        let dir = std::env::temp_dir().join(format!("natter-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--port", &port.to_string()]
            .into_iter()
            .chain(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect();
        args.extend(["--dir".to_owned(), dir.display().to_string()]);
        Self::spawn(port, dir, &args, "Ready to accept connections")
    }

    /// Runs redis-server with `args`; ready once stdout shows `ready` (bounded: the log is
    /// finite if it dies). `dir` is removed when the server is dropped.
    fn spawn(port: u16, dir: PathBuf, args: &[String], ready: &str) -> Option<Redis> {
        let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let up = BufReader::new(out)
            .lines()
            .take(200)
            .map_while(Result::ok)
            .any(|l| l.contains(ready));
        if !up {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        Some(Redis { child, port, dir })
    }

    /// A Redis Sentinel watching `master_port` as `natterm`.
    fn sentinel(master_port: u16) -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("natter-sentinel-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        // Sentinel rewrites its configuration file, so it gets one of its own.
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor natterm 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds natterm 2000\n",
                dir.display()
            ),
        )
        .ok()?;
        let args = [conf.display().to_string(), "--sentinel".to_owned()];
        Self::spawn(port, dir, &args, "+monitor master natterm")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn redis_backend() {
    let Some(r) = Redis::start() else {
        eprintln!("SKIPPED redis_backend: no redis-server binary (apt-get install redis-server)");
        return;
    };
    let url = format!("redis://127.0.0.1:{}", r.port);
    let s = RedisStore::open(&url, DEFAULT_TIMEOUT).unwrap();
    exercise(&s, "UDP:127.0.0.1:5060");
}

#[test]
fn redis_outage_is_reported_then_recovered_without_reopening() {
    let Some(r) = Redis::start() else {
        eprintln!("SKIPPED redis outage test: no redis-server binary");
        return;
    };
    let port = r.port;
    let s = RedisStore::open(&format!("redis://127.0.0.1:{port}"), DEFAULT_TIMEOUT).unwrap();
    s.add_user("alice", "natter", "pw").unwrap();
    drop(r); // the server is gone
    let e = s.user_keys("alice", "natter").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = s
        .write_bindings(&[BindingChange::RemoveAll { aor: "x".into() }])
        .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    // A new server on the same port: the same store object reconnects on its own, no
    // reopening. Each attempt either fails fast (inside the 500 ms window) or reconnects;
    // the poll is bounded.
    let _r2 = Redis::start_on(port).expect("redis-server restarts on its port");
    let mut back = false;
    for _ in 0..200 {
        match s.user_keys("alice", "natter") {
            Ok(k) => {
                // The new server started empty (no persistence): the user is gone, and
                // the answer says so instead of failing.
                assert_eq!(k, None);
                back = true;
                break;
            }
            Err(e) => assert!(e.is_unavailable(), "{e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(back, "the store reconnected after the restart");
}

/// A loopback port that is free, and whose cluster bus port (+10000) is free too.
fn cluster_port() -> Option<u16> {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = l.local_addr().ok()?.port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return Some(port);
        }
    }
    None
}

/// The same checks on a three-primary Redis Cluster of our own (`redis+cluster://`): the
/// store's transactions and SCAN must work when keys are spread over nodes by slot.
#[test]
fn redis_cluster_backend() {
    let Some(cli) = ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!(
            "SKIPPED redis_cluster_backend: no redis-cli binary (apt-get install redis-tools)"
        );
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let Some(port) = cluster_port() else {
            eprintln!("SKIPPED redis_cluster_backend: no free port pair");
            return;
        };
        let Some(r) = Redis::start_with(
            port,
            &["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
        ) else {
            eprintln!("SKIPPED redis_cluster_backend: no redis-server binary");
            return;
        };
        nodes.push(r);
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|r| format!("127.0.0.1:{}", r.port))
        .collect();
    let created = Command::new(cli)
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "redis-cli --cluster create: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    // Every node agrees the cluster is up (gossip converges; bounded poll).
    let mut up = false;
    for _ in 0..200 {
        up = nodes.iter().all(|r| {
            Command::new(cli)
                .args(["-p", &r.port.to_string(), "cluster", "info"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                .unwrap_or(false)
        });
        if up {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "the cluster did not reach cluster_state:ok");
    // Seeds in reverse: `{natter}` hashes to slot 2672, served by the first node created
    // (slots 0-5460), so the store must follow CLUSTER SLOTS from the seed it asks first.
    let seeds: Vec<&str> = addrs.iter().rev().map(String::as_str).collect();
    let url = format!("redis+cluster://{}", seeds.join(","));
    let s = RedisStore::open(&url, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.kind(), "redis");
    exercise(&s, "UDP:127.0.0.1:5060");
    // Everything landed under the hash-tagged prefix, in the one slot it names.
    let slot = Command::new(cli)
        .args([
            "-p",
            &nodes[0].port.to_string(),
            "cluster",
            "keyslot",
            "{natter}:users",
        ])
        .output()
        .unwrap();
    let slot = String::from_utf8_lossy(&slot.stdout).trim().to_owned();
    let counted: u64 = nodes
        .iter()
        .map(|r| {
            let o = Command::new(cli)
                .args([
                    "-p",
                    &r.port.to_string(),
                    "cluster",
                    "countkeysinslot",
                    &slot,
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    assert!(counted >= 5, "keys in slot {slot}: {counted}");
}

#[test]
fn redis_sentinel_backend() {
    let Some(master) = Redis::start() else {
        eprintln!("SKIPPED redis_sentinel_backend: no redis-server binary");
        return;
    };
    let Some(sentinel) = Redis::sentinel(master.port) else {
        eprintln!("SKIPPED redis_sentinel_backend: the sentinel did not start");
        return;
    };
    // A sentinel that is down comes first: the store asks the next one.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!(
        "redis+sentinel://127.0.0.1:{dead},127.0.0.1:{}/natterm",
        sentinel.port
    );
    let s = RedisStore::open(&url, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(s.kind(), "redis");
    exercise(&s, "UDP:127.0.0.1:5060");
    // A master name the sentinel does not know: unavailable, never silently elsewhere.
    let wrong = format!("redis+sentinel://127.0.0.1:{}/nosuch", sentinel.port);
    let w = RedisStore::open(&wrong, DEFAULT_TIMEOUT).unwrap();
    assert!(w.list_users().is_err());
}
