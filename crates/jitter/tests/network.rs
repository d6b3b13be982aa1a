//! Jitter buffer behaviour on simulated networks, in virtual time.

mod common;

use common::*;
use rand::Rng;

#[test]
fn perfect_network_is_a_constant_delay() {
    for frame_ms in [10, 20] {
        let sc = Scenario {
            packets: 250,
            frame_ms,
            ..Scenario::default()
        };
        // 33 ms one-way delay, not aligned with the pull grid.
        let o = run(&sc, 250 * 20 + 33, |_, _| vec![33.0], consecutive, vec![]);
        let src = source(250);
        let start = find(&o.out, &src[..PACKET_SAMPLES]).expect("first packet in output");
        // Everything that was played is the input, sample for sample.
        let played = o.out.len() - start;
        assert!(played > 240 * PACKET_SAMPLES, "{played}");
        assert_eq!(&o.out[start..], &src[..played], "frame {frame_ms}");
        assert!(
            o.out[..start].iter().all(|&s| s == 0),
            "silence before the first packet"
        );
        let st = o.last();
        assert!(st.current_delay_ms <= 20 + frame_ms, "{st:?}");
        assert!(st.current_delay_ms >= 20, "{st:?}");
        assert_eq!(st.target_delay_ms, 20);
        assert_eq!(
            (
                st.concealed_ms,
                st.accelerated_ms,
                st.expanded_ms,
                st.underruns,
                st.late,
                st.duplicates
            ),
            (0, 0, 0, 0, 0, 0),
            "{st:?}"
        );
        assert_eq!(st.packets_received, 250);
        assert_eq!(
            o.decoded.len(),
            played / PACKET_SAMPLES + usize::from(played % PACKET_SAMPLES != 0)
        );
    }
}

#[test]
fn uniform_40ms_jitter_with_reordering() {
    let sc = Scenario {
        packets: 1500,
        seed: 11,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        1500 * 20,
        |_, rng| vec![10.0 + rng.gen_range(0.0..40.0)],
        consecutive,
        vec![],
    );
    assert!(o.reorders > 100, "the network must reorder: {}", o.reorders);
    let warm = o.at(5000);
    let end = o.last();
    assert_eq!(
        end.underruns, warm.underruns,
        "no underrun after warm-up: {warm:?} {end:?}"
    );
    assert_eq!(end.late, warm.late, "no late packet after warm-up");
    assert_eq!(
        end.concealed_ms, warm.concealed_ms,
        "no concealment after warm-up"
    );
    let after: Vec<_> = o
        .timeline
        .iter()
        .filter(|t| t.0 >= 5000)
        .map(|t| t.1)
        .collect();
    let max_delay = after.iter().map(|s| s.current_delay_ms).max().unwrap();
    let min_delay = after.iter().map(|s| s.current_delay_ms).min().unwrap();
    assert!(max_delay < 120, "delay settles below 120 ms: {max_delay}");
    assert!(min_delay >= 40, "delay covers the jitter: {min_delay}");
    let target = end.target_delay_ms;
    assert!(
        (50..=70).contains(&target),
        "target ~ 97th percentile + frame: {target}"
    );
    // Every packet from warm-up on was played exactly once, in order.
    let first = o
        .decoded
        .iter()
        .position(|&k| k == 250)
        .expect("packet 250 played");
    let tail = &o.decoded[first..];
    for (i, k) in tail.iter().enumerate() {
        assert_eq!(*k, 250 + i as u32, "packet order after warm-up");
    }
    assert!(tail.len() > 1100, "{}", tail.len());
    let jump = max_jump(&o.out[16000 * 5..]);
    assert!(
        jump <= natural_jump() * 5 / 4,
        "jump {jump} vs natural {}",
        natural_jump()
    );
}

