//! The built `eso-recovery`, run as a person or a CronJob runs it: its exit code, what it printed
//! and the summary line it ends with.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::process::controlplane;

/// The `eso-recovery` that Cargo built for this test process: beside the test binary's `deps/`
/// folder (Cargo builds a package's binaries before its tests and benchmarks).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's own path");
    exe.ancestors()
        .nth(2)
        .map(|profile| profile.join("eso-recovery"))
        .filter(|b| b.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no eso-recovery built beside {} (run the tests with cargo test)",
                exe.display()
            )
        })
}

/// The result of one run of the built binary.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed).
    pub code: i32,
    /// What it printed on stdout (the summary).
    pub stdout: String,
    /// What it logged on stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
    /// The summary line, parsed (JSON log format), or Null.
    pub summary: Value,
}

impl Run {
    /// The summary's outcome.
    pub fn outcome(&self) -> &str {
        self.summary["outcome"].as_str().unwrap_or("<no summary>")
    }

    /// Everything printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs the built `eso-recovery` with only the environment given (plus PATH), JSON logs, and a
/// hard limit of 90 s after which it is killed (a hang is then a test failure, not a stuck CI).
pub fn eso(kubeconfig: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_program(&[binary()], kubeconfig, args, env)
}

/// As [`eso`], for another build of it: `program` is the binary, or a runner and the binary
/// (`qemu-aarch64-static`, the release's arm64 build).
pub fn run_program(
    program: &[impl AsRef<std::ffi::OsStr>],
    kubeconfig: Option<&Path>,
    args: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let (first, rest) = program.split_first().expect("a program to run");
    let mut cmd = Command::new(first);
    cmd.args(rest);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("ESO_RECOVERY_LOG_FORMAT", "json")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("starting eso-recovery");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let summary = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Run {
        code,
        stdout,
        stderr,
        elapsed,
        summary,
    }
}

/// Asserts a run's exit code and outcome, showing everything it printed otherwise.
#[track_caller]
pub fn expect(run: &Run, code: i32, outcome: &str) {
    assert!(
        run.code == code && run.outcome() == outcome,
        "expected exit {code} and outcome {outcome:?}\n{}",
        run.dump()
    );
}

/// Asserts a failed run: its exit code, outcome, and that its summary names `needle`.
#[track_caller]
pub fn expect_error(run: &Run, code: i32, outcome: &str, needle: &str) {
    expect(run, code, outcome);
    assert!(
        run.stdout.contains(needle),
        "the summary does not name {needle:?}\n{}",
        run.dump()
    );
}

/// `kubectl ARGS` with eso-recovery installed as the plugin `kubectl-eso_recovery` (a symlink in a
/// folder on PATH), as a person runs it from their machine with `kubeconfig`; also returns that
/// folder (PATH for more calls; it lives as long as the returned guard).
pub fn kubectl_plugin(
    kubeconfig: &Path,
    args: &[String],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binary(), dir.path().join("kubectl-eso_recovery")).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(controlplane::bins().join("kubectl"))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("running kubectl");
    (out, dir)
}
