//! What the trace knows a disk holds, so a block read stores only the
//! sectors a replay could not rebuild itself.
//!
//! Recorder and replayer each keep a [`Shadow`] per block device and update
//! it the same way: every successful write and every read teaches it the
//! sectors' contents. A read is then stored as runs of three kinds — sectors
//! the shadow already holds with those exact bytes, sectors of zeros, and
//! sectors whose bytes follow — so re-reading a record just written, or a
//! fresh zeroed image, costs a few bytes instead of the data.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::wire::{Malformed, Reader, Res, Writer, digest64};
use crate::devices::MAX_TRANSFER;

/// Sectors per page of the shadow.
const PAGE: u64 = 64;

const KNOWN: u64 = 0;
const ZERO: u64 = 1;
const DATA: u64 = 2;

pub struct Shadow {
    sector: usize,
    /// Per page of [`PAGE`] sectors: which are known, and what they hold.
    pages: BTreeMap<u64, Known>,
    /// The recorder's kind: it only compares, so a 64-bit digest per sector
    /// does (64 times less memory than the bytes the replayer must keep).
    digests: bool,
    /// One sector of zeros, for reads of sectors known to be zeros.
    zeros: Box<[u8]>,
}

/// One page: `known` sectors, of which `zero` hold zeros (kept as that bit
/// alone: a read of a fresh disk costs a few bits of memory, however big);
/// the others' bytes or digests are in `data`, allocated on the first.
#[derive(Default)]
struct Known {
    known: u64,
    zero: u64,
    data: Option<Page>,
}

enum Page {
    Bytes(Box<[u8]>),
    Digests(Box<[u64]>),
}

impl Shadow {
    /// A replayer's shadow: it rebuilds reads, so it keeps the bytes.
    pub fn new(sector_size: u32) -> Shadow {
        let sector = sector_size.max(1) as usize;
        Shadow { sector, pages: BTreeMap::new(), digests: false, zeros: vec![0u8; sector].into_boxed_slice() }
    }

    /// A recorder's shadow: it only asks whether a sector read is the one
    /// it knows, so it keeps a digest per sector.
    pub fn digests(sector_size: u32) -> Shadow {
        Shadow { digests: true, ..Shadow::new(sector_size) }
    }

    fn get(&self, s: u64) -> Option<&[u8]> {
        let k = self.pages.get(&(s / PAGE))?;
        let i = (s % PAGE) as usize;
        if k.known >> i & 1 == 0 {
            return None;
        }
        if k.zero >> i & 1 == 1 {
            return Some(&self.zeros);
        }
        match &k.data {
            Some(Page::Bytes(data)) => Some(&data[i * self.sector..(i + 1) * self.sector]),
            _ => None,
        }
    }

    /// Whether sector `s` is known to hold `bytes`.
    fn holds(&self, s: u64, bytes: &[u8]) -> bool {
        let Some(k) = self.pages.get(&(s / PAGE)) else { return false };
        let i = (s % PAGE) as usize;
        if k.known >> i & 1 == 0 {
            return false;
        }
        if k.zero >> i & 1 == 1 {
            return bytes.iter().all(|&b| b == 0);
        }
        match &k.data {
            Some(Page::Bytes(data)) => &data[i * self.sector..(i + 1) * self.sector] == bytes,
            Some(Page::Digests(d)) => d[i] == digest64(&[bytes]),
            None => false,
        }
    }

    /// The page of sector `s` with room for its data.
    fn page(&mut self, s: u64) -> (&mut Known, usize) {
        let (n, digests) = (self.sector, self.digests);
        let k = self.pages.entry(s / PAGE).or_default();
        k.data.get_or_insert_with(|| {
            if digests {
                Page::Digests(vec![0u64; PAGE as usize].into_boxed_slice())
            } else {
                Page::Bytes(vec![0u8; PAGE as usize * n].into_boxed_slice())
            }
        });
        (k, (s % PAGE) as usize)
    }

    fn set(&mut self, s: u64, bytes: &[u8]) {
        if bytes.iter().all(|&b| b == 0) {
            let k = self.pages.entry(s / PAGE).or_default();
            k.known |= 1 << (s % PAGE);
            k.zero |= 1 << (s % PAGE);
            return;
        }
        let n = self.sector;
        let (k, i) = self.page(s);
        k.known |= 1 << i;
        k.zero &= !(1 << i);
        match &mut k.data {
            Some(Page::Bytes(data)) => data[i * n..(i + 1) * n].copy_from_slice(bytes),
            Some(Page::Digests(d)) => d[i] = digest64(&[bytes]),
            None => unreachable!("allocated by page()"),
        }
    }

