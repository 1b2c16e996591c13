//! The record format of the mempool's write-ahead journal (`<data-dir>/mempool.journal`,
//! written and replayed by `node::pool_journal`): bytes in, transfers out, no I/O, so that it
//! can be fuzzed on its own.
//!
//! ```text
//!   file    = HEADER record*          HEADER = b"CAIRNJ1\n"
//!   record  = len u32 LE | crc32(payload) u32 LE | payload (len bytes, 1..=MAX_RECORD_BYTES)
//!   payload = codec::encode(&Transfer)
//! ```
//! Decoding stops at the first record that is not whole (a torn tail after a crash, or
//! damage) and says where and why; everything before it is kept.
use crate::core::primitives::codec::{self, CodecError};
use crate::core::primitives::Transfer;

/// The bytes every journal starts with (format name and version).
pub const HEADER: &[u8; 8] = b"CAIRNJ1\n";

/// The longest record payload; far above a valid transfer's encoding (a few hundred bytes),
/// and small enough that a corrupt length never makes replay allocate much.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A record's length and checksum fields.
pub const PREFIX_LEN: usize = 8;

/// Why a transfer cannot be a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// It does not encode.
    #[error("cannot journal a transfer: {0}")]
    Encode(CodecError),
    /// Its encoding is longer than a record may be.
    #[error(
        "cannot journal a transfer of {bytes} bytes (a record holds at most {MAX_RECORD_BYTES})"
    )]
    TooLarge {
        /// Its encoded length.
        bytes: usize,
    },
}

/// Why decoding stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum TailProblem {
    /// Fewer bytes left than a record's prefix.
    #[error("{0} bytes, too few for a record's length and checksum")]
    ShortPrefix(usize),
    /// A length of 0 or over [`MAX_RECORD_BYTES`].
    #[error("a record length of {0} bytes")]
    BadLength(u32),
    /// A length past the end.
    #[error("a record of {length} bytes with only {left} bytes left")]
    ShortPayload {
        /// The record's length field.
        length: u32,
        /// Bytes left after its prefix.
        left: usize,
    },
    /// The payload's CRC-32 differs from the record's.
    #[error("a record whose checksum does not match")]
    Checksum,
    /// The payload is not a transfer's encoding.
    #[error("a record that is not a transfer: {0}")]
    Undecodable(CodecError),
}

/// What [`decode_records`] found.
#[derive(Debug)]
pub struct Records {
    /// The transfers of the whole records, in order.
    pub transfers: Vec<Transfer>,
    /// Bytes of whole records from the start of the input.
    pub valid_len: usize,
    /// Why decoding stopped before the end, if it did.
    pub problem: Option<TailProblem>,
}

/// Appends `transfer`'s record to `out`.
pub fn encode_record(transfer: &Transfer, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let payload = codec::encode(transfer).map_err(RecordError::Encode)?;
    if payload.is_empty() || payload.len() > MAX_RECORD_BYTES {
        return Err(RecordError::TooLarge {
            bytes: payload.len(),
        });
    }
    // In range: at most MAX_RECORD_BYTES.
    let len = payload.len() as u32;
    out.reserve(PREFIX_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The records in `bytes` (what follows the header), up to the first that is not whole.
pub fn decode_records(bytes: &[u8]) -> Records {
    let mut transfers = Vec::new();
    let mut offset = 0;
    let problem = loop {
        let rest = &bytes[offset..];
        if rest.is_empty() {
            break None;
        }
        let Some((prefix, rest)) = rest.split_first_chunk::<PREFIX_LEN>() else {
            break Some(TailProblem::ShortPrefix(rest.len()));
        };
        let [l0, l1, l2, l3, c0, c1, c2, c3] = *prefix;
        let length = u32::from_le_bytes([l0, l1, l2, l3]);
        let checksum = u32::from_le_bytes([c0, c1, c2, c3]);
        if length == 0 || length as usize > MAX_RECORD_BYTES {
            break Some(TailProblem::BadLength(length));
        }
        let Some(payload) = rest.get(..length as usize) else {
            break Some(TailProblem::ShortPayload {
                length,
                left: rest.len(),
            });
        };
        if crc32fast::hash(payload) != checksum {
            break Some(TailProblem::Checksum);
        }
        match codec::decode(payload) {
            Ok(transfer) => transfers.push(transfer),
            Err(e) => break Some(TailProblem::Undecodable(e)),
        }
        offset += PREFIX_LEN + length as usize;
    };
    Records {
        transfers,
        valid_len: offset,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::sample_transfer;

    #[test]
    fn records_round_trip_and_a_torn_tail_keeps_the_whole_ones() {
        let transfers: Vec<Transfer> = (0..3).map(|n| sample_transfer(n, Vec::new())).collect();
        let mut bytes = Vec::new();
        for transfer in &transfers {
            encode_record(transfer, &mut bytes).expect("encodes");
        }
        let whole = decode_records(&bytes);
        assert_eq!(whole.transfers, transfers);
        assert_eq!(whole.valid_len, bytes.len());
        assert!(whole.problem.is_none());
        let torn = decode_records(&bytes[..bytes.len() - 1]);
        assert_eq!(torn.transfers, transfers[..2]);
        assert!(matches!(
            torn.problem,
            Some(TailProblem::ShortPayload { .. })
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            decode_records(&flipped).problem,
            Some(TailProblem::Checksum)
        ));
    }
}
