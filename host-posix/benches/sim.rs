//! Simulation, record and replay (issue 10's numbers), each against a
//! baseline measured in the same run (this machine is shared and noisy:
//! compare ratios, not absolute numbers). Spawns the release `weft`, the
//! way a user runs it:
//!
//!     cargo build --release -p weft && cargo bench -p weft --bench sim
//!     cargo bench -p weft --bench sim -- sleep     # one group: sleep | explore | record | httpd | size
//!
//! - `sleep`: `examples/sim-sleep` (a stock Rust program sleeping 3600 s) as a
//!   whole `weft run` process against the same program sleeping 0 s; and the
//!   same two in-process (`weft::sim::Sim::run`), which shows the sleep's own cost.
//! - `explore`: `weft explore --runs 2000` of `examples/sim-kvstore` and
//!   `examples/power-cut`, 2 jobs and 1, against one `weft run --sim` process.
//! - `record`: kvstore `fill 1000` on a `file` disk: `weft run`, `weft run
//!   --record` and `weft replay` of that trace, alternating.
//! - `httpd` (root only: a TAP device in a network namespace): httpd on
//!   `tcpip` serving a fixed number of keep-alive `GET /`, with and without
//!   `--record`, alternating; then `weft replay` of the trace.
//! - `size`: bytes per device call of recorded traces, and the marginal size
//!   of a clock reading.
//!
//! Results and the command are recorded in docs/benchmarks.md, "Simulation".

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use weft_runtime::tape::Tape;

mod common;
use common::*;

/// Alternating rounds of each process comparison.
const ROUNDS: usize = 21;
/// Alternating rounds of the recording-overhead comparisons.
const RECORD_ROUNDS: usize = 21;
/// In-process runs of each sleep variant.
const INPROC: usize = 200;
/// `weft explore --runs`.
const EXPLORE_RUNS: u64 = 2000;
/// Repetitions of each explore configuration (median).
const EXPLORE_REPS: usize = 3;
/// httpd: connections, and keep-alive requests on each.
const HTTP_CONNS: usize = 8;
const HTTP_PER_CONN: usize = 3000;
const HTTP_ROUNDS: usize = 11;

// --- Processes -----------------------------------------------------------

/// A finished `weft` process: wall time from spawn to exit, CPU time (user +
/// system, from wait4), exit code, and what it printed.
struct Proc {
    wall: f64,
    cpu: f64,
    code: i32,
    stdout: String,
    stderr: String,
}

#[allow(clippy::zombie_processes)] // reaped by wait4, for its rusage
fn proc(cmd: &mut Command) -> Proc {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let (code, cpu) = wait4(child.id());
    let wall = t.elapsed().as_secs_f64();
    Proc { wall, cpu, code, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Reaps `pid`: its exit code (-1 if killed) and CPU seconds.
fn wait4(pid: u32) -> (i32, f64) {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 writes it and the status.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut ru) };
    assert_eq!(r, pid as i32, "wait4");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, tv(ru.ru_utime) + tv(ru.ru_stime))
}

fn weft() -> Command {
    Command::new(release_weft())
}

fn ex(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

/// `f` run `n` times for each of `variants`, alternating A B A B …: the
/// results per variant.
fn alternate<T>(n: usize, variants: usize, mut f: impl FnMut(usize) -> T) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..variants).map(|_| Vec::new()).collect();
    for _ in 0..n {
        for (v, into) in out.iter_mut().enumerate() {
            into.push(f(v));
        }
    }
    out
}

/// `x` rounded, with thousands separated: 1,234,567.
fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(s: f64) -> String {
    format!("{:.2} ms", s * 1e3)
}

/// The summary table at the end: measurement, value, baseline, ratio, goal.
struct Summary(Vec<[String; 5]>);

impl Summary {
    fn add(&mut self, what: &str, value: String, baseline: String, ratio: String, goal: String) {
        self.0.push([what.to_string(), value, baseline, ratio, goal]);
    }
}

// --- Time acceleration ------------------------------------------------------

