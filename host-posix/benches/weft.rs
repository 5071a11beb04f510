//! weft's benchmarks, each against a baseline measured in the same run (this
//! machine is shared and noisy: compare ratios, not absolute numbers).
//!
//!     cargo bench -p weft --bench weft            # all, prints a markdown table
//!     cargo bench -p weft --bench weft -- calls   # one group: calls | kvstore | start | baremetal | baremetal-net
//!     WEFT_OLD=/path/to/weft cargo bench -p weft --bench weft -- engines   # that weft against this one
//!
//! Results and the command are recorded in docs/benchmarks.md.

extern crate alloc;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft::run;

mod common;
use common::*;

/// Two `weft` binaries (two engines) side by side: `WEFT_OLD=… -- engines`.
#[path = "weft/engines.rs"]
mod engines;

/// The kvstore's own format and store logic, compiled natively: the
/// baseline writes exactly the records the component writes.
#[path = "../../components/apps/kvstore/src/format.rs"]
#[allow(dead_code, unused_imports)] // its unit tests are compiled here, without the test harness
mod format;
#[path = "../../components/apps/kvstore/src/store.rs"]
#[allow(dead_code)]
mod store;

/// An app folder `target/bench-scratch/<name>` with `manifest` and `files`
/// from the test components.
fn app_dir(name: &str, manifest: &str, files: &[&str]) -> PathBuf {
    let d = scratch(name);
    std::fs::write(d.join("weft.toml"), manifest).unwrap();
    for f in files {
        let src = root().join("components/target/wasm32-wasip2/release").join(f);
        std::fs::copy(&src, d.join(f)).unwrap();
    }
    d
}

/// [`app_dir`], on an engine of its own.
fn fixture(name: &str, manifest: &str, files: &[&str]) -> Fixture {
    let d = app_dir(name, manifest, files);
    let engine = run::engine().unwrap();
    run::start_ticker(&engine);
    Fixture::open(&engine, &d)
}

/// callbench with `filters` passthrough filters on the block device (and
/// as many on the clock, for the `now` calls).
fn chain_manifest(filters: usize) -> String {
    chains(filters, filters)
}

/// callbench with `block` passthrough filters on its block device and `clock` on its clock.
fn chains(block: usize, clock: usize) -> String {
    callbench_manifest(block, clock, &[])
}

/// [`chains`], with `args` for the app (`weft run` passes no arguments).
fn callbench_manifest(block: usize, clock: usize, args: &[&str]) -> String {
    let chain = |c: &str, n: usize| vec![format!("{{ component = \"{c}\" }}"); n].join(", ");
    let args = args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    format!(
        "[app]\ncomponent = \"callbench.wasm\"\nargs = [{args}]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{}]\n\n[devices.clock]\nkind = \"clock\"\nfilters = [{}]\n",
        chain("block-fault", block),
        chain("clock-skew", clock),
    )
}

/// ns per call measured inside the app, median of 5 runs.
fn per_call(fx: &Fixture, what: &str, n: u64) -> f64 {
    let runs = (0..5)
        .map(|_| {
            let out = fx.run([what, &n.to_string()]);
            out.trim().strip_prefix("ns/call ").unwrap().parse::<f64>().unwrap()
        })
        .collect();
    median(runs)
}

