//! The polyglot apps side by side, in one run: for each language, the
//! component's size, its cold compile, the first run with an empty AOT cache
//! and a cached run (process spawn to first output), the instantiation of
//! the linked unikernel, and the cost of the smallest device call
//! (`clock.monotonic-now`, or WASI's monotonic clock through the `wasi`
//! component) timed inside the app. Every number is also given as a ratio to
//! the Rust row measured in the same run (the machine is shared and noisy).
//!
//!     cargo build --release -p weft && components/polyglot/build.sh
//!     cargo bench -p weft --bench polyglot
//!
//! Results and the command are recorded in docs/benchmarks.md ("Polyglot").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use weft::run;

mod common;
use common::*;

/// One language's hello (for size, compile, start and instantiate) and its
/// call-cost program.
struct Row {
    label: &'static str,
    /// The component as weft gets it: a file under the repository, or a
    /// shipped component's name.
    app: App,
    /// Composed with the shipped `wasi` component (a stock WASI program).
    wasi: bool,
    /// Args for the run that is timed to its first output.
    hello_args: &'static str,
    /// The call-cost run: a component (file or shipped), manifest extra, args.
    calls: (App, &'static str, &'static str),
}

#[derive(Clone, Copy)]
enum App {
    File(&'static str),
    Shipped(&'static str),
}

impl App {
    fn bytes(self) -> Vec<u8> {
        match self {
            App::File(p) => {
                let path = root().join(p);
                std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e}: run components/polyglot/build.sh (and cargo build for the test components)", path.display())
                })
            }
            App::Shipped(n) => shipped(n).to_vec(),
        }
    }
    /// The manifest's `component = ...`, copying a file into `dir`.
    fn place(self, dir: &Path) -> String {
        match self {
            App::File(p) => {
                let name = Path::new(p).file_name().unwrap().to_str().unwrap();
                std::fs::copy(root().join(p), dir.join(name)).unwrap_or_else(|e| panic!("{p}: {e}: run components/polyglot/build.sh"));
                name.to_string()
            }
            App::Shipped(n) => n.to_string(),
        }
    }
}

fn shipped(name: &str) -> &'static [u8] {
    run::SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1
}

const CALLBENCH: &str = "components/target/wasm32-wasip2/release/callbench.wasm";
const STORAGE: &str = "\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n";

