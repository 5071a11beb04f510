//! {{name}}: a weft block filter. It sits between a block device and whoever
//! uses it (the app, or the next filter out): every call the app makes on the
//! device comes here first, and this filter decides what reaches the device
//! below (`weft::devices::block`, the import) and what goes back up (the
//! return values of the exports). As made by `weft new`, it passes every call
//! through unchanged. The contract each call must keep (reads never short,
//! what `flush` promises) is in wit/deps/weft-devices/block.wit.
#![no_std]

extern crate alloc;

mod rt;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "block-filter",
    path: "wit",
    // The devices' interfaces live in another package (weft:devices).
    generate_all,
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, log};

/// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC: &str = "{{name}}";

struct Filter;

impl FilterGuest for Filter {
    /// Called once, before any block call, with the role of the device this
    /// filter sits on (`storage`) and its `config` table from weft.toml.
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        for (key, _value) in &config {
            match key.as_str() {
                // weft adds these in a simulation (`weft run --sim`): every
                // filter must accept them (see wit/deps/weft-devices/filter.wit).
                "sim-seed" | "sim-phase" => {}
                // Your config keys go here: `config = { every = 10 }` in
                // weft.toml arrives as ("every", "10").
                _ => return Err(format!("unknown key `{key}` ({{name}} takes no config keys)")),
            }
        }
        let message = format!("on {device}: passing every call through");
        log::append(TOPIC, &message, &[("device".to_string(), device)]);
        Ok(())
    }
}

impl BlockGuest for Filter {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        block::open(&name)
    }

    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        // The import and the export are distinct types with the same fields.
        block::info(dev).map(|g| Geometry {
            sector_size: g.sector_size,
            sector_count: g.sector_count,
            read_only: g.read_only,
        })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        // The behaviour goes here (and in `write` and `flush`): change the
        // data, fail a call with an ErrorCode, count or log operations with
        // `log::append`, wait with `weft::devices::clock::wait_until`.
        block::read(dev, start, count)
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        block::write(dev, start, &data)
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        block::flush(dev)
    }
}

export!(Filter);