fn calls() {
    println!("\n### Device call cost: app -> device through N passthrough filters (`block-fault` on block, `clock-skew` at rate 1 on clock)\n");
    println!("| filters | block.read 4 KiB ns/call | per hop | block.info ns/call | per hop | clock.monotonic-now ns/call | per hop |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut base = [0.0; 3];
    for n in [0usize, 1, 2, 4] {
        let fx = fixture(&format!("calls-{n}"), &chain_manifest(n), &["callbench.wasm"]);
        let v = [per_call(&fx, "read", 100_000), per_call(&fx, "small", 1_000_000), per_call(&fx, "now", 1_000_000)];
        if n == 0 {
            base = v;
            println!("| 0 (direct) | {:.0} | baseline | {:.1} | baseline | {:.1} | baseline |", v[0], v[1], v[2]);
        } else {
            let cell = |i: usize| format!("{:.0} ({:.2}x) | {:.0}", v[i], v[i] / base[i], (v[i] - base[i]) / n as f64);
            println!("| {n} | {} | {} | {} |", cell(0), cell(1), cell(2));
        }
    }
}

/// A file as the kvstore's `Device`, the way a native program would write it.
struct NativeFile(std::fs::File);

impl store::Device for NativeFile {
    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, &'static str> {
        use std::os::unix::fs::FileExt;
        let mut b = vec![0; count as usize * 512];
        self.0.read_exact_at(&mut b, start * 512).map_err(|_| "io")?;
        Ok(b)
    }
    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), &'static str> {
        use std::os::unix::fs::FileExt;
        self.0.write_all_at(data, start * 512).map_err(|_| "io")
    }
    fn flush(&mut self) -> Result<(), &'static str> {
        self.0.sync_data().map_err(|_| "io")
    }
}

/// Seconds the kvstore's store code, compiled natively, takes to `fill n`
/// on `f` (a fresh image of `size` bytes): the baseline of the `fill` rows.
fn native_fill(f: std::fs::File, n: u64, size: u64) -> f64 {
    let t = Instant::now();
    let mut s = store::Store::open(NativeFile(f), 512, size / 512, false).unwrap_or_else(|o| panic!("{:?}", String::from_utf8_lossy(&o.output)));
    let out = s.fill(n, None, &mut |_| {}).unwrap_or_else(|o| o);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(String::from_utf8_lossy(&out.output).trim(), format!("wrote {n} verified {n} lost 0 corrupt 0"));
    secs
}

fn kvstore() {
    const N: u64 = 20_000;
    const SIZE: u64 = 64 << 20;
    println!("\n### kvstore `fill {N}` on a file (fresh 64 MiB image each run; includes fsync and read-back)\n");
    let manifest = format!(
        "[app]\ncomponent = \"kvstore\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"{}MiB\"\n",
        SIZE >> 20
    );
    let fx = fixture("kvstore", &manifest, &[]);
    let img = root().join("target/bench-scratch/kvstore/disk.img");
    let fresh = || {
        let _ = std::fs::remove_file(&img);
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).open(&img).unwrap();
        f.set_len(SIZE).unwrap();
        f
    };
    let mut weft_t = Vec::new();
    let mut native_t = Vec::new();
    for _ in 0..5 {
        drop(fresh());
        let t = Instant::now();
        let out = fx.run(["fill", &N.to_string()]);
        weft_t.push(t.elapsed().as_secs_f64());
        assert_eq!(out.trim(), format!("wrote {N} verified {N} lost 0 corrupt 0"));

        native_t.push(native_fill(fresh(), N, SIZE));
    }
    let (w, n) = (median(weft_t), median(native_t));
    println!("| program | records/s | time | ratio |");
    println!("|---|---:|---:|---:|");
    println!("| native Rust, same store code, same file (baseline) | {:.0} | {:.1} ms | 1.00 |", N as f64 / n, n * 1e3);
    println!("| weft: kvstore component -> `file` backend | {:.0} | {:.1} ms | {:.2}x throughput |", N as f64 / w, w * 1e3, n / w);
}

