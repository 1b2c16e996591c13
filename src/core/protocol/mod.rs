//! The node's decisions about peers and sync, as logic without I/O: events in, actions out.
//! No I/O.
//!
//! So far: block locators and fork-point search (`locator`), the sync messages and their
//! bounds (`messages`), the bounded orphan pool (`orphans`), and peer penalties, bans and
//! rate limits (`peers`). The sync state machine arrives with the network issue.
pub mod locator;
pub mod messages;
pub mod orphans;
pub mod peers;
