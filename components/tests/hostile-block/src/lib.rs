//! `hostile-block`: a block filter that breaks the block contract on purpose, so the
//! runtime's handling of each breach is tested (host-posix/tests/hostile.rs): the
//! filter counterpart of the `misbehave` app.
//!
//! Config: `do = <what>` (required) and `after = N` (default 1: misbehave from the Nth
//! device call on, counting open, info, read, write and flush together; the calls
//! before pass through unchanged). What it does:
//!
//! - `long-read`, `short-read`: a read returns one byte more (less) than asked.
//! - `bad-geometry`: `info` reports 100-byte sectors.
//! - `forge-handle`: every call reaches the device below with a handle it was never
//!   given (the runtime answers `not-found`, and that is what the filter returns).
//! - `short-write`: writes go down one byte short (not whole sectors).
//! - `write-past-end`: writes go down moved so that their last sector lies one past the
//!   device's end.
//! - `trap` (`unreachable`), `recurse` (until the wasm stack is exhausted), `oom`
//!   (grows its memory until refused), `spin` (never returns).
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "block-filter",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::block;
use weft::devices::types::ErrorCode;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Do {
    LongRead,
    ShortRead,
    BadGeometry,
    ForgeHandle,
    ShortWrite,
    WritePastEnd,
    Trap,
    Recurse,
    Oom,
    Spin,
}

const WHAT: &[(&str, Do)] = &[
    ("long-read", Do::LongRead),
    ("short-read", Do::ShortRead),
    ("bad-geometry", Do::BadGeometry),
    ("forge-handle", Do::ForgeHandle),
    ("short-write", Do::ShortWrite),
    ("write-past-end", Do::WritePastEnd),
    ("trap", Do::Trap),
    ("recurse", Do::Recurse),
    ("oom", Do::Oom),
    ("spin", Do::Spin),
];

struct State {
    what: Do,
    after: u64,
    /// Device calls so far.
    calls: u64,
}

static STATE: Global<State> = Global::new(State { what: Do::Trap, after: 1, calls: 0 });

/// Counts a device call; `Some(what)` when this one misbehaves. The generic
/// misbehaviours happen here and never return.
fn misbehave() -> Option<Do> {
    let (what, now) = STATE.with(|s| {
        s.calls += 1;
        (s.what, s.calls >= s.after)
    });
    if !now {
        return None;
    }
    match what {
        Do::Trap => core::arch::wasm32::unreachable(),
        Do::Recurse => {
            recurse(0);
            None
        }
        Do::Oom => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut chunk = Vec::with_capacity(16 << 20);
                chunk.resize(16 << 20, 1u8);
                hoard.push(chunk);
            }
        }
        Do::Spin => {
            let mut n: u64 = 0;
            loop {
                n = core::hint::black_box(n.wrapping_add(1));
            }
        }
        other => Some(other),
    }
}

/// Recurses until the wasm stack is exhausted (`black_box` keeps it from becoming a loop).
fn recurse(depth: u64) -> u64 {
    if core::hint::black_box(depth) == u64::MAX {
        return depth;
    }
    core::hint::black_box(recurse(depth + 1)) + depth
}

/// A handle nobody issued to this filter.
fn forged(dev: Handle) -> Handle {
    dev.wrapping_add(1000)
}

fn dev_for(dev: Handle, what: Option<Do>) -> Handle {
    if what == Some(Do::ForgeHandle) { forged(dev) } else { dev }
}

struct HostileBlock;

impl FilterGuest for HostileBlock {
    fn configure(_device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let c = Config::new(&config, &["do", "after"])?;
        let raw = c.raw("do").ok_or("`do` is required")?.trim_matches('"');
        let Some(&(_, what)) = WHAT.iter().find(|(n, _)| *n == raw) else {
            let names: Vec<&str> = WHAT.iter().map(|(n, _)| *n).collect();
            return Err(alloc::format!("`do`: unknown `{raw}` (one of: {})", names.join(", ")));
        };
        let after = c.positive("after")?.unwrap_or(1);
        STATE.with(|s| {
            s.what = what;
            s.after = after;
        });
        Ok(())
    }
}

impl BlockGuest for HostileBlock {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        misbehave();
        block::open(&name)
    }

    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        let what = misbehave();
        let g = block::info(dev_for(dev, what))?;
        let sector_size = if what == Some(Do::BadGeometry) { 100 } else { g.sector_size };
        Ok(Geometry { sector_size, sector_count: g.sector_count, read_only: g.read_only })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let what = misbehave();
        let mut data = block::read(dev_for(dev, what), start, count)?;
        match what {
            Some(Do::LongRead) => data.push(0xAA),
            Some(Do::ShortRead) => {
                data.pop();
            }
            _ => {}
        }
        Ok(data)
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        let what = misbehave();
        match what {
            Some(Do::ShortWrite) => block::write(dev, start, &data[..data.len().saturating_sub(1)]),
            Some(Do::WritePastEnd) => {
                let g = block::info(dev)?;
                let sectors = data.len() as u64 / u64::from(g.sector_size.max(1));
                block::write(dev, (g.sector_count + 1).saturating_sub(sectors), &data)
            }
            _ => block::write(dev_for(dev, what), start, &data),
        }
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        block::flush(dev_for(dev, misbehave()))
    }
}

export!(HostileBlock);
