//! Connection admission: which connections get a slot, so that a flood of idle or useless
//! connections cannot take them all. A `NetworkBehaviour` with no protocol of its own: it
//! counts connections at each step of their setup, refuses those over a limit, and closes an
//! inbound peer to make room when the eviction rule ([`crate::core::protocol::eviction`])
//! picks one. It reads no bytes; the service tells it what it observes of each peer (ping
//! round trips, gossip relayed).
//!
//! ```text
//!   TCP accepted ─► pending slot?  from this host < 4, this net group < 8, all < 64
//!        │                         else closed at once
//!        │ noise + yamux within the handshake deadline (NetConfig), else closed
//!        ▼
//!   handshake done ─► inbound slot?  this host holds < 10 inbound
//!                                    inbound < max − outbound_slots, and total < max
//!                                    else the eviction rule picks an inbound peer to close,
//!                                    or (every one protected) the newcomer is closed
//!   dialed by us ──► total < max, else closed
//! ```
//!
//! A pending connection costs little but a socket and a handshake's state, and it lasts at
//! most the handshake deadline; the per-host and per-group caps keep one host (or one /16)
//! from holding every pending slot, which is what locked honest peers out before. An
//! established inbound peer cannot be displaced by a pending one, only by a newcomer that
//! finished its handshake, and only when the rule finds a peer that contributes least
//! (Bitcoin Core's inbound eviction). Outbound connections are never evicted, and inbound
//! ones never take the last `outbound_slots` slots.
//!
//! # Invariants
//! - `pending` holds exactly the inbound connections accepted here and neither established
//!   nor failed yet.
//! - `inbound` holds the established inbound connections admitted here, closed or evicted
//!   neither; `outbound` the established outbound ones. An evicted connection leaves
//!   `inbound` when it is picked, before it is closed.
//! - `inbound.len() + outbound.len() <= max_connections` and
//!   `inbound.len() <= inbound_slots`: an admission either finds room or makes it.
use super::gossip::GossipTopic;
use crate::core::protocol::eviction::{
    select_for_eviction, EvictionCandidate, EvictionConfig, Host, NetGroup,
};
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionClosed, DialFailure, ListenFailure};
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The limits of admission; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Most inbound connections in their handshake at once.
    pub max_pending_inbound: usize,
    /// Most inbound connections in their handshake at once from one host (an IPv4 address,
    /// an IPv6 /64).
    pub max_pending_per_host: usize,
    /// Most inbound connections in their handshake at once from one net group (an IPv4 /16,
    /// an IPv6 /32).
    pub max_pending_per_net_group: usize,
    /// Most established inbound connections from one host.
    pub max_inbound_per_host: usize,
    /// Connection slots inbound connections never take, so that we can always dial out (at
    /// most half of `NetConfig::max_connections`).
    pub outbound_slots: u32,
    /// Which inbound peers are protected from eviction.
    pub eviction: EvictionConfig,
}

impl Default for AdmissionConfig {
    /// 64 pending inbound, 4 per host, 8 per net group; 10 established inbound per host
    /// (room for a small test network on one machine); 8 outbound slots; Bitcoin Core's
    /// eviction protections.
    fn default() -> AdmissionConfig {
        AdmissionConfig {
            max_pending_inbound: 64,
            max_pending_per_host: 4,
            max_pending_per_net_group: 8,
            max_inbound_per_host: 10,
            outbound_slots: 8,
            eviction: EvictionConfig::default(),
        }
    }
}

/// Why a connection was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Its host has as many connections in their handshake as allowed.
    #[error("{limit} connections from {ip}'s host are already in their handshake")]
    PendingPerHost {
        /// The remote address.
        ip: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// Its net group has as many connections in their handshake as allowed.
    #[error("{limit} connections from {ip}'s net group are already in their handshake")]
    PendingPerNetGroup {
        /// The remote address.
        ip: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// As many inbound connections are in their handshake as allowed.
    #[error("{limit} inbound connections are already in their handshake")]
    PendingFull {
        /// The limit.
        limit: usize,
    },
    /// Its host holds as many established inbound connections as allowed.
    #[error("{ip}'s host already holds {limit} inbound connections")]
    InboundPerHost {
        /// The remote address.
        ip: IpAddr,
        /// The limit.
        limit: usize,
    },
    /// Every inbound slot is taken and every inbound peer is protected from eviction.
    #[error("all {slots} inbound slots are taken by peers protected from eviction")]
    InboundFull {
        /// The inbound slots.
        slots: usize,
    },
    /// Every connection slot is taken.
    #[error("all {limit} connection slots are taken")]
    TotalFull {
        /// The limit.
        limit: usize,
    },
}

/// How many connections the gate counts, for tests.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionCounts {
    /// Inbound connections in their handshake.
    pub pending: usize,
    /// Established inbound connections.
    pub inbound: usize,
    /// Established outbound connections.
    pub outbound: usize,
}

