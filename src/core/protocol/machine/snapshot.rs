//! Snapshot sync: a fresh node takes every header first, picks the block `depth` below the
//! most-work header tip (the *pivot*), fetches the state tree under the pivot's state root
//! from every useful peer (`protocol::snapshot`), and makes the pivot its tip without the
//! blocks below it. From there, sync fetches and validates every block in full as usual.
//!
//! ```text
//!   fresh, snapshot allowed ──► Headers: all of them (blocks held back) ──► long enough?
//!        no ──► Off (full sync)            yes ──► Fetching(pivot = tip − depth)
//!   Fetching: GetStatePages round-robin ──► pages checked, stored ──► tree complete
//!        ──► adopt: headers up to the pivot, the pivot as tip (durable) ──► Off: blocks
//!   pivot no longer on the header chain ──► Headers again     nobody has a page ──► Off
//! ```
//! What a snapshot trusts: the headers' proof of work, as a full node does, and that a
//! branch `depth` blocks deep is not undone; the pivot's state is not re-derived from the
//! blocks below it (they are not fetched). Every page is checked against the pivot's state
//! root, so no peer can alter an account; a peer that sends a page that fails its check is
//! penalised as for an invalid block, and the page is asked of another.
//!
//! # Invariants
//! - Blocks are not requested while headers are collected or state is fetched.
//! - A snapshot is adopted only by a node whose tip is genesis, and only once every page of
//!   the pivot's tree is stored (the chain manager reads the whole tree first).
use super::*;
use crate::core::chain::manager::SnapshotError;
use crate::core::protocol::messages::{check_state_pages_response, MAX_STATE_PAGES};
use crate::core::protocol::snapshot::StateFetch;
use crate::core::state::SmtNode;

/// When a fresh node bootstraps by snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// The pivot is this many blocks below the most-work header tip.
    pub depth: u32,
    /// Only a header chain at least this many blocks longer than the tip is worth it
    /// (shorter ones sync in full).
    pub min_blocks: u32,
}

/// Where snapshot sync is.
#[derive(Clone, Debug, Default)]
pub(super) enum SnapshotPhase<P> {
    /// Not bootstrapping by snapshot (not allowed, done, given up, or not fresh).
    #[default]
    Off,
    /// Collecting every header before choosing.
    Headers,
    /// Fetching the pivot's state.
    Fetching(Box<StateFetch<P>>),
}

