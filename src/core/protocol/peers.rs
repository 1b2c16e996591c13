//! Peer policy: penalties for misbehaviour, bans with expiry, and per-peer request rate
//! limits. No I/O: time comes in as milliseconds since the Unix epoch, and decisions come
//! back as [`PeerAction`]s for the network layer to carry out (and the store to persist).
//!
//! Each peer has a score that misbehaviour raises; at [`PeerPolicyConfig::ban_threshold`] the
//! peer is banned for [`PeerPolicyConfig::ban_duration_secs`]. Proof of bad faith (an invalid
//! block, malformed or oversized bytes) bans at once; softer faults add up. Requests draw from
//! a token bucket, so a burst is fine and a flood is a fault.
//!
//! A peer's record (score and request bucket) outlives its connection: a peer that
//! disconnects and reconnects, or opens a second connection, finds its score where it left
//! it. Records are forgotten only after a ban window without news, and the number kept is
//! bounded (the least recently touched goes first), so identities cannot fill memory.
//!
//! # Invariants
//! - A banned peer has no score record (it is disconnected; its record starts afresh after
//!   the ban).
//! - Bucket tokens never exceed the burst size.
//! - At most `max_records` records are kept.
use crate::core::consensus::BlockError;
use std::collections::BTreeMap;

/// What a peer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Misbehavior {
    /// Sent a block that breaks a consensus rule (a peer-fault `BlockError`).
    InvalidBlock,
    /// Sent bytes that do not decode.
    MalformedMessage,
    /// Sent a message over the size limit.
    OversizedMessage,
    /// Sent requests faster than the rate limit.
    RequestFlood,
    /// Broke the sync protocol (unlinked headers, unrequested blocks, bad locator).
    ProtocolViolation,
    /// Announced another chain's genesis.
    WrongChain,
    /// Sent a state-tree page that does not check against the hash it was asked for.
    InvalidStatePage,
    /// Relayed a transfer no honest node relays (bad signature, another chain's id, an
    /// oversized memo, an overflowing amount).
    InvalidTransfer,
}

impl Misbehavior {
    /// The fault of a peer that sent a block failing with `error`, if the failure is the
    /// peer's fault (a block from the future or with an unknown parent is not).
    pub fn for_block_error(error: &BlockError) -> Option<Misbehavior> {
        error.is_peer_fault().then_some(Misbehavior::InvalidBlock)
    }

    /// Score added for this fault; 100 bans at once under the default threshold.
    pub fn penalty(self) -> u32 {
        match self {
            Misbehavior::InvalidBlock
            | Misbehavior::InvalidStatePage
            | Misbehavior::InvalidTransfer
            | Misbehavior::MalformedMessage
            | Misbehavior::OversizedMessage => 100,
            Misbehavior::RequestFlood => 50,
            Misbehavior::ProtocolViolation => 20,
            Misbehavior::WrongChain => 0,
        }
    }
}

/// What the network layer should do about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAction {
    /// Nothing.
    None,
    /// Close the connection (no ban).
    Disconnect,
    /// Close the connection and refuse the peer until `until_ms`.
    Ban {
        /// End of the ban, ms since the Unix epoch.
        until_ms: u64,
    },
}

/// Policy numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerPolicyConfig {
    /// Score at which a peer is banned.
    pub ban_threshold: u32,
    /// How long a ban lasts.
    pub ban_duration_secs: u64,
    /// Sustained requests per second a peer may make.
    pub requests_per_sec: u32,
    /// Requests a peer may make at once after being quiet.
    pub request_burst: u32,
    /// Most peer records (scores, buckets) kept; beyond, the least recently touched goes.
    pub max_records: usize,
}

impl Default for PeerPolicyConfig {
    fn default() -> Self {
        PeerPolicyConfig {
            ban_threshold: 100,
            ban_duration_secs: 24 * 60 * 60,
            requests_per_sec: 50,
            request_burst: 100,
            max_records: 10_000,
        }
    }
}

