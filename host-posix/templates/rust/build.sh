#!/usr/bin/env bash
# Builds {{name}}.wasm, the component weft.toml names. Needs the Rust
# toolchain in rust-toolchain.toml (rustup installs it on first use) and
# crates.io (or cargo's cache) for wit-bindgen and dlmalloc.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm; run it: weft run . (here) or weft run {{name}} (from the folder above)" >&2
