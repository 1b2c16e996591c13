//! The multi-lane nonce search: SHA-256d of many nonces at once, one per 32-bit lane of a
//! vector, written once for any lane width. No I/O.
//!
//! This module owns the arithmetic the vector kernels share: what is worked out once per
//! search because no nonce changes it ([`Shared`]), the per-nonce rounds that are left
//! ([`first_hash_word`]) and the search loop ([`search`]). A kernel module supplies the
//! vector operations by implementing [`Lanes`] (`avx512`: sixteen lanes, `avx2`: eight)
//! and calls [`search`] from its `#[target_feature]` function, where everything here is
//! inlined, so the whole loop compiles for that instruction set.
//!
//! Where the work goes, per nonce (the portable path does 128 rounds and 96 message words):
//!
//! - Inner hash (the header's tail chunk; the nonce is its word 12, words 0..11 and 13..15
//!   are fixed for the search): rounds 0..11 are done once. Of round 12 only the nonce is
//!   left to add (to `a` and `e`). Rounds 13..15 find `h + K + W` precomputed, and rounds
//!   16, 17, 18, 20, 22 and 24 `K + W`, because those message words do not depend on the
//!   nonce. Of message words 19..40 only the terms that depend on the nonce are computed;
//!   the sum of the others is precomputed per word.
//! - Outer hash (of the 32-byte inner digest): its state starts at the fixed IV and its
//!   words 8..15 are fixed padding, so round 0 is two additions, rounds 1..3 and 8..15 add
//!   a compile-time `h + K` or `K + W`, and message words 16..31 skip the padding's terms
//!   (zeros, or compile-time constants).
//! - Only the first word of the final state is compared (the target's most significant),
//!   so the last round computes `a` alone; a lane that passes is checked in full by the
//!   caller.
//!
//! Mining is not consensus: a wrong answer here would only produce a block that every node
//! (this one included) rejects, because validation hashes with the plain `sha2` path. Tests
//! check every kernel against the portable search, and this module's arithmetic on single
//! lanes against `sha2` on random inputs.
use super::kernel_input::{KernelInput, IV, K32};

/// The tail chunk's word that holds the nonce (header bytes 112..116).
const NONCE_WORD: usize = 12;

/// A vector of 32-bit lanes, one nonce per lane, and the operations the search needs.
///
/// Implementations mark every method `#[inline(always)]`, so that it is compiled inside
/// the kernel's `#[target_feature]` function that calls [`search`].
///
/// # Safety
/// Every method may use instructions of the implementation's instruction set: call them only
/// on a CPU that has it (that is, from a kernel entered after its runtime check).
pub(super) trait Lanes: Copy {
    /// Lanes per vector: nonces per step.
    const WIDTH: u32;
    /// `x` in every lane.
    unsafe fn splat(x: u32) -> Self;
    /// Lane `i` holds nonce `start + i` byte-swapped: its big-endian tail word (the header
    /// stores the nonce little-endian). `start + WIDTH - 1` must not overflow.
    unsafe fn nonce_words(start: u32) -> Self;
    /// Lane-wise wrapping addition.
    unsafe fn add(self, other: Self) -> Self;
    /// Σ0(x) = (x ⋙ 2) ⊕ (x ⋙ 13) ⊕ (x ⋙ 22).
    unsafe fn big_sigma0(self) -> Self;
    /// Σ1(x) = (x ⋙ 6) ⊕ (x ⋙ 11) ⊕ (x ⋙ 25).
    unsafe fn big_sigma1(self) -> Self;
    /// σ0(x) = (x ⋙ 7) ⊕ (x ⋙ 18) ⊕ (x ≫ 3).
    unsafe fn small_sigma0(self) -> Self;
    /// σ1(x) = (x ⋙ 17) ⊕ (x ⋙ 19) ⊕ (x ≫ 10).
    unsafe fn small_sigma1(self) -> Self;
    /// Ch(e, f, g) = (e ∧ f) ⊕ (¬e ∧ g).
    unsafe fn ch(e: Self, f: Self, g: Self) -> Self;
    /// Maj(a, b, c) = (a ∧ b) ⊕ (a ∧ c) ⊕ (b ∧ c).
    unsafe fn maj(a: Self, b: Self, c: Self) -> Self;
    /// A mask with bit `i` set where lane `i` is at most `bound` (unsigned).
    unsafe fn at_most(self, bound: Self) -> u32;
}

