//! The fault plan and its decisions, apart from the bindings so it is tested on the host.
//! Like smoltcp's `FaultInjector`: explicit seed, rates from config, one decision per
//! operation.
//!
//! Operations (read, write, flush) are numbered together from 1; `n` below is that
//! number. Every random decision is counter-based ([`weft_guest::rng::chance`] of the
//! seed, `n` and a salt per kind of decision), never a draw from a stream, so a fault and
//! its details (which bit flips) are the same whatever other faults the run had: a
//! `schedule` that keeps some of a run's faults replays each of them exactly.

use alloc::string::String;

use weft_guest::{Config, Schedule, rng};

pub const KEYS: [&str; 11] = [
    "drop-every",
    "drop-chance",
    "seed",
    "fail-every",
    "corrupt-chance",
    "latency",
    "hang-after",
    "power-cut-after",
    "torn-writes",
    "schedule",
    "ops",
];

/// The operations `ops` may name, in [`Plan::ops`]'s order.
pub const OPS: [&str; 3] = ["read", "write", "flush"];

/// The faults a `schedule` may name; each event's `schedule` field is `<fault>@<n>`.
pub const FAULTS: [&str; 5] = ["drop", "fail", "corrupt", "hang", "cut"];

/// Salts: one per kind of decision made about the same operation.
const SALT_DROP: u64 = 1;
const SALT_CORRUPT: u64 = 2;
const SALT_BYTE: u64 = 3;
const SALT_BIT: u64 = 4;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Every Nth write (counting writes from 1) returns ok without reaching the device.
    pub drop_every: Option<u64>,
    /// Probability per write of the same silent drop.
    pub drop_chance: f64,
    /// `seed`, else the simulation's `sim-seed`, else 1.
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
    /// The power fails when operation N+1 is about to start. `None` in a phase after the
    /// first (the boot after the cut must not cut again).
    pub power_cut_after: Option<u64>,
    /// At a cut, a surviving multi-sector write may be torn: each of its sectors
    /// survives or not on its own.
    pub torn_writes: bool,
    /// Exactly these faults. When set, the keys that draw faults above are cleared.
    pub schedule: Option<Schedule>,
    /// The simulation's boot (`sim-phase`, 1 outside a simulation).
    pub phase: u64,
    /// The operations the filter handles (`ops`; read, write, flush): only these are
    /// numbered and may be faulted or delayed. The others go past it (the runtime makes
    /// them on the device below: wit/watch.wit, `block-route`).
    pub ops: [bool; 3],
}

impl Plan {
    pub fn from_config(pairs: &[(String, String)]) -> Result<Plan, String> {
        let c = Config::new(pairs, &KEYS)?;
        // Every key is parsed (a bad value is an error) even when `schedule` then
        // makes it moot.
        let mut p = Plan {
            drop_every: c.positive("drop-every")?,
            drop_chance: c.probability("drop-chance")?.unwrap_or(0.0),
            seed: c.seed(1)?,
            fail_every: c.positive("fail-every")?,
            corrupt_chance: c.probability("corrupt-chance")?.unwrap_or(0.0),
            latency_ns: c.nonneg_duration_ns("latency")?.unwrap_or(0) as u64,
            hang_after: c.u64("hang-after")?,
            power_cut_after: c.positive("power-cut-after")?,
            torn_writes: c.bool("torn-writes")?.unwrap_or(false),
            schedule: c.schedule(&FAULTS)?,
            phase: c.phase()?,
            ops: c.names("ops", &OPS)?.unwrap_or([true; 3]),
        };
        let may_cut = p.power_cut_after.is_some() || p.schedule.as_ref().is_some_and(|s| s.any("cut"));
        if may_cut && p.ops != [true; 3] {
            // Held writes answer reads and wait for flushes: every operation is the cache's.
            return Err("`ops` must name read, write and flush when the power may be cut \
                 (`power-cut-after`, `cut@` in `schedule`): the filter is then the disk's write \
                 cache"
                .into());
        }
        if p.schedule.is_some() {
            p.drop_every = None;
            p.drop_chance = 0.0;
            p.fail_every = None;
            p.corrupt_chance = 0.0;
            p.hang_after = None;
            p.power_cut_after = None;
        }
        if p.phase != 1 {
            p.power_cut_after = None;
        }
        Ok(p)
    }

