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
//!   gossip block ──► known? Ignore ── parent unknown? orphan pool (if its work is near the
//!                    tip's) + GetHeaders ── else submit, unsolicited: stored only if its
//!                    branch's work reaches the tip's
//!                    └─ now on the best chain: Accept (gossipsub forwards)
//!                       side branch, low work: Ignore      invalid: Reject + penalty
//! ```
//! Headers come first: a peer's header chain is checked against every stateless rule
//! (`headers`), held in memory, and its blocks are fetched only once its work exceeds the
//! tip's. Stalls are timeouts: the request's blocks go to another peer, a peer that stalls
//! again and again is disconnected, and so is one whose request holds up a full download
//! window while others deliver. Lies are penalties (see `peers`), and only for what the peer
//! could have checked itself:
//!
//! - a gossiped block is relayed only after it joined this node's best chain, so its relayer
//!   vouches for all of it: any consensus fault is the relayer's;
//! - a block fetched by sync comes from a peer that may merely have stored it (a side
//!   branch it never validated in full): the provider answers only for what the block shows
//!   on its own (its merkle root, limits, signatures: [`BlockError::is_intrinsic`]); the
//!   peer whose headers announced the branch as its best answers for everything else.
//!
//! # Invariants
//! - Only blocks of a branch with more header work than the tip are requested.
//! - A block is answered `Accept` only if it is on the best chain after it was submitted.
use super::download::Download;
use super::headers::check_header_chain;
use super::locator::MAX_LOCATOR_HASHES;
use super::messages::{
    check_blocks_response, check_headers_response, Status, SyncRequest, SyncResponse, MAX_BLOCKS,
    MAX_HEADERS,
};
use super::orphans::{OrphanInsert, OrphanPool, OrphanPoolConfig};
use super::peers::{Misbehavior, PeerAction, PeerPolicy, PeerPolicyConfig, TokenBucket};
use crate::core::chain::manager::{BlockOutcome, ChainManager, ChainStore, SubmitError};
use crate::core::chain::{child_context, BlockIndexEntry, BlockStatus, ChainError};
use crate::core::consensus::target::Work;
use crate::core::consensus::validation::check_proof_of_work;
use crate::core::consensus::{BlockError, Target};
use crate::core::mempool::MempoolError;
use crate::core::primitives::{Block, BlockHash, Txid};
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
    /// Most headers held in memory for a branch whose work does not yet exceed the tip's
    /// (a deeper fork is dropped).
    pub max_queued_headers: usize,
    /// A block request that holds up a full download window this long, while other peers
    /// deliver, gets its peer disconnected (doubling after each such stall, up to
    /// `max_block_stall_ms`).
    pub block_stall_ms: u64,
    /// The most `block_stall_ms` grows to.
    pub max_block_stall_ms: u64,
    /// An orphan's own target may be at most this many times easier than the one the tip's
    /// child needs, or it is not held.
    pub orphan_max_easier: u32,
    /// Useless unsolicited blocks (too little work to hold) a peer may send in a burst; one
    /// more is forgiven every `junk_refill_ms`; beyond, the peer is disconnected (no score).
    pub junk_burst: u32,
    /// See `junk_burst`.
    pub junk_refill_ms: u64,
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
            max_queued_headers: 100_000,
            block_stall_ms: 5_000,
            max_block_stall_ms: 60_000,
            orphan_max_easier: 16,
            junk_burst: 16,
            junk_refill_ms: 10_000,
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
    /// A transfer arrived by gossip and went through the mempool's admission; answer with
    /// [`Action::TransferVerdict`].
    GossipTransfer {
        /// The peer that forwarded it.
        peer: P,
        /// The transfer.
        txid: Txid,
        /// What admission said.
        admission: Result<(), MempoolError>,
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
    /// Tell gossipsub what to do with the gossiped transfer `txid` from `source`.
    TransferVerdict {
        /// The transfer (the gossip message id).
        txid: Txid,
        /// The peer it came from.
        source: P,
        /// Forward, reject or ignore.
        verdict: Verdict,
    },
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
    /// Outbound request budget.
    budget: TokenBucket,
    /// Useless unsolicited blocks still forgiven.
    junk: TokenBucket,
}

