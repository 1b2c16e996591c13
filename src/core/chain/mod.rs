//! The block tree: index entries, fork choice, reorg planning and block locators
//! (`locator`). No I/O: the tree is read
//! through the [`BlockIndex`] trait, which the node's store implements.
//!
//! ```text
//!   genesis ── 1 ── 2 ── 3 ── 4a ── 5a        main chain (most work)
//!                         └── 4b ── 5b ── 6b  side branch: if its work exceeds the tip's,
//!                                             plan_reorg says disconnect 5a, 4a and
//!                                             connect 4b, 5b, 6b
//! ```
//!
//! Fork choice is one rule: the tip with the most cumulative work wins; on equal work the
//! tip seen first stays.
use crate::core::consensus::asert::{asert_clock_after, genesis_asert_clock, AsertParams};
use crate::core::consensus::target::{Target, TargetError, Work};
use crate::core::consensus::validation::{
    check_body, check_header, median_time_past, next_bits, HeaderContext, MEDIAN_TIME_SPAN,
};
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::primitives::{Block, BlockHash, Header};
use serde::{Deserialize, Serialize};

pub mod locator;
pub mod manager;
pub mod memory;
pub mod stats;

/// What the tree knows about one stored block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIndexEntry {
    /// The block's header.
    pub header: Header,
    /// Total work of the chain ending in this block.
    pub chain_work: Work,
    /// The ASERT schedule clock at this block: seconds credited since the anchor's parent
    /// (genesis time − ideal block time), each block crediting its interval from its parent
    /// but at most [`max_interval_credit`] (see [`asert_clock_after`]).
    pub asert_clock: i64,
    /// Whether the block is known to be invalid.
    pub status: BlockStatus,
}

/// Validity of a stored block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockStatus {
    /// Header and body passed every check that needs no state; the state checks pass or
    /// have not run yet (the block is not on the best chain).
    Valid,
    /// Failed a consensus rule; it and all its descendants are invalid.
    Invalid {
        /// The rule it broke.
        reason: String,
    },
}

impl BlockIndexEntry {
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The height.
    pub fn height(&self) -> u32 {
        self.header.height
    }

    /// The genesis entry of a chain whose blocks aim at `params`' ideal block time.
    pub fn genesis(header: Header, params: &AsertParams) -> Result<BlockIndexEntry, TargetError> {
        Ok(BlockIndexEntry {
            chain_work: Target::from_compact(header.bits)?.work(),
            header,
            asert_clock: genesis_asert_clock(params),
            status: BlockStatus::Valid,
        })
    }

    /// The entry of a child of `self` with header `header` (whose bits were validated).
    pub fn child(
        &self,
        header: Header,
        params: &AsertParams,
    ) -> Result<BlockIndexEntry, TargetError> {
        let work = Target::from_compact(header.bits)?.work();
        Ok(BlockIndexEntry {
            chain_work: self.chain_work.saturating_add(work),
            asert_clock: asert_clock_after(self.asert_clock, self.header.time, header.time, params),
            header,
            status: BlockStatus::Valid,
        })
    }
}

/// A failure reading the index (storage), or an index that contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The storage underneath failed.
    #[error("block index storage failed ({0})")]
    Store(#[from] crate::core::storage::StorageFailure),
    /// A block the index refers to is missing.
    #[error("block index is missing block {0}: the store is damaged")]
    Missing(BlockHash),
}

impl From<ChainError> for crate::core::storage::StorageFailure {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Store(failure) => failure,
            missing @ ChainError::Missing(_) => Self::corrupt(missing.to_string()),
        }
    }
}

/// Read access to the block tree.
pub trait BlockIndex {
    /// The entry of the block `hash`, if stored.
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError>;

    /// The entry of `hash`, which must be stored.
    fn expect_entry(&self, hash: &BlockHash) -> Result<BlockIndexEntry, ChainError> {
        self.entry(hash)?.ok_or(ChainError::Missing(*hash))
    }
}

/// Whether a chain with `candidate` work should replace one with `current` work.
pub fn is_better_chain(candidate: &Work, current: &Work) -> bool {
    candidate > current
}

