//! The nonce search: SHA-256 midstate hashing of the 116-byte header. No I/O.
//!
//! The header's first 64 bytes do not change while mining a template, so their compression
//! (the midstate) is done once. Each attempt then costs two SHA-256 compressions: the tail
//! chunk (header bytes 64..116 holding time and nonce, plus padding) and the outer hash of
//! the 32-byte inner digest. On x86-64 CPUs with SHA extensions the search runs four
//! nonces at once (`sha_ni`); elsewhere it uses `sha2`'s `compress256` (the portable path,
//! also the oracle the fast path is tested against).
use crate::core::consensus::target::Target;
use crate::core::primitives::header::{Header, HEADER_SIZE, NONCE_OFFSET, TIME_OFFSET};
use sha2::block_api::compress256;

/// SHA-256 initial hash values.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The outer hash's single block before the inner digest is written into its first 32
/// bytes: the 0x80 terminator and the message length (256 bits).
const OUTER_BLOCK: [u8; 64] = {
    let mut block = [0u8; 64];
    block[32] = 0x80;
    block[62] = 0x01; // 256 as a big-endian u64 in bytes 56..64
    block
};

/// The precomputed state for searching nonces of one header.
#[derive(Clone, Debug)]
pub struct NonceSearch {
    midstate: [u32; 8],
    tail: [u8; 64],
    target_words: [u32; 8],
}

/// The result of searching a range of nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchOutcome {
    /// The first nonce whose hash meets the target, if any.
    pub found: Option<u32>,
    /// How many hashes were tried.
    pub attempts: u64,
}

