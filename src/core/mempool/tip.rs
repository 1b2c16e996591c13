//! Following the best chain: when blocks are connected and disconnected, the pool drops what
//! they confirmed, takes back what they un-confirmed, and drops what the new tip makes
//! invalid. No I/O.
use super::admit::Origin;
use super::error::MempoolError;
use super::fees::{replacement_min_fee, saturate};
use super::pool::Mempool;
use crate::core::primitives::{Address, Amount, Block, Transfer, Txid};
use crate::core::state::StateView;
use std::collections::BTreeSet;

/// What [`Mempool::update_for_tip`] did. Every txid in `returned` is held afterwards, and
/// none in `invalidated` is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TipUpdate {
    /// Held transfers that left because a connected block holds them, in block order.
    pub included: Vec<Txid>,
    /// Transfers of disconnected blocks now back in the pool, in chain order.
    pub returned: Vec<Txid>,
    /// Transfers dropped (held ones, or disconnected ones that could not come back) because
    /// they are not valid on the new tip, with the reason. A held transfer displaced by a
    /// returned one with the same sender and nonce is reported as `ReplacementUnderpriced`;
    /// one evicted to make room, as `PoolFull`.
    pub invalidated: Vec<(Txid, MempoolError)>,
}

impl Mempool {
    /// After the best chain moved: `disconnected` = blocks taken off (in the order they were
    /// taken off, tip first), `connected` = blocks put on (in chain order), `state` = the new
    /// tip's state.
    ///
    /// 1. The connected blocks' transfers leave the pool (`included`).
    /// 2. Every account whose change can invalidate held transfers is revalidated: the
    ///    senders of both lists (nonces moved), and the recipients and reward addresses of
    ///    the disconnected blocks (balances went down). Transfers below the account nonce or
    ///    no longer covered leave (`invalidated`). An account the state cannot read is left
    ///    as it is ([`Mempool::select`] checks again anyway).
    /// 3. The disconnected blocks' transfers that no connected block holds are admitted
    ///    again, oldest block first (`returned`, or `invalidated` with the reason).
    pub fn update_for_tip<V: StateView + ?Sized>(
        &mut self,
        disconnected: &[Block],
        connected: &[Block],
        state: &V,
        now_secs: u64,
    ) -> TipUpdate {
        let mut update = TipUpdate::default();
        let mut confirmed = BTreeSet::new();
        for transfer in connected.iter().flat_map(|b| &b.transfers) {
            let txid = transfer.txid();
            confirmed.insert(txid);
            if self.remove_entry(&txid).is_some() {
                update.included.push(txid);
            }
        }

        let mut touched: BTreeSet<Address> = connected
            .iter()
            .flat_map(|b| &b.transfers)
            .map(|t| t.from)
            .collect();
        for block in disconnected {
            touched.insert(block.reward_address);
            touched.extend(block.transfers.iter().flat_map(|t| [t.from, t.to]));
        }
        for address in touched {
            if !self.by_sender.contains_key(&address) {
                continue;
            }
            if let Ok(account) = state.account(&address) {
                let dropped = self.revalidate_sender(&address, account.unwrap_or_default());
                update
                    .invalidated
                    .extend(dropped.into_iter().map(|(e, reason)| (e.txid, reason)));
            }
        }

        for transfer in disconnected.iter().rev().flat_map(|b| &b.transfers) {
            let txid = transfer.txid();
            if !confirmed.contains(&txid) {
                self.readmit(transfer, state, now_secs, &mut update);
            }
        }
        // A returned transfer may have been evicted by a later one.
        update.returned.retain(|t| self.contains(t));
        update.invalidated.retain(|(t, _)| !self.contains(t));
        update
    }

