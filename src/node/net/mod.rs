//! The peer-to-peer network: a libp2p swarm on its own tokio task, speaking only standard
//! libp2p protocols, so any libp2p implementation can dial a node, identify it and read its
//! gossip. Owns the swarm, the node key and the bytes on the wire; decides nothing about
//! blocks, transfers or peers' behaviour: the node does, and answers through commands.
//!
//! ```text
//!                 NetHandle::send(NetCommand)  (any thread, never blocks)
//!   node ──────────────────────────────────────────────────────┐
//!    ▲                                                          ▼
//!    │ sink(NetEvent)                 ┌──────────── service task (tokio) ────────────┐
//!    └────────────────────────────────┤ Swarm<Behaviour>                             │
//!                                     │  allow/block list · limits · admission gate  │
//!                                     │  identify · ping · kademlia · mDNS           │
//!                                     │  gossipsub: blocks, transfers (validated)    │
//!                                     │  request-response /cairn/sync/1 (`wire`)     │
//!                                     │ peer upkeep: dial known peers up to target   │
//!                                     └──────────────────────────────────────────────┘
//! ```
//!
//! Gossip is validated by the node: a received block or transfer is held by gossipsub until
//! the node reports a verdict (`ReportBlock` / `ReportTransfer`); only accepted messages are
//! forwarded. Bytes that do not decode are rejected here and reported as
//! [`NetEvent::Malformed`], as are oversized or undecodable sync requests and responses.
//!
//! Connection slots are guarded by the `admission` gate: caps per host and net group on
//! connections still in their handshake, a short handshake deadline, slots kept for outbound
//! connections, and eviction of the inbound peers that contribute least when a new one
//! arrives to full slots ([`AdmissionConfig`]).
//!
//! The service stops when every [`NetHandle`] is dropped, or when its task is aborted.
mod admission;
mod behaviour;
mod gossip;
mod identity;
mod service;
mod traffic;
mod wire;

#[cfg(test)]
mod tests;

pub use admission::{AdmissionConfig, AdmissionError};
pub use gossip::{BlockRelay, GossipTopic};
pub use identity::NODE_KEY_FILE;
pub use libp2p::{Multiaddr, PeerId};
pub use traffic::Traffic;
pub use wire::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

use crate::core::primitives::{Block, BlockHash, Transfer, Txid};
use crate::core::protocol::compact::BlockAnnouncement;
use crate::core::protocol::messages::{SyncRequest, SyncResponse};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// The default P2P port.
pub const DEFAULT_PORT: u16 = 7370;

