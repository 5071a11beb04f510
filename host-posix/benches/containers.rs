//! Containers through containerd: weft's shim (`containerd-shim-weft-v1`,
//! runtime `io.containerd.weft.v1`) against runc (containerd's default
//! runtime `io.containerd.runc.v2`, Debian's `runc`), in one run.
//!
//!     cargo build --release -p containerd-shim-weft -p weft
//!     cargo bench -p weft --bench containers              # 20 rounds, N = 1 and 50
//!     cargo bench -p weft --bench containers -- 10 20     # 10 rounds, N = 1 and 20
//!
//! A containerd of the bench's own (host-posix/tests/common/containerd.rs,
//! the tests' own code: its root, state and sockets under
//! `target/bench-scratch/containers/`, a private mount namespace with a tmpfs
//! on `/run/containerd`, the release shim's folder on its PATH), as root.
//!
//! 1. **Start**: `ctr run --rm` of `examples/hello` built by `weft build
//!    --target oci` (with `--precompile all`, and with `none`: the shim
//!    compiles the app at every start) against `ctr run --rm` of a static
//!    native hello (rustc, `+crt-static`) in an image built the same way:
//!    an OCI image-layout tar whose one uncompressed tar layer holds the
//!    binary, the binary its entrypoint. Time from spawning `ctr run` to the
//!    first byte of the container's stdout, and to `ctr`'s exit (the
//!    container deleted). Rounds alternate the kinds, after two warm-up runs
//!    of each; min / median / max and the median's ratio to runc's.
//! 2. **Memory**: N idle containers of each kind started detached (`ctr run
//!    -d`): weft running `components/tests/idle` (parked in `wait-until` an
//!    hour ahead; image with precompiled code), runc running the same static
//!    native binary sleeping an hour. With all N running (and a settle time),
//!    the sum over every process of each container — its shim and the
//!    shim's descendants, which include the container's processes — of PSS
//!    and RSS (`/proc/PID/smaps_rollup`), per container; and, as a
//!    cross-check, the host's `MemAvailable` (its drop when they start and
//!    its rise when they are removed, averaged), the kernel's own part of it
//!    (stacks, page tables, unreclaimable slab) and containerd's RSS growth.
//!    Every container is killed and deleted afterwards, also when a step
//!    fails, and the private containerd with its shims.
//!
//! Results and the command are recorded in docs/benchmarks.md ("Containers").

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use weft_runtime::cache::{hex, sha256};

mod common;
use common::{median, release_weft, root, scratch};

// The tests' containerd (host-posix/tests/common/containerd.rs), with the
// two things it takes from the tests' `common` module besides `scratch`.
#[allow(dead_code)]
#[path = "../tests/common/containerd.rs"]
mod containerd;
use containerd::{Containerd, WEFT as WEFT_RUNTIME, checked, tool};

#[allow(dead_code)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn output(o: std::process::Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The native program: `hello` prints a line; `hello idle` sleeps an hour.
const NATIVE_SRC: &str = r#"use std::io::Write;
fn main() {
    if std::env::args().nth(1).is_some_and(|a| a == "idle") {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        return;
    }
    std::io::stdout().write_all(b"Hello from a native binary!\n").unwrap();
}
"#;

/// One kind of container: how `ctr run` starts it.
struct Kind {
    label: &'static str,
    /// `None`: containerd's default, runc.
    runtime: Option<&'static str>,
    image: &'static str,
    /// What its stdout must hold (start runs).
    expect: &'static str,
}

const WEFT_AOT: Kind = Kind { label: "weft, precompiled (`--precompile all`)", runtime: Some(WEFT_RUNTIME), image: "bench/weft-hello:aot", expect: "Hello from weft!" };
const WEFT_JIT: Kind = Kind { label: "weft, compiled at start (`--precompile none`)", runtime: Some(WEFT_RUNTIME), image: "bench/weft-hello:jit", expect: "Hello from weft!" };
const RUNC: Kind = Kind { label: "runc, static native hello (baseline)", runtime: None, image: "bench/native-hello:1", expect: "Hello from a native binary!" };
const WEFT_IDLE: Kind = Kind { label: "weft: `idle` app (precompiled)", runtime: Some(WEFT_RUNTIME), image: "bench/weft-idle:1", expect: "" };
const RUNC_IDLE: Kind = Kind { label: "runc: static native binary sleeping (baseline)", runtime: None, image: "bench/native-idle:1", expect: "" };

