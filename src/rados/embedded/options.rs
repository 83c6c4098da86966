//! The `key=value` settings of an `rbd:` name, checked as librados checks
//! them (`rados_conf_set`) so the embedded store refuses what a cluster
//! refuses, with the same words: "invalid conf option <key>: <strerror>",
//! ENOENT for an unknown key, EINVAL for a value its type, bounds or
//! allowed values reject, ERANGE for a debug level outside 0..=99.
//!
//! `ceph_options.tsv` is Ceph's option table (name, type, min, max, allowed
//! values), generated from the installed Ceph by tests/ceph/options.sh.
//! Values are parsed as Ceph's parsers do (strict_si_cast, strict_iecstrtoll,
//! strict_strtod, strict_strtob, parse_timespan, ...), and the validators
//! Ceph attaches to single options are repeated for the ones rbdimg reads
//! (`rbd_default_features`) or that are easy to mistype (debug levels,
//! `rbd_discard_granularity_bytes`); other options get their type's check.
//! Keys are normalized as Ceph does: surrounding spaces dropped, each inner
//! run of spaces one '_'. Values come back as Ceph stores them (numbers in
//! decimal, features as a bit mask), so `config()` reads what librados would.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use crate::ceph::errno::errno_error;
use crate::ceph::features;
use crate::error::Result;

const TABLE: &str = include_str!("ceph_options.tsv");

struct Opt {
    kind: &'static str,
    min: &'static str,
    max: &'static str,
    allowed: Option<Vec<&'static str>>,
}

fn table() -> &'static HashMap<&'static str, Opt> {
    static T: OnceLock<HashMap<&'static str, Opt>> = OnceLock::new();
    T.get_or_init(|| {
        TABLE
            .lines()
            .filter_map(|line| {
                let mut f = line.split('\t');
                let name = f.next()?;
                let opt = Opt {
                    kind: f.next()?,
                    min: f.next()?,
                    max: f.next()?,
                    allowed: f
                        .next()
                        .filter(|a| !a.is_empty())
                        .map(|a| a.split(',').collect()),
                };
                Some((name, opt))
            })
            .collect()
    })
}

/// Checks `settings` in order and returns them normalized, or the first
/// failure as librados words it.
pub fn check(settings: &[(String, String)]) -> Result<Vec<(String, String)>> {
    settings
        .iter()
        .map(|(key, value)| {
            let name = normalize_key(key);
            let opt = table().get(name.as_str()).ok_or(libc::ENOENT);
            opt.and_then(|opt| parse(&name, opt, value))
                .map(|value| (name, value))
                .map_err(|errno| errno_error(errno, format!("invalid conf option {key}")))
        })
        .collect()
}

