//! One account: its balance and nonce. No I/O.
use crate::core::primitives::{tagged_hash, Address, Amount, Hash256};
use serde::{Deserialize, Serialize};

/// The state of one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable base units.
    pub balance: Amount,
    /// Number of transfers this account has sent; the next must carry this nonce.
    pub nonce: u64,
}

impl Account {
    /// The tree leaf hash of this account at `address`:
    /// `tagged_hash("cairn/smt-leaf", address || balance_le || nonce_le)`.
    pub fn leaf_hash(&self, address: &Address) -> Hash256 {
        tagged_hash(
            "cairn/smt-leaf",
            &[
                address.as_bytes(),
                &self.balance.as_units().to_le_bytes(),
                &self.nonce.to_le_bytes(),
            ],
        )
    }
}
