//! HTTP API benchmark with a real `cairn node` process on 127.0.0.1 (release build, a free
//! port, a temp data directory, mDNS off, no peers; the node is killed when the bench ends,
//! panics, or is interrupted: Ctrl-C stops the bench cleanly, a second one exits at once, and
//! the kernel kills the node if the bench dies without cleaning up).
//!
//! The chain is the dev spec made fast and private to the bench: 1 s blocks (genesis bits
//! API_BENCH_BITS, ASERT half-life 60 s), at most API_BENCH_BLOCK_TRANSFERS transfers a block,
//! and a genesis that funds every sender the bench uses (1,000 coins each) instead of the ten
//! dev accounts. The node is started with `--mine --threads 1` and mining is turned off over
//! the admin API once block 1 (empty) is mined; it is turned on only to confirm transfers
//! between the phases (and during the one admission run marked "mining"), so the
//! measurements run on a still chain unless said otherwise.
//!
//! 1. **Admission through the API** (`POST /api/v1/transactions`). All transfers are signed
//!    and encoded as JSON before the clock starts. For each K in API_BENCH_CLIENTS, a fresh
//!    group of API_BENCH_SENDERS senders each submits a chain of API_BENCH_NONCES transfers
//!    (nonces 0, 1, …; fees 200–999 units, to random funded accounts); K client threads, each
//!    with its own keep-alive `ureq` agent and its own senders (sender i belongs to thread
//!    i mod K), send them one request at a time, nonce by nonce. Printed per run: transfers/s
//!    accepted (accepted ÷ wall time from the start to the last answer), the latency of one
//!    submission (median, p90, p99), refusals by code, and the CPU the node and the bench
//!    used (percent of one core; the machine's cores are shared by both). With
//!    API_BENCH_ADMIT_MINING=1 one more run at the last K has mining on (1 thread): the
//!    driver then also builds templates and connects blocks. The pool is not emptied between
//!    runs (it grows by SENDERS × NONCES per run).
//! 2. **Confirmation** (not a target, printed for reference): mining on until the pool is
//!    empty; blocks, seconds, transfers per second confirmed.
//! 3. **Pending batch**: API_BENCH_PENDING more transfers (from the first group, next nonces)
//!    with the last K, so the mempool, account and history reads have pending transfers to
//!    show; printed like an admission run.
//! 4. **Reads under load**. C = API_BENCH_READERS client threads (each its own keep-alive
//!    agent) send GET requests back to back for T = API_BENCH_READ_SECS seconds per call,
//!    each request with a random parameter: `/api/v1/tip`; `/api/v1/blocks/{height}` of a
//!    block holding transfers (up to API_BENCH_BLOCK_TRANSFERS of them, the whole block is
//!    returned) and of an empty block; `/api/v1/accounts/{address}` of a funded sender;
//!    `/api/v1/transactions/{txid}` of a confirmed and of a pending transfer;
//!    `/api/v1/accounts/{address}/history` (first page, 50 items and the pending ones);
//!    `/api/v1/mempool` (best 100 by fee rate). Then T seconds of all of them mixed, each
//!    request choosing a call at random. Printed per call: requests, errors, requests/s,
//!    latency median, p90, p99 and max (ms, from sending the request to the last byte of
//!    the answer), mean answer size, and the node's and the bench's CPU.
//!
//! Run:
//!
//! ```text
//! cargo build --release -p cairn -p cairn-loadtest
//! target/release/cairn-loadtest api         # everything, about 1.5 minutes
//! target/release/cairn-loadtest api admit   # admission only (no confirmation, no reads)
//! target/release/cairn-loadtest api read    # reads; admission is one run at the last K
//! ```
//!
//! Knobs (environment variables, defaults in brackets): API_BENCH_SENDERS [2000] senders per
//! admission run; API_BENCH_NONCES [5] transfers per sender per run (1..=32); API_BENCH_CLIENTS
//! [1,4,16] the K of each admission run; API_BENCH_ADMIT_MINING [1] add a run with mining on;
//! API_BENCH_PENDING [2000] transfers left pending for the reads; API_BENCH_READERS [8] C;
//! API_BENCH_READ_SECS [5] T (0 skips the reads); API_BENCH_BLOCK_TRANSFERS [2000];
//! API_BENCH_BITS [0x1e00ffff] genesis target (≈1 s a block at 16 MH/s; ASERT adjusts);
//! API_BENCH_KEEP=1 keeps the temp directory (node log) and prints its path. Loopback only; every phase is bounded in requests or
//! time, and every wait has a timeout.

