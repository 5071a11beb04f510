//! Sizes (`16MiB`) and durations (`30s`, `-2h`) as written in manifests.

/// Parses a byte size: a plain integer, or a number with a unit
/// `B`, `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parses a duration in nanoseconds: an optional `-`, then one or more
/// `<integer><unit>` parts with units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`
/// (`1h30m`, `250us`, `-2h`).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult: i64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(if neg { -total } else { total })
}

/// Formats a byte count the way manifests write it (`16 MiB`, `1536 B`).
pub fn format_size(n: u64) -> alloc::string::String {
    const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (name, m) in UNITS {
        if n >= m && n % m == 0 {
            return alloc::format!("{} {name}", n / m);
        }
    }
    alloc::format!("{n} B")
}

/// Formats a byte count to one decimal (`17.1 KiB`, `65.4 MiB`).
pub fn format_size_approx(n: u64) -> alloc::string::String {
    match n {
        0..1024 => alloc::format!("{n} B"),
        1024..1048576 => alloc::format!("{:.1} KiB", n as f64 / 1024.0),
        _ => alloc::format!("{:.1} MiB", n as f64 / 1048576.0),
    }
}

/// Formats nanoseconds compactly (`30s`, `5ms`, `1.5s`).
pub fn format_duration(ns: i64) -> alloc::string::String {
    let a = ns.unsigned_abs();
    let sign = if ns < 0 { "-" } else { "" };
    let (v, unit) = match a {
        0..1_000 => return alloc::format!("{sign}{a}ns"),
        1_000..1_000_000 => (a as f64 / 1e3, "us"),
        1_000_000..1_000_000_000 => (a as f64 / 1e6, "ms"),
        _ if a < 60_000_000_000 || a % 60_000_000_000 != 0 => (a as f64 / 1e9, "s"),
        _ if a % 3_600_000_000_000 == 0 => (a as f64 / 3.6e12, "h"),
        _ => (a as f64 / 6e10, "m"),
    };
    alloc::format!("{sign}{v}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1 GiB"), Some(1 << 30));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        assert_eq!(parse_size("16mb"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("99999999999999TiB"), None);
        assert_eq!(format_size(16 << 20), "16 MiB");
        assert_eq!(format_size(1536), "1536 B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("-2h"), Some(-7_200_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("250us"), Some(250_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(format_duration(30_000_000_000), "30s");
        assert_eq!(format_duration(-7_200_000_000_000), "-2h");
        assert_eq!(format_duration(5_000_000), "5ms");
        assert_eq!(format_duration(90_000_000_000), "90s");
    }
}