    /// Admits a disconnected block's `transfer` again, recording the outcome in `update`.
    fn readmit<V: StateView + ?Sized>(
        &mut self,
        transfer: &Transfer,
        state: &V,
        now_secs: u64,
        update: &mut TipUpdate,
    ) {
        let txid = transfer.txid();
        match self.admit_with_reasons(transfer.clone(), state, now_secs, Origin::Returned) {
            Ok(admission) => {
                update.returned.push(txid);
                if let Some(displaced) = admission.replaced {
                    let fee = transfer.fee.as_units();
                    let minimum = replacement_min_fee(fee, self.config.replace_bump_percent);
                    let reason = MempoolError::ReplacementUnderpriced {
                        existing_fee: transfer.fee,
                        minimum_fee: Amount::from_units(saturate(minimum)),
                    };
                    update.invalidated.push((displaced.txid, reason));
                }
                let dropped = admission.dropped.into_iter();
                update
                    .invalidated
                    .extend(dropped.map(|(e, reason)| (e.txid, reason)));
            }
            Err(MempoolError::AlreadyKnown { .. }) => update.returned.push(txid),
            Err(reason) => update.invalidated.push((txid, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, Fixture};
    use super::*;
    use crate::core::mempool::MempoolConfig;

    #[test]
    fn included_transfers_leave_the_pool() {
        let mut fx = Fixture::new(config());
        let mut pool = fx.pool();
        let t0 = fx.send(0, 1, 10, 500, 0);
        let t1 = fx.send(0, 1, 10, 500, 1);
        let other = fx.send(1, 0, 10, 500, 0);
        for t in [&t0, &t1, &other] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        let block = fx.mine(vec![t0.clone(), other.clone()]);
        let update = pool.update_for_tip(&[], &[block], fx.state(), 10);
        assert_eq!(
            update,
            TipUpdate {
                included: vec![t0.txid(), other.txid()],
                returned: Vec::new(),
                invalidated: Vec::new(),
            }
        );
        assert_eq!(pool.transfers(), std::slice::from_ref(&t1));
        assert_eq!(
            pool.select(fx.state(), usize::MAX, usize::MAX).unwrap(),
            [t1]
        );
        pool.assert_invariants();
    }

    #[test]
    fn a_reorg_returns_the_disconnected_transfers_and_they_can_be_mined_again() {
        let mut fx = Fixture::new(config());
        let mut pool = fx.pool();
        let genesis = fx.tip;
        let t0 = fx.send(0, 1, 10, 500, 0);
        let t1 = fx.send(0, 1, 10, 500, 1);
        let shared = fx.send(2, 1, 10, 500, 0);
        let old_tip = fx.mine(vec![t0.clone(), t1.clone(), shared.clone()]);
        pool.update_for_tip(&[], std::slice::from_ref(&old_tip), fx.state(), 0);
        assert!(pool.is_empty());

        // A longer branch from genesis that holds `shared` only.
        let b1 = fx.mine_on(&genesis, vec![shared.clone()]);
        let b2 = fx.mine_on(&b1.hash(), Vec::new());
        fx.tip = b2.hash();
        let update = pool.update_for_tip(&[old_tip], &[b1, b2], fx.state(), 20);
        assert_eq!(update.included, Vec::<Txid>::new());
        assert_eq!(update.returned, [t0.txid(), t1.txid()]);
        assert_eq!(update.invalidated, []);
        assert_eq!(pool.get(&t0.txid()).unwrap().added_secs, 20);
        let selected = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        assert_eq!(selected, [t0, t1]);
        fx.apply_on(&fx.tip, selected).unwrap();
        pool.assert_invariants();
    }

    /// Found by the network simulation: after a partition healed, a sender's transfers
    /// confirmed on the losing side came back more than `max_nonce_gap` ahead of the
    /// winning side's account nonce, and those beyond were dropped: lost, though each had
    /// been accepted and even confirmed. Returned transfers are not held to the per-sender
    /// limits.
    #[test]
    fn a_deep_reorg_returns_a_long_run_of_one_senders_transfers() {
        let mut fx = Fixture::new(MempoolConfig {
            max_nonce_gap: 3,
            max_per_sender: 2,
            ..config()
        });
        let mut pool = fx.pool();
        let genesis = fx.tip;
        let run: Vec<Transfer> = (0..6).map(|n| fx.send(0, 1, 10, 500, n)).collect();
        let lost_side = fx.mine(run.clone());
        pool.update_for_tip(&[], std::slice::from_ref(&lost_side), fx.state(), 0);
        let b1 = fx.mine_on(&genesis, Vec::new());
        let b2 = fx.mine_on(&b1.hash(), Vec::new());
        fx.tip = b2.hash();
        let update = pool.update_for_tip(&[lost_side], &[b1, b2], fx.state(), 20);
        assert_eq!(update.invalidated, []);
        assert_eq!(
            update.returned,
            run.iter().map(Transfer::txid).collect::<Vec<_>>()
        );
        let selected = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        assert_eq!(selected, run);
        pool.assert_invariants();
        // A new transfer from that sender still meets the limits.
        let next = fx.send(0, 1, 10, 500, 6);
        assert!(matches!(
            pool.admit(next, fx.state(), 30),
            Err(MempoolError::NonceTooFarAhead { .. } | MempoolError::SenderFull { .. })
        ));
    }

    #[test]
    fn a_competing_block_invalidates_the_same_senders_nonce() {
        let mut fx = Fixture::new(config());
        let mut pool = fx.pool();
        let pending0 = fx.send(0, 1, 10, 500, 0);
        let pending1 = fx.send(0, 1, 10, 500, 1);
        pool.admit(pending0.clone(), fx.state(), 0).unwrap();
        pool.admit(pending1.clone(), fx.state(), 0).unwrap();
        // Key 0 spent nonce 0 elsewhere, on something else.
        let competing = fx.send(0, 2, 77, 500, 0);
        let block = fx.mine(vec![competing]);
        let update = pool.update_for_tip(&[], &[block], fx.state(), 10);
        assert_eq!(update.included, []);
        assert_eq!(
            update.invalidated,
            [(
                pending0.txid(),
                MempoolError::NonceTooLow {
                    account_nonce: 1,
                    found: 0
                }
            )]
        );
        assert_eq!(pool.transfers(), [pending1]);
    }

    #[test]
    fn a_block_that_spends_the_balance_invalidates_what_it_no_longer_covers() {
        let mut fx = Fixture::new(config());
        let mut pool = fx.pool();
        let all = fx.balance(0);
        let pending = fx.send(0, 1, all / 2, 500, 1);
        pool.admit(pending.clone(), fx.state(), 0).unwrap();
        let spend = fx.send(0, 2, all - all / 4, 500, 0);
        let block = fx.mine(vec![spend]);
        let update = pool.update_for_tip(&[], &[block], fx.state(), 10);
        assert_eq!(update.invalidated.len(), 1);
        assert_eq!(update.invalidated[0].0, pending.txid());
        assert_eq!(update.invalidated[0].1.code(), "insufficient_balance");
        assert!(pool.is_empty());
    }

    #[test]
    fn a_reorg_revalidates_recipients_whose_balance_went_down() {
        let mut fx = Fixture::new(config());
        let mut pool = fx.pool();
        let genesis = fx.tip;
        // Key 5 starts with nothing; a block pays it, and it spends that in the pool.
        let pay = fx.send(0, 5, 100_000, 500, 0);
        let old_tip = fx.mine(vec![pay.clone()]);
        pool.update_for_tip(&[], std::slice::from_ref(&old_tip), fx.state(), 0);
        let spend = fx.send(5, 1, 10, 500, 0);
        pool.admit(spend.clone(), fx.state(), 0).unwrap();

        // The winning branch does not pay key 5: `pay` comes back, `spend` is uncovered.
        let b1 = fx.mine_on(&genesis, Vec::new());
        let b2 = fx.mine_on(&b1.hash(), Vec::new());
        fx.tip = b2.hash();
        let update = pool.update_for_tip(&[old_tip], &[b1, b2], fx.state(), 5);
        assert_eq!(update.returned, [pay.txid()]);
        assert_eq!(
            update.invalidated,
            [(
                spend.txid(),
                MempoolError::InsufficientBalance {
                    needed: Amount::from_units(510),
                    available: Amount::ZERO
                }
            )]
        );
        assert_eq!(pool.transfers(), [pay]);
        pool.assert_invariants();
    }
}
