//! The PCM handle the device threads drive: the real ALSA one when `build.rs` found
//! libasound (`cfg(natter_alsa)`), otherwise a stand-in that cannot be opened. Both
//! offer the same three calls, so the thread code above them is compiled in both builds.

#[cfg(natter_alsa)]
mod alsa;
#[cfg(not(natter_alsa))]
mod disabled;

#[cfg(natter_alsa)]
pub(crate) use alsa::Pcm;
#[cfg(not(natter_alsa))]
pub(crate) use disabled::Pcm;

/// Which way the audio flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Capture,
    Playback,
}
