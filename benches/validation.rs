//! Block validation benchmarks: transfers per second when validating a block of 2,000 signed
//! transfers over a state of 10,000 funded accounts, in rayon pools of 1 and 2 threads.
//!
//! Groups:
//! - `validation/body+state/<threads>`: `check_body` then `check_state` (signatures, every
//!   transfer rule, the state root), as a node does for a new block.
//! - `validation/state/<threads>`: `check_state` alone.
//! - `validation_parts/...`: the pieces of that work, each on one thread, to show where the
//!   time goes (see `docs/BENCHMARKS.md`): signature checks, txids, the merkle root, the
//!   state tree update, and `check_body`.
//!
//! One element is one transfer. See `docs/BENCHMARKS.md` and `benches/run.sh`.
#![allow(clippy::disallowed_methods)]

use cairn::core::consensus::validation::{check_body, check_state};
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::{Address, Block, BlockHash, StateRoot};
use cairn::core::state::memory::MemoryState;
use cairn::core::state::smt::update_root;
use cairn::core::testkit::{solve, TestChain};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use secp256k1::Keypair;
use std::hint::black_box;
use std::time::Duration;

/// Funded accounts in the parent state.
const ACCOUNTS: u32 = 10_000;
/// Transfers in the block (each from a different sender).
const TRANSFERS: u32 = 2_000;
/// Thread counts of the rayon pools the block is validated in.
const THREADS: [usize; 2] = [1, 2];

fn keypair(i: u32) -> Keypair {
    cairn::core::testkit::derived_keypair("bench/key", u64::from(i))
}

fn address(keypair: &Keypair) -> Address {
    cairn::core::testkit::address_of(keypair)
}

/// The test spec with `addresses` funded (1,000,000 coins each).
fn spec(addresses: &[Address]) -> ChainSpec {
    cairn::core::testkit::test_spec_funding(addresses)
}

/// Everything one validation needs: the block, the state at its parent, and the chain.
struct Fixture {
    spec: ChainSpec,
    genesis_hash: BlockHash,
    state: MemoryState,
    parent_root: StateRoot,
    block: Block,
}

fn fixture() -> Fixture {
    let keys: Vec<Keypair> = (0..ACCOUNTS).map(keypair).collect();
    let addresses: Vec<Address> = keys.iter().map(address).collect();
    let chain = TestChain::with_spec(spec(&addresses));
    let genesis_hash = chain.genesis_hash;
    // Sender i pays a pseudo-randomly chosen account (some of them senders too).
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d;
    let transfers = (0..TRANSFERS as usize)
        .map(|i| {
            lcg = lcg
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let to = addresses[((lcg >> 33) % u64::from(ACCOUNTS)) as usize];
            chain.transfer(&keys[i], to, 1_000 + i as u64, 10, 0)
        })
        .collect();
    let miner = address(&keypair(ACCOUNTS + 1));
    let mut block = chain.template(&genesis_hash, transfers, miner);
    solve(&mut block.header);
    let state = chain.state_at(&genesis_hash).clone();
    let parent_root = chain.entry_of(&genesis_hash).header.state_root;
    let fixture = Fixture {
        spec: chain.spec.clone(),
        genesis_hash,
        state,
        parent_root,
        block,
    };
    // The block is valid, so every measured run does the whole work.
    check_body(&fixture.block, &fixture.spec).expect("valid body");
    check_state(
        &fixture.state,
        fixture.parent_root,
        &fixture.block,
        &fixture.spec,
        &fixture.genesis_hash,
    )
    .expect("valid state change");
    fixture
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

fn validation(c: &mut Criterion) {
    let f = fixture();
    let validate_all = || {
        check_body(black_box(&f.block), &f.spec).expect("valid body");
        check_state(&f.state, f.parent_root, &f.block, &f.spec, &f.genesis_hash)
            .expect("valid state change")
    };
    let validate_state = || {
        check_state(
            &f.state,
            f.parent_root,
            black_box(&f.block),
            &f.spec,
            &f.genesis_hash,
        )
        .expect("valid state change")
    };

    let mut group = c.benchmark_group("validation");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(u64::from(TRANSFERS)));
    for threads in THREADS {
        let pool = pool(threads);
        group.bench_function(BenchmarkId::new("body+state", threads), |b| {
            b.iter(|| pool.install(validate_all))
        });
        group.bench_function(BenchmarkId::new("state", threads), |b| {
            b.iter(|| pool.install(validate_state))
        });
    }
    group.finish();

    // The pieces, each on one thread.
    let one = pool(1);
    let change = validate_state();
    let mut group = c.benchmark_group("validation_parts");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(u64::from(TRANSFERS)));
    group.bench_function("signatures", |b| {
        b.iter(|| {
            for transfer in &f.block.transfers {
                assert!(transfer.has_valid_signature(black_box(&f.genesis_hash)));
            }
        })
    });
    group.bench_function("txids", |b| {
        b.iter(|| {
            for transfer in black_box(&f.block.transfers) {
                black_box(transfer.txid());
            }
        })
    });
    group.bench_function("tx_root", |b| {
        b.iter(|| black_box(black_box(&f.block).compute_tx_root()))
    });
    group.bench_function("check_body", |b| {
        b.iter(|| check_body(black_box(&f.block), &f.spec).expect("valid body"))
    });
    group.bench_function("smt_update", |b| {
        b.iter(|| {
            one.install(|| {
                update_root(&f.state, f.parent_root.0, black_box(&change.accounts))
                    .expect("the parent state holds every node")
            })
        })
    });
    group.finish();
    eprintln!(
        "validation fixture: {} transfers, {} accounts touched, {} new tree pages",
        f.block.transfers.len(),
        change.accounts.len(),
        change.new_pages.len()
    );
}

