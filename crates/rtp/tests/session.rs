//! The RTCP session with virtual time.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_rtp::interval::COMPENSATION;
use natter_rtp::ntp;
use natter_rtp::rtcp::{parse_compound, write_compound};
use natter_rtp::{
    ReportBlock, RtcpPacket, RtpHeader, RtpPacket, RtpSession, SdesChunk, SessionConfig,
    SessionEvent,
};

const NTP0: u64 = 0xe6a1_b2c3_0000_0000;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn session(ssrc: u32, t0: Instant) -> RtpSession {
    RtpSession::new(
        SessionConfig {
            ntp_at_start: NTP0,
            seed: u64::from(ssrc) * 7,
            ..SessionConfig::new(ssrc, 8000, "alice@example")
        },
        t0,
    )
}

fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
    let mut out = Vec::new();
    RtpHeader {
        payload_type: 0,
        sequence: seq,
        timestamp: ts,
        ssrc,
        ..RtpHeader::default()
    }
    .write(&[0; 160], &mut out)
    .unwrap();
    out
}

fn rtcp(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    write_compound(packets, &mut out).unwrap();
    out
}

/// Advances `now` through deadlines until the session emits a scheduled report.
fn next_report(s: &mut RtpSession, now: &mut Instant) -> Vec<u8> {
    for _ in 0..100 {
        let due = s.poll_timeout().unwrap();
        *now = due.max(*now);
        s.handle_timeout(*now);
        if let Some(p) = s.poll_rtcp(*now) {
            return p;
        }
    }
    panic!("no report");
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn first_report_is_rr_with_cname_within_initial_interval() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let due = s.poll_timeout().unwrap();
    // Initial: 2.5 s * [0.5, 1.5) / (e - 1.5).
    assert!(
        due - t0 >= secs(1.25 / COMPENSATION) && due - t0 < secs(3.75 / COMPENSATION),
        "{:?}",
        due - t0
    );
    assert_eq!(s.poll_rtcp(due - Duration::from_millis(1)), None);
    let mut now = t0;
    let pkt = next_report(&mut s, &mut now);
    assert!(now - t0 >= secs(1.25 / COMPENSATION));
    assert_eq!(
        parse_compound(&pkt, false).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 0x1111,
                reports: vec![]
            },
            RtcpPacket::Sdes(vec![SdesChunk {
                ssrc: 0x1111,
                items: vec![(1, b"alice@example".to_vec())]
            }]),
        ]
    );
    // Later reports respect the 5 s minimum: [2.5, 7.5) / 1.218 s apart.
    let before = now;
    next_report(&mut s, &mut now);
    let gap = now - before;
    assert!(
        gap >= secs(2.5 / COMPENSATION)
            && gap < secs(7.5 / COMPENSATION) + Duration::from_millis(1),
        "{gap:?}"
    );
}

#[test]
fn sender_report_fields() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let sent_at = t0 + Duration::from_millis(500);
    s.on_rtp_sent(1000, 160, sent_at);
    s.on_rtp_sent(1160, 160, sent_at);
    let mut now = t0;
    let pkt = next_report(&mut s, &mut now);
    let packets = parse_compound(&pkt, false).unwrap();
    let RtcpPacket::SenderReport {
        ssrc,
        ntp,
        rtp_ts,
        packet_count,
        octet_count,
        reports,
    } = &packets[0]
    else {
        panic!("{packets:?}")
    };
    assert_eq!(*ssrc, 0x1111);
    assert_eq!(*ntp, NTP0 + ntp::duration_to_ntp(now - t0));
    let elapsed = (now - sent_at).as_nanos() * 8000 / 1_000_000_000;
    assert_eq!(*rtp_ts, 1160 + elapsed as u32);
    assert_eq!((*packet_count, *octet_count), (2, 320));
    assert!(reports.is_empty());
    let st = s.stats();
    assert_eq!((st.tx_packets, st.tx_octets), (2, 320));
}

