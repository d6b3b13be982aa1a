#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
use natter_media::{new_decoder, new_encoder, CodecKind, CodecParams};

#[test]
fn names_and_rates() {
    assert_eq!(CodecKind::from_name("PCMU"), Some(CodecKind::Pcmu));
    assert_eq!(CodecKind::from_name("pcma"), Some(CodecKind::Pcma));
    assert_eq!(CodecKind::from_name("G722"), Some(CodecKind::G722));
    assert_eq!(CodecKind::from_name("OPUS"), Some(CodecKind::Opus));
    assert_eq!(CodecKind::from_name("l16"), Some(CodecKind::L16));
    assert_eq!(CodecKind::from_name("telephone-event"), None);
    assert_eq!(CodecKind::from_name(""), None);
    let table = [
        (CodecKind::Pcmu, "PCMU", Some(0), 8000, 8000, None),
        (CodecKind::Pcma, "PCMA", Some(8), 8000, 8000, None),
        (CodecKind::G722, "G722", Some(9), 8000, 16000, None),
        (CodecKind::Opus, "opus", None, 48000, 48000, Some(2)),
        (CodecKind::L16, "L16", None, 16000, 16000, None),
    ];
    for (k, name, pt, clock, rate, ch) in table {
        assert_eq!(k.rtp_name(), name);
        assert_eq!(k.static_payload_type(), pt);
        assert_eq!(k.clock_rate(), clock);
        assert_eq!(k.sample_rate(), rate);
        assert_eq!(k.sdp_channels(), ch);
        assert_eq!(CodecKind::from_name(name), Some(k));
    }
    assert_eq!(CodecParams::new(CodecKind::G722).frame_samples(), 320);
    assert_eq!(CodecParams::new(CodecKind::Opus).frame_samples(), 960);
    assert_eq!(CodecKind::Pcmu.rtp_ticks(160), 160);
    assert_eq!(CodecKind::Opus.rtp_ticks(960), 960);
}

#[test]
fn l16_network_order() {
    let mut enc = new_encoder(&CodecParams::new(CodecKind::L16)).unwrap();
    let mut p = Vec::new();
    enc.encode(&[0x0102, -2, i16::MIN], &mut p).unwrap();
    assert_eq!(p, [0x01, 0x02, 0xFF, 0xFE, 0x80, 0x00]);
    let mut dec = new_decoder(CodecKind::L16).unwrap();
    let mut out = Vec::new();
    assert_eq!(dec.decode(&p, &mut out).unwrap(), 3);
    assert_eq!(out, [0x0102, -2, i16::MIN]);
    assert!(dec.decode(&[1, 2, 3], &mut out).is_err());
}

/// Waveform-codec concealment: pitch repeat at full level first, fading to silence by
/// 60 ms, and a click-free return.
#[test]
fn waveform_plc_repeats_then_fades() {
    for kind in [
        CodecKind::Pcmu,
        CodecKind::Pcma,
        CodecKind::G722,
        CodecKind::L16,
    ] {
        let rate = kind.sample_rate();
        let frame = (rate / 50) as usize;
        let mut enc = new_encoder(&CodecParams::new(kind)).unwrap();
        let mut dec = new_decoder(kind).unwrap();
        let mut gen = natter_media::ToneGenerator::new(200.0, rate, 8000);
        let mut out = Vec::new();
        for _ in 0..10 {
            let mut pcm = vec![0; frame];
            gen.fill(&mut pcm);
            let mut p = Vec::new();
            enc.encode(&pcm, &mut p).unwrap();
            dec.decode(&p, &mut out).unwrap();
        }
        let good = natter_media::rms(&out[out.len() - frame..]);
        let mut lost = Vec::new();
        for _ in 0..4 {
            dec.conceal(frame, &mut lost);
        }
        assert_eq!(lost.len(), 4 * frame);
        let f = |i: usize| natter_media::rms(&lost[i * frame..(i + 1) * frame]);
        // 0–20 ms: full for 10 ms then fading; 20–40 ms lower; 60 ms on: silence.
        assert!(f(0) > 0.7 * good, "{kind:?}: {} vs {good}", f(0));
        assert!(f(1) < f(0) && f(1) > 0.1 * good, "{kind:?}: {}", f(1));
        assert!(f(2) < f(1), "{kind:?}");
        assert_eq!(f(3), 0.0, "{kind:?}");
        // The repeated period keeps the tone's pitch.
        let first = &lost[..frame];
        assert!(
            natter_media::goertzel_power(first, rate, 200.0) > 0.6 * f(0).powi(2),
            "{kind:?} pitch"
        );
    }
}

