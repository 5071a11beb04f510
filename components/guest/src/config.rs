//! A filter's `config` table: typed getters, and an error for any key nobody asked for.
//!
//! In a simulation the runtime adds `sim-seed` and `sim-phase` to every filter's table
//! (wit/filter.wit): [`Config::new`] accepts them for every filter, and [`Config::seed`]
//! and [`Config::phase`] read them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::parse;

/// The keys the runtime adds in a simulation, accepted whatever a filter knows: `sim-seed`
/// (a u64 for filters that draw random numbers and have no `seed` of their own) and
/// `sim-phase` (`1` for the first boot, `2` after a power cut).
pub const SIM_KEYS: [&str; 2] = ["sim-seed", "sim-phase"];

/// The `list<tuple<string, string>>` handed to `filter.configure`, checked against the keys
/// a filter knows.
///
/// ```
/// # use weft_guest::Config;
/// let pairs = vec![("drop-every".to_string(), "100".to_string())];
/// let cfg = Config::new(&pairs, &["drop-every", "seed"]).unwrap();
/// assert_eq!(cfg.u64("drop-every").unwrap(), Some(100));
/// assert_eq!(cfg.u64("seed").unwrap(), None);
/// ```
pub struct Config<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Config<'a> {
    /// Fails on the first key not in `known` (nor in [`SIM_KEYS`], which every filter
    /// accepts and no error lists), or on a key given twice.
    pub fn new(pairs: &'a [(String, String)], known: &[&str]) -> Result<Config<'a>, String> {
        for (i, (key, _)) in pairs.iter().enumerate() {
            if !known.contains(&key.as_str()) && !SIM_KEYS.contains(&key.as_str()) {
                let list = if known.is_empty() {
                    String::from("this filter takes no config keys")
                } else {
                    format!("known: {}", known.join(", "))
                };
                return Err(format!("unknown key `{key}` ({list})"));
            }
            if pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(format!("key `{key}` given more than once"));
            }
        }
        Ok(Config { pairs })
    }

    /// The raw text of `key`, if present.
    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parse `key` with `f`; an error names the key.
    pub fn get<T>(
        &self,
        key: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => f(v)
                .map(Some)
                .map_err(|e| format!("bad value for `{key}`: {e}")),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key, parse::parse_u64)
    }

    /// An integer that must be at least 1 (an "every Nth" count).
    pub fn positive(&self, key: &str) -> Result<Option<u64>, String> {
        self.get(key, |v| match parse::parse_u64(v)? {
            0 => Err(format!("expected an integer of at least 1, got `{v}`")),
            n => Ok(n),
        })
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.get(key, parse::parse_bool)
    }

    pub fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        self.get(key, parse::parse_f64)
    }

    pub fn probability(&self, key: &str) -> Result<Option<f64>, String> {
        self.get(key, parse::parse_probability)
    }

    /// A signed duration in nanoseconds.
    pub fn duration_ns(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key, parse::parse_duration_ns)
    }

    /// A duration that must not be negative.
    pub fn nonneg_duration_ns(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key, |v| match parse::parse_duration_ns(v)? {
            d if d < 0 => Err(format!("expected a duration of at least 0, got `{v}`")),
            d => Ok(d),
        })
    }

    /// The seed for a filter's random draws: its own `seed` when the config sets one,
    /// else the simulation's `sim-seed`, else `default` (wit/filter.wit: one simulation
    /// seed reproduces the run, and an explicit `seed` still wins).
    pub fn seed(&self, default: u64) -> Result<u64, String> {
        match self.u64("seed")? {
            Some(s) => Ok(s),
            None => Ok(self.u64("sim-seed")?.unwrap_or(default)),
        }
    }

    /// Which boot of a simulation this is: `sim-phase` (1 the first, 2 the one after a
    /// power cut), or 1 outside a simulation.
    pub fn phase(&self) -> Result<u64, String> {
        Ok(self.positive("sim-phase")?.unwrap_or(1))
    }

    /// The fault schedule (`schedule = [drop@17, fail@230]`), if the config has one;
    /// `faults` are the fault names this filter injects. A malformed token or one naming
    /// another fault is an error naming the key and the token.
    pub fn schedule(&self, faults: &[&'static str]) -> Result<Option<Schedule>, String> {
        self.get("schedule", |v| {
            let mut tokens = Vec::new();
            for (fault, n) in parse::parse_schedule(v)? {
                let Some(&name) = faults.iter().find(|f| **f == fault) else {
                    return Err(format!(
                        "unknown fault `{fault}` in token `{fault}@{n}` (this filter injects: {})",
                        faults.join(", ")
                    ));
                };
                tokens.push((n, name));
            }
            tokens.sort_unstable();
            tokens.dedup();
            Ok(Schedule { tokens })
        })
    }

    /// `key`, an array of names among `known` (`ops = ["write", "flush"]`): which of them
    /// it names, in `known`'s order. An unknown name is an error listing the known ones.
    pub fn names<const N: usize>(
        &self,
        key: &str,
        known: &[&str; N],
    ) -> Result<Option<[bool; N]>, String> {
        self.get(key, |v| {
            let mut named = [false; N];
            for name in parse::parse_array(v)? {
                let i = known.iter().position(|k| *k == name).ok_or_else(|| {
                    format!("unknown name `{name}` (known: {})", known.join(", "))
                })?;
                named[i] = true;
            }
            Ok(named)
        })
    }

    /// `key`, an array of integers up to 65535 (`ethertypes = [0x0806, 0x0800]`).
    pub fn u16s(&self, key: &str) -> Result<Option<Vec<u16>>, String> {
        self.get(key, |v| {
            parse::parse_array(v)?
                .into_iter()
                .map(parse::parse_u16)
                .collect()
        })
    }

    /// Keys present, in manifest order (for a configure log line).
    pub fn keys(&self) -> Vec<&'a str> {
        self.pairs.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// A parsed `schedule`: exactly the faults to inject, each at the number of the operation
/// it hits (as the filter counts them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// `(n, fault)`, sorted and without repeats, so a lookup is a binary search.
    tokens: Vec<(u64, &'static str)>,
}

impl Schedule {
    /// Whether `fault` is scheduled at operation `n`.
    pub fn has(&self, fault: &str, n: u64) -> bool {
        let start = self.tokens.partition_point(|&(m, _)| m < n);
        self.tokens[start..]
            .iter()
            .take_while(|&&(m, _)| m == n)
            .any(|&(_, f)| f == fault)
    }

    /// Whether `fault` is scheduled at all.
    pub fn any(&self, fault: &str) -> bool {
        self.tokens.iter().any(|&(_, f)| f == fault)
    }

    /// The tokens as `(fault, n)`, by `n`.
    pub fn tokens(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.tokens.iter().map(|&(n, f)| (f, n))
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_key_lists_known() {
        let p = pairs(&[("drop-every", "3"), ("foo", "1")]);
        let err = Config::new(&p, &["drop-every", "drop-chance", "seed"])
            .err()
            .unwrap();
        assert_eq!(
            err,
            "unknown key `foo` (known: drop-every, drop-chance, seed)"
        );
        let err = Config::new(&p[1..], &[]).err().unwrap();
        assert_eq!(err, "unknown key `foo` (this filter takes no config keys)");
    }

    #[test]
    fn duplicate_key() {
        let p = pairs(&[("seed", "3"), ("seed", "4")]);
        assert!(
            Config::new(&p, &["seed"])
                .err()
                .unwrap()
                .contains("more than once")
        );
    }

    #[test]
    fn typed_getters_name_the_key() {
        let p = pairs(&[
            ("drop-every", "0"),
            ("drop-chance", "2"),
            ("latency", "5ms"),
            ("seed", "9"),
            ("offset", "-2h"),
            ("rate", "0.5"),
        ]);
        let known = [
            "drop-every",
            "drop-chance",
            "latency",
            "seed",
            "offset",
            "rate",
            "jitter",
        ];
        let c = Config::new(&p, &known).unwrap();
        assert_eq!(c.u64("drop-every"), Ok(Some(0)));
        let e = c.positive("drop-every").unwrap_err();
        assert!(e.starts_with("bad value for `drop-every`"), "{e}");
        assert!(
            c.probability("drop-chance")
                .unwrap_err()
                .contains("`drop-chance`")
        );
        assert_eq!(c.duration_ns("latency"), Ok(Some(5_000_000)));
        assert_eq!(c.u64("seed"), Ok(Some(9)));
        assert_eq!(c.duration_ns("offset"), Ok(Some(-7_200_000_000_000)));
        assert!(c.nonneg_duration_ns("offset").is_err());
        assert_eq!(c.f64("rate"), Ok(Some(0.5)));
        assert_eq!(c.duration_ns("jitter"), Ok(None));
        assert_eq!(c.keys().len(), 6);
    }

    #[test]
    fn sim_keys_are_always_accepted_and_never_listed() {
        let p = pairs(&[("sim-seed", "77"), ("sim-phase", "2")]);
        let c = Config::new(&p, &[]).unwrap();
        assert_eq!(c.seed(1), Ok(77));
        assert_eq!(c.phase(), Ok(2));
        let p = pairs(&[("sim-seed", "77"), ("foo", "1")]);
        assert_eq!(
            Config::new(&p, &["seed"]).err().unwrap(),
            "unknown key `foo` (known: seed)"
        );
        assert_eq!(
            Config::new(&p, &[]).err().unwrap(),
            "unknown key `foo` (this filter takes no config keys)"
        );
        let p = pairs(&[("sim-seed", "1"), ("sim-seed", "2")]);
        assert!(
            Config::new(&p, &[])
                .err()
                .unwrap()
                .contains("more than once")
        );
    }

    #[test]
    fn seed_prefers_seed_then_sim_seed_then_default() {
        let known = ["seed"];
        let seed = |kv: &[(&str, &str)]| {
            let p = pairs(kv);
            Config::new(&p, &known).unwrap().seed(1)
        };
        assert_eq!(seed(&[]), Ok(1));
        assert_eq!(seed(&[("sim-seed", "5")]), Ok(5));
        assert_eq!(seed(&[("sim-seed", "5"), ("seed", "9")]), Ok(9));
        assert_eq!(seed(&[("seed", "0")]), Ok(0));
        assert!(
            seed(&[("sim-seed", "x")])
                .unwrap_err()
                .contains("`sim-seed`")
        );
        assert!(seed(&[("seed", "-1")]).unwrap_err().contains("`seed`"));
        let phase = |kv: &[(&str, &str)]| {
            let p = pairs(kv);
            Config::new(&p, &known).unwrap().phase()
        };
        assert_eq!(phase(&[]), Ok(1));
        assert_eq!(phase(&[("sim-phase", "1")]), Ok(1));
        assert!(
            phase(&[("sim-phase", "0")])
                .unwrap_err()
                .contains("`sim-phase`")
        );
    }

    #[test]
    fn schedules_name_the_key_and_the_token() {
        const FAULTS: [&str; 3] = ["drop", "fail", "cut"];
        let sched = |v: &str| {
            let p = pairs(&[("schedule", v)]);
            Config::new(&p, &["schedule"]).unwrap().schedule(&FAULTS)
        };
        let s = sched("[fail@230, drop@17, drop@17, cut@17]")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.tokens().collect::<Vec<_>>(),
            [("cut", 17), ("drop", 17), ("fail", 230)]
        );
        assert!(s.has("drop", 17) && s.has("cut", 17) && s.has("fail", 230));
        assert!(!s.has("fail", 17) && !s.has("drop", 230) && !s.has("drop", 18));
        assert!(s.any("cut") && !s.any("hang"));
        assert_eq!(s.len(), 3);
        assert!(sched("[]").unwrap().unwrap().is_empty());
        assert_eq!(
            sched("[drop@3, dup@4]").unwrap_err(),
            "bad value for `schedule`: unknown fault `dup` in token `dup@4` (this filter injects: drop, fail, cut)"
        );
        assert_eq!(
            sched("[drop@x]").unwrap_err(),
            "bad value for `schedule`: bad token `drop@x` (expected `<fault>@<n>` with n from 1, e.g. `drop@17`)"
        );
        let p = pairs(&[]);
        assert_eq!(Config::new(&p, &[]).unwrap().schedule(&FAULTS), Ok(None));
    }

    #[test]
    fn arrays_of_names_and_numbers() {
        const OPS: [&str; 3] = ["read", "write", "flush"];
        let get = |k: &str, v: &str| pairs(&[(k, v)]);
        let p = get("ops", "[\"write\", \"flush\",]");
        let c = Config::new(&p, &["ops"]).unwrap();
        assert_eq!(c.names("ops", &OPS), Ok(Some([false, true, true])));
        assert_eq!(c.names("other", &OPS), Ok(None));
        let p = get("ops", "[]");
        assert_eq!(Config::new(&p, &["ops"]).unwrap().names("ops", &OPS), Ok(Some([false; 3])));
        let p = get("ops", "[\"wrte\"]");
        assert_eq!(
            Config::new(&p, &["ops"]).unwrap().names("ops", &OPS),
            Err("bad value for `ops`: unknown name `wrte` (known: read, write, flush)".into())
        );
        let p = get("ops", "write");
        assert!(Config::new(&p, &["ops"]).unwrap().names("ops", &OPS).is_err());
        let p = get("ethertypes", "[0x0806, 2048, 0x86_DD]");
        let c = Config::new(&p, &["ethertypes"]).unwrap();
        assert_eq!(c.u16s("ethertypes"), Ok(Some(vec![0x0806, 0x0800, 0x86dd])));
        for bad in ["[0x10000]", "[70000]", "[0x]", "[-1]", "[1,,2]"] {
            let p = get("ethertypes", bad);
            assert!(Config::new(&p, &["ethertypes"]).unwrap().u16s("ethertypes").is_err(), "{bad}");
        }
    }
}
