//! Two natter user agents (the UA core from natter-sip), each behind its own
//! NAT, register and call each other through the registrar/proxy, all in
//! memory with virtual time. The UAs put their private addresses in Via and
//! Contact; the proxy only ever sees (and may only ever send to) the NATs'
//! public mappings. The ACK, the BYE and a re-registration must all get
//! through: nothing may be sent to a private address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use natter_sip::transaction::TimerConfig;
use natter_sip::ua::{UaConfig, UaEvent, UserAgent};
use natter_sip_server::{MemoryBindings, ServerConfig, SipServer, StaticCredentials, Transport};

const PROXY: &str = "192.0.2.1:5060";
const ALICE_PRIVATE: &str = "10.0.0.5:5060";
const ALICE_NAT: &str = "203.0.113.9:40000";
const BOB_PRIVATE: &str = "192.168.1.20:5060";
const BOB_NAT: &str = "198.51.100.200:61000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
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

struct World {
    server: SipServer,
    alice: UserAgent<SocketAddr>,
    bob: UserAgent<SocketAddr>,
    now: Instant,
    alice_events: Vec<UaEvent>,
    bob_events: Vec<UaEvent>,
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
            alice: ua("alice", "apw", ALICE_PRIVATE, 11),
            bob: ua("bob", "bpw", BOB_PRIVATE, 12),
            now,
            alice_events: Vec::new(),
            bob_events: Vec::new(),
        }
    }

    /// Deliver everything in flight through the two NATs until nothing moves.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for (who, nat) in [(0, ALICE_NAT), (1, BOB_NAT)] {
                loop {
                    let t = if who == 0 {
                        self.alice.poll_transmit()
                    } else {
                        self.bob.poll_transmit()
                    };
                    let Some((to, bytes)) = t else { break };
                    assert_eq!(to, addr(PROXY));
                    moved = true;
                    let out = self
                        .server
                        .handle(self.now, Transport::Udp, addr(nat), &bytes);
                    for tr in out.transmits {
                        assert_eq!(tr.to.transport, Transport::Udp);
                        if tr.to.addr == addr(ALICE_NAT) {
                            self.alice.handle(self.now, addr(PROXY), &tr.bytes);
                        } else if tr.to.addr == addr(BOB_NAT) {
                            self.bob.handle(self.now, addr(PROXY), &tr.bytes);
                        } else {
                            panic!(
                                "sent to {:?}, which nobody outside the NATs can reach:\n{}",
                                tr.to,
                                String::from_utf8_lossy(&tr.bytes)
                            );
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
}

fn registered(events: &[UaEvent]) -> bool {
    matches!(
        events,
        [UaEvent::Registration {
            registered: true,
            code: 200,
            ..
        }]
    )
}

#[test]
fn calls_between_two_natted_uas_complete_with_ack_and_bye() {
    let mut w = World::new();
    w.alice.register(w.now, 600);
    w.bob.register(w.now, 600);
    w.pump();
    assert!(registered(&w.alice_events), "{:?}", w.alice_events);
    assert!(registered(&w.bob_events), "{:?}", w.bob_events);
    w.alice_events.clear();
    w.bob_events.clear();

    // alice calls bob; bob answers; the ACK must reach bob through his NAT.
    let call = w
        .alice
        .invite(w.now, "sip:bob@natter.test", Some(b"v=0\r\n".to_vec()));
    w.pump();
    let incoming = match w.bob_events.as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("bob saw {other:?}"),
    };
    w.bob_events.clear();
    w.bob
        .answer(w.now, incoming, 200, Some(b"v=0\r\n".to_vec()));
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::CallAnswered {
            call,
            body: b"v=0\r\n".to_vec()
        }]
    );
    assert_eq!(w.bob_events, vec![UaEvent::CallAck { call: incoming }]);
    w.alice_events.clear();
    w.bob_events.clear();

    // bob hangs up: the BYE reaches alice through hers.
    w.bob.bye(w.now, incoming);
    w.pump();
    assert_eq!(
        w.alice_events,
        vec![UaEvent::CallClosed { call, code: 200 }]
    );
    assert!(
        matches!(
            w.bob_events.as_slice(),
            [
                UaEvent::CallClosed { code: 200, .. },
                UaEvent::Response { code: 200, .. }
            ]
        ),
        "{:?}",
        w.bob_events
    );
    w.alice_events.clear();
    w.bob_events.clear();

    // The other way round: bob calls alice, alice hangs up.
    let call = w.bob.invite(w.now, "sip:alice@natter.test", None);
    w.pump();
    let incoming = match w.alice_events.as_slice() {
        [UaEvent::IncomingCall { call, .. }] => *call,
        other => panic!("alice saw {other:?}"),
    };
    w.alice_events.clear();
    w.alice.answer(w.now, incoming, 200, None);
    w.pump();
    assert_eq!(w.alice_events, vec![UaEvent::CallAck { call: incoming }]);
    w.alice_events.clear();
    w.bob_events.clear();
    w.alice.bye(w.now, incoming);
    w.pump();
    assert_eq!(w.bob_events, vec![UaEvent::CallClosed { call, code: 200 }]);
}
