//! Transaction state machines under virtual time: every timer is checked at
//! the exact instant it must fire, and retransmissions are counted.

use std::time::{Duration, Instant};

use natter_sip::transaction::{
    Action, Event, InviteClient, InviteClientState, InviteServer, InviteServerState,
    NonInviteClient, NonInviteClientState, NonInviteServer, NonInviteServerState, TimerConfig,
    TransactionLayer,
};
use natter_sip::Message;

const MS: Duration = Duration::from_millis(1);

fn invite(branch: &str) -> Message<'static> {
    let s = format!(
        "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch={branch}\r\n\
Max-Forwards: 70\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.example.com>\r\n\
Content-Length: 0\r\n\r\n"
    );
    Message::parse(s.as_bytes())
        .expect("fixture parses")
        .into_owned()
}

fn request(method: &str, branch: &str) -> Message<'static> {
    let s = format!(
        "{method} sip:registrar.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch={branch}\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Bob <sip:bob@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 {method}\r\n\
Content-Length: 0\r\n\r\n"
    );
    Message::parse(s.as_bytes())
        .expect("fixture parses")
        .into_owned()
}

fn response(req: &Message<'_>, code: u16) -> Message<'static> {
    Message::response_to(req, code, None, Some("totag1"))
}

fn sends(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Send(_)))
        .count()
}

/// Step through every deadline until `end`, recording (offset ms, actions).
fn run_timers<F, D>(
    t0: Instant,
    end: Instant,
    mut deadline: D,
    mut fire: F,
) -> Vec<(u128, Vec<Action>)>
where
    D: FnMut() -> Option<Instant>,
    F: FnMut(Instant) -> Vec<Action>,
{
    let mut log = Vec::new();
    for _ in 0..1000 {
        let Some(t) = deadline() else { break };
        if t > end {
            break;
        }
        log.push(((t - t0).as_millis(), fire(t)));
    }
    log
}

#[test]
fn invite_client_timer_a_doubles_until_timer_b() {
    let t0 = Instant::now();
    let (tx, first) = InviteClient::new(t0, invite("z9hG4bKa"), false, TimerConfig::default());
    assert_eq!(first, vec![Action::Send(invite("z9hG4bKa").to_bytes())]);
    let tx = std::cell::RefCell::new(tx);
    let log = run_timers(
        t0,
        t0 + Duration::from_secs(100),
        || tx.borrow().next_deadline(),
        |t| tx.borrow_mut().on_timer(t),
    );
    let times: Vec<u128> = log.iter().map(|(t, _)| *t).collect();
    // A at T1, 3T1, 7T1, 15T1, 31T1, 63T1 (=31.5 s); B at 64*T1 = 32 s.
    assert_eq!(times, vec![500, 1500, 3500, 7500, 15500, 31500, 32000]);
    for (_, a) in &log[..6] {
        assert_eq!(sends(a), 1);
    }
    assert_eq!(log[6].1, vec![Action::Timeout, Action::Terminated]);
    assert_eq!(tx.borrow().retransmissions(), 6);
    assert_eq!(tx.borrow().state(), InviteClientState::Terminated);
}

#[test]
fn invite_client_reliable_has_no_retransmissions() {
    let t0 = Instant::now();
    let (mut tx, _) = InviteClient::new(t0, invite("z9hG4bKa"), true, TimerConfig::default());
    assert_eq!(tx.next_deadline(), Some(t0 + 32_000 * MS));
    assert_eq!(tx.on_timer(t0 + 31_999 * MS), vec![]);
    assert_eq!(
        tx.on_timer(t0 + 32_000 * MS),
        vec![Action::Timeout, Action::Terminated]
    );
    assert_eq!(tx.retransmissions(), 0);
}

