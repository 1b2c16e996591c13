//! Why the mempool refuses or drops a transfer: one variant per rule, each with the values a
//! reader needs, a stable code for the HTTP API and metrics, and whether the peer that relayed
//! it is at fault. No I/O.
use crate::core::primitives::{Amount, Txid};
use crate::core::state::StateStoreError;

/// A transfer was refused on admission, or dropped from the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The pool holds this very transfer already.
    #[error("transfer {txid} is already in the mempool")]
    AlreadyKnown {
        /// The transfer.
        txid: Txid,
    },
    /// The transfer carries another chain's id.
    #[error("wrong chain id {found}, this chain is {expected}")]
    WrongChainId {
        /// This chain's id.
        expected: u32,
        /// The transfer's chain id.
        found: u32,
    },
    /// The memo is longer than a transfer may carry.
    #[error("memo of {len} bytes, limit {max}")]
    MemoTooLong {
        /// The memo's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signature is not valid for the sender on this chain.
    #[error("transfer {txid}: bad signature")]
    BadSignature {
        /// The transfer.
        txid: Txid,
    },
    /// Amount plus fee does not fit in 64 bits.
    #[error("transfer {txid}: amount plus fee overflows")]
    Overflow {
        /// The transfer.
        txid: Txid,
    },
    /// The fee is below the floor for the transfer's size.
    #[error("fee {fee} too low: at least {minimum} for this size")]
    FeeTooLow {
        /// The transfer's fee.
        fee: Amount,
        /// The floor times the size.
        minimum: Amount,
    },
    /// The nonce was already used by a confirmed transfer.
    #[error("nonce {found} already used: the account's next nonce is {account_nonce}")]
    NonceTooLow {
        /// The account's nonce on the best chain.
        account_nonce: u64,
        /// The transfer's nonce.
        found: u64,
    },
    /// The nonce leaves too large a gap above the account's nonce.
    #[error("nonce {found} too far ahead: the account's next nonce is {account_nonce}, at most {max_gap} ahead allowed")]
    NonceTooFarAhead {
        /// The account's nonce on the best chain.
        account_nonce: u64,
        /// The transfer's nonce.
        found: u64,
        /// The largest gap allowed.
        max_gap: u64,
    },
    /// The balance does not cover amount + fee of this transfer and of the sender's pending
    /// transfers with lower nonces.
    #[error(
        "insufficient balance: needs {needed} with earlier pending transfers, has {available}"
    )]
    InsufficientBalance {
        /// The cumulative amount + fee.
        needed: Amount,
        /// The account's balance on the best chain.
        available: Amount,
    },
    /// A pending transfer has the same sender and nonce, and this fee is not enough higher.
    #[error("replacement underpriced: the pending transfer pays {existing_fee}, a replacement needs at least {minimum_fee}")]
    ReplacementUnderpriced {
        /// The pending transfer's fee.
        existing_fee: Amount,
        /// The least fee a replacement may pay.
        minimum_fee: Amount,
    },
    /// The sender has as many pending transfers as the pool holds per sender.
    #[error("sender has too many pending transfers: limit {limit}")]
    SenderFull {
        /// The per-sender limit.
        limit: usize,
    },
    /// The pool is full and this transfer's fee rate does not beat what would be evicted.
    #[error(
        "mempool full: fee rate must be above {min_fee_rate_milli} thousandths of a unit per byte"
    )]
    PoolFull {
        /// The fee rate to beat, in thousandths of a base unit per byte.
        min_fee_rate_milli: u64,
    },
    /// Held longer than the pool keeps transfers.
    #[error("expired")]
    Expired,
    /// The chain state could not be read; says nothing about the transfer.
    #[error("state storage failed: {0}")]
    State(#[from] StateStoreError),
}

impl MempoolError {
    /// Whether a peer that relayed this transfer is at fault: true only for what no honest
    /// node relays (another chain's id, an oversized memo, a bad signature, an overflowing
    /// amount). Nonces, balances, fees and full pools are races between honest nodes.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            MempoolError::WrongChainId { .. }
                | MempoolError::MemoTooLong { .. }
                | MempoolError::BadSignature { .. }
                | MempoolError::Overflow { .. }
        )
    }

    /// The stable code of this error in the HTTP API and in metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolError::AlreadyKnown { .. } => "already_known",
            MempoolError::WrongChainId { .. } => "wrong_chain",
            MempoolError::MemoTooLong { .. } => "memo_too_long",
            MempoolError::BadSignature { .. } => "bad_signature",
            MempoolError::Overflow { .. } => "overflow",
            MempoolError::FeeTooLow { .. } => "fee_too_low",
            MempoolError::NonceTooLow { .. } => "nonce_too_low",
            MempoolError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            MempoolError::InsufficientBalance { .. } => "insufficient_balance",
            MempoolError::ReplacementUnderpriced { .. } => "replacement_underpriced",
            MempoolError::SenderFull { .. } => "sender_limit",
            MempoolError::PoolFull { .. } => "mempool_full",
            MempoolError::Expired => "expired",
            MempoolError::State(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn one_of_each() -> Vec<MempoolError> {
        let txid = Txid([1u8; 32]);
        let amount = Amount::from_units(5);
        vec![
            MempoolError::AlreadyKnown { txid },
            MempoolError::WrongChainId {
                expected: 1,
                found: 2,
            },
            MempoolError::MemoTooLong { len: 81, max: 80 },
            MempoolError::BadSignature { txid },
            MempoolError::Overflow { txid },
            MempoolError::FeeTooLow {
                fee: amount,
                minimum: amount,
            },
            MempoolError::NonceTooLow {
                account_nonce: 3,
                found: 2,
            },
            MempoolError::NonceTooFarAhead {
                account_nonce: 3,
                found: 40,
                max_gap: 32,
            },
            MempoolError::InsufficientBalance {
                needed: amount,
                available: amount,
            },
            MempoolError::ReplacementUnderpriced {
                existing_fee: amount,
                minimum_fee: amount,
            },
            MempoolError::SenderFull { limit: 64 },
            MempoolError::PoolFull {
                min_fee_rate_milli: 1000,
            },
            MempoolError::Expired,
            MempoolError::State(StateStoreError::io("disk")),
        ]
    }

    #[test]
    fn codes_are_distinct_and_only_invalid_transfers_are_peer_faults() {
        let errors = one_of_each();
        let codes: BTreeSet<&str> = errors.iter().map(MempoolError::code).collect();
        assert_eq!(codes.len(), errors.len());
        let faults: Vec<&str> = errors
            .iter()
            .filter(|e| e.is_peer_fault())
            .map(MempoolError::code)
            .collect();
        assert_eq!(
            faults,
            ["wrong_chain", "memo_too_long", "bad_signature", "overflow"]
        );
    }

    #[test]
    fn messages_are_lowercase_and_give_the_values_back() {
        for error in one_of_each() {
            let text = error.to_string();
            assert!(
                text.starts_with(|c: char| !c.is_ascii_uppercase()),
                "{text}"
            );
        }
        let text = MempoolError::NonceTooFarAhead {
            account_nonce: 3,
            found: 40,
            max_gap: 32,
        }
        .to_string();
        assert!(text.contains("40") && text.contains('3') && text.contains("32"));
        assert_eq!(
            MempoolError::from(StateStoreError::io("disk")).to_string(),
            "state storage failed: I/O failure: disk"
        );
    }
}
