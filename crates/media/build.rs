//! Finds the system libopus without depending on pkg-config, cmake or a -dev package
//! being installed: the project promises that a machine with only a Rust toolchain and a
//! C compiler builds and runs. When libopus is found the crate is compiled with
//! `--cfg natter_opus` and links it; when not, Opus is compiled out and the codec
//! factories report it as unavailable at runtime.
//!
//! Search order (implemented once in natter-syslib, shared with natter-audio-device):
//! `NATTER_NO_OPUS=1` (force off, for testing the fallback), `NATTER_OPUS_LIB_DIR` (only
//! that directory), the `pkg-config` binary if one is on PATH (or named by `PKG_CONFIG`),
//! then the usual library directories, preferring the `libopus.so` dev symlink and
//! falling back to the runtime `libopus.so.0` by its exact file name.
//!
//! Installing libopus-dev later is picked up by the next build on Debian (the multiarch
//! library directory is watched); elsewhere `cargo clean -p natter-media` re-detects.

fn main() {
    natter_syslib::Probe {
        lib: "opus",
        pkg_config: "opus",
        soname: "libopus.so.0",
        macos_soname: Some("libopus.0.dylib"),
        cfg: "natter_opus",
        force_off_env: "NATTER_NO_OPUS",
        dir_env: Some("NATTER_OPUS_LIB_DIR"),
        linux_only: None,
        disabled: "Opus is disabled",
        install_hint: "apt-get install libopus-dev",
    }
    .run();
}
