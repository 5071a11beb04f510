//! Negative tests: every kind of bad input gets a clear message naming the
//! file, key or component, a distinct non-zero exit, and loses nothing.

mod common;
use common::*;

const INVALID: i32 = 2;
const TRAP: i32 = 70;
const TIMEOUT: i32 = 124;
const MEMORY: i32 = 125;

#[test]
fn bad_toml_names_file_and_line() {
    let dir = manifest("bad-toml", "[app]\ncomponent = \"hello\"\nargs = [\"a\",\n");
    run(&dir).code(INVALID).stderr_has("weft.toml:").stderr_has("invalid TOML");
}

#[test]
fn unknown_keys_are_errors_all_reported_at_once() {
    let dir = manifest(
        "unknown-key",
        "[app]\ncomponent = \"hello\"\ncolor = \"red\"\n\n[limits]\ntimeout = \"3s\"\ncpu = 2\n",
    );
    let r = run(&dir);
    r.code(INVALID)
        .stderr_has("weft.toml:3: `app.color`: unknown key; remove it or use one of: component, args")
        .stderr_has("weft.toml:7: `limits.cpu`: unknown key; remove it or use one of: memory, timeout");
}

#[test]
fn a_tap_offload_that_is_not_a_boolean_is_named() {
    let dir = manifest(
        "offload-type",
        "[app]\ncomponent = \"echo\"\n\n[devices.service]\nkind = \"net\"\nbackend = \"tap\"\ndevice = \"tap0\"\noffload = \"yes\"\n\n[stack]\nip = \"10.0.0.2/24\"\n",
    );
    run(&dir).code(INVALID).stderr_has("weft.toml:8: `devices.service.offload`: expected true or false");
}

#[test]
fn a_host_stack_address_that_is_not_ipv4_is_named() {
    let dir = manifest("stack-address", "[app]\ncomponent = \"echo\"\nargs = [\"7\"]\n\n[stack]\nbackend = \"host\"\naddress = \"everywhere\"\n");
    run(&dir).code(INVALID).stderr_has("weft.toml:7: `stack.address`: \"everywhere\" is not an IPv4 address; address = \"0.0.0.0\"");
    // A good one: `weft check` says where the host stack listens.
    std::fs::write(dir.join("weft.toml"), "[app]\ncomponent = \"echo\"\nargs = [\"7\"]\n\n[stack]\nbackend = \"host\"\naddress = \"0.0.0.0\"\n").unwrap();
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("host TCP/IP (0.0.0.0)");
}

#[test]
fn a_read_only_or_config_of_the_wrong_type_is_named() {
    let dir = manifest(
        "flag-config-types",
        "[app]\ncomponent = \"kvstore\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nread-only = 1\nfilters = [{ component = \"block-fault\", config = 3 }]\n\n[components.kv]\ncomponent = \"kv\"\nconfig = \"x\"\n",
    );
    run(&dir)
        .code(INVALID)
        .stderr_has("weft.toml:8: `devices.storage.read-only`: expected true or false")
        .stderr_has("`devices.storage.filters[0].config`: expected a table: config = { key = value }")
        .stderr_has("weft.toml:13: `components.kv.config`: expected a table: config = { key = value }");
}

#[test]
fn missing_component_file() {
    let dir = manifest("missing-file", "[app]\ncomponent = \"nothere.wasm\"\n");
    run(&dir).code(INVALID).stderr_has("`app.component`: cannot read nothere.wasm");
}

#[test]
fn unknown_shipped_component_lists_the_shipped_ones() {
    let dir = manifest("unknown-shipped", "[app]\ncomponent = \"helo\"\n");
    run(&dir).code(INVALID).stderr_has("no shipped component named \"helo\"; shipped: hello, kvstore");
}

#[test]
fn paths_cannot_leave_the_manifest_folder() {
    let dir = manifest(
        "escape",
        "[app]\ncomponent = \"../../hello.wasm\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"/etc/passwd\"\n",
    );
    run(&dir)
        .code(INVALID)
        .stderr_has("`app.component`: path \"../../hello.wasm\" leaves the manifest's folder")
        .stderr_has("`devices.storage.path`: path \"/etc/passwd\" leaves the manifest's folder");
}

#[test]
fn symlinks_cannot_leave_the_manifest_folder_either() {
    let dir = manifest("symlink-escape", "[app]\ncomponent = \"app.wasm\"\n");
    let outside = scratch("outside");
    test_component(&outside, "misbehave", "app.wasm");
    std::os::unix::fs::symlink(outside.join("app.wasm"), dir.join("app.wasm")).unwrap();
    run(&dir).code(INVALID).stderr_has("cannot read app.wasm");
}

