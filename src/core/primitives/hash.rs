//! Hash functions and one newtype per kind of hash, so a txid can never be passed where a
//! block hash is expected. No I/O.
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 applied twice, as Bitcoin hashes headers and transactions.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// BIP340-style tagged hash: `SHA256(SHA256(tag) || SHA256(tag) || parts...)`.
///
/// Tags keep hashes of different kinds of data in separate domains, so bytes valid as one
/// can never be replayed as another. The hasher state after the 64-byte tag prefix of the
/// tags used on hot paths is computed once and cloned, saving one compression per call.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = match cached_prefix(tag) {
        Some(prefix) => prefix.clone(),
        None => tag_prefix(tag),
    };
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A SHA-256 state that has absorbed `SHA256(tag) || SHA256(tag)`.
fn tag_prefix(tag: &str) -> Sha256 {
    let tag_hash = Sha256::digest(tag.as_bytes());
    let mut hasher = Sha256::new();
    hasher.update(tag_hash);
    hasher.update(tag_hash);
    hasher
}

macro_rules! cached_tags {
    ($($name:literal),* $(,)?) => {
        /// The precomputed prefix state of a hot-path tag.
        fn cached_prefix(tag: &str) -> Option<&'static Sha256> {
            match tag {
                $($name => {
                    static PREFIX: std::sync::LazyLock<Sha256> =
                        std::sync::LazyLock::new(|| tag_prefix($name));
                    Some(&PREFIX)
                })*
                _ => None,
            }
        }
    };
}

cached_tags!(
    "cairn/transfer",
    "cairn/merkle",
    "cairn/reward",
    "cairn/smt-leaf",
    "cairn/smt-node",
);

/// A 32-byte hash with no meaning attached; the typed hashes below wrap it.
pub type Hash256 = [u8; 32];

/// An error parsing a hash from hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash {input:?}: expected 64 hex digits")]
pub struct ParseHashError {
    /// What was given.
    pub input: String,
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        pub struct $name(#[serde(with = "crate::core::primitives::serde_hex")] pub [u8; 32]);

        impl $name {
            /// The all-zero hash (the genesis block's parent, an empty tree).
            pub const ZERO: Self = Self([0u8; 32]);

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex of the bytes in order.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| ParseHashError { input: s.to_string() })?;
                Ok(Self(out))
            }
        }
    };
}

hash_newtype!(
    /// Double SHA-256 of a block header's 116-byte layout.
    BlockHash
);
hash_newtype!(
    /// Double SHA-256 of a transfer's body and signature.
    Txid
);
hash_newtype!(
    /// The merkle root committing to a block's reward leaf and its transfers.
    MerkleRoot
);
hash_newtype!(
    /// The root of the sparse merkle tree of all accounts.
    StateRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256d_of_empty_input_is_known() {
        assert_eq!(
            hex::encode(sha256d(b"")),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }

    #[test]
    fn tagged_hash_matches_bip340_construction() {
        let tag = Sha256::digest(b"BIP0340/challenge");
        let mut manual = Sha256::new();
        manual.update(tag);
        manual.update(tag);
        manual.update(b"abc");
        let manual: [u8; 32] = manual.finalize().into();
        assert_eq!(tagged_hash("BIP0340/challenge", &[b"ab", b"c"]), manual);
    }

    #[test]
    fn cached_tag_prefixes_give_the_same_hashes() {
        for tag in ["cairn/transfer", "cairn/merkle", "cairn/smt-node", "other"] {
            let uncached = {
                let mut hasher = tag_prefix(tag);
                hasher.update(b"xyz");
                <[u8; 32]>::from(hasher.finalize())
            };
            assert_eq!(tagged_hash(tag, &[b"x", b"yz"]), uncached, "{tag}");
        }
    }

    #[test]
    fn hash_hex_round_trips_and_rejects_garbage() {
        let hash = BlockHash([7u8; 32]);
        assert_eq!(hash.to_hex().parse::<BlockHash>().unwrap(), hash);
        assert!("zz".parse::<BlockHash>().is_err());
        assert!("00".repeat(31).parse::<BlockHash>().is_err());
    }
}
