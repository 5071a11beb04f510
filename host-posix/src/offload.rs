//! TAP segmentation and checksum offload (`offload = true` on a `tap` device): what
//! virtio-net does for a VM, done in weft's TAP leaf so the stack component moves 64
//! KiB at a time over a 1500-byte link and never sums a byte of TCP.
//!
//! With `IFF_VNET_HDR` every frame on the TAP file descriptor carries a 10-byte
//! `virtio_net_hdr` in front. Linux then hands weft TCP data as *super-frames* of up
//! to 64 KiB (one `read` instead of ~45), and takes one super-frame per `write` that
//! it cuts into MSS-sized segments itself: [`coalesce`] merges the stack's consecutive
//! segments of one TCP stream into such a frame. Everything else passes as it is.
//!
//! **Checksums** (`net-info.checksum-offload`, see `weft_guest::checksum`): the stack
//! sends TCP and UDP with a zero checksum, which the leaf hands Linux to fill in
//! (`NEEDS_CSUM`); a frame with a complete checksum goes out as it is, for Linux to
//! check. Linux's own frames arrive with the checksum left to do or already checked
//! ([`check_received`]), and pass up as they are; only a frame nothing vouches for is
//! summed here, and dropped if wrong.
//!
//! The stack sees the TAP device's MTU as 64 KiB (it must accept super-frames), and
//! sends super-frames itself: in a SYN from a peer on the link, whose MSS is the
//! wire's (its MTU less 40), [`widen_mss`] raises the MSS to 64 KiB, so smoltcp builds
//! segments of up to 64 KiB that Linux cuts to the wire's size — the TCP segmentation
//! offload a NIC gives a kernel. A peer announcing a smaller MSS (behind a router)
//! keeps it, and the stack's segments to it are merged as above. Filters on the
//! device see super-frames both ways.

use weft_guest::checksum::{L4, fold, pseudo_header, sum16};

/// `sizeof(struct virtio_net_hdr)`, the TAP default.
pub const HDR_LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_TCPV4: u8 = 1;

/// The largest IPv4 packet.
const IP_MAX: usize = 65535;
const ETH: usize = 14;
const TCP_FLAG_ACK: u8 = 0x10;
const TCP_FLAG_PSH: u8 = 0x08;
const TCP_FLAG_FIN: u8 = 0x01;
const TCP_FLAG_SYN: u8 = 0x02;

/// The MSS [`widen_mss`] announces: the largest a TCP segment in one IPv4 packet
/// can carry.
pub const WIDE_MSS: u16 = (IP_MAX - 40) as u16;

/// The header of a frame Linux needs to do nothing for.
pub const PLAIN: [u8; HDR_LEN] = [0; HDR_LEN];

/// How a received frame's checksum stands, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Linux built it and left the TCP or UDP checksum to do (`CHECKSUM_PARTIAL`):
    /// the field holds the pseudo-header's sum. Passed up as it is.
    Partial,
    /// Checked, or with nothing for the device to check: passed up as it is.
    Valid,
    /// A bad checksum, or a header pointing outside the frame: dropped, as a NIC
    /// drops it.
    Bad,
}

/// What to do with a frame read from the TAP device under `hdr`. Linux marks its
/// own TCP and UDP `NEEDS_CSUM` (partial) or `DATA_VALID`; a frame with neither (one
/// forwarded from elsewhere) has its TCP or UDP checksum checked here, since the
/// stack above trusts the device's. A `NEEDS_CSUM` frame that is not plain IPv4 TCP
/// or UDP has its checksum completed, as before any offload.
pub fn check_received(hdr: &[u8; HDR_LEN], frame: &mut [u8]) -> Received {
    if hdr[0] & F_NEEDS_CSUM == 0 {
        return match L4::of(frame) {
            Some(l4) if hdr[0] & F_DATA_VALID == 0 && !l4.verify(frame) => Received::Bad,
            _ => Received::Valid,
        };
    }
    let start = u16::from_le_bytes([hdr[6], hdr[7]]) as usize;
    let at = start + u16::from_le_bytes([hdr[8], hdr[9]]) as usize;
    if start >= frame.len() || at + 2 > frame.len() {
        return Received::Bad;
    }
    if L4::of(frame).is_some_and(|l4| l4.start == start && l4.field == at) {
        return Received::Partial;
    }
    let sum = !fold(sum16(&frame[start..], 0));
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Received::Valid
}

