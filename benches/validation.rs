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
//! - `execution/{few,many}_conflicts/<threads>`: the transfer rules and the state root alone
//!   (no signatures), for a block of nearly independent transfers and one of a single
//!   conflict group.
//! - `paired`: validation against raw BIP340 verification of the same signatures, 1 and 2
//!   threads, interleaved round by round (see [`paired`]).
//!
//! One element is one transfer. See `docs/BENCHMARKS.md` and `benches/run.sh`.
#![allow(clippy::disallowed_methods)]

use cairn::core::consensus::apply::{apply_block, ApplyContext};
use cairn::core::consensus::schedule::conflict_groups;
use cairn::core::consensus::validation::{check_body, check_state, check_state_cached};
use cairn::core::consensus::ChainSpec;
use cairn::core::primitives::{Address, Block, BlockHash, StateRoot};
use cairn::core::state::memory::MemoryState;
use cairn::core::state::sigcache::DEFAULT_CAPACITY;
use cairn::core::state::smt::{prove, update_root};
use cairn::core::state::SignatureCache;
use cairn::core::testkit::{solve, TestChain};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode,
    Throughput,
};
use secp256k1::{schnorr, Keypair, XOnlyPublicKey};
use std::hint::black_box;
use std::time::Duration;

#[path = "support/raw_verify.rs"]
mod raw_verify;
use raw_verify::RawVerification;

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

/// How the block's transfers pick their accounts.
#[derive(Clone, Copy, Debug)]
enum Conflicts {
    /// Each transfer from its own sender to a pseudo-randomly chosen account (some of them
    /// senders too): nearly every transfer is independent of the others.
    Few,
    /// [`MANY_CONFLICTS_SENDERS`] senders, each paying the next in a ring, 100 transfers
    /// each: one conflict group, which must run in order.
    Many,
}

/// Senders of the [`Conflicts::Many`] block.
const MANY_CONFLICTS_SENDERS: u32 = 20;

fn fixture() -> Fixture {
    fixture_with(Conflicts::Few)
}

