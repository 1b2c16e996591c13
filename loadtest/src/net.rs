//! Network benchmarks with real `cairn node` processes on 127.0.0.1 (free ports, temp data
//! directories, mDNS off, explicit bootnodes; every process is killed when the bench ends,
//! panics, or is itself killed).
//!
//! 1. **Block propagation to 8 nodes** (`latency`). One node mines (`--mine --threads 1`) on
//!    a chain with 1 s blocks; eight followers join. The miner accepts only two connections
//!    (`--max-peers 2`): f1 and f2 dial it, f3..f8 dial f1, f2 or f3, and the nodes' own
//!    Kademlia discovery then connects the followers among themselves. So two followers get
//!    each block from the miner and six get it over two hops or more. (A cap on every node
//!    does not work: Kademlia's first queries fill the caps with a clique and leave later
//!    nodes unconnected.) For each block mined after the warm-up, the latency to a follower
//!    is the time from the miner's log line "mined block <hash>" to the follower's first line
//!    naming that hash ("new tip <hash> … from the network", or "synced block <hash>" at
//!    debug level): all processes share the clock, and log lines carry microseconds. The
//!    block's latency *to all* is that of the last of the eight to get it. Printed: median,
//!    p90, p99 and max of both, also for the blocks mined only after the previous block had
//!    reached all eight (no queueing); per follower its median, p99 and hop distance from
//!    the miner; the connection graph; every block's numbers.
//! 2. **Sync throughput** (`sync`). Builds a chain in this process with the node's own code
//!    (`open_chain`, `template`, `solve`, `submit_block`, block times on a 1 s schedule): block
//!    1 funds SYNC_ACCOUNTS accounts from the ten dev accounts, every later block holds
//!    SYNC_TRANSFERS signed transfers from them to a pool of 4 × SYNC_ACCOUNTS addresses.
//!    It then times, in the same process, (a) validating those blocks in memory (`check_body`
//!    and `check_state`, what `benches/validation.rs` measures) and (b) importing them into a
//!    fresh sled store with `submit_block`, the node's own path without the network. Then, for
//!    SYNC_RUNS rounds, alternating: 1 serving node, then 3 (copies of the built store), and a
//!    fresh node with them as bootnodes, timed from its start until its tip (polled over the
//!    API every 50 ms) is the served tip, each run paired with an in-memory validation of
//!    the same blocks timed just before it (the ratio sync / validation is per pair), and the
//!    time until the node's index stage has caught up with that tip. Printed per run: seconds, blocks/s, transfers/s,
//!    time to the first connection, the import window (first to last "synced block" log
//!    line), and CPU seconds of the syncing node by thread and of the servers; then the
//!    median, min and max over the runs and the ratio to validation throughput. All nodes
//!    share the machine's cores: on a 2-core machine the servers take CPU from the syncer.
//!
//! Run:
//!
//! ```text
//! cargo build --release -p cairn -p cairn-loadtest
//! target/release/cairn-loadtest net            # both, about 10 minutes
//! target/release/cairn-loadtest net latency    # only block propagation (about 3 minutes)
//! target/release/cairn-loadtest net sync       # only sync (about 7 minutes)
//! ```
//!
//! Knobs (environment variables, defaults in brackets): NET_BENCH_BLOCKS [120] blocks measured
//! for propagation; NET_BENCH_BITS [0x1e00ffff] genesis target of the mining chain (≈1 s per
//! block at 16 MH/s; ASERT adjusts); NET_BENCH_MINER_PEERS [2] and NET_BENCH_MAX_PEERS [64,
//! the node's default] connection caps of the miner and of the followers; SYNC_BLOCKS [300]; SYNC_TRANSFERS [2000] per block; SYNC_ACCOUNTS
//! [2000] funded senders; SYNC_RUNS [3]; SYNC_WARMUP [1]: a first sync from 1 peer, printed and
//! not counted; NET_BENCH_KEEP=1 keeps the temp directory (node
//! logs) and prints its path.

use crate::machine::{env_number, load_average, print_header, process_cpu, self_cpu, stat_cpu};
use crate::node::percentile;
use crate::node::{cairn_binary, read_api_addr, Launcher, NodeProcess};
use anyhow::{anyhow, ensure, Context, Result};
use cairn::core::chain::manager::{ChainManager, ChainStore};
use cairn::core::chain::{BlockIndex, BlockIndexEntry, ChainError};
use cairn::core::consensus::spec::DEV_SPEC_TOML;
use cairn::core::consensus::validation::{check_body, check_state};
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, Block, BlockHash, Hash256};
use cairn::core::protocol::messages::MAX_BLOCKS;
use cairn::core::state::memory::MemoryState;
use cairn::core::state::{Account, BlockStateChange, SmtPage, StateStoreError, StateView};
use cairn::core::testkit::address_of;
use cairn::core::testkit::solve;
use cairn::node::chain::open_chain;
use cairn::node::precheck::SignaturePrecheck;
use cairn::node::store::Store;
use rayon::prelude::*;
use secp256k1::Keypair;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Log filter of every node: `info`, plus the per-block "synced block" lines of sync.
const LOG_FILTER: &str = "info,cairn::chain=debug";
/// How long a node may take to answer on its API after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one sync may take before the run is abandoned.
const SYNC_TIMEOUT: Duration = Duration::from_secs(900);
/// How often the syncing node's tip is polled.
const SYNC_POLL: Duration = Duration::from_millis(50);
/// Followers in the propagation bench.
const FOLLOWERS: usize = 8;
/// Single-node validation of a 2,000-transfer block, 2 threads, transfers/s: the three
/// paired runs of docs/BENCHMARKS.md (2026-11-21).
const DOC_VALIDATION_2_THREADS: [f64; 3] = [26_904.0, 27_779.0, 26_313.0];
/// Coins each funded account receives in block 1.
const FUNDING_COINS: u64 = 1_000;
/// Base units per coin on the dev chain (8 decimals).
const UNITS_PER_COIN: u64 = 100_000_000;

