//! A [`ChainStore`] in memory, for the network simulation and tests. No I/O.
//!
//! It keeps what the sled store keeps (blocks, index entries, the best chain by height,
//! accounts, tree pages and undo data), so a [`ChainManager`](super::manager::ChainManager)
//! over it makes exactly the decisions the node makes. "Durable" is a no-op: a simulated
//! crash keeps the store, as a real crash keeps what was flushed.
use super::manager::{ChainStore, OldBlocks};
use super::{BlockIndex, BlockIndexEntry, BlockStatus, ChainError};
use crate::core::consensus::genesis::genesis;
use crate::core::consensus::ChainSpec;
use crate::core::primitives::{Address, Block, BlockHash, Hash256};
use crate::core::state::memory::MemoryState;
use crate::core::state::{
    all_accounts, Account, BlockStateChange, BlockUndo, SmtPage, StateStoreError, StateView,
};
use crate::core::storage::StorageFailure;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a node stores, held in maps.
#[derive(Clone, Debug)]
pub struct MemoryChainStore {
    genesis: BlockHash,
    blocks: BTreeMap<BlockHash, Block>,
    entries: BTreeMap<BlockHash, BlockIndexEntry>,
    best: Vec<BlockHash>,
    undo: BTreeMap<BlockHash, BlockUndo>,
    state: MemoryState,
    old_blocks: Option<OldBlocks>,
}

impl MemoryChainStore {
    /// A store holding `spec`'s genesis block and allocations.
    pub fn new(spec: &ChainSpec) -> MemoryChainStore {
        let (block, change) = genesis(spec);
        let hash = block.hash();
        let entry = BlockIndexEntry::genesis(block.header, &spec.asert_params())
            .expect("a checked spec has valid bits");
        let mut state = MemoryState::default();
        state.apply_change(&change);
        MemoryChainStore {
            genesis: hash,
            blocks: BTreeMap::from([(hash, block)]),
            entries: BTreeMap::from([(hash, entry)]),
            best: vec![hash],
            undo: BTreeMap::new(),
            state,
            old_blocks: None,
        }
    }

    /// Every account of the best chain's state, sorted by address.
    pub fn accounts(&self) -> Vec<(Address, Account)> {
        let mut accounts: Vec<_> = self
            .state
            .accounts
            .iter()
            .map(|(a, acc)| (*a, *acc))
            .collect();
        accounts.sort_by_key(|(a, _)| *a);
        accounts
    }

    /// Every stored block's index entry (all branches).
    pub fn entries(&self) -> impl Iterator<Item = &BlockIndexEntry> {
        self.entries.values()
    }

    /// Number of stored blocks (all branches).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
}

impl BlockIndex for MemoryChainStore {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        Ok(self.entries.get(hash).cloned())
    }
}

impl StateView for MemoryChainStore {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError> {
        self.state.account(address)
    }

    fn smt_page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError> {
        self.state.smt_page(top)
    }
}

impl ChainStore for MemoryChainStore {
    fn stored_tip(&self) -> Result<BlockIndexEntry, ChainError> {
        let tip = self.best.last().ok_or(ChainError::Missing(self.genesis))?;
        self.expect_entry(tip)
    }

    fn stored_genesis(&self) -> Result<BlockHash, ChainError> {
        Ok(self.genesis)
    }