/// Expands `$body` once per listed number, with `$t` a `usize` constant of that value: the
/// rounds are unrolled in the source, so every message word and state word is a register
/// (or a fixed stack slot) and every test on `$t` is settled at compile time.
macro_rules! each {
    ($t:ident in [$($n:literal)+] $body:block) => {
        $({
            const $t: usize = $n;
            $body
        })+
    };
}

/// Which message words of the inner hash depend on the nonce: word 12, and every word of
/// the schedule with a term that does (words 16, 17, 18, 20, 22 and 24 do not).
const INNER_VARIES: [bool; 64] = {
    let mut varies = [false; 64];
    varies[NONCE_WORD] = true;
    let mut t = 16;
    while t < 64 {
        varies[t] = varies[t - 2] || varies[t - 7] || varies[t - 15] || varies[t - 16];
        t += 1;
    }
    varies
};

/// The outer hash's message words 8..15: the padding of a 32-byte message (the 0x80
/// terminator, zeros, and the length in bits). Words 0..7 are the inner digest.
const OUTER_PADDING: [u32; 16] = {
    let mut words = [0u32; 16];
    words[8] = 0x8000_0000;
    words[15] = 256;
    words
};

/// Which message words of the outer hash depend on the nonce: the digest's (0..7) and every
/// word of the schedule (each has a digest term).
const OUTER_VARIES: [bool; 64] = {
    let mut varies = [true; 64];
    let mut i = 8;
    while i < 16 {
        varies[i] = false;
        i += 1;
    }
    varies
};