use crate::machine::{env_number, load_average, print_header, process_cpu, self_cpu, stat_cpu};
use crate::node::percentile;
use crate::node::{cairn_binary, Launcher, NodeProcess};
use anyhow::{anyhow, bail, ensure, Context, Result};
use cairn::core::consensus::genesis::genesis_hash;
use cairn::core::consensus::spec::{AllocationFile, DEV_SPEC_TOML};
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::transfer::UnsignedTransfer;
use cairn::core::primitives::{Address, Amount, BlockHash, Transfer};
use cairn::core::testkit::address_of;
use rayon::prelude::*;
use secp256k1::Keypair;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// How long the node may take to answer on its API after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Coins each bench account gets at genesis.
const FUNDING_COINS: &str = "1000";
/// Largest answer a read may return (a block of 5,000 transfers is about 2 MB of JSON).
const MAX_ANSWER_BYTES: u64 = 256 * 1024 * 1024;
/// Chain id of the bench chain (the net subject uses 9998 and 9999).
const CHAIN_ID: u32 = 9997;

/// How this bench starts its node (see `support/node.rs`): every wait stops on Ctrl-C.
static NODES: Launcher = Launcher {
    log_filter: "info",
    startup_timeout: STARTUP_TIMEOUT,
    agent,
    max_answer_bytes: MAX_ANSWER_BYTES,
    on_poll: interrupted,
};

/// Set by SIGINT or SIGTERM: every loop stops and the bench cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // A second signal: leave now (the kernel kills the node, see `Launcher::spawn`).
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

struct Knobs {
    senders: usize,
    nonces: u64,
    clients: Vec<usize>,
    admit_mining: bool,
    pending: usize,
    readers: usize,
    read_secs: f64,
    block_transfers: u32,
    bits: String,
}

impl Knobs {
    fn from_env() -> Result<Knobs> {
        let clients_text = std::env::var("API_BENCH_CLIENTS").unwrap_or_else(|_| "1,4,16".into());
        let clients = clients_text
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow!("API_BENCH_CLIENTS={clients_text:?}: numbers, comma-separated"))?;
        let knobs = Knobs {
            senders: env_number("API_BENCH_SENDERS", 2000)?,
            nonces: env_number("API_BENCH_NONCES", 5)?,
            clients,
            admit_mining: env_number("API_BENCH_ADMIT_MINING", 1u8)? != 0,
            pending: env_number("API_BENCH_PENDING", 2000)?,
            readers: env_number("API_BENCH_READERS", 8)?,
            read_secs: env_number("API_BENCH_READ_SECS", 5.0)?,
            block_transfers: env_number("API_BENCH_BLOCK_TRANSFERS", 2000)?,
            bits: std::env::var("API_BENCH_BITS").unwrap_or_else(|_| "0x1e00ffff".into()),
        };
        ensure!(knobs.senders >= 1, "API_BENCH_SENDERS >= 1");
        ensure!(
            (1..=32).contains(&knobs.nonces),
            "API_BENCH_NONCES in 1..=32 (the mempool's nonce gap)"
        );
        ensure!(
            !knobs.clients.is_empty() && knobs.clients.iter().all(|&k| k >= 1),
            "API_BENCH_CLIENTS: at least one K, each >= 1"
        );
        ensure!(
            knobs.pending <= knobs.senders * (32 - knobs.nonces as usize),
            "API_BENCH_PENDING at most API_BENCH_SENDERS × (32 - API_BENCH_NONCES)"
        );
        ensure!(knobs.readers >= 1, "API_BENCH_READERS >= 1");
        ensure!(
            knobs.read_secs >= 0.0 && knobs.read_secs <= 600.0,
            "API_BENCH_READ_SECS in 0..=600"
        );
        ensure!(knobs.block_transfers >= 1, "API_BENCH_BLOCK_TRANSFERS >= 1");
        Ok(knobs)
    }

    fn last_clients(&self) -> usize {
        *self.clients.last().expect("at least one K")
    }
}

/// One admission run: which clients, and the JSON bodies of its senders' transfers.
struct Batch {
    label: String,
    clients: usize,
    mining: bool,
    /// Per sender, its transfers in nonce order: (txid hex, JSON body).
    senders: Vec<Vec<(String, String)>>,
}

impl Batch {
    fn len(&self) -> usize {
        self.senders.iter().map(Vec::len).sum()
    }

    fn txids(&self) -> impl Iterator<Item = &String> {
        self.senders.iter().flatten().map(|(txid, _)| txid)
    }
}

pub fn main(which: &str) -> Result<()> {
    let knobs = Knobs::from_env()?;
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    let root = tempfile::Builder::new()
        .prefix("cairn-api-bench-")
        .tempdir()?;
    let keep = std::env::var_os("API_BENCH_KEEP").is_some();
    print_header(cairn_binary(), root.path());
    let result = run(root.path(), &knobs, which);
    println!("\nload average at end: {}", load_average());
    if INTERRUPTED.load(Ordering::Relaxed) && !keep {
        // The node is gone (dropped in `run`); the temp dir goes too.
        drop(root);
        eprintln!("interrupted");
        std::process::exit(130);
    }
    if keep || result.is_err() {
        println!("kept {} (node log)", root.keep().display());
    }
    result
}

