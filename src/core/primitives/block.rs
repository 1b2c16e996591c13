//! A block: header, the miner's reward address and extra nonce, and the transfers. No I/O.
//!
//! The header's `tx_root` is the merkle root of `[reward_leaf, txid_1, ..., txid_n]`, where
//! `reward_leaf = tagged_hash("cairn/reward", reward_address || reward_le || extra_nonce_le)`:
//! proof of work commits to who is paid and how much (the claimed reward must equal subsidy
//! plus fees), and a miner whose nonce and time space runs out bumps the extra nonce.
use super::address::Address;
use super::amount::Amount;
use super::hash::{tagged_hash, BlockHash, Hash256, MerkleRoot, Txid};
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
        let txids: Vec<Txid> = self.transfers.iter().map(Transfer::txid).collect();
        self.tx_root_from_txids(&txids)
    }

    /// The merkle root given the transfers' txids (in block order), when the caller has
    /// computed them already.
    pub fn tx_root_from_txids(&self, txids: &[Txid]) -> MerkleRoot {
        let mut leaves = Vec::with_capacity(txids.len() + 1);
        leaves.push(Self::reward_leaf(
            &self.reward_address,
            self.reward,
            self.extra_nonce,
        ));
        leaves.extend(txids.iter().map(|t| t.0));
        merkle_root(&leaves)
    }

    /// Size of a block without transfers in the codec, in bytes: what a block's transfers
    /// may not use of the block size limit.
    pub const fn empty_encoded_size() -> usize {
        HEADER_SIZE
            + 32 // reward address
            + 8 // reward
            + 8 // extra nonce
            + 8 // transfer count
    }

    /// Size of the block in the codec, in bytes.
    pub fn encoded_size(&self) -> usize {
        Block::empty_encoded_size()
            + self
                .transfers
                .iter()
                .map(Transfer::encoded_size)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::codec;
    use crate::core::primitives::hash::{MerkleRoot, StateRoot};
    use crate::core::primitives::target::CompactTarget;
    use crate::core::primitives::transfer::Signature;
    use proptest::prelude::*;

    fn arbitrary_transfer() -> impl Strategy<Value = Transfer> {
        (
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..100),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(chain_id, from, to, amount, fee, nonce, memo, sig)| Transfer {
                    chain_id,
                    from: Address(from),
                    to: Address(to),
                    amount: Amount::from_units(amount),
                    fee: Amount::from_units(fee),
                    nonce,
                    memo,
                    signature: Signature([sig, sig].concat().try_into().unwrap()),
                },
            )
    }

    fn arbitrary_block() -> impl Strategy<Value = Block> {
        (
            any::<(u32, u32, u32, u32)>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            prop::collection::vec(arbitrary_transfer(), 0..4),
        )
            .prop_map(
                |((height, time, bits, nonce), key, extra, transfers)| Block {
                    header: Header {
                        version: 1,
                        height,
                        prev_hash: BlockHash(key),
                        tx_root: MerkleRoot(key),
                        state_root: StateRoot(key),
                        time,
                        bits: CompactTarget::from_consensus(bits),
                        nonce,
                    },
                    reward_address: Address(key),
                    reward: Amount::from_units(extra),
                    extra_nonce: extra,
                    transfers,
                },
            )
    }

    proptest! {
        #[test]
        fn block_round_trips_and_size_is_exact(block in arbitrary_block()) {
            let bytes = codec::encode(&block).unwrap();
            prop_assert_eq!(bytes.len(), block.encoded_size());
            prop_assert_eq!(codec::decode::<Block>(&bytes).unwrap(), block);
        }

        /// Outside bytes never panic the decoder: they decode or give an error.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = codec::decode::<Block>(&bytes);
            let _ = codec::decode::<Transfer>(&bytes);
            let _ = codec::decode::<Header>(&bytes);
        }

        /// Cutting or extending a valid encoding gives an error, never a different value.
        #[test]
        fn truncated_or_extended_encodings_are_refused(block in arbitrary_block(), cut in 1usize..50) {
            let bytes = codec::encode(&block).unwrap();
            let cut = cut.min(bytes.len());
            prop_assert!(codec::decode::<Block>(&bytes[..bytes.len() - cut]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(codec::decode::<Block>(&longer).is_err());
        }
    }
}