/// A scratch folder holding `wasm` (copied) and a manifest with `toml`.
fn app_dir(name: &str, wasm: &Path, toml: &str) -> PathBuf {
    let d = scratch(name);
    std::fs::copy(wasm, d.join(wasm.file_name().unwrap())).unwrap();
    std::fs::write(d.join("weft.toml"), toml).unwrap();
    d
}

fn sleep(sum: &mut Summary) {
    println!("\n### Time acceleration: `examples/sim-sleep` (stock Rust, `std::thread::sleep(3600 s)` under `[sim]`)\n");
    let hour = ex("sim-sleep");
    let wasm = hour.join("sleep.wasm");
    if !wasm.exists() {
        println!("(skipped: {} is missing; build it with `components/polyglot/build.sh rust`)", wasm.display());
        return;
    }
    let toml = std::fs::read_to_string(hour.join("weft.toml")).unwrap();
    assert!(toml.contains("args = [\"3600\"]"), "examples/sim-sleep sleeps 3600 s");
    let zero = app_dir("sim-sleep-0", &wasm, &toml.replace("args = [\"3600\"]", "args = [\"0\"]"));
    let dirs = [hour.clone(), zero.clone()];
    for d in &dirs {
        let p = proc(weft().arg("run").arg(d)); // warm the AOT cache
        assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    }
    let r = alternate(ROUNDS, 2, |v| {
        let p = proc(weft().arg("run").arg(&dirs[v]));
        assert_eq!(p.code, 0, "{}", p.stderr);
        if v == 0 {
            assert!(p.stdout.contains("slept 3600 s (monotonic), the wall clock moved 3600 s"), "{}", p.stdout);
        }
        p.wall
    });
    let (h, z) = (median(r[0].clone()), median(r[1].clone()));

    // In-process: the run alone, on a planned simulation (no process, no plan, no compile).
    let sims = [weft::sim::Sim::open(&hour.join("weft.toml"), None).unwrap(), weft::sim::Sim::open(&zero.join("weft.toml"), None).unwrap()];
    let mut virt = [0u64; 2];
    let ir = alternate(INPROC, 2, |v| {
        let t = Instant::now();
        let (run, _) = sims[v].run(0, Tape::Off, None, false);
        let d = t.elapsed().as_secs_f64();
        assert_eq!(run.code, 0, "{}", run.tail);
        virt[v] = run.virtual_ns;
        d
    });
    let (ih, iz) = (median(ir[0].clone()), median(ir[1].clone()));
    assert!(virt[0] >= 3_600_000_000_000, "virtual time {} ns", virt[0]);

    println!("| what | `args = [\"3600\"]` | `args = [\"0\"]` (baseline) | ratio | difference: the hour's own cost | 3600 s of virtual time ÷ wall time |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| `weft run examples/sim-sleep`, whole process, median of {ROUNDS} alternating | {} | {} | {:.2}× | {:.2} ms | **{}×** |",
        ms(h),
        ms(z),
        h / z,
        (h - z) * 1e3,
        grouped(3600.0 / h)
    );
    println!(
        "| the run in-process (`Sim::run` on a planned simulation), median of {INPROC} alternating | {:.1} µs | {:.1} µs | {:.2}× | {:.1} µs | {}× |",
        ih * 1e6,
        iz * 1e6,
        ih / iz,
        (ih - iz) * 1e6,
        grouped(3600.0 / ih)
    );
    println!("\n(virtual time of the 3600 s run: {:.6} s; of the 0 s run: {:.6} s)", virt[0] as f64 / 1e9, virt[1] as f64 / 1e9);
    sum.add(
        "time acceleration: `weft run examples/sim-sleep` (3600 s slept)",
        format!("{} wall → {}×", ms(h), grouped(3600.0 / h)),
        format!("same program, 0 s: {}", ms(z)),
        format!("{:.2}×", h / z),
        format!("≥ 3,600× ({})", if 3600.0 / h >= 3600.0 { "met" } else { "**not met**" }),
    );
}

