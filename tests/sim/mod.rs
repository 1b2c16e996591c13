//! A deterministic network simulation: many nodes' real logic (the chain manager over a
//! memory store, and the node logic `core::logic::NodeLogic`: the network state machine,
//! the mempool's part in it, the miner's templates) joined by a simulated network with
//! seeded random latency, gossip loss, lost requests and answers, clocks skewed within
//! half the spec's drift, partitions that heal, and crashes with restarts (the pool comes
//! back from the node's journal; half of the crashes tear the last write, and the store
//! reopens without its tip block), several nodes mining on the templates their logic gives
//! them, and clients submitting transfers at random nodes, gossiped through the mempools.
//! A miner finds its next block after a time drawn from its template's difficulty (ASERT, on
//! a 10-minute half-life) and the hash power of the moment, which swings up 4x and down 4x
//! for a while (miners joining and leaving), so the difficulty really follows the network.
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
//!   check    within a bound: same tip, same state root, same accounts on every honest
//!            node, and the tip is the block with the most work any honest node stored;
//!            no honest node banned or penalised another; no spam block stored; every
//!            (node, sender, nonce) an honest node took into its pool is used by the final
//!            chain or still held there (no accepted transfer lost)
//! ```
//! Gossip is modelled as gossipsub does it: a node hands a message to the logic once (a
//! seen-cache drops duplicates) and forwards it to its other neighbours only on `Accept`.
//!
//! Hostile nodes (issue 11) join the honest ones, each linked to a few honest nodes, each
//! with one behaviour ([`Hostile`]): a low-work side-branch spammer, a selfish miner with a
//! minority of the hash power, a status liar that stalls every block request, an orphan
//! flooder, a sender of invalid blocks (which honest relays must stop, not forward), and an
//! offender that reconnects after every four violations. They run the honest logic for
//! everything their behaviour does not replace. The chain is the test chain with genesis 256
//! times harder than the pow limit, so ASERT moves and cheap blocks are cheaper than real ones.
use cairn::core::chain::manager::{ChainManager, ChainStore};
use cairn::core::chain::memory::MemoryChainStore;
use cairn::core::chain::stats::difficulty;
use cairn::core::chain::BlockStatus;
use cairn::core::consensus::target::Work;
use cairn::core::consensus::{ChainSpec, CompactTarget};
use cairn::core::logic::{Input, LogicConfig, MiningSetup, NodeLogic, Output};
use cairn::core::mempool::{Mempool, MempoolConfig};
use cairn::core::miner::{template_on, BlockTemplate};
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, Block, BlockHash, Transfer, Txid};
use cairn::core::protocol::compact::{BlockAnnouncement, CompactBlock};
use cairn::core::protocol::machine::{Action, Event, Protocol, ProtocolConfig, Verdict};
use cairn::core::protocol::messages::{SyncRequest, SyncResponse};
use cairn::core::protocol::peers::Misbehavior;
use cairn::core::state::StateView;
use cairn::core::testkit::{solve, test_address, test_keypair, test_spec_with_genesis_bits};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::{Arc, RwLock};

/// Node number in the simulation.
pub type NodeId = usize;

/// What a hostile node does instead of (or on top of) the honest logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// Gossips, every attack tick, a block on a short side branch off an ancestor 2 to 6
    /// blocks below its tip: valid, but with less work than the tip.
    SideBranchSpammer,
    /// Mines a private branch with a minority share of the hash power and publishes it
    /// selfishly (when the honest chain comes within one block of it).
    SelfishMiner,
    /// Claims the most chain work there is in every status, and never answers a block
    /// request.
    StatusLiarStaller,
    /// Gossips blocks with pow-limit bits and made-up parents (about 2 hashes each).
    OrphanFlooder,
    /// Gossips blocks on its tip with a wrong reward (valid proof of work and merkle root).
    InvalidBlockSender,
    /// Commits a protocol violation every attack tick and reconnects after every four.
    ReconnectingOffender,
}

impl Hostile {
    /// Every behaviour once.
    pub const ALL: [Hostile; 6] = [
        Hostile::SideBranchSpammer,
        Hostile::SelfishMiner,
        Hostile::StatusLiarStaller,
        Hostile::OrphanFlooder,
        Hostile::InvalidBlockSender,
        Hostile::ReconnectingOffender,
    ];
}

/// The ASERT half-life of the simulation's chain (the test chain's is an hour, longer than a
/// run).
const ASERT_HALF_LIFE_SECS: u32 = 600;

/// The simulation's knobs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes.
    pub nodes: usize,
    /// Nodes 0..miners mine (each has a funded test key).
    pub miners: usize,
    /// Extra random links per node (beyond a ring).
    pub extra_links: usize,
    /// Mean time between blocks, network-wide, at the genesis difficulty and the miners'
    /// usual hash power, in ms. The real interval follows each template's difficulty (ASERT)
    /// and the hash power of the moment.
    pub block_interval_ms: u64,
    /// Whether the miners' hash power swings during mining: once up 4x (miners join) and
    /// once down 4x (miners leave), each for a while, so ASERT has something to follow.
    pub hash_power_swings: bool,
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
    /// Hostile nodes, numbered after the honest ones.
    pub hostile: Vec<Hostile>,
    /// Honest nodes each hostile node links to.
    pub hostile_links: usize,
    /// Time between a hostile node's attacks, in ms.
    pub attack_interval_ms: u64,
    /// The selfish miner's share of all hash power, in percent (below 50).
    pub selfish_share_percent: u64,
    /// Mean time between transfers submitted (at a random honest node) while mining, in ms.
    pub transfer_interval_ms: u64,
    /// Chance that a request or its answer is lost, in percent.
    pub request_loss_percent: u32,
    /// Each node's clock is off by up to this much either way, in ms (at most half the
    /// spec's allowed drift, so any two clocks differ by no more than it).
    pub clock_skew_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 20,
            miners: 4,
            extra_links: 3,
            block_interval_ms: 10_000,
            hash_power_swings: true,
            mining_ms: 400_000,
            latency_ms: (5, 250),
            gossip_loss_percent: 5,
            crashes: 3,
            partition: true,
            settle_ms: 60_000,
            converge_bound_ms: 120_000,
            hostile: Vec::new(),
            hostile_links: 3,
            attack_interval_ms: 1_500,
            selfish_share_percent: 30,
            transfer_interval_ms: 2_000,
            request_loss_percent: 2,
            clock_skew_ms: 60_000,
        }
    }
}

