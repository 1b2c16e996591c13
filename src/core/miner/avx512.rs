//! The nonce search on x86-64 CPUs with AVX-512: sixteen nonces at once, one in each 32-bit
//! lane of a 512-bit register. No I/O.
//!
//! Plain SHA-256 arithmetic on vectors: every rotation is one instruction (`vprord`), and
//! `Ch`, `Maj` and each three-way xor one `vpternlogd`. What does not depend on the nonce is
//! done once per call, not once per nonce: the 12 tail-chunk rounds before the nonce word
//! (words 0..11 hold the end of the state root, the time and the bits) and message words
//! 16..18 of that chunk. Only the first state word is compared before a full check.
//!
//! Mining is not consensus: a wrong answer here would only produce a block that every node
//! (this one included) rejects, because validation hashes with the plain `sha2` path. Tests
//! check every result against the portable search.
use super::search::{KernelInput, IV};
use super::sha_ni::K32;
use core::arch::x86_64::*;

/// Nonces in flight per loop iteration.
const LANES: u32 = 16;

/// Whether this CPU can run [`search_candidates`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// Searches `start..end` and returns the first nonce whose double SHA-256 has a first
/// state word `<= input.target_word0` and passes `full_check`.
///
/// # Safety
/// The CPU must support AVX-512F: call only when [`available`] is true.
#[target_feature(enable = "avx512f")]
// Rounds index message words and states side by side; index loops say that best.
#[allow(clippy::needless_range_loop)]
pub unsafe fn search_candidates(
    input: &KernelInput,
    start: u32,
    end: u32,
    mut full_check: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let (midstate, tail) = (&input.midstate, &input.tail);
    // SAFETY (whole body): AVX-512F intrinsics on registers only, and one unaligned load
    // (`_mm512_loadu_si512`) from a 16-word array.
    //
    // Rounds 0..11 and message words 16..18 of the tail chunk: the same for every nonce.
    let mut pre = *midstate;
    for (t, &word) in tail.iter().enumerate().take(12) {
        scalar_round(&mut pre, K32[t], word);
    }
    let mut fixed = [0u32; 3];
    for i in 0..fixed.len() {
        let t = 16 + i;
        // Word 18 uses word 16, computed just before.
        let two_back = if t >= 18 { fixed[t - 18] } else { tail[t - 2] };
        fixed[i] = small_sigma1(two_back)
            .wrapping_add(tail[t - 7])
            .wrapping_add(small_sigma0(tail[t - 15]))
            .wrapping_add(tail[t - 16]);
    }
    let broadcast = |x: u32| _mm512_set1_epi32(x as i32);
    let pre_state: [__m512i; 8] = pre.map(broadcast);
    let mid: [__m512i; 8] = midstate.map(broadcast);
    let iv_state: [__m512i; 8] = IV.map(broadcast);
    let tail_words: [__m512i; 16] = tail.map(broadcast);
    let fixed_words: [__m512i; 3] = fixed.map(broadcast);
    let target = broadcast(input.target_word0);

    let mut nonce = start;
    while end - nonce >= LANES {
        let mut nonces = [0u32; LANES as usize];
        for (lane, word) in nonces.iter_mut().enumerate() {
            *word = (nonce + lane as u32).swap_bytes();
        }
        // The inner hash: rounds 12..63 of the tail chunk.
        let mut w = tail_words;
        w[12] = _mm512_loadu_si512(nonces.as_ptr().cast());
        let mut s = pre_state;
        for t in 12..64 {
            if t >= 16 {
                w[t % 16] = if t < 19 {
                    fixed_words[t - 16]
                } else {
                    schedule(&w, t)
                };
            }
            round(&mut s, K32[t], w[t % 16]);
        }
        // The outer hash of the 32-byte inner digest.
        let mut w = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            w[i] = _mm512_add_epi32(s[i], mid[i]);
        }
        w[8] = broadcast(0x8000_0000);
        w[15] = broadcast(256);
        let mut s = iv_state;
        for t in 0..64 {
            if t >= 16 {
                w[t % 16] = schedule(&w, t);
            }
            round(&mut s, K32[t], w[t % 16]);
        }
        let word0 = _mm512_add_epi32(s[0], iv_state[0]);
        let mut hits = _mm512_cmple_epu32_mask(word0, target);
        while hits != 0 {
            let candidate = nonce + hits.trailing_zeros();
            if full_check(candidate) {
                return Some(candidate);
            }
            hits &= hits - 1;
        }
        nonce += LANES;
    }
    (nonce..end).find(|&n| full_check(n))
}

/// Message word `t` (16..63) from the 16 before it, kept in a ring.
#[inline(always)]
unsafe fn schedule(w: &[__m512i; 16], t: usize) -> __m512i {
    let x = w[(t - 15) % 16];
    let sigma0 = _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<7>(x),
        _mm512_ror_epi32::<18>(x),
        _mm512_srli_epi32::<3>(x),
    );
    let y = w[(t - 2) % 16];
    let sigma1 = _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<17>(y),
        _mm512_ror_epi32::<19>(y),
        _mm512_srli_epi32::<10>(y),
    );
    _mm512_add_epi32(
        _mm512_add_epi32(sigma0, sigma1),
        _mm512_add_epi32(w[(t - 7) % 16], w[(t - 16) % 16]),
    )
}

/// One SHA-256 round on sixteen states.
#[inline(always)]
unsafe fn round(s: &mut [__m512i; 8], k: u32, w: __m512i) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<6>(e),
        _mm512_ror_epi32::<11>(e),
        _mm512_ror_epi32::<25>(e),
    );
    // Ch(e, f, g) = (e & f) ^ (!e & g): truth table 0xCA.
    let ch = _mm512_ternarylogic_epi32::<0xCA>(e, f, g);
    let t1 = _mm512_add_epi32(
        _mm512_add_epi32(h, big_sigma1),
        _mm512_add_epi32(ch, _mm512_add_epi32(w, _mm512_set1_epi32(k as i32))),
    );
    let big_sigma0 = _mm512_ternarylogic_epi32::<0x96>(
        _mm512_ror_epi32::<2>(a),
        _mm512_ror_epi32::<13>(a),
        _mm512_ror_epi32::<22>(a),
    );
    // Maj(a, b, c): truth table 0xE8.
    let maj = _mm512_ternarylogic_epi32::<0xE8>(a, b, c);
    let t2 = _mm512_add_epi32(big_sigma0, maj);
    *s = [
        _mm512_add_epi32(t1, t2),
        a,
        b,
        c,
        _mm512_add_epi32(d, t1),
        e,
        f,
        g,
    ];
}

/// One SHA-256 round on one state (for the rounds every nonce shares).
fn scalar_round(s: &mut [u32; 8], k: u32, w: u32) {
    let [a, b, c, d, e, f, g, h] = *s;
    let big_sigma1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
    let ch = (e & f) ^ (!e & g);
    let t1 = h
        .wrapping_add(big_sigma1)
        .wrapping_add(ch)
        .wrapping_add(k)
        .wrapping_add(w);
    let big_sigma0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
    let maj = (a & b) ^ (a & c) ^ (b & c);
    let t2 = big_sigma0.wrapping_add(maj);
    *s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}
