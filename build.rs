//! Stamps the binary with what `--version` reports beside Cargo's version: the commit it was
//! built from and the target it was built for, so a user can tell exactly which build runs.
//! The release command (and a build outside a git checkout) passes the commit in
//! `ESO_RECOVERY_COMMIT`; otherwise it is read from git, and "unknown" when neither says.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ESO_RECOVERY_COMMIT");
    // A new commit (or a checkout) changes HEAD or the ref it points at.
    for path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let commit = std::env::var("ESO_RECOVERY_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=ESO_RECOVERY_COMMIT={commit}");
    println!("cargo:rustc-env=ESO_RECOVERY_TARGET={target}");
}
