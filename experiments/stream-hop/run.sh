#!/bin/sh
# Builds the guest twice (world `hop-sync`, world `hop`) and the host, then runs
# the bench. Arguments go to the bench: reads=N rounds=R only=VARIANT.
# Target dir: $CARGO_TARGET_DIR or /work/tgt-stream (wasmtime twice: ~10 min cold).
#   experiments/stream-hop/run.sh                 # 9 rounds of 100,000 reads
#   experiments/stream-hop/run.sh only=stream-hop reads=2000000   # one variant (perf)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"   # rust-toolchain.toml (1.97) is found from the working directory
tgt=${CARGO_TARGET_DIR:-/work/tgt-stream}
guest_tgt=$tgt/guest
cargo build --release --target wasm32-wasip2 --manifest-path "$here/guest/Cargo.toml" \
    --target-dir "$guest_tgt"
cp "$guest_tgt/wasm32-wasip2/release/hop_guest.wasm" "$tgt/hop-sync.wasm"
cargo build --release --target wasm32-wasip2 --manifest-path "$here/guest/Cargo.toml" \
    --target-dir "$guest_tgt" --features streams
cp "$guest_tgt/wasm32-wasip2/release/hop_guest.wasm" "$tgt/hop-streams.wasm"
# The baseline: wasmtime built as weft builds it (no component-model-async).
cargo build --release --manifest-path "$here/Cargo.toml" --target-dir "$tgt" --no-default-features
cp "$tgt/release/stream-hop" "$tgt/stream-hop-nocma"
cargo build --release --manifest-path "$here/Cargo.toml" --target-dir "$tgt"
exec "$tgt/release/stream-hop" "$tgt/hop-sync.wasm" "$tgt/hop-streams.wasm" \
    baseline="$tgt/stream-hop-nocma" "$@"
