//! Audio of `natter webrtc` beside the sans-IO core: what we send (a WAV file, else a
//! tone) as 20 ms Opus frames, and what we record (received Opus decoded into a WAV file).
//! With `--echo` and no `--play`, nothing is generated: received packets go back as they are.

use std::path::Path;

use natter_media::{
    new_decoder, new_encoder, CodecKind, CodecParams, Decoder, Encoder, Resampler, ToneGenerator,
    WavRecorder, WavSource,
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

/// Decodes received Opus payloads into a WAV file (48 kHz mono), in arrival order.
pub struct AudioRecorder {
    decoder: Box<dyn Decoder>,
    wav: Option<WavRecorder>,
    pcm: Vec<i16>,
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
        Ok(AudioRecorder {
            decoder: new_decoder(CodecKind::Opus).map_err(|e| format!("Opus decoder: {e}"))?,
            wav: Some(
                WavRecorder::create(file, RATE).map_err(|e| format!("{}: {e}", file.display()))?,
            ),
            pcm: Vec::new(),
            samples: 0,
        })
    }

    /// One received payload.
    pub fn push(&mut self, payload: &[u8]) {
        self.pcm.clear();
        if self.decoder.decode(payload, &mut self.pcm).is_ok() {
            if let Some(w) = self.wav.as_mut() {
                if w.write(&self.pcm).is_ok() {
                    self.samples += self.pcm.len() as u64;
                }
            }
        }
    }

    /// Writes the WAV header's lengths.
    pub fn finish(&mut self) {
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
