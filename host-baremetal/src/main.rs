//! The weft kernel: boots under QEMU (PVH), takes a bundle from the boot
//! module (`-initrd`), links its precompiled components with the same
//! `weft_runtime::Unikernel` as `weft run` on Linux, runs the app and exits
//! QEMU with the app's exit code.
//!
//! ```text
//! boot (asm: page tables, SSE, long mode) → kmain: serial, heap, PIT + TSC,
//! interrupts → bundle → engine → leaves (virtio-blk, …) → link → run → exit
//! ```
//! The kernel provides only the leaf devices, as Solo5's tenders do.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod clock;
mod leaves;
mod net;
mod platform;
mod serial;
mod virtio;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicPtr, Ordering};

use talc::{ErrOnOom, Span, Talc, Talck};
use wasmtime::component::Component;
use wasmtime::Engine;
use weft_runtime::bundle::{BlockBackend, Bundle, NetLink, RandomBackend};
use weft_runtime::engine::{self, Target};
use weft_runtime::leaves::{StubBlock, StubNet, VirtualClock};
use weft_runtime::link::{ConfigError, Host, Leaves, Limits, Unikernel};
use weft_runtime::session;
use weft_runtime::tape::{Outcome, Phase, Tape, Trace};
use weft_runtime::units::{format_duration, format_size, format_size_approx};
use weft_runtime::{BlockDevice, Failure};

use crate::clock::Tsc;

/// Exit codes, as `weft run`'s (host-posix `exit`), plus a kernel failure.
mod exit {
    pub const INVALID: u8 = 2;
    pub const TRAP: u8 = 70;
    pub const KERNEL: u8 = 71;
    pub const DIVERGED: u8 = 72;
    pub const POWER_CUT: u8 = 75;
    pub const TIMEOUT: u8 = 124;
    pub const MEMORY: u8 = 125;
}

#[global_allocator]
static ALLOCATOR: Talck<talc::locking::AssumeUnlockable, ErrOnOom> = Talc::new(ErrOnOom).lock();

#[cfg(not(feature = "pulley"))]
const TARGET: Target = Target::BareMetal;
#[cfg(feature = "pulley")]
const TARGET: Target = Target::BareMetalPulley;