fn start() {
    println!("\n### Start-up\n");
    let weft = release_weft();
    let cache = root().join("target/bench-scratch/cache");
    let hello = root().join("examples/hello");
    let run = || first_output(Command::new(&weft).arg("run").arg(&hello).env("WEFT_CACHE_DIR", &cache)).0;
    run(); // warm the cache
    let weft_ms: Vec<f64> = (0..30).map(|_| run().as_secs_f64() * 1e3).collect();
    let base_ms: Vec<f64> =
        (0..30).map(|_| first_output(Command::new(&weft).arg("--version")).0.as_secs_f64() * 1e3).collect();
    let (w, b) = (median(weft_ms), median(base_ms));
    println!("| measurement | median | baseline | ratio |");
    println!("|---|---:|---:|---:|");
    println!("| `weft run examples/hello`, warm cache: spawn to first output | {w:.1} ms | `weft --version` {b:.1} ms | {:.1}x |", w / b);

    // Instantiate, on prepared InstancePres: the app alone (the baseline), with
    // two filters on its block device, and with two more on its clock.
    let fixtures = [
        ("the app alone (baseline)", fixture("inst-0", &chains(0, 0), &["callbench.wasm"])),
        ("app + 2 filters (2 `block-fault` on block)", fixture("inst-2", &chains(2, 0), &["callbench.wasm"])),
        ("app + 4 filters (2 `block-fault`, 2 `clock-skew`)", fixture("inst-4", &chains(2, 2), &["callbench.wasm"])),
    ];
    let console = Capture::default();
    // Instantiation alone, and the whole cycle: a new store, instantiation, and
    // dropping the store (which hands the instances' slots back to the pool).
    let mut times = vec![(Vec::new(), Vec::new()); fixtures.len()];
    // Interleaved, so every fixture sees the same machine load.
    for _ in 0..2000 {
        for (i, (_, fx)) in fixtures.iter().enumerate() {
            let (inst, cycle) = fx.instantiate_us(&console);
            times[i].0.push(inst);
            times[i].1.push(cycle);
        }
    }
    let medians: Vec<(f64, f64)> = times.into_iter().map(|(a, b)| (median(a), median(b))).collect();
    println!("\n| instantiate (incl. each filter's `configure`) | median | ratio | store + instantiate + drop | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let (z, zc) = medians[0];
    for ((what, _), (t, c)) in fixtures.iter().zip(&medians) {
        println!("| {what} | {t:.1} us | {:.2}x | {c:.1} us | {:.2}x |", t / z, c / zc);
    }
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |g: &str| filter.is_empty() || filter.iter().any(|f| f == g);
    println!("weft benchmarks ({}; {} cores)", env!("CARGO_PKG_VERSION"), std::thread::available_parallelism().map_or(1, |n| n.get()));
    if want("calls") {
        calls();
    }
    if want("kvstore") {
        kvstore();
    }
    if want("start") {
        start();
    }
    if want("baremetal") {
        baremetal();
    }
    // Needs root (a network namespace with a TAP device): only when asked.
    if filter.iter().any(|f| f == "baremetal-net") {
        baremetal_net();
    }
    // Needs a second `weft` (WEFT_OLD): only when asked.
    if filter.iter().any(|f| f == "engines") {
        engines::engines();
    }
}

/// A bundle of `manifest` (a scratch folder) for the kernel, in a file.
fn bm_bundle(dir: &Path) -> (Vec<u8>, PathBuf) {
    let bytes = weft::boot::build(dir).unwrap();
    let file = dir.join("app.bundle");
    std::fs::write(&file, &bytes).unwrap();
    (bytes, file)
}

/// A `Write` whose bytes can be read after QEMU is done.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One boot: spawn to first console byte, spawn to QEMU exit, exit code,
/// and the kernel's boot phases (ms since the vCPU reset, `weft.timing`).
struct BmBoot {
    first: Duration,
    total: Duration,
    code: Option<u8>,
    phases: Vec<(String, f64)>,
}

fn bm_boot(bytes: &[u8], file: &Path, machine: weft::boot::Machine) -> BmBoot {
    use weft_runtime::bundle::Bundle;
    let bundle = Bundle::decode(bytes, None).unwrap();
    let opts = weft::boot::BootOptions { machine, ..Default::default() };
    let mut cmd = weft::boot::qemu_command(&weft::boot::kernel_path(), file, &bundle, &opts).unwrap();
    cmd.arg("-append").arg("weft.timing");
    let err = Shared::default();
    let t = Instant::now();
    let (out, _, qemu_err) = weft::boot::run_qemu(cmd, Duration::from_secs(300), std::io::sink(), err.clone()).unwrap();
    let total = t.elapsed();
    assert!(out.code.is_some(), "the kernel did not report an exit code: {qemu_err}");
    let err = String::from_utf8_lossy(&err.0.lock().unwrap()).into_owned();
    // "weft kernel: timing (ms since reset): kmain 0.88 clock 1.9 …; TSC … MHz"
    let phases = err
        .lines()
        .find_map(|l| l.split_once("timing (ms since reset):"))
        .map(|(_, rest)| {
            let words: Vec<&str> = rest.split(';').next().unwrap().split_whitespace().collect();
            words.chunks(2).map(|p| (p[0].to_string(), p[1].parse().unwrap())).collect()
        })
        .unwrap_or_default();
    BmBoot { first: out.first_output.unwrap_or(total), total, code: out.code, phases }
}

/// QEMU with the kernel and no bundle: it starts, the kernel sets up its
/// heap and clock, says "no bundle" and exits. Spawn to QEMU exit: the
/// floor under any app's first output.
fn bm_floor(machine: weft::boot::Machine, hello: &[u8], file: &Path) -> Duration {
    use weft_runtime::bundle::Bundle;
    let bundle = Bundle::decode(hello, None).unwrap();
    let opts = weft::boot::BootOptions { machine, ..Default::default() };
    let cmd = weft::boot::qemu_command(&weft::boot::kernel_path(), file, &bundle, &opts).unwrap();
    // The same command without `-initrd <bundle>`.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut bare = Command::new(cmd.get_program());
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a == "-initrd" {
            skip = true;
        } else {
            bare.arg(a);
        }
    }
    bare.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let (_, _, _) = weft::boot::run_qemu(bare, Duration::from_secs(60), std::io::sink(), std::io::sink()).unwrap();
    t.elapsed()
}

