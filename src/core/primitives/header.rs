//! The block header and its fixed 116-byte layout. No I/O.
//!
//! ```text
//! offset  size  field         encoding
//!      0     4  version       u32 little-endian
//!      4     4  height        u32 little-endian
//!      8    32  prev_hash     bytes
//!     40    32  tx_root       bytes
//!     72    32  state_root    bytes
//!    104     4  time          u32 little-endian, seconds since the Unix epoch
//!    108     4  bits          u32 little-endian, compact target
//!    112     4  nonce         u32 little-endian
//! ```
//!
//! 116 bytes plus SHA-256 padding (1 + 8 bytes) fit two 64-byte chunks, and everything a
//! miner changes per attempt (nonce, time) lies in the second chunk: the first chunk is
//! compressed once per template (the midstate), so one attempt costs two compressions, the
//! tail chunk and the outer hash of the double SHA-256.
use super::hash::{sha256d, BlockHash, MerkleRoot, StateRoot};
use super::target::CompactTarget;
use serde::{Deserialize, Serialize};

/// Size of the encoded header in bytes.
pub const HEADER_SIZE: usize = 116;
/// Offset of the nonce in the encoded header.
pub const NONCE_OFFSET: usize = 112;
/// Offset of the timestamp in the encoded header.
pub const TIME_OFFSET: usize = 104;

/// A block header: what proof of work commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Block format version; currently 1.
    pub version: u32,
    /// Height of this block; genesis is 0.
    pub height: u32,
    /// Hash of the parent block's header.
    pub prev_hash: BlockHash,
    /// Merkle root over the reward leaf and the transfers' txids.
    pub tx_root: MerkleRoot,
    /// Root of the account state after this block.
    pub state_root: StateRoot,
    /// Seconds since the Unix epoch.
    pub time: u32,
    /// The compact target this block's hash must meet.
    pub bits: CompactTarget,
    /// Varied by miners to search for a hash under the target.
    pub nonce: u32,
}

impl Header {
    /// The header's fixed byte layout (see the module docs).
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..8].copy_from_slice(&self.height.to_le_bytes());
        out[8..40].copy_from_slice(self.prev_hash.as_bytes());
        out[40..72].copy_from_slice(self.tx_root.as_bytes());
        out[72..104].copy_from_slice(self.state_root.as_bytes());
        out[TIME_OFFSET..TIME_OFFSET + 4].copy_from_slice(&self.time.to_le_bytes());
        out[108..112].copy_from_slice(&self.bits.to_consensus().to_le_bytes());
        out[NONCE_OFFSET..NONCE_OFFSET + 4].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// Parses the fixed byte layout. Any 116 bytes are a header (validity is checked later).
    pub fn from_bytes(bytes: &[u8; HEADER_SIZE]) -> Header {
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let hash_at = |at: usize| {
            let mut out = [0u8; 32];
            out.copy_from_slice(&bytes[at..at + 32]);
            out
        };
        Header {
            version: u32_at(0),
            height: u32_at(4),
            prev_hash: BlockHash(hash_at(8)),
            tx_root: MerkleRoot(hash_at(40)),
            state_root: StateRoot(hash_at(72)),
            time: u32_at(TIME_OFFSET),
            bits: CompactTarget::from_consensus(u32_at(108)),
            nonce: u32_at(NONCE_OFFSET),
        }
    }

    /// [`Header::to_bytes`] as lowercase hex: how the API serves a header.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// A header from [`Header::to_hex`]'s form; `None` unless it is exactly 116 bytes of hex.
    pub fn from_hex(text: &str) -> Option<Header> {
        let bytes: [u8; HEADER_SIZE] = hex::decode(text).ok()?.try_into().ok()?;
        Some(Header::from_bytes(&bytes))
    }

    /// The block hash: double SHA-256 of [`Header::to_bytes`].
    pub fn hash(&self) -> BlockHash {
        BlockHash(sha256d(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::primitives::codec;
    use proptest::prelude::*;

    fn arbitrary_header() -> impl Strategy<Value = Header> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(version, height, prev, tx, state, time, bits, nonce)| Header {
                    version,
                    height,
                    prev_hash: BlockHash(prev),
                    tx_root: MerkleRoot(tx),
                    state_root: StateRoot(state),
                    time,
                    bits: CompactTarget::from_consensus(bits),
                    nonce,
                },
            )
    }

    proptest! {
        #[test]
        fn layout_round_trips(header in arbitrary_header()) {
            prop_assert_eq!(Header::from_bytes(&header.to_bytes()), header);
        }

        /// The codec's encoding of a header is byte for byte the hashed layout, so there is
        /// one header format, not two.
        #[test]
        fn codec_encoding_equals_hashed_layout(header in arbitrary_header()) {
            prop_assert_eq!(codec::encode(&header).unwrap(), header.to_bytes().to_vec());
        }
    }

    #[test]
    fn golden_layout() {
        let header = Header {
            version: 1,
            height: 0x0102_0304,
            prev_hash: BlockHash([0xaa; 32]),
            tx_root: MerkleRoot([0xbb; 32]),
            state_root: StateRoot([0xcc; 32]),
            time: 0x1122_3344,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0xdead_beef,
        };
        let bytes = header.to_bytes();
        let expected = format!(
            "01000000{}{}{}{}{}{}{}",
            "04030201",
            "aa".repeat(32),
            "bb".repeat(32),
            "cc".repeat(32),
            "44332211",
            "ffff7f20",
            "efbeadde"
        );
        assert_eq!(hex::encode(bytes), expected);
        assert_eq!(
            header.hash().to_hex(),
            hex::encode(sha256d(&bytes)),
            "hash is sha256d of the layout"
        );
    }
}
