//! The fault plan and its decisions, apart from the bindings so it is tested on the host.
//! Like smoltcp's `FaultInjector`: explicit seed, rates from config, one decision per
//! operation.

use alloc::string::String;

use weft_guest::{Config, Rng};

pub const KEYS: [&str; 7] = [
    "drop-every",
    "drop-chance",
    "seed",
    "fail-every",
    "corrupt-chance",
    "latency",
    "hang-after",
];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Every Nth write (counting writes from 1) returns ok without reaching the device.
    pub drop_every: Option<u64>,
    /// Probability per write of the same silent drop.
    pub drop_chance: f64,
    pub seed: u64,
    /// Every Nth operation (read, write or flush, counted together from 1) fails with
    /// `io` without reaching the device.
    pub fail_every: Option<u64>,
    /// Probability per successful read of one flipped bit in the data returned.
    pub corrupt_chance: f64,
    /// Added to every operation, waited out on the host clock.
    pub latency_ns: u64,
    /// Operations after the first N never return.
    pub hang_after: Option<u64>,
}

impl Plan {
    pub fn from_config(pairs: &[(String, String)]) -> Result<Plan, String> {
        let c = Config::new(pairs, &KEYS)?;
        Ok(Plan {
            drop_every: c.positive("drop-every")?,
            drop_chance: c.probability("drop-chance")?.unwrap_or(0.0),
            seed: c.u64("seed")?.unwrap_or(1),
            fail_every: c.positive("fail-every")?,
            corrupt_chance: c.probability("corrupt-chance")?.unwrap_or(0.0),
            latency_ns: c.nonneg_duration_ns("latency")?.unwrap_or(0) as u64,
            hang_after: c.u64("hang-after")?,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Flush,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Flush => "flush",
        }
    }
}

/// What to do with one operation. `n` is the operation's number (all kinds counted
/// together, from 1); `write` the write's number among writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Never return (`hang-after`).
    Hang { n: u64 },
    /// Return `io` without calling the device (`fail-every`).
    Fail { n: u64 },
    /// Return ok without calling the device; `cause` is the config key.
    Drop {
        n: u64,
        write: u64,
        cause: &'static str,
    },
    /// Call the device. For a read, `corrupt` says to flip a bit in a successful result.
    Pass { n: u64, corrupt: bool },
}

pub struct Faults {
    pub plan: Plan,
    rng: Rng,
    ops: u64,
    writes: u64,
}

impl Faults {
    pub fn new(plan: Plan) -> Faults {
        Faults {
            rng: Rng::new(plan.seed),
            plan,
            ops: 0,
            writes: 0,
        }
    }

    /// Decide the fate of the next operation. `droppable` is false for a write whose
    /// arguments the device would reject anyway: dropping it would hide that error.
    pub fn decide(&mut self, op: Op, droppable: bool) -> Verdict {
        self.ops += 1;
        let n = self.ops;
        if op == Op::Write {
            self.writes += 1;
        }
        if self.plan.hang_after.is_some_and(|h| n > h) {
            return Verdict::Hang { n };
        }
        if self.plan.fail_every.is_some_and(|f| n % f == 0) {
            return Verdict::Fail { n };
        }
        match op {
            Op::Write if droppable => {
                let w = self.writes;
                if self.plan.drop_every.is_some_and(|d| w % d == 0) {
                    return Verdict::Drop {
                        n,
                        write: w,
                        cause: "drop-every",
                    };
                }
                if self.plan.drop_chance > 0.0 && self.rng.chance(self.plan.drop_chance) {
                    return Verdict::Drop {
                        n,
                        write: w,
                        cause: "drop-chance",
                    };
                }
                Verdict::Pass { n, corrupt: false }
            }
            Op::Read => {
                let corrupt =
                    self.plan.corrupt_chance > 0.0 && self.rng.chance(self.plan.corrupt_chance);
                Verdict::Pass { n, corrupt }
            }
            _ => Verdict::Pass { n, corrupt: false },
        }
    }

