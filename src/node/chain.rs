//! The chain manager: carries out core's decisions on the store. It owns the store's write
//! side and the current tip; it decides nothing itself.
//!
//! ```text
//!   block ──► known? ──► parent known and valid? ──► check_header (core) ──► check_body (core)
//!               │                                                              │
//!          AlreadyKnown                                        store block + index entry
//!                                                                              │
//!                          more work than the tip? (core: is_better_chain) ── no ──► SideBranch
//!                                     │ yes
//!                         plan_reorg (core) ──► disconnect each (atomic batch)
//!                                           ──► check_state (core) + connect each (atomic batch)
//!                                           ──► flush: the new tip is durable
//! ```
//! If a block on the new branch breaks a rule, it and its descendants are marked invalid
//! and the manager returns to the heaviest valid chain it had.
use crate::core::chain::{
    child_context, is_better_chain, plan_reorg, should_return_after_failed_reorg, BlockIndexEntry,
    BlockStatus, ChainError,
};
use crate::core::consensus::genesis::genesis;
use crate::core::consensus::validation::{check_body, check_header, check_state};
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::miner::{build_template, BlockTemplate, TemplateParams};
use crate::core::primitives::{Address, Block, BlockHash, Transfer};
use crate::core::state::memory::MemoryState;
use crate::node::store::{Store, StoreError};
use std::path::Path;

/// What happened to a submitted block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Already stored.
    AlreadyKnown,
    /// Valid so far and stored, but its chain has no more work than the tip.
    SideBranch,
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
#[derive(Debug, thiserror::Error)]
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
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block index is damaged.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The store plus the rules: the only writer of chain data.
pub struct ChainManager {
    store: Store,
    spec: ChainSpec,
    genesis_hash: BlockHash,
    tip: BlockIndexEntry,
}

impl ChainManager {
    /// Opens the chain in `dir`, creating it from `spec`'s genesis if it is new.
    pub fn open(dir: &Path, spec: ChainSpec) -> Result<ChainManager, StoreError> {
        let store = Store::open(dir)?;
        let (genesis_block, change) = genesis(&spec);
        let tip = store.init(&genesis_block, &change)?;
        Ok(ChainManager {
            store,
            genesis_hash: genesis_block.hash(),
            spec,
            tip,
        })
    }

    /// The best chain's tip.
    pub fn tip(&self) -> &BlockIndexEntry {
        &self.tip
    }

    /// A read handle on the store.
    pub fn store(&self) -> &Store {
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

    /// Validates `block` and adds it to the tree, switching the best chain if it now has the
    /// most work. `now` is the local clock in Unix seconds.
    pub fn submit_block(&mut self, block: Block, now: u64) -> Result<BlockOutcome, SubmitError> {
        let hash = block.hash();
        let invalid = |error: BlockError| SubmitError::Invalid { hash, error };
        if let Some(entry) = self.store.index_entry(&hash)? {
            return match entry.status {
                BlockStatus::Valid => Ok(BlockOutcome::AlreadyKnown),
                BlockStatus::Invalid { .. } => Err(invalid(BlockError::InvalidAncestor(hash))),
            };
        }
        let parent_hash = block.header.prev_hash;
        let parent = self
            .store
            .index_entry(&parent_hash)?
            .ok_or_else(|| invalid(BlockError::UnknownParent(parent_hash)))?;
        if let BlockStatus::Invalid { .. } = parent.status {
            return Err(invalid(BlockError::InvalidAncestor(parent_hash)));
        }
        let context = child_context(&self.store, &parent, &self.spec)?;
        check_header(&block.header, &context, now, &self.spec).map_err(invalid)?;
        check_body(&block, &self.spec).map_err(invalid)?;
        let entry = parent.child(block.header).map_err(|_| {
            invalid(BlockError::WrongBits {
                expected: context.expected_bits,
                found: block.header.bits,
            })
        })?;
        self.store.put_block(&block, &entry)?;
        if !is_better_chain(&entry.chain_work, &self.tip.chain_work) {
            return Ok(BlockOutcome::SideBranch);
        }
        let outcome = self.switch_to(entry)?;
        self.store.flush()?;
        outcome.map_err(|(failed, error)| SubmitError::Invalid {
            hash: failed,
            error,
        })
    }

    /// Moves the best chain to `target`. On a block that breaks a rule, marks it and its
    /// descendants invalid, returns to the heaviest valid chain, and reports the failure.
    #[allow(clippy::type_complexity)]
    fn switch_to(
        &mut self,
        target: BlockIndexEntry,
    ) -> Result<Result<BlockOutcome, (BlockHash, BlockError)>, SubmitError> {
        let old_tip = self.tip.clone();
        let plan = plan_reorg(&self.store, &self.tip, &target)?;
        for hash in &plan.disconnect {
            let block = self.load_block(hash)?;
            self.store.disconnect(&block)?;
            self.tip = self.store.tip()?;
        }
        for (i, hash) in plan.connect.iter().enumerate() {
            let block = self.load_block(hash)?;
            let entry = self
                .store
                .index_entry(hash)?
                .ok_or(ChainError::Missing(*hash))?;
            match check_state(
                &self.store,
                self.tip.header.state_root,
                &block,
                &self.spec,
                &self.genesis_hash,
            ) {
                Ok(change) => {
                    self.store.connect(&block, &entry, &change)?;
                    self.tip = entry;
                }
                Err(BlockError::Store(e)) => {
                    return Err(SubmitError::Chain(ChainError::Store(e.0)))
                }
                Err(error) => {
                    self.store.mark_invalid(hash, &error.to_string())?;
                    for descendant in &plan.connect[i + 1..] {
                        self.store
                            .mark_invalid(descendant, "descends from an invalid block")?;
                    }
                    if should_return_after_failed_reorg(&old_tip, &self.tip) {
                        self.switch_to(old_tip)?.map_err(|(h, e)| {
                            SubmitError::Chain(ChainError::Store(format!(
                                "the former best chain no longer validates at {h}: {e}"
                            )))
                        })?;
                    }
                    return Ok(Err((*hash, error)));
                }
            }
        }
        let fork_height = self
            .store
            .index_entry(&plan.fork_point)?
            .map(|e| e.height())
            .unwrap_or(0);
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

    fn load_block(&self, hash: &BlockHash) -> Result<Block, SubmitError> {
        Ok(self.store.block(hash)?.ok_or(ChainError::Missing(*hash))?)
    }

    /// A template for the next block on the tip.
    pub fn template(
        &self,
        reward_address: Address,
        now: u64,
        extra_nonce: u64,
        transfers: Vec<Transfer>,
    ) -> Result<BlockTemplate, SubmitError> {
        let context = child_context(&self.store, &self.tip, &self.spec)?;
        build_template(
            &self.store,
            TemplateParams {
                spec: &self.spec,
                genesis_hash: &self.genesis_hash,
                parent: &self.tip,
                context,
                now,
                reward_address,
                extra_nonce,
                transfers,
            },
        )
        .map_err(|error| SubmitError::Invalid {
            hash: self.tip.hash(),
            error,
        })
    }
}

/// The result of a full check of the stored best chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Height of the tip checked.
    pub height: u32,
    /// The tip's hash.
    pub tip: BlockHash,
    /// Accounts compared.
    pub accounts: usize,
}

/// Why a full check failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Storage failed or is inconsistent.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The index is damaged.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A block on the best chain breaks a rule.
    #[error("block {height} ({hash}) is invalid: {error}")]
    InvalidBlock {
        /// Its height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
        /// The rule.
        error: BlockError,
    },
    /// The stored accounts differ from the replayed state.
    #[error("stored state differs from a replay from genesis: {0}")]
    StateMismatch(String),
}

