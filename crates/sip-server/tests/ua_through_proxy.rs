//! Two natter user agents (the UA core from natter-sip) register with digest
//! auth and call each other through the registrar/proxy, all in memory with
//! virtual time: REGISTER 401 retry, INVITE 407 retry, ringing, answer, ACK,
//! MESSAGE, BYE, registration refresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_sip::transaction::TimerConfig;
use natter_sip::ua::{UaConfig, UaEvent, UserAgent};
use natter_sip_server::{
    MemoryBindings, Mode, ServerConfig, SipServer, StaticCredentials, Transport,
};

const PROXY: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5071";
const BOB: &str = "127.0.0.1:5072";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

struct World {
    server: SipServer,
    alice: UserAgent<SocketAddr>,
    bob: UserAgent<SocketAddr>,
    now: Instant,
    alice_events: Vec<UaEvent>,
    bob_events: Vec<UaEvent>,
    messages: usize,
}

fn ua(user: &str, pw: &str, local: &str, seed: u64) -> UserAgent<SocketAddr> {
    UserAgent::new(UaConfig {
        user: user.into(),
        domain: "natter.test".into(),
        display: None,
        password: Some(pw.into()),
        local: local.into(),
        transport: "UDP".into(),
        reliable: false,
        outbound: addr(PROXY),
        timers: TimerConfig::default(),
        seed,
    })
}

impl World {
    fn new() -> World {
        let now = Instant::now();
        let cfg = ServerConfig::new("natter.test", (Transport::Udp, addr(PROXY)));
        let creds = StaticCredentials::new()
            .with_user("alice", "apw")
            .with_user("bob", "bpw");
        let server = SipServer::new(cfg, Arc::new(creds), Arc::new(MemoryBindings::new()), now);
        World {
            server,
            alice: ua("alice", "apw", ALICE, 1),
            bob: ua("bob", "bpw", BOB, 2),
            now,
            alice_events: Vec::new(),
            bob_events: Vec::new(),
            messages: 0,
        }
    }

    /// Deliver everything in flight until nothing moves (bounded).
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for (who, from) in [(0, ALICE), (1, BOB)] {
                loop {
                    let t = if who == 0 {
                        self.alice.poll_transmit()
                    } else {
                        self.bob.poll_transmit()
                    };
                    let Some((to, bytes)) = t else { break };
                    assert_eq!(to, addr(PROXY));
                    moved = true;
                    self.messages += 1;
                    let out = self
                        .server
                        .handle(self.now, Transport::Udp, addr(from), &bytes);
                    for tr in out.transmits {
                        self.messages += 1;
                        if tr.to.addr == addr(ALICE) {
                            self.alice.handle(self.now, addr(PROXY), &tr.bytes);
                        } else if tr.to.addr == addr(BOB) {
                            self.bob.handle(self.now, addr(PROXY), &tr.bytes);
                        } else {
                            panic!("unexpected destination {:?}", tr.to);
                        }
                    }
                }
            }
            while let Some(e) = self.alice.poll_event() {
                self.alice_events.push(e);
            }
            while let Some(e) = self.bob.poll_event() {
                self.bob_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..10_000 {
            let next = [
                self.alice.next_timeout(),
                self.bob.next_timeout(),
                self.server.on_timer(self.now).next_timeout,
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    self.alice.on_timer(self.now);
                    self.bob.on_timer(self.now);
                    let out = self.server.on_timer(self.now);
                    for tr in out.transmits {
                        if tr.to.addr == addr(ALICE) {
                            self.alice.handle(self.now, addr(PROXY), &tr.bytes);
                        } else if tr.to.addr == addr(BOB) {
                            self.bob.handle(self.now, addr(PROXY), &tr.bytes);
                        }
                    }
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
        self.pump();
    }
}

#[test]
fn register_call_message_bye_and_refresh() {
    let mut w = World::new();
    w.alice.register(w.now, 600);
    w.bob.register(w.now, 600);
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::Registration {
            registered: true,
            code: 200,
            expires: 600
        }]
    );
    assert_eq!(
        w.bob_events,
        vec![UaEvent::Registration {
            registered: true,
            code: 200,
            expires: 600
        }]
    );
    w.alice_events.clear();
    w.bob_events.clear();

