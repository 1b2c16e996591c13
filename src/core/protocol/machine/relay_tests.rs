//! Unit tests of compact block relay (`relay`): rebuilt blocks, transfers fetched from the
//! relayer, the fallbacks, blame, and serving a block's transfers.
use super::tests::{
    banned, connect, feed, feed_at, genesis_status, node, requests, score_of, verdict, Node, NOW,
};
use super::*;
use crate::core::chain::memory::MemoryChainStore;
use crate::core::primitives::{Amount, Transfer};
use crate::core::protocol::compact::{CompactBlock, PartialBlock};
use crate::core::testkit::{solve, test_address, test_keypair, TestChain};

/// A valid child of genesis with one transfer from each of test keys 0, 1 and 2.
fn block_of_three(chain: &mut TestChain) -> Block {
    let genesis = chain.genesis_hash;
    let transfers = (0..3)
        .map(|i| chain.transfer(&test_keypair(i), test_address(3), 100, 1, 0))
        .collect();
    chain.mine(&genesis, transfers, test_address(0))
}

/// A node at genesis with `peer` connected, its chain, and a block of three transfers for it.
fn setup(peer: &'static str) -> (TestChain, Block, Node) {
    let mut chain = TestChain::new();
    let block = block_of_three(&mut chain);
    let mut node = node(&chain);
    let _ = connect(&mut node, peer, genesis_status(&chain));
    (chain, block, node)
}

/// `block` as a compact block rebuilt from `held`.
fn rebuilt(block: &Block, held: &[Transfer]) -> PartialBlock {
    let pairs: Vec<(Txid, Transfer)> = held.iter().map(|t| (t.txid(), t.clone())).collect();
    PartialBlock::rebuild(CompactBlock::of(block), pairs.iter().map(|(id, t)| (id, t)))
}

fn gossip(node: &mut Node, peer: &'static str, partial: PartialBlock) -> Vec<Action<&'static str>> {
    feed(node, Event::GossipCompact { peer, partial })
}

fn answer(
    node: &mut Node,
    peer: &'static str,
    id: u64,
    response: SyncResponse,
) -> Vec<Action<&'static str>> {
    feed(node, Event::Response { peer, id, response })
}

