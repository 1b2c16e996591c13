//! Gossiped blocks: a whole block goes to the network logic as it is; a compact one is
//! first rebuilt from the transfers the mempool holds (`core::protocol::compact`), and the
//! network logic fetches whatever is missing from its relayer (`machine::relay`).
use super::{NodeLogic, Output};
use crate::core::chain::manager::{ChainManager, ChainStore};
use crate::core::protocol::compact::{BlockAnnouncement, CompactBlock, PartialBlock};
use crate::core::protocol::machine::Event;

impl<P: Ord + Clone + std::fmt::Debug> NodeLogic<P> {
    pub(super) fn on_gossip_block<S: ChainStore>(
        &mut self,
        peer: P,
        announcement: BlockAnnouncement,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let event = match announcement {
            BlockAnnouncement::Full(block) => Event::GossipBlock { peer, block },
            BlockAnnouncement::Compact(compact) => Event::GossipCompact {
                partial: self.rebuild(compact, chain),
                peer,
            },
        };
        self.feed(event, chain, now_ms, out);
    }

    /// `compact` with the pool's transfers in its slots. The pool is searched only for a
    /// block that is new and carries about a block's proof of work (see
    /// `Protocol::worth_rebuilding`); the network logic answers any other without a request.
    fn rebuild<S: ChainStore>(
        &self,
        compact: CompactBlock,
        chain: &ChainManager<S>,
    ) -> PartialBlock {
        if !self.protocol.worth_rebuilding(&compact, chain) {
            return PartialBlock::rebuild(compact, std::iter::empty());
        }
        let pool = self.pool_read();
        PartialBlock::rebuild(
            compact,
            pool.entries().map(|entry| (&entry.txid, &entry.transfer)),
        )
    }
}
