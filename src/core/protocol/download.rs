//! The block download queue of header-first sync. No I/O.
//!
//! Headers from one peer (the *source*) describe a branch, checked header by header against
//! the consensus rules that need no state (see `headers`). Their blocks are fetched only once
//! the branch's header work exceeds our tip's (the caller decides, from [`Download::last`]),
//! in batches from every useful peer at once, buffered, and handed to the chain strictly in
//! order:
//!
//! ```text
//!   wanted:  [h101 h102 h103 ... h164][h165 ... h228][h229 ...]     (linked headers)
//!             └─ asked of peer A ──┘  └─ peer B ───┘  └ not yet ┘
//!   buffer:  h102, h103 arrived (waiting for h101)  →  pop_ready() yields h101, h102, ...
//! ```
//! A peer that answers without some requested blocks, or whose request failed (timed out,
//! lost), has "tried" them and is not asked for them again; when every peer has tried the
//! front block, the queue is stuck and the caller resets it. Only an answer that left a
//! block out is evidence against the peer ([`Download::front_omitted_by`]): a request that
//! failed may have been lost on the way. Bytes buffered are counted so that memory stays bounded; headers are held in
//! memory only, never written, and the caller bounds their number.
//!
//! # Invariants
//! - `wanted` is a chain: each header is the parent of the next.
//! - `position` maps exactly the hashes in `wanted` to their sequence numbers, and the
//!   front's sequence number is `front_seq`.
//! - Every key of `buffered` and `assigned` is a hash in `wanted`.
//! - `buffered_bytes` is the sum of the encoded sizes of the buffered blocks.
use crate::core::chain::BlockIndexEntry;
use crate::core::primitives::{Block, BlockHash};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One checked header waiting for its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Its hash.
    pub hash: BlockHash,
    /// The index entry the block will have (header, chain work, ASERT clock).
    pub entry: BlockIndexEntry,
}

/// The queue of blocks to fetch, for peers identified by `P`.
#[derive(Clone, Debug)]
pub struct Download<P> {
    wanted: VecDeque<Wanted>,
    position: BTreeMap<BlockHash, u64>,
    front_seq: u64,
    source: Option<P>,
    buffered: BTreeMap<BlockHash, (Block, P)>,
    buffered_bytes: usize,
    assigned: BTreeMap<BlockHash, u64>,
    /// Who tried each block, and whether it answered without it (`true`) or its request
    /// failed (`false`).
    tried: BTreeMap<BlockHash, BTreeMap<P, bool>>,
}

impl<P> Default for Download<P> {
    fn default() -> Self {
        Download {
            wanted: VecDeque::new(),
            position: BTreeMap::new(),
            front_seq: 0,
            source: None,
            buffered: BTreeMap::new(),
            buffered_bytes: 0,
            assigned: BTreeMap::new(),
            tried: BTreeMap::new(),
        }
    }
}

impl<P: Ord + Clone> Download<P> {
    /// Headers waiting (downloaded or not).
    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    /// Whether nothing is wanted.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// The last wanted header.
    pub fn last(&self) -> Option<&Wanted> {
        self.wanted.back()
    }

    /// The peer whose headers fill the queue.
    pub fn source(&self) -> Option<&P> {
        self.source.as_ref()
    }

    /// Bytes of blocks buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Whether `hash` is wanted.
    pub fn wants(&self, hash: &BlockHash) -> bool {
        self.position.contains_key(hash)
    }

    /// The entry a wanted header's block will have.
    pub fn entry(&self, hash: &BlockHash) -> Option<&BlockIndexEntry> {
        let seq = self.position.get(hash)?;
        let index = usize::try_from(seq - self.front_seq).ok()?;
        self.wanted.get(index).map(|w| &w.entry)
    }

    /// The `index`-th wanted header from the front.
    pub fn get(&self, index: usize) -> Option<&Wanted> {
        self.wanted.get(index)
    }

    /// The entries of the wanted headers from the front through `hash` (all of them if
    /// `hash` is not wanted).
    pub fn entries_through(&self, hash: &BlockHash) -> Vec<BlockIndexEntry> {
        let mut entries = Vec::new();
        for wanted in &self.wanted {
            entries.push(wanted.entry.clone());
            if wanted.hash == *hash {
                break;
            }
        }
        entries
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Download::default();
    }

    /// Queues checked, linked headers from `source`, each with its entry. The caller has
    /// checked that they link and that the first extends a known block or the last wanted
    /// header (then the queue grows; otherwise it is replaced).
    pub fn queue(&mut self, source: P, headers: Vec<Wanted>) {
        let extends = match (self.last(), headers.first()) {
            (Some(last), Some(first)) => first.entry.header.prev_hash == last.hash,
            _ => false,
        };
        if !extends {
            self.reset();
        }
        self.source = Some(source);
        for wanted in headers {
            let seq = self.front_seq + self.wanted.len() as u64;
            self.position.insert(wanted.hash, seq);
            self.wanted.push_back(wanted);
        }
    }

