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

use hostile::Hostile;
use weft_guest::Global;

wit_bindgen::generate!({
    world: "net-filter",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use weft::devices::net;
use weft::devices::types::{ErrorCode, Handle};

/// This filter's own breaches (`do` may also name any of [`hostile::ANY`]).
const OWN: &[&str] = &["oversize", "flood", "overcount", "forge-handle"];

/// How many frames `flood` returns.
const FLOOD: usize = 1_000_000;

static HOSTILE: Global<Hostile> = Global::new(Hostile::new());

/// Counts a device call; its own breach, if this call is one.
fn misbehave() -> Option<&'static str> {
    HOSTILE.with(Hostile::call)
}

fn dev_for(dev: Handle, what: Option<&str>) -> Handle {
    if what == Some("forge-handle") { dev.wrapping_add(1000) } else { dev }
}

struct HostileNet;

impl FilterGuest for HostileNet {
    fn configure(_device: String, config: Vec<(String, String)>) -> Result<(), String> {
        HOSTILE.with(|h| h.configure(&config, OWN))
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
        Ok(if what == Some("overcount") { frames.len() as u32 + 1 } else { n })
    }

    fn receive(dev: Handle, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let what = misbehave();
        match what {
            Some("oversize") => {
                let mtu = net::info(dev)?.mtu as usize;
                Ok(vec![vec![0xFF; 14 + mtu + 1]])
            }
            Some("flood") => Ok(vec![vec![0xFF; 60]; FLOOD]),
            _ => net::receive(dev_for(dev, what), max),
        }
    }
}

export!(HostileNet);
