//! The parts of the build environment a probe reads, behind a trait so the decision in
//! [`crate::Probe`] can be tested with a fake environment and a fake pkg-config.

use std::env;
use std::ffi::{OsStr, OsString};
use std::process::Command;

/// Environment variables and the pkg-config binary.
pub(crate) trait Host {
    /// Like [`std::env::var_os`].
    fn var_os(&self, key: &str) -> Option<OsString>;

    /// The standard output of `<bin> --libs <package>` when it ran and exited 0. A
    /// missing binary and a missing `.pc` file both give `None`.
    fn pkg_config_libs(&self, bin: &OsStr, package: &str) -> Option<String>;

    /// Like `std::env::var(key).ok()`: a value that is not UTF-8 counts as unset.
    fn var(&self, key: &str) -> Option<String> {
        self.var_os(key)?.into_string().ok()
    }
}

/// The real process environment, as a build script sees it.
pub(crate) struct SystemHost;

impl Host for SystemHost {
    fn var_os(&self, key: &str) -> Option<OsString> {
        env::var_os(key)
    }

    fn pkg_config_libs(&self, bin: &OsStr, package: &str) -> Option<String> {
        let out = Command::new(bin).args(["--libs", package]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()
    }
}