/// Where a connection comes from.
#[derive(Clone, Copy, Debug)]
struct Source {
    ip: IpAddr,
    host: Host,
    net_group: NetGroup,
}

impl Source {
    /// The source of a connection from `remote`. Addresses without an IP (not seen on TCP)
    /// all count as one host.
    fn of(remote: &Multiaddr) -> Source {
        let ip = match remote.iter().next() {
            Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
            Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
            _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        Source {
            ip,
            host: Host::of(ip),
            net_group: NetGroup::of(ip),
        }
    }
}

/// An established inbound connection and what it has done for us.
#[derive(Clone, Debug)]
struct InboundPeer {
    peer: PeerId,
    source: Source,
    connected_at_ms: u64,
    min_ping_us: Option<u64>,
    last_block_ms: Option<u64>,
    last_transfer_ms: Option<u64>,
}

/// The admission behaviour. See the module docs.
pub struct ConnectionGate {
    config: AdmissionConfig,
    max_connections: usize,
    inbound_slots: usize,
    /// The secret that ranks net groups for eviction's protection.
    key: u64,
    /// Times are milliseconds since this instant.
    epoch: Instant,
    pending: HashMap<ConnectionId, Source>,
    inbound: HashMap<ConnectionId, InboundPeer>,
    outbound: HashSet<ConnectionId>,
    /// Evicted connections the swarm has not been told to close yet.
    to_close: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
}

impl ConnectionGate {
    /// A gate with `config`, at most `max_connections` established connections, and `key`
    /// (a random secret) for eviction.
    pub fn new(config: AdmissionConfig, max_connections: u32, key: u64) -> ConnectionGate {
        let max_connections = max_connections as usize;
        let outbound_slots = (config.outbound_slots as usize).min(max_connections / 2);
        ConnectionGate {
            config,
            max_connections,
            inbound_slots: max_connections - outbound_slots,
            key,
            epoch: Instant::now(),
            pending: HashMap::new(),
            inbound: HashMap::new(),
            outbound: HashSet::new(),
            to_close: VecDeque::new(),
            waker: None,
        }
    }

