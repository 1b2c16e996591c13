//! The mempool's place in the node: transfers taken in from peers and clients, the verdict
//! and penalty a relayer gets, the pool following the best chain, expiry, and when the
//! journal is compacted.
//!
//! # Invariants
//! - A transfer is taken in only while the store can write, and every one taken in is
//!   journaled before anything else is done with it.
//! - A gossiped transfer from a banned peer is ignored without being checked.
//! - A relayer is penalised only for what no honest node relays
//!   ([`MempoolError::is_peer_fault`]); races, duplicates and policy are ignored.
use super::{NodeLogic, Output, SubmitRefusal};
use crate::core::chain::manager::{ChainManager, ChainStore};
use crate::core::chain::BlockIndexEntry;
use crate::core::mempool::{Admitted, MempoolError};
use crate::core::primitives::{Block, Transfer};
use crate::core::protocol::machine::{Event, Reorg};
use crate::core::storage::StorageFailure;

impl<P: Ord + Clone + std::fmt::Debug> NodeLogic<P> {
    /// A gossiped transfer: checked in full against the tip (unless its relayer is banned or
    /// the store cannot write), journaled if taken in; the protocol gives the verdict and any
    /// penalty.
    pub(super) fn on_gossip_transfer<S: ChainStore>(
        &mut self,
        peer: P,
        transfer: Transfer,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let txid = transfer.txid();
        if let Some(refusal) = self.protocol.refuse_banned_transfer(&peer, txid, now_ms) {
            out.push(Output::Net(refusal));
            return;
        }
        let admission = match &self.unwritable {
            // Nothing is taken in that could not be made durable (nobody's fault).
            Some(problem) => Err(MempoolError::State(StorageFailure::io(problem.clone()))),
            None => self
                .admit(transfer.clone(), chain, now_ms, out)
                .map(|_| self.journal(transfer, None, out)),
        };
        if let Err(error) = &admission {
            out.push(Output::NotAdmitted {
                txid,
                error: error.clone(),
                relayed_by: error.is_peer_fault().then(|| peer.clone()),
            });
        }
        self.feed(
            Event::GossipTransfer {
                peer,
                txid,
                admission,
            },
            chain,
            now_ms,
            out,
        );
    }

    /// A client's transfer: refused at once, or journaled (the shell answers and relays it
    /// once the record is durable).
    pub(super) fn on_submit<S: ChainStore>(
        &mut self,
        id: u64,
        transfer: Transfer,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        if let Some(problem) = &self.unwritable {
            out.push(Output::Refused {
                id,
                refusal: SubmitRefusal::NotDurable(problem.clone()),
            });
            return;
        }
        match self.admit(transfer.clone(), chain, now_ms, out) {
            Ok(admitted) => self.journal(transfer, Some((id, admitted)), out),
            Err(error) => {
                out.push(Output::NotAdmitted {
                    txid: transfer.txid(),
                    error: error.clone(),
                    relayed_by: None,
                });
                out.push(Output::Refused {
                    id,
                    refusal: error.into(),
                });
            }
        }
    }

    /// Transfers saved by an earlier run, each checked in full against the tip's state; the
    /// journal is then compacted to what was taken back.
    pub(super) fn restore<S: ChainStore>(
        &mut self,
        transfers: Vec<Transfer>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let total = transfers.len();
        let restored = transfers
            .into_iter()
            .filter(|transfer| self.admit(transfer.clone(), chain, now_ms, out).is_ok())
            .count();
        out.push(Output::Restored { restored, total });
        self.mempool_dirty = true;
        self.compact_journal(out);
    }

    /// Offers `transfer` to the pool (full validation against the tip's state).
    fn admit<S: ChainStore>(
        &mut self,
        transfer: Transfer,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) -> Result<Admitted, MempoolError> {
        let admitted = self
            .pool_write()
            .admit(transfer, chain.store(), now_ms / 1000)?;
        self.template.lacks_transfers = true;
        self.mempool_dirty = true;
        out.push(Output::Admitted(admitted.txid));
        Ok(admitted)
    }

    /// Queues an admitted transfer's journal record.
    fn journal(
        &mut self,
        transfer: Transfer,
        submission: Option<(u64, Admitted)>,
        out: &mut Vec<Output<P>>,
    ) {
        self.journal_bytes += transfer.encoded_size() as u64 + 8;
        self.journal_unsynced = true;
        out.push(Output::Journal {
            transfer,
            submission,
        });
        self.compact_journal_if_grown(out);
    }

