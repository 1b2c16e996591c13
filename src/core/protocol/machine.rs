//! The node's network logic as a state machine: events in, actions out. No I/O.
//!
//! [`Protocol::handle`] takes one [`Event`] (a peer connected, a request or response
//! arrived, a gossiped block, a tick of the clock), the chain manager, and the time, and
//! returns the [`Action`]s for the shell to carry out (send this request, answer that one,
//! tell gossipsub to forward or reject, ban that peer, log progress). The node runs it over
//! libp2p and sled; the network simulation in `tests/` runs the very same code over a
//! simulated network and memory stores.
//!
//! ```text
//!   connect ──► Status ⇄ Status ──► peer has more work? ──► GetHeaders(locator) ──► Headers
//!                                                                                     │
//!        ┌──────────────── queue (download.rs) ◄──────────────────────────────────────┘
//!        ▼
//!   GetBlocks to every useful peer (≤ max_requests_per_peer each) ──► Blocks ──► buffer
//!        ──► connect in order through the chain manager ──► more headers when the queue runs low
//!
//!   gossip block ──► known? Ignore ── parent unknown? orphan pool + GetHeaders ── else submit
//!                    └─ valid: Accept (gossipsub forwards)   invalid: Reject + penalty
//! ```
//! Stalls are timeouts: the request's blocks go to another peer, and a peer that stalls
//! again and again is disconnected. Lies are penalties (see `peers`).
use super::download::Download;
use super::locator::MAX_LOCATOR_HASHES;
use super::messages::{
    check_blocks_response, check_headers_response, Status, SyncRequest, SyncResponse, MAX_BLOCKS,
    MAX_HEADERS,
};
use super::orphans::{OrphanInsert, OrphanPool, OrphanPoolConfig};
use super::peers::{Misbehavior, PeerAction, PeerPolicy, PeerPolicyConfig};
use crate::core::chain::manager::{BlockOutcome, ChainManager, ChainStore, SubmitError};
use crate::core::chain::{BlockIndexEntry, BlockStatus, ChainError};
use crate::core::consensus::validation::check_proof_of_work;
use crate::core::primitives::{Block, BlockHash};
use std::collections::BTreeMap;

/// Tuning of the network logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolConfig {
    /// Requests in flight to one peer at once.
    pub max_requests_per_peer: usize,
    /// A request unanswered this long has failed.
    pub request_timeout_ms: u64,
    /// Statuses are exchanged again this often, so a peer that missed gossip catches up.
    pub status_interval_ms: u64,
    /// Progress is reported this often while syncing.
    pub progress_interval_ms: u64,
    /// How far ahead of the tip blocks are fetched.
    pub download_window: usize,
    /// Most bytes of downloaded blocks waiting for their parents.
    pub max_download_bytes: usize,
    /// Most bytes in one `Blocks` response this node sends.
    pub max_response_bytes: usize,
    /// Requests per second this node sends one peer (below the peers' own limit).
    pub outbound_requests_per_sec: u32,
    /// Timeouts in a row after which a peer is disconnected.
    pub max_stalls: u32,
    /// Downloaded blocks connected per event at most; more ready ones are left for
    /// [`Event::Continue`], so the shell sends the next requests and takes in the responses
    /// that arrived meanwhile instead of waiting for a long run of blocks to connect.
    pub connect_chunk: usize,
    /// The orphan pool's limits.
    pub orphans: OrphanPoolConfig,
    /// Penalties, bans and inbound rate limits.
    pub policy: PeerPolicyConfig,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            max_requests_per_peer: 4,
            request_timeout_ms: 20_000,
            status_interval_ms: 30_000,
            progress_interval_ms: 5_000,
            download_window: 1_024,
            max_download_bytes: 64 * 1024 * 1024,
            max_response_bytes: 12 * 1024 * 1024,
            outbound_requests_per_sec: 40,
            max_stalls: 3,
            connect_chunk: 4,
            orphans: OrphanPoolConfig::default(),
            policy: PeerPolicyConfig::default(),
        }
    }
}

