//! `hello`: the smallest weft app. Prints a greeting, the wall clock (RFC 3339 UTC), the
//! monotonic clock and 8 random bytes, and exits 0. It uses only `clock`, `console` and
//! `random`, so its component imports nothing else.
#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::fmt::{hex, rfc3339_utc};

wit_bindgen::generate!({
    world: "app",
    path: "../../../wit",
});

use weft::devices::{clock, console, random};

struct Hello;

impl Guest for Hello {
    fn run(_args: Vec<String>) -> u8 {
        let wall = clock::wall_now();
        let mono = clock::monotonic_now();
        let bytes = random::fill(8);
        let out = format!(
            "Hello from weft!\nwall clock: {}\nmonotonic: {mono} ns\nrandom: {}\n",
            rfc3339_utc(wall),
            hex(&bytes)
        );
        console::write(out.as_bytes());
        0
    }
}

export!(Hello);
