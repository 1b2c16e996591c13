//! Amounts of coin in base units, with checked arithmetic only. No I/O.
//!
//! An `Amount` is a count of base units (`10^decimals` of them make one coin, `decimals`
//! from the chain spec). There is no unchecked `+` or `-`: consensus code must decide what an
//! overflow means, so every operation returns an `Option`.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A non-negative amount of base units.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

/// An error parsing an amount written in coins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a decimal number.
    #[error("invalid amount {input:?}: expected a decimal number such as 12.5")]
    Malformed {
        /// What was given.
        input: String,
    },
    /// More fractional digits than the coin has decimals.
    #[error("invalid amount {input:?}: at most {decimals} decimal places")]
    TooPrecise {
        /// What was given.
        input: String,
        /// The coin's decimals.
        decimals: u8,
    },
    /// Larger than the largest amount.
    #[error("invalid amount {input:?}: too large")]
    TooLarge {
        /// What was given.
        input: String,
    },
}

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u64::MAX);

    /// An amount of `units` base units.
    pub const fn from_units(units: u64) -> Self {
        Amount(units)
    }

    /// The amount in base units.
    pub const fn as_units(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// The sum of `amounts`, or `None` on overflow.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Amount>) -> Option<Amount> {
        amounts
            .into_iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
    }

    /// `amount` whole coins of a coin with `decimals` decimals, or `None` on overflow.
    pub fn from_coins(coins: u64, decimals: u8) -> Option<Amount> {
        10u64
            .checked_pow(u32::from(decimals))
            .and_then(|unit| coins.checked_mul(unit))
            .map(Amount)
    }

    /// Parses a decimal number of coins such as `12.5` into base units.
    pub fn parse_coins(input: &str, decimals: u8) -> Result<Amount, AmountError> {
        let text = input.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || !digits_only(whole)
            || !digits_only(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::Malformed {
                input: input.to_string(),
            });
        }
        if fraction.len() > usize::from(decimals) {
            return Err(AmountError::TooPrecise {
                input: input.to_string(),
                decimals,
            });
        }
        let too_large = || AmountError::TooLarge {
            input: input.to_string(),
        };
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let padded = format!("{fraction:0<width$}", width = usize::from(decimals));
        let fraction: u64 = if padded.is_empty() {
            0
        } else {
            padded.parse().map_err(|_| too_large())?
        };
        Amount::from_coins(whole, decimals)
            .and_then(|w| w.checked_add(Amount(fraction)))
            .ok_or_else(too_large)
    }

    /// Formats as coins with exactly `decimals` fractional digits, e.g. `12.50000000`.
    pub fn to_coins_string(self, decimals: u8) -> String {
        if decimals == 0 {
            return self.0.to_string();
        }
        let unit = 10u128.pow(u32::from(decimals));
        let units = u128::from(self.0);
        format!(
            "{}.{:0width$}",
            units / unit,
            units % unit,
            width = usize::from(decimals)
        )
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} units", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checked_arithmetic_refuses_overflow_and_underflow() {
        assert_eq!(Amount::MAX.checked_add(Amount::from_units(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::from_units(1)), None);
        assert_eq!(
            Amount::checked_sum([Amount::from_units(2), Amount::from_units(3)]),
            Some(Amount::from_units(5))
        );
        assert_eq!(
            Amount::checked_sum([Amount::MAX, Amount::from_units(1)]),
            None
        );
    }

    #[test]
    fn parses_and_formats_coins() {
        assert_eq!(
            Amount::parse_coins("12.5", 8).unwrap(),
            Amount::from_units(1_250_000_000)
        );
        assert_eq!(Amount::parse_coins(".5", 1).unwrap(), Amount::from_units(5));
        assert_eq!(
            Amount::from_units(1_250_000_000).to_coins_string(8),
            "12.50000000"
        );
        assert!(matches!(
            Amount::parse_coins("1.123456789", 8),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            Amount::parse_coins("1e5", 8),
            Err(AmountError::Malformed { .. })
        ));
        assert!(matches!(
            Amount::parse_coins("1.", 8),
            Err(AmountError::Malformed { .. })
        ));
        assert!(matches!(
            Amount::parse_coins("-1", 8),
            Err(AmountError::Malformed { .. })
        ));
        assert!(matches!(
            Amount::parse_coins("184467440737.09551616", 8),
            Err(AmountError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn coins_string_round_trips(units in any::<u64>(), decimals in 0u8..=12) {
            let amount = Amount::from_units(units);
            prop_assert_eq!(Amount::parse_coins(&amount.to_coins_string(decimals), decimals), Ok(amount));
        }
    }
}
