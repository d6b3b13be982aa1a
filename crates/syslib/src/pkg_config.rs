//! Asking the `pkg-config` binary, when there is one. It is optional: the directory scan
//! in [`crate::scan`] is the fallback, and the project does not require pkg-config.

use std::ffi::OsString;

use crate::found::Found;
use crate::host::Host;

/// Asks pkg-config for `package`, unless we are cross-compiling without
/// `PKG_CONFIG_ALLOW_CROSS` (the host's answer would name host libraries). `PKG_CONFIG`
/// names the binary; by default `pkg-config` on PATH.
pub(crate) fn probe(host: &impl Host, package: &str, lib: &str) -> Option<Found> {
    let cross = host.var("HOST") != host.var("TARGET");
    if cross && host.var_os("PKG_CONFIG_ALLOW_CROSS").is_none() {
        return None;
    }
    let bin = host
        .var_os("PKG_CONFIG")
        .unwrap_or_else(|| OsString::from("pkg-config"));
    parse_libs(&host.pkg_config_libs(&bin, package)?, lib)
}

/// Turns `pkg-config --libs` output into link flags. Only `-L` and `-l` are kept (other
/// flags such as `-pthread` are the compiler's business, not the linker lines cargo
/// accepts); `None` when `-l<lib>` itself is absent, because then the answer is not
/// about our library and the directory scan should decide.
pub(crate) fn parse_libs(text: &str, lib: &str) -> Option<Found> {
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
        .any(|l| l == lib)
        .then_some(Found::PkgConfig { libs, dirs })
}
