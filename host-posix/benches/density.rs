//! Density: how many idle unikernels one process holds, and what each costs.
//!
//!     cargo bench -p weft --bench density                # N = 100, 1000, 5000
//!     cargo bench -p weft --bench density -- 100 2000    # other N
//!
//! One manifest is planned and linked once (`Unikernel`), then N unikernels
//! are instantiated from it, one `Store` each, with the on-demand instance
//! allocator and with the pooling allocator sized for N. Every unikernel then
//! runs on a thread of its own until its app parks in `clock.wait-until`:
//! the runtime's `wait-until` is a blocking host call (the engine has no
//! async support), so a parked unikernel holds a thread, as it would under
//! `weft run`. The clock leaf here blocks on a gate instead of sleeping;
//! once all N are parked the process's memory is read, then the gate opens
//! and every app must return 0.
//!
//! Each configuration runs in a fresh child process (this binary again,
//! with `WEFT_DENSITY_CHILD` set), so one run's freed memory and pools do
//! not count in the next. Memory comes from `/proc/self/smaps_rollup` (RSS,
//! PSS) and `/proc/self/smaps` (the same split by what each mapping is),
//! read before the first instance, after instantiating all N, and with all
//! N parked; per instance is the difference divided by N. A control run
//! parks N plain threads on the same gate without wasm: what a thread
//! costs by itself.
//!
//! Results and the command are recorded in docs/benchmarks.md ("Density").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store};
use weft::run;
use weft_runtime::engine::{self, Target};
use weft_runtime::link::{Host, Leaves, Limits};

mod common;
use common::*;

const CHILD: &str = "WEFT_DENSITY_CHILD";

/// An idle app: (label, manifest, files next to it).
const APPS: &[(&str, &str, &[&str])] = &[
    (
        "idle",
        "[app]\ncomponent = \"idle.wasm\"\nargs = [\"3600\"]\n",
        &["components/target/wasm32-wasip2/release/idle.wasm"],
    ),
    (
        "wasi-sleep",
        "[app]\ncomponent = \"sleep.wasm\"\nargs = [\"3600\"]\n",
        &["examples/sim-sleep/sleep.wasm"],
    ),
];

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        let v: Vec<&str> = spec.split(' ').collect();
        let n: usize = v[2].parse().unwrap();
        match v[0] {
            "threads" => threads_child(n),
            alloc => unikernels_child(alloc == "pooling", Path::new(v[1]), n),
        }
        return;
    }
    let ns: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let ns = if ns.is_empty() { vec![100, 1000, 5000] } else { ns };
    println!("weft density ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    let dirs: Vec<(&str, PathBuf)> = APPS
        .iter()
        .map(|(label, manifest, files)| {
            let d = scratch(&format!("density-{label}"));
            std::fs::write(d.join("weft.toml"), manifest).unwrap();
            for f in *files {
                let src = root().join(f);
                std::fs::copy(&src, d.join(src.file_name().unwrap())).unwrap();
            }
            (*label, d)
        })
        .collect();

    println!("\n### A thread parked on a condvar, no wasm (the control)\n");
    println!("| N | RSS per thread | PSS per thread |");
    println!("|---:|---:|---:|");
    for &n in &ns {
        let r = child(&format!("threads - {n}"));
        match r.get("error") {
            Some(e) => println!("| {n} | failed: {e} | |"),
            None => println!("| {n} | {} | {} |", kib(r.num("parked_rss") / n as f64), kib(r.num("parked_pss") / n as f64)),
        }
    }

    for (label, dir) in &dirs {
        println!("\n### `{label}`: N unikernels, one store each, every app parked in `wait-until` on its own thread\n");
        println!("| allocator | N | instantiate /s | RSS per instance, instantiated | parked | PSS per instance, parked | instances per GiB (PSS) | linear memory: image + the rest | tables (pool) | thread stacks | malloc heap (in use; of it store + leaves) | rest |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &n in &ns {
            for alloc in ["pooling", "on-demand"] {
                let r = child(&format!("{alloc} {} {n}", dir.display()));
                if let Some(e) = r.get("error") {
                    println!("| {alloc} | {n} | failed after {} instances: {e} | | | | | | | | | |", r.num("done"));
                    continue;
                }
                let per = |k: &str| r.num(k) / n as f64;
                let pss = per("parked_pss");
                let parts = ["parked_img_pss", "parked_mem_pss", "parked_table_pss", "parked_stack_pss", "parked_heap_pss"].map(per);
                println!(
                    "| {alloc} | {n} | {:.0} | {} | {} | {} | {:.0} | {} + {} | {} | {} | {} ({}; {}) | {} |",
                    r.num("rate"),
                    kib(per("inst_rss")),
                    kib(per("parked_rss")),
                    kib(pss),
                    (1u64 << 30) as f64 / pss,
                    kib(parts[0]),
                    kib(parts[1]),
                    kib(parts[2]),
                    kib(parts[3]),
                    kib(parts[4]),
                    kib(per("parked_heap")),
                    kib(r.num("store_heap")),
                    kib(pss - parts.iter().sum::<f64>()),
                );
            }
        }
    }
}

