//! What the VP8 codec takes and gives, with or without libvpx: the real codec
//! ([`crate::vp8codec`] over libvpx, cargo feature `vpx`) and its stand-in share these.

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second (the timebase is 1/fps).
    pub fps: u32,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Largest distance between key frames, in frames.
    pub keyframe_interval: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_kbps: 500,
            keyframe_interval: 300,
        }
    }
}

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// VP8 bitstream of the frame.
    pub data: Vec<u8>,
    /// A key frame.
    pub keyframe: bool,
}