/// The default for [`NetConfig::inbound_handshake_timeout`]: an honest handshake takes a few
/// round trips, well under a second even across the world; an idle socket holds a pending
/// slot this long at most.
pub const DEFAULT_INBOUND_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the network needs to start.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The data directory; the node key is kept at `data_dir/node_key`.
    pub data_dir: PathBuf,
    /// The chain's genesis hash: names the gossip topics and appears in identify's protocol
    /// version, so nodes of other chains do not share topics or routing tables with us.
    pub genesis: BlockHash,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/7370`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start. With a `/p2p/<peer id>` suffix they also seed Kademlia.
    pub bootnodes: Vec<Multiaddr>,
    /// Addresses at which others can reach us, announced as they are.
    pub external_addresses: Vec<Multiaddr>,
    /// Whether to discover peers on the local network with mDNS.
    pub mdns: bool,
    /// The largest block in bytes; gossip messages may be 64 KiB larger.
    pub max_block_bytes: usize,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Limits on inbound connections and the slots kept for outbound ones.
    pub admission: AdmissionConfig,
    /// How long an inbound connection may take from TCP accept to a finished noise and yamux
    /// handshake before it is closed (our dials keep libp2p's 10 s).
    pub inbound_handshake_timeout: Duration,
    /// Known peers are dialed while fewer than this many are connected.
    pub target_peers: usize,
    /// Peers refused from the start.
    pub banned: Vec<PeerId>,
    /// How long a sync request may wait for its response.
    pub request_timeout: Duration,
    /// How mined blocks are announced: compact (default) or whole.
    pub block_relay: BlockRelay,
    /// Where the bytes read from and written to peers are counted.
    pub traffic: Traffic,
}

impl NetConfig {
    /// A configuration with defaults: listen on all IPv4 interfaces on port 7370, no
    /// bootnodes, no mDNS, 64 connections with [`AdmissionConfig::default`], a 5 s inbound
    /// handshake deadline, 8 target peers, 20 s request timeout.
    pub fn new(data_dir: PathBuf, genesis: BlockHash, max_block_bytes: usize) -> NetConfig {
        NetConfig {
            data_dir,
            genesis,
            listen: vec![Multiaddr::from(std::net::Ipv4Addr::UNSPECIFIED)
                .with(libp2p::multiaddr::Protocol::Tcp(DEFAULT_PORT))],
            bootnodes: Vec::new(),
            external_addresses: Vec::new(),
            mdns: false,
            max_block_bytes,
            max_connections: 64,
            admission: AdmissionConfig::default(),
            inbound_handshake_timeout: DEFAULT_INBOUND_HANDSHAKE_TIMEOUT,
            target_peers: 8,
            banned: Vec::new(),
            request_timeout: Duration::from_secs(20),
            block_relay: BlockRelay::Compact,
            traffic: Traffic::default(),
        }
    }
}

/// What the node decides about a gossiped block or transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipVerdict {
    /// Valid: deliver and forward it.
    Accept,
    /// Invalid: drop it and penalise the peer in gossipsub's score.
    Reject,
    /// Neither (a duplicate, an orphan we cannot check yet): drop it without penalty.
    Ignore,
}

/// What was wrong with bytes a peer sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// They do not decode as the expected message.
    Undecodable,
    /// Their announced length is over the protocol's limit.
    Oversized,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// We listen on `address` (one event per bound address).
    Listening {
        /// The bound address, without `/p2p/`.
        address: Multiaddr,
    },
    /// A first connection to `peer` is open.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its address on this connection, without `/p2p/` (for an inbound connection, the
        /// port is usually not the one it listens on).
        address: Multiaddr,
        /// Whether we dialed it.
        outbound: bool,
    },
    /// The last connection to `peer` closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// `peer` told us its agent version (once per connected period, again if it changes).
    PeerIdentified {
        /// The peer.
        peer: PeerId,
        /// Its agent version, e.g. `cairn/0.1.0`.
        agent: String,
    },
    /// `peer` asks something; answer with [`NetCommand::Respond`] and this `id` within the
    /// request timeout.
    InboundRequest {
        /// The peer.
        peer: PeerId,
        /// Names the request in [`NetCommand::Respond`].
        id: u64,
        /// The request, already decoded (its bounds are not checked yet).
        request: SyncRequest,
    },
    /// The answer to our [`NetCommand::Request`] with this `id`.
    Response {
        /// The peer that answered.
        peer: PeerId,
        /// The id given in the request.
        id: u64,
        /// The response, already decoded (not yet checked against the request).
        response: SyncResponse,
    },
    /// Our request with this `id` got no usable answer.
    RequestFailed {
        /// The peer asked.
        peer: PeerId,
        /// The id given in the request.
        id: u64,
        /// Why: timeout, connection closed, unsupported protocol, dial failure, bad bytes.
        reason: String,
    },
    /// A gossiped block; report a verdict with [`NetCommand::ReportBlock`].
    GossipBlock {
        /// The peer that forwarded it to us (the one to report and penalise).
        source: PeerId,
        /// The block, compact or whole.
        announcement: BlockAnnouncement,
    },
    /// A gossiped transfer; report a verdict with [`NetCommand::ReportTransfer`].
    GossipTransfer {
        /// The peer that forwarded it to us.
        source: PeerId,
        /// The transfer.
        transfer: Transfer,
    },
    /// `peer` sent bytes that break the protocol: undecodable gossip (already rejected here)
    /// or an oversized or undecodable sync request or response.
    Malformed {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        kind: Malformed,
        /// A description for logs.
        detail: String,
    },
}

/// What the node tells the network.
#[derive(Debug)]
pub enum NetCommand {
    /// Sends `request` to `peer` (dialing it if needed); the answer comes as
    /// [`NetEvent::Response`] or [`NetEvent::RequestFailed`] with the same `id`.
    Request {
        /// The peer.
        peer: PeerId,
        /// Any id of the caller's choosing, echoed in the answer.
        id: u64,
        /// The request.
        request: SyncRequest,
    },
    /// Answers the [`NetEvent::InboundRequest`] with this `id` (at most
    /// [`MAX_RESPONSE_BYTES`] encoded, or it is not sent).
    Respond {
        /// The request's id.
        id: u64,
        /// The response.
        response: SyncResponse,
    },
    /// Drops the [`NetEvent::InboundRequest`] with this `id` unanswered (a refused request:
    /// the stream closes and the requester sees a failure).
    Refuse {
        /// The request's id.
        id: u64,
    },
    /// Gossips a block (ours, or one accepted from a peer that we did not get by gossip).
    PublishBlock(Block),
    /// Gossips a transfer.
    PublishTransfer(Transfer),
    /// The node's verdict on a [`NetEvent::GossipBlock`].
    ReportBlock {
        /// The block's hash.
        hash: BlockHash,
        /// The `source` of the event.
        source: PeerId,
        /// The verdict.
        verdict: GossipVerdict,
    },
    /// The node's verdict on a [`NetEvent::GossipTransfer`].
    ReportTransfer {
        /// The transfer's txid.
        txid: Txid,
        /// The `source` of the event.
        source: PeerId,
        /// The verdict.
        verdict: GossipVerdict,
    },
    /// Dials an address (with or without `/p2p/<peer id>`).
    Dial(Multiaddr),
    /// Closes every connection to a peer (it may connect again).
    Disconnect(PeerId),
    /// Closes every connection to a peer and refuses it until [`NetCommand::Unban`].
    Ban(PeerId),
    /// Lifts a ban.
    Unban(PeerId),
    /// For tests of hostile peers only, not part of the protocol: publishes `data` as it is
    /// on one of our topics.
    #[doc(hidden)]
    PublishRaw {
        /// The topic.
        topic: GossipTopic,
        /// The message bytes.
        data: Vec<u8>,
    },
    /// For tests of hostile peers only, not part of the protocol: sends `bytes` as a sync
    /// request body (length-prefixed, any length, no limit); answered like `Request`.
    #[doc(hidden)]
    RequestRaw {
        /// The peer.
        peer: PeerId,
        /// Echoed in the answer.
        id: u64,
        /// The body.
        bytes: Vec<u8>,
    },
    /// For tests of hostile peers only, not part of the protocol: answers the inbound
    /// request `id` with `bytes` as the response body (length-prefixed, no limit).
    #[doc(hidden)]
    RespondRaw {
        /// The request's id.
        id: u64,
        /// The body.
        bytes: Vec<u8>,
    },
}

impl NetCommand {
    /// The variant's name, for logs (a block's `Debug` is too long to log).
    fn name(&self) -> &'static str {
        match self {
            NetCommand::Request { .. } => "Request",
            NetCommand::Respond { .. } => "Respond",
            NetCommand::Refuse { .. } => "Refuse",
            NetCommand::PublishBlock(_) => "PublishBlock",
            NetCommand::PublishTransfer(_) => "PublishTransfer",
            NetCommand::ReportBlock { .. } => "ReportBlock",
            NetCommand::ReportTransfer { .. } => "ReportTransfer",
            NetCommand::Dial(_) => "Dial",
            NetCommand::Disconnect(_) => "Disconnect",
            NetCommand::Ban(_) => "Ban",
            NetCommand::Unban(_) => "Unban",
            NetCommand::PublishRaw { .. } => "PublishRaw",
            NetCommand::RequestRaw { .. } => "RequestRaw",
            NetCommand::RespondRaw { .. } => "RespondRaw",
        }
    }
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The node key file could not be read or written.
    #[error("cannot read or write the node key {path}: {source}")]
    Identity {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The node key file holds no valid key.
    #[error("the node key {path} is corrupt ({detail}); move it away to create a new identity")]
    CorruptIdentity {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A listen address could not be bound or is not a TCP address.
    #[error("cannot listen on {address}: {detail}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        detail: String,
    },
    /// The TCP, noise or yamux transport could not be built.
    #[error("cannot build the transport: {0}")]
    Transport(String),
    /// A protocol could not be set up (gossipsub, mDNS).
    #[error("cannot set up the network protocols: {0}")]
    Behaviour(String),
    /// `start` was called outside a tokio runtime.
    #[error("the network must be started inside a tokio runtime")]
    NoRuntime,
}

/// A cloneable handle to the network service.
#[derive(Clone, Debug)]
pub struct NetHandle {
    commands: mpsc::UnboundedSender<NetCommand>,
    local_peer_id: PeerId,
    listen_addresses: Arc<Mutex<Vec<Multiaddr>>>,
}

impl NetHandle {
    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Queues a command. Never blocks, so any thread may call it; if the service has stopped
    /// the command is dropped (and logged at debug level).
    pub fn send(&self, command: NetCommand) {
        if let Err(e) = self.commands.send(command) {
            tracing::debug!("network service stopped; dropped a {} command", e.0.name());
        }
    }

    /// The addresses we listen on, as bound (a port of 0 resolved), without `/p2p/`.
    pub fn listen_addresses(&self) -> Vec<Multiaddr> {
        self.listen_addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Called by the service task with every event; must not block.
pub type EventSink = Box<dyn Fn(NetEvent) + Send + Sync>;

/// Builds the swarm and spawns its task on the current tokio runtime. Events go to `sink`,
/// called from the swarm task (it must not block; the caller will forward into a std mpsc channel).
pub fn start(
    config: NetConfig,
    sink: Box<dyn Fn(NetEvent) + Send + Sync>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetError::NoRuntime)?;
    let key = identity::load_or_create(&config.data_dir)?;
    let local_peer_id = key.public().to_peer_id();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let listen_addresses = Arc::new(Mutex::new(Vec::new()));
    let service =
        service::NetService::new(key, config, sink, command_rx, Arc::clone(&listen_addresses))?;
    let task = runtime.spawn(service.run());
    Ok((
        NetHandle {
            commands,
            local_peer_id,
            listen_addresses,
        },
        task,
    ))
}
