#!/usr/bin/env bash
# Sets up whatever this machine is missing, builds weft and runs the hello
# unikernel end to end. Safe to run again: each step checks before it acts.
#   ./setup.sh            set up, build, run examples/hello
#   ./setup.sh --deps     only install what is missing (used by test.sh)
#   ./setup.sh --polyglot only the Rust toolchain and the Python, JavaScript
#                         and C toolchains of components/polyglot/build.sh
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Rust targets: rust-toolchain.toml names them, but RUSTUP_AUTO_INSTALL=0
# machines do not install them on their own.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^$toolchain"; then
  say "installing Rust $toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
# wasm32-wasip1: the WASI testsuite's Rust tests (third_party/wasi-testsuite/build.sh).
for t in wasm32-wasip2 wasm32-wasip1 x86_64-unknown-none; do
  if ! rustup +"$toolchain" target list --installed | grep -qx "$t"; then
    say "installing Rust target $t"
    rustup +"$toolchain" target add "$t"
  fi
done

# Toolchains for the polyglot apps: componentize-py (PyPI), componentize-qjs
# (npm), clang + wasi-libc (Debian) and wit-bindgen-cli (crates.io), at the
# versions components/polyglot pins. On a fresh machine the wit-bindgen-cli
# build is the long part (a few minutes on 2 cores).
. components/polyglot/toolchains.sh
polyglot_install
[ "${1:-}" = "--polyglot" ] && exit 0

# Debian packages the tests and examples use (QEMU boots the bare-metal kernel;
# wrk drives the httpd benchmark, host-posix/benches/net.rs; gdb and lldb
# debug components under `weft run --debug` and the kernel under `weft boot --gdb`;
# mtools and dosfstools read and make the FAT images of tests/wasi.rs;
# skopeo and containerd's ctr take the OCI images of tests/oci.rs, which starts
# a containerd of its own under target/, and tests/shim.rs runs weft images
# under it with containerd-shim-weft-v1, pushing one through docker-registry;
# building the shim needs protoc for containerd's API (containerd-client's
# build script) and libseccomp for youki's libcontainer).
packages=(git qemu-system-x86 iproute2 iputils-ping curl wrk gdb lldb mtools dosfstools skopeo containerd docker-registry
  protobuf-compiler libseccomp-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--deps" ] && exit 0

say "building weft and its components (the first build compiles wasmtime: ~7 minutes on 2 cores)"
cargo build --release -p weft
say "running examples/hello"
./target/release/weft run examples/hello
