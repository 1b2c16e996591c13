//! The deterministic network simulation (see `sim/mod.rs`): 20 nodes running the node's own
//! logic (`core::logic::NodeLogic`), 4 of them mining, transfers submitted at random nodes
//! and gossiped through the real mempool, seeded random latency, gossip loss, lost requests
//! and answers, skewed clocks, a partition that heals, crashes and restarts (the pool back
//! from the journal). After mining stops and the network heals, every node must agree on
//! the heaviest tip and its state within a bounded simulated time, and no transfer any node
//! took in may be lost.
//!
//! - CI runs seeds 0..100 (`CAIRN_SIM_SEEDS` changes the count, `CAIRN_SIM_FIRST_SEED` the start).
//! - A failing seed prints the command that replays it alone:
//!   `CAIRN_SIM_SEED=<seed> cargo test --test network_sim -- --nocapture`
#![allow(clippy::disallowed_methods)]

mod sim;

use sim::{Hostile, Sim, SimConfig};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seeds to run: `CAIRN_SIM_SEED` alone, or `CAIRN_SIM_SEEDS` (100) from
/// `CAIRN_SIM_FIRST_SEED` (0).
fn seeds() -> Vec<u64> {
    match env_u64("CAIRN_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let first = env_u64("CAIRN_SIM_FIRST_SEED").unwrap_or(0);
            let count = env_u64("CAIRN_SIM_SEEDS").unwrap_or(100);
            (first..first + count).collect()
        }
    }
}

/// On long runs, a line every 250 seeds (shown with `--nocapture`), so that a run stopped
/// early still says how far it got.
fn report_progress(done: usize, seeds: &[u64]) {
    if seeds.len() > 250 && done > 0 && done.is_multiple_of(250) {
        eprintln!(
            "{done} of {} seeds passed (seeds {} to {})",
            seeds.len(),
            seeds[0],
            seeds[done - 1]
        );
    }
}

fn run_seed(seed: u64, config: &SimConfig) -> sim::SimReport {
    match Sim::new(config.clone(), seed).run() {
        Ok(report) => report,
        Err(failure) => panic!(
            "simulation seed {seed} broke the invariant: {failure}\n\
             replay it alone with:\n  CAIRN_SIM_SEED={seed} cargo test --test network_sim -- --nocapture"
        ),
    }
}

#[test]
fn every_node_converges_on_the_heaviest_chain_after_splits_crashes_and_loss() {
    let config = SimConfig::default();
    let seeds = seeds();
    let mut reorgs = 0;
    let mut deepest = 0;
    let mut slowest = 0;
    let mut slowest_heal = 0;
    let (mut accepted, mut confirmed, mut pending) = (0, 0, 0);
    let (mut hardest, mut easiest) = (1.0f64, 1.0f64);
    let mut torn = 0;
    let (mut compact, mut fetches) = (0, 0);
    for (done, &seed) in seeds.iter().enumerate() {
        report_progress(done, &seeds);
        let report = run_seed(seed, &config);
        hardest = hardest.max(report.difficulty_range.0);
        easiest = easiest.min(report.difficulty_range.1);
        assert_eq!(report.bans, 0, "seed {seed}: an honest node was banned");
        assert!(
            report.blocks_mined > 10,
            "seed {seed}: too few blocks: {report:?}"
        );
        assert!(
            report.transfers_confirmed > 0,
            "seed {seed}: no transfer was mined: {report:?}"
        );
        accepted += report.transfers_accepted;
        confirmed += report.transfers_confirmed;
        pending += report.transfers_pending;
        reorgs += report.reorgs;
        torn += report.torn_writes;
        compact += report.compact_blocks;
        fetches += report.transfer_fetches;
        deepest = deepest.max(report.deepest_reorg);
        slowest = slowest.max(report.converged_after_ms);
        slowest_heal = slowest_heal.max(report.heaviest_after_heal_ms);
        if seeds.len() == 1 {
            println!("seed {seed}: {report:?}");
        }
    }
    println!(
        "{} seeds: {reorgs} reorgs (deepest {deepest}); slowest: every node on a heaviest tip \
         {slowest_heal} ms after the heal, full agreement {slowest} ms after the closing block; \
         {accepted} transfers accepted, {confirmed} in the final chains, {pending} (node, \
         sender, nonce) still pending where taken in, none lost; templates from \
         {easiest:.2}x to {hardest:.2}x the genesis difficulty; {torn} crashes tore the last \
         write; {compact} compact blocks received, {fetches} of them completed by asking the \
         relayer for missing transfers",
        seeds.len(),
    );
    // Blocks travel compact, and transfers lost or late in gossip are fetched.
    assert!(
        compact > 0 && fetches > 0,
        "compact relay was not exercised: {compact} compact blocks, {fetches} transfer fetches"
    );
    // The scenario must actually exercise fork resolution, and difficulty that follows the
    // hash power's swings.
    assert!(
        reorgs > 0,
        "no seed produced a reorg: the scenario is too gentle"
    );
    assert!(
        hardest > 1.1 && easiest < 0.9,
        "ASERT hardly moved ({easiest:.2}x to {hardest:.2}x the genesis difficulty): the hash \
         power swings do not reach the difficulty"
    );
}

