//! The aserti3-2d difficulty algorithm (Bitcoin Cash, November 2020).
//!
//! This module owns [`next_target`], the integer-exact port of Bitcoin Cash Node's
//! `CalculateASERT`: the next block's target is the anchor block's target scaled by
//! `2^((time_diff - ideal_block_time * (height_diff + 1)) / half_life)`, with the power of two
//! approximated by a fixed-point cubic polynomial. Every intermediate is an `i128`, a `u128` or
//! a 512-bit integer, so no input can overflow, panic or shift by an out-of-range amount.
//!
//! Pure arithmetic: no I/O, no clock, no randomness.

use ruint::aliases::{U256, U512};

use super::target::Target;

/// Chain parameters the ASERT rule depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsertParams {
    /// Target spacing between blocks, in seconds (600 on Bitcoin Cash).
    pub ideal_block_time: i64,
    /// Seconds of schedule drift that double or halve the target (172 800 on Bitcoin Cash).
    /// Must be positive; the chain spec guarantees it.
    pub half_life: i64,
    /// The easiest allowed target; results are clamped to it. Must be non-zero and is expected
    /// to be at least the anchor target.
    pub pow_limit: Target,
}

/// The schedule clock of the anchor (genesis): one ideal block time after the anchor's
/// parent, by definition, so that blocks on schedule keep the anchor's target.
pub fn genesis_asert_clock(params: &AsertParams) -> i64 {
    params.ideal_block_time
}

/// The most schedule time one block credits: the ideal block time plus a quarter of the
/// half-life. A block that took longer eases its successor by at most 2^(1/4) (about 19%),
/// so time in which nobody mined cannot be banked into a burst of easy blocks, while a chain
/// that lost hash power still halves its difficulty every 4 slow blocks.
pub fn max_interval_credit(params: &AsertParams) -> i64 {
    params.ideal_block_time.saturating_add(params.half_life / 4)
}

/// The schedule clock of a block with time `time` whose parent had time `parent_time` and
/// clock `parent_clock`: the parent's clock plus the interval, capped above at
/// [`max_interval_credit`]. A negative interval (allowed by the median-time rule) counts in
/// full, so the clock never runs ahead of the timestamps: `clock(b) − clock(genesis) ≤
/// b.time − genesis.time`, and timestamps are bounded by the median-time and future-drift
/// rules.
pub fn asert_clock_after(
    parent_clock: i64,
    parent_time: u32,
    time: u32,
    params: &AsertParams,
) -> i64 {
    let interval = i64::from(time) - i64::from(parent_time);
    parent_clock.saturating_add(interval.min(max_interval_credit(params)))
}

/// Fixed-point scale of the exponent: 16 fractional bits.
const RADIX_BITS: u32 = 16;