    fn load_block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        Ok(self.blocks.get(hash).cloned())
    }

    fn best_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        Ok(self.best.get(height as usize).copied())
    }

    fn store_block(&mut self, block: &Block, entry: &BlockIndexEntry) -> Result<(), ChainError> {
        let hash = block.hash();
        self.blocks.insert(hash, block.clone());
        self.entries.insert(hash, entry.clone());
        Ok(())
    }

    fn store_invalid(&mut self, hash: &BlockHash, reason: &str) -> Result<(), ChainError> {
        if let Some(entry) = self.entries.get_mut(hash) {
            entry.status = BlockStatus::Invalid {
                reason: reason.to_string(),
            };
        }
        Ok(())
    }

    fn connect_block(
        &mut self,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
    ) -> Result<(), ChainError> {
        let hash = block.hash();
        if self.best.last() != Some(&block.header.prev_hash)
            || entry.height() as usize != self.best.len()
        {
            return Err(ChainError::Store(StorageFailure::corrupt(format!(
                "block {hash} does not extend the tip"
            ))));
        }
        self.state.apply_change(change);
        self.undo.insert(hash, change.undo.clone());
        self.best.push(hash);
        Ok(())
    }

    fn disconnect_block(&mut self, block: &Block) -> Result<(), ChainError> {
        let hash = block.hash();
        if self.best.last() != Some(&hash) || self.best.len() == 1 {
            return Err(ChainError::Store(StorageFailure::corrupt(format!(
                "block {hash} is not the tip"
            ))));
        }
        let undo = self.undo.remove(&hash).ok_or_else(|| {
            ChainError::Store(StorageFailure::corrupt(format!(
                "no undo data for block {hash}"
            )))
        })?;
        for (address, before) in undo.previous {
            match before {
                Some(account) => self.state.accounts.insert(address, account),
                None => self.state.accounts.remove(&address),
            };
        }
        self.best.pop();
        Ok(())
    }

    fn store_state_pages(&mut self, pages: &[(Hash256, Arc<SmtPage>)]) -> Result<(), ChainError> {
        self.state.insert_pages(pages.iter().cloned());
        Ok(())
    }

    fn adopt_snapshot(&mut self, entries: &[BlockIndexEntry]) -> Result<(), ChainError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let accounts = all_accounts(&self.state, *last.header.state_root.as_bytes())?;
        self.state.accounts = accounts.into_iter().collect();
        for entry in entries {
            self.entries.insert(entry.hash(), entry.clone());
            self.best.push(entry.hash());
        }
        self.old_blocks = Some(OldBlocks {
            base: last.height(),
            through: 0,
        });
        Ok(())
    }

    fn old_blocks(&self) -> Result<Option<OldBlocks>, ChainError> {
        Ok(self.old_blocks)
    }

    fn store_old_blocks(&mut self, blocks: &[Block]) -> Result<(), ChainError> {
        for block in blocks {
            self.blocks.insert(block.hash(), block.clone());
        }
        if let (Some(old), Some(last)) = (&mut self.old_blocks, blocks.last()) {
            old.through = last.header.height;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> Result<(), ChainError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::chain::manager::{BlockOutcome, ChainManager, SubmitError};
    use crate::core::testkit::{solve, test_address, test_keypair, TestChain};

    #[test]
    fn a_reorg_in_memory_matches_a_fresh_replay_of_the_winner() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let a = chain.extend(&genesis, 4, test_address(0));
        let b = chain.extend(&genesis, 6, test_address(1));
        let mut node =
            ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap();
        for block in &a {
            node.submit_block(block.clone(), u64::MAX / 2).unwrap();
        }
        let outcomes: Vec<BlockOutcome> = b
            .iter()
            .map(|block| node.submit_block(block.clone(), u64::MAX / 2).unwrap())
            .collect();
        // Equal work (4 against 4) keeps the first seen; the fifth block wins.
        assert_eq!(outcomes[3], BlockOutcome::SideBranch);
        assert!(matches!(
            outcomes[4],
            BlockOutcome::Reorganized {
                fork_height: 0,
                disconnected: 4,
                connected: 5,
                ..
            }
        ));
        assert!(matches!(outcomes[5], BlockOutcome::Extended { .. }));
        let mut fresh =
            ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap();
        for block in &b {
            fresh.submit_block(block.clone(), u64::MAX / 2).unwrap();
        }
        assert_eq!(node.tip(), fresh.tip());
        assert_eq!(node.store().accounts(), fresh.store().accounts());
        assert_eq!(
            node.tip().header.state_root,
            chain.entry_of(&b[5].hash()).header.state_root
        );
    }

    #[test]
    fn a_side_branch_block_with_a_forged_signature_is_refused_not_stored() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let main = chain.extend(&genesis, 3, test_address(0));
        let mut node =
            ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap();
        for block in &main {
            node.submit_block(block.clone(), u64::MAX / 2).unwrap();
        }
        let transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
        let mut forged = chain.template(&genesis, vec![transfer], test_address(2));
        forged.transfers[0].amount = crate::core::primitives::Amount::from_units(101);
        forged.header.tx_root = forged.compute_tx_root();
        solve(&mut forged.header);
        let result = node.submit_block(forged.clone(), u64::MAX / 2);
        assert!(
            matches!(
                result,
                Err(SubmitError::Invalid {
                    error: crate::core::consensus::BlockError::BadSignature { .. },
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(node.entry(&forged.hash()).unwrap().is_none(), "not stored");
        assert_eq!(node.tip().hash(), main[2].hash());
    }

    #[test]
    fn headers_after_a_locator_start_past_the_fork() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let main = chain.extend(&genesis, 30, test_address(0));
        let side = chain.extend(&main[9].hash(), 3, test_address(1));
        let mut node =
            ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap();
        for block in main.iter().chain(&side) {
            node.submit_block(block.clone(), u64::MAX / 2).unwrap();
        }
        // A peer on the side branch (height 13) describes its chain.
        let mut peer =
            ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap();
        for block in main[..10].iter().chain(&side) {
            peer.submit_block(block.clone(), u64::MAX / 2).unwrap();
        }
        let locator = peer.locator().unwrap();
        let headers = node.headers_after(&locator, 5).unwrap().unwrap();
        let heights: Vec<u32> = headers.iter().map(|h| h.height).collect();
        assert_eq!(heights, vec![11, 12, 13, 14, 15]);
        assert_eq!(headers[0].hash(), main[10].hash());
        let all = node.headers_after(&locator, 2000).unwrap().unwrap();
        assert_eq!(all.len(), 20);
        assert_eq!(all.last().unwrap().hash(), main[29].hash());
        // A locator from another chain shares nothing.
        assert!(node
            .headers_after(&[BlockHash([9; 32])], 10)
            .unwrap()
            .is_err());
    }
}
