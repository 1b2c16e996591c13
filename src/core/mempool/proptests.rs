//! Property test of the whole pool: random admissions (valid or not, replacements, gaps,
//! full pools), removals, mined blocks, reorgs and expiry, on a real test chain. After every
//! step the pool's invariants hold, every held transfer is valid on the tip (no nonce below
//! the account's, each sender's queue covered by its balance), `by_fee_rate` is sorted and
//! complete, and `select` applies under the consensus rules within its limits.
use super::fees::cmp_fee_rate;
use super::test_support::Fixture;
use super::{Mempool, MempoolConfig};
use crate::core::primitives::transfer::UnsignedTransfer;
use crate::core::primitives::{Amount, Block, Transfer, Txid};
use crate::core::state::StateView;
use crate::core::testkit::{test_address, test_keypair};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// Small limits, so that every rule is reached in a few steps.
fn tight() -> MempoolConfig {
    MempoolConfig {
        max_bytes: 900,
        max_per_sender: 2,
        max_nonce_gap: 2,
        min_fee_rate: 1,
        replace_bump_percent: 10,
        expiry_secs: 100,
    }
}

/// The block limits `select` is checked with besides "everything".
const BLOCK_BYTES: usize = 700;
const BLOCK_COUNT: usize = 3;

/// A transfer from key `from` to key `to` with nonce `ahead` above the account nonce,
/// moving `permille` of the balance, with a memo of `memo` bytes.
#[derive(Clone, Debug)]
struct Plan {
    from: u8,
    to: u8,
    ahead: u64,
    permille: u16,
    fee: u64,
    memo: u8,
}

#[derive(Clone, Debug)]
enum Op {
    /// Admit the planned transfer (built on the tip's state).
    Admit(Plan),
    /// Remove the held transfer at this position (modulo the count).
    Remove { pick: usize },
    /// Mine what `select` gives (at most `max_count`) on the tip.
    Mine { max_count: usize },
    /// Replace the tip by a two-block branch whose first block spends key `from`'s nonce.
    Reorg { from: u8, fee: u64 },
    /// Let time pass, then expire.
    Expire { advance: u64 },
}

/// Mostly the account's next nonce; sometimes a gap, or one too many.
fn ahead() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 2 => 0u64..4]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..5, 0u8..6, ahead(), 0u16..=700, 100u64..1_500, 0u8..60).prop_map(
            |(from, to, ahead, permille, fee, memo)| Op::Admit(Plan { from, to, ahead, permille, fee, memo })
        ),
        1 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        2 => (0usize..5).prop_map(|max_count| Op::Mine { max_count }),
        1 => (0u8..4, 164u64..2_000).prop_map(|(from, fee)| Op::Reorg { from, fee }),
        1 => (0u64..150).prop_map(|advance| Op::Expire { advance }),
    ]
}

fn txids<'a>(transfers: impl IntoIterator<Item = &'a Transfer>) -> Vec<Txid> {
    transfers.into_iter().map(Transfer::txid).collect()
}

/// Every invariant the module docs promise, checked from the outside.
fn check(fx: &Fixture, pool: &Mempool) -> Result<(), TestCaseError> {
    pool.assert_invariants();
    let state = fx.state();

    let ordered: Vec<_> = pool.by_fee_rate().collect();
    prop_assert_eq!(ordered.len(), pool.len());
    for pair in ordered.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let rate = cmp_fee_rate(
            a.transfer.fee.as_units(),
            a.size as u64,
            b.transfer.fee.as_units(),
            b.size as u64,
        );
        prop_assert!(rate.is_ge(), "by_fee_rate out of order");
    }

    // Each sender's queue is valid on the tip; the runs from the account nonce are what a
    // block with no limits takes.
    let mut runnable = BTreeSet::new();
    let senders: BTreeSet<_> = ordered.iter().map(|e| e.transfer.from).collect();
    for sender in senders {
        let account = state.account(&sender).unwrap().unwrap_or_default();
        let mut needed = 0u128;
        let mut next = account.nonce;
        let mut seen = BTreeSet::new();
        for entry in pool.sender_entries(&sender) {
            let t = &entry.transfer;
            prop_assert!(seen.insert(t.nonce), "two transfers with one nonce");
            prop_assert!(t.nonce >= account.nonce, "nonce below the account's");
            needed += u128::from(t.amount.as_units()) + u128::from(t.fee.as_units());
            prop_assert!(
                needed <= u128::from(account.balance.as_units()),
                "uncovered"
            );
            if t.nonce == next {
                runnable.insert(entry.txid);
                next += 1;
            }
        }
        prop_assert_eq!(pool.next_nonce(&sender, account.nonce), next);
    }

    let everything = pool.select(state, usize::MAX, usize::MAX).unwrap();
    prop_assert_eq!(
        txids(&everything).into_iter().collect::<BTreeSet<_>>(),
        runnable
    );
    prop_assert!(fx.apply_on(&fx.tip, everything).is_ok());

    let block = pool.select(state, BLOCK_BYTES, BLOCK_COUNT).unwrap();
    prop_assert!(block.len() <= BLOCK_COUNT);
    prop_assert!(block.iter().map(Transfer::encoded_size).sum::<usize>() <= BLOCK_BYTES);
    prop_assert!(fx.apply_on(&fx.tip, block).is_ok());
    Ok(())
}

