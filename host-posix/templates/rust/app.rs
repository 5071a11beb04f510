//! {{name}}: a weft app. weft calls `run` with the manifest's `[app] args`;
//! what it returns is the unikernel's exit code. It prints through the
//! `console` device; to use another device, add its import to wit/world.wit
//! (`import weft:devices/clock@0.1.0;`) and call it (`weft::devices::clock`).
#![no_std]

extern crate alloc;

mod rt;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "app",
    path: "wit",
    // The devices' interfaces live in another package (weft:devices).
    generate_all,
});

use weft::devices::console;

struct App;

impl Guest for App {
    fn run(args: Vec<String>) -> u8 {
        console::write(b"Hello from {{name}}, a weft app in Rust!\n");
        if !args.is_empty() {
            console::write(format!("args: {}\n", args.join(" ")).as_bytes());
        }
        0
    }
}

export!(App);
