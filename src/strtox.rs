//! Integers the way QEMU reads option values: `qemu_strtou64` and
//! `qemu_strtoi64` with base 0 and no end pointer, i.e. C's `strtoull` /
//! `strtoll` (leading white space, a sign, `0x` hex or `0` octal) that must
//! consume the whole text. QemuOpts' number options go through the first,
//! QAPI's `int` members (keyval input) through the second.

/// Why a text is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// No digits, or something after them (EINVAL).
    Invalid,
    /// Out of the type's range (ERANGE).
    Range,
}

/// The sign and magnitude `strtoull`/`strtoll` read, saturated past
/// `u64::MAX` (then `Range` unless the text is invalid anyway).
fn parse(text: &str) -> Result<(bool, Option<u64>), NumError> {
    let s = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let b = s.as_bytes();
    // "0x" without a hex digit after it reads as the number 0 followed
    // by "x", which is junk here.
    let (radix, digits) = if b.len() > 2 && b[0] == b'0' && (b[1] | 0x20) == b'x' {
        match b[2].is_ascii_hexdigit() {
            true => (16, &s[2..]),
            false => return Err(NumError::Invalid),
        }
    } else if b.first() == Some(&b'0') {
        (8, s)
    } else {
        (10, s)
    };
    if digits.is_empty() {
        return Err(NumError::Invalid);
    }
    let mut value = Some(0u64);
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or(NumError::Invalid)?;
        value = value
            .and_then(|v| v.checked_mul(radix as u64))
            .and_then(|v| v.checked_add(d as u64));
    }
    Ok((negative, value))
}

/// `qemu_strtou64(text, NULL, 0, &v)`: a negative number wraps around, as
/// in `strtoull`.
pub fn strtou64(text: &str) -> Result<u64, NumError> {
    match parse(text)? {
        (_, None) => Err(NumError::Range),
        (true, Some(v)) => Ok(v.wrapping_neg()),
        (false, Some(v)) => Ok(v),
    }
}

/// `qemu_strtoi64(text, NULL, 0, &v)`.
pub fn strtoi64(text: &str) -> Result<i64, NumError> {
    match parse(text)? {
        (_, None) => Err(NumError::Range),
        (true, Some(v)) if v <= 1 << 63 => Ok((v as i64).wrapping_neg()),
        (false, Some(v)) if v < 1 << 63 => Ok(v as i64),
        _ => Err(NumError::Range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_strtoull_and_strtoll_do() {
        assert_eq!(strtou64("42"), Ok(42));
        assert_eq!(strtou64(" \t+3"), Ok(3));
        assert_eq!(strtou64("0x1f"), Ok(31));
        assert_eq!(strtou64("010"), Ok(8));
        assert_eq!(strtou64("0"), Ok(0));
        assert_eq!(strtou64("-1"), Ok(u64::MAX));
        assert_eq!(strtou64("-18446744073709551615"), Ok(1));
        assert_eq!(strtou64("18446744073709551616"), Err(NumError::Range));
        assert_eq!(strtou64("-18446744073709551616"), Err(NumError::Range));
        for bad in [
            "",
            " ",
            "abc",
            "3 ",
            "0x",
            "0xg",
            "08",
            "1.5",
            "--1",
            "99999999999999999999x",
        ] {
            assert_eq!(strtou64(bad), Err(NumError::Invalid), "{bad:?}");
        }
        assert_eq!(strtoi64("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(strtoi64("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(strtoi64("9223372036854775808"), Err(NumError::Range));
        assert_eq!(strtoi64("-9223372036854775809"), Err(NumError::Range));
        assert_eq!(strtoi64("-0x10"), Ok(-16));
    }
}
