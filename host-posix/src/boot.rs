//! `weft build --target baremetal` and `weft boot`: the bundle and the QEMU
//! side of the bare-metal target.
//!
//! A bundle is the plan plus every component precompiled for the kernel
//! (`weft_runtime::bundle`). `boot` starts `qemu-system-x86_64` with the
//! prebuilt kernel (`-kernel`) and the bundle as its initrd, attaches each
//! `file` block device as a virtio-blk drive whose serial is the device's
//! role and each net device as a virtio-net device with the MAC `weft run`
//! would use (`tap` → `-netdev tap`, `udp` → `-netdev socket,udp=`), and
//! demultiplexes the serial line: console bytes to stdout, log events
//! (frames, see `host-baremetal/src/serial.rs`) to the manifest's log
//! backend — stderr or the git log, the same history as `weft run` makes —
//! captured frames to each `net-pcap` filter's pcap file, kernel messages to
//! stderr, and the exit frame to our exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::Engine;
use weft_runtime::bundle::{BlockBackend, Blob, Bundle, BundleSim, LogBackend, NetBackend, NetLink, RandomBackend};
use weft_runtime::manifest::SimOverride;
use weft_runtime::cache::Cache;
use weft_runtime::engine::{self, Target};
use weft_runtime::units::{format_size, format_size_approx};
use weft_runtime::manifest::{Backend, Kind, SECTOR_SIZE};
use weft_runtime::plan::Loader;

use crate::exit;
use crate::run::{self, DirLoader, Exit};

/// The QEMU machine model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Machine {
    /// Minimal machine with virtio-mmio: boots fastest.
    #[default]
    Microvm,
    /// PCIe machine (SeaBIOS, virtio-blk-pci).
    Q35,
}

/// How to boot.
#[derive(Clone, Debug, Default)]
pub struct BootOptions {
    pub machine: Machine,
    pub kvm: bool,
    /// Build the bundle for Pulley (when booting a manifest) and boot the
    /// Pulley kernel.
    pub pulley: bool,
    /// Kill QEMU after this long (default: the bundle's timeout + 30 s, or
    /// 10 minutes without one).
    pub qemu_timeout: Option<Duration>,
    /// `--sim` / `--seed` (a manifest's own `[sim]` needs neither).
    pub sim: SimOverride,
    /// `--replay FILE`: replay a trace inside the kernel instead.
    pub replay: Option<PathBuf>,
    /// `--stats`: the kernel counts every device call and prints the table.
    pub stats: bool,
    /// `--gdb[=PORT]`: QEMU's gdb stub on this port, the vCPU held until a
    /// debugger continues it; components compiled for the debugger.
    pub gdb: Option<u16>,
}

use crate::exit::invalid;

/// The engine `weft build` precompiles with: the kernel's config, with a
/// compiler; `debug` for a debugger (`weft boot --gdb`).
pub fn baremetal_engine(target: Target, sim: bool, debug: bool) -> Result<Engine> {
    let codegen = engine::Codegen { debug, ..engine::Codegen::sim(sim) };
    Engine::new(&engine::config_with(target, codegen)).map_err(anyhow::Error::from)
}

/// Precompiles `bytes` for the kernel, through the AOT cache (keyed by the
/// bare-metal engine and target, so it never collides with native entries).
fn precompile(engine: &Engine, target: Target, cache: &Cache, name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let path = cache.dir().map(|d| d.join(format!("{}.cwasm", Cache::key(engine, target, bytes))));
    if let Some(p) = &path {
        if let Ok(b) = std::fs::read(p) {
            return Ok(b);
        }
    }
    let what = format!("{} code for the bare-metal kernel", target.name());
    let out = weft_runtime::cache::with_progress(name, bytes.len(), &what, || engine.precompile_component(bytes))?;
    if let Some(p) = &path {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::create_dir_all(p.parent().unwrap())
            .and_then(|()| std::fs::write(&tmp, &out))
            .and_then(|()| std::fs::rename(&tmp, p));
    }
    Ok(out)
}

/// Builds the bundle for `manifest` (a `weft.toml` or its folder), native code.
pub fn build(manifest: &Path) -> Result<Vec<u8>> {
    build_for(manifest, Target::BareMetal)
}

/// Builds the bundle for `target` (`BareMetal` or `BareMetalPulley`).
pub fn build_for(manifest: &Path, target: Target) -> Result<Vec<u8>> {
    build_with(manifest, target, SimOverride::default())
}

/// [`build_for`], with the command line's `--sim`/`--seed`.
pub fn build_with(manifest: &Path, target: Target, over: SimOverride) -> Result<Vec<u8>> {
    let manifest = run::manifest_path(manifest);
    let (plan, dir, _) = run::plan_with(&manifest, over)?;
    bundle_from_plan(&plan, DirLoader::new(dir), target, None, false)
}

