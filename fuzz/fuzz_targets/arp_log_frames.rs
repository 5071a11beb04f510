//! arp-log's parser and table over records of raw or well-formed ARP frames
//! (components/devices/arp-log/src/fuzz.rs says how).
#![no_main]

extern crate alloc;

#[path = "../../components/devices/arp-log/src/arp.rs"]
#[allow(dead_code)]
mod arp;
#[path = "../../components/devices/arp-log/src/fuzz.rs"]
mod fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::frames(data));
