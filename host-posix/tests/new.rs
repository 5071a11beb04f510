//! `weft new`: every language's app is made in a fresh folder, built by its
//! own `./build.sh` and run by `weft run NAME` from the folder above; so is
//! the Rust filter of every kind (block, clock, net), the C and JavaScript
//! ones, and the Python block filter, each checked to pass its device
//! through. Bad input is refused with exit 2 and nothing written. The
//! toolchains are the polyglot ones (`./setup.sh --polyglot`); a missing one
//! fails the test with build.sh's message naming it.
//!
//! The Rust projects share one CARGO_TARGET_DIR under target/, so wit-bindgen
//! is compiled once for all of them.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const INVALID: i32 = 2;

/// `weft new ARGS` run in `dir`.
fn weft_new(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["new"];
    all.extend_from_slice(args);
    output(weft_cmd(&all).current_dir(dir).output().unwrap())
}

/// `weft new` then `./build.sh` in a scratch folder; returns the folder
/// holding the project.
fn made_and_built(test: &str, args: &[&str]) -> PathBuf {
    let parent = scratch(test);
    let name = args[1];
    weft_new(&parent, args).ok().stdout_has(&format!("weft run {name}"));
    let mut build = Command::new("./build.sh");
    build.current_dir(parent.join(name)).env("CARGO_TARGET_DIR", root().join("target/test-scratch/new-cargo"));
    // Settings meant for the host build must not reach the project's.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER"] {
        build.env_remove(var);
    }
    let b = output(build.output().unwrap());
    assert_eq!(b.code, 0, "{name}: ./build.sh failed\nstdout:\n{}\nstderr:\n{}", b.stdout, b.stderr);
    assert!(parent.join(name).join(format!("{name}.wasm")).is_file(), "{name}: build.sh made no {name}.wasm");
    parent
}

/// `weft run NAME` from the project's parent folder, as the docs say.
fn run_named(parent: &Path, name: &str) -> Run {
    output(weft_cmd(&["run", name]).current_dir(parent).output().unwrap())
}

/// An app in `lang` greets, and passes `[app] args` to `run`.
fn app(lang: &str, title: &str) {
    let name = format!("hello-{lang}");
    let parent = made_and_built(&format!("new-app-{lang}"), &["app", &name, "--lang", lang]);
    run_named(&parent, &name).ok().stdout_has(&format!("Hello from {name}, a weft app in {title}!\n"));

    let manifest = parent.join(&name).join("weft.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\nargs = []"), "{text}");
    std::fs::write(&manifest, text.replace("\nargs = []", "\nargs = [\"a\", \"b c\"]")).unwrap();
    let r = run_named(&parent, &name);
    r.ok().stdout_has("args: a b c\n");
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
}

#[test]
fn rust_app() {
    app("rust", "Rust");
}

#[test]
fn c_app() {
    app("c", "C");
}

#[test]
fn python_app() {
    app("python", "Python");
}

#[test]
fn js_app() {
    app("js", "JavaScript");
}

/// A filter of `kind` in `lang`, built and run: what its weft.toml runs
/// comes through unchanged, and the filter announced itself on that device.
fn filter(lang: &str, kind: &str) {
    let name = format!("{kind}-{lang}");
    let parent = made_and_built(&format!("new-filter-{lang}-{kind}"), &["filter", &name, "--lang", lang, "--kind", kind]);
    let r = run_named(&parent, &name);
    r.ok();
    match kind {
        // kvstore reads back every record it wrote: nothing lost or changed.
        "block" => {
            r.stdout_has("wrote 100 verified 100 lost 0 corrupt 0\n")
                .stderr_has(&format!("[{name}] on storage: passing every call through"));
        }
        // hello's clock readings went through the filter: the wall clock is
        // now, the monotonic one this run's.
        "clock" => {
            r.stdout_has("Hello from weft!\n").stderr_has(&format!("[{name}] on clock: passing every call through"));
            let wall = r.stdout.lines().find_map(|l| l.strip_prefix("wall clock: ")).expect("a wall clock line");
            let secs = parse_rfc3339_utc(wall).unwrap_or_else(|| panic!("not RFC 3339: {wall:?}"));
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            assert!((now - 120..=now + 1).contains(&secs), "wall clock {wall} is not now ({now})");
            let mono: u64 = r
                .stdout
                .lines()
                .find_map(|l| l.strip_prefix("monotonic: ")?.strip_suffix(" ns")?.parse().ok())
                .expect("a monotonic line");
            assert!(mono < 60_000_000_000, "monotonic {mono} ns");
        }
        // Three TCP connections echoed through the filter on the client's
        // net device, every byte checked by netclient.
        "net" => {
            let echoed = format!("client| netclient: echoed \"hello through {name}\"\n");
            assert_eq!(r.stdout.matches(&echoed).count(), 3, "{}\n{}", r.stdout, r.stderr);
            r.stdout_has("server| echo: served 3 connections")
                .stderr_has(&format!("client| [{name}] on net: passing every frame through"));
        }
        _ => unreachable!(),
    }
}

