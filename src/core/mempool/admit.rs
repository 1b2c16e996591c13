//! Admission: every check a transfer passes before the pool holds it, replace-by-fee, and
//! eviction when the pool is full. No I/O.
//!
//! The checks run cheapest first, and the signature is checked before anything is stored:
//! already held, chain id, memo length, amount + fee overflow, fee floor, nonce against the
//! account nonce, signature, replace-by-fee, per-sender count, cumulative balance, byte bound.
//! A refused transfer leaves the pool exactly as it was.
use super::error::MempoolError;
use super::fees::{min_fee, replacement_min_fee, saturate, RateKey};
use super::pool::{add_cost, Mempool, PoolEntry};
use crate::core::primitives::{Address, Amount, Transfer, Txid, MAX_MEMO_BYTES};
use crate::core::state::{Account, StateView};

/// What [`Mempool::admit`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The admitted transfer.
    pub txid: Txid,
    /// The pending transfer with the same sender and nonce it replaced by fee, if any.
    pub replaced: Option<Txid>,
    /// Transfers dropped to make room or because the sender's balance no longer covers them.
    pub evicted: Vec<Txid>,
}

/// Where a transfer offered to the pool comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// A client or a peer: every policy limit applies.
    New,
    /// A block taken off the best chain. Such transfers cost a block's work to make and
    /// follow each other without gaps, so the per-sender limits (nonce distance, count) do
    /// not apply: a deep reorg must not lose a sender's confirmed transfers to them. The
    /// pool's byte bound still does.
    Returned,
}

/// An admission with the reason each dropped transfer left (for chain updates).
#[derive(Clone, Debug)]
pub(super) struct Admission {
    pub txid: Txid,
    pub replaced: Option<PoolEntry>,
    pub dropped: Vec<(PoolEntry, MempoolError)>,
}

impl Mempool {
    /// Validates `transfer` against `state` (the best tip's state) and the pool, and holds
    /// it. On error the pool is unchanged.
    pub fn admit<V: StateView + ?Sized>(
        &mut self,
        transfer: Transfer,
        state: &V,
        now_secs: u64,
    ) -> Result<Admitted, MempoolError> {
        let admission = self.admit_with_reasons(transfer, state, now_secs, Origin::New)?;
        Ok(Admitted {
            txid: admission.txid,
            replaced: admission.replaced.map(|e| e.txid),
            evicted: admission.dropped.into_iter().map(|(e, _)| e.txid).collect(),
        })
    }

    /// [`Mempool::admit`], returning the replaced and dropped entries with their reasons.
    pub(super) fn admit_with_reasons<V: StateView + ?Sized>(
        &mut self,
        transfer: Transfer,
        state: &V,
        now_secs: u64,
        origin: Origin,
    ) -> Result<Admission, MempoolError> {
        let entry = PoolEntry::new(transfer, now_secs);
        let account = self.check(&entry, state, origin)?;
        let txid = entry.txid;
        let from = entry.transfer.from;
        let nonce = entry.transfer.nonce;
        let newcomer = entry.rate_key();

        // From here on the pool changes; if it is full, what left goes back and the
        // newcomer leaves.
        let replaced = self
            .at_nonce(&from, nonce)
            .map(|e| e.txid)
            .and_then(|t| self.remove_entry(&t));
        self.insert_entry(entry);
        let mut dropped = self.revalidate_sender(&from, account);
        if let Err(error) = self.make_room(&newcomer, &mut dropped) {
            let undo = replaced
                .into_iter()
                .chain(dropped.into_iter().map(|(e, _)| e));
            self.remove_entry(&txid);
            for old in undo {
                self.insert_entry(old);
            }
            return Err(error);
        }
        Ok(Admission {
            txid,
            replaced,
            dropped,
        })
    }

