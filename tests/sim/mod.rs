//! A deterministic network simulation: many nodes' real logic (the chain manager over a
//! memory store, and the network state machine `core::protocol::machine::Protocol`) joined
//! by a simulated network with seeded random latency, gossip loss, partitions that heal,
//! and crashes with restarts, several nodes mining.
//!
//! Everything is driven by one seeded random number generator and one event queue ordered
//! by (time, sequence number), so a seed replays exactly.
//!
//! ```text
//!   phase 1  mining      blocks found at random; a partition splits the nodes for a while;
//!                        some nodes crash (their logic is rebuilt from their store)
//!   phase 2  quiet       mining stops, every partition heals, every node is up
//!   phase 3  closing     one miner finds a last block (a tie between equal-work tips is
//!                        only broken by the next block), repeated while ties remain
//!   check    within a bound: same tip, same state root, same accounts everywhere, and the
//!            tip is the block with the most work any node stored
//! ```
//! Gossip is modelled as gossipsub does it: a node hands a message to the logic once (a
//! seen-cache drops duplicates) and forwards it to its other neighbours only on `Accept`.
#![allow(dead_code)]

use cairn::core::chain::manager::ChainManager;
use cairn::core::chain::memory::MemoryChainStore;
use cairn::core::chain::BlockStatus;
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Amount, Block, BlockHash};
use cairn::core::protocol::machine::{Action, Event, Protocol, ProtocolConfig, Verdict};
use cairn::core::protocol::messages::{SyncRequest, SyncResponse};
use cairn::core::state::StateView;
use cairn::core::testkit::{solve, test_address, test_keypair, test_spec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Node number in the simulation.
pub type NodeId = usize;

/// The simulation's knobs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes.
    pub nodes: usize,
    /// Nodes 0..miners mine (each has a funded test key).
    pub miners: usize,
    /// Extra random links per node (beyond a ring).
    pub extra_links: usize,
    /// Mean time between blocks, network-wide, in ms.
    pub block_interval_ms: u64,
    /// How long mining runs, in ms.
    pub mining_ms: u64,
    /// Latency range of one message, in ms.
    pub latency_ms: (u64, u64),
    /// Chance that a gossip message is lost, in percent.
    pub gossip_loss_percent: u32,
    /// Crashes during mining.
    pub crashes: usize,
    /// Whether a partition happens during mining.
    pub partition: bool,
    /// Quiet time after mining before the closing block, in ms.
    pub settle_ms: u64,
    /// Bound on convergence after the closing block, in ms.
    pub converge_bound_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 20,
            miners: 4,
            extra_links: 3,
            block_interval_ms: 10_000,
            mining_ms: 400_000,
            latency_ms: (5, 250),
            gossip_loss_percent: 5,
            crashes: 3,
            partition: true,
            settle_ms: 60_000,
            converge_bound_ms: 120_000,
        }
    }
}

/// What the run saw.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Blocks mined in all.
    pub blocks_mined: usize,
    /// Reorganizations across all nodes.
    pub reorgs: usize,
    /// Deepest reorganization seen.
    pub deepest_reorg: usize,
    /// Height of the final tip.
    pub final_height: u32,
    /// Simulated ms from the heal until every node was on a heaviest tip.
    pub heaviest_after_heal_ms: u64,
    /// Simulated ms from the closing block to agreement.
    pub converged_after_ms: u64,
    /// Closing blocks needed to break ties.
    pub closing_blocks: usize,
    /// Bans issued (honest nodes should issue none).
    pub bans: usize,
    /// Events processed.
    pub events: u64,
}

#[derive(Debug)]
enum Payload {
    Connected,
    Disconnected,
    Request { id: u64, request: SyncRequest },
    Response { id: u64, response: SyncResponse },
    RequestFailed { id: u64 },
    Gossip(Block),
    Tick,
    Continue,
    Mine,
    Crash { down_ms: u64 },
    Restart,
    Partition { groups: Vec<u8>, heal_after_ms: u64 },
    Heal,
}

