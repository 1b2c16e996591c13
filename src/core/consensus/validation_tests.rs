//! One rejected block per consensus rule, built by mutating a valid template and repairing
//! everything else, so that exactly the targeted rule is broken; plus property tests that
//! valid transfer sequences always validate and conserve supply.
use super::{check_body, check_header, check_proof_of_work, check_state, BLOCK_VERSION};
use crate::core::chain::child_context;
use crate::core::consensus::error::BlockError;
use crate::core::consensus::spec::ChainSpec;
use crate::core::consensus::target::{CompactTarget, Target};
use crate::core::primitives::transfer::UnsignedTransfer;
use crate::core::primitives::{
    codec, Address, Amount, Block, BlockHash, StateRoot, Transfer, MAX_MEMO_BYTES,
};
use crate::core::state::StateView;
use crate::core::testkit::{solve, test_address, test_keypair, test_spec, TestChain};
use proptest::prelude::*;
use std::collections::HashMap;

/// The test key that receives block rewards unless a test says otherwise.
const MINER: u8 = 3;

/// A change to a valid block template, named after what it does. [`build`] applies it and
/// then recomputes whatever else it invalidates (reward, merkle root, proof of work).
#[derive(Clone, Debug)]
enum Mutation {
    /// Leave the template as it is (then solve it): a valid block.
    Nothing,
    /// Pick a nonce whose hash misses the target (and do not solve).
    FailingNonce,
    /// Set the header's bits.
    Bits(CompactTarget),
    /// Set the header's version.
    Version(u32),
    /// Set the header's height.
    Height(u32),
    /// Set the header's time.
    Time(u32),
    /// Set the header's state root.
    StateRoot(StateRoot),
    /// Change the body (the extra nonce) but keep the header's now stale merkle root.
    StaleTxRoot,
    /// Replace the transfers; the reward (subsidy plus fees, when that does not overflow)
    /// and the merkle root are recomputed.
    Transfers(Vec<Transfer>),
    /// Claim this reward; the merkle root is recomputed.
    Reward(Amount),
}

/// A child of `parent` paying [`MINER`], built from a template over `transfers` (which must
/// be valid there), with `mutation` applied and everything else repaired.
fn build(
    chain: &TestChain,
    parent: &BlockHash,
    transfers: Vec<Transfer>,
    mutation: Mutation,
) -> Block {
    let mut block = chain.template(parent, transfers, test_address(MINER));
    let mut solve_after = true;
    match mutation {
        Mutation::Nothing => {}
        Mutation::FailingNonce => solve_after = false,
        Mutation::Bits(bits) => block.header.bits = bits,
        Mutation::Version(version) => block.header.version = version,
        Mutation::Height(height) => block.header.height = height,
        Mutation::Time(time) => block.header.time = time,
        Mutation::StateRoot(root) => block.header.state_root = root,
        Mutation::StaleTxRoot => block.extra_nonce = block.extra_nonce.wrapping_add(1),
        Mutation::Transfers(transfers) => {
            let subsidy = chain.spec.subsidy_at(block.header.height);
            let reward = Amount::checked_sum(transfers.iter().map(|t| t.fee))
                .and_then(|fees| subsidy.checked_add(fees));
            if let Some(reward) = reward {
                block.reward = reward;
            }
            block.transfers = transfers;
            block.header.tx_root = block.compute_tx_root();
        }
        Mutation::Reward(reward) => {
            block.reward = reward;
            block.header.tx_root = block.compute_tx_root();
        }
    }
    if solve_after {
        solve(&mut block.header);
    } else {
        let target = Target::from_compact(block.header.bits).expect("test bits are valid");
        let mut header = block.header;
        block.header.nonce = (0..=u32::MAX)
            .find(|&nonce| {
                header.nonce = nonce;
                !target.is_met_by(header.hash().as_bytes())
            })
            .expect("an easy target is still missed by some nonce");
    }
    block
}

/// The outcome of each of the three validation stages for one block.
#[derive(Debug)]
struct Verdict {
    header: Result<(), BlockError>,
    body: Result<(), BlockError>,
    state: Result<(), BlockError>,
}