#[test]
fn invite_client_non_2xx_acks_and_waits_timer_d() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKb");
    let (mut tx, _) = InviteClient::new(t0, inv.clone(), false, TimerConfig::default());
    let ringing = response(&inv, 180);
    let a = tx.on_response(t0 + 100 * MS, &ringing);
    assert!(matches!(&a[..], [Action::Deliver(m)] if m.code() == Some(180)));
    assert_eq!(tx.state(), InviteClientState::Proceeding);
    assert_eq!(tx.next_deadline(), None, "A and B stop in Proceeding");
    let busy = response(&inv, 486);
    let a = tx.on_response(t0 + 200 * MS, &busy);
    let expected_ack = "ACK sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bKb\r\n\
Max-Forwards: 70\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
To: Bob <sip:bob@example.com>;tag=totag1\r\n\
CSeq: 314159 ACK\r\n\
Content-Length: 0\r\n\r\n";
    assert_eq!(a.len(), 2);
    assert_eq!(a[0], Action::Send(expected_ack.as_bytes().to_vec()));
    assert!(matches!(&a[1], Action::Deliver(m) if m.code() == Some(486)));
    assert_eq!(tx.state(), InviteClientState::Completed);
    // Retransmitted 486: ACK again, nothing passed up.
    let a = tx.on_response(t0 + 300 * MS, &busy);
    assert_eq!(a, vec![Action::Send(expected_ack.as_bytes().to_vec())]);
    // Timer D = 32 s after entering Completed.
    assert_eq!(tx.next_deadline(), Some(t0 + 32_200 * MS));
    assert_eq!(tx.on_timer(t0 + 32_199 * MS), vec![]);
    assert_eq!(tx.on_timer(t0 + 32_200 * MS), vec![Action::Terminated]);
}

#[test]
fn invite_client_reliable_non_2xx_terminates_at_once() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKb");
    let (mut tx, _) = InviteClient::new(t0, inv.clone(), true, TimerConfig::default());
    let a = tx.on_response(t0, &response(&inv, 603));
    assert_eq!(a.len(), 3);
    assert_eq!(a[2], Action::Terminated);
}

#[test]
fn invite_client_2xx_accepted_state_rfc6026() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKc");
    let (mut tx, _) = InviteClient::new(t0, inv.clone(), false, TimerConfig::default());
    // A fires once before the answer.
    assert_eq!(sends(&tx.on_timer(t0 + 500 * MS)), 1);
    let ok = response(&inv, 200);
    let a = tx.on_response(t0 + 700 * MS, &ok);
    assert!(matches!(&a[..], [Action::Deliver(m)] if m.code() == Some(200)));
    assert_eq!(tx.state(), InviteClientState::Accepted);
    // A retransmitted (or forked) 2xx is passed up again; no ACK from the transaction.
    let a = tx.on_response(t0 + 900 * MS, &ok);
    assert!(matches!(&a[..], [Action::Deliver(_)]));
    // Timer M = 64*T1.
    assert_eq!(tx.next_deadline(), Some(t0 + 32_700 * MS));
    assert_eq!(tx.on_timer(t0 + 32_700 * MS), vec![Action::Terminated]);
    assert_eq!(tx.retransmissions(), 1);
}

#[test]
fn invite_client_transport_error() {
    let t0 = Instant::now();
    let (mut tx, _) = InviteClient::new(t0, invite("z9hG4bKd"), false, TimerConfig::default());
    assert_eq!(
        tx.on_transport_error(),
        vec![Action::TransportError, Action::Terminated]
    );
    assert_eq!(tx.next_deadline(), None);
}

#[test]
fn non_invite_client_timer_e_caps_at_t2() {
    let t0 = Instant::now();
    let (tx, first) = NonInviteClient::new(
        t0,
        request("REGISTER", "z9hG4bKe"),
        false,
        TimerConfig::default(),
    );
    assert_eq!(sends(&first), 1);
    let tx = std::cell::RefCell::new(tx);
    let log = run_timers(
        t0,
        t0 + Duration::from_secs(100),
        || tx.borrow().next_deadline(),
        |t| tx.borrow_mut().on_timer(t),
    );
    let times: Vec<u128> = log.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500, 32000]
    );
    assert_eq!(tx.borrow().retransmissions(), 10);
    assert_eq!(log[10].1, vec![Action::Timeout, Action::Terminated]);
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKf");
    let (mut tx, _) = NonInviteClient::new(t0, req.clone(), false, TimerConfig::default());
    assert_eq!(sends(&tx.on_timer(t0 + 500 * MS)), 1); // next E at 1.5 s
    let a = tx.on_response(t0 + 600 * MS, &response(&req, 100));
    assert!(matches!(&a[..], [Action::Deliver(_)]));
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
    let mut fired = Vec::new();
    for _ in 0..20 {
        let Some(t) = tx.next_deadline() else { break };
        let a = tx.on_timer(t);
        fired.push(((t - t0).as_millis(), sends(&a)));
        if a.contains(&Action::Terminated) {
            break;
        }
    }
    // 1.5 s (scheduled before the 1xx), then every T2 = 4 s, F at 32 s.
    assert_eq!(
        fired,
        vec![
            (1500, 1),
            (5500, 1),
            (9500, 1),
            (13500, 1),
            (17500, 1),
            (21500, 1),
            (25500, 1),
            (29500, 1),
            (32000, 0)
        ]
    );
}

