//! Account state: balances and nonces, a block's state change, and the state root (applying
//! a block is a consensus rule: `core::consensus::apply`).
//! No I/O: state is read through the [`StateView`] trait and changes come back as values
//! ([`BlockStateChange`]) for the storage layer to write in one atomic batch.
//!
//! ```text
//!   StateView (tree pages) ──► consensus::apply::apply_block ──► BlockStateChange
//!                                 │              new accounts, undo data,
//!                                 │              new tree pages, state root
//!                                            └─ every transfer rule, in order
//! ```
pub mod account;
pub mod change;
pub mod memory;
pub mod pages;
pub mod proof;
pub mod sigcache;
pub mod smt;

pub use account::Account;
pub use change::{BlockStateChange, BlockUndo};
pub use proof::{AccountProof, ProofError};
pub use sigcache::SignatureCache;
pub use smt::{account_at, all_accounts, prove, SmtNode, SmtPage, EMPTY_ROOT};

use crate::core::primitives::{Address, Hash256};
use std::sync::Arc;

/// A failure of the storage underneath a [`StateView`] (not a consensus failure).
pub type StateStoreError = crate::core::storage::StorageFailure;

/// Read access to the account state.
///
/// The state at any stored root is read through its tree pages ([`account_at`]); that is how
/// blocks are validated. `account` is a shortcut to the state at the view's current tip, for
/// policy (the mempool) and queries.
///
/// `Sync` because the state root update reads tree pages from several threads.
pub trait StateView: Sync {
    /// The account at `address` at the current tip, or `None` if it has never been touched.
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError>;
    /// The tree page whose top node has hash `top`.
    fn smt_page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError>;
}
