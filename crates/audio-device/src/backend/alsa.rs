//! A safe owner of one `snd_pcm_t`, over our own bindings to the nine alsa-lib calls of
//! the "simple" PCM API we use. Building needs only the shared library (see `build.rs`):
//! no headers, no pkg-config.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use super::Direction;
use crate::error::DeviceError;

/// Raw declarations matching `<alsa/pcm.h>` and `<alsa/error.h>` (alsa-lib 1.x, ABI
/// `libasound.so.2`). Enum values checked against alsa-lib 1.2.8's pcm.h.
mod sys {
    use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

    /// Opaque `snd_pcm_t`.
    #[repr(C)]
    pub struct SndPcm {
        _opaque: [u8; 0],
    }

    /// `snd_pcm_stream_t`.
    pub const SND_PCM_STREAM_PLAYBACK: c_int = 0;
    pub const SND_PCM_STREAM_CAPTURE: c_int = 1;
    /// `snd_pcm_format_t`: S8 = 0, U8 = 1, S16_LE = 2.
    pub const SND_PCM_FORMAT_S16_LE: c_int = 2;
    /// `snd_pcm_access_t`: MMAP_INTERLEAVED = 0, MMAP_NONINTERLEAVED, MMAP_COMPLEX,
    /// RW_INTERLEAVED = 3.
    pub const SND_PCM_ACCESS_RW_INTERLEAVED: c_int = 3;

    extern "C" {
        pub fn snd_pcm_open(
            pcm: *mut *mut SndPcm,
            name: *const c_char,
            stream: c_int,
            mode: c_int,
        ) -> c_int;
        pub fn snd_pcm_set_params(
            pcm: *mut SndPcm,
            format: c_int,
            access: c_int,
            channels: c_uint,
            rate: c_uint,
            soft_resample: c_int,
            latency: c_uint,
        ) -> c_int;
        /// `snd_pcm_sframes_t` is `long`, `snd_pcm_uframes_t` is `unsigned long`.
        pub fn snd_pcm_readi(pcm: *mut SndPcm, buffer: *mut c_void, size: c_ulong) -> c_long;
        pub fn snd_pcm_writei(pcm: *mut SndPcm, buffer: *const c_void, size: c_ulong) -> c_long;
        pub fn snd_pcm_recover(pcm: *mut SndPcm, err: c_int, silent: c_int) -> c_int;
        pub fn snd_pcm_prepare(pcm: *mut SndPcm) -> c_int;
        pub fn snd_pcm_start(pcm: *mut SndPcm) -> c_int;
        pub fn snd_pcm_close(pcm: *mut SndPcm) -> c_int;
        pub fn snd_strerror(errnum: c_int) -> *const c_char;
    }
}

/// alsa-lib's text for a negative error code.
fn strerror(code: i32) -> String {
    // SAFETY: snd_strerror accepts any int and returns a pointer to a static
    // NUL-terminated string (a generic text for codes it does not know).
    let text = unsafe { CStr::from_ptr(sys::snd_strerror(code)) };
    text.to_string_lossy().into_owned()
}

/// Total buffering asked of ALSA: enough to ride out scheduling hiccups of the device
/// thread, small enough not to be noticed in a conversation.
const LATENCY_US: u32 = 60_000;

/// Linux's "file descriptor in bad state", what alsa-lib returns for a call made in the
/// wrong stream state.
const EBADFD: i32 = 77;

/// An open, configured PCM, closed on drop.
#[derive(Debug)]
pub(crate) struct Pcm {
    pcm: NonNull<sys::SndPcm>,
    dir: Direction,
    name: String,
}

// SAFETY: a snd_pcm_t has no thread affinity; alsa-lib only requires that one handle is
// not used from two threads at once, which `&mut self` on every call guarantees. The
// handle is opened on the caller's thread and then moved to the device thread.
unsafe impl Send for Pcm {}

