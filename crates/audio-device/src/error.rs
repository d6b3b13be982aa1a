//! Why a device could not be opened or stopped working.

/// Errors from opening or running an audio device. Strings carry ALSA's own text
/// (`snd_strerror`) so the user sees e.g. "No such file or directory" for a bad name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// This build has no ALSA (see `build.rs`); the text says how to fix it.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The configuration is unusable before ALSA is even asked.
    #[error("audio device: invalid configuration: {0}")]
    Config(&'static str),
    /// `snd_pcm_open` failed: unknown name, device busy, no permission.
    #[error("audio device: {0}")]
    Open(String),
    /// The device opened but refused mono S16 at the rate and latency asked for.
    #[error("audio device: {0}")]
    Setup(String),
    /// Reading or writing failed in a way `snd_pcm_recover` could not repair (e.g. a
    /// USB headset was unplugged); the device thread has stopped.
    #[error("audio device: {0}")]
    Io(String),
    /// The OS would not start the device thread.
    #[error("audio device: cannot start thread: {0}")]
    Thread(String),
}
