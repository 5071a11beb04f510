//! From a manifest to a finished run: plan, leaves, store, report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use wasmtime::{Engine, Store};
use weft_runtime::cache::{Cache, Origin};
use weft_runtime::engine::{self, Target};
use weft_runtime::link::{Host, Leaves, Limits, Unikernel};
use weft_runtime::manifest::{Backend, Manifest, Problems};
use weft_runtime::plan::{Loader, Plan};
use weft_runtime::units::{format_duration, format_size, format_size_approx};
use weft_runtime::{BlockDevice, Failure};

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
}

impl Loader for DirLoader {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.dir.read(path)
    }
    fn shipped(&self, name: &str) -> Option<&[u8]> {
        SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
    fn shipped_names(&self) -> Vec<&str> {
        SHIPPED.iter().map(|(n, _)| *n).collect()
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

fn invalid(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit { code: exit::INVALID, message: message.into() })
}

/// The engine `weft run` instantiates with: the shared configuration plus the
/// pooling instance allocator (an instance's memory and tables come from slots
/// reserved once, not from fresh `mmap`s that are page-faulted in and unmapped
/// again: `docs/benchmarks.md`, "Start-up").
pub fn engine() -> Result<Engine> {
    let mut c = engine::config(Target::Native);
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool()));
    match Engine::new(&c) {
        Ok(e) => Ok(e),
        // The pool's address space refused (a `ulimit -v`, say): instances are
        // then mapped one by one, as without the pool.
        Err(e) => {
            tracing::debug!("pooling allocator unavailable ({e}); allocating instances on demand");
            Engine::new(&engine::config(Target::Native)).map_err(anyhow::Error::from)
        }
    }
}

/// The pool's sizes. A run holds one store: the app, its filters and stack, and
/// what they were composed from (a Python app is ~10 core instances, a chain of
/// four filters 5 more); 128 slots of each kind leave room for tests and
/// benchmarks that keep several stores. Each memory slot reserves 4 GiB of
/// address space (wasm32's whole range, so `limits.memory` stays the only limit)
/// — 512 GiB of the 128 TiB a process has, none of it committed until touched.
fn pool() -> wasmtime::PoolingAllocationConfig {
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
    let dir = Dir::open_ambient_dir(&m.dir, ambient_authority())
        .map_err(|e| invalid(format!("error: cannot open the manifest's folder {}: {e}", m.dir.display())))?;
    let loader = DirLoader { dir };
    let cache = Cache::from_env();
    let t = Instant::now();
    let plan = Plan::build(m, &loader, engine, &cache).map_err(|p: Problems| invalid(p.to_string()))?;
    for c in plan.components() {
        let how = if c.origin == Origin::Cached { "cache hit" } else { "compiled" };
        tracing::debug!(component = %c.name, "{how}");
    }
    tracing::debug!(elapsed = ?t.elapsed(), "planned");
    Ok((plan, loader.dir))
}