/// The bundle that replays the trace at `path` inside the kernel: the
/// recorded manifest's components (checked against the recorded hashes),
/// and the trace; no device is attached.
pub fn build_replay(path: &Path, target: Target, debug: bool) -> Result<Vec<u8>> {
    let trace = crate::trace::load(path)?;
    let (plan, dir, _) = crate::trace::plan_for(&trace, path, false)?;
    let bytes = std::fs::read(path)?;
    bundle_from_plan(&plan, DirLoader::new(dir), target, Some(&bytes), debug)
}

fn bundle_from_plan(
    plan: &weft_runtime::plan::Plan,
    loader: DirLoader,
    target: Target,
    replay: Option<&[u8]>,
    debug: bool,
) -> Result<Vec<u8>> {
    let m = &plan.manifest;
    // A replay attaches no device: the kernel answers from the trace.
    for d in m.devices.iter().filter(|_| replay.is_none()) {
        qemu_mapping(d.kind, &d.role, &d.backend)?;
    }
    if replay.is_none() && m.stack.as_ref().is_some_and(|s| s.component.is_none()) {
        return Err(invalid(
            "error: [stack] backend = \"host\" (the host's own TCP/IP) has no QEMU mapping on the bare-metal target; use component = \"tcpip\" on a net device (tap or udp)",
        ));
    }
    let engine = baremetal_engine(target, m.sim.is_some(), debug)?;
    let cache = Cache::from_env();
    let mut compiled = Vec::new();
    for (i, c) in std::iter::once(&plan.app).chain(plan.filters_in_link_order()).enumerate() {
        let bytes = match &c.source {
            // The app as the linker sees it: composed with `wasi` when it uses WASI.
            _ if i == 0 => weft_runtime::plan::app_bytes(&loader, c).map_err(anyhow::Error::msg)?,
            weft_runtime::manifest::Source::Shipped(n) => loader.shipped(n).expect("planned").to_vec(),
            weft_runtime::manifest::Source::File(p) => loader.dir.read(p)?,
        };
        let code = precompile(&engine, target, &cache, &c.name, &bytes)
            .with_context(|| format!("precompiling {} for the bare-metal kernel", c.name))?;
        // Its DWARF travels with it, for `weft boot` to symbolize a trap.
        let symbols = crate::symbolize::Symbols::extract(&bytes)
            .ok()
            .filter(|s| s.has_dwarf())
            .map(|s| s.encode())
            .unwrap_or_default();
        compiled.push((c.name.clone(), code, symbols));
    }
    let blocks = plan
        .block_devices()
        .map(|d| match &d.backend {
            // Nothing to attach for a replay (the kernel uses the trace's geometry).
            Backend::File { read_only, .. } | Backend::Memory { read_only, .. } if replay.is_some() => {
                BlockBackend::Memory { size: 512, read_only: *read_only }
            }
            Backend::File { path, size, read_only, preallocate } => {
                BlockBackend::File { path: path.display().to_string(), size: *size, read_only: *read_only, preallocate: *preallocate }
            }
            Backend::Memory { size, read_only } => BlockBackend::Memory { size: *size, read_only: *read_only },
            other => unreachable!("validated: {other:?} is not a block backend"),
        })
        .collect();
    let nets = plan
        .net_devices()
        .map(|d| {
            let (link, name) = match &d.backend {
                Backend::Tap { device, .. } => (NetLink::Tap { device: device.clone() }, device.as_str()),
                Backend::Udp { local, remote } => {
                    (NetLink::Udp { local: local.clone(), remote: remote.clone() }, local.as_str())
                }
                other => unreachable!("validated: {other:?} is not a net backend"),
            };
            // The same capture paths `weft run` writes (run::leaves).
            let captures = d
                .filters
                .iter()
                .map(|f| f.capture.clone().unwrap_or_else(|| format!("{}.pcap", d.role).into()).display().to_string())
                .collect();
            NetBackend { link, mac: weft_runtime::leaves::mac_for(name), captures }
        })
        .collect();
    let random = m
        .devices
        .iter()
        .find_map(|d| match d.backend {
            Backend::Seeded { seed } => Some(RandomBackend::Seeded(seed)),
            _ => None,
        })
        .unwrap_or(RandomBackend::Os);
    let log = m
        .devices
        .iter()
        .find_map(|d| match &d.backend {
            Backend::Git { path } => Some(LogBackend::Git { path: path.display().to_string() }),
            _ => None,
        })
        .unwrap_or(LogBackend::Stderr);
    // A replay's events go to stderr: the recorded run's git history stays as it was.
    let log = if replay.is_some() { LogBackend::Stderr } else { log };
    let sim = m.sim.as_ref().map(|s| {
        let swarm: Vec<Vec<weft_runtime::manifest::Swarm>> =
            plan.filter_specs_in_link_order().map(|f| f.map(|f| f.swarm.clone()).unwrap_or_default()).collect();
        let boot = |n: u32| {
            weft_runtime::sim::configs(&plan.wiring, &weft_runtime::sim::Draw { seed: s.seed, phase: n, swarm: &swarm, schedules: &[] })
        };
        let mut boots = vec![(m.app.args.clone(), boot(1))];
        if let Some(again) = &s.restart {
            boots.push((again.clone(), boot(2)));
        }
        BundleSim { start: s.start, tick: s.tick, fuel: s.fuel, boots }
    });
    // The kernel's host side finds disk images (and a git log) beside this
    // path: in the manifest's folder, which a container's manifest names
    // (`weft::container`) wherever the manifest file itself was mounted.
    let name = m.path.file_name().map_or_else(|| "weft.toml".into(), |n| n.to_os_string());
    let path = std::fs::canonicalize(&m.dir).map_or_else(|_| m.path.clone(), |d| d.join(name));
    let bundle = Bundle {
        target,
        debug,
        manifest: path.display().to_string(),
        wiring: plan.wiring.clone(),
        args: m.app.args.clone(),
        memory: m.limits.memory,
        timeout: m.limits.timeout,
        blocks,
        nets,
        random,
        log,
        sim,
        replay,
        components: compiled
            .iter()
            .map(|(name, code, symbols)| Blob { name: name.clone(), bytes: code, symbols })
            .collect(),
    };
    Ok(bundle.encode())
}

