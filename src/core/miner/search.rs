//! The nonce search: SHA-256 midstate hashing of the 116-byte header. No I/O.
//!
//! The header's first 64 bytes do not change while mining a template, so their compression
//! (the midstate) is done once. Each attempt then costs two SHA-256 compressions: the tail
//! chunk (header bytes 64..116 holding time and nonce, plus padding) and the outer hash of
//! the 32-byte inner digest. A [`Kernel`] does the hashing, picked once for the CPU at hand:
//! on x86-64 with AVX-512 sixteen nonces at once in vector lanes (`avx512`), with SHA
//! extensions four at once on the SHA unit (`sha_ni`); elsewhere `sha2`'s `compress256` (the
//! portable path, also the oracle every fast path is tested against).
use super::kernel_input::{KernelInput, IV};
use crate::core::consensus::target::Target;
use crate::core::primitives::header::{Header, HEADER_SIZE, NONCE_OFFSET, TIME_OFFSET};
use sha2::block_api::compress256;

/// The outer hash's single block before the inner digest is written into its first 32
/// bytes: the 0x80 terminator and the message length (256 bits).
const OUTER_BLOCK: [u8; 64] = {
    let mut block = [0u8; 64];
    block[32] = 0x80;
    block[62] = 0x01; // 256 as a big-endian u64 in bytes 56..64
    block
};

/// The code that hashes nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512: sixteen nonces per step in 32-bit vector lanes.
    Avx512,
    /// The SHA extensions: four nonces interleaved on the SHA unit.
    ShaNi,
    /// AVX2: eight nonces per step in 32-bit vector lanes.
    Avx2,
    /// `sha2`'s compression function, one nonce at a time: any CPU.
    Portable,
}

/// Every kernel, fastest first (where they all exist, AVX-512 runs about twice the SHA
/// extensions' rate and the SHA extensions beat AVX2: docs/BENCHMARKS.md).
const KERNELS: [Kernel; 4] = [
    Kernel::Avx512,
    Kernel::ShaNi,
    Kernel::Avx2,
    Kernel::Portable,
];

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        KERNELS
            .into_iter()
            .find(|kernel| kernel.runs_here())
            .unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU runs, fastest first (the portable one always last).
    pub fn available() -> Vec<Kernel> {
        KERNELS.into_iter().filter(|k| k.runs_here()).collect()
    }

    /// Whether this CPU runs it.
    pub fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => super::avx512::available(),
            #[cfg(target_arch = "x86_64")]
            Kernel::ShaNi => super::sha_ni::available(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => super::avx2::available(),
            Kernel::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Its name and width, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            Kernel::Avx512 => "AVX-512 (16 nonces per step, precomputed rounds)",
            Kernel::ShaNi => "SHA extensions (4 nonces interleaved)",
            Kernel::Avx2 => "AVX2 (8 nonces per step, precomputed rounds)",
            Kernel::Portable => "portable sha2 (1 nonce per step)",
        }
    }
}

