//! The bare-metal target: every example boots the weft kernel under QEMU
//! (TCG) and prints what `weft run` prints on Linux; bad bundles and
//! unmappable devices fail clearly; networking over virtio-net answers real
//! clients (TAP in a network namespace, as root) and other unikernels (the
//! `udp` link, unprivileged). Needs `qemu-system-x86_64` and the kernel
//! (`cargo build -p weft-baremetal --target x86_64-unknown-none --release`;
//! test.sh builds it, `weft boot` builds it when missing).

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weft_runtime::bundle::{Bundle, checksum};
use weft_runtime::engine::Target;

/// Each QEMU boot is killed after this many seconds.
const QEMU_TIMEOUT: &str = "60";

fn boot(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["boot", dir.to_str().unwrap(), "--qemu-timeout", QEMU_TIMEOUT];
    args.extend_from_slice(extra);
    weft(&args)
}

/// What legitimately differs between two runs: times and random bytes.
fn mask(s: &str) -> String {
    s.lines()
        .map(|l| match l.split_once(": ") {
            Some((k @ ("wall clock" | "monotonic" | "random"), _)) => format!("{k}: *"),
            _ => l.to_string(),
        })
        .map(|l| {
            // Manifest paths differ (canonical on bare metal); keep the rest.
            match l.find(" in /") {
                Some(i) => l[..i].to_string(),
                None => l,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Boots `example` and runs it on Linux (each in its own copy), and checks
/// both say the same thing with the same exit code.
fn same_as_linux(example_name: &str, extra: &[&str]) -> (Run, Run) {
    let linux = run(&example(example_name));
    let metal = boot(&example(example_name), extra);
    assert_eq!(
        metal.code, linux.code,
        "exit codes differ\nbare metal stdout:\n{}\nstderr:\n{}\nlinux stderr:\n{}",
        metal.stdout, metal.stderr, linux.stderr
    );
    assert_eq!(mask(&metal.stdout), mask(&linux.stdout), "stdout differs; bare metal stderr:\n{}", metal.stderr);
    assert_eq!(mask(&metal.stderr), mask(&linux.stderr), "stderr differs");
    (metal, linux)
}

#[test]
fn hello_boots_on_microvm_like_linux() {
    let (metal, _) = same_as_linux("hello", &[]);
    metal.ok().stdout_has("Hello from weft!\nwall clock: 20");
    let random: Vec<&str> = metal.stdout.lines().filter_map(|l| l.strip_prefix("random: ")).collect();
    assert_eq!(random.len(), 1);
    assert!(random[0].len() == 16 && random[0].chars().all(|c| c.is_ascii_hexdigit()), "{random:?}");
}

#[test]
fn hello_boots_on_q35() {
    same_as_linux("hello", &["--machine", "q35"]).0.ok();
}

#[test]
fn kvstore_disk_written_on_bare_metal_reads_back_on_linux() {
    let dir = example("kvstore");
    boot(&dir, &[]).ok().stdout_has("wrote 1000 verified 1000 lost 0 corrupt 0");
    assert_eq!(std::fs::metadata(dir.join("disk.img")).unwrap().len(), 16 << 20);
    let m = std::fs::read_to_string(dir.join("weft.toml")).unwrap().replace(r#"args = ["fill", "1000"]"#, r#"args = ["verify"]"#);
    std::fs::write(dir.join("weft.toml"), m).unwrap();
    run(&dir).ok().stdout_has("records 1000 valid 1000 lost 0 corrupt 0");
    boot(&dir, &["--machine", "q35"]).ok().stdout_has("records 1000 valid 1000 lost 0 corrupt 0");
}

/// Bytes the host file system holds for `path` (a sparse file holds fewer than its length).
fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// A file disk weft creates is sparse unless `preallocate = true`, which writes the
/// whole image first (so a run's writes never allocate host blocks) — on Linux and
/// for `weft boot` alike; `weft check` says which it will be.
#[test]
fn a_preallocated_disk_image_is_written_whole_when_created() {
    let m = |pre: &str| format!("[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"100\"]\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"8MiB\"\n{pre}\n");
    let sparse = manifest("prealloc-sparse", &m(""));
    weft(&["check", sparse.to_str().unwrap()]).ok().stdout_has("disk.img (8 MiB, zero-filled)");
    run(&sparse).ok().stdout_has("wrote 100 verified 100");
    assert!(allocated(&sparse.join("disk.img")) < 4 << 20, "a default image is sparse: {} bytes allocated", allocated(&sparse.join("disk.img")));
    let linux = manifest("prealloc-linux", &m("preallocate = true"));
    weft(&["check", linux.to_str().unwrap()]).ok().stdout_has("disk.img (8 MiB, zero-filled, preallocated)");
    run(&linux).ok().stdout_has("wrote 100 verified 100");
    assert!(allocated(&linux.join("disk.img")) >= 8 << 20, "{} bytes allocated", allocated(&linux.join("disk.img")));
    let metal = manifest("prealloc-metal", &m("preallocate = true"));
    boot(&metal, &[]).ok().stdout_has("wrote 100 verified 100");
    assert!(allocated(&metal.join("disk.img")) >= 8 << 20, "{} bytes allocated", allocated(&metal.join("disk.img")));
    // An image that exists is used as it is.
    std::fs::write(linux.join("weft.toml"), m("preallocate = true").replace("\"fill\", \"100\"", "\"verify\"")).unwrap();
    run(&linux).ok().stdout_has("records 100 valid 100");
}

#[test]
fn faulty_disk_drops_the_same_writes() {
    let (metal, _) = same_as_linux("faulty-disk", &[]);
    metal.code(1).stdout_has("wrote 1000 verified 990 lost 10 corrupt 0");
    assert!(metal.stderr.starts_with("[block-fault] dropped write #100 sector 99 count 1 on storage (drop-every) | fault=drop"), "{}", metal.stderr);
}

#[test]
fn time_warp_skews_the_kernel_clock() {
    let (metal, _) = same_as_linux("time-warp", &[]);
    metal.ok().stderr_has("[clock-skew] skewing clock: offset -2h, rate -0.5");
}

#[test]
fn hung_disk_is_stopped_by_the_timeout() {
    let (metal, _) = same_as_linux("hung-disk", &[]);
    metal
        .code(124)
        .stderr_has("error: block-fault (filter of device `storage`) did not finish within the timeout (2s, `limits.timeout` in");
}

/// A good bundle of `hello`, built into `dir`.
fn hello_bundle(dir: &Path) -> Vec<u8> {
    let out = dir.join("app.bundle");
    weft(&["build", "--target", "baremetal", dir.to_str().unwrap(), "-o", out.to_str().unwrap()]).ok();
    std::fs::read(&out).unwrap()
}

fn boot_bundle(dir: &Path, name: &str, bytes: &[u8]) -> Run {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    weft(&["boot", p.to_str().unwrap(), "--qemu-timeout", QEMU_TIMEOUT])
}

#[test]
fn a_built_bundle_boots_and_bad_ones_are_refused() {
    let dir = example("hello");
    let good = hello_bundle(&dir);
    boot_bundle(&dir, "good.bundle", &good).ok().stdout_has("Hello from weft!");

    boot_bundle(&dir, "short.bundle", &good[..good.len() / 2])
        .code(2)
        .stderr_has("truncated bundle");
    let mut corrupt = good.clone();
    let i = corrupt.len() - 100;
    corrupt[i] ^= 0x40;
    boot_bundle(&dir, "corrupt.bundle", &corrupt).code(2).stderr_has("corrupt bundle: checksum mismatch");

    // (A `pulley64` bundle boots the Pulley kernel instead, which refuses
    // native code: see `pulley_kernel_runs_the_same_app`.)
    let mut other = Bundle::decode(&good, None).unwrap();
    other.target = Target::Native;
    boot_bundle(&dir, "native.bundle", &other.encode())
        .code(2)
        .stderr_has("bundle built for target `native`, this kernel runs `x86_64-unknown-none`");

    // An older engine config: the version follows the target name.
    let mut old = good.clone();
    let at = 28 + 4 + "x86_64-unknown-none".len();
    old[at..at + 4].copy_from_slice(&999u32.to_le_bytes());
    let sum = checksum(&old[28..]);
    old[20..28].copy_from_slice(&sum.to_le_bytes());
    boot_bundle(&dir, "old.bundle", &old).code(2).stderr_has("engine config version 999");
}

#[test]
fn components_compiled_for_linux_are_refused_by_the_kernel() {
    let dir = example("hello");
    let good = hello_bundle(&dir);
    let mut b = Bundle::decode(&good, None).unwrap();
    let wasm = std::fs::read(root().join("components/target/wasm32-wasip2/release/hello.wasm")).unwrap();
    let linux = wasmtime::Engine::new(&weft_runtime::engine::config(Target::Native)).unwrap();
    let native = linux.precompile_component(&wasm).unwrap();
    b.components[0].bytes = &native;
    let r = boot_bundle(&dir, "linux.bundle", &b.encode());
    r.code(2).stderr_has("error: component `hello` in the bundle cannot be loaded by this kernel");
}

#[test]
fn a_device_without_a_qemu_mapping_is_refused() {
    let dir = manifest(
        "no-mapping",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"1\"]\n[devices.a-storage-role-far-too-long]\nkind = \"block\"\nbackend = \"file\"\npath = \"d.img\"\nsize = \"1MiB\"\n",
    );
    let r = boot(&dir, &[]);
    r.code(2).stderr_has("device `a-storage-role-far-too-long`: a file disk is attached as a virtio-blk drive named by its role");
    assert!(!dir.join("d.img").exists(), "nothing is created when the manifest cannot boot");
    // The host's own TCP/IP has no counterpart inside a kernel.
    let host = manifest("host-stack", "[app]\ncomponent = \"echo\"\n\n[stack]\nbackend = \"host\"\n");
    boot(&host, &[])
        .code(2)
        .stderr_has("error: [stack] backend = \"host\" (the host's own TCP/IP) has no QEMU mapping on the bare-metal target; use component = \"tcpip\"");
    // A TAP device that does not exist is named before QEMU starts, as `weft run` does.
    let m = std::fs::read_to_string(example("httpd").join("weft.toml")).unwrap().replace("\"tap0\"", "\"weftnope0\"");
    boot(&manifest("no-tap", &m), &[])
        .code(2)
        .stderr_has("error: device `service`: TAP device weftnope0 does not exist; create it with `ip tuntap add dev weftnope0 mode tap");
    // QEMU's UDP netdev takes IPv4 addresses only (`weft run` takes IPv6 too).
    let udp = "[app]\ncomponent = \"echo\"\n\n[devices.link]\nkind = \"net\"\nbackend = \"udp\"\nlocal = \"[::1]:5000\"\nremote = \"[::1]:5001\"\n\n[stack]\nnet = \"link\"\nip = \"10.0.1.1/24\"\n";
    boot(&manifest("udp-v6", udp), &[])
        .code(2)
        .stderr_has("error: device `link`: local = \"[::1]:5000\": QEMU's UDP netdev needs an IPv4 address and port (\"127.0.0.1:5555\")");
}

#[test]
fn a_missing_disk_image_is_refused_before_boot() {
    let dir = manifest(
        "missing-image",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"verify\"]\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"none.img\"\n",
    );
    boot(&dir, &[]).code(2).stderr_has("device `storage`: disk image none.img does not exist");
}

#[test]
fn tap_offload_is_refused_before_boot() {
    let dir = manifest(
        "bm-offload",
        "[app]\ncomponent = \"echo\"\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\noffload = true\n\n[stack]\nip = \"10.0.0.2/24\"\n",
    );
    boot(&dir, &[]).code(2).stderr_has("error: device `service`: `offload` is the Linux TAP leaf's (`weft run`)");
}

fn misbehave(name: &str, args: &str, limits: &str) -> Run {
    let dir = manifest(name, &format!("[app]\ncomponent = \"misbehave.wasm\"\nargs = {args}\n\n[limits]\n{limits}\n"));
    test_component(&dir, "misbehave", "misbehave.wasm");
    boot(&dir, &[])
}

/// The kernel reports raw frames; `weft boot` prints them as wasmtime does
/// on Linux: functions (demangled) and `file:line` from the bundle's DWARF.
#[test]
fn a_trap_names_the_component_and_prints_a_backtrace() {
    let line = line_in("components/tests/misbehave/src/lib.rs", "Some(\"trap\") =>");
    let r = misbehave("bm-trap", r#"["trap"]"#, "");
    r.code(70)
        .stderr_has("error: misbehave (app) trapped: wasm trap: wasm `unreachable` instruction executed")
        .stderr_has("wasm backtrace:\n    0: ")
        .stderr_has(&format!("\n                - run\n                    at {}:{line}:", root().join("components/tests/misbehave/src/lib.rs").display()))
        .stderr_has("- _export_run_cabi<misbehave::Misbehave>\n");
    // A panic: core's functions by their demangled names, never mangled.
    let r = misbehave("bm-panic", r#"["panic"]"#, "");
    r.code(70).stderr_has("error: misbehave (app) trapped").stderr_has("::panicking::panic");
    assert!(!r.stderr.contains("_RNv") && !r.stderr.contains("_ZN"), "{}", r.stderr);
}

#[test]
fn a_spinning_guest_is_stopped_by_the_timeout() {
    let t = std::time::Instant::now();
    misbehave("bm-spin", r#"["spin"]"#, "timeout = \"500ms\"")
        .code(124)
        .stderr_has("error: misbehave (app) did not finish within the timeout (500ms");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_memory_bomb_hits_the_limit_and_exit_codes_pass_through() {
    misbehave("bm-oom", r#"["oom"]"#, "memory = \"64MiB\"")
        .code(125)
        .stdout_has("grew 16 MiB")
        .stderr_has("error: misbehave (app) hit the memory limit")
        .stderr_has("the limit is 64 MiB (`limits.memory`");
    misbehave("bm-exit", r#"["exit", "42"]"#, "").code(42);
}

/// Hostile filters (host-posix/tests/hostile.rs) in the kernel: a block
/// filter's bad read, mangled write and stack overflow, each named, with
/// the file-backed image (a virtio-blk drive) untouched.
#[test]
fn a_hostile_block_filter_is_named_and_the_image_untouched() {
    let name = "hostile-block (filter of device `storage`)";
    for (what, code, stream, message) in [
        ("long-read", 70, "stderr", format!("error: {name} broke the block contract: `read` of 1 sector at sector 0 returned 513 bytes, not 512 (512-byte sectors)")),
        ("short-write", 1, "stdout", "error: write sector 0: invalid-argument".to_string()),
        ("recurse", 70, "stderr", format!("error: {name} trapped: wasm trap: call stack exhausted")),
        ("trap", 70, "stderr", format!("error: {name} trapped: wasm trap: wasm `unreachable` instruction executed")),
    ] {
        let dir = manifest(
            "bm-hostile-block",
            &format!("[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"10\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"1MiB\"\nfilters = [{{ component = \"hostile-block.wasm\", config = {{ do = \"{what}\" }} }}, {{ component = \"block-fault\" }}]\n"),
        );
        test_component(&dir, "hostile_block", "hostile-block.wasm");
        let r = boot(&dir, &[]);
        r.code(code);
        if stream == "stdout" { r.stdout_has(&message) } else { r.stderr_has(&message) };
        if what == "trap" {
            filter_trap_backtrace(&r);
        }
        let img = std::fs::read(dir.join("disk.img")).unwrap();
        assert_eq!(img.len(), 1 << 20);
        assert!(img.iter().all(|&b| b == 0), "{what}: disk.img was written\n{}", r.stderr);
    }
}

/// A filter's trap while the app called it through `block-fault` (in the
/// path, injecting nothing; `block-trace` only observes and is in no path):
/// each frame symbolized from its own component (hostile.rs has the Linux twin).
fn filter_trap_backtrace(r: &Run) {
    let at = |file: &str, text: &str| format!("at {}:{}:", root().join(file).display(), line_in(file, text));
    r.stderr_has(&at("components/tests/hostile/src/lib.rs", "\"trap\" => core::arch::wasm32::unreachable()"))
        .stderr_has(&at("components/tests/hostile-block/src/lib.rs", "HOSTILE.with(Hostile::call)"))
        .stderr_has("components/devices/block-fault/src/lib.rs:")
        .stderr_has("components/apps/kvstore/src/lib.rs:");
}

/// A net filter's million-frame `receive` and oversized frame stop the
/// kernel's run at the hop, named, as on Linux.
#[test]
fn a_hostile_net_filter_is_named() {
    for (what, message) in [
        ("flood", "`receive` of at most 64 frames returned 1000000"),
        ("oversize", "`receive` returned a 1515-byte frame; the device's largest is 1514 bytes (14 + mtu)"),
    ] {
        let (local, remote) = (free_udp_port(), free_udp_port());
        let m = udp_manifest("echo", r#"["7", "1"]"#, local, remote, "10.0.1.1/24")
            .replace("remote = ", "filters = [{ component = \"hostile-net.wasm\", config = { do = \"DO\" } }]\nremote = ")
            .replace("DO", what);
        let dir = manifest("bm-hostile-net", &m);
        test_component(&dir, "hostile_net", "hostile-net.wasm");
        boot(&dir, &[]).code(70).stderr_has(&format!("error: hostile-net (filter of device `link`) broke the net contract: {message}"));
    }
}

#[test]
fn events_become_the_same_git_history_as_on_linux() {
    const FAULTY: &str = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"250\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { drop-every = 100 } }]\n\n[log]\nbackend = \"git\"\npath = \"events.git\"\n";
    let (linux, metal) = (manifest("git-linux", FAULTY), manifest("git-metal", FAULTY));
    run(&linux).code(1);
    boot(&metal, &[]).code(1).stdout_has("wrote 250 verified 248 lost 2 corrupt 0");
    let history = |dir: &Path| {
        let r = weft(&["log", dir.to_str().unwrap()]);
        r.ok();
        // Commit ids and times differ between any two runs.
        r.stdout
            .lines()
            .map(|l| if l.starts_with("commit ") { "commit *".to_string() } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let h = history(&metal);
    assert!(h.contains("dropped write #200 sector 199 count 1 on storage (drop-every)"), "{h}");
    assert_eq!(h, history(&linux));
}

/// Pulley (the interpreter) instead of native code: needs the kernel built
/// with `--features pulley` at target/pulley/…, which test.sh builds next to
/// the native one (so CI runs this against a kernel as fresh as the bundle
/// format); skipped without it, e.g. under a bare `cargo test`.
#[test]
fn pulley_kernel_runs_the_same_app() {
    if !root().join("target/pulley/x86_64-unknown-none/release/weft-kernel").exists() {
        eprintln!("skipped: no Pulley kernel (CARGO_TARGET_DIR=target/pulley cargo build -p weft-baremetal --target x86_64-unknown-none --release --features pulley)");
        return;
    }
    let linux = run(&example("faulty-disk"));
    let metal = boot(&example("faulty-disk"), &["--pulley"]);
    assert_eq!(
        metal.code, linux.code,
        "{}\n(a kernel older than the bundle format? test.sh rebuilds the Pulley kernel)",
        metal.stderr
    );
    assert_eq!(metal.stdout, linux.stdout);
    assert_eq!(metal.stderr, linux.stderr);
    // Native code in a bundle labelled for Pulley is refused by the Pulley kernel.
    let dir = example("hello");
    let good = hello_bundle(&dir);
    let mut relabelled = Bundle::decode(&good, None).unwrap();
    relabelled.target = Target::BareMetalPulley;
    boot_bundle(&dir, "relabelled.bundle", &relabelled.encode())
        .code(2)
        .stderr_has("error: component `hello` in the bundle cannot be loaded by this kernel: Module was compiled for architecture 'x86_64'");
}

/// A kernel panic prints its message and exits 71, like a CPU exception. The
/// kernel panics for real when its command line says `weft.panic` (a debug
/// hook; `WEFT_BOOT_APPEND` passes words to the kernel command line).
#[test]
fn a_kernel_panic_prints_its_message_and_exits_71() {
    let dir = example("hello");
    let r = output(
        weft_cmd(&["boot", dir.to_str().unwrap(), "--qemu-timeout", QEMU_TIMEOUT])
            .env("WEFT_BOOT_APPEND", "weft.panic")
            .output()
            .unwrap(),
    );
    r.code(71).stderr_has("weft kernel: fatal: kernel panic: panicked at host-baremetal/src/main.rs:");
    r.stderr_has("weft.panic on the kernel command line");
    assert!(!r.stdout.contains("Hello from weft!"), "the app never ran: {}", r.stdout);
}

// --- Networking ---------------------------------------------------------

/// Copies the `netclient` test app (components/tests/netclient, built with
/// the other test apps by host-posix/build.rs: weft's shipped apps only
/// listen) into `dir`.
fn netclient(dir: &Path) {
    test_component(dir, "netclient", "netclient.wasm");
}

/// A free UDP port on 127.0.0.1 (free when asked; the tests run one at a time).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A manifest of `app` on a `udp` link from `local` to `remote`, with the
/// tcpip stack at `ip`.
fn udp_manifest(app: &str, args: &str, local: u16, remote: u16, ip: &str) -> String {
    format!(
        "[app]\ncomponent = \"{app}\"\nargs = {args}\n\n[devices.link]\nkind = \"net\"\nbackend = \"udp\"\nlocal = \"127.0.0.1:{local}\"\nremote = \"127.0.0.1:{remote}\"\n\n[stack]\nnet = \"link\"\nip = \"{ip}\"\n\n[limits]\ntimeout = \"40s\"\n"
    )
}

/// A `weft run` unikernel and a `weft boot` kernel on one `udp` link (QEMU's
/// `-netdev socket,udp=` speaks the same one-frame-per-datagram format as
/// `UdpNet`): TCP through two smoltcp stacks, both directions, both machines.
/// No privileges needed.
#[test]
fn weft_run_and_weft_boot_talk_over_a_udp_link() {
    for (machine, server_on_metal) in [("microvm", false), ("q35", true)] {
        let (a, b) = (free_udp_port(), free_udp_port());
        let server = manifest("udp-echo", &udp_manifest("echo", r#"["7", "2"]"#, a, b, "10.0.1.1/24"));
        let client = manifest(
            "udp-client",
            &udp_manifest("netclient.wasm", r#"["10.0.1.1", "7", "hello across the link", "2"]"#, b, a, "10.0.1.2/24"),
        );
        netclient(&client);
        let (linux_dir, metal_dir) = if server_on_metal { (&client, &server) } else { (&server, &client) };
        let linux = weft_cmd(&["run", linux_dir.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let metal = boot(metal_dir, &["--machine", machine]);
        let linux = finish(linux);
        let (server_run, client_run) = if server_on_metal { (&metal, &linux) } else { (&linux, &metal) };
        client_run.ok().stdout_has("netclient: echoed \"hello across the link\"\nnetclient: echoed \"hello across the link\"\n");
        server_run.ok().stdout_has("echo: served 2 connections, 42 bytes");
        metal.stderr_has("[tcpip] address 10.0.1.");
    }
}

#[test]
fn httpd_booted_with_tap_answers_curl() {
    let Some(ns) = Netns::new("bm-httpd") else { return };
    let dir = example("httpd");
    let metal = ns.weft("boot", &dir, &["--qemu-timeout", QEMU_TIMEOUT]);
    ns.ping("10.0.0.2");
    let page = ns.curl(&["http://10.0.0.2/"]);
    assert!(page.contains("<title>weft httpd</title>"), "{page}");
    assert_eq!(ns.curl(&["-X", "PUT", "--data", "blue", "http://10.0.0.2/kv/colour"]).trim(), "stored");
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    let r = ns.stop(metal);
    r.stdout_has("httpd: listening on port 80");
    r.stderr_has("[tcpip] address 10.0.0.2/24 gateway 10.0.0.1 mac 52:54:00:");
    // The value went through virtio-blk to the disk image: `weft run` (and
    // the same kernel on q35) serve it again.
    let linux = ns.weft("run", &dir, &[]);
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    ns.stop(linux);
    let q35 = ns.weft("boot", &dir, &["--qemu-timeout", QEMU_TIMEOUT, "--machine", "q35"]);
    assert_eq!(ns.curl(&["http://10.0.0.2/kv/colour"]), "blue");
    ns.stop(q35);
}

/// `weft log` of the arp topic, with what differs between any two runs
/// (commit ids and times) masked; empty before the first commit.
fn arp_history(dir: &Path) -> String {
    let r = weft(&["log", dir.to_str().unwrap(), "arp"]);
    if r.stderr.contains("no events on topic `arp`") || r.stderr.contains("is not a git repository (has the unikernel run yet?)") {
        return String::new();
    }
    r.ok();
    r.stdout.lines().map(|l| if l.starts_with("commit ") { "commit *" } else { l }).collect::<Vec<_>>().join("\n")
}

/// Runs arp-git in a fresh namespace with `verb` (`run` or `boot`), pings it,
/// waits for the reply to be committed and stops it; returns the history.
fn arp_git(verb: &str) -> String {
    let ns = Netns::new(&format!("bm-{verb}")).unwrap();
    let dir = example("arp-git");
    let child = ns.weft(verb, &dir, if verb == "boot" { &["--qemu-timeout", QEMU_TIMEOUT] } else { &[] });
    // The stack's start-up ARP probe for its own address is the first event;
    // ping only once it is committed, so both targets record the same order.
    let t = Instant::now();
    while !arp_history(&dir).contains("who-has 10.0.0.2") && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    ns.ping("10.0.0.2");
    let t = Instant::now();
    loop {
        let h = arp_history(&dir);
        if h.contains("is-at") || t.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything else the ping caused has been committed by now (200 ms batches).
    std::thread::sleep(Duration::from_millis(500));
    let r = ns.stop(child);
    let h = arp_history(&dir);
    assert!(h.contains("who-has 10.0.0.2 tell 10.0.0.1"), "{verb}: {h}\n{}", r.stderr);
    h
}

#[test]
fn arp_git_booted_records_the_same_history_as_linux() {
    if Netns::new("bm-probe").is_none() {
        return;
    }
    let metal = arp_git("boot");
    assert!(metal.contains("table: 10.0.0.1 -> 02:00:00:00:00:01 (new)"), "{metal}");
    assert!(metal.contains("10.0.0.2 is-at 52:54:00:"), "{metal}");
    assert_eq!(metal, arp_git("run"));
}

/// httpd behind `net-fault` and `net-pcap` on bare metal: curl still succeeds
/// (TCP retransmits), the drops are logged, and the frames the kernel
/// captured arrive in the pcap file `weft run` would write.
#[test]
fn lossy_net_booted_still_serves_and_captures() {
    let Some(ns) = Netns::new("bm-lossy") else { return };
    let dir = example("lossy-net");
    let metal = ns.weft("boot", &dir, &["--qemu-timeout", QEMU_TIMEOUT]);
    ns.ping("10.0.0.2");
    for _ in 0..3 {
        let page = ns.curl(&["http://10.0.0.2/"]);
        assert!(page.contains("<html"), "{page}");
    }
    let r = ns.stop(metal);
    r.stderr_has("[net-fault] dropped");
    let pcap = std::fs::read(dir.join("lossy.pcap")).unwrap();
    assert_eq!(&pcap[..4], &0xa1b2c3d4u32.to_le_bytes(), "pcap magic");
    let (mut at, mut frames) = (24, 0);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        assert!((14..=1514).contains(&len), "frame of {len} bytes");
        at += 16 + len;
        frames += 1;
    }
    assert_eq!(at, pcap.len());
    assert!(frames > 10, "{frames} frames captured");
    if let Ok(o) = Command::new("tshark").arg("-r").arg(dir.join("lossy.pcap")).args(["-c", "3"]).output() {
        assert!(o.status.success(), "tshark reads the capture: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A simulation prints the same bytes, events and exit code on Linux and in
/// the kernel: the same seed, virtual clock, filter seeds and power cuts.
#[test]
fn a_simulation_is_the_same_run_on_bare_metal() {
    for (ex, seeds) in [("power-cut", &["2", "634"][..]), ("sim-kvstore", &["3"][..]), ("hello", &["5"][..])] {
        for seed in seeds {
            let linux = weft(&["run", "--seed", seed, example(ex).to_str().unwrap()]);
            let metal = boot(&example(ex), &["--seed", seed]);
            assert_eq!(metal.code, linux.code, "{ex} seed {seed}: exit codes differ\n{}\n{}", metal.stderr, linux.stderr);
            assert_eq!(metal.stdout, linux.stdout, "{ex} seed {seed}: console differs\n{}", metal.stderr);
            assert_eq!(metal.stderr, linux.stderr, "{ex} seed {seed}: events differ");
        }
    }
}

/// A trace recorded by `weft run` on Linux — a real run on a file disk —
/// replays inside the kernel, which attaches no disk at all.
#[test]
fn a_linux_trace_replays_in_the_unikernel() {
    let dir = example("kvstore");
    let t = dir.join("fill.trace");
    let linux = weft(&["run", "--record", t.to_str().unwrap(), dir.to_str().unwrap()]);
    linux.ok().stdout_has("wrote 1000 verified 1000 lost 0 corrupt 0");
    std::fs::remove_file(dir.join("disk.img")).unwrap();
    let metal = weft(&["boot", "--replay", t.to_str().unwrap(), "--qemu-timeout", QEMU_TIMEOUT]);
    metal.ok();
    assert_eq!(metal.stdout, linux.stdout);
    assert!(!dir.join("disk.img").exists(), "the replay attached a disk");
    // A simulated run with a power cut and a restart, too.
    let pc = example("power-cut");
    let t = pc.join("cut.trace");
    let linux = weft(&["run", "--seed", "634", "--record", t.to_str().unwrap(), pc.to_str().unwrap()]);
    let metal = weft(&["boot", "--replay", t.to_str().unwrap(), "--qemu-timeout", QEMU_TIMEOUT]);
    assert_eq!((metal.code, &metal.stdout), (linux.code, &linux.stdout), "{}", metal.stderr);
}
