//! The whole node's decisions as one state machine: inputs in, outputs out. No I/O.
//!
//! [`NodeLogic`] owns the network logic ([`Protocol`]) and the mempool's place beside it:
//! which transfers are taken in (gossiped or submitted) and what their relayer is told,
//! how the pool follows the best chain, when the miner gets a new template and what goes in
//! it, when the pool expires transfers and its journal is compacted, and what stops while
//! the store cannot write. The node's driver turns I/O into [`Input`]s and carries out the
//! [`Output`]s; the network simulation in `tests/` runs the very same logic over memory
//! stores and a simulated network.
//!
//! ```text
//!   peer event ──────────► Protocol::handle ──► Action (requests, verdicts, bans, tips)
//!   gossiped transfer ──┐                               │ TipChanged
//!   submitted transfer ─┴► Mempool::admit ──► Journal ──┤──► pool follows the tip
//!                          (verdict, penalty)           ▼
//!   Wake (clock) ──► protocol tick, expiry, compaction ──► template due? ──► SyncJournal
//!                                                      JournalSynced ──► Mine(template)
//! ```
//!
//! - `blocks`: gossiped blocks, compact ones rebuilt from the pool.
//! - `transfers`: admission of gossiped and submitted transfers, following the tip, expiry,
//!   journal compaction.
//! - `mining`: when a template is due and building it.
//!
//! # Invariants
//! - No transfer goes into a template before its journal record is durable: a template is
//!   built only after [`Output::SyncJournal`] was answered with [`Input::JournalSynced`] and
//!   nothing was journaled since.
//! - A submitted transfer is answered only through [`Output::Journal`] (accepted: the shell
//!   answers once the record is durable) or [`Output::Refused`].
//! - After every input, the mempool has followed the chain's tip.
//! - While the store cannot write ([`Input::Durability`]), no block or transfer is taken
//!   in and the miner is paused.
mod blocks;
mod mining;
mod transfers;

use crate::core::chain::manager::{ChainManager, ChainStore};
use crate::core::chain::BlockIndexEntry;
use crate::core::mempool::{Admitted, Mempool, MempoolError};
use crate::core::miner::BlockTemplate;
use crate::core::primitives::{Address, Block, Transfer, Txid};
use crate::core::protocol::compact::BlockAnnouncement;
use crate::core::protocol::machine::{Action, Event, Protocol, Reorg, TipSource};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The pending transfers, shared with readers (the HTTP API) and the journal's writer (which
/// takes out a transfer whose record could not be made durable).
pub type SharedMempool = Arc<RwLock<Mempool>>;

/// Timings of the node logic, in ms, and the journal's compaction threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogicConfig {
    /// How often the network logic's clock ticks.
    pub tick_ms: u64,
    /// After the tip moved, the miner gets a new template at most this often.
    pub template_coalesce_ms: u64,
    /// While transfers stream in, the template takes them up at most this often (selecting
    /// and applying a full block's transfers costs milliseconds).
    pub template_transfers_coalesce_ms: u64,
    /// The oldest a template gets: templates carry the latest time a block may have (clock
    /// plus allowed drift); refreshing well inside that keeps block times on the clock.
    pub template_refresh_ms: u64,
    /// How often expired transfers are dropped and the journal's size is checked.
    pub upkeep_ms: u64,
    /// The journal is compacted once it holds this many bytes and twice the pool's.
    pub journal_compact_bytes: u64,
}

