//! Registrar + proxy driven in memory with simulated UAs (virtual time, no sockets).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip::digest::{answer, Challenge};
use natter_sip::{HeaderName, Message, Method};
use natter_sip_server::{
    BindingStore, MemoryBindings, Mode, ServerConfig, SipServer, StaticCredentials, Transmit,
    Transport,
};

const PROXY: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5071";
const BOB: &str = "127.0.0.1:5072";
const BOB2: &str = "127.0.0.1:5073";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

struct Net {
    server: SipServer,
    bindings: Arc<MemoryBindings>,
    now: Instant,
    t0: Instant,
}

impl Net {
    fn new(auth: bool, mode: Mode) -> Net {
        let t0 = Instant::now();
        let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, addr(PROXY)));
        cfg.auth = auth;
        cfg.mode = mode;
        let creds = StaticCredentials::new()
            .with_user("alice", "alicepw")
            .with_user("bob", "bobpw")
            .with_user("carol", "c");
        let bindings = Arc::new(MemoryBindings::new());
        let server = SipServer::new(cfg, Arc::new(creds), bindings.clone(), t0);
        Net {
            server,
            bindings,
            now: t0,
            t0,
        }
    }

    fn send(&mut self, from: &str, msg: &str) -> Vec<Transmit> {
        self.server
            .handle(self.now, Transport::Udp, addr(from), msg.as_bytes())
            .transmits
    }

    fn send_msg(&mut self, from: &str, msg: &Message<'_>) -> Vec<Transmit> {
        self.server
            .handle(self.now, Transport::Udp, addr(from), &msg.to_bytes())
            .transmits
    }

    fn advance(&mut self, d: Duration) -> Vec<Transmit> {
        let end = self.now + d;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let next = self.server.on_timer(self.now).next_timeout;
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    out.extend(self.server.on_timer(self.now).transmits);
                }
                _ => break,
            }
        }
        self.now = end;
        out.extend(self.server.on_timer(self.now).transmits);
        out
    }
}

fn parse(t: &Transmit) -> Message<'static> {
    Message::parse(&t.bytes)
        .expect("server output parses")
        .into_owned()
}

fn to(ts: &[Transmit], who: &str) -> Vec<Message<'static>> {
    ts.iter()
        .filter(|t| t.to.addr == addr(who))
        .map(parse)
        .collect()
}

