//! Deterministic simulation: what makes one seed reproduce a whole run.
//!
//! Under `[sim]` every source of nondeterminism a unikernel can reach is a
//! leaf weft controls: the clock is [`VirtualClock`](crate::leaves::VirtualClock),
//! random bytes are seeded, and every filter gets `sim-seed` — derived here
//! from the simulation's seed and the filter's position (observers apart) — plus `sim-phase`
//! in its config (the `filter.configure` contract). A swarm setting (a config
//! key given as a range) is drawn here too, per seed, so `weft explore` tries
//! a different point of the fault space on every run. The engine is
//! configured for determinism (`engine::config_with`): NaNs canonical,
//! relaxed SIMD deterministic, fuel instead of wall-clock interruption.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::link::Wiring;

/// Salt of the seeded random device's seed.
pub const RANDOM_SALT: u64 = 0x7261_6e64_6f6d; // "random"
/// Salt of the filters' seeds.
const FILTER_SALT: u64 = 0x6669_6c74_6572; // "filter"
/// Salt of the observers' seeds, numbered apart (`configs`).
const OBSERVER_SALT: u64 = 0x6f62_7365_7276; // "observ"

/// Mixes two words into a well-spread third (splitmix64's finaliser).
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `sim-seed` of the filter at `index` (link order, observers not
/// counted: see [`configs`]).
pub fn filter_seed(seed: u64, index: usize) -> u64 {
    mix(mix(seed, FILTER_SALT), index as u64)
}

/// A filter setting drawn per simulation seed from `[low, high]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Swarm {
    pub key: String,
    pub low: f64,
    pub high: f64,
    /// Both ends were integers: the draw is an integer too.
    pub integer: bool,
}

impl Swarm {
    /// The value for `seed`, in TOML syntax as `configure` takes it.
    pub fn draw(&self, seed: u64, index: usize) -> String {
        let key_hash = self.key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let u = (mix(filter_seed(seed, index), key_hash) >> 11) as f64 / (1u64 << 53) as f64;
        if self.integer {
            let span = self.high - self.low + 1.0;
            let v = (self.low + (u * span) as i64 as f64).min(self.high);
            format!("{}", v as i64)
        } else {
            let v = self.low + u * (self.high - self.low);
            // Enough digits to draw apart, few enough to read.
            let t = format!("{v:.6}");
            let t = t.trim_end_matches('0');
            t.strip_suffix('.').map_or(t.to_string(), |x| format!("{x}.0"))
        }
    }
}

/// What a run of a simulation adds to its filters' configs.
pub struct Draw<'a> {
    pub seed: u64,
    /// 1 for the first boot, 2 after a power cut.
    pub phase: u32,
    /// Per filter (link order): its swarm settings.
    pub swarm: &'a [Vec<Swarm>],
    /// Per filter (link order): an explicit fault schedule replacing the
    /// drawn faults (`weft shrink`), if any.
    pub schedules: &'a [Option<Vec<String>>],
}

/// The tokens of a fault schedule that apply in phase `n`: `2:drop@5` is
/// phase 2's, a token without a prefix phase 1's. (Filters count operations
/// per boot, so a schedule names the boot too; filters see plain tokens.)
pub fn tokens_for_phase(tokens: &[String], n: u32) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| match t.split_once(':') {
            Some((p, tok)) => (p.parse::<u32>().ok() == Some(n)).then(|| tok.to_string()),
            None => (n == 1).then(|| t.clone()),
        })
        .collect()
}

/// The items of a config value written as a TOML array (`[a, "b"]`).
pub fn array_items(v: &str) -> Option<Vec<String>> {
    let inner = v.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .split(',')
            .map(|t| t.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
            .filter(|t| !t.is_empty())
            .collect(),
    )
}

/// Each filter's config for one simulated run, in link order: the wiring's,
/// with swarm draws, `sim-seed`, `sim-phase` and any schedule.
///
/// `sim-seed` numbers the filters that change traffic apart from those that
/// only observe (`Filter::observer`), so adding an observer to a simulated
/// run leaves every other filter's seed, and so its draws, as they were.
pub fn configs(wiring: &Wiring, d: &Draw) -> Vec<Vec<(String, String)>> {
    let (mut filters, mut observers) = (0, 0);
    wiring
        .filters()
        .enumerate()
        .map(|(i, f)| {
            // (the simulation's seed, or the observers' own, and the position among
            // the filters that change traffic or among the observers)
            let (base, k) = if f.observer {
                observers += 1;
                (mix(d.seed, OBSERVER_SALT), observers - 1)
            } else {
                filters += 1;
                (d.seed, filters - 1)
            };
            let mut c = f.config.clone();
            for s in d.swarm.get(i).into_iter().flatten() {
                c.push((s.key.clone(), s.draw(base, k)));
            }
            let given = c.iter().find(|(k, _)| k == "schedule").and_then(|(_, v)| array_items(v));
            if let Some(sched) = d.schedules.get(i).cloned().flatten().or(given) {
                c.retain(|(k, _)| k != "schedule");
                c.push(("schedule".into(), format!("[{}]", tokens_for_phase(&sched, d.phase).join(", "))));
            }
            c.push(("sim-seed".into(), filter_seed(base, k).to_string()));
            c.push(("sim-phase".into(), d.phase.to_string()));
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_draws_stay_in_range_and_differ_by_seed() {
        let s = Swarm { key: "drop-chance".into(), low: 0.0, high: 0.1, integer: false };
        let draws: Vec<f64> = (0..200).map(|seed| s.draw(seed, 0).parse().unwrap()).collect();
        assert!(draws.iter().all(|&v| (0.0..=0.1).contains(&v)), "{draws:?}");
        assert!(draws.iter().any(|&v| v < 0.02) && draws.iter().any(|&v| v > 0.08));
        assert_eq!(s.draw(7, 0), s.draw(7, 0));
        let n = Swarm { key: "power-cut-after".into(), low: 1.0, high: 3.0, integer: true };
        let ints: Vec<String> = (0..100).map(|seed| n.draw(seed, 1)).collect();
        for v in ["1", "2", "3"] {
            assert!(ints.iter().any(|x| x == v), "{v} never drawn: {ints:?}");
        }
        assert!(ints.iter().all(|x| ["1", "2", "3"].contains(&x.as_str())));
    }

    #[test]
    fn schedules_split_by_phase() {
        let t: Vec<String> = ["drop@5", "2:fail@3", "1:cut@9", "x:y"].iter().map(|s| s.to_string()).collect();
        assert_eq!(tokens_for_phase(&t, 1), ["drop@5", "cut@9"]);
        assert_eq!(tokens_for_phase(&t, 2), ["fail@3"]);
        assert_eq!(array_items("[drop@5, \"2:fail@3\"]").unwrap(), ["drop@5", "2:fail@3"]);
        assert_eq!(array_items("[]").unwrap(), Vec::<String>::new());
        assert_eq!(array_items("drop@5"), None);
    }

    #[test]
    fn filters_get_distinct_seeds() {
        assert_ne!(filter_seed(0, 0), filter_seed(0, 1));
        assert_ne!(filter_seed(0, 0), filter_seed(1, 0));
    }
}
