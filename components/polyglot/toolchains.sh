# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source it
# The polyglot toolchains: what each language needs, the pinned versions, how
# to check them and how to install them. Sourced by components/polyglot/build.sh
# (check) and by setup.sh --polyglot (install); not run on its own.
#
# Every piece comes from a package registry (PyPI, npm, crates.io, Debian):
#   python  componentize-py       pinned in python/requirements.txt
#   js      componentize-qjs      pinned in js/package.json + js/package-lock.json
#   c       clang, wasm-ld, compiler-rt and wasi-libc for wasm32 (Debian),
#           wit-bindgen-cli (crates.io, pinned below), and the Rust
#           toolchain's own wasm-component-ld as clang's linker
#   rust    the pinned Rust toolchain's wasm32-wasip2 target; the CLI crate
#           (pinned below) comes from crates.io through `cargo install`
# The Python and JS apps need nothing else: each package carries its
# interpreter compiled to wasm.

POLYGLOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# wit-bindgen-cli at the same version as the wit-bindgen crate the Rust guests
# use (components/Cargo.toml), so C and Rust bindings come from one generator.
WIT_BINDGEN_VERSION=0.63.0
# Only the `c` generator, and unoptimized: the binary generates bindings for a
# few WIT files in a blink either way, and the full feature set built with
# optimizations takes several times as long to install.
WIT_BINDGEN_INSTALL="cargo install --locked --debug wit-bindgen-cli@$WIT_BINDGEN_VERSION --no-default-features --features c"
# Debian bookworm: clang 19 with the wasm32 compiler-rt, and wasi-libc (a 2022
# wasip1 snapshot: the C hello uses only its allocator and string code, none
# of which imports WASI).
LLVM_VERSION=19
POLYGLOT_APT=("clang-$LLVM_VERSION" "lld-$LLVM_VERSION" "libclang-rt-$LLVM_VERSION-dev-wasm32" wasi-libc)
WASI_SYSROOT=/usr # headers in /usr/include/wasm32-wasi, libc in /usr/lib/wasm32-wasi

# A Rust command-line program from crates.io, unmodified, built for
# wasm32-wasip2 by `cargo install --locked` at this pinned version: ulid-cli
# generates ULIDs, whose first 48 bits are the wall clock in ms and the other
# 80 random, so time-warp and a seeded random device both show in its output.
RUST_CLI_CRATE=ulid-cli
RUST_CLI_VERSION=0.1.12
RUST_CLI_BIN=ulid

POLYGLOT_LANGS=(python js c rust)

# clang links the C apps with wasm-component-ld, the linker rustc uses for
# wasm32-wasip2: wasm-ld, then the core module made a component. It ships with
# the pinned Rust toolchain (rust-toolchain.toml), so nothing installs it.
polyglot_component_ld() {
  local sysroot host
  sysroot=$(cd "$POLYGLOT_DIR" && rustc --print sysroot 2>/dev/null) || return 0
  host=$(cd "$POLYGLOT_DIR" && rustc -vV | sed -n 's/^host: //p')
  echo "$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
}

polyglot_python_version() { sed -n 's/^componentize-py==//p' "$POLYGLOT_DIR/python/requirements.txt"; }
polyglot_js_version() { sed -n 's/^ *"componentize-qjs": *"\([^"]*\)".*/\1/p' "$POLYGLOT_DIR/js/package.json"; }

# The version of a tool that prints "<name> <version>" first, or nothing.
_version_of() {
  if command -v "$1" >/dev/null 2>&1; then "$1" --version 2>/dev/null | awk 'NR == 1 {print $2}' || true; fi
}