fn rows() -> Vec<Row> {
    vec![
        Row {
            label: "Rust (`hello`; calls: `callbench now`)",
            app: App::Shipped("hello"),
            wasi: false,
            hello_args: "[]",
            calls: (App::File(CALLBENCH), STORAGE, r#"["now", "1000000"]"#),
        },
        Row {
            label: "C (`hello-c`)",
            app: App::File("examples/hello-c/hello.wasm"),
            wasi: false,
            hello_args: "[]",
            calls: (App::File("examples/hello-c/hello.wasm"), "", r#"["now", "1000000"]"#),
        },
        Row {
            label: "JavaScript (`hello-js`)",
            app: App::File("examples/hello-js/hello.wasm"),
            wasi: false,
            hello_args: "[]",
            calls: (App::File("examples/hello-js/hello.wasm"), "", r#"["now", "200000"]"#),
        },
        Row {
            label: "Python (`hello-python`)",
            app: App::File("examples/hello-python/hello.wasm"),
            wasi: false,
            hello_args: "[]",
            calls: (App::File("examples/hello-python/hello.wasm"), "", r#"["now", "200000"]"#),
        },
        Row {
            label: "Rust std via WASI (`wasi-hello`)",
            app: App::File("target/polyglot/wasi-hello.wasm"),
            wasi: true,
            hello_args: "[]",
            calls: (App::File("target/polyglot/wasi-hello.wasm"), "", r#"["now", "1000000"]"#),
        },
        Row {
            label: "Python script via WASI (`python-script`)",
            app: App::File("examples/python-script/script.wasm"),
            wasi: true,
            hello_args: r#"["script.py"]"#,
            calls: (App::File("examples/python-script/script.wasm"), "", r#"["clock_loop.py", "200000"]"#),
        },
    ]
}

/// Spawn to the first byte on stdout, of a run that succeeds.
fn first_output_ok(cmd: &mut Command) -> Duration {
    let (d, status) = first_output(cmd);
    assert!(status.success());
    d
}

fn manifest(dir: &Path, app: App, extra: &str, args: &str) {
    let component = app.place(dir);
    std::fs::write(dir.join("weft.toml"), format!("[app]\ncomponent = \"{component}\"\nargs = {args}\n{extra}")).unwrap();
}

struct Result {
    size: usize,
    compile_s: f64,
    cold_ms: f64,
    warm_ms: f64,
    inst_us: f64,
    call_ns: f64,
    loop_ns: Option<f64>,
}

fn field(out: &str, key: &str) -> Option<f64> {
    out.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().parse().unwrap())
}

fn main() {
    let weft = release_weft();
    let cache = root().join("target/bench-scratch/polyglot-cache");
    // In-process plans (instantiate, calls) use the same warm cache as the spawned runs.
    // SAFETY: set before any other thread exists.
    unsafe { std::env::set_var("WEFT_CACHE_DIR", &cache) };
    unsafe { std::env::set_var("WEFT_CACHE_QUIET", "1") };
    println!(
        "weft polyglot benchmark ({}; {} cores; load average {})",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    let engine = run::engine().unwrap();
    run::start_ticker(&engine);
    let rows = rows();
    let wasi = shipped("wasi");

    // Folders: the hello run and the call-cost run of each row.
    let hello_dirs: Vec<PathBuf> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let d = scratch(&format!("polyglot/hello-{i}"));
            manifest(&d, r.app, "", r.hello_args);
            d
        })
        .collect();
    let call_dirs: Vec<PathBuf> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let d = scratch(&format!("polyglot/calls-{i}"));
            manifest(&d, r.calls.0, r.calls.1, r.calls.2);
            d
        })
        .collect();

    // Cold: compile in-process (compose first for WASI programs, as weft
    // does), then a first `weft run` with an empty cache, row by row.
    let mut size = Vec::new();
    let mut compile_s = Vec::new();
    let mut cold_ms = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let bytes = r.app.bytes();
        size.push(bytes.len());
        let samples = if bytes.len() > 1 << 20 { 1 } else { 3 };
        let t: Vec<f64> = (0..samples)
            .map(|_| {
                let t = Instant::now();
                let composed;
                let what = if r.wasi {
                    let p = weft_runtime::compose::Provider { name: "wasi", bytes: wasi };
                    composed = weft_runtime::compose::compose(&bytes, &[p]).unwrap();
                    &composed[..]
                } else {
                    &bytes[..]
                };
                std::hint::black_box(Component::new(&engine, what).unwrap());
                t.elapsed().as_secs_f64()
            })
            .collect();
        compile_s.push(median(t));
        let empty = scratch(&format!("polyglot/cold-cache-{i}"));
        let d = first_output_ok(Command::new(&weft).arg("run").arg(&hello_dirs[i]).env("WEFT_CACHE_DIR", &empty));
        cold_ms.push(d.as_secs_f64() * 1e3);
        eprintln!("  {}: compile {:.2} s, first run {:.0} ms", r.label, compile_s[i], cold_ms[i]);
    }

    // Warm the shared cache, then cached runs interleaved row by row so all
    // see the same load.
    for d in hello_dirs.iter().chain(&call_dirs) {
        Command::new(&weft).arg("check").arg(d).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    }
    let mut warm: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for _ in 0..20 {
        for (i, d) in hello_dirs.iter().enumerate() {
            warm[i].push(first_output_ok(Command::new(&weft).arg("run").arg(d)).as_secs_f64() * 1e3);
        }
    }

    // Instantiate, interleaved too.
    let fixtures: Vec<Fixture> = hello_dirs.iter().map(|d| Fixture::open(&engine, d)).collect();
    let mut inst: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for _ in 0..200 {
        for (i, f) in fixtures.iter().enumerate() {
            inst[i].push(f.instantiate_us(&Capture::default()).0);
        }
    }
    drop(fixtures);

    // Device calls: median of 5 runs, each timed inside the app.
    let mut calls: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); rows.len()];
    let call_fx: Vec<Fixture> = call_dirs.iter().map(|d| Fixture::open(&engine, d)).collect();
    for _ in 0..5 {
        for (i, f) in call_fx.iter().enumerate() {
            let out = f.run(f.plan.manifest.app.args.clone());
            calls[i].0.push(field(&out, "ns/call ").unwrap_or_else(|| panic!("{}: {out}", rows[i].label)));
            if let Some(l) = field(&out, "ns/loop ") {
                calls[i].1.push(l);
            }
        }
    }

    let results: Vec<Result> = (0..rows.len())
        .map(|i| Result {
            size: size[i],
            compile_s: compile_s[i],
            cold_ms: cold_ms[i],
            warm_ms: median(warm[i].clone()),
            inst_us: median(inst[i].clone()),
            call_ns: median(calls[i].0.clone()),
            loop_ns: (!calls[i].1.is_empty()).then(|| median(calls[i].1.clone())),
        })
        .collect();

    let base = &results[0];
    let x = |v: f64, b: f64| format!("{:.1}×", v / b);
    println!();
    println!("| language | component | cold compile | first run, empty cache → first output | cached run → first output | instantiate | clock call (empty loop) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (r, v) in rows.iter().zip(&results) {
        let size = if v.size >= 1 << 20 { format!("{:.1} MiB", v.size as f64 / (1 << 20) as f64) } else { format!("{:.0} KiB", v.size as f64 / 1024.0) };
        let loop_ = v.loop_ns.map_or(String::new(), |l| format!(" ({l:.0})"));
        println!(
            "| {} | {size} ({}) | {:.2} s ({}) | {:.0} ms ({}) | {:.1} ms ({}) | {:.0} µs ({}) | {:.0} ns{loop_} ({}) |",
            r.label,
            x(v.size as f64, base.size as f64),
            v.compile_s,
            x(v.compile_s, base.compile_s),
            v.cold_ms,
            x(v.cold_ms, base.cold_ms),
            v.warm_ms,
            x(v.warm_ms, base.warm_ms),
            v.inst_us,
            x(v.inst_us, base.inst_us),
            v.call_ns,
            x(v.call_ns, base.call_ns),
        );
    }
}
