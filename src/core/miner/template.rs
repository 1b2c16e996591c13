//! Block templates: the next block on a tip, complete but for its nonce. No I/O.
use crate::core::chain::manager::{ChainManager, ChainStore, SubmitError};
use crate::core::chain::{child_context, BlockIndexEntry};
use crate::core::consensus::apply::{apply_block, ApplyContext};
use crate::core::consensus::target::Target;
use crate::core::consensus::validation::{HeaderContext, BLOCK_VERSION};
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::primitives::{Address, Amount, Block, BlockHash, Header, MerkleRoot, Transfer};
use crate::core::state::StateView;

/// A block ready for the nonce search.
#[derive(Clone, Debug)]
pub struct BlockTemplate {
    /// The block with nonce 0.
    pub block: Block,
    /// The target its hash must meet.
    pub target: Target,
    /// The latest time the block may carry now (the clock plus the allowed drift); miners
    /// roll the time up to this when a nonce range runs out.
    pub max_time: u32,
}

/// What a template is built from.
#[derive(Clone, Debug)]
pub struct TemplateParams<'a> {
    /// The chain's rules.
    pub spec: &'a ChainSpec,
    /// The chain's genesis hash.
    pub genesis_hash: &'a BlockHash,
    /// The tip to build on.
    pub parent: &'a BlockIndexEntry,
    /// The parent's child context (median time past, required bits).
    pub context: HeaderContext,
    /// The local clock, Unix seconds.
    pub now: u64,
    /// Who is paid the reward.
    pub reward_address: Address,
    /// Extra nonce committed in the reward leaf.
    pub extra_nonce: u64,
    /// Transfers to include, valid in this order on the parent's state.
    pub transfers: Vec<Transfer>,
}

/// Builds the next block on `params.parent`, whose state `view` is.
pub fn build_template<V: StateView + ?Sized>(
    view: &V,
    params: TemplateParams,
) -> Result<BlockTemplate, BlockError> {
    let spec = params.spec;
    let height = params.parent.height() + 1;
    let clock = u32::try_from(params.now).unwrap_or(u32::MAX);
    let time = clock.max(params.context.median_time_past.saturating_add(1));
    let max_time = u32::try_from(
        params
            .now
            .saturating_add(u64::from(spec.file.consensus.max_future_drift_secs)),
    )
    .unwrap_or(u32::MAX);
    let fees = Amount::checked_sum(params.transfers.iter().map(|t| t.fee)).ok_or_else(|| {
        BlockError::Overflow {
            context: "sum of fees".to_string(),
        }
    })?;
    let subsidy = spec.subsidy_at(height);
    let reward = subsidy
        .checked_add(fees)
        .ok_or_else(|| BlockError::Overflow {
            context: "subsidy plus fees".to_string(),
        })?;
    let mut block = Block {
        header: Header {
            version: BLOCK_VERSION,
            height,
            prev_hash: params.parent.hash(),
            tx_root: MerkleRoot::ZERO,
            state_root: params.parent.header.state_root,
            time,
            bits: params.context.expected_bits,
            nonce: 0,
        },
        reward_address: params.reward_address,
        reward,
        extra_nonce: params.extra_nonce,
        transfers: params.transfers,
    };
    let ctx = ApplyContext {
        genesis_hash: params.genesis_hash,
        chain_id: spec.chain_id(),
        subsidy,
        check_signatures: false,
        signature_cache: None,
    };
    let change = apply_block(view, params.parent.header.state_root, &block, &ctx)?;
    block.header.state_root = change.state_root;
    block.header.tx_root = block.compute_tx_root();
    let target = Target::from_compact(block.header.bits).map_err(|_| BlockError::WrongBits {
        expected: spec.genesis_bits,
        found: block.header.bits,
    })?;
    Ok(BlockTemplate {
        block,
        target,
        max_time,
    })
}

/// A template for the next block on `chain`'s tip, paying `reward_address`, carrying
/// `transfers` (checked in full against the tip's state).
pub fn template_on<S: ChainStore>(
    chain: &ChainManager<S>,
    reward_address: Address,
    now: u64,
    extra_nonce: u64,
    transfers: Vec<Transfer>,
) -> Result<BlockTemplate, SubmitError> {
    let tip = chain.tip();
    let context = child_context(chain.store(), tip, chain.spec())?;
    build_template(
        chain.store(),
        TemplateParams {
            spec: chain.spec(),
            genesis_hash: &chain.genesis_hash(),
            parent: tip,
            context,
            now,
            reward_address,
            extra_nonce,
            transfers,
        },
    )
    .map_err(|error| SubmitError::Invalid {
        hash: tip.hash(),
        error,
    })
}
