//! `wasi:random`: everything comes from weft's `random.fill`, so a manifest that binds
//! a seeded random device makes the program's randomness reproducible.

use alloc::vec::Vec;

use weft_guest::{Global, Rng};

use crate::WasiOnWeft;
use crate::exports::wasi::random::{insecure, insecure_seed, random};
use crate::weft::devices::random as weft_random;

/// The most `random.fill` takes in one call.
pub const FILL_MAX: u64 = 65536;

/// The sizes of the `fill` calls that make up `len` bytes.
pub fn fill_chunks(len: u64) -> impl Iterator<Item = u32> {
    let full = len / FILL_MAX;
    let rest = len % FILL_MAX;
    (0..full)
        .map(|_| FILL_MAX as u32)
        .chain((rest > 0).then_some(rest as u32))
}

/// `len` bytes from the random device. Grows as it goes rather than reserving `len` up
/// front, so an absurd `len` runs into the run's memory limit, not an allocation panic.
fn bytes(len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for n in fill_chunks(len) {
        out.extend_from_slice(&weft_random::fill(n));
    }
    out
}

/// A little-endian `u64` from the first 8 bytes (zero-padded if fewer: the device
/// returns exactly what is asked for, but a short reply must not panic).
pub fn le_u64(b: &[u8]) -> u64 {
    let mut le = [0u8; 8];
    for (d, s) in le.iter_mut().zip(b) {
        *d = *s;
    }
    u64::from_le_bytes(le)
}

pub(crate) fn u64_from_device() -> u64 {
    le_u64(&weft_random::fill(8))
}

impl random::Guest for WasiOnWeft {
    fn get_random_bytes(len: u64) -> Vec<u8> {
        bytes(len)
    }

    fn get_random_u64() -> u64 {
        u64_from_device()
    }
}

/// The insecure generator, seeded from the device on first use.
static INSECURE: Global<Option<Rng>> = Global::new(None);

fn with_insecure<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    INSECURE.with(|r| f(r.get_or_insert_with(|| Rng::new(u64_from_device()))))
}

impl insecure::Guest for WasiOnWeft {
    fn get_insecure_random_bytes(len: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            with_insecure(|r| r.fill(&mut chunk[..n]));
            out.extend_from_slice(&chunk[..n]);
            left -= n as u64;
        }
        out
    }

    fn get_insecure_random_u64() -> u64 {
        with_insecure(Rng::next_u64)
    }
}

impl insecure_seed::Guest for WasiOnWeft {
    fn insecure_seed() -> (u64, u64) {
        let b = weft_random::fill(16);
        (le_u64(&b), le_u64(b.get(8..).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn little_endian_words() {
        assert_eq!(le_u64(&[1, 0, 0, 0, 0, 0, 0, 0, 9]), 1);
        assert_eq!(le_u64(&[0, 0, 0, 0, 0, 0, 0, 0x80]), 1 << 63);
        assert_eq!(le_u64(&[2]), 2);
        assert_eq!(le_u64(&[]), 0);
    }

    #[test]
    fn fill_calls_stay_within_the_device_limit() {
        assert_eq!(fill_chunks(0).count(), 0);
        assert_eq!(fill_chunks(16).collect::<Vec<_>>(), [16]);
        assert_eq!(fill_chunks(FILL_MAX).collect::<Vec<_>>(), [65536]);
        assert_eq!(
            fill_chunks(2 * FILL_MAX + 3).collect::<Vec<_>>(),
            [65536, 65536, 3]
        );
        assert_eq!(
            fill_chunks(1_000_000).map(u64::from).sum::<u64>(),
            1_000_000
        );
    }
}