#[test]
fn non_invite_client_final_then_timer_k() {
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKg");
    let (mut tx, _) = NonInviteClient::new(t0, req.clone(), false, TimerConfig::default());
    let ok = response(&req, 200);
    let a = tx.on_response(t0 + 50 * MS, &ok);
    assert!(matches!(&a[..], [Action::Deliver(m)] if m.code() == Some(200)));
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    assert!(
        tx.on_response(t0 + 60 * MS, &ok).is_empty(),
        "retransmissions absorbed"
    );
    assert_eq!(tx.next_deadline(), Some(t0 + 5050 * MS), "K = T4");
    assert_eq!(tx.on_timer(t0 + 5050 * MS), vec![Action::Terminated]);
    // Reliable: K = 0.
    let (mut tx, _) = NonInviteClient::new(t0, req.clone(), true, TimerConfig::default());
    let a = tx.on_response(t0, &ok);
    assert_eq!(a.last(), Some(&Action::Terminated));
}

#[test]
fn custom_timer_values() {
    let cfg = TimerConfig {
        t1: 100 * MS,
        t2: 300 * MS,
        t4: 1000 * MS,
    };
    let t0 = Instant::now();
    let (tx, _) = NonInviteClient::new(t0, request("OPTIONS", "z9hG4bKh"), false, cfg);
    let tx = std::cell::RefCell::new(tx);
    let log = run_timers(
        t0,
        t0 + Duration::from_secs(100),
        || tx.borrow().next_deadline(),
        |t| tx.borrow_mut().on_timer(t),
    );
    let times: Vec<u128> = log.iter().map(|(t, _)| *t).collect();
    let mut expected = vec![100, 300, 600];
    let mut t = 600;
    while t + 300 < 6400 {
        t += 300;
        expected.push(t);
    }
    expected.push(6400);
    assert_eq!(times, expected);
}

#[test]
fn invite_server_trying_then_failure_timer_g_and_h() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKi");
    let (tx, first) = InviteServer::new(t0, inv.clone(), false, TimerConfig::default(), true);
    let trying = response(&inv, 100);
    // 100 Trying carries no To tag.
    let expected_trying = Message::response_to(&inv, 100, None, None).to_bytes();
    assert_eq!(first, vec![Action::Send(expected_trying.clone())]);
    assert!(!String::from_utf8_lossy(&expected_trying).contains("tag=totag1"));
    let _ = trying;
    let tx = std::cell::RefCell::new(tx);
    // Retransmitted INVITE in Proceeding: the last provisional again.
    assert_eq!(
        tx.borrow_mut().on_request(t0 + 10 * MS, &inv),
        vec![Action::Send(expected_trying)]
    );
    let busy = response(&inv, 486);
    let a = tx.borrow_mut().send_response(t0 + 1000 * MS, &busy);
    assert_eq!(a, vec![Action::Send(busy.to_bytes())]);
    assert_eq!(tx.borrow().state(), InviteServerState::Completed);
    assert_eq!(
        tx.borrow_mut().on_request(t0 + 1100 * MS, &inv),
        vec![Action::Send(busy.to_bytes())]
    );
    let log = run_timers(
        t0,
        t0 + Duration::from_secs(100),
        || tx.borrow().next_deadline(),
        |t| tx.borrow_mut().on_timer(t),
    );
    let times: Vec<u128> = log.iter().map(|(t, _)| *t).collect();
    // G: T1, 2T1, 4T1, then T2 = 4 s; H at 64*T1 after the final response.
    assert_eq!(
        times,
        vec![1500, 2500, 4500, 8500, 12500, 16500, 20500, 24500, 28500, 32500, 33000]
    );
    assert_eq!(tx.borrow().retransmissions(), 10);
    assert_eq!(log[10].1, vec![Action::Timeout, Action::Terminated]);
}