fn codes(ms: &[Message<'_>]) -> Vec<u16> {
    ms.iter().filter_map(Message::code).collect()
}

fn register(user: &str, contact_addr: &str, branch: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {contact_addr};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:{user}@natter.test>;tag=r{user}\r\n\
To: <sip:{user}@natter.test>\r\n\
Call-ID: reg-{user}@{contact_addr}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:{user}@{contact_addr}>\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

fn invite(from_user: &str, from_addr: &str, to_user: &str, branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:{to_user}@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {from_addr};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:{from_user}@natter.test>;tag=f{branch}\r\n\
To: <sip:{to_user}@natter.test>\r\n\
Call-ID: call-{branch}@{from_addr}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:{from_user}@{from_addr}>\r\n\
{extra}Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n"
    )
}

/// A UAS answer to a forwarded request: copies Vias etc., adds To tag and Contact.
fn answer_from(req: &Message<'_>, code: u16, uas: &str, tag: &str) -> Message<'static> {
    let mut r = Message::response_to(req, code, None, Some(tag));
    if code > 100 && code < 300 {
        r.remove(HeaderName::ContentLength);
        r.push(HeaderName::Contact, format!("<sip:bob@{uas}>"));
        r.push(HeaderName::ContentLength, "0");
    }
    r
}

fn register_plain(net: &mut Net, user: &str, at: &str, extra: &str) {
    let out = net.send(at, &register(user, at, &format!("reg{user}{at}"), 1, extra));
    assert_eq!(codes(&to(&out, at)), vec![200], "register {user}");
}

/// A REGISTER for `aor_user` from Alice's address whose credentials (`auth` = user and
/// password, nonce count `nc`) answer `ch`.
fn register_answering(
    ch: &Challenge,
    aor_user: &str,
    auth: (&str, &str),
    branch: &str,
    cseq: u32,
    nc: u32,
) -> String {
    let creds =
        answer(ch, "REGISTER", "sip:natter.test", auth.0, auth.1, "cn", nc).expect("answer");
    register(
        aor_user,
        ALICE,
        branch,
        cseq,
        &format!("Authorization: {}\r\n", creds.to_header_value()),
    )
}

#[test]
fn register_with_digest_challenge() {
    let mut net = Net::new(true, Mode::Proxy);
    let out = net.send(ALICE, &register("alice", ALICE, "a1", 1, ""));
    let r = to(&out, ALICE);
    assert_eq!(codes(&r), vec![401]);
    let ch = Challenge::parse(r[0].header(HeaderName::WwwAuthenticate).expect("challenge"))
        .expect("parses");
    assert_eq!(ch.realm, "natter.test");
    assert_eq!(ch.qop, vec!["auth"]);
    // Wrong password: refused with 403.
    let msg = register_answering(&ch, "alice", ("alice", "wrong"), "a2", 2, 1);
    assert_eq!(codes(&to(&net.send(ALICE, &msg), ALICE)), vec![403]);
    // Right password.
    let msg = register_answering(&ch, "alice", ("alice", "alicepw"), "a3", 3, 2);
    let r = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(
        r[0].header(HeaderName::Contact),
        Some("<sip:alice@127.0.0.1:5071>;expires=3600")
    );
    assert_eq!(
        net.bindings.lookup("sip:alice@natter.test", net.now).len(),
        1
    );
    // Authenticating as bob for alice's AOR is forbidden.
    let msg = register_answering(&ch, "alice", ("bob", "bobpw"), "a4", 4, 4);
    assert_eq!(codes(&to(&net.send(ALICE, &msg), ALICE)), vec![403]);
}

#[test]
fn challenges_to_register_are_stateless() {
    // RFC 3261 §8.2.7: the 401 leaves no transaction behind, and a retransmitted REGISTER is
    // challenged again with a fresh nonce instead of getting the first 401 back.
    let mut net = Net::new(true, Mode::Proxy);
    let msg = register("alice", ALICE, "st1", 1, "");
    let first = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&first), vec![401]);
    assert_eq!(
        net.server.transactions(),
        0,
        "no transaction kept for a challenge"
    );
    let again = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&again), vec![401]);
    let nonce = |m: &Message<'_>| {
        Challenge::parse(m.header(HeaderName::WwwAuthenticate).expect("challenge"))
            .expect("parses")
            .nonce
    };
    assert_ne!(nonce(&first[0]), nonce(&again[0]), "a fresh challenge");
    assert_eq!(net.server.stats().challenges, 2);
    // Both carry the same To tag, as the answers of one request would.
    assert_eq!(
        first[0].header(HeaderName::To),
        again[0].header(HeaderName::To)
    );
    // The answer to either challenge registers.
    let ch = Challenge::parse(
        first[0]
            .header(HeaderName::WwwAuthenticate)
            .expect("challenge"),
    )
    .expect("parses");
    let msg = register_answering(&ch, "alice", ("alice", "alicepw"), "st2", 2, 1);
    assert_eq!(codes(&to(&net.send(ALICE, &msg), ALICE)), vec![200]);
    // The 200 is held for retransmissions (a transaction), unlike the challenge.
    assert_eq!(net.server.transactions(), 1);
}

#[test]
fn register_without_credentials_is_checked_before_it_is_challenged() {
    // The stateless challenge must not jump the checks the full path makes first.
    let mut net = Net::new(true, Mode::Proxy);
    let r = to(
        &net.send(
            ALICE,
            &register("alice", ALICE, "c1", 1, "Require: nonexistent\r\n"),
        ),
        ALICE,
    );
    assert_eq!(codes(&r), vec![420]);
    let r = to(
        &net.send(
            ALICE,
            &register("alice", ALICE, "c2", 1, "Proxy-Require: nonexistent\r\n"),
        ),
        ALICE,
    );
    assert_eq!(codes(&r), vec![420]);
    let zero = register("alice", ALICE, "c3", 1, "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert!(zero.contains("Max-Forwards: 0"), "{zero}");
    assert_eq!(codes(&to(&net.send(ALICE, &zero), ALICE)), vec![483]);
    assert_eq!(net.server.stats().challenges, 0);
    // The challenge echoes what a response must (Via with received/rport, From, To with
    // our tag, Call-ID, CSeq).
    let r = to(
        &net.send(ALICE, &register("alice", ALICE, "c4", 7, "")),
        ALICE,
    );
    assert_eq!(codes(&r), vec![401]);
    let via = r[0].top_via().expect("via");
    assert_eq!(via.branch(), Some("z9hG4bKc4"));
    assert!(r[0].to_tag().is_some_and(|t| t.starts_with("nt")));
    assert_eq!(r[0].cseq().expect("cseq").seq, 7);
    assert_eq!(net.server.stats().challenges, 1);
}

#[test]
fn invite_challenge_keeps_its_transaction_for_the_ack() {
    let mut net = Net::new(true, Mode::Proxy);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "inv407", ""));
    assert_eq!(codes(&to(&out, ALICE)), vec![100, 407]);
    assert_eq!(
        net.server.transactions(),
        1,
        "the INVITE's 407 waits for its ACK"
    );
}