#[test]
fn rtt_from_lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let sr_at = t0 + Duration::from_secs(3);
    let lsr = ntp::middle32(s.ntp_at(sr_at));
    assert_eq!(lsr, 0xb2c6_0000);
    let block = ReportBlock {
        ssrc: 0x1111,
        fraction_lost: 12,
        lsr,
        dlsr: 0x1_0000,
        ..ReportBlock::default()
    };
    let rr = rtcp(&[RtcpPacket::ReceiverReport {
        ssrc: 0x2222,
        reports: vec![block, ReportBlock { ssrc: 9, ..block }],
    }]);
    let events = s.on_rtcp_received(
        &rr,
        addr("198.51.100.2:5005"),
        sr_at + Duration::from_millis(1250),
    );
    assert_eq!(
        events,
        vec![
            SessionEvent::RemoteReport {
                reporter: 0x2222,
                block
            },
            SessionEvent::Rtt(Duration::from_millis(250))
        ]
    );
    assert_eq!(s.stats().rtt, Some(Duration::from_millis(250)));
    assert_eq!(s.stats().remote_fraction_lost, Some(12));
    // LSR 0 means "no SR yet": no RTT. DLSR larger than the elapsed time: ignored.
    for (lsr, dlsr) in [(0, 0), (lsr, 0x2_0000)] {
        let rr = rtcp(&[RtcpPacket::ReceiverReport {
            ssrc: 0x2222,
            reports: vec![ReportBlock { lsr, dlsr, ..block }],
        }]);
        let events = s.on_rtcp_received(
            &rr,
            addr("198.51.100.2:5005"),
            sr_at + Duration::from_millis(1250),
        );
        assert_eq!(events.len(), 1, "{events:?}");
    }
}

/// Two sessions exchanging 20 ms audio both ways over a 40 ms one-way path; A's packets to
/// B lose every 10th.
#[test]
fn two_party_call_measures_rtt_and_loss() {
    let t0 = Instant::now();
    let mut a = session(0xaaaa, t0);
    let mut b = session(0xbbbb, t0);
    let (addr_a, addr_b) = (addr("192.0.2.1:5004"), addr("198.51.100.2:5004"));
    let delay = Duration::from_millis(40);
    // (deliver_at, to_b, is_rtcp, bytes)
    let mut wire: VecDeque<(Instant, bool, bool, Vec<u8>)> = VecDeque::new();
    let mut a_events = Vec::new();
    let mut b_events = Vec::new();
    let step = Duration::from_millis(5);
    let mut seq = 0u16;
    for i in 0..(30_000 / 5) {
        let now = t0 + step * i;
        if i % 4 == 0 {
            let ts = u32::from(seq) * 160;
            if seq % 10 != 5 {
                wire.push_back((now + delay, true, false, rtp(0xaaaa, seq, ts)));
            }
            a.on_rtp_sent(ts, 160, now);
            wire.push_back((now + delay, false, false, rtp(0xbbbb, seq, ts)));
            b.on_rtp_sent(ts, 160, now);
            seq = seq.wrapping_add(1);
        }
        while wire.front().is_some_and(|w| w.0 <= now) {
            let (_, to_b, is_rtcp, bytes) = wire.pop_front().unwrap();
            let (s, from, events) = if to_b {
                (&mut b, addr_a, &mut b_events)
            } else {
                (&mut a, addr_b, &mut a_events)
            };
            if is_rtcp {
                events.extend(s.on_rtcp_received(&bytes, from, now));
            } else {
                assert_eq!(
                    s.on_rtp_received(&RtpPacket::parse(&bytes).unwrap(), from, now),
                    None
                );
            }
        }
        for (s, to_b) in [(&mut a, true), (&mut b, false)] {
            if s.poll_timeout().unwrap() <= now {
                assert!(s.handle_timeout(now).is_empty());
                if let Some(p) = s.poll_rtcp(now) {
                    wire.push_back((now + delay, to_b, true, p));
                }
            }
        }
    }
    let rtts: Vec<Duration> = a_events
        .iter()
        .filter_map(|e| {
            if let SessionEvent::Rtt(r) = e {
                Some(*r)
            } else {
                None
            }
        })
        .collect();
    assert!(rtts.len() >= 4, "{a_events:?}");
    for r in &rtts {
        assert!(
            r.abs_diff(Duration::from_millis(80)) < Duration::from_micros(100),
            "{r:?}"
        );
    }
    // B's reports about A show ~10 % loss (25/256), A's about B none.
    let fractions: Vec<u8> = a_events
        .iter()
        .filter_map(|e| {
            if let SessionEvent::RemoteReport {
                reporter: 0xbbbb,
                block,
            } = e
            {
                Some(block.fraction_lost)
            } else {
                None
            }
        })
        .collect();
    assert!(fractions.len() >= 4);
    assert!(
        fractions.iter().all(|f| (23..=28).contains(f)),
        "{fractions:?}"
    );
    assert!(b_events.iter().all(|e| matches!(
        e,
        SessionEvent::RemoteReport {
            block: ReportBlock {
                fraction_lost: 0,
                cumulative_lost: 0,
                ..
            },
            ..
        } | SessionEvent::Rtt(_)
    )));
    let sb = b.stats();
    // 1500 sent, 150 dropped, the last two still on the wire.
    assert_eq!(sb.rx_packets, 1348);
    // Counting starts after probation at seq 1; up to 1497, 150 lost.
    assert_eq!(sb.rx_lost, 150);
    assert_eq!(sb.jitter, Duration::ZERO);
    assert_eq!(a.stats().rx_lost, 0);
    assert!(a.stats().rtt.is_some() && b.stats().rtt.is_some());
    let (ntp_b, ts_b) = a.remote_sender_info(0xbbbb).unwrap();
    // B's SR pairs its wallclock with its media clock: 8000 Hz from t0 on both.
    let b_clock = ((u128::from(ntp_b - NTP0) * 8000) >> 32) as u32;
    assert!(ts_b.abs_diff(b_clock) <= 1, "{ts_b} vs {b_clock}");
    assert_eq!(a.remote_sender_info(0x1234), None);
}

