//! The index stage (`src/node/store/indexes.rs`): a node that syncs leaves its transfer index
//! and address histories behind the tip and catches them up afterwards to exactly the
//! records a node following the chain writes with each block; reorgs and reopens keep the
//! records and the marker in agreement.
#![allow(clippy::disallowed_methods)]

use cairn::core::primitives::{Address, Block, Txid};
use cairn::core::testkit::{test_address, test_keypair, TestChain};
use cairn::node::chain::{open_chain, verify_best_chain, ChainManager};
use cairn::node::store::Store;

/// A clock comfortably after every test block's timestamp.
const NOW: u64 = 1_900_000_000;

/// `count` blocks on `parent`, each with two transfers from test accounts 0 and 1 (nonces
/// from `first_nonce`) to addresses 5..9, paying the reward to `miner`.
fn blocks_with_transfers(
    chain: &mut TestChain,
    parent: &cairn::core::primitives::BlockHash,
    count: u64,
    first_nonce: u64,
    amount: u64,
    miner: Address,
) -> Vec<Block> {
    let mut tip = *parent;
    let mut out = Vec::new();
    for i in 0..count {
        let nonce = first_nonce + i;
        let transfers = vec![
            chain.transfer(
                &test_keypair(0),
                test_address(5 + (i % 3) as u8),
                amount,
                10,
                nonce,
            ),
            chain.transfer(&test_keypair(1), test_address(8), amount + 1, 10, nonce),
        ];
        let block = chain.mine(&tip, transfers, miner);
        tip = block.hash();
        out.push(block);
    }
    out
}

fn txids(blocks: &[Block]) -> Vec<Txid> {
    blocks
        .iter()
        .flat_map(|b| b.transfers.iter().map(|t| t.txid()))
        .collect()
}

/// Every address a test block touches.
fn addresses() -> Vec<Address> {
    (0..10).map(test_address).collect()
}

/// What a reader sees of the indexes: every transfer's location, every address's history.
fn indexes_seen(store: &Store, txids: &[Txid]) -> String {
    let mut seen = String::new();
    for txid in txids {
        seen += &format!("{txid}: {:?}\n", store.tx_location(txid).unwrap());
    }
    for address in addresses() {
        seen += &format!(
            "{address:?}: {:?}\n",
            store.address_history(&address, None, 1000).unwrap()
        );
    }
    seen
}

fn submit_all(manager: &mut ChainManager, blocks: &[Block]) {
    for block in blocks {
        manager.submit_block(block.clone(), NOW).expect("valid");
    }
}

fn catch_up(store: &Store) -> u32 {
    let mut steps = 0;
    while store.index_step(2).expect("index step") > 0 {
        steps += 1;
        assert!(steps < 100, "the index stage does not finish");
    }
    steps
}

#[test]
fn an_index_left_behind_by_sync_catches_up_to_what_a_following_node_writes() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = blocks_with_transfers(&mut chain, &genesis, 7, 0, 1_000, test_address(2));
    let all = txids(&blocks);

    let followed = tempfile::tempdir().unwrap();
    let mut follower = open_chain(followed.path(), chain.spec.clone()).unwrap();
    submit_all(&mut follower, &blocks);
    assert_eq!(follower.store().indexed_height().unwrap(), 7);
    assert_eq!(follower.store().index_lag(), 0);
    let expected = indexes_seen(follower.store(), &all);
    assert!(expected.contains("height: 7"), "{expected}");

    let synced = tempfile::tempdir().unwrap();
    let mut syncer = open_chain(synced.path(), chain.spec.clone()).unwrap();
    syncer.set_catching_up(true);
    submit_all(&mut syncer, &blocks);
    let store = syncer.store().clone();
    assert_eq!(store.tip().unwrap().height(), 7);
    assert_eq!(
        store.indexed_height().unwrap(),
        0,
        "nothing indexed while catching up"
    );
    assert_eq!(store.index_lag(), 7);
    for txid in &all {
        assert_eq!(store.tx_location(txid).unwrap(), None);
    }
    assert!(store
        .address_history(&test_address(8), None, 10)
        .unwrap()
        .is_empty());
    verify_best_chain(&store, &chain.spec, |_, _| {}).expect("a lagging index is consistent");

    // Caught up, a block connected while the marker is behind still waits for the stage.
    syncer.set_catching_up(false);
    let mut later_chain = chain.clone();
    let next = blocks_with_transfers(
        &mut later_chain,
        &blocks[6].hash(),
        1,
        7,
        1_000,
        test_address(2),
    );
    submit_all(&mut syncer, &next);
    assert_eq!(store.index_lag(), 8);
    assert_eq!(catch_up(&store), 4, "two blocks a step");
    assert_eq!(store.indexed_height().unwrap(), 8);
    submit_all(&mut follower, &next);
    let mut everything = all.clone();
    everything.extend(txids(&next));
    assert_eq!(
        indexes_seen(&store, &everything),
        indexes_seen(follower.store(), &everything)
    );
    verify_best_chain(&store, &chain.spec, |_, _| {}).expect("consistent");

    // Following again: the next block is indexed with its connect.
    let more = blocks_with_transfers(
        &mut later_chain,
        &next[0].hash(),
        1,
        8,
        1_000,
        test_address(2),
    );
    submit_all(&mut syncer, &more);
    assert_eq!(store.indexed_height().unwrap(), 9);
    assert_eq!(store.index_step(2).unwrap(), 0);
}

