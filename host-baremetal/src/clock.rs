//! Time: monotonic from the TSC, calibrated against the PIT at boot; wall
//! time from the CMOS RTC read once at boot plus monotonic time since.

use crate::arch::{inb, outb, rdtsc};

/// PIT input clock, Hz.
const PIT_HZ: u64 = 1_193_182;

pub struct Tsc {
    /// TSC at boot.
    base: u64,
    /// TSC ticks per second.
    hz: u64,
    /// Wall time at `base`, ns since the Unix epoch.
    wall_base: i64,
}

fn pit_count() -> u16 {
    outb(0x43, 0x00); // latch channel 0
    let lo = inb(0x40);
    let hi = inb(0x40);
    u16::from_le_bytes([lo, hi])
}

impl Tsc {
    /// Measures the TSC against `span` PIT counts of channel 0, which must
    /// already run as a rate generator with reload `reload`. Polling the
    /// latched counter gives sub-tick precision (one read is ~1 µs), so 2 ms
    /// gives the frequency to well under 0.1%.
    pub fn calibrate(reload: u16) -> Tsc {
        let span = PIT_HZ * 2 / 1000;
        let mut prev = pit_count();
        let t0 = rdtsc();
        let mut elapsed = 0u64;
        let mut t1 = t0;
        while elapsed < span {
            let now = pit_count();
            t1 = rdtsc();
            elapsed += if now <= prev { u64::from(prev - now) } else { u64::from(prev) + u64::from(reload - now) };
            prev = now;
        }
        let hz = ((t1 - t0) as u128 * PIT_HZ as u128 / elapsed as u128) as u64;
        let wall_base = rtc_now();
        Tsc { base: t1, hz: hz.max(1), wall_base }
    }

    /// A raw TSC reading in ms since the TSC was 0.
    pub fn ms(&self, raw: u64) -> f64 {
        raw as f64 * 1000.0 / self.hz as f64
    }

    pub fn monotonic_now(&self) -> u64 {
        let d = rdtsc().saturating_sub(self.base);
        (d as u128 * 1_000_000_000 / self.hz as u128) as u64
    }

    pub fn wall_now(&self) -> i64 {
        self.wall_base.saturating_add(self.monotonic_now() as i64)
    }
}

fn cmos(reg: u8) -> u8 {
    outb(0x70, reg);
    inb(0x71)
}

/// The RTC's time, ns since the Unix epoch (UTC, as QEMU's `-rtc base=utc`).
pub fn rtc_now() -> i64 {
    // Read twice until stable, never during an update.
    let read = || {
        while cmos(0x0A) & 0x80 != 0 {}
        [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x32)]
    };
    let mut r = read();
    loop {
        let again = read();
        if again == r {
            break;
        }
        r = again;
    }
    let b = cmos(0x0B);
    let bcd = |v: u8| if b & 0x04 == 0 { (v & 0x0F) + (v >> 4) * 10 } else { v };
    let [s, m, h, d, mo, y, c] = r;
    let pm = b & 0x02 == 0 && h & 0x80 != 0;
    let mut hour = bcd(h & 0x7F) as i64;
    if b & 0x02 == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match bcd(c) {
        19..=21 => bcd(c) as i64,
        _ => 20,
    };
    let year = century * 100 + bcd(y) as i64;
    let days = days_from_civil(year, bcd(mo) as i64, bcd(d) as i64);
    let secs = days * 86400 + hour * 3600 + bcd(m) as i64 * 60 + bcd(s) as i64;
    secs * 1_000_000_000
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