/// A token bucket in thousandths of a token, refilled by elapsed time: the one rate limiter
/// of the logic (requests a peer makes, requests we make, junk a peer sends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucket {
    milli_tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens at `now_ms`.
    pub fn full(burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            milli_tokens: u64::from(burst) * 1000,
            last_ms: now_ms,
        }
    }

    /// A bucket holding `tokens` tokens at `now_ms` (refilled up to its burst from then on).
    pub fn with_tokens(tokens: u32, now_ms: u64) -> TokenBucket {
        TokenBucket::full(tokens, now_ms)
    }

    /// Refills `per_sec_milli` thousandths of a token a second since the last call (up to
    /// `burst` tokens; time going backwards mints nothing), then takes one token if there is
    /// one. Whether it took one.
    pub fn take(&mut self, now_ms: u64, per_sec_milli: u64, burst: u32) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(per_sec_milli) / 1000)
            .min(u64::from(burst) * 1000);
        self.last_ms = self.last_ms.max(now_ms);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PeerRecord {
    score: u32,
    bucket: TokenBucket,
    /// When the peer last made a request or misbehaved.
    touched_ms: u64,
}

/// Scores, buckets and bans of peers identified by `P`.
#[derive(Clone, Debug)]
pub struct PeerPolicy<P> {
    config: PeerPolicyConfig,
    records: BTreeMap<P, PeerRecord>,
    bans: BTreeMap<P, u64>,
}

impl<P: Ord + Clone> PeerPolicy<P> {
    /// A policy with no records, honouring `bans` (peer, end in ms) restored from storage.
    pub fn new(config: PeerPolicyConfig, bans: impl IntoIterator<Item = (P, u64)>) -> Self {
        PeerPolicy {
            config,
            records: BTreeMap::new(),
            bans: bans.into_iter().collect(),
        }
    }

    /// Whether `peer` is banned at `now_ms`.
    pub fn is_banned(&self, peer: &P, now_ms: u64) -> bool {
        self.bans.get(peer).is_some_and(|until| *until > now_ms)
    }

    /// Current bans (peer, end in ms), for persistence and the API.
    pub fn bans(&self) -> impl Iterator<Item = (&P, u64)> {
        self.bans.iter().map(|(p, until)| (p, *until))
    }

    /// The score of `peer` (0 if unknown).
    pub fn score(&self, peer: &P) -> u32 {
        self.records.get(peer).map_or(0, |r| r.score)
    }

    /// Records misbehaviour by `peer` at `now_ms` and says what to do.
    pub fn on_misbehavior(&mut self, peer: &P, fault: Misbehavior, now_ms: u64) -> PeerAction {
        if fault == Misbehavior::WrongChain {
            return PeerAction::Disconnect;
        }
        let record = self.record(peer, now_ms);
        record.touched_ms = record.touched_ms.max(now_ms);
        record.score = record.score.saturating_add(fault.penalty());
        if record.score >= self.config.ban_threshold {
            self.ban(peer, now_ms)
        } else {
            PeerAction::None
        }
    }

    /// Bans `peer` from `now_ms` for the configured time (also the admin `ban` call).
    pub fn ban(&mut self, peer: &P, now_ms: u64) -> PeerAction {
        let until_ms = now_ms.saturating_add(self.config.ban_duration_secs.saturating_mul(1000));
        self.records.remove(peer);
        self.bans.insert(peer.clone(), until_ms);
        PeerAction::Ban { until_ms }
    }

    /// Lifts a ban (the admin `unban` call); whether there was one.
    pub fn unban(&mut self, peer: &P) -> bool {
        self.bans.remove(peer).is_some()
    }

    /// Drops bans that ended by `now_ms`; returns the peers freed.
    pub fn expire_bans(&mut self, now_ms: u64) -> Vec<P> {
        let ended: Vec<P> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in &ended {
            self.bans.remove(peer);
        }
        ended
    }