/// A memory image maps copy-on-write from the compiled artifact (the AOT
/// cache's `.cwasm`) or, for code not loaded from a file, from a memfd.
fn is_image(name: &str) -> bool {
    name.ends_with(".cwasm") || name.contains("wasm-memory-image")
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

/// What a child reported: `key=value` pairs.
struct Report(Vec<(String, String)>);

impl Report {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str())
    }
    fn num(&self, k: &str) -> f64 {
        self.get(k).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }
}

/// Runs this binary as a child measuring `spec`; its last line of
/// `key=value` pairs.
fn child(spec: &str) -> Report {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe).env(CHILD, spec).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with("density ")).unwrap_or_else(|| {
        panic!("child `{spec}` reported nothing ({}):\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr))
    });
    let pairs = line
        .split(' ')
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace('_', " ")))
        .collect();
    Report(pairs)
}

// --- Memory, as the kernel counts it ------------------------------------------

/// Bytes resident, by what holds them.
#[derive(Clone, Copy, Debug, Default)]
struct Mem {
    rss: f64,
    pss: f64,
    /// wasmtime's copy-on-write memory images (private mappings of the
    /// `.cwasm` at the start of a linear memory): page-cache pages shared by
    /// every instance of a module (RSS counts them once per mapping, PSS
    /// divides them among the mappings) plus pages written since (private).
    img_pss: f64,
    /// The rest of each linear memory: the anonymous read-write mappings
    /// in front of its reservation and guard.
    mem_pss: f64,
    /// The pooling allocator's table slots (on demand, tables are on the
    /// malloc heap).
    table_pss: f64,
    /// Anonymous read-write mappings directly above a small inaccessible
    /// one (a guard page): thread stacks, and the signal stacks of the
    /// threads that ran wasm.
    stack_pss: f64,
    /// The malloc heap as resident: `[heap]` and every other anonymous
    /// read-write mapping (other arenas, mmapped chunks).
    heap_pss: f64,
    /// malloc's bytes in use (mallinfo2: arenas and mmapped chunks), some
    /// of them never touched.
    heap: f64,
    vmas: f64,
}

