//! What a probe found, and the link lines that hand it to the linker.

use std::path::PathBuf;

/// How the linker should find the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Flags from `pkg-config --libs`: every `-L` and `-l`, in order, because a static
    /// or unusual install may need more than the library itself.
    PkgConfig {
        libs: Vec<String>,
        dirs: Vec<String>,
    },
    /// The dev symlink (`libX.so` / `libX.dylib`) is in the directory: link as `-lX`.
    DevLink(PathBuf),
    /// Only the runtime file (the soname) is in the directory: link it by exact name.
    Runtime(PathBuf, &'static str),
}

impl Found {
    /// Appends the `cargo:rustc-link-*` lines; `lib` is the `-l` name for [`Found::DevLink`].
    pub(crate) fn emit(&self, lib: &str, lines: &mut Vec<String>) {
        match self {
            Found::PkgConfig { libs, dirs } => {
                for d in dirs {
                    lines.push(format!("cargo:rustc-link-search=native={d}"));
                }
                for l in libs {
                    lines.push(format!("cargo:rustc-link-lib=dylib={l}"));
                }
            }
            Found::DevLink(dir) => {
                lines.push(format!("cargo:rustc-link-search=native={}", dir.display()));
                lines.push(format!("cargo:rustc-link-lib=dylib={lib}"));
            }
            Found::Runtime(dir, file) => {
                // `+verbatim` hands the name to the linker as `-l:libopus.so.0`, and
                // unlike `rustc-link-arg` it travels with the rlib to every binary that
                // depends on the crate.
                lines.push(format!("cargo:rustc-link-search=native={}", dir.display()));
                lines.push(format!("cargo:rustc-link-lib=dylib:+verbatim={file}"));
            }
        }
    }
}