/// What the run saw.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Blocks mined in all.
    pub blocks_mined: usize,
    /// The hardest and the easiest template any miner worked on, as multiples of the
    /// genesis difficulty: how far ASERT moved.
    pub difficulty_range: (f64, f64),
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
    /// Bans of honest nodes by honest nodes (must be none).
    pub bans: usize,
    /// Bans of hostile nodes by honest nodes.
    pub hostile_bans: usize,
    /// Attack blocks sent (spam, junk orphans, invalid blocks).
    pub attack_blocks: usize,
    /// Blocks the selfish miner published.
    pub selfish_published: usize,
    /// The most bytes of attack blocks (spam, junk, invalid) one honest node stored.
    pub attack_bytes_stored: usize,
    /// Crashes that tore the last write (the store lost its tip block).
    pub torn_writes: usize,
    /// Events processed.
    pub events: u64,
    /// Transfers clients submitted.
    pub transfers_submitted: usize,
    /// Of those, accepted by the node they were submitted to.
    pub transfers_accepted: usize,
    /// Transfers in the final chain.
    pub transfers_confirmed: usize,
    /// (node, sender, nonce) taken into a pool that are still pending at the end (none lost).
    pub transfers_pending: usize,
    /// Compact blocks honest nodes received.
    pub compact_blocks: usize,
    /// Of those, the ones whose missing transfers an honest node asked its relayer for.
    pub transfer_fetches: usize,
}

#[derive(Debug)]
enum Payload {
    Connected,
    Disconnected,
    Request {
        id: u64,
        request: SyncRequest,
    },
    Response {
        id: u64,
        response: SyncResponse,
    },
    RequestFailed {
        id: u64,
    },
    /// A block: compact from honest relays, whole from attackers.
    Gossip(BlockAnnouncement),
    GossipTransfer(Transfer),
    Submit,
    Tick,
    Continue,
    /// A miner finds a block, if it still works on the template this was drawn for (its
    /// `round`): every new template, and every change of hash power, draws anew.
    Mine {
        round: u64,
    },
    /// The miners' hash power becomes this percentage of the usual.
    HashPower {
        percent: u64,
    },
    Crash {
        down_ms: u64,
        torn: bool,
    },
    Restart,
    Partition {
        groups: Vec<u8>,
        heal_after_ms: u64,
    },
    Heal,
    Attack,
    MinePrivate,
    Offence,
    Redial,
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
    logic: NodeLogic<NodeId>,
    /// What its mempool journal holds (durable at once here): restored after a crash.
    journal: Vec<Transfer>,
    /// The template its miner works on.
    template: Option<BlockTemplate>,
    /// Counts the template draws of its miner; a `Mine` of an older round is void.
    mining_round: u64,
    /// How far its clock is off, in ms.
    skew_ms: i64,
    up: bool,
    incarnation: u64,
    seen: BTreeSet<BlockHash>,
    seen_transfers: BTreeSet<Txid>,
    group: u8,
    role: Option<Hostile>,
    /// The selfish miner's private branch, its chain, and the public height it forked at.
    private: Option<(ChainManager<MemoryChainStore>, Vec<Block>, u32)>,
    offences: u32,
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
    /// The miners' hash power, in percent of the usual.
    hash_power_percent: u64,
    /// The genesis difficulty (multiples of the pow limit).
    genesis_difficulty: f64,
    report: SimReport,
    protocol_config: ProtocolConfig,
    /// Hashes of the attack blocks, which no honest node may keep.
    attack_blocks: BTreeSet<BlockHash>,
    /// Hashes of the invalid blocks sent: an honest node stores one only if it was the tip's
    /// child, which cost a full block of work.
    invalid_blocks: BTreeSet<BlockHash>,
    /// Broken invariants seen along the way.
    violations: Vec<String>,
    /// Every (node, sender, nonce) an honest node took into its pool, with the transfer.
    accepted: BTreeMap<(NodeId, Address, u64), Txid>,
    /// Why a node's pool dropped a transfer as invalid, for failure messages.
    dropped: BTreeMap<(NodeId, Txid), String>,
    next_submission: u64,
}

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

/// A node's logic, as the node's driver builds it: a fresh mempool on `chain`'s tip.
fn new_logic(
    config: ProtocolConfig,
    chain: &ChainManager<MemoryChainStore>,
    miner: Option<MiningSetup>,
    bans: impl IntoIterator<Item = (NodeId, u64)>,
    now_ms: u64,
) -> NodeLogic<NodeId> {
    let mempool = Mempool::new(
        MempoolConfig::default(),
        chain.genesis_hash(),
        chain.spec().chain_id(),
    )
    .with_signature_cache(chain.signature_cache().clone());
    NodeLogic::new(
        LogicConfig::default(),
        Protocol::new(config, bans),
        Arc::new(RwLock::new(mempool)),
        chain.tip().clone(),
        miner,
        now_ms,
    )
}

