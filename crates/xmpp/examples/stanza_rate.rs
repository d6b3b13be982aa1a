//! How many stanzas per second the sans-IO client core reads: a realistic incoming stream
//! (chat messages, presence with XEP-0115 caps, XEP-0353 messages and the Jingle IQs of the
//! stanza.js capture in `tests/vectors/`) fed in 4 KiB reads, as a TCP socket delivers
//! it, through (1) the bare XML stream parser and (2) the whole online [`Client`] (XML,
//! stanza routing, XEP-0198 counting, its own IQ handling), draining what it emits.
//!
//!   cargo run --release -p natter-xmpp --example stanza_rate [-- ROUNDS]
//!
//! Prints one line per layer, e.g. `xml-parser stanzas_per_s=...`, for bench/xmpp.

use std::time::Instant;

use natter_xmpp::ns;
use natter_xmpp::xml::{Limits, StreamParser, XmlEvent};
use natter_xmpp::{Client, ClientConfig, Event, Jid, TlsPolicy};

const CAPTURE: &str = include_str!("../tests/vectors/stanza12-jingle-audio-call.xml");
const HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";
const CHUNK: usize = 4096;

/// One round of the incoming mix: every stanza of the capture (addressed to us), and as many
/// chat messages and presence updates, and one XEP-0353 propose/retract pair.
fn round(i: usize, jingle: &[String]) -> (String, usize) {
    let mut s = String::new();
    let mut n = 0;
    for (k, j) in jingle.iter().enumerate() {
        s.push_str(&format!(
            "<message from='bob@localhost/phone' to='alice@localhost/r1' type='chat' id='m{i}-{k}'><body>Are we still on for {k} o'clock? The room is booked &amp; the slides are ready.</body><active xmlns='http://jabber.org/protocol/chatstates'/><markable xmlns='urn:xmpp:chat-markers:0'/><origin-id xmlns='urn:xmpp:sid:0' id='o{i}-{k}'/></message>"
        ));
        s.push_str(&format!(
            "<presence from='user{k}@localhost/laptop'><show>away</show><status>in a meeting</status><priority>{k}</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://stanzajs.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>"
        ));
        s.push_str(j);
        n += 3;
    }
    s.push_str(&format!("<message from='carol@localhost/web' to='alice@localhost' type='chat' id='p{i}'><propose xmlns='urn:xmpp:jingle-message:0' id='c{i}'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose><store xmlns='urn:xmpp:hints'/></message>"));
    s.push_str(&format!("<message from='carol@localhost/web' to='alice@localhost' type='chat' id='r{i}'><retract xmlns='urn:xmpp:jingle-message:0' id='c{i}'><reason xmlns='urn:xmpp:jingle:1'><cancel/></reason></retract><store xmlns='urn:xmpp:hints'/></message>"));
    (s, n + 2)
}

/// The capture's stanzas, re-addressed to alice@localhost/r1 from bob (as Prosody routes them).
fn jingle_stanzas() -> Vec<String> {
    let mut p = StreamParser::fragment(Limits::default());
    let root = match p.feed(CAPTURE.as_bytes()) {
        Ok(evs) => evs.into_iter().find_map(|e| match e {
            XmlEvent::Stanza(e) => Some(e),
            _ => None,
        }),
        Err(e) => panic!("capture: {e}"),
    };
    let root = root.expect("capture root");
    root.elements()
        .filter(|e| matches!(e.name.as_str(), "iq" | "message" | "presence"))
        .map(|e| {
            let mut e = e.clone();
            e.set_attr("from", "bob@localhost/web");
            e.set_attr("to", "alice@localhost/r1");
            e.to_xml_in("jabber:client")
        })
        .collect()
}

/// A client brought online over a scripted plain-text negotiation (PLAIN, bind, XEP-0198).
fn online(now: Instant) -> Client {
    let mut cfg = ClientConfig::new(Jid::parse("alice@localhost").expect("jid"), "pw");
    cfg.tls = TlsPolicy::Disabled;
    cfg.allow_plain_without_tls = true;
    cfg.resource = "r1".into();
    // As the driver does: Jingle IQs go to the application.
    cfg.app_iq_namespaces = vec![ns::JINGLE.into(), ns::ROSTER.into()];
    let mut c = Client::new(cfg, now);
    let script: [&[u8]; 6] = [
        HDR.as_bytes(),
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
        HDR.as_bytes(),
        b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>",
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/r1</jid></bind></iq>",
    ];
    for s in script {
        c.handle_bytes(now, s);
        while c.poll_transmit().is_some() {}
    }
    c.handle_bytes(
        now,
        b"<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>",
    );
    while c.poll_transmit().is_some() {}
    let mut up = false;
    while let Some(e) = c.poll_event() {
        up |= matches!(e, Event::Online { .. });
    }
    assert!(
        up && c.is_online(),
        "the scripted negotiation did not bring the client online"
    );
    c
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let jingle = jingle_stanzas();
    let mut stream = String::new();
    let mut expect = 0;
    for i in 0..rounds {
        let (s, n) = round(i, &jingle);
        stream.push_str(&s);
        expect += n;
    }
    let bytes = stream.as_bytes();
    println!(
        "mix: {} Jingle IQs from the stanza.js capture + as many chat messages and presences + 2 XEP-0353 messages per round; {rounds} rounds, {expect} stanzas, {} bytes, {CHUNK}-byte reads",
        jingle.len(),
        bytes.len()
    );

    // 1. The XML stream parser alone (after a warm-up pass over part of the stream).
    let mut w = StreamParser::new(Limits::default());
    w.feed(HDR.as_bytes()).expect("header");
    for c in bytes.chunks(CHUNK).take(bytes.len() / CHUNK / 4) {
        w.feed(c).expect("well-formed");
    }
    let mut p = StreamParser::new(Limits::default());
    let t = Instant::now();
    let mut got = 0;
    p.feed(HDR.as_bytes()).expect("header");
    for c in bytes.chunks(CHUNK) {
        got += p
            .feed(c)
            .expect("well-formed")
            .iter()
            .filter(|e| matches!(e, XmlEvent::Stanza(_)))
            .count();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, expect, "the parser lost stanzas");
    report("xml-parser", got, bytes.len(), secs);

    // 2. The online client core.
    let now = Instant::now();
    let mut c = online(now);
    let t = Instant::now();
    let mut got = 0;
    let mut out = 0;
    for chunk in bytes.chunks(CHUNK) {
        c.handle_bytes(now, chunk);
        while let Some(e) = c.poll_event() {
            match e {
                Event::Stanza(_) => got += 1,
                Event::Closed(why) => panic!("stream closed: {why:?}"),
                _ => {}
            }
        }
        while let Some(b) = c.poll_transmit() {
            out += b.len();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, expect, "the client core lost stanzas");
    report("client-core", got, bytes.len(), secs);
    println!("client-core answered with {out} bytes (XEP-0198 acks, IQ results/errors)");
}

fn report(layer: &str, stanzas: usize, bytes: usize, secs: f64) {
    println!(
        "{layer} stanzas={stanzas} secs={secs:.3} stanzas_per_s={:.0} mib_per_s={:.1}",
        stanzas as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0)
    );
}
