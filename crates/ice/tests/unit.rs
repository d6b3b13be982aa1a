//! Single-agent tests: message contents, priorities, pacing, the frozen algorithm,
//! interface filtering, candidate lines, and robustness against garbage.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::{Agent, AgentConfig, Candidate, CandidateType, InterfaceFilter, PairState};
use natter_stun::{Class, Message, MessageWriter, Method, TransactionId};
use rand::{Rng, SeedableRng};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn agent(controlling: bool) -> Agent {
    Agent::new(AgentConfig {
        controlling,
        seed: Some(5),
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    })
}

fn remote(addr: &str, foundation: &str, prio: u32) -> Candidate {
    Candidate {
        kind: CandidateType::Host,
        component: 1,
        addr: sa(addr),
        base: sa(addr),
        priority: prio,
        foundation: foundation.into(),
        related: None,
    }
}

#[test]
fn host_priority_and_sdp_line() {
    let mut a = agent(true);
    let c = a
        .add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    // (126 << 24) + (65535 << 8) + (256 - 1)
    assert_eq!(c.priority, 2_130_706_431);
    assert_eq!(
        c.to_sdp_line(),
        "a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"
    );
    let second = a
        .add_host_candidate(1, "eth1", sa("192.0.2.2:5000"))
        .unwrap();
    assert!(second.priority < c.priority);
    assert_ne!(second.foundation, c.foundation);
    let parsed = Candidate::from_sdp("a=candidate:4 1 udp 1686052607 203.0.113.11 46864 typ srflx raddr 10.10.1.2 rport 46864 generation 0").unwrap();
    assert_eq!(parsed.kind, CandidateType::Srflx);
    assert_eq!(parsed.related, Some(sa("10.10.1.2:46864")));
    assert!(Candidate::from_sdp("candidate:1 1 TCP 1 10.0.0.1 9 typ host tcptype active").is_err());
    assert!(Candidate::from_sdp("candidate:1 1 UDP 1 abc.local 9 typ host").is_err());
}

#[test]
fn interface_filter_defaults() {
    let f = InterfaceFilter::default();
    assert!(f.allows("eth0", "192.0.2.1".parse().unwrap()));
    assert!(!f.allows("docker0", "172.17.0.1".parse().unwrap()));
    assert!(!f.allows("wg0", "10.8.0.2".parse().unwrap()));
    assert!(!f.allows("lo", "127.0.0.1".parse().unwrap()));
    assert!(!f.allows("eth0", "fe80::1".parse().unwrap()));
    assert!(f.allows("eth0", "2001:db8::1".parse().unwrap()));
    let only = InterfaceFilter {
        allow: vec!["en".into()],
        ..InterfaceFilter::default()
    };
    assert!(only.allows("enp3s0", "192.0.2.1".parse().unwrap()));
    assert!(!only.allows("eth0", "192.0.2.1".parse().unwrap()));
    let mut a = Agent::new(AgentConfig::default());
    assert!(a
        .add_host_candidate(1, "docker0", sa("172.17.0.1:5000"))
        .is_none());
    assert!(
        a.add_host_candidate(2, "eth0", sa("192.0.2.1:5000"))
            .is_none(),
        "no component 2"
    );
}

#[test]
fn check_request_contents() {
    let mut a = agent(true);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    a.set_remote_credentials("RUFRAG", "remote-password-0123456789");
    a.add_remote_candidate(remote("192.0.2.9:6000", "7", 2_130_706_431))
        .unwrap();
    let now = Instant::now();
    a.handle_timeout(now);
    let t = a.poll_transmit().unwrap();
    assert_eq!(
        (t.source, t.destination, t.relayed),
        (sa("192.0.2.1:5000"), sa("192.0.2.9:6000"), false)
    );
    let m = Message::parse(&t.data).unwrap();
    assert_eq!((m.method(), m.class()), (Method::BINDING, Class::Request));
    let user = format!("RUFRAG:{}", a.local_credentials().ufrag);
    assert_eq!(m.username().unwrap(), Some(user.as_str()));
    // PRIORITY is the peer-reflexive priority: (110 << 24) + (65535 << 8) + 255
    assert_eq!(m.priority().unwrap(), Some(1_862_270_975));
    assert_eq!(m.ice_controlling().unwrap(), Some(a.tie_breaker()));
    assert!(
        !m.use_candidate(),
        "regular nomination: first check has no USE-CANDIDATE"
    );
    m.verify_integrity(b"remote-password-0123456789").unwrap();
    m.verify_fingerprint().unwrap();
}