#[test]
fn invite_server_ack_confirms_and_timer_i() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKj");
    let (mut tx, first) = InviteServer::new(t0, inv.clone(), false, TimerConfig::default(), false);
    assert!(first.is_empty());
    tx.send_response(t0, &response(&inv, 404));
    assert_eq!(sends(&tx.on_timer(t0 + 500 * MS)), 1);
    let ack = natter_sip::transaction::build_ack(&inv, &response(&inv, 404));
    assert!(tx.on_request(t0 + 600 * MS, &ack).is_empty());
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert!(
        tx.on_request(t0 + 700 * MS, &ack).is_empty(),
        "ACK retransmission absorbed"
    );
    assert_eq!(tx.next_deadline(), Some(t0 + 5600 * MS), "I = T4");
    assert_eq!(tx.on_timer(t0 + 5600 * MS), vec![Action::Terminated]);
    assert_eq!(tx.retransmissions(), 1);
}

#[test]
fn invite_server_2xx_accepted_rfc6026() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKk");
    let (mut tx, _) = InviteServer::new(t0, inv.clone(), false, TimerConfig::default(), true);
    let ok = response(&inv, 200);
    assert_eq!(
        tx.send_response(t0 + 10 * MS, &ok),
        vec![Action::Send(ok.to_bytes())]
    );
    assert_eq!(tx.state(), InviteServerState::Accepted);
    assert!(
        tx.on_request(t0 + 20 * MS, &inv).is_empty(),
        "INVITE retransmission absorbed"
    );
    assert_eq!(
        tx.send_response(t0 + 30 * MS, &ok),
        vec![Action::Send(ok.to_bytes())],
        "TU 2xx retransmission"
    );
    let ack = request("ACK", "z9hG4bKk");
    assert!(matches!(
        &tx.on_request(t0 + 40 * MS, &ack)[..],
        [Action::Deliver(_)]
    ));
    assert_eq!(tx.next_deadline(), Some(t0 + 32_010 * MS), "L = 64*T1");
    assert_eq!(tx.on_timer(t0 + 32_010 * MS), vec![Action::Terminated]);
}

#[test]
fn invite_server_reliable_final_no_timer_g() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKl");
    let (mut tx, _) = InviteServer::new(t0, inv.clone(), true, TimerConfig::default(), true);
    tx.send_response(t0, &response(&inv, 500));
    assert_eq!(
        tx.next_deadline(),
        Some(t0 + 32_000 * MS),
        "only H on reliable transports"
    );
    let ack = natter_sip::transaction::build_ack(&inv, &response(&inv, 500));
    assert_eq!(
        tx.on_request(t0 + MS, &ack),
        vec![Action::Terminated],
        "I = 0 when reliable"
    );
}

#[test]
fn invite_server_transport_error() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKm");
    let (mut tx, _) = InviteServer::new(t0, inv, false, TimerConfig::default(), true);
    assert_eq!(
        tx.on_transport_error(),
        vec![Action::TransportError, Action::Terminated]
    );
}

#[test]
fn non_invite_server_states_and_timer_j() {
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKn");
    let mut tx = NonInviteServer::new(t0, false, TimerConfig::default());
    assert!(
        tx.on_request(t0, &req).is_empty(),
        "Trying absorbs retransmissions"
    );
    let prov = response(&req, 100);
    assert_eq!(
        tx.send_response(t0 + 10 * MS, &prov),
        vec![Action::Send(prov.to_bytes())]
    );
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    assert_eq!(
        tx.on_request(t0 + 20 * MS, &req),
        vec![Action::Send(prov.to_bytes())]
    );
    let ok = response(&req, 200);
    assert_eq!(
        tx.send_response(t0 + 30 * MS, &ok),
        vec![Action::Send(ok.to_bytes())]
    );
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    assert_eq!(
        tx.on_request(t0 + 40 * MS, &req),
        vec![Action::Send(ok.to_bytes())]
    );
    assert!(
        tx.send_response(t0 + 50 * MS, &response(&req, 500))
            .is_empty(),
        "final is final"
    );
    assert_eq!(tx.next_deadline(), Some(t0 + 32_030 * MS));
    assert_eq!(tx.on_timer(t0 + 32_029 * MS), vec![]);
    assert_eq!(tx.on_timer(t0 + 32_030 * MS), vec![Action::Terminated]);
    // Reliable: J = 0.
    let mut tx = NonInviteServer::new(t0, true, TimerConfig::default());
    assert_eq!(
        tx.send_response(t0, &ok),
        vec![Action::Send(ok.to_bytes()), Action::Terminated]
    );
}

type Layer = TransactionLayer<&'static str>;