    /// Every check that needs no change to the pool, in order; returns the sender's account.
    fn check<V: StateView + ?Sized>(
        &self,
        entry: &PoolEntry,
        state: &V,
        origin: Origin,
    ) -> Result<Account, MempoolError> {
        let transfer = &entry.transfer;
        let txid = entry.txid;
        if self.contains(&txid) {
            return Err(MempoolError::AlreadyKnown { txid });
        }
        if transfer.chain_id != self.chain_id {
            return Err(MempoolError::WrongChainId {
                expected: self.chain_id,
                found: transfer.chain_id,
            });
        }
        if transfer.memo.len() > MAX_MEMO_BYTES {
            return Err(MempoolError::MemoTooLong {
                len: transfer.memo.len(),
                max: MAX_MEMO_BYTES,
            });
        }
        let cost = transfer
            .total_cost()
            .ok_or(MempoolError::Overflow { txid })?;
        let key = entry.rate_key();
        let floor = min_fee(self.config.min_fee_rate, key.size);
        if u128::from(key.fee) < floor {
            return Err(MempoolError::FeeTooLow {
                fee: transfer.fee,
                minimum: Amount::from_units(saturate(floor)),
            });
        }
        let account = state.account(&transfer.from)?.unwrap_or_default();
        if transfer.nonce < account.nonce {
            return Err(MempoolError::NonceTooLow {
                account_nonce: account.nonce,
                found: transfer.nonce,
            });
        }
        let max_gap = self.config.max_nonce_gap;
        if origin == Origin::New && transfer.nonce > account.nonce.saturating_add(max_gap) {
            return Err(MempoolError::NonceTooFarAhead {
                account_nonce: account.nonce,
                found: transfer.nonce,
                max_gap,
            });
        }
        if !self.has_valid_signature(transfer, txid) {
            return Err(MempoolError::BadSignature { txid });
        }
        match self.at_nonce(&transfer.from, transfer.nonce) {
            Some(existing) => {
                let old_fee = existing.transfer.fee.as_units();
                let minimum = replacement_min_fee(old_fee, self.config.replace_bump_percent);
                if u128::from(key.fee) < minimum {
                    return Err(MempoolError::ReplacementUnderpriced {
                        existing_fee: existing.transfer.fee,
                        minimum_fee: Amount::from_units(saturate(minimum)),
                    });
                }
            }
            None => {
                let held = self.by_sender.get(&transfer.from).map_or(0, |q| q.len());
                if origin == Origin::New && held >= self.config.max_per_sender {
                    return Err(MempoolError::SenderFull {
                        limit: self.config.max_per_sender,
                    });
                }
            }
        }
        let mut needed = cost;
        for earlier in self
            .sender_entries(&transfer.from)
            .filter(|e| (account.nonce..transfer.nonce).contains(&e.transfer.nonce))
        {
            needed = add_cost(needed, earlier);
        }
        if needed > account.balance {
            return Err(MempoolError::InsufficientBalance {
                needed,
                available: account.balance,
            });
        }
        Ok(account)
    }

    /// Drops `sender`'s transfers that `account` no longer allows: nonces below the account
    /// nonce, then, walking up from it, the first transfer the balance does not cover
    /// (cumulatively) and every higher nonce. Returns them with the reason, in nonce order.
    pub(super) fn revalidate_sender(
        &mut self,
        sender: &Address,
        account: Account,
    ) -> Vec<(PoolEntry, MempoolError)> {
        let mut dropped: Vec<(PoolEntry, MempoolError)> = self
            .remove_nonces(sender, ..account.nonce)
            .into_iter()
            .map(|e| {
                let found = e.transfer.nonce;
                let reason = MempoolError::NonceTooLow {
                    account_nonce: account.nonce,
                    found,
                };
                (e, reason)
            })
            .collect();
        // The sum of amount + fee before the first transfer the balance does not cover.
        let mut covered = Amount::ZERO;
        let mut uncovered = None;
        for entry in self.sender_entries(sender) {
            let needed = add_cost(covered, entry);
            if needed > account.balance {
                uncovered = Some(entry.transfer.nonce);
                break;
            }
            covered = needed;
        }
        if let Some(nonce) = uncovered {
            let mut needed = covered;
            for entry in self.remove_nonces(sender, nonce..) {
                needed = add_cost(needed, &entry);
                let reason = MempoolError::InsufficientBalance {
                    needed,
                    available: account.balance,
                };
                dropped.push((entry, reason));
            }
        }
        dropped
    }

