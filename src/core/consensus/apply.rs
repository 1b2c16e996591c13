//! Applying a block to the account state: every transfer rule, the reward, and the new state
//! root, returned as a [`BlockStateChange`] to be written atomically. No I/O.
//!
//! Signatures are checked on all cores (rayon) while the transfers are applied, also on all
//! cores: transfers touching disjoint accounts run at once ([`super::schedule`]), with the
//! outcome of running them in block order. The state root's tree update is again spread
//! over cores near its top.
use super::error::BlockError;
use super::schedule::{independent_batches, Schedule};
use crate::core::primitives::{Address, Amount, Block, BlockHash, Hash256, StateRoot, Transfer};
use crate::core::state::smt::{account_at, accounts_at, update_root, EMPTY_ROOT};
use crate::core::state::{Account, BlockStateChange, BlockUndo, SignatureCache, StateView};
use foldhash::HashMap;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Chain facts a block's transfers are checked against.
#[derive(Clone, Copy, Debug)]
pub struct ApplyContext<'a> {
    /// Hash of this chain's genesis block, committed in every signature.
    pub genesis_hash: &'a BlockHash,
    /// This chain's id.
    pub chain_id: u32,
    /// The subsidy at the block's height.
    pub subsidy: Amount,
    /// Whether to verify the transfers' signatures. Validation always does; a miner's
    /// template skips it, because the mempool verified every signature on admission and the
    /// mined block is validated in full before it is stored or relayed.
    pub check_signatures: bool,
    /// Signatures this node already verified, skipped when checking (see
    /// [`SignatureCache`]); `None` checks every one.
    pub signature_cache: Option<&'a SignatureCache>,
}

/// Touched accounts: their value before the block (read from the tree at the parent's
/// root, most of them beforehand in one descent: [`Prefetched`]) and now.
struct Overlay<'v, V: StateView + ?Sized> {
    view: &'v V,
    parent_root: Hash256,
    prefetched: Arc<Prefetched>,
    touched: BTreeMap<Address, (Option<Account>, Account)>,
}

/// The accounts a block touches, as they were at its parent, read together
/// ([`accounts_at`]): one walk of the paths they share instead of one walk per account.
#[derive(Default)]
struct Prefetched(HashMap<Address, Option<Account>>);

impl Prefetched {
    /// The accounts at `addresses` (each once), read at `root`.
    fn read<V: StateView + ?Sized>(
        view: &V,
        root: Hash256,
        mut addresses: Vec<Address>,
    ) -> Result<Prefetched, BlockError> {
        addresses.sort_unstable();
        let accounts = accounts_at(view, root, &addresses)?;
        Ok(Prefetched(addresses.into_iter().zip(accounts).collect()))
    }
}

impl<'v, V: StateView + ?Sized> Overlay<'v, V> {
    fn new(view: &'v V, parent_root: Hash256, prefetched: Arc<Prefetched>) -> Overlay<'v, V> {
        Overlay {
            view,
            parent_root,
            prefetched,
            touched: BTreeMap::new(),
        }
    }

    fn get(&mut self, address: &Address) -> Result<Account, BlockError> {
        if let Some((_, now)) = self.touched.get(address) {
            return Ok(*now);
        }
        let before = match self.prefetched.0.get(address) {
            Some(before) => *before,
            None => account_at(self.view, self.parent_root, address)?,
        };
        self.touched
            .insert(*address, (before, before.unwrap_or_default()));
        Ok(before.unwrap_or_default())
    }

    fn set(&mut self, address: &Address, account: Account) {
        if let Some(entry) = self.touched.get_mut(address) {
            entry.1 = account;
        }
    }
}

/// Blocks with fewer transfers run on one thread: scheduling costs more than it saves.
/// (A variable only so that tests can run small blocks in parallel too.)
static PARALLEL_MIN_TRANSFERS: AtomicUsize = AtomicUsize::new(64);

/// Makes every block of two or more transfers, in this process, run in independent batches
/// when the pool has several threads: for tests and the simulation, whose blocks are small,
/// to exercise the parallel path.
#[cfg(any(test, feature = "test-utils"))]
pub fn run_small_blocks_in_parallel() {
    PARALLEL_MIN_TRANSFERS.store(2, Ordering::Relaxed);
}

/// Batches per thread of the pool, so a thread that finishes early takes another.
const BATCHES_PER_THREAD: usize = 4;

/// Applies the transfers, checking nonces, balances and overflows (not signatures), on all
/// cores of the current rayon pool: see [`super::schedule`]. The outcome, the first failing
/// transfer and its error included, is that of running them in block order on one thread.
fn apply_transfers<'v, V: StateView + ?Sized>(
    view: &'v V,
    parent_root: Hash256,
    block: &Block,
) -> Result<(Overlay<'v, V>, Amount), BlockError> {
    let threads = rayon::current_num_threads();
    let batches = if block.transfers.len() < PARALLEL_MIN_TRANSFERS.load(Ordering::Relaxed) {
        1
    } else {
        threads * BATCHES_PER_THREAD
    };
    let prefetch = Some(block.reward_address);
    apply_transfers_in_batches(view, parent_root, &block.transfers, batches, prefetch)
}

