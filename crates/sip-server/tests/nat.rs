//! SIP behind NAT, end to end through the registrar/proxy core (virtual
//! time, no sockets): flows recorded at registration, requests and
//! in-dialog requests (ACK, BYE, re-INVITE, both directions) sent to the
//! flow while the Request-URI stays the private Contact, TCP flow reuse,
//! RFC 5626 outbound registrations and keep-alive answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip::{HeaderName, Message, Method};
use natter_sip_server::{
    BindingStore, MemoryBindings, Peer, ServerConfig, SipServer, StaticCredentials, Transmit,
    Transport,
};

const PROXY: &str = "192.0.2.1:5060";
/// Bob's phone thinks it is here (Via, Contact)...
const BOB_PRIVATE: &str = "10.0.0.5:5060";
/// ...and the proxy sees its packets come from here (the NAT's mapping).
const BOB_NAT: &str = "203.0.113.9:40000";
/// Alice on the open internet.
const ALICE: &str = "198.51.100.7:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn udp(s: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr(s),
    }
}

struct Net {
    server: SipServer,
    bindings: Arc<MemoryBindings>,
    now: Instant,
}

impl Net {
    fn new() -> Net {
        let now = Instant::now();
        let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, addr(PROXY)));
        cfg.listeners.push((Transport::Tcp, addr(PROXY)));
        cfg.auth = false;
        let creds = StaticCredentials::new()
            .with_user("alice", "a")
            .with_user("bob", "b");
        let bindings = Arc::new(MemoryBindings::new());
        let server = SipServer::new(cfg, Arc::new(creds), bindings.clone(), now);
        Net {
            server,
            bindings,
            now,
        }
    }

    fn send_on(&mut self, t: Transport, from: &str, msg: &str) -> Vec<Transmit> {
        self.now += Duration::from_millis(10);
        self.server
            .handle(self.now, t, addr(from), msg.as_bytes())
            .transmits
    }

    fn send(&mut self, from: &str, msg: &str) -> Vec<Transmit> {
        self.send_on(Transport::Udp, from, msg)
    }

    fn send_msg(&mut self, from: &str, msg: &Message<'_>) -> Vec<Transmit> {
        self.send(from, &String::from_utf8(msg.to_bytes()).expect("utf8"))
    }
}

fn parse(t: &Transmit) -> Message<'static> {
    Message::parse(&t.bytes)
        .expect("server output parses")
        .into_owned()
}

/// Messages sent to exactly `peer`; panics if anything went to a private
/// address (nobody outside the NAT can reach it).
fn to(ts: &[Transmit], peer: Peer) -> Vec<Message<'static>> {
    for t in ts {
        assert!(
            !t.to.addr.ip().to_string().starts_with("10."),
            "sent to a private address: {:?}",
            t.to
        );
    }
    ts.iter().filter(|t| t.to == peer).map(parse).collect()
}

