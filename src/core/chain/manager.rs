//! The chain manager: the one writer of the block tree and the state, over any
//! [`ChainStore`]. No I/O of its own: the store trait is the only way out, so the node runs it
//! on sled and the network simulation runs the very same code on memory.
//!
//! ```text
//!   block ──► known? ──► parent known and valid? ──► check_child (header, body: the
//!               │                                      │   order `cairn verify` replays)
//!          AlreadyKnown                                store block + index entry
//!                                                                      │
//!                     more work than the tip? (is_better_chain) ── no ──► SideBranch
//!                                     │ yes
//!                         plan_reorg ──► disconnect each (atomic in the store)
//!                                    ──► check_state + connect each (atomic in the store)
//!                                    ──► flush: the new tip is durable
//! ```
//! If a block on the new branch breaks a rule, it and its descendants are marked invalid
//! and the manager returns to the heaviest valid chain it had.
use super::locator::{find_fork_point, locator_heights, LocatorError};
use super::{
    check_child, is_better_chain, plan_reorg, should_return_after_failed_reorg, BlockIndex,
    BlockIndexEntry, BlockStatus, ChainError, ChildError,
};
use crate::core::consensus::apply::{check_chain_ids, check_transfer_signatures};
use crate::core::consensus::validation::check_state_cached;
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::primitives::{Block, BlockHash, Hash256, Header};
use crate::core::state::sigcache::{self, SignatureCache};
use crate::core::state::{all_accounts, BlockStateChange, SmtPage, StateView};
use crate::core::storage::StorageFailure;
use std::sync::Arc;

/// Storage the manager writes through: the block tree, the best chain by height, and the
/// state of the best chain's tip.
///
/// `connect` and `disconnect` must each be atomic: after a crash, the store holds the state
/// before or after the call, never between.
pub trait ChainStore: BlockIndex + StateView {
    /// The best chain's tip as stored.
    fn stored_tip(&self) -> Result<BlockIndexEntry, ChainError>;
    /// The genesis hash of the stored chain.
    fn stored_genesis(&self) -> Result<BlockHash, ChainError>;
    /// A stored block.
    fn load_block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError>;
    /// The hash of the best chain's block at `height`.
    fn best_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError>;
    /// Stores a block and its entry, not connected.
    fn store_block(&mut self, block: &Block, entry: &BlockIndexEntry) -> Result<(), ChainError>;
    /// Marks a stored block invalid.
    fn store_invalid(&mut self, hash: &BlockHash, reason: &str) -> Result<(), ChainError>;
    /// Connects `block` (a child of the tip) with its state change.
    fn connect_block(
        &mut self,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
    ) -> Result<(), ChainError>;
    /// Disconnects the tip `block`, restoring the state before it.
    fn disconnect_block(&mut self, block: &Block) -> Result<(), ChainError>;
    /// Makes what was written durable.
    fn make_durable(&mut self) -> Result<(), ChainError>;
    /// Stores state-tree pages fetched for a snapshot, each already checked against the hash
    /// it was asked for (`core::state::pages`). Need not be durable.
    fn store_state_pages(&mut self, pages: &[(Hash256, Arc<SmtPage>)]) -> Result<(), ChainError>;
    /// Makes the last of `entries` the tip without their blocks' bodies: a snapshot, whose
    /// state tree is stored. `entries` are the best chain from the genesis block's child on,
    /// in order, each the child of the one before; the store's tip is the genesis block.
    /// Atomic, and durable on return.
    fn adopt_snapshot(&mut self, entries: &[BlockIndexEntry]) -> Result<(), ChainError>;
    /// For a store bootstrapped by snapshot, the blocks below the snapshot: its height and
    /// how far they are stored again; `None` for a store that holds every block.
    fn old_blocks(&self) -> Result<Option<OldBlocks>, ChainError>;
    /// Stores `blocks`, the best chain's blocks right after [`OldBlocks::through`] in height
    /// order (each checked against its header by the caller), and moves `through` past them.
    /// Need not be durable.
    fn store_old_blocks(&mut self, blocks: &[Block]) -> Result<(), ChainError>;
    /// Whether sync is connecting blocks with more waiting behind them: a store may then
    /// leave what consensus does not need (indexes for people) to be written later.
    fn set_catching_up(&mut self, _catching_up: bool) {}
}