    /// Evicts the lowest-rate sender tails until the pool fits `max_bytes`, each strictly
    /// below `newcomer`'s rate; fails with `PoolFull` (leaving the evictions so far in
    /// `dropped`, for the caller to undo) when the newcomer does not beat the lowest.
    fn make_room(
        &mut self,
        newcomer: &RateKey,
        dropped: &mut Vec<(PoolEntry, MempoolError)>,
    ) -> Result<(), MempoolError> {
        while self.bytes > self.config.max_bytes {
            let lowest = self.tails.iter().next_back().copied();
            let Some(lowest) = lowest.filter(|l| newcomer.cmp_rate(l).is_gt()) else {
                // The newcomer is the lowest, or does not beat it: name the rate to beat.
                let to_beat = self
                    .tails
                    .iter()
                    .rev()
                    .find(|k| k.txid != newcomer.txid)
                    .unwrap_or(newcomer);
                return Err(MempoolError::PoolFull {
                    min_fee_rate_milli: to_beat.rate_milli(),
                });
            };
            if let Some(evicted) = self.remove_entry(&lowest.txid) {
                let reason = MempoolError::PoolFull {
                    min_fee_rate_milli: newcomer.rate_milli(),
                };
                dropped.push((evicted, reason));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, Fixture, MINER};
    use super::super::MempoolConfig;
    use super::*;
    use crate::core::primitives::{BlockHash, Hash256};
    use crate::core::state::memory::MemoryState;
    use crate::core::state::{SmtPage, StateStoreError};
    use std::sync::Arc;

    /// A state whose storage always fails.
    struct BrokenState;

    impl StateView for BrokenState {
        fn account(&self, _: &Address) -> Result<Option<Account>, StateStoreError> {
            Err(StateStoreError::io("disk gone"))
        }
        fn smt_page(&self, _: &Hash256) -> Result<Option<Arc<SmtPage>>, StateStoreError> {
            Err(StateStoreError::io("disk gone"))
        }
    }

    /// The fixture's state with key `i`'s account replaced.
    fn with_account(fx: &Fixture, i: u8, balance: u64, nonce: u64) -> MemoryState {
        let mut state = fx.state().clone();
        let account = Account {
            balance: Amount::from_units(balance),
            nonce,
        };
        state.accounts.insert(fx.addr(i), account);
        state
    }

    /// Admits `transfer` into `pool`, expecting `error` and an unchanged pool.
    fn refused<V: StateView + ?Sized>(
        pool: &mut Mempool,
        transfer: Transfer,
        state: &V,
        error: MempoolError,
    ) {
        let before = (pool.transfers(), pool.bytes());
        assert_eq!(pool.admit(transfer, state, 50), Err(error));
        assert_eq!((pool.transfers(), pool.bytes()), before, "pool changed");
        pool.assert_invariants();
    }

    #[test]
    fn a_valid_transfer_is_admitted() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let transfer = fx.send(0, 1, 1_000, 164, 0);
        let admitted = pool.admit(transfer.clone(), fx.state(), 7).unwrap();
        assert_eq!(
            admitted,
            Admitted {
                txid: transfer.txid(),
                replaced: None,
                evicted: Vec::new()
            }
        );
        let entry = pool.get(&transfer.txid()).unwrap();
        assert_eq!((entry.size, entry.added_secs), (164, 7));
        pool.assert_invariants();
    }

    #[test]
    fn the_same_transfer_twice_is_already_known() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let transfer = fx.send(0, 1, 1_000, 500, 0);
        pool.admit(transfer.clone(), fx.state(), 0).unwrap();
        let txid = transfer.txid();
        refused(
            &mut pool,
            transfer,
            fx.state(),
            MempoolError::AlreadyKnown { txid },
        );
    }

