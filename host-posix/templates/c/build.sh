#!/usr/bin/env bash
# Builds {{name}}.wasm, the component weft.toml names, with the toolchain
# weft's own C apps use (weft's components/polyglot/toolchains.sh):
#   wit-bindgen-cli {{wit_bindgen}}  the C bindings for wit/world.wit (into gen/)
#   clang-19, lld-19, libclang-rt-19-dev-wasm32, wasi-libc   (Debian)
#   wasm-component-ld    the linker rustc uses for wasm32-wasip2; it ships
#                        with the Rust toolchain and makes the component
# Override with CC, WASI_SYSROOT, WASM_COMPONENT_LD.
set -euo pipefail
cd "$(dirname "$0")"
CC=${CC:-clang-19}
WASI_SYSROOT=${WASI_SYSROOT:-/usr}   # Debian's wasi-libc: /usr/include/wasm32-wasi
if [ -z "${WASM_COMPONENT_LD:-}" ] && command -v rustc >/dev/null; then
  WASM_COMPONENT_LD="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld"
fi

missing=()
have=$(wit-bindgen --version 2>/dev/null | awk '{print $2}' || true)
[ "$have" = {{wit_bindgen}} ] ||
  missing+=("wit-bindgen-cli {{wit_bindgen}} (found: ${have:-none}): cargo install --locked wit-bindgen-cli@{{wit_bindgen}} --no-default-features --features c")
command -v "$CC" >/dev/null ||
  missing+=("$CC: apt-get install --no-install-recommends clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc")
[ -d "$WASI_SYSROOT/include/wasm32-wasi" ] ||
  missing+=("wasi-libc (no $WASI_SYSROOT/include/wasm32-wasi): apt-get install wasi-libc, or set WASI_SYSROOT")
[ -x "${WASM_COMPONENT_LD:-}" ] ||
  missing+=("wasm-component-ld (${WASM_COMPONENT_LD:-no rustc}): install Rust with rustup, or set WASM_COMPONENT_LD")
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: cannot build {{name}}; missing:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

rm -rf gen
log=$(wit-bindgen c wit -w {{world}} --out-dir gen 2>&1) || { echo "$log" >&2; exit 1; }
# A reactor (no main): weft calls the exports. wasm-component-ld links and
# makes the module a component importing only the interfaces the code calls.
"$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
  -fuse-ld="$WASM_COMPONENT_LD" -O2 -Wall -Wextra -Werror -Wl,--strip-debug -I gen \
  -o {{name}}.wasm {{name}}.c gen/{{world_c}}.c gen/{{world_c}}_component_type.o
echo "built {{name}}.wasm; run it: weft run . (here) or weft run {{name}} (from the folder above)" >&2
