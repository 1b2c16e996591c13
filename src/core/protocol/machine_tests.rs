//! Unit tests of the network state machine: hostile and unlucky peers, one event at a time.
use super::*;
use crate::core::chain::memory::MemoryChainStore;
use crate::core::primitives::{Amount, Block};
use crate::core::testkit::{solve, test_address, test_keypair, TestChain};

const NOW: u64 = 1_800_000_000_000;

type Node = (Protocol<&'static str>, ChainManager<MemoryChainStore>);

fn node(chain: &TestChain) -> Node {
    (
        Protocol::new(ProtocolConfig::default(), []),
        ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap(),
    )
}

fn feed(node: &mut Node, event: Event<&'static str>) -> Vec<Action<&'static str>> {
    node.0.handle(event, &mut node.1, NOW)
}

fn feed_at(node: &mut Node, event: Event<&'static str>, now: u64) -> Vec<Action<&'static str>> {
    node.0.handle(event, &mut node.1, now)
}

fn banned(actions: &[Action<&'static str>], who: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Ban { peer, .. } if *peer == who))
}

fn verdict(actions: &[Action<&'static str>]) -> Option<Verdict> {
    actions.iter().find_map(|a| match a {
        Action::Verdict { verdict, .. } => Some(*verdict),
        _ => None,
    })
}

fn requests(actions: &[Action<&'static str>]) -> Vec<(&'static str, u64, SyncRequest)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Request { peer, id, request } => Some((*peer, *id, request.clone())),
            _ => None,
        })
        .collect()
}

/// Connects `peer` and answers our status request with `status`; returns what followed.
fn connect(node: &mut Node, peer: &'static str, status: Status) -> Vec<Action<&'static str>> {
    let out = feed(node, Event::PeerConnected(peer));
    let (_, id, _) = requests(&out)
        .into_iter()
        .find(|(p, _, r)| *p == peer && matches!(r, SyncRequest::Status(_)))
        .expect("a status request on connect");
    feed(
        node,
        Event::Response {
            peer,
            id,
            response: SyncResponse::Status(status),
        },
    )
}

/// Answers our headers request `id` to `peer` with `blocks`' headers; returns the id and
/// hashes of the blocks request that follows.
fn answer_headers(
    node: &mut Node,
    peer: &'static str,
    id: u64,
    blocks: &[Block],
) -> (u64, Vec<BlockHash>) {
    let out = feed(
        node,
        Event::Response {
            peer,
            id,
            response: SyncResponse::Headers(blocks.iter().map(|b| b.header).collect()),
        },
    );
    let (_, id, request) = requests(&out)
        .into_iter()
        .find(|(p, _, r)| *p == peer && matches!(r, SyncRequest::GetBlocks { .. }))
        .expect("asks for blocks");
    let SyncRequest::GetBlocks { hashes } = request else {
        unreachable!()
    };
    (id, hashes)
}

fn status_of(chain: &TestChain, tip: &Block) -> Status {
    let entry = chain.entry_of(&tip.hash());
    Status {
        genesis: chain.genesis_hash,
        tip: tip.hash(),
        height: entry.height(),
        chain_work: entry.chain_work,
    }
}

fn genesis_status(chain: &TestChain) -> Status {
    let entry = chain.entry_of(&chain.genesis_hash);
    Status {
        genesis: chain.genesis_hash,
        tip: chain.genesis_hash,
        height: 0,
        chain_work: entry.chain_work,
    }
}

#[test]
fn a_gossiped_block_with_bad_proof_of_work_is_rejected_and_its_sender_banned() {
    let chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let mut node = node(&chain);
    let _ = connect(&mut node, "evil", genesis_status(&chain));
    let mut block = chain.template(&genesis, Vec::new(), test_address(0));
    // Find a nonce that does NOT meet the target.
    solve(&mut block.header);
    block.header.nonce = block.header.nonce.wrapping_add(1);
    while crate::core::consensus::validation::check_proof_of_work(&block.header).is_ok() {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    let out = feed(
        &mut node,
        Event::GossipBlock {
            peer: "evil",
            block,
        },
    );
    assert_eq!(verdict(&out), Some(Verdict::Reject));
    assert!(banned(&out, "evil"), "{out:?}");
    assert_eq!(node.0.peers().count(), 0);
    assert_eq!(node.1.tip().height(), 0);
}

#[test]
fn a_block_with_a_bad_signature_inside_is_rejected_and_its_sender_banned() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let mut node = node(&chain);
    let _ = connect(&mut node, "evil", genesis_status(&chain));
    let transfer = chain.transfer(&test_keypair(0), test_address(1), 100, 1, 0);
    let mut block = chain.template(&genesis, vec![transfer], test_address(0));
    block.transfers[0].amount = Amount::from_units(101); // signed for 100
    block.header.tx_root = block.compute_tx_root();
    solve(&mut block.header);
    let out = feed(
        &mut node,
        Event::GossipBlock {
            peer: "evil",
            block,
        },
    );
    assert_eq!(verdict(&out), Some(Verdict::Reject));
    assert!(banned(&out, "evil"), "{out:?}");
    assert_eq!(node.1.tip().height(), 0);
    // An honest peer's valid block still goes through.
    let _ = connect(&mut node, "honest", genesis_status(&chain));
    let good = chain.mine(&genesis, Vec::new(), test_address(0));
    let out = feed(
        &mut node,
        Event::GossipBlock {
            peer: "honest",
            block: good,
        },
    );
    assert_eq!(verdict(&out), Some(Verdict::Accept));
    assert_eq!(node.1.tip().height(), 1);
}

#[test]
fn a_request_flood_is_refused_then_banned() {
    let chain = TestChain::new();
    let mut node = node(&chain);
    let _ = connect(&mut node, "flood", genesis_status(&chain));
    let mut refused = 0;
    let mut was_banned = false;
    for id in 0..1_000 {
        let out = feed(
            &mut node,
            Event::Request {
                peer: "flood",
                id,
                request: SyncRequest::GetBlocks { hashes: vec![] },
            },
        );
        refused += out
            .iter()
            .filter(|a| matches!(a, Action::Refuse { .. }))
            .count();
        if banned(&out, "flood") {
            was_banned = true;
            break;
        }
    }
    assert!(refused >= 1);
    assert!(was_banned, "a flood ends in a ban");
}

#[test]
fn an_orphan_pulls_headers_then_blocks_and_connects() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 5, test_address(0));
    let mut node = node(&chain);
    let _ = connect(&mut node, "peer", genesis_status(&chain));
    // Block 5 arrives by gossip before 1..4: held, and headers are asked for.
    let out = feed(
        &mut node,
        Event::GossipBlock {
            peer: "peer",
            block: blocks[4].clone(),
        },
    );
    assert_eq!(verdict(&out), Some(Verdict::Ignore));
    assert_eq!(node.0.orphan_count(), 1);
    let (_, id, request) = requests(&out)
        .into_iter()
        .find(|(_, _, r)| matches!(r, SyncRequest::GetHeaders { .. }))
        .expect("asks for headers");
    let SyncRequest::GetHeaders { locator, .. } = request else {
        unreachable!()
    };
    assert_eq!(locator, vec![genesis]);
    let (id, hashes) = answer_headers(&mut node, "peer", id, &blocks);
    assert_eq!(hashes.len(), 5);
    let out = feed(
        &mut node,
        Event::Response {
            peer: "peer",
            id,
            response: SyncResponse::Blocks(blocks[..4].to_vec()),
        },
    );
    // Blocks 1..4 connect, then the orphan 5 joins them.
    assert_eq!(node.1.tip().hash(), blocks[4].hash(), "{out:?}");
    assert_eq!(node.0.orphan_count(), 0);
}

#[test]
fn a_stalled_request_moves_to_another_peer() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 3, test_address(0));
    let tip_status = status_of(&chain, &blocks[2]);
    let mut node = node(&chain);
    // Headers from the first peer with more work, then its block request never answers.
    let out = connect(&mut node, "slow", tip_status.clone());
    let headers_request = requests(&out)
        .into_iter()
        .find(|(_, _, r)| matches!(r, SyncRequest::GetHeaders { .. }));
    let (peer, id, _) = headers_request.expect("headers asked on a tick or connect");
    let out = feed(
        &mut node,
        Event::Response {
            peer,
            id,
            response: SyncResponse::Headers(blocks.iter().map(|b| b.header).collect()),
        },
    );
    assert!(requests(&out)
        .iter()
        .any(|(p, _, r)| *p == "slow" && matches!(r, SyncRequest::GetBlocks { .. })));
    let _ = connect(&mut node, "fast", tip_status);
    let later = NOW + ProtocolConfig::default().request_timeout_ms + 1;
    let out = feed_at(&mut node, Event::Tick, later);
    let retry = requests(&out)
        .into_iter()
        .find(|(p, _, r)| *p == "fast" && matches!(r, SyncRequest::GetBlocks { .. }))
        .expect("the blocks are asked of the other peer");
    let out = feed_at(
        &mut node,
        Event::Response {
            peer: "fast",
            id: retry.1,
            response: SyncResponse::Blocks(blocks.clone()),
        },
        later,
    );
    assert_eq!(node.1.tip().hash(), blocks[2].hash(), "{out:?}");
}

