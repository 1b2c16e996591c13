//! Mempool benchmarks, in process: how many transfers per second the pool admits, selects for
//! a block and drops when a block is connected, over a state of 10,000 funded accounts
//! (`core::testkit` chain, `MemoryState`), with the default `MempoolConfig`.
//!
//! Groups (one element is one transfer; criterion reports elements/s = transfers/s):
//! - `mempool_admit/singles/10000`: `Mempool::admit` of 10,000 pre-signed transfers, one per
//!   sender (nonce 0), into an empty pool. Everything admission does is included: the txid,
//!   the signature check (the real cost), the nonce and balance checks, the indexes.
//! - `mempool_admit/chains_1000x10/10000`: the same with 1,000 senders × 10 nonces each,
//!   submitted nonce by nonce across the senders (every admission walks the sender's earlier
//!   pending transfers for the balance check and revalidates its queue).
//! - `mempool_admit/chains_312x32/9984`: 312 senders × 32 nonces (the gap limit), the longest
//!   queues the default config allows.
//! - `mempool_parts/signatures/10000`: `has_valid_signature` of the 10,000 singles alone; the
//!   rest of the admission time is the pool's own work.
//! - `mempool_select/singles_10000/2000`: `Mempool::select` of a full block (2,000 transfers,
//!   the node's byte budget) from a pool of 10,000 single transfers with varied fees.
//! - `mempool_select/chains_1000x10/2000`: the same from the pool of 1,000 × 10 chains (the
//!   selection follows each sender's nonces).
//! - `mempool_update_for_tip/connected_singles/2000`: `update_for_tip` after a block of the
//!   2,000 selected transfers is connected, on the 10,000-transfer pool (they leave, their
//!   senders are revalidated). The pool is cloned outside the timing.
//! - `mempool_update_for_tip/connected_chains/2000`: the same on the chains pool (the senders
//!   keep later nonces, which are revalidated against the new state).
//! - `mempool_update_for_tip/disconnected_singles/2000`: the reverse, a reorg: the block is
//!   taken off again and its 2,000 transfers are re-admitted (signature checks included).
//!
//! - `paired admission` (printed, not a criterion group): 30 rounds, each running five
//!   columns back to back on one thread: admission of the 10,000 singles as the node runs it
//!   (through a signature cache) from new senders and from senders whose keys the cache
//!   holds; `has_valid_signature` alone; raw libsecp256k1 verification of the same
//!   signatures with parsed keys and from key bytes (`support/raw_verify.rs`). Ratios are
//!   taken within each round and their median printed, which host noise moves much less than
//!   the ratio of two criterion runs taken a minute apart.
//!
//! Run: `cargo bench --bench mempool` (about 2 minutes), or a subset by name, e.g.
//! `cargo bench --bench mempool -- mempool_select`, `cargo bench --bench mempool -- paired`.
//! See `docs/BENCHMARKS.md`.
#![allow(clippy::disallowed_methods)]

use cairn::core::consensus::ChainSpec;
use cairn::core::mempool::{Mempool, MempoolConfig};
use cairn::core::primitives::{Address, Block, BlockHash, Transfer};
use cairn::core::state::memory::MemoryState;
use cairn::core::state::sigcache::DEFAULT_CAPACITY;
use cairn::core::state::SignatureCache;
use cairn::core::testkit::TestChain;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rayon::prelude::*;
use secp256k1::Keypair;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[path = "support/raw_verify.rs"]
mod raw_verify;
use raw_verify::RawVerification;

/// Funded accounts in the state (and single-transfer senders).
const ACCOUNTS: u32 = 10_000;
/// Senders and nonces of the chained workloads.
const CHAINS: [(u32, u64); 2] = [(1_000, 10), (312, 32)];
/// Transfers in the block for `select` and `update_for_tip`.
const BLOCK_TRANSFERS: usize = 2_000;
/// The clock of every admission (Unix seconds; only expiry reads it).
const NOW: u64 = 1_767_230_000;

fn keypair(i: u32) -> Keypair {
    cairn::core::testkit::derived_keypair("bench/mempool/key", u64::from(i))
}