// --- Exploration throughput ----------------------------------------------------

/// runs/s from explore's summary line `runs      2000 in 0.55s on 2 jobs: 3653 runs/s`.
fn explore_rate(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("runs ")).unwrap_or_else(|| panic!("no runs line: {out}"));
    line.rsplit(':').next().unwrap().trim().strip_suffix(" runs/s").unwrap().parse().unwrap()
}

fn explore(sum: &mut Summary) {
    println!("\n### Exploration throughput: `weft explore MANIFEST --runs {EXPLORE_RUNS} --jobs J` against one `weft run --sim MANIFEST` process\n");
    println!("| manifest | `weft run --sim`, one process (baseline) | explore `--jobs 2`: runs/s as printed | whole `weft explore` process | per run vs a process | `--jobs 1`: runs/s as printed | whole process | per run vs a process | jobs 2 ÷ jobs 1 | failures |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let out = root().join("target/bench-scratch/sim-explore");
    for name in ["sim-kvstore", "power-cut"] {
        let m = ex(name);
        let warm = proc(weft().arg("run").arg("--sim").arg(&m));
        assert!(warm.code == 0 || warm.code == 1, "{}", warm.stderr);
        let base = median((0..ROUNDS).map(|_| proc(weft().arg("run").arg("--sim").arg(&m)).wall).collect());
        let mut failures = String::new();
        let r = alternate(EXPLORE_REPS, 2, |v| {
            let _ = std::fs::remove_dir_all(&out);
            let jobs = if v == 0 { "2" } else { "1" };
            let p = proc(weft().arg("explore").arg(&m).args(["--runs", &EXPLORE_RUNS.to_string(), "--jobs", jobs, "--out"]).arg(&out));
            assert!(p.code == 0 || p.code == 1, "{}{}", p.stdout, p.stderr);
            failures = p.stdout.lines().find(|l| l.starts_with("failures")).unwrap_or("").trim_start_matches("failures").trim().to_string();
            (explore_rate(&p.stdout), EXPLORE_RUNS as f64 / p.wall)
        });
        let cell = |v: &Vec<(f64, f64)>| {
            let printed = median(v.iter().map(|x| x.0).collect());
            let whole = median(v.iter().map(|x| x.1).collect());
            (printed, whole)
        };
        let (p2, w2) = cell(&r[0]);
        let (p1, w1) = cell(&r[1]);
        println!(
            "| `examples/{name}` | {} ({:.0} runs/s) | **{p2:.0}** | {w2:.0} runs/s | {:.0}× cheaper | {p1:.0} | {w1:.0} runs/s | {:.0}× cheaper | {:.2}× | {failures} |",
            ms(base),
            1.0 / base,
            p2 * base,
            p1 * base,
            p2 / p1
        );
        sum.add(
            &format!("explore `examples/{name}`, 2000 runs, `--jobs 2` (`--jobs 1`)"),
            format!("{p2:.0} ({p1:.0}) runs/s"),
            format!("one `weft run --sim` process: {}", ms(base)),
            format!("{:.0}× ({:.0}×) cheaper per run", p2 * base, p1 * base),
            format!("≥ 500 runs/s ({})", if p2 >= 500.0 { "met" } else { "**not met**" }),
        );
    }
    let _ = std::fs::remove_dir_all(&out);
    println!("\n(runs/s as printed counts the runs only; the whole process adds planning, loading the compiled components and re-running every failing seed with a recorder to write its trace.)");
}

// --- Recording overhead: kvstore on a file disk --------------------------------

/// `trace     FILE (B bytes, N calls, R bytes/call)` of `weft trace show`: (B, N).
fn trace_size(file: &Path) -> (u64, u64) {
    let p = proc(weft().arg("trace").arg("show").arg(file));
    assert_eq!(p.code, 0, "trace show {}: {}", file.display(), p.stderr);
    let first = p.stdout.lines().next().unwrap();
    let inner = first.split_once('(').unwrap().1;
    let mut w = inner.split([',', '(', ')']).map(str::trim);
    let bytes = w.next().unwrap().strip_suffix(" bytes").unwrap().parse().unwrap();
    let calls = w.next().unwrap().strip_suffix(" calls").unwrap().parse().unwrap();
    (bytes, calls)
}

/// The kvstore example (`file` disk) with `fill n` in a scratch folder.
fn kv_dir(n: u32) -> PathBuf {
    let d = scratch(&format!("sim-record-kv-{n}"));
    let toml = std::fs::read_to_string(ex("kvstore").join("weft.toml")).unwrap();
    assert!(toml.contains("args = [\"fill\", \"1000\"]") && toml.contains("size = \"16MiB\""));
    let toml = toml.replace("\"1000\"", &format!("\"{n}\"")).replace("16MiB", if n > 1000 { "64MiB" } else { "16MiB" });
    std::fs::write(d.join("weft.toml"), toml).unwrap();
    d
}

/// Medians of (wall, CPU) seconds per variant: run, record, replay.
struct RecordRound {
    wall: [f64; 3],
    cpu: [f64; 3],
    bytes: u64,
    calls: u64,
}

/// `weft run`, `weft run --record` and `weft replay` of kvstore `fill n` in
/// turn, a fresh image before each; the trace is left in the scratch folder.
fn record_kv(n: u32) -> (RecordRound, PathBuf) {
    let d = kv_dir(n);
    let img = d.join("disk.img");
    let trace = d.join("kv.trace");
    let fresh = || {
        let _ = std::fs::remove_file(&img);
    };
    let out = format!("wrote {n} verified {n} lost 0 corrupt 0");
    fresh();
    assert_eq!(proc(weft().arg("run").arg(&d)).code, 0); // warm
    let r = alternate(RECORD_ROUNDS, 3, |v| {
        fresh();
        let p = match v {
            0 => proc(weft().arg("run").arg(&d)),
            1 => {
                let _ = std::fs::remove_file(&trace);
                proc(weft().arg("run").arg("--record").arg(&trace).arg(&d))
            }
            _ => {
                // The image is gone: the replay reads nothing from a disk.
                let p = proc(weft().arg("replay").arg(&trace));
                assert!(!img.exists(), "a replay created the disk image");
                p
            }
        };
        assert_eq!(p.code, 0, "{}", p.stderr);
        assert_eq!(p.stdout.trim(), out);
        (p.wall, p.cpu)
    });
    let m = |v: usize, i: usize| median(r[v].iter().map(|x| if i == 0 { x.0 } else { x.1 }).collect());
    let (bytes, calls) = trace_size(&trace);
    (RecordRound { wall: [m(0, 0), m(1, 0), m(2, 0)], cpu: [m(0, 1), m(1, 1), m(2, 1)], bytes, calls }, trace)
}

fn record(sum: &mut Summary) -> Option<PathBuf> {
    println!(
        "\n### Recording overhead: kvstore `fill N` on a `file` disk (examples/kvstore; a fresh image each run), {RECORD_ROUNDS} rounds of run / record / replay in turn\n"
    );
    println!("| process | wall, median | ratio | CPU (user + sys), median | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let mut first = None;
    for n in [1000u32, 20000] {
        let (r, trace) = record_kv(n);
        let ([run_w, rec_w, rep_w], [run_c, rec_c, rep_c]) = (r.wall, r.cpu);
        let b = if n == 1000 { "**" } else { "" };
        println!("| `fill {n}`: `weft run` (baseline) | {} | 1.00× | {} | 1.00× |", ms(run_w), ms(run_c));
        println!(
            "| `fill {n}`: `weft run --record FILE` | {} | {b}{:.3}×{b} ({:+.1} %) | {} | {:.3}× ({:+.1} %) |",
            ms(rec_w),
            rec_w / run_w,
            (rec_w / run_w - 1.0) * 100.0,
            ms(rec_c),
            rec_c / run_c,
            (rec_c / run_c - 1.0) * 100.0
        );
        println!(
            "| `fill {n}`: `weft replay FILE` (no disk) | {} | {:.3}× ({b}{:.2}× the recording{b}) | {} | {:.3}× ({:.2}× the recording) |",
            ms(rep_w),
            rep_w / run_w,
            rep_w / rec_w,
            ms(rep_c),
            rep_c / run_c,
            rep_c / rec_c
        );
        println!(
            "| `fill {n}`: the trace | {} bytes, {} calls | | recording: {:+.2} µs CPU per call | |",
            r.bytes,
            r.calls,
            (rec_c - run_c) * 1e6 / r.calls as f64
        );
        if n == 1000 {
            sum.add(
                "recording overhead, kvstore `fill 1000`, `file` disk",
                format!("`--record`: {} ({} CPU)", ms(rec_w), ms(rec_c)),
                format!("`weft run`: {} ({} CPU)", ms(run_w), ms(run_c)),
                format!("{:+.1} % wall ({:+.1} % CPU)", (rec_w / run_w - 1.0) * 100.0, (rec_c / run_c - 1.0) * 100.0),
                format!("≤ 10 % ({})", if rec_w / run_w <= 1.10 { "met" } else { "**not met**" }),
            );
            sum.add(
                "replay of that trace",
                format!("`weft replay`: {} ({} CPU)", ms(rep_w), ms(rep_c)),
                format!("the recording run: {} ({} CPU)", ms(rec_w), ms(rec_c)),
                format!("{:.2}× wall ({:.2}× CPU)", rep_w / rec_w, rep_c / rec_c),
                format!("≤ 1× ({})", if rep_w <= rec_w { "met" } else { "**not met**" }),
            );
            first = Some(trace);
        } else {
            sum.add(
                "recording overhead, kvstore `fill 20000`, `file` disk",
                format!("`--record`: {} ({} CPU)", ms(rec_w), ms(rec_c)),
                format!("`weft run`: {} ({} CPU)", ms(run_w), ms(run_c)),
                format!("{:+.1} % wall ({:+.1} % CPU)", (rec_w / run_w - 1.0) * 100.0, (rec_c / run_c - 1.0) * 100.0),
                "(to tell the fixed cost from the per-call cost)".into(),
            );
        }
    }
    first
}

// --- Recording overhead: httpd keep-alive over TAP -----------------------------

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// Reads one response (head + Content-Length body) from `s` into `buf`.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap().to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).expect("content-length").trim().parse().unwrap();
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).unwrap();
                assert!(n > 0, "httpd closed mid-response");
                buf.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(buf.len(), end + 4 + len, "one request in flight: nothing after the response");
            return;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "httpd closed: {}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `conns` keep-alive connections to `addr` (inside `ns`), each sending
/// `per` `GET /` one after another: requests per second.
fn keepalive(ns: &Netns, addr: &str, conns: usize, per: usize) -> f64 {
    let addr = addr.to_string();
    in_ns(Some(ns), move || {
        let socks: Vec<TcpStream> = (0..conns).map(|_| connect(&addr)).collect();
        let go = Arc::new(Barrier::new(conns + 1));
        let threads: Vec<_> = socks
            .into_iter()
            .map(|mut s| {
                let go = go.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::with_capacity(4096);
                    go.wait();
                    for _ in 0..per {
                        s.write_all(GET).unwrap();
                        read_response(&mut s, &mut buf);
                    }
                })
            })
            .collect();
        go.wait();
        let t = Instant::now();
        for t in threads {
            t.join().unwrap();
        }
        (conns * per) as f64 / t.elapsed().as_secs_f64()
    })
}