/// Something that happened, for the logic to react to.
#[derive(Clone, Debug)]
pub enum Event<P> {
    /// A connection to `P` opened.
    PeerConnected(P),
    /// The last connection to `P` closed.
    PeerDisconnected(P),
    /// A peer asks something; answer with [`Action::Respond`] or [`Action::Refuse`].
    Request {
        /// Who asks.
        peer: P,
        /// The shell's handle for the answer.
        id: u64,
        /// What it asks.
        request: SyncRequest,
    },
    /// The answer to a request of ours.
    Response {
        /// Who answers.
        peer: P,
        /// The id of our [`Action::Request`].
        id: u64,
        /// The answer.
        response: SyncResponse,
    },
    /// A request of ours failed (timeout, connection closed, bad bytes).
    RequestFailed {
        /// To whom.
        peer: P,
        /// Our id.
        id: u64,
    },
    /// A block arrived by gossip; answer with [`Action::Verdict`].
    GossipBlock {
        /// The peer that forwarded it.
        peer: P,
        /// The block.
        block: Block,
    },
    /// A peer sent bytes that break the protocol below this logic (undecodable, oversized).
    Misbehaved {
        /// Who.
        peer: P,
        /// What.
        fault: Misbehavior,
    },
    /// This node mined a block.
    Mined(Block),
    /// Time passed (the shell ticks about once a second).
    Tick,
    /// Go on connecting downloaded blocks (the shell's answer to [`Action::Continue`]).
    Continue,
    /// The operator bans a peer.
    Ban(P),
    /// The operator lifts a ban.
    Unban(P),
}

/// What gossipsub should do with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: drop it and lower the sender's score.
    Reject,
    /// Not forwarded, no fault (duplicate, orphan, not yet checkable).
    Ignore,
}

/// How the best chain moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reorg {
    /// Height of the last shared block.
    pub fork_height: u32,
    /// Blocks taken off.
    pub disconnected: usize,
    /// Blocks put on.
    pub connected: usize,
}

/// Where a new tip came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipSource {
    /// Mined here.
    Mined,
    /// Gossip (or an orphan whose parent arrived).
    Gossip,
    /// Downloaded by sync.
    Sync,
}

/// Something for the shell to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<P> {
    /// Send `request` to `peer` under `id`.
    Request {
        /// To whom.
        peer: P,
        /// Our id, echoed in the response event.
        id: u64,
        /// What.
        request: SyncRequest,
    },
    /// Answer the peer's request `id`.
    Respond {
        /// The shell's handle.
        id: u64,
        /// The answer.
        response: SyncResponse,
    },
    /// Drop the peer's request `id` unanswered.
    Refuse {
        /// The shell's handle.
        id: u64,
    },
    /// Gossip a block this node mined.
    Publish(Block),
    /// Tell gossipsub what to do with the gossiped block `hash` from `source`.
    Verdict {
        /// The block (the gossip message id).
        hash: BlockHash,
        /// The peer it came from.
        source: P,
        /// Forward, reject or ignore.
        verdict: Verdict,
    },
    /// Close the connection to `peer`.
    Disconnect(P),
    /// Ban `peer` until `until_ms` (close it, refuse it, persist the ban).
    Ban {
        /// Who.
        peer: P,
        /// End of the ban, ms since the epoch.
        until_ms: u64,
        /// Why, for the log and the API.
        reason: String,
    },
    /// A ban ended or was lifted (persist that).
    Unbanned(P),
    /// The best chain has a new tip.
    TipChanged {
        /// The tip.
        tip: BlockIndexEntry,
        /// Set when branches switched.
        reorg: Option<Reorg>,
        /// What brought it.
        source: TipSource,
    },
    /// A block this node mined was not taken (stale or refused).
    MinedStale {
        /// The block.
        hash: BlockHash,
        /// Why.
        reason: String,
    },
    /// Sync progress, every few seconds while behind.
    Progress {
        /// Our height.
        height: u32,
        /// The best height peers announce.
        target_height: u32,
        /// Blocks connected per second since the last report.
        blocks_per_sec: f64,
        /// Estimated seconds to the target, if moving.
        eta_secs: Option<u64>,
    },
    /// The chain store failed: the shell should log it and may stop.
    StoreFailed(String),
    /// Downloaded blocks are ready to connect: once these actions are carried out and the
    /// events already waiting are handled, feed [`Event::Continue`].
    Continue,
}

