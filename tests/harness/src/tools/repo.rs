//! The repository the harness serves: its root, and the build scripts that make each real part
//! once (each prints the path of what it built).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the harness lives in tests/harness of the repository")
        .to_path_buf()
}

/// Runs one of the build scripts (path from the repository root) and returns the path it printed.
pub fn script(path: &str) -> PathBuf {
    script_with(path, &[])
}

/// As [`script`], with arguments.
pub fn script_with(path: &str, args: &[&str]) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join(path)).args(args);
    finish(path, cmd)
}

/// As [`script_with`], at the lowest CPU priority (`nice -n 19`): for a long build that must
/// only take what the tests running beside it leave.
pub fn script_yielding(path: &str, args: &[&str]) -> PathBuf {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "19", "bash"])
        .arg(repo().join(path))
        .args(args);
    finish(path, cmd)
}

fn finish(path: &str, mut cmd: Command) -> PathBuf {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {path}: {e}"));
    assert!(
        out.status.success(),
        "{path} failed (Go and the module proxy are needed, or see the script for the override):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
}