#[test]
fn answers_a_check_and_learns_prflx() {
    let mut a = agent(false);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    let local = a.local_credentials().clone();
    let mut buf = Vec::new();
    let tid = TransactionId([9; 12]);
    MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid)
        .add_username(&format!("{}:PEER", local.ufrag))
        .add_priority(1_862_270_975)
        .add_ice_controlling(1)
        .add_use_candidate()
        .add_message_integrity(local.pwd.as_bytes())
        .add_fingerprint()
        .finish()
        .unwrap();
    let now = Instant::now();
    assert!(a.handle_receive(now, sa("192.0.2.1:5000"), sa("198.51.100.7:7000"), &buf));
    let t = a.poll_transmit().unwrap();
    assert_eq!(t.destination, sa("198.51.100.7:7000"));
    let m = Message::parse(&t.data).unwrap();
    assert_eq!((m.class(), m.transaction_id()), (Class::Success, tid));
    assert_eq!(
        m.xor_mapped_address().unwrap(),
        Some(sa("198.51.100.7:7000"))
    );
    m.verify_integrity(local.pwd.as_bytes()).unwrap();
    let r = &a.remote_candidates()[0];
    assert_eq!(
        (r.kind, r.priority, r.addr),
        (CandidateType::Prflx, 1_862_270_975, sa("198.51.100.7:7000"))
    );
    // wrong password: 401, nothing learned
    let mut bad = buf.clone();
    let n = bad.len();
    bad[n - 12] ^= 1; // inside MESSAGE-INTEGRITY
    let mut a2 = agent(false);
    a2.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    let mut buf2 = Vec::new();
    MessageWriter::new(&mut buf2, Method::BINDING, Class::Request, tid)
        .add_username(&format!("{}:PEER", a2.local_credentials().ufrag))
        .add_message_integrity(b"not the password")
        .add_fingerprint()
        .finish()
        .unwrap();
    assert!(a2.handle_receive(now, sa("192.0.2.1:5000"), sa("198.51.100.7:7000"), &buf2));
    let m = Message::parse(&a2.poll_transmit().unwrap().data)
        .unwrap()
        .error_code()
        .unwrap()
        .unwrap()
        .code;
    assert_eq!(m, 401);
    assert!(a2.remote_candidates().is_empty());
    // application data is not ICE's
    assert!(!a.handle_receive(
        now,
        sa("192.0.2.1:5000"),
        sa("198.51.100.7:7000"),
        b"\x80\x00rtp"
    ));
}

