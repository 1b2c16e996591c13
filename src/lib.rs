//! Cairn: a permissionless proof-of-work blockchain node.
//!
//! The crate has two halves, and dependencies point one way:
//!
//! ```text
//!   node (feature `node`: tokio, sled, axum, threads)   ── the async shell: I/O only
//!     │ feeds events, carries out decisions
//!     ▼
//!   core (always built: no I/O, no clock, no randomness) ── every rule and decision
//! ```
//!
//! `core` is plain, deterministic Rust: the consensus rules, the block tree and fork choice,
//! the account state and its root, the miner's nonce search. `node` stores blocks on sled,
//! runs the HTTP API and the mining threads, and asks `core` what to do. Building with
//! `--no-default-features` compiles `core` alone, which is how CI proves the boundary holds.
pub mod core;

// The shell reads clocks, files and the environment by design: clippy.toml bans those
// calls crate-wide so that `core` cannot make them, and the shell opts out here.
#[cfg(feature = "node")]
#[allow(clippy::disallowed_methods)]
pub mod node;
