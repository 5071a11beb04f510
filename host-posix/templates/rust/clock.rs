//! {{name}}: a weft clock filter. It sits between the clock and whoever
//! reads it (the app, or the next filter out): every reading and every wait
//! comes here first, and this filter decides what it asks the clock below
//! (`weft::devices::clock`, the import) and what time it reports (the return
//! values of the exports). As made by `weft new`, it passes every call
//! through unchanged. The contract is in wit/deps/weft-devices/clock.wit.
#![no_std]

extern crate alloc;

mod rt;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "clock-filter",
    path: "wit",
    // The devices' interfaces live in another package (weft:devices).
    generate_all,
});

use exports::weft::devices::clock::{Guest as ClockGuest, Instant};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::{clock, log};

/// The topic of this filter's events (`[{{name}}] ...` on stderr).
const TOPIC: &str = "{{name}}";

struct Filter;

impl FilterGuest for Filter {
    /// Called once, before any clock call, with the role of the device this
    /// filter sits on (`clock`) and its `config` table from weft.toml.
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        for (key, _value) in &config {
            match key.as_str() {
                // weft adds these in a simulation (`weft run --sim`): every
                // filter must accept them (see wit/deps/weft-devices/filter.wit).
                "sim-seed" | "sim-phase" => {}
                // Your config keys go here: `config = { offset = "1h" }` in
                // weft.toml arrives as ("offset", "1h").
                _ => return Err(format!("unknown key `{key}` ({{name}} takes no config keys)")),
            }
        }
        let message = format!("on {device}: passing every call through");
        log::append(TOPIC, &message, &[("device".to_string(), device)]);
        Ok(())
    }
}

impl ClockGuest for Filter {
    /// Nanoseconds since an arbitrary origin.
    fn monotonic_now() -> Instant {
        // The behaviour goes here (and in `wall_now` and `wait_until`): shift,
        // stretch, freeze or jitter the time the clock below reports.
        clock::monotonic_now()
    }

    /// Nanoseconds since 1970-01-01T00:00:00Z.
    fn wall_now() -> i64 {
        clock::wall_now()
    }

    /// `deadline` is in this filter's time: a filter that changes time
    /// translates it for the clock below, and reports its own time back.
    fn wait_until(deadline: Instant) -> Instant {
        clock::wait_until(deadline)
    }
}

export!(Filter);