fn main() {
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().copied().unwrap_or(20);
    let many = nums.get(1).copied().unwrap_or(50);

    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "containerd needs root: run the bench as root");
    let weft = release_weft();
    // The release shims, beside the release `weft` (the containerd's PATH).
    let shim = root().join("target/release/containerd-shim-weft-v1");
    for s in [&shim, &root().join("target/release/containerd-shim-weft-vm-v1")] {
        assert!(s.is_file(), "{} is missing: build the release shims first: cargo build --release -p containerd-shim-weft", s.display());
    }
    for t in ["containerd", "ctr", "runc", "containerd-shim-runc-v2", "unshare", "rustc"] {
        tool(t);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("weft containers ({cores} cores; {}; {})", first_line(Command::new("containerd").arg("--version")), first_line(Command::new("runc").arg("--version")));
    println!("load average: {}", loadavg());
    println!("shim: {} ({:.1} MiB)", shim.display(), shim.metadata().unwrap().len() as f64 / (1 << 20) as f64);

    // --- Images -----------------------------------------------------------
    let dir = scratch("containers-images");
    let build = |manifest: &Path, precompile: &str, tag: &str| -> PathBuf {
        let out = dir.join(format!("{}.tar", tag.replace(['/', ':'], "-")));
        let o = Command::new(&weft)
            .args(["build", "--target", "oci", "--precompile", precompile, "--tag", tag, "-o"])
            .arg(&out)
            .arg(manifest)
            .output()
            .unwrap();
        assert!(o.status.success(), "weft build {tag} failed:\n{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let hello = root().join("examples/hello");
    let idle_dir = dir.join("idle");
    std::fs::create_dir_all(&idle_dir).unwrap();
    let idle_wasm = root().join("components/target/wasm32-wasip2/release/idle.wasm");
    assert!(idle_wasm.is_file(), "{} is missing: building weft (host-posix/build.rs) makes it", idle_wasm.display());
    std::fs::copy(&idle_wasm, idle_dir.join("idle.wasm")).unwrap();
    std::fs::write(idle_dir.join("weft.toml"), "[app]\ncomponent = \"idle.wasm\"\nargs = [\"3600\"]\n").unwrap();
    let native = native_binary(&dir);
    let native_size = native.len();
    let mut images = vec![
        build(&hello, "all", WEFT_AOT.image),
        build(&hello, "none", WEFT_JIT.image),
        build(&idle_dir, "all", WEFT_IDLE.image),
    ];
    for (tag, entrypoint) in [(RUNC.image, vec!["/hello"]), (RUNC_IDLE.image, vec!["/hello", "idle"])] {
        let out = dir.join(format!("{}.tar", tag.replace(['/', ':'], "-")));
        std::fs::write(&out, native_image(tag, "hello", &native, &entrypoint)).unwrap();
        images.push(out);
    }
    for i in &images {
        println!("image {} ({:.1} KiB)", i.file_name().unwrap().to_string_lossy(), i.metadata().unwrap().len() as f64 / 1024.0);
    }
    println!("native binary: {:.1} KiB (static, stripped)", native_size as f64 / 1024.0);

    // --- containerd ---------------------------------------------------------
    let c = Containerd::start("containers");
    for i in &images {
        c.import(i);
    }
    let mut live = Live { c: &c, ids: Vec::new() };

    // --- 1. Start to first output ---------------------------------------------
    let kinds = [&WEFT_AOT, &RUNC, &WEFT_JIT];
    let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); kinds.len()];
    let mut lost = vec![0usize; kinds.len()];
    let mut serial = 0;
    let mut run_one = |i: usize, keep: bool| {
        for _ in 0..5 {
            serial += 1;
            match timed_run(&c, kinds[i], &format!("start-{serial}")) {
                Some((first, exit)) => {
                    if keep {
                        times[i].0.push(first.as_secs_f64() * 1e3);
                        times[i].1.push(exit.as_secs_f64() * 1e3);
                    }
                    return;
                }
                None => lost[i] += 1,
            }
        }
        panic!("{}: five runs in a row printed nothing", kinds[i].label);
    };
    for _ in 0..2 {
        for i in 0..kinds.len() {
            run_one(i, false);
        }
    }
    for r in 0..rounds {
        // Each kind goes first in turn.
        for j in 0..kinds.len() {
            run_one((r + j) % kinds.len(), true);
        }
    }

    // --- 2. Memory of idle containers ------------------------------------------
    let mut mem: Vec<(&Kind, usize, Footprint)> = Vec::new();
    let mut breakdown: Vec<(&Kind, Vec<Proc>)> = Vec::new();
    for n in [1, many] {
        for k in [&WEFT_IDLE, &RUNC_IDLE] {
            let (f, procs) = footprint(&mut live, k, n);
            if n == 1 {
                breakdown.push((k, procs));
            }
            mem.push((k, n, f));
        }
    }
    drop(live);

    // --- Report ---------------------------------------------------------------
    println!("\nload average at the end: {}", loadavg());
    println!("\n### Start: `ctr run --rm` → first byte of the container's stdout, and → `ctr` exits ({rounds} rounds, alternating)\n");
    println!("| container | first output: min | median | max | **ratio to runc (median)** | exit: min | median | max | ratio to runc (median) | runs that printed nothing (run again) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base = &times[1];
    let (base_first, base_exit) = (median(base.0.clone()), median(base.1.clone()));
    for ((k, (first, exit)), lost) in kinds.iter().zip(&times).zip(&lost) {
        let stats = |v: &Vec<f64>| {
            let m = median(v.clone());
            let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = v.iter().cloned().fold(0.0, f64::max);
            (min, m, max)
        };
        let (a, b, cc) = stats(first);
        let (d, e, f) = stats(exit);
        println!(
            "| {} | {a:.1} ms | {b:.1} ms | {cc:.1} ms | **{:.2}×** | {d:.1} ms | {e:.1} ms | {f:.1} ms | {:.2}× | {lost} |",
            k.label,
            b / base_first,
            e / base_exit
        );
    }

    println!("\n### Memory: N idle containers started with `ctr run -d`, per container\n");
    println!("| container | N | processes per container | **PSS per container** | of it anonymous | RSS per container | MemAvailable drop per container | of it kernel: stacks + page tables + slab | containerd's RSS growth per container | **PSS ratio weft/runc** |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (k, n, f) in &mem {
        let runc = mem.iter().find(|(k2, n2, _)| k2.runtime.is_none() && n2 == n).map(|(_, _, f)| f.pss).unwrap_or(f64::NAN);
        let nn = *n as f64;
        println!(
            "| {} | {n} | {:.1} | **{}** | {} | {} | {} | {} | {} | {} |",
            k.label,
            f.procs as f64 / nn,
            mib(f.pss / nn),
            mib(f.pss_anon / nn),
            mib(f.rss / nn),
            mib(f.avail_drop / nn),
            mib(f.kernel / nn),
            mib(f.containerd_growth / nn),
            if k.runtime.is_some() { format!("**{:.2}×**", f.pss / runc) } else { "baseline".into() }
        );
    }

    println!("\n### The processes of one idle container (N = 1)\n");
    println!("| container | process (pid) | RSS | PSS | of it anonymous | file-backed | threads |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (k, procs) in &breakdown {
        for p in procs {
            println!("| {} | `{}` ({}) | {} | {} | {} | {} | {} |", k.label, p.comm, p.pid, mib(p.rss), mib(p.pss), mib(p.pss_anon), mib(p.pss_file), p.threads);
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string()).unwrap_or_default()
}

fn mib(bytes: f64) -> String {
    if bytes.abs() < 1024.0 * 1024.0 { format!("{:.0} KiB", bytes / 1024.0) } else { format!("{:.2} MiB", bytes / (1024.0 * 1024.0)) }
}

// --- The native baseline's image ------------------------------------------------

/// The static native program, built with rustc (+crt-static, stripped).
fn native_binary(dir: &Path) -> Vec<u8> {
    let src = dir.join("hello.rs");
    let out = dir.join("hello");
    std::fs::write(&src, NATIVE_SRC).unwrap();
    checked(
        Command::new("rustc")
            .args(["--edition", "2021", "-C", "opt-level=2", "-C", "target-feature=+crt-static", "-C", "strip=symbols", "--target", "x86_64-unknown-linux-gnu", "-o"])
            .arg(&out)
            .arg(&src),
    );
    std::fs::read(&out).unwrap()
}

/// A tar header with nothing from the build machine in it (as weft::oci's).
fn header(kind: tar::EntryType, mode: u32, size: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// An OCI image-layout tar laid out as `weft build --target oci` lays one
/// out (docs/oci.md): one uncompressed tar layer holding `/name` (mode
/// 0755), `entrypoint` its entrypoint, linux/amd64. Reproducible.
fn native_image(tag: &str, name: &str, binary: &[u8], entrypoint: &[&str]) -> Vec<u8> {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut blob = |bytes: Vec<u8>| {
        let digest = format!("sha256:{}", hex(&sha256(&bytes)));
        let size = bytes.len();
        blobs.insert(digest.clone(), bytes);
        (digest, size)
    };
    let mut layer = tar::Builder::new(Vec::new());
    layer.append_data(&mut header(tar::EntryType::Regular, 0o755, binary.len()), name, binary).unwrap();
    let (layer_digest, layer_size) = blob(layer.into_inner().unwrap());
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": { "Entrypoint": entrypoint, "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    });
    let (config_digest, config_size) = blob(serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size }],
    });
    let (manifest_digest, manifest_size) = blob(serde_json::to_vec(&manifest).unwrap());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    let mut b = tar::Builder::new(Vec::new());
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]| {
        b.append_data(&mut header(tar::EntryType::Regular, 0o644, bytes.len()), path, bytes).unwrap();
    };
    file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    file(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    for folder in ["blobs/", "blobs/sha256/"] {
        b.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), folder, std::io::empty()).unwrap();
    }
    for (digest, bytes) in &blobs {
        file(&mut b, &format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap()), bytes);
    }
    b.into_inner().unwrap()
}