/// The Linux leaf devices the plan asks for.
pub fn leaves(plan: &Plan, dir: &Dir) -> Result<Leaves> {
    let mut blocks: Vec<Box<dyn BlockDevice>> = Vec::new();
    for d in plan.block_devices() {
        let b: Box<dyn BlockDevice> = match &d.backend {
            Backend::File { path, size, read_only } => {
                Box::new(FileBlock::open(dir, path, *size, *read_only, &d.role).map_err(|e| invalid(format!("error: {}: {e:#}", plan.manifest.path.display())))?)
            }
            Backend::Memory { size, read_only } => Box::new(MemoryBlock::new(*size, *read_only)),
            other => unreachable!("validated: {other:?} is not a block backend"),
        };
        blocks.push(b);
    }
    let readiness = Readiness::default();
    let mut leaves = Leaves::new(
        blocks,
        Box::new(SystemClock::new(readiness.clone())),
        Box::new(StdioConsole),
        Box::new(OsRandom),
        Box::new(StderrLog),
    );
    let fail = |e: anyhow::Error| invalid(format!("error: {}: {e:#}", plan.manifest.path.display()));
    let shared = Arc::new(dir.try_clone().map_err(|e| fail(e.into()))?);
    for d in plan.net_devices() {
        let n: Box<dyn NetDevice> = match &d.backend {
            Backend::Tap { device, offload } => Box::new(TapNet::open(device, &d.role, *offload, &readiness).map_err(fail)?),
            Backend::Udp { local, remote } => Box::new(UdpNet::open(local, remote, &d.role, &readiness).map_err(fail)?),
            other => unreachable!("validated: {other:?} is not a net backend"),
        };
        leaves.nets.push(n);
        for f in &d.filters {
            let path = f.capture.clone().unwrap_or_else(|| format!("{}.pcap", d.role).into());
            leaves.captures.push(Box::new(PcapCapture::new(shared.clone(), path)));
        }
    }
    if plan.manifest.stack.as_ref().is_some_and(|s| s.component.is_none()) {
        leaves.sockets = Some(Box::new(HostSockets::new(readiness.clone())));
    }
    for d in &plan.manifest.devices {
        match &d.backend {
            Backend::Seeded { seed } => leaves.random = Box::new(SeededRandom(*seed)),
            Backend::Git { path } => {
                leaves.log = Box::new(crate::gitlog::GitLog::open(&plan.manifest.dir.join(path)).map_err(fail)?)
            }
            _ => {}
        }
    }
    Ok(leaves)
}

/// Ticks the engine's epoch so `limits.timeout` can interrupt guests.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

pub fn start_ticker(engine: &Engine) {
    let engine = engine.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    });
}

/// Runs the planned unikernel; returns the app's exit code.
pub fn run(plan: &Plan, dir: &Dir, engine: &Engine) -> Result<u8> {
    let unikernel = Unikernel::new(engine, plan.wiring.clone(), &plan.app.component, &components(plan))
        .map_err(|e| invalid(format!("error: {}: {e:#}", plan.manifest.path.display())))?;
    let limits = Limits {
        memory: plan.manifest.limits.memory as usize,
        timeout: plan.manifest.limits.timeout,
        epoch_tick: EPOCH_TICK.as_nanos() as u64,
    };
    let mut store = Store::new(engine, Host::new(leaves(plan, dir)?, limits));
    start_ticker(engine);
    let t = Instant::now();
    let result = unikernel
        .instantiate(&mut store)
        .inspect(|_| tracing::debug!(elapsed = ?t.elapsed(), "instantiated"))
        .and_then(|app| app.run(&mut store, plan.manifest.app.args.clone()));
    match result {
        Ok(code) => Ok(code),
        Err(e) => Err(report(plan, store.data(), e)),
    }
}

pub fn components(plan: &Plan) -> Vec<wasmtime::component::Component> {
    plan.filters_in_link_order().map(|f| f.component.clone()).collect()
}

/// Turns a failed run into a message naming the component and an exit code.
fn report(plan: &Plan, host: &Host, e: wasmtime::Error) -> anyhow::Error {
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
            format!(
                "error: {} did not finish within the timeout ({}, `limits.timeout` in {file})",
                host.name(*who),
                m.limits.timeout.map_or("?".into(), |t| format_duration(t as i64))
            ),
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
        None => (exit::TRAP, format!("error: {e:#}{backtrace}")),
    };
    anyhow::Error::new(Exit { code, message })
}

/// `--manifest` may name the file or its folder.
pub fn manifest_path(p: &Path) -> PathBuf {
    if p.is_dir() { p.join("weft.toml") } else { p.to_path_buf() }
}


/// The git repository of the manifest's `git` log device, if it has one.
pub fn git_log_path(plan_manifest: &weft_runtime::manifest::Manifest) -> Option<PathBuf> {
    plan_manifest.devices.iter().find_map(|d| match &d.backend {
        Backend::Git { path } => Some(plan_manifest.dir.join(path)),
        _ => None,
    })
}
