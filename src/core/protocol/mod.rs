//! The node's decisions about peers and sync, as logic without I/O: events in, actions out.
//! No I/O.
//!
//! So far: block locators and fork-point search (`locator`), the first piece of sync. The
//! sync state machine, orphan pool and peer penalties arrive with the network issue.
pub mod locator;
