//! The polyglot hellos — Python (componentize-py), JavaScript
//! (componentize-qjs) and C (clang + `wit-bindgen c`) — run through the
//! `weft` binary and print what the Rust hello prints. Their components are
//! built by `components/polyglot/build.sh` (test.sh runs it first); a missing
//! one fails its test with the command that builds it.

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const INVALID: i32 = 2;

/// A built polyglot component, or a failure saying how to build it.
fn built(path: &str) -> PathBuf {
    let p = root().join(path);
    assert!(
        p.is_file(),
        "{path} is missing: run components/polyglot/build.sh to build the polyglot components \
         (./setup.sh --polyglot installs the toolchains it needs; test.sh does both)"
    );
    p
}

/// A scratch copy of `examples/hello-<lang>` with its built component.
fn hello_example(lang: &str) -> PathBuf {
    built(&format!("examples/hello-{lang}/hello.wasm"));
    example(&format!("hello-{lang}"))
}

/// The four lines hello prints, checked for shape and plausibility: the
/// greeting, a wall clock near the host's, a monotonic reading from this run,
/// 8 random bytes in hex. Returns the random bytes.
fn check_hello_output(lang: &str, r: &Run) -> String {
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{lang}: expected 4 lines\n{}", r.stdout);
    assert_eq!(lines[0], "Hello from weft!", "{lang}");

    let wall = lines[1].strip_prefix("wall clock: ").unwrap_or_else(|| panic!("{lang}: {}", lines[1]));
    let secs = parse_rfc3339_utc(wall).unwrap_or_else(|| panic!("{lang}: not RFC 3339 UTC with ms: {wall:?}"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    // The run ends before `now`, and a cold compile takes well under 10 min.
    assert!((now - 600..=now + 1).contains(&secs), "{lang}: wall clock {wall} is not now ({now})");

    let mono = lines[2]
        .strip_prefix("monotonic: ")
        .and_then(|s| s.strip_suffix(" ns"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{lang}: {}", lines[2]));
    // Nanoseconds since the unikernel started: this run, so under a minute.
    assert!(mono < 60_000_000_000, "{lang}: monotonic {mono} ns");

    let random = lines[3].strip_prefix("random: ").unwrap_or_else(|| panic!("{lang}: {}", lines[3]));
    assert_eq!(random.len(), 16, "{lang}: 8 bytes in hex: {random:?}");
    assert!(random.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{lang}: {random:?}");
    random.to_string()
}


/// Each language's hello prints the Rust hello's four lines, and two runs
/// draw different random bytes from the OS source through `random`.
fn hello_like_rust(lang: &str) {
    let dir = hello_example(lang);
    let first = check_hello_output(lang, &run(&dir));
    let again = check_hello_output(lang, &run(&dir));
    assert_ne!(first, again, "{lang}: two runs printed the same random bytes");
}

#[test]
fn python_hello_prints_like_the_rust_hello() {
    hello_like_rust("python");
}

#[test]
fn js_hello_prints_like_the_rust_hello() {
    hello_like_rust("js");
}

#[test]
fn c_hello_prints_like_the_rust_hello() {
    hello_like_rust("c");
}

#[test]
fn the_rust_hello_has_the_shape_the_polyglot_tests_check() {
    // The reference: if the Rust hello's output changes, the polyglot hellos
    // (and these checks) must follow.
    check_hello_output("rust", &run(&example("hello")));
}

#[test]
fn polyglot_hellos_import_only_the_devices_they_use() {
    // `weft check` resolves every import against the manifest; a WASI import
    // (a toolchain that did not stub it) or an unused `block`/`sockets`
    // import would make it fail. The devices listed are the app's own.
    for lang in ["python", "js", "c"] {
        let dir = hello_example(lang);
        let r = weft(&["check", dir.to_str().unwrap()]);
        r.ok().stdout_has("console   console  app -> stdio").stdout_has("random    random   app -> os");
        assert!(!r.stdout.contains("block"), "{lang}: {}", r.stdout);
    }
}

#[test]
fn a_js_component_for_the_wrong_world_names_the_app_world() {
    // componentize-qjs built it from components/polyglot/js/wrong-world: it
    // exports `greet` instead of `run`.
    let wasm = built("target/polyglot/wrong-world-js.wasm");
    let dir = manifest("polyglot-wrong-world", "[app]\ncomponent = \"greeter.wasm\"\n");
    std::fs::copy(&wasm, dir.join("greeter.wasm")).unwrap();
    let t = std::time::Instant::now();
    let r = run(&dir);
    // The message names the component, the missing export and the world
    // (its wording around them may grow, e.g. for WASI commands).
    r.code(INVALID)
        .stderr_has("weft.toml:1: `app.component`: greeter ")
        .stderr_has("`run`")
        .stderr_has("an app targets the world weft:devices/app");
    assert!(r.stdout.is_empty(), "nothing ran: {}", r.stdout);
    // Refused when the plan is checked, but the check compiles the component
    // first (1.6 MB of QuickJS): allow for a cold compile on a loaded machine.
    assert!(t.elapsed() < Duration::from_secs(120));
}

#[test]
fn the_polyglot_wit_worlds_stay_subsets_of_the_device_worlds() {
    // components/polyglot/wit/{hello,kv-client}.wit narrow weft:devices/app
    // and kv-app for the dynamic-binding toolchains; every import they name
    // must be one the device world has, with the same `run` export.
    let worlds = std::fs::read_to_string(root().join("wit/worlds.wit")).unwrap();
    let app = world_body(&worlds, "app");
    // kv-app is `include app;` plus its own lines.
    let kv_app = format!("{app}\n{}", world_body(&worlds, "kv-app"));
    for (file, world, of) in [("hello.wit", "hello", app.to_string()), ("kv-client.wit", "kv-client", kv_app)] {
        let text = std::fs::read_to_string(root().join("components/polyglot/wit").join(file)).unwrap();
        for line in world_body(&text, world).lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")) {
            let local = line.replace("weft:devices/", "").replace("@0.1.0", "");
            assert!(of.lines().any(|l| l.trim() == local), "{file}: `{line}` is not in its device world:\n{of}");
        }
    }
}

fn world_body<'a>(wit: &'a str, world: &str) -> &'a str {
    let start = wit.find(&format!("world {world} {{")).unwrap_or_else(|| panic!("no world {world}"));
    let body = &wit[start..];
    let end = body.find("\n}").unwrap();
    &body[body.find('{').unwrap() + 1..end]
}

// ---- A plain Python script, unmodified, as a stock WASI command ----------

/// The Python-script tests share one 19 MB component: the first one to run
/// compiles it into the shared AOT cache (10-25 s on 2 cores) while the
/// others wait, instead of all compiling it at once.
static PYTHON_SCRIPT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn python_script(name: &str, manifest_text: &str) -> PathBuf {
    built("examples/python-script/script.wasm");
    let dir = manifest(name, manifest_text);
    std::fs::copy(root().join("examples/python-script/script.wasm"), dir.join("script.wasm")).unwrap();
    dir
}

/// The value after `key ` on the line that starts with it.
fn field<'a>(out: &'a Run, key: &str) -> &'a str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {key:?} line in\n{}\nstderr:\n{}", out.stdout, out.stderr))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// What examples/python-script/script.py prints whatever the clock: the
/// greeting, its argv and environment, and 8 dice.
fn check_script_output(out: &Run, name: &str, argv: &str) {
    out.stdout_has(&format!("Hello, {name}, from a plain Python script!\n"))
        .stdout_has(&format!("argv {argv}\n"));
    let dice: Vec<&str> = field(out, "dice").split(' ').collect();
    assert_eq!(dice.len(), 8, "{}", out.stdout);
    assert!(dice.iter().all(|d| matches!(*d, "1" | "2" | "3" | "4" | "5" | "6")), "{}", out.stdout);
    let slept: u64 = field(out, "slept-ms").parse().unwrap();
    assert!(slept >= 50, "time.sleep(0.05) took {slept} ms of the script's monotonic clock");
}

#[test]
fn a_plain_python_script_runs_unmodified() {
    let _one = PYTHON_SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
    built("examples/python-script/script.wasm");
    let dir = example("python-script");
    // The script is the file in examples/, untouched: nothing of weft in it.
    let script = std::fs::read_to_string(root().join("examples/python-script/script.py")).unwrap();
    assert!(!script.contains("weft") && !script.contains("wit_world"), "script.py must stay a plain script");

    let out = run(&dir);
    out.ok();
    check_script_output(&out, "weft", "['script.py', 'weft']");
    // os.environ is the manifest's [wasi] env, nothing of the host's.
    assert_eq!(field(&out, "env"), "LANG=C.UTF-8 TZ=UTC");
    let time: i64 = field(&out, "time").parse().unwrap();
    assert!((unix_now() - 120..=unix_now()).contains(&time), "time.time() {time} is not now ({})", unix_now());

    // Two runs draw different dice: `random` is seeded at run time, not
    // frozen in the build-time snapshot.
    let again = run(&dir);
    again.ok();
    assert_ne!(field(&out, "dice"), field(&again, "dice"), "two runs rolled the same dice");

    // It is a WASI command composed with the shipped `wasi` component.
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("shipped, composed into script");
}

#[test]
fn time_warp_reaches_python_time_time() {
    let _one = PYTHON_SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
    let skew = "[app]\ncomponent = \"script.wasm\"\nargs = [\"script.py\"]\n\n[devices.clock]\nkind = \"clock\"\nbackend = \"system\"\nfilters = [{ component = \"clock-skew\", config = { offset = \"-24h\", rate = 0.5 } }]\n";
    let out = run(&python_script("python-script-warp", skew));
    out.ok();
    check_script_output(&out, "world", "['script.py']");
    let time: i64 = field(&out, "time").parse().unwrap();
    let day_ago = unix_now() - 86_400;
    assert!((day_ago - 120..=day_ago + 1).contains(&time), "time.time() {time}, expected a day back: {day_ago}");
    // datetime follows: the date printed is yesterday's.
    let date = field(&out, "date");
    assert!(date.ends_with(" UTC") && date.len() == 23, "{date}");
}

#[test]
fn a_python_script_that_exits_with_an_error_fails_the_run() {
    let _one = PYTHON_SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
    let m = "[app]\ncomponent = \"script.wasm\"\nargs = [\"script.py\", \"--fail\"]\n";
    let out = run(&python_script("python-script-fail", m));
    // sys.exit("message"): the message on stderr (the console), status 1,
    // and no trap.
    out.code(1).stdout_has("failing as asked\n");
    assert!(!out.stderr.contains("trap"), "{}", out.stderr);
    // A script the component does not hold: python's own complaint.
    let m = "[app]\ncomponent = \"script.wasm\"\nargs = [\"other.py\"]\n";
    let out = run(&python_script("python-script-missing", m));
    out.code(1).stdout_has("python: can't open file 'other.py'").stdout_has("script.py");
}

#[test]
fn a_plain_python_script_boots_on_bare_metal() {
    let _one = PYTHON_SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
    if !std::path::Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is missing: run ./setup.sh --deps");
    }
    built("examples/python-script/script.wasm");
    let dir = example("python-script");
    let t = std::time::Instant::now();
    let metal = weft(&["boot", dir.to_str().unwrap(), "--qemu-timeout", "120"]);
    metal.ok();
    check_script_output(&metal, "weft", "['script.py', 'weft']");
    assert_eq!(field(&metal, "env"), "LANG=C.UTF-8 TZ=UTC");
    let time: i64 = field(&metal, "time").parse().unwrap();
    assert!((unix_now() - 180..=unix_now()).contains(&time), "time.time() {time} on bare metal, now {}", unix_now());
    eprintln!("weft boot python-script: {:.1} s (compile included when the cache was cold)", t.elapsed().as_secs_f64());
}