fn fixture_with(conflicts: Conflicts) -> Fixture {
    let keys: Vec<Keypair> = (0..ACCOUNTS).map(keypair).collect();
    let addresses: Vec<Address> = keys.iter().map(address).collect();
    let chain = TestChain::with_spec(spec(&addresses));
    let genesis_hash = chain.genesis_hash;
    let mut lcg: u64 = 0x2545_f491_4f6c_dd1d;
    let transfers = (0..TRANSFERS as usize)
        .map(|i| match conflicts {
            Conflicts::Few => {
                lcg = lcg
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let to = addresses[((lcg >> 33) % u64::from(ACCOUNTS)) as usize];
                chain.transfer(&keys[i], to, 1_000 + i as u64, 10, 0)
            }
            Conflicts::Many => {
                let senders = MANY_CONFLICTS_SENDERS as usize;
                let (sender, nonce) = (i % senders, (i / senders) as u64);
                let to = addresses[(sender + 1) % senders];
                chain.transfer(&keys[sender], to, 1_000 + i as u64, 10, nonce)
            }
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

/// A criterion group of few, flat samples whose elements are the block's transfers.
fn transfer_group<'c>(
    c: &'c mut Criterion,
    name: &str,
    warm_up: Duration,
    measurement: Duration,
) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(warm_up);
    group.measurement_time(measurement);
    group.throughput(Throughput::Elements(u64::from(TRANSFERS)));
    group
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

    let mut group = transfer_group(
        c,
        "validation",
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
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
    let mut group = transfer_group(
        c,
        "validation_parts",
        Duration::from_millis(500),
        Duration::from_secs(2),
    );
    group.bench_function("signatures", |b| {
        b.iter(|| {
            for transfer in &f.block.transfers {
                assert!(transfer.has_valid_signature(black_box(&f.genesis_hash)));
            }
        })
    });
    let raw = RawVerification::of(&f.block.transfers, &f.genesis_hash);
    group.bench_function("signatures_of_parsed_keys", |b| {
        b.iter(|| {
            for (signature, message, key) in black_box(&raw.items) {
                assert!(schnorr::verify(signature, message, key).is_ok());
            }
        })
    });
    group.bench_function("key_parsing", |b| {
        b.iter(|| {
            for transfer in black_box(&f.block.transfers) {
                black_box(XOnlyPublicKey::from_byte_array(*transfer.from.as_bytes()).ok());
            }
        })
    });
    group.bench_function("signing_hashes", |b| {
        b.iter(|| {
            for transfer in black_box(&f.block.transfers) {
                black_box(transfer.signing_hash(&f.genesis_hash));
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

/// Transfer execution alone (every rule but signatures, and the state root), for a block
/// with few and one with many conflicts, in pools of 1 and 2 threads: what parallel
/// execution of independent transfers gains, and that a block of one conflict group loses
/// nothing to it.
fn execution(c: &mut Criterion) {
    let mut group = transfer_group(
        c,
        "execution",
        Duration::from_millis(500),
        Duration::from_secs(3),
    );
    for conflicts in [Conflicts::Few, Conflicts::Many] {
        let f = fixture_with(conflicts);
        let ctx = ApplyContext {
            genesis_hash: &f.genesis_hash,
            chain_id: f.spec.chain_id(),
            subsidy: f.spec.subsidy_at(f.block.header.height),
            check_signatures: false,
            signature_cache: None,
        };
        let groups = conflict_groups(&f.block.transfers);
        eprintln!(
            "execution fixture {conflicts:?}: {} conflict groups, the largest {} transfers",
            groups.len(),
            groups.iter().map(Vec::len).max().unwrap_or(0)
        );
        for threads in THREADS {
            let pool = pool(threads);
            let name = format!("{conflicts:?}_conflicts").to_lowercase();
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter(|| {
                    pool.install(|| {
                        apply_block(&f.state, f.parent_root, black_box(&f.block), &ctx)
                            .expect("valid block")
                    })
                })
            });
        }
    }
    group.finish();
}

/// Account proofs on the fixture's state (10,000 accounts): making one (a walk of the
/// tree's pages), checking one, and the size of its JSON form.
fn proofs(c: &mut Criterion) {
    let f = fixture();
    let present: Vec<Address> = (0..64).map(|i| address(&keypair(i * 150))).collect();
    let root = f.parent_root;
    let sizes: Vec<usize> = present
        .iter()
        .map(|a| {
            let proof = prove(&f.state, root.0, a).expect("readable");
            serde_json::to_vec(&proof.to_view()).expect("json").len()
        })
        .collect();
    eprintln!(
        "proofs: 10,000 accounts, JSON form {}..{} bytes (mean {})",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() / sizes.len()
    );
    let mut group = c.benchmark_group("proofs");
    group.throughput(Throughput::Elements(present.len() as u64));
    group.bench_function("prove", |b| {
        b.iter(|| {
            for a in &present {
                black_box(prove(&f.state, root.0, a).expect("readable"));
            }
        })
    });
    let made: Vec<_> = present
        .iter()
        .map(|a| prove(&f.state, root.0, a).expect("readable"))
        .collect();
    group.bench_function("verify", |b| {
        b.iter(|| {
            for (proof, a) in made.iter().zip(&present) {
                black_box(proof.verify(a, &root).expect("a valid proof"));
            }
        })
    });
    group.finish();
}

/// Pairs of runs for [`paired`].
const PAIRS: usize = 40;

/// Side by side, in rounds: each round validates the block (`check_body` and `check_state`)
/// in a 1-thread and a 2-thread pool, and verifies its signatures raw in the same two pools
/// both ways ([`RawVerification`]), and validates it once more as from senders seen before
/// (their keys in the signature cache, not the block's signatures), in an order that
/// rotates from round to round; ratios are taken within the round. Noise from a shared or
/// virtual machine that comes and goes over seconds then hits all eight alike, which
/// separate criterion runs, a minute apart, cannot promise. Prints the 2-thread speedup and
/// validation's rate as a share of each raw verification rate, per thread count.
fn paired(_: &mut Criterion) {
    if !filter_selects("paired") {
        return;
    }
    let f = fixture();
    let raw = RawVerification::of(&f.block.transfers, &f.genesis_hash);
    let pools = [pool(1), pool(2)];
    let time = |work: &dyn Fn()| {
        let start = std::time::Instant::now();
        work();
        start.elapsed().as_secs_f64()
    };
    let validate = |pool: &rayon::ThreadPool| {
        time(&|| {
            pool.install(|| {
                check_body(&f.block, &f.spec).expect("valid body");
                check_state(&f.state, f.parent_root, &f.block, &f.spec, &f.genesis_hash)
                    .expect("valid state change");
            })
        })
    };
    // The same block from senders this node has seen before: their keys are in the
    // signature cache, the block's signatures are not.
    let known_senders = SignatureCache::new(f.genesis_hash, DEFAULT_CAPACITY);
    for transfer in &f.block.transfers {
        assert!(known_senders.check(transfer));
    }
    let validate_known_senders = |pool: &rayon::ThreadPool| {
        known_senders.forget_signatures();
        time(&|| {
            pool.install(|| {
                check_body(&f.block, &f.spec).expect("valid body");
                check_state_cached(
                    &f.state,
                    f.parent_root,
                    &f.block,
                    &f.spec,
                    &f.genesis_hash,
                    Some(&known_senders),
                )
                .expect("valid state change");
            })
        })
    };
    let parsed = |pool: &rayon::ThreadPool| time(&|| pool.install(|| raw.verify_parsed()));
    let from_bytes = |pool: &rayon::ThreadPool| time(&|| pool.install(|| raw.verify_from_bytes()));
    // Columns: validation, verification of parsed keys, verification from bytes, validation
    // of known senders; each on 1 and on 2 threads.
    let runs: [&dyn Fn() -> f64; 8] = [
        &|| validate(&pools[0]),
        &|| validate(&pools[1]),
        &|| parsed(&pools[0]),
        &|| parsed(&pools[1]),
        &|| from_bytes(&pools[0]),
        &|| from_bytes(&pools[1]),
        &|| validate_known_senders(&pools[0]),
        &|| validate_known_senders(&pools[1]),
    ];
    for run in &runs {
        run();
    }
    let mut times: [Vec<f64>; 8] = Default::default();
    for round in 0..PAIRS {
        for k in 0..runs.len() {
            let column = (round + k) % runs.len();
            times[column].push(runs[column]());
        }
    }
    let ratios = |numerator: usize, denominator: usize| -> Vec<f64> {
        let mut r: Vec<f64> = (0..PAIRS)
            .map(|i| times[numerator][i] / times[denominator][i])
            .collect();
        r.sort_by(|a, b| a.total_cmp(b));
        r
    };
    let summary = |r: &[f64]| {
        format!(
            "{:.2} (quartiles {:.2}..{:.2})",
            r[PAIRS / 2],
            r[PAIRS / 4],
            r[PAIRS * 3 / 4]
        )
    };
    let rate = |column: usize| {
        let mut t = times[column].clone();
        t.sort_by(|a, b| a.total_cmp(b));
        f.block.transfers.len() as f64 / t[PAIRS / 2]
    };
    println!(
        "paired validation ({PAIRS} rounds, medians, transfers/s, 1 / 2 threads): \
         validation {:.0} / {:.0}; verification of parsed keys {:.0} / {:.0}; \
         verification from key bytes {:.0} / {:.0}; validation, known senders {:.0} / {:.0}",
        rate(0),
        rate(1),
        rate(2),
        rate(3),
        rate(4),
        rate(5),
        rate(6),
        rate(7)
    );
    println!(
        "paired validation: 2-thread speedup {}x; validation / verification of parsed keys: \
         1 thread {}, 2 threads {}; validation / verification from key bytes: 1 thread {}, \
         2 threads {}; validation of known senders / verification of parsed keys: \
         1 thread {}, 2 threads {}; known senders' 2-thread speedup {}x",
        summary(&ratios(0, 1)),
        summary(&ratios(2, 0)),
        summary(&ratios(3, 1)),
        summary(&ratios(4, 0)),
        summary(&ratios(5, 1)),
        summary(&ratios(2, 6)),
        summary(&ratios(3, 7)),
        summary(&ratios(6, 7)),
    );
}

/// Whether the command line's filter (criterion's first free argument) names `name`, or there
/// is none: criterion skips unselected benches itself, but `paired` is not a criterion bench.
fn filter_selects(name: &str) -> bool {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg.starts_with("--") {
            // Options with a value: skip the value too.
            if !matches!(
                arg.as_str(),
                "--bench"
                    | "--test"
                    | "--list"
                    | "--exact"
                    | "--quiet"
                    | "--verbose"
                    | "--noplot"
                    | "--quick"
                    | "--discard-baseline"
                    | "--nocapture"
                    | "--ignored"
            ) && !arg.contains('=')
            {
                args.next();
            }
            continue;
        }
        return name.contains(&arg) || arg.contains(name);
    }
    true
}

criterion_group!(benches, validation, execution, proofs, paired);
criterion_main!(benches);
