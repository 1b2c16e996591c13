//! The nonce search on x86-64 CPUs with AVX2 (and without AVX-512): eight nonces at once,
//! one in each 32-bit lane of a 256-bit register. No I/O.
//!
//! This module owns the AVX2 instructions only; the rounds, what is precomputed once per
//! search and the search loop are `lanes`' (shared with the AVX-512 kernel). AVX2 has no
//! rotation and no three-input logic, so a rotation is two shifts and an or, and `Ch` and
//! `Maj` three instructions each (`Maj`'s `b ^ c` is the previous round's `a ^ b`, which
//! the compiler reuses once the rounds are unrolled).
use super::kernel_input::KernelInput;
use super::lanes::{self, Lanes};
use core::arch::x86_64::*;

/// Whether this CPU can run [`search_candidates`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Searches `start..end` and returns the first nonce whose double SHA-256 has a first
/// state word `<= input.target_word0` and passes `full_check`.
///
/// # Safety
/// The CPU must support AVX2: call only when [`available`] is true.
#[target_feature(enable = "avx2")]
pub unsafe fn search_candidates(
    input: &KernelInput,
    start: u32,
    end: u32,
    full_check: impl FnMut(u32) -> bool,
) -> Option<u32> {
    // SAFETY: the caller checked that this CPU has AVX2, the only instruction set the
    // `__m256i` lanes use; `lanes::search` is inlined here, compiled with it enabled.
    unsafe { lanes::search::<__m256i>(input, start, end, full_check) }
}

/// `x` rotated right by `$n` bits in every lane (`$m` = 32 - `$n`).
macro_rules! ror {
    ($x:expr, $n:literal, $m:literal) => {
        _mm256_or_si256(_mm256_srli_epi32::<$n>($x), _mm256_slli_epi32::<$m>($x))
    };
}

/// The xor of three vectors.
#[inline(always)]
unsafe fn xor3(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_xor_si256(x, y), z)
}

/// Eight lanes. SAFETY (every method): AVX2 intrinsics on registers only.
impl Lanes for __m256i {
    const WIDTH: u32 = 8;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        _mm256_set1_epi32(x as i32)
    }

    #[inline(always)]
    unsafe fn nonce_words(start: u32) -> Self {
        let nonces = _mm256_add_epi32(
            _mm256_set1_epi32(start as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // Reverse the bytes of each 32-bit lane.
        let swap = _mm256_setr_epi8(
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, //
            3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
        );
        _mm256_shuffle_epi8(nonces, swap)
    }

    #[inline(always)]
    unsafe fn add(self, other: Self) -> Self {
        _mm256_add_epi32(self, other)
    }

    #[inline(always)]
    unsafe fn big_sigma0(self) -> Self {
        xor3(ror!(self, 2, 30), ror!(self, 13, 19), ror!(self, 22, 10))
    }

    #[inline(always)]
    unsafe fn big_sigma1(self) -> Self {
        xor3(ror!(self, 6, 26), ror!(self, 11, 21), ror!(self, 25, 7))
    }

    #[inline(always)]
    unsafe fn small_sigma0(self) -> Self {
        xor3(
            ror!(self, 7, 25),
            ror!(self, 18, 14),
            _mm256_srli_epi32::<3>(self),
        )
    }

    #[inline(always)]
    unsafe fn small_sigma1(self) -> Self {
        xor3(
            ror!(self, 17, 15),
            ror!(self, 19, 13),
            _mm256_srli_epi32::<10>(self),
        )
    }

    /// `((f ^ g) & e) ^ g`: `f` where `e` is set, `g` elsewhere.
    #[inline(always)]
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self {
        _mm256_xor_si256(_mm256_and_si256(_mm256_xor_si256(f, g), e), g)
    }

    /// `((a ^ b) & (b ^ c)) ^ b`: `b` where `a` agrees with it, `c` where it does not.
    #[inline(always)]
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self {
        _mm256_xor_si256(
            _mm256_and_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(b, c)),
            b,
        )
    }

    /// Unsigned `x <= bound` is `max(x, bound) == bound`; one bit per lane from the sign
    /// bits of the comparison.
    #[inline(always)]
    unsafe fn at_most(self, bound: Self) -> u32 {
        let le = _mm256_cmpeq_epi32(_mm256_max_epu32(self, bound), bound);
        _mm256_movemask_ps(_mm256_castsi256_ps(le)) as u32
    }
}