/// How a manifest device appears in QEMU; an error for one that has none.
fn qemu_mapping(kind: Kind, role: &str, backend: &Backend) -> Result<()> {
    match (kind, backend) {
        (Kind::Block, Backend::File { .. }) => {
            // The role travels as the virtio-blk serial (the ID string is
            // 20 bytes) and inside a QEMU option.
            if role.len() > 20 || !role.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return Err(invalid(format!(
                    "error: device `{role}`: a file disk is attached as a virtio-blk drive named by its role, which must be at most 20 letters, digits, `-` or `_`; rename the device"
                )));
            }
            Ok(())
        }
        (Kind::Net, Backend::Tap { offload: true, .. }) => Err(invalid(format!(
            "error: device `{role}`: `offload` is the Linux TAP leaf's (`weft run`); under `weft boot` QEMU drives the TAP device and the kernel's virtio-net does no segmentation offload: remove `offload`"
        ))),
        (Kind::Net, Backend::Tap { device, .. }) => {
            // The name goes into a QEMU option; `TapNet` refuses the same names.
            if device.is_empty() || device.len() >= 16 || !device.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(invalid(format!("error: device `{role}`: {device:?} is not a valid interface name")));
            }
            Ok(())
        }
        (Kind::Net, Backend::Udp { local, remote }) => {
            for (key, a) in [("local", local), ("remote", remote)] {
                if a.parse::<std::net::SocketAddrV4>().is_err() {
                    return Err(invalid(format!(
                        "error: device `{role}`: {key} = {a:?}: QEMU's UDP netdev needs an IPv4 address and port (\"127.0.0.1:5555\")"
                    )));
                }
            }
            Ok(())
        }
        (Kind::Block, Backend::Memory { .. })
        | (Kind::Clock, Backend::System | Backend::Virtual)
        | (Kind::Console, Backend::Stdio)
        | (Kind::Random, Backend::Os | Backend::Seeded { .. })
        | (Kind::Log, Backend::Stderr | Backend::Git { .. }) => Ok(()),
        (k, b) => Err(invalid(format!(
            "error: device `{role}` ({} backend {b:?}) has no QEMU mapping on the bare-metal target",
            k.name()
        ))),
    }
}

/// Where the prebuilt kernel is: `$WEFT_KERNEL`, else next to this `weft`
/// in the cargo target dir, else the source tree's target dir.
pub fn kernel_path() -> PathBuf {
    kernel_path_for(Target::BareMetal)
}