    #[test]
    fn another_chains_id_is_refused() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let ours = fx.chain.spec.chain_id();
        let transfer = fx.send_with(0, 500, 0, Vec::new(), ours + 1);
        let error = MempoolError::WrongChainId {
            expected: ours,
            found: ours + 1,
        };
        assert!(error.is_peer_fault());
        refused(&mut pool, transfer, fx.state(), error);
    }

    #[test]
    fn a_long_memo_is_refused() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let ours = fx.chain.spec.chain_id();
        let longest = fx.send_with(0, 500, 0, vec![b'a'; MAX_MEMO_BYTES], ours);
        pool.admit(longest, fx.state(), 0).unwrap();
        let transfer = fx.send_with(1, 500, 0, vec![b'a'; MAX_MEMO_BYTES + 1], ours);
        let error = MempoolError::MemoTooLong {
            len: MAX_MEMO_BYTES + 1,
            max: MAX_MEMO_BYTES,
        };
        refused(&mut pool, transfer, fx.state(), error);
    }

    #[test]
    fn amount_plus_fee_overflow_is_refused() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let transfer = fx.send(0, 1, u64::MAX - 499, 500, 0);
        let txid = transfer.txid();
        refused(
            &mut pool,
            transfer,
            fx.state(),
            MempoolError::Overflow { txid },
        );
    }

    #[test]
    fn a_fee_below_the_floor_is_refused_and_the_floor_itself_passes() {
        let fx = Fixture::new(MempoolConfig {
            min_fee_rate: 2,
            ..config()
        });
        let mut pool = fx.pool();
        let ours = fx.chain.spec.chain_id();
        // 164 + 10 bytes of memo at 2 units per byte.
        let transfer = fx.send_with(0, 347, 0, vec![b'm'; 10], ours);
        let error = MempoolError::FeeTooLow {
            fee: Amount::from_units(347),
            minimum: Amount::from_units(348),
        };
        refused(&mut pool, transfer, fx.state(), error);
        pool.admit(fx.send_with(0, 348, 0, vec![b'm'; 10], ours), fx.state(), 0)
            .unwrap();
    }

    #[test]
    fn a_used_nonce_is_refused() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let state = with_account(&fx, 0, 1_000_000, 5);
        let error = MempoolError::NonceTooLow {
            account_nonce: 5,
            found: 4,
        };
        refused(&mut pool, fx.send(0, 1, 10, 500, 4), &state, error);
        pool.admit(fx.send(0, 1, 10, 500, 5), &state, 0).unwrap();
    }

    #[test]
    fn a_nonce_too_far_ahead_is_refused() {
        let fx = Fixture::new(MempoolConfig {
            max_nonce_gap: 3,
            ..config()
        });
        let mut pool = fx.pool();
        let state = with_account(&fx, 0, 1_000_000, 5);
        let error = MempoolError::NonceTooFarAhead {
            account_nonce: 5,
            found: 9,
            max_gap: 3,
        };
        refused(&mut pool, fx.send(0, 1, 10, 500, 9), &state, error);
        pool.admit(fx.send(0, 1, 10, 500, 8), &state, 0).unwrap();
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let mut forged = fx.send(0, 1, 10, 500, 0);
        forged.amount = Amount::from_units(11);
        let txid = forged.txid();
        refused(
            &mut pool,
            forged,
            fx.state(),
            MempoolError::BadSignature { txid },
        );
        // Signed for another chain's genesis.
        let mut other = Mempool::new(config(), BlockHash([9u8; 32]), fx.chain.spec.chain_id());
        let transfer = fx.send(0, 1, 10, 500, 0);
        let txid = transfer.txid();
        refused(
            &mut other,
            transfer,
            fx.state(),
            MempoolError::BadSignature { txid },
        );
    }

    #[test]
    fn a_shared_signature_cache_keeps_known_senders_keys_and_still_refuses_forgeries() {
        use crate::core::state::SignatureCache;
        let fx = Fixture::new(config());
        let cache = std::sync::Arc::new(SignatureCache::new(fx.chain.genesis_hash, 1_000));
        let mut pool = fx.pool().with_signature_cache(cache.clone());
        let first = fx.send(0, 1, 10, 500, 0);
        pool.admit(first.clone(), fx.state(), 0).unwrap();
        // The check went through the cache: the transfer is known verified, its sender's key
        // is kept as a point.
        assert!(cache.contains(&first.txid()));
        assert_eq!(cache.keys_remembered(), 1);
        // A known sender's forgery is still refused, and not remembered.
        let mut forged = fx.send(0, 1, 10, 500, 1);
        forged.signature.0[7] ^= 1;
        let txid = forged.txid();
        refused(
            &mut pool,
            forged,
            fx.state(),
            MempoolError::BadSignature { txid },
        );
        assert!(!cache.contains(&txid));
        pool.admit(fx.send(0, 1, 10, 500, 1), fx.state(), 0)
            .unwrap();
        assert_eq!(cache.keys_remembered(), 1);
    }

    #[test]
    fn the_signature_is_checked_before_a_replacement() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        pool.admit(fx.send(0, 1, 10, 500, 0), fx.state(), 0)
            .unwrap();
        let mut forged = fx.send(0, 1, 10, 5_000, 0);
        forged.signature.0[5] ^= 1;
        let txid = forged.txid();
        refused(
            &mut pool,
            forged,
            fx.state(),
            MempoolError::BadSignature { txid },
        );
    }

    #[test]
    fn replace_by_fee_needs_the_bump_and_reports_the_replaced_transfer() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let first = fx.send(0, 1, 10, 1_001, 0);
        pool.admit(first.clone(), fx.state(), 0).unwrap();
        // 1,001 * 110 % = 1,101.1: 1,101 is one unit short.
        let error = MempoolError::ReplacementUnderpriced {
            existing_fee: Amount::from_units(1_001),
            minimum_fee: Amount::from_units(1_102),
        };
        refused(&mut pool, fx.send(0, 1, 10, 1_101, 0), fx.state(), error);
        let second = fx.send(0, 1, 10, 1_102, 0);
        let admitted = pool.admit(second.clone(), fx.state(), 1).unwrap();
        assert_eq!(admitted.replaced, Some(first.txid()));
        assert!(admitted.evicted.is_empty());
        assert!(!pool.contains(&first.txid()));
        assert_eq!(pool.len(), 1);
        assert_eq!(
            pool.sender_entries(&fx.addr(0)).next().unwrap().transfer,
            second
        );
        pool.assert_invariants();
    }

    #[test]
    fn a_replacement_must_raise_the_fee_even_with_no_bump() {
        let fx = Fixture::new(MempoolConfig {
            replace_bump_percent: 0,
            ..config()
        });
        let mut pool = fx.pool();
        pool.admit(fx.send(0, 1, 10, 500, 0), fx.state(), 0)
            .unwrap();
        let error = MempoolError::ReplacementUnderpriced {
            existing_fee: Amount::from_units(500),
            minimum_fee: Amount::from_units(501),
        };
        refused(&mut pool, fx.send(0, 2, 10, 500, 0), fx.state(), error);
        pool.admit(fx.send(0, 2, 10, 501, 0), fx.state(), 0)
            .unwrap();
    }

    #[test]
    fn a_sender_over_its_limit_is_refused_but_may_still_replace() {
        let fx = Fixture::new(MempoolConfig {
            max_per_sender: 2,
            ..config()
        });
        let mut pool = fx.pool();
        pool.admit(fx.send(0, 1, 10, 500, 0), fx.state(), 0)
            .unwrap();
        pool.admit(fx.send(0, 1, 10, 500, 1), fx.state(), 0)
            .unwrap();
        let error = MempoolError::SenderFull { limit: 2 };
        refused(&mut pool, fx.send(0, 1, 10, 500, 2), fx.state(), error);
        pool.admit(fx.send(1, 0, 10, 500, 0), fx.state(), 0)
            .unwrap();
        pool.admit(fx.send(0, 1, 10, 600, 1), fx.state(), 0)
            .unwrap();
    }

    #[test]
    fn the_balance_must_cover_earlier_pending_transfers_too() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let state = with_account(&fx, 0, 10_000, 0);
        pool.admit(fx.send(0, 1, 4_500, 500, 0), &state, 0).unwrap();
        // 5,000 for nonce 0 plus 5,001 for this one.
        let error = MempoolError::InsufficientBalance {
            needed: Amount::from_units(10_001),
            available: Amount::from_units(10_000),
        };
        refused(&mut pool, fx.send(0, 1, 4_501, 500, 1), &state, error);
        pool.admit(fx.send(0, 1, 4_500, 500, 1), &state, 0).unwrap();
        // Alone it would be covered; nothing but the balance was wrong.
        let error = MempoolError::InsufficientBalance {
            needed: Amount::from_units(10_501),
            available: Amount::from_units(10_000),
        };
        refused(&mut pool, fx.send(0, 1, 1, 500, 2), &state, error);
    }

    #[test]
    fn a_failing_state_is_an_internal_error() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let error = MempoolError::State(StateStoreError::io("disk gone"));
        assert_eq!(error.code(), "internal");
        refused(&mut pool, fx.send(0, 1, 10, 500, 0), &BrokenState, error);
    }

    #[test]
    fn a_costlier_replacement_drops_the_later_transfers_it_leaves_uncovered() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let state = with_account(&fx, 0, 10_000, 0);
        let t0 = fx.send(0, 1, 3_000, 500, 0);
        let t1 = fx.send(0, 1, 3_000, 500, 1);
        let t2 = fx.send(0, 1, 2_000, 500, 2);
        for t in [&t0, &t1, &t2] {
            pool.admit(t.clone(), &state, 0).unwrap();
        }
        // Nonce 0 now costs 6,000: nonce 1 still fits (9,500), nonce 2 does not (12,000).
        let bigger = fx.send(0, 1, 5_000, 1_000, 0);
        let admitted = pool.admit(bigger, &state, 1).unwrap();
        assert_eq!(admitted.replaced, Some(t0.txid()));
        assert_eq!(admitted.evicted, [t2.txid()]);
        assert_eq!(pool.next_nonce(&fx.addr(0), 0), 2);
        pool.assert_invariants();
    }

    #[test]
    fn filling_a_gap_drops_the_later_transfers_it_leaves_uncovered() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let state = with_account(&fx, 0, 10_000, 0);
        let t1 = fx.send(0, 1, 2_000, 500, 1);
        let t2 = fx.send(0, 1, 2_000, 500, 2);
        pool.admit(t1.clone(), &state, 0).unwrap();
        pool.admit(t2.clone(), &state, 0).unwrap();
        let admitted = pool.admit(fx.send(0, 1, 6_000, 500, 0), &state, 0).unwrap();
        assert_eq!(admitted.evicted, [t2.txid()]);
        assert!(pool.contains(&t1.txid()));
        pool.assert_invariants();
    }

    /// A pool of room for exactly three plain transfers.
    fn small_pool() -> Fixture {
        Fixture::new(MempoolConfig {
            max_bytes: 3 * 164,
            ..config()
        })
    }

    #[test]
    fn a_full_pool_evicts_the_lowest_fee_rate() {
        let fx = small_pool();
        let mut pool = fx.pool();
        let low = fx.send(0, MINER, 10, 200, 0);
        let mid = fx.send(1, MINER, 10, 300, 0);
        let high = fx.send(2, MINER, 10, 400, 0);
        for t in [&low, &mid, &high] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        let newcomer = fx.send(3, MINER, 10, 250, 0);
        let admitted = pool.admit(newcomer.clone(), fx.state(), 1).unwrap();
        assert_eq!(admitted.evicted, [low.txid()]);
        assert!(pool.contains(&newcomer.txid()) && !pool.contains(&low.txid()));
        assert_eq!(pool.bytes(), 3 * 164);
        pool.assert_invariants();
    }

    #[test]
    fn a_full_pool_refuses_a_newcomer_that_does_not_beat_the_lowest() {
        let fx = small_pool();
        let mut pool = fx.pool();
        for (key, fee) in [(0, 200), (1, 300), (2, 400)] {
            pool.admit(fx.send(key, MINER, 10, fee, 0), fx.state(), 0)
                .unwrap();
        }
        // The same rate as the lowest loses the tie.
        let error = MempoolError::PoolFull {
            min_fee_rate_milli: 200 * 1000 / 164,
        };
        refused(
            &mut pool,
            fx.send(3, MINER, 10, 200, 0),
            fx.state(),
            error.clone(),
        );
        // A larger transfer with a larger fee but a lower rate loses too.
        let ours = fx.chain.spec.chain_id();
        refused(
            &mut pool,
            fx.send_with(3, 210, 0, vec![0; 20], ours),
            fx.state(),
            error,
        );
    }

    #[test]
    fn eviction_takes_only_a_senders_highest_nonce() {
        let fx = small_pool();
        let mut pool = fx.pool();
        // Key 0's nonce 0 pays least, but its nonce 1 pays well: evicting nonce 0 would
        // leave a hole, so the lowest tail (key 1) goes instead.
        let cheap_head = fx.send(0, MINER, 10, 170, 0);
        let rich_tail = fx.send(0, MINER, 10, 900, 1);
        let other = fx.send(1, MINER, 10, 200, 0);
        for t in [&cheap_head, &rich_tail, &other] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        let admitted = pool
            .admit(fx.send(2, MINER, 10, 300, 0), fx.state(), 0)
            .unwrap();
        assert_eq!(admitted.evicted, [other.txid()]);
        assert!(pool.contains(&cheap_head.txid()));
        pool.assert_invariants();
    }

    #[test]
    fn a_refused_replacement_in_a_full_pool_leaves_everything_in_place() {
        let fx = small_pool();
        let mut pool = fx.pool();
        for (key, fee) in [(0, 2_000), (1, 2_000), (2, 2_000)] {
            pool.admit(fx.send(key, MINER, 10, fee, 0), fx.state(), 0)
                .unwrap();
        }
        // Enough bump, but a long memo makes it larger and its rate loses to every other.
        let ours = fx.chain.spec.chain_id();
        let bigger = fx.send_with(0, 2_200, 0, vec![0; 80], ours);
        let error = MempoolError::PoolFull {
            min_fee_rate_milli: 2_000 * 1000 / 164,
        };
        refused(&mut pool, bigger, fx.state(), error);
    }
}
