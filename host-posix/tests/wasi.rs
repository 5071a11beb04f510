//! Stock WASI programs on weft: an app that imports `wasi:*` is composed
//! with the shipped `wasi` component, so its std calls reach weft devices —
//! the console, the (filtered) clock, random, exit — on Linux and on bare
//! metal alike. Also: every WASI 0.2.x version links, and imports weft does
//! not provide are listed by name and version before anything runs.

mod common;
use common::*;

use std::path::Path;

/// A scratch folder with the stock program as `stock.wasm` and a manifest.
fn stock(name: &str, manifest: &str) -> std::path::PathBuf {
    let dir = common::manifest(name, manifest);
    test_component(&dir, "wasi-stock", "stock.wasm");
    dir
}

fn app(args: &str) -> String {
    format!("[app]\ncomponent = \"stock.wasm\"\nargs = {args}\n")
}

#[test]
fn a_stock_program_prints_through_the_console() {
    let dir = stock("wasi-hello", &app("[]"));
    run(&dir).ok().stdout_has("hello from a stock WASI program\n").stdout_has("and this went to stderr\n");
    // `check` shows the composition: the app and the wasi component in it.
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("shipped, composed into stock");
}

#[test]
fn args_env_and_cwd_come_from_the_manifest() {
    let m = format!("{}\n[wasi]\nenv = {{ GREETING = \"hi there\", LANG = \"C\" }}\ncwd = \"/\"\n", app(r#"["env", "two words"]"#));
    let out = run(&stock("wasi-env", &m));
    out.ok()
        .stdout_has("args [\"env\", \"two words\"]\n")
        .stdout_has("env GREETING=hi there\nenv LANG=C\n")
        .stdout_has("cwd Some(\"/\")");
}

#[test]
fn exit_ends_the_run_with_its_code_and_is_not_a_trap() {
    let ok = run(&stock("wasi-exit0", &app(r#"["exit", "0"]"#)));
    ok.ok();
    // WASI 0.2.6 (what Rust std imports) can only say ok/err: any non-zero is 1.
    let err = run(&stock("wasi-exit3", &app(r#"["exit", "3"]"#)));
    err.code(1);
    assert!(!err.stderr.contains("trap"), "an exit is not a trap:\n{}", err.stderr);
}

#[test]
fn a_panic_is_a_trap_that_names_the_app() {
    let out = run(&stock("wasi-panic", &app(r#"["panic"]"#)));
    out.code(70).stderr_has("stock (app)");
}

#[test]
fn stdin_is_empty_and_files_are_denied_by_default() {
    run(&stock("wasi-stdin", &app(r#"["stdin"]"#))).ok().stdout_has("stdin Ok(0)");
    let out = run(&stock("wasi-files", &app(r#"["files", "/etc/passwd"]"#)));
    out.ok().stdout_has("cannot read /etc/passwd");
}

fn wall_and_sleep(out: &Run) -> (u64, u64) {
    let field = |k: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k:?} in\n{}", out.stdout))
            .trim()
            .parse()
            .unwrap()
    };
    (field("wall "), field("slept-ms "))
}

#[test]
fn time_warp_reaches_the_programs_clock() {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let plain = run(&stock("wasi-time", &app(r#"["time"]"#)));
    plain.ok();
    let (wall, slept) = wall_and_sleep(&plain);
    assert!(wall.abs_diff(now()) < 120, "wall {wall} vs host {}", now());
    assert!(slept >= 30, "slept {slept} ms");

    // The same build under clock-skew: a day back, half speed.
    let skew = "\n[devices.clock]\nkind = \"clock\"\nbackend = \"system\"\nfilters = [{ component = \"clock-skew\", config = { offset = \"-24h\", rate = 0.5 } }]\n";
    let warped = run(&stock("wasi-time-warp", &format!("{}{skew}", app(r#"["time"]"#))));
    warped.ok();
    let (wall, slept) = wall_and_sleep(&warped);
    let day = 86_400;
    assert!(wall.abs_diff(now() - day) < 120, "warped wall {wall}, expected about {}", now() - day);
    // The program asked for 30 ms of its own (skewed) time, and got it.
    assert!(slept >= 30, "slept {slept} ms");
}

/// The WIT of WASI 0.2.12 (vendored in wit/deps) renamed to version
/// 0.2.`minor`, in dependency order. (The real 0.2.x releases only add
/// items; Rust std's 0.2.6 imports are linked for real by the tests above.)
fn wasi_wit(resolve: &mut wit_parser::Resolve, minor: u32) {
    for pkg in ["io", "clocks", "random", "filesystem", "sockets", "cli"] {
        let text = std::fs::read_to_string(root().join("wit/deps").join(format!("{pkg}.wit"))).unwrap();
        let mut text = text.replace("@0.2.12", &format!("@0.2.{minor}"));
        // Items added after 0.2.`minor` keep their place but claim that
        // version (wit-parser refuses gates from the future): a superset of
        // the real 0.2.`minor`, under its name.
        for later in minor + 1..=12 {
            text = text.replace(&format!("@since(version = 0.2.{later})"), &format!("@since(version = 0.2.{minor})"));
        }
        resolve.push_str(format!("{pkg}.wit"), &text).unwrap();
    }
}

/// A component of `world` (WIT text using the WASI packages at 0.2.`minor`).
fn component_for(minor: u32, world: &str, extra: &[&str]) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    wasi_wit(&mut resolve, minor);
    for text in extra {
        resolve.push_str("extra.wit", text).unwrap();
    }
    let pkg = resolve.push_str("world.wit", world).unwrap();
    let world = resolve.select_world(&[pkg], None).unwrap();
    let mut module = wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

/// Every interface a stock program may import from the `wasi` component.
const INTERFACES: &[&str] = &[
    "cli/environment", "cli/exit", "cli/stdin", "cli/stdout", "cli/stderr", "cli/terminal-input",
    "cli/terminal-output", "cli/terminal-stdin", "cli/terminal-stdout", "cli/terminal-stderr",
    "clocks/monotonic-clock", "clocks/wall-clock", "random/random", "random/insecure", "random/insecure-seed",
    "io/error", "io/poll", "io/streams", "filesystem/types", "filesystem/preopens", "sockets/network",
    "sockets/instance-network", "sockets/ip-name-lookup", "sockets/tcp", "sockets/tcp-create-socket",
    "sockets/udp", "sockets/udp-create-socket",
];

fn command_world(minor: u32, extra_imports: &[&str]) -> String {
    let mut w = String::from("package test:stock;\nworld stock {\n");
    for i in INTERFACES {
        w.push_str(&format!("  import wasi:{i}@0.2.{minor};\n"));
    }
    for i in extra_imports {
        w.push_str(&format!("  import {i};\n"));
    }
    w.push_str(&format!("  export wasi:cli/run@0.2.{minor};\n}}\n"));
    w
}

#[test]
fn every_wasi_0_2_version_links() {
    let wasi = weft::run::SHIPPED.iter().find(|(n, _)| *n == "wasi").unwrap().1;
    for minor in 0..=12 {
        let app = component_for(minor, &command_world(minor, &[]), &[]);
        let composed = weft_runtime::compose::compose(&app, &[weft_runtime::compose::Provider { name: "wasi", bytes: wasi }])
            .unwrap_or_else(|e| panic!("0.2.{minor}: {e}"));
        let imports = weft_runtime::compose::imports(&composed).unwrap();
        assert!(imports.iter().all(|i| i.starts_with("weft:devices/")), "0.2.{minor}: left over: {imports:?}");
        wasmparser_validate(&composed, minor);
    }
    // And one all the way through `weft check` (compile + link-check).
    let dir = common::manifest("wasi-0.2.0", "[app]\ncomponent = \"app.wasm\"\n");
    std::fs::write(dir.join("app.wasm"), component_for(0, &command_world(0, &[]), &[])).unwrap();
    weft(&["check", dir.to_str().unwrap()]).ok();
}

fn wasmparser_validate(bytes: &[u8], minor: u32) {
    let mut v = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    v.validate_all(bytes).unwrap_or_else(|e| panic!("0.2.{minor}: the composition is invalid: {e}"));
}

#[test]
fn wasi_imports_weft_does_not_provide_are_all_listed() {
    let kv = "package wasi:keyvalue@0.2.0-draft;\ninterface store { get: func(key: string) -> option<string>; }\ninterface atomics { increment: func(key: string, by: u64) -> u64; }\n";
    let world = command_world(3, &["wasi:keyvalue/store@0.2.0-draft", "wasi:keyvalue/atomics@0.2.0-draft"]);
    let dir = common::manifest("wasi-unprovided", "[app]\ncomponent = \"app.wasm\"\n");
    std::fs::write(dir.join("app.wasm"), component_for(3, &world, &[kv])).unwrap();
    let out = weft(&["check", dir.to_str().unwrap()]);
    out.code(2)
        .stderr_has("weft.toml:1: `app.component`")
        .stderr_has("wasi:keyvalue/atomics@0.2.0-draft, wasi:keyvalue/store@0.2.0-draft")
        .stderr_has("0.2.0-0.2.12");
}

#[test]
fn a_stock_program_boots_on_bare_metal_like_on_linux() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is missing: run ./setup.sh --deps");
    }
    let m = format!("{}\n[wasi]\nenv = {{ WHERE = \"anywhere\" }}\n", app(r#"["env", "x"]"#));
    let linux = run(&stock("wasi-env-linux", &m));
    let metal = weft(&["boot", stock("wasi-env-metal", &m).to_str().unwrap(), "--qemu-timeout", "60"]);
    linux.ok();
    metal.ok();
    assert_eq!(metal.stdout, linux.stdout, "bare metal stderr:\n{}", metal.stderr);
}
