//! The fuzz hook over arp-log's frame path (`fuzz/`, target `arp_log_frames`,
//! which includes this file and `arp.rs` by path; a seeded smoke run of it is a unit
//! test).
//!
//! The input is a sequence of records `[control][length: u16 LE][bytes]`. Control bit 0
//! is the direction; with bit 1 set the bytes fill the fields of a well-formed ARP
//! frame (operation, sender, target) instead of being the raw frame, so the fuzzer
//! drives the table (new, changed, evicted entries) as readily as the parser.
//!
//! What must hold: nothing panics; every ARP frame parses back to what was built; a
//! frame gives at most two events, each with a message; the table never exceeds
//! `MAX_ENTRIES` and its text has one line per entry.

use alloc::vec::Vec;

use crate::arp::{
    ARP_LEN, Arp, Direction, MAX_ENTRIES, OP_REPLY, OP_REQUEST, Parsed, Table, parse,
};

/// Records per input at most.
const RECORDS: usize = 4096;

pub fn frames(mut data: &[u8]) {
    let mut table = Table::default();
    let mut now = 0u64;
    for _ in 0..RECORDS {
        if data.len() < 3 {
            break;
        }
        let ctl = data[0];
        let len = u16::from_le_bytes([data[1], data[2]]) as usize;
        let body = &data[3..3 + len.min(data.len() - 3)];
        data = &data[3 + body.len()..];
        let dir = if ctl & 1 == 0 {
            Direction::In
        } else {
            Direction::Out
        };
        now += u64::from(ctl >> 2) * 1_000_000;
        let frame = if ctl & 2 != 0 {
            let mut f = [0u8; 21];
            for (d, s) in f.iter_mut().zip(body) {
                *d = *s;
            }
            // Few distinct addresses, so entries change MAC and the table fills.
            let a = Arp {
                op: if f[0] & 1 == 0 { OP_REQUEST } else { OP_REPLY },
                sender_mac: [f[1], f[2], f[3], f[4], f[5], f[6]],
                sender_ip: [10, 0, f[7] & 1, f[8]],
                target_mac: [f[9], f[10], f[11], f[12], f[13], f[14]],
                target_ip: [10, 0, 0, f[15]],
            };
            let frame = a.to_frame();
            assert_eq!(frame.len(), 14 + ARP_LEN);
            assert_eq!(parse(&frame), Parsed::Arp(a));
            frame
        } else {
            Vec::from(body)
        };
        let events = table.observe(&frame, dir, now);
        assert!(events.len() <= 2, "{} events for one frame", events.len());
        for e in &events {
            assert!(!e.message.is_empty());
        }
        assert!(table.entries.len() <= MAX_ENTRIES);
    }
    assert_eq!(table.text().lines().count(), table.entries.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use weft_guest::Rng;

    /// The CI smoke run of the fuzz target: seeded random inputs, half of them
    /// well-formed ARP, for about half a second. Real fuzzing: `cargo fuzz run
    /// arp_log_frames` (docs/fuzzing.md).
    #[test]
    fn fuzz_hook_smoke() {
        let mut rng = Rng::new(11);
        let start = std::time::Instant::now();
        let mut runs = 0;
        while runs < 20 || (start.elapsed().as_millis() < 500 && runs < 5000) {
            let mut input = Vec::new();
            for _ in 0..rng.below(400) {
                let len = if rng.chance(0.5) {
                    21
                } else {
                    rng.below(80) as usize
                };
                let mut body = vec![0u8; len];
                rng.fill(&mut body);
                let ctl = rng.below(256) as u8 | if len == 21 { 2 } else { 0 };
                input.push(ctl);
                input.extend_from_slice(&(len as u16).to_le_bytes());
                input.extend_from_slice(&body);
            }
            frames(&input);
            runs += 1;
        }
        frames(&[]);
        frames(&[0, 0xff, 0xff, 1]);
    }
}
