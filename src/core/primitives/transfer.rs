//! A transfer of coins between accounts, its signed byte layout and its txid. No I/O.
//!
//! Signed body layout (all integers little-endian):
//!
//! ```text
//! chain_id u32 | from 32 | to 32 | amount u64 | fee u64 | nonce u64 | memo_len u8 | memo
//! ```
//!
//! The sender signs `tagged_hash("cairn/transfer", genesis_hash || body)` with BIP340
//! Schnorr, so a transfer signed for one chain is invalid on every other chain even if the
//! chain ids collide. The txid is the double SHA-256 of `body || signature`.
use super::address::Address;
use super::amount::Amount;
use super::hash::{sha256d, tagged_hash, BlockHash, Txid};
use secp256k1::{schnorr, Keypair, XOnlyPublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest memo a transfer may carry, in bytes.
pub const MAX_MEMO_BYTES: usize = 80;

/// A 64-byte BIP340 Schnorr signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "crate::core::primitives::serde_hex")] pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// A signed transfer of `amount` from `from` to `to`, paying `fee` to the miner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The chain this transfer is meant for (from the chain spec).
    pub chain_id: u32,
    /// The sender: its x-only public key, which is also its address.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// Base units moved to `to`.
    pub amount: Amount,
    /// Base units paid to the block's miner.
    pub fee: Amount,
    /// The sender's account nonce: its count of earlier transfers.
    pub nonce: u64,
    /// Free-form bytes, at most [`MAX_MEMO_BYTES`]; shown as text by explorers.
    pub memo: Vec<u8>,
    /// Signature by `from` over [`Transfer::signing_hash`].
    pub signature: Signature,
}

/// The unsigned fields of a transfer, for building and signing one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedTransfer {
    /// See [`Transfer::chain_id`].
    pub chain_id: u32,
    /// See [`Transfer::to`].
    pub to: Address,
    /// See [`Transfer::amount`].
    pub amount: Amount,
    /// See [`Transfer::fee`].
    pub fee: Amount,
    /// See [`Transfer::nonce`].
    pub nonce: u64,
    /// See [`Transfer::memo`].
    pub memo: Vec<u8>,
}

impl UnsignedTransfer {
    /// Signs with `keypair` for the chain whose genesis hash is `genesis`. `aux_rand` is
    /// BIP340's auxiliary randomness (fresh random bytes in a wallet; any bytes in tests).
    pub fn sign(self, keypair: &Keypair, genesis: &BlockHash, aux_rand: &[u8; 32]) -> Transfer {
        let (xonly, _) = keypair.x_only_public_key();
        let mut transfer = Transfer {
            chain_id: self.chain_id,
            from: Address(xonly.to_byte_array()),
            to: self.to,
            amount: self.amount,
            fee: self.fee,
            nonce: self.nonce,
            memo: self.memo,
            signature: Signature([0u8; 64]),
        };
        let digest = transfer.signing_hash(genesis);
        let signature = schnorr::sign_with_aux_rand(&digest, keypair, aux_rand);
        transfer.signature = Signature(signature.to_byte_array());
        transfer
    }
}

impl Transfer {
    /// The signed body layout (see the module docs). The memo length is truncated to one
    /// byte here; validation refuses memos longer than [`MAX_MEMO_BYTES`] before this matters.
    pub fn body_bytes(&self) -> Vec<u8> {
        let memo_len = self.memo.len().min(usize::from(u8::MAX));
        let mut out = Vec::with_capacity(4 + 32 + 32 + 24 + 1 + memo_len);
        out.extend_from_slice(&self.chain_id.to_le_bytes());
        out.extend_from_slice(self.from.as_bytes());
        out.extend_from_slice(self.to.as_bytes());
        out.extend_from_slice(&self.amount.as_units().to_le_bytes());
        out.extend_from_slice(&self.fee.as_units().to_le_bytes());
        out.extend_from_slice(&self.nonce.to_le_bytes());
        out.push(memo_len as u8);
        out.extend_from_slice(&self.memo[..memo_len]);
        out
    }

