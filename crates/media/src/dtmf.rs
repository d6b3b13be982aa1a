//! RFC 4733 telephone-events (DTMF digits carried as RTP events rather than audio).
//!
//! A digit is one *event*: every packet of it carries the RTP timestamp of the
//! event's start and a growing duration; the last one sets the E bit and is sent three
//! times because nothing acknowledges it (RFC 4733 §2.5.1.4). The first packet carries
//! the RTP marker bit. The receiver therefore identifies a digit by its timestamp.

use std::collections::VecDeque;

use crate::error::MediaError;

/// Decoded 4-byte telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D`.
    pub event: u8,
    /// E bit: this packet ends the event.
    pub end: bool,
    /// Power level as −dBm0, 0–63.
    pub volume: u8,
    /// Duration so far in RTP timestamp units.
    pub duration: u16,
}

impl DtmfEvent {
    /// Payload length on the wire.
    pub const LEN: usize = 4;

    /// The 4-byte payload.
    pub fn encode(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        let flags = (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F);
        [self.event, flags, d[0], d[1]]
    }

    /// Parses a payload; extra bytes (RFC 4733 allows multiple events in redundancy
    /// schemes we do not use) are ignored.
    pub fn decode(payload: &[u8]) -> Result<DtmfEvent, MediaError> {
        let [event, flags, d0, d1] = match payload.get(..4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => {
                return Err(MediaError::Malformed(
                    "telephone-event shorter than 4 bytes",
                ))
            }
        };
        Ok(DtmfEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// RFC 4733 event code of a DTMF character (`0`–`9`, `*`, `#`, `A`–`D`, case-insensitive).
pub fn digit_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// DTMF character of an event code, `None` for the non-DTMF events (16 and up).
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One packet the sender wants on the wire: payload, RTP timestamp, RTP marker bit.
pub type DtmfPacket = (DtmfEvent, u32, bool);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing playing; the next queued digit may start at any poll at or after `ready_at`.
    Idle,
    /// Tone on; `sent_dur` is the duration of the last update sent (None before the first).
    Tone { sent_dur: Option<u32> },
    /// Tone over; `sent` end packets are out.
    Ending { sent: u8 },
}

/// Produces the packet sequence of queued digits, driven by the caller's RTP clock.
///
/// The caller calls [`DtmfSender::poll`] once per packet interval with the number of
/// RTP ticks that passed since the previous call; a packet returned describes the
/// tone up to the end of that interval. With 20 ms polls at 8 kHz and the defaults a
/// digit is: start (marker, duration 160), updates 320, 480, 640, end 800 sent three
/// times; the next digit starts at the first poll at least 50 ms after the tone ended.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    tone_ticks: u32,
    gap_ticks: u32,
    interval_ticks: u32,
    volume: u8,
    queue: VecDeque<u8>,
    phase: Phase,
    /// RTP time at the start of the next poll interval.
    now: u32,
    /// Start timestamp of the current (or last) event.
    event_ts: u32,
    event: u8,
    /// Earliest RTP time the next event may start.
    ready_at: u32,
    running: bool,
}

impl DtmfSender {
    /// A sender for a telephone-event stream with `clock_rate` (usually 8000, or 48000
    /// when negotiated with Opus): 100 ms tones, 50 ms gaps, updates every 20 ms,
    /// volume 10 (−10 dBm0).
    pub fn new(clock_rate: u32) -> Self {
        let per_ms = |ms: u32| (u64::from(clock_rate) * u64::from(ms) / 1000) as u32;
        DtmfSender {
            tone_ticks: per_ms(100).min(u32::from(u16::MAX)),
            gap_ticks: per_ms(50),
            interval_ticks: per_ms(20).max(1),
            volume: 10,
            queue: VecDeque::new(),
            phase: Phase::Idle,
            now: 0,
            event_ts: 0,
            event: 0,
            ready_at: 0,
            running: false,
        }
    }

    /// Changes tone length, gap and update interval (all in RTP ticks). The tone is
    /// capped at 65535 ticks, the longest one event's duration field can describe.
    pub fn with_timing(mut self, tone: u32, gap: u32, interval: u32) -> Self {
        self.tone_ticks = tone.clamp(1, u32::from(u16::MAX));
        self.gap_ticks = gap;
        self.interval_ticks = interval.max(1);
        self
    }

