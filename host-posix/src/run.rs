//! From a manifest to a finished run: plan, leaves, store, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime::Engine;
use weft_runtime::cache::{Cache, Origin};
use weft_runtime::engine::{self, Codegen, Target};
use weft_runtime::link::{Host, Leaves, Limits, Unikernel};
use weft_runtime::manifest::{Backend, DeviceSpec, Manifest, Problems, SimOverride, Swarm};
use weft_runtime::sim::{self, Draw};
use weft_runtime::session;
use weft_runtime::tape::{Outcome, Phase, Tape};
use weft_runtime::plan::{Loader, Plan};
use weft_runtime::units::{format_duration, format_size, format_size_approx};
use weft_runtime::{BlockDevice, Clock, Failure};

use crate::backends::*;
use crate::net::{HostSockets, PcapCapture, Readiness, TapNet, UdpNet};
use std::sync::Arc;
use weft_runtime::devices::NetDevice;
use crate::exit;

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// Reads components through the manifest folder's capability, so a path
/// cannot reach outside it even through a symlink.
pub struct DirLoader {
    pub dir: Dir,
    /// Run from an OCI image's root file system (the containerd shims): the
    /// shipped components the image was built with (`.weft/shipped/<name>.wasm`,
    /// docs/oci.md), used before this build's own.
    image: Vec<(String, Vec<u8>)>,
}

impl DirLoader {
    pub fn new(dir: Dir) -> DirLoader {
        DirLoader { dir, image: Vec::new() }
    }

    /// For the image whose root file system `dir` is.
    pub fn of_image(dir: Dir) -> DirLoader {
        let mut image = Vec::new();
        if let Ok(entries) = dir.read_dir(".weft/shipped") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name.strip_suffix(".wasm")
                    && let Ok(bytes) = dir.read(Path::new(".weft/shipped").join(&name))
                {
                    image.push((n.to_string(), bytes));
                }
            }
        }
        DirLoader { dir, image }
    }
}

impl Loader for DirLoader {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.dir.read(path)
    }
    fn shipped(&self, name: &str) -> Option<&[u8]> {
        let image = self.image.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
        image.or_else(|| SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b))
    }
    fn shipped_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        names.extend(self.image.iter().map(|(n, _)| n.as_str()).filter(|n| !SHIPPED.iter().any(|(s, _)| s == n)));
        names
    }
}

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

use crate::exit::invalid;

/// The engine `weft run` instantiates with: the shared configuration plus the
/// pooling instance allocator (an instance's memory and tables come from slots
/// reserved once, not from fresh `mmap`s that are page-faulted in and unmapped
/// again: `docs/benchmarks.md`, "Start-up").
pub fn engine() -> Result<Engine> {
    engine_for(Codegen::default())
}

/// [`engine`], generating code as `codegen` says (a simulation's is
/// deterministic and fuelled; `--debug`'s has DWARF and no optimisation).
pub fn engine_for(codegen: Codegen) -> Result<Engine> {
    let mut c = engine::config_with(Target::Native, codegen);
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool()));
    match Engine::new(&c) {
        Ok(e) => Ok(e),
        // The pool's address space refused (a `ulimit -v`, say): instances are
        // then mapped one by one, as without the pool.
        Err(e) => {
            tracing::debug!("pooling allocator unavailable ({e}); allocating instances on demand");
            Engine::new(&engine::config_with(Target::Native, codegen)).map_err(anyhow::Error::from)
        }
    }
}

/// The pool's sizes. A run holds one store: the app, its filters and stack, and
/// what they were composed from (a Python app is ~10 core instances, a chain of
/// four filters 5 more); 128 slots of each kind leave room for tests and
/// benchmarks that keep several stores. Each memory slot reserves 4 GiB of
/// address space (wasm32's whole range, so `limits.memory` stays the only limit)
/// — 512 GiB of the 128 TiB a process has, none of it committed until touched.
pub fn pool() -> wasmtime::PoolingAllocationConfig {
    let mut p = wasmtime::PoolingAllocationConfig::new();
    p.total_component_instances(128)
        .total_core_instances(128)
        .total_memories(128)
        .total_tables(128)
        // CPython's function table is ~10k entries; leave room for bigger runtimes.
        .table_elements(100_000)
        // What a small component touches on instantiation (its data and first heap
        // pages) stays mapped when its slot is freed, and is zeroed with memset
        // instead of being faulted in again on the next instantiation.
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10);
    p
}

