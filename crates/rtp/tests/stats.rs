//! RFC 3550 A.1 / A.3 / A.8 receive statistics.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use natter_rtp::{ReceiverStats, SeqVerdict};

/// Feeds sequence numbers with timestamps and arrivals that carry no jitter.
fn feed(s: &mut ReceiverStats, seqs: &[u16]) -> Vec<SeqVerdict> {
    seqs.iter()
        .map(|&q| s.on_packet(q, u32::from(q) * 160, u32::from(q) * 160 + 7))
        .collect()
}

#[test]
fn probation_then_valid() {
    let mut s = ReceiverStats::new();
    assert!(!s.is_valid());
    assert_eq!(feed(&mut s, &[100]), [SeqVerdict::Probation]);
    assert_eq!(s.expected(), 0);
    assert_eq!(s.received(), 0);
    assert_eq!(feed(&mut s, &[101]), [SeqVerdict::Accepted]);
    assert!(s.is_valid());
    // A.1: the first packet only served probation; counting starts at the second.
    assert_eq!(s.received(), 1);
    assert_eq!(s.expected(), 1);
    assert_eq!(s.extended_highest(), 101);
    assert_eq!(s.cumulative_lost(), 0);
}

#[test]
fn probation_restarts_on_gap() {
    let mut s = ReceiverStats::new();
    assert_eq!(
        feed(&mut s, &[10, 12, 13]),
        [
            SeqVerdict::Probation,
            SeqVerdict::Probation,
            SeqVerdict::Accepted
        ]
    );
    assert_eq!(s.extended_highest(), 13);
    assert_eq!(s.expected(), 1);
}

#[test]
fn sequence_wrap_counts_cycles() {
    let mut s = ReceiverStats::new();
    assert_eq!(
        feed(&mut s, &[65534, 65535, 0, 1]),
        [
            SeqVerdict::Probation,
            SeqVerdict::Accepted,
            SeqVerdict::Accepted,
            SeqVerdict::Accepted
        ]
    );
    assert_eq!(s.extended_highest(), 65536 + 1);
    assert_eq!(s.expected(), 3);
    assert_eq!(s.received(), 3);
    // Validation straddling the wrap (65535 then 0).
    let mut s = ReceiverStats::new();
    assert_eq!(
        feed(&mut s, &[65535, 0]),
        [SeqVerdict::Probation, SeqVerdict::Accepted]
    );
    assert_eq!(s.extended_highest(), 0);
    feed(&mut s, &[1]);
    assert_eq!(s.expected(), 2);
    // A late packet from before the wrap does not count another cycle.
    feed(&mut s, &[2, 65534]);
    assert_eq!(s.extended_highest(), 2);
    // Several wraps.
    let mut s = ReceiverStats::new();
    let mut seq = 0u16;
    for _ in 0..(3 * 65536 + 10) {
        s.on_packet(seq, 0, 0);
        seq = seq.wrapping_add(1);
    }
    assert_eq!(s.extended_highest(), 3 * 65536 + 9);
    assert_eq!(s.expected(), 3 * 65536 + 9);
    assert_eq!(s.received(), 3 * 65536 + 9);
}

#[test]
fn loss_and_fraction_per_a3() {
    let mut s = ReceiverStats::new();
    feed(&mut s, &[10, 11, 12, 14, 15, 18]);
    // Base 11; highest 18: expected 8, received 11,12,14,15,18 = 5, lost 3.
    assert_eq!(s.expected(), 8);
    assert_eq!(s.received(), 5);
    assert_eq!(s.cumulative_lost(), 3);
    let b = s.report_block(0xabc, 0x1111, 0x2222);
    assert_eq!(b.ssrc, 0xabc);
    assert_eq!(b.fraction_lost, 96); // (3 << 8) / 8
    assert_eq!(b.cumulative_lost, 3);
    assert_eq!(b.highest_seq, 18);
    assert_eq!((b.lsr, b.dlsr), (0x1111, 0x2222));
    // Next interval without loss.
    feed(&mut s, &[19, 20]);
    assert_eq!(s.take_fraction_lost(), 0);
    // An interval where reordered packets fill earlier gaps: negative interval loss -> 0.
    assert_eq!(
        feed(&mut s, &[13, 16, 17]),
        [SeqVerdict::LateOrDuplicate; 3]
    );
    assert_eq!(s.take_fraction_lost(), 0);
    assert_eq!(s.cumulative_lost(), 0);
    // Duplicates push cumulative loss negative.
    assert_eq!(feed(&mut s, &[20, 20]), [SeqVerdict::LateOrDuplicate; 2]);
    assert_eq!(s.cumulative_lost(), -2);
    assert_eq!(s.take_fraction_lost(), 0);
    // 1 of 4 lost: 64/256.
    feed(&mut s, &[21, 22, 24]);
    assert_eq!(s.take_fraction_lost(), 64);
    // Nothing arrived: expected_interval 0 -> 0.
    assert_eq!(s.take_fraction_lost(), 0);
}

