//! Builds the guest components (their own cargo workspace, for
//! wasm32-wasip2) and embeds them in `weft` as the shipped components, like
//! wasmtime's test-programs: one `cargo build` gives a self-contained CLI.

use std::path::PathBuf;
use std::process::Command;

/// Shipped components: (name in manifests, crate's artifact name).
const SHIPPED: &[(&str, &str)] = &[
    ("hello", "hello"),
    ("kvstore", "kvstore"),
    ("block-fault", "block_fault"),
    ("block-trace", "block_trace"),
    ("clock-skew", "clock_skew"),
    ("tcpip", "tcpip"),
    ("echo", "echo"),
    ("httpd", "httpd"),
    ("arp-log", "arp_log"),
    ("net-fault", "net_fault"),
    ("net-pcap", "net_pcap"),
    ("wasi", "wasi_on_weft"),
    ("kv", "kv"),
    ("netclient", "netclient"),
];

/// Test apps and filters built alongside (tests copy them next to their manifests).
const TEST_APPS: &[(&str, &str)] = &[
    ("misbehave", "misbehave"),
    ("hostile-block", "hostile_block"),
    ("hostile-net", "hostile_net"),
    ("hostile-observer", "hostile_observer"),
    ("callbench", "callbench"),
    ("batchbench", "batchbench"),
    ("idle", "idle"),
    ("wasi-stock", "wasi-stock"),
    ("kvclient", "kvclient"),
];

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = here.parent().unwrap().to_path_buf();
    let components = root.join("components");
    for p in ["apps", "devices", "guest", "tests", "vendor", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", components.join(p).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let target_dir = components.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(components.join("Cargo.toml"));
    // Only what weft ships and tests with: a guest crate in progress in the
    // workspace must not break the host build.
    for (_, artifact) in SHIPPED.iter().chain(TEST_APPS) {
        cmd.args(["-p", &artifact.replace('_', "-")]);
    }
    cmd
        .env("CARGO_TARGET_DIR", &target_dir);
    // Settings meant for the host build must not leak into the guest build.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER", "CARGO_PROFILE_RELEASE_DEBUG"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the guest components");
    if !status.success() {
        panic!(
            "building the guest components failed; is the wasm32-wasip2 target installed? (`rustup target add wasm32-wasip2`, or run ./setup.sh)"
        );
    }
    let out_dir = target_dir.join("wasm32-wasip2/release");
    let mut src = String::from("/// Components shipped inside `weft`: (name, bytes).\npub const SHIPPED: &[(&str, &[u8])] = &[\n");
    for (name, artifact) in SHIPPED {
        let path = out_dir.join(format!("{artifact}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        src.push_str(&format!("    ({name:?}, include_bytes!({:?})),\n", path.display().to_string()));
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("shipped.rs");
    std::fs::write(out, src).unwrap();
}
