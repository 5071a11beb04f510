//! `hostile-observer`: a block filter that only observes (`block-watch`) and breaks
//! that promise from `seen`, so the runtime's refusal is tested
//! (host-posix/tests/hostile.rs). Config: `do = "read" | "write" | "cut"` (required):
//! on the first operation it is handed, it reads sector 0 of its device, writes 0xaa over
//! it, or cuts the power. Its `block` export passes every call through (weft never
//! calls it: an observer is out of the path).
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "block-observer",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::block_watch::{Call, Guest as WatchGuest, Interest};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, power};

const WHAT: [&str; 3] = ["read", "write", "cut"];

static DO: Global<Option<usize>> = Global::new(None);

struct HostileObserver;

impl FilterGuest for HostileObserver {
    fn configure(_device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let cfg = Config::new(&config, &["do"])?;
        let what = cfg.raw("do").map(weft_guest::parse::unquote).ok_or("`do` is required (read, write, cut)")?;
        let i = WHAT.iter().position(|w| *w == what).ok_or("`do`: one of read, write, cut")?;
        DO.with(|d| *d = Some(i));
        Ok(())
    }
}

impl WatchGuest for HostileObserver {
    fn watching() -> Interest {
        Interest { open: true, info: true, read: true, write: true, flush: true }
    }

    fn seen(call: Call) {
        match DO.with(|d| *d) {
            Some(0) => drop(block::read(call.dev, 0, 1)),
            Some(1) => drop(block::write(call.dev, 0, &[0xaa; 512])),
            Some(_) => power::cut(),
            None => {}
        }
    }
}

impl BlockGuest for HostileObserver {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        block::open(&name)
    }
    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        let g = block::info(dev)?;
        Ok(Geometry { sector_size: g.sector_size, sector_count: g.sector_count, read_only: g.read_only })
    }
    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        block::read(dev, start, count)
    }
    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        block::write(dev, start, &data)
    }
    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        block::flush(dev)
    }
}

export!(HostileObserver);
