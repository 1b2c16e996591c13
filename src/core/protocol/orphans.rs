//! The orphan pool: blocks whose parent is not known yet, held (bounded) while the parent is
//! fetched. No I/O.
//!
//! A gossiped block can arrive before its parent. The pool keeps it, says which ancestor to
//! ask for (the parent of the oldest missing link, so a chain of orphans costs one request),
//! and hands the children back when a parent connects. It is bounded by block count, by
//! bytes and per peer: a peer at its share loses its own oldest orphan to a new one, and when
//! the pool is full the oldest orphan of the peer holding the most goes first, so a flooder
//! evicts its own junk rather than honest orphans. Orphans also expire, and a peer's orphans
//! are dropped when the peer is banned. (The machine admits only orphans whose own proof of
//! work is near the tip's difficulty: see `machine`.)
//!
//! # Invariants
//! - Every orphan is indexed under its parent in `by_parent`, and nothing else is.
//! - `bytes` is the sum of the sizes of the orphans held.
//! - `by_arrival` holds every orphan once, under the sequence number it arrived with.
use crate::core::primitives::{Block, BlockHash};
use std::collections::{BTreeMap, BTreeSet};

/// Limits of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrphanPoolConfig {
    /// Most orphans held.
    pub max_blocks: usize,
    /// Most encoded bytes held.
    pub max_bytes: usize,
    /// Seconds an orphan is kept before it expires.
    pub max_age_secs: u64,
    /// Most orphans held from one peer.
    pub max_per_peer: usize,
}

impl Default for OrphanPoolConfig {
    fn default() -> Self {
        OrphanPoolConfig {
            max_blocks: 256,
            max_bytes: 32 * 1024 * 1024,
            max_age_secs: 20 * 60,
            max_per_peer: 32,
        }
    }
}

/// One held block.
#[derive(Clone, Debug)]
struct Orphan<P> {
    block: Block,
    from: P,
    received_at: u64,
    arrival: u64,
    size: usize,
}

/// What [`OrphanPool::insert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrphanInsert {
    /// Held; ask peers for `request`, the missing ancestor (the parent of the oldest orphan
    /// in this block's chain of orphans). `evicted` lists orphans dropped to make room.
    Added {
        /// The block to fetch.
        request: BlockHash,
        /// Orphans dropped, oldest first.
        evicted: Vec<BlockHash>,
    },
    /// Already held.
    AlreadyHeld,
    /// Larger than the whole pool may hold: refused.
    TooLarge,
}

/// Blocks waiting for their parents, from peers identified by `P`.
#[derive(Clone, Debug)]
pub struct OrphanPool<P> {
    config: OrphanPoolConfig,
    by_hash: BTreeMap<BlockHash, Orphan<P>>,
    by_parent: BTreeMap<BlockHash, BTreeSet<BlockHash>>,
    by_arrival: BTreeMap<u64, BlockHash>,
    bytes: usize,
    next_arrival: u64,
}

impl<P: Clone + Ord> OrphanPool<P> {
    /// An empty pool.
    pub fn new(config: OrphanPoolConfig) -> OrphanPool<P> {
        OrphanPool {
            config,
            by_hash: BTreeMap::new(),
            by_parent: BTreeMap::new(),
            by_arrival: BTreeMap::new(),
            bytes: 0,
            next_arrival: 0,
        }
    }

