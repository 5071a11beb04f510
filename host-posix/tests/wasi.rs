//! Stock WASI programs on weft: an app that imports `wasi:*` is composed
//! with the shipped `wasi` component, so its std calls reach weft devices —
//! the console, the (filtered) clock, random, exit — on Linux and on bare
//! metal alike; its files are a tar image on a block device (read-only) and
//! memory (writable), its sockets the manifest's `[stack]`. Also: every WASI
//! 0.2.x version links, and imports weft does not provide are listed by name
//! and version before anything runs.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8, false).unwrap();
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

// ---- Files: a tar image on a block device, and memory ----

const HELLO: &str = "hello from a tar image\n";

/// 150000 bytes: more than one tar block and one read of the device.
fn big() -> Vec<u8> {
    (0..150_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// 64-bit FNV-1a, as the program prints it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// `dir/data.img`: a tar archive (made by GNU tar) of hello.txt, sub/big.bin
/// and the empty directory sub/empty.
fn tar_image(dir: &Path) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
    std::fs::write(tree.join("hello.txt"), HELLO).unwrap();
    std::fs::write(tree.join("sub/big.bin"), big()).unwrap();
    let status = Command::new("tar")
        .args(["--format=gnu", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--sort=name", "-cf"])
        .arg(dir.join("data.img"))
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(status.success(), "tar failed");
}

/// The stock program with `args`, the block device `files` (the file
/// `data.img`, read-only) as the tar preopen /data and memory as /tmp.
fn files_manifest(args: &str) -> String {
    format!(
        "{}\n[devices.files]\nkind = \"block\"\nbackend = \"file\"\npath = \"data.img\"\nread-only = true\n\n[wasi]\npreopens = {{ \"/data\" = \"tar:files\", \"/tmp\" = \"memory\" }}\n\n[limits]\ntimeout = \"30s\"\n",
        app(args)
    )
}

/// Every file operation the tests check, in one run.
const FILES_TOUR: &str = r#"["fs", "ls:/data", "read:/data/hello.txt", "read:/data/sub/big.bin", "write:/data/new.txt", "write:/data/hello.txt", "scratch:/tmp", "read:/data/../../etc/passwd"]"#;

fn files_run(name: &str) -> std::path::PathBuf {
    let dir = stock(name, &files_manifest(FILES_TOUR));
    tar_image(&dir);
    dir
}

fn no_trap(out: &Run) {
    assert!(!out.stderr.contains("trap"), "a trap:\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
}

#[test]
fn a_tar_image_is_a_read_only_tree() {
    let out = run(&files_run("wasi-tar"));
    out.ok()
        // The listing: sorted, with sizes; directories (also empty ones) recurse.
        .stdout_has("ls /data\n  file hello.txt 23\n  dir sub\n    file big.bin 150000\n    dir empty\n")
        .stdout_has(&format!("read /data/hello.txt: 23 bytes, fnv {:016x}, {HELLO:?}\n", fnv(HELLO.as_bytes())))
        .stdout_has(&format!("read /data/sub/big.bin: 150000 bytes, fnv {:016x}, 00070e151c232a31\n", fnv(&big())))
        // Writing a new file or over an archived one is read-only.
        .stdout_has("write /data/new.txt: err ReadOnlyFilesystem")
        .stdout_has("write /data/hello.txt: err ReadOnlyFilesystem")
        // The preopen and its counts are logged.
        .stderr_has("preopen /data: tar archive on block device `files`, 2 files, 3 directories");
}

#[test]
fn a_memory_preopen_is_writable() {
    let out = run(&files_run("wasi-memory"));
    out.ok().stdout_has(concat!(
        "scratch write: ok\n",
        "scratch read: ok \"hello scratch\"\n",
        "scratch rename: ok\n",
        "scratch read renamed: ok \"hello scratch\"\n",
        "scratch read old: err NotFound",
    ));
    out.stdout_has("scratch remove: ok\nscratch read removed: err NotFound").stdout_has("scratch list: ok 0 entries\n");
}

#[test]
fn a_path_escaping_its_preopen_is_refused() {
    let m = files_manifest(r#"["fs", "read:/data/../../etc/passwd", "read:/tmp/../etc/passwd", "read:/data/sub/../../../etc/passwd", "read:/data/sub/../hello.txt"]"#);
    let dir = stock("wasi-escape", &m);
    tar_image(&dir);
    run(&dir)
        .ok()
        .stdout_has("read /data/../../etc/passwd: err PermissionDenied")
        .stdout_has("read /tmp/../etc/passwd: err PermissionDenied")
        .stdout_has("read /data/sub/../../../etc/passwd: err PermissionDenied")
        // `..` inside the preopen is fine.
        .stdout_has("read /data/sub/../hello.txt: 23 bytes");
}

/// `len` bytes of xorshift64 noise from `seed`: an image that is no format at all.
fn noise(mut x: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_garbage_image_is_an_io_error_naming_the_device() {
    let m = files_manifest(r#"["fs", "ls:/data", "read:/data/hello.txt", "scratch:/tmp"]"#);
    let dir = stock("wasi-garbage", &m);
    let garbage = noise(0x9e37_79b9_7f4a_7c15, 16_384);
    std::fs::write(dir.join("data.img"), garbage).unwrap();
    let out = run(&dir);
    out.ok()
        .stdout_has("ls /data\n  err ")
        .stderr_has("[wasi] preopen /data: block device `files`: not a usable tar archive");
    let line = out.stdout.lines().find(|l| l.starts_with("read /data/hello.txt:")).unwrap();
    assert!(line.contains("I/O error"), "{line}");
    // The other preopen still works.
    out.stdout_has("scratch list: ok 0 entries");
    no_trap(&out);
}

#[test]
fn files_read_the_same_on_bare_metal() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is missing: run ./setup.sh --deps");
    }
    let linux = run(&files_run("wasi-files-linux"));
    let metal = weft(&["boot", files_run("wasi-files-metal").to_str().unwrap(), "--qemu-timeout", "60"]);
    linux.ok().stdout_has("scratch list: ok 0 entries");
    metal.ok();
    assert_eq!(metal.stdout, linux.stdout, "bare metal stderr:\n{}", metal.stderr);
}

// ---- Sockets: the manifest's [stack] ----

#[test]
fn a_stock_echo_server_serves_on_the_host_stack() {
    let port = free_port();
    let m = format!("{}\n[stack]\nbackend = \"host\"\n\n[limits]\ntimeout = \"30s\"\n", app(&format!(r#"["serve", "{port}", "1"]"#)));
    let dir = stock("wasi-echo-host", &m);
    let child = weft_cmd(&["run", dir.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let s = connect_retry(&format!("127.0.0.1:{port}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 251) as u8).collect();
    // Send and receive at once, so neither side's buffers need hold it all.
    let mut w = s.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    (&s).read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == data, "echoed {} bytes, not the {} sent", got.len(), data.len());
    let out = output(child.wait_with_output().unwrap());
    out.ok().stdout_has(&format!("listening on port {port}\nconnection 0: echoed 100000 bytes\n"));
}

#[test]
fn without_a_stack_binding_is_access_denied() {
    let out = run(&stock("wasi-no-stack", &app(r#"["serve", "7", "1"]"#)));
    out.code(1)
        .stdout_has("bind port 7: err PermissionDenied")
        .stderr_has("[wasi] denied tcp socket: no network");
    no_trap(&out);
}

/// `weft check` shows what a stock program can reach before it runs: the
/// preopens, nothing else; no sockets without `[stack]`.
#[test]
fn check_lists_what_a_stock_program_can_reach() {
    let dir = stock("check-reach", &files_manifest(r#"["hello"]"#));
    tar_image(&dir);
    weft(&["check", dir.to_str().unwrap()])
        .ok()
        .stdout_has("WASI for the app: files under /data (tar on block `files`, read-only), /tmp (memory, gone at exit) only; no sockets (no [stack])");
    let dir = stock("check-reach-none", &app(r#"["hello"]"#));
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("WASI for the app: no files (no [wasi] preopens); no sockets (no [stack])");
}

// ---- Files: a writable FAT file system on a block device ----

/// The stock program with `args` and `/data` on block device `disk` (the file
/// `disk.img`, created at 8 MiB when missing) as a FAT preopen, through `filters`.
fn fat_manifest(args: &str, filters: &str) -> String {
    format!(
        "{}\n[devices.disk]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"8MiB\"\nfilters = [{filters}]\n\n[wasi]\npreopens = {{ \"/data\" = \"fat:disk\" }}\n\n[limits]\ntimeout = \"30s\"\n",
        app(args)
    )
}

/// Run the stock program in `dir` again with other `args` (same image).
fn rerun(dir: &Path, args: &str, filters: &str) -> Run {
    std::fs::write(dir.join("weft.toml"), fat_manifest(args, filters)).unwrap();
    run(dir)
}

/// `tool args…` (mtools, mkfs.fat) on the host; its stdout.
fn host_tool(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).env("MTOOLS_SKIP_CHECK", "1").output().unwrap_or_else(|e| panic!("{tool}: {e}: run ./setup.sh --deps"));
    assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_fat_disk_keeps_a_programs_files_across_runs_and_mtools_reads_them() {
    let dir = stock("wasi-fat", &fat_manifest(r#"["fs", "mkdir:/data/sub", "put:/data/sub/Hello World.txt=first run", "ls:/data"]"#, ""));
    let first = run(&dir);
    first.ok().stdout_has("mkdir /data/sub: ok\nput /data/sub/Hello World.txt: ok\nls /data\n  dir sub\n    file Hello World.txt 9\n");
    first.stderr_has("[wasi] preopen /data: FAT on block device `disk`: blank, formatted as FAT16");
    // A second run finds them and changes them.
    let second = rerun(&dir, r#"["fs", "read:/data/sub/Hello World.txt", "put:/data/new.txt=second run", "scratch:/data"]"#, "");
    second.ok().stdout_has("read /data/sub/Hello World.txt: 9 bytes").stdout_has("\"first run\"").stdout_has("scratch read renamed: ok \"hello scratch\"");
    second.stderr_has("FAT on block device `disk`: FAT16 file system");
    // Linux's tools read what weft wrote: long names, contents.
    let img = dir.join("disk.img");
    let img = img.to_str().unwrap();
    assert!(host_tool("mdir", &["-i", img, "::/sub"]).contains("Hello World.txt"));
    assert_eq!(host_tool("mtype", &["-i", img, "::/sub/Hello World.txt"]), "first run");
    assert_eq!(host_tool("mtype", &["-i", img, "::/new.txt"]), "second run");
}

/// The sequential benchmark's program, small: 1 MiB writes and reads of a 6 MiB
/// file cross the adapter between the program and the `wasi` component as
/// `list<u8>` (one `memory.copy` each, third_party/wasmtime-environ.patch). The
/// program checks every byte it reads back; mtools reads the same bytes.
#[test]
fn megabyte_writes_and_reads_through_a_fat_disk_keep_every_byte() {
    let dir = stock("wasi-fat-seq", &fat_manifest(r#"["fs", "seq:/data/big=6"]"#, ""));
    let out = run(&dir);
    out.ok().stdout_has("seq /data/big: 6 MiB, write ");
    assert!(!out.stdout.contains("differs") && !out.stdout.contains("read back"), "{}", out.stdout);
    let copy = dir.join("big.copy");
    host_tool("mcopy", &["-n", "-i", dir.join("disk.img").to_str().unwrap(), "::/big", copy.to_str().unwrap()]);
    let bytes = std::fs::read(&copy).unwrap();
    assert_eq!(bytes.len(), 6 << 20);
    let wrong = bytes.iter().enumerate().position(|(i, b)| *b != ((i % (1 << 20)) * 31 % 251) as u8);
    assert_eq!(wrong, None, "the image's copy differs from what the program wrote");
}

#[test]
fn an_image_made_by_mkfs_fat_and_mtools_is_read_and_changed() {
    let dir = stock("wasi-fat-mkfs", &fat_manifest(r#"["fs", "ls:/data", "read:/data/docs/readme.md", "put:/data/docs/reply.txt=from weft", "rm:/data/gone.txt"]"#, ""));
    let img = dir.join("disk.img");
    let img = img.to_str().unwrap();
    host_tool("mkfs.fat", &["-C", img, "4096"]);
    std::fs::write(dir.join("readme.md"), "made on the host\n").unwrap();
    host_tool("mmd", &["-i", img, "::/docs"]);
    host_tool("mcopy", &["-i", img, dir.join("readme.md").to_str().unwrap(), "::/docs/readme.md"]);
    host_tool("mcopy", &["-i", img, dir.join("readme.md").to_str().unwrap(), "::/gone.txt"]);
    let out = run(&dir);
    out.ok()
        .stdout_has("ls /data\n  dir docs\n    file readme.md 17\n  file gone.txt 17\n")
        .stdout_has("read /data/docs/readme.md: 17 bytes, fnv")
        .stdout_has("put /data/docs/reply.txt: ok\nrm /data/gone.txt: ok\n")
        .stderr_has("FAT on block device `disk`: FAT12 file system");
    assert_eq!(host_tool("mtype", &["-i", img, "::/docs/reply.txt"]), "from weft");
    assert!(!host_tool("mdir", &["-i", img, "::/"]).contains("gone"), "removed on the host's view too");
    // And the host's fsck finds nothing wrong but the dirty bit (fatfs clears it
    // only at unmount, which a run never reaches).
    let fsck = Command::new("fsck.fat").args(["-n", img]).output().unwrap();
    let text = String::from_utf8_lossy(&fsck.stdout);
    let known = ["fsck.fat", "Dirty bit is set", " Automatically removing dirty bit", "Leaving filesystem unchanged", ""];
    let other: Vec<&str> = text.lines().filter(|l| !known.iter().any(|k| l.starts_with(k)) && !l.contains(" files, ")).collect();
    assert!(other.is_empty(), "fsck.fat found more than the dirty bit:\n{text}");
}

#[test]
fn a_corrupt_fat_image_is_io_errors_and_a_log_event_naming_the_device() {
    let dir = stock("wasi-fat-corrupt", &fat_manifest(r#"["fs", "ls:/data", "read:/data/x.txt", "put:/data/y.txt=y"]"#, ""));
    let garbage = noise(0x2545_f491_4f6c_dd1d, 1 << 20);
    std::fs::write(dir.join("disk.img"), &garbage).unwrap();
    let out = run(&dir);
    no_trap(&out);
    out.ok().stdout_has("ls /data\n  err ").stderr_has("[wasi] preopen /data: block device `disk`: not a usable FAT file system");
    for op in ["read /data/x.txt:", "put /data/y.txt:"] {
        let line = out.stdout.lines().find(|l| l.starts_with(op)).unwrap();
        assert!(line.contains("err"), "{line}");
    }
    assert!(std::fs::read(dir.join("disk.img")).unwrap() == garbage, "a corrupt image is never written");
}

/// The calls of `op` on `disk`'s hop into the host, from `weft run --stats` (no row: 0).
fn stat_calls(out: &Run, op: &str) -> u64 {
    assert!(out.stderr.contains("weft: stats"), "no stats in\n{}", out.stderr);
    out.stderr
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() > 5 && w[0] == "disk" && w[2] == "->" && w[3] == "host" && w[4] == op)
        .map_or(0, |w| w[5].parse().unwrap())
}

/// What a `fat:` disk sends to its device and when (docs/devices.md): nothing
/// before a sync or the end of the run; at a sync of a file that grew, the
/// data and clusters, a flush, the entry that names them, a flush.
#[test]
fn fat_writes_reach_the_device_through_the_filters_at_sync_or_the_end_of_the_run() {
    let trace = "{ component = \"block-trace\" }";
    let dir = stock("wasi-fat-sync", &fat_manifest(r#"["fs", "putnosync:/data/a.txt=a"]"#, trace));
    let nosync = weft(&["run", "--stats", dir.to_str().unwrap()]);
    nosync.ok().stderr_has("[block-trace] write disk sector").stderr_has("[block-trace] flush disk");
    assert_eq!(stat_calls(&nosync, "flush"), 2, "no sync: the end of the run writes back, in order");
    assert!(stat_calls(&nosync, "write") > 0);
    std::fs::write(dir.join("weft.toml"), fat_manifest(r#"["fs", "put:/data/a.txt=a", "put:/data/b.txt=b"]"#, trace)).unwrap();
    let synced = weft(&["run", "--stats", dir.to_str().unwrap()]);
    synced.ok();
    // `File::create` of the existing a.txt truncates it: one flush publishes
    // the empty entry before its cluster is freed; then two per sync_all of a
    // file that grew; nothing is left for the end of the run.
    assert_eq!(stat_calls(&synced, "flush"), 5, "{}", synced.stderr);
    // A trap is a crash: what was not synced never reaches the device.
    std::fs::write(dir.join("weft.toml"), fat_manifest(r#"["fs", "putnosync:/data/c.txt=c", "panic:the machine dies"]"#, trace)).unwrap();
    let crashed = weft(&["run", "--stats", dir.to_str().unwrap()]);
    crashed.code(70).stdout_has("the machine dies");
    assert_eq!((stat_calls(&crashed, "write"), stat_calls(&crashed, "flush")), (0, 0), "{}", crashed.stderr);
    rerun(&dir, r#"["fs", "ls:/data"]"#, "").ok().stdout_has("a.txt").stdout_has("b.txt");
    let after = rerun(&dir, r#"["fs", "ls:/data"]"#, "");
    assert!(!after.stdout.contains("c.txt"), "{}", after.stdout);
}

#[test]
fn fat_writes_block_fault_drops_are_lost_after_reopen() {
    let dir = stock("wasi-fat-drop", &fat_manifest(r#"["fs", "put:/data/kept.txt=kept"]"#, ""));
    run(&dir).ok();
    // Every write acknowledged and dropped: the run itself reads its data back (from
    // the cache), the next run finds it gone.
    let drop = "{ component = \"block-fault\", config = { drop-every = 1 } }";
    let lossy = rerun(&dir, r#"["fs", "put:/data/lost.txt=lost", "read:/data/lost.txt"]"#, drop);
    lossy.ok().stdout_has("put /data/lost.txt: ok").stdout_has("\"lost\"").stderr_has("[block-fault] dropped write");
    let after = rerun(&dir, r#"["fs", "read:/data/lost.txt", "read:/data/kept.txt"]"#, "");
    after.ok().stdout_has("read /data/lost.txt: err NotFound").stdout_has("\"kept\"");
}

#[test]
fn check_shows_a_fat_preopen_and_a_missing_device_is_refused() {
    let dir = stock("check-fat", &fat_manifest(r#"["hello"]"#, ""));
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("files under /data (FAT on block `disk`, writable) only");
    let bad = stock("check-fat-bad", &format!("{}\n[wasi]\npreopens = {{ \"/data\" = \"fat:nope\" }}\n", app(r#"["hello"]"#)));
    weft(&["check", bad.to_str().unwrap()]).code(2).stderr_has("`nope` is not a block device (none is declared)").stderr_has("a FAT file system");
}

#[test]
fn hard_links_in_a_memory_preopen_share_the_file() {
    let m = format!("{}\n[wasi]\npreopens = {{ \"/tmp\" = \"memory\" }}\n", app(r#"["fs", "put:/tmp/a=first", "ln:/tmp/a=/tmp/b", "put:/tmp/b=second", "read:/tmp/a", "rm:/tmp/a", "read:/tmp/b", "ln:/tmp/b=/tmp/b", "ln:/tmp=/tmp/d"]"#));
    let out = run(&stock("wasi-hard-links", &m));
    out.ok()
        .stdout_has("ln /tmp/a /tmp/b: ok\n")
        .stdout_has("read /tmp/a: 6 bytes, fnv")
        .stdout_has("\"second\"\nrm /tmp/a: ok\nread /tmp/b: 6 bytes")
        .stdout_has("ln /tmp/b /tmp/b: err AlreadyExists")
        .stdout_has("ln /tmp /tmp/d: err");
}

#[test]
fn a_fat_disk_written_under_weft_boot_is_read_by_mtools_and_weft_run() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is missing: run ./setup.sh --deps");
    }
    let dir = stock("wasi-fat-metal", &fat_manifest(r#"["fs", "mkdir:/data/sub", "put:/data/sub/from metal.txt=booted", "putnosync:/data/late.txt=late"]"#, ""));
    weft(&["boot", dir.to_str().unwrap(), "--qemu-timeout", "60"]).ok().stdout_has("put /data/sub/from metal.txt: ok\nputnosync /data/late.txt: ok\n");
    let img = dir.join("disk.img");
    let img = img.to_str().unwrap();
    assert_eq!(host_tool("mtype", &["-i", img, "::/sub/from metal.txt"]), "booted");
    // The kernel sends what it still holds when the run ends normally.
    assert_eq!(host_tool("mtype", &["-i", img, "::/late.txt"]), "late");
    // And weft run reads it back.
    rerun(&dir, r#"["fs", "read:/data/sub/from metal.txt"]"#, "").ok().stdout_has("\"booted\"");
}