/// Ceph's `normalize_key_name`: trimmed, inner whitespace runs as one '_'.
fn normalize_key(key: &str) -> String {
    key.split(is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// C's isspace.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

type Parsed = std::result::Result<String, i32>;

const EINVAL: i32 = libc::EINVAL;

fn parse(name: &str, opt: &Opt, value: &str) -> Parsed {
    let value = match name {
        "rbd_default_features" => rbd_features(value)?.to_string(),
        "rbd_discard_granularity_bytes" => {
            let v = si_cast_u64(value)?;
            if !v.is_power_of_two() {
                return Err(EINVAL);
            }
            v.to_string()
        }
        _ => value.to_string(),
    };
    let value = value.as_str();
    match opt.kind {
        "subsys" => debug_level(value),
        "str" => match &opt.allowed {
            Some(allowed) if !allowed.contains(&value) => Err(EINVAL),
            _ => Ok(value.to_string()),
        },
        "bool" => {
            let b = value.eq_ignore_ascii_case("true")
                || !value.eq_ignore_ascii_case("false") && {
                    let n = strtoll(value).ok_or(EINVAL)?;
                    i32::try_from(n).map_err(|_| EINVAL)? != 0
                };
            Ok(b.to_string())
        }
        "int" => {
            let v = si_cast_i64(value)?;
            bounded(v, opt, |s| s.parse().ok())
        }
        "uint" => {
            let v = si_cast_u64(value)?;
            bounded(v, opt, |s| s.parse().ok())
        }
        "size" => {
            let v = iec_cast_u64(value)?;
            bounded(v, opt, |s| s.parse().ok())
        }
        "float" => {
            let v = strtod(value).ok_or(EINVAL)?;
            let below = bound(opt.min, |s| s.parse::<f64>().ok()).is_some_and(|m| v < m);
            let above = bound(opt.max, |s| s.parse::<f64>().ok()).is_some_and(|m| v > m);
            if below || above {
                return Err(EINVAL);
            }
            Ok(value.to_string())
        }
        "secs" => {
            let v = timespan(value).ok_or(EINVAL)?;
            bounded(v, opt, |s| s.parse().ok())
        }
        // Ceph compares a millisecs value with its bound across types, so
        // an option with a bound refuses every value.
        "millisecs" if !opt.min.is_empty() || !opt.max.is_empty() => Err(EINVAL),
        "millisecs" => stoull(value).map(|v| v.to_string()).ok_or(EINVAL),
        "uuid" if is_uuid(value) => Ok(value.to_string()),
        "addr" if is_addr(value) => Ok(value.to_string()),
        "addrvec" if is_addrvec(value) => Ok(value.to_string()),
        _ => Err(EINVAL),
    }
}

fn bound<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    if text.is_empty() { None } else { parse(text) }
}

/// Refuses a value outside the option's bounds; returns it in decimal.
fn bounded<T: PartialOrd + ToString>(v: T, opt: &Opt, parse: impl Fn(&str) -> Option<T>) -> Parsed {
    if bound(opt.min, &parse).is_some_and(|m| v < m)
        || bound(opt.max, &parse).is_some_and(|m| v > m)
    {
        return Err(EINVAL);
    }
    Ok(v.to_string())
}

/// C's strtoll over the whole string (leading whitespace and a sign
/// allowed, nothing after the digits); None on garbage or overflow.
fn strtoll(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(is_space);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

/// Ceph's strict_si_cast: an optional decimal unit letter K M G T P E
/// (powers of 1000), range-checked for the target type.
fn si_cast(s: &str) -> std::result::Result<(i64, i128), i32> {
    if s.is_empty() {
        return Err(EINVAL);
    }
    let mut number = s;
    let mut scale: i128 = 1;
    if s.bytes()
        .any(|b| !b.is_ascii_digit() && b != b'+' && b != b'-')
    {
        let exp = match s.as_bytes()[s.len() - 1] {
            b'K' => 3,
            b'M' => 6,
            b'G' => 9,
            b'T' => 12,
            b'P' => 15,
            b'E' => 18,
            b'B' => 0,
            _ => return Err(EINVAL),
        };
        if exp > 0 {
            number = &s[..s.len() - 1];
            scale = 10i128.pow(exp);
        }
    }
    Ok((strtoll(number).ok_or(EINVAL)?, scale))
}

fn si_cast_i64(s: &str) -> std::result::Result<i64, i32> {
    let (n, scale) = si_cast(s)?;
    let v = n as i128;
    if v < i64::MIN as i128 / scale || v > i64::MAX as i128 / scale {
        return Err(EINVAL);
    }
    Ok((v * scale) as i64)
}

fn si_cast_u64(s: &str) -> std::result::Result<u64, i32> {
    let (n, scale) = si_cast(s)?;
    if n < 0 || n as i128 > u64::MAX as i128 / scale {
        return Err(EINVAL);
    }
    Ok((n as i128 * scale) as u64)
}

/// Ceph's strict_iecstrtoll: an optional binary unit (K, Ki, ... E, Ei, B).
fn iec_cast_u64(s: &str) -> std::result::Result<u64, i32> {
    if s.is_empty() {
        return Err(EINVAL);
    }
    let (number, shift) = match s.find(|c: char| !c.is_ascii_digit() && c != '+' && c != '-') {
        None => (s, 0),
        Some(at) => {
            let unit = &s[at..];
            if unit.len() > 2 || unit.starts_with('B') && unit.ends_with('i') {
                return Err(EINVAL);
            }
            // Ceph's units are upper case only.
            let letter = unit.as_bytes()[0];
            let multiplier = crate::size::suffix_multiplier(letter)
                .filter(|_| letter.is_ascii_uppercase())
                .ok_or(EINVAL)?;
            (&s[..at], multiplier.trailing_zeros())
        }
    };
    let n = strtoll(number).ok_or(EINVAL)?;
    if n < 0 || n as u64 > u64::MAX >> shift {
        return Err(EINVAL);
    }
    Ok((n as u64) << shift)
}

/// C's strtod over the whole string: None on garbage, overflow or underflow.
fn strtod(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(is_space);
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = body.to_ascii_lowercase();
    let v = if ["inf", "infinity"].contains(&lower.as_str()) {
        f64::INFINITY
    } else if lower == "nan" {
        f64::NAN
    } else if let Some(hex) = lower.strip_prefix("0x") {
        hex_float(hex)?
    } else {
        if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let nonzero = body
            .split(['e', 'E'])
            .next()
            .is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)));
        // glibc reports ERANGE for results it cannot hold as normal numbers.
        if v.is_infinite() || nonzero && v.abs() < f64::MIN_POSITIVE {
            return None;
        }
        v
    };
    Some(if negative { -v } else { v })
}

