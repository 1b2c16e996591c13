//! End-to-end test of a hostile peer against real `cairn` processes on 127.0.0.1: explicit
//! bootnodes, mDNS off, free ports, temp data directories, every process killed on drop.
//!
//! The hostile peer is a real libp2p node in this process: the node's own network layer
//! (`cairn::node::net`: TCP, noise, yamux, gossipsub, request-response) on a tokio runtime,
//! with the hidden raw commands for bytes no honest node sends. It answers status requests
//! as a node at genesis would, so it looks honest until it offends. Each kind of offence is
//! committed by a fresh identity (a fresh data directory, so a fresh key), so that each ban
//! is shown on its own.
//!
//! 1. Two honest nodes: H1 mines, H2 follows H1. Both reach a height and agree.
//! 2. Offences, each by a new hostile peer against H1 or H2. Each ends in a ban that the
//!    peers API lists with its reason, the peer gone from the connected peers (on both
//!    sides), and "banned peer <id>" in the node's log:
//!    a. a block with bad proof of work;
//!    b. a block on the honest tip holding a transfer whose amount was raised after signing;
//!    c. undecodable gossip, and an undecodable sync request;
//!    d. a sync request over `MAX_REQUEST_BYTES`;
//!    e. a flood of sync requests beyond the rate limit;
//!    f. a gossiped transfer whose amount was raised after signing.
//! 3. All along H1 keeps mining and H2 keeps up: afterwards both are higher and on one tip.
//! 4. H2's bans survive a clean restart, and the restarted H2 catches up with H1.
//! 5. (Issue 11) A side branch with less work is neither stored nor relayed. A side-branch
//!    block with a forged signature is not even checked: a block that will not be stored
//!    is not worth its signatures' cost.
//! 6. An invalid block stops at the first honest node.
//! 7. Junk orphans cost their sender its connection.
//! 8. A peer that reconnects after every four violations is banned at the fifth.
#![allow(clippy::disallowed_methods)]

mod common;

use cairn::core::consensus::asert;
use cairn::core::consensus::genesis::genesis_hash;
use cairn::core::consensus::validation::{check_proof_of_work, next_bits};
use cairn::core::consensus::Target;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, Block, BlockHash};
use cairn::core::protocol::messages::{Status, SyncRequest, SyncResponse};
use cairn::core::testkit::{solve, TestChain};
use cairn::node::net::{
    self, BlockRelay, GossipTopic, GossipVerdict, NetCommand, NetEvent, NetHandle, PeerId,
    MAX_REQUEST_BYTES,
};
use common::{bootnode_args, poll, unix_now, Node, TestDir, TestSpec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Longest wait for a node to react (connect, ban, catch up).
const REACT: Duration = Duration::from_secs(45);
/// Pause between two tries of a gossip offence: until gossipsub has learnt that the honest
/// node subscribes to the topic, a publish goes nowhere.
const RETRY: Duration = Duration::from_millis(200);
/// Sync requests sent at once, again and again, by the flooding peer. The honest node takes
/// a burst of 100 and 50 a second after that.
const FLOOD_BATCH: u32 = 32;

/// A node's peer id.
fn peer_id_of(node: &Node) -> PeerId {
    node.peer_id().parse().expect("a peer id")
}

/// A node's tip: height and hash.
fn tip_of(node: &Node) -> (u64, String) {
    let tip = node.tip();
    (
        tip["height"].as_u64().expect("height"),
        tip["hash"].as_str().expect("hash").to_string(),
    )
}

/// Waits until H2 has H1's tip and that tip is at least at `height`; returns it.
fn wait_for_agreement(h1: &Node, h2: &Node, height: u64) -> (u64, String) {
    poll(
        format!("H1 and H2 on one tip at height {height} or more"),
        REACT,
        || {
            let (one, two) = (tip_of(h1), tip_of(h2));
            if one.0 >= height && one == two {
                Ok(one)
            } else {
                Err(format!("H1 at {one:?}, H2 at {two:?}"))
            }
        },
    )
}

/// `peer`'s entry among the connected peers of a `GET /api/v1/peers` answer.
fn peer_entry<'a>(view: &'a Value, peer: &str) -> Option<&'a Value> {
    view["peers"]
        .as_array()?
        .iter()
        .find(|entry| entry["peer_id"] == peer)
}

