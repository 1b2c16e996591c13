//! Signature pre-checking for downloaded blocks: while the driver validates and writes one
//! block, a background pool verifies the signatures of the blocks queued behind it.
//!
//! Signatures need no state (a sender's key is its address), so they can be checked ahead
//! of their block's turn. Each verified transfer goes into the chain manager's
//! [`SignatureCache`]; when the block's turn comes, validation finds the signature known and
//! skips it. A bad signature is simply not remembered: validation checks it again and
//! refuses the block, so consensus and peer penalties are unchanged.
//!
//! Blocks are checked lowest height first, whatever order their responses arrived in (with
//! several requests in flight, a later range often arrives first): validation needs them in
//! height order. A block validation has already reached is skipped: validation checks
//! whatever the cache lacks, and checking it twice would only take a core from it. The pool
//! has one thread fewer than there are cores, so the thread that validates and writes, the
//! critical path of sync, keeps a core. Each block is walked last transfer first: if
//! validation reaches a block while its pre-check runs, the two meet in the middle instead of
//! checking the same transfers.
use crate::core::primitives::{Block, Transfer};
use crate::core::state::SignatureCache;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, PoisonError};

/// Blocks waiting for their check, lowest height first.
type Queue = Mutex<BinaryHeap<Reverse<Queued>>>;

/// A block's transfers, ordered by its height (then by arrival).
struct Queued {
    height: u32,
    arrival: u64,
    transfers: Vec<Transfer>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.height, self.arrival) == (other.height, other.arrival)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.height, self.arrival).cmp(&(other.height, other.arrival))
    }
}

/// The background pool and the cache it fills.
pub struct SignaturePrecheck {
    pool: rayon::ThreadPool,
    cache: Arc<SignatureCache>,
    queue: Arc<Queue>,
    arrivals: u64,
}

impl SignaturePrecheck {
    /// A pool of one thread fewer than the cores (at least one), filling `cache`.
    pub fn new(cache: Arc<SignatureCache>) -> std::io::Result<SignaturePrecheck> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores.saturating_sub(1).max(1))
            .thread_name(|i| format!("cairn-precheck-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(SignaturePrecheck {
            pool,
            cache,
            queue: Arc::default(),
            arrivals: 0,
        })
    }

    /// Queues the signatures of `blocks` for checking.
    pub fn queue(&mut self, blocks: &[Block]) {
        for block in blocks {
            if block.transfers.is_empty() {
                continue;
            }
            self.arrivals += 1;
            self.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Reverse(Queued {
                    height: block.header.height,
                    arrival: self.arrivals,
                    transfers: block.transfers.clone(),
                }));
            // One job per block; each takes the lowest block waiting when it runs.
            let (queue, cache) = (self.queue.clone(), self.cache.clone());
            self.pool.spawn(move || {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
                if let Some(Reverse(block)) = next {
                    if cache.validation_reached(block.height) {
                        return;
                    }
                    for transfer in block.transfers.iter().rev() {
                        cache.check(transfer);
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, test_keypair, TestChain};
    use std::time::{Duration, Instant};

    #[test]
    fn queued_blocks_have_their_valid_signatures_remembered() {
        let mut chain = TestChain::new();
        let good = chain.transfer(&test_keypair(0), test_address(1), 5, 1, 0);
        let mut forged = chain.transfer(&test_keypair(0), test_address(2), 5, 1, 1);
        forged.amount = forged.amount.checked_add(forged.fee).unwrap();
        let genesis = chain.genesis_hash;
        let mut block = chain.extend(&genesis, 1, test_address(9)).remove(0);
        block.transfers = vec![good.clone(), forged.clone()];
        let cache = Arc::new(SignatureCache::new(genesis, 64));
        let mut precheck = SignaturePrecheck::new(cache.clone()).unwrap();
        precheck.queue(std::slice::from_ref(&block));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cache.contains(&good.txid()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(cache.contains(&good.txid()));
        // The forged transfer was checked as well (the walk is last first) and not kept.
        assert!(!cache.contains(&forged.txid()));
    }

    #[test]
    fn the_lowest_block_is_checked_first_whatever_the_arrival_order() {
        let mut heap = BinaryHeap::new();
        for (arrival, height) in [(1, 49), (2, 17), (3, 1), (4, 33), (5, 1)] {
            heap.push(Reverse(Queued {
                height,
                arrival,
                transfers: Vec::new(),
            }));
        }
        let order: Vec<(u32, u64)> = std::iter::from_fn(|| heap.pop())
            .map(|Reverse(q)| (q.height, q.arrival))
            .collect();
        assert_eq!(order, vec![(1, 3), (1, 5), (17, 2), (33, 4), (49, 1)]);
    }
}