/// The digits of a C hexadecimal float after "0x": hex[.hex][p[+-]dec].
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    v.is_finite().then_some(v)
}

/// Ceph's parse_timespan: numbers with optional units ("1m 30s"), in seconds.
fn timespan(s: &str) -> Option<i64> {
    const UNITS: &[(&[&str], i64)] = &[
        (&["s", "sec", "second", "seconds"], 1),
        (&["m", "min", "minute", "minutes"], 60),
        (&["h", "hr", "hour", "hours"], 3600),
        (&["d", "day", "days"], 86400),
        (&["w", "wk", "week", "weeks"], 7 * 86400),
        (&["mo", "month", "months"], 30 * 86400),
        (&["y", "yr", "year", "years"], 365 * 86400),
    ];
    let b = s.as_bytes();
    let (mut pos, mut total) = (0, 0i64);
    let skip_space = |mut p: usize| {
        while p < b.len() && is_space(b[p] as char) {
            p += 1;
        }
        p
    };
    while pos < b.len() {
        pos = skip_space(pos);
        if pos >= b.len() {
            break;
        }
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let mut value: i64 = s.get(start..pos).filter(|d| !d.is_empty())?.parse().ok()?;
        pos = skip_space(pos);
        let unit_start = pos;
        while pos < b.len() && b[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        if unit_start != pos {
            let unit = &s[unit_start..pos];
            value = value.wrapping_mul(UNITS.iter().find(|(names, _)| names.contains(&unit))?.1);
        } else if pos < b.len() {
            return None;
        }
        total = total.wrapping_add(value);
    }
    Some(total)
}

/// C++'s std::stoull: a leading number (whitespace and sign allowed, a
/// negative one wraps), anything after it ignored.
fn stoull(s: &str) -> Option<u64> {
    let t = s.trim_start_matches(is_space);
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let end = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let v: u64 = body[..end].parse().ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// C's atoi / sscanf("%d"): whitespace, a sign, digits, as a C int
/// (wrapping past it); the rest after the digits.
fn int(s: &str) -> Option<(i32, &str)> {
    let t = s.trim_start_matches(is_space);
    let sign = usize::from(t.starts_with(['+', '-']));
    let end = t[sign..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |e| e + sign);
    if end == sign {
        return None;
    }
    let v = t[..end]
        .strip_prefix('+')
        .unwrap_or(&t[..end])
        .parse::<i64>()
        .unwrap_or(if t.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        });
    Some((v as i32, &t[end..]))
}

/// A logging subsystem's level, "N" or "N/M" with both in 0..=99 (read as
/// sscanf("%d/%d") reads it); returned as "N/M".
fn debug_level(s: &str) -> Parsed {
    let (log, rest) = int(s).ok_or(EINVAL)?;
    let gather = rest.strip_prefix('/').and_then(int).map(|(n, _)| n);
    let gather = gather.unwrap_or(log);
    if !(0..=99).contains(&log) || !(0..=99).contains(&gather) {
        return Err(libc::ERANGE);
    }
    Ok(format!("{log}/{gather}"))
}

/// librbd's rbd_features_from_string: a mask of the settable bits, or
/// names separated by commas; empty means the default.
fn rbd_features(s: &str) -> std::result::Result<u64, i32> {
    let s = s.trim_matches(is_space);
    if s.is_empty() {
        return Ok(features::DEFAULT);
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = digits.parse().map_err(|_| EINVAL)?;
        let v = if s.starts_with('-') {
            v.wrapping_neg()
        } else {
            v
        };
        // Unknown and internal bits (operations and above) are refused.
        return if v & !0xff == 0 { Ok(v) } else { Err(EINVAL) };
    }
    s.split(',').try_fold(0, |acc, name| {
        let name = name.trim_matches(is_space);
        features::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| acc | bit)
            .ok_or(EINVAL)
    })
}