impl NonceSearch {
    /// Prepares to search nonces for `header` (its nonce is ignored) against `target`.
    pub fn new(header: &Header, target: &Target) -> NonceSearch {
        let bytes = header.to_bytes();
        let mut first = [0u8; 64];
        first.copy_from_slice(&bytes[..64]);
        let mut midstate = IV;
        compress256(&mut midstate, &[first]);
        // Tail chunk: header bytes 64..116, the 0x80 terminator, zeros, and the message
        // length in bits as a big-endian u64.
        let mut tail = [0u8; 64];
        tail[..HEADER_SIZE - 64].copy_from_slice(&bytes[64..]);
        tail[HEADER_SIZE - 64] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_SIZE as u64) * 8).to_be_bytes());
        let target_bytes = target.to_be_bytes();
        let mut target_words = [0u32; 8];
        for (word, chunk) in target_words.iter_mut().zip(target_bytes.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        NonceSearch {
            midstate,
            tail,
            target_words,
        }
    }

    /// Sets the header time (it lies in the tail chunk, so the midstate stays valid).
    pub fn set_time(&mut self, time: u32) {
        let at = TIME_OFFSET - 64;
        self.tail[at..at + 4].copy_from_slice(&time.to_le_bytes());
    }

    /// The double SHA-256 of the header with `nonce`, as big-endian words.
    #[inline(always)]
    fn hash_words(&self, tail: &mut [u8; 64], outer: &mut [u8; 64], nonce: u32) -> [u32; 8] {
        let at = NONCE_OFFSET - 64;
        tail[at..at + 4].copy_from_slice(&nonce.to_le_bytes());
        let mut inner = self.midstate;
        compress256(&mut inner, core::slice::from_ref(tail));
        for (i, word) in inner.iter().enumerate() {
            outer[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        let mut state = IV;
        compress256(&mut state, core::slice::from_ref(outer));
        state
    }

    /// Tries every nonce in `start..end` in order; stops at the first that meets the target.
    pub fn search(&self, start: u32, end: u32) -> SearchOutcome {
        #[cfg(target_arch = "x86_64")]
        if super::sha_ni::available() {
            return self.search_sha_ni(start, end);
        }
        self.search_portable(start, end)
    }

    /// Whether [`NonceSearch::search`] uses the CPU's SHA extensions here.
    pub fn uses_sha_extensions() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            super::sha_ni::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Whether `nonce` meets the target, by the portable double SHA-256.
    fn meets_target(&self, nonce: u32) -> bool {
        let mut tail = self.tail;
        let mut outer = OUTER_BLOCK;
        self.hash_words(&mut tail, &mut outer, nonce) <= self.target_words
    }

    #[cfg(target_arch = "x86_64")]
    fn search_sha_ni(&self, start: u32, end: u32) -> SearchOutcome {
        let mut tail_words = [0u32; 16];
        for (word, chunk) in tail_words.iter_mut().zip(self.tail.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        // SAFETY: `available()` returned true, so the CPU has the required extensions.
        let found = unsafe {
            super::sha_ni::search_candidates(
                &self.midstate,
                &IV,
                &tail_words,
                self.target_words[0],
                start,
                end,
                |nonce| self.meets_target(nonce),
            )
        };
        SearchOutcome {
            found,
            attempts: match found {
                Some(nonce) => u64::from(nonce - start) + 1,
                None => u64::from(end - start),
            },
        }
    }

    /// The search on any CPU, with `sha2`'s compression function.
    pub fn search_portable(&self, start: u32, end: u32) -> SearchOutcome {
        let mut tail = self.tail;
        let mut outer = OUTER_BLOCK;
        let mut nonce = start;
        while nonce < end {
            let words = self.hash_words(&mut tail, &mut outer, nonce);
            // The first word decides almost every attempt.
            if words[0] <= self.target_words[0] && words <= self.target_words {
                return SearchOutcome {
                    found: Some(nonce),
                    attempts: u64::from(nonce - start) + 1,
                };
            }
            nonce += 1;
        }
        SearchOutcome {
            found: None,
            attempts: u64::from(end - start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::consensus::target::CompactTarget;
    use crate::core::primitives::{BlockHash, MerkleRoot, StateRoot};

    fn header(bits: u32) -> Header {
        Header {
            version: 1,
            height: 5,
            prev_hash: BlockHash([3; 32]),
            tx_root: MerkleRoot([4; 32]),
            state_root: StateRoot([5; 32]),
            time: 1_700_000_000,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        }
    }

    #[test]
    fn midstate_hash_equals_plain_double_sha256() {
        let mut header = header(0x207f_ffff);
        let target = Target::from_compact(header.bits).unwrap();
        let mut search = NonceSearch::new(&header, &target);
        search.set_time(1_700_000_123);
        header.time = 1_700_000_123;
        let mut tail = search.tail;
        let mut outer = OUTER_BLOCK;
        for nonce in [0u32, 1, 77, u32::MAX] {
            header.nonce = nonce;
            let words = search.hash_words(&mut tail, &mut outer, nonce);
            let mut bytes = [0u8; 32];
            for (i, w) in words.iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            assert_eq!(BlockHash(bytes), header.hash());
        }
    }

    #[test]
    fn found_nonce_meets_target_and_earlier_ones_do_not() {
        // About one hash in 2^12 meets this target.
        let mut header = header(0x1f0f_ffff);
        let target = Target::from_compact(header.bits).unwrap();
        let outcome = NonceSearch::new(&header, &target).search(0, 1 << 20);
        let nonce = outcome.found.expect("a solution within 2^20 tries");
        header.nonce = nonce;
        assert!(target.is_met_by(header.hash().as_bytes()));
        for earlier in 0..nonce {
            header.nonce = earlier;
            assert!(!target.is_met_by(header.hash().as_bytes()));
        }
        assert_eq!(outcome.attempts, u64::from(nonce) + 1);
    }

    /// The fast path finds exactly what the portable path finds, on ranges that do not
    /// divide into lanes, at several targets and times.
    #[test]
    fn fast_path_agrees_with_portable_path() {
        for (i, bits) in [0x207f_ffffu32, 0x1f0f_ffff, 0x1f00_ffff, 0x1e0f_ffff]
            .into_iter()
            .enumerate()
        {
            let mut header = header(bits);
            header.height = i as u32;
            let target = Target::from_compact(header.bits).unwrap();
            let mut search = NonceSearch::new(&header, &target);
            for (start, len) in [(0u32, 1u32), (5, 3), (7, 4099), (1 << 20, 70_001)] {
                search.set_time(1_700_000_000 + start);
                let fast = search.search(start, start + len);
                let portable = search.search_portable(start, start + len);
                assert_eq!(fast, portable, "bits {bits:#x} range {start}+{len}");
            }
        }
        let header = header(0x207f_ffff);
        let search = NonceSearch::new(&header, &Target::from_compact(header.bits).unwrap());
        assert_eq!(
            search.search(u32::MAX - 2, u32::MAX),
            search.search_portable(u32::MAX - 2, u32::MAX)
        );
    }

    #[test]
    fn empty_range_finds_nothing() {
        let header = header(0x207f_ffff);
        let target = Target::from_compact(header.bits).unwrap();
        assert_eq!(
            NonceSearch::new(&header, &target).search(10, 10),
            SearchOutcome {
                found: None,
                attempts: 0
            }
        );
    }
}
