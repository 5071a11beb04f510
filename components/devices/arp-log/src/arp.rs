//! ARP over Ethernet (RFC 826) for IPv4: parse, serialize, and a table of who is where.
//! Byte slices in, events out: no bindings, so it is unit-tested and fuzzed on the host.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ARP_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;
/// Entries kept at most: garbage ARP with random sender addresses must not grow the
/// table (and each event's `table` field) without bound. The entry changed longest ago
/// makes room.
pub const MAX_ENTRIES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_mac: [u8; 6],
    pub target_ip: [u8; 4],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not an ARP frame (or too short to have an ethertype): none of our business.
    NotArp,
    Arp(Arp),
    /// Ethertype ARP, but not a well-formed Ethernet/IPv4 request or reply.
    Malformed(String),
}

/// Classify one Ethernet frame (destination MAC first, no FCS). Never panics.
pub fn parse(frame: &[u8]) -> Parsed {
    if frame.len() < 14 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_ARP {
        return Parsed::NotArp;
    }
    let p = &frame[14..];
    if p.len() < 8 {
        return Parsed::Malformed(format!(
            "truncated: {} bytes of ARP header, need 8",
            p.len()
        ));
    }
    let htype = u16::from_be_bytes([p[0], p[1]]);
    let ptype = u16::from_be_bytes([p[2], p[3]]);
    let (hlen, plen) = (p[4], p[5]);
    let op = u16::from_be_bytes([p[6], p[7]]);
    if htype != 1 || ptype != 0x0800 || hlen != 6 || plen != 4 {
        return Parsed::Malformed(format!(
            "not Ethernet/IPv4: htype {htype} ptype {ptype:#06x} hlen {hlen} plen {plen}"
        ));
    }
    if p.len() < ARP_LEN {
        return Parsed::Malformed(format!(
            "truncated: {} bytes of ARP, need {ARP_LEN}",
            p.len()
        ));
    }
    if op != OP_REQUEST && op != OP_REPLY {
        return Parsed::Malformed(format!("unknown operation {op}"));
    }
    let mut a = Arp {
        op,
        sender_mac: [0; 6],
        sender_ip: [0; 4],
        target_mac: [0; 6],
        target_ip: [0; 4],
    };
    a.sender_mac.copy_from_slice(&p[8..14]);
    a.sender_ip.copy_from_slice(&p[14..18]);
    a.target_mac.copy_from_slice(&p[18..24]);
    a.target_ip.copy_from_slice(&p[24..28]);
    Parsed::Arp(a)
}

impl Arp {
    /// The 28-byte ARP payload.
    pub fn to_bytes(&self) -> [u8; ARP_LEN] {
        let mut p = [0u8; ARP_LEN];
        p[0..2].copy_from_slice(&1u16.to_be_bytes());
        p[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        p[4] = 6;
        p[5] = 4;
        p[6..8].copy_from_slice(&self.op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sender_mac);
        p[14..18].copy_from_slice(&self.sender_ip);
        p[18..24].copy_from_slice(&self.target_mac);
        p[24..28].copy_from_slice(&self.target_ip);
        p
    }

    /// A whole Ethernet frame: requests broadcast, replies to the target.
    pub fn to_frame(&self) -> Vec<u8> {
        let dst = if self.op == OP_REQUEST {
            [0xff; 6]
        } else {
            self.target_mac
        };
        let mut f = vec![0u8; 14];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&self.sender_mac);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        f.extend_from_slice(&self.to_bytes());
        f
    }
}

pub use weft_guest::fmt::{ip as fmt_ip, mac as fmt_mac};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the wire towards the stack (`receive`).
    In,
    /// From the stack towards the wire (`send`).
    Out,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub mac: [u8; 6],
    /// Monotonic ns when the address was first seen, and when its MAC last changed.
    pub first_seen: u64,
    pub last_changed: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub message: String,
    pub fields: Vec<(String, String)>,
}