/// The local clock the checks assume for a child of `parent`: the time templates pick.
fn clock_for(chain: &TestChain, parent: &BlockHash) -> u64 {
    let ideal = chain.spec.file.consensus.ideal_block_time_secs;
    u64::from(chain.entry_of(parent).header.time + ideal)
}

/// Runs all three checks on `block` against its parent in `chain`, at [`clock_for`].
fn verdict(chain: &TestChain, block: &Block) -> Verdict {
    let parent_hash = block.header.prev_hash;
    let parent = chain.entry_of(&parent_hash);
    let ctx = child_context(chain, parent, &chain.spec).expect("in-memory index");
    Verdict {
        header: check_header(
            &block.header,
            &ctx,
            clock_for(chain, &parent_hash),
            &chain.spec,
        ),
        body: check_body(block, &chain.spec),
        state: check_state(
            chain.state_at(&parent_hash),
            parent.header.state_root,
            block,
            &chain.spec,
            &chain.genesis_hash,
        )
        .map(|_| ()),
    }
}

/// Asserts the verdict is all `Ok`.
fn assert_valid(v: &Verdict) {
    assert_eq!(v.header, Ok(()), "{v:?}");
    assert_eq!(v.body, Ok(()), "{v:?}");
    assert_eq!(v.state, Ok(()), "{v:?}");
}

/// A spec derived from the test spec by replacing `from` with `to` in its TOML text.
fn spec_with(from: &str, to: &str) -> ChainSpec {
    let text = test_spec().to_toml();
    assert!(
        text.contains(from),
        "{from:?} not in the test spec:\n{text}"
    );
    ChainSpec::from_toml(&text.replace(from, to)).expect("edited spec is valid")
}

/// A signed transfer with a memo, on `chain`.
fn transfer_with_memo(chain: &TestChain, key: u8, memo: Vec<u8>) -> Transfer {
    UnsignedTransfer {
        chain_id: chain.spec.chain_id(),
        to: test_address(1),
        amount: Amount::from_units(5),
        fee: Amount::from_units(1),
        nonce: 0,
        memo,
    }
    .sign(&test_keypair(key), &chain.genesis_hash, &[7u8; 32])
}

fn balance(state: &impl StateView, address: &Address) -> u64 {
    state
        .account(address)
        .expect("in-memory state")
        .map_or(0, |a| a.balance.as_units())
}

// ---- valid blocks ----

#[test]
fn valid_block_passes_all_three_checks() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let empty = build(&chain, &genesis, Vec::new(), Mutation::Nothing);
    assert_valid(&verdict(&chain, &empty));
    assert_eq!(check_proof_of_work(&empty.header), Ok(()));
    chain.add(empty.clone());

    let transfers = vec![
        chain.transfer(&test_keypair(0), test_address(1), 1_000, 10, 0),
        chain.transfer(&test_keypair(1), test_address(2), 2_000, 20, 0),
    ];
    let block = build(&chain, &empty.hash(), transfers, Mutation::Nothing);
    assert_valid(&verdict(&chain, &block));
    assert_eq!(
        block.reward.as_units(),
        chain.spec.subsidy_at(2).as_units() + 30
    );
}

// ---- header rules ----

#[test]
fn bad_proof_of_work() {
    let chain = TestChain::new();
    let block = build(
        &chain,
        &chain.genesis_hash,
        Vec::new(),
        Mutation::FailingNonce,
    );
    let v = verdict(&chain, &block);
    assert!(
        matches!(v.header, Err(BlockError::BadProofOfWork { .. })),
        "{v:?}"
    );
    assert!(matches!(
        check_proof_of_work(&block.header),
        Err(BlockError::BadProofOfWork { .. })
    ));
    assert_eq!(v.body, Ok(()));
    assert_eq!(v.state, Ok(()));
}

#[test]
fn bad_proof_of_work_with_undecodable_bits() {
    let chain = TestChain::new();
    let mut block = build(&chain, &chain.genesis_hash, Vec::new(), Mutation::Nothing);
    // A negative compact target decodes to nothing, so no hash can meet it.
    block.header.bits = CompactTarget::from_consensus(0x20ff_ffff);
    assert!(matches!(
        check_proof_of_work(&block.header),
        Err(BlockError::BadProofOfWork { .. })
    ));
}