impl Sim {
    /// A network of `config.nodes` fresh nodes on the test chain, seeded by `seed`.
    pub fn new(config: SimConfig, seed: u64) -> Sim {
        // ASERT with a 10-minute half-life, so the difficulty follows the swings of hash
        // power within the run; the network starts on schedule (2 minutes after genesis),
        // not behind it.
        let mut file = test_spec_with_genesis_bits("0x1f7fffff").file;
        file.consensus.asert_half_life_secs = ASERT_HALF_LIFE_SECS;
        let spec = ChainSpec::from_file(file).expect("the simulation's spec is valid");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let protocol_config = ProtocolConfig {
            request_timeout_ms: 10_000,
            status_interval_ms: 15_000,
            ..ProtocolConfig::default()
        };
        let roles = (0..config.nodes)
            .map(|_| None)
            .chain(config.hostile.iter().copied().map(Some));
        let start_ms = (u64::from(spec.file.genesis.time) + 120) * 1000;
        let skew = config
            .clock_skew_ms
            .min(u64::from(spec.file.consensus.max_future_drift_secs) * 500)
            as i64;
        let nodes = roles
            .enumerate()
            .map(|(i, role)| {
                let chain = ChainManager::new(MemoryChainStore::new(&spec), spec.clone())
                    .expect("memory store");
                let miner = (i < config.miners).then(|| MiningSetup {
                    reward_address: test_address(i as u8),
                    extra_nonce: rng.random(),
                });
                let logic = new_logic(protocol_config, &chain, miner, [], start_ms);
                SimNode {
                    chain,
                    logic,
                    journal: Vec::new(),
                    template: None,
                    mining_round: 0,
                    skew_ms: rng.random_range(-skew..=skew),
                    up: true,
                    incarnation: 0,
                    seen: BTreeSet::new(),
                    seen_transfers: BTreeSet::new(),
                    group: 0,
                    role,
                    private: None,
                    offences: 0,
                }
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
        for h in 0..config.hostile.len() {
            for _ in 0..config.hostile_links {
                let j = rng.random_range(0..config.nodes);
                links.insert(link(config.nodes + h, j));
            }
        }
        let genesis_difficulty = difficulty(&spec.pow_limit, spec.genesis_bits);
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
            hash_power_percent: 100,
            genesis_difficulty,
            report: SimReport {
                difficulty_range: (1.0, 1.0),
                ..SimReport::default()
            },
            protocol_config,
            attack_blocks: BTreeSet::new(),
            invalid_blocks: BTreeSet::new(),
            violations: Vec::new(),
            accepted: BTreeMap::new(),
            dropped: BTreeMap::new(),
            next_submission: 1,
        }
    }

    fn is_honest(&self, i: NodeId) -> bool {
        i < self.config.nodes
    }

    fn honest(&self) -> impl Iterator<Item = &SimNode> {
        self.nodes[..self.config.nodes].iter()
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
        // The simulation's blocks are small: run their transfers in independent batches
        // anyway, so every seed checks parallel execution against the other nodes' state.
        cairn::core::consensus::apply::run_small_blocks_in_parallel();
        let n = self.config.nodes;
        let all = self.nodes.len();
        for i in 0..all {
            let offset = self.rng.random_range(0..1000);
            self.schedule(self.now_ms + offset, i, i, 0, Payload::Tick);
        }
        for i in n..all {
            let offset = self.rng.random_range(0..self.config.attack_interval_ms);
            self.schedule(self.now_ms + offset, i, i, 0, Payload::Attack);
            if self.nodes[i].role == Some(Hostile::SelfishMiner) {
                let delay = self.exp_delay(self.selfish_interval_ms());
                self.schedule(self.now_ms + delay, i, i, 0, Payload::MinePrivate);
            }
        }
        if self.config.hash_power_swings {
            // Up 4x (miners join) in the first half of mining, down 4x (they leave) in the
            // second, each for 30-120 s; the usual power in between.
            let half = self.config.mining_ms / 2;
            let window = half.saturating_sub(120_000).max(1);
            for (from, percent) in [(0, 400), (half, 25)] {
                let at = self.start_ms + from + self.rng.random_range(0..window);
                let lasts = self.rng.random_range(30_000..120_000);
                self.schedule(at, 0, 0, 0, Payload::HashPower { percent });
                self.schedule(at + lasts, 0, 0, 0, Payload::HashPower { percent: 100 });
            }
        }
        let delay = self.exp_delay(self.config.transfer_interval_ms);
        self.schedule(self.now_ms + delay, 0, 0, 0, Payload::Submit);
        let mining_end = self.start_ms + self.config.mining_ms;
        for _ in 0..self.config.crashes {
            let node = self.rng.random_range(0..n);
            let at = self.start_ms + self.rng.random_range(0..self.config.mining_ms);
            let down_ms = self.rng.random_range(2_000..120_000);
            // Half the crashes tear the last write: the store reopens without its last block.
            let torn = self.rng.random_bool(0.5);
            self.schedule(at, node, node, 0, Payload::Crash { down_ms, torn });
        }
        if self.config.partition {
            let groups: Vec<u8> = (0..all).map(|_| self.rng.random_range(0..2)).collect();
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
        // Phase 2: quiet. Everything heals and restarts; the selfish miner shows its hand.
        self.mining = false;
        for i in n..all {
            self.publish_private(i);
        }
        for node in &mut self.nodes {
            node.group = 0;
        }
        let down: Vec<NodeId> = (0..all).filter(|i| !self.nodes[*i].up).collect();
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
        self.check_no_honest_penalties()?;
        self.check_attack_storage()?;
        self.check_no_transfer_lost()?;
        self.report.final_height = self.nodes[0].chain.tip().height();
        Ok(self.report)
    }

    /// Mean time between the selfish miner's blocks: its share of all hash power.
    fn selfish_interval_ms(&self) -> u64 {
        let share = self.config.selfish_share_percent.clamp(1, 99);
        self.config.block_interval_ms * (100 - share) / share
    }

    /// No transfer an honest node took in is lost: for every (node, sender, nonce) it took
    /// in, the final chain used that nonce (the transfer, or another of the same sender with
    /// the same nonce), or the node still holds a transfer of that sender and nonce.
    fn check_no_transfer_lost(&mut self) -> Result<(), String> {
        let chain = &self.nodes[0].chain;
        let mut tip = chain.tip().clone();
        let mut confirmed = 0;
        while tip.height() > 0 {
            let block = chain.block(&tip.hash()).ok().flatten().expect("stored");
            confirmed += block.transfers.len();
            tip = chain
                .entry(&tip.header.prev_hash)
                .ok()
                .flatten()
                .expect("stored");
        }
        self.report.transfers_confirmed = confirmed;
        let mut pending = 0;
        for (&(node, sender, nonce), txid) in &self.accepted {
            let used = chain
                .store()
                .account(&sender)
                .ok()
                .flatten()
                .is_some_and(|account| account.nonce > nonce);
            if used {
                continue;
            }
            let pool = self.nodes[node].logic.mempool().read().expect("pool");
            let held = pool
                .sender_entries(&sender)
                .any(|e| e.transfer.nonce == nonce);
            if !held {
                let why = self
                    .dropped
                    .get(&(node, *txid))
                    .map_or("no drop reported", String::as_str);
                return Err(format!(
                    "node {node} took in transfer {txid} (nonce {nonce}) and lost it: the chain \
                     did not use the nonce and the node no longer holds it ({why})"
                ));
            }
            pending += 1;
        }
        self.report.transfers_pending = pending;
        Ok(())
    }

    /// No honest node holds a score against another honest node.
    fn check_no_honest_penalties(&self) -> Result<(), String> {
        for (i, node) in self.honest().enumerate() {
            for j in 0..self.config.nodes {
                let score = node.logic.protocol().score(&j);
                if score > 0 {
                    return Err(format!(
                        "honest node {i} holds score {score} against honest node {j}"
                    ));
                }
            }
        }
        if self.report.bans > 0 {
            return Err(format!("{} bans of honest nodes", self.report.bans));
        }
        Ok(())
    }

    /// No honest node stored an attack block whose branch had less work than its tip when
    /// it arrived (checked on arrival), nor has an invalid block on its best chain. What it
    /// does store of the attack cost the attacker a block of the tip's work each; the most
    /// bytes one honest node stored is reported.
    fn check_attack_storage(&mut self) -> Result<(), String> {
        if let Some(first) = self.violations.first() {
            return Err(format!("{first} ({} violations)", self.violations.len()));
        }
        for (i, node) in self.nodes[..self.config.nodes].iter().enumerate() {
            let mut bytes = 0;
            for entry in node.chain.store().entries() {
                let hash = entry.hash();
                if self.attack_blocks.contains(&hash) {
                    bytes += node
                        .chain
                        .block(&hash)
                        .ok()
                        .flatten()
                        .map_or(0, |b| b.encoded_size());
                }
                if self.invalid_blocks.contains(&hash) {
                    let on_best = node
                        .chain
                        .store()
                        .best_hash_at(entry.height())
                        .ok()
                        .flatten()
                        == Some(hash);
                    if on_best {
                        return Err(format!(
                            "honest node {i} has invalid block {hash} on its best chain"
                        ));
                    }
                    bytes += node
                        .chain
                        .block(&hash)
                        .ok()
                        .flatten()
                        .map_or(0, |b| b.encoded_size());
                }
            }
            self.report.attack_bytes_stored = self.report.attack_bytes_stored.max(bytes);
        }
        Ok(())
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
                    self.handle_input(to, Input::Wake);
                }
                self.schedule(self.now_ms + 1_000, to, to, 0, Payload::Tick);
            }
            Payload::Continue => {
                if self.nodes[to].up {
                    self.handle(to, Event::Continue);
                }
            }
            Payload::Mine { round } => {
                if self.mining && self.nodes[to].up && self.nodes[to].mining_round == round {
                    self.mine(to);
                }
            }
            Payload::HashPower { percent } => {
                self.hash_power_percent = percent;
                // Finding a block is memoryless: every miner draws anew at the new power.
                for miner in 0..self.config.miners {
                    self.draw_next_block(miner);
                }
            }
            Payload::Crash { down_ms, torn } => {
                if self.nodes[to].up && self.mining {
                    self.nodes[to].up = false;
                    if torn {
                        self.tear_last_write(to);
                    }
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
            Payload::Redial => self.refresh_links(),
            Payload::Attack => {
                if self.nodes[to].up {
                    self.attack(to);
                }
                let next = self.now_ms + self.config.attack_interval_ms;
                self.schedule(next, to, to, 0, Payload::Attack);
            }
            Payload::MinePrivate => {
                if self.mining {
                    if self.nodes[to].up {
                        self.mine_private(to);
                    }
                    let delay = self.exp_delay(self.selfish_interval_ms());
                    self.schedule(self.now_ms + delay, to, to, 0, Payload::MinePrivate);
                }
            }
            Payload::Offence => {
                if self.epoch(to, from) == Some(epoch) {
                    self.handle(
                        to,
                        Event::Misbehaved {
                            peer: from,
                            fault: Misbehavior::ProtocolViolation,
                        },
                    );
                }
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
            Payload::Submit => {
                if self.mining {
                    self.submit();
                    let delay = self.exp_delay(self.config.transfer_interval_ms);
                    self.schedule(self.now_ms + delay, 0, 0, 0, Payload::Submit);
                }
            }
            Payload::GossipTransfer(transfer) => {
                let txid = transfer.txid();
                if self.epoch(to, from) != Some(epoch)
                    || !self.nodes[to].seen_transfers.insert(txid)
                {
                    return;
                }
                let outputs = self.handle_collect(
                    to,
                    Input::GossipTransfer {
                        peer: from,
                        transfer: transfer.clone(),
                    },
                );
                let accepted = outputs.iter().any(|o| {
                    matches!(o, Output::Net(Action::TransferVerdict { txid: t, verdict: Verdict::Accept, .. }) if *t == txid)
                });
                self.carry_out(to, outputs);
                if accepted {
                    self.gossip_transfer(to, Some(from), &transfer);
                }
            }
            Payload::Gossip(announcement) => {
                let hash = announcement.hash();
                if self.epoch(to, from) != Some(epoch) || !self.nodes[to].seen.insert(hash) {
                    return;
                }
                if self.is_honest(to) && matches!(announcement, BlockAnnouncement::Compact(_)) {
                    self.report.compact_blocks += 1;
                }
                let tip_work = self.nodes[to].chain.tip().chain_work;
                // Forwarded on an `Accept` verdict (which a compact block may earn only after
                // its missing transfers arrived): see `carry_out_actions`.
                let outputs = self.handle_collect(
                    to,
                    Input::GossipBlock {
                        peer: from,
                        announcement,
                    },
                );
                let unsolicited_attack = self.is_honest(to)
                    && (self.attack_blocks.contains(&hash) || self.invalid_blocks.contains(&hash));
                if unsolicited_attack {
                    if let Ok(Some(entry)) = self.nodes[to].chain.entry(&hash) {
                        if entry.chain_work < tip_work {
                            self.violations.push(format!(
                                "honest node {to} stored attack block {hash}, whose branch has \
                                 less work than its tip"
                            ));
                        }
                    }
                }
                self.carry_out(to, outputs);
            }
        }
    }

    fn restart(&mut self, i: NodeId) {
        let bans: Vec<(NodeId, u64)> = self.nodes[i]
            .logic
            .protocol()
            .bans()
            .map(|(p, until)| (*p, until))
            .collect();
        let miner = (i < self.config.miners).then(|| MiningSetup {
            reward_address: test_address(i as u8),
            extra_nonce: self.rng.random(),
        });
        let now = self.node_now(i);
        let node = &mut self.nodes[i];
        node.logic = new_logic(self.protocol_config, &node.chain, miner, bans, now);
        node.template = None;
        node.up = true;
        node.incarnation += 1;
        node.seen.clear();
        node.seen_transfers.clear();
        // The pool comes back from the journal, each transfer checked again.
        let saved = node.journal.clone();
        let outputs = self.handle_collect(i, Input::Restore(saved));
        self.carry_out(i, outputs);
    }

    /// A crash in the middle of writing the tip block: the store node `i` reopens holds its
    /// best chain without the tip (side branches it held are gone too, as after a reopen of
    /// a store that kept only what was flushed). The pool's journal is durable before any
    /// transfer is reported accepted, so it is kept whole.
    fn tear_last_write(&mut self, i: NodeId) {
        let chain = &self.nodes[i].chain;
        let mut hashes = Vec::new();
        let mut at = chain.tip().clone();
        while at.height() > 0 {
            hashes.push(at.hash());
            at = chain
                .entry(&at.header.prev_hash)
                .expect("memory store")
                .expect("the best chain is whole");
        }
        if hashes.is_empty() {
            return; // Only genesis: nothing to tear.
        }
        let blocks: Vec<Block> = hashes[1..]
            .iter()
            .rev()
            .map(|hash| chain.block(hash).expect("memory store").expect("stored"))
            .collect();
        let mut reopened = ChainManager::new(MemoryChainStore::new(&self.spec), self.spec.clone())
            .expect("memory store");
        let now_secs = self.node_now(i) / 1000;
        for block in blocks {
            reopened
                .submit_block(block, now_secs)
                .expect("a block of its best chain connects again");
        }
        self.nodes[i].chain = reopened;
        self.report.torn_writes += 1;
    }

    /// This node's clock.
    fn node_now(&self, i: NodeId) -> u64 {
        self.now_ms.saturating_add_signed(self.nodes[i].skew_ms)
    }

    /// A client submits a transfer from a funded test key at a random honest node that is
    /// up, with the next nonce that node knows of.
    fn submit(&mut self) {
        let up: Vec<NodeId> = (0..self.config.nodes)
            .filter(|&i| self.nodes[i].up)
            .collect();
        if up.is_empty() {
            return;
        }
        let i = up[self.rng.random_range(0..up.len())];
        let key_index = self.rng.random_range(0..4u8);
        let from = test_address(key_index);
        let node = &self.nodes[i];
        let account_nonce = node
            .chain
            .store()
            .account(&from)
            .ok()
            .flatten()
            .map_or(0, |a| a.nonce);
        let nonce = node
            .logic
            .mempool()
            .read()
            .expect("pool")
            .next_nonce(&from, account_nonce);
        let transfer = UnsignedTransfer {
            chain_id: self.spec.chain_id(),
            to: test_address(self.rng.random_range(0..20u8)),
            amount: Amount::from_units(self.rng.random_range(1..1_000)),
            fee: Amount::from_units(self.rng.random_range(200..2_000)),
            nonce,
            memo: Vec::new(),
        }
        .sign(
            &test_keypair(key_index),
            &node.chain.genesis_hash(),
            &[3u8; 32],
        );
        self.report.transfers_submitted += 1;
        self.nodes[i].seen_transfers.insert(transfer.txid());
        let id = self.next_submission;
        self.next_submission += 1;
        self.handle_input(i, Input::Submit { id, transfer });
    }

    fn gossip_transfer(&mut self, from: NodeId, except: Option<NodeId>, transfer: &Transfer) {
        self.gossip_payload(from, except, || Payload::GossipTransfer(transfer.clone()));
    }

    /// When miner `i` finds its next block: on its template's difficulty at the hash power of
    /// the moment (all miners together find a genesis-difficulty block every
    /// `block_interval_ms` at 100%). Voids any draw before; no draw without a template or
    /// after mining stopped.
    fn draw_next_block(&mut self, i: NodeId) {
        self.nodes[i].mining_round += 1;
        if !self.mining || i >= self.config.miners {
            return;
        }
        let Some(bits) = self.nodes[i].template.as_ref().map(|t| t.block.header.bits) else {
            return;
        };
        let relative = difficulty(&self.spec.pow_limit, bits) / self.genesis_difficulty;
        let (hardest, easiest) = &mut self.report.difficulty_range;
        *hardest = hardest.max(relative);
        *easiest = easiest.min(relative);
        let mean =
            self.config.block_interval_ms as f64 * self.config.miners as f64 * relative * 100.0
                / self.hash_power_percent as f64;
        let delay = self.exp_delay(mean.round().max(1.0) as u64);
        let round = self.nodes[i].mining_round;
        self.schedule(self.now_ms + delay, i, i, 0, Payload::Mine { round });
    }

    /// The node's miner finds a block on the template it was given last (which may be on
    /// a tip that has moved on: then the block is stale).
    fn mine(&mut self, i: NodeId) {
        let Some(template) = self.nodes[i].template.clone() else {
            return;
        };
        let mut block = template.block;
        solve(&mut block.header);
        self.report.blocks_mined += 1;
        self.nodes[i].seen.insert(block.hash());
        self.handle(i, Event::Mined(block));
    }

    fn handle(&mut self, i: NodeId, event: Event<NodeId>) {
        self.handle_input(i, Input::Net(event));
    }

    fn handle_input(&mut self, i: NodeId, input: Input<NodeId>) {
        let outputs = self.handle_collect(i, input);
        self.carry_out(i, outputs);
        if self.nodes[i].role == Some(Hostile::SelfishMiner) {
            self.selfish_react(i);
        }
    }

    // ----- hostile behaviours -----

    /// The nodes linked to `i` (connected or not).
    fn neighbours(&self, i: NodeId) -> Vec<NodeId> {
        self.links
            .iter()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The neighbours `i` is connected to now, with the connection's epoch.
    fn connected_neighbours(&self, i: NodeId) -> Vec<(NodeId, u64)> {
        self.neighbours(i)
            .into_iter()
            .filter_map(|n| self.epoch(i, n).map(|epoch| (n, epoch)))
            .collect()
    }

    /// Sends `block` by gossip straight to every connected neighbour of `i`.
    fn gossip_attack(&mut self, i: NodeId, block: Block) {
        self.report.attack_blocks += 1;
        for (to, epoch) in self.connected_neighbours(i) {
            let at = self.now_ms + self.latency();
            let whole = BlockAnnouncement::Full(block.clone());
            self.schedule(at, to, i, epoch, Payload::Gossip(whole));
        }
    }

    fn attack(&mut self, i: NodeId) {
        let now_secs = self.now_ms / 1000;
        match self.nodes[i].role {
            Some(Hostile::SideBranchSpammer) => {
                // A valid child of an ancestor 2..=6 blocks below the tip: less work.
                let depth = self.rng.random_range(2..=6u32);
                let node = &self.nodes[i];
                if node.chain.tip().height() <= depth {
                    return;
                }
                let mut store = node.chain.store().clone();
                for _ in 0..depth {
                    let tip = store.stored_tip().expect("memory");
                    let block = store
                        .load_block(&tip.hash())
                        .expect("memory")
                        .expect("stored");
                    store
                        .disconnect_block(&block)
                        .expect("disconnect in memory");
                }
                let fork = ChainManager::new(store, self.spec.clone()).expect("memory");
                let extra = self.rng.random();
                let Ok(template) = template_on(&fork, test_address(9), now_secs, extra, Vec::new())
                else {
                    return;
                };
                let mut block = template.block;
                solve(&mut block.header);
                self.attack_blocks.insert(block.hash());
                self.gossip_attack(i, block);
            }
            Some(Hostile::OrphanFlooder) => {
                let extra = self.rng.random();
                let mut block = template_on(
                    &self.nodes[i].chain,
                    test_address(9),
                    now_secs,
                    extra,
                    Vec::new(),
                )
                .map(|t| t.block)
                .expect("a template on the tip");
                block.header.prev_hash = BlockHash(self.rng.random());
                block.header.bits = CompactTarget::from_consensus(0x207fffff);
                solve(&mut block.header);
                self.attack_blocks.insert(block.hash());
                self.gossip_attack(i, block);
            }
            Some(Hostile::InvalidBlockSender) => {
                let Ok(template) = template_on(
                    &self.nodes[i].chain,
                    test_address(9),
                    now_secs,
                    self.rng.random(),
                    Vec::new(),
                ) else {
                    return;
                };
                let mut block = template.block;
                block.reward = Amount::from_units(block.reward.as_units() + 1);
                block.header.tx_root = block.compute_tx_root();
                solve(&mut block.header);
                self.invalid_blocks.insert(block.hash());
                self.gossip_attack(i, block);
            }
            Some(Hostile::ReconnectingOffender) => {
                let neighbours = self.connected_neighbours(i);
                for &(to, epoch) in &neighbours {
                    let at = self.now_ms + self.latency();
                    self.schedule(at, to, i, epoch, Payload::Offence);
                }
                self.nodes[i].offences += 1;
                if self.nodes[i].offences.is_multiple_of(4) {
                    // Reconnect: close every link, then let them reopen.
                    for (to, _) in neighbours {
                        self.close_link(i, to);
                    }
                    let at = self.now_ms + 2;
                    self.schedule(at, i, i, 0, Payload::Redial);
                }
            }
            Some(Hostile::SelfishMiner | Hostile::StatusLiarStaller) | None => {}
        }
    }

    /// The selfish miner finds a block on its private branch.
    fn mine_private(&mut self, i: NodeId) {
        let now_secs = self.now_ms / 1000;
        let node = &mut self.nodes[i];
        if node.private.is_none() {
            let fork =
                ChainManager::new(node.chain.store().clone(), self.spec.clone()).expect("memory");
            let height = node.chain.tip().height();
            node.private = Some((fork, Vec::new(), height));
        }
        let extra = self.rng.random();
        let (fork, blocks, _) = node.private.as_mut().expect("just set");
        let Ok(template) = template_on(fork, test_address(3), now_secs, extra, Vec::new()) else {
            return;
        };
        let mut block = template.block;
        solve(&mut block.header);
        fork.submit_block(block.clone(), now_secs)
            .expect("its own valid block");
        blocks.push(block);
        self.report.blocks_mined += 1;
    }

    /// Selfish mining (Eyal and Sirer, simplified): publish the private branch when the
    /// public chain comes within one block of it; drop it when the public chain is ahead.
    fn selfish_react(&mut self, i: NodeId) {
        let Some((_, blocks, forked_at)) = &self.nodes[i].private else {
            return;
        };
        let public_lead = i64::from(self.nodes[i].chain.tip().height()) - i64::from(*forked_at);
        let lead = blocks.len() as i64 - public_lead;
        if blocks.is_empty() || lead > 1 {
            return;
        }
        if lead < 0 {
            self.nodes[i].private = None;
            return;
        }
        self.publish_private(i);
    }

    /// Hands the private branch to the selfish miner's own public logic, which publishes
    /// the block that makes it the best chain.
    fn publish_private(&mut self, i: NodeId) {
        let Some((_, blocks, _)) = self.nodes[i].private.take() else {
            return;
        };
        self.report.selfish_published += blocks.len();
        for block in blocks {
            self.nodes[i].seen.insert(block.hash());
            let outputs = self.handle_collect(i, Input::Net(Event::Mined(block)));
            self.carry_out(i, outputs);
        }
    }

    /// Closes the link between `a` and `b` now; `refresh_links` reopens it.
    fn close_link(&mut self, a: NodeId, b: NodeId) {
        let l = link(a, b);
        if let Some((true, epoch)) = self.connected.get(&l).copied() {
            self.connected.insert(l, (false, epoch + 1));
            for (to, from) in [(a, b), (b, a)] {
                self.schedule(self.now_ms + 1, to, from, epoch + 1, Payload::Disconnected);
            }
        }
    }

    /// What the status liar and staller changes in what it sends.
    fn lie(&self, i: NodeId, action: Action<NodeId>) -> Option<Action<NodeId>> {
        if self.nodes[i].role != Some(Hostile::StatusLiarStaller) {
            return Some(action);
        }
        let boast = |mut status: cairn::core::protocol::messages::Status| {
            status.chain_work = Work::from_u256(ruint::aliases::U256::MAX >> 1);
            status.height += 1_000;
            status
        };
        match action {
            Action::Respond {
                response: SyncResponse::Blocks(_) | SyncResponse::BlockTransfers(_),
                ..
            } => None,
            Action::Respond {
                id,
                response: SyncResponse::Status(status),
            } => Some(Action::Respond {
                id,
                response: SyncResponse::Status(boast(status)),
            }),
            Action::Request {
                peer,
                id,
                request: SyncRequest::Status(status),
            } => Some(Action::Request {
                peer,
                id,
                request: SyncRequest::Status(boast(status)),
            }),
            other => Some(other),
        }
    }

    fn handle_collect(&mut self, i: NodeId, input: Input<NodeId>) -> Vec<Output<NodeId>> {
        let now = self.node_now(i);
        let node = &mut self.nodes[i];
        node.logic.handle(input, &mut node.chain, now)
    }

    /// Whether a request or response is lost on the way.
    fn request_lost(&mut self) -> bool {
        self.rng.random_range(0..100) < self.config.request_loss_percent
    }

    /// Gossips `block` compact, as nodes do.
    fn gossip(&mut self, from: NodeId, except: Option<NodeId>, block: &Block) {
        let compact = BlockAnnouncement::Compact(CompactBlock::of(block));
        self.gossip_payload(from, except, || Payload::Gossip(compact.clone()));
    }

    /// Sends `payload()` to every connected neighbour of `from` but `except`, each copy
    /// lost with the gossip loss rate.
    fn gossip_payload(
        &mut self,
        from: NodeId,
        except: Option<NodeId>,
        payload: impl Fn() -> Payload,
    ) {
        for (to, epoch) in self.connected_neighbours(from) {
            if Some(to) == except {
                continue;
            }
            if self.rng.random_range(0..100) < self.config.gossip_loss_percent {
                continue;
            }
            let at = self.now_ms + self.latency();
            self.schedule(at, to, from, epoch, payload());
        }
    }

    /// Carries out a node's outputs as its driver would; the journal is durable at once.
    fn carry_out(&mut self, i: NodeId, outputs: Vec<Output<NodeId>>) {
        let mut actions = Vec::new();
        for output in outputs {
            match output {
                Output::Net(action) => actions.push(action),
                Output::Journal {
                    transfer,
                    submission,
                } => {
                    if self.is_honest(i) {
                        self.accepted
                            .insert((i, transfer.from, transfer.nonce), transfer.txid());
                    }
                    if submission.is_some() {
                        self.report.transfers_accepted += 1;
                        self.gossip_transfer(i, None, &transfer);
                    }
                    self.nodes[i].journal.push(transfer);
                }
                Output::SyncJournal => {
                    let more = self.handle_collect(i, Input::JournalSynced);
                    self.carry_out(i, more);
                }
                Output::CompactJournal(transfers) => self.nodes[i].journal = transfers,
                Output::Mine(template) => {
                    self.nodes[i].template = Some(template);
                    self.draw_next_block(i);
                }
                Output::PauseMining => {
                    self.nodes[i].template = None;
                    self.draw_next_block(i);
                }
                Output::TemplateFailed(e) | Output::FollowFailed(e) => {
                    self.violations.push(format!("node {i}: {e}"))
                }
                Output::Followed { invalidated, .. } => {
                    for (txid, reason) in invalidated {
                        self.dropped.insert((i, txid), reason.to_string());
                    }
                }
                Output::Refused { .. }
                | Output::Admitted(_)
                | Output::NotAdmitted { .. }
                | Output::Restored { .. }
                | Output::Expired(_) => {}
            }
        }
        self.carry_out_actions(i, actions);
    }

    fn carry_out_actions(&mut self, i: NodeId, actions: Vec<Action<NodeId>>) {
        for action in actions {
            let Some(action) = self.lie(i, action) else {
                continue;
            };
            let lost = matches!(
                action,
                Action::Request { .. } | Action::Respond { .. } | Action::Refuse { .. }
            ) && self.request_lost();
            if self.is_honest(i)
                && matches!(
                    action,
                    Action::Request {
                        request: SyncRequest::GetBlockTransfers { .. },
                        ..
                    }
                )
            {
                self.report.transfer_fetches += 1;
            }
            match action {
                Action::Request { .. } if lost => {}
                Action::Respond { id, .. } | Action::Refuse { id } if lost => {
                    self.inbound.remove(&id);
                }
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
                Action::Verdict {
                    hash,
                    source,
                    verdict: Verdict::Accept,
                } => {
                    // Gossipsub forwards an accepted block to the other neighbours.
                    let block = self.nodes[i].chain.block(&hash).expect("memory store");
                    if let Some(block) = block {
                        self.gossip(i, Some(source), &block);
                    }
                }
                Action::Verdict { .. } | Action::TransferVerdict { .. } => {}
                Action::Disconnect(peer) => {
                    // Closing a connection in the simulation: both ends see it; the link
                    // reopens at the next refresh (as peer upkeep would redial).
                    self.close_link(i, peer);
                }
                Action::Ban { peer, .. } => {
                    // The shell closes a banned peer's connection and refuses it after.
                    self.close_link(i, peer);
                    match (self.is_honest(i), self.is_honest(peer)) {
                        (true, true) => self.report.bans += 1,
                        (true, false) => self.report.hostile_bans += 1,
                        _ => {}
                    }
                }
                Action::Unbanned(_) => {}
                Action::TipChanged { reorg, .. } => {
                    if let Some(reorg) = reorg {
                        self.report.reorgs += 1;
                        self.report.deepest_reorg =
                            self.report.deepest_reorg.max(reorg.disconnected);
                    }
                }
                Action::MinedStale { .. }
                | Action::Progress { .. }
                | Action::SnapshotStarted { .. }
                | Action::SnapshotProgress { .. }
                | Action::SnapshotAbandoned { .. }
                | Action::OldBlocksProgress { .. }
                | Action::OldBlocksStalled { .. } => {}
                Action::StoreFailed(e) => panic!("memory store failed: {e}"),
                Action::Continue => self.schedule(self.now_ms, i, i, 0, Payload::Continue),
            }
        }
    }

    /// The heaviest valid blocks any node stored, on any branch (more than one: a tie).
    fn heaviest_tips(&self) -> BTreeSet<BlockHash> {
        let valid: Vec<_> = self
            .honest()
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
        self.honest()
            .all(|n| heaviest.contains(&n.chain.tip().hash()))
    }

    /// `Ok` if every node has the same tip, state root and accounts, and that tip is the
    /// heaviest valid block any node stored.
    fn agreement(&self) -> Result<(), String> {
        let first = &self.nodes[0].chain;
        let tip = first.tip();
        for (i, node) in self.honest().enumerate() {
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
                "  node {i:2} ({}): up {} height {:4} tip {} work {} blocks stored {} peers {}\n",
                node.role.map_or("honest".to_string(), |r| format!("{r:?}")),
                node.up,
                tip.height(),
                tip.hash(),
                tip.chain_work,
                node.chain.store().block_count(),
                node.logic.protocol().peers().count(),
            ));
        }
        out
    }
}