/// Replays the stored best chain from genesis in memory, checking every block against every
/// rule (except the clock), and compares the result with the stored accounts and state root.
pub fn verify_best_chain(
    store: &Store,
    spec: &ChainSpec,
    mut progress: impl FnMut(u32, u32),
) -> Result<VerifyReport, VerifyError> {
    let (genesis_block, change) = genesis(spec);
    let genesis_hash = genesis_block.hash();
    if store.genesis_hash()? != genesis_hash {
        return Err(VerifyError::StateMismatch(
            "genesis differs from the spec".into(),
        ));
    }
    let tip = store.tip()?;
    let mut state = MemoryState::default();
    state.apply_change(&change);
    let mut parent = BlockIndexEntry::genesis(genesis_block.header)
        .map_err(|e| VerifyError::StateMismatch(e.to_string()))?;
    for height in 1..=tip.height() {
        let hash = store.hash_at_height(height)?.ok_or_else(|| {
            VerifyError::StateMismatch(format!("no best-chain block at height {height}"))
        })?;
        let block = store.block(&hash)?.ok_or(ChainError::Missing(hash))?;
        let invalid = |error| VerifyError::InvalidBlock {
            height,
            hash,
            error,
        };
        if block.header.prev_hash != parent.hash() {
            return Err(VerifyError::StateMismatch(format!(
                "block {height} does not link to block {}",
                height - 1
            )));
        }
        let context = child_context(store, &parent, spec)?;
        check_header(&block.header, &context, u64::MAX / 2, spec).map_err(invalid)?;
        check_body(&block, spec).map_err(invalid)?;
        let change = check_state(
            &state,
            parent.header.state_root,
            &block,
            spec,
            &genesis_hash,
        )
        .map_err(invalid)?;
        state.apply_change(&change);
        parent = parent
            .child(block.header)
            .map_err(|e| VerifyError::StateMismatch(e.to_string()))?;
        if store.index_entry(&hash)?.map(|e| e.chain_work) != Some(parent.chain_work) {
            return Err(VerifyError::StateMismatch(format!(
                "stored chain work of block {height} is wrong"
            )));
        }
        if height % 1000 == 0 {
            progress(height, tip.height());
        }
    }
    if parent.hash() != tip.hash() {
        return Err(VerifyError::StateMismatch(
            "the best chain does not end at the tip".into(),
        ));
    }
    let mut stored = store.all_accounts()?;
    stored.sort_by_key(|(a, _)| *a);
    let mut replayed: Vec<_> = state.accounts.into_iter().collect();
    replayed.sort_by_key(|(a, _)| *a);
    if stored != replayed {
        return Err(VerifyError::StateMismatch(format!(
            "{} stored accounts, {} replayed, contents differ",
            stored.len(),
            replayed.len()
        )));
    }
    Ok(VerifyReport {
        height: tip.height(),
        tip: tip.hash(),
        accounts: replayed.len(),
    })
}