#[test]
fn wrong_bits() {
    let chain = TestChain::new();
    let harder = CompactTarget::from_consensus(0x2000_ffff);
    assert_ne!(harder, chain.spec.genesis_bits);
    let block = build(
        &chain,
        &chain.genesis_hash,
        Vec::new(),
        Mutation::Bits(harder),
    );
    assert_eq!(
        check_proof_of_work(&block.header),
        Ok(()),
        "solved for its own bits"
    );
    let v = verdict(&chain, &block);
    assert!(
        matches!(v.header, Err(BlockError::WrongBits { expected, found })
            if expected == chain.spec.genesis_bits && found == harder),
        "{v:?}"
    );
    assert_eq!(v.body, Ok(()));
    assert_eq!(v.state, Ok(()));
}

#[test]
fn time_too_old() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let tip = chain
        .extend(&genesis, 12, test_address(0))
        .last()
        .unwrap()
        .hash();
    let ctx = child_context(&chain, chain.entry_of(&tip), &chain.spec).unwrap();
    // Times are 10 s apart, so the median of the last 11 is 50 s before the tip.
    assert_eq!(ctx.median_time_past, chain.entry_of(&tip).header.time - 50);

    let block = build(
        &chain,
        &tip,
        Vec::new(),
        Mutation::Time(ctx.median_time_past),
    );
    let v = verdict(&chain, &block);
    assert!(
        matches!(v.header, Err(BlockError::TimeTooOld { time, median_time_past })
            if time == ctx.median_time_past && median_time_past == ctx.median_time_past),
        "{v:?}"
    );
    assert_eq!(v.body, Ok(()));
    assert_eq!(v.state, Ok(()));

    // One second later is fine, even though it is before the parent's time.
    let block = build(
        &chain,
        &tip,
        Vec::new(),
        Mutation::Time(ctx.median_time_past + 1),
    );
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn time_too_far_ahead() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let now = clock_for(&chain, &genesis);
    let drift = chain.spec.file.consensus.max_future_drift_secs;
    let limit = u32::try_from(now).unwrap() + drift;

    let block = build(&chain, &genesis, Vec::new(), Mutation::Time(limit + 1));
    let v = verdict(&chain, &block);
    assert!(
        matches!(v.header, Err(BlockError::TimeTooFarAhead { time, now: n, max_drift })
            if time == limit + 1 && n == now && max_drift == drift),
        "{v:?}"
    );
    assert_eq!(v.body, Ok(()));
    assert_eq!(v.state, Ok(()));

    let block = build(&chain, &genesis, Vec::new(), Mutation::Time(limit));
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn wrong_height() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let tip = chain.extend(&genesis, 2, test_address(0))[1].hash();
    for height in [0, 2, 4, u32::MAX] {
        let block = build(&chain, &tip, Vec::new(), Mutation::Height(height));
        let v = verdict(&chain, &block);
        assert!(
            matches!(v.header, Err(BlockError::WrongHeight { expected: 3, found }) if found == height),
            "{v:?}"
        );
        assert_eq!(v.body, Ok(()));
    }
}

#[test]
fn bad_version() {
    let chain = TestChain::new();
    for version in [0, BLOCK_VERSION + 1, u32::MAX] {
        let block = build(
            &chain,
            &chain.genesis_hash,
            Vec::new(),
            Mutation::Version(version),
        );
        let v = verdict(&chain, &block);
        assert!(
            matches!(v.header, Err(BlockError::BadVersion(found)) if found == version),
            "{v:?}"
        );
        assert_eq!(v.body, Ok(()));
        assert_eq!(v.state, Ok(()));
    }
}

// ---- body rules ----

