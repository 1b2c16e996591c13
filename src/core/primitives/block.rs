//! A block: header, the miner's reward address and extra nonce, and the transfers. No I/O.
//!
//! The header's `tx_root` is the merkle root of `[reward_leaf, txid_1, ..., txid_n]`, where
//! `reward_leaf = tagged_hash("cairn/reward", reward_address || reward_le || extra_nonce_le)`:
//! proof of work commits to who is paid and how much (the claimed reward must equal subsidy
//! plus fees), and a miner whose nonce and time space runs out bumps the extra nonce.
use super::address::Address;
use super::amount::Amount;
use super::hash::{tagged_hash, BlockHash, Hash256, MerkleRoot};
use super::header::{Header, HEADER_SIZE};
use super::merkle::merkle_root;
use super::transfer::Transfer;
use serde::{Deserialize, Serialize};

/// A full block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header, which proof of work covers.
    pub header: Header,
    /// Who receives the subsidy and fees.
    pub reward_address: Address,
    /// The reward the miner claims: must equal the subsidy plus the transfers' fees.
    pub reward: Amount,
    /// Miner-chosen bytes committed in the reward leaf.
    pub extra_nonce: u64,
    /// The transfers, applied in order.
    pub transfers: Vec<Transfer>,
}

impl Block {
    /// The block's hash (its header's hash).
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The reward leaf of the merkle tree.
    pub fn reward_leaf(reward_address: &Address, reward: Amount, extra_nonce: u64) -> Hash256 {
        tagged_hash(
            "cairn/reward",
            &[
                reward_address.as_bytes(),
                &reward.as_units().to_le_bytes(),
                &extra_nonce.to_le_bytes(),
            ],
        )
    }

    /// The merkle root the header must carry for this body.
    pub fn compute_tx_root(&self) -> MerkleRoot {
        let mut leaves = Vec::with_capacity(self.transfers.len() + 1);
        leaves.push(Self::reward_leaf(
            &self.reward_address,
            self.reward,
            self.extra_nonce,
        ));
        leaves.extend(self.transfers.iter().map(|t| t.txid().0));
        merkle_root(&leaves)
    }

    /// Size of the block in the codec, in bytes.
    pub fn encoded_size(&self) -> usize {
        HEADER_SIZE
            + 32 // reward address
            + 8 // reward
            + 8 // extra nonce
            + 8 // transfer count
            + self
                .transfers
                .iter()
                .map(Transfer::encoded_size)
                .sum::<usize>()
    }
}
