//! Fault decisions and the delay queues, without bindings: seeded, with time passed in,
//! so a fixed seed gives the same faults on every run and in the unit tests.
//!
//! Per frame, in order: drop (`drop-chance`; a dropped frame is gone), corrupt
//! (`corrupt-chance`: one flipped bit in one random byte, as smoltcp's FaultInjector
//! does), duplicate (`duplicate-chance`: the frame goes out twice). Every frame then
//! waits `delay` before it is passed on; held frames are released by later calls once due
//! (a delay is not a fault and is not logged).
//!
//! Frames are numbered twice. Each direction counts its own from 1 (`n`, the number in
//! the messages: "dropped inbound frame #12"), and all frames, in and out together, are
//! numbered from 1 as they reach the filter: that number is the `<n>` of the `schedule`
//! token (`drop@17`: the 17th frame the filter saw, whichever way it went), so one token
//! names one frame. Every decision about a frame is counter-based, from the seed, that
//! number and the direction ([`weft_guest::rng::chance`]), never a draw from a stream: a
//! `schedule` holding some of a run's faults replays each the same (the same bit flips).
//! A full delay queue's drop (`queue-full`) is not a drawn fault: it has no number and
//! no token, and a schedule neither causes nor prevents it.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use weft_guest::{Config, Schedule, rng};

pub const KEYS: &[&str] = &[
    "drop-chance",
    "duplicate-chance",
    "corrupt-chance",
    "delay",
    "seed",
    "schedule",
    "ethertypes",
    "directions",
];
/// The faults a `schedule` may name.
pub const FAULTS: [&str; 3] = ["drop", "duplicate", "corrupt"];
/// Frames held per direction at most; beyond it `send` accepts fewer and inbound frames
/// are dropped (and logged) as a full queue would.
pub const MAX_HELD: usize = 4096;

/// What is decided about a frame; each with its own salt (see [`Dir::salt`]).
const DROP: u64 = 1;
const CORRUPT: u64 = 2;
const DUPLICATE: u64 = 3;
const BYTE: u64 = 4;
const BIT: u64 = 5;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub drop: f64,
    pub duplicate: f64,
    pub corrupt: f64,
    pub delay_ns: u64,
    /// `seed`, else the simulation's `sim-seed`, else 1.
    pub seed: u64,
    /// Exactly these faults; when set, the chances above are zero.
    pub schedule: Option<Schedule>,
    /// The frames the filter handles (`ethertypes`, empty: all; `directions`, inbound
    /// and outbound): only these are numbered, faulted and delayed. The others pass
    /// unchanged and at once (the runtime routes them past the filter: lib.rs).
    pub ethertypes: Vec<u16>,
    pub inbound: bool,
    pub outbound: bool,
}

impl Default for Plan {
    /// No faults, every frame handled.
    fn default() -> Plan {
        Plan {
            drop: 0.0,
            duplicate: 0.0,
            corrupt: 0.0,
            delay_ns: 0,
            seed: 0,
            schedule: None,
            ethertypes: Vec::new(),
            inbound: true,
            outbound: true,
        }
    }
}

impl Plan {
    pub fn from_config(pairs: &[(String, String)]) -> Result<Plan, String> {
        let c = Config::new(pairs, KEYS)?;
        let mut p = Plan {
            drop: c.probability("drop-chance")?.unwrap_or(0.0),
            duplicate: c.probability("duplicate-chance")?.unwrap_or(0.0),
            corrupt: c.probability("corrupt-chance")?.unwrap_or(0.0),
            delay_ns: c.nonneg_duration_ns("delay")?.unwrap_or(0) as u64,
            seed: c.seed(1)?,
            schedule: c.schedule(&FAULTS)?,
            ethertypes: c.u16s("ethertypes")?.unwrap_or_default(),
            inbound: true,
            outbound: true,
        };
        if let Some([inbound, outbound]) = c.names("directions", &["inbound", "outbound"])? {
            (p.inbound, p.outbound) = (inbound, outbound);
        }
        if p.schedule.is_some() {
            p.drop = 0.0;
            p.duplicate = 0.0;
            p.corrupt = 0.0;
        }
        Ok(p)
    }