/// In a received SYN whose MSS option is `wire_mtu - 40` (a peer on this link),
/// raises the MSS to [`WIDE_MSS`] (and mends the checksum, unless it is `partial`,
/// whose sum covers no option): the stack then sends that peer segments of up to 64
/// KiB, which [`coalesce`] hands Linux to cut at the wire's size. Any other frame is
/// left alone.
pub fn widen_mss(frame: &mut [u8], wire_mtu: u32, partial: bool) {
    let Some(l4) = L4::of(frame).filter(|l| !l.udp) else { return };
    let tcp = l4.start;
    let thl = (frame[tcp + 12] >> 4) as usize * 4;
    if frame[tcp + 13] & TCP_FLAG_SYN == 0 || thl < 20 || tcp + thl > l4.end {
        return;
    }
    let mut at = tcp + 20;
    while at < tcp + thl {
        match frame[at] {
            0 => return,
            1 => at += 1,
            kind => {
                let len = *frame.get(at + 1).unwrap_or(&0) as usize;
                if len < 2 || at + len > tcp + thl {
                    return;
                }
                if kind == 2 && len == 4 {
                    let mss = u16::from_be_bytes([frame[at + 2], frame[at + 3]]) as u32;
                    if mss + 40 != wire_mtu {
                        return;
                    }
                    frame[at + 2..at + 4].copy_from_slice(&WIDE_MSS.to_be_bytes());
                    if !partial {
                        l4.fill(frame);
                    }
                    return;
                }
                at += len;
            }
        }
    }
}

/// A frame as it goes to the TAP device: its virtio-net header, then `head` and
/// `parts` written in one vectored write — for a super-frame the first segment's
/// headers, patched, and every segment's payload, borrowed from the stack's frames.
/// No parts at all: a frame dropped for a bad checksum, nothing to write.
pub struct Out<'a> {
    pub hdr: [u8; HDR_LEN],
    pub head: Vec<u8>,
    pub parts: Vec<&'a [u8]>,
    /// How many of the stack's frames it holds.
    pub frames: usize,
}

impl<'a> Out<'a> {
    fn plain(f: &'a [u8]) -> Out<'a> {
        Out { hdr: PLAIN, head: Vec::new(), parts: vec![f], frames: 1 }
    }

    /// One frame whose checksum Linux fills in: its headers copied up to the
    /// checksum field, which gets the pseudo-header's sum.
    fn needs_csum(f: &'a [u8], l4: &L4) -> Out<'a> {
        let mut head = f[..l4.field + 2].to_vec();
        l4.set_partial(&mut head);
        let hdr = needs_csum_hdr(l4.start, l4.field - l4.start);
        Out { hdr, head, parts: vec![&f[l4.field + 2..]], frames: 1 }
    }

    fn dropped() -> Out<'a> {
        Out { hdr: PLAIN, head: Vec::new(), parts: Vec::new(), frames: 1 }
    }

    /// A frame dropped for a bad checksum: nothing to write.
    pub fn is_dropped(&self) -> bool {
        self.parts.is_empty()
    }

    /// The frame's bytes after the header.
    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        let mut v = self.head.clone();
        for p in &self.parts {
            v.extend_from_slice(p);
        }
        v
    }
}

/// A header asking Linux to fill in the checksum at `csum_start + csum_offset`
/// (the sum of the bytes from `csum_start` on).
fn needs_csum_hdr(csum_start: usize, csum_offset: usize) -> [u8; HDR_LEN] {
    let mut hdr = PLAIN;
    hdr[0] = F_NEEDS_CSUM;
    hdr[6..8].copy_from_slice(&(csum_start as u16).to_le_bytes());
    hdr[8..10].copy_from_slice(&(csum_offset as u16).to_le_bytes());
    hdr
}

