//! An in-memory [`StateView`] for tests, benchmarks and the network simulation. No I/O.
use super::{Account, BlockStateChange, SmtNode, StateStoreError, StateView};
use crate::core::primitives::{Address, Hash256};
use std::collections::HashMap;

/// Accounts and tree nodes held in hash maps.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    /// Accounts by address.
    pub accounts: HashMap<Address, Account>,
    /// Tree nodes by hash.
    pub nodes: HashMap<Hash256, SmtNode>,
}

impl MemoryState {
    /// Applies a block's state change: its accounts and its new tree nodes.
    pub fn apply_change(&mut self, change: &BlockStateChange) {
        self.accounts.extend(change.accounts.iter().copied());
        self.insert_nodes(change.new_nodes.iter().cloned());
    }

    /// Adds tree nodes.
    pub fn insert_nodes(&mut self, nodes: impl IntoIterator<Item = (Hash256, SmtNode)>) {
        self.nodes.extend(nodes);
    }
}

impl StateView for MemoryState {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError> {
        Ok(self.accounts.get(address).copied())
    }

    fn smt_node(&self, hash: &Hash256) -> Result<Option<SmtNode>, StateStoreError> {
        Ok(self.nodes.get(hash).cloned())
    }
}
