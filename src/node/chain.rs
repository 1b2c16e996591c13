//! The chain on disk: the core chain manager over the sled store, and the full replay
//! check behind `cairn verify` (from genesis, or for a node bootstrapped by snapshot, the
//! headers up to the snapshot's block and the blocks after it from its state).
pub use crate::core::chain::manager::{self, BlockOutcome, SubmitError};
use crate::core::chain::{check_child, child_context, BlockIndexEntry, ChainError, ChildError};
use crate::core::consensus::genesis::genesis;
use crate::core::consensus::validation::{check_header, check_state};
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::primitives::{Block, BlockHash};
use crate::core::state::memory::MemoryState;
use crate::core::state::pages::{pages_below, PageTop};
use crate::core::state::{all_accounts, StateView, EMPTY_ROOT};
use crate::node::store::{Store, StoreError, TxLocation};
use std::path::Path;

/// The chain manager over the sled store.
pub type ChainManager = manager::ChainManager<Store>;

/// Opens the chain in `dir`, creating it from `spec`'s genesis if it is new.
pub fn open_chain(dir: &Path, spec: ChainSpec) -> Result<ChainManager, StoreError> {
    let store = Store::open(dir)?;
    let (genesis_block, change) = genesis(&spec);
    store.init(&genesis_block, &change, &spec.asert_params())?;
    ChainManager::new(store, spec).map_err(|e| StoreError::Inconsistent(e.to_string()))
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
    /// For a store bootstrapped by snapshot: the snapshot's height (headers were checked up
    /// to it, blocks replayed from its state after it).
    pub snapshot_height: Option<u32>,
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
    let indexed = store.indexed_height()?;
    if indexed > tip.height() {
        return Err(VerifyError::StateMismatch(format!(
            "the transfer index is marked up to height {indexed}, above the tip {}",
            tip.height()
        )));
    }
    let mut state = MemoryState::default();
    state.apply_change(&change);
    let mut parent = BlockIndexEntry::genesis(genesis_block.header, &spec.asert_params())
        .map_err(|e| VerifyError::StateMismatch(e.to_string()))?;
    let mut first = 1;
    let snapshot = store.snapshot_base()?;
    if let Some(base) = &snapshot {
        parent = verify_headers_to(store, spec, parent, base.height, &mut progress)?;
        if parent.hash() != base.hash {
            return Err(VerifyError::StateMismatch(format!(
                "the best chain at the snapshot's height {} is not the snapshot's block",
                base.height
            )));
        }
        state = snapshot_state(store, &parent)?;
        first = base.height + 1;
    }
    for height in first..=tip.height() {
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
        // The clock is not checked: every stored block was once accepted against it.
        let entry = match check_child(store, &parent, &block, u64::MAX / 2, spec) {
            Ok(entry) => entry,
            Err(ChildError::Index(e)) => return Err(e.into()),
            Err(ChildError::Invalid(error)) => return Err(invalid(error)),
        };
        let change = check_state(
            &state,
            parent.header.state_root,
            &block,
            spec,
            &genesis_hash,
        )
        .map_err(invalid)?;
        state.apply_change(&change);
        parent = entry;
        if store.index_entry(&hash)?.map(|e| e.chain_work) != Some(parent.chain_work) {
            return Err(VerifyError::StateMismatch(format!(
                "stored chain work of block {height} is wrong"
            )));
        }
        check_indexed(store, &block, height, indexed)?;
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
        snapshot_height: snapshot.map(|base| base.height),
    })
}

/// A store bootstrapped by snapshot holds headers, not blocks, up to the snapshot's block:
/// checks each of them against its parent (height, time, bits, proof of work, chain work)
/// from `genesis` up to `height`, and returns the entry there.
fn verify_headers_to(
    store: &Store,
    spec: &ChainSpec,
    genesis: BlockIndexEntry,
    height: u32,
    progress: &mut impl FnMut(u32, u32),
) -> Result<BlockIndexEntry, VerifyError> {
    let mut parent = genesis;
    for at in 1..=height {
        let hash = store.hash_at_height(at)?.ok_or_else(|| {
            VerifyError::StateMismatch(format!("no best-chain block at height {at}"))
        })?;
        let stored = store.index_entry(&hash)?.ok_or(ChainError::Missing(hash))?;
        let invalid = |error| VerifyError::InvalidBlock {
            height: at,
            hash,
            error,
        };
        if stored.header.prev_hash != parent.hash() {
            return Err(VerifyError::StateMismatch(format!(
                "header {at} does not link to header {}",
                at - 1
            )));
        }
        let context = child_context(store, &parent, spec)?;
        check_header(&stored.header, &context, u64::MAX / 2, spec).map_err(invalid)?;
        let entry = parent
            .child(stored.header, &spec.asert_params())
            .map_err(|e| VerifyError::StateMismatch(e.to_string()))?;
        if stored.chain_work != entry.chain_work || stored.asert_clock != entry.asert_clock {
            return Err(VerifyError::StateMismatch(format!(
                "stored chain work or schedule clock of header {at} is wrong"
            )));
        }
        parent = entry;
        if at % 1000 == 0 {
            progress(at, height);
        }
    }
    Ok(parent)
}

/// The state under the snapshot block `base`'s root, read from the store into memory: every
/// page (each node is found by its hash, so a changed node is a missing one) and every
/// account.
fn snapshot_state(store: &Store, base: &BlockIndexEntry) -> Result<MemoryState, VerifyError> {
    let root = *base.header.state_root.as_bytes();
    let mut state = MemoryState::default();
    let mut pending = vec![PageTop::root(root)];
    if root == EMPTY_ROOT {
        pending.clear();
    }
    while let Some(top) = pending.pop() {
        let page = store
            .smt_page(&top.hash)
            .map_err(|e| VerifyError::StateMismatch(format!("the snapshot's state tree: {e}")))?;
        let page = page.ok_or_else(|| {
            VerifyError::StateMismatch(format!(
                "the snapshot's state tree lacks page {}",
                hex::encode(top.hash)
            ))
        })?;
        pending.extend(
            pages_below(&page, &top).map_err(|e| {
                VerifyError::StateMismatch(format!("the snapshot's state tree: {e}"))
            })?,
        );
        state.insert_pages([(top.hash, page)]);
    }
    let accounts = all_accounts(&state, root)
        .map_err(|e| VerifyError::StateMismatch(format!("the snapshot's state tree: {e}")))?;
    state.accounts = accounts.into_iter().collect();
    Ok(state)
}

/// Checks that the transfer index finds every transfer of `block` (at `height`) where it
/// is if the block is at or below the index marker `indexed`, and not at all above it.
fn check_indexed(
    store: &Store,
    block: &Block,
    height: u32,
    indexed: u32,
) -> Result<(), VerifyError> {
    let hash = block.hash();
    for (position, transfer) in block.transfers.iter().enumerate() {
        let found = store.tx_location(&transfer.txid())?;
        let expected = (height <= indexed).then_some(TxLocation {
            block: hash,
            height,
            position: position as u32,
        });
        if found != expected {
            return Err(VerifyError::StateMismatch(format!(
                "the transfer index has {found:?} for transfer {position} of block {height} \
                 (indexed up to {indexed}): expected {expected:?}"
            )));
        }
    }
    Ok(())
}
