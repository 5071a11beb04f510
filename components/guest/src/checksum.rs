//! The Internet checksum (RFC 1071) of IPv4 TCP and UDP frames, for *checksum
//! offload* (`net-info.checksum-offload`): the TAP leaf fills in the checksums a stack
//! left to the device and checks the ones nothing vouches for, and a filter that
//! damages frames (`net-fault`) makes every checksum complete first, so the damage
//! stays detectable. One copy, shared by the host and the guest components.
//!
//! A checksum field holds one of three things:
//! - **zero**: *delegated*, the sender left it to the device (smoltcp writes zero
//!   when its device checksums);
//! - the **pseudo-header's sum**: *partial*, Linux's `CHECKSUM_PARTIAL`, what
//!   virtio-net's `NEEDS_CSUM` asks the other side to complete;
//! - the **full checksum**.

/// `sum` plus the one's complement sum of `data` as big-endian 16-bit words,
/// folded to at most 17 bits. Eight bytes at a time (a 64 KiB super-frame is summed
/// on every send): 2^16 ≡ 1 modulo 0xffff, so the sum of 64-bit words with
/// end-around carry folds to the same 16 bits.
pub fn sum16(data: &[u8], sum: u32) -> u32 {
    let mut acc = sum as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(w.try_into().unwrap()));
        acc = s + carry as u64;
    }
    let mut pairs = words.remainder().chunks_exact(2);
    for p in &mut pairs {
        acc += u16::from_be_bytes([p[0], p[1]]) as u64;
    }
    if let [b] = pairs.remainder() {
        acc += (*b as u64) << 8;
    }
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    ((acc & 0xffff) + (acc >> 16)) as u32
}

/// A sum folded to 16 bits.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The TCP/UDP pseudo-header's sum, unfolded, for the IPv4 header `ip` (at least
/// its first 20 bytes) and `l4_len` bytes of TCP or UDP.
pub fn pseudo_header(ip: &[u8], l4_len: usize) -> u32 {
    sum16(&ip[12..20], 0) + ip[9] as u32 + l4_len as u32
}

const ETH: usize = 14;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// Where an IPv4 frame's TCP or UDP checksum is, found by [`L4::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    /// First byte the checksum covers (the TCP or UDP header), from the frame's start.
    pub start: usize,
    /// The checksum field, from the frame's start.
    pub field: usize,
    /// One past the last byte covered: the IP packet's end (Ethernet padding is not).
    pub end: usize,
    pub udp: bool,
    /// The pseudo-header's sum, unfolded.
    pseudo: u32,
}