    /// Whether any frame may be corrupted (checksums must then be mended, see lib.rs).
    pub fn may_corrupt(&self) -> bool {
        self.corrupt > 0.0 || self.schedule.as_ref().is_some_and(|s| s.any("corrupt"))
    }

    /// Whether the filter handles `frame`, going `dir` (`ethertypes`, `directions`).
    pub fn handles(&self, dir: Dir, frame: &[u8]) -> bool {
        let way = match dir {
            Dir::In => self.inbound,
            Dir::Out => self.outbound,
        };
        way && (self.ethertypes.is_empty() || self.ethertypes.contains(&ethertype(frame)))
    }

    /// Whether `fault` (drawn with probability `p` under salt `what`) hits frame `frame`.
    fn hits(&self, fault: &str, what: u64, p: f64, frame: u64, dir: Dir) -> bool {
        match &self.schedule {
            Some(s) => s.has(fault, frame),
            None => rng::chance(self.seed, frame, dir.salt(what), p),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    In,
    Out,
}

impl Dir {
    /// The salt for decision `what` about a frame going this way.
    fn salt(self, what: u64) -> u64 {
        what << 8
            | match self {
                Dir::In => 1,
                Dir::Out => 2,
            }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dir::In => "inbound",
            Dir::Out => "outbound",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// Frames a call passes on now. `origin[i]` is the index, in the call's input, of the
/// frame `frames[i]` came from (`None` for a frame released from the delay queue).
#[derive(Debug, Default)]
pub struct Out {
    pub frames: Vec<Vec<u8>>,
    pub origin: Vec<Option<usize>>,
    pub events: Vec<Event>,
    /// How many input frames were taken (all unless the delay queue is full).
    pub taken: usize,
}

pub struct Faults {
    pub plan: Plan,
    pub role: String,
    n_in: u64,
    n_out: u64,
    /// Frames in both directions: the `schedule` number.
    frames: u64,
    held_in: VecDeque<(u64, Vec<u8>)>,
    held_out: VecDeque<(u64, Vec<u8>)>,
}

fn ethertype(f: &[u8]) -> u16 {
    if f.len() >= 14 {
        u16::from_be_bytes([f[12], f[13]])
    } else {
        0
    }
}

impl Faults {
    pub fn new(plan: Plan, role: String) -> Faults {
        Faults {
            plan,
            role,
            n_in: 0,
            n_out: 0,
            frames: 0,
            held_in: VecDeque::new(),
            held_out: VecDeque::new(),
        }
    }

    /// Decide one frame's fate; returns the copies to pass on (0, 1 or 2) and the events.
    fn decide(&mut self, dir: Dir, mut f: Vec<u8>, events: &mut Vec<Event>) -> Vec<Vec<u8>> {
        let n = match dir {
            Dir::In => {
                self.n_in += 1;
                self.n_in
            }
            Dir::Out => {
                self.n_out += 1;
                self.n_out
            }
        };
        self.frames += 1;
        let frame = self.frames;
        let p = &self.plan;
        let drop = p.hits("drop", DROP, p.drop, frame, dir);
        let corrupt = p.hits("corrupt", CORRUPT, p.corrupt, frame, dir);
        let dup = p.hits("duplicate", DUPLICATE, p.duplicate, frame, dir);
        let (len, et) = (f.len(), ethertype(&f));
        let base = |fault: &str| {
            vec![
                (String::from("fault"), String::from(fault)),
                (String::from("direction"), String::from(dir.name())),
                (String::from("n"), n.to_string()),
                (String::from("len"), len.to_string()),
                (String::from("ethertype"), format!("{et:#06x}")),
            ]
        };
        // Last field of every event: the token that replays the fault.
        let token = |fault: &str| (String::from("schedule"), format!("{fault}@{frame}"));
        let what = format!(
            "{} frame #{n} ({} bytes, ethertype {:#06x}) on {}",
            dir.name(),
            f.len(),
            ethertype(&f),
            self.role
        );
        if drop {
            let mut fields = base("drop");
            fields.push(token("drop"));
            events.push(Event {
                message: format!("dropped {what}"),
                fields,
            });
            return Vec::new();
        }
        if corrupt && !f.is_empty() {
            let byte = rng::below(p.seed, frame, dir.salt(BYTE), f.len() as u64) as usize;
            let bit = rng::below(p.seed, frame, dir.salt(BIT), 8) as u8;
            f[byte] ^= 1 << bit;
            let mut fields = base("corrupt");
            fields.push((String::from("byte"), byte.to_string()));
            fields.push((String::from("bit"), bit.to_string()));
            fields.push(token("corrupt"));
            events.push(Event {
                message: format!("corrupted {what}: flipped bit {bit} of byte {byte}"),
                fields,
            });
        }
        if dup {
            let mut fields = base("duplicate");
            fields.push(token("duplicate"));
            events.push(Event {
                message: format!("duplicated {what}"),
                fields,
            });
            return vec![f.clone(), f];
        }
        vec![f]
    }

    /// Run `frames` through the faults in direction `dir` at time `now`: without a delay
    /// they come back at once; with one they are held, and whatever is due (at most
    /// `max`) comes back instead.
    pub fn pass(&mut self, dir: Dir, frames: Vec<Vec<u8>>, now: u64, max: usize) -> Out {
        let mut out = Out::default();
        let delay = self.plan.delay_ns;
        for (i, f) in frames.into_iter().enumerate() {
            if !self.plan.handles(dir, &f) {
                // Not the filter's: unnumbered, unchanged, not held.
                out.taken += 1;
                out.frames.push(f);
                out.origin.push(Some(i));
                continue;
            }
            let held_len = match dir {
                Dir::In => self.held_in.len(),
                Dir::Out => self.held_out.len(),
            };
            if delay > 0 && held_len >= MAX_HELD {
                if dir == Dir::Out {
                    // Refuse the rest: the caller keeps them and retries.
                    break;
                }
                out.events.push(Event {
                    message: format!(
                        "dropped inbound frame ({} bytes) on {}: delay queue full",
                        f.len(),
                        self.role
                    ),
                    fields: vec![
                        (String::from("fault"), String::from("queue-full")),
                        (String::from("direction"), String::from(dir.name())),
                        (String::from("len"), f.len().to_string()),
                    ],
                });
                out.taken += 1;
                continue;
            }
            out.taken += 1;
            let copies = self.decide(dir, f, &mut out.events);
            for c in copies {
                if delay > 0 || dir == Dir::In {
                    let q = match dir {
                        Dir::In => &mut self.held_in,
                        Dir::Out => &mut self.held_out,
                    };
                    q.push_back((now.saturating_add(delay), c));
                } else {
                    out.frames.push(c);
                    out.origin.push(Some(i));
                }
            }
        }
        // Inbound frames always go through the queue, so that a duplicate beyond `max`
        // is delivered by the next call.
        let q = match dir {
            Dir::In => &mut self.held_in,
            Dir::Out => &mut self.held_out,
        };
        while out.frames.len() < max && q.front().is_some_and(|(due, _)| *due <= now) {
            let (_, f) = q.pop_front().unwrap();
            out.frames.push(f);
            out.origin.push(None);
        }
        out
    }

    /// Put frames the device refused back at the front of the outbound queue (due now).
    pub fn requeue_out(&mut self, frames: Vec<Vec<u8>>, now: u64) {
        for f in frames.into_iter().rev() {
            self.held_out.push_front((now, f));
        }
    }

    /// Frames due now in direction `dir`.
    pub fn due(&self, dir: Dir, now: u64) -> usize {
        let q = match dir {
            Dir::In => &self.held_in,
            Dir::Out => &self.held_out,
        };
        q.iter().take_while(|(d, _)| *d <= now).count()
    }

    pub fn held(&self, dir: Dir) -> usize {
        match dir {
            Dir::In => self.held_in.len(),
            Dir::Out => self.held_out.len(),
        }
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

    fn frames(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut f = vec![0u8; 60];
                f[12] = 0x08;
                f[20] = i as u8;
                f
            })
            .collect()
    }

    #[test]
    fn config() {
        let p = Plan::from_config(&pairs(&[
            ("drop-chance", "0.5"),
            ("delay", "50ms"),
            ("seed", "7"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Plan {
                drop: 0.5,
                duplicate: 0.0,
                corrupt: 0.0,
                delay_ns: 50_000_000,
                seed: 7,
                ..Plan::default()
            }
        );
        assert!(
            Plan::from_config(&pairs(&[("drop", "1")]))
                .unwrap_err()
                .contains("unknown key `drop`")
        );
        assert!(
            Plan::from_config(&pairs(&[("corrupt-chance", "2")]))
                .unwrap_err()
                .contains("`corrupt-chance`")
        );
        assert!(
            Plan::from_config(&pairs(&[("delay", "-1s")]))
                .unwrap_err()
                .contains("`delay`")
        );
    }

    #[test]
    fn no_faults_pass_through() {
        let mut f = Faults::new(Plan::default(), "service".into());
        let out = f.pass(Dir::Out, frames(5), 0, usize::MAX);
        assert_eq!(out.frames, frames(5));
        assert_eq!(out.origin, (0..5).map(Some).collect::<Vec<_>>());
        assert!(out.events.is_empty());
        let out = f.pass(Dir::In, frames(5), 0, 3);
        assert_eq!(out.frames, frames(3));
        let out = f.pass(Dir::In, Vec::new(), 0, 3);
        assert_eq!(out.frames, frames(5)[3..].to_vec());
    }

    #[test]
    fn fixed_seed_is_deterministic_and_near_the_rate() {
        let plan = Plan {
            drop: 0.1,
            duplicate: 0.05,
            corrupt: 0.02,
            delay_ns: 0,
            seed: 42,
            ..Plan::default()
        };
        let run = || {
            let mut f = Faults::new(plan.clone(), "service".into());
            let out = f.pass(Dir::Out, frames(10_000), 0, usize::MAX);
            (out.frames, out.events)
        };
        let (a, ev) = run();
        assert_eq!(run(), (a.clone(), ev.clone()));
        let count = |k: &str| ev.iter().filter(|e| e.fields[0].1 == k).count();
        let (d, u, c) = (count("drop"), count("duplicate"), count("corrupt"));
        assert!((850..1150).contains(&d), "drops {d}");
        assert!((400..600).contains(&u), "duplicates {u}");
        assert!((120..280).contains(&c), "corruptions {c}");
        assert_eq!(a.len(), 10_000 - d + u);
        assert_eq!(ev.len(), d + u + c);
        let first = ev.iter().find(|e| e.fields[0].1 == "drop").unwrap();
        assert!(
            first.message.starts_with("dropped outbound frame #"),
            "{}",
            first.message
        );
        assert!(
            first
                .message
                .ends_with("(60 bytes, ethertype 0x0800) on service"),
            "{}",
            first.message
        );
        let corrupt = ev.iter().find(|e| e.fields[0].1 == "corrupt").unwrap();
        assert!(corrupt.message.contains("flipped bit"));
        // Another seed, other faults.
        let mut f = Faults::new(Plan { seed: 43, ..plan }, "service".into());
        assert_ne!(f.pass(Dir::Out, frames(10_000), 0, usize::MAX).events, ev);
    }

    #[test]
    fn always_drop_and_always_duplicate() {
        let mut f = Faults::new(
            Plan {
                drop: 1.0,
                ..Plan::default()
            },
            "s".into(),
        );
        let out = f.pass(Dir::Out, frames(3), 0, usize::MAX);
        assert!(out.frames.is_empty());
        assert_eq!(out.taken, 3);
        assert_eq!(out.events.len(), 3);
        let mut f = Faults::new(
            Plan {
                duplicate: 1.0,
                ..Plan::default()
            },
            "s".into(),
        );
        let out = f.pass(Dir::Out, frames(2), 0, usize::MAX);
        assert_eq!(out.frames.len(), 4);
        assert_eq!(out.origin, [Some(0), Some(0), Some(1), Some(1)]);
    }

    #[test]
    fn delay_holds_until_due() {
        let mut f = Faults::new(
            Plan {
                delay_ns: 50,
                ..Plan::default()
            },
            "s".into(),
        );
        let out = f.pass(Dir::Out, frames(2), 100, usize::MAX);
        assert!(out.frames.is_empty());
        assert_eq!(out.taken, 2);
        assert_eq!(f.held(Dir::Out), 2);
        assert!(
            f.pass(Dir::Out, Vec::new(), 149, usize::MAX)
                .frames
                .is_empty()
        );
        let out = f.pass(Dir::Out, frames(1), 150, usize::MAX);
        assert_eq!(out.frames, frames(2));
        assert_eq!(out.origin, [None, None]);
        f.requeue_out(out.frames, 150);
        assert_eq!(f.due(Dir::Out, 150), 2);
        assert_eq!(
            f.pass(Dir::Out, Vec::new(), 200, usize::MAX).frames.len(),
            3
        );
        // Inbound the same way, at most `max` per call.
        f.pass(Dir::In, frames(3), 0, 10);
        assert_eq!(f.pass(Dir::In, Vec::new(), 49, 10).frames.len(), 0);
        assert_eq!(f.pass(Dir::In, Vec::new(), 50, 2).frames.len(), 2);
        assert_eq!(f.pass(Dir::In, Vec::new(), 50, 2).frames.len(), 1);
    }

    #[test]
    fn corrupt_flips_one_bit_and_garbage_is_fine() {
        let mut f = Faults::new(
            Plan {
                corrupt: 1.0,
                ..Plan::default()
            },
            "s".into(),
        );
        let orig = frames(1);
        let out = f.pass(Dir::In, orig.clone(), 0, 10);
        let diff: u32 = orig[0]
            .iter()
            .zip(&out.frames[0])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(diff, 1);
        // Empty and tiny frames never panic.
        let out = f.pass(Dir::In, vec![Vec::new(), vec![1]], 0, 10);
        assert_eq!(out.frames.len(), 2);
    }

    fn field<'a>(e: &'a Event, k: &str) -> &'a str {
        e.fields
            .iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no `{k}` in {e:?}"))
    }

    /// Frames out and in, alternating in batches of 3 and 2, through `f`: the events.
    fn traffic(f: &mut Faults, batches: usize) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..batches {
            events.extend(f.pass(Dir::Out, frames(3), 0, usize::MAX).events);
            events.extend(f.pass(Dir::In, frames(2), 0, usize::MAX).events);
        }
        events
    }

    #[test]
    fn sim_seed_and_schedule_config() {
        let p = Plan::from_config(&pairs(&[("sim-seed", "77"), ("sim-phase", "1")])).unwrap();
        assert_eq!(p.seed, 77);
        let p = Plan::from_config(&pairs(&[("sim-seed", "77"), ("seed", "3")])).unwrap();
        assert_eq!(p.seed, 3);
        let p = Plan::from_config(&pairs(&[
            ("schedule", "[corrupt@4, drop@2]"),
            ("drop-chance", "1"),
        ]))
        .unwrap();
        assert_eq!((p.drop, p.corrupt), (0.0, 0.0));
        assert!(p.may_corrupt());
        assert!(
            !Plan::from_config(&pairs(&[("schedule", "[drop@2]")]))
                .unwrap()
                .may_corrupt()
        );
        let e = Plan::from_config(&pairs(&[("schedule", "[drop@2, fail@3]")])).unwrap_err();
        assert!(e.contains("`schedule`") && e.contains("`fail@3`"), "{e}");
    }

    #[test]
    fn tokens_number_frames_across_both_directions() {
        // Every frame faulted: each frame's token is unique, and in order of arrival.
        let mut f = Faults::new(
            Plan {
                corrupt: 1.0,
                ..Plan::default()
            },
            "s".into(),
        );
        let ev = traffic(&mut f, 3);
        let tokens: Vec<&str> = ev.iter().map(|e| field(e, "schedule")).collect();
        let want: Vec<String> = (1..=15).map(|i| format!("corrupt@{i}")).collect();
        assert_eq!(tokens, want);
        // `n` still counts each direction on its own.
        assert_eq!(field(&ev[3], "direction"), "inbound");
        assert_eq!(field(&ev[3], "n"), "1");
        assert_eq!(field(&ev[5], "n"), "4");
    }

    #[test]
    fn a_schedule_injects_exactly_its_faults_and_replays_them() {
        let plan = Plan {
            drop: 0.1,
            duplicate: 0.1,
            corrupt: 0.2,
            seed: 5,
            ..Plan::default()
        };
        let drawn = traffic(&mut Faults::new(plan, "s".into()), 100);
        assert!(drawn.len() > 100, "{}", drawn.len());
        // Keep every other fault.
        let kept: Vec<Event> = drawn.iter().step_by(2).cloned().collect();
        let tokens: Vec<&str> = kept.iter().map(|e| field(e, "schedule")).collect();
        let schedule = format!("[{}]", tokens.join(", "));
        let plan = Plan::from_config(&pairs(&[
            ("schedule", &schedule),
            ("seed", "5"),
            ("drop-chance", "0.5"),
        ]))
        .unwrap();
        let replay = traffic(&mut Faults::new(plan, "s".into()), 100);
        // A kept corruption of a frame whose drop was left out is the same corruption;
        // a frame that was dropped and is now kept has no other fault of its own.
        assert_eq!(replay, kept);
        // The empty schedule: no faults, whatever the chances say.
        let plan = Plan::from_config(&pairs(&[("schedule", "[]"), ("drop-chance", "1")])).unwrap();
        let mut f = Faults::new(plan, "s".into());
        assert!(traffic(&mut f, 10).is_empty());
    }

    #[test]
    fn scheduled_duplicate_and_corrupt_of_one_frame() {
        let plan =
            Plan::from_config(&pairs(&[("schedule", "[duplicate@2, corrupt@2, drop@3]")])).unwrap();
        let mut f = Faults::new(plan, "s".into());
        let out = f.pass(Dir::Out, frames(4), 0, usize::MAX);
        assert_eq!(out.origin, [Some(0), Some(1), Some(1), Some(3)]);
        assert_ne!(out.frames[1], frames(4)[1]);
        assert_eq!(out.frames[1], out.frames[2]);
        let kinds: Vec<&str> = out.events.iter().map(|e| field(e, "fault")).collect();
        assert_eq!(kinds, ["corrupt", "duplicate", "drop"]);
    }

    #[test]
    fn frames_it_does_not_handle_pass_unnumbered_unchanged_and_at_once() {
        let plan = Plan::from_config(&pairs(&[
            ("ethertypes", "[0x0806]"),
            ("directions", "[\"inbound\"]"),
            ("drop-chance", "1"),
            ("delay", "10ms"),
        ]))
        .unwrap();
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[8, 6]);
        let ip = frames(1).remove(0);
        assert!(plan.handles(Dir::In, &arp) && !plan.handles(Dir::Out, &arp) && !plan.handles(Dir::In, &ip));
        let mut f = Faults::new(plan, "s".into());
        // Inbound: the ARP frame is dropped (drop-chance 1), the other passes now.
        let out = f.pass(Dir::In, vec![arp.clone(), ip.clone()], 0, 8);
        assert_eq!(out.frames, [ip.clone()]);
        assert_eq!(out.events.len(), 1);
        assert_eq!(field(&out.events[0], "schedule"), "drop@1");
        // Outbound: nothing is handled, nothing is held or numbered.
        let out = f.pass(Dir::Out, vec![arp.clone(), ip.clone()], 0, usize::MAX);
        assert_eq!((out.frames, out.taken, out.events.len()), (vec![arp, ip], 2, 0));
        assert_eq!(f.held(Dir::Out), 0);
        let e = Plan::from_config(&pairs(&[("directions", "[\"sideways\"]")])).unwrap_err();
        assert!(e.contains("`directions`") && e.contains("inbound, outbound"), "{e}");
    }
}
