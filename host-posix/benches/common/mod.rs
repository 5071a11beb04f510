//! Helpers shared by the benches (`mod common;` in each; a folder, so cargo
//! does not take it for a bench of its own).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store};
use weft::run;
use weft_runtime::link::{Host, Limits, Unikernel};
use weft_runtime::plan::Plan;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// An empty folder `target/bench-scratch/<name>`.
pub fn scratch(name: &str) -> PathBuf {
    let d = root().join("target/bench-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The release `weft`, the one the benches time.
pub fn release_weft() -> PathBuf {
    let w = root().join("target/release/weft");
    assert!(w.exists(), "build it first: cargo build --release -p weft");
    w
}

/// The release `weft`, inside `ns` when given.
pub fn weft_cmd(ns: Option<&Netns>) -> Command {
    match ns {
        Some(ns) => ns.cmd(release_weft()),
        None => Command::new(release_weft()),
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// (p50, p99) of `v`.
pub fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// Time from spawning a process to the first byte on its stdout, and how
/// the process then exited.
pub fn first_output(cmd: &mut Command) -> (Duration, ExitStatus) {
    let t = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut b = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut b).unwrap();
    let d = t.elapsed();
    (d, child.wait().unwrap())
}

// --- In-process unikernels ---------------------------------------------------

/// A console that keeps what the app wrote.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl weft_runtime::Console for Capture {
    fn write(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

pub struct Quiet;
impl weft_runtime::Log for Quiet {
    fn append(&mut self, _: &str, _: &str, _: &[(String, String)]) {}
}

/// A planned, linked unikernel, ready to instantiate.
pub struct Fixture {
    pub engine: Engine,
    pub plan: Plan,
    pub dir: cap_std::fs::Dir,
    pub unikernel: Unikernel,
}

impl Fixture {
    /// The unikernel of `dir/weft.toml` on `engine`.
    pub fn open(engine: &Engine, dir: &Path) -> Fixture {
        let (plan, d) = run::plan(&dir.join("weft.toml"), engine).unwrap();
        let unikernel = Unikernel::new(engine, plan.wiring.clone(), &plan.app.component, &run::components(&plan)).unwrap();
        Fixture { engine: engine.clone(), plan, dir: d, unikernel }
    }

    pub fn store(&self, console: &Capture) -> Store<Host> {
        let mut leaves = run::leaves(&self.plan, &self.dir).unwrap().0;
        leaves.console = Box::new(console.clone());
        leaves.log = Box::new(Quiet);
        let limits = Limits { memory: 1 << 30, timeout: None, epoch_tick: 0, fuel: None };
        Store::new(&self.engine, Host::new(leaves, limits))
    }

    /// µs to instantiate (on a fresh store), and µs of the whole cycle: a
    /// new store, instantiation, and dropping the store (which hands the
    /// instances' slots back to the pool).
    pub fn instantiate_us(&self, console: &Capture) -> (f64, f64) {
        let t0 = Instant::now();
        let mut store = self.store(console);
        let t = Instant::now();
        let app = self.unikernel.instantiate(&mut store).unwrap();
        let d = t.elapsed();
        std::hint::black_box(app);
        drop(store);
        (d.as_secs_f64() * 1e6, t0.elapsed().as_secs_f64() * 1e6)
    }

    /// Instantiates and runs once with `args`; returns the console output.
    pub fn run<S: Into<String>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let console = Capture::default();
        let mut store = self.store(&console);
        let app = self.unikernel.instantiate(&mut store).unwrap();
        let code = app.run(&mut store, args.into_iter().map(Into::into).collect()).unwrap();
        let out = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
        assert_eq!(code, 0, "{out}");
        out
    }
}

// --- Network namespaces and TCP clients -------------------------------------

/// `ip args…`, which must succeed.
pub fn ip(args: &[&str]) {
    assert!(Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
}

/// A network namespace `weft-<tag>-<pid>` with `tap0` at 10.0.0.1/24,
/// removed on drop. Needs root.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("weft-{tag}-{}", std::process::id());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["-n", &name, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        ip(&["-n", &name, "addr", "add", "10.0.0.1/24", "dev", "tap0"]);
        ip(&["-n", &name, "link", "set", "tap0", "up"]);
        Netns(name)
    }

    /// `program` run inside the namespace.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).arg(program);
        c
    }

    /// Kills `weft` and waits until tap0 is free (QEMU exits with `weft boot`).
    pub fn stop(&self, child: Child) {
        kill(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            let o = Command::new("ip").args(["-n", &self.0, "link", "show", "tap0"]).output().unwrap();
            if String::from_utf8_lossy(&o.stdout).contains("NO-CARRIER") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Kills a spawned server and waits for it.
pub fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `f` on a thread that has entered `ns` (if any).
pub fn in_ns<T: Send + 'static>(ns: Option<&Netns>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.map(|ns| format!("/var/run/netns/{}", ns.0));
    std::thread::spawn(move || {
        if let Some(path) = path {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only, with a valid fd.
            assert_eq!(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns {path}");
        }
        f()
    })
    .join()
    .unwrap()
}

/// Connects, retrying while the server starts.
pub fn connect(addr: &str) -> TcpStream {
    let t = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500)) {
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            return s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "cannot connect to {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// MiB/s of `bytes` echoed (written in 64 KiB pieces while reading back).
pub fn echo_throughput(addr: &str, bytes: usize) -> f64 {
    let s = connect(addr);
    let mut r = s.try_clone().unwrap();
    let t = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut s = s;
        let chunk = vec![0x5a; 64 << 10];
        let mut sent = 0;
        while sent < bytes {
            let n = chunk.len().min(bytes - sent);
            s.write_all(&chunk[..n]).unwrap();
            sent += n;
        }
        s
    });
    let mut buf = vec![0; 64 << 10];
    let mut got = 0;
    while got < bytes {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "echo closed early after {got} bytes");
        got += n;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(writer.join().unwrap());
    bytes as f64 / (1 << 20) as f64 / secs
}

/// (p50, p99) µs of `n` 64-byte echo round trips on one connection.
pub fn echo_latency(addr: &str, n: usize) -> (f64, f64) {
    let mut s = connect(addr);
    let (msg, mut buf) = ([7u8; 64], [0u8; 64]);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            s.write_all(&msg).unwrap();
            s.read_exact(&mut buf).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    p50_p99(v)
}