/// [`apply_transfers`] with the transfers split into at most `batches` independent batches
/// (1: in block order on this thread). With `prefetch`, every account the transfers touch, and
/// that one too (the reward's), is read beforehand in one descent ([`Prefetched`]); without,
/// each is read when first met.
fn apply_transfers_in_batches<'v, V: StateView + ?Sized>(
    view: &'v V,
    parent_root: Hash256,
    transfers: &[Transfer],
    batches: usize,
    prefetch: Option<Address>,
) -> Result<(Overlay<'v, V>, Amount), BlockError> {
    let Schedule {
        batches,
        mut accounts,
    } = independent_batches(transfers, batches);
    let prefetched = match prefetch {
        Some(also) => {
            if !accounts.contains(&also) {
                accounts.push(also);
            }
            Arc::new(Prefetched::read(view, parent_root, accounts)?)
        }
        None => Arc::new(Prefetched::default()),
    };
    let outcomes: Vec<Result<Overlay<'v, V>, (usize, BlockError)>> = if batches.len() == 1 {
        vec![apply_batch(
            view,
            parent_root,
            &prefetched,
            transfers,
            &batches[0],
        )]
    } else {
        batches
            .par_iter()
            .map(|batch| apply_batch(view, parent_root, &prefetched, transfers, batch))
            .collect()
    };
    let mut merged = Overlay::new(view, parent_root, prefetched);
    let mut first_failure: Option<(usize, BlockError)> = None;
    for outcome in outcomes {
        match outcome {
            Ok(overlay) => merged.touched.extend(overlay.touched),
            Err((index, error)) => {
                if first_failure
                    .as_ref()
                    .is_none_or(|(first, _)| index < *first)
                {
                    first_failure = Some((index, error));
                }
            }
        }
    }
    // In block order the fee sum is checked after each transfer's own rules, so an
    // overflow before the first failing transfer is what sequential execution reports.
    let failing_index = first_failure
        .as_ref()
        .map_or(transfers.len(), |(index, _)| *index);
    let fees = sum_fees(&transfers[..failing_index])?;
    match first_failure {
        Some((_, error)) => Err(error),
        None => Ok((merged, fees)),
    }
}

/// Runs the transfers at `indices` (block order) on one overlay, stopping at the first that
/// breaks a rule, whose index comes back with the error.
fn apply_batch<'v, V: StateView + ?Sized>(
    view: &'v V,
    parent_root: Hash256,
    prefetched: &Arc<Prefetched>,
    transfers: &[Transfer],
    indices: &[usize],
) -> Result<Overlay<'v, V>, (usize, BlockError)> {
    let mut overlay = Overlay::new(view, parent_root, prefetched.clone());
    for &index in indices {
        apply_transfer(&mut overlay, &transfers[index]).map_err(|error| (index, error))?;
    }
    Ok(overlay)
}

/// One transfer's rules: the sender's nonce and balance, the recipient's balance.
fn apply_transfer<V: StateView + ?Sized>(
    overlay: &mut Overlay<'_, V>,
    transfer: &Transfer,
) -> Result<(), BlockError> {
    let mut sender = overlay.get(&transfer.from)?;
    if transfer.nonce != sender.nonce {
        return Err(BlockError::BadNonce {
            txid: transfer.txid(),
            expected: sender.nonce,
            found: transfer.nonce,
        });
    }
    let needed = transfer.total_cost().ok_or_else(|| BlockError::Overflow {
        context: format!("transfer {}: amount plus fee", transfer.txid()),
    })?;
    sender.balance =
        sender
            .balance
            .checked_sub(needed)
            .ok_or_else(|| BlockError::InsufficientBalance {
                txid: transfer.txid(),
                needed,
                available: sender.balance,
            })?;
    sender.nonce += 1;
    overlay.set(&transfer.from, sender);
    let mut recipient = overlay.get(&transfer.to)?;
    recipient.balance = recipient
        .balance
        .checked_add(transfer.amount)
        .ok_or_else(|| BlockError::Overflow {
            context: format!("transfer {}: recipient balance", transfer.txid()),
        })?;
    overlay.set(&transfer.to, recipient);
    Ok(())
}

