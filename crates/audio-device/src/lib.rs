//! The system microphone and speaker for `natter phone --device`, through ALSA's simple
//! PCM API (mono S16 at the rate the caller asks for; ALSA's plug layer resamples).
//!
//! Each handle owns one thread that does the blocking ALSA calls, so the phone's event
//! loop only ever touches a small bounded queue: [`Microphone::try_frame`] takes the
//! next captured frame, [`Speaker::play`] hands one over. Both queues drop their oldest
//! frame when full, which bounds the added latency instead of letting it grow when the
//! sound card's clock and the network's disagree. Dropping a handle closes its queue and
//! joins the thread.
//!
//! libasound is optional at build time (see `build.rs`): without it, or with
//! `NATTER_NO_ALSA=1`, the types keep their signatures but `open` fails with
//! [`DeviceError::Unavailable`], and [`available`] returns `false` so the phone can say
//! why `--device` does not work instead of failing to build.
//!
//! ```no_run
//! use natter_audio_device::{DeviceConfig, Microphone, Speaker};
//!
//! let cfg = DeviceConfig::default_device(8000); // "default", 160-sample frames
//! let mic = Microphone::open(&cfg)?;
//! let spk = Speaker::open(&cfg)?;
//! // Once per 20 ms tick of the phone's loop:
//! while let Some(frame) = mic.try_frame() {
//!     // encode and send `frame`
//!     # let _ = frame;
//! }
//! let decoded = vec![0i16; cfg.frame_samples]; // from the jitter buffer
//! spk.play(&decoded);
//! # Ok::<(), natter_audio_device::DeviceError>(())
//! ```

mod backend;
mod config;
mod error;
mod microphone;
mod shared;
mod speaker;

pub use config::DeviceConfig;
pub use error::DeviceError;
pub use microphone::Microphone;
pub use speaker::Speaker;

/// Whether this build links libasound, i.e. whether devices can be opened at all.
/// Fixed at build time.
pub fn available() -> bool {
    cfg!(natter_alsa)
}

/// Frames each direction's queue holds before it drops the oldest (200 ms at 20 ms).
pub const QUEUE_FRAMES: usize = 10;
