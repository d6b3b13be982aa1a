//! Audio of `natter webrtc` beside the sans-IO core: what we send (a WAV file, else a
//! tone) as 20 ms Opus frames, and what we record: received Opus packets through the
//! project's adaptive jitter buffer (natter-jitter: reordering, Opus FEC for a lost frame
//! when the next packet carries it, else Opus PLC), decoded into a WAV file paced at 20 ms.
//! With `--echo` and no `--play`, nothing is generated: received packets go back as they are.

use std::path::Path;
use std::time::{Duration, Instant};

use natter_jitter::{JitterBuffer, JitterConfig};

use natter_media::{
    new_decoder, new_encoder, CodecKind, CodecParams, Encoder, JitterDecoder, Resampler,
    ToneGenerator, WavRecorder, WavSource,
};

/// Opus runs at 48 kHz; 20 ms frames.
pub const RATE: u32 = 48_000;
/// Samples (and RTP ticks) per 20 ms frame.
pub const FRAME: usize = 960;

/// 20 ms Opus frames from a file (once, then silence) or a 440 Hz tone.
pub struct AudioSource {
    encoder: Box<dyn Encoder>,
    clip: Option<(Vec<i16>, usize)>,
    tone: ToneGenerator,
    /// RTP timestamp of the next frame.
    pub timestamp: u32,
    first: bool,
}

impl std::fmt::Debug for AudioSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioSource")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl AudioSource {
    /// A source playing `file` (any rate, mixed to mono), or a tone without one.
    pub fn new(file: Option<&Path>) -> Result<Self, String> {
        let encoder = new_encoder(&CodecParams {
            opus_fec: true,
            ..CodecParams::new(CodecKind::Opus)
        })
        .map_err(|e| format!("Opus encoder: {e}"))?;
        let clip = match file {
            Some(p) => {
                let mut src = WavSource::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let rate = src.sample_rate();
                let pcm = src
                    .read_all()
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                let pcm = if rate == RATE {
                    pcm
                } else {
                    let mut r = Resampler::new(rate, RATE).map_err(|e| e.to_string())?;
                    let mut out = Vec::new();
                    r.process(&pcm, &mut out);
                    out
                };
                Some((pcm, 0))
            }
            None => None,
        };
        Ok(AudioSource {
            encoder,
            clip,
            tone: ToneGenerator::new(440.0, RATE, 6000),
            timestamp: 0,
            first: true,
        })
    }

    /// The next frame's Opus payload, its RTP timestamp and marker bit.
    pub fn next_frame(&mut self) -> Option<(Vec<u8>, u32, bool)> {
        let mut pcm = vec![0i16; FRAME];
        match &mut self.clip {
            Some((samples, pos)) => {
                let end = (*pos + FRAME).min(samples.len());
                if let Some(s) = samples.get(*pos..end) {
                    pcm[..s.len()].copy_from_slice(s);
                }
                *pos = end;
            }
            None => self.tone.fill(&mut pcm),
        }
        let mut out = Vec::with_capacity(200);
        self.encoder.encode(&pcm, &mut out).ok()?;
        let ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
        let marker = std::mem::take(&mut self.first);
        Some((out, ts, marker))
    }
}

/// Frame the recorder pulls from the jitter buffer.
pub const PULL: Duration = Duration::from_millis(20);
/// Without packets for this long the stream has stopped: the recording pauses (no
/// minutes of concealment after the peer went quiet) until packets come again.
pub const IDLE: Duration = Duration::from_millis(200);

/// Decodes received Opus packets through a jitter buffer into a WAV file (48 kHz mono):
/// 20 ms per 20 ms of time from the first packet on, paused while no packets come.
pub struct AudioRecorder {
    jb: JitterBuffer<JitterDecoder>,
    wav: Option<WavRecorder>,
    pcm: Vec<i16>,
    /// When the next 20 ms frame is due (`None`: paused).
    next_pull: Option<Instant>,
    last_arrival: Option<Instant>,
    /// Samples written.
    pub samples: u64,
}

impl std::fmt::Debug for AudioRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioRecorder")
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

impl AudioRecorder {
    /// Creates `file`.
    pub fn create(file: &Path) -> Result<Self, String> {
        let wav =
            WavRecorder::create(file, RATE).map_err(|e| format!("{}: {e}", file.display()))?;
        Self::with_wav(Some(wav))
    }

    /// A recorder that only decodes (tests take the samples [`Self::pull_due`] returns).
    pub fn without_file() -> Result<Self, String> {
        Self::with_wav(None)
    }

    fn with_wav(wav: Option<WavRecorder>) -> Result<Self, String> {
        let decoder = new_decoder(CodecKind::Opus).map_err(|e| format!("Opus decoder: {e}"))?;
        let cfg = JitterConfig {
            sample_rate: RATE,
            clock_rate: RATE,
            frame_ms: 20,
            min_delay_ms: 20,
            max_delay_ms: 400,
            max_packets: 200,
        };
        Ok(AudioRecorder {
            jb: JitterBuffer::new(cfg, JitterDecoder(decoder)),
            wav,
            pcm: Vec::new(),
            next_pull: None,
            last_arrival: None,
            samples: 0,
        })
    }

    /// One received packet, in any order.
    pub fn insert(&mut self, seq: u16, timestamp: u32, payload: &[u8], now: Instant) {
        self.jb.insert(seq, timestamp, payload, now);
        self.last_arrival = Some(now);
        self.next_pull.get_or_insert(now + PULL);
    }

    /// Pulls the 20 ms frames due by `now` (at most 10 at once after a stall) and writes
    /// them; returns the samples produced (for tests).
    pub fn pull_due(&mut self, now: Instant) -> Vec<i16> {
        let mut out = Vec::new();
        for _ in 0..10 {
            let Some(due) = self.next_pull.filter(|&t| t <= now) else {
                break;
            };
            self.pcm.clear();
            self.jb.pull(due, &mut self.pcm);
            if let Some(w) = self.wav.as_mut() {
                if w.write(&self.pcm).is_ok() {
                    self.samples += self.pcm.len() as u64;
                }
            } else {
                self.samples += self.pcm.len() as u64;
            }
            out.extend_from_slice(&self.pcm);
            let idle = self
                .last_arrival
                .map_or(true, |t| due.saturating_duration_since(t) > IDLE);
            self.next_pull = (!idle).then_some(due + PULL);
        }
        if self.next_pull.is_some_and(|t| t + 10 * PULL < now) {
            // Far behind (the loop stalled): skip ahead rather than burst.
            self.next_pull = Some(now);
        }
        out
    }

    /// When the next frame is due, if the stream is running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_pull
    }

    /// The jitter buffer's counters (concealment, FEC, reordering).
    pub fn stats(&self) -> natter_jitter::JitterStats {
        self.jb.stats()
    }

    /// Plays out what is still buffered (its current delay, no concealment beyond it),
    /// then writes the WAV header's lengths.
    pub fn finish(&mut self) {
        if let Some(t) = self.next_pull {
            let frames = self.jb.stats().current_delay_ms / 20;
            for k in 0..frames.min(20) {
                self.pull_due(t + PULL * k);
            }
        }
        if let Some(w) = self.wav.take() {
            let _ = w.finalize();
        }
    }
}

impl Drop for AudioRecorder {
    fn drop(&mut self) {
        self.finish();
    }
}
