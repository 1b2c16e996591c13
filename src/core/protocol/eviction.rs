//! Inbound eviction: when every inbound connection slot is taken and one more peer completes
//! its handshake, which inbound peer (if any) gives up its slot. Also the address groups the
//! network layer counts connections by. No I/O: the caller passes what it observed about
//! each peer, times on its own clock, and a secret key; the answer is a peer to drop, or none.
//!
//! The choice follows Bitcoin Core's `SelectNodeToEvict` (`src/node/eviction.cpp`): protect
//! the peers an attacker cannot easily imitate, then evict from what is left. Each step
//! protects some of the candidates still unprotected:
//!
//! ```text
//!   1. net group  the longest-connected peer of each of the first `protect_net_groups` net
//!                 groups under a keyed hash (the key is secret, so no attacker can pick a
//!                 group that will be protected)
//!   2. ping       the `protect_ping` lowest minimum ping times (to fake: move closer)
//!   3. transfers  the `protect_transfers` that most recently relayed a new transfer
//!   4. blocks     the `protect_blocks` that most recently relayed a new block
//!   5. uptime     the longest-connected half of the rest (an attack that starts later cannot
//!                 displace peers already there)
//!   then          the net group with the most peers left loses its youngest peer
//! ```
//!
//! Differences from Core: step 1 protects one peer in each of several groups (Core protects
//! the top peers of its sort, which may all share one group); steps 2 to 4 protect only peers
//! that have a measured ping or have relayed something (Core fills its quota with peers that
//! did nothing); there are no permission flags, prefer-evict flags or network-type quotas.
//! Ties are broken by connection time and then by id, so the answer does not depend on the
//! order of the candidates.
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The addresses assumed to be under one operator's control, for eviction's diversity:
/// an IPv4 /16, an IPv6 /32, or all loopback addresses together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetGroup([u8; 5]);

impl NetGroup {
    /// The group of `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> NetGroup {
        match canonical(ip) {
            ip if ip.is_loopback() => NetGroup([0; 5]),
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                NetGroup([4, a, b, 0, 0])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                NetGroup([6, o[0], o[1], o[2], o[3]])
            }
        }
    }

    /// The group's bytes: a tag (0 loopback, 4, 6) and the prefix.
    pub fn as_bytes(&self) -> &[u8; 5] {
        &self.0
    }
}

/// The addresses assumed to be one machine, for per-address connection limits: an IPv4
/// address, or an IPv6 /64 (the smallest block a subscriber is usually given, so one host
/// can use any address in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Host([u8; 9]);

impl Host {
    /// The host of `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn of(ip: IpAddr) -> Host {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                Host([4, a, b, c, d, 0, 0, 0, 0])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Host([6, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }
}

/// `ip`, with an IPv4-mapped IPv6 address turned into the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What the caller knows about one inbound peer that could be evicted. Times are
/// milliseconds on one clock of the caller's choosing, the same for every candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvictionCandidate<Id> {
    /// Names the connection in the answer.
    pub id: Id,
    /// The group of its address.
    pub net_group: NetGroup,
    /// When its connection was established.
    pub connected_at_ms: u64,
    /// Its lowest ping round trip so far, in microseconds, if one was measured.
    pub min_ping_us: Option<u64>,
    /// When it last relayed a block that was new to us.
    pub last_block_ms: Option<u64>,
    /// When it last relayed a transfer that was new to us.
    pub last_transfer_ms: Option<u64>,
}

/// How many candidates each protection step keeps (Bitcoin Core's numbers by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvictionConfig {
    /// Net groups that keep one peer each, chosen by keyed hash.
    pub protect_net_groups: usize,
    /// Peers with the lowest minimum ping.
    pub protect_ping: usize,
    /// Peers that most recently relayed a new transfer.
    pub protect_transfers: usize,
    /// Peers that most recently relayed a new block.
    pub protect_blocks: usize,
}

impl Default for EvictionConfig {
    fn default() -> EvictionConfig {
        EvictionConfig {
            protect_net_groups: 4,
            protect_ping: 8,
            protect_transfers: 4,
            protect_blocks: 4,
        }
    }
}