/// Issue 11: the same network with one hostile node of every kind (a low-work side-branch
/// spammer, a selfish miner with 30% of the hash power, a status liar that stalls every
/// block request, an orphan flooder, a sender of invalid blocks, an offender that reconnects
/// after every four violations). Over the seeds: honest nodes converge on the heaviest chain
/// with one state root within the same bound as without them; no honest node bans or holds a
/// score against another; no spam or junk block is stored by any honest node, and an invalid
/// block only where it extended the tip (a full block of work), at most one per sender before
/// its ban.
#[test]
fn honest_nodes_converge_and_never_punish_each_other_among_hostile_peers() {
    let config = SimConfig {
        hostile: Hostile::ALL.to_vec(),
        ..SimConfig::default()
    };
    let seeds = seeds();
    let mut hostile_bans = 0;
    let mut attack_blocks = 0;
    let mut selfish = 0;
    let mut most_stored = 0;
    let mut slowest = 0;
    let mut slowest_heal = 0;
    for (done, &seed) in seeds.iter().enumerate() {
        report_progress(done, &seeds);
        let report = match Sim::new(config.clone(), seed).run() {
            Ok(report) => report,
            Err(failure) => panic!(
                "simulation seed {seed} (hostile) broke the invariant: {failure}\n\
                 replay it alone with:\n  CAIRN_SIM_SEED={seed} cargo test --test network_sim \
                 honest_nodes_converge -- --nocapture"
            ),
        };
        assert_eq!(report.bans, 0, "seed {seed}: an honest node was banned");
        hostile_bans += report.hostile_bans;
        attack_blocks += report.attack_blocks;
        selfish += report.selfish_published;
        most_stored = most_stored.max(report.attack_bytes_stored);
        slowest = slowest.max(report.converged_after_ms);
        slowest_heal = slowest_heal.max(report.heaviest_after_heal_ms);
        if seeds.len() == 1 {
            println!("seed {seed}: {report:?}");
        }
    }
    println!(
        "{} seeds with hostile nodes: {attack_blocks} attack blocks sent, {hostile_bans} bans of \
         hostile nodes, {selfish} selfish blocks published; at most {most_stored} bytes of \
         invalid blocks stored by one honest node; slowest: every honest node on a heaviest \
         tip {slowest_heal} ms after the heal, full agreement {slowest} ms after the closing block",
        seeds.len(),
    );
    assert!(
        attack_blocks > 0 && hostile_bans > 0,
        "the attackers attacked and were caught"
    );
}

/// Seeds of the hostile run that once broke an invariant, kept as tests.
/// - 936: an honest node penalised another for answering "no headers" to a locator whose
///   first entry was a stale download queue (the check assumed the peer's tip was at most as
///   heavy as the first entry; it is at most as heavy as the heaviest entry).
/// - 14: after a partition healed, a sender's transfers confirmed on the losing side came
///   back more than `max_nonce_gap` ahead of the winner's account nonce and were dropped
///   (lost); returned transfers are now exempt from the per-sender limits.
/// - 24: a node at genesis with a download queue sent a locator without genesis (the queue's
///   end had replaced it); a peer on another branch shared no block with it, answered no
///   headers and was penalised for claiming more work than it showed.
const KEPT_HOSTILE_SEEDS: [u64; 3] = [936, 14, 24];

#[test]
fn kept_hostile_seeds_hold() {
    let config = SimConfig {
        hostile: Hostile::ALL.to_vec(),
        ..SimConfig::default()
    };
    for seed in KEPT_HOSTILE_SEEDS {
        if let Err(failure) = Sim::new(config.clone(), seed).run() {
            panic!("kept hostile seed {seed} broke the invariant again: {failure}");
        }
    }
}

/// Seeds of the honest network (beyond CI's first 100) that once broke an invariant, kept
/// so the bug stays fixed; each is also a unit test in `core::protocol::machine::tests`.
/// - 315: headers asked after the download queue's end were answered after the queue was
///   dropped (its source served a bad block); the honest answer was penalised for extending
///   nothing we know.
const KEPT_HONEST_SEEDS: [u64; 1] = [315];

#[test]
fn kept_honest_seeds_hold() {
    for seed in KEPT_HONEST_SEEDS {
        let report = run_seed(seed, &SimConfig::default());
        assert_eq!(
            report.bans, 0,
            "kept seed {seed}: an honest node was banned"
        );
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let config = SimConfig {
        mining_ms: 120_000,
        ..SimConfig::default()
    };
    let a = run_seed(7, &config);
    let b = run_seed(7, &config);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