/// What we know of a connected peer.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    /// Its last status (`None` until the handshake).
    pub status: Option<Status>,
    /// Requests of ours it has not answered.
    pub requests_in_flight: usize,
    /// Timeouts in a row.
    pub stalls: u32,
    /// Whether it answered our last `GetHeaders` with nothing new.
    exhausted: bool,
    /// When we last asked its status.
    status_asked_ms: u64,
    /// Outbound request budget, in thousandths of a request.
    budget_milli: u64,
    budget_ms: u64,
}

#[derive(Clone, Debug)]
enum Pending {
    Status,
    Headers,
    Blocks(Vec<BlockHash>),
}

#[derive(Clone, Debug)]
struct Outstanding<P> {
    peer: P,
    deadline_ms: u64,
    pending: Pending,
}

#[derive(Clone, Copy, Debug, Default)]
struct ProgressMark {
    at_ms: u64,
    height: u32,
}

/// The network logic of one node, for peers identified by `P`.
pub struct Protocol<P> {
    config: ProtocolConfig,
    peers: BTreeMap<P, PeerInfo>,
    policy: PeerPolicy<P>,
    orphans: OrphanPool<P>,
    download: Download<P>,
    requests: BTreeMap<u64, Outstanding<P>>,
    headers_request: Option<u64>,
    next_id: u64,
    progress: ProgressMark,
    rotation: u64,
}

impl<P: Ord + Clone + std::fmt::Debug> Protocol<P> {
    /// A fresh logic honouring `bans` (peer, end in ms) restored from storage.
    pub fn new(config: ProtocolConfig, bans: impl IntoIterator<Item = (P, u64)>) -> Protocol<P> {
        Protocol {
            policy: PeerPolicy::new(config.policy, bans),
            orphans: OrphanPool::new(config.orphans),
            config,
            peers: BTreeMap::new(),
            download: Download::default(),
            requests: BTreeMap::new(),
            headers_request: None,
            next_id: 1,
            progress: ProgressMark::default(),
            rotation: 0,
        }
    }

    /// Connected peers and what we know of them.
    pub fn peers(&self) -> impl Iterator<Item = (&P, &PeerInfo)> {
        self.peers.iter()
    }

    /// Current bans (peer, end in ms).
    pub fn bans(&self) -> impl Iterator<Item = (&P, u64)> {
        self.policy.bans()
    }

    /// The misbehaviour score of `peer`.
    pub fn score(&self, peer: &P) -> u32 {
        self.policy.score(peer)
    }

    /// Orphans held.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Whether sync has blocks to fetch.
    pub fn is_syncing(&self) -> bool {
        !self.download.is_empty()
    }

    /// Our status, as sent to peers.
    pub fn status<S: ChainStore>(chain: &ChainManager<S>) -> Status {
        let tip = chain.tip();
        Status {
            genesis: chain.genesis_hash(),
            tip: tip.hash(),
            height: tip.height(),
            chain_work: tip.chain_work,
        }
    }

    /// Reacts to `event` at `now_ms` (ms since the Unix epoch).
    pub fn handle<S: ChainStore>(
        &mut self,
        event: Event<P>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
    ) -> Vec<Action<P>> {
        let mut out = Vec::new();
        let result = self.dispatch(event, chain, now_ms, &mut out);
        let result = result.and_then(|()| self.schedule(chain, now_ms, &mut out));
        if let Err(e) = result {
            out.push(Action::StoreFailed(e.to_string()));
        }
        out
    }

