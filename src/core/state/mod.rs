//! Account state: balances and nonces, applying a block's transfers, and the state root.
//! No I/O: state is read through the [`StateView`] trait and changes come back as values
//! ([`BlockStateChange`]) for the storage layer to write in one atomic batch.
//!
//! ```text
//!   StateView (accounts + tree nodes) ──► apply_block ──► BlockStateChange
//!                                            │              new accounts, undo data,
//!                                            │              new tree nodes, state root
//!                                            └─ every transfer rule, in order
//! ```
pub mod account;
pub mod apply;
pub mod memory;
pub mod smt;

pub use account::Account;
pub use apply::{apply_block, apply_genesis, BlockStateChange, BlockUndo};
pub use smt::{SmtNode, EMPTY_ROOT};

use crate::core::primitives::{Address, Hash256};

/// A failure of the storage underneath a [`StateView`] (not a consensus failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state storage failed: {0}")]
pub struct StateStoreError(pub String);

/// Read access to the account state at one chain tip.
///
/// `Sync` because the state root update reads tree nodes from several threads.
pub trait StateView: Sync {
    /// The account at `address`, or `None` if it has never been touched.
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError>;
    /// The sparse merkle tree node with hash `hash`.
    fn smt_node(&self, hash: &Hash256) -> Result<Option<SmtNode>, StateStoreError>;
}
