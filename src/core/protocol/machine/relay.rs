//! Compact block relay: a gossiped compact block, rebuilt from the mempool by the node logic,
//! completed by asking its relayer for the transfers it lacked (or for the whole block when
//! that fails); the finished block then goes the way of any gossiped block (`gossip`).
//!
//! ```text
//!   compact block ──► known? Ignore ── bad proof of work? Reject + penalty
//!     ├─ every transfer held ──► merkle root matches the header? ──► gossip block path
//!     │                          └─ no (a short-id collision) ──► GetBlocks([hash])
//!     └─ some missing ──► work far below the tip's? Ignore (junk) ── parent unknown?
//!        Ignore + the relayer's headers
//!        ├─ more than half missing ──► GetBlocks([hash])
//!        └─ GetBlockTransfers(hash, missing) ──► each transfer matches its short id?
//!              ├─ yes ──► merkle root matches? ──► gossip block path, else GetBlocks([hash])
//!              ├─ none sent, failed, timed out ──► GetBlocks([hash])
//!              └─ wrong count or transfer ──► penalty, GetBlocks([hash])
//!   GetBlocks([hash]) ──► the block ──► gossip block path
//!              └─ not sent, failed, timed out ──► Ignore; ask the relayer's headers
//! ```
//! Every request goes to the relayer, which accepted the block (gossipsub forwards nothing
//! else), so it holds it. A wrong match from a short-id collision shows as a merkle root
//! that does not match, and costs only the round trip to fetch the block: no one is blamed
//! before the body is the relayer's own.
//!
//! # Invariants
//! - A compact block gets one verdict, unless its relayer disconnects while we wait on it
//!   (gossipsub then drops the message unforwarded).
//! - At most [`MAX_RELAYS_IN_FLIGHT`] compact blocks wait for an answer at a time, and
//!   every request is charged to the relayer's request budget like any other.
//! - A relayer is penalised only for an answer that breaks the request (wrong count, a
//!   transfer that is not the block's, a block not asked for), or for the block itself as
//!   in `gossip`.
use super::*;
use crate::core::protocol::compact::{CompactBlock, PartialBlock};
use crate::core::protocol::messages::check_block_transfers_response;

/// Most compact blocks waiting for transfers or their whole block at once.
pub const MAX_RELAYS_IN_FLIGHT: usize = 8;

/// A compact block's request in flight.
#[derive(Clone, Debug)]
pub(super) enum RelayRequest {
    /// The transfers at `asked` of `partial`.
    Transfers {
        partial: Box<PartialBlock>,
        asked: Vec<u32>,
    },
    /// The whole block.
    Block(BlockHash),
}

