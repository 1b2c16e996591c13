//! The node's libp2p `NetworkBehaviour`: which standard protocols run on every connection and
//! how each is configured. Builds the behaviour; the service drives it.
//!
//! ```text
//!   blocked     allow_block_list   banned peers are refused and their connections closed
//!   limits      connection_limits  per peer, pending outbound
//!   gate        (`admission`)      inbound slots: per host and net group, outbound slots kept,
//!                                  eviction of inbound peers that contribute least
//!   identify    /ipfs/id/1.0.0     protocol version /cairn/<genesis[..8]>, agent cairn/<version>
//!   ping        /ipfs/ping/1.0.0   every PING_INTERVAL; the service closes a connection
//!                                  whose ping goes unanswered for PING_TIMEOUT
//!   kademlia    /cairn/kad/1.0.0   server mode, memory store: peer discovery only
//!   mdns        (optional)         local network discovery
//!   gossipsub   /meshsub/1.x       signed, strict, validated by the node before forwarding
//!   sync        /cairn/sync/1      request-response, our codec (see `wire`)
//! ```
//!
//! The allow/block list, the limits and the gate come first, so a refused connection is refused
//! before any other protocol sees it. The gate comes after the other two: when it evicts a peer
//! to admit a newcomer, nothing after it refuses the newcomer, so no eviction is wasted.
use super::admission::ConnectionGate;
use super::gossip::Topics;
use super::wire::{SyncCodec, SYNC_PROTOCOL};
use super::{NetConfig, NetError};
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, kad, mdns, ping, request_response,
    StreamProtocol,
};
use std::time::Duration;

/// Kademlia's protocol name: our own, so that our routing tables hold only Cairn nodes.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/cairn/kad/1.0.0");

/// How often Kademlia refreshes its routing table with a bootstrap query.
pub const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(60);

/// How often each connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long a ping may go unanswered before its connection counts as dead (and is closed, so
/// that the peer is dialed afresh: a TCP connection across a network split that healed can
/// otherwise sit in retransmission backoff for minutes).
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Gossipsub's heartbeat: meshes form within a few of these.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(700);

/// Heartbeats a received message waits for the node's verdict before it is dropped unreported
/// (about 14 s at [`GOSSIP_HEARTBEAT`]).
pub const GOSSIP_HISTORY_LENGTH: usize = 20;

/// Room beyond the largest block for gossipsub's envelope (signature, key, topic, framing).
pub const GOSSIP_OVERHEAD_BYTES: usize = 64 * 1024;

/// Most simultaneous request-response streams on one connection.
pub const MAX_CONCURRENT_STREAMS: usize = 32;

/// Most established connections to one peer (two, so that simultaneous dials both succeed).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// Most outbound connections being set up at once (inbound ones: see `AdmissionConfig`).
pub const MAX_PENDING_OUTBOUND: u32 = 16;

/// The protocols of a Cairn node.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Refuses banned peers.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Caps connections per peer and our dials in progress.
    pub limits: connection_limits::Behaviour,
    /// Decides which connections get a slot (see `admission`).
    pub gate: ConnectionGate,
    /// Exchanges versions and listen addresses.
    pub identify: identify::Behaviour,
    /// Keeps connections measured and alive.
    pub ping: ping::Behaviour,
    /// Finds peers.
    pub kademlia: kad::Behaviour<kad::store::MemoryStore>,
    /// Finds peers on the local network, when enabled.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Spreads blocks and transfers.
    pub gossipsub: gossipsub::Behaviour,
    /// Sync requests and responses.
    pub sync: request_response::Behaviour<SyncCodec>,
}

impl Behaviour {
    /// Builds the behaviour for the node with `key`, subscribed to `topics`.
    pub fn new(key: &Keypair, config: &NetConfig, topics: &Topics) -> Result<Behaviour, NetError> {
        let peer_id = key.public().to_peer_id();
        let behaviour_error = |detail: String| NetError::Behaviour(detail);

        let mut blocked = allow_block_list::Behaviour::<allow_block_list::BlockedPeers>::default();
        for peer in &config.banned {
            blocked.block_peer(*peer);
        }

        // The totals are the gate's: it may admit a newcomer over them while it closes the
        // peer it evicted, which a second count would refuse.
        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                .with_max_pending_outgoing(Some(MAX_PENDING_OUTBOUND)),
        );
        let eviction_key = getrandom::u64()
            .map_err(|e| behaviour_error(format!("no randomness for the eviction key: {e}")))?;
        let gate = ConnectionGate::new(config.admission, config.max_connections, eviction_key);

        let identify = identify::Behaviour::new(
            identify::Config::new(protocol_version(&config.genesis), key.public())
                .with_agent_version(agent_version()),
        );

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_periodic_bootstrap_interval(Some(KAD_BOOTSTRAP_INTERVAL));
        let mut kademlia =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Serve queries even before any address is confirmed external (loopback, LAN).
        kademlia.set_mode(Some(kad::Mode::Server));

        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|e| behaviour_error(format!("cannot start mDNS: {e}")))?,
            )
        } else {
            None
        };

        let gossip_topics = topics.clone();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(config.max_block_bytes.saturating_add(GOSSIP_OVERHEAD_BYTES))
            .heartbeat_interval(GOSSIP_HEARTBEAT)
            .heartbeat_initial_delay(GOSSIP_HEARTBEAT)
            .history_length(GOSSIP_HISTORY_LENGTH)
            .message_id_fn(move |message| gossip_topics.message_id(message))
            .build()
            .map_err(|e| behaviour_error(format!("invalid gossipsub configuration: {e}")))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| behaviour_error(format!("cannot start gossipsub: {e}")))?;
        for topic in [&topics.blocks, &topics.transfers] {
            gossipsub
                .subscribe(topic)
                .map_err(|e| behaviour_error(format!("cannot subscribe to {topic}: {e}")))?;
        }

        let sync = request_response::Behaviour::with_codec(
            SyncCodec,
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
        );

        Ok(Behaviour {
            blocked,
            limits,
            gate,
            identify,
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
            kademlia,
            mdns: Toggle::from(mdns),
            gossipsub,
            sync,
        })
    }
}

/// Identify's protocol version: `/cairn/` and the first 8 hex digits of the genesis hash.
pub fn protocol_version(genesis: &crate::core::primitives::BlockHash) -> String {
    format!("/cairn/{}", hex::encode(&genesis.as_bytes()[..4]))
}

/// Identify's agent version: `cairn/` and this crate's version.
pub fn agent_version() -> String {
    format!("cairn/{}", env!("CARGO_PKG_VERSION"))
}