impl Default for LogicConfig {
    fn default() -> Self {
        LogicConfig {
            tick_ms: 1_000,
            template_coalesce_ms: 100,
            template_transfers_coalesce_ms: 1_000,
            template_refresh_ms: 30_000,
            upkeep_ms: 60_000,
            journal_compact_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Who this node's blocks pay, and where its extra nonce starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiningSetup {
    /// The reward address.
    pub reward_address: Address,
    /// A random start, so that two nodes mining to one address from one tip in the same
    /// second do not search the same nonces.
    pub extra_nonce: u64,
}

/// Something that happened, for the node logic to react to.
#[derive(Clone, Debug)]
pub enum Input<P> {
    /// A network event, handed to [`Protocol::handle`] (the logic ticks the protocol itself
    /// on [`Input::Wake`]; a gossiped transfer comes as [`Input::GossipTransfer`], a gossiped
    /// block as [`Input::GossipBlock`]).
    Net(Event<P>),
    /// A block arrived by gossip, whole or compact.
    GossipBlock {
        /// The peer that forwarded it.
        peer: P,
        /// The block.
        announcement: BlockAnnouncement,
    },
    /// A transfer arrived by gossip.
    GossipTransfer {
        /// The peer that forwarded it.
        peer: P,
        /// The transfer.
        transfer: Transfer,
    },
    /// A client submits a transfer; `id` names it in [`Output::Journal`] or
    /// [`Output::Refused`].
    Submit {
        /// The shell's handle.
        id: u64,
        /// The transfer.
        transfer: Transfer,
    },
    /// Transfers saved by an earlier run (journal and snapshot), taken back in.
    Restore(Vec<Transfer>),
    /// Everything journaled so far is durable (the answer to [`Output::SyncJournal`]).
    JournalSynced,
    /// Whether the store can write: `None` if it can, else why not. Sent when that changes.
    Durability(Option<String>),
    /// The operator turns mining on or off.
    SetMining(bool),
    /// Time passed: run what is due. The shell wakes the logic often (every 100 ms or so).
    Wake,
    /// The node stops: the pool's last state goes to the journal.
    Shutdown,
}

/// Why a submitted transfer was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRefusal {
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// It could not be made durable (the store or the journal cannot write).
    #[error("{0}")]
    NotDurable(String),
}

/// Something for the shell to do.
#[derive(Clone, Debug)]
pub enum Output<P> {
    /// What the network logic decided.
    Net(Action<P>),
    /// Append `transfer` (just admitted) to the mempool journal. If it was submitted
    /// (`submission`), answer the client and publish it once the record is durable; if that
    /// fails, take it out of the pool and answer [`SubmitRefusal::NotDurable`].
    Journal {
        /// The transfer.
        transfer: Transfer,
        /// The submission's id and what admission did.
        submission: Option<(u64, Admitted)>,
    },
    /// Refuse the submission `id`.
    Refused {
        /// The submission.
        id: u64,
        /// Why.
        refusal: SubmitRefusal,
    },
    /// A transfer entered the pool (for live listeners and metrics).
    Admitted(Txid),
    /// A transfer was not taken in (for metrics and the log); `relayed_by` is set when a
    /// peer gossiped it and the fault is its own.
    NotAdmitted {
        /// The transfer.
        txid: Txid,
        /// Why.
        error: MempoolError,
        /// The peer that relayed a transfer no honest node relays.
        relayed_by: Option<P>,
    },
    /// Restored transfers were taken back (`restored` of `total`).
    Restored {
        /// Taken back.
        restored: usize,
        /// Offered.
        total: usize,
    },
    /// Make every journal record appended so far durable, then feed
    /// [`Input::JournalSynced`].
    SyncJournal,
    /// Rewrite the mempool's snapshot with these transfers and empty the journal.
    CompactJournal(Vec<Transfer>),
    /// The pool followed the best chain: the blocks put on (chain order), the reorg that
    /// brought them, and what the pool did.
    Followed {
        /// Blocks put on.
        connected: Vec<Block>,
        /// Set when branches switched.
        reorg: Option<Reorg>,
        /// Transfers of blocks taken off that came back.
        returned: usize,
        /// Transfers dropped as invalid on the new tip, with why.
        invalidated: Vec<(Txid, MempoolError)>,
    },
    /// The blocks between the tips could not be read (the pool may hold confirmed transfers
    /// until the next tip; `select` skips them).
    FollowFailed(String),
    /// Transfers expired.
    Expired(usize),
    /// Mine on this template.
    Mine(BlockTemplate),
    /// Stop mining (off, or the store cannot write).
    PauseMining,
    /// Building a template failed (logged; with transfers, an empty template follows).
    TemplateFailed(String),
}

/// How many of the blocks the pool followed onto it keeps (see `NodeLogic::recent_followed`):
/// more than a store holds unflushed (one batch of events, which connects at most the
/// protocol's `connect_chunk` of 4 downloaded blocks, a mined one and gossiped ones), and
/// few enough that full blocks cost at most 32 MB.
pub const RECENT_FOLLOWED_BLOCKS: usize = 16;

/// The node's logic: the network state machine, the mempool's part in it, and the miner's
/// templates.
pub struct NodeLogic<P> {
    config: LogicConfig,
    protocol: Protocol<P>,
    mempool: SharedMempool,
    /// The tip the pool last followed.
    mempool_tip: BlockIndexEntry,
    /// The last blocks the pool followed onto, oldest first (at most
    /// [`RECENT_FOLLOWED_BLOCKS`]): a store that reopens after a failed write has lost the
    /// blocks it had not flushed, and their transfers come back to the pool from here.
    recent_followed: std::collections::VecDeque<crate::core::primitives::Block>,
    /// The pool changed since the journal was last compacted.
    mempool_dirty: bool,
    /// Bytes appended to the journal since it was last compacted (about).
    journal_bytes: u64,
    /// Records were appended since the last [`Output::SyncJournal`].
    journal_unsynced: bool,
    mining: Option<MiningSetup>,
    mining_on: bool,
    template: mining::TemplateClock,
    /// Why the store cannot write, while it cannot.
    unwritable: Option<String>,
    last_tick_ms: u64,
    last_upkeep_ms: u64,
}

impl<P: Ord + Clone + std::fmt::Debug> NodeLogic<P> {
    /// The logic over `protocol` and `mempool`, for a chain whose tip is `tip`, mining if
    /// `mining` is given, starting at `now_ms`. The pool should check signatures through
    /// the chain's cache (`Mempool::with_signature_cache`), so that what admission verified,
    /// block validation does not verify again.
    pub fn new(
        config: LogicConfig,
        protocol: Protocol<P>,
        mempool: SharedMempool,
        tip: BlockIndexEntry,
        mining: Option<MiningSetup>,
        now_ms: u64,
    ) -> NodeLogic<P> {
        NodeLogic {
            config,
            protocol,
            mempool,
            mempool_tip: tip,
            recent_followed: std::collections::VecDeque::new(),
            mempool_dirty: false,
            journal_bytes: 0,
            journal_unsynced: false,
            mining_on: mining.is_some(),
            mining,
            template: mining::TemplateClock::due_now(now_ms),
            unwritable: None,
            last_tick_ms: now_ms,
            last_upkeep_ms: now_ms,
        }
    }