    /// Forgets the records of peers not heard of for a ban window by `now_ms`: a score
    /// lasts as long as a ban would.
    pub fn expire_records(&mut self, now_ms: u64) {
        let window = self.config.ban_duration_secs.saturating_mul(1000);
        self.records
            .retain(|_, record| now_ms.saturating_sub(record.touched_ms) < window);
    }

    /// Charges one request by `peer` at `now_ms`: `Ok` if within its rate, otherwise the
    /// action for a flood.
    pub fn on_request(&mut self, peer: &P, now_ms: u64) -> Result<(), PeerAction> {
        let config = self.config;
        let record = self.record(peer, now_ms);
        record.touched_ms = record.touched_ms.max(now_ms);
        let per_sec_milli = u64::from(config.requests_per_sec) * 1000;
        if record
            .bucket
            .take(now_ms, per_sec_milli, config.request_burst)
        {
            Ok(())
        } else {
            Err(self.on_misbehavior(peer, Misbehavior::RequestFlood, now_ms))
        }
    }

    fn record(&mut self, peer: &P, now_ms: u64) -> &mut PeerRecord {
        let burst = self.config.request_burst;
        if !self.records.contains_key(peer) && self.records.len() >= self.config.max_records {
            let stalest = self
                .records
                .iter()
                .min_by_key(|(_, record)| record.touched_ms)
                .map(|(p, _)| p.clone());
            if let Some(stalest) = stalest {
                self.records.remove(&stalest);
            }
        }
        self.records.entry(peer.clone()).or_insert(PeerRecord {
            score: 0,
            bucket: TokenBucket::full(burst, now_ms),
            touched_ms: now_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn policy() -> PeerPolicy<&'static str> {
        PeerPolicy::new(PeerPolicyConfig::default(), [])
    }

    #[test]
    fn invalid_block_bans_at_once_for_the_configured_time() {
        let mut p = policy();
        let action = p.on_misbehavior(&"evil", Misbehavior::InvalidBlock, 1_000);
        assert_eq!(
            action,
            PeerAction::Ban {
                until_ms: 1_000 + 24 * HOUR_MS
            }
        );
        assert!(p.is_banned(&"evil", 1_000));
        assert!(p.is_banned(&"evil", 1_000 + 24 * HOUR_MS - 1));
        assert!(!p.is_banned(&"evil", 1_000 + 24 * HOUR_MS));
        assert!(!p.is_banned(&"honest", 1_000));
        assert_eq!(p.expire_bans(1_000 + 24 * HOUR_MS), vec!["evil"]);
        assert_eq!(p.bans().count(), 0);
    }

    #[test]
    fn soft_faults_add_up_to_a_ban() {
        let mut p = policy();
        for i in 0..4 {
            assert_eq!(
                p.on_misbehavior(&"sloppy", Misbehavior::ProtocolViolation, i),
                PeerAction::None
            );
        }
        assert_eq!(p.score(&"sloppy"), 80);
        assert!(matches!(
            p.on_misbehavior(&"sloppy", Misbehavior::ProtocolViolation, 5),
            PeerAction::Ban { .. }
        ));
        assert_eq!(
            p.score(&"sloppy"),
            0,
            "a banned peer starts afresh after the ban"
        );
    }

    /// Issue 11, item 5: a peer that reconnected after every 4 violations was never banned,
    /// because its record was dropped on disconnect. Nothing here forgets it now.
    #[test]
    fn scores_outlive_reconnects_and_expire_after_a_ban_window() {
        let mut p = policy();
        let mut banned_at = None;
        for i in 0..40u64 {
            // (the machine used to call `forget` here, on every fourth violation)
            if let PeerAction::Ban { .. } =
                p.on_misbehavior(&"reconnector", Misbehavior::ProtocolViolation, i * 1_000)
            {
                banned_at = Some(i);
                break;
            }
        }
        assert_eq!(banned_at, Some(4), "the fifth violation bans");
        p.on_misbehavior(&"quiet", Misbehavior::ProtocolViolation, 0);
        p.expire_records(24 * HOUR_MS - 1);
        assert_eq!(p.score(&"quiet"), 20);
        p.expire_records(24 * HOUR_MS);
        assert_eq!(p.score(&"quiet"), 0, "forgotten after a ban window");
    }

    #[test]
    fn records_are_bounded_and_the_stalest_goes_first() {
        let mut p = PeerPolicy::new(
            PeerPolicyConfig {
                max_records: 3,
                ..PeerPolicyConfig::default()
            },
            [],
        );
        for (i, peer) in ["a", "b", "c", "d"].into_iter().enumerate() {
            p.on_misbehavior(&peer, Misbehavior::ProtocolViolation, i as u64);
        }
        assert_eq!(p.score(&"a"), 0, "the stalest record went");
        for peer in ["b", "c", "d"] {
            assert_eq!(p.score(&peer), 20);
        }
    }

    #[test]
    fn block_errors_map_to_faults_only_when_the_peer_is_at_fault() {
        use crate::core::primitives::{BlockHash, Txid};
        assert_eq!(
            Misbehavior::for_block_error(&BlockError::BadSignature { txid: Txid::ZERO }),
            Some(Misbehavior::InvalidBlock)
        );
        assert_eq!(
            Misbehavior::for_block_error(&BlockError::UnknownParent(BlockHash::ZERO)),
            None
        );
        assert_eq!(
            Misbehavior::for_block_error(&BlockError::TimeTooFarAhead {
                time: 10,
                now: 0,
                max_drift: 1
            }),
            None
        );
    }

    #[test]
    fn another_chain_is_disconnected_not_banned() {
        let mut p = policy();
        assert_eq!(
            p.on_misbehavior(&"other", Misbehavior::WrongChain, 0),
            PeerAction::Disconnect
        );
        assert!(!p.is_banned(&"other", 0));
    }

    #[test]
    fn bursts_pass_a_flood_is_penalised_and_tokens_refill() {
        let mut p = policy();
        let now = 10 * HOUR_MS;
        for _ in 0..100 {
            assert_eq!(p.on_request(&"peer", now), Ok(()));
        }
        // The 101st request in the same millisecond exceeds the burst.
        assert_eq!(p.on_request(&"peer", now), Err(PeerAction::None));
        assert_eq!(p.score(&"peer"), 50);
        // 20 ms later one token (50/s) has come back.
        assert_eq!(p.on_request(&"peer", now + 20), Ok(()));
        // A second flood bans.
        assert!(matches!(
            p.on_request(&"peer", now + 20),
            Err(PeerAction::Ban { .. })
        ));
        // A steady 50 requests per second is always fine.
        let mut steady = policy();
        for i in 0..1_000u64 {
            assert_eq!(steady.on_request(&"steady", i * 20), Ok(()), "request {i}");
        }
    }

    #[test]
    fn bans_survive_a_restart_through_storage_and_can_be_lifted() {
        let mut p = policy();
        let PeerAction::Ban { until_ms } = p.ban(&"evil", 0) else {
            panic!("ban returns a ban");
        };
        let stored: Vec<(&str, u64)> = p.bans().map(|(peer, until)| (*peer, until)).collect();
        let mut restarted = PeerPolicy::new(PeerPolicyConfig::default(), stored);
        assert!(restarted.is_banned(&"evil", until_ms - 1));
        assert!(restarted.unban(&"evil"));
        assert!(!restarted.is_banned(&"evil", 1));
        assert!(!restarted.unban(&"evil"));
    }

    #[test]
    fn time_going_backwards_does_not_mint_tokens() {
        let mut p = policy();
        for _ in 0..100 {
            p.on_request(&"peer", 5_000).unwrap();
        }
        assert!(p.on_request(&"peer", 1_000).is_err());
    }
}