/// What happened to a submitted block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Already stored.
    AlreadyKnown,
    /// Valid so far and stored, but its chain has no more work than the tip.
    SideBranch,
    /// Unsolicited, and its branch has less work than the tip: not stored (nor relayed).
    /// The header and body checks passed; if the branch ever gains the work, header-first
    /// sync fetches it. See [`ChainManager::submit_unsolicited_block`].
    LowWork,
    /// The block extended the best chain.
    Extended {
        /// The new tip.
        tip: BlockIndexEntry,
    },
    /// The best chain switched branches.
    Reorganized {
        /// The new tip.
        tip: BlockIndexEntry,
        /// Height of the last block both branches share.
        fork_height: u32,
        /// Blocks taken off.
        disconnected: usize,
        /// Blocks put on.
        connected: usize,
    },
}

/// Why a submitted block was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The block broke a consensus rule (or cannot be checked yet: see
    /// [`BlockError::is_permanent`]).
    #[error("invalid block {hash}: {error}")]
    Invalid {
        /// The block.
        hash: BlockHash,
        /// The rule.
        error: BlockError,
    },
    /// Storage failed or the index is damaged.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The blocks a store bootstrapped by snapshot did not download before it took the
/// snapshot's state, fetched again in the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OldBlocks {
    /// The snapshot's height: blocks at or below it came without their bodies.
    pub base: u32,
    /// Every block from genesis through this height is stored.
    pub through: u32,
}

/// Why a snapshot was not adopted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No block to adopt.
    #[error("no block to adopt")]
    NoBlocks,
    /// The chain already has blocks beyond genesis.
    #[error("the chain is already at height {0}: a snapshot is only taken by a fresh node")]
    NotFresh(u32),
    /// The entries are not one valid chain from genesis.
    #[error("the headers do not form a valid chain from genesis (at height {0})")]
    Unlinked(u32),
    /// The state tree under the block's root is not all stored.
    #[error("the state tree is incomplete: {0}")]
    Incomplete(String),
    /// Storage failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The store plus the rules: the only writer of chain data.
pub struct ChainManager<S> {
    store: S,
    spec: ChainSpec,
    genesis_hash: BlockHash,
    tip: BlockIndexEntry,
    /// Signatures already verified (by the mempool, the sync pipeline or an earlier check),
    /// which block validation does not check again.
    signatures: Arc<SignatureCache>,
}

impl<S: ChainStore> ChainManager<S> {
    /// A manager over `store`, which must already hold `spec`'s genesis.
    pub fn new(store: S, spec: ChainSpec) -> Result<ChainManager<S>, ChainError> {
        let tip = store.stored_tip()?;
        let genesis_hash = store.stored_genesis()?;
        Ok(ChainManager {
            store,
            spec,
            genesis_hash,
            tip,
            signatures: Arc::new(SignatureCache::new(
                genesis_hash,
                sigcache::DEFAULT_CAPACITY,
            )),
        })
    }

    /// Takes the store's tip again, after the store was reopened from disk following a write
    /// failure: blocks connected in memory but never made durable are gone, and so is the
    /// tip this manager moved to with them. Returns the tip.
    pub fn reload(&mut self) -> Result<&BlockIndexEntry, ChainError> {
        self.tip = self.store.stored_tip()?;
        Ok(&self.tip)
    }

    /// The signatures this manager knows to be valid; whoever verifies a transfer's
    /// signature for this chain (the mempool, a sync pipeline) may add it.
    pub fn signature_cache(&self) -> &Arc<SignatureCache> {
        &self.signatures
    }

    /// The best chain's tip.
    pub fn tip(&self) -> &BlockIndexEntry {
        &self.tip
    }

    /// Tells the store whether sync is connecting blocks with more waiting behind them
    /// ([`ChainStore::set_catching_up`]).
    pub fn set_catching_up(&mut self, catching_up: bool) {
        self.store.set_catching_up(catching_up);
    }

