//! Mining threads: run core's nonce search on N threads over the current template, switch to
//! a new template the moment one is published, and count hashes for the hash-rate report.
//!
//! ```text
//!   driver ── set_job(template) ──► JobSlot (generation += 1) ──► N worker threads
//!                                                                  │ search 64 Ki nonces,
//!                                                                  │ check generation, repeat
//!   driver ◄──────────── found block (sink) ───────────────────────┘
//! ```
//! Thread `i` of `n` searches the nonces `[i * 2^32 / n, (i + 1) * 2^32 / n)`; when its range
//! runs out it rolls the header time forward (within the allowed drift) and starts again.
//! Between chunks it also moves the time up to the clock, so timestamps stay current.
use crate::core::miner::{BlockTemplate, NonceSearch};
use crate::core::primitives::Block;
use crate::node::clock::unix_now;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Nonces tried between checks for a new template (about 5 ms of work at 12 MH/s).
const CHUNK: u32 = 1 << 16;

/// Counters shared by the mining threads.
#[derive(Debug, Default)]
pub struct MinerStats {
    /// Hashes tried since start.
    pub attempts: AtomicU64,
    /// Blocks found since start.
    pub found: AtomicU64,
}

#[derive(Default)]
struct JobSlot {
    /// Current template and its generation; `None` until the first template.
    job: Mutex<(u64, Option<Arc<BlockTemplate>>)>,
    /// Bumped on every new template, read by workers between chunks without locking.
    generation: AtomicU64,
    changed: Condvar,
    stop: AtomicBool,
}

/// A handle on the running mining threads.
pub struct MinerHandle {
    slot: Arc<JobSlot>,
    stats: Arc<MinerStats>,
    workers: Vec<JoinHandle<()>>,
}

impl MinerHandle {
    /// Starts `threads` mining threads that hand solved blocks to `found`, which returns
    /// `false` once no one listens (the threads then stop).
    pub fn spawn(
        threads: usize,
        found: impl Fn(Block) -> bool + Send + Sync + 'static,
    ) -> MinerHandle {
        let found: Arc<dyn Fn(Block) -> bool + Send + Sync> = Arc::new(found);
        let threads = threads.max(1);
        let slot = Arc::new(JobSlot::default());
        let stats = Arc::new(MinerStats::default());
        let workers = (0..threads)
            .map(|index| {
                let slot = Arc::clone(&slot);
                let stats = Arc::clone(&stats);
                let found = Arc::clone(&found);
                crate::node::threads::spawn(format!("miner-{index}"), move || {
                    worker(index, threads, &slot, &stats, found.as_ref())
                })
                .expect("the OS can start a mining thread")
            })
            .collect();
        MinerHandle {
            slot,
            stats,
            workers,
        }
    }

    /// Replaces the template every thread works on; they switch within one chunk.
    pub fn set_job(&self, template: BlockTemplate) {
        let mut job = self.slot.job.lock().expect("miner lock is never poisoned");
        job.0 += 1;
        job.1 = Some(Arc::new(template));
        self.slot.generation.store(job.0, Ordering::Release);
        self.slot.changed.notify_all();
    }