    /// What the gate counts now.
    #[cfg(test)]
    pub fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            pending: self.pending.len(),
            inbound: self.inbound.len(),
            outbound: self.outbound.len(),
        }
    }

    /// Records a ping round trip on `connection` (kept if it is the lowest so far).
    pub fn record_ping(&mut self, connection: ConnectionId, rtt: Duration) {
        if let Some(entry) = self.inbound.get_mut(&connection) {
            let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
            entry.min_ping_us = Some(entry.min_ping_us.map_or(us, |min| min.min(us)));
        }
    }

    /// Records that `peer` relayed a gossip message on `topic` that was new to us.
    pub fn record_relay(&mut self, peer: PeerId, topic: GossipTopic) {
        let now = self.now_ms();
        self.record_relay_at(peer, topic, now);
    }

    fn record_relay_at(&mut self, peer: PeerId, topic: GossipTopic, now_ms: u64) {
        for entry in self.inbound.values_mut().filter(|e| e.peer == peer) {
            match topic {
                GossipTopic::Blocks => entry.last_block_ms = Some(now_ms),
                GossipTopic::Transfers => entry.last_transfer_ms = Some(now_ms),
            }
        }
    }

    /// Milliseconds since the gate was created.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A TCP connection from `remote` was accepted: takes a pending slot, or refuses it.
    fn admit_pending(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
    ) -> Result<(), AdmissionError> {
        let source = Source::of(remote);
        let config = &self.config;
        let pending_where =
            |same: &dyn Fn(&Source) -> bool| self.pending.values().filter(|s| same(s)).count();
        if pending_where(&|s| s.host == source.host) >= config.max_pending_per_host {
            return Err(AdmissionError::PendingPerHost {
                ip: source.ip,
                limit: config.max_pending_per_host,
            });
        }
        if pending_where(&|s| s.net_group == source.net_group) >= config.max_pending_per_net_group {
            return Err(AdmissionError::PendingPerNetGroup {
                ip: source.ip,
                limit: config.max_pending_per_net_group,
            });
        }
        if self.pending.len() >= config.max_pending_inbound {
            return Err(AdmissionError::PendingFull {
                limit: config.max_pending_inbound,
            });
        }
        self.pending.insert(connection, source);
        Ok(())
    }

    /// `peer` finished its handshake on inbound `connection` from `remote`: takes an inbound
    /// slot, evicting another inbound peer if need be, or refuses it.
    fn admit_inbound(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        now_ms: u64,
    ) -> Result<(), AdmissionError> {
        let source = self
            .pending
            .remove(&connection)
            .unwrap_or_else(|| Source::of(remote));
        let same_host = self
            .inbound
            .values()
            .filter(|e| e.source.host == source.host)
            .count();
        if same_host >= self.config.max_inbound_per_host {
            return Err(AdmissionError::InboundPerHost {
                ip: source.ip,
                limit: self.config.max_inbound_per_host,
            });
        }
        let full = self.inbound.len() >= self.inbound_slots
            || self.inbound.len() + self.outbound.len() >= self.max_connections;
        if full {
            let victim = self.select_victim().ok_or(AdmissionError::InboundFull {
                slots: self.inbound_slots,
            })?;
            let evicted = self
                .inbound
                .remove(&victim)
                .expect("the victim is one of the inbound connections");
            tracing::info!(
                "inbound slots full: evicting {} ({}) to admit {peer} ({})",
                evicted.peer,
                evicted.source.ip,
                source.ip
            );
            self.to_close.push_back((evicted.peer, victim));
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
        self.inbound.insert(
            connection,
            InboundPeer {
                peer,
                source,
                connected_at_ms: now_ms,
                min_ping_us: None,
                last_block_ms: None,
                last_transfer_ms: None,
            },
        );
        Ok(())
    }

    /// The inbound connection the eviction rule picks, if any.
    fn select_victim(&self) -> Option<ConnectionId> {
        let candidates: Vec<EvictionCandidate<ConnectionId>> = self
            .inbound
            .iter()
            .map(|(id, e)| EvictionCandidate {
                id: *id,
                net_group: e.source.net_group,
                connected_at_ms: e.connected_at_ms,
                min_ping_us: e.min_ping_us,
                last_block_ms: e.last_block_ms,
                last_transfer_ms: e.last_transfer_ms,
            })
            .collect();
        select_for_eviction(&candidates, &self.config.eviction, self.key)
    }

    /// We dialed and finished the handshake on `connection`: takes a slot, or refuses it.
    fn admit_outbound(&mut self, connection: ConnectionId) -> Result<(), AdmissionError> {
        if self.inbound.len() + self.outbound.len() >= self.max_connections {
            return Err(AdmissionError::TotalFull {
                limit: self.max_connections,
            });
        }
        self.outbound.insert(connection);
        Ok(())
    }

    /// `connection` closed or failed: frees whatever slot it held.
    fn forget(&mut self, connection: ConnectionId) {
        self.pending.remove(&connection);
        self.inbound.remove(&connection);
        self.outbound.remove(&connection);
    }

    /// The next evicted connection to close.
    fn next_to_close(&mut self) -> Option<(PeerId, ConnectionId)> {
        self.to_close.pop_front()
    }
}