#[test]
fn register_retransmission_gets_same_answer() {
    let mut net = Net::new(false, Mode::Proxy);
    let msg = register("alice", ALICE, "rt", 1, "");
    let first = net.send(ALICE, &msg);
    let again = net.send(ALICE, &msg);
    assert_eq!(first.len(), 1);
    assert_eq!(again, first, "answered from the server transaction");
    assert_eq!(net.server.stats().registrations, 1);
}

#[test]
fn registrar_expires_min_expires_star_and_q() {
    let mut net = Net::new(false, Mode::Proxy);
    let r = to(
        &net.send(ALICE, &register("alice", ALICE, "e1", 1, "Expires: 10\r\n")),
        ALICE,
    );
    assert_eq!(codes(&r), vec![423]);
    assert_eq!(r[0].header(HeaderName::MinExpires), Some("60"));
    let r = to(
        &net.send(
            ALICE,
            &register("alice", ALICE, "e2", 2, "Expires: 120\r\n"),
        ),
        ALICE,
    );
    assert_eq!(
        r[0].header(HeaderName::Contact),
        Some("<sip:alice@127.0.0.1:5071>;expires=120")
    );
    // Second contact with q and Path, via its own Contact header.
    let msg = format!(
        "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKe3\r\nFrom: <sip:alice@natter.test>;tag=x\r\n\
To: <sip:alice@natter.test>\r\nCall-ID: reg-alice@{ALICE}\r\nCSeq: 3 REGISTER\r\nSupported: path\r\nPath: <sip:edge.natter.test;lr>\r\n\
Contact: <sip:alice@192.0.2.7:5080>;q=0.5;expires=300\r\nContent-Length: 0\r\n\r\n"
    );
    let r = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&r), vec![200]);
    let contacts: Vec<&str> = r[0].header_values(HeaderName::Contact).collect();
    assert_eq!(
        contacts,
        vec![
            "<sip:alice@127.0.0.1:5071>;expires=120",
            "<sip:alice@192.0.2.7:5080>;expires=300;q=0.500"
        ]
    );
    assert_eq!(
        r[0].header(HeaderName::Path),
        Some("<sip:edge.natter.test;lr>")
    );
    // Expiry is honoured by lookups.
    net.advance(Duration::from_secs(121));
    assert_eq!(
        net.bindings.lookup("sip:alice@natter.test", net.now).len(),
        1
    );
    // Out-of-order CSeq on the same Call-ID is refused.
    let stale = register("alice", ALICE, "e4", 2, "").replace(
        "Contact: <sip:alice@127.0.0.1:5071>",
        "Contact: <sip:alice@192.0.2.7:5080>",
    );
    let r = to(&net.send(ALICE, &stale), ALICE);
    assert_eq!(codes(&r), vec![500]);
    // "*" needs Expires: 0.
    let star = |exp: &str, cseq: u32, b: &str| {
        format!(
            "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{b}\r\nFrom: <sip:alice@natter.test>;tag=x\r\n\
To: <sip:alice@natter.test>\r\nCall-ID: reg-alice@{ALICE}\r\nCSeq: {cseq} REGISTER\r\nContact: *\r\n{exp}Content-Length: 0\r\n\r\n"
        )
    };
    assert_eq!(
        codes(&to(&net.send(ALICE, &star("", 10, "s1")), ALICE)),
        vec![400]
    );
    let r = to(&net.send(ALICE, &star("Expires: 0\r\n", 11, "s2")), ALICE);
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(r[0].header(HeaderName::Contact), None);
    assert!(net.bindings.is_empty());
}

