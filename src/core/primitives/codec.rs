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

/// Decodes one `T` from the start of `bytes`, ignoring whatever follows; never panics.
///
/// For reading a leading field cheaply, such as a block's header out of an encoded block
/// (a `Block` is encoded header first). Anything else should use [`decode`], which refuses
/// trailing bytes so that a value has exactly one encoding.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    bincode::serde::decode_from_slice(bytes, CONFIG)
        .map(|(value, _read)| value)
        .map_err(CodecError::Decode)
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
    fn prefix_decoding_ignores_what_follows_but_not_what_is_missing() {
        let mut bytes = encode(&(7u32, 9u64)).unwrap();
        assert_eq!(decode_prefix::<u32>(&bytes).unwrap(), 7);
        bytes.truncate(2);
        assert!(matches!(
            decode_prefix::<u32>(&bytes),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn a_blocks_header_is_its_encodings_prefix() {
        use crate::core::primitives::{Block, Header};
        use crate::core::testkit::{test_address, TestChain};
        let mut chain = TestChain::new();
        let genesis = chain.genesis_hash;
        let block: Block = chain.extend(&genesis, 1, test_address(0)).remove(0);
        let header: Header = decode_prefix(&encode(&block).unwrap()).unwrap();
        assert_eq!(header.hash(), block.hash());
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