fn is_uuid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .map_or(Some(s), |inner| inner.strip_suffix('}'));
    let Some(s) = s else { return false };
    let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
    match s.len() {
        32 => hex(s),
        36 => s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        }),
        _ => false,
    }
}

/// Ceph's entity_addr_t::parse, which reads an address at the start of
/// `s` ([v1:|v2:|any:][[]ip[]][:port][/nonce], or "-") and, in Ceph 16,
/// ignores what follows; returns that rest and whether the address was
/// IPv6.
fn addr_prefix(s: &str) -> Option<(&str, bool)> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some((rest, false));
    }
    let t = ["v1:", "v2:", "any:"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    let (t, brackets) = match t.strip_prefix('[') {
        Some(inner) => (inner, true),
        None => (t, false),
    };
    let run = |ok: fn(char) -> bool, max: usize| {
        let n = t.find(|c: char| !ok(c)).unwrap_or(t.len()).min(max);
        &t[..n]
    };
    let v4 = run(|c| c == '.' || c.is_ascii_digit(), 39);
    let v6 = run(|c| c == ':' || c.is_ascii_hexdigit(), 63);
    let (mut rest, ipv6) = if v4.parse::<Ipv4Addr>().is_ok() {
        (&t[v4.len()..], false)
    } else if v6.parse::<Ipv6Addr>().is_ok() {
        (&t[v6.len()..], true)
    } else {
        return None;
    };
    if brackets {
        rest = rest.strip_prefix(']')?;
    }
    // A port and a nonce, each read with atoi and then skipped over.
    let atoi = |s: &str| int(s).map_or(0, |(v, _)| v);
    let digits = |s: &str| s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if let Some(port) = rest.strip_prefix(':') {
        if atoi(port) > 65535 {
            return None;
        }
        rest = &port[port.len() - digits(port)..];
    }
    if let Some(nonce) = rest.strip_prefix('/') {
        rest = &nonce[nonce.len() - digits(nonce)..];
    }
    Some((rest, ipv6))
}

fn is_addr(s: &str) -> bool {
    addr_prefix(s).is_some()
}