fn codes(ms: &[Message<'_>]) -> Vec<u16> {
    ms.iter().filter_map(Message::code).collect()
}

fn register(user: &str, local: &str, tp: &str, cseq: u32, contact: &str, extra: &str) -> String {
    format!(
        "REGISTER sip:natter.test SIP/2.0\r\n\
Via: SIP/2.0/{tp} {local};branch=z9hG4bKreg{cseq}{user};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:{user}@natter.test>;tag=r{user}\r\n\
To: <sip:{user}@natter.test>\r\n\
Call-ID: reg-{user}@{local}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: {contact}\r\n\
{extra}Content-Length: 0\r\n\r\n"
    )
}

fn invite(from_user: &str, local: &str, to_user: &str, branch: &str) -> String {
    format!(
        "INVITE sip:{to_user}@natter.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:{from_user}@natter.test>;tag=f{branch}\r\n\
To: <sip:{to_user}@natter.test>\r\n\
Call-ID: call-{branch}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:{from_user}@{local}>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n"
    )
}

/// The UAS's answer: Vias, Record-Route copied (by `response_to`), To tag,
/// Contact `contact`.
fn answer(req: &Message<'_>, code: u16, contact: &str, tag: &str) -> Message<'static> {
    let mut r = Message::response_to(req, code, None, Some(tag));
    r.remove(HeaderName::ContentLength);
    r.push(HeaderName::Contact, format!("<{contact}>"));
    r.push(HeaderName::ContentLength, "0");
    r
}

/// Record-Route entries, top first.
fn record_route(m: &Message<'_>) -> Vec<String> {
    m.addr_list(HeaderName::RecordRoute)
        .expect("record-route parses")
        .iter()
        .map(|na| format!("<{}>", na.uri))
        .collect()
}

/// An in-dialog request as a UA builds it (§12.2.1.1): Request-URI the
/// remote target, Route the route set.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    target: &str,
    routes: &[String],
    local: &str,
    from: (&str, &str),
    to: (&str, &str),
    call_id: &str,
    cseq: u32,
) -> String {
    let route = if routes.is_empty() {
        String::new()
    } else {
        format!("Route: {}\r\n", routes.join(", "))
    };
    let (from_tag, from_user) = from;
    let (to_tag, to_user) = to;
    format!(
        "{method} {target} SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}{from_tag};rport\r\n\
{route}Max-Forwards: 70\r\n\
From: <sip:{from_user}@natter.test>;tag={from_tag}\r\n\
To: <sip:{to_user}@natter.test>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:{from_user}@{local}>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

fn register_bob_behind_nat(net: &mut Net) {
    let reg = register(
        "bob",
        BOB_PRIVATE,
        "UDP",
        1,
        &format!("<sip:bob@{BOB_PRIVATE}>"),
        "",
    );
    let r = to(&net.send(BOB_NAT, &reg), udp(BOB_NAT));
    assert_eq!(codes(&r), vec![200], "answered on the flow");
    assert_eq!(r[0].header(HeaderName::Require), None, "not outbound");
    let b = net.bindings.lookup("sip:bob@natter.test", net.now);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, format!("sip:bob@{BOB_PRIVATE}"));
    assert_eq!(b[0].source, Some((Transport::Udp, addr(BOB_NAT))));
}

#[test]
fn call_to_a_ua_behind_nat_reaches_its_flow_ack_and_bye_too() {
    let mut net = Net::new();
    register_bob_behind_nat(&mut net);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "n1"));
    assert_eq!(codes(&to(&out, udp(ALICE))), vec![100]);
    let fwd = to(&out, udp(BOB_NAT));
    assert_eq!(fwd.len(), 1, "INVITE sent to the flow");
    let inv = &fwd[0];
    assert_eq!(
        inv.request_uri_str(),
        Some("sip:bob@10.0.0.5:5060"),
        "Request-URI stays the Contact"
    );
    // Two Record-Route entries: the one facing bob names his flow.
    let rr = record_route(inv);
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].starts_with("<sip:nf75cb0071099c40") && rr[0].ends_with("@192.0.2.1:5060;lr>"),
        "{rr:?}"
    );
    assert_eq!(rr[1], "<sip:192.0.2.1:5060;lr>", "alice is reachable as is");

    // bob answers from behind the NAT; the 200 reaches alice unchanged.
    let ok = answer(inv, 200, &format!("sip:bob@{BOB_PRIVATE}"), "bt");
    let up = to(&net.send_msg(BOB_NAT, &ok), udp(ALICE));
    assert_eq!(codes(&up), vec![200]);
    assert_eq!(
        up[0].header(HeaderName::Contact),
        Some("<sip:bob@10.0.0.5:5060>"),
        "Contact not rewritten"
    );
    let alice_routes: Vec<String> = record_route(&up[0]).into_iter().rev().collect();
    let bob_routes = record_route(inv);

    // ACK for the 2xx: to the flow, Request-URI still bob's Contact.
    let ack = in_dialog(
        "ACK",
        &format!("sip:bob@{BOB_PRIVATE}"),
        &alice_routes,
        ALICE,
        ("fn1", "alice"),
        ("bt", "bob"),
        "call-n1",
        1,
    );
    let acks = to(&net.send(ALICE, &ack), udp(BOB_NAT));
    assert_eq!(acks.len(), 1, "ACK reaches the flow");
    assert_eq!(acks[0].method(), Some(&Method::Ack));
    assert_eq!(acks[0].request_uri_str(), Some("sip:bob@10.0.0.5:5060"));
    assert_eq!(
        acks[0].header(HeaderName::Route),
        None,
        "our entries removed"
    );

    // re-INVITE from alice: to the flow as well.
    let reinv = in_dialog(
        "INVITE",
        &format!("sip:bob@{BOB_PRIVATE}"),
        &alice_routes,
        ALICE,
        ("fn1", "alice"),
        ("bt", "bob"),
        "call-n1",
        2,
    );
    let out = net.send(ALICE, &reinv);
    let fwd = to(&out, udp(BOB_NAT));
    assert_eq!(fwd.len(), 1, "re-INVITE reaches the flow");
    assert_eq!(fwd[0].request_uri_str(), Some("sip:bob@10.0.0.5:5060"));
    let up = to(
        &net.send_msg(
            BOB_NAT,
            &answer(&fwd[0], 200, "sip:bob@10.0.0.5:5060", "bt"),
        ),
        udp(ALICE),
    );
    assert_eq!(codes(&up), vec![200]);

    // BYE from bob (behind the NAT) to alice goes to alice's Contact.
    let bye = in_dialog(
        "BYE",
        &format!("sip:alice@{ALICE}"),
        &bob_routes,
        BOB_PRIVATE,
        ("bt", "bob"),
        ("fn1", "alice"),
        "call-n1",
        3,
    );
    let out = net.send(BOB_NAT, &bye);
    let fwd = to(&out, udp(ALICE));
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].method(), Some(&Method::Bye));
    let resp = Message::response_to(&fwd[0], 200, None, None);
    assert_eq!(
        codes(&to(&net.send_msg(ALICE, &resp), udp(BOB_NAT))),
        vec![200]
    );

    // And a BYE from alice instead reaches bob's flow.
    let bye = in_dialog(
        "BYE",
        &format!("sip:bob@{BOB_PRIVATE}"),
        &alice_routes,
        ALICE,
        ("fn1", "alice"),
        ("bt", "bob"),
        "call-n1",
        4,
    );
    let fwd = to(&net.send(ALICE, &bye), udp(BOB_NAT));
    assert_eq!(fwd.len(), 1, "BYE reaches the flow");
    assert_eq!(fwd[0].request_uri_str(), Some("sip:bob@10.0.0.5:5060"));
}