/// The inbound peer to evict among `candidates`, or `None` if every one is protected (the
/// newcomer should then be refused). `key` is a secret of the node's, fixed for its lifetime,
/// that decides which net groups step 1 protects. The answer depends only on the arguments,
/// not on the order of `candidates`.
pub fn select_for_eviction<Id: Copy + Ord>(
    candidates: &[EvictionCandidate<Id>],
    config: &EvictionConfig,
    key: u64,
) -> Option<Id> {
    let mut left: Vec<&EvictionCandidate<Id>> = candidates.iter().collect();
    // Oldest first; every later sort is stable, so this order breaks their ties.
    left.sort_by_key(|c| (c.connected_at_ms, c.id));

    protect_by_net_group(&mut left, config.protect_net_groups, key);
    protect_first(&mut left, config.protect_ping, |c| {
        c.min_ping_us.map(std::cmp::Reverse)
    });
    protect_first(&mut left, config.protect_transfers, |c| c.last_transfer_ms);
    protect_first(&mut left, config.protect_blocks, |c| c.last_block_ms);
    // Longest connected: `left` is still oldest first.
    left.drain(..left.len() / 2);

    // The net group with the most peers left; on a tie the one whose youngest peer is
    // youngest (the newest arrivals are the likeliest attack); then the higher group.
    let mut groups: BTreeMap<NetGroup, (usize, (u64, Id))> = BTreeMap::new();
    for c in &left {
        let age = (c.connected_at_ms, c.id);
        groups
            .entry(c.net_group)
            .and_modify(|(count, youngest)| {
                *count += 1;
                *youngest = (*youngest).max(age);
            })
            .or_insert((1, age));
    }
    groups
        .into_iter()
        .max_by_key(|(group, (count, youngest))| (*count, *youngest, *group))
        .map(|(_, (_, (_, id)))| id)
}

/// Step 1: removes from `left` (oldest first) the oldest peer of each of the `groups` net
/// groups that rank highest under the keyed hash.
fn protect_by_net_group<Id>(left: &mut Vec<&EvictionCandidate<Id>>, groups: usize, key: u64) {
    let mut ranked: Vec<(u64, NetGroup)> = left
        .iter()
        .map(|c| (keyed_hash(key, &c.net_group), c.net_group))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.dedup();
    ranked.truncate(groups);
    for (_, group) in ranked {
        if let Some(oldest) = left.iter().position(|c| c.net_group == group) {
            left.remove(oldest);
        }
    }
}

/// Removes from `left` the `count` candidates with the highest `merit`; a candidate whose
/// merit is `None` is never protected by this step. Ties keep `left`'s order.
fn protect_first<Id, M: Ord>(
    left: &mut Vec<&EvictionCandidate<Id>>,
    count: usize,
    merit: impl Fn(&EvictionCandidate<Id>) -> Option<M>,
) {
    let mut ranked: Vec<(usize, M)> = left
        .iter()
        .enumerate()
        .filter_map(|(index, c)| merit(c).map(|m| (index, m)))
        .collect();
    // Best first, stable: equal merits keep the older candidate first.
    ranked.sort_by(|a, b| b.1.cmp(&a.1));
    let mut protected: Vec<usize> = ranked.into_iter().take(count).map(|(i, _)| i).collect();
    protected.sort_unstable();
    for index in protected.into_iter().rev() {
        left.remove(index);
    }
}

