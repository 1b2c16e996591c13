//! The sync protocol's messages and their bounds. No I/O: the network layer encodes these
//! with the codec and carries them over a request-response protocol.
//!
//! ```text
//!   Status     ⇄  genesis, tip, height, chain work        (handshake; other genesis: disconnect)
//!   GetHeaders →  locator, stop, max      Headers ←  up to MAX_HEADERS, linked, after the fork
//!   GetBlocks  →  up to MAX_BLOCKS hashes Blocks  ←  those blocks, in order, skipping unknown
//!   GetBlockTransfers → block, positions   BlockTransfers ← the transfers at those positions
//!                                          (none if the block is unknown)
//!   GetStatePages → up to MAX_STATE_PAGES   StatePages ← those state-tree pages, in order
//!                   page tops                (empty for one not held; may stop early)
//! ```
//! `GetStatePages` serves snapshot sync (`snapshot`): pages are asked for by their top node's
//! hash and checked against it (`core::state::pages`).
//! `GetBlockTransfers` completes a compact block (`compact`) whose transfers the receiver
//! did not all hold; it goes to the peer that relayed the compact block.
//! Every response is bounded, and [`check_headers_response`] / [`check_blocks_response`]
//! say whether a response is one an honest peer could have sent for the request.
use super::locator::MAX_LOCATOR_HASHES;
use crate::core::consensus::target::Work;
use crate::core::primitives::{Block, BlockHash, Hash256, Header, Transfer};
use crate::core::state::SmtNode;
use serde::{Deserialize, Serialize};

/// Most headers in one `Headers` response (116 bytes each: about 232 KB).
pub const MAX_HEADERS: usize = 2_000;
/// Most blocks asked for (and sent) in one `GetBlocks` / `Blocks` exchange.
pub const MAX_BLOCKS: usize = 16;

/// Most state-tree pages asked for (and sent) in one `GetStatePages` / `StatePages` exchange
/// (a page is a few KB, at most about 100 KB).
pub const MAX_STATE_PAGES: usize = 64;

/// What a node says about itself when a connection opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The chain: peers with another genesis are disconnected.
    pub genesis: BlockHash,
    /// The sender's best tip.
    pub tip: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its cumulative work.
    pub chain_work: Work,
}

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The handshake.
    Status(Status),
    /// Headers of the responder's best chain after the fork point with `locator`.
    GetHeaders {
        /// The requester's locator (see `locator`).
        locator: Vec<BlockHash>,
        /// At most this many headers (capped at [`MAX_HEADERS`]).
        max: u32,
    },
    /// Full blocks by hash.
    GetBlocks {
        /// At most [`MAX_BLOCKS`] hashes.
        hashes: Vec<BlockHash>,
    },
    /// Some transfers of a block, by position.
    GetBlockTransfers {
        /// The block.
        block: BlockHash,
        /// Positions in the block, strictly ascending.
        indexes: Vec<u32>,
    },
    /// State-tree pages by their top node's hash.
    GetStatePages {
        /// At most [`MAX_STATE_PAGES`] page tops.
        tops: Vec<Hash256>,
    },
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's status.
    Status(Status),
    /// Consecutive headers, each the parent of the next.
    Headers(Vec<Header>),
    /// The requested blocks the responder has, in request order.
    Blocks(Vec<Block>),
    /// The transfers at the positions asked for, in that order; none if the responder does
    /// not have the block.
    BlockTransfers(Vec<Transfer>),
    /// The nodes of the pages asked for, in request order: one entry per page top, empty for
    /// a page the responder does not hold; it may stop before the last (its size limit).
    StatePages(Vec<Vec<SmtNode>>),
}

/// Why a request or response breaks the protocol. Every variant is the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A locator longer than any honest node builds.
    #[error("locator of {0} hashes exceeds the limit")]
    LocatorTooLong(usize),
    /// Asked for more blocks than allowed.
    #[error("request for {0} blocks exceeds the limit of {MAX_BLOCKS}")]
    TooManyBlocksRequested(usize),
    /// More headers than asked for or allowed.
    #[error("{got} headers sent, at most {allowed} allowed")]
    TooManyHeaders {
        /// Sent.
        got: usize,
        /// Allowed.
        allowed: usize,
    },
    /// Headers that do not form a chain.
    #[error("header {index} does not extend the one before it")]
    UnlinkedHeaders {
        /// Position of the first header that does not link.
        index: usize,
    },
    /// Transfer positions not strictly ascending.
    #[error("transfer positions not strictly ascending at {index}")]
    UnorderedIndexes {
        /// Position in the request of the first one out of order.
        index: usize,
    },
    /// Transfer positions past the end of the block.
    #[error("transfer position {index} is past the block's {count} transfers")]
    IndexOutOfRange {
        /// The position asked for.
        index: u32,
        /// The block's transfers.
        count: usize,
    },
    /// Not one transfer per position asked for.
    #[error("{got} transfers sent for {asked} positions")]
    WrongTransferCount {
        /// Positions asked for.
        asked: usize,
        /// Transfers sent.
        got: usize,
    },
    /// Asked for more state pages than allowed.
    #[error("request for {0} state pages exceeds the limit of {MAX_STATE_PAGES}")]
    TooManyPagesRequested(usize),
    /// More state pages sent than asked for.
    #[error("{got} state pages sent for {asked} asked")]
    TooManyPages {
        /// Asked for.
        asked: usize,
        /// Sent.
        got: usize,
    },
    /// Blocks that were not asked for, or out of order, or too many.
    #[error("block {index} of the response was not requested (or is out of order)")]
    UnrequestedBlock {
        /// Position in the response.
        index: usize,
    },
}

