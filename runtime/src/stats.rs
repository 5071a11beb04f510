//! `--stats`: what crossed each hop of each device — calls by operation,
//! bytes moved, errors returned, faults injected, and the time each call
//! took through the hop and everything below it (p50, p99).
//!
//! The linker counts at the same place it forwards (`link/`), keyed by the
//! consumer instance, the provider it called and the operation; names are
//! resolved once, when a boot ends ([`Report`]), so the hot path does one
//! cheap clock reading on each side (the TSC) and one map update. Times come
//! from the host's [`StatClock`], never from the leaf clock a simulation makes
//! virtual. Latencies go into log-linear buckets (8 per power of two) of
//! clock ticks, converted to ns with the rate measured over the boot: a
//! percentile is exact to within 12.5 %.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// Sub-buckets per power of two.
const SUB: u32 = 8;
const SUB_BITS: u32 = 3;

/// A latency histogram in ns.
#[derive(Clone, Debug)]
pub struct Hist(Vec<u64>);

impl Default for Hist {
    fn default() -> Self {
        Hist(vec![0; (64 * SUB) as usize])
    }
}

impl Hist {
    fn bucket(ns: u64) -> usize {
        if ns < u64::from(SUB) {
            return ns as usize;
        }
        let e = 63 - ns.leading_zeros();
        let m = (ns >> (e - SUB_BITS)) as u32 & (SUB - 1);
        ((e - SUB_BITS + 1) * SUB + m) as usize
    }

    /// The largest value bucket `b` holds.
    fn upper(b: usize) -> u64 {
        let b = b as u32;
        if b < SUB {
            return u64::from(b);
        }
        let (e, m) = (b / SUB + SUB_BITS - 1, b % SUB);
        let up = (u128::from(SUB + m) + 1) << (e - SUB_BITS);
        u64::try_from(up - 1).unwrap_or(u64::MAX)
    }

    pub fn add(&mut self, ns: u64) {
        self.0[Self::bucket(ns)] += 1;
    }

    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    /// The value below which a fraction `q` of the samples lie (to the
    /// bucket's upper edge), or 0 without samples.
    pub fn quantile(&self, q: f64) -> u64 {
        let n: u64 = self.0.iter().sum();
        if n == 0 {
            return 0;
        }
        // ⌈n·q⌉ without `f64::ceil` (not in core).
        let exact = n as f64 * q;
        let rank = (exact as u64 + u64::from((exact as u64 as f64) < exact)).clamp(1, n);
        let mut seen = 0;
        for (b, &c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(b);
            }
        }
        Self::upper(self.0.len() - 1)
    }
}

/// One operation over one hop.
#[derive(Clone, Debug)]
pub struct Row {
    pub calls: u64,
    pub bytes: u64,
    pub errors: u64,
    /// In clock ticks.
    pub time: Hist,
    /// What one tick is in ns.
    pub ns_per_tick: f64,
}

impl Default for Row {
    fn default() -> Self {
        Row { calls: 0, bytes: 0, errors: 0, time: Hist::default(), ns_per_tick: 1.0 }
    }
}

/// The clock `--stats` times calls with: `ticks`, read twice a call, must be
/// cheap (the TSC); `ns`, a monotonic clock in ns, is read when counting
/// starts and ends, to convert ticks to time.
#[derive(Clone, Copy, Debug)]
pub struct StatClock {
    pub ticks: fn() -> u64,
    pub ns: fn() -> u64,
}

/// Which interface a counted call was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Iface {
    Block,
    Net,
    Clock,
    Sockets,
    Console,
    Random,
    Log,
}

const IFACES: [Iface; 7] = [Iface::Block, Iface::Net, Iface::Clock, Iface::Sockets, Iface::Console, Iface::Random, Iface::Log];

/// An operation, by its index in [`OPS`] (the order tables list them in:
/// each interface's calls in the order a consumer makes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Op(u8);

const OPS: [&str; 22] = [
    "open", "info", "read", "write", "send", "receive", "flush", "monotonic-now", "wall-now", "wait-until", "tcp-listen", "tcp-accept",
    "tcp-connect", "tcp-send", "tcp-recv", "tcp-shutdown", "udp-bind", "udp-send-to", "udp-recv-from", "fill", "append", "seen",
];

