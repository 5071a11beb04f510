#!/usr/bin/env bash
# Builds the WASI testsuite's wasm32-wasip1 tests from the vendored sources
# (VENDORED.md), for host-posix/tests/wasi_testsuite.rs:
#   tests/rust/wasm32-wasip1/src/bin/*.rs  ->  target/wasi-testsuite/rust/<name>.wasm
#   tests/c/src/*.c                        ->  target/wasi-testsuite/c/<name>.wasm
# Both are core modules importing wasi_snapshot_preview1; the test makes each
# a component with the WASI preview1 adapter of wasmtime 50 (the crates.io
# crate wasi-preview1-component-adapter-provider, pinned in host-posix's
# dev-dependencies) before weft runs it.
#
# Toolchains, all from registries: the pinned Rust toolchain with its
# wasm32-wasip1 target (./setup.sh --deps adds it) and the crates in
# tests/rust/wasm32-wasip1/Cargo.lock (crates.io); clang, wasm-ld and
# wasi-libc from Debian (components/polyglot/toolchains.sh, the C toolchain
# of the C components). Rebuilt only when a source, this script or a
# toolchain version changed.
#
#   third_party/wasi-testsuite/build.sh           build (or say it is up to date)
#   third_party/wasi-testsuite/build.sh --check   only check the toolchains
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../components/polyglot/toolchains.sh
. "$root/components/polyglot/toolchains.sh"

check_only=0
for a in "$@"; do
  case $a in
    --check) check_only=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument \`$a\` (only --check)" >&2; exit 2 ;;
  esac
done

rust_src=$here/tests/rust/wasm32-wasip1
c_src=$here/tests/c/src
out=$root/target/wasi-testsuite
say() { printf '==> %s\n' "$*" >&2; }

# What is missing, one line each with the command that installs it.
problems=()
sysroot=$(cd "$root" && rustc --print sysroot 2>/dev/null) || sysroot=
if [ -z "$sysroot" ]; then
  problems+=("rustc not found: ./setup.sh --deps")
elif [ ! -d "$sysroot/lib/rustlib/wasm32-wasip1" ]; then
  problems+=("the Rust target wasm32-wasip1 is not installed: rustup target add wasm32-wasip1 (or ./setup.sh --deps)")
fi
command -v "clang-$LLVM_VERSION" >/dev/null || problems+=("clang-$LLVM_VERSION is missing: ./setup.sh --polyglot")
command -v "wasm-ld-$LLVM_VERSION" >/dev/null || command -v wasm-ld >/dev/null ||
  problems+=("wasm-ld (lld-$LLVM_VERSION) is missing: ./setup.sh --polyglot")
[ -f "$WASI_SYSROOT/lib/wasm32-wasi/libc.a" ] || problems+=("wasi-libc is missing: ./setup.sh --polyglot")
if [ ${#problems[@]} -gt 0 ]; then
  echo "error: the WASI testsuite cannot be built:" >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
[ $check_only = 1 ] && { say "wasi-testsuite toolchains ready"; exit 0; }

stamp_of() {
  {
    echo "$1"
    find "$rust_src/src" "$rust_src/Cargo.toml" "$rust_src/Cargo.lock" "$c_src" "$here/build.sh" -type f -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

t0=$SECONDS
versions="$(cd "$root" && rustc --version) $(clang-"$LLVM_VERSION" --version | head -n1) $(dpkg-query -W -f='${Version}' wasi-libc 2>/dev/null)"
stamp=$(stamp_of "$versions")
if [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  say "wasi-testsuite: up to date ($(find "$out/rust" "$out/c" -name '*.wasm' | wc -l) tests in ${out#"$root"/})"
  exit 0
fi
rm -f "$out/stamp"
mkdir -p "$out"

# Rust: every src/bin/*.rs is a binary of the wasi_tests package; its own
# workspace and lock file, built by the toolchain rust-toolchain.toml pins
# (cargo runs below the repository root). Upstream's sources warn under
# edition 2024's lints: not ours to fix.
log=$(cd "$rust_src" && cargo build --release --locked --target wasm32-wasip1 --target-dir "$out/cargo" 2>&1) ||
  { echo "$log" >&2; exit 1; }
rm -rf "$out/rust.tmp"
mkdir -p "$out/rust.tmp"
for f in "$rust_src"/src/bin/*.rs; do
  n=$(basename "$f" .rs)
  cp "$out/cargo/wasm32-wasip1/release/$n.wasm" "$out/rust.tmp/$n.wasm"
done

# C: one program per .c, wasi-libc's crt1 (a command: _start calls main),
# linked by Debian's wasm-ld into a core module.
rm -rf "$out/c.tmp"
mkdir -p "$out/c.tmp"
for f in "$c_src"/*.c; do
  n=$(basename "$f" .c)
  "clang-$LLVM_VERSION" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -O2 -fuse-ld=lld -Wl,--strip-debug \
    -o "$out/c.tmp/$n.wasm" "$f"
done

rm -rf "$out/rust" "$out/c"
mv "$out/rust.tmp" "$out/rust"
mv "$out/c.tmp" "$out/c"
echo "$stamp" >"$out/stamp"
say "wasi-testsuite: built $(find "$out/rust" -name '*.wasm' | wc -l) Rust and $(find "$out/c" -name '*.wasm' | wc -l) C tests into ${out#"$root"/} in $((SECONDS - t0)) s"