/// The one relay request among `out`: its id and what it asks.
fn relay_request(out: &[Action<&'static str>]) -> (u64, SyncRequest) {
    let asked: Vec<_> = requests(out)
        .into_iter()
        .filter(|(_, _, r)| {
            matches!(
                r,
                SyncRequest::GetBlockTransfers { .. } | SyncRequest::GetBlocks { .. }
            )
        })
        .collect();
    assert_eq!(asked.len(), 1, "one relay request: {out:?}");
    let (_, id, request) = asked.into_iter().next().expect("one");
    (id, request)
}

#[test]
fn a_compact_block_whose_transfers_are_all_held_connects_at_once() {
    let (_, block, mut node) = setup("relayer");
    let out = gossip(&mut node, "relayer", rebuilt(&block, &block.transfers));
    assert_eq!(verdict(&out), Some(Verdict::Accept), "{out:?}");
    assert!(requests(&out).is_empty(), "{out:?}");
    assert_eq!(node.1.tip().hash(), block.hash());
}

#[test]
fn missing_transfers_are_asked_of_the_relayer_and_complete_the_block() {
    let (_, block, mut node) = setup("relayer");
    let held = [block.transfers[0].clone(), block.transfers[2].clone()];
    let out = gossip(&mut node, "relayer", rebuilt(&block, &held));
    assert_eq!(verdict(&out), None, "no verdict before the block is whole");
    let (id, request) = relay_request(&out);
    assert_eq!(
        request,
        SyncRequest::GetBlockTransfers {
            block: block.hash(),
            indexes: vec![1],
        }
    );
    let out = answer(
        &mut node,
        "relayer",
        id,
        SyncResponse::BlockTransfers(vec![block.transfers[1].clone()]),
    );
    assert_eq!(verdict(&out), Some(Verdict::Accept), "{out:?}");
    assert_eq!(node.1.tip().hash(), block.hash());
    assert_eq!(score_of(&node, "relayer"), 0);
}

#[test]
fn a_transfer_that_is_not_the_blocks_costs_score_and_the_block_is_fetched_whole() {
    let (chain, block, mut node) = setup("relayer");
    let held = [block.transfers[0].clone(), block.transfers[2].clone()];
    let (id, _) = relay_request(&gossip(&mut node, "relayer", rebuilt(&block, &held)));
    let stranger = chain.transfer(&test_keypair(3), test_address(0), 5, 1, 0);
    let out = answer(
        &mut node,
        "relayer",
        id,
        SyncResponse::BlockTransfers(vec![stranger]),
    );
    assert!(score_of(&node, "relayer") > 0, "{out:?}");
    let (id, request) = relay_request(&out);
    assert_eq!(
        request,
        SyncRequest::GetBlocks {
            hashes: vec![block.hash()]
        }
    );
    let out = answer(
        &mut node,
        "relayer",
        id,
        SyncResponse::Blocks(vec![block.clone()]),
    );
    assert_eq!(verdict(&out), Some(Verdict::Accept), "{out:?}");
    assert_eq!(node.1.tip().hash(), block.hash());
}

#[test]
fn a_short_id_collision_costs_a_round_trip_and_no_one_is_blamed() {
    let (chain, block, mut node) = setup("relayer");
    // A held transfer that takes slot 1's short id (as a collision would) but is another.
    let impostor = chain.transfer(&test_keypair(1), test_address(3), 99, 1, 0);
    let pairs = [
        (block.transfers[0].txid(), block.transfers[0].clone()),
        (block.transfers[1].txid(), impostor),
        (block.transfers[2].txid(), block.transfers[2].clone()),
    ];
    let partial = PartialBlock::rebuild(
        CompactBlock::of(&block),
        pairs.iter().map(|(id, t)| (id, t)),
    );
    assert!(partial.is_complete());
    let out = gossip(&mut node, "relayer", partial);
    assert_eq!(verdict(&out), None, "{out:?}");
    let (id, request) = relay_request(&out);
    assert!(
        matches!(request, SyncRequest::GetBlocks { .. }),
        "{request:?}"
    );
    let out = answer(
        &mut node,
        "relayer",
        id,
        SyncResponse::Blocks(vec![block.clone()]),
    );
    assert_eq!(verdict(&out), Some(Verdict::Accept), "{out:?}");
    assert_eq!(score_of(&node, "relayer"), 0);
}

#[test]
fn a_relayer_without_the_block_then_a_failed_fetch_ends_in_ignore_and_a_headers_request() {
    let (_, block, mut node) = setup("relayer");
    let held = &block.transfers[..2];
    let (id, _) = relay_request(&gossip(&mut node, "relayer", rebuilt(&block, held)));
    // "Not here": the whole block is asked for next.
    let out = answer(
        &mut node,
        "relayer",
        id,
        SyncResponse::BlockTransfers(Vec::new()),
    );
    let (id, request) = relay_request(&out);
    assert!(
        matches!(request, SyncRequest::GetBlocks { .. }),
        "{request:?}"
    );
    // That fails: ignored, nobody blamed, and the relayer's headers are asked for.
    let out = feed(
        &mut node,
        Event::RequestFailed {
            peer: "relayer",
            id,
        },
    );
    assert_eq!(verdict(&out), Some(Verdict::Ignore), "{out:?}");
    assert!(requests(&out)
        .iter()
        .any(|(p, _, r)| *p == "relayer" && matches!(r, SyncRequest::GetHeaders { .. })));
    assert_eq!(score_of(&node, "relayer"), 0);
    assert_eq!(node.1.tip().height(), 0);
}

#[test]
fn a_stalled_transfers_request_times_out_into_a_block_request() {
    let (_, block, mut node) = setup("relayer");
    let _ = relay_request(&gossip(
        &mut node,
        "relayer",
        rebuilt(&block, &block.transfers[1..]),
    ));
    let later = NOW + ProtocolConfig::default().request_timeout_ms + 1;
    let out = feed_at(&mut node, Event::Tick, later);
    let (_, request) = relay_request(&out);
    assert_eq!(
        request,
        SyncRequest::GetBlocks {
            hashes: vec![block.hash()]
        }
    );
}

#[test]
fn an_invalid_compact_block_completed_by_its_relayer_gets_the_relayer_banned() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let good: Vec<Transfer> = (0..3)
        .map(|i| chain.transfer(&test_keypair(i), test_address(3), 100, 1, 0))
        .collect();
    let mut block = chain.template(&genesis, good, test_address(0));
    block.transfers[1].amount = Amount::from_units(101); // signed for 100
    block.header.tx_root = block.compute_tx_root();
    solve(&mut block.header);
    let mut node = node(&chain);
    let _ = connect(&mut node, "evil", genesis_status(&chain));
    let held = [block.transfers[0].clone(), block.transfers[2].clone()];
    let (id, _) = relay_request(&gossip(&mut node, "evil", rebuilt(&block, &held)));
    let out = answer(
        &mut node,
        "evil",
        id,
        SyncResponse::BlockTransfers(vec![block.transfers[1].clone()]),
    );
    assert_eq!(verdict(&out), Some(Verdict::Reject), "{out:?}");
    assert!(banned(&out, "evil"), "{out:?}");
    assert_eq!(node.1.tip().height(), 0);
}

