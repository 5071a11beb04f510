//! `misbehave`: a test app that does what apps must not, so the host's
//! handling of each case is tested (Solo5's `test_*` negative tests).
//!
//! Args: `trap` (unreachable), `panic`, `oom` (grows memory until refused),
//! `spin` (never returns), `exit N`, `ok` (prints `ok`, exits 0), `count N`
//! (prints `counted N` from a function a debugger can break in).
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
            Some("count") => {
                let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let counted = count_to(n);
                console::write(alloc::format!("counted {counted}\n").as_bytes());
                0
            }
            Some("ok") => {
                console::write(b"ok\n");
                0
            }
            _ => {
                console::write(b"usage: misbehave trap|panic|oom|spin|exit N|ok|count N\n");
                2
            }
        }
    }
}

/// Counts to `n` one step at a time: where `weft run --debug`'s test breaks
/// and prints `n`.
#[inline(never)]
fn count_to(n: u32) -> u32 {
    let mut i = 0;
    while i < n {
        i = core::hint::black_box(i + 1);
    }
    i
}

export!(Misbehave);
