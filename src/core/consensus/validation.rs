//! Block validation: the header against its parent, the body on its own, and the body
//! against the state. One place decides validity; everything here is pure. No I/O.
//!
//! ```text
//!   check_header  (parent context, clock)  version, height, bits (ASERT), proof of work, time
//!   check_body    (nothing else)           size, count, memos, duplicates, merkle root
//!   check_state   (state at the parent)    every transfer rule, reward, state root
//! ```
//! Cheap checks come first, so a flood of junk costs a node little.
use super::apply::{apply_block, ApplyContext};
use super::asert::next_target;
use super::error::BlockError;
use super::spec::ChainSpec;
use super::target::{CompactTarget, Target};
use crate::core::primitives::{
    Block, BlockHash, Header, StateRoot, Transfer, Txid, MAX_MEMO_BYTES,
};
use crate::core::state::{BlockStateChange, SignatureCache, StateView};
use rayon::prelude::*;
use std::collections::HashSet;

/// The only block format version.
pub const BLOCK_VERSION: u32 = 1;
/// How many previous blocks the median time past is taken over.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// What a header is checked against: facts about its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderContext {
    /// The parent's height.
    pub parent_height: u32,
    /// Median of the times of the parent and up to 10 of its ancestors.
    pub median_time_past: u32,
    /// The bits ASERT requires of the child.
    pub expected_bits: CompactTarget,
}

/// The median of up to [`MEDIAN_TIME_SPAN`] timestamps (the parent's and its ancestors').
pub fn median_time_past(times: &[u32]) -> u32 {
    let mut sorted: Vec<u32> = times.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// The bits required of the child of a block at `parent_height` whose ASERT schedule clock
/// is `parent_asert_clock` (see [`crate::core::consensus::asert::asert_clock_after`]).
///
/// ASERT is anchored at genesis, which no miner chooses: `time_diff` is the parent's
/// schedule clock and `height_diff` the parent's height, so blocks on schedule keep the
/// genesis target. The clock credits each block's interval only up to a cap, so time in which
/// nobody mined (a dev chain started months after its spec was written, a node stopped for a
/// night) eases the next block by at most 2^(1/4), never to the pow limit. See
/// docs/PROTOCOL.md, "Difficulty".
pub fn next_bits(spec: &ChainSpec, parent_height: u32, parent_asert_clock: i64) -> CompactTarget {
    let params = spec.asert_params();
    next_target(
        &spec.genesis_target,
        parent_asert_clock,
        i64::from(parent_height),
        &params,
    )
    .to_compact()
}

/// Checks a header against its parent's context and the local clock (`now`, Unix seconds).
pub fn check_header(
    header: &Header,
    ctx: &HeaderContext,
    now: u64,
    spec: &ChainSpec,
) -> Result<(), BlockError> {
    if header.version != BLOCK_VERSION {
        return Err(BlockError::BadVersion(header.version));
    }
    let expected_height = ctx
        .parent_height
        .checked_add(1)
        .ok_or(BlockError::WrongHeight {
            expected: u32::MAX,
            found: header.height,
        })?;
    if header.height != expected_height {
        return Err(BlockError::WrongHeight {
            expected: expected_height,
            found: header.height,
        });
    }
    if header.bits != ctx.expected_bits {
        return Err(BlockError::WrongBits {
            expected: ctx.expected_bits,
            found: header.bits,
        });
    }
    check_proof_of_work(header)?;
    if header.time <= ctx.median_time_past {
        return Err(BlockError::TimeTooOld {
            time: header.time,
            median_time_past: ctx.median_time_past,
        });
    }
    let max_drift = spec.file.consensus.max_future_drift_secs;
    if u64::from(header.time) > now.saturating_add(u64::from(max_drift)) {
        return Err(BlockError::TimeTooFarAhead {
            time: header.time,
            now,
            max_drift,
        });
    }
    Ok(())
}

/// Checks that the header's hash meets the target in its own `bits`.
pub fn check_proof_of_work(header: &Header) -> Result<(), BlockError> {
    let hash = header.hash();
    let met = Target::from_compact(header.bits)
        .map(|target| target.is_met_by(hash.as_bytes()))
        .unwrap_or(false);
    if met {
        Ok(())
    } else {
        Err(BlockError::BadProofOfWork {
            hash,
            bits: header.bits,
        })
    }
}

/// Checks the body on its own: limits, memos, duplicates and the merkle root.
pub fn check_body(block: &Block, spec: &ChainSpec) -> Result<(), BlockError> {
    let count = block.transfers.len();
    if count > spec.max_block_transfers() {
        return Err(BlockError::TooManyTransfers {
            count,
            max: spec.max_block_transfers(),
        });
    }
    let size = block.encoded_size();
    if size > spec.max_block_bytes() {
        return Err(BlockError::OversizedBlock {
            size,
            max: spec.max_block_bytes(),
        });
    }
    // Each txid is computed once, on all cores, for both the duplicate check and the root.
    let txids: Vec<Txid> = block.transfers.par_iter().map(Transfer::txid).collect();
    let mut seen = HashSet::with_capacity(count);
    for (transfer, txid) in block.transfers.iter().zip(&txids) {
        if transfer.memo.len() > MAX_MEMO_BYTES {
            return Err(BlockError::MemoTooLong {
                txid: *txid,
                len: transfer.memo.len(),
                max: MAX_MEMO_BYTES,
            });
        }
        if !seen.insert(*txid) {
            return Err(BlockError::DuplicateTransfer(*txid));
        }
    }
    let computed = block.tx_root_from_txids(&txids);
    if computed != block.header.tx_root {
        return Err(BlockError::BadMerkleRoot {
            found: block.header.tx_root,
            computed,
        });
    }
    Ok(())
}

/// Applies the block to the state at its parent (root `parent_root`) and checks the result
/// against the header's state root.
pub fn check_state<V: StateView + ?Sized>(
    view: &V,
    parent_root: StateRoot,
    block: &Block,
    spec: &ChainSpec,
    genesis_hash: &BlockHash,
) -> Result<BlockStateChange, BlockError> {
    check_state_cached(view, parent_root, block, spec, genesis_hash, None)
}

/// [`check_state`], skipping the signatures `cache` holds as verified.
pub fn check_state_cached<V: StateView + ?Sized>(
    view: &V,
    parent_root: StateRoot,
    block: &Block,
    spec: &ChainSpec,
    genesis_hash: &BlockHash,
    cache: Option<&SignatureCache>,
) -> Result<BlockStateChange, BlockError> {
    let ctx = ApplyContext {
        genesis_hash,
        chain_id: spec.chain_id(),
        subsidy: spec.subsidy_at(block.header.height),
        check_signatures: true,
        signature_cache: cache,
    };
    let change = apply_block(view, parent_root, block, &ctx)?;
    if change.state_root != block.header.state_root {
        return Err(BlockError::BadStateRoot {
            found: block.header.state_root,
            computed: change.state_root,
        });
    }
    Ok(change)
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
