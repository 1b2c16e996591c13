//! The store shows readers only what is durable, and comes back from a write failure by
//! reopening from disk (the full-disk process test, `tests/full_disk.rs`, drives the same
//! path with a real file system running out of space).
#![allow(clippy::disallowed_methods)]

use cairn::core::consensus::validation::check_state;
use cairn::core::testkit::{test_address, test_keypair, TestChain};
use cairn::node::chain::open_chain;
use cairn::node::store::StoreError;

/// A clock comfortably after every test block's timestamp.
const NOW: u64 = 1_900_000_000;

/// A block connected in the store but not yet flushed is invisible to readers (tip, height
/// index, transfer index, balances, history); the flush shows all of it at once.
#[test]
fn readers_see_a_connected_block_only_once_it_is_flushed() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let first = chain.extend(&genesis, 1, test_address(0)).remove(0);
    let transfer = chain.transfer(&test_keypair(0), test_address(7), 5_000, 10, 0);
    let txid = transfer.txid();
    let second = chain.mine(&first.hash(), vec![transfer], test_address(0));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut manager = open_chain(dir.path(), chain.spec.clone()).expect("open");
    manager.submit_block(first.clone(), NOW).expect("valid");
    let store = manager.store().clone();
    let before = store.account(&test_address(7)).unwrap();

    // Connect the second block by hand, as the manager does, without the flush.
    let parent = store.index_entry(&first.hash()).unwrap().unwrap();
    let change = check_state(
        &store,
        parent.header.state_root,
        &second,
        &chain.spec,
        &genesis,
    )
    .expect("valid state");
    let entry = parent
        .child(second.header, &chain.spec.asert_params())
        .expect("entry");
    store.put_block(&second, &entry).unwrap();
    store.connect(&second, &entry, &change).unwrap();

    assert_eq!(store.tip().unwrap().height(), 1);
    assert_eq!(store.hash_at_height(2).unwrap(), None);
    assert_eq!(store.tx_location(&txid).unwrap(), None);
    assert_eq!(store.account(&test_address(7)).unwrap(), before);
    assert!(store
        .address_history(&test_address(7), None, 10)
        .unwrap()
        .is_empty());

    store.flush().unwrap();
    assert_eq!(store.tip().unwrap().hash(), second.hash());
    assert_eq!(store.hash_at_height(2).unwrap(), Some(second.hash()));
    assert_eq!(store.tx_location(&txid).unwrap().map(|l| l.height), Some(2));
    assert_eq!(
        store
            .account(&test_address(7))
            .unwrap()
            .map(|a| a.balance.as_units()),
        Some(5_000)
    );
    assert_eq!(
        store
            .address_history(&test_address(7), None, 10)
            .unwrap()
            .len(),
        1
    );
}

/// A store closed after a failure answers `Closed` (never what it held in memory), and
/// reopens from disk in the same process: the chain manager takes the tip on disk and
/// goes on connecting blocks.
#[test]
fn a_store_closed_after_a_failure_reopens_from_disk_and_writes_again() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 3, test_address(0));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut manager = open_chain(dir.path(), chain.spec.clone()).expect("open");
    for block in &blocks[..2] {
        manager.submit_block(block.clone(), NOW).expect("valid");
    }
    let reader = manager.store().clone();

    manager.store().close_after_failure();
    assert!(matches!(reader.tip(), Err(StoreError::Closed)));
    assert!(matches!(reader.hash_at_height(1), Err(StoreError::Closed)));
    assert!(manager.submit_block(blocks[2].clone(), NOW).is_err());

    let tip = manager.store().reopen().expect("reopen");
    assert_eq!(tip.hash(), blocks[1].hash());
    assert_eq!(manager.reload().unwrap().hash(), blocks[1].hash());
    assert_eq!(reader.tip().unwrap().hash(), blocks[1].hash());
    manager.store().check_writes().expect("writes again");
    manager.submit_block(blocks[2].clone(), NOW).expect("valid");
    assert_eq!(reader.tip().unwrap().hash(), blocks[2].hash());
}

/// A store another process (or handle) holds is refused as `Locked`, not as a sled text; a
/// store whose bytes are damaged is reported corrupt.
#[test]
fn a_store_in_use_is_locked_and_a_damaged_one_corrupt() {
    use cairn::node::store::Store;
    let chain = TestChain::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = open_chain(dir.path(), chain.spec.clone()).expect("open");
    match Store::open(dir.path()) {
        Err(StoreError::Locked(path)) => assert_eq!(path, dir.path()),
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a store in use opened twice"),
    }
    drop(manager);
    Store::open(dir.path()).expect("free again once the first is dropped");

    // Every byte of the database file overwritten: sled finds the damage.
    let db = dir.path().join("db");
    let len = std::fs::metadata(&db).expect("db file").len();
    std::fs::write(&db, vec![0xa5; len as usize]).expect("overwrite");
    let opened = open_chain(dir.path(), chain.spec.clone());
    let error = opened.err().expect("a damaged store does not open");
    assert!(error.is_corrupt(), "{error:?}");
}
