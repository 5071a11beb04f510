//! `kv`: the kvstore exported as a component interface, so an app in any
//! language (Python, JS, C) can keep data in the same crash-safe log the
//! Rust `kvstore` app writes — and read what it wrote.
//!
//! Wired by the manifest (`[components.kv] component = "kv"`); config key
//! `device` names the block role (default `storage`; a simulation's `sim-seed` and
//! `sim-phase` are accepted and ignored). The store opens on the
//! first call, scanning the log once into an in-memory index; `set` returns
//! ok only after the record is committed, flushed and read back. A device
//! that cannot be opened, or an image that is not a kvstore (never
//! overwritten), makes every call return that error. `configure` logs one
//! event on topic `kv`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[path = "../../../apps/kvstore/src/format.rs"]
pub mod format;
#[path = "../../../apps/kvstore/src/indexed.rs"]
pub mod indexed;
#[path = "../../../apps/kvstore/src/store.rs"]
pub mod store;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "kv-provider",
    path: "../../../wit",
});

use weft::devices::{block, log};

block_device!();

enum State {
    Configured { role: String },
    Open(indexed::Indexed<Block>),
    Failed(String),
}

static STATE: Global<Option<State>> = Global::new(None);

/// Runs `f` on the open store, opening it on first use.
fn with_store<R>(f: impl FnOnce(&mut indexed::Indexed<Block>) -> Result<R, String>) -> Result<R, String> {
    STATE.with(|s| {
        let state = s.get_or_insert_with(|| State::Configured { role: "storage".into() });
        if let State::Configured { role } = state {
            let role = role.clone();
            let opened = (|| {
                let dev = block::open(&role).map_err(|e| format!("open {role}: {}", e.name()))?;
                let g = block::info(dev).map_err(|e| format!("info {role}: {}", e.name()))?;
                indexed::Indexed::open(Block(dev), g.sector_size, g.sector_count, g.read_only)
                    .map_err(|e| format!("{role}: {e}"))
            })();
            *state = match opened {
                Ok(kv) => State::Open(kv),
                Err(e) => State::Failed(e),
            };
        }
        match state {
            State::Open(kv) => f(kv),
            State::Failed(e) => Err(e.clone()),
            State::Configured { .. } => unreachable!("opened above"),
        }
    })
}

struct Kv;

impl exports::weft::devices::filter::Guest for Kv {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let c = Config::new(&config, &["device"])?;
        let role = c.raw("device").map_or("storage", weft_guest::parse::unquote).to_string();
        log::append("kv", &format!("kv serves the kvstore on block device `{role}`"), &[
            ("component".into(), device),
            ("device".into(), role.clone()),
        ]);
        STATE.with(|s| *s = Some(State::Configured { role }));
        Ok(())
    }
}

impl exports::weft::devices::kv::Guest for Kv {
    fn get(key: String) -> Result<Option<String>, String> {
        with_store(|kv| Ok(kv.get(key.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned())))
    }

    fn set(key: String, value: String) -> Result<(), String> {
        with_store(|kv| kv.put(key.as_bytes(), value.as_bytes()))
    }

    fn keys() -> Result<Vec<String>, String> {
        with_store(|kv| Ok(kv.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect()))
    }
}

export!(Kv);
