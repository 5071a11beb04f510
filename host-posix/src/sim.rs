//! Simulation on Linux: `weft explore` (many seeds in-process, in
//! parallel), `weft shrink` (delta debugging of a failing run's faults) and
//! `weft run --check-determinism`. Every run here is in one process on
//! private leaves: disks are copy-on-write views of their images (never
//! changed), the console and the log are kept in memory.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use cap_std::fs::Dir;
use wasmtime::{Engine, Store};
use weft_runtime::devices::{BlockDevice, Console, Log};
use weft_runtime::engine::Codegen;
use weft_runtime::leaves::{MemoryBlock, OverlayBlock, SeededRandom, VirtualClock};
use weft_runtime::link::{ConfigError, Host, Leaves, Unikernel};
use weft_runtime::manifest::{Backend, Kind, SimOverride, SimSpec};
use weft_runtime::plan::Plan;
use weft_runtime::tape::{Outcome, Recorder, Tape, Trace};
use weft_runtime::units::format_duration;

use crate::run::{self, Ended, RunOpts, Session};
use crate::trace;

use crate::exit::invalid;

/// Console bytes kept in memory.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Console for Captured {
    fn write(&mut self, bytes: &[u8]) {
        self.0.lock().expect("console lock").extend_from_slice(bytes);
    }
}

/// Events nobody reads (faults are collected by the host instead).
pub struct NullLog;

impl Log for NullLog {
    fn append(&mut self, _: &str, _: &str, _: &[(String, String)]) {}
}

/// What every run of one simulation starts from: each block device's image
/// (read once; `None` for a memory disk).
pub struct World {
    images: Vec<(Option<Arc<[u8]>>, u64, bool)>,
}

impl World {
    pub fn new(plan: &Plan, dir: &Dir) -> Result<World> {
        let mut images = Vec::new();
        for d in plan.block_devices() {
            images.push(match &d.backend {
                Backend::File { path, size, read_only, .. } => {
                    let bytes: Arc<[u8]> = match dir.read(path) {
                        Ok(b) => b.into(),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match size {
                            Some(n) => vec![0u8; *n as usize].into(),
                            None => return Err(invalid(format!("error: device `{}`: disk image {} does not exist; create it or give `size`", d.role, path.display()))),
                        },
                        Err(e) => return Err(invalid(format!("error: device `{}`: reading {}: {e}", d.role, path.display()))),
                    };
                    if bytes.is_empty() || bytes.len() % 512 != 0 {
                        return Err(invalid(format!("error: device `{}`: disk image {} is not a whole number of 512-byte sectors", d.role, path.display())));
                    }
                    (Some(bytes), 0, *read_only)
                }
                Backend::Memory { size, read_only } => {
                    // Every run allocates it: fail here, once, with the reason.
                    drop(run::memory_disk(plan, d, *size, *read_only)?);
                    (None, *size, *read_only)
                }
                other => unreachable!("validated: {other:?} is not a block backend"),
            });
        }
        Ok(World { images })
    }

    /// Private leaves for one simulated run with `seed`.
    pub fn leaves(&self, plan: &Plan, seed: u64, console: Box<dyn Console>, log: Box<dyn Log>) -> Leaves {
        let sim = plan.manifest.sim.clone().unwrap_or_else(SimSpec::defaults);
        let blocks = self
            .images
            .iter()
            .map(|(base, size, ro)| match base {
                Some(b) => Box::new(OverlayBlock::new(b.clone(), *ro)) as Box<dyn BlockDevice>,
                None => Box::new(MemoryBlock::new(*size, *ro)),
            })
            .collect();
        let random = plan
            .manifest
            .devices
            .iter()
            .find(|d| d.kind == Kind::Random)
            .map(|d| match (&d.backend, d.line) {
                // Bound by default: seeded from this run's seed.
                (_, 0) => weft_runtime::sim::mix(seed, weft_runtime::sim::RANDOM_SALT),
                (Backend::Seeded { seed }, _) => *seed,
                _ => 0,
            })
            .unwrap_or(0);
        Leaves::new(blocks, Box::new(VirtualClock::new(sim.start, sim.tick)), console, Box::new(SeededRandom(random)), log)
    }
}

