//! The fuzz targets (fuzz/, docs/fuzzing.md) as CI runs them: built with
//! libFuzzer's coverage instrumentation (fuzz/instrument-rustc), seeded from
//! the examples, every input that once crashed a target replayed
//! (fuzz/regressions/<target>/), then each target fuzzed for a bounded time:
//! `WEFT_FUZZ_SECONDS` each (default 10). A crash fails the test naming the
//! input libFuzzer saved. The numbers go to target/fuzz/stats.md.

mod common;
use common::*;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use weft_runtime::bundle::Bundle;

/// Every target, in the order they run.
const TARGETS: &[&str] = &["manifest", "bundle", "trace", "gitlog", "wasi_tar", "tcpip_frames", "arp_log_frames"];

/// Builds every target into target/fuzz; returns the folder of the binaries.
fn build() -> PathBuf {
    let target_dir = root().join("target/fuzz");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.args(["build", "--release", "--target", "x86_64-unknown-linux-gnu", "--manifest-path"])
        .arg(root().join("fuzz/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTC_WRAPPER", root().join("fuzz/instrument-rustc"));
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
        c.env_remove(var);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "building fuzz/: {}", String::from_utf8_lossy(&o.stderr));
    target_dir.join("x86_64-unknown-linux-gnu/release")
}

/// Fills `corpus` with seeds for `target` made from the examples.
fn seed(target: &str, corpus: &Path) {
    std::fs::create_dir_all(corpus).unwrap();
    let put = |name: &str, bytes: &[u8]| std::fs::write(corpus.join(format!("seed-{name}")), bytes).unwrap();
    let examples = root().join("examples");
    match target {
        "manifest" => {
            for e in std::fs::read_dir(&examples).unwrap().flatten() {
                for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                    if f.path().extension().is_some_and(|x| x == "toml") {
                        let name = format!("{}-{}", e.file_name().to_string_lossy(), f.file_name().to_string_lossy());
                        put(&name, &std::fs::read(f.path()).unwrap());
                    }
                }
            }
        }
        "bundle" => {
            // Real bundles with their components emptied: the decoder does
            // not look inside them, and small inputs fuzz faster.
            let out = scratch("fuzz-bundles");
            for ex in ["hello", "kvstore", "power-cut", "httpd", "lossy-net"] {
                let file = out.join(format!("{ex}.bundle"));
                let dir = example(ex);
                weft(&["build", "--target", "baremetal", "-o", file.to_str().unwrap(), dir.to_str().unwrap()]).ok();
                let bytes = std::fs::read(&file).unwrap();
                let mut b = Bundle::decode(&bytes, None).unwrap();
                for c in &mut b.components {
                    c.bytes = &[];
                }
                put(ex, &b.encode());
            }
        }
        "trace" => {
            let out = scratch("fuzz-traces");
            for (name, manifest, extra) in [
                ("hello", "hello", "--sim"),
                ("power-cut", "power-cut", ""),
                ("sim-kvstore", "sim-kvstore", ""),
                ("cluster", "sim-cluster/cluster.toml", ""),
            ] {
                let file = out.join(name);
                let src = examples.join(manifest);
                let mut args = vec!["run", "--record", file.to_str().unwrap()];
                args.extend(Some(extra).filter(|e| !e.is_empty()));
                args.push(src.to_str().unwrap());
                weft(&args);
                if file.is_dir() {
                    for t in std::fs::read_dir(&file).unwrap().flatten() {
                        put(&format!("{name}-{}", t.file_name().to_string_lossy()), &std::fs::read(t.path()).unwrap());
                    }
                } else {
                    put(name, &std::fs::read(&file).unwrap());
                }
            }
        }
        "gitlog" => {
            // (file to damage, how): whole replacements and patches.
            for pick in 0..16u8 {
                put(&format!("replace-{pick}"), &[pick, 0]);
                put(&format!("patch-{pick}"), &[pick, 0b1011, 0, 40, b'x']);
            }
        }
        "wasi_tar" => {
            // GNU tar's formats over a tree with what the reader handles:
            // nested folders, a long name, a symlink, a hard link.
            let tree = scratch("fuzz-tar");
            let long = "a-name-longer-than-the-hundred-bytes-a-ustar-header-holds-so-gnu-and-pax-write-it-elsewhere.txt";
            std::fs::create_dir_all(tree.join("etc/deep")).unwrap();
            std::fs::write(tree.join("etc/hello.txt"), "hello from a tar image\n").unwrap();
            std::fs::write(tree.join("etc/deep").join(long), vec![7u8; 1500]).unwrap();
            std::os::unix::fs::symlink("hello.txt", tree.join("etc/link")).unwrap();
            std::fs::hard_link(tree.join("etc/hello.txt"), tree.join("etc/hard")).unwrap();
            for format in ["gnu", "pax", "ustar", "v7"] {
                let file = tree.with_extension(format);
                let ok = Command::new("tar")
                    .args(["--format", format, "-C"])
                    .arg(&tree)
                    .arg("-cf")
                    .arg(&file)
                    .arg("etc")
                    // v7 cannot hold the long name and says so: that format is skipped.
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                if ok.success() {
                    put(format, &std::fs::read(&file).unwrap());
                }
            }
        }
        // Random frames are what the frame paths see; libFuzzer starts from nothing.
        _ => {}
    }
}