fn run(dir: &Path, knobs: &Knobs, which: &str) -> Result<()> {
    let reads = which != "admit" && knobs.read_secs > 0.0;
    let clients: Vec<usize> = if which == "read" {
        vec![knobs.last_clients()]
    } else {
        knobs.clients.clone()
    };
    let mining_run = knobs.admit_mining && which != "read";
    let runs = clients.len() + usize::from(mining_run);

    // Keys: one group of senders per admission run, and a miner.
    let accounts = knobs.senders * runs;
    let keys: Vec<Keypair> = (0..accounts as u64)
        .into_par_iter()
        .map(bench_keypair)
        .collect();
    let addresses: Vec<Address> = keys.iter().map(address_of).collect();
    let miner = address_of(&bench_keypair(u64::MAX));
    let spec = bench_spec(&addresses, &knobs.bits, knobs.block_transfers)?;
    let spec_path = dir.join("spec.toml");
    std::fs::write(&spec_path, spec.to_toml())?;
    let hrp = spec.hrp().to_string();
    let bech32: Vec<String> = addresses
        .iter()
        .map(|a| a.to_bech32(&hrp))
        .collect::<Result<_, _>>()?;
    let signer = Signer {
        genesis: genesis_hash(&spec),
        spec,
        keys,
        addresses,
        bech32,
    };

    // Every transfer, signed and encoded before any clock starts.
    let signing = Instant::now();
    let mut rng = XorShift::new(0x5eed_a11c_e5ed_0001);
    let nonces = 0..knobs.nonces;
    let mut batches = Vec::new();
    for (group, &k) in clients.iter().enumerate() {
        batches.push(Batch {
            label: if which == "read" {
                "setup".to_string()
            } else {
                format!("K={k}")
            },
            clients: k,
            mining: false,
            senders: signer.group(group, knobs.senders, nonces.clone(), &mut rng),
        });
    }
    if mining_run {
        let k = knobs.last_clients();
        batches.push(Batch {
            label: format!("K={k}, mining"),
            clients: k,
            mining: true,
            senders: signer.group(runs - 1, knobs.senders, nonces.clone(), &mut rng),
        });
    }
    let pending = reads.then(|| signer.pending_batch(knobs, &mut rng));
    let signed: usize =
        batches.iter().map(Batch::len).sum::<usize>() + pending.as_ref().map_or(0, Batch::len);
    println!(
        "\n== setup\nchain: dev spec with 1 s blocks, genesis bits {}, at most {} transfers a \
         block, {} accounts funded at genesis ({} coins each)\nsigned and encoded {} transfers \
         in {:.1} s",
        knobs.bits,
        knobs.block_transfers,
        accounts,
        FUNDING_COINS,
        signed,
        signing.elapsed().as_secs_f64()
    );

    let miner_bech32 = miner.to_bech32(&hrp)?;
    let node_started = Instant::now();
    let mut node = NODES.start(
        "", // no name: its errors say "the node"
        &dir.join("node"),
        &spec_path,
        &[
            "--mine",
            "--threads",
            "1",
            "--miner-address",
            miner_bech32.as_str(),
        ],
    )?;
    let up = node_started.elapsed().as_secs_f64();
    // One empty block first, so the reads always have an empty block to ask for.
    NODES.wait_for(Duration::from_secs(120), "block 1", || {
        node.check_alive()?;
        Ok((tip_height(&node)? >= 1).then_some(()))
    })?;
    node.set_mining(false)?;
    println!(
        "node up in {up:.1} s (pid {}, API {}); mined block 1 (empty), then mining (1 thread) \
         turned off; tip height {}",
        node.pid(),
        node.api,
        tip_height(&node)?
    );

    // 1. Admission.
    println!(
        "\n== admission: POST /api/v1/transactions; per run {} senders × {} nonces = {} \
         transfers, K client threads (keep-alive, one request at a time each)",
        knobs.senders,
        knobs.nonces,
        knobs.senders * knobs.nonces as usize
    );
    admission_header();
    let mut admissions = Vec::new();
    let mut expected_pool = 0usize;
    for batch in &batches {
        if batch.mining {
            node.set_mining(true)?;
        }
        let result = admit_batch(&mut node, batch)?;
        if batch.mining {
            node.set_mining(false)?;
        }
        admission_row(batch, &result);
        expected_pool += result.accepted;
        if !batch.mining {
            let count = node.get("/api/v1/info")?["mempool_count"]
                .as_u64()
                .unwrap_or(0) as usize;
            if count != expected_pool {
                println!("    note: mempool holds {count}, {expected_pool} expected");
                expected_pool = count;
            }
        }
        admissions.push((batch.label.clone(), result));
    }

    let mut reads_table = Vec::new();
    if reads {
        // 2. Confirmation.
        let confirmed = confirm_all(&mut node)?;
        // 3. Pending batch.
        let pending = pending.expect("built when reads run");
        if pending.len() > 0 {
            println!("\n== pending batch: left in the mempool for the reads");
            let result = admit_batch(&mut node, &pending)?;
            admission_header();
            admission_row(&pending, &result);
            admissions.push((pending.label.clone(), result));
        }
        // 4. Reads.
        let calls = read_calls(&node, &batches, &pending, &signer.bech32)?;
        reads_table = read_phase(&mut node, &calls, knobs, confirmed)?;
    }

    summary(knobs, &admissions, &reads_table);
    node.check_alive()?;
    Ok(())
}

