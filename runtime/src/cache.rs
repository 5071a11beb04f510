//! The AOT cache: compiled components on disk, keyed by the component's
//! bytes, the engine's compatibility hash and the target. A changed
//! component, a different wasmtime or different codegen settings all give a
//! different key, so nothing stale is ever served.

use std::path::{Path, PathBuf};
use std::string::String;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Result};

use crate::engine::Target;

/// Where compiled components are kept; `None` compiles every time.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: Option<PathBuf>,
}

/// Whether a load came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Cached,
    Compiled,
}

struct Sha(Sha256);

impl core::hash::Hasher for Sha {
    fn finish(&self) -> u64 {
        unreachable!("only used to feed bytes")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| std::format!("{b:02x}")).collect()
}

impl Cache {
    pub fn new(dir: Option<PathBuf>) -> Cache {
        Cache { dir }
    }

    /// `$WEFT_CACHE_DIR`, else `$XDG_CACHE_HOME/weft`, else `~/.cache/weft`.
    /// `WEFT_CACHE_DIR=off` disables the cache.
    pub fn from_env() -> Cache {
        let var = |k| std::env::var_os(k).filter(|v| !v.is_empty());
        let dir = match var("WEFT_CACHE_DIR") {
            Some(v) if v == "off" => None,
            Some(v) => Some(PathBuf::from(v)),
            None => var("XDG_CACHE_HOME")
                .map(|x| PathBuf::from(x).join("weft"))
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/weft"))),
        };
        Cache { dir }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The cache key of `bytes` for this engine and target.
    pub fn key(engine: &Engine, target: Target, bytes: &[u8]) -> String {
        Self::key_of(engine, target, &sha256(bytes))
    }

    /// The cache key of a component whose sha256 is `digest` (hashed once
    /// by the caller: a Python component is tens of MiB).
    pub fn key_of(engine: &Engine, target: Target, digest: &[u8; 32]) -> String {
        let mut h = Sha(Sha256::new());
        // v3: adapters copy lists of numbers with `memory.copy` (the patched
        // wasmtime-environ, Cargo.toml): code cached before would still load,
        // with the old byte loops, so it is compiled again.
        h.0.update(b"weft-aot-v3");
        h.0.update(digest);
        core::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        core::hash::Hash::hash(&target, &mut h);
        hex(&h.0.finalize())
    }

    /// The cache key of the composition of the components whose sha256s
    /// are `inputs` (the app first, then its parts), for this engine and
    /// target: [`Cache::load_composed`]'s entry, which `weft build --target
    /// oci` ships under this name.
    pub fn composed_key(engine: &Engine, target: Target, inputs: &[[u8; 32]]) -> String {
        let mut h = Sha256::new();
        // Composition rules may change between weft versions.
        h.update(concat!("weft-compose-", env!("CARGO_PKG_VERSION")).as_bytes());
        for i in inputs {
            h.update(i);
        }
        Self::key_of(engine, target, &h.finalize().into())
    }

    /// Loads `bytes` (component `name`, whose sha256 is `digest`) as a
    /// component, from the cache when it holds it.
    pub fn load(&self, engine: &Engine, target: Target, name: &str, digest: &[u8; 32], bytes: &[u8]) -> Result<(Component, Origin)> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, name, bytes)?, Origin::Compiled));
        };
        let path = dir.join(std::format!("{}.cwasm", Self::key_of(engine, target, digest)));
        if path.exists() {
            // SAFETY: the file was written by `serialize` below under a key
            // that includes the engine's compatibility hash; wasmtime also
            // checks its header and version before using it. A file that
            // fails to load is recompiled and replaced.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cached)),
                Err(e) => tracing_warn(&path, &e),
            }
        }
        Ok((compile_into(engine, name, bytes, dir, &path)?, Origin::Compiled))
    }
}

impl Cache {
    /// Loads the component `produce` makes from the inputs whose sha256s are
    /// `inputs` (a composition of them), from the cache when it holds it: the
    /// key covers every input, so a cache hit skips producing the bytes.
    pub fn load_composed(
        &self,
        engine: &Engine,
        target: Target,
        name: &str,
        inputs: &[[u8; 32]],
        produce: impl FnOnce() -> Result<std::vec::Vec<u8>>,
    ) -> Result<(Component, Origin)> {
        let Some(dir) = &self.dir else {
            return Ok((compile(engine, name, &produce()?)?, Origin::Compiled));
        };
        let path = dir.join(std::format!("{}.cwasm", Self::composed_key(engine, target, inputs)));
        if path.exists() {
            // SAFETY: as in `load`: written by us under an engine-specific key.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cached)),
                Err(e) => tracing_warn(&path, &e),
            }
        }
        Ok((compile_into(engine, name, &produce()?, dir, &path)?, Origin::Compiled))
    }
}

/// Components at least this big (Python, JS) take seconds to compile: say
/// so, and show the time passing on a terminal.
const PROGRESS_MIN: usize = 1 << 20;

/// Compiles with cranelift; a big component shows its progress on stderr.
fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Component> {
    with_progress(name, bytes.len(), "native code", || Component::new(engine, bytes))
}

/// Compiles into the cache entry at `path`, then loads what was stored. The
/// entry is written from the compiler's output, never from loaded code: a
/// debugger attached to a `--debug` run patches breakpoints into the code
/// it is told about, and serializing that would cache its `int3`s.
fn compile_into(engine: &Engine, name: &str, bytes: &[u8], dir: &Path, path: &Path) -> Result<Component> {
    let compiled = with_progress(name, bytes.len(), "native code", || engine.precompile_component(bytes))?;
    if let Err(e) = store(dir, path, &compiled) {
        tracing_warn(path, &e);
    }
    // SAFETY: `compiled` was produced just now by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
}

/// Runs `work` (compiling component `name` of `size` bytes into `what`);
/// when the component is big, says so on stderr and shows the time passing
/// on a terminal. `weft boot`'s precompile for the kernel uses it too.
pub fn with_progress<T>(name: &str, size: usize, what: &str, work: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    if size < PROGRESS_MIN || std::env::var_os("WEFT_CACHE_QUIET").is_some() {
        return work();
    }
    let mb = size as f64 / (1 << 20) as f64;
    std::eprintln!("weft: compiling {name} ({mb:.1} MiB) to {what}, once: later runs load it from the AOT cache");
    let start = std::time::Instant::now();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let ticker = std::io::stderr().is_terminal().then(|| {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(250));
                std::eprint!("\r  {:.1} s", start.elapsed().as_secs_f64());
            }
            std::eprint!("\r");
        })
    });
    let out = work();
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    std::eprintln!("weft: compiled {name} in {:.1} s", start.elapsed().as_secs_f64());
    out
}

fn tracing_warn(path: &Path, e: &dyn core::fmt::Display) {
    if std::env::var_os("WEFT_CACHE_QUIET").is_none() {
        std::eprintln!("weft: warning: AOT cache entry {}: {e} (recompiling)", path.display());
    }
}

/// Writes atomically: a reader sees the old file or the whole new one.
fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(std::format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Bytes of a component, hashed once.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

