//! The stream core against a scripted server: negotiation (STARTTLS, SCRAM with a real
//! server-side computation, PLAIN policy, binding), XEP-0198 counting, acks and resume,
//! the IQs the core answers itself, and refusals.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Digest as _;
use sha1::Sha1;

use super::*;

const HDR: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";

fn cfg(tls: TlsPolicy) -> ClientConfig {
    let mut c = ClientConfig::new(Jid::parse("alice@localhost").expect("jid"), "pencil");
    c.tls = tls;
    c.resource = "r1".into();
    c.seed = 7;
    c
}

fn sent(c: &mut Client) -> String {
    let mut s = String::new();
    while let Some(b) = c.poll_transmit() {
        s.push_str(&String::from_utf8(b).expect("utf8"));
    }
    s
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The first element named `name` in what the client sent.
fn element(out: &str, name: &str) -> Element {
    let start = out.find(&format!("<{name}")).expect(name);
    let mut p = crate::xml::StreamParser::fragment(crate::xml::Limits::default());
    for b in out[start..].bytes() {
        if let Some(crate::xml::XmlEvent::Stanza(e)) =
            p.feed(&[b]).expect("well-formed").into_iter().next()
        {
            return e;
        }
    }
    panic!("no complete <{name}> in {out}")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha1>::new_from_slice(key).expect("key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Checks a client-final-message; gives the server-final-message when the proof holds.
type Verifier = Box<dyn Fn(&str) -> Option<String>>;

/// Server side of SCRAM-SHA-1 for `pencil`: server-first and the verifier.
fn scram_server(client_first: &str) -> (String, Verifier) {
    let bare = client_first.strip_prefix("n,,").expect("gs2").to_owned();
    let nonce = bare
        .split(',')
        .find_map(|p| p.strip_prefix("r="))
        .expect("r")
        .to_owned();
    let salt = b"salty-salt";
    let sf = format!("r={nonce}SRV,s={},i=4096", B64.encode(salt));
    let mut salted = [0u8; 20];
    pbkdf2::pbkdf2_hmac::<Sha1>(b"pencil", salt, 4096, &mut salted);
    let sf2 = sf.clone();
    let check = move |client_final: &str| {
        let (without, proof) = client_final.rsplit_once(",p=")?;
        let auth = format!("{bare},{sf2},{without}");
        let ck = hmac(&salted, b"Client Key");
        let sk = Sha1::digest(&ck).to_vec();
        let sig = hmac(&sk, auth.as_bytes());
        let want: Vec<u8> = ck.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        if B64.decode(proof).ok()? != want {
            return None;
        }
        let server_key = hmac(&salted, b"Server Key");
        Some(format!(
            "v={}",
            B64.encode(hmac(&server_key, auth.as_bytes()))
        ))
    };
    (sf, Box::new(check))
}

const FEATURES_AUTH: &str = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
const FEATURES_BIND: &str = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>";

/// Runs a client through SCRAM-SHA-1 and binding; returns it online with SM enabled.
fn online(now: Instant) -> Client {
    let mut c = Client::new(cfg(TlsPolicy::Opportunistic), now);
    let out = sent(&mut c);
    assert!(
        out.contains("to='localhost'") && out.contains("<stream:stream"),
        "{out}"
    );
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, FEATURES_AUTH.as_bytes());
    let auth = element(&sent(&mut c), "auth");
    assert_eq!(
        auth.attr("mechanism"),
        Some("SCRAM-SHA-1"),
        "SCRAM before PLAIN"
    );
    let first = String::from_utf8(B64.decode(auth.text()).expect("b64")).expect("utf8");
    let (sf, check) = scram_server(&first);
    c.handle_bytes(
        now,
        format!(
            "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
            B64.encode(&sf)
        )
        .as_bytes(),
    );
    let resp = element(&sent(&mut c), "response");
    let fin = String::from_utf8(B64.decode(resp.text()).expect("b64")).expect("utf8");
    let v = check(&fin).expect("the client proved the password");
    c.handle_bytes(
        now,
        format!(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
            B64.encode(v)
        )
        .as_bytes(),
    );
    let restart = sent(&mut c);
    assert!(
        restart.contains("<stream:stream"),
        "stream restarts: {restart}"
    );
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, FEATURES_BIND.as_bytes());
    let bind = element(&sent(&mut c), "iq");
    assert_eq!(
        bind.child("bind", ns::BIND)
            .and_then(|b| b.child("resource", ns::BIND))
            .map(Element::text),
        Some("r1".into())
    );
    c.handle_bytes(
        now,
        b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/r1</jid></bind></iq>",
    );
    assert_eq!(
        events(&mut c),
        vec![Event::Online {
            jid: Jid::parse("alice@localhost/r1").expect("jid"),
            resumed: false
        }]
    );
    assert!(sent(&mut c).contains("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"));
    c.handle_bytes(
        now,
        b"<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>",
    );
    c
}

#[test]
fn scram_negotiation_binding_and_sm() {
    let now = Instant::now();
    let c = online(now);
    assert!(c.is_online() && c.sm_enabled() && !c.is_tls());
}

#[test]
fn forged_server_signature_is_refused() {
    let now = Instant::now();
    let mut c = Client::new(cfg(TlsPolicy::Disabled), now);
    sent(&mut c);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, FEATURES_AUTH.as_bytes());
    let auth = element(&sent(&mut c), "auth");
    let first = String::from_utf8(B64.decode(auth.text()).expect("b64")).expect("utf8");
    let (sf, _) = scram_server(&first);
    c.handle_bytes(
        now,
        format!(
            "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
            B64.encode(&sf)
        )
        .as_bytes(),
    );
    sent(&mut c);
    c.handle_bytes(
        now,
        format!(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</success>",
            B64.encode("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        )
        .as_bytes(),
    );
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::Sasl(
            SaslError::ServerSignature
        )))]
    );
}