    /// Flip one random bit of `data`; returns `(byte, bit)`, or `None` for empty data.
    pub fn flip(&mut self, data: &mut [u8]) -> Option<(usize, u8)> {
        if data.is_empty() {
            return None;
        }
        let byte = self.rng.below(data.len() as u64) as usize;
        let bit = self.rng.below(8) as u8;
        data[byte] ^= 1 << bit;
        Some((byte, bit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn plan(kv: &[(&str, &str)]) -> Result<Plan, String> {
        let pairs: Vec<(String, String)> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Plan::from_config(&pairs)
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(
            plan(&[("drop-evry", "3")])
                .unwrap_err()
                .starts_with("unknown key `drop-evry` (known: drop-every, ")
        );
        assert!(
            plan(&[("drop-every", "0")])
                .unwrap_err()
                .contains("`drop-every`")
        );
        assert!(
            plan(&[("drop-chance", "1.5")])
                .unwrap_err()
                .contains("`drop-chance`")
        );
        assert!(plan(&[("latency", "5")]).unwrap_err().contains("`latency`"));
        assert!(
            plan(&[("latency", "-5ms")])
                .unwrap_err()
                .contains("`latency`")
        );
        assert!(
            plan(&[("hang-after", "x")])
                .unwrap_err()
                .contains("`hang-after`")
        );
        let p = plan(&[("latency", "5ms"), ("hang-after", "0"), ("seed", "9")]).unwrap();
        assert_eq!(p.latency_ns, 5_000_000);
        assert_eq!(p.hang_after, Some(0));
        assert_eq!(plan(&[]).unwrap().seed, 1);
    }

    #[test]
    fn drop_every_counts_writes_only() {
        let mut f = Faults::new(plan(&[("drop-every", "3")]).unwrap());
        let mut dropped = Vec::new();
        for i in 0..12 {
            f.decide(Op::Read, true);
            if let Verdict::Drop { write, .. } = f.decide(Op::Write, true) {
                dropped.push((i, write));
            }
        }
        assert_eq!(dropped, [(2, 3), (5, 6), (8, 9), (11, 12)]);
        // An invalid write is never dropped, but still counts.
        let mut f = Faults::new(plan(&[("drop-every", "1")]).unwrap());
        assert_eq!(
            f.decide(Op::Write, false),
            Verdict::Pass {
                n: 1,
                corrupt: false
            }
        );
        assert!(matches!(
            f.decide(Op::Write, true),
            Verdict::Drop { write: 2, .. }
        ));
    }

    #[test]
    fn fail_every_counts_all_ops_and_hang_after() {
        let mut f = Faults::new(plan(&[("fail-every", "2"), ("hang-after", "5")]).unwrap());
        let v: Vec<Verdict> = [
            Op::Read,
            Op::Write,
            Op::Flush,
            Op::Read,
            Op::Write,
            Op::Read,
        ]
        .into_iter()
        .map(|op| f.decide(op, true))
        .collect();
        assert_eq!(v[1], Verdict::Fail { n: 2 });
        assert_eq!(v[3], Verdict::Fail { n: 4 });
        assert_eq!(
            v[4],
            Verdict::Pass {
                n: 5,
                corrupt: false
            }
        );
        assert_eq!(v[5], Verdict::Hang { n: 6 });
    }

    #[test]
    fn chances_are_seeded() {
        let run = |seed: &str| {
            let mut f = Faults::new(
                plan(&[
                    ("drop-chance", "0.1"),
                    ("corrupt-chance", "0.5"),
                    ("seed", seed),
                ])
                .unwrap(),
            );
            (0..1000)
                .map(|i| f.decide(if i % 2 == 0 { Op::Write } else { Op::Read }, true))
                .collect::<Vec<_>>()
        };
        assert_eq!(run("7"), run("7"));
        assert_ne!(run("7"), run("8"));
        let v = run("7");
        let drops = v
            .iter()
            .filter(|v| matches!(v, Verdict::Drop { .. }))
            .count();
        let corrupt = v
            .iter()
            .filter(|v| matches!(v, Verdict::Pass { corrupt: true, .. }))
            .count();
        assert!((25..80).contains(&drops), "{drops}");
        assert!((200..300).contains(&corrupt), "{corrupt}");
    }

    #[test]
    fn flip_changes_one_bit() {
        let mut f = Faults::new(Plan::default());
        let mut d = [0u8; 64];
        let (byte, bit) = f.flip(&mut d).unwrap();
        assert_eq!(d.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
        assert_eq!(d[byte], 1 << bit);
        assert_eq!(f.flip(&mut []), None);
    }
}
