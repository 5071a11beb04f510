//! Hostile providers: block and net filters that break their contracts
//! (`components/tests/hostile-{block,net}`, the filter counterparts of the
//! `misbehave` app). Every run ends with the culprit named — which filter of
//! which device — and `weft`'s own exit code (not a crash), and no write the
//! block contract forbids reaches the disk image. `baremetal.rs` boots a few
//! of the same cases.

mod common;
use common::*;

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

const TRAP: i32 = 70;
const TIMEOUT: i32 = 124;
const MEMORY: i32 = 125;

/// The disk image the block tests use: 1 MiB, created blank by the run.
const DISK: usize = 1 << 20;

/// kvstore `fill 10` on a file disk behind `filters` (TOML array items);
/// `hostile-block.wasm` and `hostile-observer.wasm` are copied beside the
/// manifest.
fn block_run(name: &str, filters: &str) -> (Run, std::path::PathBuf) {
    let dir = manifest(
        name,
        &format!(
            "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"10\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"1MiB\"\nfilters = [{filters}]\n\n[limits]\ntimeout = \"2s\"\nmemory = \"64MiB\"\n"
        ),
    );
    test_component(&dir, "hostile_block", "hostile-block.wasm");
    test_component(&dir, "hostile_observer", "hostile-observer.wasm");
    (run(&dir), dir)
}

fn hostile_block(config: &str) -> String {
    format!("{{ component = \"hostile-block.wasm\", config = {{ {config} }} }}")
}

/// A filter that routes (`block-route`) must return from `open` the handle
/// it was given: operations routed past it carry that handle. One that
/// forges it is stopped at `open`, before anything reaches the disk.
#[test]
fn a_router_that_forges_its_handle_is_stopped_at_open() {
    let (r, dir) = block_run("forge-route", &hostile_block("do = \"forge-route-handle\""));
    r.code(TRAP).stderr_has(
        "error: hostile-block (filter of device `storage`) broke the block-route contract: `open` returned handle 1000, not one its own `open` of the device below returned",
    );
    untouched(&dir, &r);
}

/// A filter that only observes (`block-watch`) and calls its device or cuts
/// the power from `seen` breaks its promise: the call is refused and the run
/// stops naming it, before anything reaches the disk.
#[test]
fn an_observer_that_calls_its_device_from_seen_is_stopped() {
    for (what, call) in [("read", "block.read"), ("write", "block.write"), ("cut", "power.cut")] {
        let filter = format!("{{ component = \"hostile-observer.wasm\", config = {{ do = \"{what}\" }} }}");
        let (r, dir) = block_run(&format!("observer-{what}"), &filter);
        r.code(TRAP).stderr_has(&format!(
            "error: hostile-observer (filter of device `storage`) broke the block-watch contract: called `{call}` from `seen`"
        ));
        untouched(&dir, &r);
    }
}

