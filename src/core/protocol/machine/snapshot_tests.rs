//! Snapshot sync through the state machine: a fresh node takes the headers, fetches the
//! pivot's state from peers (one of which lies), adopts it and syncs the rest in full.
use super::tests::{banned, connect, feed_at, requests, NOW};
use super::*;
use crate::core::chain::memory::MemoryChainStore;
use crate::core::primitives::tagged_hash;
use crate::core::primitives::{Address, BlockHash};
use crate::core::state::{all_accounts, SmtNode};
use crate::core::testkit::{test_address, test_keypair, TestChain};

type Node = super::tests::Node;

/// A chain of `empty + 2` blocks whose first two move coins to 600 addresses crowded into
/// four subtrees at depth 8 (so that the tree has pages below its root page).
fn chain_with_accounts(empty: usize) -> (TestChain, Vec<Block>) {
    let mut chain = TestChain::new();
    let mut blocks = Vec::new();
    let mut tip = chain.genesis_hash;
    let sender = test_keypair(0);
    for round in 0..2u64 {
        let transfers = (0..300u64)
            .map(|i| {
                let n = round * 300 + i;
                let mut bytes = tagged_hash("cairn/test-snapshot", &[&n.to_be_bytes()]);
                bytes[0] &= 0x03;
                chain.transfer(&sender, Address(bytes), 1_000, 10, n)
            })
            .collect();
        let block = chain.mine(&tip, transfers, test_address(0));
        tip = block.hash();
        blocks.push(block);
    }
    blocks.extend(chain.extend(&tip, empty, test_address(1)));
    (chain, blocks)
}

/// A node that holds `blocks`, to serve the fresh one.
fn server(chain: &TestChain, blocks: &[Block]) -> Node {
    let mut node = super::tests::node(chain);
    for block in blocks {
        node.1.submit_block(block.clone(), NOW / 1000).unwrap();
    }
    node
}

fn fresh(chain: &TestChain, depth: u32, min_blocks: u32) -> Node {
    let config = ProtocolConfig {
        snapshot: Some(SnapshotConfig { depth, min_blocks }),
        ..ProtocolConfig::default()
    };
    (
        Protocol::new(config, []),
        ChainManager::new(MemoryChainStore::new(&chain.spec), chain.spec.clone()).unwrap(),
    )
}

/// `server`'s answer at `now` to `request`, as it serves a peer.
fn serve(server: &mut Node, id: u64, request: SyncRequest, now: u64) -> SyncResponse {
    let out = feed_at(
        server,
        Event::Request {
            peer: "fresh",
            id,
            request,
        },
        now,
    );
    out.into_iter()
        .find_map(|a| match a {
            Action::Respond { response, .. } => Some(response),
            _ => None,
        })
        .expect("the server answers")
}

/// Delivers the fresh node's requests to the peers (`liar` alters every page it sends)
/// until it asks nothing more; returns every action it took.
fn run(
    node: &mut Node,
    servers: &mut BTreeMap<&'static str, Node>,
    liar: Option<&'static str>,
    first: Vec<Action<&'static str>>,
) -> Vec<Action<&'static str>> {
    let mut all = Vec::new();
    let mut pending = first;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 1_000, "sync does not settle");
        // A tenth of a second per round trip: request budgets refill.
        let now = NOW + rounds * 100;
        let mut next = Vec::new();
        for (peer, id, request) in requests(&pending) {
            let Some(server) = servers.get_mut(peer) else {
                continue;
            };
            let mut response = serve(server, id, request, now);
            if Some(peer) == liar {
                if let SyncResponse::StatePages(pages) = &mut response {
                    for page in pages.iter_mut() {
                        if let Some(SmtNode::Leaf { account, .. }) = page
                            .iter_mut()
                            .find(|node| matches!(node, SmtNode::Leaf { .. }))
                        {
                            account.nonce += 1;
                        }
                    }
                }
            }
            next.extend(feed_at(node, Event::Response { peer, id, response }, now));
        }
        if pending.iter().any(|a| matches!(a, Action::Continue)) {
            next.extend(feed_at(node, Event::Continue, now));
        }
        if next.is_empty() {
            // Nothing in flight: a tick, for whatever waits on the clock.
            next.extend(
                feed_at(node, Event::Tick, now)
                    .into_iter()
                    .filter(|a| matches!(a, Action::Request { .. } | Action::Continue)),
            );
        }
        all.append(&mut pending);
        pending = next;
    }
    all
}