/// The stack's frames as they go to the TAP device. A frame whose TCP or UDP
/// checksum is delegated (zero) goes with `NEEDS_CSUM`; runs of consecutive
/// full-size segments of one TCP stream, checksums delegated, become one
/// super-frame; a segment larger than the wire (`wire_mtu`) is handed over for
/// Linux to cut. A frame with its checksum complete goes out as it is, for Linux to
/// check — unless it must be cut, which would hide damage done to it (a corrupting
/// filter's): it is checked here, and dropped if bad. Nothing is copied but headers.
pub fn coalesce<'a>(frames: &[&'a [u8]], wire_mtu: u32) -> Vec<Out<'a>> {
    let mut out = Vec::new();
    let mut run: Option<Run<'_>> = None;
    let wire = ETH + wire_mtu as usize;
    for &f in frames {
        let l4 = L4::of(f);
        let oversize = f.len() > wire;
        let delegated = l4.is_some_and(|l| l.delegated(f));
        let seg = l4.and_then(|l| Segment::parse(f, &l)).filter(|s| !oversize || wire > s.hdr_len);
        let seg = match (seg, l4) {
            (Some(seg), Some(l4)) if delegated || (oversize && l4.verify(f)) => Some(seg),
            (Some(_), Some(_)) if oversize => {
                if let Some(r) = run.take() {
                    out.push(r.finish());
                }
                out.push(Out::dropped());
                continue;
            }
            _ => None,
        };
        let Some(seg) = seg else {
            if let Some(r) = run.take() {
                out.push(r.finish());
            }
            out.push(match l4 {
                Some(l4) if delegated => Out::needs_csum(f, &l4),
                _ => Out::plain(f),
            });
            continue;
        };
        if oversize {
            if let Some(r) = run.take() {
                out.push(r.finish());
            }
            let mss = wire - seg.hdr_len;
            out.push(Run::start(f, seg).gso(mss));
            continue;
        }
        if let Some(r) = &mut run {
            if r.append(f, &seg) {
                continue;
            }
            out.push(run.take().unwrap().finish());
        }
        run = Some(Run::start(f, seg));
    }
    if let Some(r) = run {
        out.push(r.finish());
    }
    out
}

/// An IPv4 TCP segment with data, as far as merging needs it.
#[derive(Clone, Copy)]
struct Segment {
    /// Bytes of Ethernet + IP + TCP header.
    hdr_len: usize,
    ip_hdr: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

impl Segment {
    /// `f`, whose checksum is `l4`, if it is TCP data in IPv4 without options, the
    /// packet filling the frame.
    fn parse(f: &[u8], l4: &L4) -> Option<Segment> {
        if l4.udp || l4.start != ETH + 20 || l4.end != f.len() {
            return None;
        }
        let (ihl, total) = (l4.start - ETH, l4.end - ETH);
        let tcp = &f[l4.start..];
        let thl = (tcp[12] >> 4) as usize * 4;
        if thl < 20 || ihl + thl > total {
            return None;
        }
        let flags = tcp[13];
        let payload = total - ihl - thl;
        // Only data with ACK, and at most PSH or FIN besides: SYN, RST, URG and the
        // ECN flags are never merged.
        if payload == 0 || flags & !(TCP_FLAG_ACK | TCP_FLAG_PSH | TCP_FLAG_FIN) != 0 || flags & TCP_FLAG_ACK == 0 {
            return None;
        }
        Some(Segment {
            hdr_len: ETH + ihl + thl,
            ip_hdr: ihl,
            seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
            flags,
            payload,
        })
    }
}

/// Segments being merged: the first one's headers, every payload after them.
struct Run<'a> {
    first_frame: &'a [u8],
    head: Vec<u8>,
    parts: Vec<&'a [u8]>,
    /// Bytes of IP packet so far.
    ip_len: usize,
    first: Segment,
    last: Segment,
    segments: usize,
}

