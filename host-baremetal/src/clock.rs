//! Time: monotonic from the TSC, calibrated against the PIT; wall time from
//! the CMOS RTC read once at boot plus monotonic time since.
//!
//! Calibration costs no boot time: `Tsc::start` anchors the TSC to the PIT
//! (running with its longest period, 55 ms) and takes a rough rate from
//! 0.2 ms of polling; the boot goes on (bundle, engine, components) and
//! `Tsc::refine` — called before anything reads the clock — takes a second
//! reading. The PIT count between the two is known up to whole periods, and
//! the rough rate tells how many periods passed, so the rate comes from the
//! whole stretch of boot (several ms) without waiting for it. Then the PIT
//! becomes the 1 kHz tick.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{inb, outb, rdtsc};

/// PIT input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// The PIT's period while the boot runs: the longest there is (55 ms), so
/// the rough rate only has to tell which period the second reading is in.
const BOOT_RELOAD: u16 = 0xFFFF;
/// Polling for the rough rate: 0.2 ms.
const ROUGH: u64 = PIT_HZ / 5000;
/// The shortest stretch the final rate is taken over (2 ms: a reading is
/// good to ~1 us, so the rate to well under 0.1%).
const MIN_SPAN: u64 = PIT_HZ * 2 / 1000;

pub struct Tsc {
    /// TSC at the anchor reading.
    base: u64,
    /// PIT count at the anchor reading.
    base_count: u16,
    /// TSC ticks per second: rough until `refine`.
    hz: AtomicU64,
    /// Wall time at `base`, ns since the Unix epoch.
    wall_base: i64,
}

/// Latches and reads PIT channel 0; the TSC just before the latch.
fn pit_reading() -> (u64, u16) {
    let t = rdtsc();
    outb(0x43, 0x00); // latch channel 0
    let lo = inb(0x40);
    let hi = inb(0x40);
    (t, u16::from_le_bytes([lo, hi]))
}

/// PIT counts from `from` to `to` (the counter runs down and reloads at
/// `reload`), modulo one period.
fn counts_between(from: u16, to: u16, reload: u16) -> u64 {
    if to <= from { u64::from(from - to) } else { u64::from(from) + u64::from(reload - to) }
}

/// Starts PIT channel 0 as a rate generator with period `reload`.
fn pit_rate(reload: u16) {
    outb(0x43, 0x34); // channel 0, lobyte/hibyte, mode 2
    outb(0x40, reload as u8);
    outb(0x40, (reload >> 8) as u8);
}

impl Tsc {
    /// Anchors the TSC to the PIT (which it starts with the boot period)
    /// and takes a rough rate; `refine` finishes the calibration.
    pub fn start() -> Tsc {
        pit_rate(BOOT_RELOAD);
        let (t0, c0) = pit_reading();
        let (mut prev, mut elapsed, mut t1) = (c0, 0u64, t0);
        while elapsed < ROUGH {
            let (t, c) = pit_reading();
            elapsed += counts_between(prev, c, BOOT_RELOAD);
            (prev, t1) = (c, t);
        }
        let hz = ((t1 - t0) as u128 * PIT_HZ as u128 / elapsed as u128) as u64;
        Tsc { base: t0, base_count: c0, hz: AtomicU64::new(hz.max(1)), wall_base: rtc_now() }
    }

    /// Measures the rate over everything since `start`, then makes the PIT
    /// the `tick_hz` timer. Call once, before anything reads the clock.
    pub fn refine(&self, tick_hz: u32) {
        let rough = self.hz.load(Ordering::Relaxed);
        let (elapsed, t) = loop {
            let (t, c) = pit_reading();
            // Whole periods since the anchor, from the rough rate: it is
            // good to a few percent, and a period is 55 ms.
            let estimate = (t - self.base) as u128 * PIT_HZ as u128 / rough as u128;
            let part = counts_between(self.base_count, c, BOOT_RELOAD);
            let periods = (estimate.saturating_sub(part as u128) + u128::from(BOOT_RELOAD / 2)) / u128::from(BOOT_RELOAD);
            if estimate > 20 * u128::from(BOOT_RELOAD) {
                // Over a second of boot: a rough rate off by 2.5% could
                // miss a period. Calibrate the old way.
                break Self::poll(t, c);
            }
            let elapsed = periods as u64 * u64::from(BOOT_RELOAD) + part;
            if elapsed >= MIN_SPAN {
                break (elapsed, t - self.base);
            }
        };
        self.hz.store(((t as u128 * PIT_HZ as u128 / elapsed as u128) as u64).max(1), Ordering::Relaxed);
        pit_rate((PIT_HZ / u64::from(tick_hz)) as u16);
    }

    /// Polls the PIT from `(t0, c0)` for `MIN_SPAN` counts: (counts, TSC ticks).
    fn poll(t0: u64, c0: u16) -> (u64, u64) {
        let (mut prev, mut elapsed, mut t1) = (c0, 0u64, t0);
        while elapsed < MIN_SPAN {
            let (t, c) = pit_reading();
            elapsed += counts_between(prev, c, BOOT_RELOAD);
            (prev, t1) = (c, t);
        }
        (elapsed, t1 - t0)
    }

    /// TSC ticks per second.
    pub fn hz(&self) -> u64 {
        self.hz.load(Ordering::Relaxed)
    }

    /// A raw TSC reading in ms since the TSC was 0.
    pub fn ms(&self, raw: u64) -> f64 {
        raw as f64 * 1000.0 / self.hz.load(Ordering::Relaxed) as f64
    }

    pub fn monotonic_now(&self) -> u64 {
        let d = rdtsc().saturating_sub(self.base);
        (d as u128 * 1_000_000_000 / self.hz.load(Ordering::Relaxed) as u128) as u64
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