// ----- transfers -----

fn bench_keypair(i: u64) -> Keypair {
    cairn::core::testkit::derived_keypair("bench/api/key", i)
}

/// The dev spec made fast and private to this bench, funding `addresses` at genesis.
fn bench_spec(addresses: &[Address], bits: &str, block_transfers: u32) -> Result<ChainSpec> {
    let mut file = ChainSpec::from_toml(DEV_SPEC_TOML)?.file;
    file.name = "Cairn API bench".to_string();
    file.id = "apibench".to_string();
    file.chain_id = CHAIN_ID;
    file.genesis.bits = bits.to_string();
    file.genesis.allocations = addresses
        .iter()
        .map(|a| {
            Ok(AllocationFile {
                address: a.to_bech32(&file.address_prefix)?,
                amount: FUNDING_COINS.to_string(),
                note: None,
            })
        })
        .collect::<Result<_>>()?;
    file.consensus.ideal_block_time_secs = 1;
    file.consensus.asert_half_life_secs = 60;
    file.consensus.max_block_transfers = block_transfers;
    file.network.mdns = false;
    Ok(ChainSpec::from_file(file)?)
}

/// A transfer's txid (hex) and its submission body (JSON, as `tests/common::transfer_json`).
type Signed = (String, String);

/// A planned transfer: recipient account, fee, nonce.
type Plan = (usize, u64, u64);

/// Everything needed to sign the bench's transfers.
struct Signer {
    spec: ChainSpec,
    genesis: BlockHash,
    keys: Vec<Keypair>,
    addresses: Vec<Address>,
    bech32: Vec<String>,
}

impl Signer {
    /// A transfer from account `from` to account `to`.
    fn signed(&self, from: usize, to: usize, fee: u64, nonce: u64) -> Signed {
        let transfer: Transfer = UnsignedTransfer {
            chain_id: self.spec.chain_id(),
            to: self.addresses[to],
            amount: Amount::from_units(1_000 + nonce),
            fee: Amount::from_units(fee),
            nonce,
            memo: Vec::new(),
        }
        .sign(&self.keys[from], &self.genesis, &[7; 32]);
        let body = json!({
            "chain_id": transfer.chain_id,
            "from": self.bech32[from],
            "to": self.bech32[to],
            "amount": transfer.amount.as_units(),
            "fee": transfer.fee.as_units(),
            "nonce": transfer.nonce,
            "memo_hex": "",
            "signature": hex::encode(transfer.signature.0),
        });
        (transfer.txid().to_hex(), body.to_string())
    }

    /// Group `group`'s `senders` senders, each with `nonces` transfers from `first_nonce` on,
    /// to random funded accounts, fees 200..=999 units; per sender in nonce order.
    fn group(
        &self,
        group: usize,
        senders: usize,
        nonces: std::ops::Range<u64>,
        rng: &mut XorShift,
    ) -> Vec<Vec<Signed>> {
        let accounts = self.keys.len() as u64;
        let plan: Vec<(usize, Vec<Plan>)> = (group * senders..(group + 1) * senders)
            .map(|sender| {
                let list = nonces
                    .clone()
                    .map(|nonce| (rng.below(accounts) as usize, 200 + rng.below(800), nonce))
                    .collect();
                (sender, list)
            })
            .collect();
        plan.par_iter()
            .map(|(from, list)| {
                list.iter()
                    .map(|&(to, fee, nonce)| self.signed(*from, to, fee, nonce))
                    .collect()
            })
            .collect()
    }

    /// The transfers left pending for the reads: from group 0, at the nonces after its
    /// confirmed ones.
    fn pending_batch(&self, knobs: &Knobs, rng: &mut XorShift) -> Batch {
        let per_sender = knobs.pending.div_ceil(knobs.senders) as u64;
        let first = knobs.nonces;
        let mut senders = self.group(0, knobs.senders, first..first + per_sender, rng);
        // Trim to exactly `pending` transfers (the last senders send fewer).
        let mut extra = senders.iter().map(Vec::len).sum::<usize>() - knobs.pending;
        for list in senders.iter_mut().rev() {
            while extra > 0 && !list.is_empty() {
                list.pop();
                extra -= 1;
            }
        }
        senders.retain(|l| !l.is_empty());
        Batch {
            label: "pending batch".to_string(),
            clients: knobs.last_clients(),
            mining: false,
            senders,
        }
    }
}

// ----- admission -----

struct AdmitResult {
    submitted: usize,
    accepted: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
    refusals: BTreeMap<String, usize>,
    node_cpu: f64,
    bench_cpu: f64,
    /// CPU seconds of the node's driver thread (admission happens there, one at a time).
    driver_cpu: f64,
}