/// A 64-bit hash of `group` under `key`: the rank of the group in step 1.
fn keyed_hash(key: u64, group: &NetGroup) -> u64 {
    let digest = Sha256::new()
        .chain_update(key.to_le_bytes())
        .chain_update(group.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    /// An idle candidate `id` in group `10.<group>/16`, connected at `at` ms.
    fn idle(id: u32, group: u8, at: u64) -> EvictionCandidate<u32> {
        EvictionCandidate {
            id,
            net_group: NetGroup::of(v4(10, group, 0, 1)),
            connected_at_ms: at,
            min_ping_us: None,
            last_block_ms: None,
            last_transfer_ms: None,
        }
    }

    /// Only the uptime step protects anyone.
    const UPTIME_ONLY: EvictionConfig = EvictionConfig {
        protect_net_groups: 0,
        protect_ping: 0,
        protect_transfers: 0,
        protect_blocks: 0,
    };

    #[test]
    fn groups_are_ipv4_slash_16_ipv6_slash_32_and_loopback() {
        assert_eq!(NetGroup::of(v4(1, 2, 3, 4)), NetGroup::of(v4(1, 2, 200, 9)));
        assert_ne!(NetGroup::of(v4(1, 2, 3, 4)), NetGroup::of(v4(1, 3, 3, 4)));
        let mapped = IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped());
        assert_eq!(NetGroup::of(mapped), NetGroup::of(v4(1, 2, 0, 0)));
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let same_32 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 1, 2, 3, 4, 5));
        let other_32 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1));
        assert_eq!(NetGroup::of(a), NetGroup::of(same_32));
        assert_ne!(NetGroup::of(a), NetGroup::of(other_32));
        assert_eq!(
            NetGroup::of(v4(127, 0, 0, 1)),
            NetGroup::of(v4(127, 9, 9, 9))
        );
        assert_eq!(
            NetGroup::of(v4(127, 0, 0, 1)),
            NetGroup::of(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn hosts_are_ipv4_addresses_and_ipv6_slash_64() {
        assert_ne!(Host::of(v4(127, 0, 0, 1)), Host::of(v4(127, 0, 0, 9)));
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(Host::of(mapped), Host::of(v4(127, 0, 0, 1)));
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1));
        let same_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_64 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(Host::of(a), Host::of(same_64));
        assert_ne!(Host::of(a), Host::of(other_64));
    }

    #[test]
    fn nobody_is_evicted_when_everyone_is_protected() {
        assert_eq!(
            select_for_eviction::<u32>(&[], &EvictionConfig::default(), 1),
            None
        );
        // 4 by group, then 8 by ping: 12 candidates are all protected.
        let mut candidates: Vec<_> = (0..12).map(|i| idle(i, i as u8, 100)).collect();
        for (i, c) in candidates.iter_mut().enumerate() {
            c.min_ping_us = Some(1_000 + i as u64);
        }
        assert_eq!(
            select_for_eviction(&candidates, &EvictionConfig::default(), 7),
            None
        );
        // The uptime step keeps half, rounded down: a lone candidate is not kept.
        assert_eq!(
            select_for_eviction(&[idle(1, 1, 5)], &UPTIME_ONLY, 7),
            Some(1)
        );
    }

    #[test]
    fn the_youngest_of_the_largest_group_is_evicted() {
        // Honest peers in groups 1..=6, connected early; a flood in group 9, later.
        let mut candidates: Vec<_> = (1..=6).map(|i| idle(i, i as u8, 10 * i as u64)).collect();
        candidates.extend((100..120).map(|i| idle(i, 9, 1_000 + i as u64)));
        assert_eq!(
            select_for_eviction(&candidates, &EvictionConfig::default(), 42),
            Some(119)
        );
    }

    #[test]
    fn a_peer_that_relayed_a_new_block_or_transfer_is_kept() {
        let mut candidates: Vec<_> = (0..30).map(|i| idle(i, 9, 100 + i as u64)).collect();
        // The youngest in the only group would go; a block it relayed saves it.
        assert_eq!(select_for_eviction(&candidates, &UPTIME_ONLY, 1), Some(29));
        candidates[29].last_block_ms = Some(5_000);
        let blocks = EvictionConfig {
            protect_blocks: 1,
            ..UPTIME_ONLY
        };
        assert_eq!(select_for_eviction(&candidates, &blocks, 1), Some(28));
        candidates[28].last_transfer_ms = Some(5_000);
        let both = EvictionConfig {
            protect_transfers: 1,
            ..blocks
        };
        assert_eq!(select_for_eviction(&candidates, &both, 1), Some(27));
        // The most recent relays win the protection, not the oldest.
        candidates[27].last_block_ms = Some(4_000);
        assert_eq!(select_for_eviction(&candidates, &both, 1), Some(27));
    }

    #[test]
    fn the_lowest_pings_are_kept_and_an_unmeasured_ping_protects_nothing() {
        let mut candidates: Vec<_> = (0..10).map(|i| idle(i, 9, 100 + i as u64)).collect();
        let ping = EvictionConfig {
            protect_ping: 2,
            ..UPTIME_ONLY
        };
        assert_eq!(select_for_eviction(&candidates, &ping, 1), Some(9));
        candidates[9].min_ping_us = Some(900);
        candidates[8].min_ping_us = Some(800);
        candidates[7].min_ping_us = Some(5_000);
        assert_eq!(select_for_eviction(&candidates, &ping, 1), Some(7));
    }

    #[test]
    fn the_longest_connected_half_is_kept() {
        // Ten peers in ten groups: after the uptime step the five youngest are left, one
        // per group; the tie goes to the group whose youngest is youngest.
        let candidates: Vec<_> = (0..10).map(|i| idle(i, i as u8, 100 + i as u64)).collect();
        assert_eq!(select_for_eviction(&candidates, &UPTIME_ONLY, 1), Some(9));
        // A group of two among the young ones loses its youngest, even if another group's
        // peer is younger still.
        let mut grouped = candidates.clone();
        grouped[5].net_group = grouped[6].net_group;
        assert_eq!(select_for_eviction(&grouped, &UPTIME_ONLY, 1), Some(6));
    }

    #[test]
    fn net_group_protection_keeps_one_peer_per_group() {
        // Two groups: 0 (ids 0..10) and 1 (ids 10..20); protecting 2 groups keeps the
        // oldest of each and no more.
        let candidates: Vec<_> = (0..20)
            .map(|i| idle(i, (i / 10) as u8, 100 + i as u64))
            .collect();
        let groups = EvictionConfig {
            protect_net_groups: 2,
            ..UPTIME_ONLY
        };
        let mut left: Vec<&EvictionCandidate<u32>> = candidates.iter().collect();
        protect_by_net_group(&mut left, groups.protect_net_groups, 3);
        let kept: Vec<u32> = candidates
            .iter()
            .map(|c| c.id)
            .filter(|id| !left.iter().any(|c| c.id == *id))
            .collect();
        assert_eq!(kept, vec![0, 10]);
    }

    #[test]
    fn the_key_decides_which_groups_are_protected() {
        // One peer in each of 8 groups, one protected group: different keys protect
        // different groups.
        let candidates: Vec<_> = (0..8).map(|i| idle(i, i as u8, 100)).collect();
        let protected_by = |key: u64| {
            let mut left: Vec<&EvictionCandidate<u32>> = candidates.iter().collect();
            protect_by_net_group(&mut left, 1, key);
            candidates
                .iter()
                .find(|c| !left.iter().any(|l| l.id == c.id))
                .map(|c| c.id)
        };
        let chosen: std::collections::BTreeSet<_> = (0..32).filter_map(protected_by).collect();
        assert!(
            chosen.len() > 1,
            "every key protected the same group: {chosen:?}"
        );
        assert_eq!(protected_by(5), protected_by(5));
    }

    fn candidate_strategy() -> impl Strategy<Value = EvictionCandidate<u32>> {
        (
            0u8..6,
            0u64..1_000,
            proptest::option::of(100u64..10_000),
            proptest::option::of(0u64..1_000),
            proptest::option::of(0u64..1_000),
        )
            .prop_map(|(group, at, ping, block, transfer)| EvictionCandidate {
                id: 0,
                net_group: NetGroup::of(v4(10, group, 0, 1)),
                connected_at_ms: at,
                min_ping_us: ping,
                last_block_ms: block,
                last_transfer_ms: transfer,
            })
    }

    proptest! {
        #[test]
        fn the_choice_ignores_order_and_spares_the_protected(
            mut candidates in proptest::collection::vec(candidate_strategy(), 0..60),
            key in any::<u64>(),
            rotate in 0usize..60,
        ) {
            for (id, c) in candidates.iter_mut().enumerate() {
                c.id = id as u32;
            }
            let config = EvictionConfig::default();
            let chosen = select_for_eviction(&candidates, &config, key);
            let mut shuffled = candidates.clone();
            shuffled.reverse();
            let by = rotate % shuffled.len().max(1);
            shuffled.rotate_left(by);
            prop_assert_eq!(select_for_eviction(&shuffled, &config, key), chosen);
            if let Some(victim) = chosen {
                // The victim survived every protection step: in each, as many others as the
                // step protects were at least as good, or it had nothing to show.
                let victim = candidates[victim as usize];
                let others = || candidates.iter().filter(move |c| c.id != victim.id);
                if let Some(ping) = victim.min_ping_us {
                    let better = others().filter(|c| c.min_ping_us.is_some_and(|p| p <= ping));
                    prop_assert!(better.count() >= config.protect_ping);
                }
                if let Some(at) = victim.last_block_ms {
                    let newer = others().filter(|c| c.last_block_ms.is_some_and(|b| b >= at));
                    prop_assert!(newer.count() >= config.protect_blocks);
                }
                if let Some(at) = victim.last_transfer_ms {
                    let newer =
                        others().filter(|c| c.last_transfer_ms.is_some_and(|t| t >= at));
                    prop_assert!(newer.count() >= config.protect_transfers);
                }
                // Half the candidates left after steps 1 to 4 were connected longer.
                let older = others().filter(|c| c.connected_at_ms <= victim.connected_at_ms);
                let most_protected = config.protect_net_groups
                    + config.protect_ping
                    + config.protect_transfers
                    + config.protect_blocks;
                let after_steps = candidates.len().saturating_sub(most_protected);
                prop_assert!(older.count() >= after_steps / 2);
            } else {
                // Nobody evictable: steps 1 to 4 protected everyone.
                let most_protected = config.protect_net_groups
                    + config.protect_ping
                    + config.protect_transfers
                    + config.protect_blocks;
                prop_assert!(candidates.len() <= most_protected);
            }
        }
    }
}