    /// What the sender signs: `tagged_hash("cairn/transfer", genesis || body)`.
    pub fn signing_hash(&self, genesis: &BlockHash) -> [u8; 32] {
        tagged_hash("cairn/transfer", &[genesis.as_bytes(), &self.body_bytes()])
    }

    /// The transfer id: double SHA-256 of `body || signature`.
    pub fn txid(&self) -> Txid {
        let mut bytes = self.body_bytes();
        bytes.extend_from_slice(&self.signature.0);
        Txid(sha256d(&bytes))
    }

    /// Whether the signature is a valid BIP340 signature by `from` for this chain.
    pub fn has_valid_signature(&self, genesis: &BlockHash) -> bool {
        self.sender_key()
            .is_some_and(|key| self.has_valid_signature_by(&key, genesis))
    }

    /// The sender's address as a public key (BIP340's `lift_x`: a field square root, about
    /// an eighth of a verification), or `None` if it is no point on the curve.
    pub fn sender_key(&self) -> Option<XOnlyPublicKey> {
        XOnlyPublicKey::from_byte_array(*self.from.as_bytes()).ok()
    }

    /// [`Transfer::has_valid_signature`] with the sender's key already parsed: `key` must be
    /// [`Transfer::sender_key`] (a cache of parsed keys by address).
    pub fn has_valid_signature_by(&self, key: &XOnlyPublicKey, genesis: &BlockHash) -> bool {
        debug_assert_eq!(key.to_byte_array(), *self.from.as_bytes());
        let signature = schnorr::Signature::from_byte_array(self.signature.0);
        schnorr::verify(&signature, &self.signing_hash(genesis), key).is_ok()
    }

    /// What the transfer takes from its sender: amount plus fee, or `None` if that
    /// overflows 64 bits (never valid).
    pub fn total_cost(&self) -> Option<Amount> {
        self.amount.checked_add(self.fee)
    }

    /// Size of the transfer in the codec, in bytes (used for block size limits).
    pub fn encoded_size(&self) -> usize {
        // chain_id + from + to + amount + fee + nonce + memo length prefix + memo + signature
        4 + 32 + 32 + 8 + 8 + 8 + 8 + self.memo.len() + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::codec;
    use secp256k1::SecretKey;

    fn keypair(seed: u8) -> Keypair {
        Keypair::from_secret_key(&SecretKey::from_secret_bytes([seed; 32]).unwrap())
    }

    fn sample(genesis: &BlockHash) -> Transfer {
        UnsignedTransfer {
            chain_id: 7,
            to: Address([9u8; 32]),
            amount: Amount::from_units(1000),
            fee: Amount::from_units(10),
            nonce: 3,
            memo: b"hi".to_vec(),
        }
        .sign(&keypair(1), genesis, &[0u8; 32])
    }

    #[test]
    fn signature_commits_to_genesis_and_every_field() {
        let genesis = BlockHash([1u8; 32]);
        let transfer = sample(&genesis);
        assert!(transfer.has_valid_signature(&genesis));
        assert!(!transfer.has_valid_signature(&BlockHash([2u8; 32])));
        let mut changed = transfer.clone();
        changed.amount = Amount::from_units(1001);
        assert!(!changed.has_valid_signature(&genesis));
        let mut changed = transfer.clone();
        changed.memo = b"ho".to_vec();
        assert!(!changed.has_valid_signature(&genesis));
        let mut changed = transfer;
        changed.chain_id = 8;
        assert!(!changed.has_valid_signature(&genesis));
    }

    #[test]
    fn encoded_size_matches_codec() {
        let transfer = sample(&BlockHash::ZERO);
        assert_eq!(
            codec::encode(&transfer).unwrap().len(),
            transfer.encoded_size()
        );
    }

    #[test]
    fn txid_commits_to_signature() {
        let transfer = sample(&BlockHash::ZERO);
        let mut other = transfer.clone();
        other.signature.0[0] ^= 1;
        assert_ne!(transfer.txid(), other.txid());
    }
}
