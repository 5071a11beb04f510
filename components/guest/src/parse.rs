//! Parsers for filter config values.
//!
//! The runtime hands each value over as its TOML text: numbers as written (`100`, `0.5`,
//! `1_000`), strings without quotes (`-2h`, `5ms`). A value that still carries a pair of
//! surrounding double quotes is accepted too. Errors are short phrases ("expected ...")
//! that [`crate::Config`] prefixes with the key.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Remove surrounding whitespace and one pair of surrounding double quotes.
pub fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(s)
}

/// A non-negative integer; TOML's `_` digit separators are allowed between digits.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = unquote(s);
    let t = t.strip_prefix('+').unwrap_or(t);
    let bad = || format!("expected a non-negative integer, got `{s}`");
    if t.is_empty() || t.starts_with('_') || t.ends_with('_') || t.contains("__") {
        return Err(bad());
    }
    let mut v: u64 = 0;
    for c in t.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(10).ok_or_else(bad)?;
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as u64))
            .ok_or_else(|| format!("`{s}` is too large"))?;
    }
    Ok(v)
}

/// The items of a flat TOML array (`["write", "flush"]`, `[0x0806, 2048]`), trimmed and
/// unquoted; `[]` has none, and one trailing comma is allowed.
pub fn parse_array(s: &str) -> Result<Vec<&str>, String> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| format!("expected an array, got `{s}`"))?;
    let items: Vec<&str> = inner.split(',').map(str::trim).collect();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.is_empty() && i + 1 == items.len() {
            continue;
        }
        if item.is_empty() {
            return Err(format!("an empty item in `{s}`"));
        }
        out.push(unquote(item));
    }
    Ok(out)
}

/// An integer up to `u16::MAX`, decimal or TOML's `0x` hexadecimal (`0x0806`).
pub fn parse_u16(s: &str) -> Result<u16, String> {
    let t = unquote(s);
    let v = match t.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() && !hex.starts_with('_') => {
            u64::from_str_radix(&hex.replace('_', ""), 16).map_err(|_| format!("expected an integer, got `{s}`"))?
        }
        Some(_) => return Err(format!("expected an integer, got `{s}`")),
        None => parse_u64(t)?,
    };
    u16::try_from(v).map_err(|_| format!("`{s}` is larger than 65535"))
}

/// A boolean: `true` or `false`.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match unquote(s) {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected true or false, got `{s}`")),
    }
}

/// A finite float (`1`, `0.5`, `-2.5e-1`, `1_000.5`).
pub fn parse_f64(s: &str) -> Result<f64, String> {
    let t = unquote(s);
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_finite() && !cleaned.is_empty() => Ok(v),
        _ => Err(format!("expected a number, got `{s}`")),
    }
}

/// A probability in `0..=1`.
pub fn parse_probability(s: &str) -> Result<f64, String> {
    match parse_f64(s) {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("expected a probability between 0 and 1, got `{s}`")),
    }
}

