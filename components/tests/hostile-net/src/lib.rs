//! `hostile-net`: a net filter that breaks the net contract on purpose, so the runtime's
//! handling of each breach is tested (host-posix/tests/hostile.rs): the filter
//! counterpart of the `misbehave` app.
//!
//! Config: `do = <what>` (required) and `after = N` (default 1: misbehave from the Nth
//! device call on, counting open, info, send and receive together; the calls before
//! pass through unchanged). What it does:
//!
//! - `oversize`: `receive` returns one frame a byte longer than the device's largest
//!   (`14 + mtu`).
//! - `flood`: `receive` returns a million 60-byte frames, whatever `max` was.
//! - `overcount`: `send` claims one frame more than it was given.
//! - `forge-handle`: every call reaches the device below with a handle it was never
//!   given (the runtime answers `not-found`, and that is what the filter returns).
//! - `trap` (`unreachable`), `recurse` (until the wasm stack is exhausted), `oom`
//!   (grows its memory until refused), `spin` (never returns).
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "net-filter",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use weft::devices::net;
use weft::devices::types::{ErrorCode, Handle};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Do {
    Oversize,
    Flood,
    Overcount,
    ForgeHandle,
    Trap,
    Recurse,
    Oom,
    Spin,
}

const WHAT: &[(&str, Do)] = &[
    ("oversize", Do::Oversize),
    ("flood", Do::Flood),
    ("overcount", Do::Overcount),
    ("forge-handle", Do::ForgeHandle),
    ("trap", Do::Trap),
    ("recurse", Do::Recurse),
    ("oom", Do::Oom),
    ("spin", Do::Spin),
];

/// How many frames `flood` returns.
const FLOOD: usize = 1_000_000;

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

fn dev_for(dev: Handle, what: Option<Do>) -> Handle {
    if what == Some(Do::ForgeHandle) { dev.wrapping_add(1000) } else { dev }
}

struct HostileNet;

impl FilterGuest for HostileNet {
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

impl NetGuest for HostileNet {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        misbehave();
        net::open(&name)
    }

    fn info(dev: Handle) -> Result<NetInfo, ErrorCode> {
        let i = net::info(dev_for(dev, misbehave()))?;
        Ok(NetInfo { mac: i.mac, mtu: i.mtu, checksum_offload: i.checksum_offload })
    }

    fn send(dev: Handle, frames: Vec<Vec<u8>>) -> Result<u32, ErrorCode> {
        let what = misbehave();
        let n = net::send(dev_for(dev, what), &frames)?;
        Ok(if what == Some(Do::Overcount) { frames.len() as u32 + 1 } else { n })
    }

    fn receive(dev: Handle, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let what = misbehave();
        match what {
            Some(Do::Oversize) => {
                let mtu = net::info(dev)?.mtu as usize;
                Ok(vec![vec![0xFF; 14 + mtu + 1]])
            }
            Some(Do::Flood) => Ok(vec![vec![0xFF; 60]; FLOOD]),
            _ => net::receive(dev_for(dev, what), max),
        }
    }
}

export!(HostileNet);