impl<'a> Run<'a> {
    fn start(f: &'a [u8], seg: Segment) -> Run<'a> {
        let head = f[..seg.hdr_len].to_vec();
        Run { first_frame: f, head, parts: vec![&f[seg.hdr_len..]], ip_len: f.len() - ETH, first: seg, last: seg, segments: 1 }
    }

    /// Appends `f` if Linux's segmentation of the result gives back exactly the
    /// segments merged: every header byte but the sequence number, IP id and
    /// checksums alike, every segment but the last one MSS long, in sequence, and
    /// PSH or FIN only on the last.
    fn append(&mut self, f: &'a [u8], seg: &Segment) -> bool {
        let (a, h) = (&self.first, seg.hdr_len);
        let mss = a.payload;
        let fits = self.ip_len + seg.payload <= IP_MAX;
        let in_order = seg.seq == self.last.seq.wrapping_add(self.last.payload as u32);
        if h != a.hdr_len || !fits || !in_order || self.last.payload != mss || seg.payload > mss {
            return false;
        }
        if self.last.flags & (TCP_FLAG_PSH | TCP_FLAG_FIN) != 0 {
            return false;
        }
        let ip = ETH;
        let tcp = ETH + a.ip_hdr;
        let same = |r: core::ops::Range<usize>| self.first_frame[r.clone()] == f[r];
        // Ethernet; IP version to TOS, flags to protocol, addresses; TCP ports,
        // ack, window, urgent pointer and options (not seq, flags or checksum).
        let alike = same(0..ip + 2)
            && same(ip + 6..ip + 10)
            && same(ip + 12..ip + 20)
            && same(tcp..tcp + 4)
            && same(tcp + 8..tcp + 13)
            && same(tcp + 14..tcp + 16)
            && same(tcp + 18..h);
        if !alike {
            return false;
        }
        self.parts.push(&f[h..]);
        self.ip_len += seg.payload;
        // The super-frame's flags are the last segment's: Linux gives PSH and FIN to
        // the last segment only.
        self.head[tcp + 13] = seg.flags;
        self.last = *seg;
        self.segments += 1;
        true
    }

    fn finish(self) -> Out<'a> {
        if self.segments == 1 {
            // Only delegated segments are merged: its checksum is for Linux to fill.
            let f = self.first_frame;
            return L4::of(f).map_or(Out::plain(f), |l4| Out::needs_csum(f, &l4));
        }
        let mss = self.first.payload;
        self.gso(mss)
    }