#[test]
fn layer_matches_by_branch_and_method() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), true);
    let inv = invite("z9hG4bKlayer1");
    let ev = layer.on_message(t0, "alice", false, inv.clone());
    let tx = match &ev[0] {
        Event::Request { tx, from, msg } => {
            assert_eq!(*from, "alice");
            assert_eq!(msg, &inv);
            *tx
        }
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(&ev[1], Event::Send { to: "alice", .. }),
        "auto 100 Trying"
    );
    // Retransmission matches the same transaction.
    let ev = layer.on_message(t0 + 10 * MS, "alice", false, inv.clone());
    assert!(matches!(&ev[..], [Event::Send { tx: t, .. }] if *t == tx));
    // CANCEL is its own transaction but finds its target.
    let mut cancel = inv.clone();
    cancel.start = natter_sip::StartLine::Request {
        method: natter_sip::Method::Cancel,
        uri: "sip:bob@example.com".into(),
    };
    cancel.set(natter_sip::HeaderName::CSeq, "314159 CANCEL");
    assert_eq!(layer.find_cancel_target(&cancel), Some(tx));
    let ev = layer.on_message(t0 + 20 * MS, "alice", false, cancel);
    let cancel_tx = match &ev[..] {
        [Event::Request { tx, .. }] => *tx,
        other => panic!("{other:?}"),
    };
    assert_ne!(cancel_tx, tx);
    assert_eq!(layer.len(), 2);
    // Different sent-by with the same branch is a different transaction.
    let mut other = inv.clone();
    other.set(
        natter_sip::HeaderName::Via,
        "SIP/2.0/UDP elsewhere.example.com;branch=z9hG4bKlayer1",
    );
    let ev = layer.on_message(t0, "mallory", false, other);
    assert!(matches!(&ev[0], Event::Request { tx: t, .. } if *t != tx));
}

#[test]
fn layer_rfc2543_fallback_and_ack_to_tag() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), false);
    let inv = invite("oldbranch1");
    let tx = match &layer.on_message(t0, "old", false, inv.clone())[..] {
        [Event::Request { tx, .. }] => *tx,
        other => panic!("{other:?}"),
    };
    // Same message again: retransmission (no provisional yet, absorbed).
    assert!(layer.on_message(t0, "old", false, inv.clone()).is_empty());
    let busy = response(&inv, 486);
    layer.send_response(t0, tx, &busy);
    // ACK with the wrong To tag does not match.
    let mut bad_ack = natter_sip::transaction::build_ack(&inv, &busy);
    bad_ack.set(
        natter_sip::HeaderName::To,
        "Bob <sip:bob@example.com>;tag=other",
    );
    assert!(matches!(
        &layer.on_message(t0, "old", false, bad_ack)[..],
        [Event::Stray { .. }]
    ));
    // The right ACK confirms the transaction (absorbed, no event).
    let ack = natter_sip::transaction::build_ack(&inv, &busy);
    assert!(layer.on_message(t0, "old", false, ack).is_empty());
    // Timer I then removes it.
    let ev = layer.on_timer(t0 + 5000 * MS);
    assert_eq!(ev, vec![Event::Terminated { tx }]);
    assert!(layer.is_empty());
}

#[test]
fn layer_client_timers_and_stray_responses() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), false);
    let req = request("OPTIONS", "z9hG4bKcl1");
    let (tx, ev) = layer.send_request(t0, "bob", false, req.clone());
    assert_eq!(
        ev,
        vec![Event::Send {
            tx,
            to: "bob",
            bytes: req.to_bytes()
        }]
    );
    assert_eq!(layer.next_deadline(), Some(t0 + 500 * MS));
    assert_eq!(layer.on_timer(t0 + 499 * MS), vec![]);
    assert_eq!(
        layer.on_timer(t0 + 500 * MS),
        vec![Event::Send {
            tx,
            to: "bob",
            bytes: req.to_bytes()
        }]
    );
    // A response for another branch is stray.
    let stray = response(&request("OPTIONS", "z9hG4bKzzz"), 200);
    assert!(matches!(
        &layer.on_message(t0, "bob", false, stray)[..],
        [Event::Stray { from: "bob", .. }]
    ));
    // The right response is delivered, then K ends the transaction.
    let ok = response(&req, 200);
    let ev = layer.on_message(t0 + 600 * MS, "bob", false, ok.clone());
    assert_eq!(ev, vec![Event::Response { tx, msg: ok }]);
    assert_eq!(
        layer.on_timer(t0 + 1500 * MS),
        vec![],
        "stale E entry ignored"
    );
    assert_eq!(
        layer.on_timer(t0 + 5600 * MS),
        vec![Event::Terminated { tx }]
    );
    assert!(layer.is_empty());
    // A 2xx ACK with a fresh branch is stray (handled by the TU / proxy core).
    let ack = request("ACK", "z9hG4bKnew");
    assert!(matches!(
        &layer.on_message(t0, "alice", false, ack)[..],
        [Event::Stray { .. }]
    ));
}