/// Parses and plans `manifest`: every problem at once, as one error.
pub fn plan(manifest: &Path, engine: &Engine) -> Result<(Plan, Dir)> {
    let src = std::fs::read_to_string(manifest)
        .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
    let m = Manifest::parse(manifest, &src).map_err(|p| invalid(p.to_string()))?;
    plan_manifest(m, engine)
}

/// Parses `manifest` (with the command line's `--sim`/`--seed`), makes the
/// engine it needs (a simulation's is deterministic) and plans it.
pub fn plan_with(manifest: &Path, over: SimOverride) -> Result<(Plan, Dir, Engine)> {
    plan_for(manifest, over, Codegen::default())
}

/// [`plan_with`], compiling as `codegen` asks (`--debug` for a debugger,
/// `--profile` for sampling), cached apart from the normal build; whether
/// code is deterministic is the manifest's to say.
pub fn plan_for(manifest: &Path, over: SimOverride, codegen: Codegen) -> Result<(Plan, Dir, Engine)> {
    let src = std::fs::read_to_string(manifest)
        .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
    plan_text_for(manifest, &src, over, codegen)
}

/// [`plan_with`] for a manifest's text (a trace carries its manifest's).
pub fn plan_text(manifest: &Path, src: &str, over: SimOverride) -> Result<(Plan, Dir, Engine)> {
    plan_text_for(manifest, src, over, Codegen::default())
}

pub fn plan_text_for(manifest: &Path, src: &str, over: SimOverride, codegen: Codegen) -> Result<(Plan, Dir, Engine)> {
    let m = Manifest::parse_with(manifest, src, over).map_err(|p| invalid(p.to_string()))?;
    let engine = engine_of(&m, codegen)?;
    let (plan, dir) = plan_manifest(m, &engine)?;
    Ok((plan, dir, engine))
}

/// The engine `m` runs on, compiling as `codegen` asks: a simulation's is
/// deterministic, whatever the command line says.
pub fn engine_of(m: &Manifest, codegen: Codegen) -> Result<Engine> {
    engine_for(Codegen { deterministic: m.sim.is_some(), ..codegen })
}

pub fn plan_manifest(m: Manifest, engine: &Engine) -> Result<(Plan, Dir)> {
    plan_manifest_with(m, engine, &Cache::from_env(), false)
}

/// [`plan_manifest`] with compiled code from (and to) `cache`; `image`: the
/// manifest's folder is an OCI image's root ([`DirLoader::of_image`]).
pub fn plan_manifest_with(m: Manifest, engine: &Engine, cache: &Cache, image: bool) -> Result<(Plan, Dir)> {
    plan_loaded(m, engine, cache, image).map(|(plan, loader)| (plan, loader.dir))
}

/// [`plan_manifest_with`], keeping the loader (an image's shipped components,
/// read once) for what reads components next (`weft boot`'s bundle).
pub fn plan_loaded(m: Manifest, engine: &Engine, cache: &Cache, image: bool) -> Result<(Plan, DirLoader)> {
    let dir = Dir::open_ambient_dir(&m.dir, ambient_authority())
        .map_err(|e| invalid(format!("error: cannot open the manifest's folder {}: {e}", m.dir.display())))?;
    let loader = if image { DirLoader::of_image(dir) } else { DirLoader::new(dir) };
    let t = Instant::now();
    let plan = Plan::build(m, &loader, engine, cache).map_err(|p: Problems| invalid(p.to_string()))?;
    for c in plan.components() {
        let how = if c.origin == Origin::Cached { "cache hit" } else { "compiled" };
        tracing::debug!(component = %c.name, "{how}");
    }
    tracing::debug!(elapsed = ?t.elapsed(), "planned");
    Ok((plan, loader))
}

/// Disk images weft created for a run, to remove again if the run fails
/// before its app ran (exit 2): never a file the user already had.
pub struct Created<'a> {
    dir: &'a Dir,
    /// Disk images.
    paths: Vec<PathBuf>,
    /// A git event log's repository.
    dirs: Vec<PathBuf>,
}