// ---- A Rust CLI crate from crates.io, unmodified --------------------------

/// A scratch folder holding ulid-cli (examples/rust-cli/ulid.wasm) and `manifest_text`.
fn rust_cli(name: &str, manifest_text: &str) -> PathBuf {
    built("examples/rust-cli/ulid.wasm");
    let dir = manifest(name, manifest_text);
    std::fs::copy(root().join("examples/rust-cli/ulid.wasm"), dir.join("ulid.wasm")).unwrap();
    dir
}

/// A ULID split into its wall clock (ms since the epoch) and its 16
/// random characters (Crockford base32).
fn ulid(s: &str) -> (i64, &str) {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    assert_eq!(s.len(), 26, "not a ULID: {s:?}");
    let ms = s[..10].chars().fold(0i64, |v, c| v * 32 + ALPHABET.find(c).unwrap_or_else(|| panic!("{s:?}")) as i64);
    (ms, &s[10..])
}

fn ulids(out: &Run) -> Vec<(i64, String)> {
    out.ok();
    out.stdout.lines().map(ulid).map(|(ms, r)| (ms, r.to_string())).collect()
}

#[test]
fn a_rust_cli_from_crates_io_runs_unmodified() {
    built("examples/rust-cli/ulid.wasm");
    let dir = example("rust-cli");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let out = run(&dir);
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let got = ulids(&out);
    assert_eq!(got.len(), 3, "--count 3:\n{}", out.stdout);
    for (ms, _) in &got {
        assert!((before..=after).contains(ms), "a ULID of this run carries {ms}, not within [{before}, {after}]");
    }
    // 80 random bits each, from the OS through the random device.
    assert!(got[0].1 != got[1].1 && got[1].1 != got[2].1, "{}", out.stdout);
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("shipped, composed into ulid");

    // Its other mode: a ULID in, its time out (clap parsed the argument).
    let m = "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"01M8DG4VMRPN0KH9J9HE4TMVEG\"]\n";
    run(&rust_cli("rust-cli-parse", m)).ok().stdout_has("1795749473944\n");
    // --help is clap's, through the console.
    let m = "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"--help\"]\n";
    run(&rust_cli("rust-cli-help", m)).ok().stdout_has("Usage: ulid [OPTIONS] [TIMESTAMP_OR_ULID]");
}