#[test]
fn layer_timeout_and_transport_error_events() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), false);
    let (tx, _) = layer.send_request(t0, "bob", true, invite("z9hG4bKto"));
    assert_eq!(
        layer.on_timer(t0 + 32_000 * MS),
        vec![Event::Timeout { tx }, Event::Terminated { tx }]
    );
    let (tx, _) = layer.send_request(t0, "bob", false, request("MESSAGE", "z9hG4bKte"));
    assert_eq!(
        layer.transport_error(tx),
        vec![Event::TransportError { tx }, Event::Terminated { tx }]
    );
    assert!(layer.is_empty());
}

#[test]
fn reliable_non_invite_client_only_timer_f() {
    let t0 = Instant::now();
    let (mut tx, first) = NonInviteClient::new(
        t0,
        request("OPTIONS", "z9hG4bKrel"),
        true,
        TimerConfig::default(),
    );
    assert_eq!(sends(&first), 1);
    assert_eq!(tx.next_deadline(), Some(t0 + 32_000 * MS));
    assert_eq!(
        tx.on_timer(t0 + 32_000 * MS),
        vec![Action::Timeout, Action::Terminated]
    );
    assert_eq!(tx.retransmissions(), 0);
}

#[test]
fn invite_client_custom_t1_scales_every_timer() {
    let cfg = TimerConfig {
        t1: 100 * MS,
        t2: 400 * MS,
        t4: 500 * MS,
    };
    let t0 = Instant::now();
    let (tx, _) = InviteClient::new(t0, invite("z9hG4bKct"), false, cfg);
    let tx = std::cell::RefCell::new(tx);
    let log = run_timers(
        t0,
        t0 + Duration::from_secs(100),
        || tx.borrow().next_deadline(),
        |t| tx.borrow_mut().on_timer(t),
    );
    let times: Vec<u128> = log.iter().map(|(t, _)| *t).collect();
    // A is not capped by T2 for INVITE: 100, 300, 700, 1500, 3100, then B at 6400.
    assert_eq!(times, vec![100, 300, 700, 1500, 3100, 6300, 6400]);
    // Timer D stays at least 32 s even with a small T1 (§17.1.1.2).
    let inv = invite("z9hG4bKct2");
    let (mut tx, _) = InviteClient::new(t0, inv.clone(), false, cfg);
    tx.on_response(t0, &response(&inv, 404));
    assert_eq!(tx.next_deadline(), Some(t0 + 32_000 * MS));
}

#[test]
fn invite_server_reliable_2xx_waits_timer_l() {
    let t0 = Instant::now();
    let inv = invite("z9hG4bKrl");
    let (mut tx, _) = InviteServer::new(t0, inv.clone(), true, TimerConfig::default(), true);
    let ok = response(&inv, 200);
    assert_eq!(tx.send_response(t0, &ok), vec![Action::Send(ok.to_bytes())]);
    assert_eq!(tx.next_deadline(), Some(t0 + 32_000 * MS));
    assert_eq!(
        tx.on_transport_error(),
        vec![Action::TransportError],
        "Accepted survives transport errors"
    );
    assert_eq!(tx.on_timer(t0 + 32_000 * MS), vec![Action::Terminated]);
}

