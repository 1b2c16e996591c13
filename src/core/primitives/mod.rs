//! Primitive types of the chain: hashes, amounts, addresses, header, transfer, block, merkle
//! root, compact targets and work (`target`), and the one codec for outside bytes. No I/O.
//!
//! Every byte layout that is hashed or signed is written out by hand here (see
//! `docs/PROTOCOL.md`); the codec (`codec`) serialises whole messages for storage and the wire.
pub mod address;
pub mod amount;
pub mod block;
pub mod codec;
pub mod hash;
pub mod header;
pub mod merkle;
pub mod serde_hex;
pub mod target;
pub mod transfer;

pub use address::{Address, AddressError};
pub use amount::{Amount, AmountError};
pub use block::Block;
pub use hash::{sha256d, tagged_hash, BlockHash, Hash256, MerkleRoot, StateRoot, Txid};
pub use header::{Header, HEADER_SIZE};
pub use transfer::{Signature, Transfer, MAX_MEMO_BYTES};