/// Boot phases (name, raw TSC), printed when the kernel command line says
/// `weft.timing` (`WEFT_BOOT_TIMING=1 weft boot …`).
static mut PHASES: Option<Vec<(&'static str, u64)>> = None;

pub fn phase(name: &'static str) {
    // SAFETY: single-threaded; the timer interrupt never touches PHASES.
    unsafe {
        if let Some(p) = &mut *core::ptr::addr_of_mut!(PHASES) {
            p.push((name, arch::rdtsc()));
        }
    }
}

/// Prints the phases in ms since the vCPU's reset (the TSC starts at 0).
fn print_phases(tsc: &Tsc) {
    // SAFETY: as `phase`.
    let Some(p) = (unsafe { (*core::ptr::addr_of!(PHASES)).as_ref() }) else { return };
    let mut line = String::from("weft kernel: timing (ms since reset):");
    for (name, t) in p {
        line.push_str(&alloc::format!(" {name} {:.2}", tsc.ms(*t)));
    }
    line.push_str(&alloc::format!("; TSC {:.3} MHz", tsc.hz() as f64 / 1e6));
    serial::message(format_args!("{line}"));
}

/// `weft.stats` (`weft boot --stats`): the clock the counters time calls
/// with (the TSC; the leaf clock may be virtual).
static STATS_TSC: AtomicPtr<Tsc> = AtomicPtr::new(core::ptr::null_mut());

fn stats_now() -> u64 {
    let t = STATS_TSC.load(Ordering::Relaxed);
    // SAFETY: null, or set once to the leaked `Tsc` that lives forever.
    if t.is_null() { 0 } else { unsafe { (*t).monotonic_now() } }
}

/// The engine whose epoch the timer interrupt advances.
static EPOCH_ENGINE: AtomicPtr<Engine> = AtomicPtr::new(core::ptr::null_mut());

/// Called from the timer interrupt.
pub fn on_tick() {
    let e = EPOCH_ENGINE.load(Ordering::Relaxed);
    if !e.is_null() {
        // SAFETY: set once to a leaked `Engine` that lives forever;
        // `increment_epoch` is a single atomic add.
        unsafe { (*e).increment_epoch() };
    }
}

/// Ends the run with a kernel failure (CPU exception, panic, broken boot).
pub fn fatal(args: fmt::Arguments<'_>) -> ! {
    serial::message(format_args!("weft kernel: fatal: {args}"));
    finish(exit::KERNEL)
}

fn finish(code: u8) -> ! {
    serial::exit_frame(code);
    arch::qemu_exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(format_args!("kernel panic: {info}"))
}

/// PVH `hvm_start_info` (version 1).
#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct Module {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
struct MemMapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

unsafe extern "C" {
    static __kernel_end: u8;
}

/// The identity map covers 4 GiB.
const MAPPED: u64 = 4 << 30;

/// Hands the RAM after the kernel to the allocator, leaving out the boot
/// module (the bundle, read in place).
fn init_heap(info: &StartInfo, module: (u64, u64)) -> u64 {
    // SAFETY: the linker script defines the symbol; only its address is used.
    let kernel_end = core::ptr::addr_of!(__kernel_end) as u64;
    let entries = if info.version >= 1 && info.memmap_paddr != 0 {
        // SAFETY: QEMU's PVH loader put the memory map there.
        unsafe { core::slice::from_raw_parts(info.memmap_paddr as *const MemMapEntry, info.memmap_entries as usize) }
    } else {
        &[]
    };
    let Some(ram) = entries.iter().find(|e| e.kind == 1 && e.addr <= kernel_end && kernel_end < e.addr + e.size) else {
        fatal(format_args!("no RAM region holds the kernel in the PVH memory map"));
    };
    let end = (ram.addr + ram.size).min(MAPPED);
    let start = kernel_end;
    // The largest stretch of [start, end) that avoids the module.
    let (m0, m1) = (module.0 & !0xFFF, (module.0 + module.1 + 0xFFF) & !0xFFF);
    let (lo, hi) = if m1 <= start || m0 >= end {
        (start, end)
    } else if m0.saturating_sub(start) >= end.saturating_sub(m1) {
        (start, m0)
    } else {
        (m1, end)
    };
    // SAFETY: RAM nothing else uses: past the kernel image and its stack,
    // not the module, inside the identity map.
    unsafe {
        ALLOCATOR
            .lock()
            .claim(Span::from_base_size(lo as *mut u8, (hi - lo) as usize))
            .unwrap_or_else(|()| fatal(format_args!("cannot claim heap {lo:#x}..{hi:#x}")));
    }
    hi - lo
}

/// A failure to report: message (may be multi-line), the wasm backtrace
/// that follows it, and exit code.
struct Exit {
    code: u8,
    message: String,
    frames: Vec<RawFrame>,
}

impl Exit {
    fn new(code: u8, message: String) -> Exit {
        Exit { code, message, frames: Vec::new() }
    }

    fn print(&self) {
        serial::message(format_args!("{}", self.message));
        for f in &self.frames {
            f.print();
        }
    }
}

fn invalid(message: impl Into<String>) -> Exit {
    Exit::new(exit::INVALID, message.into())
}

/// One frame of a trap's wasm backtrace, raw: the kernel has no DWARF
/// reader, so `weft boot` turns it into function names and `file:line`
/// from the bundle's symbols (host-posix `symbolize`).
struct RawFrame {
    /// Which bundle component's code (matched by where it was loaded).
    component: Option<usize>,
    /// wasmtime's static index of the core module inside that component.
    module: Option<u32>,
    /// Offset of the instruction in the component's bytes.
    offset: Option<usize>,
    func_index: u32,
    module_name: Option<String>,
    func_name: Option<String>,
    index: usize,
}

impl RawFrame {
    fn from(components: &[Component], index: usize, f: &wasmtime::FrameInfo) -> RawFrame {
        let code = f.module().image_range().start;
        RawFrame {
            component: components.iter().position(|c| c.image_range().contains(&code)),
            module: f.module().functions().next().map(|func| func.module.as_u32()),
            offset: f.module_offset(),
            func_index: f.func_index(),
            module_name: f.module().name().map(String::from),
            func_name: f.func_name().map(String::from),
            index,
        }
    }

    fn print(&self) {
        let num = |n: Option<usize>| n.map(|n| alloc::format!("{n}")).unwrap_or_default();
        serial::backtrace_frame(&[
            &alloc::format!("{}", self.index),
            &num(self.component),
            &num(self.module.map(|m| m as usize)),
            &num(self.offset),
            &alloc::format!("{}", self.func_index),
            self.module_name.as_deref().unwrap_or(""),
            self.func_name.as_deref().unwrap_or(""),
        ]);
    }
}

#[unsafe(no_mangle)]
extern "C" fn kmain(start_info: u32) -> ! {
    serial::init();
    // SAFETY: `ebx` at the PVH entry; QEMU keeps the structure in low RAM.
    let info = unsafe { &*(start_info as usize as *const StartInfo) };
    if info.magic != 0x336E_C578 {
        fatal(format_args!("not booted through PVH (start info magic {:#x})", info.magic));
    }
    let module = if info.nr_modules >= 1 {
        // SAFETY: QEMU's PVH loader wrote the module list.
        let m = unsafe { &*(info.modlist_paddr as *const Module) };
        (m.paddr, m.size)
    } else {
        (0, 0)
    };
    let entry = arch::rdtsc();
    let heap = init_heap(info, module);
    // A deliberate kernel panic (`-append weft.panic`): how the tests reach
    // the panic handler and its exit code for real.
    if cmdline(info).split(' ').any(|w| w == "weft.panic") {
        panic!("weft.panic on the kernel command line");
    }
    if cmdline(info).split(' ').any(|w| w == "weft.timing") {
        // SAFETY: single-threaded boot.
        unsafe { *core::ptr::addr_of_mut!(PHASES) = Some(alloc::vec![("kmain", entry)]) };
    }
    // The PIT runs slow until `Tsc::refine` (just before the app) makes it
    // the 1 kHz tick; the calibration overlaps the boot.
    let tsc: &'static Tsc = Box::leak(Box::new(Tsc::start()));
    if cmdline(info).split(' ').any(|w| w == "weft.stats") {
        STATS_TSC.store(core::ptr::from_ref(tsc).cast_mut(), Ordering::Relaxed);
    }
    phase("clock");
    arch::init_interrupts();
    if module.1 == 0 {
        serial::message(format_args!("error: no bundle: boot this kernel with the bundle as its initrd (`weft boot`)"));
        finish(exit::INVALID);
    }
    // SAFETY: the module stays where QEMU loaded it; the heap excludes it.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(module.0 as *const u8, module.1 as usize) };
    let code = match run(bytes, tsc, heap) {
        Ok(code) => code,
        Err(e) => {
            e.print();
            e.code
        }
    };
    phase("done");
    print_phases(tsc);
    finish(code)
}

/// The PVH command line (`-append`), empty when there is none.
fn cmdline(info: &StartInfo) -> &'static str {
    if info.cmdline_paddr == 0 {
        return "";
    }
    // SAFETY: QEMU wrote a NUL-terminated string there.
    let c = unsafe { core::ffi::CStr::from_ptr(info.cmdline_paddr as *const core::ffi::c_char) };
    c.to_str().unwrap_or("")
}

