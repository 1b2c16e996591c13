//! Proof-of-work targets: the compact `bits` encoding, the 256-bit target and chain work.
//!
//! This module owns three distinct types, as rust-bitcoin keeps them apart:
//!
//! * [`CompactTarget`]: the 32-bit `bits` header field, encoded exactly as Bitcoin encodes it.
//! * [`Target`]: the 256-bit threshold a block hash must not exceed, with Bitcoin's
//!   `SetCompact`/`GetCompact` conversions.
//! * [`Work`]: the expected number of hashes a target represents, summed along a chain.
//!
//! Pure arithmetic: no I/O, no clock, no randomness, and no panics on outside data.

use std::fmt;
use std::str::FromStr;

use ruint::aliases::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Sign bit of the compact encoding's 24-bit mantissa.
const COMPACT_SIGN_BIT: u32 = 0x0080_0000;
/// Mask of the compact encoding's 23 mantissa bits.
const COMPACT_MANTISSA_MASK: u32 = 0x007f_ffff;

/// Why a compact `bits` value does not decode to a valid target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TargetError {
    /// The sign bit is set on a non-zero mantissa.
    #[error("compact target {bits} is negative")]
    Negative {
        /// The offending compact value.
        bits: CompactTarget,
    },
    /// The decoded value does not fit in 256 bits.
    #[error("compact target {bits} overflows 256 bits")]
    Overflow {
        /// The offending compact value.
        bits: CompactTarget,
    },
    /// The decoded value is zero, which no hash can meet.
    #[error("compact target {bits} decodes to zero")]
    Zero {
        /// The offending compact value.
        bits: CompactTarget,
    },
}

/// The compact `bits` field of a block header, exactly as Bitcoin encodes it.
///
/// The top byte is the size in bytes (`nSize`), the low 23 bits are the mantissa and bit
/// `0x00800000` is a sign bit. The value is `mantissa * 256^(nSize - 3)`. Any `u32` is a valid
/// `CompactTarget`; whether it decodes to a valid [`Target`] is decided by
/// [`Target::from_compact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CompactTarget(u32);

impl CompactTarget {
    /// Wraps a raw `bits` value as found in a block header.
    pub const fn from_consensus(bits: u32) -> Self {
        Self(bits)
    }

    /// Returns the raw `bits` value to put in a block header.
    pub const fn to_consensus(self) -> u32 {
        self.0
    }
}

