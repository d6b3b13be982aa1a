//! UA core peer to peer (no proxy), virtual time: 2xx retransmission until
//! ACK (§13.3.1.4), giving up with BYE after 64*T1, OPTIONS/MESSAGE answers.

use std::time::{Duration, Instant};

use natter_sip::transaction::TimerConfig;
use natter_sip::ua::{UaConfig, UaEvent, UserAgent};
use natter_sip::{Message, Method};

fn ua(user: &str, local: &str, peer: &'static str, seed: u64) -> UserAgent<&'static str> {
    UserAgent::new(UaConfig {
        user: user.into(),
        domain: "example.test".into(),
        display: Some("Test User".into()),
        password: None,
        local: local.into(),
        transport: "UDP".into(),
        reliable: false,
        outbound: peer,
        timers: TimerConfig::default(),
        seed,
    })
}

fn drain(u: &mut UserAgent<&'static str>) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while let Some((_, b)) = u.poll_transmit() {
        v.push(b);
    }
    v
}

fn events(u: &mut UserAgent<&'static str>) -> Vec<UaEvent> {
    let mut v = Vec::new();
    while let Some(e) = u.poll_event() {
        v.push(e);
    }
    v
}

#[test]
fn unacked_2xx_is_retransmitted_then_bye() {
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "bob", 1);
    let mut bob = ua("bob", "192.0.2.2:5060", "alice", 2);
    let call = alice.invite(t0, "sip:bob@192.0.2.2", Some(b"offer".to_vec()));
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    let incoming = match events(&mut bob).as_slice() {
        [UaEvent::IncomingCall { call, body, .. }] => {
            assert_eq!(body, b"offer");
            *call
        }
        other => panic!("{other:?}"),
    };
    // 100 Trying from bob's transaction.
    let trying = drain(&mut bob);
    assert_eq!(trying.len(), 1);
    assert!(trying[0].starts_with(b"SIP/2.0 100 Trying"));
    bob.answer(t0, incoming, 200, Some(b"answer".to_vec()));
    let ok = drain(&mut bob);
    assert_eq!(ok.len(), 1);
    let ok_msg = Message::parse(&ok[0]).unwrap();
    assert_eq!(ok_msg.code(), Some(200));
    assert_eq!(&*ok_msg.body, b"answer");
    // alice gets the 200 and ACKs, but the ACK is lost.
    alice.handle(t0, "bob", &ok[0]);
    let ack = drain(&mut alice);
    assert_eq!(ack.len(), 1);
    assert_eq!(
        Message::parse(&ack[0]).unwrap().method(),
        Some(&Method::Ack)
    );
    assert_eq!(
        events(&mut alice),
        vec![UaEvent::CallAnswered {
            call,
            body: b"answer".to_vec()
        }]
    );
    // bob retransmits the 2xx: T1, 2T1, 4T1, then every T2, until 64*T1.
    let mut times = Vec::new();
    let mut bye = None;
    for _ in 0..100 {
        let Some(t) = bob.next_timeout() else { break };
        if t > t0 + Duration::from_secs(40) {
            break;
        }
        bob.on_timer(t);
        for b in drain(&mut bob) {
            let m = Message::parse(&b).unwrap().into_owned();
            if m.code() == Some(200) {
                times.push((t - t0).as_millis());
                // Each retransmission reaches alice, who re-sends the same ACK (lost too).
                alice.handle(t, "bob", &b);
                assert_eq!(drain(&mut alice), ack);
            } else if m.method() == Some(&Method::Bye) && bye.is_none() {
                bye = Some(((t - t0).as_millis(), m));
            }
        }
    }
    assert_eq!(
        times,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    let (at, bye) = bye.expect("BYE after 64*T1 without ACK");
    assert_eq!(at, 32_000);
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert!(events(&mut bob).contains(&UaEvent::CallClosed {
        call: incoming,
        code: 200
    }));
}

