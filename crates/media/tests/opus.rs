//! Opus round trips through libopus; compiled only when the build found libopus
//! (`--cfg natter_opus`, see build.rs). The no-libopus behaviour is tested in codec.rs.
#![cfg(natter_opus)]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
mod common;

use common::sine;
use natter_media::{goertzel_power, new_decoder, new_encoder, rms, CodecKind, CodecParams};

fn params(fec: bool, dtx: bool) -> CodecParams {
    CodecParams {
        kind: CodecKind::Opus,
        ptime_ms: 20,
        opus_fec: fec,
        opus_dtx: dtx,
        opus_bitrate: Some(32000),
    }
}

#[test]
fn tone_survives_encode_decode() {
    let mut enc = new_encoder(&params(false, false)).unwrap();
    let mut dec = new_decoder(CodecKind::Opus).unwrap();
    assert_eq!(enc.sample_rate(), 48000);
    assert_eq!(dec.sample_rate(), 48000);
    let pcm = sine(1000.0, 48000, 10000.0, 48000);
    let mut out = Vec::new();
    for frame in pcm.chunks(960) {
        let mut pkt = Vec::new();
        enc.encode(frame, &mut pkt).unwrap();
        assert!(!pkt.is_empty() && pkt.len() < 400, "{}", pkt.len());
        assert_eq!(dec.decode(&pkt, &mut out).unwrap(), 960);
    }
    assert_eq!(out.len(), 48000);
    let tail = &out[9600..];
    let at_1k = goertzel_power(tail, 48000, 1000.0);
    assert!(at_1k > 0.7 * rms(tail).powi(2), "energy not at 1 kHz");
    for other in [500.0, 1500.0, 2000.0, 3000.0] {
        assert!(
            at_1k > 1000.0 * goertzel_power(tail, 48000, other),
            "{other} Hz"
        );
    }
    let level = rms(tail) / rms(&pcm);
    assert!((0.8..1.2).contains(&level), "gain {level}");
}

#[test]
fn bad_frame_sizes_rejected() {
    let mut enc = new_encoder(&params(false, false)).unwrap();
    for n in [0, 100, 959, 961, 3000] {
        assert!(enc.encode(&vec![0; n], &mut Vec::new()).is_err(), "{n}");
    }
    for n in [120, 240, 480, 960, 1920, 2880] {
        assert!(enc.encode(&vec![0; n], &mut Vec::new()).is_ok(), "{n}");
    }
}

/// Packet N is lost; packet N+1 carries its LBRR copy. FEC recovery must produce a full
/// frame of the tone, close to what the lost packet held, and better than PLC.
#[test]
fn fec_recovers_lost_packet() {
    let mut enc = new_encoder(&params(true, false)).unwrap();
    let pcm = sine(440.0, 48000, 12000.0, 48000);
    let pkts: Vec<Vec<u8>> = pcm
        .chunks(960)
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p).unwrap();
            p
        })
        .collect();
    let lost = 30;

    let mut reference = new_decoder(CodecKind::Opus).unwrap();
    let mut ref_out = Vec::new();
    for p in &pkts[..=lost] {
        reference.decode(p, &mut ref_out).unwrap();
    }
    let want = &ref_out[lost * 960..];

    let mut dec = new_decoder(CodecKind::Opus).unwrap();
    let mut out = Vec::new();
    for p in &pkts[..lost] {
        dec.decode(p, &mut out).unwrap();
    }
    let mut rec = Vec::new();
    assert!(dec.decode_fec(&pkts[lost + 1], 960, &mut rec));
    assert_eq!(rec.len(), 960);
    assert!(
        rms(&rec) > 0.5 * rms(want),
        "recovered frame too quiet: {}",
        rms(&rec)
    );
    let err: Vec<i16> = rec
        .iter()
        .zip(want)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let snr = 20.0 * (rms(want) / rms(&err).max(1.0)).log10();
    assert!(snr > 5.0, "FEC frame far from original: {snr} dB");
    // The stream continues normally afterwards.
    let n = dec.decode(&pkts[lost + 1], &mut out).unwrap();
    assert_eq!(n, 960);
    // Bad input to decode_fec is refused, not a panic.
    assert!(!dec.decode_fec(&[], 960, &mut rec));
    assert!(!dec.decode_fec(&pkts[lost + 2], 1000, &mut rec));
}