    fn dispatch<S: ChainStore>(
        &mut self,
        event: Event<P>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        match event {
            Event::PeerConnected(peer) => {
                if self.policy.is_banned(&peer, now_ms) {
                    out.push(Action::Disconnect(peer));
                } else {
                    self.peers.insert(
                        peer.clone(),
                        PeerInfo {
                            budget_milli: u64::from(self.config.outbound_requests_per_sec) * 1000,
                            budget_ms: now_ms,
                            ..PeerInfo::default()
                        },
                    );
                    self.ask_status(&peer, chain, now_ms, out);
                }
            }
            Event::PeerDisconnected(peer) => self.drop_peer(&peer),
            Event::Request { peer, id, request } => {
                self.serve(peer, id, request, chain, now_ms, out)?
            }
            Event::Response { peer, id, response } => {
                self.on_response(peer, id, response, chain, now_ms, out)?
            }
            Event::RequestFailed { peer, id } => {
                if let Some(request) = self.requests.remove(&id) {
                    if request.peer == peer {
                        self.give_back(id, request);
                    }
                }
            }
            Event::GossipBlock { peer, block } => {
                self.on_gossip_block(peer, block, chain, now_ms, out)?
            }
            Event::Misbehaved { peer, fault } => {
                self.penalize(&peer, fault, now_ms, format!("{fault:?}"), out)
            }
            Event::Mined(block) => {
                let hash = block.hash();
                let copy = block.clone();
                match self.submit(block, None, TipSource::Mined, true, chain, now_ms, out)? {
                    Ok(BlockOutcome::Extended { .. } | BlockOutcome::Reorganized { .. }) => {
                        out.push(Action::Publish(copy))
                    }
                    Ok(_) => out.push(Action::MinedStale {
                        hash,
                        reason: "the tip moved on".into(),
                    }),
                    Err(e) => out.push(Action::MinedStale {
                        hash,
                        reason: e.to_string(),
                    }),
                }
            }
            Event::Tick => {
                self.on_tick(chain, now_ms, out);
                self.connect_downloaded(chain, now_ms, out)?;
            }
            Event::Continue => self.connect_downloaded(chain, now_ms, out)?,
            Event::Ban(peer) => {
                if let PeerAction::Ban { until_ms } = self.policy.ban(&peer, now_ms) {
                    self.banned(peer, until_ms, "banned by the operator".into(), out);
                }
            }
            Event::Unban(peer) => {
                if self.policy.unban(&peer) {
                    out.push(Action::Unbanned(peer));
                }
            }
        }
        Ok(())
    }

    // ----- requests we serve -----

