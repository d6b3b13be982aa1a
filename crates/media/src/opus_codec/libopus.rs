//! Safe owners of libopus encoder and decoder states, over our own minimal bindings.
//!
//! Only the dozen calls this crate makes are declared, so building needs nothing but the
//! shared library itself (see `build.rs`): no headers, no pkg-config, no cmake.

use std::ffi::CStr;
use std::ptr::NonNull;

use crate::error::MediaError;

/// Raw declarations matching `<opus/opus.h>` and `<opus/opus_defines.h>` (libopus ≥ 1.1;
/// the ABI has been stable since 1.0).
mod sys {
    use std::ffi::{c_char, c_int, c_uchar};

    /// Opaque `OpusEncoder`.
    #[repr(C)]
    pub struct OpusEncoder {
        _opaque: [u8; 0],
    }

    /// Opaque `OpusDecoder`.
    #[repr(C)]
    pub struct OpusDecoder {
        _opaque: [u8; 0],
    }

    pub const OPUS_OK: c_int = 0;
    pub const OPUS_APPLICATION_VOIP: c_int = 2048;
    pub const OPUS_APPLICATION_AUDIO: c_int = 2049;
    pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
    pub const OPUS_SET_INBAND_FEC_REQUEST: c_int = 4012;
    pub const OPUS_SET_PACKET_LOSS_PERC_REQUEST: c_int = 4014;
    pub const OPUS_SET_DTX_REQUEST: c_int = 4016;

    extern "C" {
        pub fn opus_encoder_create(
            fs: i32,
            channels: c_int,
            application: c_int,
            error: *mut c_int,
        ) -> *mut OpusEncoder;
        pub fn opus_encoder_destroy(st: *mut OpusEncoder);
        pub fn opus_encode(
            st: *mut OpusEncoder,
            pcm: *const i16,
            frame_size: c_int,
            data: *mut c_uchar,
            max_data_bytes: i32,
        ) -> i32;
        pub fn opus_encoder_ctl(st: *mut OpusEncoder, request: c_int, ...) -> c_int;
        pub fn opus_decoder_create(fs: i32, channels: c_int, error: *mut c_int)
            -> *mut OpusDecoder;
        pub fn opus_decoder_destroy(st: *mut OpusDecoder);
        pub fn opus_decode(
            st: *mut OpusDecoder,
            data: *const c_uchar,
            len: i32,
            pcm: *mut i16,
            frame_size: c_int,
            decode_fec: c_int,
        ) -> c_int;
        pub fn opus_strerror(error: i32) -> *const c_char;
        pub fn opus_get_version_string() -> *const c_char;
    }
}

/// The sample rate both directions run at.
const RATE: i32 = 48000;

/// libopus's text for an error code, prefixed with the call that returned it.
fn error(call: &str, code: i32) -> MediaError {
    // SAFETY: opus_strerror accepts any code and returns a pointer to a static,
    // NUL-terminated string (an "unknown error" text for codes it does not know).
    let text = unsafe { CStr::from_ptr(sys::opus_strerror(code)) };
    MediaError::Opus(format!("{call}: {}", text.to_string_lossy()))
}

/// The linked library's version, e.g. `libopus 1.3.1`.
pub(crate) fn version() -> &'static str {
    // SAFETY: takes no arguments and returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(sys::opus_get_version_string()) };
    v.to_str().unwrap_or("libopus")
}

/// What the encoder is tuned for (`OPUS_APPLICATION_*`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Application {
    /// Speech: favours intelligibility, enables SILK at low rates.
    Voip,
    /// General audio; used by tests to make stereo streams.
    #[cfg_attr(not(test), allow(dead_code))]
    Audio,
}

/// An owned `OpusEncoder*`, destroyed on drop.
pub(crate) struct EncoderHandle {
    st: NonNull<sys::OpusEncoder>,
    channels: usize,
}

// SAFETY: the encoder state is plain heap memory owned solely by this handle, with no
// thread affinity or shared globals; libopus only forbids concurrent use, which `&mut
// self` on every call already rules out. Moving it to another thread is fine.
unsafe impl Send for EncoderHandle {}

impl EncoderHandle {
    /// A 48 kHz encoder with `channels` (1 or 2) interleaved channels.
    pub(crate) fn new(channels: u8, app: Application) -> Result<Self, MediaError> {
        let app = match app {
            Application::Voip => sys::OPUS_APPLICATION_VOIP,
            Application::Audio => sys::OPUS_APPLICATION_AUDIO,
        };
        let mut err = 0;
        // SAFETY: plain values plus a pointer to a live local for the error code;
        // libopus validates the rate/channel/application arguments itself.
        let st = unsafe { sys::opus_encoder_create(RATE, channels.into(), app, &mut err) };
        match NonNull::new(st) {
            Some(st) if err == sys::OPUS_OK => Ok(EncoderHandle {
                st,
                channels: channels.into(),
            }),
            Some(st) => {
                // SAFETY: st came from opus_encoder_create and is not used again.
                unsafe { sys::opus_encoder_destroy(st.as_ptr()) };
                Err(error("opus_encoder_create", err))
            }
            None => Err(error("opus_encoder_create", err)),
        }
    }

