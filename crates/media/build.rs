//! Finds the system libopus without depending on pkg-config, cmake or a -dev package
//! being installed: the project promises that a machine with only a Rust toolchain and a
//! C compiler builds and runs. When libopus is found the crate is compiled with
//! `--cfg natter_opus` and links it; when not, Opus is compiled out and the codec
//! factories report it as unavailable at runtime.
//!
//! Search order: `NATTER_NO_OPUS=1` (force off, for testing the fallback),
//! `NATTER_OPUS_LIB_DIR` (only that directory), the `pkg-config` binary if one is on
//! PATH (or named by `PKG_CONFIG`), then the usual library directories, preferring the
//! `libopus.so` dev symlink and falling back to the runtime `libopus.so.0` by its exact
//! file name.
//!
//! Installing libopus-dev later is picked up by the next build on Debian (the multiarch
//! library directory is watched); elsewhere `cargo clean -p natter-media` re-detects.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the linker should find libopus.
enum Found {
    /// Flags from `pkg-config --libs opus`.
    PkgConfig {
        libs: Vec<String>,
        dirs: Vec<String>,
    },
    /// `libopus.so` (or `.dylib`) in `dir`: link as `-lopus`.
    DevLink(PathBuf),
    /// Only the runtime soname exists in `dir`: link the file by its exact name.
    Runtime(PathBuf, &'static str),
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NATTER_NO_OPUS");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_ALLOW_CROSS");
    println!("cargo:rerun-if-env-changed=NATTER_OPUS_LIB_DIR");
    println!("cargo:rustc-check-cfg=cfg(natter_opus)");

    let forced_off = env::var("NATTER_NO_OPUS").is_ok_and(|v| !v.is_empty() && v != "0");
    if forced_off {
        println!("cargo:warning=NATTER_NO_OPUS is set: Opus is disabled");
        return;
    }
    let dirs = lib_dirs();
    let explicit = env::var_os("NATTER_OPUS_LIB_DIR").is_some();
    let found = if explicit {
        scan(&dirs)
    } else {
        pkg_config().or_else(|| scan(&dirs))
    };
    match found {
        Some(found) => {
            emit(&found);
            println!("cargo:rustc-cfg=natter_opus");
        }
        None => {
            println!(
                "cargo:warning=libopus not found: Opus is disabled (apt-get install libopus-dev)"
            );
            // Re-detect once libopus-dev is installed. Only the multiarch directory is
            // watched (Cargo scans it recursively; all of /usr/lib would be too much),
            // and only when it exists: a missing path would rerun this script on every
            // build.
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
            println!("cargo:rustc-link-lib=dylib=opus");
        }
        Found::Runtime(dir, file) => {
            // `+verbatim` hands the name to the linker as `-l:libopus.so.0`, and unlike
            // `rustc-link-arg` it travels with the rlib to the binaries that use us.
            println!("cargo:rustc-link-search=native={}", dir.display());
            println!("cargo:rustc-link-lib=dylib:+verbatim={file}");
        }
    }
}

/// Asks pkg-config, if it is installed and we are not cross-compiling without leave.
fn pkg_config() -> Option<Found> {
    let cross = env::var("HOST").ok() != env::var("TARGET").ok();
    if cross && env::var_os("PKG_CONFIG_ALLOW_CROSS").is_none() {
        return None;
    }
    let bin = env::var_os("PKG_CONFIG").unwrap_or_else(|| "pkg-config".into());
    // A missing binary is an Err here, a missing opus.pc a non-zero exit: both fall
    // through to the directory scan.
    let out = Command::new(bin).args(["--libs", "opus"]).output().ok()?;
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
    if !libs.iter().any(|l| l == "opus") {
        return None;
    }
    Some(Found::PkgConfig { libs, dirs })
}

/// Looks for the dev symlink in every directory first, then for the runtime soname.
fn scan(dirs: &[PathBuf]) -> Option<Found> {
    let macos = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "macos");
    let dev = if macos { "libopus.dylib" } else { "libopus.so" };
    let runtime = if macos {
        "libopus.0.dylib"
    } else {
        "libopus.so.0"
    };
    if let Some(d) = dirs.iter().find(|d| d.join(dev).exists()) {
        return Some(Found::DevLink(d.clone()));
    }
    dirs.iter()
        .find(|d| d.join(runtime).exists())
        .map(|d| Found::Runtime(d.clone(), runtime))
}

/// Existing library directories for the target, most specific first.
fn lib_dirs() -> Vec<PathBuf> {
    // An explicit directory (a libopus built into a prefix) replaces the search.
    if let Some(dir) = env::var_os("NATTER_OPUS_LIB_DIR") {
        return vec![PathBuf::from(dir)];
    }
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
        dirs.push(Path::new("/usr/lib").join(m));
        dirs.push(Path::new("/lib").join(m));
        dirs.push(Path::new("/usr/local/lib").join(m));
    }
    for d in [
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/opt/homebrew/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}
