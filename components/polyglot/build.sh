#!/usr/bin/env bash
# Builds the polyglot apps into components weft runs:
#   python  components/polyglot/python/hello  ->  examples/hello-python/hello.wasm
#           examples/python-script/*.py        ->  examples/python-script/script.wasm
#           components/polyglot/python/kv-client ->  examples/kv-python/kv-client.wasm
#   js      components/polyglot/js/hello      ->  examples/hello-js/hello.wasm
#   c       components/polyglot/c/hello       ->  examples/hello-c/hello.wasm
#   rust    ulid-cli from crates.io (pinned)   ->  examples/rust-cli/ulid.wasm
#           components/polyglot/rust/wasi-hello ->  target/polyglot/wasi-hello.wasm
#           components/polyglot/rust/sleep      ->  examples/sim-sleep/sleep.wasm
#   c       components/polyglot/c/sleep         ->  target/polyglot/c-sleep.wasm (a stock WASI command in C)
#           components/polyglot/c/sqlite + SQLite ->  examples/sqlite{,-faulty-disk,-power-cut}/sqlite-faults.wasm
#                                                   and target/polyglot/sqlite-faults-native (the host build)
# and, for host-posix/tests/polyglot.rs, a JS component for the wrong world
# (target/polyglot/wrong-world-js.wasm).
#
#   components/polyglot/build.sh [python|js|c|rust ...]   build these (default: all)
#   components/polyglot/build.sh --check                  only check the toolchains
#
# Every toolchain is checked first; when one is missing the script names
# each missing piece and the command that installs it (./setup.sh --polyglot
# installs them all). A component is rebuilt only when its sources, the WIT
# or the toolchain version changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=toolchains.sh
. "$here/toolchains.sh"

check_only=0
langs=()
for a in "$@"; do
  case $a in
    --check) check_only=1 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    python | js | c | rust) langs+=("$a") ;;
    *) echo "error: unknown argument \`$a\` (languages: ${POLYGLOT_LANGS[*]}; or --check)" >&2; exit 2 ;;
  esac