impl Created<'_> {
    /// The run ended with `code`: when nothing ran, what it created goes.
    pub fn settle(self, code: u8) {
        if code == exit::INVALID {
            for p in self.paths {
                let _ = self.dir.remove_file(&p);
            }
            for d in self.dirs {
                let _ = self.dir.remove_dir_all(&d);
            }
        }
    }
}

/// The Linux leaf devices the plan asks for, and the images it created.
pub fn leaves<'a>(plan: &Plan, dir: &'a Dir) -> Result<(Leaves, Created<'a>)> {
    let mut created = Created { dir, paths: Vec::new(), dirs: Vec::new() };
    let new_log = plan.manifest.devices.iter().find_map(|d| match &d.backend {
        Backend::Git { path } if !dir.exists(path) => Some(path.clone()),
        _ => None,
    });
    let mut blocks: Vec<Box<dyn BlockDevice>> = Vec::new();
    let opened = (|| {
        for d in plan.block_devices() {
            let b: Box<dyn BlockDevice> = match &d.backend {
                Backend::File { path, size, read_only, preallocate } => {
                    let new = !dir.exists(path);
                    let b = FileBlock::open(dir, path, *size, *preallocate, *read_only, &d.role).map_err(|e| invalid(format!("error: {}: {e:#}", at(plan, d, "path"))))?;
                    if new {
                        created.paths.push(path.clone());
                    }
                    Box::new(b)
                }
                Backend::Memory { size, read_only } => Box::new(memory_disk(plan, d, *size, *read_only)?),
                other => unreachable!("validated: {other:?} is not a block backend"),
            };
            blocks.push(b);
        }
        leaves_with(plan, dir, blocks)
    })();
    created.dirs.extend(new_log.filter(|p| dir.exists(p)));
    match opened {
        Ok(l) => Ok((l, created)),
        Err(e) => {
            created.settle(exit::INVALID);
            Err(e)
        }
    }
}

/// A memory disk, or a clear error when this machine cannot give it the
/// memory (more than it has available, or an allocation that fails).
pub fn memory_disk(plan: &Plan, d: &DeviceSpec, size: u64, read_only: bool) -> Result<MemoryBlock> {
    let refuse = |have: String| {
        invalid(format!(
            "error: {}: a memory disk of {} does not fit in this machine's memory{have}; give it a smaller `size`, or use backend = \"file\"",
            at(plan, d, "size"),
            format_size(size)
        ))
    };
    if let Some(avail) = available_memory() {
        if size > avail {
            return Err(refuse(format!(" ({} available)", format_size_approx(avail))));
        }
    }
    MemoryBlock::try_new(size, read_only).ok_or_else(|| refuse(String::new()))
}

/// Where device `d`'s `key` is, as the manifest's problems name it:
/// `file:line: \`devices.<role>.<key>\``.
pub fn at(plan: &Plan, d: &DeviceSpec, key: &str) -> String {
    format!("{}:{}: `devices.{}.{key}`", plan.manifest.path.display(), d.line, d.role)
}

/// A unikernel's VM holds twice `limits.memory` (growth copies) and its
/// memory disks: a clear error, naming the biggest of them, when this
/// machine cannot give that much.
pub fn check_vm_memory(plan: &Plan) -> Result<()> {
    let m = &plan.manifest;
    let disks: Vec<(&DeviceSpec, u64)> = m
        .devices
        .iter()
        .filter_map(|d| match d.backend {
            Backend::Memory { size, .. } => Some((d, size)),
            _ => None,
        })
        .collect();
    let need = crate::boot::vm_ram(m.limits.memory, disks.iter().map(|(_, s)| *s));
    let Some(avail) = available_memory().filter(|&a| need > a) else { return Ok(()) };
    let biggest = disks.iter().max_by_key(|(_, s)| *s).filter(|(_, s)| *s >= m.limits.memory.saturating_mul(2));
    let (place, fix) = match biggest {
        Some((d, _)) => (at(plan, d, "size"), "give it a smaller `size`, or use backend = \"file\""),
        None => (format!("{}: `limits.memory`", m.path.display()), "lower `limits.memory`"),
    };
    Err(invalid(format!(
        "error: {place}: the unikernel's VM needs {} (twice `limits.memory`, {}, plus memory disks of {} and 128 MiB for the kernel), more than this machine can give ({} available); {fix}",
        format_size_approx(need),
        format_size(m.limits.memory),
        format_size(disks.iter().map(|(_, s)| *s).fold(0, u64::saturating_add)),
        format_size_approx(avail)
    )))
}

