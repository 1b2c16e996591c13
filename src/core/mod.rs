//! Logic without I/O: everything here is synchronous and deterministic.
//!
//! No tokio, libp2p, sled, clock or randomness may be used below this module; time and random
//! seeds come in as arguments. Clippy's `disallowed-methods` (see `clippy.toml`) and
//! `cargo check --lib --no-default-features` enforce this in CI.
pub mod chain;
pub mod consensus;
pub mod logic;
pub mod mempool;
pub mod miner;
pub mod primitives;
pub mod protocol;
pub mod state;
pub mod storage;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;
pub mod views;
