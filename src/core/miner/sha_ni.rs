//! The nonce search on x86-64 CPUs with SHA extensions: four nonces in flight at once.
//! No I/O.
//!
//! One SHA-256 stream leaves the CPU's SHA unit idle while each round waits for the one
//! before it; interleaving four independent nonces fills those gaps (the technique of
//! Bitcoin Core's `sha256d64` SHA-NI code). The message stays in registers, the 12 rounds of
//! the tail chunk that do not depend on the nonce (words 0..11 hold the end of the state
//! root, the time and the bits) are computed once per call, and only the first state word
//! is compared before a full check. Measured: about 2.3 times the attempts per second of
//! the portable path (docs/BENCHMARKS.md).
//!
//! Mining is not consensus: a wrong answer here would only produce a block that every node
//! (this one included) rejects, because validation hashes with the plain `sha2` path. Tests
//! still check every result against the portable search.
use super::kernel_input::{KernelInput, IV, K32};
use core::arch::x86_64::*;

/// Nonces in flight per loop iteration.
const LANES: usize = 4;

/// Whether this CPU can run [`search_candidates`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("ssse3")
}

/// Searches `start..end` and returns the first nonce whose double SHA-256 has a first
/// state word `<= input.target_word0` and passes `full_check`.
///
/// # Safety
/// The CPU must support SHA, SSE4.1 and SSSE3: call only when [`available`] is true.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
// Rounds index the lanes' states and message words side by side; index loops say that best.
#[allow(clippy::needless_range_loop)]
pub unsafe fn search_candidates(
    input: &KernelInput,
    start: u32,
    end: u32,
    mut full_check: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let (midstate, iv, tail, target_word0) =
        (&input.midstate, &IV, &input.tail, input.target_word0);
    // SAFETY (whole body): only SSE/SHA intrinsics on registers, and unaligned loads
    // (`_mm_loadu_si128`) from arrays whose length covers every 16 bytes read.
    let w0 = _mm_loadu_si128(tail.as_ptr().cast());
    let w1 = _mm_loadu_si128(tail.as_ptr().add(4).cast());
    let w2 = _mm_loadu_si128(tail.as_ptr().add(8).cast());
    let w3 = _mm_loadu_si128(tail.as_ptr().add(12).cast());
    let (mid_abef, mid_cdgh) = to_abef_cdgh(midstate);
    let (iv_abef, iv_cdgh) = to_abef_cdgh(iv);
    // Rounds 0..11 use words 0..11 only: the same for every nonce.
    let (mut pre_abef, mut pre_cdgh) = (mid_abef, mid_cdgh);
    rounds4(0, &mut pre_abef, &mut pre_cdgh, w0);
    rounds4(1, &mut pre_abef, &mut pre_cdgh, w1);
    rounds4(2, &mut pre_abef, &mut pre_cdgh, w2);
    // The outer hash's message: the inner digest, then fixed padding for 32 bytes.
    let outer_w2 = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
    let outer_w3 = _mm_set_epi32(256, 0, 0, 0);

    let mut nonce = start;
    while end - nonce >= LANES as u32 {
        let mut abef = [pre_abef; LANES];
        let mut cdgh = [pre_cdgh; LANES];
        let mut w = [[w0, w1, w2, w3]; LANES];
        for (lane, words) in w.iter_mut().enumerate() {
            let lane_nonce = (nonce + lane as u32).swap_bytes() as i32;
            words[3] = _mm_insert_epi32(w3, lane_nonce, 0);
        }
        for lane in 0..LANES {
            rounds4(3, &mut abef[lane], &mut cdgh[lane], w[lane][3]);
        }
        for quad in 4..16 {
            for lane in 0..LANES {
                let wi = next_words(&mut w[lane], quad % 4);
                rounds4(quad, &mut abef[lane], &mut cdgh[lane], wi);
            }
        }
        for lane in 0..LANES {
            let inner_abef = _mm_add_epi32(abef[lane], mid_abef);
            let inner_cdgh = _mm_add_epi32(cdgh[lane], mid_cdgh);
            let (digest_lo, digest_hi) = from_abef_cdgh(inner_abef, inner_cdgh);
            w[lane] = [digest_lo, digest_hi, outer_w2, outer_w3];
            abef[lane] = iv_abef;
            cdgh[lane] = iv_cdgh;
        }
        for quad in 0..4 {
            for lane in 0..LANES {
                rounds4(quad, &mut abef[lane], &mut cdgh[lane], w[lane][quad]);
            }
        }
        for quad in 4..16 {
            for lane in 0..LANES {
                let wi = next_words(&mut w[lane], quad % 4);
                rounds4(quad, &mut abef[lane], &mut cdgh[lane], wi);
            }
        }
        for (lane, lane_abef) in abef.iter().enumerate() {
            let word0 = (_mm_extract_epi32(*lane_abef, 3) as u32).wrapping_add(iv[0]);
            let candidate = nonce + lane as u32;
            if word0 <= target_word0 && full_check(candidate) {
                return Some(candidate);
            }
        }
        nonce += LANES as u32;
    }
    (nonce..end).find(|&n| full_check(n))
}

#[inline(always)]
unsafe fn round_constants(quad: usize) -> __m128i {
    _mm_loadu_si128(K32.as_ptr().add(4 * quad).cast())
}

/// Four SHA-256 rounds with message words `w`.
#[inline(always)]
unsafe fn rounds4(quad: usize, abef: &mut __m128i, cdgh: &mut __m128i, w: __m128i) {
    let t1 = _mm_add_epi32(w, round_constants(quad));
    *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, t1);
    let t2 = _mm_shuffle_epi32(t1, 0x0E);
    *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, t2);
}

/// The next four message words of the schedule, kept in a ring of four registers.
#[inline(always)]
unsafe fn next_words(w: &mut [__m128i; 4], i: usize) -> __m128i {
    let t1 = _mm_sha256msg1_epu32(w[i], w[(i + 1) % 4]);
    let t2 = _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4);
    w[i] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w[(i + 3) % 4]);
    w[i]
}

/// State words `a..h` into the (ABEF, CDGH) register layout the SHA instructions use.
#[inline(always)]
unsafe fn to_abef_cdgh(state: &[u32; 8]) -> (__m128i, __m128i) {
    let dcba = _mm_loadu_si128(state.as_ptr().cast());
    let hgfe = _mm_loadu_si128(state.as_ptr().add(4).cast());
    let cdab = _mm_shuffle_epi32(dcba, 0xB1);
    let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    (
        _mm_alignr_epi8(cdab, efgh, 8),
        _mm_blend_epi16(efgh, cdab, 0xF0),
    )
}

/// (ABEF, CDGH) back to state order as two registers of message words (`a..d`, `e..h`).
#[inline(always)]
unsafe fn from_abef_cdgh(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
    let feba = _mm_shuffle_epi32(abef, 0x1B);
    let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    (
        _mm_blend_epi16(feba, dchg, 0xF0),
        _mm_alignr_epi8(dchg, feba, 8),
    )
}