    /// Up to `max` hashes for `peer` to fetch, among the first `window` wanted: not buffered,
    /// not assigned, not already tried by `peer`. Marks them assigned to request `id`.
    pub fn next_batch(&mut self, peer: &P, id: u64, window: usize, max: usize) -> Vec<BlockHash> {
        let mut batch = Vec::new();
        for wanted in self.wanted.iter().take(window) {
            if batch.len() >= max {
                break;
            }
            let hash = wanted.hash;
            let taken = self.buffered.contains_key(&hash) || self.assigned.contains_key(&hash);
            let tried = self.tried.get(&hash).is_some_and(|t| t.contains_key(peer));
            if !taken && !tried {
                batch.push(hash);
            }
        }
        for hash in &batch {
            self.assigned.insert(*hash, id);
        }
        batch
    }

    /// Takes back the assignment of `hashes` to request `id` (a failed or timed-out
    /// request); `peer` counts as having tried them.
    pub fn unassign(&mut self, peer: &P, id: u64, hashes: &[BlockHash]) {
        self.mark_tried(peer, id, hashes, false);
    }

    fn mark_tried(&mut self, peer: &P, id: u64, hashes: &[BlockHash], omitted: bool) {
        for hash in hashes {
            if self.assigned.get(hash) == Some(&id) {
                self.assigned.remove(hash);
                let by = self.tried.entry(*hash).or_default();
                let seen = by.entry(peer.clone()).or_default();
                *seen |= omitted;
            }
        }
    }

    /// Whether `peer` answered a request for the front block without it.
    pub fn front_omitted_by(&self, peer: &P) -> bool {
        self.wanted.front().is_some_and(|front| {
            self.tried
                .get(&front.hash)
                .and_then(|by| by.get(peer))
                .copied()
                .unwrap_or(false)
        })
    }

    /// Takes the blocks `peer` sent for request `id` (asked: `requested`); requested blocks
    /// it left out count as tried by it.
    pub fn receive(&mut self, peer: &P, id: u64, requested: &[BlockHash], blocks: Vec<Block>) {
        let mut received = BTreeSet::new();
        for block in blocks {
            let hash = block.hash();
            if self.assigned.get(&hash) == Some(&id) {
                self.assigned.remove(&hash);
            }
            if self.wants(&hash) && !self.buffered.contains_key(&hash) {
                received.insert(hash);
                self.buffered_bytes += block.encoded_size();
                self.buffered.insert(hash, (block, peer.clone()));
            }
        }
        let missing: Vec<BlockHash> = requested
            .iter()
            .filter(|h| !received.contains(h))
            .copied()
            .collect();
        self.mark_tried(peer, id, &missing, true);
    }

    /// The front block, if it has arrived, with the peer that sent it.
    pub fn pop_ready(&mut self) -> Option<(Block, P)> {
        let front = self.wanted.front()?.hash;
        let (block, from) = self.buffered.remove(&front)?;
        self.buffered_bytes -= block.encoded_size();
        self.pop_front();
        self.tried.remove(&front);
        Some((block, from))
    }

    /// Whether the front block has arrived.
    pub fn front_ready(&self) -> bool {
        self.wanted
            .front()
            .is_some_and(|front| self.buffered.contains_key(&front.hash))
    }

    /// Drops the front header (its block is already known).
    pub fn skip_front(&mut self) {
        if let Some(front) = self.pop_front() {
            if let Some((block, _)) = self.buffered.remove(&front.hash) {
                self.buffered_bytes -= block.encoded_size();
            }
            self.assigned.remove(&front.hash);
            self.tried.remove(&front.hash);
        }
    }

    fn pop_front(&mut self) -> Option<Wanted> {
        let front = self.wanted.pop_front()?;
        self.position.remove(&front.hash);
        self.front_seq += 1;
        Some(front)
    }

    /// The request the front block is assigned to, if it is in flight.
    pub fn front_request(&self) -> Option<u64> {
        let front = self.wanted.front()?;
        self.assigned.get(&front.hash).copied()
    }

    /// How many of the first `window` wanted blocks are neither buffered nor assigned: what
    /// the next batches can still take.
    pub fn unassigned_in_window(&self, window: usize) -> usize {
        self.wanted
            .iter()
            .take(window)
            .filter(|w| {
                !self.buffered.contains_key(&w.hash) && !self.assigned.contains_key(&w.hash)
            })
            .count()
    }

    /// The front hash.
    pub fn front(&self) -> Option<BlockHash> {
        self.wanted.front().map(|w| w.hash)
    }

