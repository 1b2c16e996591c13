//! Block locators: how two nodes find the last block their best chains share. No I/O.
//!
//! A node describes its best chain by a short list of block hashes, dense near the tip and
//! exponentially sparse towards genesis (as Bitcoin does):
//!
//! ```text
//!   heights: tip, tip-1, ..., tip-9, tip-11, tip-15, tip-23, tip-39, ..., 0
//! ```
//!
//! The peer answers from the first hash of the list that is on its own best chain: that is
//! the fork point, found in one round trip whatever the chains' lengths, at a cost of about
//! `10 + log2(height)` hashes. A locator never holds more than [`MAX_LOCATOR_HASHES`]
//! entries, which is also the most a node accepts from a peer.

use crate::core::primitives::BlockHash;

/// Hashes listed one by one below the tip before the steps start doubling.
const DENSE_HASHES: u32 = 10;

/// The longest locator a node builds or accepts: 10 dense steps plus one per power of two
/// up to 2^32, plus genesis.
pub const MAX_LOCATOR_HASHES: usize = 10 + 32 + 1;

/// The heights a locator for a best chain ending at `tip_height` lists, from the tip down;
/// always ends with 0 (genesis).
pub fn locator_heights(tip_height: u32) -> Vec<u32> {
    let mut heights = Vec::with_capacity(MAX_LOCATOR_HASHES);
    let mut height = tip_height;
    let mut step = 1u32;
    loop {
        heights.push(height);
        if height == 0 {
            break;
        }
        if heights.len() >= DENSE_HASHES as usize {
            step = step.saturating_mul(2);
        }
        height = height.saturating_sub(step);
    }
    heights
}

/// Why a locator from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocatorError {
    /// More hashes than any honest node sends.
    #[error("locator of {len} hashes is longer than the limit of {max}")]
    TooLong {
        /// Hashes sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// No hash is on our best chain, not even genesis: the peer is on another chain.
    #[error("no locator hash is on this chain's best chain (another genesis?)")]
    NoCommonBlock,
}

impl LocatorError {
    /// Whether the peer that sent the locator is at fault.
    pub fn is_peer_fault(&self) -> bool {
        true
    }
}

/// The fork point of our best chain and a peer's, from the peer's `locator`:
/// the first hash (and its height) that `best_chain_height` places on our best chain.
///
/// `best_chain_height(hash)` returns the height of `hash` if it is on our best chain.
pub fn find_fork_point(
    locator: &[BlockHash],
    mut best_chain_height: impl FnMut(&BlockHash) -> Option<u32>,
) -> Result<(BlockHash, u32), LocatorError> {
    if locator.len() > MAX_LOCATOR_HASHES {
        return Err(LocatorError::TooLong {
            len: locator.len(),
            max: MAX_LOCATOR_HASHES,
        });
    }
    locator
        .iter()
        .find_map(|hash| best_chain_height(hash).map(|height| (*hash, height)))
        .ok_or(LocatorError::NoCommonBlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, TestChain};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn heights_are_dense_then_doubling_and_end_at_genesis() {
        assert_eq!(locator_heights(0), vec![0]);
        assert_eq!(locator_heights(3), vec![3, 2, 1, 0]);
        assert_eq!(
            locator_heights(100),
            vec![100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 89, 85, 77, 61, 29, 0]
        );
    }

    proptest! {
        #[test]
        fn heights_are_bounded_strictly_decreasing_and_end_at_genesis(tip in any::<u32>()) {
            let heights = locator_heights(tip);
            prop_assert!(heights.len() <= MAX_LOCATOR_HASHES);
            prop_assert_eq!(heights[0], tip);
            prop_assert_eq!(*heights.last().unwrap(), 0);
            prop_assert!(heights.windows(2).all(|w| w[0] > w[1]));
            // Dense near the tip: the first ten steps are one block each.
            let dense = heights.len().min(DENSE_HASHES as usize);
            prop_assert!(heights[..dense].windows(2).all(|w| w[0] - w[1] == 1));
        }
    }

    /// Two nodes' branches from a common block: the fork point found from a locator is
    /// exactly the last shared block, for forks at every depth.
    #[test]
    fn fork_point_is_the_last_shared_block() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let trunk = chain.extend(&genesis, 40, test_address(0));
        for fork_at in [0usize, 1, 5, 20, 39, 40] {
            let base = if fork_at == 0 {
                genesis
            } else {
                trunk[fork_at - 1].hash()
            };
            let ours: Vec<BlockHash> = std::iter::once(genesis)
                .chain(trunk.iter().map(|b| b.hash()))
                .collect();
            // The peer's best chain: the trunk up to the fork, then a branch of its own.
            let branch = chain.extend(&base, 25, test_address(1));
            let theirs: Vec<BlockHash> = ours[..=fork_at]
                .iter()
                .copied()
                .chain(branch.iter().map(|b| b.hash()))
                .collect();
            let heights = locator_heights(theirs.len() as u32 - 1);
            let locator: Vec<BlockHash> = heights.iter().map(|h| theirs[*h as usize]).collect();
            let our_heights: BTreeMap<BlockHash, u32> = ours
                .iter()
                .enumerate()
                .map(|(h, hash)| (*hash, h as u32))
                .collect();
            let (hash, height) =
                find_fork_point(&locator, |h| our_heights.get(h).copied()).unwrap();
            // The locator is sparse away from the peer's tip, so the answer is the highest
            // listed height at or below the fork: shared, and at most one doubling step low.
            let expected = heights
                .iter()
                .copied()
                .find(|h| *h as usize <= fork_at)
                .unwrap();
            assert_eq!(height, expected, "fork at {fork_at}");
            assert_eq!(ours[height as usize], hash);
            assert_eq!(theirs[height as usize], hash, "found block is shared");
        }
    }

    #[test]
    fn refuses_long_locators_and_foreign_chains() {
        let long = vec![BlockHash::ZERO; MAX_LOCATOR_HASHES + 1];
        assert!(matches!(
            find_fork_point(&long, |_| Some(0)),
            Err(LocatorError::TooLong { .. })
        ));
        let foreign = vec![BlockHash([9; 32])];
        assert_eq!(
            find_fork_point(&foreign, |_| None),
            Err(LocatorError::NoCommonBlock)
        );
        assert!(LocatorError::NoCommonBlock.is_peer_fault());
    }
}