impl SyncRequest {
    /// Checks the request's bounds before serving it.
    pub fn check(&self) -> Result<(), ProtocolError> {
        match self {
            SyncRequest::Status(_) => Ok(()),
            SyncRequest::GetHeaders { locator, .. } if locator.len() > MAX_LOCATOR_HASHES => {
                Err(ProtocolError::LocatorTooLong(locator.len()))
            }
            SyncRequest::GetHeaders { .. } => Ok(()),
            SyncRequest::GetBlocks { hashes } if hashes.len() > MAX_BLOCKS => {
                Err(ProtocolError::TooManyBlocksRequested(hashes.len()))
            }
            SyncRequest::GetBlocks { .. } => Ok(()),
            SyncRequest::GetStatePages { tops } if tops.len() > MAX_STATE_PAGES => {
                Err(ProtocolError::TooManyPagesRequested(tops.len()))
            }
            SyncRequest::GetStatePages { .. } => Ok(()),
            SyncRequest::GetBlockTransfers { indexes, .. } => {
                match indexes.windows(2).position(|pair| pair[0] >= pair[1]) {
                    Some(at) => Err(ProtocolError::UnorderedIndexes { index: at + 1 }),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Checks a `Headers` response to a `GetHeaders` with `max`: bounded, and each header the
/// child of the one before. (Whether the first links to a block we know, and whether each
/// header is valid, are the chain's checks.)
pub fn check_headers_response(headers: &[Header], max: u32) -> Result<(), ProtocolError> {
    let allowed = (max as usize).min(MAX_HEADERS);
    if headers.len() > allowed {
        return Err(ProtocolError::TooManyHeaders {
            got: headers.len(),
            allowed,
        });
    }
    for (index, pair) in headers.windows(2).enumerate() {
        if pair[1].prev_hash != pair[0].hash() || pair[1].height != pair[0].height.wrapping_add(1) {
            return Err(ProtocolError::UnlinkedHeaders { index: index + 1 });
        }
    }
    Ok(())
}

/// Checks a `Blocks` response to a `GetBlocks` for `requested`: only requested blocks, in
/// request order, none twice (a peer may skip blocks it does not have).
pub fn check_blocks_response(
    blocks: &[Block],
    requested: &[BlockHash],
) -> Result<(), ProtocolError> {
    let mut remaining = requested.iter();
    for (index, block) in blocks.iter().enumerate() {
        let hash = block.hash();
        if !remaining.any(|wanted| *wanted == hash) {
            return Err(ProtocolError::UnrequestedBlock { index });
        }
    }
    Ok(())
}

/// Checks a `BlockTransfers` response to a `GetBlockTransfers` for `asked` positions: one
/// transfer per position, or none (the responder lacks the block). Whether each transfer is
/// the block's is checked against its short id (`compact`).
pub fn check_block_transfers_response(
    transfers: &[Transfer],
    asked: usize,
) -> Result<(), ProtocolError> {
    if transfers.is_empty() || transfers.len() == asked {
        Ok(())
    } else {
        Err(ProtocolError::WrongTransferCount {
            asked,
            got: transfers.len(),
        })
    }
}

/// Checks a `StatePages` response to a `GetStatePages` for `asked` pages: at most one entry
/// per page asked for. (Whether each page is the one asked for is `core::state::pages`.)
pub fn check_state_pages_response(
    pages: &[Vec<SmtNode>],
    asked: usize,
) -> Result<(), ProtocolError> {
    if pages.len() > asked {
        return Err(ProtocolError::TooManyPages {
            asked,
            got: pages.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::codec;
    use crate::core::testkit::{test_address, TestChain};

    fn blocks(n: usize) -> Vec<Block> {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        chain.extend(&genesis, n, test_address(0))
    }

    #[test]
    fn linked_headers_pass_and_gaps_or_excess_fail() {
        let blocks = blocks(5);
        let headers: Vec<Header> = blocks.iter().map(|b| b.header).collect();
        assert_eq!(check_headers_response(&headers, 5), Ok(()));
        assert_eq!(check_headers_response(&[], 5), Ok(()));
        assert_eq!(
            check_headers_response(&headers, 4),
            Err(ProtocolError::TooManyHeaders { got: 5, allowed: 4 })
        );
        let gap = [headers[0], headers[2]];
        assert_eq!(
            check_headers_response(&gap, 10),
            Err(ProtocolError::UnlinkedHeaders { index: 1 })
        );
        let mut wrong_height = headers.clone();
        wrong_height[3].height += 1;
        // Changing a header also changes its hash, so the next link breaks too; the first
        // failure is the height.
        assert_eq!(
            check_headers_response(&wrong_height, 10),
            Err(ProtocolError::UnlinkedHeaders { index: 3 })
        );
    }

    #[test]
    fn blocks_must_be_requested_and_in_order() {
        let blocks = blocks(4);
        let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
        assert_eq!(check_blocks_response(&blocks, &hashes), Ok(()));
        // Skipping is allowed (the peer may lack some).
        assert_eq!(
            check_blocks_response(&[blocks[0].clone(), blocks[3].clone()], &hashes),
            Ok(())
        );
        assert_eq!(
            check_blocks_response(&[blocks[1].clone(), blocks[0].clone()], &hashes),
            Err(ProtocolError::UnrequestedBlock { index: 1 })
        );
        assert_eq!(
            check_blocks_response(&[blocks[0].clone(), blocks[0].clone()], &hashes),
            Err(ProtocolError::UnrequestedBlock { index: 1 })
        );
        assert_eq!(
            check_blocks_response(&blocks[..1], &hashes[1..]),
            Err(ProtocolError::UnrequestedBlock { index: 0 })
        );
    }

    #[test]
    fn block_transfers_come_one_per_position_or_not_at_all() {
        let transfer = crate::core::testkit::sample_transfer(0, Vec::new());
        let two = vec![transfer.clone(), transfer];
        assert_eq!(check_block_transfers_response(&two, 2), Ok(()));
        assert_eq!(check_block_transfers_response(&[], 2), Ok(()));
        assert_eq!(
            check_block_transfers_response(&two[..1], 2),
            Err(ProtocolError::WrongTransferCount { asked: 2, got: 1 })
        );
        assert_eq!(
            check_block_transfers_response(&two, 1),
            Err(ProtocolError::WrongTransferCount { asked: 1, got: 2 })
        );
    }

    #[test]
    fn request_bounds() {
        let too_long = SyncRequest::GetHeaders {
            locator: vec![BlockHash::ZERO; MAX_LOCATOR_HASHES + 1],
            max: 10,
        };
        assert!(matches!(
            too_long.check(),
            Err(ProtocolError::LocatorTooLong(_))
        ));
        let too_many = SyncRequest::GetBlocks {
            hashes: vec![BlockHash::ZERO; MAX_BLOCKS + 1],
        };
        assert!(matches!(
            too_many.check(),
            Err(ProtocolError::TooManyBlocksRequested(_))
        ));
        let fine = SyncRequest::GetBlocks {
            hashes: vec![BlockHash::ZERO; MAX_BLOCKS],
        };
        assert_eq!(fine.check(), Ok(()));
        let transfers = |indexes: Vec<u32>| SyncRequest::GetBlockTransfers {
            block: BlockHash::ZERO,
            indexes,
        };
        assert_eq!(transfers(vec![0, 1, 5]).check(), Ok(()));
        assert_eq!(transfers(vec![]).check(), Ok(()));
        assert_eq!(
            transfers(vec![0, 5, 5]).check(),
            Err(ProtocolError::UnorderedIndexes { index: 2 })
        );
        assert_eq!(
            transfers(vec![3, 2]).check(),
            Err(ProtocolError::UnorderedIndexes { index: 1 })
        );
    }

    #[test]
    fn messages_round_trip_through_the_codec_and_fit_its_limit() {
        let blocks = blocks(2);
        let status = Status {
            genesis: BlockHash([1; 32]),
            tip: blocks[1].hash(),
            height: 2,
            chain_work: Work::ZERO,
        };
        let largest_headers = SyncResponse::Headers(vec![blocks[0].header; MAX_HEADERS]);
        for message in [
            SyncResponse::Status(status.clone()),
            SyncResponse::Blocks(blocks.clone()),
            largest_headers,
        ] {
            let bytes = codec::encode(&message).unwrap();
            assert_eq!(codec::decode::<SyncResponse>(&bytes).unwrap(), message);
        }
        for request in [
            SyncRequest::Status(status),
            SyncRequest::GetHeaders {
                locator: vec![blocks[0].hash(); MAX_LOCATOR_HASHES],
                max: MAX_HEADERS as u32,
            },
            SyncRequest::GetBlocks {
                hashes: vec![blocks[1].hash(); MAX_BLOCKS],
            },
        ] {
            let bytes = codec::encode(&request).unwrap();
            assert_eq!(codec::decode::<SyncRequest>(&bytes).unwrap(), request);
        }
    }
}