#[test]
fn bad_merkle_root() {
    let chain = TestChain::new();
    let block = build(
        &chain,
        &chain.genesis_hash,
        Vec::new(),
        Mutation::StaleTxRoot,
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert!(
        matches!(v.body, Err(BlockError::BadMerkleRoot { found, computed })
            if found == block.header.tx_root && computed == block.compute_tx_root()),
        "{v:?}"
    );
    // The extra nonce does not touch the state.
    assert_eq!(v.state, Ok(()));
}

#[test]
fn oversized_block() {
    let chain = TestChain::with_spec(spec_with(
        "max_block_bytes = 2000000",
        "max_block_bytes = 1024",
    ));
    let key = test_keypair(0);
    let transfers: Vec<Transfer> = (0..6)
        .map(|nonce| chain.transfer(&key, test_address(1), 100, 1, nonce))
        .collect();
    let block = build(&chain, &chain.genesis_hash, transfers, Mutation::Nothing);
    let size = codec::encode(&block).unwrap().len();
    assert_eq!(
        block.encoded_size(),
        size,
        "encoded_size agrees with the codec"
    );
    assert!(size > 1024);
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert!(
        matches!(v.body, Err(BlockError::OversizedBlock { size: s, max: 1024 }) if s == size),
        "{v:?}"
    );
    assert_eq!(v.state, Ok(()));

    // Five transfers fit.
    let transfers: Vec<Transfer> = (0..5)
        .map(|nonce| chain.transfer(&key, test_address(1), 100, 1, nonce))
        .collect();
    let block = build(&chain, &chain.genesis_hash, transfers, Mutation::Nothing);
    assert!(block.encoded_size() <= 1024);
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn too_many_transfers() {
    let chain = TestChain::with_spec(spec_with(
        "max_block_transfers = 5000",
        "max_block_transfers = 3",
    ));
    let key = test_keypair(0);
    let transfers: Vec<Transfer> = (0..4)
        .map(|nonce| chain.transfer(&key, test_address(1), 100, 1, nonce))
        .collect();
    let block = build(
        &chain,
        &chain.genesis_hash,
        transfers.clone(),
        Mutation::Nothing,
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert!(
        matches!(
            v.body,
            Err(BlockError::TooManyTransfers { count: 4, max: 3 })
        ),
        "{v:?}"
    );
    assert_eq!(v.state, Ok(()));

    let block = build(
        &chain,
        &chain.genesis_hash,
        transfers[..3].to_vec(),
        Mutation::Nothing,
    );
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn memo_too_long() {
    let chain = TestChain::new();
    let long = transfer_with_memo(&chain, 0, vec![b'x'; MAX_MEMO_BYTES + 1]);
    let block = build(
        &chain,
        &chain.genesis_hash,
        vec![long.clone()],
        Mutation::Nothing,
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert!(
        matches!(&v.body, Err(BlockError::MemoTooLong { txid, len, max })
            if *txid == long.txid() && *len == MAX_MEMO_BYTES + 1 && *max == MAX_MEMO_BYTES),
        "{v:?}"
    );
    // The memo rule is the body's alone: the transfer is otherwise valid.
    assert_eq!(v.state, Ok(()));

    let longest = transfer_with_memo(&chain, 0, vec![b'x'; MAX_MEMO_BYTES]);
    let block = build(
        &chain,
        &chain.genesis_hash,
        vec![longest],
        Mutation::Nothing,
    );
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn duplicate_transfer() {
    let chain = TestChain::new();
    let transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    let block = build(
        &chain,
        &chain.genesis_hash,
        Vec::new(),
        Mutation::Transfers(vec![transfer.clone(), transfer.clone()]),
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert!(
        matches!(&v.body, Err(BlockError::DuplicateTransfer(txid)) if *txid == transfer.txid()),
        "{v:?}"
    );
    // Replayed in order, the copy also reuses the nonce.
    assert!(matches!(
        v.state,
        Err(BlockError::BadNonce {
            expected: 1,
            found: 0,
            ..
        })
    ));
}

// ---- state rules ----

/// A block over `transfers` (which may be invalid) on `chain`'s genesis; asserts that the
/// header and body checks pass and returns the state check's result.
fn state_error_on_genesis(chain: &TestChain, transfers: Vec<Transfer>) -> Result<(), BlockError> {
    let block = build(
        chain,
        &chain.genesis_hash,
        Vec::new(),
        Mutation::Transfers(transfers),
    );
    let v = verdict(chain, &block);
    assert_eq!(v.header, Ok(()), "{v:?}");
    assert_eq!(v.body, Ok(()), "{v:?}");
    v.state
}

#[test]
fn bad_state_root() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let transfers = vec![chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0)];
    let parent_root = chain.entry_of(&genesis).header.state_root;
    let block = build(
        &chain,
        &genesis,
        transfers,
        Mutation::StateRoot(parent_root),
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert_eq!(v.body, Ok(()));
    assert!(
        matches!(v.state, Err(BlockError::BadStateRoot { found, computed })
            if found == parent_root && computed != parent_root),
        "{v:?}"
    );
}

#[test]
fn bad_signature() {
    let chain = TestChain::new();
    let mut transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    transfer.signature.0[10] ^= 1;
    let txid = transfer.txid();
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::BadSignature { txid: t }) if t == txid),
        "{result:?}"
    );
}

#[test]
fn bad_signature_when_a_field_is_changed_after_signing() {
    let chain = TestChain::new();
    let mut transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    transfer.amount = Amount::from_units(101);
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::BadSignature { .. })),
        "{result:?}"
    );
}