impl Mem {
    fn now() -> Mem {
        let mut m = Mem::default();
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
        for line in rollup.lines() {
            let mut f = line.split_whitespace();
            let (Some(k), Some(v)) = (f.next(), f.next()) else { continue };
            let v: f64 = v.parse::<f64>().unwrap_or(0.0) * 1024.0;
            match k {
                "Rss:" => m.rss = v,
                "Pss:" => m.pss = v,
                _ => {}
            }
        }
        // Each mapping: (start, end, perms, name, Pss).
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut vmas: Vec<(u64, u64, String, String, f64)> = Vec::new();
        for line in smaps.lines() {
            let mut f = line.split_whitespace();
            let first = f.next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-')
                && let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
            {
                let perms = f.next().unwrap_or("").to_string();
                let name = f.nth(3).unwrap_or("").to_string();
                vmas.push((a, b, perms, name, 0.0));
            } else if first == "Pss:"
                && let Some(v) = vmas.last_mut()
            {
                v.4 = f.next().and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) * 1024.0;
            }
        }
        m.vmas = vmas.len() as f64;
        // A linear memory is the run of read-write mappings in front of its
        // inaccessible reservation and guard (≥ 1 GiB, `---p`): the part
        // below its data (Rust's shadow stack), the image, the heap.
        let mut in_memory = vec![false; vmas.len()];
        for (i, v) in vmas.iter().enumerate() {
            if v.2.starts_with("---") && v.1 - v.0 >= 1 << 30 {
                let mut j = i;
                while j > 0 && vmas[j - 1].1 == vmas[j].0 && vmas[j - 1].2.starts_with("rw") && (vmas[j - 1].3.is_empty() || is_image(&vmas[j - 1].3)) {
                    j -= 1;
                    in_memory[j] = true;
                }
            }
        }
        for (i, (start, end, perms, name, pss)) in vmas.iter().enumerate() {
            if in_memory[i] {
                if is_image(name) {
                    m.img_pss += pss;
                } else {
                    m.mem_pss += pss;
                }
                continue;
            }
            if name == "[heap]" {
                m.heap_pss += pss;
            }
            if !name.is_empty() || !perms.starts_with("rw") {
                continue;
            }
            let prev = i.checked_sub(1).map(|j| &vmas[j]).filter(|p| p.1 == *start && p.2.starts_with("---"));
            if end - start > 64 << 20 {
                // Bigger than a malloc arena: the pooling allocator's table slots.
                m.table_pss += pss;
            } else if prev.is_some_and(|p| p.1 - p.0 <= 64 << 10) {
                m.stack_pss += pss;
            } else {
                // malloc's other arenas and its mmapped chunks.
                m.heap_pss += pss;
            }
        }
        // SAFETY: mallinfo2 only reads malloc's counters.
        let mi = unsafe { libc::mallinfo2() };
        m.heap = (mi.uordblks + mi.hblkhd) as f64;
        m
    }

    fn minus(self, o: Mem) -> Mem {
        Mem {
            rss: self.rss - o.rss,
            pss: self.pss - o.pss,
            img_pss: self.img_pss - o.img_pss,
            mem_pss: self.mem_pss - o.mem_pss,
            table_pss: self.table_pss - o.table_pss,
            stack_pss: self.stack_pss - o.stack_pss,
            heap: self.heap - o.heap,
            heap_pss: self.heap_pss - o.heap_pss,
            vmas: self.vmas - o.vmas,
        }
    }
}

// --- Parking -------------------------------------------------------------------

/// Where parked threads wait: (how many are parked, open).
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn park(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 += 1;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
    }

    /// Waits until `n` are parked (false after a minute without).
    fn wait_parked(&self, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut s = self.state.lock().unwrap();
        while s.0 < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.cv.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// The system clock, except that `wait-until` parks on the gate and, once
/// the gate opens, the clock jumps to the deadline (as the `virtual` clock
/// does), so an app that sleeps in a loop until its deadline ends.
struct ParkClock {
    start: Instant,
    skipped: u64,
    gate: Arc<Gate>,
}

impl weft_runtime::Clock for ParkClock {
    fn monotonic_now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64 + self.skipped
    }
    fn wall_now(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
    }
    fn wait_until(&mut self, deadline: u64) {
        self.gate.park();
        self.skipped += deadline.saturating_sub(self.monotonic_now());
    }
}

/// Hands malloc's free pages back, so a later RSS difference counts only
/// what is in use (and the baseline does not hide reused free memory).
fn trim() {
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
}

fn report(pairs: &[(&str, String)]) {
    let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", v.replace(' ', "_"))).collect();
    println!("density {}", line.join(" "));
}

fn threads_child(n: usize) {
    let gate = Arc::new(Gate::default());
    trim();
    let before = Mem::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let g = gate.clone();
            std::thread::spawn(move || g.park())
        })
        .collect();
    assert!(gate.wait_parked(n));
    let parked = Mem::now().minus(before);
    gate.open();
    for h in handles {
        h.join().unwrap();
    }
    report(&[("parked_rss", parked.rss.to_string()), ("parked_pss", parked.pss.to_string())]);
}

/// The engine `weft run` makes, with the pool sized for `n` unikernels
/// needing (memories, tables) each.
fn engine(pooling: bool, n: u32, memories: u32, tables: u32) -> Engine {
    let mut c = engine::config(Target::Native);
    if pooling {
        let mut p = run::pool();
        // Instances are only counted; memories and tables get a slot each.
        p.total_component_instances(n * 16 + 16)
            .total_core_instances(n * 64 + 64)
            .total_memories(n * memories + 4)
            .total_tables(n * tables + 4);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c).unwrap()
}