#[test]
fn plain_only_over_tls_unless_allowed() {
    let now = Instant::now();
    let only_plain = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
    let mut c = Client::new(cfg(TlsPolicy::Disabled), now);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, only_plain.as_bytes());
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::NoMechanism(
            "PLAIN".into()
        )))]
    );
    let mut conf = cfg(TlsPolicy::Disabled);
    conf.allow_plain_without_tls = true;
    let mut c = Client::new(conf, now);
    sent(&mut c);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, only_plain.as_bytes());
    let auth = element(&sent(&mut c), "auth");
    assert_eq!(B64.decode(auth.text()).expect("b64"), b"\0alice\0pencil");
    c.handle_bytes(
        now,
        b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>",
    );
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::AuthFailed(
            "not-authorized".into()
        )))]
    );
}

#[test]
fn starttls_then_plain_over_tls() {
    let now = Instant::now();
    let mut c = Client::new(cfg(TlsPolicy::Required), now);
    sent(&mut c);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(
        now,
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
    );
    assert!(sent(&mut c).contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
    c.handle_bytes(now, b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(events(&mut c), vec![Event::StartTls]);
    // Nothing is read or written until the driver says TLS is up.
    c.handle_bytes(now, b"garbage");
    assert_eq!(sent(&mut c), "");
    c.tls_established();
    assert!(c.is_tls());
    assert!(sent(&mut c).contains("<stream:stream"));
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(
        now,
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    assert_eq!(
        element(&sent(&mut c), "auth").attr("mechanism"),
        Some("PLAIN")
    );

    let mut c = Client::new(cfg(TlsPolicy::Required), now);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(now, FEATURES_AUTH.as_bytes());
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::TlsUnavailable))]
    );
}

