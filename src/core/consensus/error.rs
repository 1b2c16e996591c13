//! Why a block is invalid: one variant per consensus rule. No I/O.
use crate::core::consensus::target::CompactTarget;
use crate::core::primitives::{Amount, BlockHash, MerkleRoot, StateRoot, Txid};
use crate::core::state::StateStoreError;

/// A block broke a consensus rule (or could not be checked because storage failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header hash does not meet the target in `bits`.
    #[error("bad proof of work: hash {hash} does not meet target {bits}")]
    BadProofOfWork {
        /// The block hash.
        hash: BlockHash,
        /// The target it claims.
        bits: CompactTarget,
    },
    /// `bits` is not what ASERT requires at this height.
    #[error("wrong difficulty bits: expected {expected}, found {found}")]
    WrongBits {
        /// What ASERT requires.
        expected: CompactTarget,
        /// What the header carries.
        found: CompactTarget,
    },
    /// The header's merkle root does not match the body.
    #[error("bad merkle root: header has {found}, body gives {computed}")]
    BadMerkleRoot {
        /// The header's root.
        found: MerkleRoot,
        /// The root of the body.
        computed: MerkleRoot,
    },
    /// The header's state root does not match the state after the block.
    #[error("bad state root: header has {found}, applying the block gives {computed}")]
    BadStateRoot {
        /// The header's root.
        found: StateRoot,
        /// The root after applying.
        computed: StateRoot,
    },
    /// The timestamp is not after the median of the previous 11 blocks.
    #[error("timestamp {time} too old: must be after the median time past {median_time_past}")]
    TimeTooOld {
        /// The block's time.
        time: u32,
        /// The median of the previous 11 blocks' times.
        median_time_past: u32,
    },
    /// The timestamp is too far ahead of the local clock. Not the sender's fault as such:
    /// the block may become valid later.
    #[error(
        "timestamp {time} too far ahead: local clock is {now}, at most {max_drift} s ahead allowed"
    )]
    TimeTooFarAhead {
        /// The block's time.
        time: u32,
        /// The local clock.
        now: u64,
        /// The chain spec's drift limit.
        max_drift: u32,
    },
    /// The height is not the parent's height plus one.
    #[error("wrong height: expected {expected}, found {found}")]
    WrongHeight {
        /// Parent height plus one.
        expected: u32,
        /// The header's height.
        found: u32,
    },
    /// An unknown block format version.
    #[error("unsupported block version {0}")]
    BadVersion(u32),
    /// The parent is not known.
    #[error("unknown parent block {0}")]
    UnknownParent(BlockHash),
    /// An ancestor broke a consensus rule, so this block can never be valid.
    #[error("descends from invalid block {0}")]
    InvalidAncestor(BlockHash),
    /// The block is larger than the chain spec allows.
    #[error("oversized block: {size} bytes, limit {max}")]
    OversizedBlock {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More transfers than the chain spec allows.
    #[error("too many transfers: {count}, limit {max}")]
    TooManyTransfers {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A transfer's memo is too long.
    #[error("transfer {txid}: memo of {len} bytes, limit {max}")]
    MemoTooLong {
        /// The transfer.
        txid: Txid,
        /// Its memo's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The same transfer appears twice.
    #[error("transfer {0} appears twice in the block")]
    DuplicateTransfer(Txid),
    /// A transfer's signature is not valid for its sender on this chain.
    #[error("transfer {txid}: bad signature")]
    BadSignature {
        /// The transfer.
        txid: Txid,
    },
    /// A transfer carries another chain's id.
    #[error("transfer {txid}: wrong chain id {found}, this chain is {expected}")]
    WrongChainId {
        /// The transfer.
        txid: Txid,
        /// This chain's id.
        expected: u32,
        /// The transfer's chain id.
        found: u32,
    },
    /// A transfer's nonce is not its sender's next nonce.
    #[error("transfer {txid}: bad nonce {found}, sender's next nonce is {expected}")]
    BadNonce {
        /// The transfer.
        txid: Txid,
        /// The sender's next nonce.
        expected: u64,
        /// The transfer's nonce.
        found: u64,
    },
    /// The sender cannot pay amount plus fee.
    #[error("transfer {txid}: insufficient balance: needs {needed}, has {available}")]
    InsufficientBalance {
        /// The transfer.
        txid: Txid,
        /// Amount plus fee.
        needed: Amount,
        /// The sender's balance.
        available: Amount,
    },
    /// An amount, balance or fee sum overflowed.
    #[error("amount overflow: {context}")]
    Overflow {
        /// Where.
        context: String,
    },
    /// The claimed reward is not subsidy plus fees.
    #[error("wrong reward: claimed {found}, subsidy plus fees is {expected}")]
    WrongReward {
        /// Subsidy plus fees.
        expected: Amount,
        /// What the block claims.
        found: Amount,
    },
    /// Storage failed while checking; says nothing about the block.
    #[error(transparent)]
    Store(#[from] StateStoreError),
}

impl BlockError {
    /// Whether a peer that sent this block is at fault (and should be penalised). Blocks
    /// from the future, blocks with unknown parents and local storage failures are not
    /// proof of misbehaviour.
    pub fn is_peer_fault(&self) -> bool {
        !matches!(
            self,
            BlockError::TimeTooFarAhead { .. }
                | BlockError::UnknownParent(_)
                | BlockError::Store(_)
        )
    }

    /// Whether the block shows this fault on its own, without its parent or any state: a
    /// peer that merely stored or served the block could have checked it (every node checks
    /// these before it stores a block on any branch).
    pub fn is_intrinsic(&self) -> bool {
        matches!(
            self,
            BlockError::BadProofOfWork { .. }
                | BlockError::BadMerkleRoot { .. }
                | BlockError::OversizedBlock { .. }
                | BlockError::TooManyTransfers { .. }
                | BlockError::MemoTooLong { .. }
                | BlockError::DuplicateTransfer(_)
                | BlockError::BadSignature { .. }
                | BlockError::WrongChainId { .. }
        )
    }

    /// Whether the block is invalid forever (so it and its descendants can be marked
    /// invalid), as opposed to not checkable now.
    pub fn is_permanent(&self) -> bool {
        self.is_peer_fault()
    }
}
