//! The mempool's store: the held transfers and the indexes that order them, with lookups,
//! removal and expiry. Admission, selection and chain updates live in `admit`, `select` and
//! `tip`; they change the store only through [`Mempool::insert_entry`] and
//! [`Mempool::remove_entry`], which keep every index in step. No I/O.
//!
//! # Invariants
//! - `entries` holds every transfer once, under its txid; every index below names exactly
//!   the txids of `entries`.
//! - `by_sender` holds at most one transfer per (sender, nonce), and no empty queue.
//! - `by_rate` holds one [`RateKey`] per entry; `tails` holds the key of each sender's
//!   highest-nonce entry, and nothing else (the eviction candidates).
//! - `by_recipient` and `by_added` index every entry by recipient and by admission time.
//! - `bytes` is the sum of the entries' sizes.
use super::config::MempoolConfig;
use super::fees::{estimate, fee_rate_milli, FeeEstimate, RateKey};
use crate::core::primitives::{Address, Amount, BlockHash, Transfer, Txid};
use crate::core::state::SignatureCache;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::sync::Arc;

/// A transfer held in the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEntry {
    /// The signed transfer.
    pub transfer: Transfer,
    /// Its txid.
    pub txid: Txid,
    /// Its encoded size in bytes.
    pub size: usize,
    /// When it was admitted, Unix seconds.
    pub added_secs: u64,
}

impl PoolEntry {
    /// A pool entry for `transfer`, admitted at `added_secs`.
    pub(super) fn new(transfer: Transfer, added_secs: u64) -> PoolEntry {
        PoolEntry {
            txid: transfer.txid(),
            size: transfer.encoded_size(),
            transfer,
            added_secs,
        }
    }

    /// The fee rate in thousandths of a base unit per byte, rounded down (for display).
    pub fn fee_rate_milli(&self) -> u64 {
        fee_rate_milli(self.transfer.fee.as_units(), self.size_u64())
    }

    /// The size as a `u64` (sizes are a few hundred bytes).
    fn size_u64(&self) -> u64 {
        u64::try_from(self.size).unwrap_or(u64::MAX)
    }

    /// The entry's place in the fee-rate order.
    pub(super) fn rate_key(&self) -> RateKey {
        RateKey {
            fee: self.transfer.fee.as_units(),
            size: self.size_u64(),
            added_secs: self.added_secs,
            txid: self.txid,
        }
    }
}

/// Signed transfers waiting for a block (see the module docs of `core::mempool`).
#[derive(Clone, Debug)]
pub struct Mempool {
    pub(super) config: MempoolConfig,
    pub(super) genesis_hash: BlockHash,
    pub(super) chain_id: u32,
    pub(super) entries: BTreeMap<Txid, PoolEntry>,
    pub(super) by_sender: BTreeMap<Address, BTreeMap<u64, Txid>>,
    pub(super) by_rate: BTreeSet<RateKey>,
    pub(super) tails: BTreeSet<RateKey>,
    pub(super) by_recipient: BTreeMap<Address, BTreeSet<Txid>>,
    pub(super) by_added: BTreeSet<(u64, Txid)>,
    pub(super) bytes: usize,
    /// Verified signatures and senders' parsed keys, shared with block validation: a
    /// known sender's key is not parsed again, and a block is not checked twice.
    pub(super) signatures: Option<Arc<SignatureCache>>,
}

impl Mempool {
    /// An empty pool for the chain with `genesis_hash` and `chain_id`.
    pub fn new(config: MempoolConfig, genesis_hash: BlockHash, chain_id: u32) -> Mempool {
        Mempool {
            config,
            genesis_hash,
            chain_id,
            entries: BTreeMap::new(),
            by_sender: BTreeMap::new(),
            by_rate: BTreeSet::new(),
            tails: BTreeSet::new(),
            by_recipient: BTreeMap::new(),
            by_added: BTreeSet::new(),
            bytes: 0,
            signatures: None,
        }
    }