/// Memory this machine can still give: `MemAvailable` plus free swap.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    Some(field("MemAvailable:")? + field("SwapFree:").unwrap_or(0))
}

/// [`leaves`] with the block devices already made (a simulation's private
/// copies, say).
pub fn leaves_with(plan: &Plan, dir: &Dir, blocks: Vec<Box<dyn BlockDevice>>) -> Result<Leaves> {
    let readiness = Readiness::default();
    let clock: Box<dyn Clock> = match plan.manifest.devices.iter().find(|d| d.backend == Backend::Virtual) {
        Some(_) => {
            let (start, tick) = match &plan.manifest.sim {
                Some(s) => (s.start, s.tick),
                None => (SystemClock::new(readiness.clone()).wall_now(), weft_runtime::manifest::SimSpec::defaults().tick),
            };
            Box::new(weft_runtime::leaves::VirtualClock::new(start, tick))
        }
        None => Box::new(SystemClock::new(readiness.clone())),
    };
    let mut leaves = Leaves::new(blocks, clock, Box::new(StdioConsole), Box::new(OsRandom), Box::new(StderrLog));
    let fail = |e: anyhow::Error| invalid(format!("error: {}: {e:#}", plan.manifest.path.display()));
    let shared = Arc::new(dir.try_clone().map_err(|e| fail(e.into()))?);
    for d in plan.net_devices() {
        let n: Box<dyn NetDevice> = match &d.backend {
            Backend::Tap { device, offload } => Box::new(TapNet::open(device, &d.role, *offload, &readiness).map_err(fail)?),
            Backend::Udp { local, remote } => Box::new(UdpNet::open(local, remote, &d.role, &readiness).map_err(fail)?),
            Backend::SimLink => {
                return Err(invalid(format!(
                    "error: {}: net device `{}` has backend = \"sim\", one end of a simulated link: run the cluster manifest that joins it (`weft run cluster.toml`, docs/simulation.md)",
                    plan.manifest.path.display(),
                    d.role
                )));
            }
            other => unreachable!("validated: {other:?} is not a net backend"),
        };
        leaves.nets.push(n);
        for f in &d.filters {
            let path = f.capture.clone().unwrap_or_else(|| format!("{}.pcap", d.role).into());
            leaves.captures.push(Box::new(PcapCapture::new(shared.clone(), path)));
        }
    }
    if let Some(stack) = plan.manifest.stack.as_ref().filter(|s| s.component.is_none()) {
        let address = stack.config.iter().find(|(k, _)| k == "address").and_then(|(_, v)| v.parse().ok());
        leaves.sockets = Some(Box::new(HostSockets::new(readiness.clone(), address.unwrap_or(std::net::Ipv4Addr::LOCALHOST))));
    }
    for d in &plan.manifest.devices {
        match &d.backend {
            Backend::Seeded { seed } => leaves.random = Box::new(SeededRandom(*seed)),
            Backend::Git { path } => {
                let what = format!("{}: `log.path`: git repository", plan.manifest.path.display());
                let repo = inside(&plan.manifest.dir, &path.display().to_string(), &what)?;
                leaves.log = Box::new(crate::gitlog::GitLog::open(&repo).map_err(fail)?)
            }
            _ => {}
        }
    }
    Ok(leaves)
}

/// Ticks the engine's epoch so `limits.timeout` can interrupt guests.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

pub fn start_ticker(engine: &Engine) {
    start_ticker_every(engine, EPOCH_TICK);
}

fn start_ticker_every(engine: &Engine, tick: std::time::Duration) {
    let engine = engine.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(tick);
            engine.increment_epoch();
        }
    });
}

/// What `weft run` watches besides the app's output.
#[derive(Clone, Debug, Default)]
pub struct Observe {
    /// `--stats`: print what crossed each device's hops at the end.
    pub stats: bool,
    /// `--profile`, `--flamegraph`.
    pub profile: crate::profile::Outputs,
}

