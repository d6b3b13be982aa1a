//! Capture: a thread reads fixed-size frames from the device into a bounded queue.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{Direction, Pcm};
use crate::config::DeviceConfig;
use crate::error::DeviceError;
use crate::shared::{Pop, Shared};
use crate::QUEUE_FRAMES;

/// An open capture device. Its thread blocks in ALSA reading `frame_samples` mono
/// samples at a time; the caller takes them with [`Microphone::try_frame`]. If the caller
/// falls behind, the oldest frames are dropped (at most [`QUEUE_FRAMES`] are kept), so
/// what it gets is never more than ~200 ms old.
#[derive(Debug)]
pub struct Microphone {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Microphone {
    /// Opens `cfg.name` for capture and starts the capture thread.
    pub fn open(cfg: &DeviceConfig) -> Result<Microphone, DeviceError> {
        cfg.validate()?;
        let pcm = Pcm::open(&cfg.name, Direction::Capture, cfg.rate)?;
        let shared = Arc::new(Shared::new(QUEUE_FRAMES));
        let for_thread = shared.clone();
        let samples = cfg.frame_samples;
        let thread = std::thread::Builder::new()
            .name("natter-mic".to_owned())
            .spawn(move || capture(pcm, &for_thread, samples))
            .map_err(|e| DeviceError::Thread(e.to_string()))?;
        Ok(Microphone {
            shared,
            thread: Some(thread),
        })
    }

    /// The oldest captured frame not yet taken (FIFO), or `None` if none is ready.
    /// Never blocks; call it once per frame tick (or drain it with `while let`).
    pub fn try_frame(&self) -> Option<Vec<i16>> {
        self.shared.pop()
    }

    /// Like [`Microphone::try_frame`] but waits up to `timeout` for a frame.
    pub fn wait_frame(&self, timeout: Duration) -> Option<Vec<i16>> {
        match self.shared.pop_timeout(timeout) {
            Pop::Frame(f) => Some(f),
            Pop::Empty | Pop::Closed => None,
        }
    }

    /// Frames thrown away because the queue was full (the caller did not keep up).
    pub fn dropped_frames(&self) -> u64 {
        self.shared.dropped()
    }

    /// Why capture stopped, if it did (e.g. the device was unplugged).
    pub fn failure(&self) -> Option<DeviceError> {
        self.shared.failure()
    }
}

impl Drop for Microphone {
    /// Stops the thread after its current read (at most one frame) and joins it.
    fn drop(&mut self) {
        self.shared.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn capture(mut pcm: Pcm, shared: &Shared, samples: usize) {
    while !shared.is_closed() {
        let mut frame = vec![0i16; samples];
        match pcm.read_exact(&mut frame) {
            Ok(()) => shared.push(frame),
            Err(e) => {
                shared.fail(e);
                return;
            }
        }
    }
}