#[test]
fn a_compact_block_without_proof_of_work_is_rejected_before_any_request() {
    let mut chain = TestChain::new();
    let mut block = block_of_three(&mut chain);
    while crate::core::consensus::validation::check_proof_of_work(&block.header).is_ok() {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    let mut node = node(&chain);
    let _ = connect(&mut node, "evil", genesis_status(&chain));
    let out = gossip(&mut node, "evil", rebuilt(&block, &[]));
    assert_eq!(verdict(&out), Some(Verdict::Reject));
    assert!(banned(&out, "evil"), "{out:?}");
    assert!(requests(&out).is_empty(), "{out:?}");
}

#[test]
fn at_most_so_many_compact_blocks_wait_at_once() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let mut node = node(&chain);
    let mut waiting = 0;
    let peers: Vec<&'static str> = (0..=MAX_RELAYS_IN_FLIGHT)
        .map(|i| &*Box::leak(format!("relayer-{i}").into_boxed_str()))
        .collect();
    for (i, peer) in peers.iter().enumerate() {
        let _ = connect(&mut node, peer, genesis_status(&chain));
        // Siblings: each a valid child of genesis with a transfer no one holds.
        let transfer = chain.transfer(&test_keypair(0), test_address(1), 1 + i as u64, 1, 0);
        let mut block = chain.template(&genesis, vec![transfer], test_address(0));
        solve(&mut block.header);
        let out = gossip(&mut node, peer, rebuilt(&block, &[]));
        if verdict(&out).is_none() {
            let _ = relay_request(&out);
            waiting += 1;
        } else {
            assert_eq!(verdict(&out), Some(Verdict::Ignore), "{out:?}");
        }
    }
    assert_eq!(waiting, MAX_RELAYS_IN_FLIGHT);
}

#[test]
fn a_blocks_transfers_are_served_by_position_and_bad_positions_cost_score() {
    let mut chain = TestChain::new();
    let block = block_of_three(&mut chain);
    let mut node = node(&chain);
    let _ = feed(
        &mut node,
        Event::GossipBlock {
            peer: "miner",
            block: block.clone(),
        },
    );
    assert_eq!(node.1.tip().hash(), block.hash());
    let _ = connect(&mut node, "asker", genesis_status(&chain));
    let ask = |node: &mut Node, id, block_hash, indexes| {
        feed(
            node,
            Event::Request {
                peer: "asker",
                id,
                request: SyncRequest::GetBlockTransfers {
                    block: block_hash,
                    indexes,
                },
            },
        )
    };
    let out = ask(&mut node, 1, block.hash(), vec![0, 2]);
    assert!(out.contains(&Action::Respond {
        id: 1,
        response: SyncResponse::BlockTransfers(vec![
            block.transfers[0].clone(),
            block.transfers[2].clone()
        ]),
    }));
    let out = ask(&mut node, 2, BlockHash([9; 32]), vec![0]);
    assert!(out.contains(&Action::Respond {
        id: 2,
        response: SyncResponse::BlockTransfers(Vec::new()),
    }));
    assert_eq!(score_of(&node, "asker"), 0);
    for (id, indexes) in [(3, vec![3]), (4, vec![2, 1])] {
        let out = ask(&mut node, id, block.hash(), indexes);
        assert!(out.contains(&Action::Refuse { id }), "{out:?}");
    }
    assert!(score_of(&node, "asker") > 0);
}

#[test]
fn a_compact_block_far_easier_than_the_tip_needs_gets_no_request() {
    let mut chain = TestChain::new();
    let block = block_of_three(&mut chain);
    // No target is near enough: every block counts as far too easy.
    let config = ProtocolConfig {
        orphan_max_easier: 0,
        ..ProtocolConfig::default()
    };
    let mut node: Node = (
        Protocol::new(config, []),
        ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap(),
    );
    let _ = connect(&mut node, "relayer", genesis_status(&chain));
    assert!(!node.0.worth_rebuilding(&CompactBlock::of(&block), &node.1));
    let out = gossip(&mut node, "relayer", rebuilt(&block, &block.transfers[..2]));
    assert_eq!(verdict(&out), Some(Verdict::Ignore), "{out:?}");
    assert!(requests(&out).is_empty(), "{out:?}");
    // With the default allowance the same block is worth a search.
    let node = super::tests::node(&chain);
    assert!(node.0.worth_rebuilding(&CompactBlock::of(&block), &node.1));
}