/// The image is as the run created it: every byte zero.
fn untouched(dir: &Path, r: &Run) {
    let img = std::fs::read(dir.join("disk.img")).unwrap();
    assert_eq!(img.len(), DISK);
    if let Some(i) = img.iter().position(|&b| b != 0) {
        panic!("byte {i} of disk.img was written\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    }
}

/// A read of the wrong length never reaches the app: before the check, a
/// short read crashed kvstore (blamed as the app's trap) after it had
/// written a superblock, and a long one made it call the disk foreign.
#[test]
fn a_read_of_the_wrong_length_stops_the_run_naming_the_filter() {
    for (what, got) in [("long-read", 513), ("short-read", 511)] {
        // Under another filter in the path (block-fault injecting nothing;
        // block-trace only observes, so it is in no path): the culprit is the
        // inner filter, not the one its error unwinds through, nor the app.
        let (r, dir) = block_run(what, &format!("{}, {{ component = \"block-fault\" }}", hostile_block(&format!("do = \"{what}\""))));
        r.code(TRAP).stderr_has(&format!(
            "error: hostile-block (filter of device `storage`) broke the block contract: `read` of 1 sector at sector 0 returned {got} bytes, not 512 (512-byte sectors)"
        ));
        assert!(!r.stderr.contains("(app)"), "the app was blamed:\n{}", r.stderr);
        untouched(&dir, &r);
    }
    let (r, dir) = block_run("bad-geometry", &hostile_block("do = \"bad-geometry\""));
    r.code(TRAP).stderr_has(
        "error: hostile-block (filter of device `storage`) broke the block contract: `info` reported 100-byte sectors (a power of two, at least 512)",
    );
    untouched(&dir, &r);
    // Later in the run, after kvstore formatted the disk and wrote records:
    // those writes stay, the run still stops at the bad read.
    let (r, dir) = block_run("late-long-read", &hostile_block("do = \"long-read\", after = 10"));
    r.code(TRAP).stderr_has("error: hostile-block (filter of device `storage`) broke the block contract: `read` of ");
    assert!(std::fs::read(dir.join("disk.img")).unwrap().starts_with(b"WEFTKVSB"), "kvstore wrote no superblock before the breach");
}

/// Writes a filter mangles (not whole sectors, past the device's end) or
/// sends through a handle it was never given are refused below it: the
/// filter gets an error, and the image keeps every byte.
#[test]
fn writes_the_contract_forbids_never_reach_the_image() {
    for (config, error) in [
        ("do = \"short-write\"", "error: write sector 0: invalid-argument"),
        ("do = \"write-past-end\"", "error: write sector 0: invalid-argument"),
        // open, info and the superblock read pass; the first write is forged.
        ("do = \"forge-handle\", after = 4", "error: write sector 0: not-found"),
        ("do = \"forge-handle\"", "error: info storage: not-found"),
    ] {
        let (r, dir) = block_run("bad-write", &hostile_block(config));
        r.code(1).stdout_has(error);
        untouched(&dir, &r);
    }
    // The same filter passing writes through (the misbehaviour never comes)
    // does write the image: the check above can fail.
    let (r, dir) = block_run("good-write", &hostile_block("do = \"short-write\", after = 100000"));
    r.ok();
    assert!(std::fs::read(dir.join("disk.img")).unwrap().starts_with(b"WEFTKVSB"));
}

/// Trap, stack overflow, memory bomb, hang: each in a block filter names it
/// with its device, exits with the code the app would get, and leaves the
/// image untouched (the filter misbehaves on its first call, `open`).
#[test]
fn a_block_filter_that_traps_overflows_bloats_or_hangs_is_named() {
    let name = "hostile-block (filter of device `storage`)";
    for (what, code, message) in [
        ("trap", TRAP, format!("error: {name} trapped: wasm trap: wasm `unreachable` instruction executed")),
        ("recurse", TRAP, format!("error: {name} trapped: wasm trap: call stack exhausted")),
        ("oom", MEMORY, format!("error: {name} hit the memory limit: it asked for a ")),
        ("spin", TIMEOUT, format!("error: {name} did not finish within the timeout (2s, `limits.timeout` in ")),
    ] {
        let t = Instant::now();
        let (r, dir) = block_run(what, &hostile_block(&format!("do = \"{what}\"")));
        r.code(code).stderr_has(&message);
        if what == "trap" {
            // The backtrace crosses components: the filter's frames at its
            // own file:line, then the app's that called it.
            let at = |file: &str, text: &str| format!("at {}:{}:", root().join(file).display(), line_in(file, text));
            r.stderr_has(&at("components/tests/hostile/src/lib.rs", "\"trap\" => core::arch::wasm32::unreachable()"))
                .stderr_has(&at("components/tests/hostile-block/src/lib.rs", "HOSTILE.with(Hostile::call)"))
                .stderr_has("components/apps/kvstore/src/lib.rs:");
        }
        untouched(&dir, &r);
        assert!(t.elapsed() < Duration::from_secs(20), "{what} took {:?}", t.elapsed());
    }
}

/// `echo` on the tcpip stack over a `udp` link to `remote` (nobody's there
/// but the test), behind `hostile-net` with `config`.
fn net_run(name: &str, config: &str, remote: u16, timeout: &str) -> Run {
    let local = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = manifest(
        name,
        &format!(
            "[app]\ncomponent = \"echo\"\nargs = [\"7\", \"1\"]\n\n[devices.link]\nkind = \"net\"\nbackend = \"udp\"\nlocal = \"127.0.0.1:{local}\"\nremote = \"127.0.0.1:{remote}\"\nfilters = [{{ component = \"hostile-net.wasm\", config = {{ {config} }} }}]\n\n[stack]\nnet = \"link\"\nip = \"10.0.1.1/24\"\n\n[limits]\ntimeout = \"{timeout}\"\nmemory = \"128MiB\"\n"
        ),
    );
    test_component(&dir, "hostile_net", "hostile-net.wasm");
    run(&dir)
}

/// Results the net contract forbids — a frame longer than the device's
/// largest, more frames than asked for (a million), more frames accepted
/// than given — stop the run at the hop, naming the filter.
#[test]
fn net_results_the_contract_forbids_stop_the_run_naming_the_filter() {
    let name = "hostile-net (filter of device `link`)";
    for (what, message) in [
        ("oversize", "`receive` returned a 1515-byte frame; the device's largest is 1514 bytes (14 + mtu)"),
        ("flood", "`receive` of at most 64 frames returned 1000000"),
        ("overcount", "`send` of 1 frame claimed 2 were accepted"),
    ] {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = net_run(what, &format!("do = \"{what}\""), sink.local_addr().unwrap().port(), "10s");
        r.code(TRAP).stderr_has(&format!("error: {name} broke the net contract: {message}"));
        assert!(!r.stderr.contains("tcpip (stack") && !r.stderr.contains("(app)"), "{}", r.stderr);
    }
}

#[test]
fn a_net_filter_that_traps_overflows_bloats_or_hangs_is_named() {
    let name = "hostile-net (filter of device `link`)";
    for (what, code, message) in [
        ("trap", TRAP, format!("error: {name} trapped: wasm trap: wasm `unreachable` instruction executed")),
        ("recurse", TRAP, format!("error: {name} trapped: wasm trap: call stack exhausted")),
        ("oom", MEMORY, format!("error: {name} hit the memory limit: it asked for a ")),
        ("spin", TIMEOUT, format!("error: {name} did not finish within the timeout (1s, `limits.timeout` in ")),
    ] {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Only the hang waits for the timeout: the others end the run at once,
        // and a memory bomb on a loaded machine must not lose the race to it.
        let timeout = if what == "spin" { "1s" } else { "20s" };
        net_run(what, &format!("do = \"{what}\""), sink.local_addr().unwrap().port(), timeout).code(code).stderr_has(&message);
    }
}

/// Frames a net filter sends through a handle it was never given reach no
/// wire; passed through, the same stack's start-up frames do.
#[test]
fn frames_sent_through_a_forged_handle_reach_no_wire() {
    let datagrams = |config: &str| {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        sink.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let r = net_run("forge", config, sink.local_addr().unwrap().port(), "1s");
        let mut n = 0;
        let mut buf = [0; 2048];
        while sink.recv(&mut buf).is_ok() {
            n += 1;
        }
        (r, n)
    };
    // open and info pass; every send and receive after is forged.
    let (r, n) = datagrams("do = \"forge-handle\", after = 3");
    r.code(TIMEOUT).stderr_has("error: echo (app) did not finish within the timeout");
    assert_eq!(n, 0, "forged sends reached the wire\nstderr:\n{}", r.stderr);
    let (r, n) = datagrams("do = \"forge-handle\", after = 100000");
    r.code(TIMEOUT);
    assert!(n > 0, "the stack sent nothing even unforged: the check above proves nothing\nstderr:\n{}", r.stderr);
}