#[derive(Debug)]
struct Delivery {
    to: NodeId,
    from: NodeId,
    /// The link epoch the message was sent in: a message from a closed connection is lost.
    epoch: u64,
    payload: Payload,
}

struct SimNode {
    chain: ChainManager<MemoryChainStore>,
    protocol: Protocol<NodeId>,
    up: bool,
    incarnation: u64,
    seen: BTreeSet<BlockHash>,
    group: u8,
}

/// The simulated network.
pub struct Sim {
    config: SimConfig,
    spec: ChainSpec,
    rng: ChaCha8Rng,
    now_ms: u64,
    start_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    deliveries: BTreeMap<u64, Delivery>,
    nodes: Vec<SimNode>,
    links: BTreeSet<(NodeId, NodeId)>,
    /// Connection state and epoch of each link.
    connected: BTreeMap<(NodeId, NodeId), (bool, u64)>,
    /// Inbound request handle → (requester, requester's id, link epoch).
    inbound: BTreeMap<u64, (NodeId, u64)>,
    next_inbound: u64,
    mining: bool,
    report: SimReport,
    protocol_config: ProtocolConfig,
}

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Sim {
    /// A network of `config.nodes` fresh nodes on the test chain, seeded by `seed`.
    pub fn new(config: SimConfig, seed: u64) -> Sim {
        let spec = test_spec();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let protocol_config = ProtocolConfig {
            request_timeout_ms: 10_000,
            status_interval_ms: 15_000,
            ..ProtocolConfig::default()
        };
        let nodes = (0..config.nodes)
            .map(|_| SimNode {
                chain: ChainManager::new(MemoryChainStore::new(&spec), spec.clone())
                    .expect("memory store"),
                protocol: Protocol::new(protocol_config, []),
                up: true,
                incarnation: 0,
                seen: BTreeSet::new(),
                group: 0,
            })
            .collect();
        let mut links = BTreeSet::new();
        for i in 0..config.nodes {
            links.insert(link(i, (i + 1) % config.nodes));
            for _ in 0..config.extra_links {
                let j = rng.random_range(0..config.nodes);
                if j != i {
                    links.insert(link(i, j));
                }
            }
        }
        let start_ms = (u64::from(spec.file.genesis.time) + 3_600) * 1000;
        Sim {
            config,
            spec,
            rng,
            now_ms: start_ms,
            start_ms,
            seq: 0,
            queue: BinaryHeap::new(),
            deliveries: BTreeMap::new(),
            nodes,
            links,
            connected: BTreeMap::new(),
            inbound: BTreeMap::new(),
            next_inbound: 1,
            mining: true,
            report: SimReport::default(),
            protocol_config,
        }
    }

    fn schedule(&mut self, at_ms: u64, to: NodeId, from: NodeId, epoch: u64, payload: Payload) {
        let seq = self.seq;
        self.seq += 1;
        self.queue.push(Reverse((at_ms, seq)));
        self.deliveries.insert(
            seq,
            Delivery {
                to,
                from,
                epoch,
                payload,
            },
        );
    }

    fn latency(&mut self) -> u64 {
        let (lo, hi) = self.config.latency_ms;
        self.rng.random_range(lo..=hi)
    }

    fn exp_delay(&mut self, mean_ms: u64) -> u64 {
        let u: f64 = self.rng.random_range(1e-9..1.0);
        ((-u.ln()) * mean_ms as f64) as u64 + 1
    }

    fn link_up(&self, a: NodeId, b: NodeId) -> bool {
        self.nodes[a].up && self.nodes[b].up && self.nodes[a].group == self.nodes[b].group
    }

    fn epoch(&self, a: NodeId, b: NodeId) -> Option<u64> {
        match self.connected.get(&link(a, b)) {
            Some((true, epoch)) => Some(*epoch),
            _ => None,
        }
    }

    /// Opens and closes connections to match who is up and who is partitioned.
    fn refresh_links(&mut self) {
        let links: Vec<_> = self.links.iter().copied().collect();
        for (a, b) in links {
            let want = self.link_up(a, b);
            let (is, epoch) = self.connected.get(&(a, b)).copied().unwrap_or((false, 0));
            if want == is {
                continue;
            }
            let epoch = epoch + 1;
            self.connected.insert((a, b), (want, epoch));
            // Connection events travel with a fixed delay, so they stay in order.
            let at = self.now_ms + 1;
            for (to, from) in [(a, b), (b, a)] {
                let payload = if want {
                    Payload::Connected
                } else {
                    Payload::Disconnected
                };
                self.schedule(at, to, from, epoch, payload);
            }
        }
    }

    /// Runs the whole scenario; `Err` describes a broken invariant.
    pub fn run(mut self) -> Result<SimReport, String> {
        let n = self.config.nodes;
        for i in 0..n {
            let offset = self.rng.random_range(0..1000);
            self.schedule(self.now_ms + offset, i, i, 0, Payload::Tick);
        }
        for miner in 0..self.config.miners {
            let delay = self.exp_delay(self.config.block_interval_ms * self.config.miners as u64);
            self.schedule(self.now_ms + delay, miner, miner, 0, Payload::Mine);
        }
        let mining_end = self.start_ms + self.config.mining_ms;
        for _ in 0..self.config.crashes {
            let node = self.rng.random_range(0..n);
            let at = self.start_ms + self.rng.random_range(0..self.config.mining_ms);
            let down_ms = self.rng.random_range(2_000..120_000);
            self.schedule(at, node, node, 0, Payload::Crash { down_ms });
        }
        if self.config.partition {
            let groups: Vec<u8> = (0..n).map(|_| self.rng.random_range(0..2)).collect();
            // Often still split when mining stops: then the heal is the end of phase 1.
            let at = self.start_ms
                + self
                    .rng
                    .random_range(30_000..self.config.mining_ms * 9 / 10);
            let heal_after_ms = self.rng.random_range(30_000..self.config.mining_ms / 2);
            self.schedule(
                at,
                0,
                0,
                0,
                Payload::Partition {
                    groups,
                    heal_after_ms,
                },
            );
        }
        self.refresh_links();

        // Phase 1: mining with disruptions.
        self.run_until(mining_end);
        // Phase 2: quiet. Everything heals and restarts.
        self.mining = false;
        for node in &mut self.nodes {
            node.group = 0;
        }
        let down: Vec<NodeId> = (0..n).filter(|i| !self.nodes[*i].up).collect();
        for i in down {
            self.restart(i);
        }
        self.refresh_links();
        let healed_at = self.now_ms;
        let settle_end = healed_at + self.config.settle_ms;
        let mut on_heaviest = None;
        while self.now_ms < settle_end {
            self.run_until(self.now_ms + 1_000);
            if on_heaviest.is_none() && self.all_on_a_heaviest_tip() {
                on_heaviest = Some(self.now_ms - healed_at);
            }
        }
        match on_heaviest {
            Some(after) => self.report.heaviest_after_heal_ms = after,
            None => {
                return Err(format!(
                    "{} s after the heal, some nodes are still not on a heaviest tip\n{}",
                    self.config.settle_ms / 1000,
                    self.describe()
                ))
            }
        }
        // Phase 3: closing blocks until the heaviest tip is unique, then the bound.
        loop {
            let miner = self.rng.random_range(0..self.config.miners);
            self.mine(miner);
            self.report.closing_blocks += 1;
            let closed_at = self.now_ms;
            let deadline = closed_at + self.config.converge_bound_ms;
            let mut converged = None;
            while self.now_ms < deadline {
                let step = (self.now_ms + 1_000).min(deadline);
                self.run_until(step);
                if self.agreement().is_ok() {
                    converged = Some(self.now_ms - closed_at);
                    break;
                }
            }
            if self.heaviest_tips().len() > 1 && self.report.closing_blocks < 5 {
                continue; // A tie among the heaviest: one more block decides it.
            }
            match converged {
                Some(after) => {
                    self.report.converged_after_ms = after;
                    break;
                }
                None => {
                    return Err(format!(
                        "no agreement {} s after the closing block: {}\n{}",
                        self.config.converge_bound_ms / 1000,
                        self.agreement().unwrap_err(),
                        self.describe()
                    ))
                }
            }
        }
        self.agreement()?;
        self.report.final_height = self.nodes[0].chain.tip().height();
        Ok(self.report)
    }

    fn run_until(&mut self, until_ms: u64) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > until_ms {
                break;
            }
            self.queue.pop();
            self.now_ms = self.now_ms.max(at);
            let delivery = self.deliveries.remove(&seq).expect("scheduled");
            self.report.events += 1;
            self.deliver(delivery);
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    fn deliver(&mut self, d: Delivery) {
        let Delivery {
            to,
            from,
            epoch,
            payload,
        } = d;
        match payload {
            Payload::Tick => {
                if self.nodes[to].up {
                    self.handle(to, Event::Tick);
                }
                self.schedule(self.now_ms + 1_000, to, to, 0, Payload::Tick);
            }
            Payload::Continue => {
                if self.nodes[to].up {
                    self.handle(to, Event::Continue);
                }
            }
            Payload::Mine => {
                if self.mining {
                    if self.nodes[to].up {
                        self.mine(to);
                    }
                    let mean = self.config.block_interval_ms * self.config.miners as u64;
                    let delay = self.exp_delay(mean);
                    self.schedule(self.now_ms + delay, to, to, 0, Payload::Mine);
                }
            }
            Payload::Crash { down_ms } => {
                if self.nodes[to].up && self.mining {
                    self.nodes[to].up = false;
                    self.refresh_links();
                    self.schedule(self.now_ms + down_ms, to, to, 0, Payload::Restart);
                }
            }
            Payload::Restart => {
                if !self.nodes[to].up {
                    self.restart(to);
                    self.refresh_links();
                }
            }
            Payload::Partition {
                groups,
                heal_after_ms,
            } => {
                if self.mining {
                    for (node, group) in self.nodes.iter_mut().zip(groups) {
                        node.group = group;
                    }
                    self.refresh_links();
                    self.schedule(self.now_ms + heal_after_ms, 0, 0, 0, Payload::Heal);
                }
            }
            Payload::Heal => {
                for node in &mut self.nodes {
                    node.group = 0;
                }
                self.refresh_links();
            }
            Payload::Connected => {
                if self.epoch(to, from) == Some(epoch) {
                    self.handle(to, Event::PeerConnected(from));
                }
            }
            Payload::Disconnected => {
                if self.nodes[to].up {
                    self.handle(to, Event::PeerDisconnected(from));
                }
            }
            Payload::Request { id, request } => {
                if self.epoch(to, from) != Some(epoch) {
                    return; // The connection closed: the requester saw the disconnect.
                }
                let inbound = self.next_inbound;
                self.next_inbound += 1;
                self.inbound.insert(inbound, (from, id));
                self.handle(
                    to,
                    Event::Request {
                        peer: from,
                        id: inbound,
                        request,
                    },
                );
            }
            Payload::Response { id, response } => {
                if self.epoch(to, from) == Some(epoch) {
                    self.handle(
                        to,
                        Event::Response {
                            peer: from,
                            id,
                            response,
                        },
                    );
                }
            }
            Payload::RequestFailed { id } => {
                if self.epoch(to, from) == Some(epoch) {
                    self.handle(to, Event::RequestFailed { peer: from, id });
                }
            }
            Payload::Gossip(block) => {
                if self.epoch(to, from) != Some(epoch) || !self.nodes[to].seen.insert(block.hash())
                {
                    return;
                }
                let actions = self.handle_collect(
                    to,
                    Event::GossipBlock {
                        peer: from,
                        block: block.clone(),
                    },
                );
                let accepted = actions.iter().any(|a| {
                    matches!(a, Action::Verdict { hash, verdict: Verdict::Accept, .. } if *hash == block.hash())
                });
                self.carry_out(to, actions);
                if accepted {
                    self.gossip(to, Some(from), &block);
                }
            }
        }
    }

    fn restart(&mut self, i: NodeId) {
        let bans: Vec<(NodeId, u64)> = self.nodes[i]
            .protocol
            .bans()
            .map(|(p, until)| (*p, until))
            .collect();
        let node = &mut self.nodes[i];
        node.protocol = Protocol::new(self.protocol_config, bans);
        node.up = true;
        node.incarnation += 1;
        node.seen.clear();
    }

    fn mine(&mut self, i: NodeId) {
        let now_secs = self.now_ms / 1000;
        let node = &self.nodes[i];
        let key = test_keypair(i as u8);
        let from = test_address(i as u8);
        let nonce = node
            .chain
            .store()
            .account(&from)
            .ok()
            .flatten()
            .map_or(0, |a| a.nonce);
        let to = test_address(self.rng.random_range(0..20u8));
        let transfer = UnsignedTransfer {
            chain_id: self.spec.chain_id(),
            to,
            amount: Amount::from_units(self.rng.random_range(1..1_000)),
            fee: Amount::from_units(1),
            nonce,
            memo: Vec::new(),
        }
        .sign(&key, &node.chain.genesis_hash(), &[3u8; 32]);
        let extra_nonce = self.rng.random();
        let Ok(template) = node
            .chain
            .template(from, now_secs, extra_nonce, vec![transfer])
        else {
            return;
        };
        let mut block = template.block;
        solve(&mut block.header);
        self.report.blocks_mined += 1;
        self.nodes[i].seen.insert(block.hash());
        self.handle(i, Event::Mined(block));
    }

    fn handle(&mut self, i: NodeId, event: Event<NodeId>) {
        let actions = self.handle_collect(i, event);
        self.carry_out(i, actions);
    }

    fn handle_collect(&mut self, i: NodeId, event: Event<NodeId>) -> Vec<Action<NodeId>> {
        let now = self.now_ms;
        let node = &mut self.nodes[i];
        node.protocol.handle(event, &mut node.chain, now)
    }

    fn gossip(&mut self, from: NodeId, except: Option<NodeId>, block: &Block) {
        let neighbours: Vec<NodeId> = self
            .links
            .iter()
            .filter_map(|&(a, b)| {
                if a == from {
                    Some(b)
                } else if b == from {
                    Some(a)
                } else {
                    None
                }
            })
            .filter(|n| Some(*n) != except)
            .collect();
        for to in neighbours {
            let Some(epoch) = self.epoch(from, to) else {
                continue;
            };
            if self.rng.random_range(0..100) < self.config.gossip_loss_percent {
                continue;
            }
            let at = self.now_ms + self.latency();
            self.schedule(at, to, from, epoch, Payload::Gossip(block.clone()));
        }
    }

    fn carry_out(&mut self, i: NodeId, actions: Vec<Action<NodeId>>) {
        for action in actions {
            match action {
                Action::Request { peer, id, request } => {
                    if let Some(epoch) = self.epoch(i, peer) {
                        let at = self.now_ms + self.latency();
                        self.schedule(at, peer, i, epoch, Payload::Request { id, request });
                    }
                }
                Action::Respond { id, response } => {
                    if let Some((requester, their_id)) = self.inbound.remove(&id) {
                        if let Some(epoch) = self.epoch(i, requester) {
                            let at = self.now_ms + self.latency();
                            self.schedule(
                                at,
                                requester,
                                i,
                                epoch,
                                Payload::Response {
                                    id: their_id,
                                    response,
                                },
                            );
                        }
                    }
                }
                Action::Refuse { id } => {
                    if let Some((requester, their_id)) = self.inbound.remove(&id) {
                        if let Some(epoch) = self.epoch(i, requester) {
                            let at = self.now_ms + self.latency();
                            self.schedule(
                                at,
                                requester,
                                i,
                                epoch,
                                Payload::RequestFailed { id: their_id },
                            );
                        }
                    }
                }
                Action::Publish(block) => self.gossip(i, None, &block),
                Action::Verdict { .. } | Action::TransferVerdict { .. } => {}
                Action::Disconnect(peer) => {
                    // Closing a connection in the simulation: both ends see it; the link
                    // reopens at the next refresh (as peer upkeep would redial).
                    let l = link(i, peer);
                    if let Some((true, epoch)) = self.connected.get(&l).copied() {
                        self.connected.insert(l, (false, epoch + 1));
                        for (to, from) in [(i, peer), (peer, i)] {
                            self.schedule(
                                self.now_ms + 1,
                                to,
                                from,
                                epoch + 1,
                                Payload::Disconnected,
                            );
                        }
                    }
                }
                Action::Ban { .. } => self.report.bans += 1,
                Action::Unbanned(_) => {}
                Action::TipChanged { reorg, .. } => {
                    if let Some(reorg) = reorg {
                        self.report.reorgs += 1;
                        self.report.deepest_reorg =
                            self.report.deepest_reorg.max(reorg.disconnected);
                    }
                }
                Action::MinedStale { .. } | Action::Progress { .. } => {}
                Action::StoreFailed(e) => panic!("memory store failed: {e}"),
                Action::Continue => self.schedule(self.now_ms, i, i, 0, Payload::Continue),
            }
        }
    }

    /// The heaviest valid blocks any node stored, on any branch (more than one: a tie).
    fn heaviest_tips(&self) -> BTreeSet<BlockHash> {
        let valid: Vec<_> = self
            .nodes
            .iter()
            .flat_map(|n| n.chain.store().entries())
            .filter(|e| e.status == BlockStatus::Valid)
            .collect();
        let Some(max) = valid.iter().map(|e| e.chain_work).max() else {
            return BTreeSet::new();
        };
        valid
            .into_iter()
            .filter(|e| e.chain_work == max)
            .map(|e| e.hash())
            .collect()
    }

    /// Whether every node's tip is one of the heaviest blocks stored anywhere (equal-work
    /// tips may differ until the next block).
    fn all_on_a_heaviest_tip(&self) -> bool {
        let heaviest = self.heaviest_tips();
        self.nodes
            .iter()
            .all(|n| heaviest.contains(&n.chain.tip().hash()))
    }

    /// `Ok` if every node has the same tip, state root and accounts, and that tip is the
    /// heaviest valid block any node stored.
    fn agreement(&self) -> Result<(), String> {
        let first = &self.nodes[0].chain;
        let tip = first.tip();
        for (i, node) in self.nodes.iter().enumerate() {
            let other = node.chain.tip();
            if other.hash() != tip.hash() {
                return Err(format!(
                    "node {i} is at {} (height {}), node 0 at {} (height {})",
                    other.hash(),
                    other.height(),
                    tip.hash(),
                    tip.height()
                ));
            }
            if other.header.state_root != tip.header.state_root {
                return Err(format!("node {i} has another state root"));
            }
            if node.chain.store().accounts() != first.store().accounts() {
                return Err(format!("node {i} has other accounts"));
            }
        }
        let heaviest = self.heaviest_tips();
        if !heaviest.contains(&tip.hash()) {
            return Err(format!(
                "the common tip {} is not the heaviest block stored ({heaviest:?})",
                tip.hash()
            ));
        }
        Ok(())
    }

    /// A line per node, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let tip = node.chain.tip();
            out.push_str(&format!(
                "  node {i:2}: up {} height {:4} tip {} work {} blocks stored {} peers {}\n",
                node.up,
                tip.height(),
                tip.hash(),
                tip.chain_work,
                node.chain.store().block_count(),
                node.protocol.peers().count(),
            ));
        }
        out
    }
}