/// After a reorg towards a better branch stopped at an invalid block, with the chain now at
/// `reached` (the valid part of the new branch, or the fork point): whether to go back to
/// `old_tip`. Equal work keeps the tip seen first, and the old tip was seen before the new
/// branch, so the node returns unless what it reached has strictly more work.
pub fn should_return_after_failed_reorg(
    old_tip: &BlockIndexEntry,
    reached: &BlockIndexEntry,
) -> bool {
    reached.hash() != old_tip.hash() && !is_better_chain(&reached.chain_work, &old_tip.chain_work)
}

/// The steps from one tip to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReorgPlan {
    /// The last block both chains share.
    pub fork_point: BlockHash,
    /// Blocks to take off, current tip first.
    pub disconnect: Vec<BlockHash>,
    /// Blocks to put on, the fork point's child first.
    pub connect: Vec<BlockHash>,
}

/// The blocks to disconnect and connect to move from tip `from` to tip `to`.
pub fn plan_reorg<I: BlockIndex + ?Sized>(
    index: &I,
    from: &BlockIndexEntry,
    to: &BlockIndexEntry,
) -> Result<ReorgPlan, ChainError> {
    let mut a = from.clone();
    let mut b = to.clone();
    let mut disconnect = Vec::new();
    let mut connect = Vec::new();
    while a.height() > b.height() {
        disconnect.push(a.hash());
        a = index.expect_entry(&a.header.prev_hash)?;
    }
    while b.height() > a.height() {
        connect.push(b.hash());
        b = index.expect_entry(&b.header.prev_hash)?;
    }
    while a.hash() != b.hash() {
        if a.height() == 0 {
            // Two different genesis blocks: the index mixes chains.
            return Err(ChainError::Missing(a.header.prev_hash));
        }
        disconnect.push(a.hash());
        connect.push(b.hash());
        a = index.expect_entry(&a.header.prev_hash)?;
        b = index.expect_entry(&b.header.prev_hash)?;
    }
    connect.reverse();
    Ok(ReorgPlan {
        fork_point: a.hash(),
        disconnect,
        connect,
    })
}

/// The context a child of `parent` is checked against: its height, median time past and
/// the bits ASERT requires.
pub fn child_context<I: BlockIndex + ?Sized>(
    index: &I,
    parent: &BlockIndexEntry,
    spec: &ChainSpec,
) -> Result<HeaderContext, ChainError> {
    let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
    times.push(parent.header.time);
    let mut cursor = parent.clone();
    while times.len() < MEDIAN_TIME_SPAN && cursor.height() > 0 {
        cursor = index.expect_entry(&cursor.header.prev_hash)?;
        times.push(cursor.header.time);
    }
    Ok(HeaderContext {
        parent_height: parent.height(),
        median_time_past: median_time_past(&times),
        expected_bits: next_bits(spec, parent.height(), parent.asert_clock),
    })
}

/// Why a block cannot join the tree under its parent.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] ChainError),
    /// The block breaks a rule.
    #[error(transparent)]
    Invalid(BlockError),
}

/// The checks a block passes before it joins the tree under `parent`, in the one order every
/// path uses (the chain manager on arrival, `cairn verify` on replay): the header against its
/// context (height, time against the median and `now`, bits, proof of work), then the body
/// without state (counts, size, transfer root); returns the block's index entry (its chain
/// work and ASERT clock). The state is checked later, when the block joins the best chain.
pub fn check_child<I: BlockIndex + ?Sized>(
    index: &I,
    parent: &BlockIndexEntry,
    block: &Block,
    now: u64,
    spec: &ChainSpec,
) -> Result<BlockIndexEntry, ChildError> {
    let context = child_context(index, parent, spec)?;
    check_header(&block.header, &context, now, spec).map_err(ChildError::Invalid)?;
    check_body(block, spec).map_err(ChildError::Invalid)?;
    parent
        .child(block.header, &spec.asert_params())
        .map_err(|_| {
            ChildError::Invalid(BlockError::WrongBits {
                expected: context.expected_bits,
                found: block.header.bits,
            })
        })
}

#[cfg(test)]
mod tests;