#[derive(Clone, Debug)]
enum Pending {
    Status,
    /// Headers, asked when the peer's last status claimed this much chain work (its chain
    /// work never falls, so the headers it answers with must show at least as much).
    Headers {
        claimed: Option<Work>,
        /// The most work of any block in our locator: an honest peer that answers with no
        /// headers has its tip on the locator, so no more work than this.
        asked_from: Work,
    },
    Blocks(Vec<BlockHash>),
}

#[derive(Clone, Debug)]
struct Outstanding<P> {
    peer: P,
    sent_ms: u64,
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
    /// The current block-stall allowance (see [`ProtocolConfig::block_stall_ms`]).
    block_stall_ms: u64,
    /// Blocks are not taken in (the store cannot write): see [`Protocol::pause_blocks`].
    blocks_paused: bool,
}

/// Who answers for a block that turns out invalid.
#[derive(Clone, Copy, Debug)]
enum Blame<'a, P> {
    /// Nobody: mined here.
    Nobody,
    /// The peer that gossiped it, which relays only what joined its own best chain.
    Relayer(&'a P),
    /// Sync: the peer that served the body, and the peer whose headers announced the branch.
    Sync {
        provider: &'a P,
        announcer: Option<&'a P>,
    },
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
            block_stall_ms: config.block_stall_ms,
            blocks_paused: false,
        }
    }

    /// Stops (`true`) or resumes taking in blocks, for a shell whose store cannot write (a
    /// full disk): while paused no block is requested, those of responses already on their
    /// way wait in the download buffer (bounded as ever), a gossiped one is ignored (neither
    /// relayed nor blamed) and a mined one is reported stale. Headers, statuses and requests
    /// from peers go on. After resuming, feed [`Event::Continue`] so that blocks already
    /// downloaded are connected.
    pub fn pause_blocks(&mut self, paused: bool) {
        self.blocks_paused = paused;
    }

    /// While blocks are paused, the events that would write one: handled here (returns
    /// `None`), others returned to go their usual way.
    fn hold_back_blocks(&mut self, event: Event<P>, out: &mut Vec<Action<P>>) -> Option<Event<P>> {
        if !self.blocks_paused {
            return Some(event);
        }
        match event {
            Event::GossipBlock { peer, block } => out.push(Action::Verdict {
                hash: block.hash(),
                source: peer,
                verdict: Verdict::Ignore,
            }),
            Event::Mined(block) => out.push(Action::MinedStale {
                hash: block.hash(),
                reason: "blocks are paused: the store cannot write".into(),
            }),
            other => return Some(other),
        }
        None
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
        let Some(event) = self.hold_back_blocks(event, &mut out) else {
            return out;
        };
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
        if let Some(refusal) = self.refuse_banned(&event, now_ms) {
            out.extend(refusal);
            return Ok(());
        }
        match event {
            Event::PeerConnected(peer) => {
                if self.policy.is_banned(&peer, now_ms) {
                    out.push(Action::Disconnect(peer));
                } else {
                    self.peers.insert(
                        peer.clone(),
                        PeerInfo {
                            budget: TokenBucket::full(
                                self.config.outbound_requests_per_sec,
                                now_ms,
                            ),
                            junk: TokenBucket::full(self.config.junk_burst, now_ms),
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
            Event::GossipTransfer {
                peer,
                txid,
                admission,
            } => self.on_gossip_transfer(peer, txid, admission, now_ms, out),
            Event::Misbehaved { peer, fault } => {
                self.penalize(&peer, fault, now_ms, format!("{fault:?}"), out)
            }
            Event::Mined(block) => {
                let hash = block.hash();
                let copy = block.clone();
                match self.submit(
                    block,
                    Blame::Nobody,
                    TipSource::Mined,
                    true,
                    chain,
                    now_ms,
                    out,
                )? {
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

    /// What to do with an event from a banned peer that the shell let through (a message
    /// already in flight when the ban fell): nothing but the answer gossipsub or the
    /// request needs. `None` for events that are not from a banned peer.
    fn refuse_banned(&self, event: &Event<P>, now_ms: u64) -> Option<Vec<Action<P>>> {
        let banned = |peer: &P| self.policy.is_banned(peer, now_ms);
        match event {
            Event::GossipBlock { peer, block } if banned(peer) => Some(vec![Action::Verdict {
                hash: block.hash(),
                source: peer.clone(),
                verdict: Verdict::Ignore,
            }]),
            Event::GossipTransfer { peer, txid, .. } if banned(peer) => {
                Some(vec![Action::TransferVerdict {
                    txid: *txid,
                    source: peer.clone(),
                    verdict: Verdict::Ignore,
                }])
            }
            Event::Request { peer, id, .. } if banned(peer) => {
                Some(vec![Action::Refuse { id: *id }])
            }
            Event::Response { peer, .. } | Event::Misbehaved { peer, .. } if banned(peer) => {
                Some(Vec::new())
            }
            _ => None,
        }
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
            (
                Pending::Headers {
                    claimed,
                    asked_from,
                },
                SyncResponse::Headers(headers),
            ) => {
                self.headers_request = None;
                self.on_headers(peer, headers, (claimed, asked_from), chain, now_ms, out)?;
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
                if matches!(pending, Pending::Headers { .. }) {
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
        (claimed, asked_from): (Option<Work>, Work),
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
            // (Headers already queued are not skipped: an answer that starts inside the
            // queue is another branch from our tip, and replaces the queue.)
            let hash = header.hash();
            match chain.entry(&hash)? {
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
        let full = headers.len() >= MAX_HEADERS;
        let new = &headers[start..];
        let Some(first) = new.first() else {
            if let Some(info) = self.peers.get_mut(&peer) {
                info.exhausted = true;
            }
            if !full {
                // The peer's chain ends at a block we know: its last header, or (nothing
                // sent) the first hash of our locator, by the protocol.
                let shown = match headers.last() {
                    None => Some(asked_from),
                    Some(last) => match self.download.entry(&last.hash()) {
                        Some(entry) => Some(entry.chain_work),
                        None => chain.entry(&last.hash())?.map(|e| e.chain_work),
                    },
                };
                if let Some(shown) = shown {
                    self.check_claimed_work(&peer, claimed, shown, now_ms, out);
                }
            }
            return Ok(());
        };
        let parent = match self.download.last() {
            Some(last) if last.hash == first.prev_hash => last.entry.clone(),
            _ => match chain.entry(&first.prev_hash)? {
                Some(parent) if parent.status == BlockStatus::Valid => parent,
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
        let checked = match check_header_chain(
            chain.store(),
            &self.download,
            parent,
            new,
            chain.spec(),
            now_ms / 1000,
        )? {
            Ok(checked) => checked,
            Err(invalid) => {
                self.penalize(
                    &peer,
                    Misbehavior::InvalidBlock,
                    now_ms,
                    format!("header {} breaks a rule: {}", invalid.hash, invalid.error),
                    out,
                );
                if self.download.source() == Some(&peer) {
                    self.download.reset();
                }
                return Ok(());
            }
        };
        let held = checked.held_at.is_some();
        self.download.queue(peer.clone(), checked.wanted);
        // A full answer without a header from the future: the peer has more to send.
        let more = full && !held;
        if let Some(info) = self.peers.get_mut(&peer) {
            info.exhausted = !more;
        }
        let Some(shown) = self.download.last().map(|w| w.entry.chain_work) else {
            return Ok(());
        };
        if !more && !held && !self.check_claimed_work(&peer, claimed, shown, now_ms, out) {
            return Ok(());
        }
        let tip_work = chain.tip().chain_work;
        let too_long = self.download.len() >= self.config.max_queued_headers;
        if shown <= tip_work && (!more || too_long) {
            // The whole branch is here (or as much as we hold) and it is not heavier than
            // our tip: nothing to fetch, nothing was written.
            self.reset_download();
        }
        Ok(())
    }

    /// At the end of `peer`'s header chain, whose work is `shown`: a peer whose status
    /// claimed more work than its own headers add up to lied (it knows its chain). Returns
    /// whether the claim held.
    fn check_claimed_work(
        &mut self,
        peer: &P,
        claimed: Option<Work>,
        shown: Work,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> bool {
        match claimed {
            Some(claimed) if claimed > shown => {
                if self.download.source() == Some(peer) {
                    self.download.reset();
                }
                if let Some(info) = self.peers.get_mut(peer) {
                    // Not useful until its next status.
                    info.status = None;
                }
                self.penalize(
                    peer,
                    Misbehavior::ProtocolViolation,
                    now_ms,
                    "its status claimed more chain work than its headers show".into(),
                    out,
                );
                false
            }
            _ => true,
        }
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
            if !self.orphan_has_enough_work(&block, chain)? {
                // Far easier than anything near our tip: a cheap header, or a branch with
                // much less hash power. Not held, not asked about; a flood costs a connection.
                self.note_junk(&peer, now_ms, out);
                return Ok(());
            }
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
            Blame::Relayer(&peer),
            TipSource::Gossip,
            true,
            chain,
            now_ms,
            out,
        )? {
            // On the best chain now: vouched for, so forwarded.
            Ok(BlockOutcome::Extended { .. } | BlockOutcome::Reorganized { .. }) => {
                out.push(verdict(Verdict::Accept))
            }
            Ok(BlockOutcome::LowWork) => {
                out.push(verdict(Verdict::Ignore));
                self.note_junk(&peer, now_ms, out);
            }
            // A side branch (stored, not validated against state) or a duplicate: not
            // forwarded, no fault.
            Ok(BlockOutcome::SideBranch | BlockOutcome::AlreadyKnown) => {
                out.push(verdict(Verdict::Ignore))
            }
            Err(e) if e.is_permanent() => out.push(verdict(Verdict::Reject)),
            Err(_) => out.push(verdict(Verdict::Ignore)),
        }
        Ok(())
    }

    /// Whether an orphan's own proof of work is near what the tip's child needs: its target
    /// at most `orphan_max_easier` times the tip's next target. An honest orphan is a block
    /// a little ahead of our tip; ASERT moves the target by a bounded factor per block.
    fn orphan_has_enough_work<S: ChainStore>(
        &self,
        block: &Block,
        chain: &ChainManager<S>,
    ) -> Result<bool, ChainError> {
        let next = child_context(chain.store(), chain.tip(), chain.spec())?.expected_bits;
        let (Ok(ours), Ok(theirs)) = (
            Target::from_compact(next),
            Target::from_compact(block.header.bits),
        ) else {
            return Ok(false);
        };
        let allowance = ours
            .as_u256()
            .saturating_mul(ruint::aliases::U256::from(self.config.orphan_max_easier));
        Ok(theirs.as_u256() <= allowance)
    }

    /// Counts a useless unsolicited block from `peer`; past its allowance the peer is
    /// disconnected. No score: an honest node on a weaker branch sends such blocks too.
    fn note_junk(&mut self, peer: &P, now_ms: u64, out: &mut Vec<Action<P>>) {
        let burst = self.config.junk_burst;
        // One token every `junk_refill_ms`: 10^6 / refill_ms thousandths a second.
        let per_sec_milli = 1_000_000 / self.config.junk_refill_ms.max(1);
        let Some(info) = self.peers.get_mut(peer) else {
            return;
        };
        if !info.junk.take(now_ms, per_sec_milli, burst) {
            out.push(Action::Disconnect(peer.clone()));
            self.drop_peer(peer);
        }
    }

    fn on_gossip_transfer(
        &mut self,
        peer: P,
        txid: Txid,
        admission: Result<(), MempoolError>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let verdict = match &admission {
            Ok(()) => Verdict::Accept,
            // What no honest node relays: the relayer could have checked it.
            Err(e) if e.is_peer_fault() => Verdict::Reject,
            // Races (a nonce just used, a balance just spent), duplicates and policy (fee
            // floor, full pool) are nobody's fault: not forwarded, not punished.
            Err(_) => Verdict::Ignore,
        };
        out.push(Action::TransferVerdict {
            txid,
            source: peer.clone(),
            verdict,
        });
        if let (Verdict::Reject, Err(e)) = (verdict, admission) {
            self.penalize(
                &peer,
                Misbehavior::InvalidTransfer,
                now_ms,
                format!("relayed invalid transfer {txid}: {e}"),
                out,
            );
        }
    }

    /// Submits a block; reports a new tip, connects waiting orphans (unless `orphans` is
    /// false: the caller is already connecting them), penalizes whoever `blame` names for an
    /// invalid block. A relayed block is unsolicited (a low-work side branch is not stored);
    /// a mined or synced one is stored on any branch. Returns the block's own result.
    #[allow(clippy::too_many_arguments)]
    fn submit<S: ChainStore>(
        &mut self,
        block: Block,
        blame: Blame<'_, P>,
        source: TipSource,
        orphans: bool,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) -> Result<Result<BlockOutcome, BlockError>, ChainError> {
        let hash = block.hash();
        let now = now_ms / 1000;
        let result = match blame {
            Blame::Relayer(_) => chain.submit_unsolicited_block(block, now),
            Blame::Nobody | Blame::Sync { .. } => chain.submit_block(block, now),
        };
        match result {
            Ok(outcome) => {
                let stored = !matches!(outcome, BlockOutcome::AlreadyKnown | BlockOutcome::LowWork);
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
                let reason = format!("invalid block {failed}: {error}");
                for peer in blamed(blame, &error) {
                    self.penalize(
                        &peer,
                        Misbehavior::InvalidBlock,
                        now_ms,
                        reason.clone(),
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
                    Blame::Relayer(&from),
                    TipSource::Gossip,
                    false,
                    chain,
                    now_ms,
                    out,
                )?;
                if matches!(
                    result,
                    Ok(outcome) if !matches!(outcome, BlockOutcome::AlreadyKnown | BlockOutcome::LowWork)
                ) {
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
        if self.blocks_paused {
            return Ok(());
        }
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
            let announcer = self.download.source().cloned();
            let blame = Blame::Sync {
                provider: &from,
                announcer: announcer.as_ref(),
            };
            if self
                .submit(block, blame, TipSource::Sync, true, chain, now_ms, out)?
                .is_err()
            {
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
        // Headers: from the peer with the most work beyond what we have or queued. While the
        // queued branch is not yet heavier than our tip, more of its headers are needed
        // before any block is fetched (up to `max_queued_headers`).
        let queued_work = self
            .download
            .last()
            .map_or(our_work, |w| w.entry.chain_work);
        let heavier = queued_work > our_work;
        let low_queue = self.download.len() < self.config.download_window
            || (!heavier && self.download.len() < self.config.max_queued_headers);
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
            self.block_stall_ms = self.config.block_stall_ms;
            return Ok(());
        }
        let source_done = self
            .download
            .source()
            .is_none_or(|s| self.peers.get(s).is_none_or(|info| info.exhausted));
        if !heavier && self.headers_request.is_none() && source_done {
            // The queue fell behind our tip (we moved on by other means) and its source has
            // nothing more: it will never be worth fetching.
            self.download.reset();
            return Ok(());
        }
        if !heavier || self.blocks_paused {
            // Headers first: no block of a branch that does not beat our tip (nor while
            // blocks are paused).
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
        if useful.is_empty() {
            if self
                .download
                .source()
                .is_none_or(|s| !self.peers.contains_key(s))
            {
                // Nobody left to ask: forget the branch; a later peer announces it anew.
                self.download.reset();
            }
            return Ok(());
        }
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
        // An honest peer with nothing after our locator has its tip on it: no more work
        // than the heaviest of its entries (the queue's end, or our best chain).
        let asked_from = self.download.last().map_or(chain.tip().chain_work, |last| {
            last.entry.chain_work.max(chain.tip().chain_work)
        });
        if let Some(last) = self.download.last() {
            // Continue after the queue: its end first, then our chain (minus the tip, to
            // stay within the limit).
            locator[0] = last.hash;
        }
        locator.truncate(MAX_LOCATOR_HASHES);
        let claimed = self
            .peers
            .get(peer)
            .and_then(|info| info.status.as_ref())
            .map(|status| status.chain_work);
        let id = self.send(
            peer.clone(),
            SyncRequest::GetHeaders {
                locator,
                max: MAX_HEADERS as u32,
            },
            Pending::Headers {
                claimed,
                asked_from,
            },
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
        let per_sec = self.config.outbound_requests_per_sec;
        let max_in_flight = self.config.max_requests_per_peer;
        let Some(info) = self.peers.get_mut(peer) else {
            return false;
        };
        if info.requests_in_flight >= max_in_flight {
            return false;
        }
        info.budget.take(now_ms, u64::from(per_sec) * 1000, per_sec)
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
                sent_ms: now_ms,
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
            Pending::Headers { .. } => {
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
        self.disconnect_window_staller(chain, now_ms, out);
        self.orphans.expire(now_ms / 1000);
        for peer in self.policy.expire_bans(now_ms) {
            out.push(Action::Unbanned(peer));
        }
        self.policy.expire_records(now_ms);
        self.report_progress(chain, now_ms, out);
    }

    /// A peer whose request for the next block to connect has waited `block_stall_ms` while
    /// the download window is full holds every other peer up (a slow liar, or a slow link):
    /// it is disconnected and its blocks go to the others, as Bitcoin Core does. Each such
    /// stall doubles the allowance (up to `max_block_stall_ms`), so a network that is slow
    /// everywhere does not lose all its peers; it returns to the base when sync is done.
    fn disconnect_window_staller<S: ChainStore>(
        &mut self,
        chain: &ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Action<P>>,
    ) {
        let Some(id) = self.download.front_request() else {
            return;
        };
        let Some(request) = self.requests.get(&id) else {
            return;
        };
        let window_full = self
            .download
            .unassigned_in_window(self.config.download_window)
            == 0
            || self.download.buffered_bytes() >= self.config.max_download_bytes;
        let waited = now_ms.saturating_sub(request.sent_ms);
        let our_work = chain.tip().chain_work;
        let staller = request.peer.clone();
        let others = self.peers.iter().any(|(p, info)| {
            *p != staller
                && info
                    .status
                    .as_ref()
                    .is_some_and(|s| s.chain_work > our_work)
        });
        if window_full && others && waited >= self.block_stall_ms {
            out.push(Action::Disconnect(staller.clone()));
            self.drop_peer(&staller);
            self.block_stall_ms = self
                .block_stall_ms
                .saturating_mul(2)
                .min(self.config.max_block_stall_ms);
        }
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
            .chain(self.download.last().map(|w| w.entry.height()))
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
        // The peer's score stays (see `peers`): reconnecting does not wipe it.
        self.peers.remove(peer);
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
        // The queue stays even if its source leaves: its headers were checked here, and the
        // source still answers (its score outlives the connection) for the branch it
        // announced. `schedule` drops the queue when no connected peer can serve it.
    }
}

/// The peers to penalise for a block that failed with `error`, given who sent it. See the
/// module documentation for the rule and its reason.
fn blamed<P: Clone + PartialEq>(blame: Blame<'_, P>, error: &BlockError) -> Vec<P> {
    if !error.is_peer_fault() {
        return Vec::new();
    }
    match blame {
        Blame::Nobody => Vec::new(),
        Blame::Relayer(peer) => vec![peer.clone()],
        Blame::Sync {
            provider,
            announcer,
        } => {
            let mut peers = Vec::new();
            if error.is_intrinsic() {
                peers.push(provider.clone());
            }
            // A body that does not match its header is the provider's alone; anything else
            // is in the block the announcer's best chain holds.
            if !matches!(error, BlockError::BadMerkleRoot { .. }) {
                if let Some(announcer) = announcer {
                    if !peers.contains(announcer) {
                        peers.push(announcer.clone());
                    }
                }
            }
            peers
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
        BlockOutcome::SideBranch | BlockOutcome::AlreadyKnown | BlockOutcome::LowWork => {}
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
