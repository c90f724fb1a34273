//! Stand-ins, each for a fault no real part here can be made to produce on demand. The README's
//! "What the tests run against" names each one.

pub mod fake_api;
pub mod fake_vault;
pub mod relay;