/// The bare-metal target: boot latency, sizes, kvstore over virtio-blk.
/// Needs the kernel (`cargo build -p weft-baremetal --target
/// x86_64-unknown-none --release`) and qemu-system-x86_64; TCG throughout.
fn baremetal() {
    use weft::boot::Machine;
    let kernel = weft::boot::kernel_path();
    assert!(kernel.exists(), "build the kernel first: cargo build -p weft-baremetal --target x86_64-unknown-none --release");
    println!("\n### Bare metal (QEMU TCG, `-cpu max`, the weft kernel)\n");
    let hello = scratch("bm-hello");
    std::fs::copy(root().join("examples/hello/weft.toml"), hello.join("weft.toml")).unwrap();
    let (bytes, file) = bm_bundle(&hello);
    let weft = release_weft();
    const RUNS: usize = 20;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Interleaved, so a burst of load on this shared machine hits every
    // column alike.
    let machines = [(Machine::Microvm, "microvm"), (Machine::Q35, "q35")];
    let mut linux = Vec::new();
    let mut boots: Vec<Vec<BmBoot>> = machines.iter().map(|_| Vec::new()).collect();
    let mut floors: Vec<Vec<f64>> = machines.iter().map(|_| Vec::new()).collect();
    for _ in 0..RUNS {
        linux.push(ms(first_output(
            Command::new(&weft).arg("run").arg(&hello).env("WEFT_CACHE_DIR", root().join("target/bench-scratch/cache")),
        )
        .0));
        for (i, (m, _)) in machines.iter().enumerate() {
            boots[i].push(bm_boot(&bytes, &file, *m));
            floors[i].push(ms(bm_floor(*m, &bytes, &file)));
        }
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (l, lmin) = (median(linux.clone()), min(&linux));
    println!("| hello: spawn to first app output | median of {RUNS} | best | median vs `weft run` on Linux |");
    println!("|---|---:|---:|---:|");
    println!("| `weft run` (Linux process, warm AOT cache; baseline) | {l:.1} ms | {lmin:.1} ms | 1.00 |");
    for (i, (_, name)) in machines.iter().enumerate() {
        let firsts: Vec<f64> = boots[i].iter().map(|r| ms(r.first)).collect();
        let first = median(firsts.clone());
        let total = median(boots[i].iter().map(|r| ms(r.total)).collect());
        assert!(boots[i].iter().all(|r| r.code == Some(0)));
        println!(
            "| QEMU `-M {name}` start → first output (whole boot to QEMU exit {total:.0} ms) | {first:.1} ms | {:.1} ms | {:.2}x |",
            min(&firsts),
            first / l
        );
    }
    for (i, (_, name)) in machines.iter().enumerate() {
        let f = median(floors[i].clone());
        println!(
            "| floor: QEMU `-M {name}` with the kernel and no bundle, spawn → exit | {f:.1} ms | {:.1} ms | {:.2}x |",
            min(&floors[i]),
            f / l
        );
    }
    // Where the first output's time goes: QEMU's own start (spawn to the
    // vCPU's reset: the host's first-output time minus the kernel's TSC
    // time of its first console write), then the kernel's phases.
    println!("\n| hello: where the time goes (median of {RUNS}, ms) | QEMU start (spawn → reset) | firmware → kmain | clock | bundle decoded | engine | components deserialized | linked | calibrated | instantiated, first output |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (_, name)) in machines.iter().enumerate() {
        let phase = |r: &BmBoot, n: &str| r.phases.iter().find(|(k, _)| k == n).map(|p| p.1);
        let step = |a: &str, b: &str| {
            median(boots[i].iter().filter_map(|r| Some(phase(r, b)? - if a.is_empty() { 0.0 } else { phase(r, a)? })).collect())
        };
        let qemu = median(boots[i].iter().filter_map(|r| Some(ms(r.first) - phase(r, "output")?)).collect());
        println!(
            "| `-M {name}`, median | {qemu:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            step("", "kmain"),
            step("kmain", "clock"),
            step("clock", "decoded"),
            step("decoded", "engine"),
            step("engine", "deserialized"),
            step("deserialized", "linked"),
            step("linked", "calibrated"),
            // The session runner instantiates and runs the app in one step.
            step("calibrated", "output"),
        );
        // The fastest boot: closest to what an idle machine does.
        let best = boots[i].iter().min_by(|a, b| a.first.cmp(&b.first)).unwrap();
        let at = |n: &str| phase(best, n).unwrap_or(f64::NAN);
        let names = ["kmain", "clock", "decoded", "engine", "deserialized", "linked", "calibrated", "output"];
        let mut row = format!("| `-M {name}`, fastest run | {:.1} |", ms(best.first) - at("output"));
        let mut prev = 0.0;
        for n in names {
            row.push_str(&format!(" {:.1} |", at(n) - prev));
            prev = at(n);
        }
        println!("{row}");
    }

    println!("\n| size | bytes |\n|---|---:|");
    let elf = std::fs::read(&kernel).unwrap();
    println!("| kernel ELF `weft-kernel` (DWARF stripped) | {} |", elf.len());
    println!("| kernel loaded image (PT_LOAD file bytes) | {} |", loaded_bytes(&elf));
    println!("| hello bundle | {} |", bytes.len());
    let kv = scratch("bm-kv-size");
    std::fs::write(kv.join("weft.toml"), "[app]\ncomponent = \"kvstore\"\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n[devices.s2]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\" }, { component = \"block-trace\" }]\n").unwrap();
    println!("| kvstore + block-fault + block-trace bundle | {} |", bm_bundle(&kv).0.len());

    // kvstore fill over virtio-blk: the app's run (the kernel's phases
    // `calibrated` → `done`: instantiation and the run) with `fill N` minus the same with `fill 1`
    // (same image size) isolates the fill; Linux as the baseline, and the
    // same fill on a memory disk (kernel RAM, no device) as the floor TCG
    // itself sets.
    const N: u64 = 20_000;
    const FILLS: usize = 5;
    println!("\n### kvstore `fill {N}` on a 64 MiB file image: virtio-blk in the kernel vs the `file` backend on Linux\n");
    let fill = |dir: &Path, n: u64, m: Machine, backend: &str| {
        let v: Vec<f64> = (0..FILLS)
            .map(|_| {
                let _ = std::fs::remove_file(dir.join("disk.img"));
                let dev = if backend == "file" { "backend = \"file\"\npath = \"disk.img\"" } else { "backend = \"memory\"" };
                std::fs::write(dir.join("weft.toml"), format!("[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"{n}\"]\n[devices.storage]\nkind = \"block\"\n{dev}\nsize = \"64MiB\"\n")).unwrap();
                let (bytes, file) = bm_bundle(dir);
                let _ = std::fs::remove_file(dir.join("disk.img"));
                let f = std::fs::File::create(dir.join("disk.img")).unwrap();
                f.set_len(64 << 20).unwrap();
                let r = bm_boot(&bytes, &file, m);
                assert_eq!(r.code, Some(0));
                let at = |n: &str| r.phases.iter().find(|(k, _)| k == n).unwrap().1;
                (at("done") - at("calibrated")) / 1e3
            })
            .collect();
        (median(v.clone()), v.iter().copied().fold(f64::INFINITY, f64::min))
    };
    let kv = scratch("bm-kvstore");
    let manifest = "[app]\ncomponent = \"kvstore\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"64MiB\"\n";
    let fx = fixture("bm-kvstore-linux", manifest, &[]);
    let img = root().join("target/bench-scratch/bm-kvstore-linux/disk.img");
    let linux: Vec<f64> = (0..FILLS)
        .map(|_| {
            let _ = std::fs::remove_file(&img);
            std::fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
            let t = Instant::now();
            fx.run(["fill", &N.to_string()]);
            t.elapsed().as_secs_f64()
        })
        .collect();
    let (l, lbest) = (median(linux.clone()), linux.iter().copied().fold(f64::INFINITY, f64::min));
    println!("| where | records/s (median of {FILLS}) | fill time | best fill time | vs Linux (medians) |");
    println!("|---|---:|---:|---:|---:|");
    println!("| Linux `file` backend (baseline) | {:.0} | {:.0} ms | {:.0} ms | 1.00 |", N as f64 / l, l * 1e3, lbest * 1e3);
    for (m, name, backend, what) in [
        (Machine::Microvm, "microvm", "file", "virtio-blk"),
        (Machine::Q35, "q35", "file", "virtio-blk"),
        (Machine::Microvm, "microvm", "memory", "memory disk (no device: the TCG floor)"),
    ] {
        let ((n, nbest), (one, onebest)) = (fill(&kv, N, m, backend), fill(&kv, 1, m, backend));
        let t = n - one;
        println!(
            "| kernel, {what}, `-M {name}` | {:.0} | {:.0} ms | {:.0} ms | {:.2}x throughput |",
            N as f64 / t,
            t * 1e3,
            (nbest - onebest) * 1e3,
            l / t
        );
    }
}

/// Bytes of an ELF's PT_LOAD segments in the file (what QEMU loads).
fn loaded_bytes(elf: &[u8]) -> u64 {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&p| u32::from_le_bytes(elf[p..p + 4].try_into().unwrap()) == 1)
        .map(|p| u64_at(p + 0x20))
        .sum()
}

