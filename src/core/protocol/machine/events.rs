//! What goes into the network logic ([`Event`]) and what comes out ([`Action`]).
use super::*;

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
    /// A compact block arrived by gossip, rebuilt as far as the mempool allows; answer with
    /// [`Action::Verdict`] (after fetching what is missing from `peer`).
    GossipCompact {
        /// The peer that forwarded it.
        peer: P,
        /// The block's header and the transfers found for it.
        partial: PartialBlock,
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

impl<P> Event<P> {
    /// For a gossiped block, whole or compact: its hash and the peer that forwarded it.
    pub fn gossiped_block(&self) -> Option<(BlockHash, &P)> {
        match self {
            Event::GossipBlock { peer, block } => Some((block.hash(), peer)),
            Event::GossipCompact { peer, partial } => Some((partial.hash(), peer)),
            _ => None,
        }
    }
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
    /// A snapshot's block, adopted with its state and without the blocks below it.
    Snapshot,
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
    /// Snapshot sync chose its block and starts fetching that block's state.
    SnapshotStarted {
        /// The block whose state is fetched.
        pivot: BlockIndexEntry,
        /// The most-work header's height.
        header_height: u32,
    },
    /// Snapshot sync's progress, every few seconds while it fetches state.
    SnapshotProgress {
        /// The height of the block whose state is fetched.
        pivot_height: u32,
        /// Pages and accounts so far.
        progress: crate::core::protocol::snapshot::FetchProgress,
        /// Pages fetched per second since the last report.
        pages_per_sec: Option<f64>,
        /// Seconds the pages known to be left take at that pace: a floor, since the pages
        /// below them are not known yet.
        eta_secs: Option<u64>,
    },
    /// Snapshot sync was given up; the node syncs in full.
    SnapshotAbandoned {
        /// Why.
        reason: String,
    },
    /// The blocks below a snapshot, fetched in the background: how far.
    OldBlocksProgress {
        /// Every block through this height is stored.
        through: u32,
        /// The snapshot's height (the last to fetch).
        base: u32,
        /// Blocks stored per second since the last report.
        blocks_per_sec: f64,
        /// Estimated seconds to the end, if moving.
        eta_secs: Option<u64>,
    },
    /// The blocks below a snapshot wait: no peer delivered one (all are asked again later).
    OldBlocksStalled {
        /// Every block through this height is stored.
        through: u32,
        /// Why.
        reason: String,
    },
    /// The chain store failed: the shell should log it and may stop.
    StoreFailed(ChainError),
    /// Downloaded blocks are ready to connect: once these actions are carried out and the
    /// events already waiting are handled, feed [`Event::Continue`].
    Continue,
}