/// The transfer `plan` describes, on the tip's state.
fn planned(fx: &Fixture, plan: &Plan) -> Transfer {
    let account = fx
        .state()
        .account(&test_address(plan.from))
        .unwrap()
        .unwrap_or_default();
    let amount = u128::from(account.balance.as_units()) * u128::from(plan.permille) / 1000;
    UnsignedTransfer {
        chain_id: fx.chain.spec.chain_id(),
        to: test_address(plan.to),
        amount: Amount::from_units(amount as u64),
        fee: Amount::from_units(plan.fee),
        nonce: account.nonce + plan.ahead,
        memo: vec![b'x'; usize::from(plan.memo)],
    }
    .sign(&test_keypair(plan.from), &fx.chain.genesis_hash, &[7u8; 32])
}

/// Replaces the tip block by a two-block branch; checks the update's report.
fn reorg(
    fx: &mut Fixture,
    pool: &mut Mempool,
    from: u8,
    fee: u64,
    now: u64,
) -> Result<(), TestCaseError> {
    if fx.tip == fx.chain.genesis_hash {
        return Ok(());
    }
    let old: Block = fx.chain.block(&fx.tip).clone();
    let parent = old.header.prev_hash;
    let account = fx
        .chain
        .state_at(&parent)
        .account(&test_address(from))
        .unwrap()
        .unwrap_or_default();
    let mut spend = Vec::new();
    if account.balance.as_units() >= 1_000 + fee {
        spend.push(fx.chain.transfer(
            &test_keypair(from),
            test_address(5),
            1_000,
            fee,
            account.nonce,
        ));
    }
    let b1 = fx.mine_on(&parent, spend.clone());
    let b2 = fx.mine_on(&b1.hash(), Vec::new());
    fx.tip = b2.hash();
    let update = pool.update_for_tip(std::slice::from_ref(&old), &[b1, b2], fx.state(), now);
    let confirmed: BTreeSet<Txid> = txids(&spend).into_iter().collect();
    let invalidated: BTreeSet<Txid> = update.invalidated.iter().map(|(t, _)| *t).collect();
    for txid in txids(&old.transfers) {
        if !confirmed.contains(&txid) {
            prop_assert!(update.returned.contains(&txid) || invalidated.contains(&txid));
        }
    }
    prop_assert!(update.returned.iter().all(|t| pool.contains(t)));
    prop_assert!(invalidated.iter().all(|t| !pool.contains(t)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_histories_keep_the_pool_valid(ops in prop::collection::vec(op(), 1..60)) {
        let mut fx = Fixture::new(tight());
        let mut pool = fx.pool();
        let mut now = 1_000u64;
        for op in ops {
            match op {
                Op::Admit(plan) => {
                    let transfer = planned(&fx, &plan);
                    let before = pool.transfers();
                    match pool.admit(transfer.clone(), fx.state(), now) {
                        Ok(admitted) => {
                            prop_assert!(pool.contains(&admitted.txid));
                            for gone in admitted.replaced.iter().chain(&admitted.evicted) {
                                prop_assert!(!pool.contains(gone));
                            }
                        }
                        Err(_) => prop_assert_eq!(pool.transfers(), before),
                    }
                }
                Op::Remove { pick } => {
                    let held = pool.transfers();
                    if !held.is_empty() {
                        let txid = held[pick % held.len()].txid();
                        prop_assert!(pool.remove(&txid).is_some());
                        prop_assert!(!pool.contains(&txid));
                    }
                }
                Op::Mine { max_count } => {
                    let selected = pool.select(fx.state(), BLOCK_BYTES, max_count).unwrap();
                    let block = fx.mine(selected.clone());
                    let update = pool.update_for_tip(&[], &[block], fx.state(), now);
                    prop_assert_eq!(update.included, txids(&selected));
                    prop_assert_eq!(update.returned, Vec::<Txid>::new());
                    prop_assert_eq!(update.invalidated, Vec::new());
                }
                Op::Reorg { from, fee } => reorg(&mut fx, &mut pool, from, fee, now)?,
                Op::Expire { advance } => {
                    now += advance;
                    for txid in pool.expire(now) {
                        prop_assert!(!pool.contains(&txid));
                    }
                    let expiry = pool.config().expiry_secs;
                    prop_assert!(pool.by_fee_rate().all(|e| now - e.added_secs <= expiry));
                }
            }
            check(&fx, &pool)?;
        }
    }
}
