//! Figures about the chain for people: a block's difficulty and the network's hash rate.
//! Shown by the API and the explorer, computed here once. Floating point is fine: nothing
//! here decides anything.
use super::BlockIndexEntry;
use crate::core::consensus::target::Target;
use crate::core::consensus::CompactTarget;

/// How many times harder than the pow limit `bits` is (0 for bits that decode to no target).
pub fn difficulty(pow_limit: &Target, bits: CompactTarget) -> f64 {
    match Target::from_compact(bits) {
        Ok(target) => {
            let exponent = pow_limit.as_u256().approx_log2() - target.as_u256().approx_log2();
            exponent.exp2()
        }
        Err(_) => 0.0,
    }
}

/// Hashes per second the network spent between `older` and `newer` (blocks of one chain):
/// the work between them over the time between their headers; 0 if their times do not
/// increase or no work lies between them.
pub fn hash_rate(older: &BlockIndexEntry, newer: &BlockIndexEntry) -> f64 {
    let secs = i64::from(newer.header.time) - i64::from(older.header.time);
    let work = newer
        .chain_work
        .as_u256()
        .checked_sub(older.chain_work.as_u256())
        .unwrap_or_default();
    if secs <= 0 || work.is_zero() {
        return 0.0;
    }
    work.approx_log2().exp2() / secs as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{test_address, TestChain};

    #[test]
    fn the_pow_limit_is_difficulty_one_and_each_halving_doubles_it() {
        let chain = TestChain::new();
        let limit = chain.spec.pow_limit;
        let limit_bits = CompactTarget::from_consensus(0x207fffff);
        assert!((difficulty(&limit, limit_bits) - 1.0).abs() < 1e-9);
        let harder = CompactTarget::from_consensus(0x1f7fffff); // 256 times harder
        assert!((difficulty(&limit, harder) - 256.0).abs() < 1e-6);
        assert_eq!(difficulty(&limit, CompactTarget::from_consensus(0)), 0.0);
    }

    #[test]
    fn hash_rate_is_work_over_time_and_zero_without_either() {
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let blocks = chain.extend(&genesis, 3, test_address(0));
        let first = chain.entry_of(&blocks[0].hash()).clone();
        let last = chain.entry_of(&blocks[2].hash()).clone();
        let work = last.chain_work.as_u256() - first.chain_work.as_u256();
        let secs = f64::from(last.header.time - first.header.time);
        let rate = hash_rate(&first, &last);
        assert!((rate - work.approx_log2().exp2() / secs).abs() < 1e-6 * rate);
        assert_eq!(hash_rate(&last, &first), 0.0);
        assert_eq!(hash_rate(&last, &last), 0.0);
    }
}
