//! Cluster behaviour of the core (issue 11), in memory with virtual time:
//!
//! * a location service that cannot answer or cannot write makes the server answer 500 with
//!   `Retry-After`, never 200 for an unwritten binding, never 404/480 for an unknown one;
//! * an initial request whose Route names one of our flows (another instance forwarding a
//!   call for a NATed UA registered here) goes out over that flow, record-routed with its
//!   token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use natter_sip::{HeaderName, Message};
use natter_sip_server::flow;
use natter_sip_server::{
    Binding, BindingStore, Change, MemoryBindings, Peer, ServerConfig, SipServer,
    StaticCredentials, Transmit, Transport, Unavailable, RETRY_AFTER_SECS,
};

const A: &str = "127.0.0.1:5060";
const B: &str = "127.0.0.2:5060";
const UAS: &str = "127.0.0.1:25070";
const UAC: &str = "127.0.0.1:25061";
const SECRET: [u8; 32] = [9; 32];

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A location service that can be switched off, like a shared store going down.
#[derive(Default)]
struct Switchable {
    inner: MemoryBindings,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), Unavailable> {
        if self.down.load(Ordering::Relaxed) {
            Err(Unavailable("switched off".into()))
        } else {
            Ok(())
        }
    }
}

impl BindingStore for Switchable {
    fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.try_lookup(aor, now).unwrap_or_default()
    }
    fn try_lookup(&self, aor: &str, now: Instant) -> Result<Vec<Binding>, Unavailable> {
        self.check()?;
        Ok(self.inner.lookup(aor, now))
    }
    fn apply(&self, changes: Vec<Change>) -> Result<(), Unavailable> {
        self.check()?;
        self.inner.apply(changes)
    }
    fn upsert(&self, b: Binding) {
        self.inner.upsert(b)
    }
    fn remove(&self, aor: &str, contact: &str) {
        self.inner.remove(aor, contact)
    }
    fn remove_all(&self, aor: &str) {
        self.inner.remove_all(aor)
    }
    fn purge_expired(&self, now: Instant) -> usize {
        self.inner.purge_expired(now)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

fn server(me: &str, store: Arc<dyn BindingStore>, now: Instant) -> SipServer {
    let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, addr(me)));
    cfg.auth = false;
    cfg.secret = SECRET;
    SipServer::new(cfg, Arc::new(StaticCredentials::new()), store, now)
}

fn parse(t: &Transmit) -> Message<'static> {
    Message::parse(&t.bytes)
        .expect("output parses")
        .into_owned()
}

fn register(contact: &str, src: &str, cseq: u32) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {src};branch=z9hG4bKreg{cseq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:uas@natter.test>;tag=r1\r\n\
To: <sip:uas@natter.test>\r\n\
Call-ID: reg-uas\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:uas@{contact}>\r\n\
Expires: 600\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn invite(branch: &str, route: &str) -> String {
    format!(
        "INVITE sip:uas@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {UAC};branch=z9hG4bK{branch}\r\n\
{route}Max-Forwards: 70\r\n\
From: <sip:sipp@{UAC}>;tag=f{branch}\r\n\
To: <sip:uas@natter.test>\r\n\
Call-ID: call-{branch}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:sipp@{UAC}>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn final_to(out: &[Transmit], who: &str) -> Vec<Message<'static>> {
    out.iter()
        .filter(|t| t.to.addr == addr(who))
        .map(parse)
        .filter(|m| m.code().is_some_and(|c| c >= 200))
        .collect()
}

#[test]
fn register_while_the_store_is_down_is_refused_with_retry_after_and_not_lost() {
    let now = Instant::now();
    let store = Arc::new(Switchable::default());
    let mut a = server(A, store.clone(), now);
    store.down.store(true, Ordering::Relaxed);
    let out = a.handle(
        now,
        Transport::Udp,
        addr(UAS),
        register(UAS, UAS, 1).as_bytes(),
    );
    let answers = final_to(&out.transmits, UAS);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].code(), Some(500));
    assert_eq!(
        answers[0].header(HeaderName::RetryAfter),
        Some(RETRY_AFTER_SECS.to_string().as_str())
    );
    assert_eq!(store.inner.len(), 0, "nothing half-written");
    assert_eq!(a.stats().registrations, 0);

    // Back up: the client's retry (new CSeq) is accepted and lands in the store.
    store.down.store(false, Ordering::Relaxed);
    let out = a.handle(
        now,
        Transport::Udp,
        addr(UAS),
        register(UAS, UAS, 2).as_bytes(),
    );
    let answers = final_to(&out.transmits, UAS);
    assert_eq!(answers[0].code(), Some(200));
    assert!(answers[0]
        .header(HeaderName::Contact)
        .is_some_and(|c| c.contains(UAS)));
    assert_eq!(store.inner.lookup("sip:uas@natter.test", now).len(), 1);
}

