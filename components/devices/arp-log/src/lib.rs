//! `arp-log`: a net filter that passes every frame through unchanged, both ways, and
//! logs ARP on topic `arp` — the MirageOS/Irmin scenario, where every ARP packet and
//! every change to the ARP table can be read back with `git log`.
//!
//! One event per request ("who-has 10.0.0.2 tell 10.0.0.1") or reply ("10.0.0.2 is-at
//! 52:54:00:…"), one per table change ("table: 10.0.0.1 -> aa:bb:… (new)") whose field
//! `table` holds the whole table as text, and one per malformed ARP frame (still passed
//! on). The table is learnt from ARP senders in both directions. No config keys. Its
//! times (`first-seen`, `last-changed`) are the clock's, read once per batch holding
//! ARP; in a simulation they are 0, since a reading would move virtual time.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arp;
#[cfg(test)]
mod fuzz;

use alloc::vec::Vec;

use arp::{Direction, Table};
use weft_guest::Global;

wit_bindgen::generate!({
    world: "net-observer",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use weft::devices::types::{ErrorCode, Handle};
use weft::devices::{clock, log, net};

const TOPIC: &str = "arp";

static TABLE: Global<Table> = Global::new(Table {
    entries: alloc::collections::BTreeMap::new(),
});

fn observe(frames: &[Vec<u8>], dir: Direction) {
    let mut now = None;
    TABLE.with(|t| {
        for f in frames {
            // Cheap test first: most frames are not ARP and cost no clock read.
            if f.len() < 14 || f[12..14] != [0x08, 0x06] {
                continue;
            }
            // In a simulation no reading: it would move virtual time (wit/watch.wit).
            let at = *now.get_or_insert_with(|| if weft_guest::observe::simulated() { 0 } else { clock::monotonic_now() });
            for e in t.observe(f, dir, at) {
                log::append(TOPIC, &e.message, &e.fields);
            }
        }
    });
}

// Only ARP frames reach it: the runtime routes the rest past it (wit/watch.wit).
weft_guest::observing_net_filter!(ArpLog, observe, in: Direction::In, out: Direction::Out, watch: [0x0806]);
