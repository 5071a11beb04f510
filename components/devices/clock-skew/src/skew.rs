//! The skew arithmetic, apart from the bindings so it is tested on the host.

use alloc::string::String;

use weft_guest::{Config, Rng};

pub const KEYS: [&str; 4] = ["offset", "rate", "jitter", "seed"];

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Added to wall time only.
    pub offset_ns: i64,
    /// How fast skewed time runs against real time (1 = same; 0 frozen; < 0 backwards).
    pub rate: f64,
    /// Each reading gets a uniform extra in `[-jitter, +jitter]`.
    pub jitter_ns: i64,
    /// For the jitter: `seed`, else the simulation's `sim-seed`, else 1.
    pub seed: u64,
}

impl Plan {
    pub fn from_config(pairs: &[(String, String)]) -> Result<Plan, String> {
        let c = Config::new(pairs, &KEYS)?;
        Ok(Plan {
            offset_ns: c.duration_ns("offset")?.unwrap_or(0),
            rate: c.f64("rate")?.unwrap_or(1.0),
            jitter_ns: c.nonneg_duration_ns("jitter")?.unwrap_or(0),
            seed: c.seed(1)?,
        })
    }
}

/// Skewed time as a function of real time, anchored at the real readings taken at
/// `configure` (skewed and real monotonic time agree at that instant).
pub struct Skew {
    pub plan: Plan,
    base_mono: u64,
    base_wall: i64,
    rng: Rng,
}

/// What `wait-until` should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Wait {
    /// The skewed deadline has passed: return at once.
    Now,
    /// Wait on the real clock until this real instant.
    Until(u64),
}

impl Skew {
    pub fn new(plan: Plan, base_mono: u64, base_wall: i64) -> Skew {
        Skew {
            rng: Rng::new(plan.seed),
            plan,
            base_mono,
            base_wall,
        }
    }

    /// `elapsed` real nanoseconds scaled by the rate.
    fn scale(&self, elapsed: i128) -> i128 {
        if self.plan.rate == 1.0 {
            elapsed
        } else {
            // Saturating float-to-int cast; f64 keeps ~2^53 ns (104 days) exact, ample
            // for a run.
            (elapsed as f64 * self.plan.rate) as i128
        }
    }

    fn jitter(&mut self) -> i128 {
        self.rng.symmetric(self.plan.jitter_ns) as i128
    }

    /// Skewed monotonic time for a real reading, without jitter.
    pub fn mono_exact(&self, real: u64) -> i128 {
        self.base_mono as i128 + self.scale(real as i128 - self.base_mono as i128)
    }

    /// Skewed monotonic reading (with jitter), clamped to the `instant` range.
    pub fn mono(&mut self, real: u64) -> u64 {
        let t = self.mono_exact(real) + self.jitter();
        t.clamp(0, u64::MAX as i128) as u64
    }