fn loss_run(rate: f64, frame_ms: u32, seed: u64) {
    let sc = Scenario {
        packets: 1500,
        frame_ms,
        seed,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        1500 * 20,
        |k, rng| {
            let keep = !(10..1490).contains(&k) || !rng.gen_bool(rate);
            if keep {
                vec![5.0]
            } else {
                vec![]
            }
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    let lost = o.lost.len() as u64;
    let expect_lost = (1500.0 * rate) as u64;
    assert!(lost > expect_lost / 2 && lost < expect_lost * 2, "{lost}");
    assert_eq!(
        st.concealed_ms,
        lost * 20,
        "concealment equals loss: {st:?}"
    );
    assert_eq!(o.out.len(), o.pulls * o.frame, "output length exact");
    // Every delivered packet was played, in order (the very last may still be queued).
    let delivered: Vec<u32> = (0..1500).filter(|k| !o.lost.contains(k)).collect();
    assert!(
        o.decoded.len() + 1 >= delivered.len(),
        "{}",
        o.decoded.len()
    );
    assert_eq!(o.decoded[..], delivered[..o.decoded.len()]);
    assert_eq!(
        (st.late, st.underruns, st.accelerated_ms > 100),
        (0, 0, false),
        "{st:?}"
    );
    let jump = max_jump(&o.out);
    assert!(
        jump <= natural_jump() * 5 / 4,
        "jump {jump} vs natural {}",
        natural_jump()
    );
}

#[test]
fn three_percent_loss_is_concealed_smoothly() {
    loss_run(0.03, 20, 3);
    loss_run(0.03, 10, 4);
}

#[test]
fn ten_percent_loss_is_concealed_smoothly() {
    loss_run(0.10, 20, 5);
    loss_run(0.10, 10, 6);
}

#[test]
fn duplicates_are_ignored() {
    let sc = Scenario {
        packets: 300,
        ..Scenario::default()
    };
    let clean = run(&sc, 6000, |_, _| vec![15.0], consecutive, vec![]);
    let dup = run(
        &sc,
        6000,
        |k, _| {
            if k % 3 == 0 {
                vec![15.0, 17.0]
            } else {
                vec![15.0]
            }
        },
        consecutive,
        vec![],
    );
    assert_eq!(dup.out, clean.out);
    let st = dup.last();
    assert_eq!(st.duplicates, 100);
    assert_eq!(st.packets_received, 400);
    assert_eq!(st.late, 0);
}

#[test]
fn late_packet_is_counted_and_concealed() {
    let sc = Scenario {
        packets: 300,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        6000,
        |k, _| vec![if k == 100 { 215.0 } else { 15.0 }],
        consecutive,
        vec![],
    );
    let st = o.last();
    assert_eq!(st.late, 1, "{st:?}");
    assert_eq!(st.concealed_ms, 20, "{st:?}");
    assert!(!o.decoded.contains(&100));
    let want: Vec<u32> = (0..300).filter(|&k| k != 100).collect();
    assert_eq!(o.decoded[..], want[..o.decoded.len()]);
    assert!(o.decoded.len() >= 298);
    assert!(
        st.target_delay_ms <= 25,
        "one late packet does not move the target: {st:?}"
    );
}

fn drift_run(speed: f64) -> (u32, u32, Outcome) {
    let sc = Scenario {
        packets: 3000,
        frame_ms: 10,
        sender_speed: speed,
        ..Scenario::default()
    };
    let o = run(&sc, 59_000, |_, _| vec![12.0], consecutive, vec![]);
    let after: Vec<_> = o
        .timeline
        .iter()
        .filter(|t| t.0 >= 2000)
        .map(|t| t.1.current_delay_ms)
        .collect();
    let (min, max) = (
        *after.iter().min().expect("samples"),
        *after.iter().max().expect("samples"),
    );
    (min, max, o)
}

#[test]
fn sender_clock_drift_is_absorbed() {
    // 0.5 % fast: 300 ms of surplus audio in 60 s must be taken out by accelerate.
    let (min, max, o) = drift_run(1.005);
    let st = o.last();
    assert!(
        min >= 20 && max <= 60,
        "fast sender: delay {min}..{max} {st:?}"
    );
    assert!((200..=400).contains(&st.accelerated_ms), "{st:?}");
    assert_eq!(
        (st.underruns, st.concealed_ms, st.dropped),
        (0, 0, 0),
        "{st:?}"
    );
    assert!(max_jump(&o.out) <= natural_jump() * 5 / 4);

    // 0.5 % slow: the missing 300 ms is made up by expansion, without underruns.
    let (min, max, o) = drift_run(0.995);
    let st = o.last();
    assert!(
        min >= 20 && max <= 60,
        "slow sender: delay {min}..{max} {st:?}"
    );
    assert!((200..=400).contains(&st.expanded_ms), "{st:?}");
    assert_eq!(
        (st.underruns, st.concealed_ms, st.dropped),
        (0, 0, 0),
        "{st:?}"
    );
    assert!(max_jump(&o.out) <= natural_jump() * 5 / 4);
}

#[test]
fn dtx_gap_plays_comfort_noise_without_loss() {
    let sc = Scenario {
        packets: 300,
        ..Scenario::default()
    };
    // Talk for packets 0..100, silence 100..200 with a CN packet at its start and SID
    // updates every 200 ms (each consuming a sequence number), talk again from 200.
    let mut extra = Vec::new();
    let mut sids = 0u16;
    for k in (100..200).step_by(10) {
        extra.push(Sent {
            arrival_us: (u64::from(k) * 20 + 15) * 1000,
            seq: sc.seq0.wrapping_add(k as u16),
            ts: sc.ts0.wrapping_add(k * PACKET_SAMPLES as u32),
            payload: vec![],
            cn_level: Some(50),
        });
        sids += 1;
    }
    let o = run(
        &sc,
        6000,
        |_, _| vec![15.0],
        |k| match k {
            0..=99 => Some((k as u16, k * PACKET_SAMPLES as u32)),
            100..=199 => None,
            _ => Some(((k - 100) as u16 + sids, k * PACKET_SAMPLES as u32)),
        },
        extra,
    );
    let st = o.last();
    assert_eq!(st.concealed_ms, 0, "{st:?}");
    assert_eq!(st.underruns, 0, "{st:?}");
    assert_eq!(st.late, 0, "{st:?}");
    assert!((1980..=2020).contains(&st.cn_ms), "{st:?}");
    let want: Vec<u32> = (0..100).chain(200..300).collect();
    assert_eq!(o.decoded[..], want[..o.decoded.len()]);
    assert!(o.decoded.len() >= 199);
    // The middle of the gap is noise at -50 dBov.
    let start = find(&o.out, &source(1)[..]).unwrap();
    let gap = &o.out[start + 110 * PACKET_SAMPLES..start + 190 * PACKET_SAMPLES];
    let rms = (gap.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / gap.len() as f64).sqrt();
    let want = 32767.0 * 10f64.powf(-2.5);
    assert!((rms / want - 1.0).abs() < 0.1, "CN rms {rms} vs {want}");
    // Speech resumes on the packet after the gap: packet 200 is cross-faded in from the
    // noise, packet 201 follows it untouched.
    let resumed = find(&o.out, &packet_samples(201)).expect("packet 201 played unmodified");
    assert!(resumed > start + 200 * PACKET_SAMPLES, "{resumed}");
    let p200 = packet_samples(200);
    assert_eq!(
        &o.out[resumed - PACKET_SAMPLES + 80..resumed],
        &p200[80..],
        "200 after its 5 ms merge"
    );
}

#[test]
fn delay_spike_raises_target_then_recovers() {
    let sc = Scenario {
        packets: 1000,
        seed: 21,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        20_000,
        |k, rng| {
            let base = 20.0 + rng.gen_range(0.0..5.0);
            // Packets sent between 5 s and 6 s are held up by 200 ms.
            vec![if (250..300).contains(&k) {
                base + 200.0
            } else {
                base
            }]
        },
        consecutive,
        vec![],
    );
    let before = o.at(4900);
    assert!(before.target_delay_ms <= 30, "{before:?}");
    let peak = o
        .timeline
        .iter()
        .filter(|t| (5000..8000).contains(&t.0))
        .map(|t| t.1.target_delay_ms)
        .max()
        .unwrap();
    assert!(peak >= 180, "target rises with the spike: {peak}");
    let peak_delay = o
        .timeline
        .iter()
        .filter(|t| (5000..8000).contains(&t.0))
        .map(|t| t.1.current_delay_ms)
        .max()
        .unwrap();
    assert!(peak_delay >= 150, "playout delay follows: {peak_delay}");
    let end = o.last();
    assert!(end.target_delay_ms <= 30, "target comes back down: {end:?}");
    assert!(end.current_delay_ms <= 60, "delay comes back down: {end:?}");
    assert!(end.accelerated_ms >= 100, "{end:?}");
    let late = o.at(20_000).late;
    assert_eq!(late, o.at(10_000).late, "stable again after the spike");
}

#[test]
fn sequence_and_timestamp_wrap() {
    let sc = Scenario {
        packets: 300,
        seq0: 65_400,
        ts0: u32::MAX - 50 * PACKET_SAMPLES as u32 + 7,
        ..Scenario::default()
    };
    let o = run(&sc, 300 * 20 + 15, |_, _| vec![15.0], consecutive, vec![]);
    let src = source(300);
    let start = find(&o.out, &src[..PACKET_SAMPLES]).unwrap();
    let played = o.out.len() - start;
    assert!(played > 290 * PACKET_SAMPLES);
    assert_eq!(&o.out[start..], &src[..played]);
    let st = o.last();
    assert_eq!(
        (st.late, st.duplicates, st.concealed_ms, st.underruns),
        (0, 0, 0, 0),
        "{st:?}"
    );
}

#[test]
fn fec_recovers_isolated_losses() {
    // With 60 ms of buffer the packet after a loss is there in time to carry its FEC.
    let sc = Scenario {
        packets: 1000,
        fec: true,
        min_delay_ms: 60,
        seed: 9,
        ..Scenario::default()
    };
    let mut prev_lost = true;
    let o = run(
        &sc,
        20_000,
        |k, rng| {
            let lose = k > 10 && k < 990 && !prev_lost && rng.gen_bool(0.05);
            prev_lost = lose;
            if lose {
                vec![]
            } else {
                vec![15.0]
            }
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    assert!(!o.lost.is_empty());
    assert_eq!(st.fec_recovered, o.lost.len() as u64, "{st:?}");
    assert_eq!(st.concealed_ms, 0, "{st:?}");
    // FEC carries the exact lost audio here, so the output is the input.
    let src = source(1000);
    let start = find(&o.out, &src[..PACKET_SAMPLES]).unwrap();
    let n = 900 * PACKET_SAMPLES;
    assert_eq!(&o.out[start..start + n], &src[..n]);
}

#[test]
fn native_plc_is_used_when_offered() {
    let sc = Scenario {
        packets: 500,
        native_plc: true,
        seed: 13,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        10_000,
        |k, rng| {
            if k > 10 && rng.gen_bool(0.05) {
                vec![]
            } else {
                vec![15.0]
            }
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    assert!(!o.lost.is_empty());
    assert_eq!(st.concealed_ms, o.lost.len() as u64 * 20, "{st:?}");
    assert_eq!(o.plc_samples, o.lost.len() * PACKET_SAMPLES);
}

#[test]
fn stall_beyond_max_delay_drops_instead_of_stretching() {
    // The network stalls for 600 ms, then delivers the backlog at once; with a 150 ms
    // ceiling the buffer must discard what it cannot play in time.
    let sc = Scenario {
        packets: 500,
        max_delay_ms: 150,
        seed: 17,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        10_000,
        |k, _| {
            let send = f64::from(k) * 20.0;
            vec![if (100..130).contains(&k) {
                2600.0 - send + 15.0
            } else {
                15.0
            }]
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    assert!(st.dropped > 0, "{st:?}");
    let worst = o
        .timeline
        .iter()
        .map(|t| t.1.current_delay_ms)
        .max()
        .expect("pulls");
    assert!(
        worst <= 150 + 20,
        "never plays later than max_delay + one frame: {worst}"
    );
    assert!(
        st.target_delay_ms <= 30 && st.current_delay_ms <= 60,
        "recovers: {st:?}"
    );
    assert!(
        max_jump(&o.out) <= natural_jump() * 5 / 4,
        "{}",
        max_jump(&o.out)
    );
}

#[test]
fn voice_like_signal_under_jitter_and_loss_has_no_clicks() {
    // 30 ms jitter, 5 % loss, on a harmonic signal with gliding pitch: concealment,
    // merges and time-stretching must all keep sample steps near the signal's own.
    let sc = Scenario {
        packets: 1500,
        signal: voice,
        seed: 31,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        30_000,
        |k, rng| {
            if k > 10 && rng.gen_bool(0.05) {
                vec![]
            } else {
                vec![10.0 + rng.gen_range(0.0..30.0)]
            }
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    let natural = natural_jump_of(voice, 30 * u64::from(FS));
    let jump = max_jump(&o.out);
    assert!(
        jump <= natural * 11 / 10,
        "jump {jump} vs natural {natural} {st:?}"
    );
    let warm = o.at(5000);
    assert_eq!(st.underruns, warm.underruns, "{warm:?} {st:?}");
    assert_eq!(st.late, warm.late, "{warm:?} {st:?}");
    let lost_after = o.lost.iter().filter(|&&k| (260..1490).contains(&k)).count() as u64;
    let concealed_after = st.concealed_ms - warm.concealed_ms;
    assert!(
        concealed_after.abs_diff(lost_after * 20) <= 40,
        "{concealed_after} vs {lost_after} lost"
    );
    assert!(st.expanded_ms > 0, "{st:?}");
}

#[test]
fn clock_rate_differs_from_sample_rate() {
    // G.722 style: 16 kHz PCM, 8 kHz RTP clock.
    let sc = Scenario {
        packets: 500,
        clock_rate: 8000,
        seed: 41,
        ..Scenario::default()
    };
    let o = run(
        &sc,
        10_000,
        |k, rng| {
            if k > 10 && k < 490 && rng.gen_bool(0.05) {
                vec![]
            } else {
                vec![15.0]
            }
        },
        consecutive,
        vec![],
    );
    let st = o.last();
    assert!(!o.lost.is_empty());
    assert_eq!(st.concealed_ms, o.lost.len() as u64 * 20, "{st:?}");
    assert_eq!(
        (st.late, st.underruns, st.accelerated_ms, st.expanded_ms),
        (0, 0, 0, 0),
        "{st:?}"
    );
    let delivered: Vec<u32> = (0..500).filter(|k| !o.lost.contains(k)).collect();
    assert_eq!(o.decoded[..], delivered[..o.decoded.len()]);
}