/// A completed non-INVITE server transaction on UDP keeps only its response:
/// retransmissions get the same bytes (from the retransmission's source),
/// the layer counts it until Timer J, then it ends and the same request is
/// new again.
#[test]
fn layer_holds_completed_non_invite_until_timer_j() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), true);
    let mut txs = Vec::new();
    for i in 0..3 {
        let req = request("REGISTER", &format!("z9hG4bKheld{i}"));
        let tx = match &layer.on_message(t0, "ua", false, req.clone())[..] {
            [Event::Request { tx, .. }] => *tx,
            other => panic!("{other:?}"),
        };
        let ok = response(&req, 200);
        assert_eq!(
            layer.send_response(t0 + MS, tx, &ok),
            vec![Event::Send {
                tx,
                to: "ua",
                bytes: ok.to_bytes()
            }]
        );
        // A second final response is ignored (Completed).
        assert_eq!(
            layer.send_response(t0 + MS, tx, &response(&req, 500)),
            vec![]
        );
        txs.push((tx, req, ok));
    }
    assert_eq!(layer.len(), 3);
    // Timer J, plus the slack that groups the expiries of held responses.
    assert_eq!(
        layer.next_deadline(),
        Some(t0 + MS + 32_000 * MS + 100 * MS)
    );
    let (tx1, req1, ok1) = &txs[1];
    assert_eq!(
        layer.on_message(t0 + 1000 * MS, "ua2", false, req1.clone()),
        vec![Event::Send {
            tx: *tx1,
            to: "ua2",
            bytes: ok1.to_bytes()
        }]
    );
    assert_eq!(layer.on_timer(t0 + 32_000 * MS), vec![]);
    let ended = layer.on_timer(t0 + 32_001 * MS);
    let want: Vec<_> = txs
        .iter()
        .map(|(tx, _, _)| Event::Terminated { tx: *tx })
        .collect();
    assert_eq!(ended, want);
    assert!(layer.is_empty());
    assert_eq!(layer.next_deadline(), None);
    assert!(matches!(
        &layer.on_message(t0 + 32_002 * MS, "ua", false, req1.clone())[..],
        [Event::Request { .. }]
    ));
}

/// Many held responses span several chunks; each is answered with its own
/// bytes and they all end at Timer J.
#[test]
fn layer_holds_many_responses_across_chunks() {
    let t0 = Instant::now();
    let mut layer = Layer::new(TimerConfig::default(), true);
    let mut all = Vec::new();
    for i in 0..3000 {
        let req = request("OPTIONS", &format!("z9hG4bKmany{i}"));
        let tx = match &layer.on_message(t0, "ua", false, req.clone())[..] {
            [Event::Request { tx, .. }] => *tx,
            other => panic!("{other:?}"),
        };
        let ok = response(&req, 200);
        layer.send_response(t0 + i * MS / 100, tx, &ok);
        all.push((tx, req, ok));
    }
    for (tx, req, ok) in all.iter().step_by(97) {
        assert_eq!(
            layer.on_message(t0 + 100 * MS, "ua", false, req.clone()),
            vec![Event::Send {
                tx: *tx,
                to: "ua",
                bytes: ok.to_bytes()
            }]
        );
    }
    assert_eq!(layer.len(), 3000);
    let ended = layer.on_timer(t0 + 40_000 * MS);
    assert_eq!(ended.len(), 3000);
    assert!(layer.is_empty());
}

#[test]
fn stateless_final_response_drops_the_transaction() {
    let t0 = Instant::now();
    let mut layer: TransactionLayer<&str> = TransactionLayer::new(TimerConfig::default(), false);
    let req = request("REGISTER", "z9hG4bKstateless");
    let tx = match &layer.on_message(t0, "alice", false, req.clone())[..] {
        [Event::Request { tx, .. }] => *tx,
        other => panic!("{other:?}"),
    };
    let ev = layer.send_response_stateless(t0, tx, &response(&req, 401));
    assert!(
        matches!(&ev[..], [Event::Send { to: "alice", .. }, Event::Terminated { tx: t }] if *t == tx)
    );
    assert!(layer.is_empty());
    assert_eq!(layer.next_deadline(), None, "nothing waits for Timer J");
    // The retransmission is a new request, not absorbed by a held answer.
    let ev = layer.on_message(t0 + 500 * MS, "alice", false, req.clone());
    let again = match &ev[..] {
        [Event::Request { tx, .. }] => *tx,
        other => panic!("{other:?}"),
    };
    // A provisional answer, or a second final one, goes the stateful way.
    assert_eq!(
        layer
            .send_response_stateless(t0, again, &response(&req, 100))
            .len(),
        1
    );
    assert_eq!(layer.len(), 1);
    let ev = layer.send_response_stateless(t0, again, &response(&req, 200));
    assert!(matches!(
        &ev[..],
        [Event::Send { .. }, Event::Terminated { .. }]
    ));
    assert!(layer
        .send_response_stateless(t0, again, &response(&req, 200))
        .is_empty());
}
