//! Block relay to 8 nodes, compact against whole blocks, side by side in one run.
//!
//! Nine nodes run in this process on loopback: two miners, one announcing compact blocks
//! (`--block-relay compact`, the default) and one whole blocks (`--block-relay full`), and
//! seven more, each dialing one or two earlier nodes. Each round fills every mempool with
//! the same 2,000 transfers (one from each of 2,000 funded senders), lets transfer gossip
//! settle, then has one miner mine a block of them and measures, until the other eight nodes
//! all have it:
//!
//! - bytes on the wire: what all nine nodes read from their peers (TCP payload, noise and
//!   yamux framing included: `cairn_p2p_received_bytes_total`), minus the same nodes'
//!   traffic in an idle window of the same length just before;
//! - latency: from the miner's new tip to each of the other eight nodes' (median and last).
//!
//! Rounds alternate compact and whole, in pairs (`PAIRS`, default 3), and the summary gives
//! the medians of the pairs' ratios. Run it with `cargo bench --bench relay`; see
//! `docs/BENCHMARKS.md`.
// A harness around whole nodes: it reads the environment, the clock and files, and waits.
#![allow(clippy::disallowed_methods)]
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, Block, BlockHash, Transfer};
use cairn::core::testkit::{address_of, derived_keypair, test_spec_funding};
use cairn::core::views::SubmitTransferRequest;
use cairn::node::events::NodeEvent;
use cairn::node::net::BlockRelay;
use cairn::node::{launch, MiningConfig, NodeConfig, NodeHandle};
use secp256k1::Keypair;
use std::time::{Duration, Instant};

/// Transfers per block.
const TRANSFERS: usize = 2_000;
/// Nodes besides the two miners.
const OTHERS: usize = 7;
/// How long anything may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

struct Network {
    nodes: Vec<NodeHandle>,
    _dirs: Vec<tempfile::TempDir>,
    senders: Vec<Keypair>,
    chain_id: u32,
    genesis: BlockHash,
    hrp: String,
}

struct RoundResult {
    relay: BlockRelay,
    transfers: usize,
    block_bytes: usize,
    wire_bytes: u64,
    idle_bytes: u64,
    median_ms: f64,
    last_ms: f64,
}

