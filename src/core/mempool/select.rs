//! Choosing the transfers for the next block: greedy by fee rate over each sender's next
//! nonce, replaying the consensus transfer rules (`consensus::apply`) on a copy of the touched
//! accounts so the result is valid in the order returned. No I/O.
use super::error::MempoolError;
use super::fees::RateKey;
use super::pool::{Mempool, PoolEntry};
use crate::core::primitives::{Address, Amount, Transfer};
use crate::core::state::{Account, StateView};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// The accounts a block being filled has touched so far, over the tip's state.
struct Overlay<'v, V: StateView + ?Sized> {
    state: &'v V,
    touched: BTreeMap<Address, Account>,
}

impl<V: StateView + ?Sized> Overlay<'_, V> {
    fn get(&mut self, address: &Address) -> Result<Account, MempoolError> {
        if let Some(account) = self.touched.get(address) {
            return Ok(*account);
        }
        let account = self.state.account(address)?.unwrap_or_default();
        self.touched.insert(*address, account);
        Ok(account)
    }

    /// Applies `transfer` as `consensus::apply` does (nonce, balance, recipient overflow), or
    /// returns `false` and changes nothing.
    fn try_apply(&mut self, transfer: &Transfer) -> Result<bool, MempoolError> {
        let mut sender = self.get(&transfer.from)?;
        let Some(balance) = transfer
            .total_cost()
            .and_then(|cost| sender.balance.checked_sub(cost))
        else {
            return Ok(false);
        };
        let Some(next_nonce) = sender.nonce.checked_add(1) else {
            return Ok(false);
        };
        if transfer.nonce != sender.nonce {
            return Ok(false);
        }
        sender.balance = balance;
        sender.nonce = next_nonce;
        let mut recipient = if transfer.to == transfer.from {
            sender
        } else {
            self.get(&transfer.to)?
        };
        let Some(received) = recipient.balance.checked_add(transfer.amount) else {
            return Ok(false);
        };
        recipient.balance = received;
        if transfer.to != transfer.from {
            self.touched.insert(transfer.from, sender);
        }
        self.touched.insert(transfer.to, recipient);
        Ok(true)
    }
}

impl Mempool {
    /// The transfers for the next block on `state`, at most `max_bytes` (sum of encoded
    /// sizes) and `max_count` of them: repeatedly the best fee rate among each sender's next
    /// transfer (nonce equal to its account nonce, then the next held nonce). A sender whose
    /// next transfer does not fit, or is not covered, adds nothing more. The list is valid in
    /// this order under the consensus transfer rules (it does not check the reward).
    pub fn select<V: StateView + ?Sized>(
        &self,
        state: &V,
        max_bytes: usize,
        max_count: usize,
    ) -> Result<Vec<Transfer>, MempoolError> {
        let mut overlay = Overlay {
            state,
            touched: BTreeMap::new(),
        };
        let mut heads: BinaryHeap<Reverse<RateKey>> = BinaryHeap::new();
        for sender in self.by_sender.keys() {
            let nonce = overlay.get(sender)?.nonce;
            if let Some(head) = self.at_nonce(sender, nonce) {
                heads.push(Reverse(head.rate_key()));
            }
        }
        let mut chosen = Vec::new();
        let mut bytes = 0usize;
        let mut fees = Amount::ZERO;
        while chosen.len() < max_count {
            let Some(Reverse(best)) = heads.pop() else {
                break;
            };
            let Some(entry) = self.get(&best.txid) else {
                continue;
            };
            let Some(next_fees) = fees.checked_add(entry.transfer.fee) else {
                continue;
            };
            let fits = bytes
                .checked_add(entry.size)
                .is_some_and(|b| b <= max_bytes);
            if !fits || !overlay.try_apply(&entry.transfer)? {
                continue;
            }
            bytes += entry.size;
            fees = next_fees;
            chosen.push(entry.transfer.clone());
            if let Some(next) = self.next_of(entry) {
                heads.push(Reverse(next.rate_key()));
            }
        }
        Ok(chosen)
    }