struct Stats {
    runs: u64,
    seconds: f64,
    corpus: usize,
}

/// Runs `bin` over `corpus` for `seconds`; panics with libFuzzer's report on a crash.
fn fuzz(bin: &Path, target: &str, corpus: &Path, seconds: u32) -> Stats {
    let artifacts = root().join("target/fuzz/artifacts").join(target);
    std::fs::create_dir_all(&artifacts).unwrap();
    let o = Command::new(bin)
        .arg(format!("-max_total_time={seconds}"))
        .args(["-rss_limit_mb=2048", "-timeout=10", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(corpus)
        .env("WEFT_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let tail: Vec<&str> = err.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
    assert!(
        o.status.success(),
        "fuzz target {target} crashed (input saved in {}; replay: {} FILE):\n{}",
        artifacts.display(),
        bin.display(),
        tail.join("\n")
    );
    let stat = |key: &str| -> u64 {
        err.lines().find_map(|l| l.strip_prefix(key)?.trim().parse().ok()).unwrap_or_else(|| panic!("{target}: no `{key}` in:\n{err}"))
    };
    let runs = stat("stat::number_of_executed_units:");
    let seconds = f64::from(seconds);
    Stats { runs, seconds, corpus: std::fs::read_dir(corpus).unwrap().count() }
}

#[test]
fn every_fuzz_target_runs_clean_from_the_examples() {
    let bins = build();
    let seconds: u32 = std::env::var("WEFT_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut table = String::from("| target | seeds | executions | per second | corpus after |\n|---|---:|---:|---:|---:|\n");
    for target in TARGETS {
        let bin = bins.join(target);
        // Every input that once crashed this target (each was a bug, fixed).
        let regressions = root().join("fuzz/regressions").join(target);
        if regressions.is_dir() {
            let files: Vec<PathBuf> = std::fs::read_dir(&regressions).unwrap().flatten().map(|e| e.path()).collect();
            // Each must also finish within 5 s: slow inputs were bugs too.
            let o = Command::new(&bin).arg("-timeout=5").args(&files).env("WEFT_CACHE_DIR", cache_dir()).output().unwrap();
            assert!(o.status.success(), "{target} crashes again on a regression input: {}", String::from_utf8_lossy(&o.stderr));
        }
        let corpus = root().join("target/fuzz/corpus").join(target);
        seed(target, &corpus);
        let seeds = std::fs::read_dir(&corpus).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("seed-")).count();
        let s = fuzz(&bin, target, &corpus, seconds);
        println!("{target}: {} runs in {} s, corpus {}", s.runs, s.seconds, s.corpus);
        writeln!(table, "| `{target}` | {seeds} | {} | {:.0} | {} |", s.runs, s.runs as f64 / s.seconds, s.corpus).unwrap();
    }
    println!("{table}");
    std::fs::write(root().join("target/fuzz/stats.md"), table).unwrap();
}
