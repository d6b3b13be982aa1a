//! `natter webrtc --record` goes through the jitter buffer: Opus packets of a 440 Hz tone
//! arrive reordered and with one lost, in virtual time; the recording is continuous (every
//! 20 ms frame carries the tone), the lost frame comes back from the next packet's in-band
//! FEC, and nothing counts as late.

use std::time::{Duration, Instant};

use natter_media::{new_encoder, CodecKind, CodecParams, ToneGenerator};
use natter_webrtc::audio::{AudioRecorder, FRAME, IDLE, PULL, RATE};

fn rms(s: &[i16]) -> f64 {
    (s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

/// 60 Opus frames of the tone (FEC on), as (seq, timestamp, payload).
fn packets() -> Vec<(u16, u32, Vec<u8>)> {
    let mut enc = new_encoder(&CodecParams {
        opus_fec: true,
        ..CodecParams::new(CodecKind::Opus)
    })
    .expect("opus encoder");
    let mut tone = ToneGenerator::new(440.0, RATE, 6000);
    (0..60u16)
        .map(|i| {
            let mut pcm = vec![0i16; FRAME];
            tone.fill(&mut pcm);
            let mut out = Vec::new();
            enc.encode(&pcm, &mut out).expect("encode");
            (
                60_000u16.wrapping_add(i),
                1000 + u32::from(i) * FRAME as u32,
                out,
            )
        })
        .collect()
}

/// Delivers `order` (indices into the packets) one per 20 ms and pulls 20 ms frames.
fn record(order: &[usize]) -> (Vec<i16>, natter_jitter::JitterStats) {
    let pk = packets();
    let mut rec = AudioRecorder::without_file().expect("recorder");
    let t0 = Instant::now();
    let mut pcm = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let now = t0 + PULL * k as u32;
        let (seq, ts, p) = &pk[i];
        rec.insert(*seq, *ts, p, now);
        pcm.extend(rec.pull_due(now));
    }
    // Play out what is left.
    let end = t0 + PULL * order.len() as u32;
    for k in 0..30 {
        pcm.extend(rec.pull_due(end + Duration::from_millis(20 * k)));
    }
    (pcm, rec.stats())
}

#[test]
fn reordered_and_lost_packets_are_put_in_order_and_concealed() {
    // Pairs swapped (1,0,3,2,...) and packet 31 never arrives.
    let mut order: Vec<usize> = (0..60).map(|i| i ^ 1).collect();
    order.retain(|&i| i != 31);
    let (pcm, st) = record(&order);
    assert_eq!(
        st.late, 0,
        "reordering within the buffer is not lateness: {st:?}"
    );
    assert_eq!(st.duplicates, 0);
    assert_eq!(st.packets_received, 59);
    assert!(
        st.fec_recovered + st.concealed_ms / 20 >= 1,
        "the lost frame was recovered or concealed: {st:?}"
    );
    // From the first frame with the tone on, the 60 frames sent are played in order: the
    // tone throughout (a swapped pair decoded in arrival order would break the phase every
    // 40 ms), the lost frame concealed (a dip, not a hole).
    let frames: Vec<f64> = pcm.chunks(FRAME).map(rms).collect();
    let first = frames
        .iter()
        .position(|&r| r > 2000.0)
        .expect("tone recorded");
    let played = &frames[first..first + 60];
    let weak = played.iter().filter(|&&r| r < 2000.0).count();
    assert!(weak <= 2, "{weak} weak frames: {played:?}");
    assert!(played.iter().all(|&r| r > 500.0), "no hole: {played:?}");
    // Up to the loss, sample for sample what the in-order stream plays.
    let (reference, _) = record(&(0..60).collect::<Vec<_>>());
    let rf = reference
        .chunks(FRAME)
        .position(|c| rms(c) > 2000.0)
        .expect("tone");
    assert_eq!(
        pcm[first * FRAME..(first + 30) * FRAME],
        reference[rf * FRAME..(rf + 30) * FRAME],
        "frames 0..30 identical to in-order playout"
    );
}

#[test]
fn in_order_stream_plays_every_frame_once() {
    let order: Vec<usize> = (0..60).collect();
    let (pcm, st) = record(&order);
    assert_eq!((st.late, st.fec_recovered), (0, 0), "{st:?}");
    // Concealment only after the stream ended, until the recorder pauses.
    assert!(st.concealed_ms <= IDLE.as_millis() as u64 + 20, "{st:?}");
    let frames: Vec<f64> = pcm.chunks(FRAME).map(rms).collect();
    let tone = frames.iter().filter(|&&r| r > 2000.0).count();
    assert!((59..=61).contains(&tone), "{tone} tone frames: {frames:?}");
}