fn ev(message: String, fields: Vec<(&str, String)>) -> Event {
    Event {
        message,
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// The ARP table, learnt from the sender of every request and reply in both directions.
#[derive(Default)]
pub struct Table {
    pub entries: BTreeMap<[u8; 4], Entry>,
}

impl Table {
    /// The table as text: one `ip mac` line per entry, sorted by address.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (ip, e) in &self.entries {
            s.push_str(&fmt_ip(*ip));
            s.push(' ');
            s.push_str(&fmt_mac(e.mac));
            s.push('\n');
        }
        s
    }

    /// The events one frame gives: nothing for non-ARP; one for a request, reply or
    /// malformed ARP; one more when the sender's entry is new or changed.
    pub fn observe(&mut self, frame: &[u8], dir: Direction, now: u64) -> Vec<Event> {
        let a = match parse(frame) {
            Parsed::NotArp => return Vec::new(),
            Parsed::Malformed(why) => {
                return vec![ev(
                    format!(
                        "malformed ARP ({}, {} bytes): {why}",
                        dir.name(),
                        frame.len()
                    ),
                    vec![
                        ("op", String::from("malformed")),
                        ("direction", String::from(dir.name())),
                        ("len", frame.len().to_string()),
                        ("reason", why),
                    ],
                )];
            }
            Parsed::Arp(a) => a,
        };
        let mut out = Vec::new();
        let common = |op: &str| {
            vec![
                ("op", String::from(op)),
                ("direction", String::from(dir.name())),
                ("sender-ip", fmt_ip(a.sender_ip)),
                ("sender-mac", fmt_mac(a.sender_mac)),
                ("target-ip", fmt_ip(a.target_ip)),
            ]
        };
        if a.op == OP_REQUEST {
            out.push(ev(
                format!(
                    "who-has {} tell {}",
                    fmt_ip(a.target_ip),
                    fmt_ip(a.sender_ip)
                ),
                common("request"),
            ));
        } else {
            let mut f = common("reply");
            f.push(("target-mac", fmt_mac(a.target_mac)));
            out.push(ev(
                format!("{} is-at {}", fmt_ip(a.sender_ip), fmt_mac(a.sender_mac)),
                f,
            ));
        }
        // 0.0.0.0 is an address probe (RFC 5227), and broadcast/zero MACs say nothing
        // about where anyone is.
        if a.sender_ip == [0; 4] || a.sender_mac == [0; 6] || a.sender_mac == [0xff; 6] {
            return out;
        }
        let change = match self.entries.get_mut(&a.sender_ip) {
            None => {
                let mut what = String::from("new");
                if self.entries.len() >= MAX_ENTRIES {
                    let oldest = self
                        .entries
                        .iter()
                        .min_by_key(|(_, e)| e.last_changed)
                        .map(|(ip, _)| *ip);
                    if let Some(ip) = oldest {
                        self.entries.remove(&ip);
                        what = format!("new, evicted {}", fmt_ip(ip));
                    }
                }
                self.entries.insert(
                    a.sender_ip,
                    Entry {
                        mac: a.sender_mac,
                        first_seen: now,
                        last_changed: now,
                    },
                );
                Some((what, None))
            }
            Some(e) if e.mac != a.sender_mac => {
                let old = e.mac;
                e.mac = a.sender_mac;
                e.last_changed = now;
                Some((format!("changed from {}", fmt_mac(old)), Some(old)))
            }
            Some(_) => None,
        };
        if let Some((what, old)) = change {
            let e = self.entries[&a.sender_ip];
            let mut f = vec![
                ("op", String::from("table")),
                ("direction", String::from(dir.name())),
                ("ip", fmt_ip(a.sender_ip)),
                ("mac", fmt_mac(a.sender_mac)),
                (
                    "change",
                    String::from(if old.is_some() { "changed" } else { "new" }),
                ),
            ];
            if let Some(old) = old {
                f.push(("old-mac", fmt_mac(old)));
            }
            f.push(("first-seen", e.first_seen.to_string()));
            f.push(("last-changed", e.last_changed.to_string()));
            f.push(("entries", self.entries.len().to_string()));
            f.push(("table", self.text()));
            out.push(ev(
                format!(
                    "table: {} -> {} ({what})",
                    fmt_ip(a.sender_ip),
                    fmt_mac(a.sender_mac)
                ),
                f,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::Rng;

    const A: [u8; 6] = [0xaa, 0xbb, 0xcc, 0, 0, 1];
    const B: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn req(sip: [u8; 4], smac: [u8; 6], tip: [u8; 4]) -> Arp {
        Arp {
            op: OP_REQUEST,
            sender_mac: smac,
            sender_ip: sip,
            target_mac: [0; 6],
            target_ip: tip,
        }
    }

    fn field<'a>(e: &'a Event, k: &str) -> &'a str {
        &e.fields.iter().find(|(kk, _)| kk == k).unwrap().1
    }

    #[test]
    fn roundtrip() {
        let a = req([10, 0, 0, 1], A, [10, 0, 0, 2]);
        let f = a.to_frame();
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(parse(&f), Parsed::Arp(a));
        let r = Arp {
            op: OP_REPLY,
            sender_mac: B,
            sender_ip: [10, 0, 0, 2],
            target_mac: A,
            target_ip: [10, 0, 0, 1],
        };
        let f = r.to_frame();
        assert_eq!(&f[0..6], &A);
        assert_eq!(parse(&f), Parsed::Arp(r));
        // Ethernet padding to 60 bytes is fine.
        let mut padded = f.clone();
        padded.resize(60, 0);
        assert_eq!(parse(&padded), Parsed::Arp(r));
    }

    #[test]
    fn malformed() {
        let f = req([10, 0, 0, 1], A, [10, 0, 0, 2]).to_frame();
        assert_eq!(parse(&f[..13]), Parsed::NotArp);
        assert!(matches!(parse(&f[..20]), Parsed::Malformed(m) if m.contains("truncated")));
        assert!(matches!(parse(&f[..41]), Parsed::Malformed(m) if m.contains("truncated")));
        let mut bad_op = f.clone();
        bad_op[21] = 9;
        assert!(matches!(parse(&bad_op), Parsed::Malformed(m) if m.contains("operation 9")));
        let mut bad_h = f.clone();
        bad_h[15] = 6;
        assert!(matches!(parse(&bad_h), Parsed::Malformed(m) if m.contains("htype 6")));
        let mut ipv4 = f.clone();
        ipv4[13] = 0x00;
        assert_eq!(parse(&ipv4), Parsed::NotArp);
    }

    #[test]
    fn table_new_same_changed() {
        let mut t = Table::default();
        let ev = t.observe(
            &req([10, 0, 0, 1], A, [10, 0, 0, 2]).to_frame(),
            Direction::In,
            5,
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].message, "who-has 10.0.0.2 tell 10.0.0.1");
        assert_eq!(ev[1].message, "table: 10.0.0.1 -> aa:bb:cc:00:00:01 (new)");
        assert_eq!(field(&ev[1], "table"), "10.0.0.1 aa:bb:cc:00:00:01\n");
        let reply = Arp {
            op: OP_REPLY,
            sender_mac: B,
            sender_ip: [10, 0, 0, 2],
            target_mac: A,
            target_ip: [10, 0, 0, 1],
        };
        let ev = t.observe(&reply.to_frame(), Direction::Out, 6);
        assert_eq!(ev[0].message, "10.0.0.2 is-at 52:54:00:12:34:56");
        assert_eq!(field(&ev[0], "direction"), "out");
        assert_eq!(
            field(&ev[1], "table"),
            "10.0.0.1 aa:bb:cc:00:00:01\n10.0.0.2 52:54:00:12:34:56\n"
        );
        // Same again: no table event.
        let ev = t.observe(
            &req([10, 0, 0, 1], A, [10, 0, 0, 2]).to_frame(),
            Direction::In,
            7,
        );
        assert_eq!(ev.len(), 1);
        // 10.0.0.1 moves.
        let ev = t.observe(
            &req([10, 0, 0, 1], B, [10, 0, 0, 2]).to_frame(),
            Direction::In,
            9,
        );
        assert_eq!(
            ev[1].message,
            "table: 10.0.0.1 -> 52:54:00:12:34:56 (changed from aa:bb:cc:00:00:01)"
        );
        assert_eq!(field(&ev[1], "first-seen"), "5");
        assert_eq!(field(&ev[1], "last-changed"), "9");
        assert_eq!(field(&ev[1], "old-mac"), "aa:bb:cc:00:00:01");
        // Numeric order, not text order.
        t.observe(
            &req([10, 0, 0, 10], A, [10, 0, 0, 2]).to_frame(),
            Direction::In,
            10,
        );
        t.observe(
            &req([9, 0, 0, 1], A, [10, 0, 0, 2]).to_frame(),
            Direction::In,
            11,
        );
        let text = t.text();
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(lines, ["9.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.10"]);
        // A probe from 0.0.0.0 is logged but not learnt.
        let ev = t.observe(
            &req([0, 0, 0, 0], A, [10, 0, 0, 3]).to_frame(),
            Direction::In,
            12,
        );
        assert_eq!(ev.len(), 1);
        // Non-ARP: nothing.
        assert!(t.observe(&[0u8; 60], Direction::In, 13).is_empty());
        let ev = t.observe(
            &req([10, 0, 0, 1], A, [10, 0, 0, 2]).to_frame()[..30],
            Direction::In,
            14,
        );
        assert_eq!(ev.len(), 1);
        assert!(
            ev[0]
                .message
                .starts_with("malformed ARP (in, 30 bytes): truncated"),
            "{}",
            ev[0].message
        );
    }

    /// Thousands of seeded random, truncated, oversized and bit-flipped frames: never a
    /// panic, and the table only ever holds what well-formed ARP said.
    #[test]
    fn garbage_frames_never_panic() {
        let mut rng = Rng::new(7);
        let mut t = Table::default();
        let tpl = req([10, 0, 0, 1], A, [10, 0, 0, 2]).to_frame();
        for i in 0..20_000u64 {
            let f = match rng.below(5) {
                0 if i % 10 == 0 => {
                    // Well-formed, from a random sender: fills the table to its cap.
                    let mut ip = [0u8; 4];
                    rng.fill(&mut ip);
                    req(ip, A, [10, 0, 0, 2]).to_frame()
                }
                0 => {
                    let mut f = vec![0u8; rng.below(100) as usize];
                    rng.fill(&mut f);
                    if f.len() >= 14 {
                        f[12] = 0x08;
                        f[13] = 0x06;
                    }
                    f
                }
                1 => tpl[..rng.below(tpl.len() as u64 + 1) as usize].to_vec(),
                2 => {
                    let mut f = tpl.clone();
                    for _ in 0..1 + rng.below(4) {
                        let j = 12 + rng.below(30) as usize;
                        f[j] ^= 1 << rng.below(8);
                    }
                    f
                }
                3 => {
                    let mut f = tpl.clone();
                    f.resize(1515 + rng.below(9000) as usize, 0xee);
                    f
                }
                _ => Vec::new(),
            };
            for e in t.observe(
                &f,
                if i % 2 == 0 {
                    Direction::In
                } else {
                    Direction::Out
                },
                i,
            ) {
                assert!(!e.message.is_empty());
            }
        }
        assert!(
            t.entries.len() > 1 && t.entries.len() <= MAX_ENTRIES,
            "{}",
            t.entries.len()
        );
        for (ip, e) in &t.entries {
            assert_ne!(*ip, [0; 4]);
            assert!(e.first_seen <= e.last_changed);
        }
    }
}
