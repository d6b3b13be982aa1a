//! Playback: a thread writes queued frames to the device, silence when none came.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{Direction, Pcm};
use crate::config::DeviceConfig;
use crate::error::DeviceError;
use crate::shared::{Pop, Shared};
use crate::QUEUE_FRAMES;

/// An open playback device. [`Speaker::play`] queues a frame without blocking; the
/// thread writes frames in order, blocking in ALSA while the device buffer is full, which
/// paces it to the sound card. When no frame arrives for 1.5 frame times it writes a
/// frame of silence so the device does not underrun (an underrun would click and
/// restart the stream). At most [`QUEUE_FRAMES`] frames wait; beyond that the oldest are
/// dropped so latency stays bounded.
#[derive(Debug)]
pub struct Speaker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Speaker {
    /// Opens `cfg.name` for playback and starts the playback thread.
    pub fn open(cfg: &DeviceConfig) -> Result<Speaker, DeviceError> {
        cfg.validate()?;
        let pcm = Pcm::open(&cfg.name, Direction::Playback, cfg.rate)?;
        let shared = Arc::new(Shared::new(QUEUE_FRAMES));
        let for_thread = shared.clone();
        let silence = vec![0i16; cfg.frame_samples];
        let patience = cfg.frame_duration() * 3 / 2;
        let thread = std::thread::Builder::new()
            .name("natter-speaker".to_owned())
            .spawn(move || playback(pcm, &for_thread, &silence, patience))
            .map_err(|e| DeviceError::Thread(e.to_string()))?;
        Ok(Speaker {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `frame` (any length; normally `frame_samples`) for playback. Never blocks;
    /// an empty frame is ignored.
    pub fn play(&self, frame: &[i16]) {
        if !frame.is_empty() {
            self.shared.push(frame.to_vec());
        }
    }

    /// Frames queued but not yet handed to ALSA.
    pub fn queued(&self) -> usize {
        self.shared.len()
    }

    /// Frames thrown away because the queue was full (played faster than the device).
    pub fn dropped_frames(&self) -> u64 {
        self.shared.dropped()
    }

    /// Why playback stopped, if it did (e.g. the device was unplugged).
    pub fn failure(&self) -> Option<DeviceError> {
        self.shared.failure()
    }
}

impl Drop for Speaker {
    /// Wakes and stops the thread and joins it; frames still queued are not played
    /// (closing the PCM drops what ALSA holds too).
    fn drop(&mut self) {
        self.shared.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn playback(mut pcm: Pcm, shared: &Shared, silence: &[i16], patience: Duration) {
    loop {
        if shared.is_closed() {
            return;
        }
        let result = match shared.pop_timeout(patience) {
            Pop::Frame(f) => pcm.write_all(&f),
            Pop::Empty => pcm.write_all(silence),
            Pop::Closed => return,
        };
        if let Err(e) = result {
            shared.fail(e);
            return;
        }
    }
}
