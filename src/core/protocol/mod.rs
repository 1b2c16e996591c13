//! The node's decisions about peers and sync, as logic without I/O: events in, actions out.
//!
//! - `locator`: block locators and fork-point search (`core::chain::locator`).
//! - `messages`: the sync messages and their bounds.
//! - `compact`: compact blocks (short transfer ids) and rebuilding them from held transfers.
//! - `orphans`: the bounded pool of gossiped blocks whose parent is unknown.
//! - `peers`: penalties, bans and request rate limits.
//! - `headers`: header-first checks of a peer's header chain before its blocks are fetched.
//! - `download`: the queue of blocks header-first sync fetches from several peers.
//! - `machine`: the state machine that ties them together ([`machine::Protocol`]).
pub mod compact;
pub mod download;
pub mod eviction;
pub mod headers;
/// Block locators belong to the chain (the manager answers them); here under their old
/// path too.
pub use crate::core::chain::locator;
pub mod machine;
pub mod messages;
pub mod orphans;
pub mod peers;
pub mod snapshot;
