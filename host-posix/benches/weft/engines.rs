//! One engine against another: the same workloads, run alternately by two
//! `weft` binaries — `WEFT_OLD` (say, the last release built on the previous
//! wasmtime) and this tree's `target/release/weft`. Each workload is a whole
//! `weft run` of a scratch app, so any two builds compare, whatever engine
//! or Rust each was built with; the components are this tree's, the same
//! bytes for both.
//!
//!     WEFT_OLD=/path/to/old/weft cargo bench -p weft --bench weft -- engines
//!
//! Every row: the median of each side over `WEFT_ROUNDS` (default 7)
//! alternating rounds (old first in even rounds, new first in odd ones), and
//! new/old as the ratio of those medians (below 1: the new one is faster, or
//! smaller for memory).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

/// A `weft` and the AOT cache folder it alone uses (two engines never share
/// compiled code; each is warmed before its first timed run).
struct Side {
    label: &'static str,
    weft: PathBuf,
    cache: PathBuf,
}

/// What one run gave: its stdout, wall time, time to first stdout byte, and
/// peak RSS (KiB, from `wait4`).
struct Run {
    out: String,
    wall: Duration,
    first: Duration,
    max_rss_kib: u64,
}

impl Side {
    fn run(&self, dir: &Path) -> Run {
        let t = Instant::now();
        let mut child = Command::new(&self.weft)
            .arg("run")
            .arg(dir)
            .env("WEFT_CACHE_DIR", &self.cache)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 1];
        let got = stdout.read(&mut first).unwrap();
        let first_at = t.elapsed();
        let mut out = first[..got].to_vec();
        stdout.read_to_end(&mut out).unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        // wait4 for the child's own rusage (RUSAGE_CHILDREN would be the
        // maximum over every child so far).
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = child.id() as libc::pid_t;
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        assert_eq!(r, pid, "wait4");
        let wall = t.elapsed();
        let status = std::process::ExitStatus::from_raw(status);
        assert!(status.success(), "{} run {}: {status}\n{err}", self.label, dir.display());
        Run { out: String::from_utf8_lossy(&out).into_owned(), wall, first: first_at, max_rss_kib: ru.ru_maxrss as u64 }
    }
}

/// A scratch app `engines/<name>` with `manifest` and test components.
fn app(name: &str, manifest: &str, files: &[&str]) -> PathBuf {
    super::app_dir(&format!("engines/{name}"), manifest, files)
}