/// Where a step of the state fetch left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FetchStep {
    /// Still fetching: blocks wait.
    Fetching,
    /// The pivot left the header chain: a new one is chosen.
    PivotGone,
    /// Adopted, or given up: blocks go on.
    Over,
}

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    /// Whether headers are wanted beyond the download window: snapshot sync needs the
    /// most-work header tip before it picks a pivot.
    pub(super) fn snapshot_wants_headers(&self) -> bool {
        matches!(self.snapshot, SnapshotPhase::Headers)
            && self.download.len() < self.config.max_queued_headers
    }

    /// Drives snapshot sync; returns whether blocks must wait (headers or state first).
    pub(super) fn schedule_snapshot<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<bool, ChainError> {
        let Some(config) = self.config.snapshot else {
            return Ok(false);
        };
        if matches!(self.snapshot, SnapshotPhase::Off) {
            return Ok(false);
        }
        if chain.tip().hash() != chain.genesis_hash() {
            // Not fresh (any more): blocks came by other means.
            self.snapshot = SnapshotPhase::Off;
            return Ok(false);
        }
        if matches!(self.snapshot, SnapshotPhase::Headers) {
            // Every header a peer announces is here once no request is out and no peer
            // with more to send claims more work than the queue shows.
            let queued_work = self.download.last().map(|w| w.entry.chain_work);
            let more_announced = self.peers.values().any(|info| {
                !info.exhausted
                    && info
                        .status
                        .as_ref()
                        .is_some_and(|s| Some(s.chain_work) > queued_work)
            });
            let waiting = self.headers_request.is_some() || more_announced;
            if waiting && self.snapshot_wants_headers() {
                return Ok(true);
            }
            let len = self.download.len();
            if len <= config.depth as usize || len < config.min_blocks as usize {
                self.snapshot = SnapshotPhase::Off;
                return Ok(false);
            }
            let pivot = self
                .download
                .get(len - 1 - config.depth as usize)
                .expect("within the queue")
                .entry
                .clone();
            out.push(Action::SnapshotStarted {
                pivot: pivot.clone(),
                header_height: self.download.last().map_or(0, |w| w.entry.height()),
            });
            self.snapshot = SnapshotPhase::Fetching(Box::new(StateFetch::new(pivot)));
        }
        let SnapshotPhase::Fetching(mut fetch) = std::mem::take(&mut self.snapshot) else {
            return Ok(false);
        };
        let step = self.fetch_state(&mut fetch, chain, now_ms, out);
        self.snapshot = match step {
            // A store failure leaves the fetch as it is, to go on once the store writes.
            Ok(FetchStep::Fetching) | Err(_) => SnapshotPhase::Fetching(fetch),
            Ok(FetchStep::PivotGone) => SnapshotPhase::Headers,
            Ok(FetchStep::Over) => SnapshotPhase::Off,
        };
        step.map(|step| step != FetchStep::Over)
    }

    /// One step of the state fetch: adopt it if complete (or give it up), else send the page
    /// requests it needs now.
    fn fetch_state<S: ChainStore>(
        &mut self,
        fetch: &mut StateFetch<P>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<FetchStep, ChainError> {
        let pivot = fetch.pivot().clone();
        if !self.download.wants(&pivot.hash()) {
            // The header chain changed under the pivot: choose again (pages already stored
            // are found there and not fetched again).
            return Ok(FetchStep::PivotGone);
        }
        fetch.look_up_held(chain.store())?;
        if fetch.is_done() {
            self.adopt_snapshot(fetch, chain, out)?;
            // The headers up to the pivot leave the queue: blocks are fetched after it.
            self.connect_downloaded(chain, now_ms, out)?;
            return Ok(FetchStep::Over);
        }
        let useful = self.peers_whose_status(|s| s.chain_work >= pivot.chain_work);
        if !useful.is_empty() && fetch.is_stuck(useful.iter()) {
            out.push(Action::SnapshotAbandoned {
                reason: "no peer has a page of the state tree".into(),
            });
            return Ok(FetchStep::Over);
        }
        self.rotation = self.rotation.wrapping_add(1);
        for i in 0..useful.len() {
            let peer = &useful[(self.rotation as usize + i) % useful.len()];
            // (A peer with nothing to fetch is not charged a request of its budget.)
            while fetch.has_work_for(peer) && self.may_request(peer, now_ms) {
                let tops = fetch.next_batch(peer, self.next_id, MAX_STATE_PAGES);
                self.send(
                    peer.clone(),
                    SyncRequest::GetStatePages { tops },
                    Pending::StatePages,
                    now_ms,
                    out,
                );
            }
        }
        Ok(FetchStep::Fetching)
    }

    /// Makes the pivot the tip, with the headers up to it (see the module docs).
    fn adopt_snapshot<S: ChainStore>(
        &mut self,
        fetch: &StateFetch<P>,
        chain: &mut ChainManager<S>,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let entries = self.download.entries_through(&fetch.pivot().hash());
        match chain.adopt_snapshot(&entries) {
            Ok(tip) => {
                out.push(Action::TipChanged {
                    tip,
                    reorg: None,
                    source: TipSource::Snapshot,
                });
                // The blocks below it are fetched once sync is idle.
                self.backfill = super::backfill::BackfillPhase::Unknown;
            }
            Err(SnapshotError::Chain(e)) => return Err(e),
            Err(e) => out.push(Action::SnapshotAbandoned {
                reason: e.to_string(),
            }),
        }
        Ok(())
    }

    /// `peer`'s answer to our state pages request `id`.
    pub(super) fn on_state_pages<S: ChainStore>(
        &mut self,
        peer: P,
        id: u64,
        pages: Vec<Vec<SmtNode>>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let SnapshotPhase::Fetching(fetch) = &mut self.snapshot else {
            return Ok(()); // Late: the fetch is over.
        };
        let asked = fetch.asked_count(&peer, id);
        if let Err(e) = check_state_pages_response(&pages, asked) {
            fetch.fail(&peer, id);
            self.penalize(
                &peer,
                Misbehavior::ProtocolViolation,
                now_ms,
                e.to_string(),
                out,
            );
            return Ok(());
        }
        let received = fetch.receive(&peer, id, pages);
        if !received.pages.is_empty() {
            chain.store_state_pages(&received.pages)?;
        }
        if let Some((top, fault)) = received.fault {
            self.penalize(
                &peer,
                Misbehavior::InvalidStatePage,
                now_ms,
                format!(
                    "state page {} at depth {}: {fault}",
                    hex::encode(top.hash),
                    top.depth
                ),
                out,
            );
        }
        Ok(())
    }

    /// A state pages request failed or timed out: its pages go to other peers.
    pub(super) fn state_pages_failed(&mut self, peer: &P, id: u64) {
        if let SnapshotPhase::Fetching(fetch) = &mut self.snapshot {
            fetch.fail(peer, id);
        }
    }

    /// The state fetch's progress report, while there is one, `elapsed_ms` after the last
    /// report, and the pages fetched so far.
    pub(super) fn snapshot_progress(&self, elapsed_ms: u64) -> Option<(Action<P>, u64)> {
        let SnapshotPhase::Fetching(fetch) = &self.snapshot else {
            return None;
        };
        let progress = fetch.progress();
        // The first report has no earlier one to measure from.
        let (pages_per_sec, eta_secs) = match self.progress.at_ms {
            0 => (None, None),
            _ => {
                let done = progress.pages_fetched.saturating_sub(self.progress.pages);
                let (per_sec, eta) = super::timers::pace(done, elapsed_ms, progress.pages_left);
                (Some(per_sec), eta)
            }
        };
        let report = Action::SnapshotProgress {
            pivot_height: fetch.pivot().height(),
            progress,
            pages_per_sec,
            eta_secs,
        };
        Some((report, progress.pages_fetched))
    }
}