#[test]
fn a_filter_for_the_wrong_device_kind() {
    let dir = manifest(
        "wrong-world",
        "[app]\ncomponent = \"kvstore\"\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"clock-skew\" }]\n",
    );
    run(&dir).code(INVALID).stderr_has(
        "weft.toml:8: `devices.storage.filters[0]`: clock-skew is a clock filter, but `storage` is a block device: use a component built for the world weft:devices/block-filter",
    );
}

#[test]
fn an_app_used_as_a_filter() {
    let dir = manifest(
        "app-as-filter",
        "[app]\ncomponent = \"hello\"\n\n[devices.clock]\nkind = \"clock\"\nfilters = [{ component = \"kvstore\" }]\n",
    );
    run(&dir).code(INVALID).stderr_has("kvstore is not a filter");
}

#[test]
fn not_a_component() {
    let dir = manifest("not-a-component", "[app]\ncomponent = \"junk.wasm\"\n");
    std::fs::write(dir.join("junk.wasm"), b"#!/bin/sh\necho hi\n").unwrap();
    run(&dir).code(INVALID).stderr_has("junk.wasm is not a WebAssembly file");
    // A core module (the header of one) is named as such.
    std::fs::write(dir.join("junk.wasm"), b"\0asm\x01\0\0\0").unwrap();
    run(&dir).code(INVALID).stderr_has("junk.wasm is a core wasm module, not a component");
    // A truncated component.
    let good = std::fs::read(root().join("components/target/wasm32-wasip2/release/hello.wasm")).unwrap();
    std::fs::write(dir.join("junk.wasm"), &good[..good.len() / 2]).unwrap();
    run(&dir).code(INVALID).stderr_has("junk.wasm is not a valid component");
}

#[test]
fn an_app_needing_a_device_the_manifest_lacks() {
    let dir = manifest("no-block", "[app]\ncomponent = \"kvstore\"\n");
    run(&dir)
        .code(INVALID)
        .stderr_has("kvstore imports `weft:devices/block@0.1.0` but the manifest declares no block device; add one:");
}

#[test]
fn filter_config_errors_name_the_key_and_the_line() {
    let dir = manifest(
        "bad-config",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"1\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [\n  { component = \"block-fault\", config = { drop-evry = 3 } },\n]\n",
    );
    run(&dir)
        .code(INVALID)
        .stderr_has("weft.toml:10: filter `block-fault` rejected its config:")
        .stderr_has("drop-evry");
}

#[test]
fn a_disk_image_that_is_not_whole_sectors_is_refused_untouched() {
    let dir = example("kvstore");
    let junk: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(dir.join("disk.img"), &junk).unwrap();
    run(&dir).code(INVALID).stderr_has("disk image disk.img is 1000 bytes, not a whole number of 512-byte sectors");
    assert_eq!(std::fs::read(dir.join("disk.img")).unwrap(), junk);
}

#[test]
fn a_disk_image_that_is_not_a_kvstore_is_not_overwritten() {
    let dir = example("kvstore");
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
    std::fs::write(dir.join("disk.img"), &junk).unwrap();
    run(&dir).code(2).stdout_has("not a weft kvstore image");
    assert_eq!(std::fs::read(dir.join("disk.img")).unwrap(), junk);
}

fn misbehave(name: &str, args: &str, limits: &str) -> Run {
    let dir = manifest(name, &format!("[app]\ncomponent = \"misbehave.wasm\"\nargs = {args}\n\n[limits]\n{limits}\n"));
    test_component(&dir, "misbehave", "misbehave.wasm");
    run(&dir)
}