#[test]
fn checks_are_paced_by_ta_and_frozen_pairs_wait_for_their_foundation() {
    let mut a = agent(true);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    a.set_remote_credentials("R", "remote-password-0123456789");
    // three remote candidates sharing a foundation, two with another
    for (i, f) in ["x", "x", "x", "y", "y"].iter().enumerate() {
        a.add_remote_candidate(remote(
            &format!("192.0.2.{}:6000", 10 + i),
            f,
            2_130_706_431 - i as u32,
        ))
        .unwrap();
    }
    let states = |a: &Agent| a.pairs().iter().map(|p| p.state).collect::<Vec<_>>();
    use PairState::*;
    assert_eq!(states(&a), vec![Waiting, Frozen, Frozen, Waiting, Frozen]);
    let t0 = Instant::now();
    let mut sends = Vec::new();
    let mut now = t0;
    for _ in 0..200 {
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            let m = Message::parse(&t.data).unwrap();
            sends.push((now - t0, t.destination, m.transaction_id()));
        }
        match a.poll_timeout() {
            Some(t) if t < t0 + Duration::from_secs(30) => now = t.max(now),
            _ => break,
        }
    }
    let firsts: Vec<(Duration, SocketAddr)> = {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (t, d, tid) in &sends {
            if !seen.contains(tid) {
                seen.push(*tid);
                out.push((*t, *d));
            }
        }
        out
    };
    // Waiting pairs first, by priority, one per Ta (20 ms). Frozen pairs of a foundation
    // stay frozen while its pair is in progress, and are checked once it has failed.
    let order: Vec<SocketAddr> = firsts.iter().map(|f| f.1).collect();
    assert_eq!(
        order,
        [
            "192.0.2.10:6000",
            "192.0.2.13:6000",
            "192.0.2.11:6000",
            "192.0.2.14:6000",
            "192.0.2.12:6000"
        ]
        .map(sa)
        .to_vec()
    );
    assert_eq!(firsts[0].0, Duration::ZERO);
    assert_eq!(firsts[1].0, Duration::from_millis(20));
    // 7 sends at RTO 250 ms doubling to a 1.6 s cap: the first pair fails at 8.15 s
    assert_eq!(firsts[2].0, Duration::from_millis(8150));
    for w in firsts.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(20));
    }
    let per_dest = |d: &str| sends.iter().filter(|s| s.1 == sa(d)).count();
    assert_eq!(per_dest("192.0.2.10:6000"), 7);
    assert!(
        a.pairs().iter().all(|p| p.state == Failed)
            || a.pairs().iter().any(|p| p.state == InProgress)
    );
}

#[test]
fn garbage_and_mutated_checks_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    let mut a = agent(false);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    a.set_remote_credentials("R", "remote-password-0123456789");
    let local = a.local_credentials().clone();
    let mut valid = Vec::new();
    MessageWriter::new(
        &mut valid,
        Method::BINDING,
        Class::Request,
        TransactionId([1; 12]),
    )
    .add_username(&format!("{}:R", local.ufrag))
    .add_priority(1)
    .add_ice_controlling(5)
    .add_use_candidate()
    .add_message_integrity(local.pwd.as_bytes())
    .add_fingerprint()
    .finish()
    .unwrap();
    let mut now = Instant::now();
    for i in 0..20_000 {
        let data: Vec<u8> = if i % 3 == 0 {
            (0..rng.gen_range(0..120)).map(|_| rng.gen()).collect()
        } else {
            let mut b = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..b.len());
                b[at] = rng.gen();
            }
            b
        };
        let from = SocketAddr::new(
            format!("198.51.100.{}", rng.gen_range(1..20))
                .parse()
                .unwrap(),
            rng.gen(),
        );
        a.handle_receive(now, sa("192.0.2.1:5000"), from, &data);
        while a.poll_transmit().is_some() {}
        if i % 100 == 0 {
            now += Duration::from_millis(50);
            a.handle_timeout(now);
        }
    }
    assert!(a.remote_candidates().len() <= 200);
    assert!(a.pairs().len() <= 100);
}