    // alice calls bob: 407 answered automatically, bob rings and answers.
    let call = w.alice.invite(
        w.now,
        "sip:bob@natter.test",
        Some(b"v=0 offer\r\n".to_vec()),
    );
    w.pump();
    let incoming = match w.bob_events.as_slice() {
        [UaEvent::IncomingCall { call, from, body }] => {
            assert!(from.contains("sip:alice@natter.test"));
            assert_eq!(body, b"v=0 offer\r\n");
            *call
        }
        other => panic!("bob saw {other:?}"),
    };
    w.bob_events.clear();
    w.bob.answer(w.now, incoming, 180, None);
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::CallRinging {
            call,
            code: 180,
            body: Vec::new()
        }]
    );
    w.alice_events.clear();
    w.bob
        .answer(w.now, incoming, 200, Some(b"v=0 answer\r\n".to_vec()));
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::CallAnswered {
            call,
            body: b"v=0 answer\r\n".to_vec()
        }]
    );
    assert_eq!(w.bob_events, vec![UaEvent::CallAck { call: incoming }]);
    w.alice_events.clear();
    w.bob_events.clear();

    // The ACK stopped bob's 2xx retransmissions: nothing moves for 10 s.
    let before = w.messages;
    w.advance(Duration::from_secs(10));
    assert_eq!(w.messages, before, "no retransmissions after ACK");

    // MESSAGE bob -> alice (out of dialog, through the proxy; bob is local, so challenged).
    let req = w.bob.message(
        w.now,
        "sip:alice@natter.test",
        "text/plain",
        b"hi alice".to_vec(),
    );
    w.pump();
    assert!(
        matches!(w.alice_events.as_slice(), [UaEvent::MessageReceived { body, .. }] if body == b"hi alice")
    );
    assert!(
        matches!(w.bob_events.as_slice(), [UaEvent::Response { req: r, code: 200, .. }] if *r == req)
    );
    w.alice_events.clear();
    w.bob_events.clear();

    // bob hangs up; the BYE follows the route set through the proxy.
    w.bob.bye(w.now, incoming);
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::CallClosed { call, code: 200 }]
    );
    assert!(matches!(
        w.bob_events.as_slice(),
        [
            UaEvent::CallClosed { code: 200, .. },
            UaEvent::Response { code: 200, .. }
        ]
    ));
    w.alice_events.clear();
    w.bob_events.clear();

    // Registrations refresh at half the granted time, with auth again.
    w.advance(Duration::from_secs(301));
    assert_eq!(
        w.alice_events,
        vec![UaEvent::Registration {
            registered: true,
            code: 200,
            expires: 600
        }]
    );
    assert_eq!(
        w.bob_events,
        vec![UaEvent::Registration {
            registered: true,
            code: 200,
            expires: 600
        }]
    );
}

#[test]
fn cancel_and_reject() {
    let mut w = World::new();
    w.bob.register(w.now, 600);
    w.pump();
    w.bob_events.clear();
    let call = w.alice.invite(w.now, "sip:bob@natter.test", None);
    w.pump();
    let incoming = match w.bob_events.as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    w.bob_events.clear();
    w.bob.answer(w.now, incoming, 180, None);
    w.pump();
    w.alice.cancel(w.now, call);
    w.pump();
    assert_eq!(
        w.bob_events,
        vec![UaEvent::CallClosed {
            call: incoming,
            code: 487
        }]
    );
    assert!(w
        .alice_events
        .contains(&UaEvent::CallClosed { call, code: 487 }));

    // Second call rejected with 486.
    w.alice_events.clear();
    w.bob_events.clear();
    let call = w.alice.invite(w.now, "sip:bob@natter.test", None);
    w.pump();
    let incoming = match w.bob_events.as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("{other:?}"),
    };
    w.bob.reject(w.now, incoming, 486);
    w.pump();
    assert!(w
        .alice_events
        .contains(&UaEvent::CallClosed { call, code: 486 }));
}

#[test]
fn redirect_mode_302_reaches_the_caller() {
    let now = Instant::now();
    let mut cfg = ServerConfig::new("natter.test", (Transport::Udp, addr(PROXY)));
    cfg.auth = false;
    cfg.mode = Mode::Redirect;
    let mut w = World::new();
    w.server = SipServer::new(
        cfg,
        Arc::new(StaticCredentials::new()),
        Arc::new(MemoryBindings::new()),
        now,
    );
    w.bob.register(w.now, 600);
    w.pump();
    let call = w.alice.invite(w.now, "sip:bob@natter.test", None);
    w.pump();
    assert!(w
        .alice_events
        .contains(&UaEvent::CallClosed { call, code: 302 }));
}
