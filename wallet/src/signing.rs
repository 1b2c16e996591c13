//! BIP340 Schnorr signing and verification, and signing a transfer with them.
//!
//! Owns the one signing path of the wallet: [`sign_transfer`] (what `send` calls) signs the
//! transfer's signing hash with [`sign_message`], which takes the BIP340 auxiliary randomness
//! as an argument so that the official BIP340 test vectors can be checked through it
//! (`tests/bip340_vectors.rs`). In normal use the aux randomness comes from
//! [`fresh_aux_rand`] (the operating system's generator). Does no I/O besides that read.
//!
//! Cairn's signed message is `tagged_hash("cairn/transfer", genesis || body)` (see
//! `cairn::core::primitives::transfer` and docs/PROTOCOL.md), so a signature is bound to one
//! chain.

use cairn::core::primitives::transfer::{Signature, Transfer, UnsignedTransfer};
use cairn::core::primitives::{Address, BlockHash};
use secp256k1::{schnorr, Keypair, XOnlyPublicKey};

/// Signs `message` (any length; Cairn signs 32-byte hashes) with BIP340 Schnorr.
///
/// `aux_rand` is BIP340's auxiliary randomness: fresh random bytes for every signature in
/// real use ([`fresh_aux_rand`]); fixed bytes only in tests. Signing is deterministic given
/// the key, the message and `aux_rand`.
pub fn sign_message(keypair: &Keypair, message: &[u8], aux_rand: &[u8; 32]) -> [u8; 64] {
    schnorr::sign_with_aux_rand(message, keypair, aux_rand).to_byte_array()
}

/// Whether `signature` is a valid BIP340 signature of `message` by the x-only public key
/// `public_key`. A `public_key` that is not the x coordinate of a curve point is invalid.
pub fn verify_message(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = XOnlyPublicKey::from_byte_array(*public_key) else {
        return false;
    };
    schnorr::verify(
        &schnorr::Signature::from_byte_array(*signature),
        message,
        &key,
    )
    .is_ok()
}

/// Signs `unsigned` with `keypair` for the chain whose genesis hash is `genesis`: the
/// sender is the key pair's x-only public key, the signature covers
/// [`Transfer::signing_hash`].
pub fn sign_transfer(
    unsigned: UnsignedTransfer,
    keypair: &Keypair,
    genesis: &BlockHash,
    aux_rand: &[u8; 32],
) -> Transfer {
    let (xonly, _) = keypair.x_only_public_key();
    let mut transfer = Transfer {
        chain_id: unsigned.chain_id,
        from: Address::from_xonly(xonly.to_byte_array()),
        to: unsigned.to,
        amount: unsigned.amount,
        fee: unsigned.fee,
        nonce: unsigned.nonce,
        memo: unsigned.memo,
        signature: Signature([0u8; 64]),
    };
    transfer.signature = Signature(sign_message(
        keypair,
        &transfer.signing_hash(genesis),
        aux_rand,
    ));
    transfer
}

/// 32 fresh bytes from the operating system's random generator, for BIP340's aux_rand.
pub fn fresh_aux_rand() -> Result<[u8; 32], getrandom::Error> {
    let mut aux = [0u8; 32];
    getrandom::fill(&mut aux)?;
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::dev_keypair;
    use cairn::core::primitives::Amount;

    fn unsigned() -> UnsignedTransfer {
        UnsignedTransfer {
            chain_id: 1337,
            to: Address::from_xonly([7u8; 32]),
            amount: Amount::from_units(100_000_000),
            fee: Amount::from_units(166),
            nonce: 4,
            memo: b"hi".to_vec(),
        }
    }

    #[test]
    fn agrees_with_the_core_signer() {
        let genesis = BlockHash([3u8; 32]);
        let keypair = dev_keypair(0);
        let aux = [9u8; 32];
        let ours = sign_transfer(unsigned(), &keypair, &genesis, &aux);
        let core = unsigned().sign(&keypair, &genesis, &aux);
        assert_eq!(ours, core);
        assert!(ours.has_valid_signature(&genesis));
        assert!(!ours.has_valid_signature(&BlockHash([4u8; 32])));
    }

    #[test]
    fn aux_rand_changes_the_signature_not_its_validity() {
        let genesis = BlockHash([3u8; 32]);
        let keypair = dev_keypair(1);
        let a = sign_transfer(unsigned(), &keypair, &genesis, &[1u8; 32]);
        let b = sign_transfer(unsigned(), &keypair, &genesis, &[2u8; 32]);
        assert_ne!(a.signature, b.signature);
        assert!(a.has_valid_signature(&genesis) && b.has_valid_signature(&genesis));
        assert_ne!(a.txid(), b.txid());
    }

    #[test]
    fn fresh_aux_rand_is_fresh() {
        assert_ne!(fresh_aux_rand().unwrap(), fresh_aux_rand().unwrap());
    }

    #[test]
    fn verify_rejects_a_bad_key_and_a_flipped_bit() {
        let keypair = dev_keypair(2);
        let message = [5u8; 32];
        let signature = sign_message(&keypair, &message, &[0u8; 32]);
        let key = keypair.x_only_public_key().0.to_byte_array();
        assert!(verify_message(&key, &message, &signature));
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert!(!verify_message(&key, &message, &flipped));
        assert!(!verify_message(&[0xff; 32], &message, &signature));
    }
}
