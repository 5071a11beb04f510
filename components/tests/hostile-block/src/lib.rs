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
//! - `forge-route-handle`: it declares (`block-route`) that it handles writes and flushes
//!   only, and its `open` returns a handle it was never given (the runtime must refuse:
//!   reads routed past it would carry that handle). Otherwise it handles everything.
//! - `trap` (`unreachable`), `recurse` (until the wasm stack is exhausted), `oom`
//!   (grows its memory until refused), `spin` (never returns).
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use hostile::Hostile;
use weft_guest::Global;

wit_bindgen::generate!({
    world: "block-router",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::block_route::{Guest as RouteGuest, Interest};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::block;
use weft::devices::types::ErrorCode;

/// This filter's own breaches (`do` may also name any of [`hostile::ANY`]).
const OWN: &[&str] = &["long-read", "short-read", "bad-geometry", "forge-handle", "short-write", "write-past-end", "forge-route-handle"];

static HOSTILE: Global<Hostile> = Global::new(Hostile::new());

/// Counts a device call; its own breach, if this call is one.
fn misbehave() -> Option<&'static str> {
    HOSTILE.with(Hostile::call)
}

/// A handle nobody issued to this filter.
fn forged(dev: Handle) -> Handle {
    dev.wrapping_add(1000)
}

fn dev_for(dev: Handle, what: Option<&str>) -> Handle {
    if what == Some("forge-handle") { forged(dev) } else { dev }
}

struct HostileBlock;

impl FilterGuest for HostileBlock {
    fn configure(_device: String, config: Vec<(String, String)>) -> Result<(), String> {
        HOSTILE.with(|h| h.configure(&config, OWN))
    }
}

impl BlockGuest for HostileBlock {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        let h = block::open(&name)?;
        Ok(if misbehave() == Some("forge-route-handle") { forged(h) } else { h })
    }

    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        let what = misbehave();
        let g = block::info(dev_for(dev, what))?;
        let sector_size = if what == Some("bad-geometry") { 100 } else { g.sector_size };
        Ok(Geometry { sector_size, sector_count: g.sector_count, read_only: g.read_only })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let what = misbehave();
        let mut data = block::read(dev_for(dev, what), start, count)?;
        match what {
            Some("long-read") => data.push(0xAA),
            Some("short-read") => {
                data.pop();
            }
            _ => {}
        }
        Ok(data)
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        let what = misbehave();
        match what {
            Some("short-write") => block::write(dev, start, &data[..data.len().saturating_sub(1)]),
            Some("write-past-end") => {
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

impl RouteGuest for HostileBlock {
    fn handling() -> Interest {
        let some = HOSTILE.with(|h| h.what()) == "forge-route-handle";
        Interest { open: true, info: !some, read: !some, write: true, flush: true }
    }
}

export!(HostileBlock);