/// The kernel that runs `target`'s bundles. The Pulley kernel (built with
/// `--features pulley`) lives in its own cargo target dir, `target/pulley`,
/// so the two builds never overwrite each other (`$WEFT_KERNEL_PULLEY`).
pub fn kernel_path_for(target: Target) -> PathBuf {
    let (var, rel) = match target {
        Target::BareMetalPulley => ("WEFT_KERNEL_PULLEY", "pulley/x86_64-unknown-none/release/weft-kernel"),
        _ => ("WEFT_KERNEL", "x86_64-unknown-none/release/weft-kernel"),
    };
    if let Some(k) = std::env::var_os(var) {
        return PathBuf::from(k);
    }
    if let Ok(exe) = std::env::current_exe() {
        // Installed beside the binary (containerd-shim-weft-vm-v1).
        let beside = exe.with_file_name(Path::new(rel).file_name().unwrap());
        if target != Target::BareMetalPulley && beside.exists() {
            return beside;
        }
        // target/release/weft (or target/debug/deps/test-…) → target/
        for up in exe.ancestors().skip(1).take(3) {
            let k = up.join(rel);
            if k.exists() {
                return k;
            }
        }
    }
    source_root().join("target").join(rel)
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds the kernel with cargo when it is missing (the first `weft boot`).
fn ensure_kernel(target: Target) -> Result<PathBuf> {
    let k = kernel_path_for(target);
    if k.exists() {
        return Ok(k);
    }
    let root = source_root();
    if !root.join("host-baremetal/Cargo.toml").exists() {
        anyhow::bail!("the weft kernel {} is missing and the source tree is not here to build it; set WEFT_KERNEL", k.display());
    }
    let pulley = target == Target::BareMetalPulley;
    let mut args = vec!["build", "-p", "weft-baremetal", "--target", "x86_64-unknown-none", "--release"];
    let target_dir = if pulley {
        args.extend(["--features", "pulley"]);
        root.join("target/pulley")
    } else {
        root.join("target")
    };
    eprintln!("weft: building the kernel (first time: several minutes): cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(&args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(&root)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .stdout(Stdio::null())
        .status()
        .context("running cargo to build the kernel")?;
    let built = target_dir.join("x86_64-unknown-none/release/weft-kernel");
    if !status.success() || !built.exists() {
        anyhow::bail!("building the kernel failed");
    }
    Ok(built)
}

/// A bundle file to boot: read from `input` when it is one, else built from
/// the manifest `input` names into a temp file.
pub fn bundle_for(input: &Path, target: Target) -> Result<(Vec<u8>, PathBuf, Option<TempFile>)> {
    bundle_for_sim(input, target, SimOverride::default(), false)
}

/// [`bundle_for`], with the command line's `--sim`/`--seed` for a manifest,
/// compiled for a debugger when `debug`.
pub fn bundle_for_sim(input: &Path, target: Target, over: SimOverride, debug: bool) -> Result<(Vec<u8>, PathBuf, Option<TempFile>)> {
    if input.is_file() {
        let mut head = [0u8; 8];
        let is_bundle = std::fs::File::open(input).and_then(|mut f| f.read_exact(&mut head)).is_ok()
            && head == weft_runtime::bundle::MAGIC;
        if is_bundle {
            let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
            return Ok((bytes, input.to_path_buf(), None));
        }
    }
    let (plan, dir, _) = run::plan_with(&run::manifest_path(input), over)?;
    run::check_vm_memory(&plan)?;
    let bytes = bundle_from_plan(&plan, DirLoader::new(dir), target, None, debug)?;
    let tmp = TempFile::new("bundle", &bytes)?;
    Ok((bytes, tmp.0.clone(), Some(tmp)))
}

/// A file removed on drop.
pub struct TempFile(pub PathBuf);

impl TempFile {
    fn new(what: &str, bytes: &[u8]) -> Result<TempFile> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!("weft-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        Ok(TempFile(p))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A file disk image, checked (and created if the manifest gives a size)
/// the way `FileBlock::open` does on Linux.
fn disk_image(dir: &Path, role: &str, path: &str, size: Option<u64>, preallocate: bool, read_only: bool) -> Result<PathBuf> {
    let p = run::inside(dir, path, &format!("device `{role}`: disk image"))?;
    let shown = path;
    if !p.exists() {
        let Some(size) = size else {
            return Err(invalid(format!(
                "error: device `{role}`: disk image {shown} does not exist; create it or add `size = \"16MiB\"` to [devices.{role}] so weft creates it"
            )));
        };
        if read_only {
            return Err(invalid(format!(
                "error: device `{role}`: disk image {shown} does not exist and the device is read-only, so weft will not create it"
            )));
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| invalid(format!("error: device `{role}`: creating disk image {}: {e}", p.display())))?;
        if let Err(e) = crate::backends::size_new_image(&f, size, preallocate) {
            // Leave nothing behind: the image did not exist before.
            drop(f);
            let _ = std::fs::remove_file(&p);
            return Err(invalid(format!("error: device `{role}`: sizing disk image {} to {size} bytes: {e}", p.display())));
        }
    }
    let meta = std::fs::metadata(&p)?;
    let len = meta.len();
    if !meta.is_file() || len == 0 || len % SECTOR_SIZE != 0 {
        return Err(invalid(format!(
            "error: device `{role}`: disk image {shown} is {len} bytes, not a whole number of {SECTOR_SIZE}-byte sectors; refusing to use it (it was not modified)"
        )));
    }
    Ok(p)
}

/// QEMU option values escape `,` by doubling it.
fn qemu_escape(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// The most RAM `weft boot` gives a VM (QEMU's x86_64 limit is far above
/// any machine this runs on; this keeps the arithmetic and the error sane).
const MAX_RAM: u64 = 1 << 42;

/// RAM for the kernel itself and the components' code, beside the heap.
pub const KERNEL_RAM: u64 = 128 << 20;

/// The RAM a VM needs: the heap holds twice the largest linear memory
/// (growth copies) and the memory disks; the kernel needs [`KERNEL_RAM`]
/// more. Saturating: a manifest or bundle from outside may add up past any
/// machine. `weft check`'s and `weft boot`'s one rule.
pub fn vm_ram(memory: u64, memory_disks: impl IntoIterator<Item = u64>) -> u64 {
    memory_disks.into_iter().fold(memory.saturating_mul(2).saturating_add(KERNEL_RAM), u64::saturating_add)
}

/// The QEMU command line for `bundle` (already decoded from `bundle_file`).
pub fn qemu_command(kernel: &Path, bundle_file: &Path, bundle: &Bundle<'_>, opts: &BootOptions) -> Result<Command> {
    let dir = Path::new(&bundle.manifest).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut c = Command::new("qemu-system-x86_64");
    let virtio = bundle.blocks.iter().filter(|b| matches!(b, BlockBackend::File { .. })).count() + bundle.nets.len();
    let (machine, blk, nic) = match opts.machine {
        // The kernel needs the PIT (tick, TSC calibration), the 8259 and the
        // RTC (wall clock), nothing else. Without ACPI QEMU starts ~3 ms
        // sooner (no tables to build) and wires the first 8 virtio-mmio
        // slots to ISA IRQs 5..12; more devices need the second IOAPIC,
        // which comes with ACPI.
        Machine::Microvm if virtio <= 8 => (
            "microvm,x-option-roms=off,rtc=on,pit=on,pic=on,acpi=off,auto-kernel-cmdline=off",
            "virtio-blk-device",
            "virtio-net-device",
        ),
        Machine::Microvm => ("microvm,x-option-roms=off,rtc=on,pit=on,pic=on", "virtio-blk-device", "virtio-net-device"),
        // No option ROM: SeaBIOS would otherwise look for efi-virtio.rom.
        Machine::Q35 => ("q35", "virtio-blk-pci", "virtio-net-pci,romfile="),
    };
    if opts.machine == Machine::Q35 {
        // qboot (microvm's firmware) instead of SeaBIOS: ~37 ms sooner to
        // the kernel under TCG. It routes PCI interrupts but leaves the ECAM
        // window off and BARs unassigned; the kernel does both.
        c.args(["-bios", "qboot.rom"]);
    }
    // A bundle comes from outside: its sizes may add up past any machine,
    // and the VM must fit in this one.
    let disks = bundle.blocks.iter().map(|b| match b {
        BlockBackend::Memory { size, .. } => *size,
        BlockBackend::File { .. } => 0,
    });
    let avail = run::available_memory();
    let Some(ram) = Some(vm_ram(bundle.memory, disks)).filter(|&r| r <= MAX_RAM && avail.is_none_or(|a| r <= a)) else {
        let have = avail.map_or(String::new(), |a| format!(" ({} available)", format_size_approx(a)));
        return Err(invalid(format!(
            "error: {}: the VM needs twice `limits.memory` ({}) plus its memory disks, more than this machine can give{have}; give them smaller sizes, or use backend = \"file\" disks",
            bundle.manifest,
            format_size(bundle.memory)
        )));
    };
    let mib = ram.div_ceil(1 << 20);
    c.args(["-M", machine, "-cpu", "max", "-m"]).arg(format!("{mib}M"));
    c.args(["-smp", "1", "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-serial", "stdio"]);
    c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    c.args(["-accel", if opts.kvm { "kvm" } else { "tcg" }]);
    if let Some(port) = opts.gdb {
        // The stub on loopback only; `-S` holds the vCPU until gdb continues.
        c.arg("-gdb").arg(format!("tcp:127.0.0.1:{port}")).arg("-S");
    }
    c.arg("-kernel").arg(kernel).arg("-initrd").arg(bundle_file);
    // The kernel command line: `weft.timing` prints boot phases; anything in
    // `$WEFT_BOOT_APPEND` is passed on (debug hooks such as `weft.panic`).
    let mut append: Vec<String> = Vec::new();
    if std::env::var_os("WEFT_BOOT_TIMING").is_some_and(|v| v == "1") {
        append.push("weft.timing".into());
    }
    if opts.stats {
        append.push("weft.stats".into());
    }
    if let Some(extra) = std::env::var_os("WEFT_BOOT_APPEND") {
        append.push(extra.to_string_lossy().into_owned());
    }
    if !append.is_empty() {
        c.arg("-append").arg(append.join(" "));
    }
    for (i, (d, b)) in bundle.wiring.blocks.iter().zip(&bundle.blocks).enumerate() {
        if let BlockBackend::File { path, size, read_only, preallocate } = b {
            let img = disk_image(&dir, &d.role, path, *size, *preallocate, *read_only)?;
            let ro = if *read_only { ",readonly=on" } else { "" };
            c.arg("-drive").arg(format!("file={},format=raw,if=none,id=d{i},cache=writeback{ro}", qemu_escape(&img)));
            c.arg("-device").arg(format!("{blk},drive=d{i},serial={}", d.role));
        }
    }
    // A replay attaches no network either.
    for (i, (d, n)) in bundle.wiring.nets.iter().zip(&bundle.nets).enumerate().filter(|_| bundle.replay.is_none()) {
        let netdev = match &n.link {
            NetLink::Tap { device } => {
                tap_exists(&d.role, device)?;
                format!("tap,id=n{i},ifname={device},script=no,downscript=no")
            }
            NetLink::Udp { local, remote } => format!("socket,id=n{i},udp={remote},localaddr={local}"),
        };
        let m = n.mac;
        c.arg("-netdev").arg(netdev);
        c.arg("-device").arg(format!(
            "{nic},netdev=n{i},mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        ));
    }
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    Ok(c)
}

/// The TAP device must exist (QEMU would create a new one, detached from the
/// user's network setup): the same check and message as `TapNet::open`.
fn tap_exists(role: &str, device: &str) -> Result<()> {
    let sys = Path::new("/sys/class/net").join(device);
    if !sys.exists() {
        return Err(invalid(format!(
            "error: device `{role}`: TAP device {device} does not exist; create it with `ip tuntap add dev {device} mode tap && ip link set {device} up` (as root, in the network namespace weft runs in)"
        )));
    }
    if !sys.join("tun_flags").exists() {
        return Err(invalid(format!("error: device `{role}`: interface {device} exists but is not a TAP device")));
    }
    Ok(())
}

/// What the serial line said.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The exit frame's code, if the kernel got that far.
    pub code: Option<u8>,
    /// Time from spawning QEMU to the first console byte.
    pub first_output: Option<Duration>,
}

/// Splits the serial stream (see the module docs) as it arrives.
struct Demux<O: Write, E: Write> {
    out: O,
    err: E,
    /// Where events go; `None` prints them on `err` as `StderrLog` would.
    log: Option<Box<dyn weft_runtime::Log>>,
    /// One per net filter (link order), for captured frames.
    captures: Vec<Box<dyn weft_runtime::devices::Capture>>,
    /// Each bundle component's symbols, for the kernel's backtrace frames.
    symbols: Vec<Option<crate::symbolize::Symbols>>,
    /// Inside a frame: its bytes so far.
    frame: Option<Vec<u8>>,
    outcome: Outcome,
    start: Instant,
}

fn unescape(s: &[u8]) -> String {
    String::from_utf8_lossy(&unescape_bytes(s)).into_owned()
}

fn unescape_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&s[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

impl<O: Write, E: Write> Demux<O, E> {
    fn feed(&mut self, bytes: &[u8]) {
        let mut plain = Vec::new();
        for &b in bytes {
            match &mut self.frame {
                Some(f) if b == b'\n' => {
                    let f = std::mem::take(f);
                    self.frame = None;
                    self.frame_done(&f, &mut plain);
                }
                Some(f) => f.push(b),
                None if b == 0x1E => self.frame = Some(Vec::new()),
                None => plain.push(b),
            }
        }
        self.console(&plain);
    }

    fn console(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.outcome.first_output.is_none() {
            self.outcome.first_output = Some(self.start.elapsed());
        }
        let _ = self.out.write_all(bytes).and_then(|()| self.out.flush());
    }

    fn frame_done(&mut self, f: &[u8], plain: &mut Vec<u8>) {
        let Some((&kind, body)) = f.split_first() else { return };
        match kind {
            b'c' => plain.push(0x1E),
            b'E' => {
                // Console bytes before the event go out first, as on Linux.
                self.console(&std::mem::take(plain));
                let mut parts = body.split(|&b| b == 0x1F).map(unescape);
                let topic = parts.next().unwrap_or_default();
                let message = parts.next().unwrap_or_default();
                let rest: Vec<String> = parts.collect();
                let fields: Vec<(String, String)> =
                    rest.chunks(2).map(|kv| (kv[0].clone(), kv.get(1).cloned().unwrap_or_default())).collect();
                match &mut self.log {
                    Some(log) => log.append(&topic, &message, &fields),
                    None => {
                        let _ = self.err.write_all(crate::backends::event_line(&topic, &message, &fields).as_bytes());
                    }
                }
            }
            b'P' => {
                let mut parts = body.splitn(3, |&b| b == 0x1F);
                let index = parts.next().and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
                let dir = match parts.next() {
                    Some(b"i") => weft_runtime::devices::Direction::Inbound,
                    _ => weft_runtime::devices::Direction::Outbound,
                };
                if let (Some(c), Some(data)) = (index.and_then(|i| self.captures.get_mut(i)), parts.next()) {
                    c.frame(0, dir, &unescape_bytes(data));
                }
            }
            b'M' => {
                self.console(&std::mem::take(plain));
                let _ = writeln!(self.err, "{}", String::from_utf8_lossy(body));
            }
            b'B' => {
                // A wasm backtrace frame, printed as wasmtime prints it on Linux.
                self.console(&std::mem::take(plain));
                let fields: Vec<String> = body.split(|&b| b == 0x1F).map(unescape).collect();
                let line = match crate::symbolize::RawFrame::parse(&fields) {
                    Some(f) => {
                        let symbols = f.component.and_then(|c| self.symbols.get(c)?.as_ref());
                        crate::symbolize::format_frame(&f, symbols)
                    }
                    None => format!("  (unreadable backtrace frame: {})", String::from_utf8_lossy(body)),
                };
                let _ = writeln!(self.err, "{line}");
            }
            b'X' => {
                self.outcome.code = std::str::from_utf8(body).ok().and_then(|s| s.trim().parse().ok());
            }
            _ => {}
        }
    }
}

/// Runs QEMU to completion, streaming its serial line to `out` (console)
/// and `err` (events, kernel messages). Returns what the kernel reported,
/// QEMU's exit status and its stderr.
pub fn run_qemu<O, E>(cmd: Command, timeout: Duration, out: O, err: E) -> Result<(Outcome, Option<i32>, String)>
where
    O: Write + Send + 'static,
    E: Write + Send + 'static,
{
    run_qemu_logged(cmd, timeout, out, err, None, Vec::new(), Vec::new())
}

/// `run_qemu`, with events going to `log` (e.g. the git log) instead of
/// `err`, captured frames to `captures` (one per net filter), and a trap's
/// backtrace symbolized with `symbols` (one per bundle component).
pub fn run_qemu_logged<O, E>(
    mut cmd: Command,
    timeout: Duration,
    out: O,
    err: E,
    log: Option<Box<dyn weft_runtime::Log>>,
    captures: Vec<Box<dyn weft_runtime::devices::Capture>>,
    symbols: Vec<Option<crate::symbolize::Symbols>>,
) -> Result<(Outcome, Option<i32>, String)>
where
    O: Write + Send + 'static,
    E: Write + Send + 'static,
{
    let start = Instant::now();
    // QEMU dies with us: a `weft boot` that is killed (by a test, a
    // supervisor, Ctrl-C) must not leave the machine running and holding
    // its TAP device or UDP port.
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls async-signal-safe `prctl`/`getppid`.
    unsafe {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                return Err(std::io::Error::other("the parent of QEMU is gone"));
            }
            Ok(())
        });
    }
    let mut child: Child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("qemu-system-x86_64 not found; install it (Debian: apt-get install qemu-system-x86)")
        } else {
            anyhow::Error::from(e).context("starting qemu-system-x86_64")
        }
    })?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let reader = std::thread::spawn(move || {
        let mut demux = Demux { out, err, log, captures, symbols, frame: None, outcome: Outcome::default(), start };
        let mut buf = [0u8; 8192];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => demux.feed(&buf[..n]),
            }
        }
        demux.outcome
    });
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let outcome = reader.join().map_err(|_| anyhow::anyhow!("the serial reader panicked"))?;
    let qemu_err = errs.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(anyhow::Error::new(Exit {
            code: exit::TIMEOUT,
            message: format!("error: QEMU did not stop within {}s; killed it", timeout.as_secs()),
        }));
    };
    Ok((outcome, status.code(), qemu_err))
}