impl fmt::Display for CompactTarget {
    /// Formats as `0x` plus 8 lowercase hex digits, e.g. `0x1d00ffff`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// A 256-bit proof-of-work target: a block hash, read as a big-endian integer, must be at most
/// this value.
///
/// Targets decoded with [`Target::from_compact`] are never zero. The raw constructors
/// ([`Target::from_u256`], [`Target::from_be_bytes`]) accept any value; a zero target is met by
/// no hash except the all-zero one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(U256);

impl Target {
    /// Decodes a compact `bits` value with Bitcoin's `SetCompact` semantics.
    ///
    /// Fails if the sign bit is set on a non-zero mantissa, if the value does not fit in 256
    /// bits, or if it decodes to zero.
    pub fn from_compact(bits: CompactTarget) -> Result<Target, TargetError> {
        let compact = bits.to_consensus();
        let size = compact >> 24;
        let mut word = compact & COMPACT_MANTISSA_MASK;
        if size <= 3 {
            word >>= 8 * (3 - size);
        }
        if word != 0 && compact & COMPACT_SIGN_BIT != 0 {
            return Err(TargetError::Negative { bits });
        }
        if word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32)) {
            return Err(TargetError::Overflow { bits });
        }
        if word == 0 {
            return Err(TargetError::Zero { bits });
        }
        let value = if size <= 3 {
            U256::from(word)
        } else {
            // size <= 34 here, and the checks above keep `word << shift` inside 256 bits.
            let shift = 8 * (size as usize - 3);
            U256::from(word)
                .checked_shl(shift)
                .ok_or(TargetError::Overflow { bits })?
        };
        Ok(Target(value))
    }

    /// Encodes this target with Bitcoin's `GetCompact`, rounding down to 3 significant bytes.
    ///
    /// `Target::from_compact(bits)?.to_compact()` is the normal form of `bits`.
    pub fn to_compact(&self) -> CompactTarget {
        let mut size = self.0.byte_len() as u32;
        let mut compact: u32 = if size <= 3 {
            // The value fits in 24 bits, so the conversion is lossless.
            let low = self.0.as_limbs()[0] as u32;
            low << (8 * (3 - size))
        } else {
            let shifted = self.0 >> (8 * (size as usize - 3));
            // `shifted` has at most 3 significant bytes.
            shifted.as_limbs()[0] as u32
        };
        if compact & COMPACT_SIGN_BIT != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// Wraps a 256-bit integer as a target.
    pub const fn from_u256(value: U256) -> Self {
        Self(value)
    }

    /// Returns the target as a 256-bit integer.
    pub const fn as_u256(&self) -> U256 {
        self.0
    }

    /// Reads a target from 32 big-endian bytes.
    pub const fn from_be_bytes(bytes: [u8; 32]) -> Self {
        Self(U256::from_be_bytes(bytes))
    }

    /// Writes the target as 32 big-endian bytes.
    pub const fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }

    /// Whether `hash`, read as a big-endian 256-bit integer, is at most this target.
    pub fn is_met_by(&self, hash: &[u8; 32]) -> bool {
        U256::from_be_bytes(*hash) <= self.0
    }

    /// The expected number of hashes needed to meet this target: `2^256 / (target + 1)`.
    ///
    /// Computed as Bitcoin does, `(!target / (target + 1)) + 1`. Two values outside the range
    /// [`Target::from_compact`] produces are handled without overflow: `U256::MAX` yields 1, and
    /// zero (whose true work, `2^256`, does not fit) saturates to `U256::MAX`.
    pub fn work(&self) -> Work {
        match self.0.checked_add(U256::from(1u8)) {
            // target == U256::MAX: 2^256 / 2^256.
            None => Work(U256::from(1u8)),
            Some(divisor) => {
                // divisor >= 1, so the division cannot fail.
                let quotient = (!self.0) / divisor;
                Work(quotient.saturating_add(U256::from(1u8)))
            }
        }
    }
}

impl fmt::Display for Target {
    /// Formats as `0x` plus 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#066x}", self.0)
    }
}

/// Accumulated proof of work: the expected number of hashes behind a block or a chain.
///
/// Displayed and serialized as `0x` plus lowercase hex without leading zeros (e.g. `0x1a2b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Work(U256);

impl Work {
    /// No work at all.
    pub const ZERO: Work = Work(U256::ZERO);

    /// Wraps a 256-bit integer as work.
    pub const fn from_u256(value: U256) -> Self {
        Self(value)
    }

    /// Returns the work as a 256-bit integer.
    pub const fn as_u256(&self) -> U256 {
        self.0
    }

    /// Adds two amounts of work, or `None` if the sum does not fit in 256 bits.
    pub const fn checked_add(self, other: Work) -> Option<Work> {
        match self.0.checked_add(other.0) {
            Some(sum) => Some(Work(sum)),
            None => None,
        }
    }

    /// Adds two amounts of work, saturating at `2^256 - 1`.
    pub const fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }

    /// Reads work from 32 big-endian bytes, as stored.
    pub const fn from_be_bytes(bytes: [u8; 32]) -> Self {
        Self(U256::from_be_bytes(bytes))
    }

    /// Writes work as 32 big-endian bytes, for storage.
    pub const fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Work {
    /// Formats as `0x` plus lowercase hex without leading zeros; zero is `0x0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Why a string is not a valid [`Work`] hex value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid work {input:?}: expected 0x followed by at most 64 hex digits")]
pub struct ParseWorkError {
    /// The rejected input.
    pub input: String,
}

impl FromStr for Work {
    type Err = ParseWorkError;

    /// Parses `0x` plus 1 to 64 hex digits (either case; leading zeros allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseWorkError {
            input: s.to_owned(),
        };
        let digits = s.strip_prefix("0x").ok_or_else(err)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        U256::from_str_radix(digits, 16)
            .map(Work)
            .map_err(|_| err())
    }
}

