//! The event loop: one thread that owns the chain manager and the network logic
//! (`core::protocol::machine::Protocol`). It turns network events, mined blocks, admin calls
//! and clock ticks into events for the logic, and carries out the actions that come back:
//! network commands, bans in the store, new templates for the miner, and the log.
//!
//! ```text
//!   swarm task ── NetEvent ──┐
//!   miner threads ── block ──┼──► channel ──► Driver ──► Protocol::handle(event, chain, now)
//!   HTTP admin ── ban/unban ─┘                  │              │ actions
//!                                               ▼              ▼
//!                                   store (bans), miner, NetCommand, log, peers view
//! ```
//! All chain writes happen here, one after another.
use crate::core::primitives::{Address, Block};
use crate::core::protocol::machine::{Action, Event, Protocol, TipSource, Verdict};
use crate::core::protocol::peers::Misbehavior;
use crate::node::api::views::{BanView, PeerView, PeersView};
use crate::node::chain::ChainManager;
use crate::node::clock::{unix_now, unix_now_ms};
use crate::node::miner::MinerHandle;
use crate::node::net::{GossipVerdict, Malformed, NetCommand, NetEvent, NetHandle, PeerId};
use crate::node::store::BanRecord;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often the miner's hash rate is logged.
const HASHRATE_REPORT: Duration = Duration::from_secs(10);
/// How old a template may get before the miner is given a fresh one. Templates carry the
/// latest time a block may have (clock + allowed drift); refreshing well inside that keeps
/// block times on the clock when a block takes long to find.
const TEMPLATE_REFRESH: Duration = Duration::from_secs(30);
/// How often the logic's clock ticks.
const TICK: Duration = Duration::from_secs(1);
/// While blocks stream in, the miner gets a new template at most this often.
const TEMPLATE_COALESCE: Duration = Duration::from_millis(100);

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
}

/// Mining setup for the driver.
pub struct MiningSetup {
    /// The mining threads.
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

/// The driver: owner of the chain manager and the network logic.
pub struct Driver {
    chain: ChainManager,
    protocol: Protocol<PeerId>,
    net: NetHandle,
    mining: Option<MiningSetup>,
    data_dir: PathBuf,
    extra_nonce: u64,
    stats: DriverStats,
    template_built: Instant,
    template_stale: bool,
    connections: BTreeMap<PeerId, Connection>,
    ban_reasons: BTreeMap<PeerId, String>,
    view: Arc<RwLock<PeersView>>,
}

impl Driver {
    /// A driver over `chain` and the network `net`, mining if `mining` is given.
    pub fn new(
        chain: ChainManager,
        protocol: Protocol<PeerId>,
        net: NetHandle,
        mining: Option<MiningSetup>,
        data_dir: PathBuf,
        ban_reasons: BTreeMap<PeerId, String>,
        view: Arc<RwLock<PeersView>>,
    ) -> Driver {
        Driver {
            chain,
            protocol,
            net,
            mining,
            data_dir,
            extra_nonce: random_extra_nonce(),
            stats: DriverStats::default(),
            template_built: Instant::now(),
            template_stale: false,
            connections: BTreeMap::new(),
            ban_reasons,
            view,
        }
    }

