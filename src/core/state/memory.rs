//! An in-memory [`StateView`] for tests, benchmarks and the network simulation. No I/O.
use super::{Account, BlockStateChange, SmtPage, StateStoreError, StateView};
use crate::core::primitives::{Address, Hash256};
use std::collections::HashMap;
use std::sync::Arc;

/// Accounts and tree pages held in hash maps.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    /// Accounts by address.
    pub accounts: HashMap<Address, Account>,
    /// Tree pages by their top node's hash.
    pub pages: HashMap<Hash256, Arc<SmtPage>>,
}

impl MemoryState {
    /// Applies a block's state change: its accounts and its new tree pages.
    pub fn apply_change(&mut self, change: &BlockStateChange) {
        self.accounts.extend(change.accounts.iter().copied());
        self.insert_pages(change.new_pages.iter().cloned());
    }

    /// Adds tree pages.
    pub fn insert_pages(&mut self, pages: impl IntoIterator<Item = (Hash256, Arc<SmtPage>)>) {
        self.pages.extend(pages);
    }
}

impl StateView for MemoryState {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError> {
        Ok(self.accounts.get(address).copied())
    }

    fn smt_page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError> {
        Ok(self.pages.get(top).cloned())
    }
}