/// `weft boot --gdb`: tells the user how to attach once QEMU's gdb stub
/// listens (before that, gdb's `target remote` would be refused). Stops
/// looking when dropped.
struct GdbHint(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl GdbHint {
    fn start(port: u16, kernel: &Path) -> GdbHint {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let command = gdb_command(port, kernel);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if listening(port) {
                    eprintln!(
                        "weft: QEMU waits for gdb on 127.0.0.1:{port}; the kernel starts when gdb continues. Attach with\n  {command}"
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        GdbHint(done)
    }
}

impl Drop for GdbHint {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The gdb command line that attaches to `weft boot --gdb=PORT` with the
/// kernel's symbols; components' code arrives through the GDB JIT interface.
pub fn gdb_command(port: u16, kernel: &Path) -> String {
    format!(
        "gdb {} -ex 'target remote :{port}' -ex 'set breakpoint pending on' -ex 'break FUNCTION' -ex continue",
        kernel.display()
    )
}

/// Whether a socket listens on TCP `port` (any address), from
/// /proc/net/tcp{,6}: asking by connecting would take the gdb stub's one
/// connection.
fn listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let mut cols = l.split_whitespace();
                let local = cols.nth(1).unwrap_or("");
                let state = cols.nth(1).unwrap_or("");
                state == "0A" && local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
            })
        })
    })
}