#[test]
fn plc_is_not_silent_and_decays() {
    let mut enc = new_encoder(&params(false, false)).unwrap();
    let mut dec = new_decoder(CodecKind::Opus).unwrap();
    let pcm = sine(300.0, 48000, 10000.0, 48000);
    let mut out = Vec::new();
    for f in pcm.chunks(960).take(25) {
        let mut p = Vec::new();
        enc.encode(f, &mut p).unwrap();
        dec.decode(&p, &mut out).unwrap();
    }
    let mut first = Vec::new();
    dec.conceal(960, &mut first);
    assert_eq!(first.len(), 960);
    assert!(
        rms(&first) > 1000.0,
        "first concealed frame rms {}",
        rms(&first)
    );
    let mut later = Vec::new();
    for _ in 0..10 {
        later.clear();
        dec.conceal(960, &mut later);
    }
    assert!(
        rms(&later) < rms(&first) / 2.0,
        "{} vs {}",
        rms(&later),
        rms(&first)
    );
    // Odd sizes are rounded internally but exactly the requested count is returned.
    let mut odd = Vec::new();
    dec.conceal(1000, &mut odd);
    assert_eq!(odd.len(), 1000);
}

#[test]
fn dtx_shrinks_silence() {
    let mut enc = new_encoder(&params(false, true)).unwrap();
    let mut sizes = Vec::new();
    for _ in 0..50 {
        let mut p = Vec::new();
        enc.encode(&[0; 960], &mut p).unwrap();
        sizes.push(p.len());
    }
    // After ~200 ms of silence libopus sends 1-byte DTX frames, with a real frame
    // every 400 ms to refresh the far end's comfort noise.
    let tiny = sizes[10..].iter().filter(|&&n| n <= 2).count();
    assert!(tiny >= 36, "{sizes:?}");
    assert!(sizes[..5].iter().all(|&n| n > 2), "{sizes:?}");
}

/// The LBRR flag read straight from the bitstream agrees with the encoder settings.
/// Measured with libopus 1.3 on this tone: FEC on at 32 kbit/s flags every packet after
/// the first (SILK and hybrid configs 15, 9); FEC off codes the same configs without
/// it; at 12 kbit/s libopus drops LBRR even with FEC on.
#[test]
fn lbrr_flag_detection() {
    use natter_media::opus_codec::packet_has_fec;
    let pcm = sine(440.0, 48000, 12000.0, 48000);
    let run = |fec: bool, bitrate: u32| -> Vec<(u8, bool)> {
        let p = CodecParams {
            opus_bitrate: Some(bitrate),
            ..params(fec, false)
        };
        let mut enc = new_encoder(&p).unwrap();
        pcm.chunks(960)
            .take(30)
            .map(|f| {
                let mut pk = Vec::new();
                enc.encode(f, &mut pk).unwrap();
                (pk[0] >> 3, packet_has_fec(&pk))
            })
            .collect()
    };
    let on = run(true, 32000);
    assert!(!on[0].1, "first packet has nothing to protect");
    assert!(on[1..].iter().all(|&(cfg, f)| f && cfg < 16), "{on:?}");
    let off = run(false, 32000);
    assert!(off.iter().all(|&(_, f)| !f), "{off:?}");
    assert!(
        off.iter().filter(|&&(cfg, _)| cfg < 16).count() >= 9,
        "{off:?}"
    );
    let low = run(true, 12000);
    assert!(low.iter().all(|&(cfg, f)| !f && cfg < 16), "{low:?}");

    assert!(!packet_has_fec(&[]));
    assert!(!packet_has_fec(&[0xF8, 0xFF, 0xFE])); // CELT-only config 31
    assert!(!packet_has_fec(&[0x4A])); // code 2 without its length byte
}

/// decode_fec refuses (appends nothing) when the next packet has no LBRR, so the
/// caller knows to conceal instead.
#[test]
fn decode_fec_without_lbrr_is_refused() {
    let mut enc = new_encoder(&params(false, false)).unwrap();
    let mut dec = new_decoder(CodecKind::Opus).unwrap();
    let pcm = sine(440.0, 48000, 12000.0, 9600);
    let mut pkts = Vec::new();
    for f in pcm.chunks(960) {
        let mut p = Vec::new();
        enc.encode(f, &mut p).unwrap();
        pkts.push(p);
    }
    let mut out = Vec::new();
    for p in &pkts[..5] {
        dec.decode(p, &mut out).unwrap();
    }
    let before = out.len();
    assert!(!dec.decode_fec(&pkts[6], 960, &mut out));
    assert_eq!(out.len(), before);
}
