//! `weft run --debug` under Debian's gdb and lldb: breakpoints by function
//! and by `file:line` in a Rust app, a C app and a Rust filter, their
//! parameters printed; the debug build cached apart from the normal one.
//! The components are built as a user debugging them would: Rust in cargo's
//! dev profile, C with `-O0 -g` (components/polyglot/build.sh).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo build` (dev profile: full DWARF, no optimisation) of guest crate
/// `package`; the path of its component.
fn dev_component(package: &str) -> PathBuf {
    let components = root().join("components");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--target", "wasm32-wasip2", "-p", package, "--manifest-path"])
        .arg(components.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", components.join("target"));
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "building {package}: {}", String::from_utf8_lossy(&out.stderr));
    // A library's artifact is named with `_`, a binary's as the package.
    let dir = components.join("target/wasm32-wasip2/debug");
    let lib = dir.join(format!("{}.wasm", package.replace('-', "_")));
    if lib.exists() { lib } else { dir.join(format!("{package}.wasm")) }
}

/// A scratch folder running the dev build of `misbehave` with `args`.
fn misbehave_dev(name: &str, args: &str) -> PathBuf {
    let dir = manifest(name, &format!("[app]\ncomponent = \"misbehave.wasm\"\nargs = {args}\n"));
    std::fs::copy(dev_component("misbehave"), dir.join("misbehave.wasm")).unwrap();
    dir
}

/// `gdb -batch` running `weft run --debug DIR` with `commands` (each an `-ex`).
fn gdb(dir: &Path, commands: &[&str]) -> Run {
    let mut c = Command::new("gdb");
    c.arg("-batch").arg("-nx").args(["-ex", "set breakpoint pending on"]);
    for cmd in commands {
        c.args(["-ex", cmd]);
    }
    c.args(["-ex", "kill", "--args", env!("CARGO_BIN_EXE_weft"), "run", "--debug"]).arg(dir);
    // A cache of its own: code compiled here, by this `weft`.
    c.env("WEFT_CACHE_DIR", dir.join("cache"));
    output(c.output().expect("gdb (Debian's gdb; ./setup.sh installs it)"))
}