#[test]
fn lite_peer_makes_us_controlling_and_turn_mapped_address_becomes_srflx() {
    let mut a = agent(false);
    a.set_remote_lite(true);
    assert_eq!(a.role(), natter_ice::Role::Controlling);
    a.add_host_candidate(1, "eth0", sa("10.0.0.2:5000"))
        .unwrap();
    let c = a
        .add_server_reflexive_candidate(
            1,
            sa("10.0.0.2:5000"),
            sa("203.0.113.5:40000"),
            sa("198.51.100.2:3478"),
        )
        .unwrap();
    assert_eq!(c.kind, CandidateType::Srflx);
    assert_eq!(c.related, Some(sa("10.0.0.2:5000")));
    // (100 << 24) + (65535 << 8) + 255
    assert_eq!(c.priority, 1_694_498_815);
    assert!(a
        .add_server_reflexive_candidate(
            1,
            sa("10.0.0.9:5000"),
            sa("203.0.113.5:1"),
            sa("198.51.100.2:3478")
        )
        .is_none());
    let r = a
        .add_relay_candidate(1, sa("198.51.100.2:50000"), sa("203.0.113.5:40000"))
        .unwrap();
    assert_eq!(
        r.to_sdp_line(),
        "a=candidate:3 1 UDP 16777215 198.51.100.2 50000 typ relay raddr 203.0.113.5 rport 40000"
    );
}