/// The sum of the transfers' fees, in block order.
fn sum_fees(transfers: &[Transfer]) -> Result<Amount, BlockError> {
    transfers.iter().try_fold(Amount::ZERO, |sum, transfer| {
        sum.checked_add(transfer.fee)
            .ok_or_else(|| BlockError::Overflow {
                context: "sum of fees".to_string(),
            })
    })
}

/// Checks that every transfer of `block` carries `chain_id`.
pub fn check_chain_ids(block: &Block, chain_id: u32) -> Result<(), BlockError> {
    match block.transfers.iter().find(|t| t.chain_id != chain_id) {
        Some(wrong) => Err(BlockError::WrongChainId {
            txid: wrong.txid(),
            expected: chain_id,
            found: wrong.chain_id,
        }),
        None => Ok(()),
    }
}

/// Checks every transfer's signature (on all cores), skipping those `cache` holds and
/// remembering the valid ones there: the first bad one in block order fails. Needs no state:
/// a sender's key is its address.
pub fn check_transfer_signatures(
    block: &Block,
    genesis_hash: &BlockHash,
    cache: Option<&SignatureCache>,
) -> Result<(), BlockError> {
    let bad = match cache {
        Some(cache) if cache.genesis() == genesis_hash => cache.check_all(&block.transfers),
        _ => block
            .transfers
            .par_iter()
            .find_first(|t| !t.has_valid_signature(genesis_hash)),
    };
    match bad {
        Some(bad) => Err(BlockError::BadSignature { txid: bad.txid() }),
        None => Ok(()),
    }
}

/// Applies `block`'s transfers and reward on top of the state `view` (whose root is
/// `parent_root`), checking every transfer rule and the claimed reward. It does not compare
/// the result with the header's state root: that is [`crate::core::consensus::validation`]'s
/// job, and miners call this to learn the root.
pub fn apply_block<V: StateView + ?Sized>(
    view: &V,
    parent_root: StateRoot,
    block: &Block,
    ctx: &ApplyContext,
) -> Result<BlockStateChange, BlockError> {
    check_chain_ids(block, ctx.chain_id)?;
    let (mut overlay, fees) = if ctx.check_signatures {
        // Signatures and the transfer rules run at the same time; a bad signature is
        // reported first whatever the rules found.
        let (signatures, rules) = rayon::join(
            || check_transfer_signatures(block, ctx.genesis_hash, ctx.signature_cache),
            || apply_transfers(view, parent_root.0, block),
        );
        signatures?;
        rules?
    } else {
        apply_transfers(view, parent_root.0, block)?
    };

    let expected_reward = ctx
        .subsidy
        .checked_add(fees)
        .ok_or_else(|| BlockError::Overflow {
            context: "subsidy plus fees".to_string(),
        })?;
    if block.reward != expected_reward {
        return Err(BlockError::WrongReward {
            expected: expected_reward,
            found: block.reward,
        });
    }
    let mut miner = overlay.get(&block.reward_address)?;
    miner.balance =
        miner
            .balance
            .checked_add(block.reward)
            .ok_or_else(|| BlockError::Overflow {
                context: "miner balance".to_string(),
            })?;
    overlay.set(&block.reward_address, miner);

    finish(view, parent_root, overlay.touched, fees)
}

fn finish<V: StateView + ?Sized>(
    view: &V,
    parent_root: StateRoot,
    touched: BTreeMap<Address, (Option<Account>, Account)>,
    fees: Amount,
) -> Result<BlockStateChange, BlockError> {
    let accounts: Vec<(Address, Account)> =
        touched.iter().map(|(a, (_, now))| (*a, *now)).collect();
    let undo = BlockUndo {
        previous: touched
            .iter()
            .map(|(a, (before, _))| (*a, *before))
            .collect(),
    };
    let update = update_root(view, parent_root.0, &accounts)?;
    Ok(BlockStateChange {
        accounts,
        undo,
        new_pages: update.new_pages,
        state_root: StateRoot(update.root),
        fees,
    })
}

/// The state change of the genesis block: its allocations on an empty state.
pub fn apply_genesis<V: StateView + ?Sized>(
    view: &V,
    allocations: &[(Address, Amount)],
) -> Result<BlockStateChange, BlockError> {
    let touched = allocations
        .iter()
        .map(|(address, amount)| {
            (
                *address,
                (
                    None,
                    Account {
                        balance: *amount,
                        nonce: 0,
                    },
                ),
            )
        })
        .collect();
    finish(view, StateRoot(EMPTY_ROOT), touched, Amount::ZERO)
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