fn main() {
    let pairs: usize = std::env::var("PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let network = Network::start();
    let mut results = Vec::new();
    for pair in 0..pairs {
        // Alternate which form goes first, so neither always runs on a warmer network.
        let order = if pair % 2 == 0 {
            [BlockRelay::Compact, BlockRelay::Full]
        } else {
            [BlockRelay::Full, BlockRelay::Compact]
        };
        for relay in order {
            let result = network.round(results.len() as u64, relay);
            report(&result);
            results.push(result);
        }
    }
    summarize(&results);
    for node in network.nodes {
        node.stop().expect("a node stops");
    }
}

impl Network {
    fn start() -> Network {
        let senders: Vec<Keypair> = (0..TRANSFERS as u64)
            .map(|i| derived_keypair("cairn/relay-bench", i))
            .collect();
        let funded: Vec<Address> = senders.iter().map(address_of).collect();
        let spec = test_spec_funding(&funded);
        let mut nodes: Vec<NodeHandle> = Vec::new();
        let mut dirs = Vec::new();
        let mut addresses: Vec<String> = Vec::new();
        for i in 0..2 + OTHERS {
            let dir = tempfile::tempdir().expect("a temp dir");
            let mut config = NodeConfig::loopback(dir.path().to_path_buf(), spec.clone());
            if i < 2 {
                config.mining = Some(MiningConfig {
                    threads: 1,
                    reward_address: funded[i],
                });
                config.network.block_relay = [BlockRelay::Compact, BlockRelay::Full][i];
            }
            let mut dial = vec![i.wrapping_sub(1), i.wrapping_sub(1) / 2];
            dial.dedup();
            config.network.bootnodes = dial
                .into_iter()
                .filter(|&j| j < i)
                .map(|j| addresses[j].parse().expect("a P2P address"))
                .collect();
            let node = launch(config).expect("a node starts");
            if i < 2 {
                set_mining(&node, false);
            }
            addresses.push(
                node.wait_for_p2p_address(Duration::from_secs(10))
                    .expect("the node listens"),
            );
            nodes.push(node);
            dirs.push(dir);
        }
        // Meshes form within a few gossip heartbeats of the last connection.
        wait_for("every node to have a peer", || {
            nodes.iter().all(|n| n.shared().metrics.peers.get() > 0)
        });
        std::thread::sleep(Duration::from_secs(3));
        let genesis = cairn::core::consensus::genesis::genesis_hash(&spec);
        Network {
            nodes,
            _dirs: dirs,
            senders,
            chain_id: spec.chain_id(),
            genesis,
            hrp: spec.hrp().to_string(),
        }
    }

    /// Fills the pools with round `round`'s transfers, has the miner of `relay` mine them,
    /// and measures their block's relay to the other eight nodes.
    fn round(&self, round: u64, relay: BlockRelay) -> RoundResult {
        let miner = match relay {
            BlockRelay::Compact => 0,
            BlockRelay::Full => 1,
        };
        let block_bytes = Block::empty_encoded_size()
            + self
                .fill_pools(round)
                .iter()
                .map(Transfer::encoded_size)
                .sum::<usize>();
        // Transfer gossip (and gossipsub's announcements of it) dies down.
        std::thread::sleep(Duration::from_secs(4));
        let mut events: Vec<_> = self.nodes.iter().map(NodeHandle::events).collect();

        let idle_start = self.received();
        let idle_began = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let idle = self.received() - idle_start;
        let idle_secs = idle_began.elapsed().as_secs_f64();

        let start = self.received();
        let began = Instant::now();
        // One watcher per node, blocked on its event stream, notes when the block came.
        let (transfers, mut arrivals) = std::thread::scope(|scope| {
            let watchers: Vec<_> = events
                .iter_mut()
                .map(|stream| scope.spawn(move || next_full_block(stream, TRANSFERS)))
                .collect();
            set_mining(&self.nodes[miner], true);
            let mut watchers: Vec<Option<_>> = watchers.into_iter().map(Some).collect();
            let mined = watchers[miner].take().expect("the miner's watcher");
            let (hash, transfers, mined_at) = mined.join().expect("the miner's block");
            set_mining(&self.nodes[miner], false);
            let arrivals: Vec<Duration> = watchers
                .into_iter()
                .flatten()
                .map(|watcher| {
                    let (theirs, _, at) = watcher.join().expect("a node's block");
                    assert_eq!(theirs, hash, "every node takes the miner's block");
                    at.saturating_duration_since(mined_at)
                })
                .collect();
            (transfers, arrivals)
        });
        let wire = self.received() - start;
        let window_secs = began.elapsed().as_secs_f64();
        arrivals.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        RoundResult {
            relay,
            transfers,
            block_bytes,
            wire_bytes: wire,
            idle_bytes: (idle as f64 * window_secs / idle_secs) as u64,
            median_ms: ms(arrivals[arrivals.len() / 2]),
            last_ms: ms(*arrivals.last().expect("eight arrivals")),
        }
    }

    /// Submits one transfer from every sender (nonce `round`), spread over the nodes, and
    /// waits until every pool holds them all; returns them.
    fn fill_pools(&self, round: u64) -> Vec<Transfer> {
        let transfers: Vec<Transfer> = self
            .senders
            .iter()
            .enumerate()
            .map(|(i, key)| {
                UnsignedTransfer {
                    chain_id: self.chain_id,
                    to: address_of(&self.senders[(i + 1) % TRANSFERS]),
                    amount: Amount::from_units(1_000 + round),
                    fee: Amount::from_units(500),
                    nonce: round,
                    memo: Vec::new(),
                }
                .sign(key, &self.genesis, &[round as u8; 32])
            })
            .collect();
        std::thread::scope(|scope| {
            for (n, node) in self.nodes.iter().enumerate() {
                let mine: Vec<&Transfer> =
                    transfers.iter().skip(n).step_by(self.nodes.len()).collect();
                let url = format!("http://{}/api/v1/transactions", node.api_addr());
                let hrp = &self.hrp;
                scope.spawn(move || {
                    for transfer in mine {
                        let body = SubmitTransferRequest::from_transfer(transfer, hrp)
                            .expect("a valid transfer");
                        let answer = ureq::post(&url).send_json(&body);
                        if let Err(e) = answer {
                            panic!("submitting {}: {e}", transfer.txid());
                        }
                    }
                });
            }
        });
        wait_for("every pool to hold the round's transfers", || {
            self.nodes.iter().all(|n| {
                let pool = n.shared().mempool.read().expect("the pool");
                transfers.iter().all(|t| pool.contains(&t.txid()))
            })
        });
        transfers
    }

    /// Bytes all nodes have read from their peers so far.
    fn received(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.shared().metrics.p2p_received_bytes.get())
            .sum()
    }
}

fn set_mining(node: &NodeHandle, enabled: bool) {
    let token = std::fs::read_to_string(node.data_dir().join(".cookie")).expect("the cookie");
    ureq::post(&format!("http://{}/api/v1/admin/mining", node.api_addr()))
        .header("Authorization", &format!("Bearer {}", token.trim()))
        .send_json(serde_json::json!({ "enabled": enabled }))
        .expect("mining switched");
}

/// A node's next new tip with at least `min` transfers: its hash, its transfers, and when
/// it came (the caller blocks on the stream, so this is the moment it was published).
fn next_full_block(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    min: usize,
) -> (String, usize, Instant) {
    loop {
        match events.blocking_recv() {
            Ok(NodeEvent::Block(block)) if block.transfers >= min => {
                return (block.hash, block.transfers, Instant::now())
            }
            Ok(_) => {}
            Err(e) => panic!("event stream: {e}"),
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report(r: &RoundResult) {
    println!(
        "{:>7}: block of {} transfers ({} bytes); wire {} bytes (idle {}); to 8 nodes: median \
         {:.1} ms, last {:.1} ms",
        format!("{:?}", r.relay).to_lowercase(),
        r.transfers,
        r.block_bytes,
        r.wire_bytes,
        r.idle_bytes,
        r.median_ms,
        r.last_ms
    );
}

fn summarize(results: &[RoundResult]) {
    let mut bytes = Vec::new();
    let mut median = Vec::new();
    let mut last = Vec::new();
    for pair in results.chunks(2) {
        let (compact, full) = match pair {
            [a, b] if a.relay == BlockRelay::Compact => (a, b),
            [a, b] => (b, a),
            _ => continue,
        };
        let net = |r: &RoundResult| r.wire_bytes.saturating_sub(r.idle_bytes).max(1) as f64;
        bytes.push(net(compact) / net(full));
        median.push(compact.median_ms / full.median_ms);
        last.push(compact.last_ms / full.last_ms);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "compact / full, median of {} pairs: wire bytes {:.3}, median latency {:.3}, last \
         latency {:.3}",
        bytes.len(),
        med(&mut bytes),
        med(&mut median),
        med(&mut last)
    );
}