/// A planned simulation, ready to run any seed.
pub struct Sim {
    pub plan: Plan,
    pub engine: Engine,
    pub unikernel: Unikernel,
    pub world: World,
    pub src: String,
}

/// One run's result, as `explore` reports it.
#[derive(Clone, Debug)]
pub struct Run {
    pub seed: u64,
    pub code: u8,
    pub outcome: Outcome,
    /// The console's last lines.
    pub tail: String,
    pub virtual_ns: u64,
    pub faults: Vec<(usize, u32, String)>,
}

impl Sim {
    pub fn open(manifest: &Path, seed: Option<u64>) -> Result<Sim> {
        let src = std::fs::read_to_string(manifest)
            .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
        Self::from_text(manifest, &src, seed)
    }

    pub fn from_text(manifest: &Path, src: &str, seed: Option<u64>) -> Result<Sim> {
        Self::from_text_for(manifest, src, seed, Codegen::default())
    }

    /// [`Sim::from_text`] compiling as `codegen` asks (`weft explore`: no
    /// symbolized stacks, see [`Codegen::unsymbolized`]).
    pub fn from_text_for(manifest: &Path, src: &str, seed: Option<u64>, codegen: Codegen) -> Result<Sim> {
        let (plan, dir, engine) = run::plan_text_for(manifest, src, SimOverride { enable: true, seed }, codegen)?;
        if plan.net_devices().next().is_some() {
            return Err(invalid(format!("error: {}: net devices cannot be simulated yet (simulated links are coming); explore needs a manifest without [devices.*] kind = \"net\"", plan.manifest.path.display())));
        }
        let unikernel = run::unikernel(&plan, &engine)?;
        let world = World::new(&plan, &dir)?;
        Ok(Sim { plan, engine, unikernel, world, src: src.to_string() })
    }

    pub fn spec(&self) -> &SimSpec {
        self.plan.manifest.sim.as_ref().expect("a simulation")
    }

    fn session(&self) -> Session<'_> {
        Session::new(&self.plan, &self.unikernel, &self.engine)
    }

    /// Runs `seed` on private leaves.
    pub fn run(&self, seed: u64, tape: Tape, schedules: Option<&[Option<Vec<String>>]>, collect: bool) -> (Run, Ended) {
        let console = Captured::default();
        let leaves = self.world.leaves(&self.plan, seed, Box::new(console.clone()), Box::new(NullLog));
        let mut ended = self.session().execute(leaves, tape, &RunOpts { seed: Some(seed), schedules, collect, stats: false, profiler: None });
        let virtual_ns = ended.leaves.clock.monotonic_now();
        let out = console.0.lock().expect("console lock");
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(2)..].join(" / ");
        let faults = std::mem::take(&mut ended.faults);
        (Run { seed, code: ended.code, outcome: ended.outcome.clone(), tail, virtual_ns, faults }, ended)
    }

    /// Whether a run passed: it exited with `[sim] expect-exit`.
    pub fn passed(&self, r: &Run) -> bool {
        passed(r, self.spec().expect_exit)
    }

    /// `seed` run again with a recorder: the trace of that run.
    pub fn record(&self, seed: u64, schedules: Option<&[Option<Vec<String>>]>) -> (Run, Vec<u8>) {
        let probe = self.world.leaves(&self.plan, seed, Box::new(Captured::default()), Box::new(NullLog));
        let header = trace::header(&self.plan, &probe, &self.src, Some(seed));
        let (r, ended) = self.run(seed, Tape::Record(Box::new(Recorder::new(&header))), schedules, false);
        let Tape::Record(rec) = ended.tape else { unreachable!("recording") };
        (r, rec.finish())
    }
}

