//! `callbench`: measures device-call cost from inside a component.
//!
//! `callbench read N` does N 4 KiB reads (8 sectors) of device `storage`;
//! `callbench small N` does N `block.info` calls (a small call: a handle in,
//! a 3-field record out); `callbench now N` does N `clock.monotonic-now`
//! calls (no arguments, one u64 back: the smallest call there is). Prints `ns/call <float>` timed with the monotonic
//! clock around the loop, so the host-side harness can compare chains.
#![no_std]

extern crate alloc;
// The allocator, panic handler and cabi_realloc.
use weft_guest as _;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "app", path: "../../../wit" });

use weft::devices::{block, clock, console};

struct CallBench;

impl Guest for CallBench {
    fn run(args: Vec<String>) -> u8 {
        let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
        let Ok(dev) = block::open("storage") else {
            console::write(b"callbench: no block device `storage`\n");
            return 2;
        };
        let sectors = block::info(dev).map(|g| g.sector_count).unwrap_or(0);
        let t0 = clock::monotonic_now();
        match args.first().map(String::as_str) {
            Some("read") => {
                for i in 0..n {
                    let start = (i * 8) % (sectors - 8);
                    let data = block::read(dev, start, 8).expect("read");
                    core::hint::black_box(data);
                }
            }
            Some("now") => {
                for _ in 0..n {
                    core::hint::black_box(clock::monotonic_now());
                }
            }
            Some("small") => {
                for _ in 0..n {
                    core::hint::black_box(block::info(dev).expect("info"));
                }
            }
            _ => {
                console::write(b"usage: callbench read|small|now N\n");
                return 2;
            }
        }
        let dt = clock::monotonic_now() - t0;
        console::write(format!("ns/call {:.1}\n", dt as f64 / n as f64).as_bytes());
        0
    }
}

export!(CallBench);
