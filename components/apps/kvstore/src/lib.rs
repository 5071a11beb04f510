//! `kvstore`: a persistent, log-structured key-value store on the block device bound to
//! role `storage`. See [`format`] for the on-disk layout and [`store`] for the commands:
//!
//! ```text
//! kvstore fill N          append N records, commit, read each back:
//!                         "wrote N verified M lost K corrupt C" (exit 0 iff M == N)
//! kvstore fill N BATCH    the same in commits of BATCH records, each record reported
//!                         as "committed SEQ KEY" as soon as its commit is durable
//! kvstore verify          "records R valid V lost L corrupt C" (exit 0 iff L == C == 0)
//! kvstore get KEY         the value, or "not found: KEY" (exit 1)
//! kvstore set KEY VALUE   append, commit, read back: "ok"
//! kvstore set-many N KEYS N sets, one commit each, record S setting kS%KEYS = vS,
//!                         each reported as "committed S KEY"; then "ok"
//! ```
//! A "committed" line is written to the console after the commit's last flush returned:
//! the crash tests (host-posix/tests/crash.rs) kill weft there and check every reported
//! record survived.
//! Exit codes: 0 success, 1 data or device failure, 2 bad arguments or an image that is
//! not ours (never overwritten).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod format;
pub mod store;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({
    world: "app",
    path: "../../../wit",
});

use weft::devices::{block, console};

block_device!();

const ROLE: &str = "storage";

fn open() -> Result<store::Store<Block>, store::Outcome> {
    let fail = |what: String| store::Outcome {
        output: format!("error: {what}\n").into_bytes(),
        code: 1,
    };
    let dev = block::open(ROLE).map_err(|e| fail(format!("open {ROLE}: {}", e.name())))?;
    let g = block::info(dev).map_err(|e| fail(format!("info {ROLE}: {}", e.name())))?;
    store::Store::open(Block(dev), g.sector_size, g.sector_count, g.read_only)
}

struct Kvstore;

impl Guest for Kvstore {
    fn run(args: Vec<String>) -> u8 {
        let out = store::run(&args, open, &mut |line| console::write(line));
        console::write(&out.output);
        out.code
    }
}

export!(Kvstore);
