//! What the hostile test filters (`hostile-block`, `hostile-net`) share: the
//! `do = <what>` / `after = N` config, the count of device calls that decides
//! when to misbehave, and the misbehaviours any component can show — `trap`
//! (`unreachable`), `recurse` (until the wasm stack is exhausted), `oom` (grows
//! its memory until refused) and `spin` (never returns).
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::Config;

/// The misbehaviours every hostile component offers besides its own.
pub const ANY: &[&str] = &["trap", "recurse", "oom", "spin"];

/// A hostile component's script: what to do, from which device call on.
pub struct Hostile {
    what: &'static str,
    after: u64,
    calls: u64,
}

impl Hostile {
    pub const fn new() -> Hostile {
        Hostile { what: "trap", after: 1, calls: 0 }
    }

    /// Reads `do` (one of `own` or [`ANY`], required) and `after` (default 1).
    pub fn configure(&mut self, config: &[(String, String)], own: &[&'static str]) -> Result<(), String> {
        let c = Config::new(config, &["do", "after"])?;
        let raw = c.raw("do").ok_or("`do` is required")?.trim_matches('"');
        let Some(&what) = own.iter().chain(ANY).find(|n| **n == raw) else {
            let names: Vec<&str> = own.iter().chain(ANY).copied().collect();
            return Err(format!("`do`: unknown `{raw}` (one of: {})", names.join(", ")));
        };
        self.what = what;
        self.after = c.positive("after")?.unwrap_or(1);
        Ok(())
    }

    /// What the script does (`do`).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// Counts a device call. When this one misbehaves, the misbehaviours of
    /// [`ANY`] happen here and never return; the component's own is
    /// returned by name for it to act out.
    pub fn call(&mut self) -> Option<&'static str> {
        self.calls += 1;
        if self.calls < self.after {
            return None;
        }
        match self.what {
            "trap" => core::arch::wasm32::unreachable(),
            "recurse" => {
                recurse(0);
                None
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = Vec::with_capacity(16 << 20);
                    chunk.resize(16 << 20, 1u8);
                    hoard.push(chunk);
                }
            }
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            own => Some(own),
        }
    }
}

impl Default for Hostile {
    fn default() -> Self {
        Hostile::new()
    }
}

/// Recurses until the wasm stack is exhausted (`black_box` keeps it from becoming a loop).
fn recurse(depth: u64) -> u64 {
    if core::hint::black_box(depth) == u64::MAX {
        return depth;
    }
    core::hint::black_box(recurse(depth + 1)) + depth
}
