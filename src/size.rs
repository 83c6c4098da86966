//! Sizes the way qemu-img reads and prints them.
//!
//! Parsing follows QEMU's `qemu_strtosz`: a decimal integer, optionally a
//! fraction (only together with a unit suffix), or a hex integer (never with a
//! fraction or suffix); suffixes B K M G T P E in either case, powers of 1024.
//! The fraction is carried as 64.64 fixed point and rounded half up, so
//! "1.1k" is 1126 exactly as in QEMU. Printing follows `size_to_str`:
//! `%0.3g` of the value in the largest binary unit whose integer part is
//! below 1000.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeError {
    /// Not a size at all (`qemu_strtosz` -EINVAL).
    Invalid,
    /// A size that does not fit in 64 bits (`qemu_strtosz` -ERANGE).
    Overflow,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Invalid => f.write_str("invalid size"),
            SizeError::Overflow => f.write_str("size out of range"),
        }
    }
}

/// The binary multiplier of a unit letter (B K M G T P E, any case).
pub fn suffix_multiplier(c: u8) -> Option<u64> {
    let shift = match c.to_ascii_uppercase() {
        b'B' => 0,
        b'K' => 10,
        b'M' => 20,
        b'G' => 30,
        b'T' => 40,
        b'P' => 50,
        b'E' => 60,
        _ => return None,
    };
    Some(1u64 << shift)
}

/// Parses a size with qemu-img's grammar; the default unit is bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    // strtoull skips leading white space before digits; the fraction-only
    // form (".5k") goes through strtod, which QEMU makes reject it.
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    // strtoull reads "-1" as a number, which QEMU then refuses as out of
    // range; with anything after the digits the whole text is invalid.
    if let Some(negative) = trimmed.strip_prefix('-')
        && negative.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(if negative.bytes().all(|c| c.is_ascii_digit()) {
            SizeError::Overflow
        } else {
            SizeError::Invalid
        });
    }
    let text = if trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '+') {
        trimmed
    } else {
        text
    };
    let text = text
        .strip_prefix('+')
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(text);
    let s = text.as_bytes();
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    // Hex: "0x..." with no fraction and no suffix.
    if digits == 1 && s[0] == b'0' && matches!(s.get(1), Some(b'x' | b'X')) {
        let hex = &text[2..];
        if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(SizeError::Invalid);
        }
        return u64::from_str_radix(hex, 16).map_err(|_| SizeError::Overflow);
    }
    let mut pos = digits;
    let integer: u64 = if digits == 0 {
        // QEMU accepts ".5k" (a fraction with no integer part).
        if s.first() != Some(&b'.') {
            return Err(SizeError::Invalid);
        }
        0
    } else {
        // Out of range, unless more follows: then it is not a size at all.
        text[..digits].parse().map_err(|_| {
            if digits == s.len() {
                SizeError::Overflow
            } else {
                SizeError::Invalid
            }
        })?
    };
    // The fraction, as 64.64 fixed point like QEMU (via a double).
    let mut fraction: u64 = 0;
    if s.get(pos) == Some(&b'.') {
        pos += 1;
        let frac_digits = s[pos..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 && frac_digits == 0 {
            return Err(SizeError::Invalid);
        }
        if frac_digits > 0 {
            let value: f64 = format!("0.{}", &text[pos..pos + frac_digits])
                .parse()
                .map_err(|_| SizeError::Invalid)?;
            fraction = (value * 18446744073709551616.0) as u64;
            pos += frac_digits;
        }
    }
    let multiplier = match s.get(pos) {
        None => 1,
        Some(&c) => {
            let m = suffix_multiplier(c).ok_or(SizeError::Invalid)?;
            pos += 1;
            m
        }
    };
    if pos != s.len() {
        return Err(SizeError::Invalid);
    }
    if multiplier == 1 {
        // A fraction needs a scale ("1.5" is not a size, "1.5k" is).
        return if fraction != 0 {
            Err(SizeError::Invalid)
        } else {
            Ok(integer)
        };
    }
    let whole = integer as u128 * multiplier as u128;
    let frac = fraction as u128 * multiplier as u128;
    let rounded = whole + (frac >> 64) + ((frac >> 63) & 1);
    u64::try_from(rounded).map_err(|_| SizeError::Overflow)
}

