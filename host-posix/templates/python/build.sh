#!/usr/bin/env bash
# Builds {{name}}.wasm, the component weft.toml names, with the toolchain
# weft's own Python apps use: componentize-py {{componentize_py}} (PyPI; the
# wheel carries CPython compiled to wasm). Takes 15-30 s; the component is
# ~18 MB, and weft's first run compiles it once into its cache.
set -euo pipefail
cd "$(dirname "$0")"
want={{componentize_py}}
have=$(componentize-py --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "error: cannot build {{name}}: componentize-py $want is needed, found ${have:-none}" >&2
  echo "fix: pip install componentize-py==$want" >&2
  exit 1
fi
# --stub-wasi: CPython's WASI imports become traps, so the component imports
# only the weft:devices interfaces of wit/world.wit.
componentize-py -d wit -w {{world}} componentize --stub-wasi {{module}} -o {{name}}.wasm.tmp >/dev/null
mv {{name}}.wasm.tmp {{name}}.wasm
echo "built {{name}}.wasm; run it: weft run . (here) or weft run {{name}} (from the folder above)" >&2