    /// Whether every one of `peers` has tried the front block without delivering it.
    pub fn is_stuck<'a>(&self, mut peers: impl Iterator<Item = &'a P>) -> bool
    where
        P: 'a,
    {
        let Some(front) = self.wanted.front() else {
            return false;
        };
        if self.buffered.contains_key(&front.hash) || self.assigned.contains_key(&front.hash) {
            return false;
        }
        let tried = self.tried.get(&front.hash);
        peers.all(|p| tried.is_some_and(|t| t.contains_key(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, TestChain};

    fn chain_of(n: usize) -> (TestChain, Vec<Block>) {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let blocks = chain.extend(&genesis, n, test_address(0));
        (chain, blocks)
    }

    fn wanted(chain: &TestChain, blocks: &[Block]) -> Vec<Wanted> {
        blocks
            .iter()
            .map(|b| Wanted {
                hash: b.hash(),
                entry: chain.entry_of(&b.hash()).clone(),
            })
            .collect()
    }

    #[test]
    fn batches_go_to_different_peers_and_blocks_come_out_in_order() {
        let (chain, blocks) = chain_of(6);
        let mut d = Download::default();
        d.queue("a", wanted(&chain, &blocks));
        assert_eq!(
            d.last().unwrap().entry.chain_work,
            chain.entry_of(&blocks[5].hash()).chain_work
        );
        let first = d.next_batch(&"a", 1, 100, 3);
        let second = d.next_batch(&"b", 2, 100, 3);
        assert_eq!(first.len(), 3);
        assert_eq!(
            second,
            blocks[3..].iter().map(Block::hash).collect::<Vec<_>>()
        );
        assert!(d.next_batch(&"c", 3, 100, 3).is_empty());
        assert_eq!(d.unassigned_in_window(100), 0);
        assert_eq!(d.front_request(), Some(1));
        // The second batch arrives first: nothing is ready until the front arrives.
        d.receive(&"b", 2, &second, blocks[3..].to_vec());
        assert!(d.pop_ready().is_none());
        d.receive(&"a", 1, &first, blocks[..3].to_vec());
        let order: Vec<BlockHash> = std::iter::from_fn(|| d.pop_ready())
            .map(|(b, _)| b.hash())
            .collect();
        assert_eq!(order, blocks.iter().map(Block::hash).collect::<Vec<_>>());
        assert!(d.is_empty());
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn entries_are_found_by_hash_as_the_front_moves() {
        let (chain, blocks) = chain_of(5);
        let mut d = Download::default();
        d.queue("a", wanted(&chain, &blocks[..3]));
        d.queue("a", wanted(&chain, &blocks[3..]));
        assert_eq!(d.len(), 5);
        d.skip_front();
        d.skip_front();
        assert!(!d.wants(&blocks[1].hash()));
        for block in &blocks[2..] {
            assert_eq!(d.entry(&block.hash()), Some(chain.entry_of(&block.hash())));
        }
        assert_eq!(d.entry(&blocks[0].hash()), None);
    }

    #[test]
    fn a_skipped_block_goes_to_another_peer_and_all_trying_means_stuck() {
        let (chain, blocks) = chain_of(2);
        let mut d = Download::default();
        d.queue("a", wanted(&chain, &blocks));
        let batch = d.next_batch(&"a", 1, 100, 16);
        // "a" sends only the second block.
        d.receive(&"a", 1, &batch, vec![blocks[1].clone()]);
        assert!(d.next_batch(&"a", 2, 100, 16).is_empty(), "a tried it");
        assert!(!d.is_stuck(["a", "b"].iter()));
        let retry = d.next_batch(&"b", 3, 100, 16);
        assert_eq!(retry, vec![blocks[0].hash()]);
        d.unassign(&"b", 3, &retry);
        assert!(d.is_stuck(["a", "b"].iter()));
    }

    #[test]
    fn only_an_answer_without_the_block_counts_against_a_peer() {
        let (chain, blocks) = chain_of(1);
        let mut d = Download::default();
        d.queue("a", wanted(&chain, &blocks));
        let batch = d.next_batch(&"a", 1, 100, 16);
        d.unassign(&"a", 1, &batch);
        assert!(d.is_stuck(["a"].iter()));
        assert!(!d.front_omitted_by(&"a"), "a failed request is no evidence");
        let batch = d.next_batch(&"b", 2, 100, 16);
        d.receive(&"b", 2, &batch, Vec::new());
        assert!(d.front_omitted_by(&"b"));
    }

    #[test]
    fn headers_off_the_end_replace_the_queue() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let a = chain.extend(&genesis, 3, test_address(0));
        let b = chain.extend(&genesis, 2, test_address(1));
        let mut d = Download::default();
        d.queue("a", wanted(&chain, &a));
        d.queue("b", wanted(&chain, &b));
        assert_eq!(d.len(), 2);
        assert_eq!(d.source(), Some(&"b"));
        assert_eq!(d.front(), Some(b[0].hash()));
        assert!(!d.wants(&a[2].hash()));
    }
}