    /// The run as one frame for Linux to cut into segments of `mss` bytes of data.
    fn gso(mut self, mss: usize) -> Out<'a> {
        let a = self.first;
        let (ip, tcp) = (ETH, ETH + a.ip_hdr);
        let head = &mut self.head;
        head[ip + 2..ip + 4].copy_from_slice(&(self.ip_len as u16).to_be_bytes());
        head[ip + 10..ip + 12].fill(0);
        let ip_sum = !fold(sum16(&head[ip..tcp], 0));
        head[ip + 10..ip + 12].copy_from_slice(&ip_sum.to_be_bytes());
        // CHECKSUM_PARTIAL: the checksum field holds the pseudo-header's sum,
        // Linux adds each segment's bytes.
        let pseudo = pseudo_header(&head[ip..], ETH + self.ip_len - tcp);
        head[tcp + 16..tcp + 18].copy_from_slice(&fold(pseudo).to_be_bytes());
        let mut hdr = needs_csum_hdr(tcp, 16);
        hdr[1] = GSO_TCPV4;
        hdr[2..4].copy_from_slice(&(a.hdr_len as u16).to_le_bytes());
        hdr[4..6].copy_from_slice(&(mss as u16).to_le_bytes());
        Out { hdr, head: self.head, parts: self.parts, frames: self.segments }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame with `payload` bytes of data, full checksums.
    fn segment(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        let total = (20 + 32 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let ip_sum = !fold(sum16(&f[14..34], 0));
        f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        // ports 7 → 40000, seq, ack, data offset 8 words (12 bytes of options), flags, window
        let mut t = vec![0, 7, 0x9c, 0x40];
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        t.extend_from_slice(&[0x80, flags, 0x10, 0x00, 0, 0, 0, 0]);
        t.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 5]); // NOP NOP timestamps
        t.extend_from_slice(payload);
        let mut pseudo = sum16(&f[26..34], 0) + 6 + t.len() as u32;
        pseudo = sum16(&t, pseudo);
        let sum = !fold(pseudo);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&t);
        f
    }

    fn co(frames: &[Vec<u8>], wire_mtu: u32) -> Vec<Out<'_>> {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        coalesce(&refs, wire_mtu)
    }

    /// `f` with its TCP checksum left to the device, as the stack sends it.
    fn delegate(mut f: Vec<u8>) -> Vec<u8> {
        f[50..52].fill(0);
        f
    }

    /// What Linux does with a `NEEDS_CSUM` frame that is not cut: the sum from
    /// `csum_start`, inverted, at `csum_start + csum_offset`.
    fn complete(hdr: &[u8; HDR_LEN], mut f: Vec<u8>) -> Vec<u8> {
        assert_eq!(hdr[0], F_NEEDS_CSUM);
        let start = u16::from_le_bytes([hdr[6], hdr[7]]) as usize;
        let at = start + u16::from_le_bytes([hdr[8], hdr[9]]) as usize;
        let sum = !fold(sum16(&f[start..], 0));
        f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// What Linux does with a super-frame: cut it at `gso_size`, and each segment's
    /// checksum computed from the partial one.
    fn segment_like_linux(hdr: &[u8; HDR_LEN], f: &[u8]) -> Vec<Vec<u8>> {
        let hdr_len = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
        let mss = u16::from_le_bytes([hdr[4], hdr[5]]) as usize;
        let seq0 = u32::from_be_bytes(f[38..42].try_into().unwrap());
        let data = &f[hdr_len..];
        let n = data.len().div_ceil(mss);
        (0..n)
            .map(|i| {
                let chunk = &data[i * mss..((i + 1) * mss).min(data.len())];
                let last = i == n - 1;
                let flags = if last { f[47] } else { f[47] & !(TCP_FLAG_PSH | TCP_FLAG_FIN) };
                segment(seq0.wrapping_add((i * mss) as u32), flags, chunk)
            })
            .collect()
    }

    #[test]
    fn consecutive_full_segments_become_one_frame_linux_cuts_back() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let full: Vec<Vec<u8>> = data
            .chunks(1448)
            .enumerate()
            .map(|(i, c)| segment(1000 + (i * 1448) as u32, if i == 3 { 0x18 } else { 0x10 }, c))
            .collect();
        let segs: Vec<Vec<u8>> = full.iter().cloned().map(delegate).collect();
        let out = co(&segs, 1500);
        assert_eq!(out.len(), 1);
        let (hdr, f, n) = (&out[0].hdr, &out[0].bytes(), out[0].frames);
        assert_eq!(n, 4);
        assert_eq!(hdr[1], GSO_TCPV4);
        assert_eq!(u16::from_le_bytes([hdr[4], hdr[5]]), 1448);
        assert_eq!(f.len(), 14 + 20 + 32 + 5000);
        assert_eq!(segment_like_linux(hdr, f), full);
        // The partial checksum completes to the super-frame's true one.
        assert_eq!(complete(hdr, f.clone()), segment(1000, 0x18, &data));
    }

    #[test]
    fn what_cannot_merge_goes_alone_with_its_checksum_to_fill() {
        let a = segment(1, 0x10, &[1; 100]);
        let short_then_more = [segment(1, 0x10, &[1; 50]), segment(51, 0x10, &[2; 100])];
        let gap = [a.clone(), segment(500, 0x10, &[2; 100])];
        let psh_first = [segment(1, 0x18, &[1; 100]), segment(101, 0x10, &[2; 100])];
        let syn = [segment(1, 0x12, &[1; 100]), segment(101, 0x10, &[2; 100])];
        let mut other_ack = segment(101, 0x10, &[2; 100]);
        other_ack[42] ^= 1;
        L4::of(&other_ack).unwrap().fill(&mut other_ack);
        let pure_ack = [segment(1, 0x10, &[]), segment(1, 0x10, &[])];
        for full in [&short_then_more[..], &gap, &psh_first, &syn, &[a.clone(), other_ack], &pure_ack] {
            let frames: Vec<Vec<u8>> = full.iter().cloned().map(delegate).collect();
            let out = co(&frames, 1500);
            assert_eq!(out.len(), frames.len());
            for (o, orig) in out.iter().zip(full) {
                assert_eq!(o.frames, 1);
                assert_eq!(&complete(&o.hdr, o.bytes()), orig);
            }
        }
        let arp = [vec![0xff; 42]];
        let out = co(&arp, 1500);
        assert_eq!((out.len(), out[0].hdr, out[0].bytes()), (1, PLAIN, arp[0].clone()));
    }

    #[test]
    fn complete_checksums_go_as_they_are_and_are_never_merged() {
        let full: Vec<Vec<u8>> = (0..4u32).map(|i| segment(i * 1448, 0x10, &[i as u8; 1448])).collect();
        let out = co(&full, 1500);
        assert_eq!(out.len(), 4);
        for (o, f) in out.iter().zip(&full) {
            assert_eq!((o.hdr, o.bytes(), o.frames), (PLAIN, f.clone(), 1));
        }
    }

    #[test]
    fn a_complete_segment_to_cut_is_checked_first() {
        let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
        let good = segment(5, 0x18, &data);
        let mut bad = good.clone();
        bad[9000] ^= 4; // damaged after its checksum was made
        let frames = [good.clone(), bad];
        let out = co(&frames, 1500);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].hdr[1], GSO_TCPV4);
        let cut = segment_like_linux(&out[0].hdr, &out[0].bytes());
        assert_eq!(cut.iter().flat_map(|s| s[66..].to_vec()).collect::<Vec<u8>>(), data);
        assert!(out[1].is_dropped() && out[1].frames == 1);
    }

    #[test]
    fn a_run_stops_at_64_kib_and_another_starts() {
        let full: Vec<Vec<u8>> = (0..50u32).map(|i| segment(i * 1448, 0x10, &[i as u8; 1448])).collect();
        let segs: Vec<Vec<u8>> = full.iter().cloned().map(delegate).collect();
        let out = co(&segs, 1500);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|o| o.bytes().len() - 14 <= IP_MAX));
        assert_eq!(out.iter().map(|o| o.frames).sum::<usize>(), 50);
        let back: Vec<Vec<u8>> = out.iter().flat_map(|o| segment_like_linux(&o.hdr, &o.bytes())).collect();
        assert_eq!(back, full);
    }

    /// A SYN with options MSS, NOP, NOP, SACK-permitted.
    fn syn(mss: u16) -> Vec<u8> {
        let mut f = segment(77, 0x02, &[]);
        // Replace the timestamps option by MSS + SACK-permitted (same length: 12 bytes).
        f[54..66].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8, 1, 1, 4, 2, 1, 1, 1, 0]);
        f[50..52].fill(0);
        let pseudo = sum16(&f[26..34], 0) + 6 + (f.len() - 34) as u32;
        let sum = !fold(sum16(&f[34..], pseudo));
        f[50..52].copy_from_slice(&sum.to_be_bytes());
        f
    }

    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let pseudo = sum16(&f[26..34], 0) + 6 + (f.len() - 34) as u32;
        fold(sum16(&f[34..], pseudo)) == 0xffff
    }

    #[test]
    fn an_on_link_peers_mss_is_widened_and_others_are_not() {
        let mut f = syn(1460);
        widen_mss(&mut f, 1500, false);
        assert_eq!(u16::from_be_bytes([f[56], f[57]]), WIDE_MSS);
        assert!(tcp_checksum_ok(&f));
        // A partial checksum covers no option: it is left as it is.
        let mut p = syn(1460);
        L4::of(&p).unwrap().set_partial(&mut p);
        let sum = p[50..52].to_vec();
        widen_mss(&mut p, 1500, true);
        assert_eq!((u16::from_be_bytes([p[56], p[57]]), &p[50..52]), (WIDE_MSS, &sum[..]));
        // Behind a router (a smaller MSS), on another link, or not a SYN: untouched.
        for (mut g, mtu) in [(syn(1400), 1500), (syn(1460), 9000), (segment(1, 0x10, &[2, 4, 5, 180]), 1500)] {
            let before = g.clone();
            widen_mss(&mut g, mtu, false);
            assert_eq!(g, before);
        }
        // Truncated or garbage frames are left as they are, without a panic.
        for n in 0..f.len() {
            let mut g = f[..n].to_vec();
            widen_mss(&mut g, 1500, false);
        }
        let mut bad = syn(1460);
        bad[55] = 40; // an option length past the header
        let before = bad.clone();
        widen_mss(&mut bad, 1500, false);
        assert_eq!(bad, before);
    }

    #[test]
    fn a_segment_larger_than_the_wire_goes_to_linux_to_cut() {
        let data: Vec<u8> = (0..60000u32).map(|i| (i % 251) as u8).collect();
        let frames = [delegate(segment(5, 0x18, &data))];
        let out = co(&frames, 1500);
        assert_eq!(out.len(), 1);
        let (hdr, f, n) = (&out[0].hdr, &out[0].bytes(), out[0].frames);
        assert_eq!((n, hdr[1]), (1, GSO_TCPV4));
        // 1500 less 20 of IP and 32 of TCP with timestamps.
        assert_eq!(u16::from_le_bytes([hdr[4], hdr[5]]), 1448);
        let cut = segment_like_linux(hdr, f);
        assert!(cut.iter().all(|s| s.len() <= 14 + 1500));
        let expect: Vec<Vec<u8>> = data
            .chunks(1448)
            .enumerate()
            .map(|(i, c)| segment(5 + (i * 1448) as u32, if (i + 1) * 1448 >= data.len() { 0x18 } else { 0x10 }, c))
            .collect();
        assert_eq!(cut, expect);
    }

    /// Frames from the wire (or a filter) are untrusted: every prefix of real
    /// frames, and bytes of a cheap generator, under every header flag, never panic
    /// the receive or the send path.
    #[test]
    fn garbage_never_panics() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for f in [segment(1, 0x10, &[7; 300]), delegate(segment(1, 0x18, &[8; 2000])), syn(1460)] {
            frames.extend((0..f.len()).map(|n| f[..n].to_vec()));
        }
        for _ in 0..2000 {
            let mut f = segment(1, 0x10, &[1; 64]);
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % f.len();
                f[at] = next() as u8;
            }
            f.truncate(14 + (next() as usize) % (f.len() - 13));
            frames.push(f);
        }
        for f in &frames {
            for flags in [0, F_NEEDS_CSUM, F_DATA_VALID] {
                let mut hdr = PLAIN;
                hdr[0] = flags;
                hdr[6..8].copy_from_slice(&(next() as u16 % 80).to_le_bytes());
                hdr[8..10].copy_from_slice(&(next() as u16 % 40).to_le_bytes());
                let mut g = f.clone();
                let partial = check_received(&hdr, &mut g) == Received::Partial;
                widen_mss(&mut g, 1500, partial);
            }
        }
        let out = co(&frames, 1500);
        assert_eq!(out.iter().map(|o| o.frames).sum::<usize>(), frames.len());
    }

    #[test]
    fn received_checksums_pass_up_partial_or_checked() {
        let full = segment(9, 0x18, b"hello, partial checksum");
        let mut partial = full.clone();
        L4::of(&partial).unwrap().set_partial(&mut partial);
        let mut hdr = PLAIN;
        hdr[0] = F_NEEDS_CSUM;
        hdr[6..8].copy_from_slice(&34u16.to_le_bytes());
        hdr[8..10].copy_from_slice(&16u16.to_le_bytes());
        // Linux's own, checksum to do: up as it is, for a stack that skips it.
        let mut f = partial.clone();
        assert_eq!(check_received(&hdr, &mut f), Received::Partial);
        assert_eq!(f, partial);
        // Nothing vouches for it: checked here.
        let mut bad = full.clone();
        bad[70] ^= 1;
        assert_eq!(check_received(&PLAIN, &mut full.clone()), Received::Valid);
        assert_eq!(check_received(&PLAIN, &mut bad.clone()), Received::Bad);
        let mut valid = PLAIN;
        valid[0] = F_DATA_VALID;
        assert_eq!(check_received(&valid, &mut bad.clone()), Received::Valid);
        // A header pointing outside the frame is a bad descriptor.
        let mut far = hdr;
        far[6..8].copy_from_slice(&60000u16.to_le_bytes());
        assert_eq!(check_received(&far, &mut partial.clone()), Received::Bad);
        // NEEDS_CSUM somewhere else than a TCP or UDP checksum: completed here.
        let mut odd = hdr;
        odd[8..10].copy_from_slice(&4u16.to_le_bytes());
        let mut g = partial.clone();
        assert_eq!(check_received(&odd, &mut g), Received::Valid);
        assert_ne!(g, partial);
    }
}