#[test]
fn unlinked_headers_and_unrequested_blocks_cost_score_and_another_chain_disconnects() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 4, test_address(0));
    let mut node = node(&chain);
    let out = connect(&mut node, "liar", status_of(&chain, &blocks[3]));
    let (_, id, _) = requests(&out)
        .into_iter()
        .find(|(_, _, r)| matches!(r, SyncRequest::GetHeaders { .. }))
        .expect("headers asked");
    feed(
        &mut node,
        Event::Response {
            peer: "liar",
            id,
            response: SyncResponse::Headers(vec![blocks[0].header, blocks[2].header]),
        },
    );
    assert!(
        node.0.score(&"liar") > 0,
        "unlinked headers are a protocol violation"
    );
    // A peer of another chain is disconnected, not banned.
    let out = feed(&mut node, Event::PeerConnected("stranger"));
    let (_, id, _) = requests(&out)[0].clone();
    let mut other = genesis_status(&chain);
    other.genesis = BlockHash([7; 32]);
    let out = feed(
        &mut node,
        Event::Response {
            peer: "stranger",
            id,
            response: SyncResponse::Status(other),
        },
    );
    assert!(out.contains(&Action::Disconnect("stranger")), "{out:?}");
    assert!(!banned(&out, "stranger"));
}