#[test]
fn time_warp_and_a_seeded_random_device_show_in_a_rust_cli() {
    let m = |seed: u64| {
        format!(
            "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"--count\", \"3\"]\n\n\
             [devices.random]\nkind = \"random\"\nbackend = \"seeded\"\nseed = {seed}\n\n\
             [devices.clock]\nkind = \"clock\"\nbackend = \"system\"\n\
             filters = [{{ component = \"clock-skew\", config = {{ offset = \"-24h\" }} }}]\n"
        )
    };
    let day_ago = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 - 86_400_000;
    let before = day_ago();
    let first = ulids(&run(&rust_cli("rust-cli-seed7", &m(7))));
    let again = ulids(&run(&rust_cli("rust-cli-seed7-again", &m(7))));
    let other = ulids(&run(&rust_cli("rust-cli-seed8", &m(8))));
    let after = day_ago();
    // The clock part: a day back.
    for (ms, _) in first.iter().chain(&again).chain(&other) {
        assert!((before..=after).contains(ms), "ULID time {ms} is not a day back: [{before}, {after}]");
    }
    // The random part: the same bits from the same seed, other bits from another.
    let random = |v: &[(i64, String)]| v.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>();
    assert_eq!(random(&first), random(&again), "seed 7 twice");
    assert_ne!(random(&first), random(&other), "seeds 7 and 8");
}

