//! Tuning of the network logic.
use super::*;

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
    /// Whether and when a fresh node bootstraps by snapshot (`None`: it syncs in full).
    pub snapshot: Option<SnapshotConfig>,
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
            snapshot: None,
        }
    }
}
