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