/// In JSON (human-readable formats) work is its `0x` hex string; in the codec it is its 32
/// big-endian bytes, so that one value has exactly one encoding (the hex parser accepts either
/// case and leading zeros).
impl Serialize for Work {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.to_be_bytes().serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Work::from_be_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn compact(bits: u32) -> CompactTarget {
        CompactTarget::from_consensus(bits)
    }

    /// In the codec work is its 32 big-endian bytes: one value, one encoding (as a hex
    /// string, `0xa`, `0xA` and `0x0a` all decoded to the same work).
    #[test]
    fn work_has_one_codec_encoding_and_a_hex_string_in_json() {
        use crate::core::primitives::codec;
        let work = Work::from_u256(U256::from(10u8));
        let bytes = codec::encode(&work).expect("encodes");
        assert_eq!(bytes, work.to_be_bytes().to_vec());
        assert_eq!(codec::decode::<Work>(&bytes).expect("decodes"), work);
        assert_eq!(serde_json::to_string(&work).unwrap(), "\"0xa\"");
    }

    fn decode(bits: u32) -> Result<Target, TargetError> {
        Target::from_compact(compact(bits))
    }

    fn u256_hex(s: &str) -> U256 {
        U256::from_str_radix(s, 16).expect("test constant is valid hex")
    }

    #[test]
    fn bitcoin_compact_vectors() {
        // From Bitcoin Core's arith_uint256 tests (SetCompact/GetCompact).
        assert_eq!(
            decode(0x01003456),
            Err(TargetError::Zero {
                bits: compact(0x01003456)
            })
        );
        assert_eq!(
            decode(0x01123456).map(|t| t.as_u256()),
            Ok(U256::from(0x12u32))
        );
        assert_eq!(
            decode(0x01123456).map(|t| t.to_compact()),
            Ok(compact(0x01120000))
        );
        assert_eq!(
            decode(0x02008000).map(|t| t.as_u256()),
            Ok(U256::from(0x80u32))
        );
        assert_eq!(
            decode(0x02008000).map(|t| t.to_compact()),
            Ok(compact(0x02008000))
        );
        assert_eq!(
            decode(0x05009234).map(|t| t.as_u256()),
            Ok(U256::from(0x9234_0000u32))
        );
        assert_eq!(
            decode(0x05009234).map(|t| t.to_compact()),
            Ok(compact(0x05009234))
        );
        assert_eq!(
            decode(0x04923456),
            Err(TargetError::Negative {
                bits: compact(0x04923456)
            })
        );
        assert_eq!(
            decode(0x04123456).map(|t| t.as_u256()),
            Ok(U256::from(0x1234_5600u32))
        );
        assert_eq!(
            decode(0x04123456).map(|t| t.to_compact()),
            Ok(compact(0x04123456))
        );
        assert_eq!(
            decode(0xff123456),
            Err(TargetError::Overflow {
                bits: compact(0xff123456)
            })
        );
        for zero in [
            0x00000000, 0x00123456, 0x01003456, 0x02000056, 0x03000000, 0x04000000,
        ] {
            assert_eq!(
                decode(zero),
                Err(TargetError::Zero {
                    bits: compact(zero)
                }),
                "{zero:#010x}"
            );
        }
        // A set sign bit on a mantissa that decodes to zero is not "negative".
        assert_eq!(
            decode(0x01803456),
            Err(TargetError::Zero {
                bits: compact(0x01803456)
            })
        );
        // Sizes 32..=34 overflow only when the mantissa is too wide.
        assert!(decode(0x220000ff).is_ok());
        assert!(decode(0x22000100).is_err());
        assert!(decode(0x2100ffff).is_ok());
        assert!(decode(0x21010000).is_err());
        assert!(decode(0x207fffff).is_ok());
        assert!(decode(0x23000001).is_err());
    }