#[test]
fn call_from_a_ua_behind_nat_gets_bye_and_reinvite_on_its_flow() {
    const BOB: &str = "198.51.100.8:5060";
    let mut net = Net::new();
    // bob is on the open internet: registered and reached at his Contact.
    let reg = register("bob", BOB, "UDP", 1, &format!("<sip:bob@{BOB}>"), "");
    assert_eq!(codes(&to(&net.send(BOB, &reg), udp(BOB))), vec![200]);
    // alice calls from behind a NAT: 10.0.0.5:5060 mapped to 203.0.113.9:40000.
    let out = net.send(BOB_NAT, &invite("alice", BOB_PRIVATE, "bob", "r1"));
    assert_eq!(codes(&to(&out, udp(BOB_NAT))), vec![100]);
    let fwd = to(&out, udp(BOB));
    assert_eq!(fwd.len(), 1);
    let inv = &fwd[0];
    assert_eq!(inv.request_uri_str(), Some("sip:bob@198.51.100.8:5060"));
    let vias = inv.vias().expect("vias");
    assert_eq!(vias[1].received(), Some("203.0.113.9"));
    assert_eq!(vias[1].rport(), Some(Some(40000)));
    let rr = record_route(inv);
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert_eq!(rr[0], "<sip:192.0.2.1:5060;lr>", "bob needs no token");
    assert!(rr[1].starts_with("<sip:nf75cb0071099c40"), "{rr:?}");
    let ok = answer(inv, 200, &format!("sip:bob@{BOB}"), "bt");
    let up = to(&net.send_msg(BOB, &ok), udp(BOB_NAT));
    assert_eq!(codes(&up), vec![200], "200 back on alice's flow");
    let alice_routes: Vec<String> = record_route(&up[0]).into_iter().rev().collect();
    // alice's ACK goes to bob's Contact.
    let ack = in_dialog(
        "ACK",
        &format!("sip:bob@{BOB}"),
        &alice_routes,
        BOB_PRIVATE,
        ("fr1", "alice"),
        ("bt", "bob"),
        "call-r1",
        1,
    );
    assert_eq!(to(&net.send(BOB_NAT, &ack), udp(BOB)).len(), 1);
    // bob re-INVITEs and then hangs up: both reach alice's flow with her
    // private Contact as Request-URI.
    for (method, cseq) in [("INVITE", 2), ("BYE", 3)] {
        let req = in_dialog(
            method,
            &format!("sip:alice@{BOB_PRIVATE}"),
            &rr,
            BOB,
            ("bt", "bob"),
            ("fr1", "alice"),
            "call-r1",
            cseq,
        );
        let fwd = to(&net.send(BOB, &req), udp(BOB_NAT));
        assert_eq!(fwd.len(), 1, "{method} reaches alice's flow");
        assert_eq!(fwd[0].request_uri_str(), Some("sip:alice@10.0.0.5:5060"));
        let resp = answer(&fwd[0], 200, &format!("sip:alice@{BOB_PRIVATE}"), "fr1");
        assert_eq!(
            codes(&to(&net.send_msg(BOB_NAT, &resp), udp(BOB))),
            vec![200]
        );
    }
}