/// Pairs of runs for [`paired_speedup`].
const PAIRS: usize = 40;

/// The 2-thread speedup measured in pairs: each pair validates the block once in a 1-thread
/// pool and once in a 2-thread pool, back to back (alternating which goes first), and the
/// ratio is taken within the pair. Noise from a shared or virtual machine that comes and goes
/// over seconds then hits both halves of a pair alike, which separate criterion runs of 1
/// and 2 threads, taken a minute apart, cannot promise.
fn paired_speedup(_: &mut Criterion) {
    let f = fixture();
    let pools = [pool(1), pool(2)];
    let validate = |pool: &rayon::ThreadPool| {
        let start = std::time::Instant::now();
        pool.install(|| {
            check_body(&f.block, &f.spec).expect("valid body");
            check_state(&f.state, f.parent_root, &f.block, &f.spec, &f.genesis_hash)
                .expect("valid state change");
        });
        start.elapsed().as_secs_f64()
    };
    validate(&pools[0]);
    validate(&pools[1]);
    let mut one = Vec::with_capacity(PAIRS);
    let mut two = Vec::with_capacity(PAIRS);
    let mut ratios = Vec::with_capacity(PAIRS);
    for pair in 0..PAIRS {
        let (t1, t2) = if pair % 2 == 0 {
            let t1 = validate(&pools[0]);
            (t1, validate(&pools[1]))
        } else {
            let t2 = validate(&pools[1]);
            (validate(&pools[0]), t2)
        };
        one.push(t1);
        two.push(t2);
        ratios.push(t1 / t2);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m1, m2) = (median(&mut one), median(&mut two));
    let mr = median(&mut ratios);
    let transfers = f.block.transfers.len() as f64;
    println!(
        "paired validation ({PAIRS} pairs): 1 thread {:.1} ms ({:.0} transfers/s), \
         2 threads {:.1} ms ({:.0} transfers/s), speedup median {mr:.2}x \
         (quartiles {:.2}x..{:.2}x)",
        m1 * 1e3,
        transfers / m1,
        m2 * 1e3,
        transfers / m2,
        ratios[PAIRS / 4],
        ratios[PAIRS * 3 / 4],
    );
}

criterion_group!(benches, validation, paired_speedup);
criterion_main!(benches);
