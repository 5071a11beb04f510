//! Small formatting helpers shared by the guests.

use alloc::format;
use alloc::string::String;

/// An IPv4 address as `10.0.0.2`.
pub fn ip(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// A MAC address as `52:54:00:12:34:56`.
pub fn mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// A duration for humans: `850ns`, `3.2us`, `1.5ms`, `2.0s` (one decimal above 1 us);
/// whole minutes and hours as `3m`, `-2h`.
pub fn duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let n = ns.unsigned_abs();
    const MIN: u64 = 60_000_000_000;
    if n >= MIN && n % MIN == 0 {
        return if n % (60 * MIN) == 0 {
            format!("{sign}{}h", n / (60 * MIN))
        } else {
            format!("{sign}{}m", n / MIN)
        };
    }
    let (unit, div) = match n {
        0..1_000 => return format!("{sign}{n}ns"),
        1_000..1_000_000 => ("us", 1_000),
        1_000_000..1_000_000_000 => ("ms", 1_000_000),
        _ => ("s", 1_000_000_000),
    };
    // Round to one decimal without floats.
    let tenths = (n as u128 * 10 + div as u128 / 2) / div as u128;
    format!("{sign}{}.{}{unit}", tenths / 10, tenths % 10)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// RFC 3339 UTC with milliseconds (`2026-11-26T23:18:32.123Z`) for nanoseconds since the
/// Unix epoch; negative values are before 1970. Every `i64` maps to a year in 1677..=2262.
pub fn rfc3339_utc(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let sub_ns = unix_ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        sub_ns / 1_000_000
    )
}

/// Howard Hinnant's `civil_from_days`: proleptic Gregorian date of a day count from
/// 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0ns");
        assert_eq!(duration(850), "850ns");
        assert_eq!(duration(3_200), "3.2us");
        assert_eq!(duration(3_249), "3.2us");
        assert_eq!(duration(1_500_000), "1.5ms");
        assert_eq!(duration(2_000_000_000), "2.0s");
        assert_eq!(duration(-5_000_000), "-5.0ms");
        assert_eq!(duration(-7_200_000_000_000), "-2h");
        assert_eq!(duration(90_000_000_000), "90.0s");
        assert_eq!(duration(180_000_000_000), "3m");
        assert_eq!(duration(i64::MIN), "-9223372036.9s");
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_utc(1_795_735_112_123_456_789),
            "2026-11-26T23:18:32.123Z"
        );
        assert_eq!(rfc3339_utc(i64::MIN), "1677-09-21T00:12:43.145Z");
        assert_eq!(rfc3339_utc(i64::MAX), "2262-04-11T23:47:16.854Z");
    }
}
