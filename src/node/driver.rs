//! The event loop: one thread that owns the chain manager and the node logic
//! (`core::logic::NodeLogic`, which owns the network state machine and the mempool's part in
//! it). It turns network events, mined blocks, submitted transfers, admin calls, free-space
//! readings and the clock into [`Input`]s, and carries out the [`Output`]s: network
//! commands, bans in the store, journal records, templates for the miner, events for live
//! listeners, metrics, and the log. It decides nothing itself.
//!
//! ```text
//!   swarm task ── NetEvent ──┐
//!   miner threads ── block ──┤
//!   HTTP submit ── transfer ─┼──► channel ──► Driver ──► NodeLogic::handle(input, chain, now)
//!   HTTP admin ── ban/mining ┘                  │
//!                                               ▼
//!     NetCommand, journal thread, miner templates, store (bans), EventBus, metrics, log
//! ```
//! All chain and mempool writes happen here, one after another; the HTTP API only reads.
use crate::core::logic::{
    Input, LogicConfig, MiningSetup, NodeLogic, Output, SharedMempool, SubmitRefusal,
};
use crate::core::mempool::Admitted;
use crate::core::primitives::{Address, Block, Transfer};
use crate::core::protocol::machine::{Action, Event, Protocol, Reorg, TipSource, Verdict};
use crate::core::protocol::messages::{SyncRequest, SyncResponse};
use crate::core::protocol::peers::Misbehavior;
use crate::core::storage::StorageFailure;
use crate::core::views::{
    BanView, MempoolTransferView, MiningView, NewBlockView, OldBlocksView, PeerView, PeersView,
    ReorgView, SnapshotFetchView,
};
use crate::node::chain::ChainManager;
use crate::node::clock::{unix_now, unix_now_ms};
use crate::node::disk::{human_bytes, DiskGuard, DiskSpace, EmergencyBallast};
use crate::node::events::NodeEvent;
use crate::node::journal_writer::{Committed, JournalWriter};
use crate::node::miner::MinerHandle;
use crate::node::net::{GossipVerdict, Malformed, NetCommand, NetEvent, NetHandle, PeerId};
use crate::node::precheck::SignaturePrecheck;
use crate::node::store::BanRecord;
use crate::node::store_health::{HealthStep, Retry, StoreHealth};
use crate::node::NodeShared;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often the miner's hash rate is logged.
const HASHRATE_REPORT: Duration = Duration::from_secs(10);
/// How often the store's health is checked and the views are refreshed.
const TICK: Duration = Duration::from_secs(1);
/// Longest wait for an event before the logic is woken anyway (its timers are finer than
/// [`TICK`]: templates coalesce over 100 ms).
const WAKE: Duration = Duration::from_millis(100);
/// Blocks the index stage indexes per step (one sled batch and a flush; about 80 ms for a
/// block of 2,000 transfers), between which the driver takes in events: what an event can
/// wait for while the index catches up.
const INDEX_STEP_BLOCKS: u32 = 1;
/// How often the index stage says how far it is.
const INDEX_REPORT: Duration = Duration::from_secs(5);
/// Most events taken in before the records they queued go to the journal's thread.
const JOURNAL_BATCH_EVENTS: usize = 256;
/// How often a failed store is tried again (reopened, then a test write).
const STORE_RETRY: Duration = Duration::from_secs(2);

/// File in the data directory holding the node's P2P address (with `/p2p/<peer id>`).
pub const P2P_ADDR_FILE: &str = "p2p.addr";

