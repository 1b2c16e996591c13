//! The blocks below a snapshot, fetched in the background: a node bootstrapped by snapshot
//! (`snapshot`) holds the headers up to its snapshot's block but not the blocks; once sync is
//! idle it fetches them from genesis up, a few requests at a time, checks each against its
//! header (the header hash asked for, the transfer root and the body's limits: what a block
//! shows on its own) and stores them in height order, so that it serves them to others like
//! any node. They are not executed: the snapshot's state stands for them.
//!
//! # Invariants
//! - Nothing is requested while blocks are synced, a snapshot is fetched or blocks are paused.
//! - Blocks are stored strictly in height order, each the best chain's block at its height.
//! - At most `max_download_bytes` of blocks wait for the ones before them.
use super::*;
use crate::core::chain::manager::OldBlocks;
use crate::core::consensus::validation::check_body;
use std::collections::BTreeSet;

/// Most requests for old blocks in flight to one peer (sync proper may use the rest).
const OLD_BLOCK_REQUESTS_PER_PEER: usize = 2;

/// How long a height every peer failed waits before they are all asked again.
const RETRY_STALLED_MS: u64 = 60_000;

/// The background fetch of the blocks below a snapshot.
#[derive(Clone, Debug)]
pub(super) struct Backfill<P> {
    old: OldBlocks,
    /// The next height not yet asked for.
    next: u32,
    /// Requests in flight: who was asked, for which heights (and hashes).
    asked: BTreeMap<u64, (P, Vec<(u32, BlockHash)>)>,
    /// Heights to ask again, with the peers that failed them.
    again: BTreeMap<u32, BTreeSet<P>>,
    /// Checked blocks waiting for the ones below them.
    arrived: BTreeMap<u32, Block>,
    arrived_bytes: usize,
    /// When progress was last reported, and how far it was then.
    reported: (u64, u32),
    /// Since when some height has been failed by every useful peer.
    stuck_since: Option<u64>,
}

