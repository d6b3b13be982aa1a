//! Client transaction timing in virtual time (RFC 8489 section 6.2.1).

// One real `Instant` serves as the origin; everything after it is virtual time.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use natter_stun::{
    Class, ClientTransaction, Message, MessageWriter, Method, TransactionId, TransactionState,
};

fn request(tid: TransactionId) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
        .add_fingerprint()
        .finish()
        .expect("a request encodes");
    buf
}

fn response(tid: TransactionId, class: Class) -> Vec<u8> {
    let mut buf = Vec::new();
    MessageWriter::new(&mut buf, Method::BINDING, class, tid)
        .finish()
        .expect("a response encodes");
    buf
}

/// Runs the transaction to its end without answers; returns send instants and end instant in ms.
fn run_silent(mut t: ClientTransaction, start: Instant) -> (Vec<u128>, u128) {
    let mut sent = Vec::new();
    let mut now = start;
    for _ in 0..100 {
        while t.poll_transmit().is_some() {
            sent.push((now - start).as_millis());
        }
        let Some(next) = t.poll_timeout() else {
            break;
        };
        now = next;
        t.handle_timeout(now);
    }
    assert_eq!(t.state(), TransactionState::TimedOut);
    (sent, (now - start).as_millis())
}

#[test]
fn udp_schedule_matches_rfc8489() {
    let start = Instant::now();
    let t = ClientTransaction::new(
        start,
        request(TransactionId([1; 12])),
        Duration::from_millis(500),
        7,
        16,
        false,
    );
    let (sent, end) = run_silent(t, start);
    assert_eq!(sent, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert_eq!(end, 39500);
}

#[test]
fn defaults_are_the_rfc_values() {
    let start = Instant::now();
    let t = ClientTransaction::with_defaults(start, request(TransactionId([1; 12])), false);
    let (sent, end) = run_silent(t, start);
    assert_eq!(sent.len(), 7);
    assert_eq!(end, 39500);
}

#[test]
fn reliable_transport_sends_once_and_waits_ti() {
    let start = Instant::now();
    let t = ClientTransaction::with_defaults(start, request(TransactionId([1; 12])), true);
    let (sent, end) = run_silent(t, start);
    assert_eq!(sent, [0]);
    assert_eq!(end, 39500);
}

#[test]
fn early_timeout_calls_do_nothing() {
    let start = Instant::now();
    let mut t = ClientTransaction::with_defaults(start, request(TransactionId([1; 12])), false);
    assert!(t.poll_transmit().is_some());
    t.handle_timeout(start + Duration::from_millis(499));
    assert!(t.poll_transmit().is_none());
    assert_eq!(t.poll_timeout(), Some(start + Duration::from_millis(500)));
    assert_eq!(t.sends(), 1);
}

#[test]
fn matching_response_completes_and_measures_rtt() {
    let start = Instant::now();
    let tid = TransactionId([2; 12]);
    let mut t = ClientTransaction::with_defaults(start, request(tid), false);
    assert_eq!(t.poll_transmit(), Some(&request(tid)[..]));

    let other = response(TransactionId([3; 12]), Class::Success);
    let at = start + Duration::from_millis(120);
    assert!(!t.handle_response(at, &Message::parse(&other).expect("parses")));
    assert_eq!(t.state(), TransactionState::Waiting);

    let ok = response(tid, Class::Success);
    assert!(t.handle_response(at, &Message::parse(&ok).expect("parses")));
    assert_eq!(t.state(), TransactionState::Succeeded);
    assert_eq!(t.rtt(), Some(Duration::from_millis(120)));
    assert_eq!(t.poll_timeout(), None);
    // A duplicate is not consumed again.
    assert!(!t.handle_response(at, &Message::parse(&ok).expect("parses")));
}

#[test]
fn error_response_fails_and_retransmitted_rtt_is_not_sampled() {
    let start = Instant::now();
    let tid = TransactionId([4; 12]);
    let mut t = ClientTransaction::with_defaults(start, request(tid), false);
    t.poll_transmit();
    t.handle_timeout(start + Duration::from_millis(500));
    assert!(t.poll_transmit().is_some());
    let err = response(tid, Class::Error);
    assert!(t.handle_response(
        start + Duration::from_millis(700),
        &Message::parse(&err).expect("parses")
    ));
    assert_eq!(t.state(), TransactionState::Failed);
    assert_eq!(t.rtt(), None);
}

#[test]
fn requests_with_same_tid_are_not_responses() {
    let start = Instant::now();
    let tid = TransactionId([6; 12]);
    let mut t = ClientTransaction::with_defaults(start, request(tid), false);
    let echo = request(tid);
    assert!(!t.handle_response(start, &Message::parse(&echo).expect("parses")));
}

#[test]
fn absurd_configuration_does_not_overflow() {
    let start = Instant::now();
    let mut t = ClientTransaction::new(
        start,
        request(TransactionId([8; 12])),
        Duration::from_secs(u64::MAX / 4),
        200,
        u32::MAX,
        false,
    );
    for _ in 0..300 {
        while t.poll_transmit().is_some() {}
        let Some(next) = t.poll_timeout() else {
            break;
        };
        t.handle_timeout(next);
    }
    assert_eq!(t.state(), TransactionState::TimedOut);
    assert_eq!(t.sends(), 200);
}