fn unikernels_child(pooling: bool, dir: &Path, n: usize) {
    // What one unikernel needs from a pool, read off its components.
    let probe = run::engine().unwrap();
    let fx = Fixture::open(&probe, dir);
    let (mut memories, mut tables) = (0, 0);
    for c in fx.plan.components() {
        let r = c.component.resources_required().expect("no imported modules");
        memories += r.num_memories;
        tables += r.num_tables;
    }
    drop(fx);
    let engine = engine(pooling, n as u32, memories, tables);
    let fx = Fixture::open(&engine, dir);
    let args: Vec<String> = fx.plan.manifest.app.args.clone();
    let gate = Arc::new(Gate::default());
    let limits = Limits { memory: 256 << 20, timeout: None, epoch_tick: 0, fuel: None };
    let leaves = || {
        let clock = ParkClock { start: Instant::now(), skipped: 0, gate: gate.clone() };
        Leaves::new(Vec::new(), Box::new(clock), Box::new(Capture::default()), Box::new(weft::backends::OsRandom), Box::new(Quiet))
    };

    // Host state alone: a store and its leaves, no instance.
    let k = n.min(100);
    trim();
    let h0 = Mem::now().heap;
    let stores: Vec<_> = (0..k).map(|_| Store::new(&engine, Host::new(leaves(), limits))).collect();
    let store_heap = (Mem::now().heap - h0) / k as f64;
    drop(stores);

    let mut live = Vec::with_capacity(n);
    trim();
    let before = Mem::now();
    let t = Instant::now();
    for i in 0..n {
        let mut store = Store::new(&engine, Host::new(leaves(), limits));
        match fx.unikernel.instantiate(&mut store) {
            Ok(app) => live.push((store, app)),
            Err(e) => {
                report(&[("done", i.to_string()), ("error", format!("{e:#}").replace('\n', " "))]);
                return;
            }
        }
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    let inst = Mem::now().minus(before);

    let mut handles = Vec::with_capacity(n);
    // A thread that cannot map its signal stack aborts the process, so stop
    // before the process's mappings reach vm.max_map_count.
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(65530);
    for (i, (mut store, app)) in live.into_iter().enumerate() {
        if i % 50 == 0 && i > 0 {
            assert!(gate.wait_parked(i), "the first {i} apps park");
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
            if maps + 50 * 8 > max_maps {
                let msg = format!("{maps} mappings with {i} parked: vm.max_map_count ({max_maps}) leaves no room for 50 more threads");
                report(&[("done", i.to_string()), ("error", msg)]);
                std::process::exit(0);
            }
        }
        let args = args.clone();
        let spawned = std::thread::Builder::new().spawn(move || app.run(&mut store, args).map_err(|e| format!("{e:#}")));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Typically the process's mappings reached vm.max_map_count.
                let vmas = Mem::now().vmas;
                report(&[("done", i.to_string()), ("error", format!("spawning thread {}: {e} ({vmas} mappings)", i + 1))]);
                std::process::exit(0);
            }
        }
    }
    if !gate.wait_parked(n) {
        report(&[("done", n.to_string()), ("error", "not every app parked within a minute".into())]);
        std::process::exit(0);
    }
    let parked = Mem::now().minus(before);
    if let Some(path) = std::env::var_os("WEFT_DENSITY_SMAPS") {
        std::fs::copy("/proc/self/smaps", path).unwrap();
    }
    gate.open();
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(0), "every app returns 0 once woken");
    }
    report(&[
        ("memories", memories.to_string()),
        ("tables", tables.to_string()),
        ("rate", rate.to_string()),
        ("store_heap", store_heap.to_string()),
        ("inst_rss", inst.rss.to_string()),
        ("inst_pss", inst.pss.to_string()),
        ("parked_rss", parked.rss.to_string()),
        ("parked_pss", parked.pss.to_string()),
        ("parked_img_pss", parked.img_pss.to_string()),
        ("parked_mem_pss", parked.mem_pss.to_string()),
        ("parked_stack_pss", parked.stack_pss.to_string()),
        ("parked_table_pss", parked.table_pss.to_string()),
        ("parked_heap", parked.heap.to_string()),
        ("parked_heap_pss", parked.heap_pss.to_string()),
        ("parked_vmas", parked.vmas.to_string()),
        ("inst_img_pss", inst.img_pss.to_string()),
        ("inst_mem_pss", inst.mem_pss.to_string()),
        ("inst_heap", inst.heap.to_string()),
    ]);
}