/// `weft boot`: returns the exit code.
pub fn boot(input: &Path, opts: &BootOptions) -> Result<u8> {
    let input = if input.is_dir() { run::manifest_path(input) } else { input.to_path_buf() };
    if !input.exists() {
        return Err(invalid(format!("error: {} does not exist", input.display())));
    }
    let target = if opts.pulley { Target::BareMetalPulley } else { Target::BareMetal };
    let debug = opts.gdb.is_some();
    if debug && opts.pulley {
        return Err(invalid(
            "error: --gdb debugs native code, and Pulley bytecode is interpreted (gdb would see the interpreter, not the component): drop --pulley",
        ));
    }
    let (bytes, file, _tmp) = match &opts.replay {
        Some(trace) => {
            let bytes = build_replay(trace, target, debug)?;
            let tmp = TempFile::new("bundle", &bytes)?;
            (bytes, tmp.0.clone(), Some(tmp))
        }
        None => bundle_for_sim(&input, target, opts.sim, debug)?,
    };
    boot_bundle(&input, &bytes, &file, opts)
}

/// Boots a parsed manifest whose folder is an OCI image's root
/// (`weft::container` changes a container's manifest before it boots) with
/// the native kernel.
pub fn boot_manifest(m: weft_runtime::manifest::Manifest, opts: &BootOptions) -> Result<u8> {
    let input = m.path.clone();
    let engine = run::engine_of(&m, engine::Codegen::default())?;
    let (plan, loader) = run::plan_loaded(m, &engine, &Cache::from_env(), true)?;
    run::check_vm_memory(&plan)?;
    let bytes = bundle_from_plan(&plan, loader, Target::BareMetal, None, false)?;
    let tmp = TempFile::new("bundle", &bytes)?;
    boot_bundle(&input, &bytes, &tmp.0, opts)
}