#[test]
fn transfer_signed_for_another_genesis_is_a_bad_signature() {
    let chain = TestChain::new();
    let other_genesis = BlockHash([0x42; 32]);
    assert_ne!(other_genesis, chain.genesis_hash);
    let transfer = UnsignedTransfer {
        chain_id: chain.spec.chain_id(),
        to: test_address(1),
        amount: Amount::from_units(100),
        fee: Amount::from_units(1),
        nonce: 0,
        memo: Vec::new(),
    }
    .sign(&test_keypair(0), &other_genesis, &[7u8; 32]);
    let txid = transfer.txid();
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::BadSignature { txid: t }) if t == txid),
        "{result:?}"
    );
}

#[test]
fn wrong_chain_id() {
    let chain = TestChain::new();
    let expected_id = chain.spec.chain_id();
    let transfer = UnsignedTransfer {
        chain_id: expected_id + 1,
        to: test_address(1),
        amount: Amount::from_units(100),
        fee: Amount::from_units(1),
        nonce: 0,
        memo: Vec::new(),
    }
    .sign(&test_keypair(0), &chain.genesis_hash, &[7u8; 32]);
    assert!(transfer.has_valid_signature(&chain.genesis_hash));
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::WrongChainId { expected, found, .. })
            if expected == expected_id && found == expected_id + 1),
        "{result:?}"
    );
}

#[test]
fn bad_nonce() {
    let chain = TestChain::new();
    let transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 1);
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(
            result,
            Err(BlockError::BadNonce {
                expected: 0,
                found: 1,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn insufficient_balance() {
    let chain = TestChain::new();
    let key = 0u8;
    let have = balance(chain.state_at(&chain.genesis_hash), &test_address(key));
    assert!(have > 0);
    // Amount alone fits, amount plus fee does not.
    let transfer = chain.transfer(&test_keypair(key), test_address(1), have, 1, 0);
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::InsufficientBalance { needed, available, .. })
            if needed.as_units() == have + 1 && available.as_units() == have),
        "{result:?}"
    );

    // An unfunded sender has nothing.
    let transfer = chain.transfer(&test_keypair(9), test_address(1), 1, 0, 0);
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::InsufficientBalance { available, .. }) if available == Amount::ZERO),
        "{result:?}"
    );
}

#[test]
fn overflow_of_amount_plus_fee() {
    let chain = TestChain::new();
    let transfer = chain.transfer(&test_keypair(0), test_address(1), u64::MAX, 1, 0);
    let result = state_error_on_genesis(&chain, vec![transfer]);
    assert!(
        matches!(result, Err(BlockError::Overflow { .. })),
        "{result:?}"
    );
}

