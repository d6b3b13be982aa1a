//! Tests drive [`Probe::plan`] with a fake environment and fake pkg-config, and the scan
//! with fake library files in a temporary directory, and compare exact cargo lines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

use crate::found::Found;
use crate::host::Host;
use crate::pkg_config;
use crate::scan::{self, Names};
use crate::{Outcome, Probe};

const OPUS: Probe = Probe {
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
};

const ALSA: Probe = Probe {
    lib: "asound",
    pkg_config: "alsa",
    soname: "libasound.so.2",
    macos_soname: None,
    cfg: "natter_alsa",
    force_off_env: "NATTER_NO_ALSA",
    dir_env: None,
    linux_only: Some("not Linux: audio devices (ALSA) are disabled"),
    disabled: "audio devices are disabled",
    install_hint: "apt-get install libasound2-dev",
};

const OPUS_PREAMBLE: [&str; 7] = [
    "cargo:rerun-if-changed=build.rs",
    "cargo:rerun-if-env-changed=NATTER_NO_OPUS",
    "cargo:rerun-if-env-changed=PKG_CONFIG",
    "cargo:rerun-if-env-changed=PKG_CONFIG_PATH",
    "cargo:rerun-if-env-changed=PKG_CONFIG_ALLOW_CROSS",
    "cargo:rerun-if-env-changed=NATTER_OPUS_LIB_DIR",
    "cargo:rustc-check-cfg=cfg(natter_opus)",
];

const ALSA_PREAMBLE: [&str; 6] = [
    "cargo:rerun-if-changed=build.rs",
    "cargo:rerun-if-env-changed=NATTER_NO_ALSA",
    "cargo:rerun-if-env-changed=PKG_CONFIG",
    "cargo:rerun-if-env-changed=PKG_CONFIG_PATH",
    "cargo:rerun-if-env-changed=PKG_CONFIG_ALLOW_CROSS",
    "cargo:rustc-check-cfg=cfg(natter_alsa)",
];

/// A fake environment; records every pkg-config call as `(bin, package)`.
#[derive(Default)]
struct FakeHost {
    vars: HashMap<&'static str, OsString>,
    pkg_config_out: Option<String>,
    calls: RefCell<Vec<(OsString, String)>>,
}