    /// Moves the pool from the tip it last followed to the chain's tip: transfers in the
    /// new blocks leave, those of blocks taken off come back, those now invalid are dropped.
    pub(super) fn follow_tip<S: ChainStore>(
        &mut self,
        reorg: Option<Reorg>,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let tip = chain.tip().clone();
        let (off, on) = match chain.blocks_between(&self.mempool_tip, &tip) {
            Ok(blocks) => blocks,
            Err(e) => match self.blocks_since_lost(chain, &tip) {
                Some(blocks) => blocks,
                None => {
                    out.push(Output::FollowFailed(e.to_string()));
                    (Vec::new(), Vec::new())
                }
            },
        };
        self.mempool_tip = tip;
        self.remember_followed(&off, &on);
        if off.is_empty() && on.is_empty() {
            return;
        }
        let update = self
            .pool_write()
            .update_for_tip(&off, &on, chain.store(), now_ms / 1000);
        if !(update.included.is_empty()
            && update.returned.is_empty()
            && update.invalidated.is_empty())
        {
            self.mempool_dirty = true;
        }
        out.push(Output::Followed {
            connected: on,
            reorg,
            returned: update.returned.len(),
            invalidated: update.invalidated,
        });
    }

    /// After a store reopened without blocks the pool had followed onto (never flushed):
    /// those blocks, taken off (tip first) and the chain from the newest block the store
    /// still has to `tip`, put on. `None` if the pool's tip is not among the blocks it
    /// remembers, or the store has none of them.
    fn blocks_since_lost<S: ChainStore>(
        &self,
        chain: &ChainManager<S>,
        tip: &BlockIndexEntry,
    ) -> Option<(Vec<Block>, Vec<Block>)> {
        let newest = self.recent_followed.back()?;
        if newest.hash() != self.mempool_tip.hash() {
            return None;
        }
        let mut lost = Vec::new();
        for block in self.recent_followed.iter().rev() {
            match chain.entry(&block.hash()).ok()? {
                Some(kept) => {
                    let (mut off, on) = chain.blocks_between(&kept, tip).ok()?;
                    lost.append(&mut off);
                    return Some((lost, on));
                }
                None => lost.push(block.clone()),
            }
        }
        // None of them survived: the store holds their parent at most.
        let oldest = self.recent_followed.front()?;
        let parent = chain.entry(&oldest.header.prev_hash).ok()??;
        let (mut off, on) = chain.blocks_between(&parent, tip).ok()?;
        lost.append(&mut off);
        Some((lost, on))
    }

    /// Keeps the blocks the pool just followed onto (and forgets those it took off).
    fn remember_followed(&mut self, off: &[Block], on: &[Block]) {
        for block in off {
            if self.recent_followed.back().map(Block::hash) == Some(block.hash()) {
                self.recent_followed.pop_back();
            }
        }
        self.recent_followed.extend(on.iter().cloned());
        while self.recent_followed.len() > super::RECENT_FOLLOWED_BLOCKS {
            self.recent_followed.pop_front();
        }
    }

    /// Drops expired transfers; compacts the journal once it has grown.
    pub(super) fn upkeep(&mut self, now_ms: u64, out: &mut Vec<Output<P>>) {
        let expired = self.pool_write().expire(now_ms / 1000);
        if !expired.is_empty() {
            self.mempool_dirty = true;
            out.push(Output::Expired(expired.len()));
        }
        self.compact_journal_if_grown(out);
    }

    /// Compacts the journal once it holds more than twice the pool (and at least
    /// `journal_compact_bytes`): a restart replays little beyond the pool, and compaction
    /// writes at most about half again what the journal did.
    fn compact_journal_if_grown(&mut self, out: &mut Vec<Output<P>>) {
        let pool_bytes = self.pool_read().bytes() as u64;
        if self.journal_bytes >= self.config.journal_compact_bytes.max(2 * pool_bytes) {
            self.compact_journal(out);
        }
    }

    /// The pool as it is replaces the journal (after the records queued before).
    pub(super) fn compact_journal(&mut self, out: &mut Vec<Output<P>>) {
        if !self.mempool_dirty {
            return;
        }
        out.push(Output::CompactJournal(self.pool_read().transfers()));
        self.journal_bytes = 0;
        self.mempool_dirty = false;
    }
}
