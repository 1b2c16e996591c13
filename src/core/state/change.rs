//! What a valid block does to the state, as a value: the accounts it touched, how to take
//! it back, the new tree pages and root. `core::consensus::apply` computes it; the
//! storage layer writes it in one atomic batch.
use super::account::Account;
use super::smt::SmtPage;
use crate::core::primitives::{Address, Amount, Hash256, StateRoot};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What is needed to take a block's state change back: each touched account's value
/// before the block (`None`: it did not exist).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUndo {
    /// Accounts before the block, sorted by address.
    pub previous: Vec<(Address, Option<Account>)>,
}

/// The effect of a valid block on the state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStateChange {
    /// New values of every touched account, sorted by address.
    pub accounts: Vec<(Address, Account)>,
    /// How to take the change back.
    pub undo: BlockUndo,
    /// Tree pages to store for the new root, by their top node's hash.
    pub new_pages: Vec<(Hash256, Arc<SmtPage>)>,
    /// The state root after the block.
    pub state_root: StateRoot,
    /// Sum of the transfers' fees.
    pub fees: Amount,
}