/// The number after `key` in `text` (`ns/call 312.5`, `(70789 rows/s)`).
fn number_after(text: &str, key: &str) -> f64 {
    let at = text.find(key).unwrap_or_else(|| panic!("no {key:?} in {text:?}")) + key.len();
    let s: String = text[at..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    s.parse().unwrap_or_else(|_| panic!("no number after {key:?} in {text:?}"))
}

/// One row of the table: `measure` on each side, alternately.
struct Row {
    what: String,
    unit: &'static str,
    old: Vec<f64>,
    new: Vec<f64>,
}

pub fn engines() {
    let old = std::env::var_os("WEFT_OLD").expect("WEFT_OLD=/path/to/the/other/weft");
    let rounds: usize = std::env::var("WEFT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(7);
    let version = |w: &Path| {
        let o = Command::new(w).arg("--version").output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let sides = [
        Side { label: "old", weft: PathBuf::from(old), cache: scratch("engines-cache-old") },
        Side { label: "new", weft: release_weft(), cache: scratch("engines-cache-new") },
    ];
    println!("\n### Two engines side by side: old `{}` ({}), new `{}` ({}); {rounds} alternating rounds\n",
        sides[0].weft.display(), version(&sides[0].weft), sides[1].weft.display(), version(&sides[1].weft));

    // Workloads: (row label, unit, app dir, args, what to read from a run).
    type Measure = fn(&Run) -> f64;
    let ns: Measure = |r| number_after(&r.out, "ns/call");
    let wall_ms: Measure = |r| r.wall.as_secs_f64() * 1e3;
    let first_ms: Measure = |r| r.first.as_secs_f64() * 1e3;
    let rss_mib: Measure = |r| r.max_rss_kib as f64 / 1024.0;
    let rows_s: Measure = |r| number_after(&r.out, "ms (");
    let write_mib_s: Measure = |r| number_after(&r.out, "write");
    let read_mib_s: Measure = |r| number_after(&r.out, "read");

    // callbench `what n` with `hops` passthrough filters on block and clock.
    let callbench = |what: &str, n: u64, hops: usize| {
        app(&format!("calls-{what}-{hops}"), &super::callbench_manifest(hops, hops, &[what, &n.to_string()]), &["callbench.wasm"])
    };
    const KV_N: u64 = 20_000;
    const KV_SIZE: u64 = 64 << 20;
    let kv = app(
        "kvstore",
        &format!("[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"{KV_N}\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"{}MiB\"\n", KV_SIZE >> 20),
        &[],
    );
    let sqlite_wasm = root().join("examples/sqlite/sqlite-faults.wasm");
    let sqlite = app(
        "sqlite",
        "[app]\ncomponent = \"sqlite-faults.wasm\"\nargs = [\"/data/test.db\", \"create\", \"10000\", \"100\"]\n\n[devices.disk]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"16MiB\"\n\n[wasi]\npreopens = { \"/data\" = \"fat:disk\" }\n",
        &[],
    );
    std::fs::copy(&sqlite_wasm, sqlite.join("sqlite-faults.wasm")).unwrap_or_else(|e| panic!("{}: {e} (components/polyglot/build.sh c)", sqlite_wasm.display()));
    let seq = app(
        "seq",
        "[app]\ncomponent = \"stock.wasm\"\nargs = [\"fs\", \"seq:/data/big=64\"]\n\n[devices.disk]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"256MiB\"\n\n[wasi]\npreopens = { \"/data\" = \"fat:disk\" }\n",
        &[],
    );
    std::fs::copy(root().join("components/target/wasm32-wasip2/release/wasi-stock.wasm"), seq.join("stock.wasm")).unwrap();

    struct Work {
        dir: PathBuf,
        fresh: Option<&'static str>,
        reads: Vec<(&'static str, &'static str, Measure)>,
    }
    let w = |dir, fresh, reads| Work { dir, fresh, reads };
    let works = [
        w(callbench("read", 100_000, 0), None, vec![("`block.read` 4 KiB, direct", "ns/call", ns)]),
        w(callbench("read", 100_000, 1), None, vec![("`block.read` 4 KiB, one `block-fault` hop", "ns/call", ns)]),
        w(callbench("small", 1_000_000, 0), None, vec![("`block.info`, direct", "ns/call", ns)]),
        w(callbench("small", 1_000_000, 1), None, vec![("`block.info`, one hop", "ns/call", ns)]),
        w(callbench("now", 1_000_000, 0), None, vec![("`clock.monotonic-now`, direct", "ns/call", ns)]),
        w(callbench("now", 1_000_000, 1), None, vec![("`clock.monotonic-now`, one `clock-skew` hop", "ns/call", ns)]),
        w(kv.clone(), Some("disk.img"), vec![("kvstore `fill 20000`, `file` disk (whole run)", "ms", wall_ms)]),
        w(root().join("examples/hello"), None, vec![
            ("`weft run examples/hello`: spawn to first output (warm cache)", "ms", first_ms),
            ("`weft run examples/hello`: peak RSS", "MiB", rss_mib),
        ]),
        w(sqlite, Some("disk.img"), vec![("SQLite inserts (10,000 rows, transactions of 100, `fat:` disk)", "rows/s", rows_s)]),
        w(seq, Some("disk.img"), vec![
            ("sequential write, 64 MiB through `fat:`", "MiB/s", write_mib_s),
            ("sequential read, 64 MiB through `fat:`", "MiB/s", read_mib_s),
        ]),
    ];

    let mut rows: Vec<Row> = Vec::new();
    let mut native_kv = Vec::new();
    for work in &works {
        let first_row = rows.len();
        for (what, unit, _) in &work.reads {
            rows.push(Row { what: what.to_string(), unit, old: Vec::new(), new: Vec::new() });
        }
        let once = |side: &Side| {
            if let Some(f) = work.fresh {
                let _ = std::fs::remove_file(work.dir.join(f));
            }
            side.run(&work.dir)
        };
        // Warm each side's cache (and the page cache) before timing.
        for s in &sides {
            once(s);
        }
        for round in 0..rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let run = once(&sides[i]);
                for (k, (_, _, measure)) in work.reads.iter().enumerate() {
                    let v = measure(&run);
                    let row = &mut rows[first_row + k];
                    if i == 0 { row.old.push(v) } else { row.new.push(v) }
                }
            }
            if work.dir == kv {
                let img = scratch("engines/kv-native").join("disk.img");
                let f = std::fs::OpenOptions::new().read(true).write(true).create(true).open(&img).unwrap();
                f.set_len(KV_SIZE).unwrap();
                native_kv.push(super::native_fill(f, KV_N, KV_SIZE) * 1e3);
            }
        }
    }

    println!("| workload | unit | old (median) | new (median) | new / old |");
    println!("|---|---|---:|---:|---:|");
    for r in &rows {
        let (o, n) = (median(r.old.clone()), median(r.new.clone()));
        println!("| {} | {} | {o:.1} | {n:.1} | {:.2} |", r.what, r.unit, n / o);
    }
    let kv_row = rows.iter().find(|r| r.what.starts_with("kvstore")).unwrap();
    let native = median(native_kv);
    println!(
        "\nkvstore `fill {KV_N}` against the same store code built natively ({native:.1} ms, same rounds): old {:.2}x, new {:.2}x of native throughput",
        native / median(kv_row.old.clone()),
        native / median(kv_row.new.clone())
    );
}