impl FakeHost {
    fn with(vars: &[(&'static str, &str)]) -> FakeHost {
        FakeHost {
            vars: vars.iter().map(|(k, v)| (*k, OsString::from(v))).collect(),
            ..FakeHost::default()
        }
    }

    fn var_path(mut self, key: &'static str, path: &Path) -> FakeHost {
        self.vars.insert(key, path.as_os_str().to_owned());
        self
    }

    fn pkg(mut self, out: &str) -> FakeHost {
        self.pkg_config_out = Some(out.to_owned());
        self
    }
}

impl Host for FakeHost {
    fn var_os(&self, key: &str) -> Option<OsString> {
        self.vars.get(key).cloned()
    }

    fn pkg_config_libs(&self, bin: &OsStr, package: &str) -> Option<String> {
        self.calls
            .borrow_mut()
            .push((bin.to_owned(), package.to_owned()));
        self.pkg_config_out.clone()
    }
}

/// A directory under the system temp dir, removed on drop; `files` are created empty
/// (only their existence matters to the scan).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str, files: &[&str]) -> TempDir {
        let dir = std::env::temp_dir().join(format!("natter-syslib-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for f in files {
            fs::write(dir.join(f), b"").unwrap();
        }
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn expect(preamble: &[&str], rest: &[String], found: bool) -> Outcome {
    let mut lines: Vec<String> = preamble.iter().map(|s| (*s).to_owned()).collect();
    lines.extend(rest.iter().cloned());
    Outcome { lines, found }
}

fn linux_names(probe: &Probe) -> Names {
    Names::for_target(probe, Some("linux"))
}

#[test]
fn pkg_config_output_becomes_link_flags_in_order() {
    let found = pkg_config::parse_libs("-L/opt/opus/lib -lopus -pthread -lm\n", "opus");
    assert_eq!(
        found,
        Some(Found::PkgConfig {
            libs: vec!["opus".into(), "m".into()],
            dirs: vec!["/opt/opus/lib".into()],
        })
    );
    let mut lines = Vec::new();
    found.unwrap().emit("opus", &mut lines);
    assert_eq!(
        lines,
        [
            "cargo:rustc-link-search=native=/opt/opus/lib",
            "cargo:rustc-link-lib=dylib=opus",
            "cargo:rustc-link-lib=dylib=m",
        ]
    );
}

#[test]
fn pkg_config_output_without_our_library_is_ignored() {
    assert_eq!(pkg_config::parse_libs("-lopusfile -logg", "opus"), None);
    assert_eq!(pkg_config::parse_libs("", "opus"), None);
    assert_eq!(pkg_config::parse_libs("-L/usr/lib", "asound"), None);
}

#[test]
fn dev_symlink_in_a_later_directory_beats_an_earlier_soname() {
    let a = TempDir::new("later-a", &["libopus.so.0"]);
    let b = TempDir::new("later-b", &["libopus.so", "libopus.so.0"]);
    let dirs = [a.0.clone(), b.0.clone()];
    assert_eq!(
        scan::scan(&dirs, &linux_names(&OPUS)),
        Some(Found::DevLink(b.0.clone()))
    );
    let mut lines = Vec::new();
    Found::DevLink(b.0.clone()).emit("opus", &mut lines);
    assert_eq!(
        lines,
        [
            format!("cargo:rustc-link-search=native={}", b.0.display()),
            "cargo:rustc-link-lib=dylib=opus".to_owned(),
        ]
    );
}

#[test]
fn soname_alone_is_linked_verbatim() {
    let a = TempDir::new("soname-a", &[]);
    let b = TempDir::new("soname-b", &["libasound.so.2", "libasound.so.2.0.0"]);
    let dirs = [a.0.clone(), b.0.clone()];
    let found = scan::scan(&dirs, &linux_names(&ALSA));
    assert_eq!(found, Some(Found::Runtime(b.0.clone(), "libasound.so.2")));
    let mut lines = Vec::new();
    found.unwrap().emit("asound", &mut lines);
    assert_eq!(
        lines,
        [
            format!("cargo:rustc-link-search=native={}", b.0.display()),
            "cargo:rustc-link-lib=dylib:+verbatim=libasound.so.2".to_owned(),
        ]
    );
}

#[test]
fn other_versions_and_empty_directories_are_not_found() {
    let a = TempDir::new("none", &["libopus.so.1", "libopus.a", "libasound.so.2"]);
    assert_eq!(
        scan::scan(std::slice::from_ref(&a.0), &linux_names(&OPUS)),
        None
    );
    assert_eq!(scan::scan(&[], &linux_names(&OPUS)), None);
}

#[test]
fn macos_looks_for_dylibs() {
    assert_eq!(
        Names::for_target(&OPUS, Some("macos")),
        Names {
            dev: "libopus.dylib".into(),
            runtime: Some("libopus.0.dylib"),
        }
    );
    assert_eq!(
        Names::for_target(&OPUS, None),
        Names {
            dev: "libopus.so".into(),
            runtime: Some("libopus.so.0"),
        }
    );
    // Without a macOS soname only the dev name counts, even if a `.so.N` is lying around.
    let a = TempDir::new("macos", &["libasound.so.2"]);
    let names = Names::for_target(&ALSA, Some("macos"));
    assert_eq!(names.runtime, None);
    assert_eq!(scan::scan(std::slice::from_ref(&a.0), &names), None);
}

#[test]
fn candidate_directories_put_multiarch_first() {
    let want: Vec<PathBuf> = [
        "/usr/lib/aarch64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/local/lib/aarch64-linux-gnu",
        "/usr/lib",
        "/usr/lib64",
        "/lib64",
        "/usr/local/lib",
        "/opt/homebrew/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(scan::candidates(Some("aarch64")), want);
    assert_eq!(scan::candidates(Some("wasm32")), want[3..].to_vec());
    assert_eq!(scan::candidates(None), want[3..].to_vec());
    let t = TempDir::new("existing", &[]);
    let gone = t.0.join("missing");
    assert_eq!(scan::existing(vec![gone, t.0.clone()]), vec![t.0.clone()]);
}

#[test]
fn force_off_prints_the_warning_and_nothing_else() {
    let host = FakeHost::with(&[("NATTER_NO_OPUS", "1")]).pkg("-lopus");
    assert_eq!(
        OPUS.plan(&host),
        expect(
            &OPUS_PREAMBLE,
            &["cargo:warning=NATTER_NO_OPUS is set: Opus is disabled".into()],
            false
        )
    );
    assert!(host.calls.borrow().is_empty());

    let host = FakeHost::with(&[("NATTER_NO_ALSA", "yes")]);
    assert_eq!(
        ALSA.plan(&host),
        expect(
            &ALSA_PREAMBLE,
            &["cargo:warning=NATTER_NO_ALSA is set: audio devices are disabled".into()],
            false
        )
    );
}

#[test]
fn force_off_of_zero_or_empty_is_not_off() {
    let dir = TempDir::new("zero", &["libopus.so"]);
    for value in ["0", ""] {
        let host =
            FakeHost::with(&[("NATTER_NO_OPUS", value)]).var_path("NATTER_OPUS_LIB_DIR", &dir.0);
        assert!(OPUS.plan(&host).found, "NATTER_NO_OPUS={value:?}");
    }
}

#[test]
fn linux_only_library_is_skipped_elsewhere() {
    let host = FakeHost::with(&[("CARGO_CFG_TARGET_OS", "macos")]).pkg("-lasound");
    assert_eq!(
        ALSA.plan(&host),
        expect(
            &ALSA_PREAMBLE,
            &["cargo:warning=not Linux: audio devices (ALSA) are disabled".into()],
            false
        )
    );
    assert!(host.calls.borrow().is_empty());
}

#[test]
fn pkg_config_answer_is_used_when_native() {
    let host = FakeHost::with(&[
        ("CARGO_CFG_TARGET_OS", "linux"),
        ("HOST", "x86_64-unknown-linux-gnu"),
        ("TARGET", "x86_64-unknown-linux-gnu"),
    ])
    .pkg("-lasound\n");
    assert_eq!(
        ALSA.plan(&host),
        expect(
            &ALSA_PREAMBLE,
            &[
                "cargo:rustc-link-lib=dylib=asound".into(),
                "cargo:rustc-cfg=natter_alsa".into(),
            ],
            true
        )
    );
    assert_eq!(
        *host.calls.borrow(),
        [(OsString::from("pkg-config"), "alsa".to_owned())]
    );
}

#[test]
fn pkg_config_is_not_asked_when_cross_compiling_without_leave() {
    let mut host = FakeHost::with(&[
        ("HOST", "x86_64-unknown-linux-gnu"),
        ("TARGET", "aarch64-unknown-linux-gnu"),
        ("PKG_CONFIG", "/opt/bin/aarch64-pkg-config"),
    ])
    .pkg("-lopus");
    assert_eq!(pkg_config::probe(&host, "opus", "opus"), None);
    assert!(host.calls.borrow().is_empty());

    host.vars
        .insert("PKG_CONFIG_ALLOW_CROSS", OsString::from("1"));
    assert!(pkg_config::probe(&host, "opus", "opus").is_some());
    assert_eq!(
        *host.calls.borrow(),
        [(
            OsString::from("/opt/bin/aarch64-pkg-config"),
            "opus".to_owned()
        )]
    );
}

#[test]
fn explicit_directory_skips_pkg_config_and_links_the_soname() {
    let dir = TempDir::new("explicit", &["libopus.so.0"]);
    let host = FakeHost::default()
        .var_path("NATTER_OPUS_LIB_DIR", &dir.0)
        .pkg("-L/elsewhere -lopus");
    assert_eq!(
        OPUS.plan(&host),
        expect(
            &OPUS_PREAMBLE,
            &[
                format!("cargo:rustc-link-search=native={}", dir.0.display()),
                "cargo:rustc-link-lib=dylib:+verbatim=libopus.so.0".into(),
                "cargo:rustc-cfg=natter_opus".into(),
            ],
            true
        )
    );
    assert!(host.calls.borrow().is_empty());
}

#[test]
fn not_found_warns_and_watches_only_a_multiarch_directory() {
    let plain = TempDir::new("plain", &[]);
    let host = FakeHost::default().var_path("NATTER_OPUS_LIB_DIR", &plain.0);
    assert_eq!(
        OPUS.plan(&host),
        expect(
            &OPUS_PREAMBLE,
            &["cargo:warning=libopus not found: Opus is disabled \
               (apt-get install libopus-dev)"
                .into()],
            false
        )
    );

    let multiarch = TempDir::new("x86_64-linux-gnu", &[]);
    let host = FakeHost::default().var_path("NATTER_OPUS_LIB_DIR", &multiarch.0);
    assert_eq!(
        OPUS.plan(&host),
        expect(
            &OPUS_PREAMBLE,
            &[
                "cargo:warning=libopus not found: Opus is disabled \
                 (apt-get install libopus-dev)"
                    .into(),
                format!("cargo:rerun-if-changed={}", multiarch.0.display()),
            ],
            false
        )
    );
}
