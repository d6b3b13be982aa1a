//! Video for Natter, sans-IO (no sockets, no clocks): what turns encoded frames into RTP
//! payloads and back, and raw frames into files and back.
//!
//! - [`vp8`]: the VP8 payload descriptor and a packetizer/depacketizer (RFC 7741).
//! - [`h264`]: H.264 packetization mode 1 — single NAL unit, STAP-A and FU-A (RFC 6184).
//! - [`assembler`]: groups RTP packets into frames by timestamp and marker, finds gaps
//!   (NACK lists) and tells when a key frame must be requested (PLI).
//! - [`y4m`]: YUV4MPEG2 reader and writer (I420).
//! - [`pattern`]: a moving test pattern with a frame counter, I420.
//! - [`vp8codec`]: libvpx VP8 encoder/decoder (through `env-libvpx-sys`; cargo feature `vpx`,
//!   else a stand-in that reports the codec unavailable).
//! - [`h264codec`]: OpenH264 encoder/decoder (the system libopenh264 through a small FFI;
//!   cargo feature `h264`, else a stand-in likewise).
//!
//! [`I420Frame`] is the raw picture shared by all of them.

pub mod assembler;
pub mod codec;
mod error;
pub mod h264;
#[cfg(feature = "h264")]
pub mod h264codec;
#[cfg(not(feature = "h264"))]
#[path = "h264codec_none.rs"]
pub mod h264codec;
pub mod pattern;
pub mod twcc;
pub mod vp8;
#[cfg(feature = "vpx")]
pub mod vp8codec;
#[cfg(not(feature = "vpx"))]
#[path = "vp8codec_none.rs"]
pub mod vp8codec;
pub mod y4m;

pub use error::VideoError;

/// A raw picture in I420 (planar Y, then U and V at half resolution each way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420Frame {
    /// Luma width in pixels.
    pub width: usize,
    /// Luma height in pixels.
    pub height: usize,
    /// `width * height` luma samples.
    pub y: Vec<u8>,
    /// `chroma_width * chroma_height` Cb samples.
    pub u: Vec<u8>,
    /// `chroma_width * chroma_height` Cr samples.
    pub v: Vec<u8>,
}

impl I420Frame {
    /// A black frame (Y 16, chroma 128).
    pub fn black(width: usize, height: usize) -> Self {
        let (cw, ch) = Self::chroma_size(width, height);
        I420Frame {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
        }
    }

    /// Chroma plane size for a luma size (rounded up, as libvpx and y4m do).
    pub fn chroma_size(width: usize, height: usize) -> (usize, usize) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// Bytes of one frame in a y4m file or a raw I420 buffer.
    pub fn byte_len(width: usize, height: usize) -> usize {
        let (cw, ch) = Self::chroma_size(width, height);
        width * height + 2 * cw * ch
    }

    /// Peak signal-to-noise ratio of the Y planes in dB (`None` when sizes differ;
    /// `f64::INFINITY` for identical planes). Used to judge decoded video in tests.
    pub fn psnr_y(&self, other: &I420Frame) -> Option<f64> {
        if self.width != other.width || self.height != other.height || self.y.is_empty() {
            return None;
        }
        let se: u64 = self
            .y
            .iter()
            .zip(&other.y)
            .map(|(&a, &b)| {
                let d = i64::from(a) - i64::from(b);
                (d * d) as u64
            })
            .sum();
        if se == 0 {
            return Some(f64::INFINITY);
        }
        let mse = se as f64 / self.y.len() as f64;
        Some(10.0 * (255.0f64 * 255.0 / mse).log10())
    }
}