fn run(bytes: &'static [u8], tsc: &'static Tsc, heap: u64) -> Result<u8, Exit> {
    let bundle = Bundle::decode(bytes, Some(TARGET)).map_err(|e| invalid(alloc::format!("error: {e}")))?;
    phase("decoded");
    // A simulation's code is the deterministic build (fuel, canonical NaNs);
    // a debug bundle's carries native DWARF, which wasmtime registers with
    // the GDB JIT interface as each component loads (`debug-builtins`).
    let codegen = engine::Codegen { debug: bundle.debug, ..engine::Codegen::sim(bundle.sim.is_some()) };
    let mut config = engine::config_with(TARGET, codegen);
    // SAFETY: `has_feature` answers from cpuid.
    unsafe {
        config.detect_host_feature(arch::has_feature);
    }
    config.with_custom_code_memory(Some(alloc::sync::Arc::new(platform::IdentityCode)));
    let engine = Engine::new(&config).map_err(|e| invalid(alloc::format!("error: engine: {e:#}")))?;
    phase("engine");
    EPOCH_ENGINE.store(Box::leak(Box::new(engine.clone())), Ordering::Relaxed);

    let mut components = Vec::with_capacity(bundle.components.len());
    for blob in &bundle.components {
        // SAFETY: the bundle's checksum matched, and it was written by
        // `weft build` from components compiled for this target and engine
        // config; wasmtime checks the artifact's header, target and flags.
        let c = unsafe { Component::deserialize(&engine, blob.bytes) }.map_err(|e| {
            invalid(alloc::format!(
                "error: component `{}` in the bundle cannot be loaded by this kernel: {e:#}; rebuild the bundle with this weft",
                blob.name
            ))
        })?;
        if bundle.debug {
            let text = c.text().as_ptr_range();
            serial::message(format_args!(
                "weft kernel: {} code at {:#x}..{:#x}, registered with the GDB JIT interface",
                blob.name, text.start as usize, text.end as usize
            ));
        }
        components.push(c);
        phase("component");
    }
    phase("deserialized");
    // A replay touches no device: every call is answered from the trace.
    let (leaves, tape) = match bundle.replay {
        Some(bytes) => {
            let trace = Trace::parse(bytes.to_vec()).map_err(|e| invalid(alloc::format!("error: the trace to replay: {e}")))?;
            (replay_leaves(&trace), Tape::Replay(Box::new(trace.replayer())))
        }
        None => (leaves(&bundle, tsc)?, Tape::Off),
    };
    phase("leaves");
    let file = bundle.manifest.as_str();
    let unikernel = Unikernel::new(&engine, bundle.wiring.clone(), &components[0], &components[1..])
        .map_err(|e| invalid(alloc::format!("error: {file}: {e:#}")))?;
    if (bundle.memory as u128) * 2 > heap as u128 {
        serial::message(format_args!(
            "weft kernel: warning: heap {} is less than twice limits.memory {} (memory.grow copies); give QEMU more memory",
            format_size_approx(heap),
            format_size(bundle.memory)
        ));
    }
    let limits = Limits {
        memory: bundle.memory as usize,
        timeout: bundle.timeout,
        // A simulation stops on fuel and virtual time, never on the timer.
        epoch_tick: if bundle.sim.is_some() { 0 } else { 1_000_000_000 / u64::from(arch::TICK_HZ) },
        fuel: bundle.sim.as_ref().map(|s| s.fuel),
    };
    phase("linked");
    tsc.refine(arch::TICK_HZ);
    phase("calibrated");
    // Boot 1, and after a power cut boot 2 when the simulation restarts.
    let plan = |n: u32| -> Option<Phase> {
        let (args, configs) = match &bundle.sim {
            Some(s) => s.boots.get(n as usize - 1)?.clone(),
            None if n == 1 => (bundle.args.clone(), Vec::new()),
            None => return None,
        };
        Some(Phase { n, args, configs })
    };
    let clock = weft_runtime::stats::StatClock { ticks: arch::rdtsc, ns: stats_now };
    let stats = (!STATS_TSC.load(Ordering::Relaxed).is_null()).then_some(clock);
    let watch = session::Watch { faults: false, stats };
    let f = session::run(&unikernel, &engine, limits, leaves, tape, plan, watch, |host, e| report(&bundle, &components, host, e));
    if let Some(s) = &f.stats {
        for line in s.render().lines() {
            serial::message(format_args!("{line}"));
        }
    }
    if let Some(d) = f.diverged {
        return Err(Exit::new(
            exit::DIVERGED,
            alloc::format!("error: {d}\nweft: the unikernel no longer does what the trace recorded (a changed component, or an app that is not deterministic)"),
        ));
    }
    match (f.outcome, f.failed) {
        (Outcome::Exit(code), _) => Ok(code),
        (Outcome::PowerCut, _) => Err(Exit::new(
            exit::POWER_CUT,
            alloc::format!(
                "weft: the power was cut (a block-fault power cut); the disks hold what survived. Add [sim] restart = {{ args = [\"verify\"] }} to {} to boot the app again on them",
                bundle.manifest
            ),
        )),
        (_, Some(e)) => Err(e),
        (o, None) => Err(Exit::new(exit::TRAP, alloc::format!("error: {o}"))),
    }
}