/// How a failure looks in a summary: the outcome and the console's end.
pub fn signature(r: &Run) -> String {
    let o = match &r.outcome {
        Outcome::Exit(c) => format!("exit {c}"),
        Outcome::Trap { who, .. } => format!("trap in {who}"),
        other => other.to_string(),
    };
    if r.tail.is_empty() { o } else { format!("{o}: {}", r.tail) }
}

pub struct ExploreOptions {
    pub runs: u64,
    pub jobs: usize,
    pub out: PathBuf,
    pub shrink: bool,
}

/// What `weft explore` explores: one unikernel, or a cluster of them.
pub trait Explorable: Sync {
    /// The manifest, for the summary.
    fn path(&self) -> &Path;
    /// The first seed (`[sim] seed`, `[cluster] seed`).
    fn first_seed(&self) -> u64;
    fn expect_exit(&self) -> u8;
    /// Runs `seed` on private leaves.
    fn run_seed(&self, seed: u64) -> Run;
    /// `seed` again, recorded: (file name suffix, trace) per unikernel.
    fn traces(&self, seed: u64) -> (Run, Vec<(String, Vec<u8>)>);
    /// Shrinks a failing seed whose trace is at `trace`, if it can.
    fn shrink(&self, seed: u64, trace: &Path) -> Result<()>;
}

impl Explorable for Sim {
    fn path(&self) -> &Path {
        &self.plan.manifest.path
    }
    fn first_seed(&self) -> u64 {
        self.spec().seed
    }
    fn expect_exit(&self) -> u8 {
        self.spec().expect_exit
    }
    fn run_seed(&self, seed: u64) -> Run {
        self.run(seed, Tape::Off, None, true).0
    }
    fn traces(&self, seed: u64) -> (Run, Vec<(String, Vec<u8>)>) {
        let (r, bytes) = self.record(seed, None);
        (r, vec![(String::new(), bytes)])
    }
    fn shrink(&self, seed: u64, trace: &Path) -> Result<()> {
        shrink_run(self, seed, trace, None).map(|_| ())
    }
}

/// Whether a run passed: it exited with the expected code.
fn passed(r: &Run, expect: u8) -> bool {
    r.outcome == Outcome::Exit(expect) && r.code == expect
}

/// `weft explore`.
pub fn explore(manifest: &Path, o: &ExploreOptions) -> Result<u8> {
    let src = std::fs::read_to_string(manifest)
        .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
    // Thousands of runs, each ending in a power cut or a trap whose stack
    // wasmtime would symbolize: without it (a failing seed's `weft run
    // --seed` or `weft replay` names `file:line`).
    let codegen = Codegen { unsymbolized: true, ..Codegen::default() };
    if weft_runtime::cluster::is_cluster(&src) {
        return explore_with(&crate::cluster::ClusterSim::open_for(manifest, &src, codegen)?, o);
    }
    explore_with(&Sim::from_text_for(manifest, &src, None, codegen)?, o)
}

