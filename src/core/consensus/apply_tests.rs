//! Parallel execution against sequential execution: whatever the batching and the thread
//! count, the same touched accounts, fees, state root, and the same first failure.
use super::*;
use crate::core::primitives::transfer::Signature;
use crate::core::state::memory::MemoryState;
use proptest::prelude::*;

/// Accounts the generated transfers move between; the first two hold half of all units,
/// so recipient balances and the fee sum can overflow.
const ACCOUNTS: u8 = 14;
const WHALES: u8 = 2;

fn address(i: u8) -> Address {
    Address([i + 1; 32])
}

/// The parent state: every account funded, the whales with 2^63 units.
fn parent_state() -> (MemoryState, StateRoot) {
    let allocations: Vec<(Address, Amount)> = (0..ACCOUNTS)
        .map(|i| {
            let units = if i < WHALES { 1 << 63 } else { 1_000 };
            (address(i), Amount::from_units(units))
        })
        .collect();
    let mut state = MemoryState::default();
    let change = apply_genesis(&state, &allocations).expect("genesis applies");
    state.apply_change(&change);
    (state, change.state_root)
}

/// One generated transfer: sender, recipient, amount, fee, and how far its nonce is off
/// the sender's next one (mostly 0).
type Draw = (u8, u8, u64, u64, u64);

fn draw() -> impl Strategy<Value = Draw> {
    let units = prop_oneof![
        8 => 0u64..400,
        1 => Just(1u64 << 62),
        1 => Just(1u64 << 63),
        1 => Just(u64::MAX),
    ];
    let nonce_offset = prop_oneof![20 => Just(0u64), 1 => 1u64..3];
    (
        0..ACCOUNTS,
        0..ACCOUNTS,
        units.clone(),
        prop_oneof![4 => 0u64..50, 1 => units],
        nonce_offset,
    )
}

/// Transfers whose nonces follow each sender's count of earlier transfers, plus the offset.
fn transfers(draws: &[Draw]) -> Vec<Transfer> {
    let mut sent = [0u64; ACCOUNTS as usize];
    draws
        .iter()
        .map(|&(from, to, amount, fee, offset)| {
            let nonce = sent[from as usize] + offset;
            sent[from as usize] += 1;
            Transfer {
                chain_id: 1,
                from: address(from),
                to: address(to),
                amount: Amount::from_units(amount),
                fee: Amount::from_units(fee),
                nonce,
                memo: Vec::new(),
                signature: Signature([0; 64]),
            }
        })
        .collect()
}

/// What execution decided: the touched accounts (before and after) and fees, or the error.
type Outcome = Result<(Vec<(Address, (Option<Account>, Account))>, Amount), BlockError>;

fn outcome(
    state: &MemoryState,
    root: StateRoot,
    transfers: &[Transfer],
    batches: usize,
) -> Outcome {
    // The one-batch reference reads each account when first met; the batched runs read them
    // all beforehand in one descent, as blocks are applied.
    let prefetch = (batches != 1).then_some(Address([0xee; 32]));
    apply_transfers_in_batches(state, root.0, transfers, batches, prefetch)
        .map(|(overlay, fees)| (overlay.touched.into_iter().collect(), fees))
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any batching gives the outcome of one batch in block order: the same accounts and
    /// fees, or the same failing transfer with the same error.
    #[test]
    fn batched_execution_matches_block_order(
        draws in proptest::collection::vec(draw(), 0..90),
        batches in 2usize..10,
        threads in 1usize..5,
    ) {
        let (state, root) = parent_state();
        let transfers = transfers(&draws);
        let sequential = outcome(&state, root, &transfers, 1);
        let parallel = pool(threads).install(|| outcome(&state, root, &transfers, batches));
        prop_assert_eq!(parallel, sequential);
    }
}

#[test]
fn the_earliest_failure_is_reported_whichever_batch_finds_it() {
    let (state, root) = parent_state();
    // Two independent groups, each with a failure: the later group's failure comes first
    // in block order.
    let transfers = transfers(&[
        (2, 3, 10, 1, 0),
        (4, 5, 10, 1, 0),
        (4, 5, 5_000, 1, 0), // index 2: insufficient balance
        (2, 3, 10, 1, 2),    // index 3: bad nonce
    ]);
    for batches in 1..4 {
        let error = outcome(&state, root, &transfers, batches).expect_err("fails");
        assert!(
            matches!(error, BlockError::InsufficientBalance { txid, .. } if txid == transfers[2].txid()),
            "{batches} batches: {error}"
        );
    }
}

#[test]
fn a_fee_sum_overflow_before_the_first_failing_transfer_is_reported_first() {
    let (state, root) = parent_state();
    let half = 1u64 << 63;
    let transfers = transfers(&[
        (0, 2, 0, half, 0),  // whale 0 pays all it has as fee
        (1, 3, 0, half, 0),  // index 1: the fee sum overflows here
        (4, 5, 5_000, 1, 0), // index 2: insufficient balance, in another group
    ]);
    for batches in 1..4 {
        let error = outcome(&state, root, &transfers, batches).expect_err("fails");
        assert_eq!(
            error,
            BlockError::Overflow {
                context: "sum of fees".to_string()
            },
            "{batches} batches"
        );
    }
}

#[test]
fn a_large_block_applies_alike_on_one_and_four_threads() {
    let (state, root) = parent_state();
    let draws: Vec<Draw> = (0..400u32)
        .map(|i| ((i % 13) as u8 + 1, (i * 7 % 11) as u8 + 2, 3, 1, 0))
        .collect();
    let transfers = transfers(&draws);
    let genesis = BlockHash([9; 32]);
    let block = Block {
        header: crate::core::primitives::Header {
            version: 1,
            height: 1,
            prev_hash: BlockHash::ZERO,
            tx_root: crate::core::primitives::MerkleRoot::ZERO,
            state_root: root,
            time: 0,
            bits: crate::core::consensus::CompactTarget::from_consensus(0),
            nonce: 0,
        },
        reward_address: address(3),
        reward: Amount::from_units(5_000 + 400),
        extra_nonce: 0,
        transfers,
    };
    let ctx = ApplyContext {
        genesis_hash: &genesis,
        chain_id: 1,
        subsidy: Amount::from_units(5_000),
        check_signatures: false,
        signature_cache: None,
    };
    let one = pool(1)
        .install(|| apply_block(&state, root, &block, &ctx))
        .expect("applies");
    let four = pool(4)
        .install(|| apply_block(&state, root, &block, &ctx))
        .expect("applies");
    assert_eq!(one.state_root, four.state_root);
    assert_eq!(one.accounts, four.accounts);
    assert_eq!(one.fees, Amount::from_units(400));
}

#[test]
fn a_failing_transfer_before_a_fee_sum_overflow_is_reported_first() {
    let (state, root) = parent_state();
    let half = 1u64 << 63;
    let transfers = transfers(&[
        (4, 5, 5_000, 1, 0), // index 0: insufficient balance
        (0, 2, 0, half, 0),
        (1, 3, 0, half, 0), // the fee sum would overflow here
    ]);
    for batches in 1..4 {
        let error = outcome(&state, root, &transfers, batches).expect_err("fails");
        assert!(
            matches!(error, BlockError::InsufficientBalance { txid, .. } if txid == transfers[0].txid()),
            "{batches} batches: {error}"
        );
    }
}
