//! `idle`: the idle unikernel of the density benchmark (`host-posix/benches/density.rs`).
//!
//! `idle [SECONDS]` parks in `clock.wait-until` until SECONDS (default 3600) past the
//! monotonic clock's now, then exits 0. It does nothing else, so what an instance of it
//! costs while it waits is the runtime's floor: its instances, its linear memory as the
//! start of `run` left it, its store, and the thread it waits on.
#![no_std]

extern crate alloc;
// The allocator, panic handler and cabi_realloc.
use weft_guest as _;

use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "app", path: "../../../wit" });

use weft::devices::clock;

struct Idle;

impl Guest for Idle {
    fn run(args: Vec<String>) -> u8 {
        let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3600);
        clock::wait_until(clock::monotonic_now().saturating_add(seconds.saturating_mul(1_000_000_000)));
        0
    }
}

export!(Idle);
