//! Fork choice and reorganisation on the real store: a node follows the branch with the most
//! work, its state after a reorg equals that of a node that only ever saw the winning branch,
//! and a heavier branch with an invalid block is refused without losing the valid chain.
#![allow(clippy::disallowed_methods)]

use cairn::core::chain::BlockStatus;
use cairn::core::consensus::BlockError;
use cairn::core::primitives::{Amount, Block, BlockHash};
use cairn::core::testkit::{solve, test_address, test_keypair, TestChain};
use cairn::node::chain::{open_chain, verify_best_chain, BlockOutcome, ChainManager, SubmitError};
use tempfile::TempDir;

/// A clock comfortably after every test block's timestamp.
const NOW: u64 = 1_900_000_000;

fn open(chain: &TestChain) -> (TempDir, ChainManager) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = open_chain(dir.path(), chain.spec.clone()).expect("open store");
    (dir, manager)
}

/// Builds `count` blocks on `parent`; each carries a transfer from `sender` so that the two
/// branches leave different balances behind.
fn branch(
    chain: &mut TestChain,
    parent: BlockHash,
    count: usize,
    sender: u8,
    first_nonce: u64,
    miner: u8,
) -> Vec<Block> {
    let mut tip = parent;
    let mut blocks = Vec::new();
    for i in 0..count {
        let transfer = chain.transfer(
            &test_keypair(sender),
            test_address(3),
            1_000 + i as u64,
            10,
            first_nonce + i as u64,
        );
        let block = chain.mine(&tip, vec![transfer], test_address(miner));
        tip = block.hash();
        blocks.push(block);
    }
    blocks
}

fn submit_all(manager: &mut ChainManager, blocks: &[Block]) -> Vec<BlockOutcome> {
    blocks
        .iter()
        .map(|b| manager.submit_block(b.clone(), NOW).expect("valid block"))
        .collect()
}

/// Every account, sorted, as the store holds it.
fn accounts(
    manager: &ChainManager,
) -> Vec<(
    cairn::core::primitives::Address,
    cairn::core::state::Account,
)> {
    let mut all = manager.store().all_accounts().expect("read accounts");
    all.sort_by_key(|(a, _)| *a);
    all
}

fn assert_same_state(a: &ChainManager, b: &ChainManager) {
    assert_eq!(a.tip().hash(), b.tip().hash(), "same tip");
    assert_eq!(
        a.tip().header.state_root,
        b.tip().header.state_root,
        "same state root"
    );
    assert_eq!(accounts(a), accounts(b), "same accounts");
    for manager in [a, b] {
        verify_best_chain(manager.store(), &manager.spec().clone(), |_, _| {})
            .expect("the stored chain replays from genesis");
    }
}

#[test]
fn heavier_branch_wins_and_state_equals_a_fresh_node_on_that_branch() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let branch_a = branch(&mut chain, genesis, 10, 0, 0, 0);
    let branch_b = branch(&mut chain, genesis, 12, 1, 0, 1);

    let (_dir, mut node) = open(&chain);
    submit_all(&mut node, &branch_a);
    assert_eq!(node.tip().hash(), branch_a[9].hash());

    // B's first ten blocks have no more work than A: kept as a side branch.
    let outcomes = submit_all(&mut node, &branch_b);
    assert!(outcomes[..10]
        .iter()
        .all(|o| *o == BlockOutcome::SideBranch));
    assert_eq!(
        outcomes[10],
        BlockOutcome::Reorganized {
            tip: chain.entry_of(&branch_b[10].hash()).clone(),
            fork_height: 0,
            disconnected: 10,
            connected: 11,
        }
    );
    assert!(matches!(outcomes[11], BlockOutcome::Extended { .. }));

    let (_dir_b, mut fresh_b) = open(&chain);
    submit_all(&mut fresh_b, &branch_b);
    assert_same_state(&node, &fresh_b);
    // A's transfers are gone: sender 0 is back to its genesis balance and nonce.
    let sender_a = node
        .store()
        .account(&test_address(0))
        .unwrap()
        .expect("funded at genesis");
    assert_eq!(sender_a.nonce, 0);
    assert_eq!(
        sender_a.balance,
        Amount::from_units(1_000_000 * 100_000_000)
    );

    // A grows to 13 blocks: more work than B's 12, so the node switches back.
    let last_a = branch_a[9].hash();
    let more_a = branch(&mut chain, last_a, 3, 0, 10, 0);
    let outcomes = submit_all(&mut node, &more_a);
    assert_eq!(outcomes[0], BlockOutcome::SideBranch, "A11: 11 blocks < 12");
    assert_eq!(
        outcomes[1],
        BlockOutcome::SideBranch,
        "A12: equal work keeps B"
    );
    assert!(matches!(
        outcomes[2],
        BlockOutcome::Reorganized {
            fork_height: 0,
            disconnected: 12,
            connected: 13,
            ..
        }
    ));
    let (_dir_a, mut fresh_a) = open(&chain);
    submit_all(&mut fresh_a, &branch_a);
    submit_all(&mut fresh_a, &more_a);
    assert_same_state(&node, &fresh_a);
}