/// What the driver reacts to.
#[derive(Debug)]
pub enum DriverEvent {
    /// A mining thread solved a block.
    Mined(Block),
    /// The swarm reported something.
    Net(NetEvent),
    /// The operator bans a peer.
    Ban(PeerId),
    /// The operator lifts a ban.
    Unban(PeerId),
    /// A client submits a transfer; the verdict goes back on `reply`, once an accepted
    /// transfer is durable.
    SubmitTransfer {
        /// The transfer.
        transfer: Transfer,
        /// Where the verdict goes.
        reply: oneshot::Sender<Result<Admitted, SubmitRefusal>>,
    },
    /// The operator turns mining on or off; `reply` gets an error if the node has no miner.
    SetMining {
        /// On or off.
        enabled: bool,
        /// Where the result goes.
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// An accepted submission waiting for the journal's next sync before it is answered and
/// relayed.
pub struct AwaitingDurable {
    transfer: Transfer,
    admitted: Admitted,
    reply: oneshot::Sender<Result<Admitted, SubmitRefusal>>,
}

/// What the journal's writer thread does with the submissions of a group once its sync
/// returns: relays and answers them; or, if the sync failed, takes them out of the pool and
/// refuses them (not accepted, so not mined or relayed either: the logic has the journal
/// synced before it selects transfers for a block).
pub fn on_journal_commit(
    net: NetHandle,
    mempool: SharedMempool,
) -> impl FnMut(Committed<AwaitingDurable>) + Send + 'static {
    move |(outcome, waiting)| match outcome {
        Ok(()) => {
            for submission in waiting {
                net.send(NetCommand::PublishTransfer(submission.transfer));
                let _ = submission.reply.send(Ok(submission.admitted));
            }
        }
        Err(reason) => {
            let mut pool = mempool
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for submission in &waiting {
                pool.remove(&submission.admitted.txid);
            }
            drop(pool);
            let message =
                format!("the node cannot write its mempool journal ({reason}); try again later");
            for submission in waiting {
                let _ = submission
                    .reply
                    .send(Err(SubmitRefusal::NotDurable(message.clone())));
            }
        }
    }
}

/// The store could not be made durable when the node stopped.
#[derive(Debug, thiserror::Error)]
#[error("could not make the store durable at shutdown ({0}): blocks after the last durable tip may be lost; the node reopens at that tip")]
pub struct ShutdownError(pub StorageFailure);

/// The mining threads, for the driver.
pub struct MiningThreads {
    /// The threads.
    pub miner: MinerHandle,
    /// Who the blocks pay.
    pub reward_address: Address,
    /// Number of threads (for the report).
    pub threads: usize,
}

/// Counters of the driver's work.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    /// Own blocks that extended the best chain.
    pub mined: u64,
    /// Own blocks found too late (the tip had moved on).
    pub stale: u64,
}

/// What the peers page shows of a connection, beyond what the logic knows.
#[derive(Clone, Debug)]
struct Connection {
    address: String,
    outbound: bool,
    agent: Option<String>,
}

/// The driver: owner of the chain manager and the node logic.
pub struct Driver {
    chain: ChainManager,
    logic: NodeLogic<PeerId>,
    net: NetHandle,
    mining: Option<MiningThreads>,
    data_dir: PathBuf,
    stats: DriverStats,
    connections: BTreeMap<PeerId, Connection>,
    ban_reasons: BTreeMap<PeerId, String>,
    shared: NodeShared,
    /// Checks downloaded blocks' signatures ahead of their validation.
    precheck: Option<SignaturePrecheck>,
    /// The logic has downloaded blocks waiting ([`Action::Continue`]).
    continue_sync: bool,
    /// Free space on the data directory's file system.
    disk: DiskGuard,
    /// Its last reading.
    disk_space: DiskSpace,
    /// Space to free so that a store that failed on a full disk can reopen.
    ballast: EmergencyBallast,
    /// Whether the store writes.
    health: StoreHealth,
    /// When a failed store was last tried.
    last_store_retry: Instant,
    /// When the index stage last said how far it is.
    last_index_report: Instant,
    /// The mempool's write-ahead journal, on its own thread.
    journal: JournalWriter<AwaitingDurable>,
    /// Submissions the logic has not answered yet, by id.
    submissions: BTreeMap<u64, oneshot::Sender<Result<Admitted, SubmitRefusal>>>,
    next_submission: u64,
}

