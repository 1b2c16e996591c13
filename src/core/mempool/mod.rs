//! The mempool: signed transfers waiting for a block, validated on admission, ordered by fee
//! rate, bounded, and kept valid as the best chain moves. No I/O: the chain state comes in as
//! a [`StateView`](crate::core::state::StateView) of the best tip, and time as `now_secs`.
//!
//! ```text
//!  transfer ──► Mempool::admit ── checks, cheap first ──► held (or MempoolError)
//!                                                          │
//!  best chain moved ──► update_for_tip ── included leave, disconnected come back,
//!                                         touched accounts revalidated
//!  miner ──► select ── greedy by fee rate over each sender's next nonce ──► block transfers
//!  clock ──► expire        HTTP API ──► get / by_fee_rate / involving / next_nonce / fee_estimate
//! ```
//!
//! - `config`: [`MempoolConfig`], the limits and policy numbers.
//! - `error`: [`MempoolError`], why a transfer is refused or dropped, its API code and whether
//!   the peer that relayed it is at fault.
//! - `fees`: fee-rate arithmetic (integer only) and the fee estimate.
//! - `pool`: [`Mempool`] itself: the entries and their indexes, lookups, removal, expiry.
//! - `admit`: admission: the checks, replace-by-fee and eviction.
//! - `select`: the transfers for the next block.
//! - `tip`: following the best chain (blocks connected and disconnected).
//! - `journal_records`: the record format of the node's mempool journal (pure bytes).
//!
//! # Fee rate and ordering
//! A transfer's fee rate is its fee divided by its encoded size (164 bytes plus the memo).
//! Rates are compared exactly, by cross-multiplication in 128 bits, never as floats. The pool
//! is ordered best rate first; equal rates put the transfer held longer first, then the lower
//! txid, so the order is total and the same on every node that holds the same transfers
//! since the same times. The admission floor is `fee >= min_fee_rate * size`.
//!
//! # Nonce queues
//! Each sender's transfers form a queue by nonce: at most one transfer per (sender, nonce),
//! nonces from the account nonce to `account nonce + max_nonce_gap` (transfers that come
//! back from blocks taken off the best chain are exempt from this and the per-sender count:
//! they cost a block's work and have no gaps, and a deep reorg must not lose them). A transfer whose nonce
//! leaves a gap is held but not mined until the gap fills. The balance must cover the sum of
//! amount + fee of the transfer and every held transfer of the sender with a lower nonce
//! (incoming pending transfers are not counted). When expiry or a balance that no longer
//! covers it drops a transfer, the sender's higher nonces go with it, so the pool does not
//! keep a queue waiting behind a hole it made; only an explicit [`Mempool::remove`] takes
//! out one transfer alone.
//!
//! # Replace-by-fee
//! A transfer with the same sender and nonce as a held one replaces it if its fee is at least
//! `old_fee * (100 + replace_bump_percent) / 100`, rounded up, and strictly more than the old
//! fee (and it passes every other check, the fee floor included). Otherwise it is refused
//! with `ReplacementUnderpriced`, which names the fee that would do. A replacement that
//! costs more may leave the sender's later transfers uncovered: those are dropped and
//! reported as evicted.
//!
//! # Eviction
//! The pool holds at most `max_bytes` (sum of encoded sizes) and `max_per_sender` transfers
//! per sender. Over the byte bound, the lowest-rate transfer among each sender's
//! highest-nonce transfer is evicted, repeatedly, so no sender's queue gets a hole. The
//! newcomer must have a fee rate strictly above every transfer it evicts: if it would itself
//! be the lowest (a tie loses), it is refused with `PoolFull` and the pool is unchanged.
//!
//! # Selection
//! [`Mempool::select`] fills a block greedily: the best rate among each sender's next
//! transfer (its nonce equal to the account nonce, then the next once that is taken), within
//! the byte and count limits, replaying the consensus transfer rules on a copy of the touched
//! accounts so the list applies in the returned order. A sender whose next transfer does not
//! fit or is not covered contributes nothing more to this block.
//!
//! # Following the chain
//! [`Mempool::update_for_tip`] removes the transfers of connected blocks, revalidates every
//! account the blocks touched whose balance or nonce could make held transfers invalid
//! (senders of both lists; recipients and reward addresses of disconnected blocks, whose
//! balances went down), then re-admits the disconnected blocks' transfers (oldest block
//! first, so each sender's nonces come in order) that the connected blocks do not hold.
mod admit;
mod config;
mod error;
mod fees;
pub mod journal_records;
mod pool;
mod select;
mod tip;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

pub use admit::Admitted;
pub use config::MempoolConfig;
pub use error::MempoolError;
pub use fees::FeeEstimate;
pub use pool::{Mempool, PoolEntry};
pub use tip::TipUpdate;
