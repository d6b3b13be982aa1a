#![no_main]
//! Fuzzes the XMPP XML stream parser and the client core behind it: arbitrary bytes in
//! arbitrary chunks must never panic, the parser must never hold more than its stanza bound,
//! and every stanza it yields must serialise to XML that parses back to the same element.
use libfuzzer_sys::fuzz_target;
use natter_xmpp::xml::{Limits, StreamParser, XmlEvent};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_stanza_bytes: 2048,
        ..Limits::default()
    };
    let split = data.first().map_or(1, |b| usize::from(*b % 16) + 1);
    let mut p = StreamParser::new(limits);
    let mut stanzas = Vec::new();
    let mut ok = p.feed(HEADER).is_ok();
    for chunk in data.chunks(split) {
        if !ok {
            break;
        }
        match p.feed(chunk) {
            Ok(evs) => stanzas.extend(evs),
            Err(_) => ok = false,
        }
        assert!(p.buffered() <= 2048 + 16);
    }
    for ev in stanzas {
        if let XmlEvent::Stanza(e) = ev {
            let again = natter_xmpp::xml::parse_element(&e.to_xml()).expect("our XML parses");
            assert_eq!(again, e);
        }
    }
    // The client core takes the same bytes after its header without panicking.
    let jid = natter_xmpp::Jid::parse("a@b").expect("jid");
    let mut cfg = natter_xmpp::ClientConfig::new(jid, "pw");
    cfg.seed = 1;
    let now = std::time::Instant::now();
    let mut c = natter_xmpp::Client::new(cfg, now);
    c.handle_bytes(now, HEADER);
    for chunk in data.chunks(split) {
        c.handle_bytes(now, chunk);
        while c.poll_transmit().is_some() {}
        while c.poll_event().is_some() {}
    }
});