    /// Skewed wall reading: offset, rate (anchored at configure) and jitter.
    pub fn wall(&mut self, real: i64) -> i64 {
        let t = self.base_wall as i128
            + self.plan.offset_ns as i128
            + self.scale(real as i128 - self.base_wall as i128)
            + self.jitter();
        t.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Translate a skewed deadline into a real one, given the real monotonic time now.
    ///
    /// With `rate > 0` skewed time reaches the deadline after `(deadline - skewed_now) /
    /// rate` real nanoseconds. With `rate <= 0` it never does (it is frozen or runs
    /// backwards), and waiting forever would only hand the decision to the run's
    /// timeout; instead we wait as long as an unskewed clock would (`rate` taken as 1),
    /// and the caller, which MUST re-check its condition, sees the skewed time it gets.
    pub fn wait(&self, deadline: u64, real_now: u64) -> Wait {
        let ahead = deadline as i128 - self.mono_exact(real_now);
        if ahead <= 0 {
            return Wait::Now;
        }
        let real_ahead: i128 = if self.plan.rate > 0.0 {
            // Round up (no `f64::ceil` in core): never wake before the skewed deadline.
            let q = ahead as f64 / self.plan.rate;
            let t = q as i128;
            if (t as f64) < q { t + 1 } else { t }
        } else {
            ahead
        };
        Wait::Until((real_now as i128 + real_ahead).clamp(0, u64::MAX as i128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn plan(kv: &[(&str, &str)]) -> Plan {
        let pairs: Vec<(String, String)> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Plan::from_config(&pairs).unwrap()
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn config() {
        let p = plan(&[
            ("offset", "-2h"),
            ("rate", "0.5"),
            ("jitter", "1ms"),
            ("seed", "3"),
        ]);
        assert_eq!(
            p,
            Plan {
                offset_ns: -7200 * S as i64,
                rate: 0.5,
                jitter_ns: 1_000_000,
                seed: 3
            }
        );
        assert_eq!(
            plan(&[]),
            Plan {
                offset_ns: 0,
                rate: 1.0,
                jitter_ns: 0,
                seed: 1
            }
        );
        let bad =
            |k: &str, v: &str| Plan::from_config(&[(k.to_string(), v.to_string())]).unwrap_err();
        assert!(
            bad("ofset", "1s")
                .starts_with("unknown key `ofset` (known: offset, rate, jitter, seed)")
        );
        assert!(bad("rate", "fast").contains("`rate`"));
        assert!(bad("jitter", "-1ms").contains("`jitter`"));
        assert!(bad("offset", "2 hours").contains("`offset`"));
    }

    #[test]
    fn jitter_seed_is_sim_seed_unless_seed_is_set() {
        assert_eq!(plan(&[("sim-seed", "11"), ("sim-phase", "2")]).seed, 11);
        assert_eq!(plan(&[("sim-seed", "11"), ("seed", "4")]).seed, 4);
    }

    #[test]
    fn offset_applies_to_wall_only() {
        let mut s = Skew::new(plan(&[("offset", "-2h")]), 100 * S, 1_000 * S as i64);
        assert_eq!(s.mono(105 * S), 105 * S);
        assert_eq!(s.wall(1_005 * S as i64), (1_005 - 7_200) * S as i64);
    }

    #[test]
    fn rate_scales_from_configure() {
        let mut s = Skew::new(plan(&[("rate", "2")]), 100 * S, 0);
        assert_eq!(s.mono(100 * S), 100 * S);
        assert_eq!(s.mono(110 * S), 120 * S);
        assert_eq!(s.wall(10 * S as i64), 20 * S as i64);
        let mut frozen = Skew::new(plan(&[("rate", "0")]), 100 * S, 0);
        assert_eq!(frozen.mono(500 * S), 100 * S);
        let mut back = Skew::new(plan(&[("rate", "-1")]), 100 * S, 0);
        assert_eq!(back.mono(130 * S), 70 * S);
        // Clamped at the start of the instant range rather than wrapping.
        assert_eq!(back.mono(300 * S), 0);
    }

    #[test]
    fn jitter_is_bounded_and_seeded() {
        let mut a = Skew::new(plan(&[("jitter", "1ms"), ("seed", "5")]), 10 * S, 0);
        let mut b = Skew::new(plan(&[("jitter", "1ms"), ("seed", "5")]), 10 * S, 0);
        for _ in 0..1000 {
            let x = a.mono(20 * S);
            assert_eq!(x, b.mono(20 * S));
            assert!((20 * S - 1_000_000..=20 * S + 1_000_000).contains(&x));
        }
    }

    #[test]
    fn wait_translation() {
        let half = Skew::new(plan(&[("rate", "0.5")]), 0, 0);
        // Skewed now at real 10 s is 5 s; a deadline at skewed 6 s is 2 real seconds away.
        assert_eq!(half.wait(6 * S, 10 * S), Wait::Until(12 * S));
        assert_eq!(half.wait(5 * S, 10 * S), Wait::Now);
        let double = Skew::new(plan(&[("rate", "2")]), 0, 0);
        assert_eq!(double.wait(24 * S, 10 * S), Wait::Until(12 * S));
        let frozen = Skew::new(plan(&[("rate", "0")]), 0, 0);
        assert_eq!(frozen.wait(3 * S, 10 * S), Wait::Until(13 * S));
        let back = Skew::new(plan(&[("rate", "-1")]), 10 * S, 0);
        assert_eq!(back.wait(0, 20 * S), Wait::Now);
        assert_eq!(back.wait(10 * S, 20 * S), Wait::Until(30 * S));
    }
}