    /// Checks signatures through `cache` (which must be for this pool's chain), sharing its
    /// verified transfers and parsed keys with block validation.
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Mempool {
        debug_assert_eq!(cache.genesis(), &self.genesis_hash);
        self.signatures = Some(cache);
        self
    }

    /// Whether `transfer` (with id `txid`) carries a valid signature for this chain.
    pub(super) fn has_valid_signature(&self, transfer: &Transfer, txid: Txid) -> bool {
        match &self.signatures {
            Some(cache) if cache.genesis() == &self.genesis_hash => {
                cache.check_with_txid(transfer, txid)
            }
            _ => transfer.has_valid_signature(&self.genesis_hash),
        }
    }

    /// The pool's limits and policy.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// The held transfer `txid`.
    pub fn get(&self, txid: &Txid) -> Option<&PoolEntry> {
        self.entries.get(txid)
    }

    /// Whether the pool holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// How many transfers are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no transfer is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of the held transfers' encoded sizes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every held transfer, in txid order.
    pub fn entries(&self) -> impl Iterator<Item = &PoolEntry> {
        self.entries.values()
    }

    /// Every held transfer, best fee rate first; equal rates older first, then by txid.
    pub fn by_fee_rate(&self) -> impl Iterator<Item = &PoolEntry> {
        self.by_rate
            .iter()
            .filter_map(|key| self.entries.get(&key.txid))
    }

    /// The held transfers of `sender`, in nonce order.
    pub fn sender_entries(&self, sender: &Address) -> impl Iterator<Item = &PoolEntry> {
        self.by_sender
            .get(sender)
            .into_iter()
            .flat_map(|queue| queue.values())
            .filter_map(|txid| self.entries.get(txid))
    }

    /// The sum of amount + fee of the held transfers of `sender` (saturating: a sum past
    /// `u64` is more than any balance): what its balance must still cover.
    pub fn pending_outgoing(&self, sender: &Address) -> Amount {
        self.sender_entries(sender).fold(Amount::ZERO, add_cost)
    }

    /// The held transfers sent or received by `address`, oldest first (then by txid); a
    /// transfer to oneself appears once.
    pub fn involving(&self, address: &Address) -> Vec<&PoolEntry> {
        let sent = self
            .by_sender
            .get(address)
            .into_iter()
            .flat_map(|q| q.values());
        let received = self.by_recipient.get(address).into_iter().flatten();
        let mut found: Vec<&PoolEntry> = sent
            .chain(received)
            .collect::<BTreeSet<&Txid>>()
            .into_iter()
            .filter_map(|txid| self.entries.get(txid))
            .collect();
        found.sort_by_key(|e| (e.added_secs, e.txid));
        found
    }