    /// The network logic (peers, bans, scores, sync state).
    pub fn protocol(&self) -> &Protocol<P> {
        &self.protocol
    }

    /// The pending transfers.
    pub fn mempool(&self) -> &SharedMempool {
        &self.mempool
    }

    /// Whether this node was set up to mine.
    pub fn can_mine(&self) -> bool {
        self.mining.is_some()
    }

    /// Whether it mines now.
    pub fn is_mining(&self) -> bool {
        self.mining.is_some() && self.mining_on
    }

    /// Reacts to `input` at `now_ms` (ms since the Unix epoch).
    pub fn handle<S: ChainStore>(
        &mut self,
        input: Input<P>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
    ) -> Vec<Output<P>> {
        let mut out = Vec::new();
        match input {
            Input::Net(event) => self.feed(event, chain, now_ms, &mut out),
            Input::GossipBlock { peer, announcement } => {
                self.on_gossip_block(peer, announcement, chain, now_ms, &mut out)
            }
            Input::GossipTransfer { peer, transfer } => {
                self.on_gossip_transfer(peer, transfer, chain, now_ms, &mut out)
            }
            Input::Submit { id, transfer } => self.on_submit(id, transfer, chain, now_ms, &mut out),
            Input::Restore(transfers) => self.restore(transfers, chain, now_ms, &mut out),
            Input::JournalSynced => self.on_journal_synced(chain, now_ms, &mut out),
            Input::Durability(problem) => self.on_durability(problem, chain, now_ms, &mut out),
            Input::SetMining(on) => {
                if self.mining.is_some() && self.mining_on != on {
                    self.mining_on = on;
                    self.publish_template(chain, now_ms, &mut out);
                }
            }
            Input::Wake => self.on_wake(chain, now_ms, &mut out),
            Input::Shutdown => self.compact_journal(&mut out),
        }
        if chain.tip().hash() != self.mempool_tip.hash() {
            // The chain moved without a tip action (the store was reloaded).
            self.follow_tip(None, chain, now_ms, &mut out);
            self.template.stale = true;
        }
        out
    }