/// Ceph's entity_addrvec_t::parse: one address, or "[a,b,...]".
fn is_addrvec(s: &str) -> bool {
    let Some(mut list) = s
        .strip_prefix('[')
        .filter(|_| !addr_prefix(s).is_some_and(|(_, v6)| v6))
    else {
        return addr_prefix(s).is_some();
    };
    loop {
        let Some((rest, _)) = addr_prefix(list) else {
            return false;
        };
        match rest.strip_prefix(',') {
            Some(next) if !next.is_empty() => list = next,
            _ => return rest.starts_with(']'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(key: &str, value: &str) -> std::result::Result<String, String> {
        check(&[(key.to_string(), value.to_string())])
            .map(|v| v[0].1.clone())
            .map_err(|e| e.to_string())
    }

    /// Ceph 16.2's answers, taken from `rados_conf_set` on a cluster; the
    /// same cases run on both backends in tests/rbd/options.rs.
    #[test]
    fn values_parse_as_ceph_parses_them() {
        let ok = |k: &str, v: &str, want: &str| {
            assert_eq!(outcome(k, v).as_deref(), Ok(want), "{k}={v}");
        };
        let bad = |k: &str, v: &str| {
            let err = outcome(k, v).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid conf option {k}: ")),
                "{k}={v}: {err}"
            );
        };
        ok("rbd_cache", " 1", "true");
        ok("rbd_cache", "TRUE", "true");
        ok("rbd_cache", "2", "true");
        ok("rbd_cache", "-0", "false");
        for v in ["yes", "", "1 ", "0x1", "2147483648"] {
            bad("rbd_cache", v);
        }
        ok("rbd_default_order", "1K", "1000");
        ok("rbd_default_order", "+22", "22");
        ok(
            "rbd_default_order",
            "18446744073709551K",
            "18446744073709551000",
        );
        for v in [
            "-1",
            "1B",
            "1.5",
            " 22",
            "22 ",
            "9223372036854775808",
            "20E",
            "1k",
        ] {
            bad("rbd_default_order", v);
        }
        ok("compressor_zlib_winsize", "-15", "-15");
        bad("compressor_zlib_winsize", "-16");
        bad("compressor_zlib_winsize", "33");
        ok("rbd_cache_size", "32Mi", "33554432");
        ok("rbd_cache_size", "32MB", "33554432");
        ok("rbd_cache_size", "15E", "17293822569102704640");
        for v in [
            "32Bi", "32MiB", "16E", "32m", "-1", "", " 5", "5 ", "B", "1.5M",
        ] {
            bad("rbd_cache_size", v);
        }
        bad("osd_max_write_size", "3");
        for v in ["1.5", "1e3", "inf", "nan", " 1.5", "0x10", ".5", "infinity"] {
            assert!(outcome("rbd_cache_max_dirty_age", v).is_ok(), "{v}");
        }
        for v in ["abc", "", "1.5x", "1e999", "1,5", "1e", "1e-400"] {
            bad("rbd_cache_max_dirty_age", v);
        }
        bad("log_stop_at_utilization", "2");
        ok("log_stop_at_utilization", "nan", "nan");
        ok("client_mount_timeout", "1m 30s", "90");
        ok("client_mount_timeout", "1 s 2", "3");
        ok("client_mount_timeout", "", "0");
        for v in ["5x", "-1", "1.5", "1 2", "1M", "s"] {
            bad("client_mount_timeout", v);
        }
        bad("cephfs_mirror_action_update_interval", "0");
        bad("cephsqlite_lock_renewal_interval", "1000");
        ok("rbd_cache_policy", "writeback", "writeback");
        bad("rbd_cache_policy", "WriteBack");
        ok("bluestore_compression_algorithm", "", "");
        ok("debug_rbd", "5", "5/5");
        ok("debug_rbd", " 5/ 7", "5/7");
        ok("debug_rbd", "5/abc", "5/5");
        ok("debug_rbd", "0x5", "0/0");
        bad("debug_rbd", "abc");
        bad("debug_rbd", "");
        for v in ["100", "5/100", "-1", "99999999999"] {
            assert!(
                outcome("debug_rbd", v)
                    .unwrap_err()
                    .ends_with("Numerical result out of range")
            );
        }
        ok("rbd_default_features", "layering, exclusive-lock", "5");
        ok("rbd_default_features", "", &features::DEFAULT.to_string());
        ok("rbd_default_features", "dirty-cache", "2048");
        for v in [
            "bogus",
            "256",
            "-1",
            "0x3",
            "1,layering",
            ",",
            "LAYERING",
            "1e1",
        ] {
            bad("rbd_default_features", v);
        }
        ok("rbd_discard_granularity_bytes", "8192", "8192");
        for v in ["5000", "1024", "64K"] {
            bad("rbd_discard_granularity_bytes", v);
        }
        for v in [
            "c0b7ea80d64644db9e39472342d88c15",
            "{C0B7EA80-D646-44DB-9E39-472342D88C15}",
        ] {
            assert!(outcome("fsid", v).is_ok(), "{v}");
        }
        bad("fsid", "c0b7ea80-d646-44db-9e39-472342d88c1");
        assert!(outcome("public_addr", "127.0.0.1").is_ok());
        bad("public_addr", "garbage");
        bad("public_addrv", "");
    }

    #[test]
    fn keys_are_normalized_or_unknown() {
        for key in ["rbd cache", " rbd_cache", "rbd  cache "] {
            let set = check(&[(key.to_string(), "true".to_string())]).unwrap();
            assert_eq!(set[0].0, "rbd_cache");
        }
        for key in [
            "foo",
            "RBD_CACHE",
            "rbd-cache",
            "rbd__cache",
            "name",
            "cluster",
        ] {
            let err = check(&[(key.to_string(), "1".to_string())]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid conf option {key}: No such file or directory")
            );
        }
    }
}