#[test]
fn ack_stops_retransmission_and_options_message_answered() {
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "bob", 3);
    let mut bob = ua("bob", "192.0.2.2:5060", "alice", 4);
    let call = alice.invite(t0, "sip:bob@192.0.2.2", None);
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    let incoming = match events(&mut bob).as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    drain(&mut bob);
    bob.answer(t0, incoming, 200, None);
    for b in drain(&mut bob) {
        alice.handle(t0, "bob", &b);
    }
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    assert_eq!(events(&mut bob), vec![UaEvent::CallAck { call: incoming }]);
    assert!(events(&mut alice).contains(&UaEvent::CallAnswered {
        call,
        body: Vec::new()
    }));
    // No more 2xx retransmissions.
    bob.on_timer(t0 + Duration::from_secs(5));
    assert!(drain(&mut bob)
        .iter()
        .all(|b| !b.starts_with(b"SIP/2.0 200")));
    // INFO in the dialog.
    let info = alice
        .info(t0, call, "application/dtmf-relay", b"Signal=5".to_vec())
        .unwrap();
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    assert_eq!(
        events(&mut bob),
        vec![UaEvent::InDialogRequest {
            call: incoming,
            method: "INFO".into(),
            body: b"Signal=5".to_vec()
        }]
    );
    for b in drain(&mut bob) {
        alice.handle(t0, "bob", &b);
    }
    assert!(
        matches!(events(&mut alice).as_slice(), [UaEvent::Response { req, code: 200, .. }] if *req == info)
    );
    // Out-of-dialog OPTIONS and MESSAGE.
    let o = alice.options(t0, "sip:bob@192.0.2.2");
    let m = alice.message(t0, "sip:bob@192.0.2.2", "text/plain", b"hello".to_vec());
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    let ev = events(&mut bob);
    assert_eq!(ev.len(), 1);
    assert!(
        matches!(&ev[0], UaEvent::MessageReceived { body, content_type, .. } if body == b"hello" && content_type.as_deref() == Some("text/plain"))
    );
    for b in drain(&mut bob) {
        alice.handle(t0, "bob", &b);
    }
    let ev = events(&mut alice);
    assert!(ev.iter().any(|e| matches!(e, UaEvent::Response { req, code: 200, msg } if *req == o && msg.header(natter_sip::HeaderName::Allow).is_some())));
    assert!(ev
        .iter()
        .any(|e| matches!(e, UaEvent::Response { req, code: 200, .. } if *req == m)));
}

fn answer_to(
    inv: &Message<'_>,
    code: u16,
    tag: &str,
    extra: &[(natter_sip::HeaderName, &str)],
) -> Vec<u8> {
    let mut r = Message::response_to(inv, code, None, Some(tag));
    r.remove(natter_sip::HeaderName::ContentLength);
    r.push(
        natter_sip::HeaderName::Contact,
        format!("<sip:bob@192.0.2.{}>", if tag == "b" { 3 } else { 2 }),
    );
    for (k, v) in extra {
        r.push(*k, v.to_string());
    }
    r.push(natter_sip::HeaderName::ContentLength, "0");
    r.to_bytes()
}

#[test]
fn reliable_provisional_gets_one_prack() {
    use natter_sip::HeaderName;
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "bob", 5);
    let _call = alice.invite(t0, "sip:bob@192.0.2.2", None);
    let inv = Message::parse(&drain(&mut alice)[0]).unwrap().into_owned();
    assert_eq!(inv.header(HeaderName::Supported), Some("100rel"));
    let ringing = answer_to(
        &inv,
        180,
        "a",
        &[(HeaderName::Require, "100rel"), (HeaderName::RSeq, "7")],
    );
    alice.handle(t0, "bob", &ringing);
    let out = drain(&mut alice);
    assert_eq!(out.len(), 1);
    let prack = Message::parse(&out[0]).unwrap();
    assert_eq!(prack.method(), Some(&Method::Prack));
    assert_eq!(prack.request_uri_str(), Some("sip:bob@192.0.2.2"));
    assert_eq!(prack.header(HeaderName::RAck), Some("7 1 INVITE"));
    assert_eq!(prack.cseq().unwrap().seq, 2);
    assert_eq!(prack.to().unwrap().tag(), Some("a"));
    // The same reliable 180 again: no second PRACK transaction.
    alice.handle(t0, "bob", &ringing);
    assert!(drain(&mut alice).is_empty());
    // A plain 183 without 100rel: no PRACK.
    alice.handle(t0, "bob", &answer_to(&inv, 183, "a", &[]));
    assert!(drain(&mut alice).is_empty());
}

