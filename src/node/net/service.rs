//! The network service: one tokio task that owns the swarm, turns swarm events into
//! [`NetEvent`]s for the node, carries out [`NetCommand`]s, and keeps enough peers connected.
//!
//! # Invariants
//! - `outbound` holds exactly the sync requests sent and not yet answered or failed; each is
//!   answered by one `Response` or one `RequestFailed` event.
//! - `inbound` holds the response channels of the `InboundRequest` events not yet answered;
//!   `inbound_ids` maps libp2p's ids of those requests to ours until libp2p reports the
//!   response sent or the request failed.
//! - `banned` is the set in the allow/block list behaviour; the upkeep never dials its peers.
//! - `identified` has an entry only for connected peers.
use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::gossip::{message_id_of, BlockRelay, GossipTopic, Topics};
use super::traffic::Counted;
use super::wire::{malformed_kind, WireRequest, WireResponse};
use super::{behaviour, EventSink, Malformed, NetCommand, NetConfig, NetError, NetEvent};
use crate::core::primitives::codec;
use crate::core::primitives::Transfer;
use crate::core::protocol::compact::BlockAnnouncement;
use libp2p::core::transport::timeout::TransportTimeout;
use libp2p::core::upgrade;
use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{
    self, InboundRequestId, OutboundFailure, OutboundRequestId, ResponseChannel,
};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::SwarmEvent;
use libp2p::{
    identify, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder, Transport,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a connection with no open streams stays up; sync requests are sparse, and
/// gossipsub and ping keep useful connections busy anyway.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the peer upkeep runs.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The upkeep does not dial a peer (or the bootnodes without peer id) again sooner than this.
const REDIAL_AFTER: Duration = Duration::from_secs(30);

/// The swarm's task. See the module docs.
pub struct NetService {
    swarm: Swarm<Behaviour>,
    topics: Topics,
    /// How the blocks this node mines go on the wire.
    block_relay: BlockRelay,
    sink: EventSink,
    commands: mpsc::UnboundedReceiver<NetCommand>,
    listen_addresses: Arc<Mutex<Vec<Multiaddr>>>,
    /// Identify's protocol version of our chain.
    protocol_version: String,
    target_peers: usize,
    /// Bootnodes given without `/p2p/`: redialed by the upkeep when no peer is connected.
    anonymous_bootnodes: Vec<Multiaddr>,
    banned: HashSet<PeerId>,
    outbound: HashMap<OutboundRequestId, u64>,
    inbound: HashMap<u64, ResponseChannel<WireResponse>>,
    inbound_ids: HashMap<InboundRequestId, u64>,
    next_inbound_id: u64,
    /// The agent last reported for each connected peer.
    identified: HashMap<PeerId, String>,
    /// When the upkeep last dialed each peer.
    recent_dials: HashMap<PeerId, Instant>,
    /// When the upkeep last dialed the anonymous bootnodes.
    anonymous_dialed_at: Option<Instant>,
}

impl NetService {
    /// Builds the swarm, starts listening and dials the bootnodes. Must run inside a tokio
    /// runtime (the TCP transport binds here).
    pub fn new(
        key: Keypair,
        config: NetConfig,
        sink: EventSink,
        commands: mpsc::UnboundedReceiver<NetCommand>,
        listen_addresses: Arc<Mutex<Vec<Multiaddr>>>,
    ) -> Result<NetService, NetError> {
        let topics = Topics::new(&config.genesis);
        let behaviour = Behaviour::new(&key, &config, &topics)?;
        let handshake_timeout = config.inbound_handshake_timeout;
        let traffic = config.traffic.clone();
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            // TCP, noise and yamux as `with_tcp` builds them, except that an inbound connection
            // must finish its handshake within the deadline (the builder's 10 s timeout still
            // bounds our dials): an idle socket holds a pending slot that long at most.
            .with_other_transport(
                |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                    let transport =
                        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                            .map(move |stream, _| Counted::new(stream, traffic.clone()))
                            .upgrade(upgrade::Version::V1Lazy)
                            .authenticate(noise::Config::new(key)?)
                            .multiplex(yamux::Config::default());
                    Ok(TransportTimeout::with_ingoing_timeout(
                        transport,
                        handshake_timeout,
                    ))
                },
            )
            .map_err(|e| NetError::Transport(e.to_string()))?
            .with_behaviour(|_| behaviour)
            .unwrap_or_else(|never| match never {})
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();

        for address in &config.listen {
            check_port_free(address)?;
            swarm
                .listen_on(address.clone())
                .map_err(|e| NetError::Listen {
                    address: address.clone(),
                    detail: e.to_string(),
                })?;
        }
        for address in &config.external_addresses {
            swarm.add_external_address(address.clone());
        }

        let local = *swarm.local_peer_id();
        let mut anonymous_bootnodes = Vec::new();
        let mut seeded = false;
        for address in &config.bootnodes {
            match address.iter().last() {
                Some(Protocol::P2p(peer)) if peer == local || config.banned.contains(&peer) => {
                    tracing::debug!("skipping bootnode {address}: ourselves or banned");
                    continue;
                }
                Some(Protocol::P2p(peer)) => {
                    let mut bare = address.clone();
                    bare.pop();
                    swarm.behaviour_mut().kademlia.add_address(&peer, bare);
                    seeded = true;
                }
                _ => anonymous_bootnodes.push(address.clone()),
            }
            if let Err(e) = swarm.dial(address.clone()) {
                tracing::warn!("cannot dial bootnode {address}: {e}");
            }
        }
        if seeded {
            if let Err(e) = swarm.behaviour_mut().kademlia.bootstrap() {
                tracing::debug!("cannot start a Kademlia bootstrap: {e}");
            }
        }

        Ok(NetService {
            swarm,
            topics,
            block_relay: config.block_relay,
            sink,
            commands,
            listen_addresses,
            protocol_version: behaviour::protocol_version(&config.genesis),
            target_peers: config.target_peers,
            anonymous_bootnodes,
            banned: config.banned.iter().copied().collect(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
            inbound_ids: HashMap::new(),
            next_inbound_id: 0,
            identified: HashMap::new(),
            recent_dials: HashMap::new(),
            anonymous_dialed_at: None,
        })
    }

    /// Runs until every `NetHandle` is dropped (or the task is aborted).
    pub async fn run(mut self) {
        let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = upkeep.tick() => self.upkeep(),
            }
        }
        tracing::debug!("every network handle is dropped: the network service stops");
    }

    fn emit(&self, event: NetEvent) {
        (self.sink)(event);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(
                    "P2P listening on {address}/p2p/{}",
                    self.swarm.local_peer_id()
                );
                let mut addresses = self.lock_listen_addresses();
                if !addresses.contains(&address) {
                    addresses.push(address.clone());
                }
                drop(addresses);
                self.emit(NetEvent::Listening { address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!("P2P no longer listening on {address}");
                self.lock_listen_addresses().retain(|a| *a != address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::warn!("P2P listener on {addresses:?} closed: {reason:?}");
                self.lock_listen_addresses()
                    .retain(|a| !addresses.contains(a));
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!("P2P listener error: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let mut address = endpoint.get_remote_address().clone();
                if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
                    address.pop();
                }
                let outbound = endpoint.is_dialer();
                tracing::debug!(
                    "connected to {peer_id} at {address} ({}, {num_established} connections)",
                    if outbound { "outbound" } else { "inbound" }
                );
                if num_established.get() == 1 {
                    self.emit(NetEvent::PeerConnected {
                        peer: peer_id,
                        address,
                        outbound,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(
                    "connection to {peer_id} closed ({}), {num_established} left",
                    cause.map_or_else(|| "by us".to_string(), |c| c.to_string())
                );
                if num_established == 0 {
                    self.identified.remove(&peer_id);
                    self.emit(NetEvent::PeerDisconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!("dial of {peer_id:?} failed: {error}");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!("inbound connection from {send_back_addr} failed: {error}");
            }
            _ => {}
        }
    }

    fn lock_listen_addresses(&self) -> std::sync::MutexGuard<'_, Vec<Multiaddr>> {
        self.listen_addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Blocked(never)
            | BehaviourEvent::Limits(never)
            | BehaviourEvent::Gate(never) => match never {},
            BehaviourEvent::Identify(event) => self.on_identify_event(event),
            BehaviourEvent::Ping(event) => match event.result {
                Ok(rtt) => self
                    .swarm
                    .behaviour_mut()
                    .gate
                    .record_ping(event.connection, rtt),
                Err(ping::Failure::Unsupported) => {
                    tracing::trace!("{} does not answer pings", event.peer)
                }
                Err(e) => {
                    // A dead link (a network split, a peer gone without closing): close it,
                    // so that the upkeep dials the peer afresh once it can be reached.
                    tracing::debug!(
                        "ping of {} failed ({e}): closing that connection",
                        event.peer
                    );
                    self.swarm.close_connection(event.connection);
                }
            },
            BehaviourEvent::Kademlia(event) => self.on_kademlia_event(event),
            BehaviourEvent::Mdns(event) => self.on_mdns_event(event),
            BehaviourEvent::Gossipsub(event) => self.on_gossip_event(event),
            BehaviourEvent::Sync(event) => self.on_sync_event(event),
        }
    }

    fn on_identify_event(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version == self.protocol_version && info.protocols.contains(&KAD_PROTOCOL)
        {
            for address in info.listen_addrs {
                self.swarm
                    .behaviour_mut()
                    .kademlia
                    .add_address(&peer_id, address);
            }
        } else {
            tracing::debug!(
                "{peer_id} runs {} ({}): not added to Kademlia",
                info.protocol_version,
                info.agent_version
            );
        }
        if self.identified.get(&peer_id) != Some(&info.agent_version) {
            tracing::debug!("{peer_id} identified as {}", info.agent_version);
            self.identified.insert(peer_id, info.agent_version.clone());
            self.emit(NetEvent::PeerIdentified {
                peer: peer_id,
                agent: info.agent_version,
            });
        }
    }

    fn on_kademlia_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated { peer, .. } => {
                tracing::trace!("Kademlia knows {peer}");
            }
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::Bootstrap(result),
                ..
            } => match result {
                Ok(ok) => tracing::trace!("Kademlia bootstrap step: {ok:?}"),
                Err(e) => tracing::debug!("Kademlia bootstrap failed: {e}"),
            },
            other => tracing::trace!("Kademlia: {other:?}"),
        }
    }

    fn on_mdns_event(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                for (peer, address) in found {
                    if self.banned.contains(&peer) {
                        continue;
                    }
                    tracing::debug!("mDNS found {peer} at {address}");
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer, address);
                    if self.swarm.connected_peers().count() < self.target_peers {
                        self.dial_peer(peer, Instant::now());
                    }
                }
            }
            mdns::Event::Expired(gone) => {
                for (peer, address) in gone {
                    tracing::trace!("mDNS record of {peer} at {address} expired");
                }
            }
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.on_gossip_message(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::trace!("{peer_id} subscribed to {topic}");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::debug!("{peer_id} is slow to take gossip: {failed_messages:?}");
            }
            other => tracing::trace!("gossipsub: {other:?}"),
        }
    }

    /// Decodes a gossiped message and hands it to the node, or rejects it if it does not
    /// decode.
    fn on_gossip_message(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        // Gossipsub delivers a message once, from the first peer that relays it: a sign the
        // peer is useful, which protects it from eviction (an invalid one gets it banned).
        match self.topics.kind_of(&message.topic) {
            Some(GossipTopic::Blocks) => match codec::decode::<BlockAnnouncement>(&message.data) {
                Ok(announcement) => {
                    self.record_relay(source, GossipTopic::Blocks);
                    self.emit(NetEvent::GossipBlock {
                        source,
                        announcement,
                    });
                }
                Err(e) => self.reject_undecodable(source, &id, format!("gossip block: {e}")),
            },
            Some(GossipTopic::Transfers) => match codec::decode::<Transfer>(&message.data) {
                Ok(transfer) => {
                    self.record_relay(source, GossipTopic::Transfers);
                    self.emit(NetEvent::GossipTransfer { source, transfer });
                }
                Err(e) => self.reject_undecodable(source, &id, format!("gossip transfer: {e}")),
            },
            None => {
                tracing::debug!("{source} sent gossip on {}: ignored", message.topic);
                self.report(&id, &source, MessageAcceptance::Ignore);
            }
        }
    }

    fn record_relay(&mut self, source: PeerId, topic: GossipTopic) {
        self.swarm.behaviour_mut().gate.record_relay(source, topic);
    }

    fn reject_undecodable(&mut self, peer: PeerId, id: &MessageId, detail: String) {
        tracing::debug!("{peer} sent undecodable {detail}");
        self.report(id, &peer, MessageAcceptance::Reject);
        self.emit(NetEvent::Malformed {
            peer,
            kind: Malformed::Undecodable,
            detail,
        });
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        let known = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
        if !known {
            tracing::debug!("verdict on gossip {id} from {source} came too late: no longer held");
        }
    }

    fn on_sync_event(&mut self, event: request_response::Event<WireRequest, WireResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => match request {
                WireRequest::Message(request) => {
                    let id = self.next_inbound_id;
                    self.next_inbound_id = self.next_inbound_id.wrapping_add(1);
                    self.inbound.insert(id, channel);
                    self.inbound_ids.insert(request_id, id);
                    self.emit(NetEvent::InboundRequest { peer, id, request });
                }
                WireRequest::Malformed { kind, detail } => {
                    // Dropping the channel closes the stream unanswered.
                    tracing::debug!("{peer} sent a bad sync request: {detail}");
                    self.emit(NetEvent::Malformed { peer, kind, detail });
                }
                WireRequest::Raw(_) => {
                    tracing::debug!("the codec never reads a raw request");
                }
            },
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(id) = self.outbound.remove(&request_id) else {
                    tracing::debug!("response from {peer} to an unknown request");
                    return;
                };
                match response {
                    WireResponse::Message(response) => {
                        self.emit(NetEvent::Response { peer, id, response });
                    }
                    WireResponse::Raw(_) => self.emit(NetEvent::RequestFailed {
                        peer,
                        id,
                        reason: "the codec never reads a raw response".into(),
                    }),
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(id) = self.outbound.remove(&request_id) else {
                    tracing::debug!("failure of an unknown request to {peer}: {error}");
                    return;
                };
                tracing::debug!("sync request {id} to {peer} failed: {error}");
                if let OutboundFailure::Io(e) = &error {
                    if let Some(kind) = malformed_kind(e) {
                        self.emit(NetEvent::Malformed {
                            peer,
                            kind,
                            detail: format!("sync response: {e}"),
                        });
                    }
                }
                self.emit(NetEvent::RequestFailed {
                    peer,
                    id,
                    reason: error.to_string(),
                });
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(id) = self.inbound_ids.remove(&request_id) {
                    self.inbound.remove(&id);
                }
                tracing::debug!("sync request from {peer} failed: {error}");
            }
            Event::ResponseSent { request_id, .. } => {
                self.inbound_ids.remove(&request_id);
            }
        }
    }

    fn on_command(&mut self, command: NetCommand) {
        match command {
            NetCommand::Request { peer, id, request } => {
                self.send_request(peer, id, WireRequest::Message(request));
            }
            NetCommand::RequestRaw { peer, id, bytes } => {
                self.send_request(peer, id, WireRequest::Raw(bytes));
            }
            NetCommand::Respond { id, response } => {
                self.respond(id, WireResponse::Message(response));
            }
            NetCommand::RespondRaw { id, bytes } => self.respond(id, WireResponse::Raw(bytes)),
            NetCommand::Refuse { id } => {
                // Dropping the channel closes the stream without an answer.
                self.inbound.remove(&id);
            }
            NetCommand::PublishBlock(block) => {
                let hash = block.hash();
                match codec::encode(&self.block_relay.announce(block)) {
                    Ok(data) => self.publish(GossipTopic::Blocks, data),
                    Err(e) => tracing::warn!("cannot encode block {hash}: {e}"),
                }
            }
            NetCommand::PublishTransfer(transfer) => match codec::encode(&transfer) {
                Ok(data) => self.publish(GossipTopic::Transfers, data),
                Err(e) => tracing::warn!("cannot encode transfer {}: {e}", transfer.txid()),
            },
            NetCommand::PublishRaw { topic, data } => self.publish(topic, data),
            NetCommand::ReportBlock {
                hash,
                source,
                verdict,
            } => self.report(&message_id_of(&hash.0), &source, verdict.into()),
            NetCommand::ReportTransfer {
                txid,
                source,
                verdict,
            } => self.report(&message_id_of(&txid.0), &source, verdict.into()),
            NetCommand::Dial(address) => {
                if let Err(e) = self.swarm.dial(address.clone()) {
                    tracing::debug!("cannot dial {address}: {e}");
                }
            }
            NetCommand::Disconnect(peer) => {
                if self.swarm.disconnect_peer_id(peer).is_err() {
                    tracing::debug!("disconnect {peer}: not connected");
                }
            }
            NetCommand::Ban(peer) => self.ban(peer),
            NetCommand::Unban(peer) => {
                self.banned.remove(&peer);
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                tracing::info!("unbanned {peer}");
            }
        }
    }

    fn send_request(&mut self, peer: PeerId, id: u64, request: WireRequest) {
        let request_id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.outbound.insert(request_id, id);
    }

    fn respond(&mut self, id: u64, response: WireResponse) {
        let Some(channel) = self.inbound.remove(&id) else {
            tracing::debug!("response to unknown (or timed out) sync request {id}");
            return;
        };
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("sync request {id} no longer waits for its response");
        }
    }

    fn publish(&mut self, topic: GossipTopic, data: Vec<u8>) {
        let topic = self.topics.get(topic).clone();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.clone(), data)
        {
            Ok(id) => tracing::debug!("published {id} on {topic}"),
            Err(e @ (PublishError::Duplicate | PublishError::NoPeersSubscribedToTopic)) => {
                tracing::debug!("not published on {topic}: {e}");
            }
            Err(e) => tracing::warn!("cannot publish on {topic}: {e}"),
        }
    }

    fn ban(&mut self, peer: PeerId) {
        tracing::info!("banned {peer}");
        self.banned.insert(peer);
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.kademlia.remove_peer(&peer);
        // The block list closes the connections too; this makes it immediate.
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Dials known peers while fewer than the target are connected.
    fn upkeep(&mut self) {
        let now = Instant::now();
        self.recent_dials
            .retain(|_, at| now.saturating_duration_since(*at) < REDIAL_AFTER);
        let connected: HashSet<PeerId> = self.swarm.connected_peers().copied().collect();
        if connected.len() >= self.target_peers {
            return;
        }
        let wanted = self.target_peers - connected.len();
        let mut candidates = Vec::new();
        for bucket in self.swarm.behaviour_mut().kademlia.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                if !connected.contains(&peer)
                    && !self.banned.contains(&peer)
                    && !self.recent_dials.contains_key(&peer)
                {
                    candidates.push(peer);
                }
            }
        }
        for peer in candidates.into_iter().take(wanted) {
            self.dial_peer(peer, now);
        }
        let anonymous_due = self
            .anonymous_dialed_at
            .is_none_or(|at| now.saturating_duration_since(at) >= REDIAL_AFTER);
        if connected.is_empty() && !self.anonymous_bootnodes.is_empty() && anonymous_due {
            self.anonymous_dialed_at = Some(now);
            for address in self.anonymous_bootnodes.clone() {
                if let Err(e) = self.swarm.dial(address.clone()) {
                    tracing::debug!("cannot dial bootnode {address}: {e}");
                }
            }
        }
    }

    /// Dials `peer` at the addresses the behaviours know (Kademlia's), unless it is connected,
    /// being dialed, banned, or was dialed recently.
    fn dial_peer(&mut self, peer: PeerId, now: Instant) {
        if self.banned.contains(&peer) || self.recent_dials.contains_key(&peer) {
            return;
        }
        self.recent_dials.insert(peer, now);
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => tracing::debug!("dialing known peer {peer}"),
            Err(e) => tracing::trace!("not dialing {peer}: {e}"),
        }
    }
}

/// Fails if the TCP port of `address` is taken. libp2p binds its listeners with
/// `SO_REUSEPORT` (so that dials can reuse the port), which on Linux lets a second node bind
/// a port another node listens on and silently share its inbound connections; a plain bind
/// first turns that into an error. Addresses without an IP and TCP port are left to libp2p.
fn check_port_free(address: &Multiaddr) -> Result<(), NetError> {
    let mut protocols = address.iter();
    let ip: std::net::IpAddr = match protocols.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let port = match protocols.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        _ => return Ok(()),
    };
    std::net::TcpListener::bind((ip, port))
        .map(drop)
        .map_err(|e| NetError::Listen {
            address: address.clone(),
            detail: e.to_string(),
        })
}