    /// Sectors `start..start+count` are no longer known (a failed write left
    /// them undefined).
    /// Visits only the pages the shadow holds: a trace's counts come from
    /// outside, and a forged one of 2³² sectors must cost no more than a
    /// real one.
    pub fn forget(&mut self, start: u64, count: u64) {
        let Some(last) = start.checked_add(count).and_then(|end| end.checked_sub(1)).filter(|&l| l >= start) else {
            return;
        };
        for (&p, k) in self.pages.range_mut(start / PAGE..=last / PAGE) {
            let lo = if p == start / PAGE { start % PAGE } else { 0 };
            let hi = if p == last / PAGE { last % PAGE } else { PAGE - 1 };
            let bits = hi - lo + 1;
            let mask = if bits == PAGE { u64::MAX } else { ((1u64 << bits) - 1) << lo };
            k.known &= !mask;
            k.zero &= !mask;
        }
    }

    /// A failed write of `len` bytes at `start`.
    pub fn forget_bytes(&mut self, start: u64, len: usize) {
        self.forget(start, len.div_ceil(self.sector) as u64);
    }

    /// A successful write of whole sectors at `start`.
    pub fn write(&mut self, start: u64, data: &[u8]) {
        for (i, chunk) in data.chunks_exact(self.sector).enumerate() {
            self.set(start + i as u64, chunk);
        }
    }

    /// [`Shadow::write`], given `digest64` of the whole of `data`: a
    /// one-sector write in a digest shadow needs no second pass.
    pub fn write_digested(&mut self, start: u64, data: &[u8], whole: u64) {
        if !self.digests || data.len() != self.sector {
            return self.write(start, data);
        }
        let (k, i) = self.page(start);
        k.known |= 1 << i;
        k.zero &= !(1 << i);
        if let Some(Page::Digests(d)) = &mut k.data {
            d[i] = whole;
        }
    }

    /// Stores a read's `data` (whole sectors from `start`) as runs.
    pub fn encode_read(&mut self, start: u64, data: &[u8], w: &mut Writer) {
        let mut run: Option<(u64, u64, usize)> = None; // (kind, length, first chunk)
        let chunks: Vec<&[u8]> = data.chunks_exact(self.sector).collect();
        let flush = |w: &mut Writer, run: (u64, u64, usize), chunks: &[&[u8]]| {
            w.var(run.1 << 2 | run.0);
            if run.0 == DATA {
                for c in &chunks[run.2..run.2 + run.1 as usize] {
                    w.out.extend_from_slice(c);
                }
            }
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let s = start + i as u64;
            let kind = if self.holds(s, chunk) {
                KNOWN
            } else if chunk.iter().all(|&b| b == 0) {
                ZERO
            } else {
                DATA
            };
            if kind != KNOWN {
                self.set(s, chunk);
            }
            run = match run {
                Some((k, n, first)) if k == kind => Some((k, n + 1, first)),
                Some(prev) => {
                    flush(w, prev, &chunks);
                    Some((kind, 1, i))
                }
                None => Some((kind, 1, i)),
            };
        }
        if let Some(r) = run {
            flush(w, r, &chunks);
        }
    }