    /// The nonce `sender`'s next transfer should carry: `account_nonce` plus the run of held
    /// consecutive nonces from it.
    pub fn next_nonce(&self, sender: &Address, account_nonce: u64) -> u64 {
        let mut next = account_nonce;
        if let Some(queue) = self.by_sender.get(sender) {
            for nonce in queue.range(account_nonce..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// Removes `txid` alone (the sender's higher nonces stay, waiting for the gap to fill).
    pub fn remove(&mut self, txid: &Txid) -> Option<PoolEntry> {
        self.remove_entry(txid)
    }

    /// Drops the transfers held more than `expiry_secs` before `now_secs`, with each one's
    /// higher-nonce transfers of the same sender (they would wait behind the gap); returns
    /// their txids.
    pub fn expire(&mut self, now_secs: u64) -> Vec<Txid> {
        let expiry = self.config.expiry_secs;
        let old: Vec<Txid> = self
            .by_added
            .iter()
            .take_while(|(added, _)| now_secs.saturating_sub(*added) > expiry)
            .map(|(_, txid)| *txid)
            .collect();
        let mut expired = Vec::new();
        for txid in old {
            if let Some((from, nonce)) = self.sender_nonce(&txid) {
                expired.extend(
                    self.remove_nonces(&from, nonce..)
                        .into_iter()
                        .map(|e| e.txid),
                );
            }
        }
        expired
    }

    /// The fee rate a new transfer should pay to enter a block of `block_bytes`.
    pub fn fee_estimate(&self, block_bytes: usize) -> FeeEstimate {
        estimate(
            self.by_rate.iter(),
            self.bytes,
            block_bytes,
            self.config.min_fee_rate,
        )
    }

    /// Every held transfer, each sender's in nonce order (senders by address): admitting them
    /// in this order into an empty pool on the same state holds them again.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.by_sender
            .values()
            .flat_map(|queue| queue.values())
            .filter_map(|txid| self.entries.get(txid))
            .map(|entry| entry.transfer.clone())
            .collect()
    }

    /// The sender and nonce of the held transfer `txid`.
    pub(super) fn sender_nonce(&self, txid: &Txid) -> Option<(Address, u64)> {
        self.entries
            .get(txid)
            .map(|e| (e.transfer.from, e.transfer.nonce))
    }

    /// The held transfer of `sender` with `nonce`.
    pub(super) fn at_nonce(&self, sender: &Address, nonce: u64) -> Option<&PoolEntry> {
        self.by_sender
            .get(sender)
            .and_then(|queue| queue.get(&nonce))
            .and_then(|txid| self.entries.get(txid))
    }

    /// Adds `entry` to every index. The caller has checked that neither its txid nor its
    /// (sender, nonce) is held.
    pub(super) fn insert_entry(&mut self, entry: PoolEntry) {
        let key = entry.rate_key();
        let from = entry.transfer.from;
        let nonce = entry.transfer.nonce;
        let queue = self.by_sender.entry(from).or_default();
        let old_tail = queue.last_key_value().map(|(n, t)| (*n, *t));
        queue.insert(nonce, entry.txid);
        match old_tail {
            Some((tail_nonce, _)) if tail_nonce > nonce => {}
            Some((_, tail_txid)) => {
                if let Some(old) = self.entries.get(&tail_txid) {
                    self.tails.remove(&old.rate_key());
                }
                self.tails.insert(key);
            }
            None => {
                self.tails.insert(key);
            }
        }
        self.by_rate.insert(key);
        self.by_recipient
            .entry(entry.transfer.to)
            .or_default()
            .insert(entry.txid);
        self.by_added.insert((entry.added_secs, entry.txid));
        self.bytes += entry.size;
        self.entries.insert(entry.txid, entry);
    }

    /// Removes `txid` from every index.
    pub(super) fn remove_entry(&mut self, txid: &Txid) -> Option<PoolEntry> {
        let entry = self.entries.remove(txid)?;
        let key = entry.rate_key();
        let from = entry.transfer.from;
        if let Some(queue) = self.by_sender.get_mut(&from) {
            queue.remove(&entry.transfer.nonce);
            if self.tails.remove(&key) {
                if let Some(new_tail) = queue.values().next_back() {
                    if let Some(tail) = self.entries.get(new_tail) {
                        self.tails.insert(tail.rate_key());
                    }
                }
            }
            if queue.is_empty() {
                self.by_sender.remove(&from);
            }
        }
        self.by_rate.remove(&key);
        if let Some(set) = self.by_recipient.get_mut(&entry.transfer.to) {
            set.remove(txid);
            if set.is_empty() {
                self.by_recipient.remove(&entry.transfer.to);
            }
        }
        self.by_added.remove(&(entry.added_secs, entry.txid));
        self.bytes -= entry.size;
        Some(entry)
    }

    /// Removes `sender`'s transfers whose nonces are in `nonces`; returns them in nonce order.
    pub(super) fn remove_nonces(
        &mut self,
        sender: &Address,
        nonces: impl RangeBounds<u64>,
    ) -> Vec<PoolEntry> {
        let txids: Vec<Txid> = self
            .by_sender
            .get(sender)
            .map(|queue| queue.range(nonces).map(|(_, t)| *t).collect())
            .unwrap_or_default();
        txids.iter().filter_map(|t| self.remove_entry(t)).collect()
    }

    /// Panics if an invariant of the module docs does not hold.
    #[cfg(test)]
    pub(super) fn assert_invariants(&self) {
        let keys: BTreeSet<RateKey> = self.entries.values().map(PoolEntry::rate_key).collect();
        assert_eq!(keys.len(), self.entries.len());
        assert!(keys.iter().eq(self.by_rate.iter()), "by_rate");
        let mut tails = BTreeSet::new();
        let mut queued = 0;
        for (sender, queue) in &self.by_sender {
            assert!(!queue.is_empty(), "empty queue");
            for (nonce, txid) in queue {
                let entry = &self.entries[txid];
                assert_eq!(
                    (&entry.transfer.from, entry.transfer.nonce),
                    (sender, *nonce)
                );
                queued += 1;
            }
            let last = queue.values().next_back().expect("not empty");
            tails.insert(self.entries[last].rate_key());
        }
        assert_eq!(queued, self.entries.len(), "by_sender");
        assert!(tails.iter().eq(self.tails.iter()), "tails");
        let by_recipient: usize = self.by_recipient.values().map(BTreeSet::len).sum();
        assert_eq!(by_recipient, self.entries.len(), "by_recipient");
        for (to, txids) in &self.by_recipient {
            assert!(!txids.is_empty());
            assert!(txids.iter().all(|t| self.entries[t].transfer.to == *to));
        }
        let added: BTreeSet<(u64, Txid)> = self
            .entries
            .values()
            .map(|e| (e.added_secs, e.txid))
            .collect();
        assert_eq!(added, self.by_added, "by_added");
        for (txid, entry) in &self.entries {
            assert_eq!(*txid, entry.transfer.txid());
            assert_eq!(entry.size, entry.transfer.encoded_size());
        }
        let bytes: usize = self.entries.values().map(|e| e.size).sum();
        assert_eq!(bytes, self.bytes, "bytes");
        assert!(self.bytes <= self.config.max_bytes, "over max_bytes");
        // `max_per_sender` bounds what a sender adds; a reorg may return more (`Origin`).
    }
}

/// `needed` plus amount + fee of a held transfer, saturating (a sum past `u64` is more
/// than any balance).
pub(super) fn add_cost(needed: Amount, entry: &PoolEntry) -> Amount {
    entry
        .transfer
        .total_cost()
        .and_then(|cost| needed.checked_add(cost))
        .unwrap_or(Amount::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, Fixture};
    use super::*;

    #[test]
    fn lookups_follow_admissions_and_removals() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let a = fx.send(0, 1, 10, 500, 0);
        let b = fx.send(0, 2, 10, 300, 1);
        let c = fx.send(2, 0, 10, 900, 0);
        for t in [&a, &b, &c] {
            pool.admit(t.clone(), fx.state(), 100).unwrap();
        }
        pool.assert_invariants();
        assert_eq!(pool.len(), 3);
        assert!(!pool.is_empty());
        assert_eq!(pool.bytes(), 3 * 164);
        assert!(pool.contains(&a.txid()));
        assert_eq!(pool.get(&c.txid()).unwrap().transfer, c);
        let order: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();
        assert_eq!(order, [c.txid(), a.txid(), b.txid()]);
        let nonces: Vec<u64> = pool
            .sender_entries(&fx.addr(0))
            .map(|e| e.transfer.nonce)
            .collect();
        assert_eq!(nonces, [0, 1]);
        // Key 0 sent a and b and received c; key 2 received b and sent c.
        let involving: BTreeSet<Txid> =
            pool.involving(&fx.addr(0)).iter().map(|e| e.txid).collect();
        assert_eq!(involving, BTreeSet::from([a.txid(), b.txid(), c.txid()]));
        assert_eq!(pool.involving(&fx.addr(1)).len(), 1);
        assert!(pool.involving(&fx.addr(3)).is_empty());
        assert_eq!(pool.next_nonce(&fx.addr(0), 0), 2);
        assert_eq!(pool.next_nonce(&fx.addr(0), 1), 2);
        assert_eq!(pool.next_nonce(&fx.addr(3), 7), 7);
        // Amount + fee of what key 0 sent (a and b); key 1 sent nothing.
        assert_eq!(pool.pending_outgoing(&fx.addr(0)), Amount::from_units(820));
        assert_eq!(pool.pending_outgoing(&fx.addr(1)), Amount::ZERO);

        assert_eq!(pool.remove(&a.txid()).unwrap().transfer, a);
        assert_eq!(pool.remove(&a.txid()), None);
        pool.assert_invariants();
        // b waits behind the hole a left.
        assert_eq!(pool.next_nonce(&fx.addr(0), 0), 0);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn a_transfer_to_oneself_is_listed_once() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let own = fx.send(1, 1, 10, 500, 0);
        pool.admit(own.clone(), fx.state(), 0).unwrap();
        let listed: Vec<Txid> = pool.involving(&fx.addr(1)).iter().map(|e| e.txid).collect();
        assert_eq!(listed, [own.txid()]);
    }

    #[test]
    fn fee_rate_milli_is_for_display() {
        let fx = Fixture::new(config());
        let entry = PoolEntry::new(fx.send(0, 1, 10, 401, 0), 0);
        assert_eq!(entry.size, 164);
        assert_eq!(entry.fee_rate_milli(), 2445);
    }

    #[test]
    fn expiry_drops_old_transfers_and_the_higher_nonces_behind_them() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let expiry = pool.config().expiry_secs;
        let old0 = fx.send(0, 1, 10, 500, 0);
        let young1 = fx.send(0, 1, 10, 500, 1);
        let young_other = fx.send(1, 0, 10, 500, 0);
        pool.admit(old0.clone(), fx.state(), 1_000).unwrap();
        pool.admit(young1.clone(), fx.state(), 2_000).unwrap();
        pool.admit(young_other.clone(), fx.state(), 2_000).unwrap();
        assert!(
            pool.expire(1_000 + expiry).is_empty(),
            "not older than expiry yet"
        );
        assert_eq!(
            pool.expire(1_001 + expiry),
            [old0.txid(), young1.txid()],
            "the old one, and the younger nonce behind it"
        );
        pool.assert_invariants();
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.expire(2_001 + expiry), [young_other.txid()]);
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
    }

    #[test]
    fn transfers_readmit_cleanly_into_an_empty_pool() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        // Admitted out of nonce order, with a gap for key 1.
        for t in [
            fx.send(0, 1, 10, 500, 1),
            fx.send(0, 1, 10, 500, 0),
            fx.send(1, 0, 10, 700, 2),
            fx.send(1, 0, 10, 700, 0),
        ] {
            pool.admit(t, fx.state(), 5).unwrap();
        }
        let saved = pool.transfers();
        let mut again = fx.pool();
        for t in saved.clone() {
            again.admit(t, fx.state(), 6).unwrap();
        }
        assert_eq!(again.transfers(), saved);
        assert_eq!(again.bytes(), pool.bytes());
    }

    #[test]
    fn fee_estimate_follows_the_pool() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        assert_eq!(
            pool.fee_estimate(1_000),
            FeeEstimate {
                min_fee_rate: 1,
                suggested_fee_rate: 1
            }
        );
        pool.admit(fx.send(0, 1, 10, 164 * 7, 0), fx.state(), 0)
            .unwrap();
        pool.admit(fx.send(1, 0, 10, 164 * 3 + 1, 0), fx.state(), 0)
            .unwrap();
        assert_eq!(
            pool.fee_estimate(329).suggested_fee_rate,
            1,
            "less than a block"
        );
        // One transfer deep: 7 per byte, plus one.
        assert_eq!(pool.fee_estimate(164).suggested_fee_rate, 8);
        // Two deep: just over 3 per byte rounds up to 4, plus one.
        assert_eq!(pool.fee_estimate(328).suggested_fee_rate, 5);
    }
}