#[test]
fn gdb_breaks_in_a_rust_app_by_function_and_by_line_and_prints_a_parameter() {
    let dir = misbehave_dev("gdb-rust", r#"["count", "7"]"#);
    let by_name = gdb(&dir, &["break misbehave::count_to", "run", "print n", "bt 2"]);
    by_name.stdout_has("hit Breakpoint 1, misbehave::count_to (n=7) at tests/misbehave/src/lib.rs:");
    by_name.stdout_has("$1 = 7");
    by_name.stdout_has("in misbehave::{impl#0}::run (");
    // Under a debugger the hint about attaching one is not printed.
    assert!(!by_name.stderr.contains("to debug them"), "{}", by_name.stderr);

    // `count_to`'s loop, by file and line. This run loads the code the run
    // above compiled and cached while gdb had a breakpoint in it: the cache
    // holds the compiler's output, not code with gdb's `int3` patched in
    // (which would stop here with a stray SIGTRAP).
    let line = line_in("components/tests/misbehave/src/lib.rs", "while i < n {");
    let by_line = gdb(&dir, &[&format!("break misbehave/src/lib.rs:{line}"), "run", "print n"]);
    by_line.stdout_has(&format!("misbehave::count_to (n=7) at tests/misbehave/src/lib.rs:{line}"));
    by_line.stdout_has("$1 = 7");
}

#[test]
fn gdb_breaks_in_a_c_app_and_prints_a_parameter() {
    let dir = manifest("gdb-c", "[app]\ncomponent = \"hello.wasm\"\n");
    let built = root().join("target/polyglot/c-hello-debug.wasm");
    std::fs::copy(&built, dir.join("hello.wasm")).unwrap_or_else(|e| panic!("{}: {e} (components/polyglot/build.sh builds it)", built.display()));
    let r = gdb(&dir, &["break put_uint", "run", "print width", "bt 2"]);
    // The first number hello prints is the year, 4 digits wide.
    r.stdout_has("hit Breakpoint 1, put_uint (t=");
    r.stdout_has("width=4) at ");
    r.stdout_has("components/polyglot/c/hello/hello.c:");
    r.stdout_has("$1 = 4");
    r.stdout_has("in put_rfc3339_utc (");
}

#[test]
fn gdb_breaks_in_a_filter() {
    let dir = manifest(
        "gdb-filter",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"20\"]\n\n\
         [devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n\
         filters = [{ component = \"block_fault.wasm\", config = { drop-every = 5 } }]\n",
    );
    std::fs::copy(dev_component("block-fault"), dir.join("block_fault.wasm")).unwrap();
    let r = gdb(&dir, &["break block_fault::State::begin", "run", "print droppable", "bt 2"]);
    r.stdout_has("hit Breakpoint 1, block_fault::State::begin (self=");
    r.stdout_has("op=block_fault::faults::Op::");
    r.stdout_has("at devices/block-fault/src/lib.rs:");
    r.stdout_has("$1 = false");
}

#[test]
fn gdb_breaks_in_a_stock_wasi_program_weft_composes() {
    // A Rust `main` on std, composed with the shipped `wasi` component: its
    // DWARF goes through the composition.
    let dir = manifest("gdb-wasi", "[app]\ncomponent = \"stock.wasm\"\nargs = [\"fs\", \"ls\"]\n");
    std::fs::copy(dev_component("wasi-stock"), dir.join("stock.wasm")).unwrap();
    let r = gdb(&dir, &["break wasi_stock::fs_op", "run", "bt 1"]);
    r.stdout_has("hit Breakpoint 1, wasi_stock::fs_op (op=");
    r.stdout_has("at tests/wasi-stock/src/main.rs:");
}

#[test]
fn lldb_breaks_in_a_rust_app_and_prints_a_parameter() {
    let dir = misbehave_dev("lldb-rust", r#"["count", "9"]"#);
    let mut c = Command::new("lldb");
    c.args(["-b", "-x", "-o", "breakpoint set --name count_to", "-o", "run", "-o", "frame variable n", "-o", "kill", "--"])
        .arg(env!("CARGO_BIN_EXE_weft"))
        .args(["run", "--debug"])
        .arg(&dir)
        .env("WEFT_CACHE_DIR", dir.join("cache"));
    let r = output(c.output().expect("lldb (Debian's lldb; ./setup.sh installs it)"));
    r.stdout_has("stop reason = breakpoint 1.1");
    r.stdout_has("misbehave::count_to");
    r.stdout_has("(n=9) at lib.rs:");
    r.stdout_has("n = 9");
}

#[test]
fn a_debug_build_is_cached_apart_and_a_mismatched_entry_is_rebuilt() {
    // A cache of its own, so the counts below are this test's.
    let cache = scratch("debug-cache");
    let dir = misbehave_dev("debug-cache-app", r#"["count", "3"]"#);
    let weft = |debug: bool| {
        let mut args = vec!["run"];
        if debug {
            args.push("--debug");
        }
        let d = dir.to_str().unwrap();
        args.push(d);
        output(weft_cmd(&args).env("WEFT_CACHE_DIR", &cache).output().unwrap())
    };
    let entries = || -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    // misbehave's dev build is over 1 MiB: weft says when it compiles it.
    let compiled = "weft: compiling misbehave";

    let normal = weft(false);
    normal.ok().stdout_has("counted 3").stderr_has(compiled);
    assert!(!normal.stderr.contains("to debug them"), "{}", normal.stderr);
    let normal_entry = entries();
    assert_eq!(normal_entry.len(), 1, "{normal_entry:?}");

    let debug = weft(true);
    debug.ok().stdout_has("counted 3").stderr_has(compiled);
    // Not under a debugger: how to get into one.
    debug.stderr_has("gdb -ex 'set breakpoint pending on' -ex 'break FUNCTION' -ex run --args weft run --debug");
    debug.stderr_has("lldb -o 'breakpoint set --name FUNCTION' -o run -- weft run --debug");
    assert_eq!(entries().len(), 2, "the debug build has its own entry");

    // Both are served from the cache now.
    for d in [false, true] {
        let r = weft(d);
        r.ok().stdout_has("counted 3");
        assert!(!r.stderr.contains(compiled), "debug={d}: {}", r.stderr);
    }

    // The debug artifact under the normal build's name: refused by wasmtime's
    // check, rebuilt, never run as the wrong code.
    let debug_entry = entries().into_iter().find(|p| !normal_entry.contains(p)).unwrap();
    std::fs::copy(&debug_entry, &normal_entry[0]).unwrap();
    let r = weft(false);
    r.ok().stdout_has("counted 3").stderr_has("weft: warning: AOT cache entry").stderr_has("(recompiling)");
    let r = weft(false);
    assert!(!r.stderr.contains("warning"), "the entry was replaced: {}", r.stderr);
}