#[test]
fn both_ends_behind_nat() {
    const CAROL_NAT: &str = "203.0.113.50:61000";
    const CAROL_PRIVATE: &str = "192.168.1.20:5060";
    let mut net = Net::new();
    register_bob_behind_nat(&mut net);
    let out = net.send(CAROL_NAT, &invite("alice", CAROL_PRIVATE, "bob", "b1"));
    let fwd = to(&out, udp(BOB_NAT));
    assert_eq!(fwd.len(), 1);
    let inv = &fwd[0];
    let rr = record_route(inv);
    assert!(rr.iter().all(|r| r.starts_with("<sip:nf")), "{rr:?}");
    let ok = answer(inv, 200, &format!("sip:bob@{BOB_PRIVATE}"), "bt");
    assert_eq!(
        codes(&to(&net.send_msg(BOB_NAT, &ok), udp(CAROL_NAT))),
        vec![200]
    );
    let caller_routes: Vec<String> = rr.iter().rev().cloned().collect();
    let ack = in_dialog(
        "ACK",
        &format!("sip:bob@{BOB_PRIVATE}"),
        &caller_routes,
        CAROL_PRIVATE,
        ("fb1", "alice"),
        ("bt", "bob"),
        "call-b1",
        1,
    );
    assert_eq!(to(&net.send(CAROL_NAT, &ack), udp(BOB_NAT)).len(), 1);
    let bye = in_dialog(
        "BYE",
        &format!("sip:alice@{CAROL_PRIVATE}"),
        &rr,
        BOB_PRIVATE,
        ("bt", "bob"),
        ("fb1", "alice"),
        "call-b1",
        2,
    );
    assert_eq!(to(&net.send(BOB_NAT, &bye), udp(CAROL_NAT)).len(), 1);
}

#[test]
fn forged_flow_token_is_not_followed() {
    let mut net = Net::new();
    register_bob_behind_nat(&mut net);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "fg"));
    let rr = record_route(&to(&out, udp(BOB_NAT))[0]);
    // Point the token at another port: the MAC no longer matches, so the
    // request is routed by its Request-URI (a public address here).
    let forged: Vec<String> = rr
        .iter()
        .rev()
        .map(|r| r.replacen("9c40", "9c41", 1))
        .collect();
    let bye = in_dialog(
        "BYE",
        "sip:bob@198.51.100.99:5060",
        &forged,
        ALICE,
        ("ffg", "alice"),
        ("bt", "bob"),
        "call-fg",
        2,
    );
    let out = net.send(ALICE, &bye);
    assert!(to(&out, udp("203.0.113.9:40001")).is_empty());
    assert_eq!(to(&out, udp("198.51.100.99:5060")).len(), 1);
}

