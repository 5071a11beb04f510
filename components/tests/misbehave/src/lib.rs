//! `misbehave`: a test app that does what apps must not, so the host's
//! handling of each case is tested (Solo5's `test_*` negative tests).
//!
//! Args: `trap` (unreachable), `panic`, `oom` (grows memory until refused),
//! `spin` (never returns), `exit N`, `ok` (prints `ok`, exits 0).
#![no_std]

extern crate alloc;
// The allocator, panic handler and cabi_realloc.
use weft_guest as _;

use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "app", path: "../../../wit" });

use weft::devices::console;

struct Misbehave;

impl Guest for Misbehave {
    fn run(args: Vec<String>) -> u8 {
        match args.first().map(String::as_str) {
            Some("trap") => core::arch::wasm32::unreachable(),
            Some("panic") => panic!("misbehave was asked to panic"),
            Some("oom") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut chunk = Vec::with_capacity(16 << 20);
                    chunk.resize(16 << 20, 1u8);
                    hoard.push(chunk);
                    console::write(b"grew 16 MiB\n");
                }
            }
            Some("spin") => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("exit") => args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1),
            Some("ok") => {
                console::write(b"ok\n");
                0
            }
            _ => {
                console::write(b"usage: misbehave trap|panic|oom|spin|exit N|ok\n");
                2
            }
        }
    }
}

export!(Misbehave);