/// Computes the target required of the block after a parent, relative to the ASERT anchor.
///
/// * `anchor_target`: the anchor block's target (BCHN asserts `1 <= anchor <= pow_limit`).
/// * `time_diff`: the parent block's time minus the time of the anchor's *parent*.
/// * `height_diff`: the parent block's height minus the anchor's height (BCHN asserts it is
///   not negative; negative values are computed by the same formula).
///
/// The result lies in `[1, pow_limit]` whenever `pow_limit` is non-zero. Arithmetic matches
/// BCHN bit for bit for every input BCHN accepts, except that an easy `pow_limit` (such as
/// `0x207fffff`) does not make `anchor_target * factor` wrap, since it is computed in 512 bits.
/// Inputs too far from schedule for the exponent to be represented clamp to `pow_limit`
/// (blocks far too slow) or to 1 (far too fast). If `half_life` is not positive, which a
/// valid chain spec rules out, the rule cannot be evaluated and `pow_limit` is returned.
pub fn next_target(
    anchor_target: &Target,
    time_diff: i64,
    height_diff: i64,
    params: &AsertParams,
) -> Target {
    let pow_limit = params.pow_limit;
    if params.half_life <= 0 {
        return pow_limit;
    }

    // |ideal * (height + 1)| <= 2^63 * (2^63 + 1) < 2^127 - 2^63, so neither step can overflow.
    let schedule_drift =
        i128::from(time_diff) - i128::from(params.ideal_block_time) * (i128::from(height_diff) + 1);
    let Some(scaled) = schedule_drift.checked_mul(1 << RADIX_BITS) else {
        // |drift| > 2^111 and half_life < 2^63: the exponent's integer part exceeds 2^48.
        return if schedule_drift > 0 {
            pow_limit
        } else {
            clamp(U512::ZERO, pow_limit)
        };
    };
    // Truncating division, as C++ `/` does; half_life > 0 so it cannot overflow.
    let exponent = scaled / i128::from(params.half_life);

    // Floor (arithmetic shift) for the integer part, low 16 bits for the fraction.
    let shifts = (exponent >> RADIX_BITS) - i128::from(RADIX_BITS);
    let frac = u128::from(exponent as u16);

    // 65536 * 2^(frac / 65536), approximated; the polynomial is < 2^64 for every u16 `frac`.
    let polynomial = 195_766_423_245_049 * frac
        + 971_821_376 * frac * frac
        + 5_127 * frac * frac * frac
        + (1 << 47);
    let factor = (1u128 << RADIX_BITS) + (polynomial >> 48);

    // anchor < 2^256 and factor < 2^17, so the product fits easily in 512 bits.
    let product = widen(anchor_target.as_u256()) * U512::from(factor);

    let next = if shifts <= 0 {
        match usize::try_from(shifts.unsigned_abs()) {
            Ok(right) if right < 512 => product >> right,
            _ => U512::ZERO,
        }
    } else {
        // `product` is non-zero unless the anchor is zero; any result of 2^256 or more is
        // above every pow_limit, exactly as BCHN's overflow check concludes.
        if product.is_zero() {
            U512::ZERO
        } else if (product.bit_len() as i128) + shifts > 256 {
            return pow_limit;
        } else {
            // shifts < 256 here, so the cast is lossless and the shift keeps every bit.
            product << (shifts as usize)
        }
    };
    clamp(next, pow_limit)
}

/// Applies BCHN's final clamp: zero becomes 1, anything above `pow_limit` becomes `pow_limit`.
fn clamp(next: U512, pow_limit: Target) -> Target {
    if next.is_zero() {
        Target::from_u256(U256::from(1u8))
    } else if next > widen(pow_limit.as_u256()) {
        pow_limit
    } else {
        // next <= pow_limit < 2^256, so the high limbs are zero.
        Target::from_u256(
            U256::checked_from_limbs_slice(next.as_limbs())
                .expect("value at most pow_limit fits in 256 bits"),
        )
    }
}