fn address(keypair: &Keypair) -> Address {
    cairn::core::testkit::address_of(keypair)
}

/// The test spec with `addresses` funded (1,000,000 coins each).
fn spec(addresses: &[Address]) -> ChainSpec {
    cairn::core::testkit::test_spec_funding(addresses)
}

/// A pseudo-random sequence (64-bit LCG, high bits), deterministic across runs.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

struct Fixture {
    chain: TestChain,
    genesis: BlockHash,
    config: MempoolConfig,
    /// Sender i (nonce 0) for every account, fees 200..1,199 units (164 bytes each).
    singles: Vec<Transfer>,
    /// Per entry of `CHAINS`: every sender's nonces, nonce by nonce across the senders.
    chains: Vec<Vec<Transfer>>,
    /// The node's byte budget for a block's transfers.
    block_bytes: usize,
}

impl Fixture {
    fn new() -> Fixture {
        let keys: Vec<Keypair> = (0..ACCOUNTS).into_par_iter().map(keypair).collect();
        let addresses: Vec<Address> = keys.iter().map(address).collect();
        let chain = TestChain::with_spec(spec(&addresses));
        let genesis = chain.genesis_hash;
        let mut lcg = Lcg(0x2545_f491_4f6c_dd1d);
        // (sender, recipient, fee, nonce), drawn in order, then signed on all cores.
        let mut draw = |sender: usize, nonce: u64| {
            let to = lcg.next(u64::from(ACCOUNTS)) as usize;
            let fee = 200 + lcg.next(1_000);
            (sender, to, fee, nonce)
        };
        let single_plan: Vec<_> = (0..ACCOUNTS as usize).map(|i| draw(i, 0)).collect();
        let chain_plans: Vec<Vec<_>> = CHAINS
            .iter()
            .map(|&(senders, nonces)| {
                (0..nonces)
                    .flat_map(|nonce| (0..senders as usize).map(move |s| (s, nonce)))
                    .map(|(s, nonce)| draw(s, nonce))
                    .collect()
            })
            .collect();
        let sign = |plan: &[(usize, usize, u64, u64)]| -> Vec<Transfer> {
            plan.par_iter()
                .map(|&(from, to, fee, nonce)| {
                    chain.transfer(&keys[from], addresses[to], 1_000 + nonce, fee, nonce)
                })
                .collect()
        };
        let singles = sign(&single_plan);
        let chains = chain_plans.iter().map(|p| sign(p)).collect();
        let block_bytes = chain
            .spec
            .max_block_bytes()
            .saturating_sub(Block::empty_encoded_size());
        Fixture {
            genesis,
            config: MempoolConfig::default(),
            singles,
            chains,
            block_bytes,
            chain,
        }
    }

    fn state(&self) -> &MemoryState {
        self.chain.state_at(&self.genesis)
    }

    fn empty_pool(&self) -> Mempool {
        Mempool::new(self.config, self.genesis, self.chain.spec.chain_id())
    }

    /// A pool holding `transfers` (each must be admitted).
    fn pool_of(&self, transfers: &[Transfer]) -> Mempool {
        let mut pool = self.empty_pool();
        admit_all(&mut pool, transfers.to_vec(), self.state());
        pool
    }
}

fn admit_all(pool: &mut Mempool, transfers: Vec<Transfer>, state: &MemoryState) {
    for transfer in transfers {
        pool.admit(transfer, state, NOW)
            .expect("every bench transfer is admitted");
    }
}