    #[test]
    fn bitcoin_genesis_bits() {
        let target = decode(0x1d00ffff).expect("valid bits");
        assert_eq!(
            target.as_u256(),
            u256_hex("00000000ffff0000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(target.to_compact(), compact(0x1d00ffff));
        assert_eq!(target.work(), Work::from_u256(U256::from(0x1_0001_0001u64)));
        assert_eq!(target.work().to_string(), "0x100010001");
    }

    #[test]
    fn regtest_bits_round_trip() {
        let target = decode(0x207fffff).expect("valid bits");
        assert_eq!(
            target.as_u256(),
            u256_hex("7fffff0000000000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(target.to_compact(), compact(0x207fffff));
        assert_eq!(target.work(), Work::from_u256(U256::from(2u8)));
    }

    #[test]
    fn to_compact_normalises() {
        // A mantissa with the top bit clear but a too-large size shrinks back.
        let t = decode(0x05009234).expect("valid");
        assert_eq!(t.to_compact(), compact(0x05009234));
        let t = decode(0x03000080).expect("valid");
        assert_eq!(t.as_u256(), U256::from(0x80u8));
        assert_eq!(t.to_compact(), compact(0x02008000));
        assert_eq!(Target::from_u256(U256::ZERO).to_compact(), compact(0));
    }

    #[test]
    fn compact_display() {
        assert_eq!(compact(0x1d00ffff).to_string(), "0x1d00ffff");
        assert_eq!(compact(0x0101).to_string(), "0x00000101");
        assert_eq!(
            TargetError::Negative {
                bits: compact(0x04923456)
            }
            .to_string(),
            "compact target 0x04923456 is negative"
        );
    }

    #[test]
    fn compact_serde_is_transparent() {
        let json = serde_json::to_string(&compact(0x1d00ffff)).expect("serialize");
        assert_eq!(json, "486604799");
        let back: CompactTarget = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, compact(0x1d00ffff));
    }

    #[test]
    fn is_met_by_edges() {
        let target = decode(0x1d00ffff).expect("valid");
        let at = target.to_be_bytes();
        assert!(target.is_met_by(&at));
        let above = Target::from_u256(target.as_u256() + U256::from(1u8)).to_be_bytes();
        assert!(!target.is_met_by(&above));
        let below = Target::from_u256(target.as_u256() - U256::from(1u8)).to_be_bytes();
        assert!(target.is_met_by(&below));
        assert!(target.is_met_by(&[0u8; 32]));
        assert!(!target.is_met_by(&[0xff; 32]));
        // Big-endian: the first byte is the most significant.
        let mut hash = [0u8; 32];
        hash[3] = 1;
        assert!(!target.is_met_by(&hash));
        let mut hash = [0u8; 32];
        hash[31] = 0xff;
        assert!(target.is_met_by(&hash));
        assert!(Target::from_u256(U256::MAX).is_met_by(&[0xff; 32]));
    }

    #[test]
    fn work_edges() {
        assert_eq!(
            Target::from_u256(U256::MAX).work().as_u256(),
            U256::from(1u8)
        );
        assert_eq!(Target::from_u256(U256::ZERO).work().as_u256(), U256::MAX);
        assert_eq!(
            Target::from_u256(U256::from(1u8)).work().as_u256(),
            U256::from(1u8) << 255
        );
        // 2^255 - 1 -> exactly 2.
        let half = (U256::from(1u8) << 255) - U256::from(1u8);
        assert_eq!(Target::from_u256(half).work().as_u256(), U256::from(2u8));
    }

    #[test]
    fn work_arithmetic_and_encoding() {
        let a = Work::from_u256(U256::from(0x1a2bu32));
        assert_eq!(a.to_string(), "0x1a2b");
        assert_eq!(Work::ZERO.to_string(), "0x0");
        assert_eq!(Work::default(), Work::ZERO);
        assert_eq!(
            a.checked_add(a),
            Some(Work::from_u256(U256::from(0x3456u32)))
        );
        let max = Work::from_u256(U256::MAX);
        assert_eq!(max.checked_add(a), None);
        assert_eq!(max.saturating_add(a), max);
        assert!(Work::ZERO < a && a < max);
        assert_eq!(Work::from_be_bytes(a.to_be_bytes()), a);
        assert_eq!(a.to_be_bytes()[30..], [0x1a, 0x2b]);

        let json = serde_json::to_string(&a).expect("serialize");
        assert_eq!(json, "\"0x1a2b\"");
        let back: Work = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, a);
        let max_json = serde_json::to_string(&max).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Work>(&max_json).expect("deserialize"),
            max
        );

        for bad in ["", "0x", "1a2b", "0xg1", "0x_1", "0x-1", " 0x1", "0X1"] {
            assert!(bad.parse::<Work>().is_err(), "{bad:?} should be rejected");
        }
        let too_big = format!("0x1{}", "0".repeat(64));
        let err = too_big
            .parse::<Work>()
            .expect_err("65 significant digits overflow");
        assert!(err.to_string().contains(&too_big));
        assert_eq!("0x0001a2b".parse::<Work>(), Ok(a));
        assert_eq!("0x1A2B".parse::<Work>(), Ok(a));
        assert!(serde_json::from_str::<Work>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Work>("12").is_err());
    }

    #[test]
    fn target_bytes_and_order() {
        let t = decode(0x1d00ffff).expect("valid");
        assert_eq!(Target::from_be_bytes(t.to_be_bytes()), t);
        assert_eq!(t.to_be_bytes()[4..6], [0xff, 0xff]);
        let easier = decode(0x1d01ffff).expect("valid");
        assert!(easier > t);
        assert!(easier.work() < t.work());
        assert_eq!(
            t.to_string(),
            "0x00000000ffff0000000000000000000000000000000000000000000000000000"
        );
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        // Mix full-width values with values of every bit length.
        (any::<[u64; 4]>(), 0usize..=256).prop_map(|(limbs, bits)| {
            let value = U256::from_limbs(limbs);
            if bits == 256 {
                value
            } else {
                value & ((U256::from(1u8) << bits) - U256::from(1u8))
            }
        })
    }

    proptest! {
        #[test]
        fn compact_round_trip_is_fixed_point(bits in any::<u32>()) {
            if let Ok(target) = decode(bits) {
                let normal = target.to_compact();
                let again = Target::from_compact(normal);
                prop_assert_eq!(again, Ok(target));
                prop_assert_eq!(again.map(|t| t.to_compact()), Ok(normal));
            }
        }

        #[test]
        fn to_compact_rounds_down_only_low_bits(value in any_u256()) {
            let target = Target::from_u256(value);
            let bits = target.to_compact();
            if value.is_zero() {
                prop_assert_eq!(bits, compact(0));
                return Ok(());
            }
            let back = Target::from_compact(bits);
            prop_assert!(back.is_ok(), "{} from {:#x} does not decode", bits, value);
            let back = back.expect("checked above").as_u256();
            prop_assert!(back <= value);
            // At most the bits below the top 16 or 24 significant bits are dropped:
            // `back` equals `value` with everything under a byte boundary cleared.
            let size = value.byte_len();
            let dropped_bits = 8 * size.saturating_sub(3);
            let kept = (value >> dropped_bits) << dropped_bits;
            // The sign-bit adjustment can drop one more byte.
            let kept_wider = (value >> (dropped_bits + 8)) << (dropped_bits + 8);
            prop_assert!(back == kept || back == kept_wider, "{:#x} -> {:#x}", value, back);
            prop_assert!(value - back < (U256::from(1u8) << (dropped_bits + 8)));
        }

        #[test]
        fn work_matches_exact_division(value in any_u256()) {
            let target = Target::from_u256(value);
            prop_assume!(!value.is_zero() && value != U256::MAX);
            // 2^256 / (t + 1) computed in 512 bits.
            let exact = (ruint::aliases::U512::from(1u8) << 256)
                / ruint::aliases::U512::from(value + U256::from(1u8));
            prop_assert_eq!(ruint::aliases::U512::from(target.work().as_u256()), exact);
        }
    }
}