#[test]
fn silent_source_times_out_after_five_intervals() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let heard = t0 + Duration::from_secs(1);
    s.on_rtp_received(
        &RtpPacket::parse(&rtp(0x2222, 1, 0)).unwrap(),
        addr("198.51.100.2:5004"),
        heard,
    );
    let rr = rtcp(&[RtcpPacket::ReceiverReport {
        ssrc: 0x3333,
        reports: vec![],
    }]);
    s.on_rtcp_received(
        &rr,
        addr("198.51.100.3:5005"),
        heard + Duration::from_secs(2),
    );
    // Two members, tiny reports: Td is the 5 s minimum, timeout 25 s.
    assert!(s.poll_timeout().unwrap() <= heard + Duration::from_secs(25));
    assert!(s
        .handle_timeout(heard + Duration::from_millis(24_999))
        .is_empty());
    assert_eq!(
        s.handle_timeout(heard + Duration::from_secs(25)),
        vec![SessionEvent::SourceTimeout { ssrc: 0x2222 }]
    );
    assert_eq!(s.sources().collect::<Vec<_>>(), vec![0x3333]);
    assert_eq!(
        s.handle_timeout(heard + Duration::from_secs(27)),
        vec![SessionEvent::SourceTimeout { ssrc: 0x3333 }]
    );
    assert!(s.handle_timeout(heard + Duration::from_secs(60)).is_empty());
}