#[test]
fn call_through_proxy_with_record_route_ack_and_bye() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "c1", ""));
    assert_eq!(codes(&to(&out, ALICE)), vec![100]);
    let fwd = to(&out, BOB);
    assert_eq!(fwd.len(), 1);
    let inv = &fwd[0];
    assert_eq!(inv.request_uri_str(), Some("sip:bob@127.0.0.1:5072"));
    assert_eq!(inv.max_forwards().expect("mf"), Some(69));
    assert_eq!(
        inv.header(HeaderName::RecordRoute),
        Some("<sip:127.0.0.1:5060;lr>")
    );
    let vias = inv.vias().expect("vias");
    assert_eq!(vias.len(), 2);
    assert_eq!((vias[0].host, vias[0].port), ("127.0.0.1", Some(5060)));
    assert!(vias[0].branch().expect("branch").starts_with("z9hG4bK"));
    assert_eq!(vias[1].received(), Some("127.0.0.1"));
    assert_eq!(vias[1].rport(), Some(Some(5071)));
    assert_eq!(&*inv.body, b"v=0\n");
    // 180 and 200 relayed with our Via removed.
    let out = net.send_msg(BOB, &answer_from(inv, 180, BOB, "bobtag"));
    let up = to(&out, ALICE);
    assert_eq!(codes(&up), vec![180]);
    assert_eq!(up[0].vias().expect("vias").len(), 1);
    let ok = answer_from(inv, 200, BOB, "bobtag");
    let up = to(&net.send_msg(BOB, &ok), ALICE);
    assert_eq!(codes(&up), vec![200]);
    assert_eq!(
        up[0].header(HeaderName::RecordRoute),
        Some("<sip:127.0.0.1:5060;lr>")
    );
    // 2xx retransmission from bob is relayed too (RFC 6026).
    assert_eq!(codes(&to(&net.send_msg(BOB, &ok), ALICE)), vec![200]);
    // ACK with the route set goes statelessly to bob's contact.
    let ack = format!(
        "ACK sip:bob@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=fc1\r\nTo: <sip:bob@natter.test>;tag=bobtag\r\nCall-ID: call-c1@{ALICE}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    let out = net.send(ALICE, &ack);
    let acks = to(&out, BOB);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].method(), Some(&Method::Ack));
    assert_eq!(
        acks[0].header(HeaderName::Route),
        None,
        "our Route entry removed"
    );
    // Retransmitted ACK gets the same stateless branch.
    let again = to(&net.send(ALICE, &ack), BOB);
    assert_eq!(
        again[0].top_via().expect("via").branch(),
        acks[0].top_via().expect("via").branch()
    );
    // BYE from bob to alice through the route set.
    let bye = format!(
        "BYE sip:alice@{ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKbye1\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nMax-Forwards: 70\r\n\
From: <sip:bob@natter.test>;tag=bobtag\r\nTo: <sip:alice@natter.test>;tag=fc1\r\nCall-ID: call-c1@{ALICE}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = net.send(BOB, &bye);
    let fwd = to(&out, ALICE);
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].method(), Some(&Method::Bye));
    let up = to(
        &net.send_msg(ALICE, &Message::response_to(&fwd[0], 200, None, None)),
        BOB,
    );
    assert_eq!(codes(&up), vec![200]);
    assert_eq!(net.server.stats().stateless, 2);
}

#[test]
fn unknown_and_unregistered_users() {
    let mut net = Net::new(false, Mode::Proxy);
    let out = net.send(ALICE, &invite("alice", ALICE, "carol", "u1", ""));
    assert_eq!(codes(&to(&out, ALICE)), vec![100, 480]);
    let out = net.send(ALICE, &invite("alice", ALICE, "nobody", "u2", ""));
    assert_eq!(codes(&to(&out, ALICE)), vec![100, 404]);
}

#[test]
fn max_forwards_zero_and_loop_detection() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let msg =
        invite("alice", ALICE, "bob", "mf", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(codes(&to(&net.send(ALICE, &msg), ALICE)), vec![100, 483]);
    // Bob's binding is his AOR itself, registered from the proxy's own
    // address: the forwarded INVITE comes back unchanged and is a loop.
    let mut net = Net::new(false, Mode::Proxy);
    let reg = register("bob", PROXY, "loopreg", 1, "").replace(
        "Contact: <sip:bob@127.0.0.1:5060>",
        "Contact: <sip:bob@natter.test>",
    );
    assert_eq!(codes(&to(&net.send(PROXY, &reg), PROXY)), vec![200]);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "lp", ""));
    let looped = to(&out, PROXY);
    assert_eq!(looped.len(), 1, "forwarded to the registered source");
    assert_eq!(looped[0].request_uri_str(), Some("sip:bob@natter.test"));
    let out = net.send_msg(PROXY, &looped[0]);
    assert_eq!(codes(&to(&out, PROXY)), vec![100, 482]);
}

#[test]
fn cancel_before_answer() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let inv_text = invite("alice", ALICE, "bob", "cx", "");
    let out = net.send(ALICE, &inv_text);
    let fwd = to(&out, BOB).remove(0);
    net.send_msg(BOB, &answer_from(&fwd, 180, BOB, "bt"));
    let cancel = inv_text
        .replace("INVITE sip:bob@natter.test", "CANCEL sip:bob@natter.test")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace(
            "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
            "Content-Length: 0\r\n\r\n",
        );
    let out = net.send(ALICE, &cancel);
    assert_eq!(codes(&to(&out, ALICE)), vec![200]);
    let down = to(&out, BOB);
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].method(), Some(&Method::Cancel));
    assert_eq!(
        down[0].top_via().expect("via").branch(),
        fwd.top_via().expect("via").branch()
    );
    // Bob: 200 for CANCEL, 487 for INVITE; the proxy ACKs the 487 and relays it.
    net.send_msg(BOB, &Message::response_to(&down[0], 200, None, Some("bt")));
    let out = net.send_msg(BOB, &answer_from(&fwd, 487, BOB, "bt"));
    let acks = to(&out, BOB);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].method(), Some(&Method::Ack));
    assert_eq!(codes(&to(&out, ALICE)), vec![487]);
}