/// Submits `batch` with its K client threads and waits for every answer.
fn admit_batch(node: &mut NodeProcess, batch: &Batch) -> Result<AdmitResult> {
    let k = batch.clients;
    // Thread j sends the transfers of senders j, j + K, …, nonce by nonce.
    let mut work: Vec<Vec<&str>> = vec![Vec::new(); k];
    let depth = batch.senders.iter().map(Vec::len).max().unwrap_or(0);
    for position in 0..depth {
        for (sender, list) in batch.senders.iter().enumerate() {
            if let Some((_, body)) = list.get(position) {
                work[sender % k].push(body.as_str());
            }
        }
    }
    let url = format!("http://{}/api/v1/transactions", node.api);
    let agents: Vec<ureq::Agent> = (0..k).map(|_| agent()).collect();
    // Open every connection before the clock starts.
    for agent in &agents {
        NODES.get_json(agent, &format!("http://{}/api/v1/tip", node.api))?;
    }
    let barrier = Barrier::new(k + 1);
    let node_cpu = process_cpu(node.pid());
    let driver_cpu = driver_cpu(node.pid());
    let bench_cpu = self_cpu();
    let (started, outcomes) = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .iter()
            .zip(&agents)
            .map(|(bodies, agent)| {
                let barrier = &barrier;
                let url = &url;
                scope.spawn(move || {
                    let mut latencies = Vec::with_capacity(bodies.len());
                    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
                    let mut accepted = 0usize;
                    barrier.wait();
                    for body in bodies {
                        if INTERRUPTED.load(Ordering::Relaxed) {
                            break;
                        }
                        let sent = Instant::now();
                        match post(agent, url, body) {
                            Ok((200, _)) => accepted += 1,
                            Ok((status, answer)) => {
                                let code = serde_json::from_str::<Value>(&answer)
                                    .ok()
                                    .and_then(|v| v["error"]["code"].as_str().map(String::from))
                                    .unwrap_or_else(|| "?".into());
                                *refusals.entry(format!("{status} {code}")).or_default() += 1;
                            }
                            Err(e) => {
                                *refusals.entry(format!("transport: {e}")).or_default() += 1;
                            }
                        }
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    (accepted, latencies, refusals, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let outcomes: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("a client thread panicked"))
            .collect();
        (started, outcomes)
    });
    let node_cpu = process_cpu(node.pid()) - node_cpu;
    let driver_cpu = self::driver_cpu(node.pid()) - driver_cpu;
    let bench_cpu = self_cpu() - bench_cpu;
    interrupted()?;
    node.check_alive()?;
    let finished = outcomes.iter().map(|o| o.3).max().unwrap_or(started);
    let mut result = AdmitResult {
        submitted: batch.len(),
        accepted: 0,
        seconds: finished.duration_since(started).as_secs_f64(),
        latencies_ms: Vec::new(),
        refusals: BTreeMap::new(),
        node_cpu,
        bench_cpu,
        driver_cpu,
    };
    for (accepted, latencies, refusals, _) in outcomes {
        result.accepted += accepted;
        result.latencies_ms.extend(latencies);
        for (code, n) in refusals {
            *result.refusals.entry(code).or_default() += n;
        }
    }
    Ok(result)
}

fn admission_header() {
    println!(
        "{:<16}{:>8}{:>10}{:>10}{:>9}{:>13}{:>9}{:>9}{:>9}{:>10}{:>8}{:>11}{:>12}  refusals",
        "run",
        "clients",
        "submitted",
        "accepted",
        "seconds",
        "transfers/s",
        "med ms",
        "p90 ms",
        "p99 ms",
        "node CPU",
        "driver",
        "bench CPU",
        "node µs/tx"
    );
}

fn admission_row(batch: &Batch, r: &AdmitResult) {
    let refusals = if r.refusals.is_empty() {
        "none".to_string()
    } else {
        r.refusals
            .iter()
            .map(|(code, n)| format!("{n}× {code}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{:<16}{:>8}{:>10}{:>10}{:>9.2}{:>13.0}{:>9.2}{:>9.2}{:>9.2}{:>9.0}%{:>7.0}%{:>10.0}%{:>12.0}  {}",
        batch.label,
        batch.clients,
        r.submitted,
        r.accepted,
        r.seconds,
        r.accepted as f64 / r.seconds,
        percentile(&r.latencies_ms, 0.5),
        percentile(&r.latencies_ms, 0.9),
        percentile(&r.latencies_ms, 0.99),
        100.0 * r.node_cpu / r.seconds,
        100.0 * r.driver_cpu / r.seconds,
        100.0 * r.bench_cpu / r.seconds,
        1e6 * r.node_cpu / r.submitted as f64,
        refusals
    );
}

/// Turns mining on until the mempool is empty, then off again; returns the tip height.
fn confirm_all(node: &mut NodeProcess) -> Result<u64> {
    let info = node.get("/api/v1/info")?;
    let pending = info["mempool_count"].as_u64().unwrap_or(0);
    let from = info["height"].as_u64().unwrap_or(0);
    println!("\n== confirmation: mining (1 thread) on until the {pending} pending transfers are in blocks");
    let started = Instant::now();
    node.set_mining(true)?;
    let limit = Duration::from_secs(120 + pending / 50);
    let to = NODES
        .wait_for(limit, "the mempool to empty", || {
            node.check_alive()?;
            let info = node.get("/api/v1/info")?;
            Ok((info["mempool_count"].as_u64() == Some(0)).then(|| info["height"].as_u64()))
        })?
        .unwrap_or(from);
    let seconds = started.elapsed().as_secs_f64();
    node.set_mining(false)?;
    // Let a block found as mining stopped come in, then check the tip stands still.
    let mut height = tip_height(node)?;
    NODES.wait_for(Duration::from_secs(30), "the tip to stand still", || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = tip_height(node)?;
        let still = now == height;
        height = now;
        Ok(still.then_some(()))
    })?;
    println!(
        "{pending} transfers confirmed in {} blocks (heights {}..={to}) in {seconds:.1} s = {:.0} \
         transfers/s (block time, template building and validation; the miner has 1 thread); \
         tip now {height}",
        to.saturating_sub(from),
        from + 1,
        pending as f64 / seconds
    );
    Ok(height)
}

// ----- reads -----

/// A read call: its label and the paths its requests choose from.
struct ReadCall {
    label: String,
    paths: Vec<String>,
}

fn read_calls(
    node: &NodeProcess,
    batches: &[Batch],
    pending: &Batch,
    bech32: &[String],
) -> Result<Vec<ReadCall>> {
    // Which heights hold transfers.
    let tip = tip_height(node)?;
    let mut full = Vec::new();
    let mut empty = Vec::new();
    let mut counts = Vec::new();
    let mut before = tip + 1;
    while before > 1 {
        let page = node.get(&format!("/api/v1/blocks?limit=500&before={before}"))?;
        let list = page.as_array().ok_or_else(|| anyhow!("blocks: {page}"))?;
        if list.is_empty() {
            break;
        }
        for block in list {
            let height = block["height"].as_u64().unwrap_or(0);
            let transfers = block["transfers"].as_u64().unwrap_or(0);
            before = before.min(height);
            if height == 0 {
                continue;
            }
            if transfers > 0 {
                full.push(height);
                counts.push(transfers as f64);
            } else {
                empty.push(height);
            }
        }
    }
    ensure!(!full.is_empty(), "no block holds transfers");
    let confirmed: Vec<String> = batches.iter().flat_map(Batch::txids).cloned().collect();
    let pending_txids: Vec<String> = pending.txids().cloned().collect();
    // A sample of each kind really is what it is labelled.
    for txid in confirmed.iter().step_by((confirmed.len() / 10).max(1)) {
        let view = node.get(&format!("/api/v1/transactions/{txid}"))?;
        ensure!(view["status"] == "confirmed", "{txid}: {view}");
    }
    for txid in pending_txids
        .iter()
        .step_by((pending_txids.len() / 10).max(1))
    {
        let view = node.get(&format!("/api/v1/transactions/{txid}"))?;
        ensure!(view["status"] == "pending", "{txid}: {view}");
    }
    let senders: Vec<&String> = bech32.iter().collect();
    println!(
        "\n== reads: chain of {tip} blocks, {} holding transfers ({:.0} each on average, {} \
         at most), {} empty; {} confirmed and {} pending transfers; {} funded accounts",
        full.len(),
        counts.iter().sum::<f64>() / counts.len() as f64,
        percentile(&counts, 1.0),
        empty.len(),
        confirmed.len(),
        pending_txids.len(),
        senders.len()
    );
    let mut calls = vec![
        ReadCall {
            label: "tip".into(),
            paths: vec!["/api/v1/tip".into()],
        },
        ReadCall {
            label: "blocks/{h}, with transfers".into(),
            paths: full.iter().map(|h| format!("/api/v1/blocks/{h}")).collect(),
        },
    ];
    if !empty.is_empty() {
        calls.push(ReadCall {
            label: "blocks/{h}, empty".into(),
            paths: empty
                .iter()
                .map(|h| format!("/api/v1/blocks/{h}"))
                .collect(),
        });
    }
    calls.extend([
        ReadCall {
            label: "accounts/{a}".into(),
            paths: senders
                .iter()
                .map(|a| format!("/api/v1/accounts/{a}"))
                .collect(),
        },
        ReadCall {
            label: "transactions/{id}, confirmed".into(),
            paths: confirmed
                .iter()
                .map(|t| format!("/api/v1/transactions/{t}"))
                .collect(),
        },
    ]);
    if !pending_txids.is_empty() {
        calls.push(ReadCall {
            label: "transactions/{id}, pending".into(),
            paths: pending_txids
                .iter()
                .map(|t| format!("/api/v1/transactions/{t}"))
                .collect(),
        });
    }
    calls.extend([
        ReadCall {
            label: "accounts/{a}/history".into(),
            paths: senders
                .iter()
                .map(|a| format!("/api/v1/accounts/{a}/history"))
                .collect(),
        },
        ReadCall {
            label: "mempool".into(),
            paths: vec!["/api/v1/mempool".into()],
        },
    ]);
    Ok(calls)
}

/// What one read call measured.
struct ReadStats {
    label: String,
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: BTreeMap<String, usize>,
    bytes: u64,
    node_cpu: f64,
    bench_cpu: f64,
    /// The CPU figures cover other calls too (one call of a mixed run).
    shared_cpu: bool,
}

fn read_phase(
    node: &mut NodeProcess,
    calls: &[ReadCall],
    knobs: &Knobs,
    tip: u64,
) -> Result<Vec<ReadStats>> {
    println!(
        "C = {} client threads (keep-alive), {} s per call, each call alone, then all mixed; \
         mining off; tip {tip}",
        knobs.readers, knobs.read_secs
    );
    let mut table = Vec::new();
    read_header("each call alone");
    for i in 0..calls.len() {
        let stats = read_run(node, calls, &[i], knobs)?;
        let stats = stats.into_iter().next().expect("one call");
        read_row(&stats);
        table.push(stats);
    }
    let all: Vec<usize> = (0..calls.len()).collect();
    let mixed = read_run(node, calls, &all, knobs)?;
    read_header("all calls mixed (each request picks a call at random)");
    let mut total = ReadStats {
        label: "all, mixed".into(),
        seconds: mixed.first().map_or(0.0, |s| s.seconds),
        latencies_ms: Vec::new(),
        errors: BTreeMap::new(),
        bytes: 0,
        node_cpu: mixed.first().map_or(0.0, |s| s.node_cpu),
        bench_cpu: mixed.first().map_or(0.0, |s| s.bench_cpu),
        shared_cpu: false,
    };
    for stats in &mixed {
        read_row(stats);
        total.latencies_ms.extend(&stats.latencies_ms);
        total.bytes += stats.bytes;
        for (code, n) in &stats.errors {
            *total.errors.entry(code.clone()).or_default() += n;
        }
    }
    read_row(&total);
    table.push(total);
    Ok(table)
}

/// C threads send requests of `which` calls for T seconds; the statistics per call.
fn read_run(
    node: &mut NodeProcess,
    calls: &[ReadCall],
    which: &[usize],
    knobs: &Knobs,
) -> Result<Vec<ReadStats>> {
    let base = format!("http://{}", node.api);
    let agents: Vec<ureq::Agent> = (0..knobs.readers).map(|_| agent()).collect();
    for agent in &agents {
        NODES.get_json(agent, &format!("{base}/api/v1/tip"))?;
    }
    let duration = Duration::from_secs_f64(knobs.read_secs);
    let barrier = Barrier::new(knobs.readers + 1);
    let node_cpu = process_cpu(node.pid());
    let bench_cpu = self_cpu();
    type Sample = (usize, f64, Result<(u16, u64), String>);
    let (started, finished, samples) = std::thread::scope(|scope| {
        let handles: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(t, agent)| {
                let barrier = &barrier;
                let base = &base;
                scope.spawn(move || {
                    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                    let mut samples: Vec<Sample> = Vec::new();
                    barrier.wait();
                    let start = Instant::now();
                    while start.elapsed() < duration && !INTERRUPTED.load(Ordering::Relaxed) {
                        let call = which[rng.below(which.len() as u64) as usize];
                        let paths = &calls[call].paths;
                        let path = &paths[rng.below(paths.len() as u64) as usize];
                        let sent = Instant::now();
                        let outcome = get_bytes(agent, &format!("{base}{path}"));
                        samples.push((call, sent.elapsed().as_secs_f64() * 1e3, outcome));
                    }
                    (samples, Instant::now())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let mut finished = started;
        let mut samples = Vec::new();
        for handle in handles {
            let (list, end) = handle.join().expect("a client thread panicked");
            finished = finished.max(end);
            samples.extend(list);
        }
        (started, finished, samples)
    });
    let node_cpu = process_cpu(node.pid()) - node_cpu;
    let bench_cpu = self_cpu() - bench_cpu;
    interrupted()?;
    node.check_alive()?;
    let seconds = finished.duration_since(started).as_secs_f64();
    let mut out: Vec<ReadStats> = which
        .iter()
        .map(|&i| ReadStats {
            label: calls[i].label.clone(),
            seconds,
            latencies_ms: Vec::new(),
            errors: BTreeMap::new(),
            bytes: 0,
            node_cpu,
            bench_cpu,
            shared_cpu: which.len() > 1,
        })
        .collect();
    for (call, ms, outcome) in samples {
        let slot = which
            .iter()
            .position(|&i| i == call)
            .expect("a chosen call");
        let stats = &mut out[slot];
        stats.latencies_ms.push(ms);
        match outcome {
            Ok((200, bytes)) => stats.bytes += bytes,
            Ok((status, _)) => *stats.errors.entry(status.to_string()).or_default() += 1,
            Err(e) => *stats.errors.entry(e).or_default() += 1,
        }
    }
    Ok(out)
}

fn read_header(title: &str) {
    println!("\n{title}:");
    println!(
        "{:<32}{:>10}{:>8}{:>10}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>11}{:>13}",
        "GET /api/v1/…",
        "requests",
        "errors",
        "req/s",
        "med ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "KB/answer",
        "node CPU",
        "bench CPU",
        "node µs/req"
    );
}

fn read_row(s: &ReadStats) {
    let n = s.latencies_ms.len();
    let errors: usize = s.errors.values().sum();
    let ok = n - errors;
    // In a mixed run the CPU is measured for all calls together (the "all" row).
    let cpu = |share: f64, suffix: &str, digits: usize| {
        if s.shared_cpu {
            "-".to_string()
        } else {
            format!("{share:.digits$}{suffix}")
        }
    };
    println!(
        "{:<32}{:>10}{:>8}{:>10.0}{:>9.2}{:>9.2}{:>9.2}{:>9.1}{:>10.1}{:>10}{:>11}{:>13}",
        s.label,
        n,
        errors,
        n as f64 / s.seconds,
        percentile(&s.latencies_ms, 0.5),
        percentile(&s.latencies_ms, 0.9),
        percentile(&s.latencies_ms, 0.99),
        percentile(&s.latencies_ms, 1.0),
        if ok == 0 {
            0.0
        } else {
            s.bytes as f64 / ok as f64 / 1024.0
        },
        cpu(100.0 * s.node_cpu / s.seconds, "%", 0),
        cpu(100.0 * s.bench_cpu / s.seconds, "%", 0),
        cpu(1e6 * s.node_cpu / n.max(1) as f64, "", 0),
    );
    if !s.errors.is_empty() {
        println!("    errors: {:?}", s.errors);
    }
}

fn summary(knobs: &Knobs, admissions: &[(String, AdmitResult)], reads: &[ReadStats]) {
    println!("\n== summary (for docs/BENCHMARKS.md and the README table)");
    println!("load average now: {}", load_average());
    for (label, r) in admissions {
        println!(
            "admission {label}: {:.0} transfers/s accepted ({} of {}), latency median {:.2} ms, \
             p99 {:.2} ms",
            r.accepted as f64 / r.seconds,
            r.accepted,
            r.submitted,
            percentile(&r.latencies_ms, 0.5),
            percentile(&r.latencies_ms, 0.99)
        );
    }
    for s in reads {
        println!(
            "read {} (C={}): {:.0} req/s, median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
            s.label,
            knobs.readers,
            s.latencies_ms.len() as f64 / s.seconds,
            percentile(&s.latencies_ms, 0.5),
            percentile(&s.latencies_ms, 0.9),
            percentile(&s.latencies_ms, 0.99)
        );
    }
}

// ----- the node -----

/// The calls of this bench on its node (the rest is in `support/node.rs`).
impl NodeProcess {
    /// Turns mining on or off with the admin call (the token is in the data directory).
    fn set_mining(&self, enabled: bool) -> Result<()> {
        let token =
            std::fs::read_to_string(self.data_dir.join(".cookie")).context("the node's .cookie")?;
        let url = format!("http://{}/api/v1/admin/mining", self.api);
        let mut response = agent()
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {}", token.trim()))
            .send(json!({ "enabled": enabled }).to_string().as_bytes())
            .with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let answer = response.body_mut().read_to_string().unwrap_or_default();
        ensure!(status == 200, "POST {url} answered {status}: {answer}");
        Ok(())
    }
}

fn tip_height(node: &NodeProcess) -> Result<u64> {
    let tip = node.get("/api/v1/tip")?;
    tip["height"]
        .as_u64()
        .ok_or_else(|| anyhow!("no height in {tip}"))
}

// ----- HTTP -----

/// A client with its own connection pool (keep-alive), statuses as values.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// `GET url`: the status and the size of the answer, read to the end (so the connection is
/// reused), not parsed.
fn get_bytes(agent: &ureq::Agent, url: &str) -> Result<(u16, u64), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((status, body.len() as u64))
}

/// `POST url` with a JSON body: the status and the answer text.
fn post(agent: &ureq::Agent, url: &str, body: &str) -> Result<(u16, String), ureq::Error> {
    let mut response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())?;
    let status = response.status().as_u16();
    let answer = response.body_mut().read_to_string()?;
    Ok((status, answer))
}

// ----- measurement helpers -----

/// CPU seconds of a node's driver thread so far: the first thread named "driver" (the rayon
/// workers it starts inherit the name).
fn driver_cpu(pid: u32) -> f64 {
    let mut threads: Vec<(u64, f64)> = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let Ok(tid) = task.file_name().to_string_lossy().parse::<u64>() else {
                continue;
            };
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "driver" {
                threads.push((
                    tid,
                    stat_cpu(&task.path().join("stat").to_string_lossy()).map_or(0.0, |(_, s)| s),
                ));
            }
        }
    }
    threads.sort_by_key(|t| t.0);
    threads.first().map_or(0.0, |t| t.1)
}

/// A small deterministic generator (xorshift64*), one per thread.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