    /// Queues one digit. `rtp_ts_now` is the RTP timestamp the audio stream is at; it
    /// sets the sender's clock when nothing is playing.
    pub fn start(&mut self, digit: char, rtp_ts_now: u32) -> Result<(), MediaError> {
        let ev = digit_to_event(digit).ok_or(MediaError::InvalidDigit(digit))?;
        self.sync_clock(rtp_ts_now);
        self.queue.push_back(ev);
        Ok(())
    }

    /// Queues every digit of `digits` (e.g. `"159#"`); nothing is queued if any
    /// character is not a DTMF digit.
    pub fn start_str(&mut self, digits: &str, rtp_ts_now: u32) -> Result<(), MediaError> {
        let evs = digits
            .chars()
            .map(|c| digit_to_event(c).ok_or(MediaError::InvalidDigit(c)))
            .collect::<Result<Vec<u8>, _>>()?;
        self.sync_clock(rtp_ts_now);
        self.queue.extend(evs);
        Ok(())
    }

    fn sync_clock(&mut self, ts: u32) {
        if !self.running {
            self.now = ts;
            self.ready_at = ts;
            self.running = true;
        }
    }

    /// True while a digit is playing, ending or queued: the caller should send telephone
    /// events rather than (or in addition to) audio.
    pub fn is_active(&self) -> bool {
        self.phase != Phase::Idle || !self.queue.is_empty()
    }

    /// Advances the clock by `pcm_clock_advance` RTP ticks and returns the packet due
    /// for this interval, if any.
    pub fn poll(&mut self, pcm_clock_advance: u32) -> Option<DtmfPacket> {
        let before = self.now;
        self.now = self.now.wrapping_add(pcm_clock_advance);
        if self.phase == Phase::Idle {
            // Start the next digit at this interval's start if the gap has passed.
            let gap_over = before.wrapping_sub(self.ready_at) <= u32::MAX / 2;
            if self.queue.is_empty() {
                if gap_over {
                    // Fully quiet: the next start() may re-anchor the clock.
                    self.running = false;
                }
                return None;
            }
            if !gap_over {
                return None;
            }
            self.event = self.queue.pop_front()?;
            self.event_ts = before;
            self.phase = Phase::Tone { sent_dur: None };
        }
        let elapsed = self.now.wrapping_sub(self.event_ts);
        match self.phase {
            Phase::Idle => None,
            Phase::Tone { sent_dur } => {
                if elapsed >= self.tone_ticks {
                    self.phase = Phase::Ending { sent: 1 };
                    self.ready_at = self.event_ts.wrapping_add(self.tone_ticks + self.gap_ticks);
                    return Some(self.packet(self.tone_ticks, true, sent_dur.is_none()));
                }
                let due = match sent_dur {
                    None => true,
                    Some(d) => elapsed - d >= self.interval_ticks,
                };
                if !due {
                    return None;
                }
                self.phase = Phase::Tone {
                    sent_dur: Some(elapsed),
                };
                Some(self.packet(elapsed, false, sent_dur.is_none()))
            }
            Phase::Ending { sent } => {
                let pkt = self.packet(self.tone_ticks, true, false);
                self.phase = if sent + 1 >= 3 {
                    Phase::Idle
                } else {
                    Phase::Ending { sent: sent + 1 }
                };
                Some(pkt)
            }
        }
    }

    fn packet(&self, duration: u32, end: bool, marker: bool) -> DtmfPacket {
        let ev = DtmfEvent {
            event: self.event,
            end,
            volume: self.volume,
            duration: u16::try_from(duration).unwrap_or(u16::MAX),
        };
        (ev, self.event_ts, marker)
    }
}

/// Turns received telephone-event packets into digits, each reported once.
///
/// Retransmitted end packets and updates share the event's RTP timestamp, so the
/// receiver remembers the last few timestamps it has reported and ignores repeats. A
/// digit is reported on the first packet of its event that arrives, which is the end
/// packet when the earlier ones were lost.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    seen: VecDeque<u32>,
}

impl DtmfReceiver {
    /// How many recent event timestamps are remembered (covers reordering of a few
    /// digits).
    const MEMORY: usize = 8;

    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet (its RTP timestamp and payload); returns a digit the first time
    /// its event is seen. Malformed payloads and non-DTMF events give `None`.
    pub fn on_packet(&mut self, rtp_ts: u32, payload: &[u8]) -> Option<char> {
        let ev = DtmfEvent::decode(payload).ok()?;
        let digit = event_to_digit(ev.event)?;
        if self.seen.contains(&rtp_ts) {
            return None;
        }
        if self.seen.len() >= Self::MEMORY {
            self.seen.pop_front();
        }
        self.seen.push_back(rtp_ts);
        Some(digit)
    }
}