/// Zero-extends a 256-bit integer to 512 bits.
fn widen(value: U256) -> U512 {
    let mut limbs = [0u64; 8];
    limbs[..4].copy_from_slice(value.as_limbs());
    U512::from_limbs(limbs)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the tests read the official vector files
mod tests {
    use super::*;
    use crate::core::consensus::target::CompactTarget;
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// The official vectors, copied into the repository from the project's shared test data (their
    /// sources are named in its README).
    const VECTOR_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/asert");

    fn bch_params() -> AsertParams {
        AsertParams {
            ideal_block_time: 600,
            half_life: 172_800,
            pow_limit: Target::from_compact(CompactTarget::from_consensus(0x1d00ffff))
                .expect("0x1d00ffff is valid"),
        }
    }

    fn read_vector(name: &str) -> String {
        let path = PathBuf::from(VECTOR_DIR).join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("missing ASERT test vector {}: {e}", path.display()))
    }

    fn parse_hex_u32(s: &str, context: &str) -> u32 {
        let digits = s
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("{context}: {s:?} lacks 0x"));
        u32::from_str_radix(digits, 16).unwrap_or_else(|e| panic!("{context}: {s:?}: {e}"))
    }

    fn parse_hex_u256(s: &str, context: &str) -> U256 {
        let digits = s
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("{context}: {s:?} lacks 0x"));
        U256::from_str_radix(digits, 16).unwrap_or_else(|e| panic!("{context}: {s:?}: {e}"))
    }

    /// Checks every data line of one official run file; returns the number of lines checked.
    fn check_run_file(name: &str) -> usize {
        let text = read_vector(name);
        let params = bch_params();
        let mut anchor_height: Option<u128> = None;
        let mut anchor_parent_time: Option<u128> = None;
        let mut anchor_bits: Option<u32> = None;
        let mut iterations: Option<usize> = None;
        let mut checked = 0usize;

        for (line_no, line) in text.lines().enumerate() {
            let context = format!("{name} line {}", line_no + 1);
            if let Some(header) = line.strip_prefix("##") {
                let Some((key, value)) = header.split_once(':') else {
                    panic!("{context}: malformed header {line:?}");
                };
                let value = value.trim();
                match key.trim() {
                    "anchor height" => anchor_height = Some(value.parse().expect("anchor height")),
                    "anchor ancestor time" | "anchor parent time" => {
                        anchor_parent_time = Some(value.parse().expect("anchor parent time"))
                    }
                    "anchor nBits" => anchor_bits = Some(parse_hex_u32(value, &context)),
                    "iterations" => iterations = Some(value.parse().expect("iterations")),
                    _ => {}
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }

            let fields: Vec<&str> = line.split(' ').collect();
            let [iteration, height, time, expected] = fields[..] else {
                panic!("{context}: expected 4 fields in {line:?}");
            };
            let context = format!("{name} iteration {iteration}");
            let height: u128 = height.parse().expect("height");
            let time: u128 = time.parse().expect("time");
            let expected = parse_hex_u32(expected, &context);

            let anchor_height = anchor_height.unwrap_or_else(|| panic!("{name}: no anchor height"));
            let anchor_time =
                anchor_parent_time.unwrap_or_else(|| panic!("{name}: no anchor parent time"));
            let bits = anchor_bits.unwrap_or_else(|| panic!("{name}: no anchor nBits"));
            let anchor_target = Target::from_compact(CompactTarget::from_consensus(bits))
                .unwrap_or_else(|e| panic!("{context}: anchor: {e}"));

            let height_diff = i64::try_from(height as i128 - anchor_height as i128)
                .unwrap_or_else(|e| panic!("{context}: height diff: {e}"));
            let time_diff = i64::try_from(time as i128 - anchor_time as i128)
                .unwrap_or_else(|e| panic!("{context}: time diff: {e}"));

            let got = next_target(&anchor_target, time_diff, height_diff, &params).to_compact();
            assert_eq!(
                got,
                CompactTarget::from_consensus(expected),
                "{context}: height {height}, time {time}: got {got}, expected {expected:#010x}"
            );
            checked += 1;
        }
        let iterations = iterations.unwrap_or_else(|| panic!("{name}: no iterations header"));
        assert_eq!(checked, iterations, "{name}: data line count");
        assert!(checked > 0, "{name}: no data lines");
        checked
    }

    macro_rules! run_file_tests {
        ($($test:ident => $file:literal, $lines:literal;)*) => {
            $(
                #[test]
                fn $test() {
                    assert_eq!(check_run_file($file), $lines, "{}: lines checked", $file);
                }
            )*
        };
    }

    run_file_tests! {
        run01_steady_at_limit => "run01", 10;
        run02_steady_arbitrary => "run02", 10;
        run03_steady_at_one => "run03", 10;
        run04_doubling => "run04", 225;
        run05_halving => "run05", 225;
        run06_random_stable => "run06", 1000;
        run07_random_rising => "run07", 1000;
        run08_random_falling => "run08", 500;
        run09_height_across_i32 => "run09", 10;
        run10_height_across_i64 => "run10", 10;
        run11_negative_solvetimes => "run11", 1000;
        run12_backwards_time => "run12", 10000;
    }

    #[test]
    fn bchn_calculate_asert_cases() {
        let name = "bchn_pow_tests_calculate_asert.json";
        let doc: serde_json::Value =
            serde_json::from_str(&read_vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let str_field = |v: &serde_json::Value, key: &str, ctx: &str| -> String {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("{ctx}: {key} is not a string"))
                .to_owned()
        };
        let int_field = |v: &serde_json::Value, key: &str, ctx: &str| -> i64 {
            v[key]
                .as_i64()
                .unwrap_or_else(|| panic!("{ctx}: {key} is not an integer"))
        };
        let pow_limit =
            Target::from_u256(parse_hex_u256(&str_field(&doc, "pow_limit", name), name));
        let half_life = int_field(&doc, "halflife", name);
        let cases = doc["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no cases array"));
        assert_eq!(cases.len(), 20, "{name}: case count");

        for (i, case) in cases.iter().enumerate() {
            let ctx = format!("{name} case {i} ({})", case["comment"]);
            let params = AsertParams {
                ideal_block_time: int_field(case, "target_spacing", &ctx),
                half_life,
                pow_limit,
            };
            let anchor =
                Target::from_u256(parse_hex_u256(&str_field(case, "ref_target", &ctx), &ctx));
            let got = next_target(
                &anchor,
                int_field(case, "time_diff", &ctx),
                int_field(case, "height_diff", &ctx),
                &params,
            );
            if !case["expected_target"].is_null() {
                let expected = parse_hex_u256(&str_field(case, "expected_target", &ctx), &ctx);
                assert_eq!(got.as_u256(), expected, "{ctx}: target");
            }
            let bits = parse_hex_u32(&str_field(case, "expected_bits", &ctx), &ctx);
            assert_eq!(
                got.to_compact(),
                CompactTarget::from_consensus(bits),
                "{ctx}: bits"
            );
        }
    }

    #[test]
    fn on_schedule_keeps_anchor_target() {
        let params = bch_params();
        for bits in [0x1d00ffff, 0x1a2b3c4d, 0x1802aee8, 0x01010000, 0x03123456] {
            let anchor = Target::from_compact(CompactTarget::from_consensus(bits)).expect("valid");
            for height_diff in [0i64, 1, 2, 143, 144, 10_000, 1 << 40] {
                // The parent is height_diff blocks after the anchor and exactly on schedule.
                let time_diff = 600 * (height_diff + 1);
                assert_eq!(
                    next_target(&anchor, time_diff, height_diff, &params),
                    anchor,
                    "{bits:#010x} at height diff {height_diff}"
                );
            }
        }
    }

    #[test]
    fn half_life_drift_doubles_or_halves() {
        let params = bch_params();
        let anchor = Target::from_u256(params.pow_limit.as_u256() >> 4);
        let late = next_target(&anchor, 600 + 172_800, 0, &params);
        assert_eq!(late.as_u256(), anchor.as_u256() << 1);
        let early = next_target(&anchor, 600 - 172_800, 0, &params);
        assert_eq!(early.as_u256(), anchor.as_u256() >> 1);
    }

    #[test]
    fn extreme_inputs_clamp() {
        let params = bch_params();
        let one = Target::from_u256(U256::from(1u8));
        let limit = params.pow_limit;
        for anchor in [one, limit] {
            assert_eq!(next_target(&anchor, i64::MAX, 0, &params), limit);
            assert_eq!(next_target(&anchor, i64::MAX, i64::MIN, &params), limit);
            assert_eq!(next_target(&anchor, i64::MIN, 0, &params), one);
            assert_eq!(next_target(&anchor, i64::MIN, i64::MAX, &params), one);
            assert_eq!(next_target(&anchor, 0, i64::MAX, &params), one);
        }
        // Products of i64 extremes overflow the scaled exponent even in i128.
        let wild = AsertParams {
            ideal_block_time: i64::MAX,
            half_life: 1,
            pow_limit: limit,
        };
        assert_eq!(next_target(&limit, 0, i64::MAX, &wild), one);
        assert_eq!(next_target(&limit, 0, i64::MIN, &wild), limit);
        assert_eq!(next_target(&limit, i64::MIN, i64::MAX, &wild), one);
        // A non-positive half-life falls back to pow_limit instead of dividing by zero.
        for half_life in [0, -1, i64::MIN] {
            let bad = AsertParams {
                half_life,
                ..params
            };
            assert_eq!(next_target(&one, 600, 0, &bad), limit);
        }
    }

    #[test]
    fn easy_pow_limit_does_not_wrap() {
        // Regtest-style limit near 2^255: anchor * factor needs more than 256 bits.
        let limit = Target::from_compact(CompactTarget::from_consensus(0x207fffff)).expect("valid");
        let params = AsertParams {
            ideal_block_time: 600,
            half_life: 172_800,
            pow_limit: limit,
        };
        assert_eq!(next_target(&limit, 600, 0, &params), limit);
        assert_eq!(next_target(&limit, 600 + 1, 0, &params), limit);
        let halved = next_target(&limit, 600 - 172_800, 0, &params);
        assert_eq!(halved.as_u256(), limit.as_u256() >> 1);
        let max = Target::from_u256(U256::MAX);
        let wide = AsertParams {
            pow_limit: max,
            ..params
        };
        assert_eq!(next_target(&max, 600, 0, &wide), max);
        assert_eq!(
            next_target(&max, 600 - 172_800, 0, &wide).as_u256(),
            U256::MAX >> 1
        );
    }

    #[test]
    fn polynomial_fits_u64_as_in_bchn() {
        // BCHN evaluates the polynomial in uint64_t; check it never wraps there.
        let f = u128::from(u16::MAX);
        let worst = 195_766_423_245_049 * f + 971_821_376 * f * f + 5_127 * f * f * f + (1 << 47);
        assert!(worst <= u128::from(u64::MAX), "{worst}");
        assert_eq!((1u128 << 16) + (worst >> 48), 131_071);
    }

    fn arb_target() -> impl Strategy<Value = U256> {
        (any::<[u64; 4]>(), 1usize..=256).prop_map(|(limbs, bits)| {
            let value = U256::from_limbs(limbs);
            let masked = if bits == 256 {
                value
            } else {
                value & ((U256::from(1u8) << bits) - U256::from(1u8))
            };
            masked.max(U256::from(1u8))
        })
    }

    proptest! {
        #[test]
        fn result_is_within_one_and_pow_limit(
            limit in arb_target(),
            anchor in arb_target(),
            time_diff in prop_oneof![any::<i64>(), -10_000_000_000i64..10_000_000_000],
            height_diff in prop_oneof![any::<i64>(), -1_000_000i64..100_000_000],
            ideal_block_time in prop_oneof![any::<i64>(), 1i64..3_600],
            half_life in prop_oneof![any::<i64>(), 1i64..10_000_000],
        ) {
            let params = AsertParams {
                ideal_block_time,
                half_life,
                pow_limit: Target::from_u256(limit),
            };
            let next = next_target(&Target::from_u256(anchor), time_diff, height_diff, &params);
            prop_assert!(!next.as_u256().is_zero());
            prop_assert!(next.as_u256() <= limit);
        }

        #[test]
        fn bch_result_is_monotonic_in_time(
            bits in prop_oneof![Just(0x1d00ffffu32), Just(0x1802aee8u32), Just(0x01010000u32)],
            time_diff in -100_000_000i64..100_000_000,
            height_diff in 0i64..1_000_000,
        ) {
            let params = bch_params();
            let anchor = Target::from_compact(CompactTarget::from_consensus(bits)).expect("valid");
            let a = next_target(&anchor, time_diff, height_diff, &params);
            let b = next_target(&anchor, time_diff + 1, height_diff, &params);
            prop_assert!(a <= b);
        }
    }
}
