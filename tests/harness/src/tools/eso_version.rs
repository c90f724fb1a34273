//! The ESO releases the tests run, each built once by `tests/eso/build.sh VERSION` into a folder
//! with its controller, its CRDs and its own Helm chart. Every test that runs ESO names the
//! release it plays against, and says it in its output.

use std::{fmt, path::PathBuf, sync::OnceLock};

use crate::tools::repo::script_with;

/// One ESO release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EsoVersion {
    /// What users install today (ESO v2.9.0, chart 2.9.0), built from its source in
    /// `../shared/eso/`: the default everywhere.
    #[default]
    V2_9,
    /// The oldest release eso-recovery supports, built from the Go module proxy.
    V0_16,
}

impl EsoVersion {
    /// The version as `tests/eso/build.sh` takes it.
    pub fn version(self) -> &'static str {
        match self {
            EsoVersion::V2_9 => "2.9.0",
            EsoVersion::V0_16 => "0.16.2",
        }
    }

    /// The folder `tests/eso/build.sh` built, once per test process.
    fn dir(self) -> PathBuf {
        static DIRS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
        DIRS[self as usize]
            .get_or_init(|| script_with("tests/eso/build.sh", &[self.version()]))
            .clone()
    }

    /// The controller binary (it also serves as the webhook and the cert controller).
    pub fn bin(self) -> PathBuf {
        self.dir().join("external-secrets")
    }

    /// The CRDs, one file a kind.
    pub fn crds(self) -> PathBuf {
        self.dir().join("crds")
    }

    /// ESO's own chart of this release.
    pub fn chart(self) -> PathBuf {
        self.dir().join("chart")
    }

    /// What a controller process outside a cluster must be told so that it listens on
    /// 127.0.0.1 alone, on free ports: 2.x also serves a liveness endpoint, by default on every
    /// address at port 8082.
    pub fn loopback_listen_flags(self) -> Vec<String> {
        let mut flags = vec![format!(
            "--metrics-addr=127.0.0.1:{}",
            crate::tools::procs::free_port()
        )];
        if self == EsoVersion::V2_9 {
            flags.push(format!(
                "--live-addr=127.0.0.1:{}",
                crate::tools::procs::free_port()
            ));
        }
        flags
    }
}

impl fmt::Display for EsoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESO v{}", self.version())
    }
}