#[test]
fn ssrc_collision_changes_ssrc_and_sends_bye() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let x = addr("198.51.100.9:5004");
    let now = t0 + Duration::from_secs(1);
    let ev = s.on_rtp_received(&RtpPacket::parse(&rtp(0x1111, 1, 0)).unwrap(), x, now);
    let Some(SessionEvent::Collision {
        old_ssrc: 0x1111,
        new_ssrc,
    }) = ev
    else {
        panic!("{ev:?}")
    };
    assert_ne!(new_ssrc, 0x1111);
    assert_eq!(s.local_ssrc(), new_ssrc);
    // The old SSRC is now a remote source at that address.
    assert_eq!(s.sources().collect::<Vec<_>>(), vec![0x1111]);
    assert!(s.poll_timeout().unwrap() <= now);
    let bye = s.poll_rtcp(now).unwrap();
    assert_eq!(
        parse_compound(&bye, false).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 0x1111,
                reports: vec![]
            },
            RtcpPacket::Sdes(vec![SdesChunk {
                ssrc: 0x1111,
                items: vec![(1, b"alice@example".to_vec())]
            }]),
            RtcpPacket::Bye {
                ssrcs: vec![0x1111],
                reason: Some("SSRC collision".into())
            },
        ]
    );
    assert_eq!(s.poll_rtcp(now), None);
    // Our new SSRC coming back from the conflicting address: a loop, dropped.
    assert_eq!(
        s.on_rtp_received(&RtpPacket::parse(&rtp(new_ssrc, 1, 0)).unwrap(), x, now),
        None
    );
    assert_eq!(s.stats().rx_dropped_loop, 1);
    assert_eq!(s.stats().rx_packets, 1);
    // From another address over RTCP: a second collision.
    let rr = rtcp(&[RtcpPacket::ReceiverReport {
        ssrc: new_ssrc,
        reports: vec![],
    }]);
    let ev = s.on_rtcp_received(&rr, addr("203.0.113.1:5005"), now);
    assert!(
        matches!(ev.as_slice(), [SessionEvent::Collision { old_ssrc, .. }] if *old_ssrc == new_ssrc),
        "{ev:?}"
    );
    // Later reports use the newest SSRC, SR counts restart.
    s.on_rtp_sent(0, 100, now);
    let mut t = now;
    s.poll_rtcp(t).unwrap(); // the second BYE
    let pkt = next_report(&mut s, &mut t);
    let p = parse_compound(&pkt, false).unwrap();
    assert!(
        matches!(p[0], RtcpPacket::SenderReport { ssrc, packet_count: 1, .. } if ssrc == s.local_ssrc()),
        "{p:?}"
    );
}

#[test]
fn feedback_bye_and_malformed() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let from = addr("198.51.100.2:5005");
    let ours = rtcp(&[
        RtcpPacket::ReceiverReport {
            ssrc: 0x2222,
            reports: vec![],
        },
        RtcpPacket::Nack {
            sender_ssrc: 0x2222,
            media_ssrc: 0x1111,
            lost: vec![5, 7],
        },
        RtcpPacket::Nack {
            sender_ssrc: 0x2222,
            media_ssrc: 0x9999,
            lost: vec![5],
        },
        RtcpPacket::Pli {
            sender_ssrc: 0x2222,
            media_ssrc: 0x1111,
        },
        RtcpPacket::Pli {
            sender_ssrc: 0x2222,
            media_ssrc: 0x9999,
        },
        RtcpPacket::Fir {
            sender_ssrc: 0x2222,
            entries: vec![(0x9999, 1), (0x1111, 4)],
        },
        RtcpPacket::Bye {
            ssrcs: vec![0x2222, 0x7777],
            reason: Some("done".into()),
        },
    ]);
    let ev = s.on_rtcp_received(&ours, from, t0);
    assert_eq!(
        ev,
        vec![
            SessionEvent::Nack {
                sender_ssrc: 0x2222,
                lost: vec![5, 7]
            },
            SessionEvent::Pli {
                sender_ssrc: 0x2222
            },
            SessionEvent::Fir {
                sender_ssrc: 0x2222,
                seq: 4
            },
            SessionEvent::Bye {
                ssrc: 0x2222,
                reason: Some("done".into())
            },
        ]
    );
    assert_eq!(s.sources().count(), 0);
    // Lone feedback is not accepted without reduced-size; garbage is counted.
    let pli = rtcp(&[RtcpPacket::Pli {
        sender_ssrc: 0x2222,
        media_ssrc: 0x1111,
    }]);
    assert!(s.on_rtcp_received(&pli, from, t0).is_empty());
    assert!(s.on_rtcp_received(&[0x80, 0xc9, 0, 9], from, t0).is_empty());
    assert_eq!(s.stats().rx_dropped_malformed, 2);
}