#[test]
fn overflow_of_recipient_balance() {
    // Units as coins (decimals 0): key 0 holds all but 1000 units of u64::MAX, key 1 the rest.
    let mut file = spec_with("decimals = 8", "decimals = 0").file;
    file.genesis.allocations.truncate(2);
    file.genesis.allocations[0].amount = (u64::MAX - 1000).to_string();
    file.genesis.allocations[1].amount = "1000".to_string();
    let spec = ChainSpec::from_file(file).expect("allocations sum to exactly u64::MAX");
    let subsidy = spec.subsidy_at(1).as_units();
    let mut chain = TestChain::with_spec(spec);
    let genesis = chain.genesis_hash;
    // Key 1 mines a block, so it holds more than key 0's headroom.
    let tip = chain.mine(&genesis, Vec::new(), test_address(1)).hash();
    assert_eq!(
        balance(chain.state_at(&tip), &test_address(1)),
        1000 + subsidy
    );

    let transfer = chain.transfer(&test_keypair(1), test_address(0), 1001, 0, 0);
    let block = build(
        &chain,
        &tip,
        Vec::new(),
        Mutation::Transfers(vec![transfer]),
    );
    let v = verdict(&chain, &block);
    assert_eq!(v.header, Ok(()));
    assert_eq!(v.body, Ok(()));
    assert!(
        matches!(&v.state, Err(BlockError::Overflow { context }) if context.contains("recipient")),
        "{v:?}"
    );

    // Exactly up to u64::MAX is fine.
    let transfer = chain.transfer(&test_keypair(1), test_address(0), 1000, 0, 0);
    let block = build(&chain, &tip, vec![transfer], Mutation::Nothing);
    assert_valid(&verdict(&chain, &block));
}

#[test]
fn wrong_reward() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let transfers = vec![chain.transfer(&test_keypair(0), test_address(1), 100, 7, 0)];
    let expected = chain.spec.subsidy_at(1).as_units() + 7;
    for claimed in [expected + 1, expected - 1, 0] {
        let block = build(
            &chain,
            &genesis,
            transfers.clone(),
            Mutation::Reward(Amount::from_units(claimed)),
        );
        let v = verdict(&chain, &block);
        assert_eq!(v.header, Ok(()));
        assert_eq!(v.body, Ok(()));
        assert!(
            matches!(v.state, Err(BlockError::WrongReward { expected: e, found })
                if e.as_units() == expected && found.as_units() == claimed),
            "{v:?}"
        );
    }
}

// ---- error classification ----

#[test]
fn peer_fault_classification() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let far = u32::try_from(clock_for(&chain, &genesis)).unwrap() + 10_000;
    let early = build(&chain, &genesis, Vec::new(), Mutation::Time(far));
    let err = verdict(&chain, &early).header.unwrap_err();
    assert!(matches!(err, BlockError::TimeTooFarAhead { .. }));
    assert!(!err.is_peer_fault());
    assert!(!err.is_permanent());

    let mut transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    transfer.signature.0[0] ^= 0x80;
    let err = state_error_on_genesis(&chain, vec![transfer]).unwrap_err();
    assert!(matches!(err, BlockError::BadSignature { .. }));
    assert!(err.is_peer_fault());
    assert!(err.is_permanent());
}

// ---- several transfers by one sender ----

#[test]
fn whole_balance_spent_in_two_transfers_with_consecutive_nonces() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let sender = test_address(0);
    let have = balance(chain.state_at(&genesis), &sender);
    let (first, fee1, fee2) = (have / 3, 11, 13);
    let transfers = vec![
        chain.transfer(&test_keypair(0), test_address(1), first, fee1, 0),
        chain.transfer(
            &test_keypair(0),
            test_address(2),
            have - first - fee1 - fee2,
            fee2,
            1,
        ),
    ];
    let block = build(&chain, &genesis, transfers, Mutation::Nothing);
    assert_valid(&verdict(&chain, &block));
    chain.add(block.clone());
    let state = chain.state_at(&block.hash());
    let account = state.account(&sender).unwrap().unwrap();
    assert_eq!(account.balance, Amount::ZERO);
    assert_eq!(account.nonce, 2);
    assert_eq!(
        balance(state, &test_address(MINER)),
        balance(chain.state_at(&genesis), &test_address(MINER))
            + chain.spec.subsidy_at(1).as_units()
            + fee1
            + fee2
    );

    // One unit more than the balance fails on the second transfer.
    let transfers = vec![
        chain.transfer(&test_keypair(0), test_address(1), first, fee1, 0),
        chain.transfer(
            &test_keypair(0),
            test_address(2),
            have - first - fee1 - fee2 + 1,
            fee2,
            1,
        ),
    ];
    let result = state_error_on_genesis(&chain, transfers);
    assert!(
        matches!(result, Err(BlockError::InsufficientBalance { .. })),
        "{result:?}"
    );
}

