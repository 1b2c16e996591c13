//! Account addresses: a 32-byte BIP340 x-only public key, written in bech32m with the chain
//! spec's human-readable prefix, so a mistyped address fails its checksum. No I/O.
use bech32::{Bech32m, Hrp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The x-only public key that owns an account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Address(#[serde(with = "crate::core::primitives::serde_hex")] pub [u8; 32]);

/// Why a string is not an address of this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not bech32m, or the checksum does not match (a typo).
    #[error("invalid address {input:?}: {reason}")]
    Malformed {
        /// What was given.
        input: String,
        /// What the bech32 decoder said.
        reason: String,
    },
    /// A valid address of another chain.
    #[error("address {input:?} belongs to another chain: prefix {found:?}, expected {expected:?}")]
    WrongChain {
        /// What was given.
        input: String,
        /// Its prefix.
        found: String,
        /// This chain's prefix.
        expected: String,
    },
    /// The payload is not 32 bytes.
    #[error("invalid address {input:?}: payload is {len} bytes, expected 32")]
    WrongLength {
        /// What was given.
        input: String,
        /// The payload length.
        len: usize,
    },
    /// The chain spec's prefix is not a valid bech32 human-readable part.
    #[error("invalid address prefix {prefix:?}: {reason}")]
    BadPrefix {
        /// The prefix.
        prefix: String,
        /// Why.
        reason: String,
    },
}

impl Address {
    /// The address of an x-only public key.
    pub const fn from_xonly(key: [u8; 32]) -> Self {
        Address(key)
    }

    /// The x-only public key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as lowercase hex (for places without a chain prefix).
    pub fn to_string_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Encodes in bech32m with the human-readable prefix `hrp` (e.g. `cairndev`).
    pub fn to_bech32(&self, hrp: &str) -> Result<String, AddressError> {
        let parsed = Hrp::parse(hrp).map_err(|e| AddressError::BadPrefix {
            prefix: hrp.to_string(),
            reason: e.to_string(),
        })?;
        bech32::encode::<Bech32m>(parsed, &self.0).map_err(|e| AddressError::BadPrefix {
            prefix: hrp.to_string(),
            reason: e.to_string(),
        })
    }

    /// Decodes a bech32m address, checking its checksum and that its prefix is `expected_hrp`.
    pub fn from_bech32(input: &str, expected_hrp: &str) -> Result<Self, AddressError> {
        let checked =
            bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(input).map_err(|e| {
                AddressError::Malformed {
                    input: input.to_string(),
                    reason: e.to_string(),
                }
            })?;
        let found = checked.hrp().to_lowercase();
        if found != expected_hrp.to_lowercase() {
            return Err(AddressError::WrongChain {
                input: input.to_string(),
                found,
                expected: expected_hrp.to_string(),
            });
        }
        let payload: Vec<u8> = checked.byte_iter().collect();
        let bytes: [u8; 32] =
            payload
                .as_slice()
                .try_into()
                .map_err(|_| AddressError::WrongLength {
                    input: input.to_string(),
                    len: payload.len(),
                })?;
        Ok(Address(bytes))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Address({})", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bech32m_round_trip_and_typo_detection() {
        let address = Address([42u8; 32]);
        let text = address.to_bech32("cairndev").unwrap();
        assert!(text.starts_with("cairndev1"));
        assert_eq!(Address::from_bech32(&text, "cairndev").unwrap(), address);
        // One changed character breaks the checksum.
        let mut typo: Vec<char> = text.chars().collect();
        let last = typo.len() - 3;
        typo[last] = if typo[last] == 'q' { 'p' } else { 'q' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            Address::from_bech32(&typo, "cairndev"),
            Err(AddressError::Malformed { .. })
        ));
    }

    #[test]
    fn other_chain_prefix_is_refused() {
        let text = Address([1u8; 32]).to_bech32("cairntest").unwrap();
        assert!(matches!(
            Address::from_bech32(&text, "cairndev"),
            Err(AddressError::WrongChain { .. })
        ));
    }

    #[test]
    fn bech32_non_m_and_wrong_length_are_refused() {
        let hrp = Hrp::parse("cairndev").unwrap();
        let plain_bech32 = bech32::encode::<bech32::Bech32>(hrp, &[1u8; 32]).unwrap();
        assert!(Address::from_bech32(&plain_bech32, "cairndev").is_err());
        let short = bech32::encode::<Bech32m>(hrp, &[1u8; 20]).unwrap();
        assert!(matches!(
            Address::from_bech32(&short, "cairndev"),
            Err(AddressError::WrongLength { len: 20, .. })
        ));
    }
}
