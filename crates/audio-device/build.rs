//! Finds the system libasound (alsa-lib) without requiring pkg-config or the
//! libasound2-dev headers: the project promises that a machine with only a Rust toolchain
//! and a C compiler builds. When the library is found the crate is compiled with
//! `--cfg natter_alsa` and links it; when not, the device types are built as stand-ins
//! whose `open` report `DeviceError::Unavailable` at runtime.
//!
//! Search order (implemented once in natter-syslib, shared with natter-media):
//! `NATTER_NO_ALSA=1` (force the stand-in, to test the fallback), Linux only, the
//! `pkg-config` binary if one is on PATH (or named by `PKG_CONFIG`), then the multiarch
//! and usual library directories, preferring the `libasound.so` dev symlink and falling
//! back to the runtime `libasound.so.2` (package libasound2) by its exact file name.
//!
//! Installing libasound2-dev later is picked up by the next build on Debian (the
//! multiarch library directory is watched); elsewhere `cargo clean -p
//! natter-audio-device` re-detects.

fn main() {
    natter_syslib::Probe {
        lib: "asound",
        pkg_config: "alsa",
        // The runtime soname shipped by Debian's libasound2 (ABI stable since alsa-lib 1.0).
        soname: "libasound.so.2",
        macos_soname: None,
        cfg: "natter_alsa",
        force_off_env: "NATTER_NO_ALSA",
        dir_env: None,
        // ALSA is Linux-only; elsewhere the stand-in is the only option.
        linux_only: Some("not Linux: audio devices (ALSA) are disabled"),
        disabled: "audio devices are disabled",
        install_hint: "apt-get install libasound2-dev",
    }
    .run();
}
