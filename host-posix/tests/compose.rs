//! `[components.*]`: an app that imports an interface another component
//! exports (`weft:devices/kv`) gets that component composed in, wired by the
//! manifest. The shipped `kv` keeps data in the kvstore's log, so the Rust
//! `kvstore` app reads what a kv client wrote, on Linux and on bare metal.

mod common;
use common::*;

use std::path::Path;

const DEVICES: &str = "\n[components.kv]\ncomponent = \"kv\"\nconfig = { device = \"storage\" }\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"kv.img\"\nsize = \"1MiB\"\n";

fn with_args(dir: &Path, app: &str, args: &str) {
    let m = format!("[app]\ncomponent = \"{app}\"\nargs = {args}\n{DEVICES}");
    std::fs::write(dir.join("weft.toml"), m).unwrap();
}

fn kv_dir(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    test_component(&dir, "kvclient", "kvclient.wasm");
    dir
}

#[test]
fn a_kv_client_keeps_data_in_the_kvstore_log() {
    let dir = kv_dir("kv-roundtrip");
    with_args(&dir, "kvclient.wasm", r#"["set", "colour", "blue"]"#);
    run(&dir).ok().stdout_has("ok\n");
    with_args(&dir, "kvclient.wasm", r#"["set", "shape", "round"]"#);
    run(&dir).ok();
    // A second run reads what the first wrote.
    with_args(&dir, "kvclient.wasm", r#"["get", "colour"]"#);
    run(&dir).ok().stdout_has("blue\n");
    with_args(&dir, "kvclient.wasm", r#"["keys"]"#);
    run(&dir).ok().stdout_has("colour shape\n");
    // The Rust kvstore app reads the same image: one on-disk format.
    let m = "[app]\ncomponent = \"kvstore\"\nargs = [\"get\", \"shape\"]\n\n[devices.storage]\nkind = \"block\"\nbackend = \"file\"\npath = \"kv.img\"\n";
    std::fs::write(dir.join("weft.toml"), m).unwrap();
    run(&dir).ok().stdout_has("round\n");
    // `check` names the composed part.
    with_args(&dir, "kvclient.wasm", r#"["keys"]"#);
    weft(&["check", dir.to_str().unwrap()]).ok().stdout_has("shipped, composed into kvclient");
}

#[test]
fn the_same_kv_client_boots_on_bare_metal() {
    let dir = kv_dir("kv-metal");
    with_args(&dir, "kvclient.wasm", r#"["set", "where", "bare metal"]"#);
    weft(&["boot", dir.to_str().unwrap(), "--qemu-timeout", "60"]).ok().stdout_has("ok\n");
    with_args(&dir, "kvclient.wasm", r#"["get", "where"]"#);
    run(&dir).ok().stdout_has("bare metal\n");
}

#[test]
fn a_component_the_app_does_not_use_is_refused() {
    let dir = scratch("kv-unused");
    let m = format!("[app]\ncomponent = \"hello\"\n{DEVICES}");
    std::fs::write(dir.join("weft.toml"), m).unwrap();
    weft(&["check", dir.to_str().unwrap()])
        .code(2)
        .stderr_has("`components.kv`")
        .stderr_has("the app imports nothing that component `kv` exports");
}

#[test]
fn a_kv_without_its_device_fails_each_call_clearly() {
    let dir = kv_dir("kv-nodev");
    let m = "[app]\ncomponent = \"kvclient.wasm\"\nargs = [\"get\", \"x\"]\n\n[components.kv]\ncomponent = \"kv\"\nconfig = { device = \"elsewhere\" }\n\n[devices.storage]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\n";
    std::fs::write(dir.join("weft.toml"), m).unwrap();
    run(&dir).code(1).stdout_has("error: open elsewhere: not-found");
}

#[test]
fn a_kv_client_without_a_provider_is_told_how_to_add_one() {
    let dir = kv_dir("kv-noprovider");
    std::fs::write(dir.join("weft.toml"), "[app]\ncomponent = \"kvclient.wasm\"\nargs = [\"keys\"]\n").unwrap();
    weft(&["check", dir.to_str().unwrap()])
        .code(2)
        .stderr_has("imports `weft:devices/kv@0.1.0`, which a component provides, not a device")
        .stderr_has("[components.kv]");
}