// --- Start ---------------------------------------------------------------------

/// `ctr run --rm` of `k` as container `id`: (spawn → first byte on its
/// stdout, spawn → `ctr` exited), or `None` when `ctr` exited 0 having
/// printed nothing (containerd 1.6 sometimes drops a short-lived runc
/// container's output: the caller counts it and runs again). Fails on
/// a wrong output or exit.
fn timed_run(c: &Containerd, k: &Kind, id: &str) -> Option<(Duration, Duration)> {
    let fifo = c.dir.join("fifo");
    let mut args = vec!["run", "--rm"];
    if let Some(r) = k.runtime {
        args.extend(["--runtime", r]);
    }
    args.extend(["--fifo-dir", fifo.to_str().unwrap(), k.image, id]);
    let mut cmd = c.ctr(&args);
    let t = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut out = vec![0u8; 1];
    let got = stdout.read(&mut out).unwrap_or(0);
    let first = t.elapsed();
    out.truncate(got);
    stdout.read_to_end(&mut out).unwrap();
    let status = child.wait().unwrap();
    let exit = t.elapsed();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    if status.success() && out.is_empty() && err.is_empty() {
        return None;
    }
    let out = String::from_utf8_lossy(&out);
    assert!(status.success() && out.contains(k.expect), "{} ({id}): {status}\nstdout:\n{out}\nstderr:\n{err}", k.label);
    Some((first, exit))
}

