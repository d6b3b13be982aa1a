//! What the phone plays into a call and where it writes what it hears: a WAV file or a
//! tone as the microphone, a WAV recorder as the speaker. Real devices (cpal) would sit
//! behind the same two types.

use std::path::{Path, PathBuf};

use natter_media::{Resampler, ToneGenerator, WavRecorder, WavSource};

/// The phone's microphone.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// Silence.
    Silence,
    /// A WAV file, played once from the start of each call, then silence.
    File(PathBuf),
    /// A continuous sine tone (Hz).
    Tone(f32),
}

/// Loaded audio of a file source: mono samples at the file's rate.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Samples.
    pub pcm: Vec<i16>,
    /// Their rate.
    pub rate: u32,
}

impl Clip {
    /// Reads a whole WAV file (mono mix-down at its own rate).
    pub fn load(path: &Path) -> Result<Clip, String> {
        let mut src = WavSource::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rate = src.sample_rate();
        let pcm = src
            .read_all()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Clip { pcm, rate })
    }
}

/// One call's source, producing frames at the codec's rate.
pub enum CallSource {
    /// Silence.
    Silence,
    /// A clip resampled to the codec rate, and the read position.
    Clip(Vec<i16>, usize),
    /// A tone.
    Tone(ToneGenerator),
}

impl CallSource {
    /// The source for a call whose codec runs at `rate`.
    pub fn new(spec: &SourceSpec, clip: Option<&Clip>, rate: u32) -> CallSource {
        match (spec, clip) {
            (SourceSpec::File(_), Some(c)) => {
                let pcm = if c.rate == rate {
                    c.pcm.clone()
                } else {
                    let mut out =
                        Vec::with_capacity(c.pcm.len() * rate as usize / c.rate.max(1) as usize + 1);
                    if let Ok(mut r) = Resampler::new(c.rate, rate) {
                        r.process(&c.pcm, &mut out);
                    }
                    out
                };
                CallSource::Clip(pcm, 0)
            }
            (SourceSpec::Tone(hz), _) => CallSource::Tone(ToneGenerator::new(f64::from(*hz), rate, 16000)),
            _ => CallSource::Silence,
        }
    }

    /// Fills `frame` with the next samples.
    pub fn fill(&mut self, frame: &mut [i16]) {
        match self {
            CallSource::Silence => frame.fill(0),
            CallSource::Tone(t) => t.fill(frame),
            CallSource::Clip(pcm, pos) => {
                for s in frame.iter_mut() {
                    *s = pcm.get(*pos).copied().unwrap_or(0);
                    *pos = pos.saturating_add(1);
                }
            }
        }
    }
}

/// Opens the recorder for a call.
pub fn recorder(path: &Path, rate: u32) -> Result<WavRecorder, String> {
    WavRecorder::create(path, rate).map_err(|e| format!("{}: {e}", path.display()))
}