fn admission(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("mempool_admit");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(6));
    let mut workloads = vec![("singles".to_string(), &f.singles)];
    for (&(senders, nonces), transfers) in CHAINS.iter().zip(&f.chains) {
        workloads.push((format!("chains_{senders}x{nonces}"), transfers));
    }
    for (name, transfers) in workloads {
        group.throughput(Throughput::Elements(transfers.len() as u64));
        group.bench_function(BenchmarkId::new(name, transfers.len()), |b| {
            b.iter_batched(
                || (f.empty_pool(), transfers.clone()),
                |(mut pool, transfers)| {
                    admit_all(&mut pool, transfers, f.state());
                    pool
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("mempool_parts");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(f.singles.len() as u64));
    group.bench_function(BenchmarkId::new("signatures", f.singles.len()), |b| {
        b.iter(|| {
            for transfer in &f.singles {
                assert!(transfer.has_valid_signature(black_box(&f.genesis)));
            }
        })
    });
    group.finish();
}

fn selection_and_tip(c: &mut Criterion, f: &Fixture) {
    let singles_pool = f.pool_of(&f.singles);
    let chains_pool = f.pool_of(&f.chains[0]);
    let pools = [("singles", &singles_pool), ("chains_1000x10", &chains_pool)];

    let mut group = c.benchmark_group("mempool_select");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(BLOCK_TRANSFERS as u64));
    for (name, pool) in pools {
        let selected = pool
            .select(f.state(), f.block_bytes, BLOCK_TRANSFERS)
            .expect("the state reads");
        assert_eq!(selected.len(), BLOCK_TRANSFERS, "a full block from {name}");
        let id = format!("{name}_{}", pool.len());
        group.bench_function(BenchmarkId::new(id, BLOCK_TRANSFERS), |b| {
            b.iter(|| {
                pool.select(black_box(f.state()), f.block_bytes, BLOCK_TRANSFERS)
                    .expect("the state reads")
            })
        });
    }
    group.finish();

    // The block each pool would give, connected on genesis.
    let mut chain = f.chain.clone();
    let miner = address(&keypair(ACCOUNTS + 1));
    let mut blocks = Vec::new();
    for (name, pool) in pools {
        let selected = pool
            .select(f.state(), f.block_bytes, BLOCK_TRANSFERS)
            .expect("the state reads");
        let block = chain.mine(&f.genesis, selected, miner);
        let state_after = chain.state_at(&block.hash()).clone();
        let mut check = pool.clone();
        let update = check.update_for_tip(&[], std::slice::from_ref(&block), &state_after, NOW);
        assert_eq!(update.included.len(), BLOCK_TRANSFERS, "{name}");
        assert!(
            update.invalidated.is_empty(),
            "{name}: {:?}",
            update.invalidated
        );
        assert_eq!(check.len(), pool.len() - BLOCK_TRANSFERS);
        blocks.push((name, pool, block, state_after, check));
    }

    let mut group = c.benchmark_group("mempool_update_for_tip");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(BLOCK_TRANSFERS as u64));
    for (name, pool, block, state_after, _) in &blocks {
        let connected = std::slice::from_ref(block);
        group.bench_function(
            BenchmarkId::new(format!("connected_{name}"), BLOCK_TRANSFERS),
            |b| {
                b.iter_batched(
                    || (*pool).clone(),
                    |mut pool| {
                        let update = pool.update_for_tip(&[], connected, state_after, NOW);
                        (pool, update)
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    // A reorg: the singles block is taken off and its transfers come back.
    let (_, _, block, _, after) = &blocks[0];
    let disconnected = std::slice::from_ref(block);
    let mut check = after.clone();
    let update = check.update_for_tip(disconnected, &[], f.state(), NOW);
    assert_eq!(update.returned.len(), BLOCK_TRANSFERS);
    assert!(update.invalidated.is_empty(), "{:?}", update.invalidated);
    group.bench_function(
        BenchmarkId::new("disconnected_singles", BLOCK_TRANSFERS),
        |b| {
            b.iter_batched(
                || after.clone(),
                |mut pool| {
                    let update = pool.update_for_tip(disconnected, &[], f.state(), NOW);
                    (pool, update)
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
    eprintln!(
        "mempool fixture: {} accounts; pools of {} singles and {} chained transfers \
         ({} bytes, {} bytes); block of {} transfers ({} bytes budget)",
        ACCOUNTS,
        singles_pool.len(),
        chains_pool.len(),
        singles_pool.bytes(),
        chains_pool.bytes(),
        BLOCK_TRANSFERS,
        f.block_bytes
    );
}

/// Rounds of [`paired_share`].
const PAIRS: usize = 30;

/// Admission against raw verification, side by side: each round runs every column once on
/// one thread (the order rotating from round to round), so host noise that comes and goes
/// over seconds hits all of them alike. Printed: the median rates and the medians of the
/// per-round ratios (see the module documentation).
fn paired_share(f: &Fixture) {
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a 1-thread pool");
    let raw = RawVerification::of(&f.singles, &f.genesis);
    let time = |work: &dyn Fn()| {
        let start = std::time::Instant::now();
        work();
        start.elapsed().as_secs_f64()
    };
    // Admission as the node runs it: through a signature cache shared with validation.
    // New senders: a fresh cache. Known senders: their keys were parsed before (the cache
    // keeps them), their signatures not checked.
    let known = Arc::new(SignatureCache::new(f.genesis, DEFAULT_CAPACITY));
    assert!(known.check_all(&f.singles).is_none());
    let admit = |cache: Arc<SignatureCache>| {
        let mut pool = f.empty_pool().with_signature_cache(cache);
        let transfers = f.singles.clone();
        let start = std::time::Instant::now();
        admit_all(&mut pool, transfers, f.state());
        let elapsed = start.elapsed().as_secs_f64();
        drop(black_box(pool));
        elapsed
    };
    let new_senders = || admit(Arc::new(SignatureCache::new(f.genesis, DEFAULT_CAPACITY)));
    let known_senders = || {
        known.forget_signatures();
        admit(known.clone())
    };
    let signatures = || {
        time(&|| {
            for transfer in &f.singles {
                assert!(transfer.has_valid_signature(black_box(&f.genesis)));
            }
        })
    };
    let parsed = || time(&|| one_thread.install(|| raw.verify_parsed()));
    let from_bytes = || time(&|| one_thread.install(|| raw.verify_from_bytes()));
    let columns: [&dyn Fn() -> f64; 5] = [
        &new_senders,
        &known_senders,
        &signatures,
        &parsed,
        &from_bytes,
    ];
    new_senders();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); columns.len()];
    for round in 0..PAIRS {
        // The order rotates, so that no column always runs first or last.
        for k in 0..columns.len() {
            let column = (round + k) % columns.len();
            times[column].push(columns[column]());
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Ratios of rates within each round, then their median.
    let ratio = |a: usize, b: usize| {
        median(
            times[a]
                .iter()
                .zip(&times[b])
                .map(|(ta, tb)| tb / ta)
                .collect(),
        )
    };
    let n = f.singles.len() as f64;
    let rate = |column: usize| n / median(times[column].clone());
    println!(
        "paired admission ({PAIRS} rounds of {n} singles, one thread), transfers/s: admission \
         of new senders {:.0}, of known senders {:.0}; has_valid_signature alone {:.0}; raw \
         verification of parsed keys {:.0}, from key bytes {:.0}",
        rate(0),
        rate(1),
        rate(2),
        rate(3),
        rate(4)
    );
    println!(
        "paired admission: new senders {:.3} of raw verification of parsed keys, {:.3} from \
         key bytes; known senders {:.3} / {:.3}; the signature check is {:.0}% of admission of \
         new senders (median of per-round ratios)",
        ratio(0, 3),
        ratio(0, 4),
        ratio(1, 3),
        ratio(1, 4),
        ratio(0, 2) * 100.0
    );
}

/// The fixture, built once for all groups.
fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(Fixture::new)
}

/// Whether criterion's name filter (the first argument that is not a flag), if any, is part
/// of `name`.
fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|filter| name.contains(&filter))
}

fn mempool(c: &mut Criterion) {
    let groups = [
        "mempool_admit",
        "mempool_parts",
        "mempool_select",
        "mempool_update_for_tip",
    ];
    if groups.iter().any(|g| selected(g)) {
        let f = fixture();
        admission(c, f);
        selection_and_tip(c, f);
    }
}

/// `cargo bench --bench mempool -- paired` runs only this; any other name filter skips it.
fn paired(_: &mut Criterion) {
    if selected("paired") {
        paired_share(fixture());
    }
}

criterion_group!(benches, mempool, paired);
criterion_main!(benches);