#[test]
fn a_reorg_takes_back_exactly_the_indexed_blocks_it_disconnects() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let trunk = blocks_with_transfers(&mut chain, &genesis, 1, 0, 1_000, test_address(2));
    // Branch a: 4 blocks; branch b: 5 blocks from the same parent, other transfers.
    let a = blocks_with_transfers(&mut chain, &trunk[0].hash(), 4, 1, 2_000, test_address(2));
    let b = blocks_with_transfers(&mut chain, &trunk[0].hash(), 5, 1, 3_000, test_address(3));

    let dir = tempfile::tempdir().unwrap();
    let mut manager = open_chain(dir.path(), chain.spec.clone()).unwrap();
    submit_all(&mut manager, &trunk);
    manager.set_catching_up(true);
    submit_all(&mut manager, &a);
    let store = manager.store().clone();
    assert_eq!(store.index_step(2).unwrap(), 2);
    assert_eq!(store.indexed_height().unwrap(), 3, "a[0] and a[1] indexed");

    // The switch to b disconnects a[3] and a[2] (not indexed: nothing to remove) and a[1],
    // a[0] (indexed: their records go and the marker moves back with each).
    manager.set_catching_up(false);
    submit_all(&mut manager, &b);
    assert_eq!(store.tip().unwrap().hash(), b[4].hash());
    for txid in txids(&a) {
        assert_eq!(store.tx_location(&txid).unwrap(), None, "branch a is gone");
    }
    // Back at the trunk, the marker was at b's parent: b was indexed with its connects.
    assert_eq!(store.indexed_height().unwrap(), 6);
    let followed = tempfile::tempdir().unwrap();
    let mut follower = open_chain(followed.path(), chain.spec.clone()).unwrap();
    submit_all(&mut follower, &trunk);
    submit_all(&mut follower, &b);
    let mut all = txids(&trunk);
    all.extend(txids(&a));
    all.extend(txids(&b));
    assert_eq!(
        indexes_seen(&store, &all),
        indexes_seen(follower.store(), &all)
    );
    verify_best_chain(&store, &chain.spec, |_, _| {}).expect("consistent");
}

#[test]
fn a_reorg_below_a_lagging_marker_moves_it_back_and_the_stage_indexes_the_new_branch() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let a = blocks_with_transfers(&mut chain, &genesis, 3, 0, 2_000, test_address(2));
    let b = blocks_with_transfers(&mut chain, &genesis, 4, 0, 3_000, test_address(3));

    let dir = tempfile::tempdir().unwrap();
    let mut manager = open_chain(dir.path(), chain.spec.clone()).unwrap();
    manager.set_catching_up(true);
    submit_all(&mut manager, &a);
    let store = manager.store().clone();
    assert_eq!(store.index_step(1).unwrap(), 1);
    // Still catching up: b connects without indexes, and a[0]'s records went with it.
    submit_all(&mut manager, &b);
    assert_eq!(store.indexed_height().unwrap(), 0);
    assert_eq!(store.index_lag(), 4);
    manager.set_catching_up(false);
    catch_up(&store);
    let followed = tempfile::tempdir().unwrap();
    let mut follower = open_chain(followed.path(), chain.spec.clone()).unwrap();
    submit_all(&mut follower, &b);
    let mut all = txids(&a);
    all.extend(txids(&b));
    assert_eq!(
        indexes_seen(&store, &all),
        indexes_seen(follower.store(), &all)
    );
}

#[test]
fn the_marker_and_its_records_survive_a_reopen() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = blocks_with_transfers(&mut chain, &genesis, 5, 0, 1_000, test_address(2));
    let dir = tempfile::tempdir().unwrap();
    {
        let mut manager = open_chain(dir.path(), chain.spec.clone()).unwrap();
        manager.set_catching_up(true);
        submit_all(&mut manager, &blocks);
        assert_eq!(manager.store().index_step(2).unwrap(), 2);
    }
    let manager = open_chain(dir.path(), chain.spec.clone()).unwrap();
    let store = manager.store().clone();
    assert_eq!(store.tip().unwrap().height(), 5);
    assert_eq!(store.indexed_height().unwrap(), 2);
    assert_eq!(store.index_lag(), 3);
    verify_best_chain(&store, &chain.spec, |_, _| {}).expect("consistent after reopen");
    catch_up(&store);
    assert_eq!(store.indexed_height().unwrap(), 5);
    verify_best_chain(&store, &chain.spec, |_, _| {}).expect("consistent");
}