#[test]
fn second_forked_2xx_is_acked_and_byed() {
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "proxy", 6);
    let call = alice.invite(t0, "sip:bob@example.test", None);
    let inv = Message::parse(&drain(&mut alice)[0]).unwrap().into_owned();
    alice.handle(t0, "proxy", &answer_to(&inv, 200, "a", &[]));
    let first = drain(&mut alice);
    assert_eq!(first.len(), 1);
    let ack_a = Message::parse(&first[0]).unwrap();
    assert_eq!(ack_a.method(), Some(&Method::Ack));
    assert_eq!(ack_a.request_uri_str(), Some("sip:bob@192.0.2.2"));
    assert!(events(&mut alice).contains(&UaEvent::CallAnswered {
        call,
        body: Vec::new()
    }));
    // Fork b answers too.
    alice.handle(t0, "proxy", &answer_to(&inv, 200, "b", &[]));
    let out: Vec<Message<'static>> = drain(&mut alice)
        .iter()
        .map(|b| Message::parse(b).unwrap().into_owned())
        .collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].method(), Some(&Method::Ack));
    assert_eq!(out[0].request_uri_str(), Some("sip:bob@192.0.2.3"));
    assert_eq!(out[0].to().unwrap().tag(), Some("b"));
    assert_eq!(out[1].method(), Some(&Method::Bye));
    assert_eq!(out[1].to().unwrap().tag(), Some("b"));
    // Fork a's retransmitted 2xx just gets its ACK again.
    alice.handle(t0, "proxy", &answer_to(&inv, 200, "a", &[]));
    assert_eq!(drain(&mut alice), first);
    assert!(
        events(&mut alice).is_empty(),
        "the established call is untouched"
    );
}

#[test]
fn reinvite_and_update_in_dialog() {
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "bob", 7);
    let mut bob = ua("bob", "192.0.2.2:5060", "alice", 8);
    let call = alice.invite(t0, "sip:bob@192.0.2.2", Some(b"o1".to_vec()));
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    let incoming = match events(&mut bob).as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    drain(&mut bob);
    bob.answer(t0, incoming, 200, Some(b"a1".to_vec()));
    let exchange = |from: &mut UserAgent<&'static str>,
                    to: &mut UserAgent<&'static str>,
                    who: &'static str| {
        for b in drain(from) {
            to.handle(t0, who, &b);
        }
    };
    exchange(&mut bob, &mut alice, "bob");
    exchange(&mut alice, &mut bob, "alice");
    events(&mut alice);
    assert_eq!(events(&mut bob), vec![UaEvent::CallAck { call: incoming }]);
    // re-INVITE from alice: bob answers 200 with its current SDP, alice ACKs.
    let req = alice.reinvite(t0, call, b"o2".to_vec()).unwrap();
    exchange(&mut alice, &mut bob, "alice");
    assert_eq!(
        events(&mut bob),
        vec![UaEvent::InDialogRequest {
            call: incoming,
            method: "INVITE".into(),
            body: b"o2".to_vec()
        }]
    );
    exchange(&mut bob, &mut alice, "bob");
    let ev = events(&mut alice);
    assert!(
        matches!(ev.as_slice(), [UaEvent::Response { req: r, code: 200, msg }] if *r == req && &*msg.body == b"a1")
    );
    let acks = drain(&mut alice);
    assert_eq!(acks.len(), 1);
    let ack = Message::parse(&acks[0]).unwrap();
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(
        ack.cseq().unwrap().seq,
        2,
        "ACK carries the re-INVITE's CSeq"
    );
    // UPDATE from bob.
    let up = bob.update(t0, incoming, b"o3".to_vec()).unwrap();
    exchange(&mut bob, &mut alice, "bob");
    assert_eq!(
        events(&mut alice),
        vec![UaEvent::InDialogRequest {
            call,
            method: "UPDATE".into(),
            body: b"o3".to_vec()
        }]
    );
    exchange(&mut alice, &mut bob, "alice");
    assert!(
        matches!(events(&mut bob).as_slice(), [UaEvent::Response { req: r, code: 200, .. }] if *r == up)
    );
}

