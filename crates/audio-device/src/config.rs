//! What to open: device name, sample rate and frame size.

use crate::error::DeviceError;

/// Highest rate accepted; ALSA's plug layer goes no further in practice.
const MAX_RATE: u32 = 192_000;

/// A device to open for mono 16-bit audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// ALSA PCM name: `"default"` for the system's default device (which on desktops is
    /// routed through PulseAudio/PipeWire), `"hw:1,0"`, `"plughw:1"`, or `"null"`.
    pub name: String,
    /// Sample rate in Hz the caller works at; ALSA resamples to what the card supports.
    pub rate: u32,
    /// Samples per frame handed across the queue, normally 20 ms (`rate / 50`).
    pub frame_samples: usize,
}

impl DeviceConfig {
    /// The system's default device at `rate` with 20 ms frames.
    pub fn default_device(rate: u32) -> Self {
        DeviceConfig {
            name: "default".to_owned(),
            rate,
            frame_samples: (rate / 50) as usize,
        }
    }

    /// Rejects what ALSA would either refuse obscurely or accept and misbehave on.
    pub(crate) fn validate(&self) -> Result<(), DeviceError> {
        if self.rate == 0 || self.rate > MAX_RATE {
            return Err(DeviceError::Config("rate must be 1..=192000 Hz"));
        }
        // One second per frame is already absurd for a phone; beyond it the queue's
        // memory bound (QUEUE_FRAMES frames) would stop meaning anything.
        if self.frame_samples == 0 || self.frame_samples > self.rate as usize {
            return Err(DeviceError::Config("frame_samples must be 1..=rate"));
        }
        if self.name.is_empty() || self.name.contains('\0') {
            return Err(DeviceError::Config(
                "device name must be non-empty without NUL",
            ));
        }
        Ok(())
    }

    /// How long one frame lasts at this rate.
    pub(crate) fn frame_duration(&self) -> std::time::Duration {
        let micros = self.frame_samples as u64 * 1_000_000 / u64::from(self.rate.max(1));
        std::time::Duration::from_micros(micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, rate: u32, frame_samples: usize) -> DeviceConfig {
        DeviceConfig {
            name: name.to_owned(),
            rate,
            frame_samples,
        }
    }

    #[test]
    fn default_device_is_20ms_frames() {
        let c = DeviceConfig::default_device(8000);
        assert_eq!(c, cfg("default", 8000, 160));
        assert_eq!(c.frame_duration(), std::time::Duration::from_millis(20));
        assert_eq!(DeviceConfig::default_device(48000).frame_samples, 960);
    }

    #[test]
    fn validation() {
        assert_eq!(cfg("null", 8000, 160).validate(), Ok(()));
        assert_eq!(
            cfg("null", 0, 160).validate(),
            Err(DeviceError::Config("rate must be 1..=192000 Hz"))
        );
        assert_eq!(
            cfg("null", 192_001, 160).validate(),
            Err(DeviceError::Config("rate must be 1..=192000 Hz"))
        );
        assert_eq!(
            cfg("null", 8000, 0).validate(),
            Err(DeviceError::Config("frame_samples must be 1..=rate"))
        );
        assert_eq!(
            cfg("null", 8000, 8001).validate(),
            Err(DeviceError::Config("frame_samples must be 1..=rate"))
        );
        assert!(matches!(
            cfg("", 8000, 160).validate(),
            Err(DeviceError::Config(_))
        ));
        assert!(matches!(
            cfg("a\0b", 8000, 160).validate(),
            Err(DeviceError::Config(_))
        ));
    }
}