/// A duration as one number and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, with an
/// optional sign and an optional decimal fraction (`1.5ms`). A bare `0` needs no unit.
/// Returns nanoseconds (truncated toward zero below 1 ns).
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    let t = unquote(s);
    let bad = || {
        format!(
            "expected a duration such as `250us`, `5ms`, `2s`, `-2h` (units ns, us, ms, s, m, h), got `{s}`"
        )
    };
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(body.len());
    let (num, unit) = body.split_at(split);
    if num.is_empty() || num.starts_with('.') && num.len() == 1 {
        return Err(bad());
    }
    let unit_ns: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => 0,
        _ => return Err(bad()),
    };
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if frac_part.contains('.') {
        return Err(bad());
    }
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        parse_u64(int_part).map_err(|_| bad())? as u128
    };
    let mut frac_num: u128 = 0;
    let mut frac_den: u128 = 1;
    for c in frac_part.chars().filter(|&c| c != '_') {
        let d = c.to_digit(10).ok_or_else(bad)? as u128;
        if frac_den < 1_000_000_000_000_000_000 {
            frac_num = frac_num * 10 + d;
            frac_den *= 10;
        }
    }
    if unit_ns == 0 {
        // Only a plain zero may omit its unit.
        return if int == 0 && frac_num == 0 {
            Ok(0)
        } else {
            Err(bad())
        };
    }
    let total = int
        .checked_mul(unit_ns)
        .map(|v| v + frac_num * unit_ns / frac_den)
        .filter(|&v| v <= i64::MAX as u128)
        .ok_or_else(|| format!("duration `{s}` is too large (at most about 292 years)"))?;
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// A fault schedule: a TOML array of `<fault>@<n>` tokens, as the runtime hands it over
/// (`[drop@17, fail@230]`: strings unquoted) or with its items still quoted
/// (`["drop@17"]`); `[]` is the empty schedule. `<fault>` is a lowercase name
/// (`a-z`, `0-9`, `-`), `<n>` an operation number, from 1. Tokens come back in the
/// order written; which fault names a filter knows is for it to check
/// ([`crate::Config::schedule`]).
pub fn parse_schedule(s: &str) -> Result<Vec<(String, u64)>, String> {
    let t = unquote(s);
    let inner = t
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| {
            format!("expected an array of `<fault>@<n>` such as [drop@17, fail@230], got `{s}`")
        })?;
    let mut tokens = Vec::new();
    let items: Vec<&str> = inner.split(',').map(str::trim).collect();
    for (i, item) in items.iter().enumerate() {
        // TOML allows one trailing comma (and `[]` splits into one empty item).
        if item.is_empty() && i + 1 == items.len() {
            continue;
        }
        let token = item
            .strip_prefix('\'')
            .and_then(|t| t.strip_suffix('\''))
            .unwrap_or_else(|| unquote(item));
        let bad =
            || format!("bad token `{item}` (expected `<fault>@<n>` with n from 1, e.g. `drop@17`)");
        let (fault, n) = token.split_once('@').ok_or_else(bad)?;
        let name_ok = !fault.is_empty()
            && fault
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match parse_u64(n) {
            Ok(n) if n >= 1 => tokens.push((String::from(fault), n)),
            _ => return Err(bad()),
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_u64("100"), Ok(100));
        assert_eq!(parse_u64("1_000"), Ok(1000));
        assert_eq!(parse_u64(" 7 "), Ok(7));
        assert_eq!(parse_u64("\"7\""), Ok(7));
        assert_eq!(parse_u64("+3"), Ok(3));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "-1",
            "1.5",
            "abc",
            "_1",
            "1_",
            "1__0",
            "0x10",
            "18446744073709551616",
        ] {
            assert!(parse_u64(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("\"false\""), Ok(false));
        for bad in ["", "yes", "1", "True"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats_and_probabilities() {
        assert_eq!(parse_f64("0.5"), Ok(0.5));
        assert_eq!(parse_f64("-2"), Ok(-2.0));
        assert_eq!(parse_f64("1e-3"), Ok(0.001));
        assert_eq!(parse_f64("1_000.5"), Ok(1000.5));
        assert!(parse_f64("inf").is_err());
        assert!(parse_f64("nan").is_err());
        assert!(parse_f64("").is_err());
        assert_eq!(parse_probability("0"), Ok(0.0));
        assert_eq!(parse_probability("1"), Ok(1.0));
        assert_eq!(parse_probability("0.01"), Ok(0.01));
        assert!(parse_probability("1.01").is_err());
        assert!(parse_probability("-0.1").is_err());
        assert!(parse_probability("half").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("5ms"), Ok(5_000_000));
        assert_eq!(parse_duration_ns("250us"), Ok(250_000));
        assert_eq!(parse_duration_ns("250µs"), Ok(250_000));
        assert_eq!(parse_duration_ns("7ns"), Ok(7));
        assert_eq!(parse_duration_ns("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration_ns("3m"), Ok(180_000_000_000));
        assert_eq!(parse_duration_ns("-2h"), Ok(-7_200_000_000_000));
        assert_eq!(parse_duration_ns("+1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration_ns("1.5ms"), Ok(1_500_000));
        assert_eq!(parse_duration_ns("0.25s"), Ok(250_000_000));
        assert_eq!(parse_duration_ns(".5s"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("0"), Ok(0));
        assert_eq!(parse_duration_ns("\"5ms\""), Ok(5_000_000));
        assert_eq!(parse_duration_ns("1_000ms"), Ok(1_000_000_000));
        for bad in [
            "",
            "5",
            "ms",
            "5 ms",
            "5min",
            "1m30s",
            "5xs",
            "-",
            ".s",
            "1.2.3s",
            "1e3ms",
            "100000000h",
        ] {
            assert!(parse_duration_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schedules() {
        let tok = |f: &str, n: u64| (String::from(f), n);
        assert_eq!(parse_schedule("[]"), Ok(Vec::new()));
        assert_eq!(parse_schedule(" [ ] "), Ok(Vec::new()));
        assert_eq!(
            parse_schedule("[drop@17, fail@230]"),
            Ok(vec![tok("drop", 17), tok("fail", 230)])
        );
        assert_eq!(
            parse_schedule("[\"drop@17\", 'cut@3',]"),
            Ok(vec![tok("drop", 17), tok("cut", 3)])
        );
        assert_eq!(parse_schedule("\"[hang@1]\""), Ok(vec![tok("hang", 1)]));
        assert_eq!(
            parse_schedule("[\n  queue-full@18446744073709551615\n]"),
            Ok(vec![tok("queue-full", u64::MAX)])
        );
        for (bad, token) in [
            ("[drop17]", "drop17"),
            ("[drop@]", "drop@"),
            ("[@3]", "@3"),
            ("[drop@0]", "drop@0"),
            ("[drop@-1]", "drop@-1"),
            ("[drop@1_0]", "drop@1_0"),
            ("[Drop@3]", "Drop@3"),
            ("[drop@3, , fail@4]", ""),
            ("[drop@3 fail@4]", "drop@3 fail@4"),
            ("[drop@99999999999999999999]", "drop@99999999999999999999"),
        ] {
            let e = parse_schedule(bad).unwrap_err();
            assert!(e.starts_with(&format!("bad token `{token}`")), "{bad}: {e}");
        }
        for bad in ["drop@17", "[drop@17", ""] {
            assert!(
                parse_schedule(bad)
                    .unwrap_err()
                    .starts_with("expected an array"),
                "{bad}"
            );
        }
    }
}