    /// The held transfer with the same sender and the next nonce.
    fn next_of(&self, entry: &PoolEntry) -> Option<&PoolEntry> {
        let nonce = entry.transfer.nonce.checked_add(1)?;
        self.at_nonce(&entry.transfer.from, nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, Fixture, MINER};
    use super::*;
    use crate::core::primitives::Txid;

    fn txids(transfers: &[Transfer]) -> Vec<Txid> {
        transfers.iter().map(Transfer::txid).collect()
    }

    #[test]
    fn a_future_nonce_waits_until_the_gap_fills() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let t1 = fx.send(0, 1, 10, 900, 1);
        let t2 = fx.send(0, 1, 10, 900, 2);
        pool.admit(t1.clone(), fx.state(), 0).unwrap();
        pool.admit(t2.clone(), fx.state(), 0).unwrap();
        assert_eq!(pool.next_nonce(&fx.addr(0), 0), 0);
        assert!(pool
            .select(fx.state(), usize::MAX, usize::MAX)
            .unwrap()
            .is_empty());

        let t0 = fx.send(0, 1, 10, 200, 0);
        pool.admit(t0.clone(), fx.state(), 0).unwrap();
        assert_eq!(pool.next_nonce(&fx.addr(0), 0), 3);
        let selected = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        assert_eq!(selected, [t0, t1, t2]);
        fx.apply_on(&fx.tip, selected).unwrap();
    }

    #[test]
    fn a_senders_nonce_order_beats_fee_rate() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let cheap0 = fx.send(0, 1, 10, 200, 0);
        let rich1 = fx.send(0, 1, 10, 5_000, 1);
        let middle = fx.send(1, 0, 10, 1_000, 0);
        for t in [&rich1, &middle, &cheap0] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        let selected = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        // Key 1 first (its head pays more than key 0's head); then key 0 in nonce order.
        assert_eq!(txids(&selected), txids(&[middle, cheap0, rich1]));
        fx.apply_on(&fx.tip, selected).unwrap();
    }

    #[test]
    fn selection_is_greedy_by_fee_rate_within_the_limits() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let ours = fx.chain.spec.chain_id();
        let a = fx.send(0, MINER, 10, 1_000, 0); // 6.1 per byte
        let b = fx.send_with(1, 1_200, 0, vec![0; 80], ours); // 244 bytes, 4.9 per byte
        let c = fx.send(2, MINER, 10, 700, 0); // 4.3 per byte
        let d = fx.send(3, MINER, 10, 300, 0); // 1.8 per byte
        for t in [&a, &b, &c, &d] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        let all = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        assert_eq!(
            txids(&all),
            txids(&[a.clone(), b.clone(), c.clone(), d.clone()])
        );
        let by_rate: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();
        assert_eq!(by_rate, txids(&all));

        assert_eq!(
            pool.select(fx.state(), usize::MAX, 2).unwrap(),
            [a.clone(), b]
        );
        // 400 bytes: b (244) does not fit after a (164); c does, and then d does not.
        assert_eq!(pool.select(fx.state(), 400, usize::MAX).unwrap(), [a, c]);
        assert!(pool.select(fx.state(), 163, usize::MAX).unwrap().is_empty());
        assert!(pool.select(fx.state(), usize::MAX, 0).unwrap().is_empty());
    }

    #[test]
    fn a_sender_the_state_does_not_cover_adds_nothing() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        let t0 = fx.send(0, 1, 1_000, 500, 0);
        let t1 = fx.send(0, 1, 1_000, 500, 1);
        let other = fx.send(1, 2, 1_000, 400, 0);
        for t in [&t0, &t1, &other] {
            pool.admit(t.clone(), fx.state(), 0).unwrap();
        }
        // On a state where key 0 can pay one transfer, and where key 1 has moved on.
        let mut state = fx.state().clone();
        state.accounts.insert(
            fx.addr(0),
            Account {
                balance: Amount::from_units(1_500),
                nonce: 0,
            },
        );
        state.accounts.insert(
            fx.addr(1),
            Account {
                balance: Amount::from_units(1_000_000),
                nonce: 1,
            },
        );
        assert_eq!(pool.select(&state, usize::MAX, usize::MAX).unwrap(), [t0]);
    }

    #[test]
    fn transfers_received_earlier_in_the_block_count() {
        let fx = Fixture::new(config());
        let mut pool = fx.pool();
        // Key 4 (unfunded) can pay only with what key 0 sends it in the same block.
        let fund = fx.send(0, MINER, 10_000, 2_000, 0);
        pool.admit(fund.clone(), fx.state(), 0).unwrap();
        let mut funded = fx.state().clone();
        funded.accounts.insert(
            fx.addr(MINER),
            Account {
                balance: Amount::from_units(10_000),
                nonce: 0,
            },
        );
        let spend = fx.send(MINER, 1, 9_000, 500, 0);
        pool.admit(spend.clone(), &funded, 0).unwrap();
        let selected = pool.select(fx.state(), usize::MAX, usize::MAX).unwrap();
        assert_eq!(selected, [fund, spend]);
        fx.apply_on(&fx.tip, selected).unwrap();
    }
}