#[test]
fn parallel_fork_first_2xx_wins_and_cancels_other() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let second =
        register("bob", BOB2, "reg2", 1, "").replace("Call-ID: reg-bob@", "Call-ID: reg2-bob@");
    assert_eq!(codes(&to(&net.send(BOB2, &second), BOB2)), vec![200]);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "pf", ""));
    let a = to(&out, BOB).remove(0);
    let b = to(&out, BOB2).remove(0);
    net.send_msg(BOB2, &answer_from(&b, 180, BOB2, "t2"));
    let out = net.send_msg(BOB, &answer_from(&a, 200, BOB, "t1"));
    assert_eq!(codes(&to(&out, ALICE)), vec![200]);
    let cancels = to(&out, BOB2);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].method(), Some(&Method::Cancel));
    // The 487 from the cancelled branch is absorbed (ACKed, not relayed).
    let out = net.send_msg(BOB2, &answer_from(&b, 487, BOB2, "t2"));
    assert!(to(&out, ALICE).is_empty());
    assert_eq!(to(&out, BOB2)[0].method(), Some(&Method::Ack));
}

#[test]
fn sequential_fork_by_q() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let low = register("bob", BOB2, "regq", 1, "")
        .replace("Call-ID: reg-bob@", "Call-ID: regq-bob@")
        .replace(
            &format!("Contact: <sip:bob@{BOB2}>"),
            &format!("Contact: <sip:bob@{BOB2}>;q=0.5"),
        );
    assert_eq!(codes(&to(&net.send(BOB2, &low), BOB2)), vec![200]);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "sf", ""));
    assert!(to(&out, BOB2).is_empty(), "lower q waits");
    let a = to(&out, BOB).remove(0);
    let out = net.send_msg(BOB, &answer_from(&a, 486, BOB, "t1"));
    assert!(
        to(&out, ALICE).is_empty(),
        "486 not final while targets remain"
    );
    let b = to(&out, BOB2);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].request_uri_str(), Some("sip:bob@127.0.0.1:5073"));
    let out = net.send_msg(BOB2, &answer_from(&b[0], 603, BOB2, "t2"));
    assert_eq!(codes(&to(&out, ALICE)), vec![603]);
}

#[test]
fn best_response_prefers_6xx_then_lowest_class() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let second =
        register("bob", BOB2, "reg3", 1, "").replace("Call-ID: reg-bob@", "Call-ID: reg3-bob@");
    net.send(BOB2, &second);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "br", ""));
    let a = to(&out, BOB).remove(0);
    let b = to(&out, BOB2).remove(0);
    let out = net.send_msg(BOB, &answer_from(&a, 503, BOB, "t1"));
    assert!(to(&out, ALICE).is_empty());
    let out = net.send_msg(BOB2, &answer_from(&b, 486, BOB2, "t2"));
    assert_eq!(codes(&to(&out, ALICE)), vec![486]);
}

#[test]
fn unanswered_invite_times_out_with_408() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "to", ""));
    assert_eq!(to(&out, BOB).len(), 1);
    let out = net.advance(Duration::from_millis(31_999));
    assert_eq!(
        to(&out, BOB).len(),
        6,
        "timer A retransmissions at 0.5,1.5,3.5,7.5,15.5,31.5 s"
    );
    assert!(to(&out, ALICE).is_empty());
    let out = net.advance(Duration::from_millis(1));
    assert_eq!(codes(&to(&out, ALICE)), vec![408]);
    assert_eq!(net.now - net.t0, Duration::from_secs(32));
}

#[test]
fn redirect_mode_answers_302() {
    let mut net = Net::new(false, Mode::Redirect);
    register_plain(&mut net, "bob", BOB, "");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "rd", ""));
    let r = to(&out, ALICE);
    assert_eq!(codes(&r), vec![100, 302]);
    assert_eq!(
        r[1].header(HeaderName::Contact),
        Some("<sip:bob@127.0.0.1:5072>;q=0.999")
    );
}

