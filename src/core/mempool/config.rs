//! The mempool's limits and policy numbers. No I/O.
//!
//! None of these are consensus rules: nodes may differ, and a block holding a transfer this
//! pool would refuse is still valid.

/// Limits and policy of the [`Mempool`](super::Mempool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most bytes held: the sum of the transfers' encoded sizes.
    pub max_bytes: usize,
    /// Most transfers held per sender.
    pub max_per_sender: usize,
    /// A transfer's nonce may be at most the account nonce plus this.
    pub max_nonce_gap: u64,
    /// The fee floor, in base units per encoded byte.
    pub min_fee_rate: u64,
    /// How much more (in percent of the old fee, rounded up) a replacement must pay.
    pub replace_bump_percent: u64,
    /// Seconds a transfer is held before it expires.
    pub expiry_secs: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_bytes: 32 * 1024 * 1024,
            max_per_sender: 64,
            max_nonce_gap: 32,
            min_fee_rate: 1,
            replace_bump_percent: 10,
            expiry_secs: 86_400,
        }
    }
}