    /// One `OPUS_SET_*` request with an `opus_int32` argument.
    fn set(&mut self, call: &str, request: i32, value: i32) -> Result<(), MediaError> {
        // SAFETY: st is a live encoder we own exclusively; every request passed here is a
        // SET that takes exactly one opus_int32 vararg, which is what we pass.
        let r = unsafe { sys::opus_encoder_ctl(self.st.as_ptr(), request, value) };
        if r == sys::OPUS_OK {
            Ok(())
        } else {
            Err(error(call, r))
        }
    }

    pub(crate) fn set_bitrate(&mut self, bps: i32) -> Result<(), MediaError> {
        self.set("OPUS_SET_BITRATE", sys::OPUS_SET_BITRATE_REQUEST, bps)
    }

    pub(crate) fn set_inband_fec(&mut self, on: bool) -> Result<(), MediaError> {
        let req = sys::OPUS_SET_INBAND_FEC_REQUEST;
        self.set("OPUS_SET_INBAND_FEC", req, i32::from(on))
    }

    pub(crate) fn set_packet_loss_perc(&mut self, percent: i32) -> Result<(), MediaError> {
        let req = sys::OPUS_SET_PACKET_LOSS_PERC_REQUEST;
        self.set("OPUS_SET_PACKET_LOSS_PERC", req, percent)
    }

    pub(crate) fn set_dtx(&mut self, on: bool) -> Result<(), MediaError> {
        self.set("OPUS_SET_DTX", sys::OPUS_SET_DTX_REQUEST, i32::from(on))
    }

    /// Encodes interleaved `pcm` (a whole number of frames per channel) into `out`;
    /// returns the packet length.
    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, MediaError> {
        let bad = || MediaError::Opus("opus_encode: buffer too large".into());
        let frame = c_len(pcm.len() / self.channels).ok_or_else(bad)?;
        let max = c_len(out.len()).ok_or_else(bad)?;
        // SAFETY: st is live and exclusively ours; pcm holds frame * channels readable
        // samples and out has max writable bytes, both borrowed for the whole call.
        let n = unsafe {
            sys::opus_encode(self.st.as_ptr(), pcm.as_ptr(), frame, out.as_mut_ptr(), max)
        };
        usize::try_from(n).map_err(|_| error("opus_encode", n))
    }
}

impl Drop for EncoderHandle {
    fn drop(&mut self) {
        // SAFETY: st came from opus_encoder_create, is owned only by us and dropped once.
        unsafe { sys::opus_encoder_destroy(self.st.as_ptr()) };
    }
}

/// An owned `OpusDecoder*`, destroyed on drop.
pub(crate) struct DecoderHandle {
    st: NonNull<sys::OpusDecoder>,
    channels: usize,
}

// SAFETY: as for EncoderHandle: exclusively owned heap state with no thread affinity.
unsafe impl Send for DecoderHandle {}

impl DecoderHandle {
    /// A 48 kHz decoder producing `channels` (1 or 2) interleaved channels.
    pub(crate) fn new(channels: u8) -> Result<Self, MediaError> {
        let mut err = 0;
        // SAFETY: plain values plus a pointer to a live local for the error code.
        let st = unsafe { sys::opus_decoder_create(RATE, channels.into(), &mut err) };
        match NonNull::new(st) {
            Some(st) if err == sys::OPUS_OK => Ok(DecoderHandle {
                st,
                channels: channels.into(),
            }),
            Some(st) => {
                // SAFETY: st came from opus_decoder_create and is not used again.
                unsafe { sys::opus_decoder_destroy(st.as_ptr()) };
                Err(error("opus_decoder_create", err))
            }
            None => Err(error("opus_decoder_create", err)),
        }
    }

    /// Decodes `packet` into `pcm` (whose length per channel is the most it may write);
    /// `None` asks for concealment of `pcm`'s length, and `fec` for the LBRR copy of the
    /// frame before `packet`. Returns samples per channel written.
    pub(crate) fn decode(
        &mut self,
        packet: Option<&[u8]>,
        pcm: &mut [i16],
        fec: bool,
    ) -> Result<usize, MediaError> {
        let bad = || MediaError::Opus("opus_decode: buffer too large".into());
        let (data, len) = match packet {
            Some(p) => (p.as_ptr(), c_len(p.len()).ok_or_else(bad)?),
            None => (std::ptr::null(), 0),
        };
        let frame = c_len(pcm.len() / self.channels).ok_or_else(bad)?;
        // SAFETY: st is live and exclusively ours; data is either null with len 0 (libopus
        // then conceals) or points at len readable bytes; pcm has room for frame *
        // channels samples. Both slices stay borrowed for the whole call.
        let n = unsafe {
            sys::opus_decode(
                self.st.as_ptr(),
                data,
                len,
                pcm.as_mut_ptr(),
                frame,
                i32::from(fec),
            )
        };
        usize::try_from(n).map_err(|_| error("opus_decode", n))
    }
}

impl Drop for DecoderHandle {
    fn drop(&mut self) {
        // SAFETY: st came from opus_decoder_create, is owned only by us and dropped once.
        unsafe { sys::opus_decoder_destroy(self.st.as_ptr()) };
    }
}

/// A buffer length as the `int`/`opus_int32` libopus takes.
fn c_len(n: usize) -> Option<i32> {
    i32::try_from(n).ok()
}