#[test]
fn invite_requires_proxy_auth_when_enabled() {
    let mut net = Net::new(true, Mode::Proxy);
    // Register bob directly in the store.
    net.bindings.upsert(natter_sip_server::Binding {
        aor: "sip:bob@natter.test".into(),
        contact: format!("sip:bob@{BOB}"),
        q: 1000,
        expires_at: net.now + Duration::from_secs(600),
        call_id: "x".into(),
        cseq: 1,
        path: Vec::new(),
        source: None,
        instance: None,
        reg_id: None,
    });
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "au1", ""));
    let r = to(&out, ALICE);
    assert_eq!(codes(&r), vec![100, 407]);
    let ch = Challenge::parse(
        r[1].header(HeaderName::ProxyAuthenticate)
            .expect("challenge"),
    )
    .expect("parses");
    let creds = answer(
        &ch,
        "INVITE",
        "sip:bob@natter.test",
        "alice",
        "alicepw",
        "q",
        1,
    )
    .expect("answer");
    let msg = invite(
        "alice",
        ALICE,
        "bob",
        "au2",
        &format!("Proxy-Authorization: {}\r\n", creds.to_header_value()),
    );
    let out = net.send(ALICE, &msg);
    assert_eq!(to(&out, BOB).len(), 1, "forwarded after authentication");
}

#[test]
fn malformed_request_gets_400_with_reason() {
    let mut net = Net::new(false, Mode::Proxy);
    let bad = "OPTIONS sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKbad\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:b@natter.test>\r\nCall-ID: bad1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let r = to(&net.send(ALICE, bad), ALICE);
    assert_eq!(codes(&r), vec![400]);
    assert!(
        matches!(&r[0].start, natter_sip::StartLine::Response { reason, .. } if reason.contains("CSeq"))
    );
    assert_eq!(net.server.stats().parse_errors, 1);
    // Garbage is dropped silently.
    assert!(net.send(ALICE, "\u{1}\u{2}garbage").is_empty());
}

#[test]
fn options_keepalive_to_proxy() {
    let mut net = Net::new(false, Mode::Proxy);
    let opt = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKopt\r\n\
From: <sip:a@natter.test>;tag=1\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let r = to(&net.send(ALICE, opt), ALICE);
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(
        to(&net.send(ALICE, opt), ALICE).len(),
        1,
        "retransmission answered from the transaction"
    );
}

#[test]
fn unsupported_proxy_require_and_require() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let msg = invite("alice", ALICE, "bob", "pr", "Proxy-Require: foo, path\r\n");
    let r = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&r), vec![100, 420]);
    assert_eq!(r[1].header(HeaderName::Unsupported), Some("foo"));
    let reg = register("alice", ALICE, "rq", 1, "Require: nonexistent\r\n");
    let r = to(&net.send(ALICE, &reg), ALICE);
    assert_eq!(codes(&r), vec![420]);
    assert_eq!(r[0].header(HeaderName::Unsupported), Some("nonexistent"));
    // Require is end-to-end: a proxy forwards it untouched.
    let msg = invite("alice", ALICE, "bob", "rq2", "Require: 100rel\r\n");
    let fwd = to(&net.send(ALICE, &msg), BOB);
    assert_eq!(fwd[0].header(HeaderName::Require), Some("100rel"));
}

#[test]
fn timer_c_cancels_a_branch_stuck_in_proceeding() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "tc", ""));
    let fwd = to(&out, BOB).remove(0);
    net.advance(Duration::from_secs(10));
    net.send_msg(BOB, &answer_from(&fwd, 180, BOB, "bt"));
    // Timer C (181 s) restarts on the provisional; nothing before it fires.
    let out = net.advance(Duration::from_secs(180));
    assert!(to(&out, BOB).is_empty());
    let out = net.advance(Duration::from_secs(1));
    let down = to(&out, BOB);
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].method(), Some(&Method::Cancel));
    net.send_msg(BOB, &Message::response_to(&down[0], 200, None, Some("bt")));
    let out = net.send_msg(BOB, &answer_from(&fwd, 487, BOB, "bt"));
    assert_eq!(codes(&to(&out, ALICE)), vec![487]);
}

#[test]
fn wildcard_listener_uses_loopback_or_advertised_address() {
    let t0 = Instant::now();
    for (advertise, expect) in [
        (None, "<sip:127.0.0.1:5060;lr>"),
        (Some("sip.example.net"), "<sip:sip.example.net:5060;lr>"),
    ] {
        let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, addr("0.0.0.0:5060")));
        cfg.auth = false;
        cfg.advertise = advertise.map(str::to_owned);
        let bindings = Arc::new(MemoryBindings::new());
        let mut server = SipServer::new(cfg, Arc::new(StaticCredentials::new()), bindings, t0);
        let reg = register("bob", BOB, "wc", 1, "");
        let out = server
            .handle(t0, Transport::Udp, addr(BOB), reg.as_bytes())
            .transmits;
        assert_eq!(codes(&to(&out, BOB)), vec![200]);
        let inv = invite("alice", ALICE, "bob", "wc1", "");
        let out = server
            .handle(t0, Transport::Udp, addr(ALICE), inv.as_bytes())
            .transmits;
        let fwd = to(&out, BOB);
        assert_eq!(fwd[0].header(HeaderName::RecordRoute), Some(expect));
        // A request routed to the advertised name is recognised as ours.
        if let Some(adv) = advertise {
            let opt = format!(
                "OPTIONS sip:{adv} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKadv\r\nFrom: <sip:a@natter.test>;tag=1\r\n\
To: <sip:{adv}>\r\nCall-ID: adv1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            let out = server
                .handle(t0, Transport::Udp, addr(ALICE), opt.as_bytes())
                .transmits;
            assert_eq!(codes(&to(&out, ALICE)), vec![200]);
        }
    }
}

