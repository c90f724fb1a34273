//! Windows programs under Wine (Debian's `wine64`, which `scripts/test.sh` installs), for the
//! release's `eso-recovery.exe`: a prefix of its own under `target/`, and one stand-in, a
//! `bcryptprimitives.dll` (`tests/wine/bcryptprimitives.c`, built by zig), because Wine 8.0 has
//! none and Rust's standard library takes its random bytes from it. The prefix's wineserver is
//! stopped through the prefix (`wineserver -k`) when the [`Wine`] is dropped.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::tools::repo::repo;

const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";

/// A Wine prefix with one Windows program in a folder of its own (beside the DLL stand-in).
pub struct Wine {
    prefix: tempfile::TempDir,
    app: tempfile::TempDir,
}

impl Wine {
    /// A fresh prefix with `exe` copied in as `eso-recovery.exe`.
    pub fn with(exe: &Path) -> Wine {
        assert!(
            Path::new(WINE).exists(),
            "{WINE} is missing: apt-get install wine64 (scripts/test.sh does)"
        );
        let (prefix, app) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::copy(exe, app.path().join("eso-recovery.exe")).expect("copying the .exe");
        build_dll(&app.path().join("bcryptprimitives.dll"));
        let wine = Wine { prefix, app };
        // The prefix is made on the first start; wineboot makes it without running anything.
        let out = wine.command(&["wineboot", "--init"]).output().unwrap();
        assert!(out.status.success(), "wineboot: {out:?}");
        wine
    }

    /// `wine64 eso-recovery.exe`, as a program for [`crate::run::run_program`] (whose cleared
    /// environment is made up with `env`).
    pub fn program(&self) -> [PathBuf; 2] {
        [
            PathBuf::from(WINE),
            self.app.path().join("eso-recovery.exe"),
        ]
    }

    /// The environment Wine needs beyond PATH and HOME: the prefix, and no debug channels.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WINEPREFIX", self.prefix.path().display().to_string()),
            ("WINEDEBUG", "-all".to_string()),
        ]
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WINE);
        cmd.args(args);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        let _ = Command::new(WINESERVER)
            .arg("-k")
            .env("WINEPREFIX", self.prefix.path())
            .status();
    }
}

/// `path` as Windows sees it under Wine: drive Z: is the root of this machine's files.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Builds the `bcryptprimitives.dll` stand-in with zig (the release's, from `target/zig`).
fn build_dll(to: &Path) {
    let zig = repo().join("target/zig/bin/python-zig");
    let out = Command::new(&zig)
        .args([
            "cc",
            "-target",
            "x86_64-windows-gnu",
            "-shared",
            "-O2",
            "-o",
        ])
        .arg(to)
        .arg(repo().join("tests/wine/bcryptprimitives.c"))
        .arg("-ladvapi32")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (scripts/build-static.sh installs it): {e}",
                zig.display()
            )
        });
    assert!(
        out.status.success(),
        "building the bcryptprimitives.dll stand-in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