impl NetworkBehaviour for ConnectionGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit_pending(connection_id, remote_addr)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let now = self.now_ms();
        self.admit_inbound(connection_id, peer, remote_addr, now)
            .map(|()| dummy::ConnectionHandler)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit_outbound(connection_id)
            .map(|()| dummy::ConnectionHandler)
            .map_err(ConnectionDenied::new)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
            | FromSwarm::DialFailure(DialFailure { connection_id, .. }) => {
                self.forget(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.next_to_close() {
            Some((peer_id, connection)) => Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(connection),
            }),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gate with `max_connections` and `outbound_slots`, and eviction protecting only the
    /// longest-connected half.
    fn gate(max_connections: u32, outbound_slots: u32) -> ConnectionGate {
        let config = AdmissionConfig {
            outbound_slots,
            eviction: EvictionConfig {
                protect_net_groups: 0,
                protect_ping: 0,
                protect_transfers: 0,
                protect_blocks: 0,
            },
            ..AdmissionConfig::default()
        };
        ConnectionGate::new(config, max_connections, 7)
    }

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/40000")
            .parse()
            .expect("a valid address")
    }

    fn from6(ip: &str) -> Multiaddr {
        format!("/ip6/{ip}/tcp/40000")
            .parse()
            .expect("a valid address")
    }

    /// Admits `n` as pending and then established from `ip` at `at` ms; returns its peer.
    fn connect(gate: &mut ConnectionGate, n: usize, ip: &str, at: u64) -> PeerId {
        let peer = PeerId::random();
        gate.admit_pending(id(n), &from(ip))
            .expect("a pending slot");
        gate.admit_inbound(id(n), peer, &from(ip), at)
            .expect("an inbound slot");
        peer
    }

    #[test]
    fn one_host_gets_only_its_share_of_pending_slots() {
        let mut gate = gate(64, 8);
        for n in 0..4 {
            gate.admit_pending(id(n), &from("127.0.0.9")).expect("room");
        }
        assert!(matches!(
            gate.admit_pending(id(4), &from("127.0.0.9")),
            Err(AdmissionError::PendingPerHost { limit: 4, .. })
        ));
        // Another host, even next door, still gets in.
        gate.admit_pending(id(5), &from("127.0.0.1"))
            .expect("another host");
        // A failed handshake frees its slot.
        gate.forget(id(0));
        gate.admit_pending(id(6), &from("127.0.0.9"))
            .expect("a freed slot");
        assert_eq!(gate.counts().pending, 5);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_host() {
        let mut gate = gate(64, 8);
        for n in 0..4 {
            let address = from6(&format!("2001:db8:1:2::{}", n + 1));
            gate.admit_pending(id(n), &address).expect("room");
        }
        assert!(matches!(
            gate.admit_pending(id(4), &from6("2001:db8:1:2:ffff::9")),
            Err(AdmissionError::PendingPerHost { .. })
        ));
        gate.admit_pending(id(5), &from6("2001:db8:1:3::1"))
            .expect("another /64");
    }

    #[test]
    fn one_net_group_and_everyone_together_are_capped_too() {
        let mut gate = gate(64, 8);
        for n in 0..8 {
            gate.admit_pending(id(n), &from(&format!("10.1.{n}.1")))
                .expect("room");
        }
        assert!(matches!(
            gate.admit_pending(id(8), &from("10.1.200.1")),
            Err(AdmissionError::PendingPerNetGroup { limit: 8, .. })
        ));
        for n in 8..64 {
            gate.admit_pending(id(n), &from(&format!("10.{n}.0.1")))
                .expect("room");
        }
        assert!(matches!(
            gate.admit_pending(id(64), &from("10.200.0.1")),
            Err(AdmissionError::PendingFull { limit: 64 })
        ));
    }

    #[test]
    fn established_connections_leave_their_pending_slot_and_count_per_host() {
        let mut gate = gate(64, 8);
        for n in 0..10 {
            connect(&mut gate, n, "127.0.0.1", n as u64);
        }
        assert_eq!(
            gate.counts(),
            AdmissionCounts {
                pending: 0,
                inbound: 10,
                outbound: 0
            }
        );
        gate.admit_pending(id(10), &from("127.0.0.1"))
            .expect("pending is counted apart");
        assert!(matches!(
            gate.admit_inbound(id(10), PeerId::random(), &from("127.0.0.1"), 10),
            Err(AdmissionError::InboundPerHost { limit: 10, .. })
        ));
        // The refused connection then fails, and its pending slot was already released.
        gate.forget(id(10));
        assert_eq!(gate.counts().pending, 0);
        gate.forget(id(0));
        connect(&mut gate, 11, "127.0.0.1", 11);
        assert_eq!(gate.counts().inbound, 10);
    }

    #[test]
    fn inbound_peers_never_take_the_outbound_slots() {
        // 12 slots, 4 kept for outbound: 8 inbound.
        let mut gate = gate(12, 4);
        for n in 0..8 {
            connect(&mut gate, n, &format!("10.{n}.0.1"), n as u64);
        }
        for n in 100..104 {
            gate.admit_outbound(id(n)).expect("a kept slot");
        }
        assert!(matches!(
            gate.admit_outbound(id(104)),
            Err(AdmissionError::TotalFull { limit: 12 })
        ));
        // Outbound beyond the kept slots while inbound has room.
        let mut gate = super::tests::gate(12, 4);
        for n in 100..110 {
            gate.admit_outbound(id(n)).expect("free slots");
        }
        // Two slots left: inbound takes them, then evicts to come in.
        connect(&mut gate, 0, "10.0.0.1", 0);
        connect(&mut gate, 1, "10.1.0.1", 1);
        connect(&mut gate, 2, "10.2.0.1", 2);
        assert_eq!(gate.next_to_close().map(|(_, c)| c), Some(id(1)));
        assert_eq!(gate.counts().inbound + gate.counts().outbound, 12);
    }

    #[test]
    fn a_newcomer_evicts_the_youngest_of_the_largest_group_or_is_refused() {
        let mut gate = gate(8, 4);
        // Four inbound slots: two honest peers early, two from one /16 later.
        connect(&mut gate, 0, "10.1.0.1", 100);
        connect(&mut gate, 1, "10.2.0.1", 200);
        connect(&mut gate, 2, "10.9.0.1", 300);
        let young = connect(&mut gate, 3, "10.9.0.2", 400);
        assert_eq!(gate.next_to_close(), None);
        connect(&mut gate, 4, "10.3.0.1", 500);
        assert_eq!(gate.next_to_close(), Some((young, id(3))));
        assert_eq!(gate.counts().inbound, 4);
        // Its close is then reported; forgetting it again changes nothing.
        gate.forget(id(3));
        assert_eq!(gate.counts().inbound, 4);

        // With Bitcoin Core's protections, four peers are all protected: refused.
        let mut gate = ConnectionGate::new(AdmissionConfig::default(), 8, 7);
        for n in 0..4 {
            connect(&mut gate, n, &format!("10.{n}.0.1"), n as u64);
        }
        gate.admit_pending(id(4), &from("10.4.0.1")).expect("room");
        assert_eq!(
            gate.admit_inbound(id(4), PeerId::random(), &from("10.4.0.1"), 9),
            Err(AdmissionError::InboundFull { slots: 4 })
        );
        assert_eq!(gate.next_to_close(), None);
    }

    #[test]
    fn a_peer_that_relayed_a_block_is_not_the_one_evicted() {
        let config = AdmissionConfig {
            outbound_slots: 0,
            eviction: EvictionConfig {
                protect_net_groups: 0,
                protect_ping: 1,
                protect_transfers: 0,
                protect_blocks: 1,
            },
            ..AdmissionConfig::default()
        };
        let mut gate = ConnectionGate::new(config, 6, 7);
        let peers: Vec<PeerId> = (0..6)
            .map(|n| connect(&mut gate, n, &format!("10.9.0.{n}"), n as u64))
            .collect();
        gate.record_relay_at(peers[5], GossipTopic::Blocks, 50);
        gate.record_ping(id(4), Duration::from_millis(3));
        gate.record_ping(id(4), Duration::from_millis(1));
        gate.record_ping(id(3), Duration::from_millis(2));
        connect(&mut gate, 6, "10.9.0.6", 60);
        // 5 relayed, 4 has the lowest ping, 0..3 are the older half of 0..=3: 3 goes.
        assert_eq!(gate.next_to_close(), Some((peers[3], id(3))));
    }

    #[test]
    fn at_most_half_the_slots_are_kept_for_outbound() {
        let mut gate = gate(2, 8);
        connect(&mut gate, 0, "10.0.0.1", 0);
        gate.admit_outbound(id(1)).expect("one slot each way");
        assert_eq!(gate.inbound_slots, 1);
    }
}