#[test]
fn cancelled_branch_that_never_answers_is_dropped() {
    let mut net = Net::new(false, Mode::Proxy);
    register_plain(&mut net, "bob", BOB, "");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "gv", ""));
    let fwd = to(&out, BOB).remove(0);
    net.send_msg(BOB, &answer_from(&fwd, 180, BOB, "bt"));
    // Timer C fires at 181 s and CANCELs; bob never answers anything.
    let out = net.advance(Duration::from_secs(181));
    assert_eq!(
        to(&out, BOB)
            .iter()
            .filter(|m| m.method() == Some(&Method::Cancel))
            .count(),
        1
    );
    // 64*T1 later the branch is given up: 408 upstream, nothing left behind.
    let out = net.advance(Duration::from_secs(32));
    assert_eq!(codes(&to(&out, ALICE)), vec![408]);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.server.proxy_contexts(), 0);
    assert_eq!(net.server.transactions(), 0);
}

#[test]
fn path_routes_requests_through_the_edge_proxy() {
    const EDGE: &str = "127.0.0.1:5090";
    let mut net = Net::new(false, Mode::Proxy);
    // The REGISTER arrives from an edge proxy that added Path (RFC 3327).
    let reg = register(
        "bob",
        BOB,
        "pth",
        1,
        "Supported: path\r\nPath: <sip:127.0.0.1:5090;lr>\r\n",
    );
    let r = to(&net.send(EDGE, &reg), EDGE);
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(
        r[0].header(HeaderName::Path),
        Some("<sip:127.0.0.1:5090;lr>")
    );
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "ptc", ""));
    let fwd = to(&out, EDGE);
    assert_eq!(fwd.len(), 1, "sent to the Path hop");
    assert_eq!(
        fwd[0].header(HeaderName::Route),
        Some("<sip:127.0.0.1:5090;lr>")
    );
    assert_eq!(fwd[0].request_uri_str(), Some("sip:bob@127.0.0.1:5072"));
}

