//! Consensus rules: proof of work, compact targets, ASERT difficulty, the chain spec, genesis
//! and block validation. No I/O.
pub mod apply;
pub mod asert;
pub mod error;
pub mod genesis;
pub mod schedule;
pub mod spec;
/// The target types live with the other primitives (a header carries its bits); here
/// under their old path too.
pub use crate::core::primitives::target;
pub mod validation;

pub use error::BlockError;
pub use spec::{ChainSpec, SpecError};
pub use target::{CompactTarget, Target, Work};