/// Boots the bundle `bytes` (in `file`), made from `input`.
fn boot_bundle(input: &Path, bytes: &[u8], file: &Path, opts: &BootOptions) -> Result<u8> {
    let debug = opts.gdb.is_some();
    // A Pulley bundle boots the Pulley kernel; anything else must be native.
    let target = match Bundle::decode(bytes, None) {
        Ok(b) if b.target == Target::BareMetalPulley => Target::BareMetalPulley,
        _ => Target::BareMetal,
    };
    let bundle = Bundle::decode(bytes, Some(target)).map_err(|e| invalid(format!("error: {}: {e}", input.display())))?;
    let kernel = ensure_kernel(target)?;
    let cmd = qemu_command(&kernel, file, &bundle, opts)?;
    let timeout = opts.qemu_timeout.unwrap_or_else(|| match bundle.timeout {
        // A debug session lasts as long as the person at gdb wants.
        _ if debug => Duration::MAX,
        Some(t) => Duration::from_nanos(t) + Duration::from_secs(30),
        None => Duration::from_secs(600),
    });
    let log: Option<Box<dyn weft_runtime::Log>> = match &bundle.log {
        LogBackend::Stderr => None,
        LogBackend::Git { path } => {
            let dir = Path::new(&bundle.manifest).parent().map(Path::to_path_buf).unwrap_or_default();
            let git = crate::gitlog::GitLog::open(&run::inside(&dir, path, "log: git repository")?)
                .map_err(|e| invalid(format!("error: {}: log: {e:#}", bundle.manifest)))?;
            Some(Box::new(git))
        }
    };
    let dir = Path::new(&bundle.manifest).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut captures: Vec<Box<dyn weft_runtime::devices::Capture>> = Vec::new();
    if bundle.nets.iter().any(|n| !n.captures.is_empty()) {
        let d = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority())
            .map_err(|e| invalid(format!("error: cannot open the manifest's folder {}: {e}", dir.display())))?;
        let d = std::sync::Arc::new(d);
        for path in bundle.nets.iter().flat_map(|n| &n.captures) {
            captures.push(Box::new(crate::net::PcapCapture::new(d.clone(), PathBuf::from(path))));
        }
    }
    let symbols = bundle.components.iter().map(|c| crate::symbolize::Symbols::decode(c.symbols)).collect();
    let _hint = opts.gdb.map(|port| {
        if bundle.target == Target::BareMetalPulley {
            eprintln!("weft: {} holds Pulley bytecode: gdb can break in the kernel only", input.display());
        } else if !bundle.debug {
            eprintln!(
                "weft: {} was built without debug info: gdb can break in the kernel, not in components; boot its manifest with --gdb",
                input.display()
            );
        }
        GdbHint::start(port, &kernel)
    });
    tracing::debug!(?cmd, "starting QEMU");
    let (outcome, status, qemu_err) = run_qemu_logged(cmd, timeout, std::io::stdout(), std::io::stderr(), log, captures, symbols)?;
    tracing::debug!(first_output = ?outcome.first_output, "QEMU finished");
    match outcome.code {
        Some(code) => Ok(code),
        None => Err(anyhow::Error::new(Exit {
            code: exit::KERNEL,
            message: format!(
                "error: the kernel stopped without reporting an exit code (QEMU exit status {}){}",
                status.map_or("none (killed by a signal)".into(), |s| s.to_string()),
                if qemu_err.trim().is_empty() { String::new() } else { format!("\nQEMU: {}", qemu_err.trim()) }
            ),
        })),
    }
}
