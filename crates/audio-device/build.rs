//! Finds the system libasound (alsa-lib) without requiring pkg-config or the
//! libasound2-dev headers: the project promises that a machine with only a Rust toolchain
//! and a C compiler builds. When the library is found the crate is compiled with
//! `--cfg natter_alsa` and links it; when not, the device types are built as stand-ins
//! whose `open` report `DeviceError::Unavailable` at runtime.
//!
//! Search order: `NATTER_NO_ALSA=1` (force the stand-in, to test the fallback), the
//! `pkg-config` binary if one is on PATH (or named by `PKG_CONFIG`), then the multiarch
//! and usual library directories, preferring the `libasound.so` dev symlink and falling
//! back to the runtime `libasound.so.2` (package libasound2) by its exact file name.
//!
//! Installing libasound2-dev later is picked up by the next build on Debian (the
//! multiarch library directory is watched); elsewhere `cargo clean -p
//! natter-audio-device` re-detects.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The runtime soname shipped by Debian's libasound2 (ABI stable since alsa-lib 1.0).
const SONAME: &str = "libasound.so.2";

/// How the linker should find libasound.
enum Found {
    /// Flags from `pkg-config --libs alsa`.
    PkgConfig {
        libs: Vec<String>,
        dirs: Vec<String>,
    },
    /// `libasound.so` in the directory: link as `-lasound`.
    DevLink(PathBuf),
    /// Only `libasound.so.2` exists in the directory: link that file by name.
    Runtime(PathBuf),
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NATTER_NO_ALSA");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_ALLOW_CROSS");
    println!("cargo:rustc-check-cfg=cfg(natter_alsa)");

    if env::var("NATTER_NO_ALSA").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:warning=NATTER_NO_ALSA is set: audio devices are disabled");
        return;
    }
    // ALSA is Linux-only; elsewhere the stand-in is the only option.
    if env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os != "linux") {
        println!("cargo:warning=not Linux: audio devices (ALSA) are disabled");
        return;
    }
    let dirs = lib_dirs();
    match pkg_config().or_else(|| scan(&dirs)) {
        Some(found) => {
            emit(&found);
            println!("cargo:rustc-cfg=natter_alsa");
        }
        None => {
            println!(
                "cargo:warning=libasound not found: audio devices are disabled \
                 (apt-get install libasound2-dev)"
            );
            // Watch only the multiarch directory, and only if it exists: a missing path
            // would rerun this script on every build, and all of /usr/lib is too much.
            if let Some(dir) = dirs
                .iter()
                .find(|d| d.to_string_lossy().contains("-linux-"))
            {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
        }
    }
}

fn emit(found: &Found) {
    match found {
        Found::PkgConfig { libs, dirs } => {
            for d in dirs {
                println!("cargo:rustc-link-search=native={d}");
            }
            for l in libs {
                println!("cargo:rustc-link-lib=dylib={l}");
            }
        }
        Found::DevLink(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=dylib=asound");
        }
        Found::Runtime(dir) => {
            // `+verbatim` becomes `-l:libasound.so.2` and, unlike `rustc-link-arg`,
            // travels with the rlib to every binary that depends on this crate.
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=dylib:+verbatim={SONAME}");
        }
    }
}

/// Asks pkg-config when it exists (a missing binary or alsa.pc falls through to the
/// directory scan) and we are not cross-compiling without leave.
fn pkg_config() -> Option<Found> {
    let cross = env::var("HOST").ok() != env::var("TARGET").ok();
    if cross && env::var_os("PKG_CONFIG_ALLOW_CROSS").is_none() {
        return None;
    }
    let bin = env::var_os("PKG_CONFIG").unwrap_or_else(|| "pkg-config".into());
    let out = Command::new(bin).args(["--libs", "alsa"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut libs = Vec::new();
    let mut dirs = Vec::new();
    for flag in text.split_whitespace() {
        if let Some(l) = flag.strip_prefix("-l") {
            libs.push(l.to_owned());
        } else if let Some(d) = flag.strip_prefix("-L") {
            dirs.push(d.to_owned());
        }
    }
    libs.iter()
        .any(|l| l == "asound")
        .then_some(Found::PkgConfig { libs, dirs })
}

/// The dev symlink in any directory wins over the runtime soname.
fn scan(dirs: &[PathBuf]) -> Option<Found> {
    if let Some(d) = dirs.iter().find(|d| d.join("libasound.so").exists()) {
        return Some(Found::DevLink(d.clone()));
    }
    dirs.iter()
        .find(|d| d.join(SONAME).exists())
        .map(|d| Found::Runtime(d.clone()))
}

/// Existing library directories for the target, most specific first.
fn lib_dirs() -> Vec<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = match arch.as_str() {
        "x86_64" => Some("x86_64-linux-gnu"),
        "aarch64" => Some("aarch64-linux-gnu"),
        "x86" => Some("i386-linux-gnu"),
        "arm" => Some("arm-linux-gnueabihf"),
        "riscv64" => Some("riscv64-linux-gnu"),
        "s390x" => Some("s390x-linux-gnu"),
        _ => None,
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(m) = multiarch {
        for base in ["/usr/lib", "/lib", "/usr/local/lib"] {
            dirs.push(Path::new(base).join(m));
        }
    }
    for d in ["/usr/lib", "/usr/lib64", "/lib64", "/usr/local/lib"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}