#[test]
fn no_open_relay_when_auth_is_on() {
    let mut net = Net::new(true, Mode::Proxy);
    // Foreign caller to a foreign target: refused.
    let msg = format!(
        "INVITE sip:someone@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKrelay\r\nMax-Forwards: 70\r\n\
From: <sip:mallory@evil.example>;tag=m\r\nTo: <sip:someone@{BOB}>\r\nCall-ID: relay1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    let r = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&r), vec![100, 403]);
    // A local user must authenticate (407) before relaying.
    let msg = msg
        .replace("sip:mallory@evil.example", "sip:alice@natter.test")
        .replace("z9hG4bKrelay", "z9hG4bKrelay2");
    let r = to(&net.send(ALICE, &msg), ALICE);
    assert_eq!(codes(&r), vec![100, 407]);
    // In-dialog requests (To tag) are routed without a challenge.
    let bye = format!(
        "BYE sip:someone@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKrelay3\r\nMax-Forwards: 70\r\n\
From: <sip:mallory@evil.example>;tag=m\r\nTo: <sip:someone@{BOB}>;tag=x\r\nCall-ID: relay1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = net.send(ALICE, &bye);
    assert_eq!(to(&out, BOB).len(), 1);
}

/// An INVITE to a foreign domain, sent by an authenticated-free proxy.
fn invite_far(branch: &str) -> String {
    invite("alice", ALICE, "bob", branch, "")
        .replace("INVITE sip:bob@natter.test", "INVITE sip:bob@far.example")
        .replace("To: <sip:bob@natter.test>", "To: <sip:bob@far.example>")
}

#[test]
fn named_next_hop_is_located_then_failed_over_on_503() {
    let mut net = Net::new(false, Mode::Proxy);
    let out = net.send(ALICE, &invite_far("dns1"));
    assert!(to(&out, BOB).is_empty(), "nothing forwarded before DNS");
    let lookups = net.server.take_lookups();
    assert_eq!(lookups.len(), 1);
    let l = &lookups[0];
    assert_eq!(
        (l.host.as_str(), l.port, l.transport, l.sips),
        ("far.example", None, None, false)
    );
    assert_eq!(net.server.parked_requests(), 1);
    let dests = vec![
        natter_sip_server::Peer {
            transport: Transport::Udp,
            addr: addr(BOB),
        },
        natter_sip_server::Peer {
            transport: Transport::Udp,
            addr: addr(BOB2),
        },
    ];
    let out = net.server.resolved(net.now, l.id, dests).transmits;
    assert!(to(&out, BOB2).is_empty(), "second server waits");
    let a = to(&out, BOB).remove(0);
    assert_eq!(a.request_uri_str(), Some("sip:bob@far.example"));
    // 503 from the first server: the next one is tried (RFC 3263 §4.3).
    let out = net.send_msg(BOB, &answer_from(&a, 503, BOB, "t1"));
    assert!(to(&out, ALICE).iter().all(|m| m.code() != Some(503)));
    let b = to(&out, BOB2).remove(0);
    let out = net.send_msg(BOB2, &answer_from(&b, 200, BOB2, "t2"));
    assert_eq!(codes(&to(&out, ALICE)), vec![200]);
    // The same name again comes from the cache: no new lookup.
    let out = net.send(ALICE, &invite_far("dns2"));
    assert!(net.server.take_lookups().is_empty());
    assert_eq!(to(&out, BOB).len(), 1);
}

#[test]
fn named_next_hop_answer_other_than_503_is_final() {
    let mut net = Net::new(false, Mode::Proxy);
    net.send(ALICE, &invite_far("dns3"));
    let id = net.server.take_lookups()[0].id;
    let dests = vec![
        natter_sip_server::Peer {
            transport: Transport::Udp,
            addr: addr(BOB),
        },
        natter_sip_server::Peer {
            transport: Transport::Udp,
            addr: addr(BOB2),
        },
    ];
    let out = net.server.resolved(net.now, id, dests).transmits;
    let a = to(&out, BOB).remove(0);
    let out = net.send_msg(BOB, &answer_from(&a, 486, BOB, "t1"));
    assert!(
        to(&out, BOB2).is_empty(),
        "486 is the server's answer, no failover"
    );
    assert_eq!(codes(&to(&out, ALICE)), vec![486]);
}

#[test]
fn unresolvable_or_unanswered_names_get_a_final_answer() {
    let mut net = Net::new(false, Mode::Proxy);
    net.send(ALICE, &invite_far("dns4"));
    let id = net.server.take_lookups()[0].id;
    let out = net.server.resolved(net.now, id, Vec::new()).transmits;
    let got = to(&out, ALICE);
    assert_eq!(codes(&got), vec![478]);
    assert_eq!(net.server.parked_requests(), 0);
    // A lookup the driver never answers: 504 after the park limit.
    net.send(ALICE, &invite_far("dns5"));
    assert_eq!(net.server.take_lookups().len(), 1);
    let out = net.advance(Duration::from_secs(25));
    assert!(codes(&to(&out, ALICE)).contains(&504));
    assert_eq!(net.server.parked_requests(), 0);
}

/// Validation hands the registrar the To and Contacts it parsed; headers that came folded
/// are unfolded into copies and parsed by the registrar itself. Both ways register the
/// same bindings.
#[test]
fn folded_to_and_contacts_register_the_same_bindings() {
    let contacts_of = |folded: bool| {
        let mut net = Net::new(false, Mode::Proxy);
        let (to, contact) = if folded {
            (
                "To:\r\n <sip:alice@natter.test>",
                "Contact: <sip:alice@192.0.2.10:5060>;expires=60,\r\n <sip:alice@192.0.2.11:5060>",
            )
        } else {
            (
                "To: <sip:alice@natter.test>",
                "Contact: <sip:alice@192.0.2.10:5060>;expires=60, <sip:alice@192.0.2.11:5060>",
            )
        };
        let msg = format!(
            "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ALICE};branch=z9hG4bKfold;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=ra\r\n\
{to}\r\n\
Call-ID: fold@{ALICE}\r\n\
CSeq: 1 REGISTER\r\n\
{contact}\r\n\
Content-Length: 0\r\n\r\n"
        );
        let answers = to_answers(&mut net, &msg);
        assert_eq!(codes(&answers), vec![200], "folded={folded}");
        let mut uris: Vec<String> = answers[0]
            .contacts()
            .expect("200 Contacts")
            .iter()
            .filter_map(|c| match c {
                natter_sip::Contact::Addr(a) => Some(a.uri.to_string()),
                natter_sip::Contact::Star => None,
            })
            .collect();
        uris.sort();
        uris
    };
    let plain = contacts_of(false);
    assert_eq!(
        plain,
        vec![
            "sip:alice@192.0.2.10:5060".to_owned(),
            "sip:alice@192.0.2.11:5060".to_owned()
        ]
    );
    assert_eq!(contacts_of(true), plain);
}

fn to_answers(net: &mut Net, msg: &str) -> Vec<Message<'static>> {
    let out = net.send(ALICE, msg);
    to(&out, ALICE)
}