/// What the httpd group leaves for the size group.
struct HttpdTrace {
    file: PathBuf,
}

fn httpd(sum: &mut Summary) -> Option<HttpdTrace> {
    let total = HTTP_CONNS * HTTP_PER_CONN;
    println!(
        "\n### Recording overhead: httpd keep-alive on `tcpip` over TAP ({HTTP_CONNS} connections × {HTTP_PER_CONN} `GET /`, one at a time on each; httpd exits after {total} responses), {HTTP_ROUNDS} alternating rounds\n"
    );
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("(skipped: needs root for a network namespace with a TAP device)");
        return None;
    }
    let ns = Netns::new("sim");
    let d = scratch("sim-httpd");
    let trace = d.join("httpd.trace");
    // The examples/httpd wiring (tcpip over tap0), its disk in memory; args: port, then
    // exit after this many responses, so `--record` writes its trace.
    let manifest = format!(
        "[app]\ncomponent = \"httpd\"\nargs = [\"80\", \"{total}\"]\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"16MiB\"\n\n[stack]\ncomponent = \"tcpip\"\nnet = \"service\"\nip = \"10.0.0.2/24\"\ngateway = \"10.0.0.1\"\n"
    );
    std::fs::write(d.join("weft.toml"), manifest).unwrap();
    let addr = "10.0.0.2:80";
    // One server for one load: (client req/s, server CPU µs/req, server process wall s).
    // The child is reaped by wait4, for its rusage.
    #[allow(clippy::zombie_processes)]
    let one = |record: bool| {
        let mut c = weft_cmd(Some(&ns));
        c.arg("run");
        if record {
            let _ = std::fs::remove_file(&trace);
            c.arg("--record").arg(&trace);
        }
        c.arg(&d).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let t = Instant::now();
        let mut child = c.spawn().unwrap();
        let mut err = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let a = addr.to_string();
        in_ns(Some(&ns), move || drop(connect(&a))); // up: a connection that sends nothing
        let rps = keepalive(&ns, addr, HTTP_CONNS, HTTP_PER_CONN);
        let (code, cpu) = wait4(child.id());
        let wall = t.elapsed().as_secs_f64();
        let err = err.join().unwrap();
        assert_eq!(code, 0, "httpd: {err}");
        ns.stop_quietly();
        (rps, cpu * 1e6 / total as f64, wall, err)
    };
    let _ = one(false); // warm the cache (tcpip, httpd)
    let r = alternate(HTTP_ROUNDS, 2, |v| one(v == 1));
    let col = |v: usize, f: fn(&(f64, f64, f64, String)) -> f64| r[v].iter().map(f).collect::<Vec<f64>>();
    let fmt = |v: &[f64], d: usize| v.iter().map(|x| format!("{x:.d$}")).collect::<Vec<_>>().join(", ");
    let (rps0, rps1) = (col(0, |x| x.0), col(1, |x| x.0));
    let (cpu0, cpu1) = (col(0, |x| x.1), col(1, |x| x.1));
    let (a, b) = (median(rps0.clone()), median(rps1.clone()));
    let (ca, cb) = (median(cpu0.clone()), median(cpu1.clone()));
    println!("| server | req/s, the rounds | median | cost | server CPU µs/req (whole process), the rounds | median | cost |");
    println!("|---|---|---:|---:|---|---:|---:|");
    println!("| `weft run` (baseline) | {} | {a:.0} | | {} | {ca:.2} | |", fmt(&rps0, 0), fmt(&cpu0, 2));
    println!(
        "| `weft run --record FILE` | {} | {b:.0} | **{:.1} %** | {} | {cb:.2} | {:+.1} % |",
        fmt(&rps1, 0),
        (1.0 - b / a) * 100.0,
        fmt(&cpu1, 2),
        (cb / ca - 1.0) * 100.0
    );
    let rec_line = r[1].last().unwrap().3.lines().find(|l| l.starts_with("weft: recorded")).unwrap_or("").to_string();
    println!("\n({rec_line})");
    // The replay: no TAP, no client, nothing waits.
    let rep = alternate(3, 1, |_| {
        let p = proc(weft().arg("replay").arg(&trace));
        assert_eq!(p.code, 0, "{}", p.stderr);
        (p.wall, p.cpu)
    });
    let (rw, rc) = (median(rep[0].iter().map(|x| x.0).collect()), median(rep[0].iter().map(|x| x.1).collect()));
    let last = r[1].last().unwrap();
    println!(
        "\n`weft replay` of the last round's trace, median of 3: {:.0} ms wall, {:.0} ms CPU ({:.2} µs/request) against that recording's {:.0} ms wall (from spawn, incl. waiting for the client) and {:.0} ms CPU: **{:.2}×** the recording's CPU",
        rw * 1e3,
        rc * 1e3,
        rc * 1e6 / total as f64,
        last.2 * 1e3,
        last.1 * total as f64 / 1e3,
        rc / (last.1 * total as f64 / 1e6)
    );
    sum.add(
        "recording overhead, httpd keep-alive over TAP",
        format!("`--record`: {b:.0} req/s, {cb:.2} µs CPU/req"),
        format!("`weft run`: {a:.0} req/s, {ca:.2} µs CPU/req"),
        format!("{:.1} % throughput ({:+.1} % CPU)", (1.0 - b / a) * 100.0, (cb / ca - 1.0) * 100.0),
        format!("≤ 15 % ({})", if 1.0 - b / a <= 0.15 { "met" } else { "**not met**" }),
    );
    Some(HttpdTrace { file: trace })
}