/// qemu-img's human size: "4 KiB", "1.5 MiB", "0.977 GiB", "512 B".
pub fn size_to_str(value: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    // QEMU: frexp(val / (1000/1024)) gives the exponent; step every 10 bits.
    let scaled = value as f64 / (1000.0 / 1024.0);
    let exponent = if scaled == 0.0 {
        0
    } else {
        scaled.log2().floor() as i32 + 1
    };
    let index = (((exponent - 1).max(0)) / 10) as usize;
    let index = index.min(SUFFIXES.len() - 1);
    let divisor = (1u64 << (index * 10)) as f64;
    format!("{} {}B", format_g3(value as f64 / divisor), SUFFIXES[index])
}

/// C's `%0.3g` for the non-negative values `size_to_str` produces.
fn format_g3(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    // %g picks %e when the exponent (after rounding to 3 digits) is < -4 or >= 3.
    let rounded = format!("{value:.2e}");
    let (mantissa, exp) = rounded.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent digits");
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..3).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", trim(mantissa.to_string()), sign, exp.abs())
    } else {
        let decimals = (2 - exp).max(0) as usize;
        trim(format!("{value:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_qemu_strtosz() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("1k"), Ok(1024));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("1.1k"), Ok(1126));
        assert_eq!(parse_size("1.k"), Ok(1024));
        assert_eq!(parse_size(".5k"), Ok(512));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1b"), Ok(1));
        assert_eq!(parse_size("0x10"), Ok(16));
        assert_eq!(parse_size("7E"), Ok(7 << 60));
        assert_eq!(parse_size("16E"), Err(SizeError::Overflow));
        assert_eq!(parse_size("1.5"), Err(SizeError::Invalid));
        assert_eq!(parse_size("1e3"), Err(SizeError::Invalid));
        assert_eq!(parse_size("1Q"), Err(SizeError::Invalid));
        // strtoull reads "-1", which QEMU refuses as out of range (qemu-img
        // prints "Must be between 0 and ..."); "-1k" is not a number at all.
        assert_eq!(parse_size("-1"), Err(SizeError::Overflow));
        assert_eq!(parse_size(" -0"), Err(SizeError::Overflow));
        assert_eq!(parse_size("-1k"), Err(SizeError::Invalid));
        assert_eq!(parse_size("-x"), Err(SizeError::Invalid));
        assert_eq!(parse_size("99999999999999999999"), Err(SizeError::Overflow));
        assert_eq!(parse_size("99999999999999999999k"), Err(SizeError::Invalid));
        assert_eq!(parse_size(""), Err(SizeError::Invalid));
        assert_eq!(parse_size("0x1k"), Err(SizeError::Invalid));
        assert_eq!(parse_size("1kk"), Err(SizeError::Invalid));
        assert_eq!(parse_size(" 1k"), Ok(1024));
        assert_eq!(parse_size(" .5k"), Err(SizeError::Invalid));
        assert_eq!(parse_size("1 "), Err(SizeError::Invalid));
    }

    #[test]
    fn prints_like_qemu_size_to_str() {
        assert_eq!(size_to_str(0), "0 B");
        assert_eq!(size_to_str(512), "512 B");
        assert_eq!(size_to_str(999), "999 B");
        assert_eq!(size_to_str(1000), "0.977 KiB");
        assert_eq!(size_to_str(4096), "4 KiB");
        assert_eq!(size_to_str(1572864), "1.5 MiB");
        assert_eq!(size_to_str(1 << 30), "1 GiB");
        assert_eq!(size_to_str(328192), "320 KiB");
        assert_eq!(size_to_str(u64::MAX), "16 EiB");
    }
}