#[test]
fn reorg_survives_reopening_the_store() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let branch_a = branch(&mut chain, genesis, 4, 0, 0, 0);
    let branch_b = branch(&mut chain, branch_a[1].hash(), 4, 1, 0, 1);
    let dir = tempfile::tempdir().unwrap();
    {
        let mut node = open_chain(dir.path(), chain.spec.clone()).unwrap();
        submit_all(&mut node, &branch_a);
        submit_all(&mut node, &branch_b);
        assert_eq!(node.tip().hash(), branch_b[3].hash());
    }
    let node = open_chain(dir.path(), chain.spec.clone()).unwrap();
    assert_eq!(node.tip().hash(), branch_b[3].hash());
    assert_eq!(node.tip().height(), 6);
    let (_fresh_dir, mut fresh) = open(&chain);
    submit_all(&mut fresh, &branch_a[..2]);
    submit_all(&mut fresh, &branch_b);
    assert_same_state(&node, &fresh);
}

/// A block that claims one unit more reward than allowed, otherwise well formed.
fn greedy_child(chain: &TestChain, parent: &BlockHash) -> Block {
    let mut block = chain.template(parent, Vec::new(), test_address(2));
    block.reward = block.reward.checked_add(Amount::from_units(1)).unwrap();
    block.header.tx_root = block.compute_tx_root();
    solve(&mut block.header);
    block
}

#[test]
fn heavier_branch_with_an_invalid_block_is_refused_and_the_valid_chain_kept() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let branch_a = branch(&mut chain, genesis, 10, 0, 0, 0);
    let branch_b = branch(&mut chain, genesis, 10, 1, 0, 1);
    let bad = greedy_child(&chain, &branch_b[9].hash());

    let (_dir, mut node) = open(&chain);
    submit_all(&mut node, &branch_a);
    submit_all(&mut node, &branch_b);
    let before = accounts(&node);
    // B + bad has more work than A: the node tries B, meets the bad block, and returns to A.
    let err = node.submit_block(bad.clone(), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            SubmitError::Invalid { hash, error: BlockError::WrongReward { .. } } if *hash == bad.hash()
        ),
        "{err}"
    );
    assert_eq!(node.tip().hash(), branch_a[9].hash());
    assert_eq!(accounts(&node), before, "state is back to branch A's");
    verify_best_chain(node.store(), &chain.spec, |_, _| {}).unwrap();
    let entry = node.store().index_entry(&bad.hash()).unwrap().unwrap();
    assert!(matches!(entry.status, BlockStatus::Invalid { .. }));

    // Resubmitting it, or a child of it, is refused at once.
    assert!(matches!(
        node.submit_block(bad.clone(), NOW),
        Err(SubmitError::Invalid {
            error: BlockError::InvalidAncestor(_),
            ..
        })
    ));
    let mut child = chain.template(&branch_b[9].hash(), Vec::new(), test_address(2));
    child.header.prev_hash = bad.hash();
    child.header.height = bad.header.height + 1;
    solve(&mut child.header);
    assert!(matches!(
        node.submit_block(child, NOW),
        Err(SubmitError::Invalid {
            error: BlockError::InvalidAncestor(_),
            ..
        })
    ));
}

