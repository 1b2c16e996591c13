//! The read-only view of a node that the explorer renders: the [`ExplorerView`] trait, which
//! the node implements over its store and shared state (and [`crate::fake`] over memory), and
//! its error, [`ViewError`].
//!
//! The methods are synchronous and cheap enough to call from a request handler (the node's
//! store reads are), and every one may fail: a bad input, nothing found, or a node that
//! cannot answer.
use crate::model::{
    AddressPage, BlockId, BlockPage, BlockRow, ChainInfo, ChartPoint, HexHash, MempoolPage,
    PeersPage, SearchHit, Summary, TxPage,
};
use std::ops::Range;

/// Why a view could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Nothing matches (a page shown with `404`).
    #[error("{0}")]
    NotFound(String),
    /// The input is malformed, e.g. an address with a bad checksum (`400`).
    #[error("{0}")]
    BadInput(String),
    /// The node failed or is shutting down (`500`/`503`); the message is for people.
    #[error("{0}")]
    Unavailable(String),
}

impl ViewError {
    /// Whether the thing asked for does not exist (as opposed to a bad request or a failure).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ViewError::NotFound(_))
    }
}

/// The part of `0..len` that `requested` covers (empty at `len` when it starts past it): how
/// a view clamps the page of a block's transfers it was asked for.
pub fn clamp_range(requested: Range<usize>, len: usize) -> Range<usize> {
    let start = requested.start.min(len);
    start..requested.end.clamp(start, len)
}

/// A read-only view of a node, as the explorer needs it.
pub trait ExplorerView: Send + Sync + 'static {
    /// The chain's name, ticker and decimals.
    fn chain(&self) -> ChainInfo;

    /// The tip and the node's state.
    fn summary(&self) -> Result<Summary, ViewError>;

    /// Best-chain blocks below height `before` (from the tip when `None`), newest first, at
    /// most `limit`.
    fn recent_blocks(&self, before: Option<u32>, limit: usize) -> Result<Vec<BlockRow>, ViewError>;

    /// The block `id` with its transfers in `transfers` (indexes into the block; clamped to
    /// what the block holds).
    fn block(&self, id: &BlockId, transfers: Range<usize>) -> Result<BlockPage, ViewError>;

    /// A transfer in the best chain or the mempool.
    fn transaction(&self, txid: &HexHash) -> Result<TxPage, ViewError>;

    /// An address's balance and one page of its history, newest first: the first page when
    /// `cursor` is `None`, else the page after the one whose `next_cursor` it is.
    fn address(
        &self,
        address: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<AddressPage, ViewError>;

    /// The pool's totals and its best `limit` transfers by fee rate.
    fn mempool(&self, limit: usize) -> Result<MempoolPage, ViewError>;

    /// This node on the network.
    fn peers(&self) -> Result<PeersPage, ViewError>;

    /// The last `blocks` best-chain blocks (up to the tip), oldest first.
    fn chart(&self, blocks: usize) -> Result<Vec<ChartPoint>, ViewError>;

    /// Where `query` leads: a height, a block hash, a txid or an address. `NotFound` when
    /// nothing matches, `BadInput` for an empty query.
    ///
    /// The default tries the other methods in that order; a view may answer faster.
    fn search(&self, query: &str) -> Result<SearchHit, ViewError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(ViewError::BadInput(
                "type a block height, a block hash, a transaction id or an address".into(),
            ));
        }
        let nothing = || ViewError::NotFound(format!("nothing matches {query:?}"));
        let keep_looking = |result: Result<(), ViewError>| match result {
            Ok(()) => Ok(true),
            Err(ViewError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        };
        if query.bytes().all(|b| b.is_ascii_digit()) {
            let id: BlockId = query.parse().map_err(|_| nothing())?;
            return if keep_looking(self.block(&id, 0..0).map(drop))? {
                Ok(SearchHit::Block(id))
            } else {
                Err(nothing())
            };
        }
        if let Ok(hash) = query.parse::<HexHash>() {
            let id = BlockId::Hash(hash.clone());
            if keep_looking(self.block(&id, 0..0).map(drop))? {
                return Ok(SearchHit::Block(id));
            }
            if keep_looking(self.transaction(&hash).map(drop))? {
                return Ok(SearchHit::Transaction(hash));
            }
            return Err(nothing());
        }
        match self.address(query, None, 1) {
            Ok(page) => Ok(SearchHit::Address(page.address)),
            Err(ViewError::NotFound(_) | ViewError::BadInput(_)) => Err(nothing()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn ranges_are_clamped_to_what_there_is() {
        assert_eq!(clamp_range(0..100, 2000), 0..100);
        assert_eq!(clamp_range(1900..2000, 1950), 1900..1950);
        assert_eq!(clamp_range(2100..2200, 2000), 2000..2000);
        assert_eq!(clamp_range(0..0, 5), 0..0);
        let (start, end) = (10, 5);
        assert_eq!(
            clamp_range(start..end, 20),
            10..10,
            "a reversed range is empty"
        );
    }
}