/// Leaves for a replay: the trace's geometry, console and log real.
fn replay_leaves(trace: &Trace) -> Leaves {
    let h = &trace.header;
    let blocks = h.blocks.iter().map(|(_, g)| Box::new(StubBlock(*g)) as Box<dyn BlockDevice>).collect();
    let mut l = Leaves::new(
        blocks,
        Box::new(VirtualClock::new(0, 0)),
        Box::new(leaves::SerialConsole),
        Box::new(leaves::SeededRandom(0)),
        Box::new(leaves::SerialLog),
    );
    for (_, info) in &h.nets {
        l.nets.push(Box::new(StubNet(*info)));
    }
    l
}

fn leaves(bundle: &Bundle<'_>, tsc: &'static Tsc) -> Result<Leaves, Exit> {
    let mut drives = if bundle.blocks.iter().any(|b| matches!(b, BlockBackend::File { .. })) {
        virtio::drives(virtio::machine())
    } else {
        Vec::new()
    };
    let mut blocks: Vec<Box<dyn BlockDevice>> = Vec::new();
    for (dev, backend) in bundle.wiring.blocks.iter().zip(&bundle.blocks) {
        match backend {
            BlockBackend::File { path, read_only, .. } => {
                let Some(i) = drives.iter().position(|(serial, _)| *serial == dev.role) else {
                    return Err(invalid(alloc::format!(
                        "error: device `{}` (file {path}): no virtio-blk drive with serial `{}` is attached; `weft boot` attaches one per file device",
                        dev.role, dev.role
                    )));
                };
                let (_, mut drive) = drives.swap_remove(i);
                if *read_only {
                    drive.set_read_only();
                }
                blocks.push(drive);
            }
            BlockBackend::Memory { size, read_only } => blocks.push(Box::new(leaves::MemoryBlock::new(*size, *read_only))),
        }
    }
    let random: Box<dyn weft_runtime::Random> = match bundle.random {
        RandomBackend::Seeded(seed) => Box::new(leaves::SeededRandom(seed)),
        RandomBackend::Os => match leaves::RdRandom::new() {
            Some(r) => Box::new(r),
            None => {
                return Err(invalid(
                    "error: this CPU has neither RDRAND nor RDSEED, so the `os` random device has no source; boot with `-cpu max` or use `backend = \"seeded\"`",
                ));
            }
        },
    };
    let clock: Box<dyn weft_runtime::Clock> = match &bundle.sim {
        Some(s) => Box::new(VirtualClock::new(s.start, s.tick)),
        None => Box::new(leaves::TscClock(tsc)),
    };
    let mut leaves = Leaves::new(
        blocks,
        clock,
        Box::new(leaves::SerialConsole),
        random,
        Box::new(leaves::SerialLog),
    );
    let mut nics = if bundle.nets.is_empty() { Vec::new() } else { net::devices(virtio::machine()) };
    for (dev, backend) in bundle.wiring.nets.iter().zip(&bundle.nets) {
        let Some(i) = nics.iter().position(|(mac, _)| *mac == backend.mac) else {
            let link = match &backend.link {
                NetLink::Tap { device } => alloc::format!("tap {device}"),
                NetLink::Udp { local, remote } => alloc::format!("udp {local} -> {remote}"),
            };
            let m = backend.mac;
            return Err(invalid(alloc::format!(
                "error: device `{}` ({link}): no virtio-net device with MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} is attached; `weft boot` attaches one per net device",
                dev.role, m[0], m[1], m[2], m[3], m[4], m[5]
            )));
        };
        let (_, nic) = nics.swap_remove(i);
        leaves.nets.push(Box::new(nic));
        for _ in &dev.filters {
            let n = leaves.captures.len();
            leaves.captures.push(Box::new(leaves::SerialCapture(n)));
        }
    }
    Ok(leaves)
}