trait StopQuietly {
    fn stop_quietly(&self);
}

impl StopQuietly for Netns {
    /// Waits until tap0 is free again (the server exited by itself).
    fn stop_quietly(&self) {
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(10) {
            let o = Command::new("ip").args(["-n", &self.0, "link", "show", "tap0"]).output().unwrap();
            if String::from_utf8_lossy(&o.stdout).contains("NO-CARRIER") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

// --- Trace size ----------------------------------------------------------------

/// Records `weft run [--sim] DIR` into `file`: (bytes, calls).
fn record_size(dir: &Path, file: &Path, sim: bool) -> (u64, u64) {
    let _ = std::fs::remove_file(file);
    let mut c = weft();
    c.arg("run");
    if sim {
        c.arg("--sim");
    }
    let p = proc(c.arg("--record").arg(file).arg(dir));
    assert!(file.exists(), "no trace: {}", p.stderr);
    trace_size(file)
}

fn size(sum: &mut Summary, kv: Option<PathBuf>, httpd: Option<HttpdTrace>) {
    println!("\n### Trace size: bytes per device call (`weft trace show FILE`, the whole file: header with the manifest's text and component hashes included)\n");
    let d = scratch("sim-size");
    println!("| run | trace bytes | device calls | bytes/call |");
    println!("|---|---:|---:|---:|");
    let row = |what: &str, (b, n): (u64, u64)| {
        println!("| {what} | {b} | {n} | {:.1} |", b as f64 / n.max(1) as f64);
    };
    let kv = kv.unwrap_or_else(|| {
        let k = kv_dir(1000);
        let t = d.join("kv.trace");
        record_size(&k, &t, false);
        t
    });
    row("kvstore `fill 1000`, `file` disk (examples/kvstore, fresh image)", trace_size(&kv));
    row("`hello` (examples/hello)", record_size(&ex("hello"), &d.join("hello.trace"), false));
    let py = ex("python-script");
    if py.join("script.wasm").exists() {
        row("`python-script` (examples/python-script: CPython, script.py)", record_size(&py, &d.join("python.trace"), false));
    } else {
        println!("| `python-script`: examples/python-script/script.wasm is missing (`components/polyglot/build.sh python`) | | | |");
    }
    if ex("sim-sleep").join("sleep.wasm").exists() {
        row("`sim-sleep` (3600 s of virtual sleep, `[sim]`)", record_size(&ex("sim-sleep"), &d.join("sleep.trace"), false));
    }
    if let Some(h) = &httpd {
        row(&format!("httpd, {} keep-alive `GET /` over TAP (the last recorded round)", HTTP_CONNS * HTTP_PER_CONN), trace_size(&h.file));
    }

    // The marginal size of a clock reading: N readings more, bytes more.
    println!("\n| clock readings (`monotonic-now` through the `wasi` component) | trace bytes, N readings | baseline bytes | extra calls | bytes per reading |");
    println!("|---|---:|---:|---:|---:|");
    let mut per_reading = Vec::new();
    let wasi_hello = root().join("target/polyglot/wasi-hello.wasm");
    if wasi_hello.exists() {
        for sim in [false, true] {
            let n = 1000;
            let m = |k: u32| format!("[app]\ncomponent = \"wasi-hello.wasm\"\nargs = [\"now\", \"{k}\"]\n");
            let a = app_dir("sim-size-now-n", &wasi_hello, &m(n));
            let big = record_size(&a, &d.join("now-n.trace"), sim);
            let z = app_dir("sim-size-now-0", &wasi_hello, &m(0));
            let small = record_size(&z, &d.join("now-0.trace"), sim);
            let per = (big.0 - small.0) as f64 / (big.1 - small.1) as f64;
            println!(
                "| stock Rust `Instant::now()` (`wasi-hello now {n}` − `now 0`), {} | {} | {} | {} | **{per:.2}** |",
                if sim { "`--sim` (virtual clock, 1 µs a reading)" } else { "system clock" },
                big.0,
                small.0,
                big.1 - small.1
            );
            per_reading.push(per);
        }
    } else {
        println!("| stock Rust: target/polyglot/wasi-hello.wasm is missing (`components/polyglot/build.sh rust`) | | | | |");
    }
    if py.join("script.wasm").exists() {
        // clock_loop.py divides by N: N = 0 fails, so the baseline is N = 1.
        let m = |k: u32| format!("[app]\ncomponent = \"script.wasm\"\nargs = [\"clock_loop.py\", \"{k}\"]\n\n[wasi]\nenv = {{ LANG = \"C.UTF-8\", TZ = \"UTC\" }}\n");
        let dir = scratch("sim-size-py");
        // 19 MB: a hard link where it can be (a symlink would lead outside the manifest's folder).
        if std::fs::hard_link(py.join("script.wasm"), dir.join("script.wasm")).is_err() {
            std::fs::copy(py.join("script.wasm"), dir.join("script.wasm")).unwrap();
        }
        std::fs::write(dir.join("weft.toml"), m(1001)).unwrap();
        let big = record_size(&dir, &d.join("py-n.trace"), false);
        std::fs::write(dir.join("weft.toml"), m(1)).unwrap();
        let small = record_size(&dir, &d.join("py-1.trace"), false);
        let per = (big.0 - small.0) as f64 / (big.1 - small.1) as f64;
        println!(
            "| Python `time.monotonic_ns()` (`clock_loop.py 1001` − `clock_loop.py 1`), system clock | {} | {} | {} | **{per:.2}** |",
            big.0,
            small.0,
            big.1 - small.1
        );
        per_reading.push(per);
    }
    if let Some(max) = per_reading.iter().cloned().reduce(f64::max) {
        sum.add(
            "trace size of a clock reading",
            format!("{max:.2} bytes (the largest above)"),
            "the same program without the readings".into(),
            "(difference ÷ readings)".into(),
            format!("≤ 16 bytes per small call ({})", if max <= 16.0 { "met" } else { "**not met**" }),
        );
    }
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let want = |g: &str| filter.is_empty() || filter.iter().any(|f| f == g);
    println!(
        "weft simulation benchmarks ({}; {} cores; `weft` = target/release/weft)",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut sum = Summary(Vec::new());
    if want("sleep") {
        sleep(&mut sum);
    }
    if want("explore") {
        explore(&mut sum);
    }
    let kv = if want("record") { record(&mut sum) } else { None };
    let httpd = if want("httpd") { httpd(&mut sum) } else { None };
    if want("size") {
        size(&mut sum, kv, httpd);
    }
    println!("\n### Summary\n");
    println!("| measurement | value | baseline, same run | ratio | goal |");
    println!("|---|---|---|---|---|");
    for r in &sum.0 {
        println!("| {} |", r.join(" | "));
    }
}
