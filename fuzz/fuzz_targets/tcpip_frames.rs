//! Two tcpip stacks back to back, the input damaging the frames in flight
//! (components/devices/tcpip/src/fuzz.rs says how).
#![no_main]

extern crate alloc;

#[path = "../../components/devices/tcpip/src/config.rs"]
#[allow(dead_code)]
mod config;
#[path = "../../components/devices/tcpip/src/fuzz.rs"]
mod fuzz;
#[path = "../../components/devices/tcpip/src/stack.rs"]
#[allow(dead_code)]
mod stack;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::frames(data));