#[test]
fn conceal_without_history_is_silence() {
    let mut dec = new_decoder(CodecKind::Pcmu).unwrap();
    let mut out = Vec::new();
    dec.conceal(160, &mut out);
    assert_eq!(out, vec![0; 160]);
    assert!(!dec.decode_fec(&[1, 2, 3], 160, &mut out));
    assert_eq!(out.len(), 160);
}

/// After a loss the first good frame is cross-faded from the concealment, so the seam
/// has no step larger than the signal's own slope allows.
#[test]
fn plc_recovery_has_no_click() {
    let mut enc = new_encoder(&CodecParams::new(CodecKind::L16)).unwrap();
    let mut dec = new_decoder(CodecKind::L16).unwrap();
    let mut gen = natter_media::ToneGenerator::new(230.0, 16000, 10000);
    let mut out = Vec::new();
    let mut frames = Vec::new();
    for i in 0..12 {
        let mut pcm = vec![0; 320];
        gen.fill(&mut pcm);
        if i == 9 {
            // The frame after the loss comes back in opposite phase: worst case seam.
            pcm.iter_mut().for_each(|s| *s = -*s);
        }
        let mut p = Vec::new();
        enc.encode(&pcm, &mut p).unwrap();
        frames.push(p);
    }
    for p in &frames[..8] {
        dec.decode(p, &mut out).unwrap();
    }
    dec.conceal(320, &mut out);
    // Frame 9 arrives; the tone's phase there does not match the repeated period.
    dec.decode(&frames[9], &mut out).unwrap();
    // Largest step a 230 Hz, 10000-peak sine makes between samples at 16 kHz is ~903;
    // the opposite-phase frame would jump by up to 20000 without the cross-fade.
    let seam = 9 * 320;
    let worst = out[seam - 40..seam + 80]
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap();
    assert!(worst < 1400, "click of {worst} at the seam");
    // Without the cross-fade the raw frame would have started with a jump.
    let raw = i16::from_be_bytes([frames[9][0], frames[9][1]]);
    let jump = (i32::from(raw) - i32::from(out[seam - 1])).abs();
    assert!(
        jump > worst,
        "test tone must actually be discontinuous ({jump} vs {worst})"
    );
}

/// Which build this is must show in the API, and a missing libopus must be a typed
/// error rather than a link or build failure.
#[test]
fn opus_availability_matches_build() {
    use natter_media::{opus_available, opus_version, MediaError};
    for k in CodecKind::ALL {
        assert_eq!(k.is_available(), k != CodecKind::Opus || opus_available());
    }
    let enc = new_encoder(&CodecParams::new(CodecKind::Opus));
    let dec = new_decoder(CodecKind::Opus);
    if opus_available() {
        assert!(enc.is_ok() && dec.is_ok());
        assert!(opus_version().starts_with("libopus"), "{}", opus_version());
    } else {
        eprintln!("built without libopus: checking the Unavailable errors only");
        let want = "opus: built without libopus (install libopus-dev and rebuild)";
        for e in [enc.err().unwrap(), dec.err().unwrap()] {
            assert!(matches!(e, MediaError::Unavailable(_)), "{e:?}");
            assert_eq!(e.to_string(), want);
        }
        assert_eq!(opus_version(), "none");
    }
}

/// The packet inspection helpers need no libopus: hand-made packets.
#[test]
fn opus_packet_helpers_without_libopus() {
    use natter_media::opus_codec::{is_dtx_packet, packet_has_fec};
    assert!(is_dtx_packet(&[0x08]));
    assert!(!is_dtx_packet(&[0x08, 1, 2]));
    assert!(!packet_has_fec(&[]));
    assert!(!packet_has_fec(&[0xF8, 0xFF, 0xFE])); // CELT-only
                                                   // SILK 20 ms (config 1), code 0, so the frame opens with one VAD bit then the LBRR
                                                   // bit. Worked by hand from RFC 6716 §4.1: the first byte b sets the decoder value to
                                                   // 127 - b/2 (in units of 2^24 after normalising) against a range of 128; a bit is 1
                                                   // while the value is below half the range, which then halves.
    assert!(packet_has_fec(&[0x08, 0xFF, 0xFF, 0xFF])); // VAD 1, LBRR 1
    assert!(!packet_has_fec(&[0x08, 0x00, 0x00, 0x00])); // VAD 0, LBRR 0
    assert!(!packet_has_fec(&[0x08, 0xA0, 0x00, 0x00])); // VAD 1, LBRR 0
    assert!(packet_has_fec(&[0x08, 0x40, 0x00, 0x00])); // VAD 0, LBRR 1
                                                        // The same frame behind a code-2 length byte is found too.
    assert!(packet_has_fec(&[0x0A, 0x03, 0x40, 0x00, 0x00, 0x00]));
}