/// How this bench starts its nodes (see `support/node.rs`).
static NODES: Launcher = Launcher {
    log_filter: LOG_FILTER,
    startup_timeout: STARTUP_TIMEOUT,
    agent: || http_agent().clone(),
    // ureq's own limit for `read_json`.
    max_answer_bytes: 10 * 1024 * 1024,
    on_poll: || Ok(()),
};

pub fn main(which: &str) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("cairn-net-bench-")
        .tempdir()?;
    let keep = std::env::var_os("NET_BENCH_KEEP").is_some();
    print_header(cairn_binary(), root.path());
    let result = (|| {
        if which != "sync" {
            latency_bench(&root.path().join("latency"))?;
        }
        if which != "latency" {
            sync_bench(&root.path().join("sync"))?;
        }
        Ok(())
    })();
    println!("\nload average at end: {}", load_average());
    if keep || result.is_err() {
        println!("kept {} (node logs)", root.keep().display());
    }
    result
}

// ----- block propagation -----

fn latency_bench(dir: &Path) -> Result<()> {
    let blocks: usize = env_number("NET_BENCH_BLOCKS", 120)?;
    let miner_peers: usize = env_number("NET_BENCH_MINER_PEERS", 2)?;
    let follower_peers: usize = env_number("NET_BENCH_MAX_PEERS", 64)?;
    let bits = std::env::var("NET_BENCH_BITS").unwrap_or_else(|_| "0x1e00ffff".into());
    std::fs::create_dir_all(dir)?;
    println!("\n== block propagation: 1 miner (--mine --threads 1) and {FOLLOWERS} followers");
    let spec = bench_spec("netbench-latency", 9998, &bits)?;
    let spec_path = dir.join("spec.toml");
    std::fs::write(&spec_path, spec.to_toml())?;
    let miner_address = spec.allocations[0].0.to_bech32(spec.hrp())?;
    println!(
        "chain: 1 s blocks, genesis bits {bits}, ASERT half-life 60 s; blocks are empty (no \
         mempool yet): header and reward only\nminer --max-peers {} ({miner_peers} inbound), followers \
         --max-peers {follower_peers}; bootnodes: f1,f2 -> miner; f3,f4 -> f1; f5,f6 -> f2; \
         f7,f8 -> f3 (Kademlia then connects the followers among themselves)",
        2 * miner_peers
    );

    let mut nodes: Vec<NodeProcess> = Vec::new();
    let miner_args: Vec<String> = ["--mine", "--threads", "1", "--miner-address"]
        .iter()
        .map(|s| s.to_string())
        // Half of a node's slots (up to 8) are kept for its own outbound dials: twice the
        // inbound peers the miner should accept.
        .chain([
            miner_address,
            "--max-peers".into(),
            (2 * miner_peers).to_string(),
        ])
        .collect();
    nodes.push(NODES.start("miner", &dir.join("miner"), &spec_path, &miner_args)?);
    let warm = Instant::now();
    for i in 1..=FOLLOWERS {
        if i == 3 {
            // The miner's few slots go to f1 and f2 before the others' Kademlia queries
            // reach it.
            NODES.wait_for(Duration::from_secs(30), "the miner's first peers", || {
                let view = nodes[0].get("/api/v1/peers")?;
                let count = view["peers"].as_array().map_or(0, Vec::len);
                Ok((count >= miner_peers.min(2)).then_some(()))
            })?;
        }
        let parent = &nodes[(i - 1) / 2];
        let args = vec![
            "--bootnode".to_string(),
            parent.p2p_addr()?,
            "--max-peers".into(),
            follower_peers.to_string(),
        ];
        let name = format!("f{i}");
        nodes.push(NODES.start(&name, &dir.join(&name), &spec_path, &args)?);
    }

    // Warm-up: every follower receives live blocks, and connections have settled (the
    // node dials peers Kademlia found every 5 s).
    let goal = tip(&nodes[0])?.0 + 3;
    loop {
        let heights: Vec<u64> = nodes[1..]
            .iter()
            .map(|n| tip(n).map_or(0, |t| t.0))
            .collect();
        if heights.iter().all(|h| *h >= goal) && warm.elapsed() >= Duration::from_secs(15) {
            break;
        }
        for node in &mut nodes {
            node.check_alive()?;
        }
        ensure!(
            warm.elapsed() < Duration::from_secs(120),
            "followers did not reach height {goal} within 120 s: {heights:?} (graph: {})",
            describe_graph(&nodes)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let graph_start = peer_graph(&nodes)?;
    let start_wall = wall_now();
    let start_height = tip(&nodes[0])?.0;
    println!(
        "warm-up done in {:.1} s at height {start_height}; measuring {blocks} blocks",
        warm.elapsed().as_secs_f64()
    );
    let measure = Instant::now();
    let limit = Duration::from_secs(30 + 10 * blocks as u64);
    while tip(&nodes[0])?.0 < start_height + blocks as u64 + 1 {
        for node in &mut nodes {
            node.check_alive()?;
        }
        ensure!(
            measure.elapsed() < limit,
            "the miner did not mine {blocks} blocks in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let the last blocks reach everyone.
    std::thread::sleep(Duration::from_secs(3));
    let graph_end = peer_graph(&nodes)?;
    let logs: Vec<PathBuf> = nodes.iter().map(|n| n.log.clone()).collect();
    drop(nodes);

    let mined: Vec<LogBlock> = parse_block_lines(&logs[0])?
        .into_iter()
        .filter(|b| b.kind == LineKind::Mined && b.at >= start_wall)
        .collect();
    ensure!(!mined.is_empty(), "no blocks mined after the warm-up");
    let followers: Vec<Vec<LogBlock>> = logs[1..]
        .iter()
        .map(|l| parse_block_lines(l))
        .collect::<Result<_>>()?;

    // Per block: when each follower had it (ms after it was mined).
    let mut rows: Vec<BlockRow> = Vec::new();
    let mut inferred = 0usize;
    let mut missing = 0usize;
    for block in &mined {
        let mut per_node = Vec::new();
        for lines in &followers {
            let exact = lines.iter().find(|l| l.hash == block.hash).map(|l| l.at);
            let at = exact.or_else(|| {
                // Not named in the log: the first later block it connected brought it.
                lines
                    .iter()
                    .filter(|l| l.height > block.height)
                    .map(|l| l.at)
                    .min_by(f64::total_cmp)
            });
            if exact.is_none() {
                if at.is_some() {
                    inferred += 1;
                } else {
                    missing += 1;
                }
            }
            per_node.push(at.map(|t| (t - block.at) * 1000.0));
        }
        rows.push(BlockRow {
            height: block.height,
            mined_at: block.at,
            per_node,
        });
    }
    let complete: Vec<&BlockRow> = rows
        .iter()
        .filter(|r| r.per_node.iter().all(Option::is_some))
        .collect();
    let to_all: Vec<f64> = complete.iter().map(|r| r.to_all()).collect();
    let per_node_all: Vec<f64> = complete
        .iter()
        .flat_map(|r| r.per_node.iter().flatten().copied())
        .collect();
    // Blocks mined after the previous block had reached all eight.
    let mut isolated = Vec::new();
    for pair in complete.windows(2) {
        let previous_done = pair[0].mined_at + pair[0].to_all() / 1000.0;
        if pair[1].height == pair[0].height + 1 && pair[1].mined_at >= previous_done {
            isolated.push(pair[1]);
        }
    }
    let iso_all: Vec<f64> = isolated.iter().map(|r| r.to_all()).collect();
    let iso_node: Vec<f64> = isolated
        .iter()
        .flat_map(|r| r.per_node.iter().flatten().copied())
        .collect();
    let intervals: Vec<f64> = mined.windows(2).map(|w| w[1].at - w[0].at).collect();

    println!(
        "\nconnection graph after warm-up: {}",
        graph_text(&graph_start)
    );
    println!("connection graph at the end:    {}", graph_text(&graph_end));
    let hops = hop_distances(&graph_end, "miner");
    println!(
        "{} blocks mined in {:.1} s (mean interval {:.2} s, median {:.2} s); {} reached all 8; \
         {} follower-block times inferred from a later block, {} missing",
        mined.len(),
        mined.last().map_or(0.0, |b| b.at) - mined[0].at,
        mean(&intervals),
        percentile(&intervals, 0.5),
        complete.len(),
        inferred,
        missing
    );
    println!(
        "\n{:<52}{:>8}{:>8}{:>8}{:>8}{:>8}",
        "latency, ms", "n", "median", "p90", "p99", "max"
    );
    stat_row("to all 8 followers (last one), all blocks", &to_all);
    stat_row("per follower, all blocks", &per_node_all);
    stat_row(
        "to all 8, blocks mined after the previous reached all",
        &iso_all,
    );
    stat_row("per follower, same blocks", &iso_node);
    println!(
        "\n{:<10}{:>6}{:>10}{:>10}{:>10}",
        "follower", "hops", "median", "p99", "max"
    );
    for f in 0..FOLLOWERS {
        let values: Vec<f64> = complete.iter().filter_map(|r| r.per_node[f]).collect();
        let name = format!("f{}", f + 1);
        let hop = hops.get(&name).map_or("-".to_string(), |h| h.to_string());
        println!(
            "{:<10}{:>6}{:>10.1}{:>10.1}{:>10.1}",
            name,
            hop,
            percentile(&values, 0.5),
            percentile(&values, 0.99),
            percentile(&values, 1.0)
        );
    }
    println!("\nper block (height: mined +ms per follower f1..f8; to all):");
    for row in &rows {
        let cells: Vec<String> = row
            .per_node
            .iter()
            .map(|v| v.map_or("-".into(), |ms| format!("{ms:.0}")))
            .collect();
        let all = if row.per_node.iter().all(Option::is_some) {
            format!("{:.1}", row.to_all())
        } else {
            "-".into()
        };
        println!("  {}: {} ; {all}", row.height, cells.join(" "));
    }
    Ok(())
}

struct BlockRow {
    height: u64,
    mined_at: f64,
    per_node: Vec<Option<f64>>,
}

impl BlockRow {
    fn to_all(&self) -> f64 {
        self.per_node.iter().flatten().copied().fold(0.0, f64::max)
    }
}

// ----- sync -----

fn sync_bench(dir: &Path) -> Result<()> {
    let block_count: u32 = env_number("SYNC_BLOCKS", 300)?;
    let per_block: usize = env_number("SYNC_TRANSFERS", 2000)?;
    let accounts: usize = env_number("SYNC_ACCOUNTS", 2000)?;
    let runs: usize = env_number("SYNC_RUNS", 3)?;
    ensure!(
        block_count >= 2 && accounts >= 10 && accounts.is_multiple_of(10),
        "SYNC_BLOCKS >= 2, SYNC_ACCOUNTS a multiple of 10"
    );
    std::fs::create_dir_all(dir)?;
    println!("\n== sync: a fresh node downloads {block_count} blocks of {per_block} transfers from 1 or 3 peers");
    let spec = bench_spec("netbench-sync", 9999, "0x1f00ffff")?;
    let spec_path = dir.join("spec.toml");
    std::fs::write(&spec_path, spec.to_toml())?;

    let built_dir = dir.join("built");
    let build_started = Instant::now();
    let chain = build_chain(&built_dir, &spec, block_count, per_block, accounts)?;
    let total_transfers: usize = chain.blocks.iter().map(|b| b.transfers.len()).sum();
    println!(
        "built {} blocks, {} transfers ({:.1} MB encoded) in {:.0} s; tip {}",
        chain.blocks.len(),
        total_transfers,
        chain.blocks.iter().map(|b| b.encoded_size()).sum::<usize>() as f64 / 1e6,
        build_started.elapsed().as_secs_f64(),
        chain.tip
    );

    let validate = time_validation(&spec, &chain.blocks)?;
    let (import, breakdown) = time_import(&dir.join("import"), &spec, &chain.blocks)?;
    println!(
        "in-process, same blocks: validation in memory (check_body + check_state, rayon on all cores) \
         {:.2} s = {:.0} transfers/s; import into a fresh sled store with submit_block {:.2} s = {:.0} transfers/s",
        validate,
        total_transfers as f64 / validate,
        import,
        total_transfers as f64 / import
    );
    println!("{breakdown}");

    // Each server gets its own copy of the built store.
    for s in 0..3 {
        copy_dir(&built_dir, &dir.join(format!("server{s}")))?;
    }
    // One sync first, not counted: the first run after the servers start has been 5-15%
    // slower in every recorded run (cold caches on both sides).
    if env_number("SYNC_WARMUP", 1)? > 0 {
        let warmup = sync_once(dir, &spec_path, &chain, 1, 0)?;
        println!(
            "warm-up (not counted): {}",
            warmup.line(1, 0, chain.blocks.len(), total_transfers)
        );
    }
    let mut results: BTreeMap<usize, Vec<SyncRun>> = BTreeMap::new();
    // Each sync paired with an in-memory validation of the same blocks just before it.
    let mut pair_ratios: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for run in 1..=runs {
        for peers in [1usize, 3] {
            let cpu_before = self_cpu();
            let validated = time_validation(&spec, &chain.blocks)?;
            let validation_cpu = self_cpu() - cpu_before;
            let result = sync_once(dir, &spec_path, &chain, peers, run)?;
            println!(
                "{}; paired in-memory validation {validated:.2} s (CPU {validation_cpu:.1} s): \
                 sync / validation {:.3}",
                result.line(peers, run, chain.blocks.len(), total_transfers),
                validated / result.seconds
            );
            pair_ratios
                .entry(peers)
                .or_default()
                .push(validated / result.seconds);
            results.entry(peers).or_default().push(result);
        }
    }

    println!(
        "\n{:<10}{:>30}{:>30}{:>30}",
        "peers", "seconds (median, min-max)", "blocks/s", "transfers/s"
    );
    let doc = percentile(&DOC_VALIDATION_2_THREADS, 0.5);
    let validation_rate = total_transfers as f64 / validate;
    for (peers, list) in &results {
        let secs: Vec<f64> = list.iter().map(|r| r.seconds).collect();
        let bps: Vec<f64> = secs.iter().map(|s| chain.blocks.len() as f64 / s).collect();
        let tps: Vec<f64> = secs.iter().map(|s| total_transfers as f64 / s).collect();
        let range = |v: &[f64], digits: usize| {
            format!(
                "{:.*} ({:.*}-{:.*})",
                digits,
                percentile(v, 0.5),
                digits,
                percentile(v, 0.0),
                digits,
                percentile(v, 1.0)
            )
        };
        println!(
            "{:<10}{:>30}{:>30}{:>30}",
            peers,
            range(&secs, 2),
            range(&bps, 1),
            range(&tps, 0)
        );
        println!(
            "{:<10}median transfers/s is {:.0}% of single-node validation with 2 threads \
             (docs/BENCHMARKS.md, median {:.0}/s; target >= 70%) and {:.0}% of this run's \
             in-memory validation ({:.0}/s)",
            "",
            100.0 * percentile(&tps, 0.5) / doc,
            doc,
            100.0 * percentile(&tps, 0.5) / validation_rate,
            validation_rate
        );
        let ratios = &pair_ratios[peers];
        let indexed: Vec<f64> = list.iter().map(|r| r.index_caught_up).collect();
        println!(
            "sync / in-memory validation, {peers} peer(s), median of {} pairs: {:.3} \
             ({:.3}-{:.3}); index caught up {:.2} s after the start (median)",
            ratios.len(),
            percentile(ratios, 0.5),
            percentile(ratios, 0.0),
            percentile(ratios, 1.0),
            percentile(&indexed, 0.5)
        );
    }
    Ok(())
}

/// A chain built in this process.
struct BuiltChain {
    blocks: Vec<Block>,
    tip: String,
}

/// Builds the loaded chain into `<dir>/chain`: block 1 funds `accounts` accounts from the
/// dev accounts; every later block holds `per_block` transfers from those accounts in turn,
/// each to a pseudo-random address of a pool four times as large.
fn build_chain(
    dir: &Path,
    spec: &ChainSpec,
    blocks: u32,
    per_block: usize,
    accounts: usize,
) -> Result<BuiltChain> {
    let mut chain = open_chain(&dir.join("chain"), spec.clone())?;
    let genesis = chain.genesis_hash();
    let chain_id = spec.chain_id();
    let dev: Vec<Keypair> = (0..10).map(cairn_wallet::keys::dev_keypair).collect();
    let pool: Vec<Keypair> = (0..accounts * 4)
        .into_par_iter()
        .map(|i| bench_keypair(i as u64))
        .collect();
    let pool_addresses: Vec<Address> = pool.iter().map(address_of).collect();
    let (miner, _) = spec.allocations[0];
    let start = unix_now() - u64::from(blocks) - 5;
    let mut nonces = vec![0u64; accounts];
    let mut cursor = 0usize;
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(blocks as usize);
    for n in 1..=blocks {
        // (signer, nonce, recipient, amount) in block order, then signed on all cores.
        let mut plan: Vec<(&Keypair, u64, Address, u64)> = Vec::new();
        if n == 1 {
            for (i, to) in pool_addresses[..accounts].iter().enumerate() {
                plan.push((
                    &dev[i % 10],
                    (i / 10) as u64,
                    *to,
                    FUNDING_COINS * UNITS_PER_COIN,
                ));
            }
        } else {
            for _ in 0..per_block {
                let sender = cursor % accounts;
                cursor += 1;
                lcg = lcg
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let to = pool_addresses[((lcg >> 33) % pool.len() as u64) as usize];
                plan.push((&pool[sender], nonces[sender], to, 1_000 + u64::from(n)));
                nonces[sender] += 1;
            }
        }
        let transfers: Vec<_> = plan
            .par_iter()
            .map(|(key, nonce, to, amount)| {
                UnsignedTransfer {
                    chain_id,
                    to: *to,
                    amount: Amount::from_units(*amount),
                    fee: Amount::from_units(10),
                    nonce: *nonce,
                    memo: Vec::new(),
                }
                .sign(key, &genesis, &[7; 32])
            })
            .collect();
        let mut block = cairn::core::miner::template_on(
            &chain,
            miner,
            start + u64::from(n),
            u64::from(n),
            transfers,
        )
        .map_err(|e| anyhow!("template for block {n}: {e}"))?
        .block;
        solve(&mut block.header);
        chain
            .submit_block(block.clone(), unix_now())
            .map_err(|e| anyhow!("block {n} was refused: {e}"))?;
        out.push(block);
        if n % 50 == 0 {
            println!("  built {n} of {blocks} blocks");
        }
    }
    chain.store().flush()?;
    Ok(BuiltChain {
        tip: chain.tip().hash().to_string(),
        blocks: out,
    })
}

/// Seconds to validate `blocks` in memory, as `benches/validation.rs` does for one block.
fn time_validation(spec: &ChainSpec, blocks: &[Block]) -> Result<f64> {
    let (genesis_block, change) = cairn::core::consensus::genesis::genesis(spec);
    let genesis_hash = genesis_block.hash();
    let mut state = MemoryState::default();
    state.apply_change(&change);
    let mut root = genesis_block.header.state_root;
    let mut spent = Duration::ZERO;
    for block in blocks {
        let started = Instant::now();
        check_body(block, spec).map_err(|e| anyhow!("block {}: {e}", block.header.height))?;
        let change = check_state(&state, root, block, spec, &genesis_hash)
            .map_err(|e| anyhow!("block {}: {e}", block.header.height))?;
        spent += started.elapsed();
        state.apply_change(&change);
        root = block.header.state_root;
    }
    Ok(spent.as_secs_f64())
}

/// Where an in-process import spent its time.
#[derive(Default)]
struct StoreTimes {
    /// Nanoseconds in account and tree-node reads, summed over the threads reading.
    state_reads_ns: AtomicU64,
    state_reads: AtomicU64,
    index_reads_ns: AtomicU64,
    put_block_ns: AtomicU64,
    connect_ns: AtomicU64,
    connect_keys: AtomicU64,
    flush_ns: AtomicU64,
}

fn add(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

fn secs(counter: &AtomicU64) -> f64 {
    counter.load(Ordering::Relaxed) as f64 / 1e9
}

/// The node's sled store, timing every call the chain manager makes.
struct TimedStore {
    inner: Store,
    times: StoreTimes,
}

impl StateView for TimedStore {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateStoreError> {
        let started = Instant::now();
        let result = StateView::account(&self.inner, address);
        add(&self.times.state_reads_ns, started);
        self.times.state_reads.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn smt_page(&self, top: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError> {
        let started = Instant::now();
        let result = self.inner.smt_page(top);
        add(&self.times.state_reads_ns, started);
        self.times.state_reads.fetch_add(1, Ordering::Relaxed);
        result
    }
}

impl BlockIndex for TimedStore {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        let started = Instant::now();
        let result = self.inner.entry(hash);
        add(&self.times.index_reads_ns, started);
        result
    }
}

impl ChainStore for TimedStore {
    fn stored_tip(&self) -> Result<BlockIndexEntry, ChainError> {
        self.inner.stored_tip()
    }

    fn stored_genesis(&self) -> Result<BlockHash, ChainError> {
        self.inner.stored_genesis()
    }

    fn load_block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        let started = Instant::now();
        let result = self.inner.load_block(hash);
        add(&self.times.index_reads_ns, started);
        result
    }

    fn best_hash_at(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        self.inner.best_hash_at(height)
    }

    fn store_block(&mut self, block: &Block, entry: &BlockIndexEntry) -> Result<(), ChainError> {
        let started = Instant::now();
        let result = self.inner.store_block(block, entry);
        add(&self.times.put_block_ns, started);
        result
    }

    fn store_invalid(&mut self, hash: &BlockHash, reason: &str) -> Result<(), ChainError> {
        self.inner.store_invalid(hash, reason)
    }

    fn store_state_pages(
        &mut self,
        pages: &[(Hash256, std::sync::Arc<SmtPage>)],
    ) -> Result<(), ChainError> {
        self.inner.store_state_pages(pages)
    }

    fn adopt_snapshot(&mut self, entries: &[BlockIndexEntry]) -> Result<(), ChainError> {
        ChainStore::adopt_snapshot(&mut self.inner, entries)
    }

    fn old_blocks(&self) -> Result<Option<cairn::core::chain::manager::OldBlocks>, ChainError> {
        ChainStore::old_blocks(&self.inner)
    }

    fn store_old_blocks(&mut self, blocks: &[Block]) -> Result<(), ChainError> {
        self.inner.store_old_blocks(blocks)
    }

    fn connect_block(
        &mut self,
        block: &Block,
        entry: &BlockIndexEntry,
        change: &BlockStateChange,
    ) -> Result<(), ChainError> {
        // As written by Store::connect: tree pages, the height, the tip, and unless sync is
        // catching up one tx index record per transfer, one history record per address the
        // block touches and the index marker.
        let mut keys = change.new_pages.len() + 2;
        if !self.inner.is_catching_up() {
            let addresses: std::collections::HashSet<Address> = block
                .transfers
                .iter()
                .flat_map(|t| [t.from, t.to])
                .chain([block.reward_address])
                .collect();
            keys += block.transfers.len() + addresses.len() + 1;
        }
        self.times
            .connect_keys
            .fetch_add(keys as u64, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.inner.connect_block(block, entry, change);
        add(&self.times.connect_ns, started);
        result
    }

    fn disconnect_block(&mut self, block: &Block) -> Result<(), ChainError> {
        self.inner.disconnect_block(block)
    }

    fn set_catching_up(&mut self, catching_up: bool) {
        self.inner.set_catching_up(catching_up);
    }

    fn make_durable(&mut self) -> Result<(), ChainError> {
        let started = Instant::now();
        let result = self.inner.make_durable();
        add(&self.times.flush_ns, started);
        result
    }
}

/// Imports `blocks` into a fresh store with `submit_block` (validation, writes, a flush per
/// block): the node's own path, without the network. Returns the seconds it took and a
/// line saying where they went.
fn time_import(dir: &Path, spec: &ChainSpec, blocks: &[Block]) -> Result<(f64, String)> {
    let store = Store::open(&dir.join("chain"))?;
    let (genesis_block, change) = cairn::core::consensus::genesis::genesis(spec);
    store.init(&genesis_block, &change, &spec.asert_params())?;
    let timed = TimedStore {
        inner: store,
        times: StoreTimes::default(),
    };
    let mut chain = ChainManager::new(timed, spec.clone())?;
    // As the node's sync does: the signatures of each response's blocks (16) are checked in
    // the background while the blocks ahead of them are validated and written.
    let mut precheck = SignaturePrecheck::new(chain.signature_cache().clone())?;
    let started = Instant::now();
    for (i, block) in blocks.iter().enumerate() {
        if i % MAX_BLOCKS == 0 {
            precheck.queue(&blocks[i..(i + MAX_BLOCKS).min(blocks.len())]);
        }
        // As sync marks it: catching up while more than a chunk (4) is left.
        chain.set_catching_up(blocks.len() - i > 4);
        chain
            .submit_block(block.clone(), unix_now())
            .map_err(|e| anyhow!("import of block {}: {e}", block.header.height))?;
    }
    let total = started.elapsed().as_secs_f64();
    let index_started = Instant::now();
    let lag = chain.store().inner.index_lag();
    while chain.store().inner.index_step(2)? > 0 {}
    let index_secs = index_started.elapsed().as_secs_f64();
    let t = &chain.store().times;
    let (connect, flush, put) = (
        secs(&t.connect_ns),
        secs(&t.flush_ns),
        secs(&t.put_block_ns),
    );
    let (reads, index) = (secs(&t.state_reads_ns), secs(&t.index_reads_ns));
    let keys = t.connect_keys.load(Ordering::Relaxed);
    let breakdown = format!(
        "import {total:.2} s: connect_block (one sled batch per block, {:.0} keys per block) \
         {connect:.2} s ({:.0}%), flush {flush:.2} s ({:.0}%), put_block {put:.2} s ({:.0}%), \
         index and block reads {index:.2} s, the rest (validation, on up to all cores) {:.2} s \
         ({:.0}%); of that, {:.1} M account and tree-node reads from sled took {reads:.2} \
         thread-seconds; then the index stage caught up {lag} blocks in {index_secs:.2} s",
        keys as f64 / blocks.len() as f64,
        100.0 * connect / total,
        100.0 * flush / total,
        100.0 * put / total,
        total - connect - flush - put - index,
        100.0 * (total - connect - flush - put - index) / total,
        t.state_reads.load(Ordering::Relaxed) as f64 / 1e6,
    );
    drop(chain);
    std::fs::remove_dir_all(dir)?;
    Ok((total, breakdown))
}

/// One timed sync.
struct SyncRun {
    /// From the syncing node's start to its tip being the served tip.
    seconds: f64,
    /// From its start to its transfer index and histories reaching that tip.
    index_caught_up: f64,
    /// From its start to its first peer connection (its log).
    first_connection: Option<f64>,
    /// From its start to its first "synced block" line, written once the blocks of the
    /// first response are connected.
    first_blocks: Option<f64>,
    /// Its CPU seconds by kind of thread.
    syncer_cpu: BTreeMap<&'static str, f64>,
    /// CPU seconds of the serving nodes during the sync.
    server_cpu: f64,
}

impl SyncRun {
    fn line(&self, peers: usize, run: usize, blocks: usize, transfers: usize) -> String {
        let cpu: Vec<String> = self
            .syncer_cpu
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        let at = |t: Option<f64>| t.map_or("?".to_string(), |t| format!("{t:.2} s"));
        format!(
            "run {run}, {peers} peer(s): {:.2} s = {:.2} blocks/s, {:.0} transfers/s; index \
             caught up at {:.2} s; first peer connected at {}, first blocks connected at {}; \
             syncer CPU s: {} (total {:.1}); servers CPU {:.1} s",
            self.seconds,
            blocks as f64 / self.seconds,
            transfers as f64 / self.seconds,
            self.index_caught_up,
            at(self.first_connection),
            at(self.first_blocks),
            cpu.join(", "),
            self.syncer_cpu.values().sum::<f64>(),
            self.server_cpu
        )
    }
}

fn sync_once(
    dir: &Path,
    spec_path: &Path,
    chain: &BuiltChain,
    peers: usize,
    run: usize,
) -> Result<SyncRun> {
    let mut servers: Vec<NodeProcess> = Vec::new();
    for s in 0..peers {
        let mut args = Vec::new();
        if let Some(first) = servers.first() {
            args = vec!["--bootnode".to_string(), first.p2p_addr()?];
        }
        let name = format!("server{s}-run{run}-of{peers}");
        servers.push(NodeProcess::start_logged(
            &name,
            &dir.join(format!("server{s}")),
            spec_path,
            &args,
            dir,
        )?);
    }
    for server in &servers {
        let (height, hash) = tip(server)?;
        ensure!(
            hash == chain.tip,
            "server {} is at {height} {hash}, not the built tip",
            server.name
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let server_cpu_before: f64 = servers.iter().map(|s| process_cpu(s.pid())).sum();
    let mut args = Vec::new();
    for server in &servers {
        args.push("--bootnode".to_string());
        args.push(server.p2p_addr()?);
    }
    let name = format!("syncer-run{run}-of{peers}");
    let data = dir.join(&name);
    let started_wall = wall_now();
    let started = Instant::now();
    let mut syncer = NODES.spawn(
        &name,
        &data,
        spec_path,
        &args,
        &dir.join(format!("{name}.log")),
    )?;
    let agent = http_agent();
    let mut api: Option<SocketAddr> = None;
    loop {
        syncer.check_alive()?;
        ensure!(
            started.elapsed() < SYNC_TIMEOUT,
            "{name} did not sync within {SYNC_TIMEOUT:?}"
        );
        if api.is_none() {
            api = read_api_addr(&data);
        }
        if let Some(addr) = api {
            if let Ok(body) = NODES.get_json(agent, &format!("http://{addr}/api/v1/tip")) {
                if body["hash"].as_str() == Some(chain.tip.as_str()) {
                    break;
                }
            }
        }
        std::thread::sleep(SYNC_POLL);
    }
    let seconds = started.elapsed().as_secs_f64();
    let syncer_cpu = thread_cpu(syncer.pid());
    // The index stage catches up after sync: until the API reports it at the tip.
    let index_caught_up = loop {
        syncer.check_alive()?;
        ensure!(
            started.elapsed() < SYNC_TIMEOUT,
            "{name} did not index within {SYNC_TIMEOUT:?}"
        );
        let addr = api.ok_or_else(|| anyhow!("no API address"))?;
        if let Ok(info) = NODES.get_json(agent, &format!("http://{addr}/api/v1/info")) {
            if info["indexed_height"].as_u64().is_some() && info["indexed_height"] == info["height"]
            {
                break started.elapsed().as_secs_f64();
            }
        }
        std::thread::sleep(SYNC_POLL);
    };
    let server_cpu = servers.iter().map(|s| process_cpu(s.pid())).sum::<f64>() - server_cpu_before;
    let log = syncer.log.clone();
    drop(syncer);
    drop(servers);
    let text = std::fs::read_to_string(&log)?;
    let first_connection = text
        .lines()
        .find(|l| l.contains(" connected ("))
        .and_then(line_time)
        .map(|t| t - started_wall);
    let first_blocks = text
        .lines()
        .find(|l| l.contains("synced block "))
        .and_then(line_time)
        .map(|t| t - started_wall);
    std::fs::remove_dir_all(&data)?;
    Ok(SyncRun {
        seconds,
        index_caught_up,
        first_connection,
        first_blocks,
        syncer_cpu,
        server_cpu,
    })
}

// ----- nodes -----

/// The calls of this bench on its nodes (the rest is in `support/node.rs`).
impl NodeProcess {
    /// Starts a node logging to `<log_dir>/<name>.log` and waits for its API.
    fn start_logged(
        name: &str,
        data_dir: &Path,
        spec: &Path,
        extra: &[String],
        log_dir: &Path,
    ) -> Result<NodeProcess> {
        NODES.start_with_log(
            name,
            data_dir,
            spec,
            extra,
            &log_dir.join(format!("{name}.log")),
        )
    }

    /// Its P2P address with `/p2p/<peer id>`.
    fn p2p_addr(&self) -> Result<String> {
        let file = self.data_dir.join("p2p.addr");
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if text.contains("/p2p/") {
                    return Ok(text.trim().to_string());
                }
            }
            ensure!(
                started.elapsed() < STARTUP_TIMEOUT,
                "{}: no P2P address in {}",
                self.name,
                file.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn peer_id(&self) -> Result<String> {
        let addr = self.p2p_addr()?;
        Ok(addr
            .rsplit_once("/p2p/")
            .map(|(_, id)| id.to_string())
            .unwrap_or(addr))
    }
}

/// Height and hash of a node's tip.
fn tip(node: &NodeProcess) -> Result<(u64, String)> {
    let body = node.get("/api/v1/tip")?;
    let height = body["height"]
        .as_u64()
        .ok_or_else(|| anyhow!("no height in {body}"))?;
    let hash = body["hash"]
        .as_str()
        .ok_or_else(|| anyhow!("no hash in {body}"))?;
    Ok((height, hash.to_string()))
}

/// Who is connected to whom, by node name (undirected).
fn peer_graph(nodes: &[NodeProcess]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut names = BTreeMap::new();
    for node in nodes {
        names.insert(node.peer_id()?, node.name.clone());
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in nodes {
        graph.entry(node.name.clone()).or_default();
        let view = node.get("/api/v1/peers")?;
        for peer in view["peers"].as_array().into_iter().flatten() {
            let id = peer["peer_id"].as_str().unwrap_or_default();
            let other = names.get(id).cloned().unwrap_or_else(|| format!("?{id}"));
            graph
                .entry(node.name.clone())
                .or_default()
                .insert(other.clone());
            graph.entry(other).or_default().insert(node.name.clone());
        }
    }
    Ok(graph)
}

fn describe_graph(nodes: &[NodeProcess]) -> String {
    peer_graph(nodes).map_or_else(|e| e.to_string(), |g| graph_text(&g))
}

fn graph_text(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let hops = hop_distances(graph, "miner");
    graph
        .iter()
        .map(|(node, peers)| {
            let hop = hops
                .get(node)
                .map_or("unreachable".to_string(), |h| format!("{h} hops"));
            format!(
                "{node} ({hop}): {}",
                peers.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Breadth-first hop counts from `from`.
fn hop_distances(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
) -> BTreeMap<String, usize> {
    let mut hops = BTreeMap::from([(from.to_string(), 0usize)]);
    let mut queue = VecDeque::from([from.to_string()]);
    while let Some(node) = queue.pop_front() {
        let next = hops[&node] + 1;
        for peer in graph.get(&node).into_iter().flatten() {
            if !hops.contains_key(peer) {
                hops.insert(peer.clone(), next);
                queue.push_back(peer.clone());
            }
        }
    }
    hops
}

// ----- logs -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineKind {
    Mined,
    Received,
}

/// A block named in a node log.
#[derive(Clone, Debug)]
struct LogBlock {
    at: f64,
    hash: String,
    height: u64,
    kind: LineKind,
}

/// The blocks a node log names as its new tip, in order: "mined block <hash> at height <h>",
/// "new tip <hash> at height <h> from the network", "synced block <hash> at height <h>",
/// "reorganized: … tip <hash> at height <h>".
fn parse_block_lines(log: &Path) -> Result<Vec<LogBlock>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("cannot read {}", log.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let (marker, kind) = if line.contains("mined block ") {
            ("mined block ", LineKind::Mined)
        } else if line.contains("new tip ") {
            ("new tip ", LineKind::Received)
        } else if line.contains("synced block ") {
            ("synced block ", LineKind::Received)
        } else if line.contains("reorganized: ") {
            (" tip ", LineKind::Received)
        } else {
            continue;
        };
        let Some(at) = line_time(line) else { continue };
        let Some((_, rest)) = line.rsplit_once(marker) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let hash = words.next().unwrap_or_default().to_string();
        let height = match (words.next(), words.next(), words.next()) {
            (Some("at"), Some("height"), Some(h)) => h
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok(),
            _ => None,
        };
        if let Some(height) = height {
            out.push(LogBlock {
                at,
                hash,
                height,
                kind,
            });
        }
    }
    Ok(out)
}

/// The time of a log line, "2026-11-21T14:16:22.123456Z …", in seconds since the epoch.
fn line_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let (date, time) = stamp.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hour, minute) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let second: f64 = t.next()?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3_600 + minute * 60) as f64 + second)
}

// ----- CPU accounting (/proc) -----

/// CPU seconds of a node's threads so far, by kind: the driver thread (the first thread
/// named "driver"), the rayon workers (they inherit the name of the driver, which starts
/// them), the tokio runtime ("cairn-io": network and API), sled's threads, the rest.
fn thread_cpu(pid: u32) -> BTreeMap<&'static str, f64> {
    let mut threads = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let tid: u64 = task
                .file_name()
                .to_string_lossy()
                .parse()
                .unwrap_or(u64::MAX);
            if let Some((name, secs)) = stat_cpu(&task.path().join("stat").to_string_lossy()) {
                threads.push((tid, name, secs));
            }
        }
    }
    threads.sort_by_key(|t| t.0);
    let mut out = BTreeMap::new();
    let mut driver_seen = false;
    for (_, name, secs) in threads {
        let kind = match name.as_str() {
            "driver" if !driver_seen => {
                driver_seen = true;
                "driver"
            }
            "driver" => "rayon",
            "cairn-io" => "tokio",
            n if n.starts_with("cairn-precheck") => "precheck",
            n if n.starts_with("sled") || n == "log flusher" => "sled",
            _ => "other",
        };
        *out.entry(kind).or_insert(0.0) += secs;
    }
    out
}

// ----- helpers -----

/// The dev spec made fast and private to this bench: 1 s blocks, a 60 s ASERT half-life,
/// genesis bits `bits`, no mDNS, its own name, id and chain id.
fn bench_spec(id: &str, chain_id: u32, bits: &str) -> Result<ChainSpec> {
    let mut file = ChainSpec::from_toml(DEV_SPEC_TOML)?.file;
    file.name = format!("Cairn bench {id}");
    file.id = id.to_string();
    file.chain_id = chain_id;
    file.genesis.bits = bits.to_string();
    file.consensus.ideal_block_time_secs = 1;
    file.consensus.asert_half_life_secs = 60;
    file.network.mdns = false;
    Ok(ChainSpec::from_file(file)?)
}

fn bench_keypair(i: u64) -> Keypair {
    cairn::core::testkit::derived_keypair("bench/net/key", i)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn http_agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into()
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

fn stat_row(label: &str, values: &[f64]) {
    println!(
        "{:<52}{:>8}{:>8.1}{:>8.1}{:>8.1}{:>8.1}",
        label,
        values.len(),
        percentile(values, 0.5),
        percentile(values, 0.9),
        percentile(values, 0.99),
        percentile(values, 1.0)
    );
}