#[test]
fn rust_filters() {
    for kind in ["block", "clock", "net"] {
        filter("rust", kind);
    }
}

#[test]
fn c_filters() {
    for kind in ["block", "clock", "net"] {
        filter("c", kind);
    }
}

#[test]
fn js_filters() {
    for kind in ["block", "clock", "net"] {
        filter("js", kind);
    }
}

/// Python's clock and net filters work the same way (tried by hand); one
/// kind keeps this file within a few minutes (each Python component takes
/// ~15 s to build and ~15 s to compile).
#[test]
fn python_block_filter() {
    filter("python", "block");
}

/// A filter refuses config keys it does not know, and weft names the line.
#[test]
fn filter_config_is_checked() {
    let parent = made_and_built("new-config", &["filter", "cfg", "--kind", "block"]);
    let manifest = parent.join("cfg/weft.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let with_key = text.replace("{ component = \"cfg.wasm\" }", "{ component = \"cfg.wasm\", config = { every = 3 } }");
    assert_ne!(text, with_key);
    std::fs::write(&manifest, with_key).unwrap();
    run_named(&parent, "cfg").code(INVALID).stderr_has("unknown key `every` (cfg takes no config keys)");
}

/// The project's world is weft's: a filter's imports and exports are those
/// of weft's filter world of its kind, an app's a subset of `app`'s imports
/// and its `run`. Checked with wit-parser on the files `weft new` wrote.
#[test]
fn worlds_are_wefts() {
    let parent = scratch("new-worlds");
    let mut weft = wit_parser::Resolve::default();
    let (devices, _) = weft.push_dir(root().join("wit")).unwrap();
    for (args, world) in [
        (vec!["app", "w-app", "--lang", "python"], "app"),
        (vec!["filter", "w-block", "--kind", "block"], "block-filter"),
        (vec!["filter", "w-clock", "--kind", "clock", "--lang", "c"], "clock-filter"),
        (vec!["filter", "w-net", "--kind", "net", "--lang", "js"], "net-filter"),
    ] {
        weft_new(&parent, &args).ok();
        let mut ours = wit_parser::Resolve::default();
        let (pkg, _) = ours.push_dir(parent.join(args[1]).join("wit")).unwrap();
        let mine = ours.select_world(&[pkg], Some(world)).unwrap();
        let theirs = weft.select_world(&[devices], Some(world)).unwrap();
        let names = |r: &wit_parser::Resolve, w: wit_parser::WorldId, imports: bool| -> Vec<String> {
            let w = &r.worlds[w];
            let items = if imports { &w.imports } else { &w.exports };
            let mut v: Vec<String> = items
                .iter()
                .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
                .map(|(k, _)| r.name_world_key(k))
                .collect();
            v.sort();
            v
        };
        let (mi, ti) = (names(&ours, mine, true), names(&weft, theirs, true));
        let (me, te) = (names(&ours, mine, false), names(&weft, theirs, false));
        assert_eq!(me, te, "{}: exports", args[1]);
        if world == "app" {
            assert!(mi.iter().all(|i| ti.contains(i)), "{}: imports {mi:?} not within {ti:?}", args[1]);
            assert_eq!(mi, ["weft:devices/console@0.1.0"]);
        } else {
            assert_eq!(mi, ti, "{}: imports", args[1]);
        }
    }
}

/// Nothing is written when the input is bad, and an existing folder is
/// never touched.
#[test]
fn bad_input() {
    let parent = scratch("new-bad");
    let existing = parent.join("taken");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    weft_new(&parent, &["app", "taken"])
        .code(INVALID)
        .stderr_has("already exists; weft new never overwrites anything");
    assert_eq!(std::fs::read_dir(&existing).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(existing.join("keep.txt")).unwrap(), "mine");
    // A file of that name too.
    std::fs::write(parent.join("file"), "x").unwrap();
    weft_new(&parent, &["filter", "file"]).code(INVALID).stderr_has("already exists");

    weft_new(&parent, &["app", "My_App"]).code(INVALID).stderr_has("invalid name \"My_App\"").stderr_has("fix: `weft new app my-app`");
    weft_new(&parent, &["filter", "fn"]).code(INVALID).stderr_has("Rust keyword").stderr_has("fix: `weft new filter fn-filter`");
    weft_new(&parent, &["app", "../escape"]).code(INVALID).stderr_has("fix: `weft new app escape`");
    weft_new(&parent, &["app", "ok", "--kind", "clock"])
        .code(INVALID)
        .stderr_has("`--kind clock` is for filters")
        .stderr_has("fix: `weft new app ok`, or `weft new filter ok --kind clock`");
    // clap's own refusals are exit 2 too.
    weft_new(&parent, &["app", "ok", "--lang", "cobol"]).code(INVALID).stderr_has("rust, c, python, js");
    weft_new(&parent, &["filter", "ok", "--kind", "disk"]).code(INVALID).stderr_has("block, clock, net");

    let mut left: Vec<String> =
        std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["file", "taken"], "weft new wrote something on bad input");
    assert!(!parent.parent().unwrap().join("escape").exists());
}
