//! Signature pre-checking for downloaded blocks: while the driver validates and writes one
//! block, a background pool verifies the signatures of the blocks queued behind it.
//!
//! Signatures need no state (a sender's key is its address), so they can be checked ahead
//! of their block's turn. Each verified transfer goes into the chain manager's
//! [`SignatureCache`]; when the block's turn comes, validation finds the signature known and
//! skips it. A bad signature is simply not remembered: validation checks it again and
//! refuses the block, so consensus and peer penalties are unchanged.
//!
//! Each block is walked last transfer first: if validation reaches a block before its
//! pre-check ends, the two meet in the middle instead of checking the same transfers.
use crate::core::primitives::Block;
use crate::core::state::SignatureCache;
use std::sync::Arc;

/// The background pool and the cache it fills.
pub struct SignaturePrecheck {
    pool: rayon::ThreadPool,
    cache: Arc<SignatureCache>,
}

impl SignaturePrecheck {
    /// A pool of one thread per core, filling `cache`.
    pub fn new(cache: Arc<SignatureCache>) -> std::io::Result<SignaturePrecheck> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cairn-precheck-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(SignaturePrecheck { pool, cache })
    }

    /// Queues the signatures of `blocks` for checking, in block order.
    pub fn queue(&self, blocks: &[Block]) {
        for block in blocks {
            if block.transfers.is_empty() {
                continue;
            }
            let transfers = block.transfers.clone();
            let cache = self.cache.clone();
            self.pool.spawn_fifo(move || {
                for transfer in transfers.iter().rev() {
                    cache.check(transfer);
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
        let precheck = SignaturePrecheck::new(cache.clone()).unwrap();
        precheck.queue(std::slice::from_ref(&block));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cache.contains(&good.txid()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(cache.contains(&good.txid()));
        // The forged transfer was checked as well (the walk is last first) and not kept.
        assert!(!cache.contains(&forged.txid()));
    }
}
