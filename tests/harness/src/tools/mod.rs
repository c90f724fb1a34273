//! What the test worlds are built from, and the helpers every world shares.

pub mod bench_docs;
pub mod eso_version;
pub mod helm;
pub mod image;
pub mod outage;
pub mod pki;
pub mod procs;
pub mod release;
pub mod repo;
pub mod wine;
