//! The nonce search on x86-64 CPUs with AVX-512: sixteen nonces at once, one in each 32-bit
//! lane of a 512-bit register. No I/O.
//!
//! This module owns the AVX-512 instructions only; the rounds, what is precomputed once per
//! search and the search loop are `lanes`' (shared with the AVX2 kernel). Every rotation is
//! one instruction (`vprord`), and `Ch`, `Maj` and each three-way xor one `vpternlogd`.
use super::kernel_input::KernelInput;
use super::lanes::{self, Lanes};
use core::arch::x86_64::*;

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
pub unsafe fn search_candidates(
    input: &KernelInput,
    start: u32,
    end: u32,
    full_check: impl FnMut(u32) -> bool,
) -> Option<u32> {
    // SAFETY: the caller checked that this CPU has AVX-512F, the only instruction set the
    // `__m512i` lanes use; `lanes::search` is inlined here, compiled with it enabled.
    unsafe { lanes::search::<__m512i>(input, start, end, full_check) }
}

/// Sixteen lanes. SAFETY (every method): AVX-512F intrinsics on registers only.
impl Lanes for __m512i {
    const WIDTH: u32 = 16;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        _mm512_set1_epi32(x as i32)
    }

    #[inline(always)]
    unsafe fn nonce_words(start: u32) -> Self {
        let nonces = _mm512_add_epi32(
            _mm512_set1_epi32(start as i32),
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        );
        // A byte swap without AVX-512BW's byte shuffle: rotating left by 8 puts bytes 3 and
        // 1 where the swap wants them (bytes 0 and 2), rotating right by 8 bytes 0 and 2
        // (at 3 and 1); `vpternlogd` 0xE4 picks from the first where the mask is set.
        _mm512_ternarylogic_epi32::<0xE4>(
            _mm512_rol_epi32::<8>(nonces),
            _mm512_ror_epi32::<8>(nonces),
            _mm512_set1_epi32(0x00ff_00ff),
        )
    }

    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        _mm512_add_epi32(self, other)
    }

    #[inline(always)]
    unsafe fn big_sigma0(self) -> Self {
        _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<2>(self),
            _mm512_ror_epi32::<13>(self),
            _mm512_ror_epi32::<22>(self),
        )
    }

    #[inline(always)]
    unsafe fn big_sigma1(self) -> Self {
        _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<6>(self),
            _mm512_ror_epi32::<11>(self),
            _mm512_ror_epi32::<25>(self),
        )
    }

    #[inline(always)]
    unsafe fn small_sigma0(self) -> Self {
        _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<7>(self),
            _mm512_ror_epi32::<18>(self),
            _mm512_srli_epi32::<3>(self),
        )
    }

    #[inline(always)]
    unsafe fn small_sigma1(self) -> Self {
        _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<17>(self),
            _mm512_ror_epi32::<19>(self),
            _mm512_srli_epi32::<10>(self),
        )
    }

    /// Truth table 0xCA: `e ? f : g`.
    #[inline(always)]
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
        _mm512_ternarylogic_epi32::<0xCA>(e, f, g)
    }

    /// Truth table 0xE8: at least two of three.
    #[inline(always)]
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
        _mm512_ternarylogic_epi32::<0xE8>(a, b, c)
    }

    #[inline(always)]
    unsafe fn at_most(self, bound: Self) -> u32 {
        u32::from(_mm512_cmple_epu32_mask(self, bound))
    }
}
