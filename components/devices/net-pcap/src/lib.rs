//! `net-pcap`: a net filter that passes every frame through unchanged and hands each one,
//! in and out, to `capture.frame` with the monotonic time it passed; the host writes them
//! to a pcap file (smoltcp's `PcapWriter` as a component). Outbound frames are recorded
//! only once the device has accepted them. No config keys.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "net-observer",
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

weft_guest::observing_net_filter!(NetPcap, record, in: Direction::Inbound, out: Direction::Outbound, watch: []);