#[test]
fn a_lookup_that_cannot_be_answered_is_500_never_404() {
    let now = Instant::now();
    let store = Arc::new(Switchable::default());
    let mut b = server(B, store.clone(), now);
    store.down.store(true, Ordering::Relaxed);
    let out = b.handle(now, Transport::Udp, addr(UAC), invite("x1", "").as_bytes());
    let answers = final_to(&out.transmits, UAC);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].code(), Some(500), "{answers:?}");
    assert!(answers[0].header(HeaderName::RetryAfter).is_some());
    // Up again and nobody registered: now "not found" is the truthful answer.
    store.down.store(false, Ordering::Relaxed);
    let out = b.handle(now, Transport::Udp, addr(UAC), invite("x2", "").as_bytes());
    assert_eq!(final_to(&out.transmits, UAC)[0].code(), Some(404));
}

#[test]
fn a_call_for_a_flow_another_instance_holds_goes_through_that_instance() {
    // uas is behind a NAT: its Contact is private, its flow (what A saw) is public.
    let now = Instant::now();
    let nat_flow = Peer {
        transport: Transport::Udp,
        addr: addr("203.0.113.9:40000"),
    };
    let token = flow::encode_token(nat_flow, &SECRET);
    // What B's location service returns for a binding owned by A (see natter's
    // ClusterBindings): the owner as a one-entry Path carrying the flow token.
    let store_b = Arc::new(MemoryBindings::new());
    store_b.upsert(Binding {
        aor: "sip:uas@natter.test".into(),
        contact: "sip:uas@10.0.0.5:5060".into(),
        q: 1000,
        expires_at: now + std::time::Duration::from_secs(600),
        call_id: "reg".into(),
        cseq: 1,
        path: vec![format!("<sip:{token}@{A};lr>")],
        source: None,
        instance: None,
        reg_id: None,
    });
    let mut b = server(B, store_b, now);
    let out = b.handle(now, Transport::Udp, addr(UAC), invite("c1", "").as_bytes());
    let to_a: Vec<_> = out
        .transmits
        .iter()
        .filter(|t| t.to.addr == addr(A))
        .collect();
    assert_eq!(to_a.len(), 1, "B forwards to the owner A");
    let fwd = parse(to_a[0]);
    assert_eq!(fwd.request_uri_str(), Some("sip:uas@10.0.0.5:5060"));
    assert!(fwd
        .header(HeaderName::Route)
        .is_some_and(|r| r.contains(&token)));

    // A: its own token in the Route means "send over that flow".
    let mut a = server(A, Arc::new(MemoryBindings::new()), now);
    let out = a.handle(now, Transport::Udp, addr(B), &to_a[0].bytes);
    let to_flow: Vec<_> = out
        .transmits
        .iter()
        .filter(|t| t.to == nat_flow)
        .map(parse)
        .collect();
    assert_eq!(to_flow.len(), 1, "A sends over the NAT flow: {out:?}");
    let rr: Vec<&str> = to_flow[0].header_values(HeaderName::RecordRoute).collect();
    assert!(
        rr.first().is_some_and(|r| r.contains(&token)),
        "A's Record-Route facing the UA names the flow, so in-dialog requests find it: {rr:?}"
    );
}
