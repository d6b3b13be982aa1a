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
    /// A clip, resampled a frame at a time (resampling a whole file up front would
    /// stall the media clock for as long as it takes).
    Clip {
        /// The file's samples.
        pcm: Vec<i16>,
        /// Next input sample.
        pos: usize,
        /// None when the rates are equal.
        resampler: Option<Resampler>,
        /// Resampled samples not yet played.
        pending: std::collections::VecDeque<i16>,
    },
    /// A tone.
    Tone(ToneGenerator),
}

impl CallSource {
    /// The source for a call whose codec runs at `rate`.
    pub fn new(spec: &SourceSpec, clip: Option<&Clip>, rate: u32) -> CallSource {
        match (spec, clip) {
            (SourceSpec::File(_), Some(c)) => CallSource::Clip {
                pcm: c.pcm.clone(),
                pos: 0,
                resampler: if c.rate == rate {
                    None
                } else {
                    Resampler::new(c.rate, rate).ok()
                },
                pending: std::collections::VecDeque::new(),
            },
            (SourceSpec::Tone(hz), _) => {
                CallSource::Tone(ToneGenerator::new(f64::from(*hz), rate, 16000))
            }
            _ => CallSource::Silence,
        }
    }

    /// Fills `frame` with the next samples (silence after the end of a clip).
    pub fn fill(&mut self, frame: &mut [i16]) {
        match self {
            CallSource::Silence => frame.fill(0),
            CallSource::Tone(t) => t.fill(frame),
            CallSource::Clip {
                pcm,
                pos,
                resampler,
                pending,
            } => {
                let mut chunk = Vec::new();
                while pending.len() < frame.len() && *pos < pcm.len() {
                    let end = (*pos + 160).min(pcm.len());
                    let input = pcm.get(*pos..end).unwrap_or(&[]);
                    *pos = end;
                    chunk.clear();
                    match resampler {
                        Some(r) => r.process(input, &mut chunk),
                        None => chunk.extend_from_slice(input),
                    }
                    pending.extend(chunk.iter().copied());
                }
                for s in frame.iter_mut() {
                    *s = pending.pop_front().unwrap_or(0);
                }
            }
        }
    }
}

/// Opens the recorder for a call.
pub fn recorder(path: &Path, rate: u32) -> Result<WavRecorder, String> {
    WavRecorder::create(path, rate).map_err(|e| format!("{}: {e}", path.display()))
}
