//! `kvclient`: a test app that uses `weft:devices/kv` provided by another
//! component (the shipped `kv`, wired by `[components.kv]`).
//!
//! Args: `set K V` (prints `ok`), `get K` (the value or `none`), `keys`.
#![no_std]

extern crate alloc;
use weft_guest as _;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "kv-app", path: "../../../wit" });

use weft::devices::{console, kv};

struct KvClient;

impl Guest for KvClient {
    fn run(args: Vec<String>) -> u8 {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match a.as_slice() {
            ["set", k, v] => kv::set(k, v).map(|()| String::from("ok")),
            ["get", k] => kv::get(k).map(|v| v.unwrap_or_else(|| String::from("none"))),
            ["keys"] => kv::keys().map(|ks| ks.join(" ")),
            _ => Err(String::from("usage: set K V | get K | keys")),
        };
        match out {
            Ok(s) => {
                console::write(format!("{s}\n").as_bytes());
                0
            }
            Err(e) => {
                console::write(format!("error: {e}\n").as_bytes());
                1
            }
        }
    }
}

export!(KvClient);