#[test]
fn second_transfer_reusing_the_nonce_is_a_bad_nonce() {
    let chain = TestChain::new();
    let first = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    let second = chain.transfer(&test_keypair(0), test_address(2), 200, 1, 0);
    assert_ne!(first.txid(), second.txid(), "not a duplicate");
    let txid = second.txid();
    let result = state_error_on_genesis(&chain, vec![first, second]);
    assert!(
        matches!(result, Err(BlockError::BadNonce { txid: t, expected: 1, found: 0 }) if t == txid),
        "{result:?}"
    );
}

// ---- properties ----

/// One planned transfer: sender key, recipient key (4 is unfunded), the share of the
/// sender's balance after the fee to send (per mille), and the fee.
type Step = (u8, u8, u16, u64);

fn plan() -> impl Strategy<Value = Vec<(u8, Vec<Step>)>> {
    let step = (0u8..4, 0u8..5, 0u16..=1000, 0u64..1000);
    prop::collection::vec((0u8..5, prop::collection::vec(step, 0..4)), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random transfers that stay within balance always make valid blocks, balances follow
    /// a simple model, and the total supply is the genesis allocations plus the subsidies.
    #[test]
    fn valid_transfer_sequences_validate_and_conserve_supply(plan in plan()) {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let mut model: HashMap<Address, u64> =
            chain.spec.allocations.iter().map(|(a, v)| (*a, v.as_units())).collect();
        let mut nonces = [0u64; 4];
        let mut tip = genesis;
        let mut subsidies = 0u128;
        for (miner, steps) in plan {
            let mut transfers = Vec::new();
            let mut fees = 0u64;
            for (from, to, share, fee) in steps {
                let (sender, recipient) = (test_address(from), test_address(to));
                let have = model.get(&sender).copied().unwrap_or(0);
                let fee = fee.min(have);
                let amount = u64::try_from(u128::from(have - fee) * u128::from(share) / 1000).unwrap();
                transfers.push(chain.transfer(&test_keypair(from), recipient, amount, fee, nonces[usize::from(from)]));
                nonces[usize::from(from)] += 1;
                *model.get_mut(&sender).unwrap() -= amount + fee;
                *model.entry(recipient).or_default() += amount;
                fees += fee;
            }
            let mut block = chain.template(&tip, transfers, test_address(miner));
            solve(&mut block.header);
            let v = verdict(&chain, &block);
            prop_assert_eq!(&v.header, &Ok(()));
            prop_assert_eq!(&v.body, &Ok(()));
            prop_assert_eq!(&v.state, &Ok(()));
            let subsidy = chain.spec.subsidy_at(block.header.height).as_units();
            subsidies += u128::from(subsidy);
            *model.entry(test_address(miner)).or_default() += subsidy + fees;
            tip = block.hash();
            chain.add(block);
        }
        let state = chain.state_at(&tip);
        for (address, expected) in &model {
            prop_assert_eq!(balance(state, address), *expected);
        }
        for key in 0..4u8 {
            let nonce = state.account(&test_address(key)).unwrap().map_or(0, |a| a.nonce);
            prop_assert_eq!(nonce, nonces[usize::from(key)]);
        }
        let genesis_total: u128 =
            chain.spec.allocations.iter().map(|(_, v)| u128::from(v.as_units())).sum();
        let total: u128 = state.accounts.values().map(|a| u128::from(a.balance.as_units())).sum();
        prop_assert_eq!(total, genesis_total + subsidies);
    }
}
