//! The reference for signature work in the benches: BIP340 signatures verified by
//! libsecp256k1 and nothing else, messages already hashed, on all threads of the current
//! rayon pool (run it inside a 1-thread pool for one core). Two of them:
//! - [`RawVerification::verify_parsed`]: the keys already parsed, as issue 14's "raw
//!   verification" is measured (`secp256k1_schnorrsig_verify` alone);
//! - [`RawVerification::verify_from_bytes`]: BIP340's `Verify(pk, m, sig)` as specified,
//!   which takes the 32-byte key and lifts it to a point (`lift_x`, a square root), as any
//!   verifier of a signature from the wire must.
use cairn::core::primitives::{BlockHash, Transfer};
use rayon::prelude::*;
use secp256k1::{schnorr, XOnlyPublicKey};

/// The signatures of some transfers, ready to verify.
pub struct RawVerification {
    /// Each signature, its message hash and its parsed key.
    pub items: Vec<(schnorr::Signature, [u8; 32], XOnlyPublicKey)>,
    key_bytes: Vec<[u8; 32]>,
}

impl RawVerification {
    /// The signatures of `transfers` for the chain with genesis `genesis`.
    pub fn of(transfers: &[Transfer], genesis: &BlockHash) -> RawVerification {
        let items = transfers
            .iter()
            .map(|t| {
                let key = XOnlyPublicKey::from_byte_array(*t.from.as_bytes()).expect("a key");
                let signature = schnorr::Signature::from_byte_array(t.signature.0);
                (signature, t.signing_hash(genesis), key)
            })
            .collect();
        let key_bytes = transfers.iter().map(|t| *t.from.as_bytes()).collect();
        RawVerification { items, key_bytes }
    }

    /// Verifies every signature with its key already parsed.
    pub fn verify_parsed(&self) {
        self.items
            .par_iter()
            .with_min_len(32)
            .for_each(|(signature, message, key)| {
                assert!(schnorr::verify(signature, message, key).is_ok());
            });
    }

    /// Verifies every signature from its key's 32 bytes.
    pub fn verify_from_bytes(&self) {
        self.items
            .par_iter()
            .zip(&self.key_bytes)
            .with_min_len(32)
            .for_each(|((signature, message, _), key_bytes)| {
                let key = XOnlyPublicKey::from_byte_array(*key_bytes).expect("a key");
                assert!(schnorr::verify(signature, message, &key).is_ok());
            });
    }
}