#[test]
fn core_answers_ping_disco_and_unclaimed_iqs_and_counts_for_sm() {
    let now = Instant::now();
    let mut c = online(now);
    sent(&mut c);
    c.handle_bytes(
        now,
        b"<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>\
          <iq type='get' id='d1' from='bob@localhost/x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>\
          <iq type='set' id='u1' from='bob@localhost/x'><foo xmlns='urn:unknown'/></iq>\
          <message from='bob@localhost/x'><body>hi</body></message>\
          <r xmlns='urn:xmpp:sm:3'/>",
    );
    let out = sent(&mut c);
    assert!(
        out.contains("<iq type='result' id='p1' to='localhost'/>"),
        "{out}"
    );
    let disco = element(&out[out.find("id='d1'").expect("d1") - 20..], "iq");
    let q = disco.child("query", ns::DISCO_INFO).expect("query");
    assert!(crate::caps::features_of(q)
        .iter()
        .any(|f| f == ns::JINGLE_RTP_AUDIO));
    assert!(out.contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
    assert!(
        out.contains("<a xmlns='urn:xmpp:sm:3' h='4'/>"),
        "4 stanzas handled: {out}"
    );
    let evs = events(&mut c);
    assert_eq!(
        evs.len(),
        1,
        "only the message reaches the application: {evs:?}"
    );
}

#[test]
fn sm_acks_trim_and_resume_resends_the_rest() {
    let now = Instant::now();
    let mut c = online(now);
    sent(&mut c);
    for i in 0..3 {
        c.send(
            now,
            Element::new("message", ns::CLIENT)
                .with_attr("to", "bob@localhost")
                .with_attr("id", format!("m{i}")),
        );
    }
    sent(&mut c);
    // The ack request is timer driven below 5 unacked stanzas.
    let t = c.poll_timeout().expect("timer");
    assert!(t <= now + Duration::from_secs(2));
    c.handle_timeout(t);
    assert!(sent(&mut c).contains("<r xmlns='urn:xmpp:sm:3'/>"));
    c.handle_bytes(t, b"<a xmlns='urn:xmpp:sm:3' h='1'/>");
    assert_eq!(events(&mut c), vec![Event::Acked(1)]);
    let state = c.resume_state().expect("resumable");
    assert_eq!(state.id, "sm-1");
    assert_eq!(state.unacked.len(), 2);
    // A new connection resumes: the server saw m1 too, so only m2 goes out again.
    let mut conf = cfg(TlsPolicy::Disabled);
    conf.allow_plain_without_tls = true;
    conf.resume = Some(state);
    let mut r = Client::new(conf, now);
    r.handle_bytes(now, HDR.as_bytes());
    r.handle_bytes(
        now,
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
    );
    r.handle_bytes(now, b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    sent(&mut r);
    r.handle_bytes(now, HDR.as_bytes());
    r.handle_bytes(now, FEATURES_BIND.as_bytes());
    let out = sent(&mut r);
    assert!(
        out.contains("<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>"),
        "{out}"
    );
    r.handle_bytes(now, b"<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='2'/>");
    let out = sent(&mut r);
    assert!(!out.contains("id='m1'") && out.contains("id='m2'"), "{out}");
    assert!(events(&mut r).contains(&Event::Online {
        jid: Jid::parse("alice@localhost/r1").expect("jid"),
        resumed: true
    }));
}

#[test]
fn stream_errors_and_hostile_xml_close_the_stream() {
    let now = Instant::now();
    let mut c = Client::new(cfg(TlsPolicy::Disabled), now);
    c.handle_bytes(now, HDR.as_bytes());
    c.handle_bytes(
        now,
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    );
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::Stream(
            "host-unknown".into()
        )))]
    );
    let mut c = Client::new(cfg(TlsPolicy::Disabled), now);
    sent(&mut c);
    c.handle_bytes(now, b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>");
    let out = sent(&mut c);
    assert!(
        out.contains("<restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{out}"
    );
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::Xml(XmlError::Doctype)))]
    );
    // Negotiation that never finishes times out.
    let mut c = Client::new(cfg(TlsPolicy::Disabled), now);
    let t = c.poll_timeout().expect("deadline");
    c.handle_timeout(t);
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::Timeout))]
    );
}

#[test]
fn stanzas_sent_while_disconnected_wait_for_the_resume() {
    let now = Instant::now();
    let mut c = online(now);
    sent(&mut c);
    c.connection_lost();
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(ClientError::ConnectionLost))]
    );
    c.send(
        now,
        Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "late"),
    );
    assert_eq!(sent(&mut c), "", "nothing is written on a dead connection");
    let state = c.resume_state().expect("resumable");
    assert_eq!(state.unacked.len(), 1);
    assert_eq!(state.unacked[0].attr("id"), Some("late"));
    // Without XEP-0198 a stanza sent on a closed stream is simply gone.
    let mut plain = Client::new(cfg(TlsPolicy::Disabled), now);
    plain.connection_lost();
    plain.send(now, Element::new("message", ns::CLIENT));
    assert!(plain.resume_state().is_none());
}