    /// Orphans held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Holds `block` (whose parent is unknown), received from `from` at `now` (Unix seconds).
    pub fn insert(&mut self, block: Block, from: P, now: u64) -> OrphanInsert {
        let hash = block.hash();
        if self.by_hash.contains_key(&hash) {
            return OrphanInsert::AlreadyHeld;
        }
        let size = block.encoded_size();
        if size > self.config.max_bytes || self.config.max_blocks == 0 {
            return OrphanInsert::TooLarge;
        }
        let mut evicted = Vec::new();
        while self.count_from(&from) >= self.config.max_per_peer.max(1) {
            match self.oldest_from(&from) {
                Some(oldest) => {
                    self.remove(&oldest);
                    evicted.push(oldest);
                }
                None => break,
            }
        }
        while self.by_hash.len() >= self.config.max_blocks
            || self.bytes + size > self.config.max_bytes
        {
            match self
                .heaviest_holder()
                .and_then(|peer| self.oldest_from(&peer))
            {
                Some(oldest) => {
                    self.remove(&oldest);
                    evicted.push(oldest);
                }
                None => break,
            }
        }
        let parent = block.header.prev_hash;
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_parent.entry(parent).or_default().insert(hash);
        self.by_arrival.insert(arrival, hash);
        self.bytes += size;
        self.by_hash.insert(
            hash,
            Orphan {
                block,
                from,
                received_at: now,
                arrival,
                size,
            },
        );
        OrphanInsert::Added {
            request: self.missing_ancestor(&hash),
            evicted,
        }
    }

    /// Orphans held from `peer`.
    pub fn count_from(&self, peer: &P) -> usize {
        self.by_hash.values().filter(|o| o.from == *peer).count()
    }

    /// The peer holding the most orphans (the lowest such peer on a tie).
    fn heaviest_holder(&self) -> Option<P> {
        let mut counts: BTreeMap<&P, usize> = BTreeMap::new();
        for orphan in self.by_hash.values() {
            *counts.entry(&orphan.from).or_default() += 1;
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(peer, _)| peer.clone())
    }

    /// The oldest orphan received from `peer`.
    fn oldest_from(&self, peer: &P) -> Option<BlockHash> {
        self.by_arrival
            .values()
            .find(|hash| self.by_hash.get(*hash).is_some_and(|o| o.from == *peer))
            .copied()
    }

    /// The parent of the oldest held ancestor of `hash`: the block to fetch so that the
    /// chain of orphans ending at `hash` can connect.
    fn missing_ancestor(&self, hash: &BlockHash) -> BlockHash {
        let mut cursor = *hash;
        // Bounded by the pool size: a chain of orphans cannot be longer than the pool.
        for _ in 0..=self.by_hash.len() {
            match self.by_hash.get(&cursor) {
                Some(orphan) => cursor = orphan.block.header.prev_hash,
                None => return cursor,
            }
        }
        cursor
    }

    fn remove(&mut self, hash: &BlockHash) -> Option<Orphan<P>> {
        let orphan = self.by_hash.remove(hash)?;
        let parent = orphan.block.header.prev_hash;
        if let Some(children) = self.by_parent.get_mut(&parent) {
            children.remove(hash);
            if children.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
        self.by_arrival.remove(&orphan.arrival);
        self.bytes -= orphan.size;
        Some(orphan)
    }

    /// Removes and returns the orphans whose parent is `parent` (now known), oldest first,
    /// with the peers that sent them. Their own children stay until they are asked for.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<(Block, P)> {
        let Some(children) = self.by_parent.get(parent).cloned() else {
            return Vec::new();
        };
        let mut taken: Vec<Orphan<P>> = children.iter().filter_map(|h| self.remove(h)).collect();
        taken.sort_by_key(|o| o.arrival);
        taken.into_iter().map(|o| (o.block, o.from)).collect()
    }

    /// Drops orphans received more than `max_age_secs` before `now`; returns their hashes.
    pub fn expire(&mut self, now: u64) -> Vec<BlockHash> {
        let max_age = self.config.max_age_secs;
        let old: Vec<BlockHash> = self
            .by_hash
            .iter()
            .filter(|(_, o)| now.saturating_sub(o.received_at) > max_age)
            .map(|(h, _)| *h)
            .collect();
        for hash in &old {
            self.remove(hash);
        }
        old
    }

    /// Drops every orphan received from `peer` (say, on a ban); returns their hashes.
    pub fn remove_from_peer(&mut self, peer: &P) -> Vec<BlockHash> {
        let theirs: Vec<BlockHash> = self
            .by_hash
            .iter()
            .filter(|(_, o)| o.from == *peer)
            .map(|(h, _)| *h)
            .collect();
        for hash in &theirs {
            self.remove(hash);
        }
        theirs
    }