#[test]
fn a_rust_cli_writes_files_in_a_memory_preopen() {
    // `-o FILE` writes the ULIDs to a file: denied without a preopen (the
    // crate prints the error itself and exits 0), written with one.
    let denied = run(&rust_cli("rust-cli-nofs", "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"-o\", \"/tmp/ids.txt\"]\n"));
    denied.ok().stdout_has("Error: No such file or directory");
    let m = "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"-o\", \"/tmp/ids.txt\"]\n\n[wasi]\npreopens = { \"/tmp\" = \"memory\" }\n";
    let written = run(&rust_cli("rust-cli-memfs", m));
    written.ok();
    assert!(!written.stdout.contains("Error"), "{}", written.stdout);
}

#[test]
fn a_rust_cli_boots_on_bare_metal_with_the_same_seeded_bits() {
    if !std::path::Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is missing: run ./setup.sh --deps");
    }
    let m = "[app]\ncomponent = \"ulid.wasm\"\nargs = [\"--count\", \"2\"]\n\n[devices.random]\nkind = \"random\"\nbackend = \"seeded\"\nseed = 42\n";
    let linux = ulids(&run(&rust_cli("rust-cli-linux", m)));
    let metal = weft(&["boot", rust_cli("rust-cli-metal", m).to_str().unwrap(), "--qemu-timeout", "120"]);
    let metal = ulids(&metal);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(metal.iter().all(|(ms, _)| (now - 180_000..=now).contains(ms)), "{metal:?} vs now {now}");
    let random = |v: &[(i64, String)]| v.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>();
    assert_eq!(random(&metal), random(&linux), "the seeded random device gives both hosts the same bits");
}

// ---- Across languages: a Python app using the Rust kv provider -----------