    /// Read access to the store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// The entry of `hash`, if stored.
    pub fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        self.store.entry(hash)
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        self.store.load_block(hash)
    }

    /// A locator for the best chain (see [`super::locator`]).
    pub fn locator(&self) -> Result<Vec<BlockHash>, ChainError> {
        locator_heights(self.tip.height())
            .into_iter()
            .map(|height| {
                self.store.best_hash_at(height)?.ok_or_else(|| {
                    ChainError::Store(StorageFailure::corrupt(format!(
                        "no best-chain block at height {height}"
                    )))
                })
            })
            .collect()
    }

    /// The best chain's headers after the fork point with `locator`, at most `max`.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        max: usize,
    ) -> Result<Result<Vec<Header>, LocatorError>, ChainError> {
        let mut failure = None;
        let fork = find_fork_point(locator, |hash| {
            match self.store.entry(hash) {
                Ok(Some(entry)) => match self.store.best_hash_at(entry.height()) {
                    Ok(Some(best)) if best == *hash => return Some(entry.height()),
                    Ok(_) => {}
                    Err(e) => failure = Some(e),
                },
                Ok(None) => {}
                Err(e) => failure = Some(e),
            }
            None
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let (_, fork_height) = match fork {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let last = self
            .tip
            .height()
            .min(fork_height.saturating_add(u32::try_from(max).unwrap_or(u32::MAX)));
        let mut headers = Vec::with_capacity(last.saturating_sub(fork_height) as usize);
        for height in fork_height.saturating_add(1)..=last {
            let hash = self.store.best_hash_at(height)?.ok_or_else(|| {
                ChainError::Store(StorageFailure::corrupt(format!(
                    "no best-chain block at {height}"
                )))
            })?;
            headers.push(self.store.expect_entry(&hash)?.header);
        }
        Ok(Ok(headers))
    }

    /// Validates `block` and adds it to the tree, switching the best chain if it now has the
    /// most work. `now` is the local clock in Unix seconds.
    ///
    /// A valid block on a side branch with less work than the tip is stored: the caller
    /// vouches that the branch is worth it (sync fetches the blocks of a header chain already
    /// checked to carry more work than the tip). Blocks nobody asked for go through
    /// [`ChainManager::submit_unsolicited_block`].
    pub fn submit_block(&mut self, block: Block, now: u64) -> Result<BlockOutcome, SubmitError> {
        self.submit(block, now, true)
    }

    /// Like [`ChainManager::submit_block`] for a block nobody asked for (gossip, an orphan
    /// whose parent arrived): a side branch is stored only when its work reaches the tip's,
    /// so a cheap branch costs this node one header check and no disk
    /// ([`BlockOutcome::LowWork`]).
    pub fn submit_unsolicited_block(
        &mut self,
        block: Block,
        now: u64,
    ) -> Result<BlockOutcome, SubmitError> {
        self.submit(block, now, false)
    }

    fn submit(
        &mut self,
        block: Block,
        now: u64,
        store_low_work: bool,
    ) -> Result<BlockOutcome, SubmitError> {
        let hash = block.hash();
        let invalid = |error: BlockError| SubmitError::Invalid { hash, error };
        if let Some(entry) = self.store.entry(&hash)? {
            return match entry.status {
                BlockStatus::Valid => Ok(BlockOutcome::AlreadyKnown),
                BlockStatus::Invalid { .. } => Err(invalid(BlockError::InvalidAncestor(hash))),
            };
        }
        let parent_hash = block.header.prev_hash;
        let parent = self
            .store
            .entry(&parent_hash)?
            .ok_or_else(|| invalid(BlockError::UnknownParent(parent_hash)))?;
        if let BlockStatus::Invalid { .. } = parent.status {
            return Err(invalid(BlockError::InvalidAncestor(parent_hash)));
        }
        let entry = match check_child(&self.store, &parent, &block, now, &self.spec) {
            Ok(entry) => entry,
            Err(ChildError::Index(e)) => return Err(e.into()),
            Err(ChildError::Invalid(error)) => return Err(invalid(error)),
        };
        if entry.chain_work < self.tip.chain_work && !store_low_work {
            return Ok(BlockOutcome::LowWork);
        }
        if !is_better_chain(&entry.chain_work, &self.tip.chain_work) {
            // A side branch's state is checked only if it wins, but what needs no state is
            // checked now: a forged signature is refused (and its sender penalized) on any
            // branch, never stored or relayed.
            check_chain_ids(&block, self.spec.chain_id()).map_err(invalid)?;
            check_transfer_signatures(&block, &self.genesis_hash, Some(&self.signatures))
                .map_err(invalid)?;
            self.store.store_block(&block, &entry)?;
            return Ok(BlockOutcome::SideBranch);
        }
        self.store.store_block(&block, &entry)?;
        let outcome = self.switch_to(entry, Some(block))?;
        self.store.make_durable()?;
        outcome.map_err(|(failed, error)| SubmitError::Invalid {
            hash: failed,
            error,
        })
    }

    /// Moves the best chain to `target`. On a block that breaks a rule, marks it and its
    /// descendants invalid, returns to the heaviest valid chain, and reports the failure.
    /// `submitted`, the block just stored (if any), is used as it is rather than read back.
    #[allow(clippy::type_complexity)]
    fn switch_to(
        &mut self,
        target: BlockIndexEntry,
        mut submitted: Option<Block>,
    ) -> Result<Result<BlockOutcome, (BlockHash, BlockError)>, ChainError> {
        let old_tip = self.tip.clone();
        let plan = plan_reorg(&self.store, &self.tip, &target)?;
        for hash in &plan.disconnect {
            let block = self.expect_block(hash)?;
            self.store.disconnect_block(&block)?;
            self.tip = self.store.expect_entry(&block.header.prev_hash)?;
        }
        for (i, hash) in plan.connect.iter().enumerate() {
            let block = match submitted.take_if(|block| block.hash() == *hash) {
                Some(block) => block,
                None => self.expect_block(hash)?,
            };
            let entry = self.store.expect_entry(hash)?;
            self.signatures.note_validating(entry.height());
            match check_state_cached(
                &self.store,
                self.tip.header.state_root,
                &block,
                &self.spec,
                &self.genesis_hash,
                Some(&self.signatures),
            ) {
                Ok(change) => {
                    self.store.connect_block(&block, &entry, &change)?;
                    self.tip = entry;
                }
                Err(BlockError::Store(e)) => return Err(ChainError::Store(e)),
                Err(error) => {
                    self.store.store_invalid(hash, &error.to_string())?;
                    for descendant in &plan.connect[i + 1..] {
                        self.store
                            .store_invalid(descendant, "descends from an invalid block")?;
                    }
                    if should_return_after_failed_reorg(&old_tip, &self.tip) {
                        self.switch_to(old_tip, None)?.map_err(|(h, e)| {
                            ChainError::Store(StorageFailure::corrupt(format!(
                                "the former best chain no longer validates at {h}: {e}"
                            )))
                        })?;
                    }
                    return Ok(Err((*hash, error)));
                }
            }
        }
        let fork_height = self.store.expect_entry(&plan.fork_point)?.height();
        Ok(Ok(if plan.disconnect.is_empty() {
            BlockOutcome::Extended {
                tip: self.tip.clone(),
            }
        } else {
            BlockOutcome::Reorganized {
                tip: self.tip.clone(),
                fork_height,
                disconnected: plan.disconnect.len(),
                connected: plan.connect.len(),
            }
        }))
    }

    /// Stores state-tree pages fetched for a snapshot ([`ChainStore::store_state_pages`]).
    pub fn store_state_pages(
        &mut self,
        pages: &[(Hash256, Arc<SmtPage>)],
    ) -> Result<(), ChainError> {
        self.store.store_state_pages(pages)
    }

    /// Stores blocks below a snapshot, fetched in the background
    /// ([`ChainStore::store_old_blocks`]).
    pub fn store_old_blocks(&mut self, blocks: &[Block]) -> Result<(), ChainError> {
        self.store.store_old_blocks(blocks)
    }

    /// Moves the tip from genesis to the last of `entries` (checked headers of the best
    /// chain from genesis's child on) without their blocks: the state under that block's
    /// root was fetched and is read here in full first, so a missing page fails this call
    /// rather than a later block. Returns the new tip.
    pub fn adopt_snapshot(
        &mut self,
        entries: &[BlockIndexEntry],
    ) -> Result<BlockIndexEntry, SnapshotError> {
        let Some(last) = entries.last() else {
            return Err(SnapshotError::NoBlocks);
        };
        if self.tip.hash() != self.genesis_hash {
            return Err(SnapshotError::NotFresh(self.tip.height()));
        }
        let mut parent = self.genesis_hash;
        for entry in entries {
            if entry.header.prev_hash != parent || entry.status != BlockStatus::Valid {
                return Err(SnapshotError::Unlinked(entry.height()));
            }
            parent = entry.hash();
        }
        all_accounts(&self.store, *last.header.state_root.as_bytes())
            .map_err(|e| SnapshotError::Incomplete(e.to_string()))?;
        self.store.adopt_snapshot(entries)?;
        self.tip = last.clone();
        Ok(last.clone())
    }

    fn expect_block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        self.store
            .load_block(hash)?
            .ok_or(ChainError::Missing(*hash))
    }

    /// The blocks the best chain lost and gained in moving from tip `from` to tip `to` (both
    /// stored): taken off (tip first) and put on (in chain order). What the mempool needs
    /// to follow the chain.
    pub fn blocks_between(
        &self,
        from: &BlockIndexEntry,
        to: &BlockIndexEntry,
    ) -> Result<(Vec<Block>, Vec<Block>), ChainError> {
        let plan = plan_reorg(&self.store, from, to)?;
        let load = |hashes: &[BlockHash]| -> Result<Vec<Block>, ChainError> {
            hashes.iter().map(|hash| self.expect_block(hash)).collect()
        };
        Ok((load(&plan.disconnect)?, load(&plan.connect)?))
    }
}
