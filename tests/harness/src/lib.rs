//! The test harness: the real parts eso-recovery meets in a user's cluster, built once and each
//! started and stopped by one owner, so that a test reads as the incident it plays. One folder per
//! world:
//! - [`tools`]: what the worlds are built from: the repository's scripts, child processes, the
//!   images, Helm, the ESO releases, a release's `dist/`, the benchmarks' tables;
//! - [`process`]: the system as processes on 127.0.0.1: the control plane, OpenBao, ESO's real
//!   controller and the whole [`process::stack::Stack`];
//! - [`node`]: the system as a cluster runs it, in pods on a real node inside namespaces of its own;
//! - [`standin`]: the stand-ins for what no real part can be made to do on demand (a 500 on one
//!   PATCH, a hung answer, a cut network path).
//!
//! [`run`] runs the built binary itself.

pub mod node;
pub mod process;
pub mod run;
pub mod standin;
pub mod tools;