fn status(node: &Node) -> Status {
    Protocol::<&'static str>::status(&node.1)
}

fn state_requests(actions: &[Action<&'static str>]) -> Vec<&'static str> {
    requests(actions)
        .into_iter()
        .filter(|(_, _, r)| matches!(r, SyncRequest::GetStatePages { .. }))
        .map(|(peer, _, _)| peer)
        .collect()
}

#[test]
fn a_fresh_node_adopts_the_state_of_a_block_deep_below_the_tip_and_syncs_the_rest() {
    // More blocks than one headers answer holds: every header is fetched before the pivot.
    let (chain, blocks) = chain_with_accounts(MAX_HEADERS + 50);
    let height = blocks.len() as u32;
    let tip = blocks.last().unwrap().hash();
    let mut servers = BTreeMap::from([("liar", server(&chain, &blocks))]);
    servers.insert("a", server(&chain, &blocks));
    let mut node = fresh(&chain, 10, 20);
    // The liar alone first: its headers are honest, its pages are not.
    let first = connect(&mut node, "liar", status(&servers["liar"]));
    let actions = run(&mut node, &mut servers, Some("liar"), first);
    assert!(banned(&actions, "liar"), "the liar is banned: {actions:?}");
    let reason = actions.iter().find_map(|a| match a {
        Action::Ban { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(reason.unwrap().contains("state page"));
    let pivot = actions.iter().find_map(|a| match a {
        Action::SnapshotStarted {
            pivot,
            header_height,
        } => Some((pivot.clone(), *header_height)),
        _ => None,
    });
    let (pivot, header_height) = pivot.expect("snapshot sync started");
    assert_eq!(header_height, height);
    assert_eq!(pivot.height(), height - 10);
    assert_eq!(node.1.tip().height(), 0, "nothing adopted from a liar");
    // An honest peer: the page is fetched from it, the snapshot adopted, the rest synced.
    node.0
        .handle(Event::PeerDisconnected("liar"), &mut node.1, NOW);
    let first = connect(&mut node, "a", status(&servers["a"]));
    let actions = run(&mut node, &mut servers, None, first);
    assert!(state_requests(&actions).iter().all(|p| *p == "a"));
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::TipChanged { source: TipSource::Snapshot, tip, .. } if tip.hash() == pivot.hash()
    )));
    assert_eq!(node.1.tip().hash(), tip);
    assert_eq!(
        node.1.tip().header.state_root,
        chain.entry_of(&tip).header.state_root
    );
    let root = *chain.entry_of(&tip).header.state_root.as_bytes();
    assert_eq!(
        all_accounts(node.1.store(), root).unwrap(),
        all_accounts(chain.state_at(&tip), root).unwrap()
    );
    // Every block was fetched once: those after the pivot by sync, validated; those below
    // it afterwards, in the background, checked against their headers and stored.
    let mut fetched: Vec<BlockHash> = requests(&actions)
        .into_iter()
        .flat_map(|(_, _, r)| match r {
            SyncRequest::GetBlocks { hashes } => hashes,
            _ => Vec::new(),
        })
        .collect();
    fetched.sort();
    let mut all: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
    all.sort();
    assert_eq!(fetched, all);
    for block in &blocks {
        assert_eq!(node.1.block(&block.hash()).unwrap().as_ref(), Some(block));
    }
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::OldBlocksProgress { through, base, .. } if through == base && *base == pivot.height()
    )));
    assert_eq!(node.0.old_blocks_progress(), None, "done");
}