/// Runs the planned unikernel; returns the app's exit code.
pub fn run(plan: &Plan, dir: &Dir, engine: &Engine, observe: &Observe) -> Result<u8> {
    let unikernel = unikernel(plan, engine)?;
    let profiler = match observe.profile.any() {
        true => Some(Arc::new(std::sync::Mutex::new(crate::profile::Profiler::new(plan)))),
        false => None,
    };
    let (leaves, created) = leaves(plan, dir)?;
    let session = Session::new(plan, &unikernel, engine);
    // The profiler samples on every tick (and keeps the timeout itself).
    if profiler.is_some() {
        start_ticker_every(engine, crate::profile::INTERVAL);
    } else if session.limits.epoch_tick > 0 {
        start_ticker(engine);
    }
    let opts = RunOpts { stats: observe.stats, profiler: profiler.as_ref(), ..RunOpts::default() };
    let Ended { code, error, leaves, .. } = session.execute(leaves, Tape::Off, &opts);
    if let Some(p) = profiler {
        let p = Arc::try_unwrap(p).ok().expect("the run's stores are gone").into_inner().expect("no sampler panicked");
        p.finish(&observe.profile)?;
    }
    // The leaves (a git log's last commit among them) close before what
    // the run created may go.
    drop(leaves);
    created.settle(code);
    match error {
        None => Ok(code),
        Some(e) => Err(e),
    }
}

/// The plan linked: every component type-checked against its linker.
pub fn unikernel(plan: &Plan, engine: &Engine) -> Result<Unikernel> {
    Unikernel::new(engine, plan.wiring.clone(), &plan.app.component, &components(plan))
        .map_err(|e| invalid(format!("error: {}: {e:#}", plan.manifest.path.display())))
}

/// A planned unikernel ready to run, as often as needed (a simulation runs
/// it once per seed): its limits and, for a simulation, each filter's swarm
/// settings.
pub struct Session<'a> {
    pub plan: &'a Plan,
    pub unikernel: &'a Unikernel,
    pub engine: &'a Engine,
    pub limits: Limits,
    /// Per filter in link order: its swarm settings.
    pub swarm: Vec<Vec<Swarm>>,
}

/// How a run ended.
pub struct Ended {
    /// `weft`'s exit code: the app's, or one of `crate::exit`'s.
    pub code: u8,
    /// The last phase's outcome, as a trace records it.
    pub outcome: Outcome,
    /// The report of a failure (its message and exit code), if it failed.
    pub error: Option<anyhow::Error>,
    /// Collected faults: (filter index in link order, phase, token).
    pub faults: Vec<(usize, u32, String)>,
    pub leaves: Leaves,
    pub tape: Tape,
}

