//! Serving peers' requests: statuses, headers from a locator, blocks by hash, a block's
//! transfers by position, state-tree pages by their top's hash, each bounded (`messages`) and charged to the peer's inbound rate
//! limit.
//!
//! # Invariants
//! - A response never exceeds `max_response_bytes` nor the message limits.
use super::*;
use crate::core::primitives::Transfer;
use crate::core::protocol::messages::ProtocolError;

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    pub(super) fn serve<S: ChainStore>(
        &mut self,
        peer: P,
        id: u64,
        request: SyncRequest,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if let Err(action) = self.policy.on_request(&peer, now_ms) {
            out.push(Action::Refuse { id });
            self.apply_policy(peer, action, "request flood".into(), out);
            return Ok(());
        }
        if request.check().is_err() {
            out.push(Action::Refuse { id });
            self.penalize(
                &peer,
                Misbehavior::ProtocolViolation,
                now_ms,
                "request over the limits".into(),
                out,
            );
            return Ok(());
        }
        let response = match request {
            SyncRequest::Status(status) => {
                let ours = Self::status(chain);
                out.push(Action::Respond {
                    id,
                    response: SyncResponse::Status(ours),
                });
                self.on_status(peer, status, chain, now_ms, out);
                return Ok(());
            }
            SyncRequest::GetHeaders { locator, max } => {
                let max = (max as usize).min(MAX_HEADERS);
                match chain.headers_after(&locator, max)? {
                    Ok(headers) => SyncResponse::Headers(headers),
                    Err(_) => {
                        // No shared block, not even genesis: another chain. Nothing to send.
                        SyncResponse::Headers(Vec::new())
                    }
                }
            }
            SyncRequest::GetBlocks { hashes } => {
                let mut blocks = Vec::new();
                let mut bytes = 0usize;
                for hash in &hashes {
                    if let Some(block) = chain.block(hash)? {
                        bytes += block.encoded_size();
                        if bytes > self.config.max_response_bytes && !blocks.is_empty() {
                            break;
                        }
                        blocks.push(block);
                    }
                }
                SyncResponse::Blocks(blocks)
            }
            SyncRequest::GetStatePages { tops } => {
                SyncResponse::StatePages(self.state_pages(&tops, chain)?)
            }
            SyncRequest::GetBlockTransfers { block, indexes } => {
                let Some(block) = chain.block(&block)? else {
                    out.push(Action::Respond {
                        id,
                        response: SyncResponse::BlockTransfers(Vec::new()),
                    });
                    return Ok(());
                };
                let count = block.transfers.len();
                if let Some(&index) = indexes.iter().find(|&&i| i as usize >= count) {
                    // The requester knows the count from the compact block: no honest
                    // node asks past it.
                    out.push(Action::Refuse { id });
                    let error = ProtocolError::IndexOutOfRange { index, count };
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        error.to_string(),
                        out,
                    );
                    return Ok(());
                }
                let mut slots: Vec<Option<Transfer>> =
                    block.transfers.into_iter().map(Some).collect();
                SyncResponse::BlockTransfers(
                    indexes
                        .iter()
                        .map(|&i| slots[i as usize].take().expect("indexes ascend"))
                        .collect(),
                )
            }
        };
        out.push(Action::Respond { id, response });
        Ok(())
    }

    /// The nodes of the state pages `tops` this node holds (empty for one it does not), in
    /// order, stopping before the response would pass `max_response_bytes`.
    fn state_pages<S: ChainStore>(
        &self,
        tops: &[crate::core::primitives::Hash256],
        chain: &ChainManager<S>,
    ) -> Result<Vec<Vec<crate::core::state::SmtNode>>, ChainError> {
        let mut pages = Vec::with_capacity(tops.len());
        let mut bytes = 0usize;
        for top in tops {
            let nodes: Vec<_> = match chain.store().smt_page(top)? {
                Some(page) => page.nodes().cloned().collect(),
                None => Vec::new(),
            };
            bytes += nodes.len() * MAX_ENCODED_NODE_BYTES + 8;
            if bytes > self.config.max_response_bytes && !pages.is_empty() {
                break;
            }
            pages.push(nodes);
        }
        Ok(pages)
    }
}

/// An upper bound of a tree node's encoded size: the larger of an internal node (a tag and
/// two hashes: 65 bytes) and a leaf (a tag, an address and two varints: at most 51).
const MAX_ENCODED_NODE_BYTES: usize = 1 + 2 * 32;