/// Rewrites the `args = ...` line of `dir`'s weft.toml.
fn set_args(dir: &std::path::Path, args: &str) {
    let path = dir.join("weft.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: Vec<String> =
        text.lines().map(|l| if l.starts_with("args = ") { format!("args = {args}") } else { l.to_string() }).collect();
    std::fs::write(&path, text.join("\n") + "\n").unwrap();
}

/// Both kv tests use one 19 MB component: one compiles it, the other waits.
static PYTHON_KV: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_python_app_keeps_data_in_the_rust_kv_provider() {
    let _one = PYTHON_KV.lock().unwrap_or_else(|e| e.into_inner());
    built("examples/kv-python/kv-client.wasm");
    let dir = example("kv-python");
    // The example as shipped: sets two keys, reads one back, lists them.
    let first = run(&dir);
    first.ok();
    assert_eq!(first.stdout, "set greeting\nset language\ngreeting = hello from Python\nkeys: greeting language\n");
    // A second run reads what the first wrote to kv.img.
    set_args(&dir, r#"["get", "language", "get", "colour", "set", "colour", "blue", "keys"]"#);
    let second = run(&dir);
    second.ok();
    assert_eq!(second.stdout, "language = python\ncolour is not set\nset colour\nkeys: colour greeting language\n");
    // `check` shows the Rust provider composed into the Python app.
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("shipped, composed into kv-client");

    // The Rust kvstore app reads the same image: one on-disk format.
    let kvstore = |key: &str| {
        let m = format!(
            "[app]\ncomponent = \"kvstore\"\nargs = [\"get\", \"{key}\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"kv.img\"\n"
        );
        std::fs::write(dir.join("weft.toml"), m).unwrap();
        run(&dir)
    };
    kvstore("greeting").ok().stdout_has("hello from Python\n");
    kvstore("colour").ok().stdout_has("blue\n");
}

#[test]
fn a_python_kv_client_reports_errors_and_usage() {
    let _one = PYTHON_KV.lock().unwrap_or_else(|e| e.into_inner());
    built("examples/kv-python/kv-client.wasm");
    let dir = example("kv-python");
    set_args(&dir, r#"["get"]"#);
    run(&dir).code(2).stdout_has("kv-client: get needs 1 argument(s)\nusage: kv-client");
    // The provider's error (its device is not in the manifest) reaches the
    // Python app as an `Err`, printed, not a trap.
    let text = std::fs::read_to_string(dir.join("weft.toml")).unwrap().replace("device = \"storage\"", "device = \"elsewhere\"");
    std::fs::write(dir.join("weft.toml"), text).unwrap();
    set_args(&dir, r#"["keys"]"#);
    let out = run(&dir);
    out.code(1).stdout_has("error: open elsewhere: not-found\n");
    assert!(!out.stderr.contains("trap"), "{}", out.stderr);
}

// ---- The call-cost mode the benchmark uses (host-posix/benches/polyglot.rs) ----

#[test]
fn each_hello_times_device_calls_for_the_benchmark() {
    // `now N`: N clock.monotonic-now calls timed inside the app.
    for lang in ["c", "js"] {
        let dir = hello_example(lang);
        std::fs::write(dir.join("weft.toml"), "[app]\ncomponent = \"hello.wasm\"\nargs = [\"now\", \"1000\"]\n").unwrap();
        let out = run(&dir);
        out.ok();
        let ns: f64 = field(&out, "ns/call").parse().unwrap_or_else(|_| panic!("{lang}: {}", out.stdout));
        assert!(ns > 0.0 && ns < 1e6, "{lang}: {ns} ns/call");
    }
    // The stock script that times time.monotonic_ns(), in the same component
    // as script.py (the first argument picks the script, as for `python`).
    let _one = PYTHON_SCRIPT.lock().unwrap_or_else(|e| e.into_inner());
    let out = run(&python_script("python-clock-loop", "[app]\ncomponent = \"script.wasm\"\nargs = [\"clock_loop.py\", \"1000\"]\n"));
    out.ok();
    let ns: f64 = field(&out, "ns/call").parse().unwrap();
    assert!(ns > 0.0 && ns < 1e6, "python script: {ns} ns/call");
}

#[test]
fn a_missing_toolchain_is_named_with_its_fix() {
    // A PATH without the user's Python (pyenv) and cargo bins: componentize-py
    // is not found, and build.sh says so before building anything.
    let out = std::process::Command::new("/bin/bash")
        .arg(root().join("components/polyglot/build.sh"))
        .args(["--check", "python"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(err.contains("componentize-py 0.25.1 is needed"), "stderr:\n{err}");
    assert!(err.contains("fix: ./setup.sh --polyglot"), "stderr:\n{err}");
    assert!(err.contains("pip install -r components/polyglot/python/requirements.txt"), "stderr:\n{err}");
}
