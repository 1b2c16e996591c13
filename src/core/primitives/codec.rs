//! The one codec for stored and wire bytes: serde + bincode 2 with one fixed configuration.
//! No I/O.
//!
//! Configuration: little-endian, fixed-width integers, a size limit of [`MAX_DECODE_BYTES`],
//! and trailing bytes rejected, so one value has exactly one encoding. bincode is pinned at
//! `=2.0.1` (its maintainers ended the crate with a 3.0.0 that does not compile); it is
//! named nowhere else, so changing the format later touches this file only.
use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest value the codec decodes; well above the largest valid block.
pub const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;

type CodecConfig = Configuration<LittleEndian, Fixint, Limit<MAX_DECODE_BYTES>>;

const CONFIG: CodecConfig = config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded (larger than the limit).
    #[error("cannot encode: {0}")]
    Encode(bincode::error::EncodeError),
    /// The bytes are not a valid encoding.
    #[error("malformed bytes: {0}")]
    Decode(bincode::error::DecodeError),
    /// A valid value was followed by extra bytes.
    #[error("malformed bytes: {trailing} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        trailing: usize,
    },
}

/// Encodes `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(CodecError::Encode)
}

/// Decodes exactly one `T` from `bytes`; never panics on any input.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) =
        bincode::serde::decode_from_slice(bytes, CONFIG).map_err(CodecError::Decode)?;
    if read != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing: bytes.len() - read,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&7u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            decode::<u32>(&bytes),
            Err(CodecError::TrailingBytes { trailing: 1 })
        ));
    }

    #[test]
    fn huge_length_prefix_is_rejected_without_allocating() {
        let bytes = u64::MAX.to_le_bytes();
        assert!(matches!(
            decode::<Vec<u64>>(&bytes),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn integers_are_fixed_width_little_endian() {
        assert_eq!(encode(&1u32).unwrap(), vec![1, 0, 0, 0]);
        assert_eq!(encode(&vec![9u8]).unwrap(), vec![1, 0, 0, 0, 0, 0, 0, 0, 9]);
    }
}
