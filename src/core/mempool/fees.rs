//! Fee-rate arithmetic for the mempool, in integers only: the order of transfers by fee rate,
//! the fee floor, the replacement minimum and the fee estimate. No I/O.
//!
//! A fee rate is `fee / size` (base units per encoded byte). Two rates are compared by
//! cross-multiplication in `u128` (`a.fee * b.size` against `b.fee * a.size`), which is exact
//! for every `u64` fee and size; floats appear nowhere in a decision.
use crate::core::primitives::Txid;
use std::cmp::Ordering;

/// What fee rate a new transfer should pay, in whole base units per byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeEstimate {
    /// The pool's floor: less is refused.
    pub min_fee_rate: u64,
    /// The rate that should get a transfer into the next block.
    pub suggested_fee_rate: u64,
}

/// The pool's sort key: best fee rate first, then held longer first, then lower txid. A
/// total order: two keys are equal only if their txids are.
#[derive(Clone, Copy, Debug)]
pub(super) struct RateKey {
    /// The fee, in base units.
    pub fee: u64,
    /// The encoded size, in bytes (never zero for a transfer).
    pub size: u64,
    /// When the transfer was admitted.
    pub added_secs: u64,
    /// The transfer.
    pub txid: Txid,
}

impl RateKey {
    /// How this key's fee rate compares with `other`'s: `Greater` if it pays more per byte.
    pub fn cmp_rate(&self, other: &RateKey) -> Ordering {
        cmp_fee_rate(self.fee, self.size, other.fee, other.size)
    }

    /// The fee rate in thousandths of a base unit per byte (rounded down).
    pub fn rate_milli(&self) -> u64 {
        fee_rate_milli(self.fee, self.size)
    }
}

impl Ord for RateKey {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .cmp_rate(self)
            .then(self.added_secs.cmp(&other.added_secs))
            .then(self.txid.cmp(&other.txid))
    }
}

impl PartialOrd for RateKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for RateKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RateKey {}

/// Compares the fee rates `fee_a / size_a` and `fee_b / size_b` exactly.
pub(super) fn cmp_fee_rate(fee_a: u64, size_a: u64, fee_b: u64, size_b: u64) -> Ordering {
    (u128::from(fee_a) * u128::from(size_b)).cmp(&(u128::from(fee_b) * u128::from(size_a)))
}

/// `fee * 1000 / size`, rounded down, saturating (for display and error reports).
pub(super) fn fee_rate_milli(fee: u64, size: u64) -> u64 {
    let milli = u128::from(fee) * 1000 / u128::from(size.max(1));
    u64::try_from(milli).unwrap_or(u64::MAX)
}

/// The least fee a transfer of `size` bytes pays at `rate` units per byte (not saturated).
pub(super) fn min_fee(rate: u64, size: u64) -> u128 {
    u128::from(rate) * u128::from(size)
}

/// The least fee that replaces a transfer paying `old_fee`: `old_fee * (100 + bump) / 100`
/// rounded up, and at least `old_fee + 1` (not saturated).
pub(super) fn replacement_min_fee(old_fee: u64, bump_percent: u64) -> u128 {
    let bumped = (u128::from(old_fee) * (100 + u128::from(bump_percent))).div_ceil(100);
    bumped.max(u128::from(old_fee) + 1)
}

/// A `u128` fee as a `u64`, saturating (for error reports).
pub(super) fn saturate(fee: u128) -> u64 {
    u64::try_from(fee).unwrap_or(u64::MAX)
}

/// The estimate for a pool holding `pool_bytes` whose keys, best first, are `by_rate`: the
/// floor while the pool holds less than `block_bytes`; otherwise the rate of the transfer at
/// `block_bytes` depth, rounded up to whole units per byte, plus one (and never below the
/// floor).
pub(super) fn estimate<'a>(
    by_rate: impl Iterator<Item = &'a RateKey>,
    pool_bytes: usize,
    block_bytes: usize,
    floor: u64,
) -> FeeEstimate {
    let mut suggested = floor;
    if pool_bytes >= block_bytes {
        let mut depth = 0u64;
        let block_bytes = u64::try_from(block_bytes).unwrap_or(u64::MAX);
        for key in by_rate {
            depth = depth.saturating_add(key.size);
            if depth >= block_bytes {
                let rate = key.fee.div_ceil(key.size.max(1));
                suggested = suggested.max(rate.saturating_add(1));
                break;
            }
        }
    }
    FeeEstimate {
        min_fee_rate: floor,
        suggested_fee_rate: suggested,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn key(fee: u64, size: u64, added_secs: u64, id: u8) -> RateKey {
        RateKey {
            fee,
            size,
            added_secs,
            txid: Txid([id; 32]),
        }
    }

    #[test]
    fn keys_sort_best_rate_first_then_older_then_txid() {
        let set: BTreeSet<RateKey> = [
            key(164, 164, 5, 1), // rate 1
            key(400, 200, 9, 2), // rate 2, newer
            key(328, 164, 1, 3), // rate 2, older
            key(329, 164, 9, 4), // rate just above 2
            key(328, 164, 1, 0), // rate 2, same age as 3, lower txid
            key(165, 165, 0, 5), // rate 1, oldest
        ]
        .into_iter()
        .collect();
        let order: Vec<u8> = set.iter().map(|k| k.txid.0[0]).collect();
        assert_eq!(order, [4, 0, 3, 2, 5, 1]);
    }

    #[test]
    fn rates_compare_exactly_where_floats_would_not() {
        // 2^64 - 1 over 2^64 - 2 against 2^64 - 2 over 2^64 - 3: both round to 1.0 as f64.
        let (a, b) = (u64::MAX, u64::MAX - 1);
        assert_eq!(cmp_fee_rate(a, b, b, b - 1), Ordering::Less);
        assert_eq!(cmp_fee_rate(a, a, 1, 1), Ordering::Equal);
        assert_eq!(fee_rate_milli(u64::MAX, 1), u64::MAX);
        assert_eq!(fee_rate_milli(401, 164), 2445);
    }

    #[test]
    fn replacement_minimum_rounds_up_and_always_raises_the_fee() {
        assert_eq!(replacement_min_fee(1000, 10), 1100);
        assert_eq!(replacement_min_fee(1001, 10), 1102); // 1101.1 rounded up
        assert_eq!(replacement_min_fee(5, 0), 6);
        assert_eq!(replacement_min_fee(1, 10), 2);
        assert!(replacement_min_fee(u64::MAX, 10) > u128::from(u64::MAX));
        assert_eq!(min_fee(u64::MAX, 200), u128::from(u64::MAX) * 200);
    }

    #[test]
    fn estimate_is_the_floor_below_a_block_and_beats_the_rate_at_block_depth() {
        let keys = [
            key(1000, 200, 0, 1),
            key(700, 200, 0, 2),
            key(300, 200, 0, 3),
        ];
        let empty: [RateKey; 0] = [];
        assert_eq!(
            estimate(empty.iter(), 0, 400, 1),
            FeeEstimate {
                min_fee_rate: 1,
                suggested_fee_rate: 1
            }
        );
        assert_eq!(estimate(keys.iter(), 600, 700, 1).suggested_fee_rate, 1);
        // 400 bytes deep: the second transfer, 3.5 units per byte, rounded up, plus one.
        assert_eq!(estimate(keys.iter(), 600, 400, 1).suggested_fee_rate, 5);
        assert_eq!(estimate(keys.iter(), 600, 401, 1).suggested_fee_rate, 3);
        assert_eq!(estimate(keys.iter(), 600, 401, 9).suggested_fee_rate, 9);
    }
}