/// Functions (demangled) and `file:line` from the component's DWARF
/// (baremetal.rs has the kernel's twin).
#[test]
fn a_trap_names_the_component_and_prints_a_backtrace() {
    let line = line_in("components/tests/misbehave/src/lib.rs", "Some(\"trap\") =>");
    misbehave("trap", r#"["trap"]"#, "")
        .code(TRAP)
        .stderr_has("error: misbehave (app) trapped: wasm trap: wasm `unreachable` instruction executed")
        .stderr_has("wasm backtrace:\n    0: ")
        .stderr_has(&format!("\n                - run\n                    at {}:{line}:", root().join("components/tests/misbehave/src/lib.rs").display()))
        .stderr_has("- _export_run_cabi<misbehave::Misbehave>\n");
    let r = misbehave("panic", r#"["panic"]"#, "");
    r.code(TRAP).stderr_has("misbehave (app) trapped").stderr_has("::panicking::panic");
    assert!(!r.stderr.contains("_RNv") && !r.stderr.contains("_ZN"), "{}", r.stderr);
}

#[test]
fn a_hang_is_stopped_by_the_timeout() {
    let t = std::time::Instant::now();
    misbehave("spin", r#"["spin"]"#, "timeout = \"500ms\"")
        .code(TIMEOUT)
        .stderr_has("error: misbehave (app) did not finish within the timeout (500ms");
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn a_memory_bomb_hits_the_limit() {
    misbehave("oom", r#"["oom"]"#, "memory = \"64MiB\"")
        .code(MEMORY)
        .stdout_has("grew 16 MiB")
        .stderr_has("error: misbehave (app) hit the memory limit")
        .stderr_has("the limit is 64 MiB (`limits.memory`");
}

#[test]
fn the_app_exit_code_passes_through() {
    misbehave("exit", r#"["exit", "42"]"#, "").code(42);
    misbehave("ok", r#"["ok"]"#, "").ok().stdout_has("ok");
}

#[test]
fn a_missing_manifest() {
    weft(&["run", "/nonexistent/weft.toml"]).code(INVALID).stderr_has("cannot read manifest /nonexistent/weft.toml");
}

/// A memory disk bigger than the machine is a clear error, not an abort
/// (`memory allocation of … bytes failed`, exit 134).
#[test]
fn a_memory_disk_bigger_than_the_machine_is_refused() {
    let dir = manifest(
        "huge-memory-disk",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"10\"]\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"900TiB\"\n",
    );
    run(&dir).code(INVALID).stderr_has("weft.toml:4: `devices.storage.size`: a memory disk of 900 TiB does not fit in this machine's memory (");
    weft(&["explore", dir.to_str().unwrap(), "--runs", "2"]).code(INVALID).stderr_has("a memory disk of 900 TiB does not fit");
    // The unikernel's VM holds its memory disks: refused before QEMU starts.
    weft(&["boot", dir.to_str().unwrap()])
        .code(INVALID)
        .stderr_has("weft.toml:4: `devices.storage.size`: the unikernel's VM needs 900.0 TiB (twice `limits.memory`, 256 MiB, plus memory disks of 900 TiB and 128 MiB for the kernel), more than this machine can give (");
    // Without memory disks, `limits.memory` alone can be too big for it.
    let dir = manifest("huge-vm", "[app]\ncomponent = \"hello\"\n[limits]\nmemory = \"900TiB\"\n");
    weft(&["boot", dir.to_str().unwrap()]).code(INVALID).stderr_has("weft.toml: `limits.memory`: the unikernel's VM needs 1800.0 TiB").stderr_has("lower `limits.memory`");
}

/// A run that fails before its app ran (here a filter refuses its config)
/// removes the disk image it created for it, and only that.
#[test]
fn a_run_that_never_started_removes_the_image_it_created() {
    let m = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"10\"]\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { drop-every = \"often\" } }]\n";
    let dir = manifest("never-started", m);
    run(&dir).code(INVALID).stderr_has("block-fault");
    assert!(!dir.join("disk.img").exists(), "the image created for a run that never started was left behind");
    // An image that was there before stays, untouched.
    std::fs::write(dir.join("disk.img"), vec![7u8; 1 << 20]).unwrap();
    run(&dir).code(INVALID);
    assert_eq!(std::fs::read(dir.join("disk.img")).unwrap(), vec![7u8; 1 << 20]);
    // A git event log created for it goes too.
    std::fs::remove_file(dir.join("disk.img")).unwrap();
    std::fs::write(dir.join("weft.toml"), format!("{m}[log]\nbackend = \"git\"\npath = \"events.git\"\n")).unwrap();
    let r = run(&dir);
    r.code(INVALID);
    assert!(!r.stderr.contains("warning"), "the log closed before its repository went: {}", r.stderr);
    assert!(!dir.join("disk.img").exists() && !dir.join("events.git").exists(), "nothing created for a run that never started is left");
    // A run that started keeps its image.
    std::fs::write(dir.join("weft.toml"), m.replace("drop-every = \"often\"", "drop-every = 100")).unwrap();
    run(&dir).ok();
    assert!(dir.join("disk.img").exists());
}

/// A file disk the file system cannot size leaves no empty image behind.
#[test]
fn a_disk_image_that_cannot_be_sized_is_not_left_behind() {
    // Beyond ext4's and tmpfs' largest file (16 TiB / the page cache's limit).
    let dir = manifest(
        "unsizable-file-disk",
        "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"10\"]\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\nsize = \"900TiB\"\n",
    );
    let r = run(&dir);
    r.code(INVALID).stderr_has("device `storage`: sizing disk image disk.img to ");
    assert!(!dir.join("disk.img").exists(), "an empty disk.img was left behind");
    // An image the user already had is never removed.
    std::fs::write(dir.join("disk.img"), b"mine").unwrap();
    run(&dir).code(INVALID).stderr_has("not a whole number of 512-byte sectors; refusing to use it (it was not modified)");
    assert_eq!(std::fs::read(dir.join("disk.img")).unwrap(), b"mine");
}
