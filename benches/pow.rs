//! Proof-of-work benchmarks: attempts per second of the midstate nonce search on one core.
//!
//! Groups:
//! - `pow/midstate`: `NonceSearch::search` over a fixed range of nonces with a zero target, so
//!   no nonce is found and the whole range is searched. One element is one attempt.
//! - `pow/midstate_<kernel>`: the same search on each kernel this CPU runs (`avx512`,
//!   `shani`, `avx2`, `portable`), to compare them in one run.
//! - `pow/naive`: the same attempts done with `Header::hash()` (the full double SHA-256 of the
//!   116-byte header: three compressions, plus the padding/copy work of the `Digest` API) and
//!   `Target::is_met_by`, to show what the midstate saves.
//! - `sha256/compress_16k`: `compress256` over 256 blocks (16 KiB) per call, the in-process
//!   counterpart of `openssl speed -evp sha256 -bytes 16384`. One element is one compression.
//! - `sha256/compress_1block`: one single-block `compress256` call per element, the shape of
//!   call the nonce search makes (two per attempt).
//!
//! See `docs/BENCHMARKS.md` and `benches/run.sh`.
#![allow(clippy::disallowed_methods)]

use cairn::core::consensus::target::{CompactTarget, Target};
use cairn::core::miner::search::Kernel;
use cairn::core::miner::NonceSearch;
use cairn::core::primitives::{BlockHash, Header, MerkleRoot, StateRoot};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::block_api::compress256;
use std::hint::black_box;
use std::time::Duration;

/// Attempts per measured call of the nonce search.
const RANGE: u32 = 1 << 16;
/// Attempts per measured call of the naive baseline (slower, so fewer).
const NAIVE_RANGE: u32 = 1 << 15;

fn header() -> Header {
    Header {
        version: 1,
        height: 123_456,
        prev_hash: BlockHash([0x11; 32]),
        tx_root: MerkleRoot([0x22; 32]),
        state_root: StateRoot([0x33; 32]),
        time: 1_767_225_600,
        bits: CompactTarget::from_consensus(0x1d00_ffff),
        nonce: 0,
    }
}

/// A target no hash meets (only the all-zero hash would), so every search runs its full range.
fn impossible_target() -> Target {
    Target::from_be_bytes([0u8; 32])
}

fn pow(c: &mut Criterion) {
    let header = header();
    let target = impossible_target();
    let search = NonceSearch::new(&header, &target);
    // Sanity: the full range is searched.
    let outcome = search.search(0, 1024);
    assert_eq!(outcome.found, None);
    assert_eq!(outcome.attempts, 1024);

    let mut group = c.benchmark_group("pow");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));

    // `midstate` is the kernel the miner picks; then each kernel this CPU runs by name
    // (`midstate_portable`: sha2's compress256 one nonce at a time, what CPUs without SHA
    // extensions run, and the oracle the fast kernels are tested against).
    let mut searches = vec![("midstate".to_string(), search.clone())];
    for kernel in Kernel::available() {
        let name = format!("midstate_{kernel:?}").to_lowercase();
        searches.push((name, search.clone().with_kernel(kernel)));
    }
    group.throughput(Throughput::Elements(u64::from(RANGE)));
    for (name, search) in searches {
        group.bench_function(BenchmarkId::new(name, RANGE), |b| {
            // Move the start so successive calls do not hash the very same nonces (they would
            // cost the same, but this keeps the compiler honest about the inputs).
            let mut start = 0u32;
            b.iter(|| {
                let s = black_box(start);
                let outcome = black_box(&search).search(s, s + RANGE);
                start = start.wrapping_add(RANGE) % (u32::MAX - RANGE);
                black_box(outcome)
            })
        });
    }

    group.throughput(Throughput::Elements(u64::from(NAIVE_RANGE)));
    group.bench_function(BenchmarkId::new("naive", NAIVE_RANGE), |b| {
        let mut h = header;
        b.iter(|| {
            let mut found = None;
            for nonce in 0..NAIVE_RANGE {
                h.nonce = black_box(nonce);
                if target.is_met_by(h.hash().as_bytes()) {
                    found = Some(nonce);
                    break;
                }
            }
            black_box(found)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("sha256");
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let blocks = vec![[0x5au8; 64]; 256];
    group.throughput(Throughput::Elements(256));
    group.bench_function("compress_16k", |b| {
        let mut state = [0u32; 8];
        b.iter(|| {
            compress256(&mut state, black_box(&blocks));
            black_box(state)
        })
    });
    group.bench_function("compress_1block", |b| {
        let mut state = [0u32; 8];
        b.iter(|| {
            for block in black_box(&blocks) {
                compress256(&mut state, core::slice::from_ref(block));
            }
            black_box(state)
        })
    });
    group.finish();
}

criterion_group!(benches, pow);
criterion_main!(benches);
