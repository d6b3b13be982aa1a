//! Against alsa-lib's `null` PCM, which exists without any sound card: playback
//! swallows samples and capture yields silence. Only in builds that link libasound.
#![cfg(natter_alsa)]

use std::time::{Duration, Instant};

use natter_audio_device::{available, DeviceConfig, DeviceError, Microphone, Speaker};

/// Generous: a loaded CI machine may be slow to schedule the device thread.
const DEADLINE: Duration = Duration::from_secs(5);

fn null() -> DeviceConfig {
    DeviceConfig {
        name: "null".to_owned(),
        rate: 8000,
        frame_samples: 160,
    }
}

#[test]
fn built_with_alsa() {
    assert!(available());
}

#[test]
fn speaker_on_null_consumes_frames() {
    let spk = Speaker::open(&null()).unwrap();
    let frame: Vec<i16> = (0..160).map(|i| (i * 100) as i16).collect();
    for _ in 0..5 {
        spk.play(&frame);
    }
    let end = Instant::now() + DEADLINE;
    while spk.queued() > 0 && Instant::now() < end {
        std::thread::yield_now();
    }
    assert_eq!(spk.queued(), 0, "playback thread did not drain the queue");
    assert_eq!(spk.failure(), None);
    assert_eq!(spk.dropped_frames(), 0);
}

#[test]
fn speaker_queue_is_bounded() {
    // Dropped straight after: the thread must stop even with frames pending.
    let spk = Speaker::open(&null()).unwrap();
    for i in 0..1000 {
        spk.play(&[i as i16; 160]);
    }
    assert!(spk.queued() <= natter_audio_device::QUEUE_FRAMES);
    spk.play(&[]);
    assert_eq!(spk.failure(), None);
}

#[test]
fn microphone_on_null_yields_silent_frames() {
    let mic = Microphone::open(&null()).unwrap();
    let end = Instant::now() + DEADLINE;
    let mut got = None;
    while got.is_none() && Instant::now() < end {
        got = mic.try_frame();
        if got.is_none() {
            std::thread::yield_now();
        }
    }
    assert_eq!(got, Some(vec![0i16; 160]));
    assert_eq!(mic.wait_frame(DEADLINE), Some(vec![0i16; 160]));
    assert_eq!(mic.failure(), None);
}

#[test]
fn microphone_at_48k_yields_20ms_frames() {
    let cfg = DeviceConfig {
        name: "null".to_owned(),
        ..DeviceConfig::default_device(48000)
    };
    let mic = Microphone::open(&cfg).unwrap();
    let frame = mic.wait_frame(DEADLINE).unwrap();
    assert_eq!(frame.len(), 960);
}

#[test]
fn unknown_device_is_an_open_error() {
    let cfg = DeviceConfig {
        name: "natter_no_such_device".to_owned(),
        ..null()
    };
    let e = Microphone::open(&cfg).unwrap_err();
    assert!(matches!(e, DeviceError::Open(_)), "{e:?}");
    // alsa-lib reports an unknown PCM name as ENOENT.
    assert_eq!(
        e.to_string(),
        "audio device: cannot open \"natter_no_such_device\" for capture: \
         No such file or directory"
    );
    let e = Speaker::open(&cfg).unwrap_err();
    assert!(matches!(e, DeviceError::Open(_)), "{e:?}");
}

#[test]
fn bad_config_is_rejected_before_alsa() {
    let cfg = DeviceConfig { rate: 0, ..null() };
    assert_eq!(
        Speaker::open(&cfg).unwrap_err(),
        DeviceError::Config("rate must be 1..=192000 Hz")
    );
}
