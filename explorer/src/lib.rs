//! Cairn's local block explorer.
//!
//! The explorer renders pages over a read-only view trait that the node implements; it names
//! no storage, networking or mempool types. The pages themselves arrive with the explorer
//! issue; until then this crate only reserves its place in the workspace.