#[test]
fn open_internet_registration_is_reached_at_its_contact() {
    const BOB: &str = "198.51.100.8:5060";
    let mut net = Net::new();
    let reg = register("bob", BOB, "UDP", 1, &format!("<sip:bob@{BOB}>"), "");
    assert_eq!(codes(&to(&net.send(BOB, &reg), udp(BOB))), vec![200]);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "o1"));
    let fwd = to(&out, udp(BOB));
    assert_eq!(fwd.len(), 1);
    assert_eq!(
        fwd[0].header(HeaderName::RecordRoute),
        Some("<sip:192.0.2.1:5060;lr>"),
        "one plain Record-Route, as before"
    );
    let ok = answer(&fwd[0], 200, &format!("sip:bob@{BOB}"), "bt");
    assert_eq!(codes(&to(&net.send_msg(BOB, &ok), udp(ALICE))), vec![200]);
    let bye = in_dialog(
        "BYE",
        &format!("sip:bob@{BOB}"),
        &["<sip:192.0.2.1:5060;lr>".to_owned()],
        ALICE,
        ("fo1", "alice"),
        ("bt", "bob"),
        "call-o1",
        2,
    );
    assert_eq!(to(&net.send(ALICE, &bye), udp(BOB)).len(), 1);
}

#[test]
fn tcp_registration_behind_nat_reuses_its_connection() {
    const FLOW: &str = "203.0.113.9:50123";
    let mut net = Net::new();
    let reg = register(
        "bob",
        BOB_PRIVATE,
        "TCP",
        1,
        &format!("<sip:bob@{BOB_PRIVATE};transport=tcp>"),
        "",
    );
    let flow = Peer {
        transport: Transport::Tcp,
        addr: addr(FLOW),
    };
    let r = to(&net.send_on(Transport::Tcp, FLOW, &reg), flow);
    assert_eq!(codes(&r), vec![200], "answered on the connection");
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "t1"));
    let fwd = to(&out, flow);
    assert_eq!(fwd.len(), 1, "INVITE sent over bob's connection");
    assert_eq!(
        fwd[0].request_uri_str(),
        Some("sip:bob@10.0.0.5:5060;transport=tcp")
    );
    assert!(fwd[0]
        .top_via()
        .is_ok_and(|v| v.transport == "TCP" && v.host == "192.0.2.1"));
    // A TCP UA on the open internet is still reached at its Contact's
    // listening port (a new connection), as before.
    let mut net = Net::new();
    let reg = register(
        "bob",
        "198.51.100.8:5060",
        "TCP",
        1,
        "<sip:bob@198.51.100.8:5060;transport=tcp>",
        "",
    );
    net.send_on(Transport::Tcp, "198.51.100.8:50999", &reg);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "t2"));
    let peer = Peer {
        transport: Transport::Tcp,
        addr: addr("198.51.100.8:5060"),
    };
    assert_eq!(to(&out, peer).len(), 1);
}

const INSTANCE: &str = "\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\"";

fn outbound_contact(local: &str, reg_id: u32) -> String {
    format!("<sip:bob@{local};ob>;+sip.instance={INSTANCE};reg-id={reg_id}")
}