/// The same messages, backtraces and exit codes as `weft run` (host-posix
/// `run::report`); backtrace frames go out raw, for `weft boot` to
/// symbolize.
fn report(bundle: &Bundle<'_>, components: &[Component], host: &Host, e: wasmtime::Error) -> Exit {
    let file = bundle.manifest.as_str();
    if let Some(c) = e.downcast_ref::<ConfigError>() {
        return invalid(alloc::format!("error: {c}"));
    }
    let trace = e.downcast_ref::<wasmtime::WasmBacktrace>();
    // wasmtime's header line; the frames follow the message.
    let backtrace = if trace.is_some() { "\nerror while executing at wasm backtrace:" } else { "" };
    let frames = || {
        trace
            .map(|t| t.frames().iter().enumerate().map(|(i, f)| RawFrame::from(components, i, f)).collect())
            .unwrap_or_default()
    };
    let (code, message) = match host.failure() {
        Some(Failure::Timeout { who }) => (
            exit::TIMEOUT,
            match &bundle.sim {
                Some(s) => alloc::format!(
                    "error: {} did not finish: it passed the timeout ({}, `limits.timeout` in {file}) in virtual time, or ran out of fuel ({} instructions, `sim.fuel`)",
                    host.name(*who),
                    bundle.timeout.map_or("none".into(), |t| format_duration(t as i64)),
                    s.fuel
                ),
                None => alloc::format!(
                    "error: {} did not finish within the timeout ({}, `limits.timeout` in {file})",
                    host.name(*who),
                    bundle.timeout.map_or("?".into(), |t| format_duration(t as i64))
                ),
            },
        ),
        Some(Failure::Memory { who, desired, .. }) => (
            exit::MEMORY,
            alloc::format!(
                "error: {} hit the memory limit: it asked for a {} linear memory, the limit is {} (`limits.memory` in {file})",
                host.name(*who),
                format_size_approx(*desired as u64),
                format_size(bundle.memory)
            ),
        ),
        Some(Failure::Trap { who, message }) => {
            let m = alloc::format!("error: {} trapped: {message}{backtrace}", host.name(*who));
            return Exit { code: exit::TRAP, message: m, frames: frames() };
        }
        // The consumer's backtrace would only show who asked; the culprit is named.
        Some(Failure::Contract { who, contract, message }) => {
            (exit::TRAP, alloc::format!("error: {} broke the {contract} contract: {message}", host.name(*who)))
        }
        None => {
            return Exit { code: exit::TRAP, message: alloc::format!("error: {e:#}{backtrace}"), frames: frames() };
        }
    };
    Exit::new(code, message)
}