impl Pcm {
    /// Opens `name` blocking for mono S16 at `rate` with ALSA resampling allowed and
    /// [`LATENCY_US`] of buffering. A capture stream is started right away.
    pub(crate) fn open(name: &str, dir: Direction, rate: u32) -> Result<Pcm, DeviceError> {
        let what = match dir {
            Direction::Capture => "capture",
            Direction::Playback => "playback",
        };
        let c_name = CString::new(name)
            .map_err(|_| DeviceError::Config("device name must be non-empty without NUL"))?;
        let stream = match dir {
            Direction::Capture => sys::SND_PCM_STREAM_CAPTURE,
            Direction::Playback => sys::SND_PCM_STREAM_PLAYBACK,
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` is a live local out-pointer and `c_name` a NUL-terminated string
        // that outlives the call; mode 0 means blocking.
        let rc = unsafe { sys::snd_pcm_open(&mut raw, c_name.as_ptr(), stream, 0) };
        let pcm = match NonNull::new(raw) {
            Some(p) if rc >= 0 => p,
            _ => {
                return Err(DeviceError::Open(format!(
                    "cannot open {name:?} for {what}: {}",
                    strerror(rc.min(-1))
                )))
            }
        };
        // From here on Drop closes the handle on every error path.
        let pcm = Pcm {
            pcm,
            dir,
            name: name.to_owned(),
        };
        // SAFETY: `pcm.pcm` is the open handle just returned by snd_pcm_open; the other
        // arguments are plain values that alsa-lib validates.
        let rc = unsafe {
            sys::snd_pcm_set_params(
                pcm.pcm.as_ptr(),
                sys::SND_PCM_FORMAT_S16_LE,
                sys::SND_PCM_ACCESS_RW_INTERLEAVED,
                1,
                rate,
                1,
                LATENCY_US,
            )
        };
        if rc < 0 {
            return Err(DeviceError::Setup(format!(
                "{name:?} refuses mono S16 at {rate} Hz for {what}: {}",
                strerror(rc)
            )));
        }
        if dir == Direction::Capture {
            pcm.start_capture();
        }
        Ok(pcm)
    }

    /// Starts a prepared capture stream explicitly. snd_pcm_set_params sets the start
    /// threshold to the whole buffer (~60 ms), and whether a read of one smaller frame
    /// auto-starts a capture stream has varied between alsa-lib versions; starting a
    /// stream that already runs only returns an error, which we ignore.
    fn start_capture(&self) {
        // SAFETY: `self.pcm` is open for as long as `self` lives.
        let _ = unsafe { sys::snd_pcm_start(self.pcm.as_ptr()) };
    }

    /// Repairs an xrun (`-EPIPE`), a suspend (`-ESTRPIPE`) or an interrupted call
    /// through snd_pcm_recover, and a stream left unprepared (`-EBADFD`, which recover
    /// does not handle) through snd_pcm_prepare; any other error, or a failed repair,
    /// ends the stream.
    fn recover(&mut self, code: i32, call: &str) -> Result<(), DeviceError> {
        let rc = if code == -EBADFD {
            // SAFETY: `self.pcm` is open for as long as `self` lives.
            unsafe { sys::snd_pcm_prepare(self.pcm.as_ptr()) }
        } else {
            // SAFETY: `self.pcm` is open; silent = 1 keeps alsa-lib from printing xruns.
            unsafe { sys::snd_pcm_recover(self.pcm.as_ptr(), code, 1) }
        };
        if rc < 0 {
            return Err(DeviceError::Io(format!(
                "{call} on {:?}: {}",
                self.name,
                strerror(code)
            )));
        }
        if self.dir == Direction::Capture {
            self.start_capture();
        }
        Ok(())
    }

    /// Fills `buf` with captured samples, blocking until it is full.
    pub(crate) fn read_exact(&mut self, buf: &mut [i16]) -> Result<(), DeviceError> {
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            // SAFETY: `rest` is a live, writable slice of `rest.len()` mono S16 frames
            // (one i16 per frame), exactly what snd_pcm_readi will fill at most.
            let n = unsafe {
                sys::snd_pcm_readi(self.pcm.as_ptr(), rest.as_mut_ptr().cast(), rest.len() as _)
            };
            match usize::try_from(n) {
                Ok(read) => done += read.min(rest.len()),
                Err(_) => self.recover(error_code(n), "snd_pcm_readi")?,
            }
        }
        Ok(())
    }

    /// Writes all of `buf`, blocking while the device buffer is full.
    pub(crate) fn write_all(&mut self, buf: &[i16]) -> Result<(), DeviceError> {
        let mut done = 0;
        while let Some(rest) = buf.get(done..).filter(|r| !r.is_empty()) {
            // SAFETY: `rest` is a live slice of `rest.len()` mono S16 frames, which is
            // all snd_pcm_writei reads.
            let n = unsafe {
                sys::snd_pcm_writei(self.pcm.as_ptr(), rest.as_ptr().cast(), rest.len() as _)
            };
            match usize::try_from(n) {
                Ok(written) => done += written.min(rest.len()),
                Err(_) => self.recover(error_code(n), "snd_pcm_writei")?,
            }
        }
        Ok(())
    }
}

/// A negative frame count from readi/writei as the `int` error code recover expects.
fn error_code(n: std::ffi::c_long) -> i32 {
    i32::try_from(n).unwrap_or(i32::MIN)
}

impl Drop for Pcm {
    fn drop(&mut self) {
        // SAFETY: `self.pcm` was opened by snd_pcm_open and is closed exactly once here;
        // nothing uses it afterwards. close drops any pending playback.
        let _ = unsafe { sys::snd_pcm_close(self.pcm.as_ptr()) };
    }
}