#[test]
fn outbound_registration_records_the_flow_and_requires_outbound() {
    // Public address, but a different port: without outbound the Contact
    // would be used; with it, the flow is.
    const LOCAL: &str = "198.51.100.8:5060";
    const FLOW1: &str = "198.51.100.8:33000";
    const FLOW2: &str = "198.51.100.8:33001";
    let mut net = Net::new();
    let reg = register(
        "bob",
        LOCAL,
        "UDP",
        1,
        &outbound_contact(LOCAL, 1),
        "Supported: path, outbound\r\n",
    );
    let r = to(&net.send(FLOW1, &reg), udp(FLOW1));
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(r[0].header(HeaderName::Require), Some("outbound"));
    assert_eq!(
        r[0].header(HeaderName::Contact),
        Some(
            "<sip:bob@198.51.100.8:5060;ob>;expires=3600;\
+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1"
        )
    );
    let b = net.bindings.lookup("sip:bob@natter.test", net.now);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].reg_id, Some(1));
    assert_eq!(b[0].instance.as_deref(), Some(INSTANCE));
    assert_eq!(b[0].source, Some((Transport::Udp, addr(FLOW1))));
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "ob1"));
    let fwd = to(&out, udp(FLOW1));
    assert_eq!(fwd.len(), 1, "sent to the outbound flow, not the Contact");
    assert_eq!(
        fwd[0].request_uri_str(),
        Some("sip:bob@198.51.100.8:5060;ob")
    );
    assert!(record_route(&fwd[0])[0].starts_with("<sip:nf"));

    // Same instance and reg-id from a new flow and a new Contact (the UA
    // moved): the binding is replaced, not duplicated.
    let reg = register(
        "bob",
        "198.51.100.8:5062",
        "UDP",
        2,
        &outbound_contact("198.51.100.8:5062", 1),
        "Supported: outbound\r\n",
    );
    // Same Call-ID as before? No: a new Call-ID after the move is fine too;
    // here the host:port in the Call-ID changed.
    assert_eq!(codes(&to(&net.send(FLOW2, &reg), udp(FLOW2))), vec![200]);
    let b = net.bindings.lookup("sip:bob@natter.test", net.now);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].contact, "sip:bob@198.51.100.8:5062;ob");
    assert_eq!(b[0].source, Some((Transport::Udp, addr(FLOW2))));

    // A second flow (reg-id 2) for the same instance: two bindings, but a
    // call uses one flow per instance (the most recently refreshed).
    let reg = register(
        "bob",
        LOCAL,
        "UDP",
        3,
        &outbound_contact(LOCAL, 2),
        "Supported: outbound\r\n",
    );
    net.now += Duration::from_secs(1);
    assert_eq!(codes(&to(&net.send(FLOW1, &reg), udp(FLOW1))), vec![200]);
    assert_eq!(net.bindings.lookup("sip:bob@natter.test", net.now).len(), 2);
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "ob2"));
    assert_eq!(to(&out, udp(FLOW1)).len(), 1);
    assert!(to(&out, udp(FLOW2)).is_empty(), "one flow per instance");
}

#[test]
fn outbound_rules_for_reg_id() {
    const LOCAL: &str = "198.51.100.8:5060";
    let mut net = Net::new();
    // Two Contacts with reg-id: 400.
    let two = format!(
        "{}, {}",
        outbound_contact(LOCAL, 1),
        outbound_contact("198.51.100.8:5061", 2)
    );
    let reg = register("bob", LOCAL, "UDP", 1, &two, "Supported: outbound\r\n");
    assert_eq!(codes(&to(&net.send(LOCAL, &reg), udp(LOCAL))), vec![400]);
    // A Path whose first hop lacks ;ob: 439.
    let reg = register(
        "bob",
        LOCAL,
        "UDP",
        2,
        &outbound_contact(LOCAL, 1),
        "Supported: outbound, path\r\nPath: <sip:198.51.100.1;lr>\r\n",
    );
    let r = to(&net.send(LOCAL, &reg), udp(LOCAL));
    assert_eq!(codes(&r), vec![439]);
    // Without `Supported: outbound` the reg-id is ignored: a plain binding.
    let reg = register("bob", LOCAL, "UDP", 3, &outbound_contact(LOCAL, 1), "");
    let r = to(&net.send(LOCAL, &reg), udp(LOCAL));
    assert_eq!(codes(&r), vec![200]);
    assert_eq!(r[0].header(HeaderName::Require), None);
    let b = net.bindings.lookup("sip:bob@natter.test", net.now);
    assert_eq!(
        (b[0].reg_id, b[0].instance.as_deref()),
        (None, Some(INSTANCE))
    );
    // `Require: outbound` in a REGISTER is understood (no 420).
    let reg = register(
        "bob",
        LOCAL,
        "UDP",
        4,
        &outbound_contact(LOCAL, 1),
        "Require: outbound\r\nSupported: outbound\r\n",
    );
    assert_eq!(codes(&to(&net.send(LOCAL, &reg), udp(LOCAL))), vec![200]);
}

