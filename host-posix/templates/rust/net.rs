//! {{name}}: a weft net filter. It sits between a network device and whoever
//! drives it (the TCP/IP stack, or the next filter out): every batch of
//! Ethernet frames sent and received comes here first, and this filter
//! decides what reaches the device below (`weft::devices::net`, the import)
//! and what goes back up (the return values of the exports). As made by
//! `weft new`, it passes every frame through unchanged. The contract is in
//! wit/deps/weft-devices/net.wit.
#![no_std]

extern crate alloc;

mod rt;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "net-filter",
    path: "wit",
    // The devices' interfaces live in another package (weft:devices).
    generate_all,
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use weft::devices::types::{ErrorCode, Handle};
use weft::devices::{log, net};

/// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC: &str = "{{name}}";

struct Filter;

impl FilterGuest for Filter {
    /// Called once, before any net call, with the role of the device this
    /// filter sits on (`net`) and its `config` table from the manifest.
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        for (key, _value) in &config {
            match key.as_str() {
                // weft adds these in a simulation (`weft run --sim`): every
                // filter must accept them (see wit/deps/weft-devices/filter.wit).
                "sim-seed" | "sim-phase" => {}
                // Your config keys go here: `config = { drop-every = 10 }` in
                // the manifest arrives as ("drop-every", "10").
                _ => return Err(format!("unknown key `{key}` ({{name}} takes no config keys)")),
            }
        }
        let message = format!("on {device}: passing every frame through");
        log::append(TOPIC, &message, &[("device".to_string(), device)]);
        Ok(())
    }
}

impl NetGuest for Filter {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        net::open(&name)
    }

    fn info(dev: Handle) -> Result<NetInfo, ErrorCode> {
        // The import and the export are distinct types with the same fields.
        // A filter that changes frames' contents reports checksum-offload
        // false (see net.wit).
        net::info(dev).map(|i| NetInfo {
            mac: i.mac,
            mtu: i.mtu,
            checksum_offload: i.checksum_offload,
        })
    }

    /// Returns how many frames, from the front, the device accepted.
    fn send(dev: Handle, frames: Vec<Vec<u8>>) -> Result<u32, ErrorCode> {
        // The behaviour goes here (and in `receive`): drop, delay, change,
        // duplicate, count or log frames. A frame dropped on purpose still
        // counts as accepted (the wire loses it, not the device).
        net::send(dev, &frames)
    }

    fn receive(dev: Handle, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        net::receive(dev, max)
    }
}

export!(Filter);