#[test]
fn invalid_block_on_the_tip_is_refused_without_moving_the_tip() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = branch(&mut chain, genesis, 3, 0, 0, 0);
    let (_dir, mut node) = open(&chain);
    submit_all(&mut node, &blocks);
    let tip = node.tip().clone();
    let bad = greedy_child(&chain, &tip.hash());
    assert!(node.submit_block(bad, NOW).is_err());
    assert_eq!(node.tip(), &tip);
    verify_best_chain(node.store(), &chain.spec, |_, _| {}).unwrap();
}

#[test]
fn orphan_and_duplicate_blocks_are_reported() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = branch(&mut chain, genesis, 2, 0, 0, 0);
    let (_dir, mut node) = open(&chain);
    assert!(matches!(
        node.submit_block(blocks[1].clone(), NOW),
        Err(SubmitError::Invalid {
            error: BlockError::UnknownParent(_),
            ..
        })
    ));
    submit_all(&mut node, &blocks[..1]);
    assert_eq!(
        node.submit_block(blocks[0].clone(), NOW).unwrap(),
        BlockOutcome::AlreadyKnown
    );
}

/// The transfer index and address history describe the best chain: a reorg takes the losing
/// branch's entries out and puts the winner's in.
#[test]
fn transfer_index_and_address_history_follow_the_best_chain() {
    use cairn::node::store::{HistoryItem, TxLocation};
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let branch_a = branch(&mut chain, genesis, 2, 0, 0, 0);
    let branch_b = branch(&mut chain, genesis, 3, 1, 0, 1);
    let (_dir, mut node) = open(&chain);
    submit_all(&mut node, &branch_a);
    let store = node.store().clone();

    let txid_a = branch_a[1].transfers[0].txid();
    assert_eq!(
        store.tx_location(&txid_a).unwrap(),
        Some(TxLocation {
            block: branch_a[1].hash(),
            height: 2,
            position: 0
        })
    );
    // Recipient 3 got one transfer per block; miner 0 one reward per block. Newest first.
    let recipient = store.address_history(&test_address(3), None, 10).unwrap();
    assert_eq!(
        recipient,
        vec![
            (
                2,
                HistoryItem::Transfer {
                    txid: txid_a,
                    block: branch_a[1].hash()
                }
            ),
            (
                1,
                HistoryItem::Transfer {
                    txid: branch_a[0].transfers[0].txid(),
                    block: branch_a[0].hash()
                }
            ),
        ]
    );
    let miner = store.address_history(&test_address(0), None, 10).unwrap();
    // Miner 0 is also the sender on branch A: per block a reward (position 0) and a transfer.
    assert_eq!(miner.len(), 4);
    assert_eq!(
        miner[1],
        (
            2,
            HistoryItem::Reward {
                block: branch_a[1].hash()
            }
        )
    );
    // Paging: below height 2, at most one entry.
    let page = store.address_history(&test_address(3), Some(2), 1).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, 1);
    // A cursor inside one block's record (miner 0 has a reward and a transfer in each):
    // pages of one item walk it without gaps or repeats.
    let mut cursor = None;
    let mut walked = Vec::new();
    loop {
        let page = store
            .address_history_page(&test_address(0), cursor, 1)
            .unwrap();
        let Some(&(height, position, _)) = page.first() else {
            break;
        };
        walked.push((height, position));
        cursor = Some((height, position));
    }
    assert_eq!(walked, vec![(2, 1), (2, 0), (1, 1), (1, 0)]);

    submit_all(&mut node, &branch_b);
    assert_eq!(node.tip().hash(), branch_b[2].hash());
    assert_eq!(
        store.tx_location(&txid_a).unwrap(),
        None,
        "A's transfer left the index"
    );
    assert!(store
        .address_history(&test_address(0), None, 10)
        .unwrap()
        .is_empty());
    let recipient = store.address_history(&test_address(3), None, 10).unwrap();
    assert_eq!(recipient.len(), 3);
    assert!(recipient.iter().all(|(height, item)| matches!(
        item,
        HistoryItem::Transfer { block, .. } if *block == branch_b[*height as usize - 1].hash()
    )));
    let txid_b = branch_b[2].transfers[0].txid();
    assert_eq!(
        store.tx_location(&txid_b).unwrap().map(|l| l.block),
        Some(branch_b[2].hash())
    );
}
