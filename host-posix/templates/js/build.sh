#!/usr/bin/env bash
# Builds {{name}}.wasm, the component weft.toml names, with the toolchain
# weft's own JavaScript apps use: componentize-qjs {{componentize_qjs}}
# (npm, pinned in package.json and package-lock.json; the package carries
# QuickJS compiled to wasm). The first build installs it into node_modules
# (`npm ci`, from npm's cache when it holds it).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: cannot build {{name}}: node and npm are needed" >&2
  echo "fix: apt-get install nodejs npm" >&2
  exit 1
fi
if [ ! -x node_modules/.bin/componentize-qjs ]; then
  npm ci --prefer-offline --no-audit --no-fund --loglevel=error
fi
# --sync: weft's wasmtime runs without the component-model-async ABI.
# --stub-wasi: QuickJS's WASI imports become traps, so the component imports
# only the weft:devices interfaces of wit/world.wit.
node_modules/.bin/componentize-qjs --wit wit -n {{world}} --js {{module}}.js --sync --stub-wasi -o {{name}}.wasm.tmp >/dev/null
mv {{name}}.wasm.tmp {{name}}.wasm
echo "built {{name}}.wasm; run it: weft run . (here) or weft run {{name}} (from the folder above)" >&2