    /// Runs until `shutdown` is set or every sender is gone; then stops the miner and
    /// flushes the store.
    pub fn run(mut self, events: Receiver<DriverEvent>, shutdown: Arc<AtomicBool>) {
        self.publish_template();
        self.refresh_view();
        let mut last_tick = Instant::now();
        let mut last_report = Instant::now();
        let mut last_attempts = 0u64;
        while !shutdown.load(Ordering::Acquire) {
            match events.recv_timeout(Duration::from_millis(100)) {
                Ok(event) => self.on_event(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.feed(Event::Tick);
                self.refresh_view();
            }
            let due = self.template_built.elapsed();
            if (self.template_stale && due >= TEMPLATE_COALESCE) || due >= TEMPLATE_REFRESH {
                self.publish_template();
            }
            if let Some(mining) = &self.mining {
                let elapsed = last_report.elapsed();
                if elapsed >= HASHRATE_REPORT {
                    let attempts = mining.miner.stats().attempts.load(Ordering::Relaxed);
                    let rate = (attempts - last_attempts) as f64 / elapsed.as_secs_f64();
                    tracing::info!(
                        target: "cairn::miner",
                        "hash rate {:.2} MH/s on {} threads; {} blocks mined, {} stale",
                        rate / 1e6,
                        mining.threads,
                        self.stats.mined,
                        self.stats.stale
                    );
                    last_report = Instant::now();
                    last_attempts = attempts;
                }
            }
        }
        if let Some(mining) = self.mining.take() {
            mining.miner.stop();
        }
        if let Err(e) = self.chain.store().flush() {
            tracing::error!(error = %e, "could not flush the store at shutdown");
        }
    }

    fn on_event(&mut self, event: DriverEvent) {
        match event {
            DriverEvent::Mined(block) => self.feed(Event::Mined(block)),
            DriverEvent::Ban(peer) => {
                self.feed(Event::Ban(peer));
                self.refresh_view();
            }
            DriverEvent::Unban(peer) => {
                self.feed(Event::Unban(peer));
                self.refresh_view();
            }
            DriverEvent::Net(event) => self.on_net_event(event),
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
                self.feed(Event::PeerConnected(peer));
                self.refresh_view();
            }
            NetEvent::PeerDisconnected { peer } => {
                tracing::info!(target: "cairn::net", "peer {peer} disconnected");
                self.connections.remove(&peer);
                self.feed(Event::PeerDisconnected(peer));
                self.refresh_view();
            }
            NetEvent::PeerIdentified { peer, agent } => {
                if let Some(connection) = self.connections.get_mut(&peer) {
                    connection.agent = Some(agent);
                }
            }
            NetEvent::InboundRequest { peer, id, request } => {
                self.feed(Event::Request { peer, id, request })
            }
            NetEvent::Response { peer, id, response } => {
                self.feed(Event::Response { peer, id, response })
            }
            NetEvent::RequestFailed { peer, id, reason } => {
                tracing::debug!(target: "cairn::net", "request {id} to {peer} failed: {reason}");
                self.feed(Event::RequestFailed { peer, id });
            }
            NetEvent::GossipBlock { source, block } => self.feed(Event::GossipBlock {
                peer: source,
                block,
            }),
            NetEvent::GossipTransfer { source, transfer } => {
                // Transfers are relayed once the mempool exists; until then they are not
                // forwarded, and not held against the sender.
                self.net.send(NetCommand::ReportTransfer {
                    txid: transfer.txid(),
                    source,
                    verdict: GossipVerdict::Ignore,
                });
            }
            NetEvent::Malformed { peer, kind, detail } => {
                tracing::warn!(target: "cairn::net", "peer {peer} sent bad bytes ({kind:?}): {detail}");
                let fault = match kind {
                    Malformed::Undecodable => Misbehavior::MalformedMessage,
                    Malformed::Oversized => Misbehavior::OversizedMessage,
                };
                self.feed(Event::Misbehaved { peer, fault });
            }
        }
    }

    /// Hands an event to the logic and carries out its actions.
    fn feed(&mut self, event: Event<PeerId>) {
        let actions = self.protocol.handle(event, &mut self.chain, unix_now_ms());
        for action in actions {
            self.carry_out(action);
        }
    }

    fn carry_out(&mut self, action: Action<PeerId>) {
        match action {
            Action::Request { peer, id, request } => {
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
                verdict: match verdict {
                    Verdict::Accept => GossipVerdict::Accept,
                    Verdict::Reject => GossipVerdict::Reject,
                    Verdict::Ignore => GossipVerdict::Ignore,
                },
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
                self.template_stale = true;
                if let Some(reorg) = reorg {
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
                        tracing::info!(
                            target: "cairn::chain",
                            "mined block {} at height {} (chain work {})",
                            tip.hash(),
                            tip.height(),
                            tip.chain_work
                        );
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
                self.template_stale = true;
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
            Action::StoreFailed(e) => tracing::error!(target: "cairn::chain", "store failure: {e}"),
        }
    }

    /// Gives the miner a template on the current tip.
    fn publish_template(&mut self) {
        self.template_stale = false;
        self.template_built = Instant::now();
        let Some(mining) = &self.mining else {
            return;
        };
        self.extra_nonce = self.extra_nonce.wrapping_add(1);
        match self.chain.template(
            mining.reward_address,
            unix_now(),
            self.extra_nonce,
            Vec::new(),
        ) {
            Ok(template) => mining.miner.set_job(template),
            Err(e) => tracing::error!(target: "cairn::miner", "cannot build a block template: {e}"),
        }
    }

    /// Rewrites the peers view the HTTP API serves.
    fn refresh_view(&self) {
        let peer_id = self.net.local_peer_id();
        let peers = self
            .protocol
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
                    score: self.protocol.score(peer),
                    requests_in_flight: info.requests_in_flight,
                }
            })
            .collect();
        let bans = self
            .protocol
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
        if let Ok(mut shared) = self.view.write() {
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