#[test]
fn served_blocks_stay_within_the_response_limit() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 3, test_address(0));
    let mut node = node(&chain);
    for block in &blocks {
        node.1.submit_block(block.clone(), NOW / 1000).unwrap();
    }
    node.0.config.max_response_bytes = blocks[0].encoded_size() * 2;
    let out = feed(
        &mut node,
        Event::Request {
            peer: "reader",
            id: 9,
            request: SyncRequest::GetBlocks {
                hashes: blocks.iter().map(Block::hash).collect(),
            },
        },
    );
    let served = out.iter().find_map(|a| match a {
        Action::Respond {
            id: 9,
            response: SyncResponse::Blocks(b),
        } => Some(b.len()),
        _ => None,
    });
    assert_eq!(served, Some(2));
}

#[test]
fn a_long_run_of_downloaded_blocks_is_connected_a_chunk_per_event() {
    let mut chain = TestChain::new();
    let genesis = chain.genesis_hash;
    let blocks = chain.extend(&genesis, 10, test_address(0));
    let mut node = node(&chain);
    let chunk = ProtocolConfig::default().connect_chunk;
    let out = connect(&mut node, "peer", status_of(&chain, &blocks[9]));
    let (peer, id, _) = requests(&out)
        .into_iter()
        .find(|(_, _, r)| matches!(r, SyncRequest::GetHeaders { .. }))
        .expect("headers asked");
    let (id, hashes) = answer_headers(&mut node, peer, id, &blocks);
    assert_eq!(hashes.len(), 10);
    // The whole response arrives: one chunk is connected, and the shell is asked to go on.
    let out = feed(
        &mut node,
        Event::Response {
            peer,
            id,
            response: SyncResponse::Blocks(blocks.clone()),
        },
    );
    assert_eq!(node.1.tip().height(), chunk as u32);
    assert!(out.contains(&Action::Continue), "{out:?}");
    // Each Continue connects the next chunk; the last one asks for nothing more.
    let out = feed(&mut node, Event::Continue);
    assert_eq!(node.1.tip().height(), 2 * chunk as u32);
    assert!(out.contains(&Action::Continue));
    let out = feed(&mut node, Event::Continue);
    assert_eq!(node.1.tip().hash(), blocks[9].hash());
    assert!(!out.contains(&Action::Continue), "{out:?}");
}