/// The precomputed state for searching nonces of one header.
#[derive(Clone, Debug)]
pub struct NonceSearch {
    midstate: [u32; 8],
    tail: [u8; 64],
    target_words: [u32; 8],
    kernel: Kernel,
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
            kernel: Kernel::detect(),
        }
    }

    /// The same search on `kernel`, which must be one of [`Kernel::available`] (another
    /// falls back to the portable one).
    pub fn with_kernel(mut self, kernel: Kernel) -> NonceSearch {
        self.kernel = if kernel.runs_here() {
            kernel
        } else {
            Kernel::Portable
        };
        self
    }

    /// The kernel it hashes with.
    pub fn kernel(&self) -> Kernel {
        self.kernel
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
        let input = KernelInput {
            midstate: self.midstate,
            tail: self.tail_words(),
            target_word0: self.target_words[0],
        };
        let check = |nonce| self.meets_target(nonce);
        // SAFETY: `with_kernel` and `detect` pick only kernels this CPU runs.
        let found = match self.kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe {
                super::avx512::search_candidates(&input, start, end, check)
            },
            #[cfg(target_arch = "x86_64")]
            Kernel::ShaNi => unsafe { super::sha_ni::search_candidates(&input, start, end, check) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { super::avx2::search_candidates(&input, start, end, check) },
            _ => return self.search_portable(start, end),
        };
        SearchOutcome {
            found,
            attempts: match found {
                Some(nonce) => u64::from(nonce - start) + 1,
                None => u64::from(end - start),
            },
        }
    }

    /// The tail chunk as big-endian words (the nonce in word 12).
    fn tail_words(&self) -> [u32; 16] {
        let mut words = [0u32; 16];
        for (word, chunk) in words.iter_mut().zip(self.tail.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        words
    }

    /// Whether `nonce` meets the target, by the portable double SHA-256.
    fn meets_target(&self, nonce: u32) -> bool {
        let mut tail = self.tail;
        let mut outer = OUTER_BLOCK;
        self.hash_words(&mut tail, &mut outer, nonce) <= self.target_words
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

    /// Every kernel this CPU runs finds exactly what the portable path finds, on ranges
    /// that do not divide into lanes, at several targets and times.
    #[test]
    fn every_kernel_agrees_with_the_portable_path() {
        let kernels = Kernel::available();
        assert_eq!(kernels.last(), Some(&Kernel::Portable));
        for kernel in kernels {
            for (i, bits) in [0x207f_ffffu32, 0x1f0f_ffff, 0x1f00_ffff, 0x1e0f_ffff]
                .into_iter()
                .enumerate()
            {
                let mut header = header(bits);
                header.height = i as u32;
                let target = Target::from_compact(header.bits).unwrap();
                let mut search = NonceSearch::new(&header, &target).with_kernel(kernel);
                assert_eq!(search.kernel(), kernel);
                for (start, len) in [(0u32, 1u32), (5, 3), (7, 4099), (1 << 20, 70_001)] {
                    search.set_time(1_700_000_000 + start);
                    let fast = search.search(start, start + len);
                    let portable = search.search_portable(start, start + len);
                    assert_eq!(
                        fast, portable,
                        "{kernel:?} bits {bits:#x} range {start}+{len}"
                    );
                }
            }
            let header = header(0x207f_ffff);
            let search = NonceSearch::new(&header, &Target::from_compact(header.bits).unwrap())
                .with_kernel(kernel);
            assert_eq!(
                search.search(u32::MAX - 2, u32::MAX),
                search.search_portable(u32::MAX - 2, u32::MAX)
            );
        }
    }

    /// On random headers and an easy target (about one hash in 16 meets it), every kernel
    /// finds the same first nonce as a plain double SHA-256 of the header (`Header::hash`,
    /// the `sha2` digest validation uses), and its hash meets the target.
    #[test]
    fn every_kernel_finds_what_sha2_finds_on_random_headers() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let target = Target::from_compact(CompactTarget::from_consensus(0x2010_0000)).unwrap();
        for _ in 0..50 {
            let mut bytes = [0u8; 32];
            let mut fill = |out: &mut [u8; 32]| {
                for chunk in out.chunks_exact_mut(8) {
                    chunk.copy_from_slice(&next().to_le_bytes());
                }
            };
            fill(&mut bytes);
            let prev_hash = BlockHash(bytes);
            fill(&mut bytes);
            let state_root = StateRoot(bytes);
            let mut header = Header {
                prev_hash,
                state_root,
                time: next() as u32,
                height: next() as u32,
                ..header(0x2010_0000)
            };
            let start = (next() as u32) % (u32::MAX - 4096);
            let expected = (start..start + 4096).find(|&nonce| {
                header.nonce = nonce;
                target.is_met_by(header.hash().as_bytes())
            });
            for kernel in Kernel::available() {
                let search = NonceSearch::new(&header, &target).with_kernel(kernel);
                assert_eq!(
                    search.search(start, start + 4096).found,
                    expected,
                    "{kernel:?} on {header:?}"
                );
            }
        }
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