_apt_missing() {
  local p
  for p in "${POLYGLOT_APT[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Prints one line per missing or mismatched piece for the languages given
# (default: all) as "<lang>\t<what is wrong>\t<command that fixes it>";
# prints nothing when everything is in place.
polyglot_problems() {
  local langs=("$@") lang have want missing ld
  [ ${#langs[@]} -gt 0 ] || langs=("${POLYGLOT_LANGS[@]}")
  for lang in "${langs[@]}"; do
    case $lang in
      python)
        want=$(polyglot_python_version)
        if ! command -v python3 >/dev/null; then
          printf 'python\tpython3 is not installed\tapt-get install python3 python3-pip\n'
        fi
        have=$(_version_of componentize-py)
        if [ "$have" != "$want" ]; then
          printf 'python\tcomponentize-py %s is needed, found %s\tpip install -r components/polyglot/python/requirements.txt\n' \
            "$want" "${have:-none}"
        fi
        ;;
      js)
        want=$(polyglot_js_version)
        if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
          printf 'js\tnode and npm are not installed\tapt-get install nodejs npm\n'
        fi
        have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
          "$POLYGLOT_DIR/js/node_modules/componentize-qjs/package.json" 2>/dev/null | head -n1)
        if [ "$have" != "$want" ] || ! ls -d "$POLYGLOT_DIR"/js/node_modules/@andreiltd/componentize-qjs-binding-* >/dev/null 2>&1; then
          printf 'js\tcomponentize-qjs %s is needed in components/polyglot/js/node_modules, found %s\t(cd components/polyglot/js && npm ci)\n' \
            "$want" "${have:-none}"
        fi
        ;;
      c)
        missing=$(_apt_missing | tr '\n' ' ')
        if [ -n "$missing" ]; then
          printf 'c\tDebian packages missing: %s\tapt-get install --no-install-recommends %s\n' "${missing% }" "${missing% }"
        fi
        have=$(_version_of wit-bindgen)
        if [ "$have" != "$WIT_BINDGEN_VERSION" ]; then
          printf 'c\twit-bindgen-cli %s is needed, found %s\t%s\n' "$WIT_BINDGEN_VERSION" "${have:-none}" "$WIT_BINDGEN_INSTALL"
        fi
        ld=$(polyglot_component_ld)
        if [ -z "$ld" ]; then
          printf "c\trustc not found (clang links with the Rust toolchain's wasm-component-ld)\t./setup.sh --deps\n"
        elif [ ! -x "$ld" ]; then
          printf 'c\twasm-component-ld is not in the Rust toolchain (%s)\t./setup.sh --deps\n' "$ld"
        fi
        ;;
      rust)
        if ! (cd "$POLYGLOT_DIR" && rustc --print sysroot >/dev/null 2>&1); then
          printf 'rust\trustc not found\t./setup.sh --deps\n'
        elif [ ! -d "$(cd "$POLYGLOT_DIR" && rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ]; then
          printf 'rust\tthe Rust target wasm32-wasip2 is not installed\trustup target add wasm32-wasip2\n'
        fi
        ;;
      *)
        printf '%s\tunknown language (known: %s)\t-\n' "$lang" "${POLYGLOT_LANGS[*]}"
        ;;
    esac
  done
}

# Installs whatever polyglot_problems reports, through the registries' own
# clients. Safe to run again: it only acts on what is missing.
polyglot_install() {
  local sudo_="" t0 t
  [ "$(id -u)" = 0 ] || sudo_=sudo
  local apt=()
  command -v python3 >/dev/null || apt+=(python3 python3-pip)
  { command -v node >/dev/null && command -v npm >/dev/null; } || apt+=(nodejs npm)
  mapfile -t -O "${#apt[@]}" apt < <(_apt_missing)
  if [ ${#apt[@]} -gt 0 ]; then
    t0=$SECONDS
    echo "==> polyglot: apt-get install ${apt[*]}" >&2
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${apt[@]}"
    echo "    took $((SECONDS - t0)) s" >&2
  fi
  if [ "$(_version_of componentize-py)" != "$(polyglot_python_version)" ]; then
    t0=$SECONDS
    echo "==> polyglot: pip install -r components/polyglot/python/requirements.txt" >&2
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$POLYGLOT_DIR/python/requirements.txt"
    command -v pyenv >/dev/null && pyenv rehash
    echo "    took $((SECONDS - t0)) s" >&2
  fi
  if [ -n "$(polyglot_problems js)" ]; then
    t0=$SECONDS
    echo "==> polyglot: npm ci in components/polyglot/js" >&2
    (cd "$POLYGLOT_DIR/js" && npm ci --no-audit --no-fund --loglevel=error)
    echo "    took $((SECONDS - t0)) s" >&2
  fi
  if [ "$(_version_of wit-bindgen)" != "$WIT_BINDGEN_VERSION" ]; then
    t0=$SECONDS
    echo "==> polyglot: $WIT_BINDGEN_INSTALL (a few minutes on 2 cores)" >&2
    $WIT_BINDGEN_INSTALL
    echo "    took $((SECONDS - t0)) s" >&2
  fi
  t=$(polyglot_problems)
  if [ -n "$t" ]; then
    echo "error: polyglot toolchains still incomplete after installing:" >&2
    printf '%s\n' "$t" | awk -F'\t' '{print "  " $1 ": " $2}' >&2
    return 1
  fi
}