    /// Stops the search until the next [`MinerHandle::set_job`]; the threads wait idle.
    pub fn pause(&self) {
        let mut job = self.slot.job.lock().expect("miner lock is never poisoned");
        if job.1.is_some() {
            job.0 += 1;
            job.1 = None;
            self.slot.generation.store(job.0, Ordering::Release);
        }
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<MinerStats> {
        Arc::clone(&self.stats)
    }

    /// Stops every thread and waits for them.
    pub fn stop(self) {
        self.slot.stop.store(true, Ordering::Release);
        {
            let _job = self.slot.job.lock().expect("miner lock is never poisoned");
            self.slot.generation.fetch_add(1, Ordering::Release);
            self.slot.changed.notify_all();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// Waits for a template of a generation other than `seen`.
fn next_job(slot: &JobSlot, seen: u64) -> Option<(u64, Arc<BlockTemplate>)> {
    let mut job = slot.job.lock().expect("miner lock is never poisoned");
    loop {
        if slot.stop.load(Ordering::Acquire) {
            return None;
        }
        if job.0 != seen {
            if let Some(template) = &job.1 {
                return Some((job.0, Arc::clone(template)));
            }
        }
        job = slot
            .changed
            .wait(job)
            .expect("miner lock is never poisoned");
    }
}

fn worker(
    index: usize,
    threads: usize,
    slot: &JobSlot,
    stats: &MinerStats,
    found: &(dyn Fn(Block) -> bool + Send + Sync),
) {
    let span = (u64::from(u32::MAX) + 1) / threads as u64;
    let range_start = (index as u64 * span) as u32;
    let range_end = if index + 1 == threads {
        u32::MAX
    } else {
        ((index as u64 + 1) * span) as u32
    };
    let mut seen = 0;
    while let Some((generation, template)) = next_job(slot, seen) {
        seen = generation;
        let mut header = template.block.header;
        let mut search = NonceSearch::new(&header, &template.target);
        let mut cursor = range_start;
        'job: loop {
            if slot.generation.load(Ordering::Acquire) != generation {
                break 'job;
            }
            let now = u32::try_from(unix_now()).unwrap_or(u32::MAX);
            if now > header.time && now <= template.max_time {
                header.time = now;
                search.set_time(now);
            }
            let end = cursor.saturating_add(CHUNK).min(range_end);
            let outcome = search.search(cursor, end);
            stats
                .attempts
                .fetch_add(outcome.attempts, Ordering::Relaxed);
            if let Some(nonce) = outcome.found {
                stats.found.fetch_add(1, Ordering::Relaxed);
                let mut block = template.block.clone();
                block.header.time = header.time;
                block.header.nonce = nonce;
                if !found(block) {
                    return;
                }
                // Wait for the template on the new tip.
                break 'job;
            }
            cursor = end;
            if cursor >= range_end {
                if header.time >= template.max_time {
                    // Nonce and time space both used up: wait for a fresh template.
                    break 'job;
                }
                header.time += 1;
                search.set_time(header.time);
                cursor = range_start;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::consensus::target::{CompactTarget, Target};
    use crate::core::testkit::{test_address, TestChain};
    use std::time::Duration;

    fn template(chain: &TestChain, bits: u32, extra_nonce: u64) -> BlockTemplate {
        let mut block = chain.template(&chain.genesis_hash, Vec::new(), test_address(0));
        block.extra_nonce = extra_nonce;
        block.header.bits = CompactTarget::from_consensus(bits);
        BlockTemplate {
            block,
            target: Target::from_compact(CompactTarget::from_consensus(bits)).unwrap(),
            max_time: u32::MAX,
        }
    }

    /// Threads stuck on a template no hash can meet switch to a new one at once and solve it.
    #[test]
    fn threads_switch_to_a_new_template_at_once() {
        let chain = TestChain::new();
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        let miner = MinerHandle::spawn(2, move |block| found_tx.send(block).is_ok());
        // Target 1: no hash will meet it.
        miner.set_job(template(&chain, 0x0300_0001, 1));
        // Wait until both threads have finished at least one chunk of the first template.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while miner.stats().attempts.load(Ordering::Relaxed) < 2 * u64::from(CHUNK) {
            assert!(
                std::time::Instant::now() < deadline,
                "the threads are hashing"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(found_rx.try_recv().is_err(), "nothing meets target 1");

        let easy = template(&chain, 0x207f_ffff, 2);
        miner.set_job(easy.clone());
        let block = found_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a block from the new template");
        assert_eq!(block.extra_nonce, 2, "mined on the new template");
        assert_eq!(block.header.prev_hash, easy.block.header.prev_hash);
        assert!(easy.target.is_met_by(block.hash().as_bytes()));
        assert!(miner.stats().found.load(Ordering::Relaxed) >= 1);
        miner.stop();
    }
}
