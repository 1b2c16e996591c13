//! The event loop: feeds blocks to the chain manager, hands new templates to the miner, and
//! logs what happened. It owns the chain manager, so all chain writes are sequential.
use crate::core::primitives::{Address, Block};
use crate::node::chain::{BlockOutcome, ChainManager, SubmitError};
use crate::node::clock::unix_now;
use crate::node::miner::MinerHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the miner's hash rate is logged.
const HASHRATE_REPORT: Duration = Duration::from_secs(10);
/// How old a template may get before the miner is given a fresh one. Templates carry the
/// latest time a block may have (clock + allowed drift); refreshing well inside that keeps
/// block times on the clock when a block takes long to find.
const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);

/// Mining setup for the driver.
pub struct MiningSetup {
    /// The mining threads.
    pub miner: MinerHandle,
    /// Who the blocks pay.
    pub reward_address: Address,
    /// Number of threads (for the report).
    pub threads: usize,
}

/// Counters of the driver's work.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    /// Own blocks that extended the best chain.
    pub mined: u64,
    /// Own blocks found too late (the tip had moved on).
    pub stale: u64,
}

/// The driver: owner of the chain manager.
pub struct Driver {
    chain: ChainManager,
    mining: Option<MiningSetup>,
    extra_nonce: u64,
    stats: DriverStats,
    template_built: Instant,
}

impl Driver {
    /// A driver over `chain`, mining if `mining` is given.
    pub fn new(chain: ChainManager, mining: Option<MiningSetup>) -> Driver {
        Driver {
            chain,
            mining,
            extra_nonce: 0,
            stats: DriverStats::default(),
            template_built: Instant::now(),
        }
    }

    /// Runs until `shutdown` is set or the block channel closes; then stops the miner and
    /// flushes the store.
    pub fn run(mut self, found: Receiver<Block>, shutdown: Arc<AtomicBool>) {
        self.publish_template();
        let mut last_report = Instant::now();
        let mut last_attempts = 0u64;
        while !shutdown.load(Ordering::Acquire) {
            match found.recv_timeout(Duration::from_millis(200)) {
                Ok(block) => self.on_mined_block(block),
                Err(RecvTimeoutError::Timeout) => {
                    if self.template_built.elapsed() >= TEMPLATE_REFRESH {
                        self.publish_template();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Some(mining) = &self.mining {
                let elapsed = last_report.elapsed();
                if elapsed >= HASHRATE_REPORT {
                    let attempts = mining.miner.stats().attempts.load(Ordering::Relaxed);
                    let rate = (attempts - last_attempts) as f64 / elapsed.as_secs_f64();
                    tracing::info!(
                        target: "cairn::miner",
                        "hash rate {:.2} MH/s on {} threads; {} blocks mined, {} stale",
                        rate / 1e6,
                        mining.threads,
                        self.stats.mined,
                        self.stats.stale
                    );
                    last_report = Instant::now();
                    last_attempts = attempts;
                }
            }
        }
        if let Some(mining) = self.mining.take() {
            mining.miner.stop();
        }
        if let Err(e) = self.chain.store().flush() {
            tracing::error!(error = %e, "could not flush the store at shutdown");
        }
    }

    fn on_mined_block(&mut self, block: Block) {
        let hash = block.hash();
        let height = block.header.height;
        let transfers = block.transfers.len();
        let now = unix_now();
        match self.chain.submit_block(block, now) {
            Ok(BlockOutcome::Extended { tip }) => {
                self.stats.mined += 1;
                tracing::info!(
                    target: "cairn::chain",
                    "mined block {} at height {} ({} transfers, chain work {})",
                    hash,
                    height,
                    transfers,
                    tip.chain_work
                );
            }
            Ok(BlockOutcome::Reorganized {
                tip,
                fork_height,
                disconnected,
                connected,
            }) => {
                self.stats.mined += 1;
                tracing::warn!(
                    target: "cairn::chain",
                    "reorganized: {disconnected} blocks off, {connected} on from fork at height {fork_height}; tip {} at height {}",
                    tip.hash(),
                    tip.height()
                );
            }
            Ok(BlockOutcome::SideBranch | BlockOutcome::AlreadyKnown) => {
                self.stats.stale += 1;
                tracing::info!(target: "cairn::miner", "found block {hash} too late: stale");
            }
            Err(SubmitError::Invalid { hash, error }) => {
                self.stats.stale += 1;
                tracing::warn!(target: "cairn::miner", "own block {hash} refused: {error}");
            }
            Err(e) => tracing::error!(target: "cairn::chain", "could not store block {hash}: {e}"),
        }
        self.publish_template();
    }

    /// Gives the miner a template on the current tip.
    fn publish_template(&mut self) {
        let Some(mining) = &self.mining else {
            return;
        };
        self.extra_nonce = self.extra_nonce.wrapping_add(1);
        self.template_built = Instant::now();
        match self.chain.template(
            mining.reward_address,
            unix_now(),
            self.extra_nonce,
            Vec::new(),
        ) {
            Ok(template) => mining.miner.set_job(template),
            Err(e) => tracing::error!(target: "cairn::miner", "cannot build a block template: {e}"),
        }
    }
}