/// What happened to the backfill state when the logic looked at it.
#[derive(Clone, Debug, Default)]
pub(super) enum BackfillPhase<P> {
    /// Not looked at yet: the store says whether there is anything to fetch.
    #[default]
    Unknown,
    /// Fetching.
    Fetching(Box<Backfill<P>>),
    /// Nothing (more) to fetch.
    Done,
}

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    /// Sends the requests the backfill needs now, if sync is idle.
    pub(super) fn schedule_backfill<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if matches!(self.backfill, BackfillPhase::Unknown) {
            self.backfill = match chain.store().old_blocks()? {
                Some(old) if old.through < old.base => {
                    BackfillPhase::Fetching(Box::new(Backfill {
                        old,
                        next: old.through + 1,
                        asked: BTreeMap::new(),
                        again: BTreeMap::new(),
                        arrived: BTreeMap::new(),
                        arrived_bytes: 0,
                        reported: (now_ms, old.through),
                        stuck_since: None,
                    }))
                }
                _ => BackfillPhase::Done,
            };
        }
        if !self.download.is_empty() || self.is_fetching_snapshot() || self.blocks_paused {
            return Ok(());
        }
        let BackfillPhase::Fetching(mut backfill) = std::mem::take(&mut self.backfill) else {
            self.backfill = BackfillPhase::Done;
            return Ok(());
        };
        let base = backfill.old.base;
        let useful = self.peers_whose_status(|s| s.height >= base);
        // A height every useful peer failed: reported once, and asked of them all again a
        // while later (a request may have been lost; a peer may have fetched it since).
        let stuck = backfill
            .again
            .iter()
            .find(|(_, tried)| !useful.is_empty() && useful.iter().all(|p| tried.contains(p)))
            .map(|(height, _)| *height);
        match (stuck, backfill.stuck_since) {
            (Some(height), None) => {
                backfill.stuck_since = Some(now_ms);
                out.push(Action::OldBlocksStalled {
                    through: backfill.old.through,
                    reason: format!("no peer delivered block {height}"),
                });
            }
            (Some(_), Some(since)) if now_ms.saturating_sub(since) >= RETRY_STALLED_MS => {
                for tried in backfill.again.values_mut() {
                    tried.clear();
                }
                backfill.stuck_since = None;
            }
            (None, _) => backfill.stuck_since = None,
            _ => {}
        }
        for peer in &useful {
            let in_flight = backfill.asked.values().filter(|(p, _)| p == peer).count();
            // (A peer with nothing to fetch is not charged a request of its budget.)
            if in_flight >= OLD_BLOCK_REQUESTS_PER_PEER
                || backfill.arrived_bytes >= self.config.max_download_bytes
                || !backfill.has_work_for(peer)
                || !self.may_request(peer, now_ms)
            {
                continue;
            }
            let batch = backfill.next_batch(peer, chain)?;
            let hashes: Vec<BlockHash> = batch.iter().map(|(_, hash)| *hash).collect();
            let id = self.send(
                peer.clone(),
                SyncRequest::GetBlocks { hashes },
                Pending::OldBlocks,
                now_ms,
                out,
            );
            backfill.asked.insert(id, (peer.clone(), batch));
        }
        self.backfill = BackfillPhase::Fetching(backfill);
        Ok(())
    }

    /// `peer`'s answer to our request `id` for old blocks.
    pub(super) fn on_old_blocks<S: ChainStore>(
        &mut self,
        peer: P,
        id: u64,
        blocks: Vec<Block>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let BackfillPhase::Fetching(backfill) = &mut self.backfill else {
            return Ok(());
        };
        let Some((_, asked)) = backfill.asked.remove(&id) else {
            return Ok(());
        };
        let requested: Vec<BlockHash> = asked.iter().map(|(_, hash)| *hash).collect();
        let fault = match check_blocks_response(&blocks, &requested) {
            Err(e) => Some((Misbehavior::ProtocolViolation, e.to_string())),
            Ok(()) => blocks.iter().find_map(|block| {
                check_body(block, chain.spec()).err().map(|e| {
                    (
                        Misbehavior::InvalidBlock,
                        format!("block {} does not match its header: {e}", block.hash()),
                    )
                })
            }),
        };
        let mut delivered = BTreeMap::new();
        if fault.is_none() {
            for block in blocks {
                delivered.insert(block.hash(), block);
            }
        }
        for (height, hash) in asked {
            match delivered.remove(&hash) {
                Some(block) => {
                    backfill.arrived_bytes += block.encoded_size();
                    backfill.arrived.insert(height, block);
                }
                None => {
                    backfill
                        .again
                        .entry(height)
                        .or_default()
                        .insert(peer.clone());
                }
            }
        }
        let ready = backfill.take_ready();
        if !ready.is_empty() {
            chain.store_old_blocks(&ready)?;
        }
        let done = backfill.old.through >= backfill.old.base;
        if done || now_ms.saturating_sub(backfill.reported.0) >= self.config.progress_interval_ms {
            let (blocks_per_sec, eta_secs) = super::timers::pace(
                u64::from(backfill.old.through - backfill.reported.1),
                now_ms.saturating_sub(backfill.reported.0),
                u64::from(backfill.old.base - backfill.old.through),
            );
            out.push(Action::OldBlocksProgress {
                through: backfill.old.through,
                base: backfill.old.base,
                blocks_per_sec,
                eta_secs,
            });
            backfill.reported = (now_ms, backfill.old.through);
        }
        if done {
            self.backfill = BackfillPhase::Done;
        }
        if let Some((fault, reason)) = fault {
            self.penalize(&peer, fault, now_ms, reason, out);
        }
        Ok(())
    }

    /// A request for old blocks failed: its heights go to other peers.
    pub(super) fn old_blocks_failed(&mut self, peer: &P, id: u64) {
        if let BackfillPhase::Fetching(backfill) = &mut self.backfill {
            if let Some((_, asked)) = backfill.asked.remove(&id) {
                for (height, _) in asked {
                    backfill
                        .again
                        .entry(height)
                        .or_default()
                        .insert(peer.clone());
                }
            }
        }
    }

    /// How far the backfill is, while it runs: (stored through, snapshot height).
    pub fn old_blocks_progress(&self) -> Option<(u32, u32)> {
        match &self.backfill {
            BackfillPhase::Fetching(backfill) => Some((backfill.old.through, backfill.old.base)),
            _ => None,
        }
    }
}

impl<P: Ord + Clone> Backfill<P> {
    /// Whether some height is left to ask `peer` for.
    fn has_work_for(&self, peer: &P) -> bool {
        self.next <= self.old.base || self.again.values().any(|tried| !tried.contains(peer))
    }

    /// Up to [`MAX_BLOCKS`] heights for `peer`: first those to ask again that it has not
    /// tried, then new ones.
    fn next_batch<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
    ) -> Result<Vec<(u32, BlockHash)>, ChainError> {
        let mut heights: Vec<u32> = self
            .again
            .iter()
            .filter(|(_, tried)| !tried.contains(peer))
            .map(|(height, _)| *height)
            .take(MAX_BLOCKS)
            .collect();
        for height in &heights {
            self.again.remove(height);
        }
        while heights.len() < MAX_BLOCKS && self.next <= self.old.base {
            heights.push(self.next);
            self.next += 1;
        }
        heights
            .into_iter()
            .map(|height| {
                let hash = chain.store().best_hash_at(height)?.ok_or_else(|| {
                    ChainError::Store(crate::core::storage::StorageFailure::corrupt(format!(
                        "no best-chain block at height {height}"
                    )))
                })?;
                Ok((height, hash))
            })
            .collect()
    }

    /// The arrived blocks right after `through`, in order (moving `through` past them).
    fn take_ready(&mut self) -> Vec<Block> {
        let mut ready = Vec::new();
        while let Some(block) = self.arrived.remove(&(self.old.through + 1)) {
            self.arrived_bytes = self.arrived_bytes.saturating_sub(block.encoded_size());
            self.old.through += 1;
            ready.push(block);
        }
        ready
    }
}