    /// Hands `event` to the network logic and reacts to what it decided.
    fn feed<S: ChainStore>(
        &mut self,
        event: Event<P>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        for action in self.protocol.handle(event, chain, now_ms) {
            match &action {
                Action::TipChanged {
                    source: TipSource::Snapshot,
                    ..
                } => {
                    // No blocks lead from genesis to a snapshot's block here: the pool
                    // takes the new tip as it is (the pool of a node that has not synced
                    // yet is empty or nearly so).
                    out.push(Output::Net(action));
                    self.mempool_tip = chain.tip().clone();
                    self.recent_followed.clear();
                    self.template.stale = true;
                    continue;
                }
                Action::TipChanged { reorg, .. } => {
                    let reorg = *reorg;
                    out.push(Output::Net(action));
                    self.follow_tip(reorg, chain, now_ms, out);
                    self.template.stale = true;
                    continue;
                }
                Action::MinedStale { .. } => self.template.stale = true,
                _ => {}
            }
            out.push(Output::Net(action));
        }
    }

    /// The store can write again (`None`) or cannot (`Some(why)`).
    fn on_durability<S: ChainStore>(
        &mut self,
        problem: Option<String>,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        let was_writable = self.unwritable.is_none();
        self.unwritable = problem;
        match (was_writable, self.unwritable.is_none()) {
            (true, false) => {
                self.protocol.pause_blocks(true);
                self.publish_template(chain, now_ms, out);
            }
            (false, true) => {
                self.protocol.pause_blocks(false);
                self.publish_template(chain, now_ms, out);
                // Blocks downloaded before the pause are connected now.
                self.feed(Event::Continue, chain, now_ms, out);
            }
            _ => {}
        }
    }

    /// The clock: the protocol's tick, the pool's upkeep, a template if one is due.
    fn on_wake<S: ChainStore>(
        &mut self,
        chain: &mut ChainManager<S>,
        now_ms: u64,
        out: &mut Vec<Output<P>>,
    ) {
        if now_ms.saturating_sub(self.last_tick_ms) >= self.config.tick_ms {
            self.last_tick_ms = now_ms;
            self.feed(Event::Tick, chain, now_ms, out);
        }
        if now_ms.saturating_sub(self.last_upkeep_ms) >= self.config.upkeep_ms {
            self.last_upkeep_ms = now_ms;
            self.upkeep(now_ms, out);
        }
        if self.template.is_due(&self.config, now_ms) {
            self.publish_template(chain, now_ms, out);
        }
    }

    /// The pending transfers, read (a poisoned lock is read anyway: the pool is checked on
    /// every change, so a panic elsewhere leaves it consistent).
    pub fn pool_read(&self) -> RwLockReadGuard<'_, Mempool> {
        self.mempool
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn pool_write(&self) -> RwLockWriteGuard<'_, Mempool> {
        self.mempool
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests;
