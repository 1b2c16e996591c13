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
use super::compact::PartialBlock;
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
use crate::core::primitives::{Block, BlockHash, Header, Txid};
use std::collections::BTreeMap;

mod backfill;
mod config;
mod events;
mod gossip;
mod penalties;
mod relay;
mod serve;
mod snapshot;
mod sync;
mod timers;
pub use config::ProtocolConfig;
pub use events::{Action, Event, Reorg, TipSource, Verdict};
pub use relay::MAX_RELAYS_IN_FLIGHT;
pub use snapshot::SnapshotConfig;

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
    /// Headers, and what was asked (to judge the answer by).
    Headers(sync::HeadersAsked),
    Blocks(Vec<BlockHash>),
    /// Transfers or a whole block for a gossiped compact block (`relay`).
    Relay(relay::RelayRequest),
    /// State-tree pages for snapshot sync (which ones is in the fetch, under the request's
    /// id).
    StatePages,
    /// Blocks below a snapshot, fetched in the background (`backfill`: which ones is in it,
    /// under the request's id).
    OldBlocks,
}

#[derive(Clone, Debug)]
struct Outstanding<P> {
    peer: P,
    sent_ms: u64,
    deadline_ms: u64,
    pending: Pending,
}

/// Where sync was at the last progress report.
#[derive(Clone, Copy, Debug, Default)]
struct ProgressMark {
    at_ms: u64,
    height: u32,
    /// State pages fetched, while snapshot sync fetches state.
    pages: u64,
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
    /// Snapshot sync's phase (`snapshot`).
    snapshot: snapshot::SnapshotPhase<P>,
    /// The background fetch of the blocks below a snapshot (`backfill`).
    backfill: backfill::BackfillPhase<P>,
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
            snapshot: if config.snapshot.is_some() {
                snapshot::SnapshotPhase::Headers
            } else {
                snapshot::SnapshotPhase::Off
            },
            backfill: backfill::BackfillPhase::Unknown,
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
        if let Some((hash, peer)) = event.gossiped_block() {
            out.push(block_verdict(hash, peer, Verdict::Ignore));
            return None;
        }
        match event {
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

    /// The connected peers whose last status is `wanted` (those that may serve a request).
    fn peers_whose_status(&self, wanted: impl Fn(&Status) -> bool) -> Vec<P> {
        self.peers
            .iter()
            .filter(|(_, info)| info.status.as_ref().is_some_and(&wanted))
            .map(|(peer, _)| peer.clone())
            .collect()
    }

    /// Current bans (peer, end in ms).
    pub fn bans(&self) -> impl Iterator<Item = (&P, u64)> {
        self.policy.bans()
    }

    /// The answer to a transfer gossiped by `peer` if `peer` is banned at `now_ms` (ignored,
    /// unchecked: a banned peer costs us no verification); `None` if it is not banned.
    pub fn refuse_banned_transfer(&self, peer: &P, txid: Txid, now_ms: u64) -> Option<Action<P>> {
        self.policy
            .is_banned(peer, now_ms)
            .then(|| Action::TransferVerdict {
                txid,
                source: peer.clone(),
                verdict: Verdict::Ignore,
            })
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

    /// Whether snapshot sync is collecting headers or fetching state.
    pub fn is_fetching_snapshot(&self) -> bool {
        !matches!(self.snapshot, snapshot::SnapshotPhase::Off)
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
            out.push(Action::StoreFailed(e));
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
                            // A new connection may fill its request slots at once, not
                            // spend a second's worth: the peer's limit on us outlives the
                            // connection (a restarted or reconnecting node would otherwise
                            // arrive with a full burst each time and be banned for a flood).
                            budget: TokenBucket::with_tokens(
                                self.config.max_requests_per_peer as u32,
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
                        if let Some(relay) = self.give_back(id, request) {
                            self.on_relay_failed(peer, relay, chain, now_ms, out)?;
                        }
                    }
                }
            }
            Event::GossipBlock { peer, block } => {
                self.on_gossip_block(peer, block, chain, now_ms, out)?
            }
            Event::GossipCompact { peer, partial } => {
                self.on_gossip_compact(peer, partial, chain, now_ms, out)?
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
                for (peer, relay) in self.on_tick(chain, now_ms, out) {
                    self.on_relay_failed(peer, relay, chain, now_ms, out)?;
                }
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
        if let Some((hash, peer)) = event.gossiped_block() {
            return banned(peer).then(|| vec![block_verdict(hash, peer, Verdict::Ignore)]);
        }
        match event {
            Event::GossipTransfer { peer, txid, .. } => self
                .refuse_banned_transfer(peer, *txid, now_ms)
                .map(|refusal| vec![refusal]),
            Event::Request { peer, id, .. } if banned(peer) => {
                Some(vec![Action::Refuse { id: *id }])
            }
            Event::Response { peer, .. } | Event::Misbehaved { peer, .. } if banned(peer) => {
                Some(Vec::new())
            }
            _ => None,
        }
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

/// Gossipsub's `verdict` on the block `hash` that `peer` forwarded.
fn block_verdict<P: Clone>(hash: BlockHash, peer: &P, verdict: Verdict) -> Action<P> {
    Action::Verdict {
        hash,
        source: peer.clone(),
        verdict,
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
mod relay_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests;