impl<'a> Session<'a> {
    pub fn new(plan: &'a Plan, unikernel: &'a Unikernel, engine: &'a Engine) -> Session<'a> {
        let m = &plan.manifest;
        let limits = Limits {
            memory: m.limits.memory as usize,
            timeout: m.limits.timeout,
            // A simulation is stopped by fuel and virtual time, never by the
            // wall clock.
            epoch_tick: if m.sim.is_some() { 0 } else { EPOCH_TICK.as_nanos() as u64 },
            fuel: m.sim.as_ref().map(|s| s.fuel),
        };
        let swarm = plan.filter_specs_in_link_order().map(|f| f.map(|f| f.swarm.clone()).unwrap_or_default()).collect();
        Session { plan, unikernel, engine, limits, swarm }
    }

    /// Runs every phase: boot, and after a power cut in a simulation with
    /// `restart`, boot again on the same leaves (`weft_runtime::session`).
    pub fn execute(&self, leaves: Leaves, tape: Tape, opts: &RunOpts) -> Ended {
        let m = &self.plan.manifest;
        let plan = |n: u32| -> Option<Phase> {
            let args = match n {
                1 => m.app.args.clone(),
                _ => m.sim.as_ref()?.restart.clone()?,
            };
            let configs = m.sim.as_ref().map(|s| {
                let seed = opts.seed.unwrap_or(s.seed);
                sim::configs(&self.plan.wiring, &Draw { seed, phase: n, swarm: &self.swarm, schedules: opts.schedules.unwrap_or_default() })
            });
            Some(Phase { n, args, configs: configs.unwrap_or_default() })
        };
        let t = Instant::now();
        let clock = weft_runtime::stats::StatClock { ticks: stat_ticks, ns: monotonic_ns };
        let watch = session::Watch { faults: opts.collect, stats: opts.stats.then_some(clock) };
        // A wall-clock timeout the profiler's epoch callback keeps (a
        // simulation's is virtual: fuel and the virtual clock keep it).
        let timeout = self.limits.timeout.filter(|_| self.limits.epoch_tick > 0);
        let ready = |store: &mut wasmtime::Store<weft_runtime::link::Host>| {
            if let Some(p) = opts.profiler {
                crate::profile::Profiler::install(p, store, timeout);
            }
        };
        let f = session::run_with(self.unikernel, self.engine, self.limits, leaves, tape, plan, watch, |host, e| report(self.plan, host, e), ready);
        if let Some(s) = &f.stats {
            eprint!("{}", s.render());
        }
        tracing::debug!(elapsed = ?t.elapsed(), "ran");
        if let Some(d) = f.diverged {
            let message = format!("error: {d}\nweft: the unikernel no longer does what the trace recorded (a changed component, or an app that is not deterministic)");
            let error = Some(anyhow::Error::new(Exit { code: exit::DIVERGED, message }));
            return Ended { code: exit::DIVERGED, outcome: f.outcome, error, faults: f.faults, leaves: f.leaves, tape: f.tape };
        }
        let (code, error) = match (&f.outcome, f.failed) {
            (Outcome::PowerCut, _) => {
                let message = format!(
                    "weft: the power was cut (a block-fault power cut); the disks hold what survived. Add [sim] restart = {{ args = [\"verify\"] }} to {} to boot the app again on them",
                    m.path.display()
                );
                (exit::POWER_CUT, Some(anyhow::Error::new(Exit { code: exit::POWER_CUT, message })))
            }
            (Outcome::Exit(c), _) => (*c, None),
            (_, Some(r)) => (r.downcast_ref::<Exit>().map_or(exit::TRAP, |x| x.code), Some(r)),
            (_, None) => (exit::TRAP, None),
        };
        Ended { code, outcome: f.outcome, error, faults: f.faults, leaves: f.leaves, tape: f.tape }
    }
}

/// What one run of a [`Session`] changes about the manifest's.
#[derive(Default)]
pub struct RunOpts<'s> {
    /// The simulation seed, instead of the manifest's (`weft explore`).
    pub seed: Option<u64>,
    /// Per filter (link order): a fault schedule replacing the drawn faults,
    /// tokens with an optional phase prefix (`2:drop@5`).
    pub schedules: Option<&'s [Option<Vec<String>>]>,
    /// Keep the faults injected (`Ended::faults`).
    pub collect: bool,
    /// `--stats`: count every device call and print the table at the end.
    pub stats: bool,
    /// `--profile`/`--flamegraph`: sample the guests' stacks.
    pub profiler: Option<&'s Arc<std::sync::Mutex<crate::profile::Profiler>>>,
}

/// The process's monotonic clock in ns, for `--stats` (never the leaf
/// clock, which a simulation makes virtual).
fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What `--stats` reads around every call: the TSC (a few ns, where
/// `clock_gettime` costs tens), converted with the rate `monotonic_ns`
/// measures over the run.
fn stat_ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    return monotonic_ns();
}

pub fn components(plan: &Plan) -> Vec<wasmtime::component::Component> {
    plan.filters_in_link_order().map(|f| f.component.clone()).collect()
}

/// `weft run --debug` outside a debugger: how to get into one. Code is
/// registered with the GDB JIT interface as it loads, so a breakpoint set
/// before the run (pending until then) stops in the app or a filter.
pub fn debugger_hint(manifest: &Path) -> Option<String> {
    if under_debugger() {
        return None;
    }
    let m = manifest.display();
    Some(format!(
        "weft: --debug: components are compiled with DWARF and no optimisation; to debug them:\n  \
         gdb -ex 'set breakpoint pending on' -ex 'break FUNCTION' -ex run --args weft run --debug {m}\n  \
         lldb -o 'breakpoint set --name FUNCTION' -o run -- weft run --debug {m}\n  \
         (FUNCTION or FILE:LINE in the app or a filter; docs/debugging.md)"
    ))
}

