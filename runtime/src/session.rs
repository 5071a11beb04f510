//! Boots of one unikernel on one set of leaves, as both hosts run them: a
//! first boot, and — in a simulation whose power was cut, with `[sim]
//! restart` — a second boot on the same leaves. Each boot goes through the
//! tape (recording or replaying), which also holds each boot's args and
//! filter configs.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasmtime::{Engine, Store};

use crate::fault::{Failure, PowerCut};
use crate::link::{Host, Leaves, Limits, Unikernel};
use crate::stats::{Report, StatClock};
use crate::tape::{Diverged, Outcome, Phase, Tape};

/// What a run keeps besides its outcome.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    /// Every injected fault's `schedule` token (what `weft shrink` minimises).
    pub faults: bool,
    /// Count every forwarded call (`--stats`), timed with this clock.
    pub stats: Option<StatClock>,
}

/// How the boots ended.
pub struct Finished<R> {
    /// The last boot's outcome (as a trace records it).
    pub outcome: Outcome,
    /// The last boot failed: the host's report of it.
    pub failed: Option<R>,
    /// A replay stopped at a call the trace does not hold.
    pub diverged: Option<Diverged>,
    /// Faults collected (when asked): (filter index, boot, token).
    pub faults: Vec<(usize, u32, String)>,
    /// `--stats`, over every boot (when asked).
    pub stats: Option<Report>,
    pub leaves: Leaves,
    pub tape: Tape,
}

/// Runs boot 1, then boot 2 after a power cut when `plan(2)` gives one.
/// `plan(n)` is boot n's args and filter configs (empty configs: the
/// wiring's); a replay uses the recorded ones instead. `report` turns a
/// failed boot into the host's message while its store is still there.
#[allow(clippy::too_many_arguments)]
pub fn run<R>(
    unikernel: &Unikernel,
    engine: &Engine,
    limits: Limits,
    leaves: Leaves,
    tape: Tape,
    plan: impl FnMut(u32) -> Option<Phase>,
    watch: Watch,
    report: impl FnMut(&Host, wasmtime::Error) -> R,
) -> Finished<R> {
    run_with(unikernel, engine, limits, leaves, tape, plan, watch, report, |_| {})
}

/// [`run`], with `ready` called on each boot's store once it is
/// instantiated, before the app runs: where a host installs what watches
/// the guest from outside the devices (a sampling profiler's epoch
/// callback, say).
#[allow(clippy::too_many_arguments)]
pub fn run_with<R>(
    unikernel: &Unikernel,
    engine: &Engine,
    limits: Limits,
    mut leaves: Leaves,
    mut tape: Tape,
    mut plan: impl FnMut(u32) -> Option<Phase>,
    watch: Watch,
    mut report: impl FnMut(&Host, wasmtime::Error) -> R,
    mut ready: impl FnMut(&mut Store<Host>),
) -> Finished<R> {
    let mut faults = Vec::new();
    let mut stats: Option<Report> = None;
    let mut n = 1;
    loop {
        let planned = plan(n).unwrap_or_default();
        let phase = match tape.phase(Phase { n, ..planned }) {
            Ok(p) => p,
            Err(d) => return diverged(d, leaves, tape, faults, stats),
        };
        let mut host = Host::with_tape(leaves, limits, tape);
        if watch.faults {
            host.collect_faults();
        }
        if let Some(clock) = watch.stats {
            host.collect_stats(clock);
        }
        let mut store = Store::new(engine, host);
        let configs = (!phase.configs.is_empty()).then_some(phase.configs.as_slice());
        let result = unikernel.instantiate_with(&mut store, configs).and_then(|app| {
            ready(&mut store);
            app.run(&mut store, phase.args.clone())
        });
        let host = store.into_data();
        faults.extend(host.faults().iter().map(|(i, tok)| (*i, n, tok.clone())));
        if let Some(r) = host.stats_report() {
            stats.get_or_insert_with(Report::default).merge(&r);
        }
        let (outcome, failed) = match result {
            Ok(code) => (Outcome::Exit(code), None),
            Err(e) if e.downcast_ref::<PowerCut>().is_some() => (Outcome::PowerCut, None),
            Err(e) if e.downcast_ref::<Diverged>().is_some() => {
                let d = e.downcast_ref::<Diverged>().expect("checked").clone();
                let (l, t) = host.into_parts();
                return diverged(d, l, t, faults, stats);
            }
            Err(e) => {
                let outcome = match host.failure() {
                    Some(f) => outcome_of(&host, f),
                    None => Outcome::Trap { who: "host".into(), message: alloc::format!("{e:#}") },
                };
                (outcome, Some(report(&host, e)))
            }
        };
        let (l, mut t) = host.into_parts();
        if let Err(d) = t.end(&outcome) {
            return diverged(d, l, t, faults, stats);
        }
        leaves = l;
        tape = t;
        if outcome == Outcome::PowerCut && n == 1 && plan(2).is_some() {
            n = 2;
            continue;
        }
        return Finished { outcome, failed, diverged: None, faults, stats, leaves, tape };
    }
}

fn outcome_of(host: &Host, f: &Failure) -> Outcome {
    let who = host.name(f.who()).to_string();
    match f {
        Failure::Trap { message, .. } => Outcome::Trap { who, message: message.clone() },
        Failure::Timeout { .. } => Outcome::Timeout { who },
        Failure::Memory { .. } => Outcome::Memory { who },
        // A trap the runtime raised, as far as a trace is concerned.
        Failure::Contract { contract, message, .. } => {
            Outcome::Trap { who, message: alloc::format!("broke the {contract} contract: {message}") }
        }
    }
}

fn diverged<R>(d: Diverged, leaves: Leaves, tape: Tape, faults: Vec<(usize, u32, String)>, stats: Option<Report>) -> Finished<R> {
    Finished { outcome: Outcome::Exit(0), failed: None, diverged: Some(d), faults, stats, leaves, tape }
}