impl Op {
    pub const OPEN: Op = Op(0);
    pub const INFO: Op = Op(1);
    pub const READ: Op = Op(2);
    pub const WRITE: Op = Op(3);
    pub const SEND: Op = Op(4);
    pub const RECEIVE: Op = Op(5);
    pub const FLUSH: Op = Op(6);
    pub const MONOTONIC_NOW: Op = Op(7);
    pub const WALL_NOW: Op = Op(8);
    pub const WAIT_UNTIL: Op = Op(9);
    pub const FILL: Op = Op(19);
    pub const APPEND: Op = Op(20);
    /// Frames handed to a net filter that only observes (`crate::watch`).
    pub const SEEN: Op = Op(21);

    /// A `sockets` operation by its code in the trace (0 `tcp-listen` … 8
    /// `udp-recv-from`).
    pub const fn socket(code: u8) -> Op {
        Op(10 + code)
    }

    pub fn name(self) -> &'static str {
        OPS[self.0 as usize]
    }
}

/// A counted call's key, packed so the hot path compares one integer:
/// (interface, leaf device, consumer, provider — 0 for the host's leaf, else
/// the filter's instance + 1 — operation).
pub(crate) fn key(me: usize, provider: Option<usize>, iface: Iface, leaf: usize, op: Op) -> u64 {
    let p = provider.map_or(0, |f| f as u64 + 1);
    (iface as u64) << 56 | (leaf as u64 & 0xffff) << 40 | (me as u64 & 0xffff) << 24 | (p & 0xffff) << 8 | u64::from(op.0)
}

/// The parts of a [`key`].
pub(crate) fn unkey(k: u64) -> (usize, Option<usize>, Iface, usize, Op) {
    let p = (k >> 8) & 0xffff;
    ((k >> 24 & 0xffff) as usize, p.checked_sub(1).map(|f| f as usize), IFACES[(k >> 56) as usize], (k >> 40 & 0xffff) as usize, Op(k as u8))
}

/// The counters of one boot.
pub struct Stats {
    pub(crate) clock: StatClock,
    /// (ticks, ns) when counting started.
    start: (u64, u64),
    pub(crate) rows: BTreeMap<u64, Row>,
    /// Log events with a `fault` field, by the instance that logged them.
    pub(crate) faults: BTreeMap<usize, u64>,
}

impl Stats {
    pub fn new(clock: StatClock) -> Stats {
        Stats { clock, start: ((clock.ticks)(), (clock.ns)()), rows: BTreeMap::new(), faults: BTreeMap::new() }
    }

    /// The rate measured since counting started (1 when too little time
    /// passed to tell).
    pub(crate) fn ns_per_tick(&self) -> f64 {
        let (t, n) = ((self.clock.ticks)(), (self.clock.ns)());
        let (dt, dn) = (t.saturating_sub(self.start.0), n.saturating_sub(self.start.1));
        if dt == 0 || dn < 1_000_000 { 1.0 } else { dn as f64 / dt as f64 }
    }
}

/// The counters of one or more boots with their names resolved: (device,
/// hop, operation) → row, in the order the hops were first seen.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub rows: Vec<((String, String, &'static str), Row)>,
    pub faults: Vec<(String, u64)>,
}

