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
        let mut h = Sha(Sha256::new());
        h.0.update(bytes);
        core::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        core::hash::Hash::hash(&target, &mut h);
        hex(&h.0.finalize())
    }

    /// Loads `bytes` as a component, from the cache when it holds it.
    pub fn load(&self, engine: &Engine, target: Target, bytes: &[u8]) -> Result<(Component, Origin)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, Origin::Compiled));
        };
        let path = dir.join(std::format!("{}.cwasm", Self::key(engine, target, bytes)));
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
        let component = Component::new(engine, bytes)?;
        if let Err(e) = store(dir, &path, &component.serialize()?) {
            tracing_warn(&path, &e);
        }
        Ok((component, Origin::Compiled))
    }
}

impl Cache {
    /// Loads the component `produce` makes from `inputs` (a composition of
    /// them), from the cache when it holds it: the key covers every input,
    /// so a cache hit skips producing the bytes at all.
    pub fn load_composed(
        &self,
        engine: &Engine,
        target: Target,
        inputs: &[&[u8]],
        produce: impl FnOnce() -> Result<std::vec::Vec<u8>>,
    ) -> Result<(Component, Origin)> {
        let mut h = Sha256::new();
        h.update(b"weft-compose-v1");
        for i in inputs {
            h.update((i.len() as u64).to_le_bytes());
            h.update(i);
        }
        let inputs_key: [u8; 32] = h.finalize().into();
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, produce()?)?, Origin::Compiled));
        };
        let path = dir.join(std::format!("{}.cwasm", Self::key(engine, target, &inputs_key)));
        if path.exists() {
            // SAFETY: as in `load`: written by us under an engine-specific key.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, Origin::Cached)),
                Err(e) => tracing_warn(&path, &e),
            }
        }
        let component = Component::new(engine, produce()?)?;
        if let Err(e) = store(dir, &path, &component.serialize()?) {
            tracing_warn(&path, &e);
        }
        Ok((component, Origin::Compiled))
    }
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

