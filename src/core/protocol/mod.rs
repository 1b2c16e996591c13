//! The node's decisions about peers and sync, as logic without I/O: events in, actions out.
//! No I/O.
//!
//! So far: block locators and fork-point search (`locator`), the sync messages and their
//! bounds (`messages`), and the bounded orphan pool (`orphans`). The sync state machine and
//! peer penalties arrive with the network issue.
pub mod locator;
pub mod messages;
pub mod orphans;