fn explore_with(sim: &dyn Explorable, o: &ExploreOptions) -> Result<u8> {
    let first = sim.first_seed();
    let expect = sim.expect_exit();
    let next = AtomicU64::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let results: Mutex<Vec<Run>> = Mutex::new(Vec::new());
    let t = Instant::now();
    let tty = std::io::stderr().is_terminal();
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= o.runs {
                        break;
                    }
                    let r = sim.run_seed(first.wrapping_add(i));
                    if !passed(&r, expect) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    results.lock().expect("results").push(r);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        if tty {
            s.spawn(|| {
                while done.load(Ordering::Relaxed) < o.runs as usize {
                    progress(done.load(Ordering::Relaxed), o.runs, failed.load(Ordering::Relaxed), t);
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                progress(o.runs as usize, o.runs, failed.load(Ordering::Relaxed), t);
                eprintln!();
            });
        }
    });
    let elapsed = t.elapsed().as_secs_f64();
    let mut runs = results.into_inner().expect("results");
    runs.sort_by_key(|r| r.seed.wrapping_sub(first));
    let failures: Vec<&Run> = runs.iter().filter(|r| !passed(r, expect)).collect();
    let mut signatures: Vec<(String, Vec<u64>)> = Vec::new();
    for f in &failures {
        let sig = signature(f);
        match signatures.iter_mut().find(|(s, _)| *s == sig) {
            Some((_, seeds)) => seeds.push(f.seed),
            None => signatures.push((sig, vec![f.seed])),
        }
    }
    let vtime: u128 = runs.iter().map(|r| u128::from(r.virtual_ns)).sum();
    let faults: usize = runs.iter().map(|r| r.faults.len()).sum();
    let mut out = std::io::stdout().lock();
    writeln!(out, "explored  {} (seeds {}..{})", sim.path().display(), first, first.wrapping_add(o.runs))?;
    writeln!(out, "runs      {} in {:.2}s on {} jobs: {:.0} runs/s", runs.len(), elapsed, o.jobs, runs.len() as f64 / elapsed.max(1e-9))?;
    let speed = vtime as f64 / 1e9 / elapsed.max(1e-9);
    let speed = if speed >= 10.0 { format!("{speed:.0}") } else { format!("{speed:.3}") };
    writeln!(out, "virtual   {} of virtual time covered ({speed}x real time), {faults} faults injected", format_duration(vtime.min(i64::MAX as u128) as i64))?;
    writeln!(out, "failures  {} (expected exit {expect}), {} distinct", failures.len(), signatures.len())?;
    for (sig, seeds) in &signatures {
        let shown: Vec<String> = seeds.iter().take(8).map(u64::to_string).collect();
        let more = if seeds.len() > 8 { format!(" … and {} more", seeds.len() - 8) } else { String::new() };
        writeln!(out, "  {:>5} x {sig}  (seeds {}{more})", seeds.len(), shown.join(", "))?;
    }
    drop(out);
    if failures.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(&o.out).map_err(|e| anyhow::anyhow!("creating {}: {e}", o.out.display()))?;
    // Every failing seed again, recorded, on all the jobs.
    let next = AtomicUsize::new(0);
    let recorded: Mutex<Vec<(usize, Run, Vec<(String, Vec<u8>)>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs.max(1) {
            s.spawn(|| {
                while let Some(f) = failures.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (again, traces) = sim.traces(f.seed);
                    let i = failures.iter().position(|x| x.seed == f.seed).unwrap_or(0);
                    recorded.lock().expect("recorded").push((i, again, traces));
                }
            });
        }
    });
    let mut recorded = recorded.into_inner().expect("recorded");
    recorded.sort_by_key(|r| r.0);
    let mut shown = 0;
    for (i, again, traces) in recorded {
        let f = failures[i];
        if again.code != f.code || again.outcome != f.outcome {
            // The simulation's own check that a seed means one run.
            eprintln!("weft: warning: seed {} did not repeat itself ({} then {}): a source of nondeterminism escaped the simulation", f.seed, f.outcome, again.outcome);
        }
        for (suffix, bytes) in traces {
            let path = o.out.join(format!("seed-{}{suffix}.trace", f.seed));
            std::fs::write(&path, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            if shown < 10 {
                println!("reproduce: weft replay {}", path.display());
                shown += 1;
            }
        }
    }
    if failures.len() > shown {
        println!("… and more traces in {}", o.out.display());
    }
    if o.shrink {
        for (_, seeds) in &signatures {
            sim.shrink(seeds[0], &o.out.join(format!("seed-{}.trace", seeds[0])))?;
        }
    }
    Ok(1)
}

fn progress(done: usize, total: u64, failed: usize, t: Instant) {
    let width = 30;
    let filled = (done as u64 * width / total.max(1)) as usize;
    let rate = done as f64 / t.elapsed().as_secs_f64().max(1e-9);
    eprint!("\r[{}{}] {done}/{total} runs, {failed} failed, {rate:.0} runs/s ", "=".repeat(filled), " ".repeat(width as usize - filled));
    let _ = std::io::stderr().flush();
}

