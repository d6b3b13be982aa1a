//! The stand-in build (`NATTER_NO_ALSA=1`, or no libasound found): everything compiles
//! and opening reports why devices are unavailable.
#![cfg(not(natter_alsa))]

use natter_audio_device::{available, DeviceConfig, DeviceError, Microphone, Speaker};

const WHY: &str = "audio devices: built without ALSA (install libasound2-dev and rebuild)";

#[test]
fn open_is_unavailable() {
    assert!(!available());
    let cfg = DeviceConfig::default_device(8000);
    assert_eq!(
        Microphone::open(&cfg).unwrap_err(),
        DeviceError::Unavailable(WHY)
    );
    let e = Speaker::open(&cfg).unwrap_err();
    assert_eq!(e, DeviceError::Unavailable(WHY));
    assert_eq!(e.to_string(), WHY);
}

#[test]
fn config_is_still_checked_first() {
    let cfg = DeviceConfig {
        frame_samples: 0,
        ..DeviceConfig::default_device(8000)
    };
    assert!(matches!(
        Microphone::open(&cfg),
        Err(DeviceError::Config(_))
    ));
}