#[test]
fn uas_reliable_provisional_prack_and_retransmission() {
    use natter_sip::HeaderName;
    let t0 = Instant::now();
    let mut alice = ua("alice", "192.0.2.1:5060", "bob", 9);
    let mut bob = ua("bob", "192.0.2.2:5060", "alice", 10);
    let call = alice.invite(t0, "sip:bob@192.0.2.2", None);
    for b in drain(&mut alice) {
        bob.handle(t0, "alice", &b);
    }
    let incoming = match events(&mut bob).as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    drain(&mut bob); // 100 Trying
    bob.answer_reliable(t0, incoming, 180, None);
    let out = drain(&mut bob);
    assert_eq!(out.len(), 1);
    let ringing = Message::parse(&out[0]).unwrap().into_owned();
    assert_eq!(ringing.header(HeaderName::Require), Some("100rel"));
    assert_eq!(ringing.header(HeaderName::RSeq), Some("1"));
    alice.handle(t0, "bob", &out[0]);
    assert!(events(&mut alice).contains(&UaEvent::CallRinging {
        call,
        code: 180,
        body: Vec::new()
    }));
    let prack = drain(&mut alice);
    assert_eq!(prack.len(), 1);
    bob.handle(t0, "alice", &prack[0]);
    let ok = drain(&mut bob);
    assert_eq!(ok.len(), 1);
    assert!(ok[0].starts_with(b"SIP/2.0 200 OK"));
    alice.handle(t0, "bob", &ok[0]);
    assert!(matches!(
        events(&mut alice).as_slice(),
        [UaEvent::Response { code: 200, .. }]
    ));
    // PRACKed: no more 180 retransmissions.
    for ms in [500u64, 1500, 3500] {
        bob.on_timer(t0 + Duration::from_millis(ms));
    }
    assert!(drain(&mut bob).is_empty());

    // Second call: the PRACK never arrives -> 180 retransmitted, then 500.
    let t1 = t0 + Duration::from_secs(100);
    let _call2 = alice.invite(t1, "sip:bob@192.0.2.2", None);
    for b in drain(&mut alice) {
        bob.handle(t1, "alice", &b);
    }
    let incoming2 = match events(&mut bob).as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    drain(&mut bob);
    bob.answer_reliable(t1, incoming2, 180, None);
    assert_eq!(drain(&mut bob).len(), 1);
    let mut resends = Vec::new();
    let mut final_code = None;
    for _ in 0..50 {
        let Some(t) = bob.next_timeout() else { break };
        if t > t1 + Duration::from_secs(40) {
            break;
        }
        bob.on_timer(t);
        for b in drain(&mut bob) {
            let m = Message::parse(&b).unwrap().into_owned();
            match m.code() {
                Some(180) => resends.push((t - t1).as_millis()),
                Some(c) if c >= 200 && final_code.is_none() => {
                    final_code = Some(((t - t1).as_millis(), c))
                }
                _ => {}
            }
        }
    }
    assert_eq!(resends, vec![500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(final_code, Some((32_000, 500)));
    assert!(events(&mut bob).contains(&UaEvent::CallClosed {
        call: incoming2,
        code: 500
    }));
}
