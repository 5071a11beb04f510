#!/usr/bin/env bash
# Runs every test: the host workspace (unit, integration, golden and
# negative tests, which drive the real `weft` binary over every example,
# on Linux and booted as bare-metal kernels under QEMU),
# and the guest crates' unit tests on the host. The kernel build is also the
# proof that the runtime core stays no_std (it links it without `std`).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --deps

echo "==> bare-metal kernels, native and Pulley (their tests boot them under QEMU)" >&2
# One target dir for both: only wasmtime, the runtime and the kernel differ,
# so the Pulley kernel adds ~1.5 min to a clean build (~5 min in a target dir
# of its own, ~25 s after a runtime change). Both builds put the kernel at
# the same path: the Pulley one is copied to where `weft boot --pulley`
# looks, then the native build (fresh by then: ~1 s) puts its own back.
cargo build -p weft-baremetal --target x86_64-unknown-none --release
cargo build -p weft-baremetal --target x86_64-unknown-none --release --features pulley
mkdir -p target/pulley/x86_64-unknown-none/release
rm -f target/pulley/x86_64-unknown-none/release/weft-kernel
cp target/x86_64-unknown-none/release/weft-kernel target/pulley/x86_64-unknown-none/release/weft-kernel
cargo build -p weft-baremetal --target x86_64-unknown-none --release

echo "==> polyglot apps (Python, JavaScript, C, a Rust CLI from crates.io; host-posix/tests/polyglot.rs runs them)" >&2
components/polyglot/build.sh

echo "==> the WASI testsuite's Rust and C tests, from source (host-posix/tests/wasi_testsuite.rs runs them)" >&2
third_party/wasi-testsuite/build.sh

echo "==> containerd shims (host-posix/tests/shim.rs and kubernetes.rs run them under a containerd of their own)" >&2
# `cargo test` builds other packages' binaries only as unit-test harnesses:
# the shims the tests hand to containerd are built here, in the same profile.
cargo build -p containerd-shim-weft

echo "==> host workspace tests" >&2
cargo test

echo "==> guest unit tests (on the host)" >&2
cargo test --manifest-path components/Cargo.toml --target x86_64-unknown-linux-gnu -p weft-guest -p kvstore -p block-fault -p block-trace -p clock-skew -p tcpip -p httpd -p arp-log -p net-fault -p net-pcap -p echo -p wasi-on-weft -p netclient
