//! A small seeded PRNG (xorshift64*), as in smoltcp's `FaultInjector`: fault injection must
//! be reproducible from the manifest's `seed`, not cryptographically strong.
//!
//! Fault filters decide with the counter-based functions ([`hash`], [`chance`], [`below`])
//! rather than a stream: a decision about operation `n` is a function of `(seed, n, salt)`
//! alone, so it is the same whatever was decided before it. That is what lets a fault
//! schedule replay one fault of a run without the others (removing `drop@17` from a
//! schedule must not move the bit `corrupt@230` flips).

/// splitmix64's increment (2^64 / φ) and finalizer (Steele, Lea, Flood 2014).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit value for `(seed, n, salt)`: `n` is the operation (or frame)
/// number, `salt` tells apart the decisions made about the same operation (drop, which
/// byte, which bit…). One splitmix64 round per input, so neighbouring `n` (or seeds, or
/// salts) give unrelated outputs.
pub fn hash(seed: u64, n: u64, salt: u64) -> u64 {
    splitmix(splitmix(splitmix(seed) ^ n) ^ salt)
}

/// Uniform in `[0, 1)` for `(seed, n, salt)`, from the top 53 bits of [`hash`].
pub fn unit(seed: u64, n: u64, salt: u64) -> f64 {
    (hash(seed, n, salt) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// True with probability `p` (0 never, 1 always) for `(seed, n, salt)`.
pub fn chance(seed: u64, n: u64, salt: u64, p: f64) -> bool {
    unit(seed, n, salt) < p
}

/// Uniform in `[0, bound)` for `(seed, n, salt)` (multiply-high, as [`Rng::below`]).
/// `bound == 0` returns 0.
pub fn below(seed: u64, n: u64, salt: u64, bound: u64) -> u64 {
    ((hash(seed, n, salt) as u128 * bound as u128) >> 64) as u64
}

/// xorshift64* (Vigna 2016). Never in the all-zero state.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Seed the generator. Every seed (including 0) gives a distinct, non-degenerate
    /// stream: the seed is first mixed with splitmix64, so nearby seeds do not start
    /// with nearby outputs.
    pub fn new(seed: u64) -> Rng {
        let z = splitmix(seed);
        Rng {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (0 never, 1 always). Always draws one number, so the
    /// stream does not depend on `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform in `[0, n)` (multiply-high; bias below 2^-32 for the sizes used here).
    /// `n == 0` returns 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[-bound, +bound]` (`bound` is taken as its absolute value).
    pub fn symmetric(&mut self, bound: i64) -> i64 {
        let b = bound.unsigned_abs();
        if b == 0 {
            return 0;
        }
        let span = b.saturating_mul(2).saturating_add(1);
        (self.below(span) as i128 - b as i128) as i64
    }

    /// Fill `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_seed() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(1);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(2);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut z = Rng::new(0);
        assert_ne!(z.next_u64(), 0);
    }

    #[test]
    fn ranges() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
            assert!(r.below(10) < 10);
            let s = r.symmetric(3);
            assert!((-3..=3).contains(&s));
        }
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
        assert_eq!(r.symmetric(0), 0);
        // Extremes do not overflow.
        let s = r.symmetric(i64::MIN);
        let _ = s;
    }

    #[test]
    fn chance_is_roughly_p() {
        let mut r = Rng::new(42);
        let hits = (0..100_000).filter(|_| r.chance(0.25)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
    }

    #[test]
    fn counter_based_is_a_function_of_its_inputs() {
        // Same inputs, same value, in any order of asking.
        let a: Vec<u64> = (1..100).map(|n| hash(7, n, 1)).collect();
        let b: Vec<u64> = (1..100).rev().map(|n| hash(7, n, 1)).collect();
        assert!(a.iter().eq(b.iter().rev()));
        // Each input matters.
        assert_ne!(hash(7, 5, 1), hash(8, 5, 1));
        assert_ne!(hash(7, 5, 1), hash(7, 6, 1));
        assert_ne!(hash(7, 5, 1), hash(7, 5, 2));
        assert_ne!(hash(0, 0, 0), 0);
        // Seed and n do not commute.
        assert_ne!(hash(1, 2, 0), hash(2, 1, 0));
        for n in 0..10_000 {
            assert!(below(3, n, 9, 10) < 10);
            assert!((0.0..1.0).contains(&unit(3, n, 9)));
            assert!(!chance(3, n, 9, 0.0));
            assert!(chance(3, n, 9, 1.0));
        }
        assert_eq!(below(3, 1, 9, 0), 0);
    }

    #[test]
    fn counter_based_chance_is_roughly_p() {
        let hits = (1..=100_000).filter(|&n| chance(42, n, 5, 0.25)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        // Two salts on the same operations are independent: about p² together.
        let both = (1..=100_000)
            .filter(|&n| chance(42, n, 5, 0.5) && chance(42, n, 6, 0.5))
            .count();
        assert!((23_000..27_000).contains(&both), "{both}");
    }

    #[test]
    fn fill_partial_chunk() {
        let mut r = Rng::new(3);
        let mut buf = [0u8; 13];
        r.fill(&mut buf);
        assert!(buf.iter().any(|&b| b != 0));
    }
}