    /// Whether this boot may cut the power. Only then does the filter hold writes as a
    /// volatile cache (see `cache`); otherwise it passes them straight through.
    pub fn cuts(&self) -> bool {
        self.power_cut_after.is_some()
            || self.phase == 1 && self.schedule.as_ref().is_some_and(|s| s.any("cut"))
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
/// together, from 1); `write` the write's number among writes; `cause` the config key
/// that drew the fault, or `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The power fails before this operation starts (`power-cut-after`).
    Cut { n: u64, cause: &'static str },
    /// Never return (`hang-after`).
    Hang { n: u64, cause: &'static str },
    /// Return `io` without calling the device (`fail-every`).
    Fail { n: u64, cause: &'static str },
    /// Return ok without calling the device.
    Drop {
        n: u64,
        write: u64,
        cause: &'static str,
    },
    /// Call the device. For a read, `corrupt` names what says to flip a bit in a
    /// successful result.
    Pass {
        n: u64,
        corrupt: Option<&'static str>,
    },
}

pub struct Faults {
    pub plan: Plan,
    ops: u64,
    writes: u64,
}

impl Faults {
    pub fn new(plan: Plan) -> Faults {
        Faults {
            plan,
            ops: 0,
            writes: 0,
        }
    }

    /// Whether the schedule names `fault` at `n`.
    fn scheduled(&self, fault: &str, n: u64) -> bool {
        self.plan.schedule.as_ref().is_some_and(|s| s.has(fault, n))
    }

    /// Decide the fate of the next operation. `droppable` is false for a write whose
    /// arguments the device would reject anyway: dropping it would hide that error.
    /// A fault that does not apply to the operation (a scheduled drop on a read, a
    /// corruption on a write) is no fault.
    pub fn decide(&mut self, op: Op, droppable: bool) -> Verdict {
        self.ops += 1;
        let n = self.ops;
        if op == Op::Write {
            self.writes += 1;
        }
        let p = &self.plan;
        if p.power_cut_after.is_some_and(|c| n == c.saturating_add(1)) {
            return Verdict::Cut {
                n,
                cause: "power-cut-after",
            };
        }
        if p.phase == 1 && self.scheduled("cut", n) {
            return Verdict::Cut {
                n,
                cause: "schedule",
            };
        }
        if p.hang_after.is_some_and(|h| n > h) {
            return Verdict::Hang {
                n,
                cause: "hang-after",
            };
        }
        if self.scheduled("hang", n) {
            return Verdict::Hang {
                n,
                cause: "schedule",
            };
        }
        if p.fail_every.is_some_and(|f| n % f == 0) {
            return Verdict::Fail {
                n,
                cause: "fail-every",
            };
        }
        if self.scheduled("fail", n) {
            return Verdict::Fail {
                n,
                cause: "schedule",
            };
        }
        match op {
            Op::Write if droppable => {
                let write = self.writes;
                let cause = if p.drop_every.is_some_and(|d| write % d == 0) {
                    Some("drop-every")
                } else if rng::chance(p.seed, n, SALT_DROP, p.drop_chance) {
                    Some("drop-chance")
                } else if self.scheduled("drop", n) {
                    Some("schedule")
                } else {
                    None
                };
                match cause {
                    Some(cause) => Verdict::Drop { n, write, cause },
                    None => Verdict::Pass { n, corrupt: None },
                }
            }
            Op::Read => {
                let corrupt = if rng::chance(p.seed, n, SALT_CORRUPT, p.corrupt_chance) {
                    Some("corrupt-chance")
                } else if self.scheduled("corrupt", n) {
                    Some("schedule")
                } else {
                    None
                };
                Verdict::Pass { n, corrupt }
            }
            _ => Verdict::Pass { n, corrupt: None },
        }
    }

    /// Flip one bit of `data`, the result of read `n`: which one derives from the seed
    /// and `n` alone. Returns `(byte, bit)`, or `None` for empty data.
    pub fn flip(&self, n: u64, data: &mut [u8]) -> Option<(usize, u8)> {
        if data.is_empty() {
            return None;
        }
        let seed = self.plan.seed;
        let byte = rng::below(seed, n, SALT_BYTE, data.len() as u64) as usize;
        let bit = rng::below(seed, n, SALT_BIT, 8) as u8;
        data[byte] ^= 1 << bit;
        Some((byte, bit))
    }
}

/// The event field `schedule` for a fault: `<fault>@<n>`, the token that replays it.
pub fn token(fault: &str, n: u64) -> String {
    alloc::format!("{fault}@{n}")
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

    /// The operations of a run: mostly reads and writes, a flush now and then.
    fn op(i: u64) -> Op {
        match i % 7 {
            0 => Op::Flush,
            1 | 3 | 5 => Op::Write,
            _ => Op::Read,
        }
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
        assert!(
            plan(&[("power-cut-after", "0")])
                .unwrap_err()
                .contains("`power-cut-after`")
        );
        assert!(
            plan(&[("torn-writes", "yes")])
                .unwrap_err()
                .contains("`torn-writes`")
        );
        // A key `schedule` makes moot is still checked.
        assert!(
            plan(&[("schedule", "[]"), ("drop-every", "0")])
                .unwrap_err()
                .contains("`drop-every`")
        );
        let e = plan(&[("schedule", "[drop@3, duplicate@4]")]).unwrap_err();
        assert!(
            e.contains("`schedule`") && e.contains("`duplicate@4`"),
            "{e}"
        );
        let p = plan(&[("latency", "5ms"), ("hang-after", "0"), ("seed", "9")]).unwrap();
        assert_eq!(p.latency_ns, 5_000_000);
        assert_eq!(p.hang_after, Some(0));
        assert_eq!(p.seed, 9);
        let p = plan(&[]).unwrap();
        assert_eq!(
            (p.seed, p.phase, p.torn_writes, p.cuts()),
            (1, 1, false, false)
        );
    }

    #[test]
    fn sim_seed_is_the_seed_unless_seed_is_set() {
        assert_eq!(plan(&[("sim-seed", "42")]).unwrap().seed, 42);
        assert_eq!(plan(&[("sim-seed", "42"), ("seed", "7")]).unwrap().seed, 7);
        assert_eq!(plan(&[("sim-phase", "2")]).unwrap().phase, 2);
    }

    #[test]
    fn drop_every_counts_writes_only() {
        let mut f = Faults::new(plan(&[("drop-every", "3")]).unwrap());
        let mut dropped = Vec::new();
        for i in 0..12 {
            f.decide(Op::Read, true);
            if let Verdict::Drop { write, n, .. } = f.decide(Op::Write, true) {
                dropped.push((i, write, n));
            }
        }
        assert_eq!(dropped, [(2, 3, 6), (5, 6, 12), (8, 9, 18), (11, 12, 24)]);
        // An invalid write is never dropped, but still counts.
        let mut f = Faults::new(plan(&[("drop-every", "1")]).unwrap());
        assert_eq!(
            f.decide(Op::Write, false),
            Verdict::Pass {
                n: 1,
                corrupt: None
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
        assert_eq!(
            v[1],
            Verdict::Fail {
                n: 2,
                cause: "fail-every"
            }
        );
        assert_eq!(
            v[3],
            Verdict::Fail {
                n: 4,
                cause: "fail-every"
            }
        );
        assert_eq!(
            v[4],
            Verdict::Pass {
                n: 5,
                corrupt: None
            }
        );
        assert_eq!(
            v[5],
            Verdict::Hang {
                n: 6,
                cause: "hang-after"
            }
        );
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
            .filter(|v| {
                matches!(
                    v,
                    Verdict::Pass {
                        corrupt: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert!((25..80).contains(&drops), "{drops}");
        assert!((200..300).contains(&corrupt), "{corrupt}");
    }

    #[test]
    fn flip_changes_one_bit_chosen_by_seed_and_n() {
        let f = Faults::new(Plan::default());
        let mut d = [0u8; 64];
        let (byte, bit) = f.flip(5, &mut d).unwrap();
        assert_eq!(d.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
        assert_eq!(d[byte], 1 << bit);
        assert_eq!(f.flip(5, &mut []), None);
        // The same read number flips the same bit, however often asked.
        assert_eq!(f.flip(5, &mut [0u8; 64]), Some((byte, bit)));
        let spots: Vec<_> = (1..50).map(|n| f.flip(n, &mut [0u8; 64])).collect();
        assert!(spots.iter().any(|s| *s != Some((byte, bit))));
    }

    /// One fault of a run: its `n`, its token and, for a corruption, the bit it flipped.
    type Seen = (u64, String, Option<(usize, u8)>);

    /// A run's faults.
    fn faults_of(f: &mut Faults, ops: u64) -> Vec<Seen> {
        let mut out = Vec::new();
        for i in 1..=ops {
            match f.decide(op(i), true) {
                Verdict::Drop { n, .. } => out.push((n, token("drop", n), None)),
                Verdict::Fail { n, .. } => out.push((n, token("fail", n), None)),
                Verdict::Pass {
                    n,
                    corrupt: Some(_),
                } => {
                    let spot = f.flip(n, &mut [0u8; 4096]);
                    out.push((n, token("corrupt", n), spot));
                }
                Verdict::Pass { .. } => {}
                v => panic!("{v:?}"),
            }
        }
        out
    }

    #[test]
    fn a_schedule_replays_any_subset_of_a_runs_faults_exactly() {
        let drawn = faults_of(
            &mut Faults::new(
                plan(&[
                    ("drop-chance", "0.2"),
                    ("corrupt-chance", "0.3"),
                    ("fail-every", "17"),
                    ("sim-seed", "99"),
                ])
                .unwrap(),
            ),
            500,
        );
        assert!(drawn.len() > 100, "{}", drawn.len());
        // Leave out every third fault: the rest happen at the same operations with the
        // same details, and nothing else happens.
        let kept: Vec<_> = drawn
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 1)
            .map(|(_, f)| f.clone())
            .collect();
        let list: Vec<&str> = kept.iter().map(|(_, t, _)| t.as_str()).collect();
        let schedule = alloc::format!("[{}]", list.join(", "));
        let replay = faults_of(
            &mut Faults::new(
                plan(&[
                    ("schedule", &schedule),
                    // Ignored under a schedule:
                    ("drop-chance", "0.2"),
                    ("corrupt-chance", "0.3"),
                    ("fail-every", "17"),
                    ("sim-seed", "99"),
                ])
                .unwrap(),
            ),
            500,
        );
        assert_eq!(replay, kept);
    }

    #[test]
    fn scheduled_faults_apply_only_where_they_can() {
        let p = plan(&[(
            "schedule",
            "[drop@1, corrupt@2, drop@3, corrupt@4, fail@5, hang@7]",
        )])
        .unwrap();
        assert!(!p.cuts());
        let mut f = Faults::new(p);
        // drop@1 hits a read, corrupt@2 a write: neither applies.
        assert_eq!(
            f.decide(Op::Read, true),
            Verdict::Pass {
                n: 1,
                corrupt: None
            }
        );
        assert_eq!(
            f.decide(Op::Write, true),
            Verdict::Pass {
                n: 2,
                corrupt: None
            }
        );
        assert_eq!(
            f.decide(Op::Write, true),
            Verdict::Drop {
                n: 3,
                write: 2,
                cause: "schedule"
            }
        );
        assert_eq!(
            f.decide(Op::Read, true),
            Verdict::Pass {
                n: 4,
                corrupt: Some("schedule")
            }
        );
        assert_eq!(
            f.decide(Op::Flush, true),
            Verdict::Fail {
                n: 5,
                cause: "schedule"
            }
        );
        assert!(matches!(
            f.decide(Op::Write, true),
            Verdict::Pass { n: 6, .. }
        ));
        assert_eq!(
            f.decide(Op::Read, true),
            Verdict::Hang {
                n: 7,
                cause: "schedule"
            }
        );
        // An empty schedule is no faults at all, whatever else is configured.
        let mut f = Faults::new(
            plan(&[
                ("schedule", "[]"),
                ("drop-every", "1"),
                ("fail-every", "1"),
                ("hang-after", "0"),
                ("power-cut-after", "1"),
            ])
            .unwrap(),
        );
        assert!(!f.plan.cuts());
        for i in 1..=100 {
            assert!(matches!(
                f.decide(op(i), true),
                Verdict::Pass { corrupt: None, .. }
            ));
        }
    }

    #[test]
    fn power_cut_after_n_hits_operation_n_plus_one_in_phase_one_only() {
        let p = plan(&[("power-cut-after", "3")]).unwrap();
        assert!(p.cuts());
        let mut f = Faults::new(p);
        for n in 1..=3 {
            assert!(matches!(f.decide(op(n), true), Verdict::Pass { .. }));
        }
        assert_eq!(
            f.decide(Op::Read, true),
            Verdict::Cut {
                n: 4,
                cause: "power-cut-after"
            }
        );
        // In the boot after the cut the key is accepted and does nothing.
        let p = plan(&[("power-cut-after", "3"), ("sim-phase", "2")]).unwrap();
        assert!(!p.cuts());
        let mut f = Faults::new(p);
        for n in 1..=10 {
            assert!(matches!(f.decide(op(n), true), Verdict::Pass { .. }));
        }
        // Scheduled cuts likewise; the cut comes before any other fault at its `n`.
        let p = plan(&[("schedule", "[fail@2, cut@2]")]).unwrap();
        assert!(p.cuts());
        let mut f = Faults::new(p);
        f.decide(Op::Write, true);
        assert_eq!(
            f.decide(Op::Write, true),
            Verdict::Cut {
                n: 2,
                cause: "schedule"
            }
        );
        let p = plan(&[("schedule", "[fail@2, cut@2]"), ("sim-phase", "2")]).unwrap();
        assert!(!p.cuts());
        let mut f = Faults::new(p);
        f.decide(Op::Write, true);
        assert!(matches!(
            f.decide(Op::Write, true),
            Verdict::Fail { n: 2, .. }
        ));
    }

    #[test]
    fn ops_narrow_what_the_filter_handles_but_not_under_a_power_cut() {
        assert_eq!(plan(&[]).unwrap().ops, [true; 3]);
        assert_eq!(plan(&[("ops", "[\"write\"]")]).unwrap().ops, [false, true, false]);
        let e = plan(&[("ops", "[\"write\"]"), ("power-cut-after", "9")]).unwrap_err();
        assert!(e.contains("`ops` must name read, write and flush"), "{e}");
        let e = plan(&[("ops", "[\"flush\"]"), ("schedule", "[cut@3]")]).unwrap_err();
        assert!(e.contains("`ops` must name"), "{e}");
        let e = plan(&[("ops", "[\"trim\"]")]).unwrap_err();
        assert!(e.contains("unknown name `trim` (known: read, write, flush)"), "{e}");
        let all = "[\"read\", \"write\", \"flush\"]";
        assert!(plan(&[("ops", all), ("power-cut-after", "9")]).is_ok());
    }
}