/// The outer hash after round 0, with its message word (the digest's first word) left out:
/// the state starts at the IV, so adding that word to `a` and `e` gives the real state.
const OUTER_STATE1: [u32; 8] = {
    let [a, b, c, d, e, f, g, h] = IV;
    let t1 = h
        .wrapping_add(big_sigma1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(K32[0]);
    let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
    [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g]
};

/// `h + K[t]` of outer rounds `t` = 1..3, whose `h` is still a word of the IV (indexed by
/// round, like the next two; other entries unused).
const OUTER_H_PLUS_K: [u32; 64] = {
    let mut sums = [0u32; 64];
    let mut t = 1;
    while t < 4 {
        sums[t] = OUTER_STATE1[8 - t].wrapping_add(K32[t]);
        t += 1;
    }
    sums
};

/// `K[t] + W[t]` of outer rounds 8..15, whose message words are padding.
const OUTER_K_PLUS_W: [u32; 64] = {
    let mut sums = [0u32; 64];
    let mut t = 8;
    while t < 16 {
        sums[t] = K32[t].wrapping_add(OUTER_PADDING[t]);
        t += 1;
    }
    sums
};

/// The sum of message word `t`'s schedule terms
/// (`σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]`) on the words `varies` marks as the same
/// for every nonce; `w` holds those words (the others are never read).
const fn constant_terms(w: &[u32], varies: &[bool; 64], t: usize) -> u32 {
    let mut part = 0u32;
    if !varies[t - 2] {
        part = part.wrapping_add(small_sigma1(w[t - 2]));
    }
    if !varies[t - 7] {
        part = part.wrapping_add(w[t - 7]);
    }
    if !varies[t - 15] {
        part = part.wrapping_add(small_sigma0(w[t - 15]));
    }
    if !varies[t - 16] {
        part = part.wrapping_add(w[t - 16]);
    }
    part
}

/// For each outer message word 16..31, the sum of its schedule terms that are padding
/// words (most are zero).
const OUTER_FIXED_PART: [u32; 64] = {
    let mut parts = [0u32; 64];
    let mut t = 16;
    while t < 32 {
        parts[t] = constant_terms(&OUTER_PADDING, &OUTER_VARIES, t);
        t += 1;
    }
    parts
};

/// What every nonce of one search shares, worked out once per search (see the module
/// docs): scalars in [`Shared::new`], then each in every lane of the kernel's vector.
pub(super) struct Shared<T> {
    /// The state after the header's first chunk, added to the inner hash's final state.
    midstate: [T; 8],
    /// The inner state after round 12 with the nonce word left out: adding the nonce word
    /// to words 0 (`a`) and 4 (`e`) gives the real state (the rest is the same for every
    /// nonce: state words after rounds 0..11).
    state13: [T; 8],
    /// `h + K[t] + W[t]` of rounds `t` = 13..15: their `h` is a word of the state before the
    /// nonce, and their message words (the padding and the length) are fixed. Indexed by
    /// round, like the next two; other entries unused.
    h_k_w: [T; 64],
    /// `K[t] + W[t]` of the rounds whose message word does not depend on the nonce (16, 17,
    /// 18, 20, 22, 24).
    k_w: [T; 64],
    /// For each message word 19..40 that depends on the nonce, the sum of its schedule
    /// terms that do not (the terms on words before 12, 13..15, 16..18, 20, 22 and 24).
    fixed_part: [T; 64],
}

impl Shared<u32> {
    /// The shared work for searching nonces of one header (time included).
    pub(super) fn new(midstate: &[u32; 8], tail: &[u32; 16]) -> Shared<u32> {
        // Rounds 0..11 use tail words 0..11 only.
        let mut pre = *midstate;
        for t in 0..NONCE_WORD {
            let h_k_w = pre[7].wrapping_add(K32[t]).wrapping_add(tail[t]);
            scalar_round(&mut pre, h_k_w);
        }
        // Round 12 without its message word (the nonce): T1 less W[12], and T2.
        let [a, b, c, d, e, f, g, h] = pre;
        let t1 = h
            .wrapping_add(big_sigma1(e))
            .wrapping_add(ch(e, f, g))
            .wrapping_add(K32[NONCE_WORD]);
        let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
        let state13 = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        // Rounds 13, 14, 15 take `h` from state13's words 7, 6, 5.
        let mut h_k_w = [0u32; 64];
        for t in 13..16 {
            h_k_w[t] = state13[20 - t].wrapping_add(K32[t]).wrapping_add(tail[t]);
        }

        // The message words that do not depend on the nonce, and for those that do the
        // sum of their terms that do not.
        let mut w = [0u32; 41];
        w[..16].copy_from_slice(tail);
        let mut k_w = [0u32; 64];
        let mut fixed_part = [0u32; 64];
        for t in 16..41 {
            let part = constant_terms(&w, &INNER_VARIES, t);
            if INNER_VARIES[t] {
                fixed_part[t] = part;
            } else {
                w[t] = part;
                k_w[t] = K32[t].wrapping_add(part);
            }
        }
        Shared {
            midstate: *midstate,
            state13,
            h_k_w,
            k_w,
            fixed_part,
        }
    }

    /// Each word in every lane of `V`.
    ///
    /// # Safety
    /// As [`Lanes`].
    #[inline(always)]
    unsafe fn splat<V: Lanes>(&self) -> Shared<V> {
        let splat = |x: u32| V::splat(x);
        Shared {
            midstate: self.midstate.map(splat),
            state13: self.state13.map(splat),
            h_k_w: self.h_k_w.map(splat),
            k_w: self.k_w.map(splat),
            fixed_part: self.fixed_part.map(splat),
        }
    }
}

/// Searches `start..end` and returns the first nonce whose double SHA-256 has a first
/// state word `<= input.target_word0` and passes `full_check`, `V::WIDTH` nonces per step
/// (the last few that do not fill a step go to `full_check` directly).
///
/// # Safety
/// As [`Lanes`]: the CPU must run `V`'s instructions.
#[inline(always)]
pub(super) unsafe fn search<V: Lanes>(
    input: &KernelInput,
    start: u32,
    end: u32,
    mut full_check: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let shared = Shared::new(&input.midstate, &input.tail).splat::<V>();
    let target = V::splat(input.target_word0);
    let mut nonce = start;
    while end - nonce >= V::WIDTH {
        let word0 = first_hash_word(&shared, V::nonce_words(nonce));
        let mut hits = word0.at_most(target);
        while hits != 0 {
            let candidate = nonce + hits.trailing_zeros();
            if full_check(candidate) {
                return Some(candidate);
            }
            hits &= hits - 1;
        }
        nonce += V::WIDTH;
    }
    (nonce..end).find(|&n| full_check(n))
}

/// The first word of the double SHA-256 of the header in every lane, given each lane's
/// nonce as a big-endian word.
///
/// # Safety
/// As [`Lanes`].
#[inline(always)]
pub(super) unsafe fn first_hash_word<V: Lanes>(shared: &Shared<V>, nonce_word: V) -> V {
    // The inner hash: round 12 (adding the nonce word), then rounds 13..63. Message words
    // that do not depend on the nonce are never written or read here.
    let mut w = [nonce_word; 64];
    let mut s = shared.state13;
    s[0] = s[0].add(nonce_word);
    s[4] = s[4].add(nonce_word);
    each!(T in [
        13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38
        39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
    ] {
        let h_k_w = if T <= 15 {
            shared.h_k_w[T]
        } else if !INNER_VARIES[T] {
            s[7].add(shared.k_w[T])
        } else {
            let fixed = if T <= 40 { Some(shared.fixed_part[T]) } else { None };
            w[T] = message_word(&w, T, &INNER_VARIES, fixed);
            s[7].add(w[T].add(V::splat(K32[T])))
        };
        round(&mut s, h_k_w);
    });

    // The outer hash of the inner digest: round 0 on the IV (adding the digest's first
    // word), then rounds 1..62; message words 8..15 (padding) are never written or read.
    let mut w = [nonce_word; 64];
    let digest: [V; 8] = core::array::from_fn(|i| s[i].add(shared.midstate[i]));
    w[..8].copy_from_slice(&digest);
    let mut s = OUTER_STATE1.map(|x| V::splat(x));
    s[0] = s[0].add(w[0]);
    s[4] = s[4].add(w[0]);
    each!(T in [
        1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30
        31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57
        58 59 60 61 62
    ] {
        let h_k_w = if T <= 3 {
            w[T].add(V::splat(OUTER_H_PLUS_K[T]))
        } else if !OUTER_VARIES[T] {
            s[7].add(V::splat(OUTER_K_PLUS_W[T]))
        } else {
            if T >= 16 {
                let fixed = match T {
                    16..=31 if OUTER_FIXED_PART[T] != 0 => Some(V::splat(OUTER_FIXED_PART[T])),
                    _ => None,
                };
                w[T] = message_word(&w, T, &OUTER_VARIES, fixed);
            }
            s[7].add(w[T].add(V::splat(K32[T])))
        };
        round(&mut s, h_k_w);
    });
    // Round 63, for `a` alone (the state word compared): T1 + T2.
    w[63] = message_word(&w, 63, &OUTER_VARIES, None);
    let (t1, t2) = round_terms(&s, s[7].add(w[63].add(V::splat(K32[63]))));
    t1.add(t2).add(V::splat(IV[0]))
}

/// Message word `t` (16..63) of the schedule
/// `W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]`, adding to `fixed` (the sum of the
/// terms on words that do not vary per nonce, precomputed; `None` when there are none or
/// they sum to zero) only the terms on words that do.
///
/// # Safety
/// As [`Lanes`].
#[inline(always)]
unsafe fn message_word<V: Lanes>(
    w: &[V; 64],
    t: usize,
    varies: &[bool; 64],
    fixed: Option<V>,
) -> V {
    let mut sum = fixed;
    let mut add = |term: V| {
        sum = Some(match sum {
            Some(sum) => sum.add(term),
            None => term,
        })
    };
    if varies[t - 2] {
        add(w[t - 2].small_sigma1());
    }
    if varies[t - 7] {
        add(w[t - 7]);
    }
    if varies[t - 15] {
        add(w[t - 15].small_sigma0());
    }
    if varies[t - 16] {
        add(w[t - 16]);
    }
    // Every word this is asked for has at least one varying term.
    sum.unwrap_or_else(|| unreachable!("message word {t} does not vary"))
}

/// T1 and T2 of a round on state `s`, given `h_k_w` = h + K[t] + W[t].
///
/// # Safety
/// As [`Lanes`].
#[inline(always)]
unsafe fn round_terms<V: Lanes>(s: &[V; 8], h_k_w: V) -> (V, V) {
    let [a, b, c, _, e, f, g, _] = *s;
    let t1 = h_k_w.add(V::ch(e, f, g)).add(e.big_sigma1());
    let t2 = a.big_sigma0().add(V::maj(a, b, c));
    (t1, t2)
}

/// One SHA-256 round, given `h_k_w` = h + K[t] + W[t] (summed by the caller, which knows
/// which of the three are fixed).
///
/// # Safety
/// As [`Lanes`].
#[inline(always)]
unsafe fn round<V: Lanes>(s: &mut [V; 8], h_k_w: V) {
    let (t1, t2) = round_terms(s, h_k_w);
    let [a, b, c, d, e, f, g, _] = *s;
    *s = [t1.add(t2), a, b, c, d.add(t1), e, f, g];
}

/// One SHA-256 round on one state (for the rounds every nonce shares).
fn scalar_round(s: &mut [u32; 8], h_k_w: u32) {
    let [a, b, c, d, e, f, g, _] = *s;
    let t1 = h_k_w.wrapping_add(ch(e, f, g)).wrapping_add(big_sigma1(e));
    let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
    *s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

const fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

const fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

const fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

const fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

const fn ch(e: u32, f: u32, g: u32) -> u32 {
    (e & f) ^ (!e & g)
}

const fn maj(a: u32, b: u32, c: u32) -> u32 {
    (a & b) ^ (a & c) ^ (b & c)
}

/// One lane in a plain `u32`: the same arithmetic on any CPU, for checking it against
/// `sha2` without vector instructions.
#[cfg(test)]
impl Lanes for u32 {
    const WIDTH: u32 = 1;
    unsafe fn splat(x: u32) -> u32 {
        x
    }
    unsafe fn nonce_words(start: u32) -> u32 {
        start.swap_bytes()
    }
    unsafe fn add(self, other: u32) -> u32 {
        self.wrapping_add(other)
    }
    unsafe fn big_sigma0(self) -> u32 {
        big_sigma0(self)
    }
    unsafe fn big_sigma1(self) -> u32 {
        big_sigma1(self)
    }
    unsafe fn small_sigma0(self) -> u32 {
        small_sigma0(self)
    }
    unsafe fn small_sigma1(self) -> u32 {
        small_sigma1(self)
    }
    unsafe fn ch(e: u32, f: u32, g: u32) -> u32 {
        ch(e, f, g)
    }
    unsafe fn maj(a: u32, b: u32, c: u32) -> u32 {
        maj(a, b, c)
    }
    unsafe fn at_most(self, bound: u32) -> u32 {
        u32::from(self <= bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::block_api::compress256;

    /// The first word of SHA-256(SHA-256 compression of `tail` on `midstate` with the
    /// nonce), by `sha2`.
    fn reference(midstate: &[u32; 8], tail: &[u32; 16], nonce: u32) -> u32 {
        let mut block = [0u8; 64];
        for (i, word) in tail.iter().enumerate() {
            block[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        block[NONCE_WORD * 4..NONCE_WORD * 4 + 4].copy_from_slice(&nonce.to_le_bytes());
        let mut inner = *midstate;
        compress256(&mut inner, &[block]);
        let mut outer = [0u8; 64];
        for (i, word) in inner.iter().enumerate() {
            outer[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        for (i, word) in OUTER_PADDING.iter().enumerate().skip(8) {
            outer[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        let mut state = IV;
        compress256(&mut state, &[outer]);
        state[0]
    }

    #[test]
    fn the_nonce_word_and_the_padding_are_where_the_header_puts_them() {
        use crate::core::primitives::header::{HEADER_SIZE, NONCE_OFFSET};
        assert_eq!(NONCE_OFFSET - 64, NONCE_WORD * 4);
        assert_eq!(NONCE_OFFSET + 4, HEADER_SIZE);
        let varying: Vec<usize> = (16..25).filter(|&t| INNER_VARIES[t]).collect();
        assert_eq!(varying, [19, 21, 23]);
        assert!((25..64).all(|t| INNER_VARIES[t]));
    }

    /// The precomputation and the per-nonce rounds, on one lane, against `sha2`: random
    /// midstates and tails (every word random, not only the header's, so that no term
    /// the precomputation folds away is zero by luck) and random nonces.
    #[test]
    fn one_lane_matches_sha2_on_random_inputs() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u32
        };
        for _ in 0..200 {
            let midstate: [u32; 8] = core::array::from_fn(|_| next());
            let tail: [u32; 16] = core::array::from_fn(|_| next());
            // SAFETY: the `u32` lanes are plain integer arithmetic.
            let shared = unsafe { Shared::new(&midstate, &tail).splat::<u32>() };
            for _ in 0..20 {
                let nonce = next();
                // SAFETY: as above.
                let word0 = unsafe { first_hash_word(&shared, u32::nonce_words(nonce)) };
                assert_eq!(word0, reference(&midstate, &tail, nonce));
            }
        }
    }

    /// The search on one lane finds what `sha2` finds.
    #[test]
    fn one_lane_search_finds_the_first_nonce_under_the_target() {
        let midstate = [1, 2, 3, 4, 5, 6, 7, 8];
        let tail: [u32; 16] = core::array::from_fn(|i| 0x0101_0101 * i as u32);
        let input = KernelInput {
            midstate,
            tail,
            target_word0: 0x00ff_ffff,
        };
        let expected = (1000..5000).find(|&n| reference(&midstate, &tail, n) <= 0x00ff_ffff);
        assert!(expected.is_some());
        // SAFETY: the `u32` lanes are plain integer arithmetic.
        let found = unsafe { search::<u32>(&input, 1000, 5000, |_| true) };
        assert_eq!(found, expected);
    }
}
