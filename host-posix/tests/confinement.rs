//! Confinement, shown: a component reaches nothing the manifest does not
//! bind (`weft check`'s `reaches` lines list what it does reach). Each test
//! offers a way out and checks it is closed; each has a control that the way
//! exists when the manifest does bind it.
//!
//! Stock WASI programs are covered in tests/wasi.rs: without preopens no file
//! opens (`stdin_is_empty_and_files_are_denied_by_default`), a path cannot
//! climb out of its preopen (`a_path_escaping_its_preopen_is_refused`), and
//! without `[stack]` no socket opens (`without_a_stack_binding_is_access_denied`).
//! An app that imports `block` with no block device declared is refused
//! before it runs (tests/bad_input.rs).

mod common;
use common::*;

use std::path::Path;

const KV: &str = "[app]\ncomponent = \"kvstore\"\nargs = [\"fill\", \"3\"]\n\n";

#[test]
fn an_app_opens_only_the_block_devices_the_manifest_binds() {
    // kvstore opens role `storage`; the manifest binds only `data`.
    let dir = manifest("confine-role", &format!("{KV}[devices.data]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n"));
    run(&dir).code(1).stdout_has("open storage: not-found");
    // Control: bound under its role, the same app runs.
    let dir = manifest("confine-role-ok", &format!("{KV}[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n"));
    run(&dir).ok();
}

/// Every event of `block-trace` ends `(DURATION)`: the durations it timed.
fn traced_durations(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("[block-trace]") && l.contains(" -> "))
        .filter_map(|l| Some(l.split(" (").nth(1)?.split(')').next()?.to_string()))
        .collect()
}

#[test]
fn a_filters_clock_is_the_hosts_own_not_the_apps() {
    // The app's clock is frozen by clock-skew (rate 0); block-trace times
    // every operation with its own clock, which must be the host's: it
    // moves. Were it the app's, every duration would be zero.
    let frozen = "[devices.clock]\nkind = \"clock\"\nbackend = \"system\"\nfilters = [{ component = \"clock-skew\", config = { rate = 0, offset = \"-87600h\" } }]\n";
    let storage = "[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-trace\" }]\n\n";
    let dir = manifest("confine-clock", &format!("{KV}{storage}{frozen}"));
    let r = run(&dir);
    r.ok();
    let d = traced_durations(&r.stderr);
    assert!(d.len() >= 4, "block-trace traced the fill: {}", r.stderr);
    assert!(d.iter().any(|d| d != "0ns" && d != "0 ns"), "the filter's clock moved: {d:?}");
    // Control: the app's clock really goes through the chain (hello's wall
    // clock is ten years back).
    let hello = manifest("confine-clock-app", &format!("[app]\ncomponent = \"hello\"\n\n{frozen}"));
    let out = run(&hello);
    out.ok().stdout_has("wall clock: 2016-");
}

/// `dir/name` is a symlink to `target`.
fn link(dir: &Path, name: &str, target: &Path) {
    std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
}

#[test]
fn no_path_leaves_the_manifests_folder_through_a_symlink() {
    let outside = scratch("confine-outside");
    let image = vec![0xabu8; 1 << 20];
    std::fs::write(outside.join("disk.img"), &image).unwrap();
    std::fs::create_dir(outside.join("events.git")).unwrap();

    // A disk image: refused on Linux (cap-std) and by `weft boot` (before
    // QEMU, which would follow the link), the image untouched.
    let dir = manifest("confine-disk", &format!("{KV}[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\n"));
    link(&dir, "disk.img", &outside.join("disk.img"));
    run(&dir).code(2).stderr_has("device `storage`").stderr_has("disk.img");
    weft(&["boot", dir.to_str().unwrap()]).code(2).stderr_has("disk image \"disk.img\" is outside the manifest's folder");
    assert!(std::fs::read(outside.join("disk.img")).unwrap() == image, "the image outside was not written");

    // A git event log (gitoxide follows links): refused, nothing written.
    let git = "[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\nfilters = [{ component = \"block-fault\", config = { drop-every = 2 } }]\n\n[log]\nbackend = \"git\"\npath = \"events.git\"\n";
    let dir = manifest("confine-git", &format!("{KV}{git}"));
    link(&dir, "events.git", &outside.join("events.git"));
    run(&dir).code(2).stderr_has("`log.path`: git repository \"events.git\" is outside the manifest's folder");
    assert_eq!(std::fs::read_dir(outside.join("events.git")).unwrap().count(), 0, "nothing was written outside");
    // Control: a real folder there is the log.
    let dir = manifest("confine-git-ok", &format!("{KV}{git}"));
    let r = run(&dir);
    assert_ne!(r.code, 2, "{}", r.stderr);
    assert!(dir.join("events.git/HEAD").exists(), "the log was created inside");
}
