//! Looking for the library's files in the usual directories, for machines without
//! pkg-config or without the `-dev` package's `.pc` file.

use std::path::{Path, PathBuf};

use crate::found::Found;
use crate::Probe;

/// The two file names to look for on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// The dev symlink, linkable as `-l<lib>`: `libopus.so`.
    pub dev: String,
    /// The runtime file, linked verbatim: `libopus.so.0`. `None` on macOS for a library
    /// without a known macOS name.
    pub runtime: Option<&'static str>,
}

impl Names {
    /// The names for `target_os` (`CARGO_CFG_TARGET_OS`): `.dylib` on macOS, `.so`
    /// everywhere else.
    pub(crate) fn for_target(probe: &Probe, target_os: Option<&str>) -> Names {
        if target_os == Some("macos") {
            Names {
                dev: format!("lib{}.dylib", probe.lib),
                runtime: probe.macos_soname,
            }
        } else {
            Names {
                dev: format!("lib{}.so", probe.lib),
                runtime: Some(probe.soname),
            }
        }
    }
}

/// The dev symlink in any directory wins over the runtime file in an earlier one: `-lX`
/// is what every other tool would link, so it is the least surprising choice.
pub(crate) fn scan(dirs: &[PathBuf], names: &Names) -> Option<Found> {
    if let Some(d) = dirs.iter().find(|d| d.join(&names.dev).exists()) {
        return Some(Found::DevLink(d.clone()));
    }
    let runtime = names.runtime?;
    dirs.iter()
        .find(|d| d.join(runtime).exists())
        .map(|d| Found::Runtime(d.clone(), runtime))
}

/// Library directories for `arch` (`CARGO_CFG_TARGET_ARCH`), most specific first: the
/// Debian multiarch ones, then the classic ones (including Homebrew's on Apple silicon).
pub(crate) fn candidates(arch: Option<&str>) -> Vec<PathBuf> {
    let multiarch = match arch {
        Some("x86_64") => Some("x86_64-linux-gnu"),
        Some("aarch64") => Some("aarch64-linux-gnu"),
        Some("x86") => Some("i386-linux-gnu"),
        Some("arm") => Some("arm-linux-gnueabihf"),
        Some("riscv64") => Some("riscv64-linux-gnu"),
        Some("s390x") => Some("s390x-linux-gnu"),
        _ => None,
    };
    let mut dirs = Vec::new();
    if let Some(m) = multiarch {
        for base in ["/usr/lib", "/lib", "/usr/local/lib"] {
            dirs.push(Path::new(base).join(m));
        }
    }
    for d in [
        "/usr/lib",
        "/usr/lib64",
        "/lib64",
        "/usr/local/lib",
        "/opt/homebrew/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Keeps the directories that exist: only those may be watched with
/// `rerun-if-changed` (a missing path reruns the build script on every build).
pub(crate) fn existing(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.retain(|d| d.is_dir());
    dirs
}