/// The reason of `peer`'s ban in a `GET /api/v1/peers` answer, if it is banned.
fn ban_reason(view: &Value, peer: &str) -> Option<String> {
    view["bans"]
        .as_array()?
        .iter()
        .find(|ban| ban["peer_id"] == peer)
        .map(|ban| ban["reason"].as_str().unwrap_or_default().to_string())
}

/// A node's bans as (peer id, end, reason), sorted.
fn bans_of(node: &Node) -> Vec<(String, u64, String)> {
    let view = node.peers();
    let mut bans: Vec<_> = view["bans"]
        .as_array()
        .expect("bans")
        .iter()
        .map(|ban| {
            (
                ban["peer_id"].as_str().expect("peer id").to_string(),
                ban["until"].as_u64().expect("until"),
                ban["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    bans.sort();
    bans
}

/// The status a node that holds only genesis sends.
fn status_at_genesis(spec: &TestSpec) -> Status {
    let genesis = genesis_hash(&spec.spec);
    Status {
        genesis,
        tip: genesis,
        height: 0,
        chain_work: Target::from_compact(spec.spec.genesis_bits)
            .expect("the spec's bits are valid")
            .work(),
    }
}

/// A libp2p node in the test process that speaks the Cairn protocols and misbehaves on
/// command. Until then it behaves like a node at genesis: it answers status requests, refuses
/// other requests, and forwards no gossip.
struct HostilePeer {
    net: NetHandle,
    /// Its peer id, as the API shows it.
    id: String,
    /// The peers it is connected to.
    connected: Arc<Mutex<BTreeSet<PeerId>>>,
    /// The network service and the task that plays honest.
    tasks: [JoinHandle<()>; 2],
}

impl HostilePeer {
    /// Starts a hostile peer with a new key in `data_dir`, dialing `target`, and waits until
    /// both sides see the connection.
    fn connect(runtime: &Runtime, data_dir: &Path, spec: &TestSpec, target: &Node) -> HostilePeer {
        let status = status_at_genesis(spec);
        let mut config = common::test_peer_net_config(data_dir, status.genesis, spec, target);
        // Whole blocks: this peer answers no request, so a compact block of transfers its
        // target lacks could not be completed (compact relay of invalid blocks is covered by
        // the protocol's tests).
        config.block_relay = BlockRelay::Full;
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        let (net, service) = {
            let _entered = runtime.enter();
            net::start(
                config,
                Box::new(move |event| {
                    let _ = sender.send(event);
                }),
            )
            .expect("the hostile peer's network starts")
        };
        let connected = Arc::new(Mutex::new(BTreeSet::new()));
        let honest = runtime.spawn(play_honest(
            net.clone(),
            events,
            status,
            Arc::clone(&connected),
        ));
        let hostile = HostilePeer {
            id: net.local_peer_id().to_string(),
            net,
            connected,
            tasks: [service, honest],
        };
        hostile.wait_for_link(target, true);
        hostile
    }

    /// Waits until both the hostile peer and `target` see a connection between them
    /// (`connected`), or neither does.
    fn wait_for_link(&self, target: &Node, connected: bool) {
        let target_id = peer_id_of(target);
        let what = format!("{} connected to {target_id}: {connected}", self.id);
        poll(what, REACT, || {
            let seen = (
                self.is_connected_to(&target_id),
                peer_entry(&target.peers(), &self.id).is_some(),
            );
            if seen == (connected, connected) {
                Ok(())
            } else {
                Err(format!("(we see them, they see us): {seen:?}"))
            }
        });
    }

    fn send(&self, command: NetCommand) {
        self.net.send(command);
    }

    /// Keeps the hostile peer away from `other` (it refuses and closes connections to it),
    /// so that whatever `other` holds came through the honest node it targets.
    fn shun(&self, other: &Node) {
        let other = peer_id_of(other);
        self.send(NetCommand::Ban(other));
        poll(format!("{} away from {other}", self.id), REACT, || {
            if self.is_connected_to(&other) {
                Err("still connected".to_string())
            } else {
                Ok(())
            }
        });
    }

    fn is_connected_to(&self, peer: &PeerId) -> bool {
        self.connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(peer)
    }
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The hostile peer's event loop: tracks its connections and answers like an honest node
/// at genesis.
async fn play_honest(
    net: NetHandle,
    mut events: UnboundedReceiver<NetEvent>,
    status: Status,
    connected: Arc<Mutex<BTreeSet<PeerId>>>,
) {
    let connections = || connected.lock().unwrap_or_else(PoisonError::into_inner);
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::PeerConnected { peer, .. } => {
                connections().insert(peer);
            }
            NetEvent::PeerDisconnected { peer } => {
                connections().remove(&peer);
            }
            NetEvent::InboundRequest {
                id,
                request: SyncRequest::Status(_),
                ..
            } => net.send(NetCommand::Respond {
                id,
                response: SyncResponse::Status(status.clone()),
            }),
            NetEvent::InboundRequest { id, .. } => net.send(NetCommand::Refuse { id }),
            NetEvent::GossipBlock {
                source,
                announcement,
            } => net.send(NetCommand::ReportBlock {
                hash: announcement.hash(),
                source,
                verdict: GossipVerdict::Ignore,
            }),
            NetEvent::GossipTransfer { source, transfer } => net.send(NetCommand::ReportTransfer {
                txid: transfer.txid(),
                source,
                verdict: GossipVerdict::Ignore,
            }),
            _ => {}
        }
    }
}

/// Commits an offence again every `period` (each time with new bytes: gossipsub drops a
/// message it has seen) until `target` lists `hostile` among its bans; returns the reason.
fn offend_until_banned(
    target: &Node,
    hostile: &HostilePeer,
    offence: &str,
    period: Duration,
    mut offend: impl FnMut(u32),
) -> String {
    let mut attempts = 0u32;
    let mut last: Option<Instant> = None;
    let what = format!(
        "a ban of {} for {offence} (log {})",
        hostile.id,
        target.log.display()
    );
    poll(what, REACT, || {
        if last.is_none_or(|at| at.elapsed() >= period) {
            offend(attempts);
            attempts += 1;
            last = Some(Instant::now());
        }
        let view = target.peers();
        ban_reason(&view, &hostile.id).ok_or_else(|| {
            let entry = peer_entry(&view, &hostile.id);
            format!("not banned after {attempts} tries; listed as {entry:?}")
        })
    })
}

/// Checks the rest of a ban of `hostile` by `target`: the reason names the offence, the
/// peer is no longer connected (on both sides), and the log says so.
fn check_ban(target: &Node, hostile: &HostilePeer, reason: &str, offence: &str) {
    assert!(
        reason.contains(offence),
        "the ban of {} should say {offence:?}, says {reason:?}",
        hostile.id
    );
    hostile.wait_for_link(target, false);
    let line = format!("banned peer {}", hostile.id);
    poll(
        format!("{line:?} in {}", target.log.display()),
        REACT,
        || {
            let log = std::fs::read_to_string(&target.log).map_err(|e| e.to_string())?;
            log.contains(&line)
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        },
    );
    eprintln!("banned {}: {reason}", hostile.id);
}

/// A child of genesis whose nonce misses its target (it decodes fine).
fn block_with_bad_pow(chain: &TestChain, reward_to: Address, attempt: u32) -> Block {
    let mut block = chain.template(&chain.genesis_hash, Vec::new(), reward_to);
    block.header.nonce = attempt.wrapping_mul(1_000);
    while check_proof_of_work(&block.header).is_ok() {
        block.header.nonce = block.header.nonce.wrapping_add(1);
    }
    block
}

/// Where a new block goes: its parent's hash and height, its time and the bits it needs.
#[derive(Clone, Copy, Debug)]
struct Parent {
    hash: BlockHash,
    height: u32,
    time: u32,
    child_bits: cairn::core::consensus::CompactTarget,
}

impl Parent {
    /// Makes `block` (built on genesis) a child of this parent: its link, height, a time
    /// now (after the parent's) and the bits it needs. The caller re-solves it.
    fn adopt(&self, block: &mut Block) {
        let now = u32::try_from(unix_now()).expect("time fits in u32");
        block.header.prev_hash = self.hash;
        block.header.height = self.height + 1;
        block.header.time = now.max(self.time + 1);
        block.header.bits = self.child_bits;
    }
}

/// The tip of `node`, as the parent of a block that would extend its best chain.
fn tip_as_parent(node: &Node, spec: &TestSpec) -> Parent {
    let height = node.tip()["height"].as_u64().expect("a height");
    parent_at(node, spec, height)
}

/// `node`'s best-chain block at `height`, as the parent of a new block.
fn parent_at(node: &Node, spec: &TestSpec, height: u64) -> Parent {
    let tip = node.block(height);
    let number = |value: &Value| {
        value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or_else(|| panic!("not a u32: {value}"))
    };
    let height = number(&tip["height"]);
    assert!(height >= 1, "the honest chain has blocks");
    let time = number(&tip["time"]);
    // ASERT is anchored at genesis; its clock credits each block's interval up to a cap.
    let params = spec.spec.asert_params();
    let mut clock = asert::genesis_asert_clock(&params);
    let mut parent_time = number(&node.block(0)["time"]);
    for h in 1..=height {
        let block_time = number(&node.block(h)["time"]);
        clock = asert::asert_clock_after(clock, parent_time, block_time, &params);
        parent_time = block_time;
    }
    Parent {
        hash: tip["hash"]
            .as_str()
            .and_then(|hash| hash.parse().ok())
            .unwrap_or_else(|| panic!("no tip hash in {tip}")),
        height,
        time,
        child_bits: next_bits(&spec.spec, height, clock),
    }
}

/// A solved block (on `parent`, or on genesis if `None`) whose one transfer had its amount
/// raised after it was signed; everything else is as a miner builds it.
fn block_with_forged_signature(
    chain: &TestChain,
    reward_to: Address,
    parent: Option<Parent>,
    attempt: u32,
) -> Block {
    let spec = &chain.spec;
    let signed = UnsignedTransfer {
        chain_id: spec.chain_id(),
        to: spec.allocations[2].0,
        amount: Amount::from_units(1_000),
        fee: Amount::from_units(10),
        nonce: 0,
        memo: b"forged".to_vec(),
    }
    .sign(
        &cairn_wallet::keys::dev_keypair(1),
        &chain.genesis_hash,
        &[7; 32],
    );
    let mut block = chain.template(&chain.genesis_hash, vec![signed], reward_to);
    block.transfers[0].amount = Amount::from_units(1_000_000);
    assert!(!block.transfers[0].has_valid_signature(&chain.genesis_hash));
    block.extra_nonce = u64::from(attempt);
    if let Some(parent) = parent {
        parent.adopt(&mut block);
    }
    block.header.tx_root = block.compute_tx_root();
    solve(&mut block.header);
    block
}

/// A solved child of `parent` that breaks a state rule: valid proof of work, bits, time and
/// merkle root, but built on genesis's state (its state root is wrong for any other parent).
fn block_breaking_a_state_rule(
    chain: &TestChain,
    reward_to: Address,
    parent: Parent,
    attempt: u32,
) -> Block {
    let mut block = chain.template(&chain.genesis_hash, Vec::new(), reward_to);
    block.extra_nonce = u64::from(attempt);
    parent.adopt(&mut block);
    block.header.tx_root = block.compute_tx_root();
    solve(&mut block.header);
    block
}

/// Whether `node` holds block `hash`.
fn holds(node: &Node, hash: &BlockHash) -> bool {
    matches!(
        node.try_get(&format!("/api/v1/blocks/{hash}")),
        Ok((200, _))
    )
}

#[test]
fn hostile_peers_are_banned_and_the_honest_nodes_carry_on() {
    let started = Instant::now();
    let dir = TestDir::new("hostile").in_process();
    let spec = dir.write_spec();
    let data = |name: &str| dir.path().join(name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Builds the hostile peers' blocks: the same spec, so the same genesis.
    let chain = TestChain::with_spec(spec.spec.clone());
    assert_eq!(chain.genesis_hash, genesis_hash(&spec.spec));
    let reward_to = spec.spec.allocations[0].0;

    // 1. Two honest nodes: H1 mines, H2 follows.
    let mut h1 = dir.start_node("h1", &data("h1"), &spec, true);
    let h2 = dir.start_node_with("h2", &data("h2"), &spec, false, &bootnode_args(&[&h1]));
    let before_attacks = wait_for_agreement(&h1, &h2, 3);
    eprintln!("honest nodes agree at height {}", before_attacks.0);
    let (h1_id, h2_id) = (peer_id_of(&h1), peer_id_of(&h2));
    let mut banned_by_h2 = Vec::new();

    // 2a. Bad proof of work (to H2): checked before anything else about a gossiped block.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-pow"), &spec, &h2);
    let reason = offend_until_banned(&h2, &hostile, "bad proof of work", RETRY, |attempt| {
        hostile.send(NetCommand::PublishBlock(block_with_bad_pow(
            &chain, reward_to, attempt,
        )));
    });
    check_ban(&h2, &hostile, &reason, "bad proof of work");
    banned_by_h2.push(hostile.id.clone());
    drop(hostile);

    // 2b. A forged signature (to H1), in a block that extends H1's best chain, so H1
    //     applies it. Each try builds on the current tip, in case H1 mined in between.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-signature"), &spec, &h1);
    let reason = offend_until_banned(&h1, &hostile, "a forged signature", RETRY, |attempt| {
        let parent = tip_as_parent(&h1, &spec);
        hostile.send(NetCommand::PublishBlock(block_with_forged_signature(
            &chain,
            reward_to,
            Some(parent),
            attempt,
        )));
    });
    check_ban(&h1, &hostile, &reason, "bad signature");
    drop(hostile);

    // 2c. Bytes that do not decode: as a gossiped block (to H1), then as a sync request
    //     (to H2).
    let hostile = HostilePeer::connect(&runtime, &data("hostile-gossip"), &spec, &h1);
    let reason = offend_until_banned(&h1, &hostile, "undecodable gossip", RETRY, |attempt| {
        hostile.send(NetCommand::PublishRaw {
            topic: GossipTopic::Blocks,
            data: format!("not a block, try {attempt}").into_bytes(),
        });
    });
    check_ban(&h1, &hostile, &reason, "MalformedMessage");
    drop(hostile);

    let hostile = HostilePeer::connect(&runtime, &data("hostile-request"), &spec, &h2);
    let reason = offend_until_banned(&h2, &hostile, "an undecodable request", RETRY, |id| {
        hostile.send(NetCommand::RequestRaw {
            peer: h2_id,
            id: u64::from(id),
            bytes: vec![0xff; 10],
        });
    });
    check_ban(&h2, &hostile, &reason, "MalformedMessage");
    banned_by_h2.push(hostile.id.clone());
    drop(hostile);

    // 2d. A sync request over the size limit (to H1): refused before it is read.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-oversized"), &spec, &h1);
    let reason = offend_until_banned(&h1, &hostile, "an oversized request", RETRY, |id| {
        hostile.send(NetCommand::RequestRaw {
            peer: h1_id,
            id: u64::from(id),
            bytes: vec![0; MAX_REQUEST_BYTES + 1],
        });
    });
    check_ban(&h1, &hostile, &reason, "OversizedMessage");
    drop(hostile);

    // 2e. A request flood (to H2): well-formed, cheap requests, far faster than the rate
    //     limit. The first 100 are served; each refused one costs 50 points; 100 bans.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-flood"), &spec, &h2);
    let mut sent = 0u64;
    let reason = offend_until_banned(&h2, &hostile, "a request flood", Duration::ZERO, |_| {
        for _ in 0..FLOOD_BATCH {
            sent += 1;
            hostile.send(NetCommand::Request {
                peer: h2_id,
                id: sent,
                request: SyncRequest::GetBlocks { hashes: Vec::new() },
            });
        }
    });
    check_ban(&h2, &hostile, &reason, "request flood");
    eprintln!("{sent} flood requests sent before the ban showed");
    banned_by_h2.push(hostile.id.clone());
    drop(hostile);

    // 2f. A forged transfer gossiped (to H2): the mempool refuses it as no honest node
    //     relays it, gossipsub drops it, and its sender is banned.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-transfer"), &spec, &h2);
    let reason = offend_until_banned(&h2, &hostile, "a forged transfer", RETRY, |attempt| {
        let mut forged = UnsignedTransfer {
            chain_id: spec.spec.chain_id(),
            to: reward_to,
            amount: Amount::from_units(1_000),
            fee: Amount::from_units(500),
            nonce: u64::from(attempt),
            memo: Vec::new(),
        }
        .sign(
            &cairn_wallet::keys::dev_keypair(4),
            &chain.genesis_hash,
            &[1; 32],
        );
        forged.amount = Amount::from_units(1_000_000);
        hostile.send(NetCommand::PublishTransfer(forged));
    });
    check_ban(&h2, &hostile, &reason, "relayed invalid transfer");
    banned_by_h2.push(hostile.id.clone());
    drop(hostile);
    let mempool = h2.get("/api/v1/mempool");
    assert_eq!(
        mempool["count"], 0,
        "no forged transfer was admitted: {mempool}"
    );

    // 3. The honest nodes carried on: H1 mined on, and H2 has its tip.
    let after_attacks = wait_for_agreement(&h1, &h2, before_attacks.0 + 3);
    h1.wait_for_height(after_attacks.0 + 1, REACT);
    eprintln!(
        "after the attacks H1 is at height {} ({:?} in)",
        after_attacks.0,
        started.elapsed()
    );

    // 4. H2's bans survive a clean restart: each is listed again, with its end and reason.
    let bans = bans_of(&h2);
    for id in &banned_by_h2 {
        assert!(
            bans.iter().any(|(peer, ..)| peer == id),
            "H2 bans {id}: {bans:?}"
        );
    }
    h2.stop_cleanly();
    let h2 = dir.start_node_with(
        "h2-restarted",
        &data("h2"),
        &spec,
        false,
        &bootnode_args(&[&h1]),
    );
    poll("H2's bans back after its restart", REACT, || {
        let now = bans_of(&h2);
        if bans.iter().all(|ban| now.contains(ban)) {
            Ok(())
        } else {
            Err(format!("{now:?}, before {bans:?}"))
        }
    });
    let caught_up = wait_for_agreement(&h1, &h2, after_attacks.0 + 1);
    eprintln!(
        "H2 restarted with {} bans and caught up at height {} ({:?} in)",
        bans.len(),
        caught_up.0,
        started.elapsed()
    );

    // 5. Issue 11, item 1: a side branch with less work than the tip (children of genesis,
    //    valid, even with a forged signature inside) was stored and relayed. Now H1 stores
    //    none, relays none (H2 never holds one), bans no one for them (they are not checked:
    //    checking would cost more than the sender paid), and after a burst of such junk
    //    closes the sender's connection.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-side-branch"), &spec, &h1);
    hostile.shun(&h2);
    let hostile_id: PeerId = hostile.id.parse().expect("a peer id");
    let mut published = Vec::new();
    poll(
        format!(
            "H1 closing the connection of side-branch spammer {}",
            hostile.id
        ),
        REACT,
        || {
            let attempt = u32::try_from(published.len()).expect("few tries");
            let block = if attempt % 2 == 0 {
                block_with_forged_signature(&chain, reward_to, None, attempt)
            } else {
                let mut block = chain.template(&chain.genesis_hash, Vec::new(), reward_to);
                block.extra_nonce = u64::from(attempt);
                block.header.tx_root = block.compute_tx_root();
                solve(&mut block.header);
                block
            };
            published.push(block.hash());
            hostile.send(NetCommand::PublishBlock(block));
            std::thread::sleep(RETRY);
            if hostile.is_connected_to(&h1_id) {
                Err(format!(
                    "still connected after {} side-branch blocks",
                    published.len()
                ))
            } else {
                Ok(())
            }
        },
    );
    for hash in &published {
        assert!(!holds(&h1, hash), "H1 stored side-branch block {hash}");
        assert!(
            !holds(&h2, hash),
            "side-branch block {hash} was relayed to H2"
        );
    }
    assert!(
        ban_reason(&h1.peers(), &hostile.id).is_none(),
        "junk is not a ban"
    );
    let _ = hostile_id;
    eprintln!(
        "{} side-branch blocks: none stored or relayed; the sender was disconnected, not banned",
        published.len()
    );
    drop(hostile);

    // 6. Issue 11, item 3: a block that breaks a state rule, sent to an honest node,
    //    stops there. On H2's tip it is rejected and its sender banned; on a side branch
    //    of H1 (a sibling of H1's tip: equal work, stored but not checked against state)
    //    it is not relayed, so H2 never sees it and no honest node bans another.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-relay-tip"), &spec, &h2);
    hostile.shun(&h1);
    let mut sent = Vec::new();
    let reason = offend_until_banned(&h2, &hostile, "an invalid block", RETRY, |attempt| {
        let block =
            block_breaking_a_state_rule(&chain, reward_to, tip_as_parent(&h2, &spec), attempt);
        sent.push(block.hash());
        hostile.send(NetCommand::PublishBlock(block));
    });
    check_ban(&h2, &hostile, &reason, "invalid block");
    drop(hostile);
    let hostile = HostilePeer::connect(&runtime, &data("hostile-relay-side"), &spec, &h1);
    hostile.shun(&h2);
    // Other extra nonces than the blocks sent to H2 above: on the same parent (H1's tip-1
    // can be the tip H2 had), the same attempt would be the very same block, sent to each
    // honest node directly, and look as if it had travelled between them.
    for attempt in 1000..1010 {
        let tip = h1.tip()["height"].as_u64().expect("a height");
        let parent = parent_at(&h1, &spec, tip - 1);
        let block = block_breaking_a_state_rule(&chain, reward_to, parent, attempt);
        sent.push(block.hash());
        hostile.send(NetCommand::PublishBlock(block));
        std::thread::sleep(RETRY);
    }
    std::thread::sleep(Duration::from_secs(2));
    for hash in &sent {
        assert!(
            !holds(&h1, hash) || h1.get(&format!("/api/v1/blocks/{hash}"))["best_chain"] != true
        );
        assert!(
            !holds(&h1, hash) || !holds(&h2, hash),
            "invalid block {hash} went from one honest node to the other"
        );
    }
    for (node, other) in [(&h1, &h2_id), (&h2, &h1_id)] {
        assert!(
            ban_reason(&node.peers(), &other.to_string()).is_none(),
            "an honest node banned another"
        );
    }
    drop(hostile);

    // 7. Issue 11, item 4: orphans with pow-limit bits and made-up parents (about 2 hashes
    //    each) filled the orphan pool at no cost to their sender. Now they are not held
    //    (their work is far below the tip's), nothing is asked about them, and a burst of
    //    them closes the sender's connection.
    let hostile = HostilePeer::connect(&runtime, &data("hostile-orphans"), &spec, &h2);
    let mut orphans = 0u32;
    poll(
        format!("H2 closing the connection of orphan flooder {}", hostile.id),
        REACT,
        || {
            let mut block = chain.template(&chain.genesis_hash, Vec::new(), reward_to);
            block.extra_nonce = u64::from(orphans);
            block.header.prev_hash = BlockHash([(orphans % 250) as u8 + 1; 32]);
            block.header.bits = spec.spec.pow_limit.to_compact();
            block.header.tx_root = block.compute_tx_root();
            solve(&mut block.header);
            orphans += 1;
            hostile.send(NetCommand::PublishBlock(block));
            std::thread::sleep(RETRY);
            if hostile.is_connected_to(&h2_id) {
                Err(format!("still connected after {orphans} junk orphans"))
            } else {
                Ok(())
            }
        },
    );
    assert!(ban_reason(&h2.peers(), &hostile.id).is_none());
    eprintln!("{orphans} junk orphans: the flooder was disconnected");
    drop(hostile);

    // 8. Issue 11, item 5: a peer that reconnected after every 4 violations (20 points
    //    each) was never banned. Its score now outlives the connection: the fifth bans.
    let offender_dir = data("hostile-reconnecting");
    let mut violations = 0u32;
    let mut banned = None;
    for round in 0..10 {
        let hostile = HostilePeer::connect(&runtime, &offender_dir, &spec, &h1);
        for _ in 0..4 {
            violations += 1;
            hostile.send(NetCommand::Request {
                peer: h1_id,
                id: u64::from(violations),
                // Over the locator's limit of 43 hashes: a protocol violation.
                request: SyncRequest::GetHeaders {
                    locator: vec![chain.genesis_hash; 50],
                    max: 10,
                },
            });
            std::thread::sleep(RETRY);
        }
        std::thread::sleep(Duration::from_millis(500));
        if let Some(reason) = ban_reason(&h1.peers(), &hostile.id) {
            banned = Some((round, reason));
            break;
        }
        drop(hostile);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (round, reason) = banned.expect("the reconnecting offender is banned");
    assert_eq!(
        round, 1,
        "banned in the second connection, at its fifth violation"
    );
    eprintln!("reconnecting offender banned in its second connection ({violations} violations sent, 4 per connection): {reason}");

    let (height, _) = tip_of(&h1);
    assert!(height > after_attacks.0, "H1 still mines");
    eprintln!("done in {:?}", started.elapsed());
    h2.stop_cleanly();
    h1.stop_cleanly();
}