/// Whether a debugger is attached (`TracerPid` in /proc/self/status).
fn under_debugger() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().any(|l| l.strip_prefix("TracerPid:").is_some_and(|p| p.trim() != "0"))
    })
}

/// Turns a failed run into a message naming the component and an exit code.
pub fn report(plan: &Plan, host: &Host, e: wasmtime::Error) -> anyhow::Error {
    let m = &plan.manifest;
    let file = m.path.display();
    if let Some(c) = e.downcast_ref::<weft_runtime::link::ConfigError>() {
        return invalid(format!("error: {c}"));
    }
    let backtrace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| format!("\n{b}"))
        .unwrap_or_default();
    let (code, message) = match host.failure() {
        Some(Failure::Timeout { who }) => (
            exit::TIMEOUT,
            match &m.sim {
                Some(s) => format!(
                    "error: {} did not finish: it passed the timeout ({}, `limits.timeout` in {file}) in virtual time, or ran out of fuel ({} instructions, `sim.fuel`)",
                    host.name(*who),
                    m.limits.timeout.map_or("none".into(), |t| format_duration(t as i64)),
                    s.fuel
                ),
                None => format!(
                    "error: {} did not finish within the timeout ({}, `limits.timeout` in {file})",
                    host.name(*who),
                    m.limits.timeout.map_or("?".into(), |t| format_duration(t as i64))
                ),
            },
        ),
        Some(Failure::Memory { who, desired, .. }) => (
            exit::MEMORY,
            format!(
                "error: {} hit the memory limit: it asked for a {} linear memory, the limit is {} (`limits.memory` in {file})",
                host.name(*who),
                format_size_approx(*desired as u64),
                format_size(m.limits.memory)
            ),
        ),
        Some(Failure::Trap { who, message }) => {
            (exit::TRAP, format!("error: {} trapped: {message}{backtrace}", host.name(*who)))
        }
        // The consumer's backtrace would only show who asked; the culprit is named.
        Some(Failure::Contract { who, contract, message }) => {
            (exit::TRAP, format!("error: {} broke the {contract} contract: {message}", host.name(*who)))
        }
        None => (exit::TRAP, format!("error: {e:#}{backtrace}")),
    };
    anyhow::Error::new(Exit { code, message })
}

/// `--manifest` may name the file or its folder (its `weft.toml`, or a
/// cluster's `cluster.toml`).
pub fn manifest_path(p: &Path) -> PathBuf {
    if !p.is_dir() {
        return p.to_path_buf();
    }
    let cluster = p.join("cluster.toml");
    if !p.join("weft.toml").exists() && cluster.exists() { cluster } else { p.join("weft.toml") }
}


/// The git repository of the manifest's `git` log device, if it has one.
pub fn git_log_path(plan_manifest: &weft_runtime::manifest::Manifest) -> Option<PathBuf> {
    plan_manifest.devices.iter().find_map(|d| match &d.backend {
        Backend::Git { path } => Some(plan_manifest.dir.join(path)),
        _ => None,
    })
}

/// `dir/path`, for a path a manifest or bundle names (`what`) that is
/// opened by something other than weft's cap-std `Dir` (QEMU, gitoxide):
/// the manifest's path rule (a bundle comes from outside, unchecked), and
/// what it names must be inside `dir` after symlinks too.
pub fn inside(dir: &Path, path: &str, what: &str) -> Result<PathBuf> {
    let outside = || {
        invalid(format!(
            "error: {what} {path:?} is outside the manifest's folder {}; paths must stay inside it (copy it there: a symlink out of it is refused too)",
            dir.display()
        ))
    };
    if !weft_runtime::manifest::stays_inside(Path::new(path)) {
        return Err(outside());
    }
    let p = dir.join(path);
    if p.exists() {
        let (real, base) = (p.canonicalize()?, dir.canonicalize()?);
        if !real.starts_with(&base) {
            return Err(outside());
        }
    }
    Ok(p)
}
