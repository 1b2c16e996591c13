//! Header-first checks: a peer's header chain is checked against every consensus rule a
//! header can be checked on without state (version, height, ASERT bits, proof of work, median
//! time past, future drift) before any of its blocks is fetched or anything is written. No I/O.
//!
//! The context of each header (its parent's entry and the ten blocks before) is read from the
//! block tree, the headers already queued for download, and the headers checked before it in
//! the same batch, through one overlay of the three. The rules themselves are
//! `consensus::validation::check_header` and `chain::child_context`: the same code that checks
//! a block when it is connected, so the two can never disagree.
use super::download::{Download, Wanted};
use crate::core::chain::{child_context, BlockIndex, BlockIndexEntry, ChainError};
use crate::core::consensus::validation::check_header;
use crate::core::consensus::{BlockError, ChainSpec};
use crate::core::primitives::{BlockHash, Header};
use std::collections::BTreeMap;

/// The checked prefix of a batch of headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedHeaders {
    /// The headers that passed, in order, with the entries their blocks will have.
    pub wanted: Vec<Wanted>,
    /// Set when checking stopped at a header from the future (not a fault: it may become
    /// valid; the rest of the batch is dropped and asked for again later).
    pub held_at: Option<BlockHash>,
}

/// A header of the batch broke a rule: the chain it belongs to is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidHeader {
    /// The header's hash.
    pub hash: BlockHash,
    /// The rule.
    pub error: BlockError,
}

/// Checks `headers` (linked, the first a child of `parent`) at `now` (Unix seconds).
///
/// `index` is the block tree and `queued` the download queue; `parent` is in one of them.
/// Returns the checked prefix, or the first header that breaks a rule; `Err` only when the
/// tree cannot be read.
pub fn check_header_chain<I: BlockIndex + ?Sized, P: Ord + Clone>(
    index: &I,
    queued: &Download<P>,
    parent: BlockIndexEntry,
    headers: &[Header],
    spec: &ChainSpec,
    now: u64,
) -> Result<Result<CheckedHeaders, InvalidHeader>, ChainError> {
    let params = spec.asert_params();
    let mut fresh = BTreeMap::new();
    let mut wanted = Vec::with_capacity(headers.len());
    let mut parent = parent;
    for header in headers {
        let hash = header.hash();
        let overlay = Overlay {
            index,
            queued,
            fresh: &fresh,
        };
        let context = child_context(&overlay, &parent, spec)?;
        match check_header(header, &context, now, spec) {
            Ok(()) => {}
            Err(BlockError::TimeTooFarAhead { .. }) => {
                return Ok(Ok(CheckedHeaders {
                    wanted,
                    held_at: Some(hash),
                }))
            }
            Err(error) => return Ok(Err(InvalidHeader { hash, error })),
        }
        let entry = parent.child(*header, &params).map_err(|_| {
            // check_header compared the bits with ASERT's, which always decode.
            ChainError::Store(crate::core::storage::StorageFailure::corrupt(format!(
                "header {hash} passed with undecodable bits"
            )))
        })?;
        fresh.insert(hash, entry.clone());
        wanted.push(Wanted {
            hash,
            entry: entry.clone(),
        });
        parent = entry;
    }
    Ok(Ok(CheckedHeaders {
        wanted,
        held_at: None,
    }))
}

/// The block tree seen through the headers not yet stored.
struct Overlay<'a, I: ?Sized, P> {
    index: &'a I,
    queued: &'a Download<P>,
    fresh: &'a BTreeMap<BlockHash, BlockIndexEntry>,
}

impl<I: BlockIndex + ?Sized, P: Ord + Clone> BlockIndex for Overlay<'_, I, P> {
    fn entry(&self, hash: &BlockHash) -> Result<Option<BlockIndexEntry>, ChainError> {
        if let Some(entry) = self.fresh.get(hash).or_else(|| self.queued.entry(hash)) {
            return Ok(Some(entry.clone()));
        }
        self.index.entry(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{solve, test_address, TestChain};

    fn headers_of(chain: &mut TestChain, n: usize) -> Vec<Header> {
        let genesis = chain.genesis_hash;
        chain
            .extend(&genesis, n, test_address(0))
            .iter()
            .map(|b| b.header)
            .collect()
    }

    #[test]
    fn a_valid_chain_passes_with_the_entries_the_tree_would_give() {
        let mut chain = TestChain::new();
        let headers = headers_of(&mut chain, 15);
        let queued: Download<u8> = Download::default();
        let genesis = chain.entry_of(&chain.genesis_hash).clone();
        let checked = check_header_chain(
            &chain,
            &queued,
            genesis,
            &headers,
            &chain.spec,
            u64::MAX / 2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(checked.held_at, None);
        assert_eq!(checked.wanted.len(), 15);
        for (w, h) in checked.wanted.iter().zip(&headers) {
            assert_eq!(&w.entry, chain.entry_of(&h.hash()));
        }
    }

    #[test]
    fn a_continuation_is_checked_against_the_queued_headers() {
        let mut chain = TestChain::new();
        let headers = headers_of(&mut chain, 14);
        let mut queued: Download<u8> = Download::default();
        let genesis = chain.entry_of(&chain.genesis_hash).clone();
        let first = check_header_chain(
            &chain,
            &queued,
            genesis,
            &headers[..7],
            &chain.spec,
            u64::MAX / 2,
        )
        .unwrap()
        .unwrap();
        let parent = first.wanted.last().unwrap().entry.clone();
        queued.queue(1, first.wanted);
        // Only genesis is in this tree: the context of the rest comes from the queue.
        let bare = TestChain::new();
        let rest = check_header_chain(
            &bare,
            &queued,
            parent,
            &headers[7..],
            &chain.spec,
            u64::MAX / 2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(rest.wanted.len(), 7);
    }

    #[test]
    fn cheap_headers_with_made_up_bits_fail_and_future_ones_are_held() {
        let mut chain = TestChain::new();
        let mut headers = headers_of(&mut chain, 3);
        let queued: Download<u8> = Download::default();
        let genesis = chain.entry_of(&chain.genesis_hash).clone();
        let mut cheap = headers.clone();
        cheap[1].bits = crate::core::consensus::CompactTarget::from_consensus(0x2100ffff);
        solve(&mut cheap[1]);
        let invalid = check_header_chain(
            &chain,
            &queued,
            genesis.clone(),
            &cheap,
            &chain.spec,
            u64::MAX / 2,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(invalid.hash, cheap[1].hash());
        assert!(
            matches!(invalid.error, BlockError::WrongBits { .. }),
            "{invalid:?}"
        );

        let now = u64::from(headers[1].time);
        headers[2].time = headers[1].time + 10_000;
        solve(&mut headers[2]);
        let held = check_header_chain(&chain, &queued, genesis, &headers, &chain.spec, now)
            .unwrap()
            .unwrap();
        assert_eq!(held.wanted.len(), 2);
        assert_eq!(held.held_at, Some(headers[2].hash()));
    }
}