#[test]
fn large_jump_is_bad_until_confirmed() {
    let mut s = ReceiverStats::new();
    feed(&mut s, &[10, 11, 12]);
    assert_eq!(feed(&mut s, &[5000]), [SeqVerdict::Bad]);
    assert_eq!(s.received(), 2);
    // Not followed by 5001: stream continues normally.
    assert_eq!(feed(&mut s, &[13]), [SeqVerdict::Accepted]);
    assert_eq!(
        feed(&mut s, &[5000, 5001]),
        [SeqVerdict::Bad, SeqVerdict::Restarted]
    );
    assert_eq!(s.received(), 1);
    assert_eq!(s.expected(), 1);
    assert_eq!(s.extended_highest(), 5001);
    // A jump of MAX_DROPOUT - 1 is an ordinary gap.
    assert_eq!(feed(&mut s, &[5001 + 2999]), [SeqVerdict::Accepted]);
    // Backwards by less than MAX_MISORDER is late; by MAX_MISORDER or more it is bad.
    assert_eq!(feed(&mut s, &[8000 - 99]), [SeqVerdict::LateOrDuplicate]);
    assert_eq!(feed(&mut s, &[8000 - 100]), [SeqVerdict::Bad]);
    assert!(
        SeqVerdict::Restarted.is_usable()
            && !SeqVerdict::Bad.is_usable()
            && !SeqVerdict::Probation.is_usable()
    );
}

#[test]
fn jitter_matches_hand_computation() {
    // transit = arrival - ts: 10000, 10100, 9900, 10000 -> |D| = 100, 200, 100.
    // Integer A.8 (J scaled by 16): 100; 100+200-6 = 294; 294+100-18 = 376 -> 376/16 = 23.
    // Floating point: 6.25, 18.36, 23.46 -> 23.
    for base in [0u32, 0xffff_ff00] {
        let mut s = ReceiverStats::new();
        let ts = |i: u32| base.wrapping_add(i * 1600);
        let transit = [10000u32, 10100, 9900, 10000];
        for (i, t) in transit.iter().enumerate() {
            let i = i as u32;
            s.on_packet(i as u16, ts(i), ts(i).wrapping_add(*t));
        }
        assert_eq!(s.jitter_samples(), 23, "timestamp base {base:#x}");
        assert_eq!(s.jitter(8000), Duration::from_micros(2875));
        assert_eq!(s.jitter(0), Duration::ZERO);
    }
}

#[test]
fn jitter_rounding_follows_integer_a8() {
    // |D| = 120, 100, 120: J16 = 120; 120+100-8 = 212; 212+120-13 = 319 -> 19 (float: 19.95).
    // Dropping the +8 rounding term would give 320 -> 20.
    let mut s = ReceiverStats::new();
    for (i, transit) in [10000u32, 10120, 10020, 10140].into_iter().enumerate() {
        let ts = i as u32 * 160;
        s.on_packet(i as u16, ts, ts + transit);
    }
    assert_eq!(s.jitter_samples(), 19);
}

#[test]
fn jitter_converges_to_constant_delay_variation() {
    // Alternating transit 0/+80: |D| = 80 every packet; J converges to 80 - 8 (integer form).
    let mut s = ReceiverStats::new();
    for i in 0..500u32 {
        let extra = if i % 2 == 0 { 0 } else { 80 };
        s.on_packet(i as u16, i * 160, i * 160 + extra);
    }
    assert!(
        (78..=80).contains(&s.jitter_samples()),
        "{}",
        s.jitter_samples()
    );
    // Huge timestamp steps do not overflow.
    let mut s = ReceiverStats::new();
    for i in 0..100u32 {
        s.on_packet(i as u16, if i % 2 == 0 { 0 } else { 0x7fff_ffff }, 0);
    }
    assert!(s.jitter_samples() > 0x7000_0000);
}
