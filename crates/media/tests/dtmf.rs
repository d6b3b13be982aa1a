#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too
use natter_media::{digit_to_event, event_to_digit, DtmfEvent, DtmfReceiver, DtmfSender};

#[test]
fn payload_encode_decode() {
    let ev = DtmfEvent {
        event: 11,
        end: true,
        volume: 10,
        duration: 800,
    };
    assert_eq!(ev.encode(), [0x0B, 0x8A, 0x03, 0x20]);
    assert_eq!(DtmfEvent::decode(&[0x0B, 0x8A, 0x03, 0x20]).unwrap(), ev);
    // R bit ignored, volume masked to 6 bits, trailing bytes ignored.
    let d = DtmfEvent::decode(&[5, 0x7F, 0, 160, 9, 9]).unwrap();
    assert_eq!((d.event, d.end, d.volume, d.duration), (5, false, 63, 160));
    assert!(DtmfEvent::decode(&[1, 2, 3]).is_err());
    assert!(DtmfEvent::decode(&[]).is_err());
}

#[test]
fn digit_mapping() {
    let all = "0123456789*#ABCD";
    for (i, c) in all.chars().enumerate() {
        assert_eq!(digit_to_event(c), Some(i as u8));
        assert_eq!(event_to_digit(i as u8), Some(c));
    }
    assert_eq!(digit_to_event('a'), Some(12));
    assert_eq!(digit_to_event('E'), None);
    assert_eq!(digit_to_event(' '), None);
    assert_eq!(event_to_digit(16), None);
}

type Pkt = (u8, bool, u16, u32, bool);

fn flat(p: Option<(DtmfEvent, u32, bool)>) -> Option<Pkt> {
    p.map(|(e, ts, m)| (e.event, e.end, e.duration, ts, m))
}

/// 20 ms polls at 8 kHz: start with marker, updates every 160, end at 800 sent three
/// times, then a gap, then the next digit at the first poll ≥ 50 ms after tone end.
#[test]
fn sender_exact_sequence() {
    let mut s = DtmfSender::new(8000);
    assert!(!s.is_active());
    s.start_str("15", 1000).unwrap();
    assert!(s.is_active());
    let mut got = Vec::new();
    for _ in 0..16 {
        got.push(flat(s.poll(160)));
    }
    let want: Vec<Option<Pkt>> = vec![
        Some((1, false, 160, 1000, true)),
        Some((1, false, 320, 1000, false)),
        Some((1, false, 480, 1000, false)),
        Some((1, false, 640, 1000, false)),
        Some((1, true, 800, 1000, false)),
        Some((1, true, 800, 1000, false)),
        Some((1, true, 800, 1000, false)),
        // tone ended at 1800; gap until 2200; the poll starting at 2120 is too early
        None,
        // poll interval starting at 2280 begins digit 5
        Some((5, false, 160, 2280, true)),
        Some((5, false, 320, 2280, false)),
        Some((5, false, 480, 2280, false)),
        Some((5, false, 640, 2280, false)),
        Some((5, true, 800, 2280, false)),
        Some((5, true, 800, 2280, false)),
        Some((5, true, 800, 2280, false)),
        None,
    ];
    assert_eq!(got, want);
    // Volume is the default −10 dBm0.
    let mut s = DtmfSender::new(8000);
    s.start('#', 0).unwrap();
    let (ev, _, _) = s.poll(160).unwrap();
    assert_eq!(ev.volume, 10);
    assert_eq!(ev.event, 11);
}

#[test]
fn sender_update_interval_and_wide_clock() {
    // 48 kHz telephone-event clock polled every 10 ms: updates only every 20 ms.
    let mut s = DtmfSender::new(48000);
    s.start('9', 0).unwrap();
    let mut got = Vec::new();
    for _ in 0..13 {
        got.push(flat(s.poll(480)));
    }
    let want: Vec<Option<Pkt>> = vec![
        Some((9, false, 480, 0, true)),
        None,
        Some((9, false, 1440, 0, false)),
        None,
        Some((9, false, 2400, 0, false)),
        None,
        Some((9, false, 3360, 0, false)),
        None,
        Some((9, false, 4320, 0, false)),
        Some((9, true, 4800, 0, false)),
        Some((9, true, 4800, 0, false)),
        Some((9, true, 4800, 0, false)),
        None,
    ];
    assert_eq!(got, want);
    assert!(!s.is_active());
}

#[test]
fn sender_rejects_bad_digits_atomically() {
    let mut s = DtmfSender::new(8000);
    assert!(s.start('x', 0).is_err());
    assert!(s.start_str("12x", 0).is_err());
    assert!(!s.is_active());
    assert_eq!(s.poll(160), None);
}

#[test]
fn sender_timestamp_wraps() {
    let mut s = DtmfSender::new(8000);
    s.start('0', u32::MAX - 100).unwrap();
    let first = flat(s.poll(160));
    assert_eq!(first, Some((0, false, 160, u32::MAX - 100, true)));
    for _ in 0..6 {
        let p = flat(s.poll(160)).unwrap();
        assert_eq!(p.3, u32::MAX - 100);
    }
    assert_eq!(s.poll(160), None);
}

#[test]
fn receiver_reports_each_digit_once() {
    let mut r = DtmfReceiver::new();
    let pkt = |event: u8, end: bool, dur: u16| {
        DtmfEvent {
            event,
            end,
            volume: 10,
            duration: dur,
        }
        .encode()
    };
    let mut digits = String::new();
    let stream: Vec<(u32, [u8; 4])> = vec![
        (1000, pkt(1, false, 160)),
        (1000, pkt(1, false, 320)),
        (1000, pkt(1, true, 800)),
        (1000, pkt(1, true, 800)),
        (1000, pkt(1, true, 800)),
        // second digit: its first packets lost, only end packets arrive
        (2280, pkt(5, true, 800)),
        (2280, pkt(5, true, 800)),
        // same digit pressed again is a new event (new timestamp)
        (3560, pkt(5, false, 160)),
        (3560, pkt(5, true, 800)),
        // late duplicate of the first digit after reordering
        (1000, pkt(1, true, 800)),
        (4840, pkt(11, false, 160)),
    ];
    for (ts, p) in &stream {
        if let Some(d) = r.on_packet(*ts, p) {
            digits.push(d);
        }
    }
    assert_eq!(digits, "155#");
    assert_eq!(r.on_packet(9999, &[1, 2]), None);
    assert_eq!(r.on_packet(9999, &pkt(16, false, 160)), None);
}

/// The sender's output fed to the receiver yields exactly the digits sent.
#[test]
fn sender_to_receiver() {
    let mut s = DtmfSender::new(8000);
    s.start_str("159#*0D", 42).unwrap();
    let mut r = DtmfReceiver::new();
    let mut digits = String::new();
    for _ in 0..200 {
        if let Some((ev, ts, _)) = s.poll(160) {
            if let Some(d) = r.on_packet(ts, &ev.encode()) {
                digits.push(d);
            }
        }
    }
    assert_eq!(digits, "159#*0D");
}
