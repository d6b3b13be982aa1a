//! Finds a system C library for a build script, without pkg-config, cmake or a `-dev`
//! package having to be installed: the project promises that a machine with only a Rust
//! toolchain and a C compiler builds. A crate that wraps an optional system library
//! (libopus in natter-media, libasound in natter-audio-device) describes it with a
//! [`Probe`] and calls [`Probe::run`] from its `build.rs`; when the library is found the
//! crate is compiled with `--cfg <cfg>` and linked to it, otherwise the crate compiles
//! its stand-in and a `cargo:warning` says how to get the real thing.
//!
//! This crate exists so that the two build scripts cannot drift apart: they used to be
//! near copies of each other. It has no dependencies because it is a build-dependency.
//!
//! Search order, as [`Probe`] documents field by field: the force-off variable, the
//! optional Linux-only gate, the optional explicit library directory (which replaces
//! everything after it), the `pkg-config` binary if one is on PATH (or named by
//! `PKG_CONFIG`), then the multiarch and usual library directories, preferring the dev
//! symlink (`libX.so`) in any directory over the runtime soname (`libX.so.N`), which is
//! linked by its exact file name.

mod found;
mod host;
mod pkg_config;
mod scan;

use std::path::PathBuf;

use host::{Host, SystemHost};

/// One optional system library, described for [`Probe::run`].
///
/// Every field is `'static` text because it is written once in a `build.rs`; the names
/// and texts are the crate's contract with its own `#[cfg]`s, its tests and its users'
/// scripts, so they are spelled out by the caller rather than derived here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Link name: `"opus"` means `-lopus`, the dev symlink `libopus.so` and the
    /// warning "libopus not found".
    pub lib: &'static str,
    /// pkg-config package name (`"opus"`, `"alsa"`); its `--libs` must contain `-l<lib>`.
    pub pkg_config: &'static str,
    /// Runtime file name linked verbatim when the dev symlink is missing, e.g.
    /// `"libopus.so.0"`: the runtime package is far more often installed than `-dev`.
    pub soname: &'static str,
    /// The runtime file name on macOS (`"libopus.0.dylib"`); `None` when the library
    /// does not exist there, in which case only `lib<lib>.dylib` is looked for.
    pub macos_soname: Option<&'static str>,
    /// The `--cfg` name set when the library is found (`"natter_opus"`).
    pub cfg: &'static str,
    /// Set to anything but empty or `"0"` to force the stand-in, to test the fallback.
    pub force_off_env: &'static str,
    /// Variable naming the only directory to look in (a library built into a prefix);
    /// when set, pkg-config and the usual directories are skipped.
    pub dir_env: Option<&'static str>,
    /// `Some(warning)` when the library only exists on Linux: on any other target the
    /// warning is printed and nothing is looked for.
    pub linux_only: Option<&'static str>,
    /// What the crate loses, for the warnings: `"Opus is disabled"`.
    pub disabled: &'static str,
    /// How to install the library, for the not-found warning:
    /// `"apt-get install libopus-dev"`.
    pub install_hint: &'static str,
}

/// The cargo lines a probe prints, and whether the library was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Complete `cargo:` lines in print order.
    pub lines: Vec<String>,
    /// Whether `--cfg <cfg>` was emitted.
    pub found: bool,
}

impl Probe {
    /// Looks for the library, prints every `cargo:` line for it and returns whether it
    /// was found (and `--cfg <cfg>` set). Call it from `build.rs`.
    pub fn run(&self) -> bool {
        let outcome = self.plan(&SystemHost);
        for line in &outcome.lines {
            println!("{line}");
        }
        outcome.found
    }

    /// The whole decision, with the environment and pkg-config behind `host` so tests can
    /// drive it; only the directory checks touch the real file system.
    pub(crate) fn plan(&self, host: &impl Host) -> Outcome {
        let mut lines = vec!["cargo:rerun-if-changed=build.rs".to_owned()];
        for var in [
            self.force_off_env,
            "PKG_CONFIG",
            "PKG_CONFIG_PATH",
            "PKG_CONFIG_ALLOW_CROSS",
        ]
        .into_iter()
        .chain(self.dir_env)
        {
            lines.push(format!("cargo:rerun-if-env-changed={var}"));
        }
        lines.push(format!("cargo:rustc-check-cfg=cfg({})", self.cfg));

        let forced_off = host
            .var(self.force_off_env)
            .is_some_and(|v| !v.is_empty() && v != "0");
        if forced_off {
            lines.push(format!(
                "cargo:warning={} is set: {}",
                self.force_off_env, self.disabled
            ));
            return Outcome {
                lines,
                found: false,
            };
        }
        let target_os = host.var("CARGO_CFG_TARGET_OS");
        if let Some(warning) = self.linux_only {
            if target_os.as_deref().is_some_and(|os| os != "linux") {
                lines.push(format!("cargo:warning={warning}"));
                return Outcome {
                    lines,
                    found: false,
                };
            }
        }

        let explicit = self.dir_env.and_then(|key| host.var_os(key));
        let dirs = match &explicit {
            // Taken as given, not filtered: a wrong directory should end in the
            // not-found warning rather than a silent search elsewhere.
            Some(dir) => vec![PathBuf::from(dir)],
            None => scan::existing(scan::candidates(
                host.var("CARGO_CFG_TARGET_ARCH").as_deref(),
            )),
        };
        let names = scan::Names::for_target(self, target_os.as_deref());
        let found = if explicit.is_some() {
            scan::scan(&dirs, &names)
        } else {
            pkg_config::probe(host, self.pkg_config, self.lib).or_else(|| scan::scan(&dirs, &names))
        };
        match found {
            Some(found) => {
                found.emit(self.lib, &mut lines);
                lines.push(format!("cargo:rustc-cfg={}", self.cfg));
                Outcome { lines, found: true }
            }
            None => {
                lines.push(format!(
                    "cargo:warning=lib{} not found: {} ({})",
                    self.lib, self.disabled, self.install_hint
                ));
                // Re-detect once the -dev package is installed. Only the multiarch
                // directory is watched (Cargo scans it recursively; all of /usr/lib would
                // be too much), and only when it exists: a missing path would rerun the
                // script on every build.
                if let Some(dir) = dirs
                    .iter()
                    .find(|d| d.to_string_lossy().contains("-linux-"))
                {
                    lines.push(format!("cargo:rerun-if-changed={}", dir.display()));
                }
                Outcome {
                    lines,
                    found: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