impl L4 {
    /// The checksum of an Ethernet frame holding an unfragmented IPv4 TCP or UDP
    /// packet whose lengths agree with the frame; `None` for anything else (ARP,
    /// ICMP, fragments, garbage), whose checksums are none of the device's business.
    pub fn of(f: &[u8]) -> Option<L4> {
        if f.len() < ETH + 20 || f[12..14] != [0x08, 0x00] {
            return None;
        }
        let ip = &f[ETH..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        let udp = match ip[9] {
            TCP => false,
            UDP => true,
            _ => return None,
        };
        let min = if udp { 8 } else { 20 };
        if ip[0] >> 4 != 4 || ihl < 20 || fragment || total > ip.len() || total < ihl + min {
            return None;
        }
        let start = ETH + ihl;
        Some(L4 {
            start,
            field: start + if udp { 6 } else { 16 },
            end: ETH + total,
            udp,
            pseudo: pseudo_header(ip, total - ihl),
        })
    }

    /// The checksum field's value.
    pub fn get(&self, f: &[u8]) -> u16 {
        u16::from_be_bytes([f[self.field], f[self.field + 1]])
    }

    fn set(&self, f: &mut [u8], v: u16) {
        f[self.field..self.field + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// Whether the sender left the checksum to the device (the field is zero).
    pub fn delegated(&self, f: &[u8]) -> bool {
        self.get(f) == 0
    }

    /// Writes the full checksum, whatever the field held. A zero result is sent as
    /// 0xffff, its one's complement twin: UDP reserves zero for "no checksum", and a
    /// full TCP checksum never reads as delegated.
    pub fn fill(&self, f: &mut [u8]) {
        self.set(f, 0);
        let sum = !fold(sum16(&f[self.start..self.end], self.pseudo));
        self.set(f, if sum == 0 { 0xffff } else { sum });
    }

    /// Writes the pseudo-header's sum, for a device to complete (`NEEDS_CSUM`).
    pub fn set_partial(&self, f: &mut [u8]) {
        self.set(f, fold(self.pseudo));
    }

    /// Whether the field holds the right full checksum (a UDP zero, "none", passes).
    pub fn verify(&self, f: &[u8]) -> bool {
        (self.udp && self.get(f) == 0) || fold(sum16(&f[self.start..self.end], self.pseudo)) == 0xffff
    }
}

/// Makes the TCP or UDP checksum of `f` complete, if it has one: what a filter that
/// damages frames does first, so the damage stays detectable.
pub fn fill(f: &mut [u8]) {
    if let Some(l4) = L4::of(f) {
        l4.fill(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Ethernet + IPv4 (protocol `proto`) + `l4` bytes, IP checksum filled.
    fn frame(proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(l4);
        f
    }

    /// The RFC 1071 sum, two bytes at a time, folding as it goes.
    fn naive(d: &[u8], mut s: u32) -> u32 {
        for c in d.chunks(2) {
            s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        s
    }

    #[test]
    fn the_wide_sum_is_the_16_bit_sum() {
        let data: Vec<u8> = (0..70000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
        for len in (0..64).chain([1499, 1500, 65535, 70000]) {
            for start in [0u32, 0xffff, 0x1_2345] {
                assert_eq!(fold(sum16(&data[..len], start)), fold(naive(&data[..len], start)), "len {len}");
            }
        }
        assert_eq!(fold(sum16(&[0xff; 65536], 0)), 0xffff);
    }

    /// A TCP checksum computed apart from [`L4`]: pseudo-header by hand.
    fn tcp_ok(f: &[u8]) -> bool {
        let total = u16::from_be_bytes([f[16], f[17]]) as u32;
        let pseudo = naive(&f[26..34], 0) + 6 + total - 20;
        fold(naive(&f[34..14 + total as usize], pseudo)) == 0xffff
    }

    #[test]
    fn filled_delegated_and_partial_checksums_agree() {
        let mut tcp = vec![0u8; 20];
        tcp[12] = 0x50;
        tcp.extend_from_slice(b"some bytes, odd length");
        let mut f = frame(TCP, &tcp);
        f.extend_from_slice(&[0; 6]); // Ethernet padding is not summed
        let l4 = L4::of(&f).unwrap();
        assert_eq!((l4.start, l4.field, l4.end, l4.udp), (34, 50, f.len() - 6, false));
        assert!(l4.delegated(&f));
        l4.fill(&mut f);
        assert!(tcp_ok(&f) && l4.verify(&f) && !l4.delegated(&f));
        let full = f.clone();
        // A device completing a partial checksum (sum from `start`, inverted) gets the
        // full one.
        l4.set_partial(&mut f);
        assert!(!l4.verify(&f));
        let done = !fold(sum16(&f[l4.start..l4.end], 0));
        f[l4.field..l4.field + 2].copy_from_slice(&done.to_be_bytes());
        assert_eq!(f, full);
        // One flipped bit anywhere it covers is caught.
        for byte in l4.start..l4.end {
            let mut g = full.clone();
            g[byte] ^= 0x10;
            assert!(!l4.verify(&g), "byte {byte}");
        }
    }

    #[test]
    fn udp_zero_means_none_and_a_zero_sum_is_sent_as_ffff() {
        let mut udp = vec![0x30, 0x39, 0, 53, 0, 12, 0, 0];
        udp.extend_from_slice(&[1, 2, 3, 4]);
        let mut f = frame(UDP, &udp);
        let l4 = L4::of(&f).unwrap();
        assert!(l4.udp && l4.field == 40 && l4.verify(&f));
        l4.fill(&mut f);
        assert!(l4.get(&f) != 0 && l4.verify(&f));
        // Payload chosen so the checksum is zero: it goes out as 0xffff and verifies.
        let mut g = frame(UDP, &[0, 0, 0, 0, 0, 10, 0, 0, 0, 0]);
        let l4 = L4::of(&g).unwrap();
        let need = fold(sum16(&g[l4.start..l4.end], l4.pseudo));
        g[42..44].copy_from_slice(&(0xffff - need).to_be_bytes());
        l4.fill(&mut g);
        assert_eq!(l4.get(&g), 0xffff);
        assert!(l4.verify(&g));
    }

    #[test]
    fn only_whole_ipv4_tcp_and_udp_have_one() {
        let tcp = frame(TCP, &[0; 20]);
        assert!(L4::of(&tcp).is_some());
        let mut frag = tcp.clone();
        frag[20] = 0x20; // more fragments
        let mut long = tcp.clone();
        long[17] += 1; // IP length past the frame
        let mut v6 = tcp.clone();
        v6[14] = 0x65;
        let short = frame(TCP, &[0; 19]);
        let icmp = frame(1, &[0; 20]);
        let arp = vec![0xff; 42];
        for f in [frag, long, v6, short, icmp, arp] {
            assert_eq!(L4::of(&f), None);
        }
        // Every prefix of a good frame: no panic, and filling leaves garbage alone.
        for n in 0..tcp.len() {
            let mut g = tcp[..n].to_vec();
            fill(&mut g);
            assert_eq!(g, tcp[..n]);
        }
    }
}