#[test]
fn an_old_block_that_does_not_match_its_header_is_refused_and_its_sender_banned() {
    let (chain, blocks) = chain_with_accounts(40);
    let mut servers = BTreeMap::from([("a", server(&chain, &blocks))]);
    servers.insert("liar", server(&chain, &blocks));
    let mut node = fresh(&chain, 10, 20);
    let first = connect(&mut node, "a", status(&servers["a"]));
    // Adopt and sync with "a" alone, holding back its old blocks: then the liar joins and
    // serves old blocks whose transfers were swapped (their header's root no longer fits).
    let mut held = Vec::new();
    let mut pending = first;
    let mut now = NOW;
    while !pending.is_empty() {
        now += 100;
        let mut next = Vec::new();
        for (peer, id, request) in requests(&pending) {
            let is_old = matches!(&request, SyncRequest::GetBlocks { hashes }
                if hashes.iter().any(|h| node.1.entry(h).unwrap().is_some_and(|e| e.height() <= 32)));
            if is_old {
                held.push((peer, id));
                continue;
            }
            let response = serve(servers.get_mut(peer).unwrap(), id, request, now);
            next.extend(feed_at(
                &mut node,
                Event::Response { peer, id, response },
                now,
            ));
        }
        if pending.iter().any(|a| matches!(a, Action::Continue)) {
            next.extend(feed_at(&mut node, Event::Continue, now));
        }
        pending = next;
    }
    assert_eq!(node.1.tip().hash(), blocks.last().unwrap().hash());
    assert!(!held.is_empty(), "old blocks were asked for");
    assert!(node.1.block(&blocks[0].hash()).unwrap().is_none());
    for (peer, id) in held {
        feed_at(&mut node, Event::RequestFailed { peer, id }, now);
    }
    // "a" failed them all: the liar is asked, and lies.
    let first = connect(&mut node, "liar", status(&servers["liar"]));
    let mut pending = first;
    let mut lied = false;
    while !pending.is_empty() {
        now += 100;
        let mut next = Vec::new();
        for (peer, id, request) in requests(&pending) {
            let mut response = serve(servers.get_mut(peer).unwrap(), id, request, now);
            if let SyncResponse::Blocks(blocks) = &mut response {
                for block in blocks.iter_mut().filter(|b| b.transfers.len() > 1) {
                    block.transfers.swap(0, 1);
                    lied = true;
                }
            }
            next.extend(feed_at(
                &mut node,
                Event::Response { peer, id, response },
                now,
            ));
        }
        pending = next;
        if pending.is_empty() {
            pending = feed_at(&mut node, Event::Tick, now + 1_000);
            now += 1_000;
        }
        if banned(&pending, "liar") {
            break;
        }
    }
    assert!(lied && banned(&pending, "liar"));
    assert!(
        node.1.block(&blocks[0].hash()).unwrap().is_none(),
        "nothing of the liar's stored"
    );
}

#[test]
fn a_chain_shorter_than_the_threshold_syncs_in_full() {
    let (chain, blocks) = chain_with_accounts(10);
    let tip = blocks.last().unwrap().hash();
    let mut servers = BTreeMap::from([("a", server(&chain, &blocks))]);
    let mut node = fresh(&chain, 5, 100);
    let first = connect(&mut node, "a", status(&servers["a"]));
    let actions = run(&mut node, &mut servers, None, first);
    assert!(state_requests(&actions).is_empty());
    assert_eq!(node.1.tip().hash(), tip);
    assert!(node.1.block(&blocks[0].hash()).unwrap().is_some());
}

#[test]
fn a_node_with_blocks_already_does_not_take_a_snapshot() {
    let (chain, blocks) = chain_with_accounts(40);
    let tip = blocks.last().unwrap().hash();
    let mut servers = BTreeMap::from([("a", server(&chain, &blocks))]);
    let mut node = fresh(&chain, 5, 10);
    node.1.submit_block(blocks[0].clone(), NOW / 1000).unwrap();
    let first = connect(&mut node, "a", status(&servers["a"]));
    let actions = run(&mut node, &mut servers, None, first);
    assert!(state_requests(&actions).is_empty());
    assert_eq!(node.1.tip().hash(), tip);
}