/// `weft run --check-determinism`: the manifest twice on private leaves,
/// each recorded; the traces must be identical. Prints the first run's
/// console; returns its exit code, or 1 when the runs differ.
pub fn check_determinism(manifest: &Path, over: SimOverride) -> Result<u8> {
    let src = std::fs::read_to_string(manifest)
        .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
    let (plan, dir, engine) = run::plan_text(manifest, &src, over)?;
    if plan.manifest.sim.is_none() {
        return Err(invalid(format!(
            "error: {}: --check-determinism compares two runs of a simulation; add [sim] or pass --sim (a run on the system clock and OS random differs every time)",
            plan.manifest.path.display()
        )));
    }
    let sim = Sim { unikernel: run::unikernel(&plan, &engine)?, world: World::new(&plan, &dir)?, plan, engine, src };
    let seed = sim.spec().seed;
    let (a, ta) = sim.record(seed, None);
    let (_, tb) = sim.record(seed, None);
    let (ta, tb) = (Trace::parse(ta).expect("a fresh trace"), Trace::parse(tb).expect("a fresh trace"));
    // The first run again, its console to stdout this time.
    let (shown, ended) = {
        let leaves = sim.world.leaves(&sim.plan, seed, Box::new(crate::backends::StdioConsole), Box::new(crate::backends::StderrLog));
        let e = sim.session().execute(leaves, Tape::Off, &RunOpts { seed: Some(seed), ..RunOpts::default() });
        (e.code, e)
    };
    match trace::first_difference(&ta, &tb) {
        None => {
            eprintln!("weft: deterministic: two runs of seed {seed} made the same {} device calls and ended alike ({})", ta.calls, a.outcome);
            match ended.error {
                Some(e) => Err(e),
                None => Ok(shown),
            }
        }
        Some((call, x, y)) => {
            eprintln!("weft: NOT deterministic: two runs of seed {seed} differ at call #{call}:\n  first run:  {x}\n  second run: {y}");
            Ok(1)
        }
    }
}

/// `weft shrink FILE`.
pub fn shrink(path: &Path, out: Option<&Path>) -> Result<u8> {
    let t = trace::load(path)?;
    let Some(seed) = t.header.sim_seed else {
        return Err(invalid(format!(
            "error: {}: not a simulation's trace; shrinking re-runs the simulation with fewer faults, so it needs a trace from `weft run --sim --record` or `weft explore`",
            path.display()
        )));
    };
    trace::plan_for(&t, path, false)?;
    let sim = Sim::from_text(Path::new(&t.header.manifest_path), &t.header.manifest, Some(seed))?;
    shrink_run(&sim, seed, path, out)
}

