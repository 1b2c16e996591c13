//! How numbers, amounts, hashes and times read on the pages: pure functions from values to
//! display text. No I/O and no clock: relative times ("3 min ago") are the browser script's
//! job, from the UTC times rendered here.
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `units` base units as coins with `decimals` decimals: thousands grouped with commas,
/// trailing zeros of the fraction dropped ("1,234.5", "0.00000164", "50").
pub fn coins(units: u64, decimals: u8) -> String {
    let Some(one) = 10u128.checked_pow(u32::from(decimals)) else {
        return format!("{units} units");
    };
    let units = u128::from(units);
    let whole = group_thousands(&(units / one).to_string());
    let fraction = units % one;
    if fraction == 0 {
        return whole;
    }
    let digits = format!("{fraction:0width$}", width = usize::from(decimals));
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// `digits` with a comma every three digits from the right.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An integer with grouped thousands.
pub fn count(value: u64) -> String {
    group_thousands(&value.to_string())
}

/// A long hash or address shortened to its head and tail ("0000a1b2…c3d4e5").
pub fn short(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 20 {
        return text.to_string();
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

/// Unix seconds as an RFC 3339 UTC time, for `<time datetime>` ("2026-11-29T12:00:00Z").
pub fn iso_time(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Unix seconds as people read a UTC time without a script ("2026-11-29 12:00:00 UTC").
pub fn utc_time(secs: u64) -> String {
    let iso = iso_time(secs);
    match iso.strip_suffix('Z') {
        Some(plain) => format!("{} UTC", plain.replacen('T', " ", 1)),
        None => iso,
    }
}

/// A quantity with an SI prefix and `unit` ("38.1 MH/s", "512 B").
pub fn si(value: f64, unit: &str) -> String {
    if !value.is_finite() || value < 0.0 {
        return format!("– {unit}");
    }
    const PREFIXES: [&str; 9] = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
    let mut scaled = value;
    let mut prefix = 0;
    while scaled >= 1000.0 && prefix + 1 < PREFIXES.len() {
        scaled /= 1000.0;
        prefix += 1;
    }
    let number = if prefix == 0 && scaled.fract() == 0.0 {
        format!("{scaled}")
    } else if scaled >= 100.0 {
        format!("{scaled:.0}")
    } else if scaled >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    format!("{number} {}{unit}", PREFIXES[prefix])
}

/// A difficulty for people: three significant digits, with an SI prefix past a thousand.
pub fn difficulty(value: f64) -> String {
    si(value, "").trim_end().to_string()
}

/// A fee rate in base units per byte ("1.22").
pub fn fee_rate(rate: f64) -> String {
    if rate.is_finite() {
        format!("{rate:.2}")
    } else {
        "–".to_string()
    }
}

/// A duration in seconds for people ("9 s", "2 min 5 s", "3 h 4 min").
pub fn duration(secs: i64) -> String {
    let sign = if secs < 0 { "−" } else { "" };
    let secs = secs.unsigned_abs();
    if secs < 60 {
        format!("{sign}{secs} s")
    } else if secs < 3600 {
        format!("{sign}{} min {} s", secs / 60, secs % 60)
    } else {
        format!("{sign}{} h {} min", secs / 3600, (secs % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coins_use_the_chains_decimals() {
        assert_eq!(coins(0, 8), "0");
        assert_eq!(coins(5_000_000_200, 8), "50.000002");
        assert_eq!(coins(100_000_000_000_000, 8), "1,000,000");
        assert_eq!(coins(164, 8), "0.00000164");
        assert_eq!(coins(123_456_789, 0), "123,456,789");
        assert_eq!(coins(u64::MAX, 8), "184,467,440,737.09551615");
        assert_eq!(coins(7, 200), "7 units");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_time(1_795_300_000), "2026-11-21 22:26:40 UTC");
        assert_eq!(iso_time(u64::MAX), format!("@{}", u64::MAX));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(short("0123456789abcdef0123456789"), "0123456789…456789");
        assert_eq!(short("abc"), "abc");
        assert_eq!(si(38_100_000.0, "H/s"), "38.1 MH/s");
        assert_eq!(si(512.0, "B"), "512 B");
        assert_eq!(si(1536.0, "B"), "1.54 kB");
        assert_eq!(difficulty(1.0), "1");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(duration(9), "9 s");
        assert_eq!(duration(125), "2 min 5 s");
        assert_eq!(duration(-3), "−3 s");
    }
}