#[test]
fn signalling_lines_and_descriptions() {
    use natter_ice::{IceLine, RemoteLines};
    assert_eq!(
        IceLine::parse("a=ice-ufrag:abcd").unwrap(),
        Some(IceLine::Ufrag("abcd".into()))
    );
    assert_eq!(
        IceLine::parse("a=end-of-candidates").unwrap(),
        Some(IceLine::EndOfCandidates)
    );
    assert_eq!(IceLine::parse("# state comp=1").unwrap(), None);
    assert_eq!(IceLine::parse("a=rtcp-mux").unwrap(), None);
    assert!(IceLine::parse("a=candidate:1 1 UDP x 1.2.3.4 5 typ host").is_err());
    let line = "a=candidate:1 1 UDP 2015364095 127.0.0.1 44113 typ host";
    assert_eq!(IceLine::parse(line).unwrap().unwrap().to_string(), line);

    // the nice_peer.py / `natter ice connect` order: candidates may come before creds
    let mut a = agent(true);
    a.add_host_candidate(1, "lo", sa("127.0.0.1:5000")).unwrap();
    let mut r = RemoteLines::new();
    assert!(!r.apply(&mut a, line).unwrap());
    assert!(!r.apply(&mut a, "a=ice-ufrag:zj5V").unwrap());
    assert!(!r.apply(&mut a, "a=ice-pwd:9pro3cE1TBFwJkXN8neehF").unwrap());
    assert!(r.apply(&mut a, "a=end-of-candidates").unwrap());
    assert_eq!(a.remote_candidates().len(), 1);
    a.handle_timeout(Instant::now());
    let t = a.poll_transmit().unwrap();
    let m = Message::parse(&t.data).unwrap();
    assert!(m.username().unwrap().unwrap().starts_with("zj5V:"));

    // from a full SDP: Chromium's offer, first m-line
    let text = std::fs::read_to_string(format!(
        "{}/../sdp/tests/data/chromium156-nat-offer-host-srflx-relay.sdp",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let sd = natter_sdp::SessionDescription::parse(&text).unwrap();
    let mut b = agent(false);
    b.add_host_candidate(1, "eth0", sa("10.0.0.2:5000"))
        .unwrap();
    assert_eq!(
        b.apply_remote_description(&sd, 0),
        3,
        "the TCP candidate is skipped"
    );
    let attrs = b.local_attributes();
    assert_eq!(attrs[0].name, "ice-ufrag");
    assert_eq!(
        attrs[3].value.as_deref(),
        Some("1 1 UDP 2130706431 10.0.0.2 5000 typ host")
    );
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let mut a = agent(false);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    let local = a.local_credentials().clone();
    let mut buf = Vec::new();
    MessageWriter::new(
        &mut buf,
        Method::BINDING,
        Class::Request,
        TransactionId([3; 12]),
    )
    .add_username(&format!("{}:PEER", local.ufrag))
    .add_raw(0x0042, b"????")
    .add_message_integrity(local.pwd.as_bytes())
    .add_fingerprint()
    .finish()
    .unwrap();
    assert!(a.handle_receive(
        Instant::now(),
        sa("192.0.2.1:5000"),
        sa("198.51.100.7:7000"),
        &buf
    ));
    let t = a.poll_transmit().unwrap();
    let m = Message::parse(&t.data).unwrap();
    assert_eq!(m.error_code().unwrap().unwrap().code, 420);
    assert_eq!(
        m.unknown_attributes()
            .unwrap()
            .unwrap()
            .collect::<Vec<u16>>(),
        vec![0x0042]
    );
    assert!(a.remote_candidates().is_empty());
}

#[test]
fn unresolved_relay_and_dead_stun_server_complete_gathering_at_the_timeout() {
    use natter_ice::{Event, GatheringState};
    let mut a = Agent::new(AgentConfig {
        seed: Some(1),
        stun_servers: vec![sa("198.51.100.1:3478"), sa("198.51.100.99:3478")],
        interfaces: InterfaceFilter::allow_all(),
        gather_timeout: Duration::from_millis(1500),
        ..AgentConfig::default()
    });
    a.add_host_candidate(1, "eth0", sa("10.0.0.2:5000"))
        .unwrap();
    let t0 = Instant::now();
    let _token = a.expect_relay(t0);
    a.gather(t0);
    let mut now = t0;
    let mut sent_to = Vec::new();
    let mut complete_at = None;
    for _ in 0..1000 {
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            sent_to.push((now - t0, t.destination));
            // the first server answers its first request
            if t.destination == sa("198.51.100.1:3478")
                && sent_to.iter().filter(|s| s.1 == t.destination).count() == 1
            {
                let req = Message::parse(&t.data).unwrap();
                let mut resp = Vec::new();
                MessageWriter::new(
                    &mut resp,
                    Method::BINDING,
                    Class::Success,
                    req.transaction_id(),
                )
                .add_xor_mapped_address(sa("203.0.113.1:40000"))
                .add_fingerprint()
                .finish()
                .unwrap();
                assert!(a.handle_receive(now, t.source, t.destination, &resp));
            }
        }
        while let Some(e) = a.poll_event() {
            if e == Event::GatheringComplete {
                complete_at = Some(now - t0);
            }
        }
        if complete_at.is_some() {
            break;
        }
        now = a.poll_timeout().unwrap().max(now);
    }
    assert_eq!(complete_at, Some(Duration::from_millis(1500)));
    assert_eq!(a.gathering_state(), GatheringState::Complete);
    // requests to the dead server: paced after the live one (Ta), then RTO doubling
    let dead: Vec<Duration> = sent_to
        .iter()
        .filter(|s| s.1 == sa("198.51.100.99:3478"))
        .map(|s| s.0)
        .collect();
    assert_eq!(dead, [20, 270, 770].map(Duration::from_millis).to_vec());
    assert_eq!(
        a.local_candidates()
            .iter()
            .filter(|c| c.kind == CandidateType::Srflx)
            .count(),
        1
    );
}

#[test]
fn late_stun_answer_turns_a_peer_reflexive_local_into_server_reflexive() {
    use natter_ice::Event;
    let stun = sa("198.51.100.1:3478");
    let mut a = Agent::new(AgentConfig {
        seed: Some(3),
        stun_servers: vec![stun],
        interfaces: InterfaceFilter::allow_all(),
        ..AgentConfig::default()
    });
    let base = sa("10.0.0.2:5000");
    let mapped = sa("203.0.113.1:5000");
    let peer = sa("198.51.100.50:6000");
    a.add_host_candidate(1, "eth0", base).unwrap();
    a.set_remote_credentials("R", "remote-password-0123456789");
    a.add_remote_candidate(remote("198.51.100.50:6000", "9", 2_130_706_431))
        .unwrap();
    let now = Instant::now();
    a.gather(now);
    a.handle_timeout(now); // STUN request (paced first)
    let stun_req = a.poll_transmit().unwrap();
    assert_eq!(stun_req.destination, stun);
    a.handle_timeout(now + Duration::from_millis(20)); // the check
    let check = a.poll_transmit().unwrap();
    assert_eq!(check.destination, peer);
    // the peer answers the check first: mapped address unknown so far -> prflx
    let req = Message::parse(&check.data).unwrap();
    let mut resp = Vec::new();
    MessageWriter::new(
        &mut resp,
        Method::BINDING,
        Class::Success,
        req.transaction_id(),
    )
    .add_xor_mapped_address(mapped)
    .add_message_integrity(b"remote-password-0123456789")
    .add_fingerprint()
    .finish()
    .unwrap();
    assert!(a.handle_receive(now + Duration::from_millis(30), base, peer, &resp));
    assert_eq!(a.selected_pair(1).unwrap().0.kind, CandidateType::Prflx);
    while a.poll_event().is_some() {}
    // then the STUN server's answer shows the same address
    let sreq = Message::parse(&stun_req.data).unwrap();
    let mut sresp = Vec::new();
    MessageWriter::new(
        &mut sresp,
        Method::BINDING,
        Class::Success,
        sreq.transaction_id(),
    )
    .add_xor_mapped_address(mapped)
    .add_fingerprint()
    .finish()
    .unwrap();
    assert!(a.handle_receive(now + Duration::from_millis(40), base, stun, &sresp));
    let (l, _) = a.selected_pair(1).unwrap();
    assert_eq!(
        (l.kind, l.addr, l.related),
        (CandidateType::Srflx, mapped, Some(base))
    );
    let evs: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(
        matches!(&evs[0], Event::LocalCandidate(c) if c.kind == CandidateType::Srflx && c.addr == mapped)
    );
    assert!(
        matches!(&evs[1], Event::SelectedPair { local, .. } if local.kind == CandidateType::Srflx)
    );
    assert_eq!(evs[2], Event::GatheringComplete);
}

/// RFC 8445 §14.3: with many pairs waiting, a check's first retransmission waits
/// Ta × (Waiting + In-Progress) instead of the floor RTO, then doubles.
#[test]
fn check_retransmission_timer_grows_with_the_check_list() {
    let mut a = agent(true);
    a.add_host_candidate(1, "eth0", sa("192.0.2.1:5000"))
        .unwrap();
    a.set_remote_credentials("R", "remote-password-0123456789");
    // 20 remote candidates with distinct foundations: 20 Waiting pairs at once
    for i in 0..20u32 {
        a.add_remote_candidate(remote(
            &format!("198.51.100.{}:6000", 10 + i),
            &format!("f{i}"),
            2_130_706_431 - i,
        ))
        .unwrap();
    }
    assert!(a.pairs().iter().all(|p| p.state == PairState::Waiting));
    let t0 = Instant::now();
    let mut sends: Vec<(Duration, SocketAddr)> = Vec::new();
    let mut now = t0;
    for _ in 0..400 {
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit() {
            sends.push((now - t0, t.destination));
        }
        match a.poll_timeout() {
            Some(t) if t < t0 + Duration::from_millis(1500) => now = t.max(now),
            _ => break,
        }
    }
    let first = sa("198.51.100.10:6000");
    let times: Vec<Duration> = sends.iter().filter(|s| s.1 == first).map(|s| s.0).collect();
    // started with 20 active pairs: RTO = 20 × 20 ms = 400 ms, then 800 ms
    assert_eq!(
        times,
        vec![
            Duration::ZERO,
            Duration::from_millis(400),
            Duration::from_millis(1200)
        ]
    );
    // the last pair started at 19 × Ta with all 20 still active: also 400 ms
    let last = sa("198.51.100.29:6000");
    let times: Vec<Duration> = sends.iter().filter(|s| s.1 == last).map(|s| s.0).collect();
    assert_eq!(times.first().copied(), Some(Duration::from_millis(380)));
    assert_eq!(times.get(1).copied(), Some(Duration::from_millis(780)));
}