impl RelayRequest {
    fn hash(&self) -> BlockHash {
        match self {
            RelayRequest::Transfers { partial, .. } => partial.hash(),
            RelayRequest::Block(hash) => *hash,
        }
    }
}

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    /// Whether `compact` is worth a search of the mempool: new, no more transfers than a
    /// block may hold, its proof of work valid, and its target near what the tip's child
    /// needs (as an orphan's must be). One that fails is answered without the search (see
    /// `on_gossip_compact`), so what a search costs us is bought with about a block's work.
    pub fn worth_rebuilding<S: ChainStore>(
        &self,
        compact: &CompactBlock,
        chain: &ChainManager<S>,
    ) -> bool {
        compact.short_ids.len() <= chain.spec().max_block_transfers()
            && check_proof_of_work(&compact.header).is_ok()
            && matches!(chain.entry(&compact.hash()), Ok(None))
            && matches!(
                self.orphan_has_enough_work(&compact.header, chain),
                Ok(true)
            )
    }

    pub(super) fn on_gossip_compact<S: ChainStore>(
        &mut self,
        peer: P,
        partial: PartialBlock,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let hash = partial.hash();
        if !self.is_new_with_work(&peer, partial.header(), chain, now_ms, out)? {
            return Ok(());
        }
        if partial.len() > chain.spec().max_block_transfers() {
            out.push(block_verdict(hash, &peer, Verdict::Reject));
            let reason = format!("compact block {hash} lists {} transfers", partial.len());
            self.penalize(&peer, Misbehavior::ProtocolViolation, now_ms, reason, out);
            return Ok(());
        }
        if partial.is_complete() {
            let block = partial.into_block().expect("complete");
            return self.on_rebuilt(peer, block, chain, now_ms, out);
        }
        if !self.orphan_has_enough_work(partial.header(), chain)? {
            // Far easier than what the tip's child needs: worth neither a search of the pool
            // (the node logic did none) nor a request. Junk, as a whole block would be.
            out.push(block_verdict(hash, &peer, Verdict::Ignore));
            self.note_junk(&peer, now_ms, out);
            return Ok(());
        }
        if chain.entry(&partial.header().prev_hash)?.is_none() {
            // Its transfers are fetched once its parent is known, through sync.
            out.push(block_verdict(hash, &peer, Verdict::Ignore));
            return self.wake_headers(&peer, chain, now_ms, out);
        }
        let missing = partial.missing();
        if missing.len() * 2 > partial.len() {
            return self.fetch_relayed_block(peer, hash, chain, now_ms, out);
        }
        self.relay_request(
            peer,
            SyncRequest::GetBlockTransfers {
                block: hash,
                indexes: missing.clone(),
            },
            RelayRequest::Transfers {
                partial: Box::new(partial),
                asked: missing,
            },
            chain,
            now_ms,
            out,
        )
    }

    /// The answer to a relay request of ours.
    pub(super) fn on_relay_response<S: ChainStore>(
        &mut self,
        peer: P,
        request: RelayRequest,
        response: SyncResponse,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let hash = request.hash();
        match (request, response) {
            (
                RelayRequest::Transfers { mut partial, asked },
                SyncResponse::BlockTransfers(sent),
            ) => {
                if sent.is_empty() && !asked.is_empty() {
                    return self.fetch_relayed_block(peer, hash, chain, now_ms, out);
                }
                let checked = check_block_transfers_response(&sent, asked.len())
                    .map_err(|e| e.to_string())
                    .and_then(|()| partial.fill(&asked, sent).map_err(|e| e.to_string()));
                match checked {
                    Ok(()) => {
                        let block = partial
                            .into_block()
                            .expect("every missing slot was asked for and filled");
                        self.on_rebuilt(peer, block, chain, now_ms, out)
                    }
                    Err(e) => {
                        let reason = format!("transfers of compact block {hash}: {e}");
                        self.penalize(&peer, Misbehavior::ProtocolViolation, now_ms, reason, out);
                        self.fetch_relayed_block(peer, hash, chain, now_ms, out)
                    }
                }
            }
            (RelayRequest::Block(_), SyncResponse::Blocks(mut blocks)) => {
                if let Err(e) = check_blocks_response(&blocks, &[hash]) {
                    out.push(block_verdict(hash, &peer, Verdict::Ignore));
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        e.to_string(),
                        out,
                    );
                    return Ok(());
                }
                match blocks.pop() {
                    Some(block) => self.on_gossip_block(peer, block, chain, now_ms, out),
                    None => self.give_up_relay(peer, hash, chain, now_ms, out),
                }
            }
            (request, _) => {
                out.push(block_verdict(hash, &peer, Verdict::Ignore));
                let reason = format!("answered {request:?} with the wrong kind of response");
                self.penalize(&peer, Misbehavior::ProtocolViolation, now_ms, reason, out);
                Ok(())
            }
        }
    }

    /// A relay request failed or timed out: the next step down.
    pub(super) fn on_relay_failed<S: ChainStore>(
        &mut self,
        peer: P,
        request: RelayRequest,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        match request {
            RelayRequest::Transfers { partial, .. } => {
                self.fetch_relayed_block(peer, partial.hash(), chain, now_ms, out)
            }
            RelayRequest::Block(hash) => self.give_up_relay(peer, hash, chain, now_ms, out),
        }
    }

    /// A rebuilt block: checked against its header's merkle root (a short-id collision
    /// could have put a wrong transfer in), then handled as a gossiped block.
    fn on_rebuilt<S: ChainStore>(
        &mut self,
        peer: P,
        block: Block,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if block.compute_tx_root() != block.header.tx_root {
            return self.fetch_relayed_block(peer, block.hash(), chain, now_ms, out);
        }
        self.on_gossip_block(peer, block, chain, now_ms, out)
    }

    fn fetch_relayed_block<S: ChainStore>(
        &mut self,
        peer: P,
        hash: BlockHash,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let request = SyncRequest::GetBlocks { hashes: vec![hash] };
        self.relay_request(peer, request, RelayRequest::Block(hash), chain, now_ms, out)
    }

    /// Sends a relay request to `peer` if it has budget and fewer than
    /// [`MAX_RELAYS_IN_FLIGHT`] are waiting; else gives up on the block.
    fn relay_request<S: ChainStore>(
        &mut self,
        peer: P,
        request: SyncRequest,
        relay: RelayRequest,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let waiting = self
            .requests
            .values()
            .filter(|r| matches!(r.pending, Pending::Relay(_)))
            .count();
        if waiting >= MAX_RELAYS_IN_FLIGHT || !self.may_request(&peer, now_ms) {
            return self.give_up_relay(peer, relay.hash(), chain, now_ms, out);
        }
        self.send(peer, request, Pending::Relay(relay), now_ms, out);
        Ok(())
    }

    /// No block to be had from the relayer now: not forwarded, no fault; sync finds it
    /// through the relayer's headers if it joins the best chain.
    fn give_up_relay<S: ChainStore>(
        &mut self,
        peer: P,
        hash: BlockHash,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        out.push(block_verdict(hash, &peer, Verdict::Ignore));
        self.wake_headers(&peer, chain, now_ms, out)
    }
}