#[test]
fn crlf_ping_on_tcp_gets_crlf_pong() {
    let mut net = Net::new();
    let out = net.send_on(Transport::Tcp, BOB_NAT, "\r\n\r\n");
    assert_eq!(
        out,
        vec![Transmit {
            to: Peer {
                transport: Transport::Tcp,
                addr: addr(BOB_NAT),
            },
            bytes: b"\r\n".to_vec(),
        }]
    );
    // On UDP a bare CRLF is a keep-alive that needs no answer, and is no
    // parse error.
    assert!(net.send(BOB_NAT, "\r\n\r\n").is_empty());
    assert!(net.send(BOB_NAT, "\r\n").is_empty());
    assert_eq!(net.server.stats().parse_errors, 0);
}

#[test]
fn stun_binding_on_the_sip_port_gets_xor_mapped_address() {
    let mut net = Net::new();
    let tid: [u8; 12] = *b"natterkeepal";
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&tid);
    let out = net
        .server
        .handle(net.now, Transport::Udp, addr(BOB_NAT), &req)
        .transmits;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, udp(BOB_NAT));
    // Binding success, 12 bytes of attributes, same transaction ID, then
    // XOR-MAPPED-ADDRESS: family 1, port 40000 ^ 0x2112, 203.0.113.9 ^ cookie.
    let mut expect = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    expect.extend_from_slice(&tid);
    expect.extend_from_slice(&[
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xbd, 0x52, 0xea, 0x12, 0xd5, 0x4b,
    ]);
    assert_eq!(out[0].bytes, expect);
    assert_eq!(net.server.stats().parse_errors, 0);
    // A STUN response or indication arriving here is dropped silently.
    let mut ind = req.clone();
    ind[1] = 0x11;
    assert!(net
        .server
        .handle(net.now, Transport::Udp, addr(BOB_NAT), &ind)
        .transmits
        .is_empty());
    // Not on TCP: there STUN is not a keep-alive of ours.
    let out = net
        .server
        .handle(net.now, Transport::Tcp, addr(BOB_NAT), &req)
        .transmits;
    assert!(out.iter().all(|t| t.bytes.first() != Some(&0x01)));
}

#[test]
fn closed_connection_drops_bindings_only_it_could_reach() {
    const FLOW: &str = "203.0.113.9:50123";
    let flow = Peer {
        transport: Transport::Tcp,
        addr: addr(FLOW),
    };
    let mut net = Net::new();
    // bob behind a NAT over TCP, carol on the open internet over TCP.
    let reg = register(
        "bob",
        BOB_PRIVATE,
        "TCP",
        1,
        &format!("<sip:bob@{BOB_PRIVATE};transport=tcp>"),
        "",
    );
    assert_eq!(
        codes(&to(&net.send_on(Transport::Tcp, FLOW, &reg), flow)),
        vec![200]
    );
    const CAROL: &str = "198.51.100.8:5060";
    const CAROL_FLOW: &str = "198.51.100.8:50999";
    let reg = register(
        "alice",
        CAROL,
        "TCP",
        1,
        &format!("<sip:alice@{CAROL};transport=tcp>"),
        "",
    );
    net.send_on(Transport::Tcp, CAROL_FLOW, &reg);
    let now = net.now;
    let carol_flow = Peer {
        transport: Transport::Tcp,
        addr: addr(CAROL_FLOW),
    };
    assert_eq!(
        net.server.flow_closed(now, carol_flow),
        0,
        "reachable at its Contact"
    );
    assert_eq!(net.bindings.lookup("sip:alice@natter.test", now).len(), 1);
    assert_eq!(net.server.flow_closed(now, flow), 1);
    assert!(net.bindings.lookup("sip:bob@natter.test", now).is_empty());
    assert_eq!(net.server.flow_closed(now, flow), 0, "only once");
    // bob is now unreachable: 480, and nothing is sent towards the old flow.
    let out = net.send(ALICE, &invite("alice", ALICE, "bob", "fc1"));
    assert!(to(&out, flow).is_empty());
    assert_eq!(codes(&to(&out, udp(ALICE))), vec![100, 480]);
}