    fn serve<S: ChainStore>(
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
        };
        out.push(Action::Respond { id, response });
        Ok(())
    }

    // ----- answers to our requests -----

    fn on_response<S: ChainStore>(
        &mut self,
        peer: P,
        id: u64,
        response: SyncResponse,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let Some(request) = self.requests.get(&id) else {
            return Ok(()); // Late: it already timed out.
        };
        if request.peer != peer {
            return Ok(());
        }
        let request = self.requests.remove(&id).expect("just looked up");
        if let Some(info) = self.peers.get_mut(&peer) {
            info.requests_in_flight = info.requests_in_flight.saturating_sub(1);
            info.stalls = 0;
        }
        match (request.pending, response) {
            (Pending::Status, SyncResponse::Status(status)) => {
                self.on_status(peer, status, chain, now_ms, out);
            }
            (Pending::Headers, SyncResponse::Headers(headers)) => {
                self.headers_request = None;
                self.on_headers(peer, headers, chain, now_ms, out)?;
            }
            (Pending::Blocks(requested), SyncResponse::Blocks(blocks)) => {
                if let Err(e) = check_blocks_response(&blocks, &requested) {
                    self.download.unassign(&peer, id, &requested);
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        e.to_string(),
                        out,
                    );
                } else {
                    self.download.receive(&peer, id, &requested, blocks);
                    self.connect_downloaded(chain, now_ms, out)?;
                }
            }
            (pending, _) => {
                if let Pending::Blocks(requested) = &pending {
                    self.download.unassign(&peer, id, requested);
                }
                if matches!(pending, Pending::Headers) {
                    self.headers_request = None;
                }
                self.penalize(
                    &peer,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "answered with the wrong kind of response".into(),
                    out,
                );
            }
        }
        Ok(())
    }

    fn on_status<S: ChainStore>(
        &mut self,
        peer: P,
        status: Status,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        if status.genesis != chain.genesis_hash() {
            self.penalize(
                &peer,
                Misbehavior::WrongChain,
                now_ms,
                "another chain".into(),
                out,
            );
            return;
        }
        if let Some(info) = self.peers.get_mut(&peer) {
            info.exhausted = false;
            info.status = Some(status);
        }
    }

    fn on_headers<S: ChainStore>(
        &mut self,
        peer: P,
        headers: Vec<crate::core::primitives::Header>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if let Err(e) = check_headers_response(&headers, MAX_HEADERS as u32) {
            self.penalize(
                &peer,
                Misbehavior::ProtocolViolation,
                now_ms,
                e.to_string(),
                out,
            );
            return Ok(());
        }
        // Skip what we already have (the answer starts at the fork with our locator).
        let mut start = 0;
        while let Some(header) = headers.get(start) {
            match chain.entry(&header.hash())? {
                Some(entry) if entry.status == BlockStatus::Valid => start += 1,
                Some(_) => {
                    self.penalize(
                        &peer,
                        Misbehavior::InvalidBlock,
                        now_ms,
                        "its best chain holds an invalid block".into(),
                        out,
                    );
                    return Ok(());
                }
                None => break,
            }
        }
        let new = &headers[start..];
        let Some(first) = new.first() else {
            if let Some(info) = self.peers.get_mut(&peer) {
                info.exhausted = true;
            }
            return Ok(());
        };
        for header in new {
            if check_proof_of_work(header).is_err() {
                self.penalize(
                    &peer,
                    Misbehavior::InvalidBlock,
                    now_ms,
                    format!("header {} has bad proof of work", header.hash()),
                    out,
                );
                return Ok(());
            }
        }
        let parent_work = match self.download.last() {
            Some(last) if last.hash == first.prev_hash => last.chain_work,
            _ => match chain.entry(&first.prev_hash)? {
                Some(parent) if parent.status == BlockStatus::Valid => parent.chain_work,
                _ => {
                    self.penalize(
                        &peer,
                        Misbehavior::ProtocolViolation,
                        now_ms,
                        "headers that extend nothing we know".into(),
                        out,
                    );
                    return Ok(());
                }
            },
        };
        if self.download.queue(peer.clone(), new, parent_work).is_err() {
            self.penalize(
                &peer,
                Misbehavior::InvalidBlock,
                now_ms,
                "header with undecodable bits".into(),
                out,
            );
            self.download.reset();
            return Ok(());
        }
        let full = headers.len() >= MAX_HEADERS;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.exhausted = !full;
        }
        Ok(())
    }

    // ----- gossip -----

    fn on_gossip_block<S: ChainStore>(
        &mut self,
        peer: P,
        block: Block,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let hash = block.hash();
        let verdict = |verdict| Action::Verdict {
            hash,
            source: peer.clone(),
            verdict,
        };
        if chain.entry(&hash)?.is_some() || self.orphans.contains(&hash) {
            out.push(verdict(Verdict::Ignore));
            return Ok(());
        }
        if let Err(e) = check_proof_of_work(&block.header) {
            out.push(verdict(Verdict::Reject));
            self.penalize(&peer, Misbehavior::InvalidBlock, now_ms, e.to_string(), out);
            return Ok(());
        }
        if chain.entry(&block.header.prev_hash)?.is_none() {
            out.push(verdict(Verdict::Ignore));
            if let OrphanInsert::Added { .. } =
                self.orphans.insert(block, peer.clone(), now_ms / 1000)
            {
                // The peer has blocks we lack: fetch its headers (if no one else is).
                if let Some(info) = self.peers.get_mut(&peer) {
                    info.exhausted = false;
                }
                if self.headers_request.is_none() {
                    self.ask_headers(&peer, chain, now_ms, out)?;
                }
            }
            return Ok(());
        }
        match self.submit(
            block,
            Some(&peer),
            TipSource::Gossip,
            true,
            chain,
            now_ms,
            out,
        )? {
            Ok(_) => out.push(verdict(Verdict::Accept)),
            Err(e) if e.is_permanent() => out.push(verdict(Verdict::Reject)),
            Err(_) => out.push(verdict(Verdict::Ignore)),
        }
        Ok(())
    }

    /// Submits a block; reports a new tip, connects waiting orphans (unless `orphans` is
    /// false: the caller is already connecting them), penalizes `from` for an invalid block.
    /// Returns the block's own result.
    #[allow(clippy::too_many_arguments)]
    fn submit<S: ChainStore>(
        &mut self,
        block: Block,
        from: Option<&P>,
        source: TipSource,
        orphans: bool,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<Result<BlockOutcome, crate::core::consensus::BlockError>, ChainError> {
        let hash = block.hash();
        match chain.submit_block(block, now_ms / 1000) {
            Ok(outcome) => {
                let stored = !matches!(outcome, BlockOutcome::AlreadyKnown);
                tip_changed(outcome.clone(), source, out);
                if stored && orphans {
                    self.connect_orphans(hash, chain, now_ms, out)?;
                }
                Ok(Ok(outcome))
            }
            Err(SubmitError::Chain(e)) => Err(e),
            Err(SubmitError::Invalid {
                hash: failed,
                error,
            }) => {
                if let (Some(peer), true) = (from, error.is_peer_fault()) {
                    self.penalize(
                        peer,
                        Misbehavior::InvalidBlock,
                        now_ms,
                        format!("sent invalid block {failed}: {error}"),
                        out,
                    );
                }
                Ok(Err(error))
            }
        }
    }

    /// Connects the orphans waiting for `parent` (and theirs, and so on).
    fn connect_orphans<S: ChainStore>(
        &mut self,
        parent: BlockHash,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let mut parents = vec![parent];
        while let Some(parent) = parents.pop() {
            for (child, from) in self.orphans.take_children(&parent) {
                let hash = child.hash();
                let result = self.submit(
                    child,
                    Some(&from),
                    TipSource::Gossip,
                    false,
                    chain,
                    now_ms,
                    out,
                )?;
                if matches!(result, Ok(outcome) if outcome != BlockOutcome::AlreadyKnown) {
                    parents.push(hash);
                }
            }
        }
        Ok(())
    }

    // ----- sync -----

    /// Hands downloaded blocks to the chain, in order, at most `connect_chunk` of them; asks
    /// for [`Event::Continue`] if more are ready.
    fn connect_downloaded<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let mut connected = 0;
        while let Some(front) = self.download.front() {
            if chain.entry(&front)?.is_some() {
                self.download.skip_front();
                continue;
            }
            if connected == self.config.connect_chunk.max(1) {
                if self.download.front_ready() {
                    out.push(Action::Continue);
                }
                break;
            }
            let Some((block, from)) = self.download.pop_ready() else {
                break;
            };
            connected += 1;
            let hash = block.hash();
            if let Err(error) = self.submit(
                block,
                Some(&from),
                TipSource::Sync,
                true,
                chain,
                now_ms,
                out,
            )? {
                let chain_invalid = matches!(
                    chain.entry(&hash)?,
                    Some(BlockIndexEntry {
                        status: BlockStatus::Invalid { .. },
                        ..
                    })
                );
                if chain_invalid {
                    // The branch itself breaks a rule: whoever sent its headers lied.
                    if let Some(source) = self.download.source().cloned() {
                        self.penalize(
                            &source,
                            Misbehavior::InvalidBlock,
                            now_ms,
                            format!("announced an invalid chain at {hash}: {error}"),
                            out,
                        );
                    }
                }
                // Start over from fresh headers, after the source's next status (a block
                // from the future, say, will not be valid again before then).
                self.reset_download();
                break;
            }
        }
        Ok(())
    }

    /// Sends the requests sync needs now.
    fn schedule<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        let our_work = chain.tip().chain_work;
        // Headers: from the peer with the most work beyond what we have or queued.
        let queued_work = self.download.last().map_or(our_work, |w| w.chain_work);
        let low_queue = self.download.len() < self.config.download_window;
        if self.headers_request.is_none() && low_queue {
            let best = self
                .peers
                .iter()
                .filter(|(_, info)| !info.exhausted)
                .filter_map(|(p, info)| info.status.as_ref().map(|s| (p, s.chain_work)))
                .filter(|(_, work)| *work > queued_work)
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                .map(|(p, _)| p.clone());
            if let Some(peer) = best {
                self.ask_headers(&peer, chain, now_ms, out)?;
            }
        }
        if self.download.is_empty() {
            return Ok(());
        }
        // Blocks: round-robin over the peers that may have them.
        let useful: Vec<P> = self
            .peers
            .iter()
            .filter(|(p, info)| {
                Some(*p) == self.download.source()
                    || info
                        .status
                        .as_ref()
                        .is_some_and(|s| s.chain_work > our_work)
            })
            .map(|(p, _)| p.clone())
            .collect();
        if self.download.is_stuck(useful.iter()) {
            if let Some(source) = self.download.source().cloned() {
                self.penalize(
                    &source,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "announced blocks no one delivers".into(),
                    out,
                );
            }
            self.reset_download();
            return Ok(());
        }
        if useful.is_empty() {
            return Ok(());
        }
        self.rotation = self.rotation.wrapping_add(1);
        let start = (self.rotation as usize) % useful.len();
        let mut progress = true;
        while progress {
            progress = false;
            for i in 0..useful.len() {
                let peer = &useful[(start + i) % useful.len()];
                let full = self.download.buffered_bytes() >= self.config.max_download_bytes;
                if full || !self.may_request(peer, now_ms) {
                    continue;
                }
                let id = self.next_id;
                let batch =
                    self.download
                        .next_batch(peer, id, self.config.download_window, MAX_BLOCKS);
                if batch.is_empty() {
                    continue;
                }
                self.send(
                    peer.clone(),
                    SyncRequest::GetBlocks {
                        hashes: batch.clone(),
                    },
                    Pending::Blocks(batch),
                    now_ms,
                    out,
                );
                progress = true;
            }
        }
        Ok(())
    }

    /// Drops the download queue; its source is not asked for headers again until its next
    /// status.
    fn reset_download(&mut self) {
        if let Some(source) = self.download.source() {
            if let Some(info) = self.peers.get_mut(source) {
                info.exhausted = true;
            }
        }
        self.download.reset();
    }

    fn ask_headers<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<(), ChainError> {
        if !self.may_request(peer, now_ms) {
            return Ok(());
        }
        let mut locator = chain.locator()?;
        if let Some(last) = self.download.last() {
            // Continue after the queue: its end first, then our chain (minus the tip, to
            // stay within the limit).
            locator[0] = last.hash;
        }
        locator.truncate(MAX_LOCATOR_HASHES);
        let id = self.send(
            peer.clone(),
            SyncRequest::GetHeaders {
                locator,
                max: MAX_HEADERS as u32,
            },
            Pending::Headers,
            now_ms,
            out,
        );
        self.headers_request = Some(id);
        Ok(())
    }

    fn ask_status<S: ChainStore>(
        &mut self,
        peer: &P,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        if let Some(info) = self.peers.get_mut(peer) {
            info.status_asked_ms = now_ms;
        }
        self.send(
            peer.clone(),
            SyncRequest::Status(Self::status(chain)),
            Pending::Status,
            now_ms,
            out,
        );
    }

    /// Whether `peer` has a free request slot and budget (charging the budget if so).
    fn may_request(&mut self, peer: &P, now_ms: u64) -> bool {
        let per_sec = u64::from(self.config.outbound_requests_per_sec);
        let max_in_flight = self.config.max_requests_per_peer;
        let Some(info) = self.peers.get_mut(peer) else {
            return false;
        };
        if info.requests_in_flight >= max_in_flight {
            return false;
        }
        let elapsed = now_ms.saturating_sub(info.budget_ms);
        info.budget_milli = info
            .budget_milli
            .saturating_add(elapsed.saturating_mul(per_sec))
            .min(per_sec * 1000);
        info.budget_ms = info.budget_ms.max(now_ms);
        if info.budget_milli >= 1000 {
            info.budget_milli -= 1000;
            true
        } else {
            false
        }
    }

    fn send(
        &mut self,
        peer: P,
        request: SyncRequest,
        pending: Pending,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.requests_in_flight += 1;
        }
        self.requests.insert(
            id,
            Outstanding {
                peer: peer.clone(),
                deadline_ms: now_ms.saturating_add(self.config.request_timeout_ms),
                pending,
            },
        );
        out.push(Action::Request { peer, id, request });
        id
    }

    /// A request that failed or timed out: its blocks go back to the queue.
    fn give_back(&mut self, id: u64, request: Outstanding<P>) {
        if let Some(info) = self.peers.get_mut(&request.peer) {
            info.requests_in_flight = info.requests_in_flight.saturating_sub(1);
        }
        match request.pending {
            Pending::Blocks(hashes) => self.download.unassign(&request.peer, id, &hashes),
            Pending::Headers => {
                self.headers_request = None;
                if let Some(info) = self.peers.get_mut(&request.peer) {
                    info.exhausted = true;
                }
            }
            Pending::Status => {}
        }
    }

    // ----- time -----

    fn on_tick<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let expired: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(request) = self.requests.remove(&id) else {
                continue;
            };
            let peer = request.peer.clone();
            self.give_back(id, request);
            if let Some(info) = self.peers.get_mut(&peer) {
                info.stalls += 1;
                if info.stalls >= self.config.max_stalls {
                    out.push(Action::Disconnect(peer.clone()));
                    self.drop_peer(&peer);
                }
            }
        }
        let due: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, info)| {
                now_ms.saturating_sub(info.status_asked_ms) >= self.config.status_interval_ms
            })
            .map(|(p, _)| p.clone())
            .collect();
        for peer in due {
            self.ask_status(&peer, chain, now_ms, out);
        }
        self.orphans.expire(now_ms / 1000);
        for peer in self.policy.expire_bans(now_ms) {
            out.push(Action::Unbanned(peer));
        }
        self.report_progress(chain, now_ms, out);
    }

    fn report_progress<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let elapsed_ms = now_ms.saturating_sub(self.progress.at_ms);
        if elapsed_ms < self.config.progress_interval_ms {
            return;
        }
        let height = chain.tip().height();
        let target_height = self
            .peers
            .values()
            .filter_map(|info| info.status.as_ref().map(|s| s.height))
            .chain(self.download.last().map(|w| w.header.height))
            .max()
            .unwrap_or(height);
        let behind = self.is_syncing() && target_height > height;
        if behind && self.progress.at_ms != 0 {
            let done = height.saturating_sub(self.progress.height);
            let blocks_per_sec = f64::from(done) * 1000.0 / elapsed_ms as f64;
            let left = f64::from(target_height - height);
            let eta_secs = (blocks_per_sec > 0.0).then(|| (left / blocks_per_sec).ceil() as u64);
            out.push(Action::Progress {
                height,
                target_height,
                blocks_per_sec,
                eta_secs,
            });
        }
        self.progress = ProgressMark {
            at_ms: now_ms,
            height,
        };
    }

    // ----- penalties -----

    fn penalize(
        &mut self,
        peer: &P,
        fault: Misbehavior,
        now_ms: u64,
        reason: String,
        out: &mut Vec<Action<P>>,
    ) {
        let action = self.policy.on_misbehavior(peer, fault, now_ms);
        self.apply_policy(peer.clone(), action, reason, out);
    }

    fn apply_policy(
        &mut self,
        peer: P,
        action: PeerAction,
        reason: String,
        out: &mut Vec<Action<P>>,
    ) {
        match action {
            PeerAction::None => {}
            PeerAction::Disconnect => {
                out.push(Action::Disconnect(peer.clone()));
                self.drop_peer(&peer);
            }
            PeerAction::Ban { until_ms } => self.banned(peer, until_ms, reason, out),
        }
    }

    fn banned(&mut self, peer: P, until_ms: u64, reason: String, out: &mut Vec<Action<P>>) {
        self.orphans.remove_from_peer(&peer);
        self.drop_peer(&peer);
        out.push(Action::Ban {
            peer,
            until_ms,
            reason,
        });
    }

    fn drop_peer(&mut self, peer: &P) {
        self.peers.remove(peer);
        self.policy.forget(peer);
        let theirs: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(id, _)| *id)
            .collect();
        for id in theirs {
            if let Some(request) = self.requests.remove(&id) {
                self.give_back(id, request);
            }
        }
        if self.download.source() == Some(peer) && self.download.buffered_bytes() == 0 {
            // Its headers may be all that names these blocks; others will be asked anew.
            self.download.reset();
        }
    }
}

/// Reports a new tip, if `outcome` moved the best chain.
fn tip_changed<P>(outcome: BlockOutcome, source: TipSource, out: &mut Vec<Action<P>>) {
    match outcome {
        BlockOutcome::Extended { tip } => out.push(Action::TipChanged {
            tip,
            reorg: None,
            source,
        }),
        BlockOutcome::Reorganized {
            tip,
            fork_height,
            disconnected,
            connected,
        } => out.push(Action::TipChanged {
            tip,
            reorg: Some(Reorg {
                fork_height,
                disconnected,
                connected,
            }),
            source,
        }),
        BlockOutcome::SideBranch | BlockOutcome::AlreadyKnown => {}
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