// --- Memory --------------------------------------------------------------------

/// Containers started detached, killed and deleted when dropped (a failed
/// step's too).
struct Live<'a> {
    c: &'a Containerd,
    ids: Vec<String>,
}

impl Live<'_> {
    fn start(&mut self, k: &Kind, id: &str) {
        let fifo = self.c.dir.join("fifo");
        let mut args = vec!["run", "-d", "--null-io"];
        if let Some(r) = k.runtime {
            args.extend(["--runtime", r]);
        }
        args.extend(["--fifo-dir", fifo.to_str().unwrap(), k.image, id]);
        self.ids.push(id.to_string());
        checked(&mut self.c.ctr(&args));
    }

    /// Waits until every live container's task is RUNNING.
    fn wait_running(&self) {
        let t = Instant::now();
        loop {
            let ls = checked(&mut self.c.ctr(&["tasks", "ls"]));
            let running: Vec<&str> = ls.lines().filter(|l| l.split_whitespace().nth(2) == Some("RUNNING")).filter_map(|l| l.split_whitespace().next()).collect();
            if self.ids.iter().all(|id| running.contains(&id.as_str())) {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(120), "not every task is running after 2 minutes:\n{ls}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn clear(&mut self) {
        for id in &self.ids {
            let _ = self.c.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        for id in std::mem::take(&mut self.ids) {
            let t = Instant::now();
            while !self.c.ctr(&["tasks", "delete", "-f", &id]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
                let gone = self.c.ctr(&["tasks", "ls", "-q"]).output().is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).lines().any(|l| l == id));
                if gone || t.elapsed() > Duration::from_secs(10) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.c.ctr(&["containers", "delete", &id]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What N containers of a kind cost together.
#[derive(Default)]
struct Footprint {
    procs: usize,
    pss: f64,
    pss_anon: f64,
    rss: f64,
    avail_drop: f64,
    /// The growth of the kernel's stacks, page tables and unreclaimable
    /// slab (host-wide, as MemAvailable).
    kernel: f64,
    containerd_growth: f64,
}

struct Proc {
    pid: u32,
    comm: String,
    threads: String,
    rss: f64,
    pss: f64,
    pss_anon: f64,
    pss_file: f64,
}

/// Starts `n` idle containers of `k`, measures them, removes them; also the
/// processes of the first container.
fn footprint(live: &mut Live, k: &Kind, n: usize) -> (Footprint, Vec<Proc>) {
    let tag = if k.runtime.is_some() { "weft" } else { "runc" };
    settle();
    let (avail0, kernel0) = meminfo();
    let containerd0 = containerd_pid(live.c).map_or(0.0, |p| proc_mem(p).map_or(0.0, |m| m.rss));
    for i in 0..n {
        live.start(k, &format!("idle-{tag}-{n}-{i}"));
    }
    live.wait_running();
    // The apps park (weft loads the image's code and instantiates after the
    // task reports RUNNING).
    std::thread::sleep(Duration::from_secs(3));
    settle();
    let table = processes();
    let tasks: HashMap<String, u32> = checked(&mut live.c.ctr(&["tasks", "ls"]))
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect();
    let mut f = Footprint::default();
    let mut first = Vec::new();
    for (i, id) in live.ids.iter().enumerate() {
        let pids = container_processes(live.c, &table, &tasks, id);
        assert!(pids.len() >= 2, "container {id}: expected its shim and its process, found pids {pids:?}");
        for &pid in &pids {
            let m = proc_mem(pid).unwrap_or_else(|| panic!("pid {pid} of {id} went away"));
            f.procs += 1;
            f.pss += m.pss;
            f.pss_anon += m.pss_anon;
            f.rss += m.rss;
            if i == 0 {
                first.push(m);
            }
        }
    }
    let (avail1, kernel1) = meminfo();
    f.containerd_growth = containerd_pid(live.c).map_or(0.0, |p| proc_mem(p).map_or(0.0, |m| m.rss)) - containerd0;
    if k.runtime.is_some() && n == 1 {
        // For a closer look (docs/benchmarks.md): the shim's and the
        // container process's mappings.
        for p in &first {
            let comm: String = p.comm.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
            let _ = std::fs::copy(format!("/proc/{}/smaps", p.pid), live.c.dir.parent().unwrap().join(format!("containers-{comm}-{}.smaps", p.pid)));
        }
    }
    live.clear();
    // The drop at start and the rise at removal, averaged: a trend of the
    // shared machine's other processes over the window cancels out.
    settle();
    let (avail2, kernel2) = meminfo();
    f.avail_drop = ((avail0 - avail1) + (avail2 - avail1)) / 2.0;
    f.kernel = ((kernel1 - kernel0) + (kernel1 - kernel2)) / 2.0;
    (f, first)
}

/// Lets the kernel and containerd finish what earlier steps left (the
/// deleted containers' snapshots, deferred frees): waits until MemAvailable
/// moves by less than 1 MiB in half a second (at most 15 s).
fn settle() {
    let t = Instant::now();
    let mut last = meminfo().0;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = meminfo().0;
        if (now - last).abs() < (1 << 20) as f64 || t.elapsed() > Duration::from_secs(15) {
            return;
        }
        last = now;
    }
}

/// The host's MemAvailable and the kernel's own memory that no process's
/// PSS counts: (MemAvailable, KernelStack + PageTables + SUnreclaim), bytes.
fn meminfo() -> (f64, f64) {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    let get = |k: &str| {
        let line = m.lines().find(|l| l.split(':').next() == Some(k)).unwrap_or_else(|| panic!("no {k} in /proc/meminfo"));
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() * 1024.0
    };
    (get("MemAvailable"), get("KernelStack") + get("PageTables") + get("SUnreclaim"))
}

/// Every process: pid → (ppid, cmdline split at NULs).
fn processes() -> HashMap<u32, (u32, Vec<String>)> {
    let mut table = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // After the `(comm)`: state, ppid.
        let Some(ppid) = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().nth(1)).and_then(|p| p.parse().ok()) else { continue };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        table.insert(pid, (ppid, args));
    }
    table
}

/// A container's processes: its shim (the process started with this
/// containerd's address and `-id ID`) and every descendant of the shim
/// (runc's container process is reparented to its shim; runwasi's is
/// the shim's child), plus the task's pid should it be elsewhere.
fn container_processes(c: &Containerd, table: &HashMap<u32, (u32, Vec<String>)>, tasks: &HashMap<String, u32>, id: &str) -> Vec<u32> {
    let sock = c.sock.to_str().unwrap();
    let mut pids: Vec<u32> = table
        .iter()
        .filter(|(_, (_, args))| args.iter().any(|a| a == sock) && args.windows(2).any(|w| w[0] == "-id" && w[1] == id))
        .map(|(&p, _)| p)
        .collect();
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for (&p, (pp, _)) in table {
            if *pp == parent && !pids.contains(&p) {
                pids.push(p);
            }
        }
        i += 1;
    }
    if let Some(&pid) = tasks.get(id)
        && !pids.contains(&pid)
    {
        pids.push(pid);
    }
    pids.sort();
    pids
}

fn containerd_pid(c: &Containerd) -> Option<u32> {
    let config = c.dir.join("config.toml");
    let config = config.to_str().unwrap();
    processes().into_iter().find(|(_, (_, args))| args.first().is_some_and(|a| a.ends_with("containerd")) && args.iter().any(|a| a == config)).map(|(p, _)| p)
}

fn proc_mem(pid: u32) -> Option<Proc> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim().to_string();
    // Its threads, by name: `name ×count`.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_string();
        *names.entry(name).or_default() += 1;
    }
    let threads = names.iter().map(|(n, c)| if *c > 1 { format!("`{n}` ×{c}") } else { format!("`{n}`") }).collect::<Vec<_>>().join(", ");
    let mut p = Proc { pid, comm, threads, rss: 0.0, pss: 0.0, pss_anon: 0.0, pss_file: 0.0 };
    for line in rollup.lines() {
        let mut f = line.split_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next()) else { continue };
        let v = v.parse::<f64>().unwrap_or(0.0) * 1024.0;
        match k {
            "Rss:" => p.rss = v,
            "Pss:" => p.pss = v,
            "Pss_Anon:" => p.pss_anon = v,
            "Pss_File:" => p.pss_file = v,
            _ => {}
        }
    }
    Some(p)
}