#[test]
fn feedback_requests() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let nack = s.request_nack(0x2222, &[10, 11, 13], t0);
    assert_eq!(
        parse_compound(&nack, false).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 0x1111,
                reports: vec![]
            },
            RtcpPacket::Sdes(vec![SdesChunk {
                ssrc: 0x1111,
                items: vec![(1, b"alice@example".to_vec())]
            }]),
            RtcpPacket::Nack {
                sender_ssrc: 0x1111,
                media_ssrc: 0x2222,
                lost: vec![10, 11, 13]
            },
        ]
    );
    let mut cfg = SessionConfig::new(0x1111, 8000, "a");
    cfg.reduced_size = true;
    let mut s = RtpSession::new(cfg, t0);
    assert_eq!(
        s.request_pli(0x2222, t0),
        [0x81, 0xce, 0, 2, 0, 0, 0x11, 0x11, 0, 0, 0x22, 0x22]
    );
    assert_eq!(
        s.request_fir(0x2222, t0),
        [0x84, 0xce, 0, 4, 0, 0, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0x22, 0x22, 1, 0, 0, 0]
    );
    assert_eq!(s.request_fir(0x2222, t0)[16], 2);
    assert_eq!(
        s.request_nack(0x2222, &[1], t0),
        [0x81, 0xcd, 0, 3, 0, 0, 0x11, 0x11, 0, 0, 0x22, 0x22, 0, 1, 0, 0]
    );
    // Reduced-size sessions accept lone feedback.
    let pli = rtcp(&[RtcpPacket::Pli {
        sender_ssrc: 0x2222,
        media_ssrc: 0x1111,
    }]);
    assert_eq!(
        s.on_rtcp_received(&pli, addr("198.51.100.2:5005"), t0),
        vec![SessionEvent::Pli {
            sender_ssrc: 0x2222
        }]
    );
}

#[test]
fn bye_ends_scheduling() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    s.on_rtp_sent(0, 10, t0);
    let bye = s.send_bye(t0 + Duration::from_secs(1));
    let p = parse_compound(&bye, false).unwrap();
    assert!(matches!(
        p[0],
        RtcpPacket::SenderReport {
            ssrc: 0x1111,
            packet_count: 1,
            octet_count: 10,
            ..
        }
    ));
    assert_eq!(
        p[2],
        RtcpPacket::Bye {
            ssrcs: vec![0x1111],
            reason: None
        }
    );
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll_rtcp(t0 + Duration::from_secs(100)), None);
    assert!(s.send_bye(t0 + Duration::from_secs(2)).is_empty());
}

#[test]
fn interval_grows_with_members() {
    let t0 = Instant::now();
    let gap_with = |members: u32| {
        let mut cfg = SessionConfig::new(1, 8000, "bob");
        cfg.bandwidth_bps = 8000; // RTCP: 50 octets/s
        let mut s = RtpSession::new(cfg, t0);
        for m in 0..members {
            let rr = rtcp(&[RtcpPacket::ReceiverReport {
                ssrc: 100 + m,
                reports: vec![],
            }]);
            s.on_rtcp_received(&rr, addr("198.51.100.2:5005"), t0);
        }
        let mut now = t0;
        next_report(&mut s, &mut now);
        let before = now;
        next_report(&mut s, &mut now);
        now - before
    };
    let small = gap_with(1);
    assert!(
        small < secs(7.5 / COMPENSATION) + Duration::from_millis(1),
        "{small:?}"
    );
    // 61 members sharing 37.5 octets/s with ~40-octet reports: Td ~ 65 s.
    let big = gap_with(60);
    assert!(big > Duration::from_secs(20), "{big:?}");
}

#[test]
fn reverse_reconsideration_when_members_leave() {
    let t0 = Instant::now();
    let mut s = session(0x1111, t0);
    let from = addr("198.51.100.2:5005");
    for ssrc in [2, 3, 4] {
        let rr = rtcp(&[RtcpPacket::ReceiverReport {
            ssrc,
            reports: vec![],
        }]);
        s.on_rtcp_received(&rr, from, t0);
    }
    let mut now = t0;
    next_report(&mut s, &mut now); // pmembers = 4
    let due = s.poll_timeout().unwrap();
    let bye_at = now + Duration::from_millis(500);
    assert!(due > bye_at);
    let bye = rtcp(&[
        RtcpPacket::ReceiverReport {
            ssrc: 2,
            reports: vec![],
        },
        RtcpPacket::Bye {
            ssrcs: vec![2, 3, 4],
            reason: None,
        },
    ]);
    assert_eq!(s.on_rtcp_received(&bye, from, bye_at).len(), 3);
    // §6.3.4: tn = now + (members / pmembers) * (tn - now) = now + (tn - now) / 4.
    let expect = bye_at + (due - bye_at) / 4;
    let got = s.poll_timeout().unwrap();
    assert!(
        got.max(expect) - got.min(expect) < Duration::from_micros(2),
        "{:?} vs {:?}",
        got - bye_at,
        expect - bye_at
    );
}