done
[ ${#langs[@]} -gt 0 ] || langs=("${POLYGLOT_LANGS[@]}")

problems=$(polyglot_problems "${langs[@]}")
if [ -n "$problems" ]; then
  {
    echo "error: polyglot toolchains missing, so these apps cannot be built:"
    printf '%s\n' "$problems" | awk -F'\t' '{print "  " $1 ": " $2}'
    echo "fix: ./setup.sh --polyglot   (installs all of them), or one by one:"
    printf '%s\n' "$problems" | awk -F'\t' '!seen[$3]++ {print "  " $3}'
  } >&2
  exit 1
fi
[ $check_only = 1 ] && { echo "polyglot toolchains: ${langs[*]} ready" >&2; exit 0; }

out=$root/target/polyglot
mkdir -p "$out"

say() { printf '==> %s\n' "$*" >&2; }

# A WIT folder for the world in $1 (a .wit file of its own package) with
# weft:devices and its deps beside it, as wit-parser wants deps: flat, one
# level, under deps/.
stage_wit() {
  local world_file=$1 dir=$2
  rm -rf "$dir"
  mkdir -p "$dir/deps/weft-devices"
  cp "$world_file" "$dir/"
  cp "$root"/wit/*.wit "$dir/deps/weft-devices/"
  if [ -d "$root/wit/deps" ]; then cp -R "$root/wit/deps/." "$dir/deps/"; fi
}

# sha256 over the toolchain version string ($1), every file given after it
# and this script: the stamp that decides whether a component is rebuilt.
stamp_of() {
  local v=$1
  shift
  { echo "$v"; find "$@" "$here/build.sh" "$here/toolchains.sh" -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1
}

# Runs "$@" (the build) unless $1's stamp ($2) matches the last build's.
build_if_changed() {
  local target=$1 stamp=$2 name=$3
  shift 3
  if [ -f "$target" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    say "$name: up to date ($(rel "$target"))"
    return
  fi
  local t0=$SECONDS
  "$@"
  echo "$stamp" >"$out/$name.stamp"
  say "$name: built $(rel "$target") ($(stat -c %s "$target") bytes, $((SECONDS - t0)) s)"
}

rel() { realpath --relative-to="$PWD" "$1"; }

build_python() {
  local dir=$here/python/hello wit=$out/wit-hello dest=$root/examples/hello-python/hello.wasm
  stage_wit "$here/wit/hello.wit" "$wit"
  # --stub-wasi: CPython's own WASI imports (stdio, clocks, random, files)
  # become traps, so the component needs only weft:devices. The app uses the
  # devices directly; plain scripts are built without it (build_python_script).
  build_python_now() {
    (cd "$dir" && componentize-py -d "$wit" -w hello componentize --stub-wasi app -o "$dest.tmp" >/dev/null)
    mv "$dest.tmp" "$dest"
  }
  build_if_changed "$dest" "$(stamp_of "componentize-py $(polyglot_python_version)" "$dir" "$wit")" python build_python_now
  build_python_script
  build_python_kv_client
}

# The kv client: a Python app of the world kv-client (kv + console).
build_python_kv_client() {
  local dir=$here/python/kv-client wit=$out/wit-kv-client dest=$root/examples/kv-python/kv-client.wasm
  stage_wit "$here/wit/kv-client.wit" "$wit"
  build_python_kv_client_now() {
    (cd "$dir" && componentize-py -d "$wit" -w kv-client componentize --stub-wasi app -o "$dest.tmp" >/dev/null)
    mv "$dest.tmp" "$dest"
  }
  build_if_changed "$dest" "$(stamp_of "componentize-py $(polyglot_python_version)" "$dir" "$wit")" python-kv-client \
    build_python_kv_client_now
}

# Plain Python scripts (examples/python-script/*.py, untouched) as a stock
# WASI command: the generic runner (python/runner/runner.py) with the scripts
# staged beside it, for the world wasi:cli/command — no --stub-wasi: CPython's
# WASI imports are what weft's `wasi` component serves. The first argument
# names the script to run, as for `python`.
build_python_script() {
  local runner=$here/python/runner scripts
  local wit=$out/wit-command stage=$out/python-script dest=$root/examples/python-script/script.wasm
  scripts=("$root"/examples/python-script/*.py)
  stage_wit "$here/wit/command.wit" "$wit"
  build_python_script_now() {
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$runner/runner.py" "${scripts[@]}" "$stage/"
    (cd "$stage" && componentize-py -d "$wit" -w command componentize runner -o "$dest.tmp" >/dev/null)
    mv "$dest.tmp" "$dest"
  }
  build_if_changed "$dest" "$(stamp_of "componentize-py $(polyglot_python_version)" "$runner" "${scripts[@]}" "$wit")" python-script \
    build_python_script_now
}

# componentize-qjs with --sync (weft's wasmtime runs without the
# component-model-async ABI) and --stub-wasi (QuickJS's WASI imports become
# traps).
componentize_js() {
  local wit=$1 world=$2 js=$3 dest=$4
  (cd "$here/js" && node_modules/.bin/componentize-qjs --wit "$wit" -n "$world" --js "$js" --sync --stub-wasi -o "$dest.tmp" >/dev/null)
  mv "$dest.tmp" "$dest"
}

build_js() {
  local v wit=$out/wit-hello wrong=$out/wit-greeter
  v="componentize-qjs $(polyglot_js_version)"
  stage_wit "$here/wit/hello.wit" "$wit"
  stage_wit "$here/js/wrong-world/greeter.wit" "$wrong"
  build_if_changed "$root/examples/hello-js/hello.wasm" "$(stamp_of "$v" "$here/js/hello" "$wit")" js \
    componentize_js "$wit" hello "$here/js/hello/hello.js" "$root/examples/hello-js/hello.wasm"
  build_if_changed "$out/wrong-world-js.wasm" "$(stamp_of "$v" "$here/js/wrong-world" "$wrong")" js-wrong-world \
    componentize_js "$wrong" greeter "$here/js/wrong-world/greeter.js" "$out/wrong-world-js.wasm"
}

build_c() {
  local dir=$here/c/hello gen=$out/c-hello dest=$root/examples/hello-c/hello.wasm
  build_c_now() {
    rm -rf "$gen"
    mkdir -p "$gen"
    # Bindings for the world weft:devices/app itself (not the narrowed one
    # the Python and JS apps need): the linker keeps only what the code calls.
    local log
    log=$(wit-bindgen c "$root/wit" -w app --out-dir "$gen" 2>&1) || { echo "$log" >&2; return 1; }
    # A reactor (no `main`, no `_start`): weft calls the `run` export.
    # wasm-component-ld links (with Debian's wasm-ld, which clang names for
    # it) and makes the module a component importing only the interfaces
    # the code calls.
    # --strip-debug drops wasi-libc's DWARF and keeps the name section for
    # backtraces.
    "clang-$LLVM_VERSION" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
      -fuse-ld="$(polyglot_component_ld)" -O2 -Wall -Wextra -Werror -Wl,--strip-debug -I "$gen" \
      -o "$dest.tmp" "$dir/hello.c" "$gen/app.c" "$gen/app_component_type.o"
    mv "$dest.tmp" "$dest"
  }
  build_if_changed "$dest" "$(stamp_of "wit-bindgen $WIT_BINDGEN_VERSION $(clang-$LLVM_VERSION --version | head -n1) $(polyglot_component_ld)" "$dir" "$root/wit")" c build_c_now

  # The same app built for a debugger (-O0 -g, DWARF kept): what
  # host-posix/tests/debug.rs breaks in under `weft run --debug`.
  build_c_debug_now() {
    [ -f "$gen/app.h" ] || build_c_now
    "clang-$LLVM_VERSION" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model=reactor \
      -fuse-ld="$(polyglot_component_ld)" -O0 -g -Wall -Wextra -Werror -I "$gen" \
      -o "$out/c-hello-debug.wasm.tmp" "$dir/hello.c" "$gen/app.c" "$gen/app_component_type.o"
    mv "$out/c-hello-debug.wasm.tmp" "$out/c-hello-debug.wasm"
  }
  build_if_changed "$out/c-hello-debug.wasm" "$(stamp_of "-O0 -g wit-bindgen $WIT_BINDGEN_VERSION $(clang-$LLVM_VERSION --version | head -n1) $(polyglot_component_ld)" "$dir" "$root/wit")" c-debug build_c_debug_now

  # A stock C program (a WASI command: main, wasi-libc), for the simulation
  # tests: wasm-component-ld adapts wasi-libc's preview1 imports to WASI 0.2.
  local sleep=$here/c/sleep
  build_c_sleep_now() {
    "clang-$LLVM_VERSION" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -fuse-ld="$(polyglot_component_ld)" -O2 -Wall -Wextra -Werror \
      -Wl,--strip-debug -o "$out/c-sleep.wasm.tmp" "$sleep/sleep.c"
    mv "$out/c-sleep.wasm.tmp" "$out/c-sleep.wasm"
  }
  build_if_changed "$out/c-sleep.wasm" "$(stamp_of "$(clang-$LLVM_VERSION --version | head -n1) $(polyglot_component_ld)" "$sleep")" c-sleep build_c_sleep_now
  build_c_sqlite
}

# SQLite's amalgamation from crates.io (libsqlite3-sys, pinned by
# c/sqlite/amalgamation/Cargo.lock), compiled with a stock C program
# (c/sqlite/sqlite-faults.c) twice: for wasm32-wasi (examples/sqlite,
# sqlite-faulty-disk and sqlite-power-cut run the same bytes) and natively for the host
# (target/polyglot/sqlite-faults-native, the baseline of docs/benchmarks.md).
# No WAL (no shared memory on WASI), no threads, no extensions, temp files in
# memory; locking VFS "unix-none": weft has no file locks, and one program owns
# its disk (SQLite's WASI default, "unix-dotfile", leaves a lock directory
# behind after a crash, which locks the database for good).
SQLITE_DEFINES=(-DSQLITE_OMIT_WAL -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_TEMP_STORE=3
  '-DSQLITE_DEFAULT_UNIX_VFS="unix-none"')
build_c_sqlite() {
  local dir=$here/c/sqlite crate src
  local log
  log=$(cd "$root" && cargo fetch --locked --manifest-path "$dir/amalgamation/Cargo.toml" 2>&1) || { echo "$log" >&2; return 1; }
  crate=$(cd "$root" && cargo metadata --locked --offline --format-version 1 --manifest-path "$dir/amalgamation/Cargo.toml" |
    grep -o '"manifest_path":"[^"]*/libsqlite3-sys-[^"]*/Cargo.toml"' | head -n1 | sed 's/^"manifest_path":"//; s|/Cargo.toml"$||')
  src=$crate/sqlite3
  [ -f "$src/sqlite3.c" ] || { echo "error: no sqlite3.c in the fetched libsqlite3-sys ($crate)" >&2; return 1; }
  build_c_sqlite_now() {
    # A 1 MiB stack below the data (SQLite's frames are big: wasm-ld's
    # default 64 KiB stack would grow into the heap).
    "clang-$LLVM_VERSION" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -fuse-ld="$(polyglot_component_ld)" -O2 \
      -Wl,--strip-debug -Wl,-z,stack-size=1048576 -Wl,--stack-first "${SQLITE_DEFINES[@]}" -I "$src" \
      -o "$out/sqlite-faults.wasm.tmp" "$dir/sqlite-faults.c" "$src/sqlite3.c"
    mv "$out/sqlite-faults.wasm.tmp" "$out/sqlite-faults.wasm"
    cc -O2 "${SQLITE_DEFINES[@]}" -I "$src" -o "$out/sqlite-faults-native.tmp" "$dir/sqlite-faults.c" "$src/sqlite3.c" -lm
    mv "$out/sqlite-faults-native.tmp" "$out/sqlite-faults-native"
  }
  build_if_changed "$out/sqlite-faults-native" \
    "$(stamp_of "$(clang-$LLVM_VERSION --version | head -n1) $(cc --version | head -n1) $(polyglot_component_ld) $crate" "$dir/sqlite-faults.c" "$dir/amalgamation/Cargo.lock")" \
    c-sqlite build_c_sqlite_now
  # One binary, three manifests: copied every time (a copy missing from one
  # example folder is back without a rebuild).
  local ex
  for ex in sqlite sqlite-faulty-disk sqlite-power-cut; do
    cmp -s "$out/sqlite-faults.wasm" "$root/examples/$ex/sqlite-faults.wasm" ||
      cp "$out/sqlite-faults.wasm" "$root/examples/$ex/sqlite-faults.wasm"
  done
}

# A Rust CLI from crates.io, unmodified: `cargo install` of the pinned
# version for wasm32-wasip2, with its own Cargo.lock (--locked), by the pinned
# toolchain (run from the repository root, so rust-toolchain.toml applies).
build_rust() {
  local inst=$out/rust-cli dest=$root/examples/rust-cli/$RUST_CLI_BIN.wasm
  build_rust_now() {
    local log
    log=$(cd "$root" && cargo install --locked --force --target wasm32-wasip2 --version "$RUST_CLI_VERSION" \
      --root "$inst" "$RUST_CLI_CRATE" 2>&1) || { echo "$log" >&2; return 1; }
    cp "$inst/bin/$RUST_CLI_BIN.wasm" "$dest.tmp"
    mv "$dest.tmp" "$dest"
  }
  build_if_changed "$dest" "$(stamp_of "$RUST_CLI_CRATE $RUST_CLI_VERSION $(cd "$root" && rustc --version)")" rust-cli build_rust_now

  # A stock Rust std program of our own, for the benchmark's WASI row.
  local hello=$here/rust/wasi-hello
  build_wasi_hello_now() {
    local log
    log=$(cd "$root" && cargo build --release --locked --target wasm32-wasip2 --manifest-path "$hello/Cargo.toml" \
      --target-dir "$out/cargo" 2>&1) || { echo "$log" >&2; return 1; }
    cp "$out/cargo/wasm32-wasip2/release/wasi-hello.wasm" "$out/wasi-hello.wasm"
  }
  build_if_changed "$out/wasi-hello.wasm" "$(stamp_of "$(cd "$root" && rustc --version)" "$hello/src" "$hello/Cargo.toml")" \
    rust-wasi-hello build_wasi_hello_now

  # A stock program that sleeps an hour: examples/sim-sleep runs it in
  # virtual time.
  local sleep=$here/rust/sleep dest_sleep=$root/examples/sim-sleep/sleep.wasm
  build_sleep_now() {
    local log
    log=$(cd "$root" && cargo build --release --locked --target wasm32-wasip2 --manifest-path "$sleep/Cargo.toml" \
      --target-dir "$out/cargo" 2>&1) || { echo "$log" >&2; return 1; }
    cp "$out/cargo/wasm32-wasip2/release/sleep.wasm" "$dest_sleep.tmp"
    mv "$dest_sleep.tmp" "$dest_sleep"
  }
  build_if_changed "$dest_sleep" "$(stamp_of "$(cd "$root" && rustc --version)" "$sleep/src" "$sleep/Cargo.toml")" \
    rust-sleep build_sleep_now
}

t0=$SECONDS
for lang in "${langs[@]}"; do "build_$lang"; done
say "polyglot: ${langs[*]} done in $((SECONDS - t0)) s"