    /// Checks the invariants (for tests).
    #[cfg(test)]
    fn assert_consistent(&self) {
        let indexed: usize = self.by_parent.values().map(BTreeSet::len).sum();
        assert_eq!(indexed, self.by_hash.len());
        for (parent, children) in &self.by_parent {
            assert!(!children.is_empty());
            for child in children {
                assert_eq!(self.by_hash[child].block.header.prev_hash, *parent);
            }
        }
        assert_eq!(self.by_arrival.len(), self.by_hash.len());
        assert_eq!(
            self.bytes,
            self.by_hash.values().map(|o| o.size).sum::<usize>()
        );
        assert!(self.by_hash.len() <= self.config.max_blocks);
        assert!(self.bytes <= self.config.max_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, TestChain};
    use proptest::prelude::*;

    fn config(max_blocks: usize) -> OrphanPoolConfig {
        OrphanPoolConfig {
            max_blocks,
            max_bytes: 1 << 20,
            max_age_secs: 60,
            max_per_peer: 100,
        }
    }

    fn chain_of(n: usize) -> (TestChain, Vec<Block>) {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let blocks = chain.extend(&genesis, n, test_address(0));
        (chain, blocks)
    }

    #[test]
    fn chain_of_orphans_asks_for_the_oldest_missing_link_and_connects_in_order() {
        let (chain, blocks) = chain_of(5);
        let mut pool = OrphanPool::new(config(10));
        // Blocks 3, 5, 4 arrive (heights 3..5); 1 and 2 are missing. Block 3 asks for 2;
        // block 5 asks for its parent 4; block 4 links 3 and 5, so the chain asks for 2.
        for (i, missing) in [(2usize, 1usize), (4, 3), (3, 1)] {
            let outcome = pool.insert(blocks[i].clone(), "peer", 0);
            assert_eq!(
                outcome,
                OrphanInsert::Added {
                    request: blocks[missing].hash(),
                    evicted: vec![]
                },
                "block {} must ask for block {}",
                i + 1,
                missing + 1
            );
        }
        assert_eq!(
            pool.insert(blocks[2].clone(), "peer", 0),
            OrphanInsert::AlreadyHeld
        );
        assert!(pool.take_children(&chain.genesis_hash).is_empty());
        // Block 2 arrives and connects: its child (3) comes out, then 4, then 5.
        let mut tip = blocks[1].hash();
        for expected in &blocks[2..] {
            let children = pool.take_children(&tip);
            assert_eq!(children.len(), 1);
            assert_eq!(children[0].0, *expected);
            tip = expected.hash();
        }
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
        pool.assert_consistent();
    }

    #[test]
    fn full_pool_evicts_the_oldest() {
        let (_, blocks) = chain_of(6);
        let mut pool = OrphanPool::new(config(3));
        for block in &blocks[1..4] {
            pool.insert(block.clone(), 1u8, 0);
        }
        let outcome = pool.insert(blocks[4].clone(), 2u8, 0);
        assert!(matches!(
            outcome,
            OrphanInsert::Added { ref evicted, .. } if *evicted == vec![blocks[1].hash()]
        ));
        assert_eq!(pool.len(), 3);
        assert!(!pool.contains(&blocks[1].hash()));
        pool.assert_consistent();
    }

    /// Issue 11, item 4: orphans from one flooding peer pushed honest orphans out of the
    /// pool. Now the flooder is held to its share and evicts its own.
    #[test]
    fn a_flooder_evicts_its_own_orphans_not_an_honest_peers() {
        let (_, blocks) = chain_of(12);
        let mut pool = OrphanPool::new(OrphanPoolConfig {
            max_per_peer: 4,
            ..config(6)
        });
        pool.insert(blocks[0].clone(), "honest", 0);
        pool.insert(blocks[1].clone(), "honest", 0);
        for block in &blocks[2..] {
            pool.insert(block.clone(), "flooder", 1);
            assert!(pool.count_from(&"flooder") <= 4);
        }
        assert_eq!(pool.count_from(&"honest"), 2, "honest orphans stay");
        assert!(pool.contains(&blocks[0].hash()) && pool.contains(&blocks[1].hash()));
        assert!(
            pool.contains(&blocks[11].hash()),
            "the flooder's newest stays"
        );
        // A full pool with several holders evicts from the one holding the most.
        pool.insert(blocks[0].clone(), "honest", 0);
        let mut other = OrphanPool::new(OrphanPoolConfig {
            max_per_peer: 100,
            ..config(4)
        });
        other.insert(blocks[0].clone(), "a", 0);
        for block in &blocks[1..4] {
            other.insert(block.clone(), "b", 0);
        }
        let outcome = other.insert(blocks[4].clone(), "c", 0);
        assert!(matches!(
            outcome,
            OrphanInsert::Added { ref evicted, .. } if *evicted == vec![blocks[1].hash()]
        ));
        assert!(other.contains(&blocks[0].hash()));
        pool.assert_consistent();
        other.assert_consistent();
    }

    #[test]
    fn byte_limit_and_oversized_blocks() {
        let (_, blocks) = chain_of(3);
        let size = blocks[0].encoded_size();
        let mut pool = OrphanPool::new(OrphanPoolConfig {
            max_blocks: 100,
            max_bytes: 2 * size,
            max_age_secs: 60,
            max_per_peer: 100,
        });
        pool.insert(blocks[0].clone(), (), 0);
        pool.insert(blocks[1].clone(), (), 0);
        let outcome = pool.insert(blocks[2].clone(), (), 0);
        assert!(matches!(outcome, OrphanInsert::Added { ref evicted, .. } if evicted.len() == 1));
        assert_eq!(pool.bytes(), 2 * size);
        let mut tiny = OrphanPool::new(OrphanPoolConfig {
            max_blocks: 100,
            max_bytes: size - 1,
            max_age_secs: 60,
            max_per_peer: 100,
        });
        assert_eq!(
            tiny.insert(blocks[0].clone(), (), 0),
            OrphanInsert::TooLarge
        );
        assert!(tiny.is_empty());
    }

    #[test]
    fn expiry_and_banned_peers() {
        let (_, blocks) = chain_of(4);
        let mut pool = OrphanPool::new(config(10));
        pool.insert(blocks[0].clone(), "a", 100);
        pool.insert(blocks[1].clone(), "b", 130);
        pool.insert(blocks[2].clone(), "a", 150);
        // Kept while at most 60 s old.
        assert_eq!(pool.expire(160), vec![]);
        assert_eq!(pool.expire(161), vec![blocks[0].hash()]);
        let mut dropped = pool.remove_from_peer(&"a");
        dropped.sort();
        assert_eq!(dropped, vec![blocks[2].hash()]);
        assert_eq!(pool.len(), 1);
        pool.assert_consistent();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any sequence of inserts, takes, expiries and bans keeps the indexes consistent
        /// and the pool within its limits.
        #[test]
        fn invariants_hold_under_any_operations(
            ops in prop::collection::vec((0u8..4, 0usize..12, 0u8..3, 0u64..200), 1..60)
        ) {
            let (chain, blocks) = chain_of(12);
            let mut pool = OrphanPool::new(config(5));
            for (op, index, peer, now) in ops {
                match op {
                    0 | 1 => {
                        pool.insert(blocks[index].clone(), peer, now);
                    }
                    2 => {
                        let parent = if index == 0 { chain.genesis_hash } else { blocks[index - 1].hash() };
                        for (child, _) in pool.take_children(&parent) {
                            prop_assert_eq!(child.header.prev_hash, parent);
                        }
                    }
                    _ => {
                        if peer == 0 {
                            pool.expire(now);
                        } else {
                            pool.remove_from_peer(&peer);
                        }
                    }
                }
                pool.assert_consistent();
            }
        }
    }
}