impl Driver {
    /// A driver over `chain` and the network `net`, mining if `mining` is given.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: ChainManager,
        protocol: Protocol<PeerId>,
        net: NetHandle,
        mining: Option<MiningThreads>,
        data_dir: PathBuf,
        ban_reasons: BTreeMap<PeerId, String>,
        shared: NodeShared,
        disk: DiskGuard,
        journal: JournalWriter<AwaitingDurable>,
    ) -> Driver {
        let ballast = EmergencyBallast::new(&data_dir);
        if let Err(e) = ballast.ensure() {
            tracing::warn!(
                "cannot write the emergency ballast {}: {e}; if the disk fills up, the store \
                 may not reopen until space is freed",
                data_dir.join(crate::node::disk::BALLAST_FILE).display()
            );
        }
        let precheck = SignaturePrecheck::new(chain.signature_cache().clone())
            .inspect_err(|e| {
                tracing::warn!("no signature pre-check pool ({e}): blocks are checked in turn")
            })
            .ok();
        let logic = NodeLogic::new(
            LogicConfig::default(),
            protocol,
            Arc::clone(&shared.mempool),
            chain.tip().clone(),
            mining.as_ref().map(|m| MiningSetup {
                reward_address: m.reward_address,
                extra_nonce: random_extra_nonce(),
            }),
            unix_now_ms(),
        );
        Driver {
            precheck,
            continue_sync: false,
            chain,
            logic,
            net,
            mining,
            data_dir,
            stats: DriverStats::default(),
            connections: BTreeMap::new(),
            ban_reasons,
            shared,
            disk_space: disk.check(),
            disk,
            ballast,
            health: StoreHealth::Writable,
            last_store_retry: Instant::now(),
            last_index_report: Instant::now(),
            journal,
            submissions: BTreeMap::new(),
            next_submission: 1,
        }
    }

    /// Re-admits transfers saved by an earlier run (the journal's, each checked in full
    /// against the tip's state), then compacts the journal to what was taken back.
    pub fn restore_mempool(&mut self, transfers: Vec<Transfer>) {
        self.feed(Input::Restore(transfers));
        self.journal.send();
    }

    /// Runs until `shutdown` is set or every sender is gone; then stops the miner, compacts
    /// the mempool journal and flushes the store. Fails if the store could not be made
    /// durable at the end.
    pub fn run(
        mut self,
        events: Receiver<DriverEvent>,
        shutdown: Arc<AtomicBool>,
    ) -> Result<(), ShutdownError> {
        self.refresh_view();
        self.refresh_health_view();
        self.refresh_mining_view(0.0);
        self.refresh_chain_metrics();
        self.refresh_mempool_metrics();
        let mut last_tick = Instant::now();
        let mut last_report = Instant::now();
        let mut last_attempts = 0u64;
        while !shutdown.load(Ordering::Acquire) {
            let event = if self.continue_sync {
                // Blocks are waiting: take in what has arrived meanwhile (responses, whose
                // signatures then get pre-checked), then connect the next few.
                match events.try_recv() {
                    Ok(event) => Some(event),
                    Err(TryRecvError::Empty) => {
                        self.continue_sync = false;
                        self.take_blocks(Input::Net(Event::Continue));
                        None
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else if self.index_waits() {
                // Nothing to connect and the index is behind the tip: index a few blocks
                // whenever no event waits.
                match events.try_recv() {
                    Ok(event) => Some(event),
                    Err(TryRecvError::Empty) => {
                        self.catch_up_index();
                        None
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match events.recv_timeout(WAKE) {
                    Ok(event) => Some(event),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            if let Some(event) = event {
                self.on_event(event);
                // What else is waiting is taken in before the records of the transfers
                // admitted meanwhile go to the journal's thread together.
                for _ in 1..JOURNAL_BATCH_EVENTS {
                    match events.try_recv() {
                        Ok(event) => self.on_event(event),
                        Err(_) => break,
                    }
                }
                self.journal.send();
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.check_store_health();
                self.refresh_view();
                self.refresh_health_view();
            }
            self.feed(Input::Wake);
            if let Some(mining) = &self.mining {
                let elapsed = last_report.elapsed();
                if elapsed >= HASHRATE_REPORT {
                    let attempts = mining.miner.stats().attempts.load(Ordering::Relaxed);
                    let rate = (attempts - last_attempts) as f64 / elapsed.as_secs_f64();
                    if self.logic.is_mining() {
                        tracing::info!(
                            target: "cairn::miner",
                            "hash rate {:.2} MH/s on {} threads; {} blocks mined, {} stale",
                            rate / 1e6,
                            mining.threads,
                            self.stats.mined,
                            self.stats.stale
                        );
                    }
                    self.shared
                        .metrics
                        .miner_hashes
                        .inc_by(attempts - last_attempts);
                    last_report = Instant::now();
                    last_attempts = attempts;
                    self.refresh_mining_view(rate);
                }
            }
        }
        if let Some(mining) = self.mining.take() {
            mining.miner.stop();
        }
        self.feed(Input::Shutdown);
        self.journal.stop();
        if let StoreHealth::Failed { error, .. } = &self.health {
            return Err(ShutdownError(error.clone()));
        }
        self.chain
            .store()
            .flush()
            .map_err(|e| ShutdownError(e.into()))
    }

    /// Hands an input to the logic and carries out what it decided.
    fn feed(&mut self, input: Input<PeerId>) {
        let outputs = self.logic.handle(input, &mut self.chain, unix_now_ms());
        if outputs.is_empty() {
            return;
        }
        for output in outputs {
            self.carry_out(output);
        }
        self.refresh_mempool_metrics();
    }

    /// Hands the logic an input that may write a block, once the disk has room for it.
    fn take_blocks(&mut self, input: Input<PeerId>) {
        if self.health.is_writable() {
            self.check_store_health();
        }
        self.feed(input);
    }

    fn carry_out(&mut self, output: Output<PeerId>) {
        match output {
            Output::Net(action) => self.carry_out_action(action),
            Output::Journal {
                transfer,
                submission,
            } => {
                let ticket = submission.and_then(|(id, admitted)| {
                    self.submissions.remove(&id).map(|reply| AwaitingDurable {
                        transfer: transfer.clone(),
                        admitted,
                        reply,
                    })
                });
                self.journal.append(transfer, ticket);
            }
            Output::Refused { id, refusal } => {
                if let Some(reply) = self.submissions.remove(&id) {
                    let _ = reply.send(Err(refusal));
                }
            }
            Output::Admitted(txid) => {
                let view = self.logic.pool_read().get(&txid).map(|entry| {
                    MempoolTransferView::new(self.chain.spec(), &entry.transfer, entry.added_secs)
                });
                if let Some(view) = view {
                    self.shared.events.publish(NodeEvent::Transfer(view));
                }
                self.shared.metrics.mempool_admitted.inc();
            }
            Output::NotAdmitted {
                txid,
                error,
                relayed_by,
            } => {
                self.shared.metrics.rejected(error.code());
                if let Some(peer) = relayed_by {
                    tracing::warn!(target: "cairn::net", "peer {peer} relayed an invalid transfer {txid}: {error}");
                }
            }
            Output::Restored { restored, total } => {
                if total > 0 {
                    tracing::info!(
                        target: "cairn::mempool",
                        "restored {restored} of {total} saved pending transfers"
                    );
                }
            }
            Output::SyncJournal => {
                self.journal.barrier();
                self.feed(Input::JournalSynced);
            }
            Output::CompactJournal(transfers) => self.journal.compact(transfers),
            Output::Followed {
                connected,
                reorg,
                returned,
                invalidated,
            } => self.on_followed(connected, reorg, returned, invalidated),
            Output::FollowFailed(e) => {
                tracing::error!(target: "cairn::mempool", "cannot read the blocks between tips: {e}")
            }
            Output::Expired(count) => {
                tracing::info!(target: "cairn::mempool", "{count} pending transfers expired")
            }
            Output::Mine(template) => {
                if let Some(mining) = &self.mining {
                    mining.miner.set_job(template);
                }
            }
            Output::PauseMining => {
                if let Some(mining) = &self.mining {
                    mining.miner.pause();
                }
            }
            Output::TemplateFailed(e) => tracing::error!(target: "cairn::miner", "{e}"),
        }
    }

    /// The pool followed the tip: the log, metrics and live listeners hear of it.
    fn on_followed(
        &mut self,
        connected: Vec<Block>,
        reorg: Option<Reorg>,
        returned: usize,
        invalidated: Vec<(
            crate::core::primitives::Txid,
            crate::core::mempool::MempoolError,
        )>,
    ) {
        if returned > 0 {
            tracing::info!(
                target: "cairn::mempool",
                "{returned} transfers of disconnected blocks are back in the mempool"
            );
        }
        for (txid, reason) in &invalidated {
            tracing::info!(target: "cairn::mempool", "dropped pending transfer {txid}: {reason}");
        }
        self.refresh_chain_metrics();
        self.shared
            .metrics
            .blocks_connected
            .inc_by(connected.len() as u64);
        let spec = self.chain.spec();
        let last = connected.len().saturating_sub(1);
        for (i, block) in connected.iter().enumerate() {
            let reorg = reorg.filter(|_| i == last).map(|r| ReorgView {
                fork_height: r.fork_height,
                disconnected: r.disconnected,
                connected: r.connected,
            });
            self.shared
                .events
                .publish(NodeEvent::Block(NewBlockView::new(spec, block, reorg)));
        }
    }

    fn refresh_chain_metrics(&self) {
        let tip = self.chain.tip();
        let metrics = &self.shared.metrics;
        metrics.chain_height.set(i64::from(tip.height()));
        metrics
            .chain_work_log2
            .set(tip.chain_work.as_u256().approx_log2());
        if let Ok(indexed) = self.chain.store().indexed_height() {
            metrics.index_height.set(i64::from(indexed));
        }
    }

    fn refresh_mempool_metrics(&self) {
        let (count, bytes) = {
            let pool = self.logic.pool_read();
            (pool.len(), pool.bytes())
        };
        self.shared.metrics.mempool_transfers.set(count as i64);
        self.shared.metrics.mempool_bytes.set(bytes as i64);
    }

    fn set_mining(&mut self, enabled: bool) -> Result<(), String> {
        if !self.logic.can_mine() {
            return Err("this node was started without --mine".to_string());
        }
        if self.logic.is_mining() != enabled {
            tracing::info!(target: "cairn::miner", "mining turned {}", if enabled { "on" } else { "off" });
            self.feed(Input::SetMining(enabled));
            self.refresh_mining_view(0.0);
        }
        Ok(())
    }

    fn refresh_mining_view(&self, hash_rate: f64) {
        let mining = self.logic.is_mining();
        let view = MiningView {
            enabled: mining,
            threads: self.mining.as_ref().map_or(0, |m| m.threads),
            hash_rate: if mining { hash_rate } else { 0.0 },
            mined: self.stats.mined,
            stale: self.stats.stale,
            reward_address: self
                .mining
                .as_ref()
                .and_then(|m| m.reward_address.to_bech32(self.chain.spec().hrp()).ok()),
        };
        if let Ok(mut shared) = self.shared.mining.write() {
            *shared = view;
        }
    }

    fn on_event(&mut self, event: DriverEvent) {
        match event {
            DriverEvent::Mined(block) => self.take_blocks(Input::Net(Event::Mined(block))),
            DriverEvent::Ban(peer) => {
                self.feed(Input::Net(Event::Ban(peer)));
                self.refresh_view();
            }
            DriverEvent::Unban(peer) => {
                self.feed(Input::Net(Event::Unban(peer)));
                self.refresh_view();
            }
            DriverEvent::Net(event) => self.on_net_event(event),
            DriverEvent::SubmitTransfer { transfer, reply } => {
                let id = self.next_submission;
                self.next_submission += 1;
                self.submissions.insert(id, reply);
                self.feed(Input::Submit { id, transfer });
            }
            DriverEvent::SetMining { enabled, reply } => {
                let _ = reply.send(self.set_mining(enabled));
            }
        }
    }

    fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Listening { address } => {
                let full = format!("{address}/p2p/{}", self.net.local_peer_id());
                tracing::info!(target: "cairn::net", "P2P listening on {full}");
                // The first address (or a loopback one) is the one scripts read back.
                let file = self.data_dir.join(P2P_ADDR_FILE);
                if !file.exists() || address.to_string().contains("/127.0.0.1/") {
                    if let Err(e) = std::fs::write(&file, &full) {
                        tracing::warn!("cannot write {}: {e}", file.display());
                    }
                }
                self.refresh_view();
            }
            NetEvent::PeerConnected {
                peer,
                address,
                outbound,
            } => {
                tracing::info!(target: "cairn::net", "peer {peer} connected ({} {address})", if outbound { "to" } else { "from" });
                self.connections.insert(
                    peer,
                    Connection {
                        address: address.to_string(),
                        outbound,
                        agent: None,
                    },
                );
                self.feed(Input::Net(Event::PeerConnected(peer)));
                self.refresh_view();
            }
            NetEvent::PeerDisconnected { peer } => {
                tracing::info!(target: "cairn::net", "peer {peer} disconnected");
                self.connections.remove(&peer);
                self.feed(Input::Net(Event::PeerDisconnected(peer)));
                self.refresh_view();
            }
            NetEvent::PeerIdentified { peer, agent } => {
                if let Some(connection) = self.connections.get_mut(&peer) {
                    connection.agent = Some(agent);
                }
            }
            NetEvent::InboundRequest { peer, id, request } => {
                self.feed(Input::Net(Event::Request { peer, id, request }))
            }
            NetEvent::Response { peer, id, response } => {
                let carries_blocks = matches!(response, SyncResponse::Blocks(_));
                if let SyncResponse::Blocks(blocks) = &response {
                    tracing::debug!(target: "cairn::sync", "response {id} from {peer}: {} blocks", blocks.len());
                    if let Some(precheck) = &mut self.precheck {
                        precheck.queue(blocks);
                    }
                }
                let input = Input::Net(Event::Response { peer, id, response });
                if carries_blocks {
                    self.take_blocks(input)
                } else {
                    self.feed(input)
                }
            }
            NetEvent::RequestFailed { peer, id, reason } => {
                tracing::debug!(target: "cairn::net", "request {id} to {peer} failed: {reason}");
                self.feed(Input::Net(Event::RequestFailed { peer, id }));
            }
            NetEvent::GossipBlock {
                source,
                announcement,
            } => self.take_blocks(Input::GossipBlock {
                peer: source,
                announcement,
            }),
            NetEvent::GossipTransfer { source, transfer } => {
                // Admission, the verdict and any penalty are the logic's.
                self.feed(Input::GossipTransfer {
                    peer: source,
                    transfer,
                })
            }
            NetEvent::Malformed { peer, kind, detail } => {
                tracing::warn!(target: "cairn::net", "peer {peer} sent bad bytes ({kind:?}): {detail}");
                let fault = match kind {
                    Malformed::Undecodable => Misbehavior::MalformedMessage,
                    Malformed::Oversized => Misbehavior::OversizedMessage,
                };
                self.feed(Input::Net(Event::Misbehaved { peer, fault }));
            }
        }
    }

    fn carry_out_action(&mut self, action: Action<PeerId>) {
        match action {
            Action::Request { peer, id, request } => {
                if let SyncRequest::GetBlocks { hashes } = &request {
                    tracing::debug!(target: "cairn::sync", "request {id} to {peer}: {} blocks", hashes.len());
                }
                self.net.send(NetCommand::Request { peer, id, request })
            }
            Action::Respond { id, response } => self.net.send(NetCommand::Respond { id, response }),
            Action::Refuse { id } => self.net.send(NetCommand::Refuse { id }),
            Action::Publish(block) => self.net.send(NetCommand::PublishBlock(block)),
            Action::Verdict {
                hash,
                source,
                verdict,
            } => self.net.send(NetCommand::ReportBlock {
                hash,
                source,
                verdict: gossip_verdict(verdict),
            }),
            Action::TransferVerdict {
                txid,
                source,
                verdict,
            } => self.net.send(NetCommand::ReportTransfer {
                txid,
                source,
                verdict: gossip_verdict(verdict),
            }),
            Action::Disconnect(peer) => self.net.send(NetCommand::Disconnect(peer)),
            Action::Ban {
                peer,
                until_ms,
                reason,
            } => {
                tracing::warn!(
                    target: "cairn::net",
                    "banned peer {peer} for {} s: {reason}",
                    until_ms.saturating_sub(unix_now_ms()) / 1000
                );
                let record = BanRecord {
                    until_ms,
                    reason: reason.clone(),
                };
                if let Err(e) = self.chain.store().put_ban(&peer.to_bytes(), &record) {
                    tracing::error!("cannot store the ban of {peer}: {e}");
                }
                self.ban_reasons.insert(peer, reason);
                self.net.send(NetCommand::Ban(peer));
                self.refresh_view();
            }
            Action::Unbanned(peer) => {
                tracing::info!(target: "cairn::net", "ban of peer {peer} lifted");
                if let Err(e) = self.chain.store().remove_ban(&peer.to_bytes()) {
                    tracing::error!("cannot remove the ban of {peer}: {e}");
                }
                self.ban_reasons.remove(&peer);
                self.net.send(NetCommand::Unban(peer));
            }
            Action::TipChanged { tip, reorg, source } => {
                if let Some(reorg) = reorg {
                    self.shared.metrics.reorgs.inc();
                    tracing::warn!(
                        target: "cairn::chain",
                        "reorganized: {} blocks off, {} on from fork at height {}; tip {} at height {}",
                        reorg.disconnected,
                        reorg.connected,
                        reorg.fork_height,
                        tip.hash(),
                        tip.height()
                    );
                }
                match source {
                    TipSource::Mined => {
                        self.stats.mined += 1;
                        self.shared.metrics.blocks_mined.inc();
                        tracing::info!(
                            target: "cairn::chain",
                            "mined block {} at height {} (chain work {})",
                            tip.hash(),
                            tip.height(),
                            tip.chain_work
                        );
                    }
                    TipSource::Snapshot => {
                        if let Ok(mut view) = self.shared.snapshot.write() {
                            *view = None;
                        }
                        tracing::info!(
                            target: "cairn::sync",
                            "snapshot adopted: the state of block {} at height {} is complete and checked against its state root; syncing the blocks after it in full",
                            tip.hash(),
                            tip.height()
                        )
                    }
                    TipSource::Gossip if reorg.is_none() => tracing::info!(
                        target: "cairn::chain",
                        "new tip {} at height {} from the network",
                        tip.hash(),
                        tip.height()
                    ),
                    _ => tracing::debug!(
                        target: "cairn::chain",
                        "synced block {} at height {}",
                        tip.hash(),
                        tip.height()
                    ),
                }
            }
            Action::MinedStale { hash, reason } => {
                self.stats.stale += 1;
                tracing::info!(target: "cairn::miner", "found block {hash} too late: {reason}");
            }
            Action::Progress {
                height,
                target_height,
                blocks_per_sec,
                eta_secs,
            } => {
                let left = eta_secs.map_or_else(|| "unknown".to_string(), format_duration);
                tracing::info!(
                    target: "cairn::sync",
                    "syncing: height {height} of {target_height}, {blocks_per_sec:.1} blocks/s, about {left} left"
                );
            }
            Action::SnapshotStarted {
                pivot,
                header_height,
            } => tracing::info!(
                target: "cairn::sync",
                "snapshot sync: headers checked to height {header_height}; fetching the state of block {} at height {} from peers",
                pivot.hash(),
                pivot.height()
            ),
            Action::SnapshotProgress {
                pivot_height,
                progress,
                pages_per_sec,
                eta_secs,
            } => {
                let left = match (pages_per_sec, eta_secs) {
                    (Some(rate), Some(eta)) => {
                        format!(
                            ", {rate:.0} pages/s, at least {} left",
                            format_duration(eta)
                        )
                    }
                    _ => String::new(),
                };
                tracing::info!(
                    target: "cairn::sync",
                    "snapshot sync: state of block {pivot_height}: {} accounts in {} pages fetched ({} held already), {} pages known to be left{left}",
                    progress.accounts,
                    progress.pages_fetched,
                    progress.pages_held,
                    progress.pages_left
                );
                if let Ok(mut view) = self.shared.snapshot.write() {
                    *view = Some(SnapshotFetchView {
                        pivot_height,
                        accounts: progress.accounts,
                        pages_fetched: progress.pages_fetched,
                        pages_held: progress.pages_held,
                        pages_left: progress.pages_left,
                        pages_per_sec,
                    });
                }
            }
            Action::SnapshotAbandoned { reason } => {
                if let Ok(mut view) = self.shared.snapshot.write() {
                    *view = None;
                }
                tracing::warn!(
                    target: "cairn::sync",
                    "snapshot sync given up ({reason}): syncing every block instead"
                )
            }
            Action::OldBlocksProgress {
                through,
                base,
                blocks_per_sec,
                eta_secs,
            } => {
                if through >= base {
                    tracing::info!(
                        target: "cairn::sync",
                        "blocks below the snapshot: all {base} fetched and stored"
                    );
                } else {
                    let left = eta_secs.map_or_else(|| "unknown".to_string(), format_duration);
                    tracing::info!(
                        target: "cairn::sync",
                        "blocks below the snapshot: {through} of {base} fetched, {blocks_per_sec:.1} blocks/s, about {left} left"
                    );
                }
                if let Ok(mut view) = self.shared.old_blocks.write() {
                    *view = Some(OldBlocksView {
                        through,
                        base,
                        blocks_per_sec,
                        eta_secs,
                    });
                }
            }
            Action::OldBlocksStalled { through, reason } => tracing::warn!(
                target: "cairn::sync",
                "blocks below the snapshot: waiting at {through} ({reason}); asking every peer again in a minute"
            ),
            Action::StoreFailed(e) => self.store_failed(e.into()),
            Action::Continue => self.continue_sync = true,
        }
    }

    /// Whether the index stage has blocks to catch up on now: sync is not catching up and
    /// the store writes.
    fn index_waits(&self) -> bool {
        let store = self.chain.store();
        matches!(self.health, StoreHealth::Writable)
            && !store.is_catching_up()
            && store.index_lag() > 0
    }

    /// Indexes the next few blocks behind the tip, in one batch ([`crate::node::store::Store::index_step`]),
    /// and says how far the index is every few seconds.
    fn catch_up_index(&mut self) {
        let store = self.chain.store().clone();
        match store.index_step(INDEX_STEP_BLOCKS) {
            Ok(_) => {
                let indexed = store.indexed_height().unwrap_or(0);
                self.shared.metrics.index_height.set(i64::from(indexed));
                let lag = store.index_lag();
                if lag == 0 {
                    tracing::info!(
                        target: "cairn::chain",
                        "transfer index and address history caught up at height {indexed}"
                    );
                } else if self.last_index_report.elapsed() >= INDEX_REPORT {
                    self.last_index_report = Instant::now();
                    tracing::info!(
                        target: "cairn::chain",
                        "indexing transfers and address history: height {indexed}, {lag} blocks behind the tip"
                    );
                }
            }
            Err(e) => self.store_failed(e.into()),
        }
    }

    /// Reads the free space and carries out what [`StoreHealth::next_step`] says: pause
    /// when the disk runs low, resume once there is room again, and after a failure reopen
    /// the store and try a test write.
    fn check_store_health(&mut self) {
        self.disk_space = self.disk.check();
        let retry = Retry {
            store_closed: self.chain.store().is_closed(),
            due: self.last_store_retry.elapsed() >= STORE_RETRY,
            ballast_spent: if self.ballast.is_present() {
                0
            } else {
                self.ballast.bytes()
            },
        };
        match self.health.next_step(self.disk_space, retry) {
            HealthStep::Stay => {}
            HealthStep::PauseLowDisk => {
                self.pause_writes(StoreHealth::LowDisk { since: unix_now() })
            }
            HealthStep::Resume => self.resume_writes(),
            HealthStep::Reopen => self.reopen_store(),
            HealthStep::ProbeWrites => {
                self.last_store_retry = Instant::now();
                let probed = self
                    .ballast
                    .ensure()
                    .map_err(|e| format!("cannot write the emergency ballast yet: {e}"))
                    .and_then(|()| {
                        let store = self.chain.store();
                        store.check_writes().map_err(|e| {
                            store.close_after_failure();
                            format!("the store still cannot write: {e}")
                        })
                    });
                match probed {
                    Ok(()) => self.resume_writes(),
                    Err(e) => {
                        tracing::warn!(target: "cairn::chain", "{e}");
                        if self.chain.store().is_closed() {
                            self.reopen_store();
                        }
                    }
                }
            }
        }
    }

    /// Stops writing blocks (the logic gives back or ignores them, the miner pauses) and
    /// says why.
    fn pause_writes(&mut self, health: StoreHealth) {
        if let Some(problem) = health.problem(self.disk_space) {
            tracing::error!(target: "cairn::chain", "{problem}");
        }
        self.health = health;
        self.tell_durability();
        self.refresh_health_view();
    }

    /// A write or flush failed: what sled holds in memory may be ahead of the disk and will
    /// not be written. The store is reopened from disk at once, so that reads show what is
    /// durable, and the chain goes back to the tip on disk.
    fn store_failed(&mut self, error: StorageFailure) {
        if matches!(self.health, StoreHealth::Failed { .. }) && self.chain.store().is_closed() {
            // Still closed after the failure being handled; `check_store_health` retries.
            tracing::debug!(target: "cairn::chain", "store still closed: {error}");
            return;
        }
        tracing::error!(target: "cairn::chain", "store failure: {error}");
        self.chain.store().close_after_failure();
        self.pause_writes(StoreHealth::Failed {
            error,
            since: unix_now(),
        });
        self.reopen_store();
    }

    /// Reopens a closed store from disk and takes its tip; the mempool follows. On a full
    /// disk the emergency ballast is deleted to make the room sled needs to open.
    fn reopen_store(&mut self) {
        self.last_store_retry = Instant::now();
        let mut reopened = self.chain.store().reopen();
        if reopened.is_err() && self.ballast.release() {
            tracing::warn!(
                target: "cairn::chain",
                "deleted the emergency ballast ({}) to reopen the store",
                human_bytes(self.ballast.bytes())
            );
            reopened = self.chain.store().reopen();
        }
        let tip = match reopened
            .map_err(|e| e.to_string())
            .and_then(|_| self.chain.reload().cloned().map_err(|e| e.to_string()))
        {
            Ok(tip) => tip,
            Err(e) => {
                tracing::error!(target: "cairn::chain", "cannot reopen the store yet: {e}");
                return;
            }
        };
        tracing::warn!(
            target: "cairn::chain",
            "store reopened from disk at height {} ({})",
            tip.height(),
            tip.hash()
        );
        // The logic has the mempool follow the tip on disk.
        self.feed(Input::Wake);
    }

    /// Takes blocks and transfers again.
    fn resume_writes(&mut self) {
        tracing::info!(
            target: "cairn::chain",
            "the store writes again ({} free): taking blocks and transfers, mining if on",
            human_bytes(self.disk_space.available)
        );
        self.health = StoreHealth::Writable;
        self.tell_durability();
        self.refresh_health_view();
    }

    /// Tells the logic whether the store writes (it pauses blocks, transfers and the miner
    /// meanwhile; it acts only when that changes).
    fn tell_durability(&mut self) {
        let problem = self.health.problem(self.disk_space);
        self.feed(Input::Durability(problem));
    }

    /// Rewrites the health view the HTTP API serves (with the last free-space reading).
    fn refresh_health_view(&self) {
        let height = self
            .chain
            .store()
            .tip()
            .map_or(self.chain.tip().height(), |tip| tip.height());
        let view = self.health.view(height, self.disk_space);
        if let Ok(mut shared) = self.shared.health.write() {
            *shared = view;
        }
    }

    /// Rewrites the peers view the HTTP API serves.
    fn refresh_view(&self) {
        self.shared.metrics.peers.set(self.connections.len() as i64);
        self.shared
            .syncing
            .store(self.logic.protocol().is_syncing(), Ordering::Relaxed);
        let peer_id = self.net.local_peer_id();
        let peers = self
            .logic
            .protocol()
            .peers()
            .map(|(peer, info)| {
                let connection = self.connections.get(peer);
                PeerView {
                    peer_id: peer.to_string(),
                    address: connection.map(|c| c.address.clone()).unwrap_or_default(),
                    direction: match connection {
                        Some(c) if c.outbound => "outbound",
                        _ => "inbound",
                    }
                    .to_string(),
                    agent: connection.and_then(|c| c.agent.clone()),
                    height: info.status.as_ref().map(|s| s.height),
                    tip: info.status.as_ref().map(|s| s.tip.to_string()),
                    score: self.logic.protocol().score(peer),
                    requests_in_flight: info.requests_in_flight,
                }
            })
            .collect();
        let bans = self
            .logic
            .protocol()
            .bans()
            .map(|(peer, until_ms)| BanView {
                peer_id: peer.to_string(),
                until: until_ms / 1000,
                reason: self.ban_reasons.get(peer).cloned().unwrap_or_default(),
            })
            .collect();
        let view = PeersView {
            peer_id: peer_id.to_string(),
            listen_addresses: self
                .net
                .listen_addresses()
                .iter()
                .map(|a| format!("{a}/p2p/{peer_id}"))
                .collect(),
            peers,
            bans,
        };
        if let Ok(mut shared) = self.shared.peers.write() {
            *shared = view;
        }
    }
}

/// A random start for the extra nonce: two nodes mining to the same address from the same
/// tip in the same second would otherwise build identical templates and search the same
/// nonces, duplicating each other's work.
fn random_extra_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        tracing::warn!(target: "cairn::miner", "no randomness for the extra nonce: starting at 0");
    }
    u64::from_le_bytes(bytes)
}

/// `3725` → `1h 2m 5s`.
fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// The network layer's form of the logic's verdict.
fn gossip_verdict(verdict: Verdict) -> GossipVerdict {
    match verdict {
        Verdict::Accept => GossipVerdict::Accept,
        Verdict::Reject => GossipVerdict::Reject,
        Verdict::Ignore => GossipVerdict::Ignore,
    }
}