/// One `GET /` on `s`; reads the whole response (Content-Length).
fn http_get(s: &mut std::net::TcpStream) {
    s.write_all(b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("content-length");
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();
}

/// (requests/s on one keep-alive connection, requests/s with a new
/// connection per request, p50 µs, p99 µs of the keep-alive requests).
fn httpd_rates(addr: &str, keepalive: usize, fresh: usize) -> (f64, f64, f64, f64) {
    let mut s = connect(addr);
    http_get(&mut s);
    let t = Instant::now();
    let v: Vec<f64> = (0..keepalive)
        .map(|_| {
            let t = Instant::now();
            http_get(&mut s);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let ka = keepalive as f64 / t.elapsed().as_secs_f64();
    drop(s);
    let t = Instant::now();
    for _ in 0..fresh {
        let mut s = connect(addr);
        http_get(&mut s);
    }
    let fr = fresh as f64 / t.elapsed().as_secs_f64();
    let (p50, p99) = p50_p99(v);
    (ka, fr, p50, p99)
}

/// Networking on the bare-metal target: the same `echo` and `httpd` on the
/// `tcpip` stack over the same TAP device, served by `weft run` (baseline)
/// and by `weft boot` (virtio-net in the kernel under QEMU TCG), one after
/// the other in one run. Needs root, the release `weft` and the kernel.
fn baremetal_net() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("\n(baremetal-net skipped: it needs root for the TAP namespace)");
        return;
    }
    assert!(weft::boot::kernel_path().exists(), "build the kernel first: cargo build -p weft-baremetal --target x86_64-unknown-none --release");
    const ECHO_BYTES: usize = 4 << 20;
    const ROUNDTRIPS: usize = 500;
    const KEEPALIVE: usize = 500;
    const FRESH: usize = 100;
    let ns = Netns::new("bmbench");
    let echo = scratch("bm-net-echo");
    std::fs::write(
        echo.join("weft.toml"),
        "[app]\ncomponent = \"echo\"\nargs = [\"7\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\ngateway = \"10.0.0.1\"\n",
    )
    .unwrap();
    let httpd = scratch("bm-net-httpd");
    std::fs::write(
        httpd.join("weft.toml"),
        "[app]\ncomponent = \"httpd\"\nargs = [\"80\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n\n[stack]\nnet = \"service\"\nip = \"10.0.0.2/24\"\ngateway = \"10.0.0.1\"\n",
    )
    .unwrap();
    let targets: [(&str, &[&str]); 3] = [
        ("`weft run` (Linux, baseline)", &["run"]),
        ("`weft boot`, `-M microvm`", &["boot", "--machine", "microvm"]),
        ("`weft boot`, `-M q35`", &["boot", "--machine", "q35"]),
    ];
    // `weft run|boot dir …` inside the namespace.
    let spawn = |args: &[&str]| {
        weft_cmd(Some(&ns))
            .args(args)
            .env("WEFT_CACHE_DIR", root().join("target/bench-scratch/cache"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    println!("\n### Networking on bare metal: `tcpip` over TAP, `weft boot` (QEMU TCG, virtio-net) vs `weft run`\n");
    let mut echo_rows = Vec::new();
    let mut http_rows = Vec::new();
    for (name, verb) in targets {
        let dir = echo.to_str().unwrap().to_string();
        let args: Vec<&str> = [verb[0], dir.as_str()].into_iter().chain(verb[1..].iter().copied()).collect();
        let child = spawn(&args);
        let (mb, (p50, p99)) = in_ns(Some(&ns), || {
            let _ = echo_throughput("10.0.0.2:7", 64 << 10); // warm up: ARP, TCG translation
            (echo_throughput("10.0.0.2:7", ECHO_BYTES), echo_latency("10.0.0.2:7", ROUNDTRIPS))
        });
        ns.stop(child);
        echo_rows.push((name, mb, p50, p99));
        let dir = httpd.to_str().unwrap().to_string();
        let args: Vec<&str> = [verb[0], dir.as_str()].into_iter().chain(verb[1..].iter().copied()).collect();
        let child = spawn(&args);
        let r = in_ns(Some(&ns), || {
            let _ = httpd_rates("10.0.0.2:80", 20, 5); // warm up
            httpd_rates("10.0.0.2:80", KEEPALIVE, FRESH)
        });
        ns.stop(child);
        http_rows.push((name, r));
    }
    println!("| echo server | MiB/s ({} MiB) | vs `weft run` | p50 µs | p99 µs |", ECHO_BYTES >> 20);
    println!("|---|---:|---:|---:|---:|");
    let base = echo_rows[0].1;
    for (name, mb, p50, p99) in &echo_rows {
        println!("| {name} | {mb:.2} | {:.2}x | {p50:.0} | {p99:.0} |", mb / base);
    }
    println!("\n| httpd `GET /` | req/s keep-alive ({KEEPALIVE}) | vs `weft run` | req/s new connection each ({FRESH}) | vs `weft run` | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (bk, bf) = (http_rows[0].1.0, http_rows[0].1.1);
    for (name, (ka, fr, p50, p99)) in &http_rows {
        println!("| {name} | {ka:.0} | {:.2}x | {fr:.0} | {:.2}x | {p50:.0} | {p99:.0} |", ka / bk, fr / bf);
    }
}