    /// Rebuilds a read of `count` sectors at `start` from its runs.
    /// `lenient`: a sector the shadow lacks reads as zeros instead of
    /// failing (checking a trace without the data its writes carried).
    pub fn decode_read(&mut self, start: u64, count: u32, r: &mut Reader, lenient: bool) -> Res<Vec<u8>> {
        let n = self.sector;
        // A trace comes from outside: its counts are checked before they
        // size anything (a recorded read passed `check_range`).
        let bytes = u64::from(count) * n as u64;
        let Some(end) = start.checked_add(u64::from(count)).filter(|_| bytes <= MAX_TRANSFER as u64) else {
            return Err(Malformed("a block read larger than one call can move"));
        };
        let mut out = Vec::with_capacity(bytes as usize);
        let mut s = start;
        while s < end {
            let head = r.var()?;
            let (kind, len) = (head & 3, head >> 2);
            if len == 0 || len > end - s {
                return Err(Malformed("a block read's runs do not add up to its count"));
            }
            for _ in 0..len {
                match kind {
                    KNOWN => {
                        match self.get(s) {
                            Some(bytes) => out.extend_from_slice(bytes),
                            None if lenient => out.resize(out.len() + n, 0),
                            None => return Err(Malformed("a block read refers to sectors the trace never held")),
                        }
                    }
                    ZERO => {
                        let k = self.pages.entry(s / PAGE).or_default();
                        k.known |= 1 << (s % PAGE);
                        k.zero |= 1 << (s % PAGE);
                        out.resize(out.len() + n, 0);
                    }
                    DATA => {
                        let bytes = r.take(n)?;
                        self.set(s, bytes);
                        out.extend_from_slice(bytes);
                    }
                    _ => return Err(Malformed("a block read's run kind")),
                }
                s += 1;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_store_only_what_a_replay_cannot_rebuild() {
        let (mut rec, mut rep) = (Shadow::digests(512), Shadow::new(512));
        let mut disk = vec![0u8; 512 * 8];
        disk[512 * 3..512 * 4].fill(7);
        let snapshot = disk.clone();
        let mut w = Writer::default();
        rec.encode_read(0, &disk, &mut w);
        // zeros, one data sector, zeros: 3 run heads + 512 bytes.
        assert_eq!(w.out.len(), 3 + 512);
        let first = w.out.len();
        // The same read again: one run of known sectors.
        rec.encode_read(0, &disk, &mut w);
        assert_eq!(w.out.len() - first, 1);
        // A write, then a read of it: known.
        let data = vec![9u8; 1024];
        rec.write(5, &data);
        disk[512 * 5..512 * 7].copy_from_slice(&data);
        let before = w.out.len();
        rec.encode_read(4, &disk[512 * 4..512 * 8], &mut w);
        assert_eq!(w.out.len() - before, 1, "all four sectors known");

        let mut r = Reader::new(&w.out);
        assert_eq!(rep.decode_read(0, 8, &mut r, false).unwrap(), snapshot);
        assert_eq!(rep.decode_read(0, 8, &mut r, false).unwrap(), snapshot);
        // The replaying app makes the same write, teaching its shadow.
        rep.write(5, &data);
        assert_eq!(rep.decode_read(4, 4, &mut r, false).unwrap(), &disk[512 * 4..]);
        assert!(r.at_end());
    }

    #[test]
    fn a_write_given_its_digest_is_known_to_a_later_read() {
        let mut rec = Shadow::digests(512);
        let data = [5u8; 512];
        rec.write_digested(9, &data, crate::tape::wire::digest64(&[&data]));
        let mut w = Writer::default();
        rec.encode_read(9, &data, &mut w);
        assert_eq!(w.out, [0x04], "one known sector");
        // A wrong digest makes the read store its bytes.
        rec.write_digested(10, &data, 1);
        let mut w = Writer::default();
        rec.encode_read(10, &data, &mut w);
        assert_eq!(w.out.len(), 1 + 512);
    }

    #[test]
    fn forget_clears_exactly_its_range_across_pages_and_a_huge_one_is_cheap() {
        let mut rec = Shadow::digests(512);
        for s in 60..140 {
            rec.write(s, &[s as u8; 512]);
        }
        rec.forget(62, 70);
        let known = |rec: &mut Shadow, s: u64| {
            let mut w = Writer::default();
            rec.encode_read(s, &[s as u8; 512], &mut w);
            w.out.len() == 1
        };
        let expect = |s: u64| !(62..132).contains(&s);
        for s in 60..140 {
            assert_eq!(known(&mut rec, s), expect(s), "sector {s}");
        }
        // A forged failed write of 2^32 sectors (a trace's count is
        // untrusted) visits only the pages held.
        rec.forget(1, u64::from(u32::MAX));
        rec.forget(u64::MAX - 3, 10);
        assert!((60..140).all(|s| !known(&mut rec, s)));
    }

    #[test]
    fn forgotten_sectors_are_stored_again_and_bad_runs_are_errors() {
        let mut rec = Shadow::digests(512);
        rec.write(0, &[1u8; 512]);
        rec.forget(0, 1);
        let mut w = Writer::default();
        rec.encode_read(0, &[1u8; 512], &mut w);
        assert_eq!(w.out.len(), 1 + 512);
        let mut fresh = Shadow::new(512);
        let mut r = Reader::new(&[0x04]); // one known sector the shadow lacks
        assert!(fresh.decode_read(0, 1, &mut r, false).is_err());
        let mut r = Reader::new(&[0x09]); // a zero run of 2 for a read of 1
        assert!(fresh.decode_read(0, 1, &mut r, false).is_err());
    }
}
