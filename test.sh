#!/usr/bin/env bash
# Runs every test: the host workspace (unit, integration, golden and
# negative tests, which drive the real `weft` binary over every example,
# on Linux and booted as bare-metal kernels under QEMU),
# and the guest crates' unit tests on the host. The kernel build is also the
# proof that the runtime core stays no_std (it links it without `std`).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --deps

echo "==> bare-metal kernel (its tests boot it under QEMU)" >&2
cargo build -p weft-baremetal --target x86_64-unknown-none --release

echo "==> polyglot apps (Python, JavaScript, C, a Rust CLI from crates.io; host-posix/tests/polyglot.rs runs them)" >&2
components/polyglot/build.sh

echo "==> host workspace tests" >&2
cargo test

echo "==> guest unit tests (on the host)" >&2
cargo test --manifest-path components/Cargo.toml --target x86_64-unknown-linux-gnu -p weft-guest -p kvstore -p block-fault -p block-trace -p clock-skew -p tcpip -p httpd -p arp-log -p net-fault -p net-pcap -p echo -p wasi-on-weft
