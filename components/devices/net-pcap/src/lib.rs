//! `net-pcap`: a net filter that passes every frame through unchanged and hands each one,
//! in and out, to `capture.frame` with the monotonic time it passed; the host writes them
//! to a pcap file (smoltcp's `PcapWriter` as a component). Outbound frames are recorded
//! only once the device has accepted them. No config keys.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::Config;

wit_bindgen::generate!({
    world: "net-filter",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use weft::devices::capture::{self, Direction};
use weft::devices::types::{ErrorCode, Handle};
use weft::devices::{clock, net};

fn record(frames: &[Vec<u8>], dir: Direction) {
    if frames.is_empty() {
        return;
    }
    let at = clock::monotonic_now();
    for f in frames {
        capture::frame(at, dir, f);
    }
}

struct NetPcap;

impl FilterGuest for NetPcap {
    fn configure(_device: String, config: Vec<(String, String)>) -> Result<(), String> {
        Config::new(&config, &[])?;
        Ok(())
    }
}

impl NetGuest for NetPcap {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        net::open(&name)
    }

    fn info(dev: Handle) -> Result<NetInfo, ErrorCode> {
        let i = net::info(dev)?;
        Ok(NetInfo {
            mac: i.mac,
            mtu: i.mtu,
        })
    }

    fn send(dev: Handle, frames: Vec<Vec<u8>>) -> Result<u32, ErrorCode> {
        let n = net::send(dev, &frames)?;
        record(
            &frames[..(n as usize).min(frames.len())],
            Direction::Outbound,
        );
        Ok(n)
    }

    fn receive(dev: Handle, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let frames = net::receive(dev, max)?;
        record(&frames, Direction::Inbound);
        Ok(frames)
    }
}

export!(NetPcap);