/// Delta-debugs the faults of `seed`'s failing run; writes the manifest with
/// the minimal schedule and its trace.
fn shrink_run(sim: &Sim, seed: u64, trace_path: &Path, out: Option<&Path>) -> Result<u8> {
    let (first, _) = sim.run(seed, Tape::Off, None, true);
    if sim.passed(&first) {
        return Err(invalid(format!("error: seed {seed} passes ({}): nothing to shrink", first.outcome)));
    }
    let want = signature_kind(&first);
    let n = sim.plan.wiring.filters().count();
    let scheduled = schedulable(sim, seed, n);
    let faults: Vec<(usize, u32, String)> = first.faults.iter().filter(|f| scheduled[f.0]).cloned().collect();
    let runs = AtomicUsize::new(0);
    let fails = |subset: &[(usize, u32, String)]| -> bool {
        runs.fetch_add(1, Ordering::Relaxed);
        let sched = schedules(subset, &scheduled);
        let (r, _) = sim.run(seed, Tape::Off, Some(&sched), false);
        !sim.passed(&r) && signature_kind(&r) == want
    };
    if !fails(&faults) {
        return Err(invalid(format!(
            "error: seed {seed}'s failure ({}) does not come back when its {} faults are given as an explicit schedule; it depends on something the schedule does not hold",
            first.outcome,
            faults.len()
        )));
    }
    let minimal = earliest(ddmin(faults.clone(), &fails), &fails);
    let sched = schedules(&minimal, &scheduled);
    let manifest_out = match out {
        Some(p) => p.to_path_buf(),
        None => {
            let stem = trace_path.file_stem().map_or("shrunk".into(), |s| s.to_string_lossy().into_owned());
            sim.plan.manifest.dir.join(format!("{stem}.shrunk.toml"))
        }
    };
    let text = shrunk_manifest(sim, seed, &sched)?;
    std::fs::write(&manifest_out, &text).map_err(|e| anyhow::anyhow!("writing {}: {e}", manifest_out.display()))?;
    let (r, bytes) = sim.record(seed, Some(&sched));
    let trace_out = trace_path.with_extension("shrunk.trace");
    std::fs::write(&trace_out, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", trace_out.display()))?;
    println!(
        "shrunk    seed {seed}: {} faults -> {} ({} runs): {}",
        first.faults.len(),
        minimal.len(),
        runs.load(Ordering::Relaxed),
        if minimal.is_empty() { "the failure needs no fault".to_string() } else { minimal.iter().map(|f| token(f)).collect::<Vec<_>>().join(", ") }
    );
    println!("manifest  {}  (weft run {} fails the same way: {})", manifest_out.display(), manifest_out.display(), r.outcome);
    println!("trace     {}  (weft replay {})", trace_out.display(), trace_out.display());
    Ok(0)
}

/// The failure's kind, for "still the same failure": the outcome.
fn signature_kind(r: &Run) -> String {
    match &r.outcome {
        Outcome::Trap { who, .. } => format!("trap {who}"),
        o => o.to_string(),
    }
}

fn token(f: &(usize, u32, String)) -> String {
    if f.1 == 1 { f.2.clone() } else { format!("{}:{}", f.1, f.2) }
}

/// Per filter: the schedule for `subset` (every schedulable filter gets
/// one, empty when none of its faults are kept, so it draws no new ones).
fn schedules(subset: &[(usize, u32, String)], scheduled: &[bool]) -> Vec<Option<Vec<String>>> {
    scheduled
        .iter()
        .enumerate()
        .map(|(i, &ok)| ok.then(|| subset.iter().filter(|f| f.0 == i).map(token).collect()))
        .collect()
}

/// Which filters take a `schedule` (their `configure` accepts one).
fn schedulable(sim: &Sim, seed: u64, n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| {
            let mut sched = vec![None; n];
            sched[i] = Some(Vec::new());
            let configs = weft_runtime::sim::configs(
                &sim.plan.wiring,
                &weft_runtime::sim::Draw { seed, phase: 1, swarm: &sim.session().swarm, schedules: &sched },
            );
            let leaves = sim.world.leaves(&sim.plan, seed, Box::new(Captured::default()), Box::new(NullLog));
            let limits = sim.session().limits;
            let mut store = Store::new(&sim.engine, Host::new(leaves, limits));
            match sim.unikernel.instantiate_with(&mut store, Some(&configs)) {
                Err(e) => e.downcast_ref::<ConfigError>().is_none(),
                Ok(_) => true,
            }
        })
        .collect()
}

