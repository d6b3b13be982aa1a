//! WAV files in and out (via `hound`): the phone plays a file as its microphone and
//! records what it hears. Everything is mono i16 at the file's own rate; callers
//! resample.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::error::MediaError;

/// A WAV file read as mono 16-bit samples, a chunk at a time.
pub struct WavSource {
    reader: hound::WavReader<BufReader<File>>,
    channels: usize,
    rate: u32,
    format: hound::SampleFormat,
    bits: u16,
}

impl std::fmt::Debug for WavSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("channels", &self.channels)
            .field("rate", &self.rate)
            .field("bits", &self.bits)
            .finish()
    }
}

impl WavSource {
    /// Opens `path`. Integer PCM of 8–32 bits and 32-bit float are accepted; several
    /// channels are averaged to mono.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        let reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        if spec.channels == 0 {
            return Err(MediaError::Wav("zero channels".into()));
        }
        if spec.sample_format == hound::SampleFormat::Int
            && !(1..=32).contains(&spec.bits_per_sample)
        {
            return Err(MediaError::Wav("unsupported bit depth".into()));
        }
        Ok(WavSource {
            reader,
            channels: usize::from(spec.channels),
            rate: spec.sample_rate,
            format: spec.sample_format,
            bits: spec.bits_per_sample,
        })
    }

    /// The file's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// The file's channel count (output is mono regardless).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Up to `n` mono samples; fewer (possibly none) at the end of the file.
    pub fn read(&mut self, n: usize) -> Result<Vec<i16>, MediaError> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        let mut frame = Vec::with_capacity(self.channels);
        let wanted = n.saturating_mul(self.channels);
        match self.format {
            hound::SampleFormat::Float => {
                for s in self.reader.samples::<f32>().take(wanted) {
                    frame.push(f64::from(s?) * 32767.0);
                    if frame.len() == self.channels {
                        out.push(average(&frame));
                        frame.clear();
                    }
                }
            }
            hound::SampleFormat::Int => {
                let scale = 2f64.powi(16 - i32::from(self.bits));
                for s in self.reader.samples::<i32>().take(wanted) {
                    frame.push(f64::from(s?) * scale);
                    if frame.len() == self.channels {
                        out.push(average(&frame));
                        frame.clear();
                    }
                }
            }
        }
        Ok(out)
    }

    /// The whole rest of the file.
    pub fn read_all(&mut self) -> Result<Vec<i16>, MediaError> {
        let mut all = Vec::new();
        loop {
            let chunk = self.read(8192)?;
            if chunk.is_empty() {
                return Ok(all);
            }
            all.extend_from_slice(&chunk);
        }
    }
}

fn average(frame: &[f64]) -> i16 {
    let sum: f64 = frame.iter().sum();
    (sum / frame.len().max(1) as f64)
        .round()
        .clamp(-32768.0, 32767.0) as i16
}

/// Writes mono 16-bit WAV. Call [`WavRecorder::finalize`] to fix up the header;
/// dropping it also tries to.
pub struct WavRecorder {
    writer: hound::WavWriter<std::io::BufWriter<File>>,
}

impl std::fmt::Debug for WavRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder").finish_non_exhaustive()
    }
}

impl WavRecorder {
    /// Creates (truncating) `path` for mono 16-bit samples at `rate` Hz.
    pub fn create(path: impl AsRef<Path>, rate: u32) -> Result<Self, MediaError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavRecorder {
            writer: hound::WavWriter::create(path, spec)?,
        })
    }

    /// Appends samples.
    pub fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        let mut w = self.writer.get_i16_writer(pcm.len() as u32);
        for &s in pcm {
            w.write_sample(s);
        }
        w.flush()?;
        Ok(())
    }

    /// Writes the final header lengths and closes the file.
    pub fn finalize(self) -> Result<(), MediaError> {
        self.writer.finalize()?;
        Ok(())
    }
}