impl Report {
    /// Adds a row (merged with an equal key's, as over boots).
    pub fn add(&mut self, key: (String, String, &'static str), row: &Row) {
        match self.rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, r)) => {
                r.calls += row.calls;
                r.bytes += row.bytes;
                r.errors += row.errors;
                // Ticks of the same clock on the same machine: the first
                // boot's rate stands for both.
                r.time.merge(&row.time);
            }
            None => self.rows.push((key, row.clone())),
        }
    }

    pub fn add_faults(&mut self, who: String, n: u64) {
        match self.faults.iter_mut().find(|(w, _)| *w == who) {
            Some((_, m)) => *m += n,
            None => self.faults.push((who, n)),
        }
    }

    pub fn merge(&mut self, other: &Report) {
        for (k, r) in &other.rows {
            self.add(k.clone(), r);
        }
        for (w, n) in &other.faults {
            self.add_faults(w.clone(), *n);
        }
    }

    /// The table `--stats` prints, grouped by device.
    pub fn render(&self) -> String {
        // Devices and hops in the order the linker reported them.
        let rows = &self.rows;
        let hop_w = rows.iter().map(|r| r.0.1.len()).max().unwrap_or(3).max(3);
        let dev_w = rows.iter().map(|r| r.0.0.len()).max().unwrap_or(6).max(6);
        let mut out = String::new();
        let _ = writeln!(out, "weft: stats — per device and hop; time is through the hop and all below it");
        let _ = writeln!(
            out,
            "  {:<dev_w$}  {:<hop_w$}  {:<13} {:>9} {:>10} {:>6} {:>8} {:>8}",
            "device", "hop", "op", "calls", "bytes", "errors", "p50", "p99"
        );
        for ((dev, hop, op), r) in rows {
            let _ = writeln!(
                out,
                "  {dev:<dev_w$}  {hop:<hop_w$}  {op:<13} {:>9} {:>10} {:>6} {:>8} {:>8}",
                r.calls,
                bytes(r.bytes),
                r.errors,
                ns((r.time.quantile(0.5) as f64 * r.ns_per_tick) as u64),
                ns((r.time.quantile(0.99) as f64 * r.ns_per_tick) as u64)
            );
        }
        if !self.faults.is_empty() {
            let f: Vec<String> = self.faults.iter().map(|(w, n)| format!("{w} {n}")).collect();
            let _ = writeln!(out, "  faults injected: {}", f.join(", "));
        }
        out
    }
}

fn bytes(n: u64) -> String {
    match n {
        0 => "-".to_string(),
        1..1024 => format!("{n} B"),
        _ => crate::units::format_size_approx(n),
    }
}

/// Three significant digits: `812ns`, `4.07us`, `13.2ms`.
fn ns(v: u64) -> String {
    let (x, unit) = match v {
        0..1_000 => return format!("{v}ns"),
        1_000..1_000_000 => (v as f64 / 1e3, "us"),
        1_000_000..1_000_000_000 => (v as f64 / 1e6, "ms"),
        _ => (v as f64 / 1e9, "s"),
    };
    let digits = if x < 10.0 { 2 } else if x < 100.0 { 1 } else { 0 };
    format!("{x:.digits$}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_to_within_an_eighth() {
        for v in [0u64, 1, 7, 8, 9, 15, 16, 100, 999, 4096, 123_456, 1 << 40, u64::MAX / 3] {
            let b = Hist::bucket(v);
            let up = Hist::upper(b);
            assert!(up >= v, "{v} <= upper {up}");
            assert!(up - v <= v / 8 + 1, "{v}: bucket upper {up} within 12.5%");
            if b > 0 {
                assert!(Hist::upper(b - 1) < v, "{v} is above the previous bucket");
            }
        }
    }

    #[test]
    fn quantiles_of_a_known_sample() {
        let mut h = Hist::default();
        for v in 1..=100u64 {
            h.add(v * 1000);
        }
        let p50 = h.quantile(0.5);
        let p99 = h.quantile(0.99);
        assert!((50_000..=56_250).contains(&p50), "p50 {p50}");
        assert!((99_000..=111_375).contains(&p99), "p99 {p99}");
        assert_eq!(Hist::default().quantile(0.5), 0);
    }

    #[test]
    fn reports_merge_over_boots() {
        let mut a = Report::default();
        let row = Row { calls: 2, bytes: 1024, errors: 1, ..Row::default() };
        a.add(("storage".into(), "app -> host".into(), "write"), &row);
        let mut b = a.clone();
        b.add_faults("block-fault".into(), 3);
        a.merge(&b);
        assert_eq!(a.rows.len(), 1);
        assert_eq!((a.rows[0].1.calls, a.rows[0].1.bytes, a.rows[0].1.errors), (4, 2048, 2));
        assert_eq!(a.faults, vec![("block-fault".to_string(), 3)]);
        let t = a.render();
        assert!(t.contains("storage") && t.contains("write") && t.contains("2.0 KiB") && t.contains("faults injected: block-fault 3"), "{t}");
    }
}