/// Zeller's ddmin: a 1-minimal subset of `c` for which `fails` holds.
fn ddmin<T: Clone>(mut c: Vec<T>, fails: &dyn Fn(&[T]) -> bool) -> Vec<T> {
    if fails(&[]) {
        return Vec::new();
    }
    let mut n = 2;
    while c.len() >= 2 {
        let size = c.len().div_ceil(n);
        let chunks: Vec<Vec<T>> = c.chunks(size).map(<[T]>::to_vec).collect();
        let mut reduced = false;
        for ch in &chunks {
            if fails(ch) {
                c = ch.clone();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced {
            for i in 0..chunks.len() {
                let rest: Vec<T> = chunks.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, ch)| ch.clone()).collect();
                if fails(&rest) {
                    c = rest;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= c.len() {
                break;
            }
            n = (n * 2).min(c.len());
        }
    }
    if c.len() == 1 && fails(&[]) {
        return Vec::new();
    }
    c
}

/// Shortens the run where it can: each fault moved to the earliest
/// operation (of a few tried, earliest first) at which the run still fails
/// the same way — a power cut sooner, the first write dropped instead of a
/// later one.
fn earliest(mut faults: Vec<(usize, u32, String)>, fails: &dyn Fn(&[(usize, u32, String)]) -> bool) -> Vec<(usize, u32, String)> {
    for i in 0..faults.len() {
        let Some((kind, n)) = faults[i].2.split_once('@').and_then(|(k, n)| Some((k.to_string(), n.parse::<u64>().ok()?))) else { continue };
        let mut tried = Vec::new();
        for m in [1, n / 4, n / 2, 3 * n / 4, n.saturating_sub(1)] {
            if m == 0 || m >= n || tried.contains(&m) {
                continue;
            }
            tried.push(m);
            let mut moved = faults.clone();
            moved[i].2 = format!("{kind}@{m}");
            if fails(&moved) {
                faults = moved;
                break;
            }
        }
    }
    faults
}

/// The simulation's manifest with `[sim] seed` and each filter's schedule
/// written in (comments and layout kept).
fn shrunk_manifest(sim: &Sim, seed: u64, sched: &[Option<Vec<String>>]) -> Result<String> {
    use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};
    let mut doc: DocumentMut = sim.src.parse().map_err(|e| anyhow::anyhow!("re-reading the manifest: {e}"))?;
    if !doc.contains_key("sim") {
        doc.insert("sim", Item::Table(Table::new()));
    }
    doc["sim"]["seed"] = toml_edit::value(seed as i64);
    let m = &sim.plan.manifest;
    // Link order: block devices' chains, net devices', the clock's.
    let places: Vec<(String, usize)> = [Kind::Block, Kind::Net, Kind::Clock]
        .iter()
        .flat_map(|k| m.devices.iter().filter(move |d| d.kind == *k))
        .flat_map(|d| (0..d.filters.len()).map(move |j| (d.role.clone(), j)))
        .collect();
    for (i, s) in sched.iter().enumerate() {
        let (Some(tokens), Some((role, j))) = (s, places.get(i)) else { continue };
        let mut arr = Array::new();
        for t in tokens {
            arr.push(t.as_str());
        }
        let dev = if role == "log" && doc.contains_key("log") { &mut doc["log"] } else { &mut doc["devices"][role.as_str()] };
        match &mut dev["filters"] {
            Item::Value(Value::Array(a)) => {
                if let Some(Value::InlineTable(t)) = a.get_mut(*j) {
                    if !t.contains_key("config") {
                        t.insert("config", Value::InlineTable(InlineTable::new()));
                    }
                    if let Some(Value::InlineTable(c)) = t.get_mut("config") {
                        c.insert("schedule", Value::Array(arr));
                    }
                }
            }
            Item::ArrayOfTables(a) => {
                if let Some(t) = a.get_mut(*j) {
                    if !t.contains_key("config") {
                        t.insert("config", Item::Value(Value::InlineTable(InlineTable::new())));
                    }
                    if let Some(c) = t.get_mut("config").and_then(Item::as_inline_table_mut) {
                        c.insert("schedule", Value::Array(arr));
                    }
                }
            }
            _ => {}
        }
    }
    let header = format!(
        "# Written by `weft shrink`: {} with [sim] seed = {seed} and the minimal fault\n# schedule that still fails (see docs/simulation.md).\n",
        m.path.display()
    );
    Ok(header + &doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_one_fault_that_matters() {
        let faults: Vec<u32> = (0..40).collect();
        let min = ddmin(faults, &|s: &[u32]| s.contains(&17));
        assert_eq!(min, [17]);
        let pair = ddmin((0..40).collect(), &|s: &[u32]| s.contains(&3) && s.contains(&31));
        assert_eq!(pair, [3, 31]);
        let none = ddmin((0..5).collect(), &|_: &[u32]| true);
        assert!(none.is_empty());
    }
}
