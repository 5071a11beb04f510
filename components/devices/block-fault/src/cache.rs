//! The disk's volatile write cache, kept by the filter when a power cut is configured.
//!
//! A real disk acknowledges a write once it is in its cache; only `flush` makes it
//! durable, and a power failure keeps any subset of the unflushed writes, applied in
//! any order (wit/power.wit). To cut the power faithfully the filter must therefore own
//! the unflushed writes: it holds them here instead of passing them down, overlays them
//! on reads (a read sees the writes before it), writes them down in order at `flush`,
//! and at the cut decides which survive. Apart from the bindings (the device below is a
//! [`Below`]) so that all of it is tested on the host.
//!
//! The filter sits on one device: every handle it sees is a handle to that device, so
//! the cache is one for all of them (a write through one handle is read through
//! another).

use alloc::vec::Vec;

use weft_guest::{Rng, rng};

/// Salts for the cut's decisions (apart from `faults`' per-operation salts).
const SALT_WRITE: u64 = 0x5752; // "WR": does write i survive
const SALT_SECTOR: u64 = 0x5345; // "SE": does sector j of write i survive (torn writes)
const SALT_ORDER: u64 = 0x4f52; // "OR": the order survivors reach the device

/// The device below the filter: just what the cache needs of it.
pub trait Below {
    type Error;
    fn write(&mut self, dev: u32, start: u64, data: &[u8]) -> Result<(), Self::Error>;
    fn flush(&mut self, dev: u32) -> Result<(), Self::Error>;
}

/// One acknowledged, unflushed write.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    dev: u32,
    start: u64,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Cache {
    /// The writes since the last successful flush, oldest first.
    held: Vec<Held>,
    /// Bytes per sector of the device (all held writes are whole sectors of it).
    sector_size: usize,
}

/// A piece of the cut: sectors `[first, first + count)` of held write `write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub write: usize,
    pub first: u64,
    pub count: u64,
}

/// What a cut did, for its log event. Sectors count every sector of every held write
/// (a sector written twice counts twice).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Held writes, and their sectors.
    pub pending: usize,
    pub pending_sectors: u64,
    /// Writes that reached the device whole, in part (torn), or not at all.
    pub survived: usize,
    pub torn: usize,
    pub lost: usize,
    pub survived_sectors: u64,
    pub lost_sectors: u64,
    /// Writes (or pieces) the device below refused while the cut applied them.
    pub failed: usize,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Hold a write the device would accept (whole sectors of `sector_size`, in range).
    pub fn write(&mut self, dev: u32, start: u64, data: Vec<u8>, sector_size: u32) {
        self.sector_size = sector_size as usize;
        self.held.push(Held { dev, start, data });
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Lay the held writes over `data`, just read from the device at sector `start`
    /// (read-your-writes): oldest first, so a sector shows its latest write.
    pub fn overlay(&self, start: u64, data: &mut [u8]) {
        let ss = self.sector_size as u64;
        if ss == 0 {
            return;
        }
        let end = start + data.len() as u64 / ss;
        for h in &self.held {
            let (hs, he) = (h.start, h.start + h.data.len() as u64 / ss);
            let (from, to) = (hs.max(start), he.min(end));
            if from < to {
                let src = &h.data[((from - hs) * ss) as usize..((to - hs) * ss) as usize];
                data[((from - start) * ss) as usize..((to - start) * ss) as usize]
                    .copy_from_slice(src);
            }
        }
    }

    /// `flush`: write the held writes down in order, then flush the device through
    /// `dev`. The writes that reached the device leave the cache even if a later step
    /// fails (they are the device's now); the first error is returned.
    pub fn flush<B: Below>(&mut self, below: &mut B, dev: u32) -> Result<(), B::Error> {
        let mut done = 0;
        let mut result = Ok(());
        for h in &self.held {
            if let Err(e) = below.write(h.dev, h.start, &h.data) {
                result = Err(e);
                break;
            }
            done += 1;
        }
        self.held.drain(..done);
        result?;
        below.flush(dev)
    }

    /// Which held writes (or, with `torn`, which sectors of a multi-sector write) survive
    /// a cut at operation `n`, in the order they reach the device. Write `i` survives
    /// with probability 1/2, decided by `(seed, n, i)`; with `torn`, each sector `j` of a
    /// surviving multi-sector write then survives with probability 1/2, by
    /// `(seed, n, i, j)`. The order is a shuffle seeded by `(seed, n)`: overlapping
    /// writes may land in any order, as a volatile cache may write them back.
    pub fn plan_cut(&self, seed: u64, n: u64, torn: bool) -> (Vec<Piece>, CutReport) {
        let ss = self.sector_size.max(1) as u64;
        let mut pieces = Vec::new();
        let mut r = CutReport {
            pending: self.held.len(),
            ..CutReport::default()
        };
        let cut = rng::hash(seed, n, 0);
        for (i, h) in self.held.iter().enumerate() {
            let count = h.data.len() as u64 / ss;
            r.pending_sectors += count;
            if !rng::chance(cut, i as u64, SALT_WRITE, 0.5) {
                r.lost += 1;
                r.lost_sectors += count;
                continue;
            }
            if !torn || count == 1 {
                pieces.push(Piece {
                    write: i,
                    first: 0,
                    count,
                });
                r.survived += 1;
                r.survived_sectors += count;
                continue;
            }
            let write_seed = rng::hash(cut, i as u64, SALT_SECTOR);
            let before = pieces.len() as u64;
            for j in 0..count {
                if rng::chance(write_seed, j, SALT_SECTOR, 0.5) {
                    pieces.push(Piece {
                        write: i,
                        first: j,
                        count: 1,
                    });
                }
            }
            let kept = pieces.len() as u64 - before;
            r.survived_sectors += kept;
            r.lost_sectors += count - kept;
            match kept {
                0 => r.lost += 1,
                k if k == count => r.survived += 1,
                _ => r.torn += 1,
            }
        }
        // Fisher–Yates, from a stream seeded by the cut alone.
        let mut order = Rng::new(rng::hash(cut, 0, SALT_ORDER));
        for k in (1..pieces.len()).rev() {
            let m = order.below(k as u64 + 1) as usize;
            pieces.swap(k, m);
        }
        (pieces, r)
    }

    /// The cut: apply the surviving pieces ([`Cache::plan_cut`]) to the device below,
    /// flush it (through `dev`), and forget the rest. Errors from below are counted, not
    /// returned: the power is failing, nobody is waiting for them.
    pub fn cut<B: Below>(
        &mut self,
        below: &mut B,
        dev: u32,
        seed: u64,
        n: u64,
        torn: bool,
    ) -> CutReport {
        let (pieces, mut r) = self.plan_cut(seed, n, torn);
        let ss = self.sector_size as u64;
        for p in &pieces {
            let h = &self.held[p.write];
            let bytes = &h.data[(p.first * ss) as usize..((p.first + p.count) * ss) as usize];
            if below.write(h.dev, h.start + p.first, bytes).is_err() {
                r.failed += 1;
            }
        }
        if below.flush(dev).is_err() {
            r.failed += 1;
        }
        self.held.clear();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SS: usize = 4;

    /// A small disk of 4-byte sectors with a durable image (what survives a cut) and a
    /// record of what reached it.
    struct Disk {
        sectors: Vec<[u8; SS]>,
        writes: Vec<(u64, Vec<u8>)>,
        flushes: usize,
        fail_writes: bool,
    }

    impl Disk {
        fn new(n: usize) -> Disk {
            Disk {
                sectors: vec![[0; SS]; n],
                writes: Vec::new(),
                flushes: 0,
                fail_writes: false,
            }
        }

        fn read(&self, start: u64, count: u64) -> Vec<u8> {
            (start..start + count)
                .flat_map(|s| self.sectors[s as usize])
                .collect()
        }
    }

    impl Below for Disk {
        type Error = &'static str;
        fn write(&mut self, _dev: u32, start: u64, data: &[u8]) -> Result<(), &'static str> {
            if self.fail_writes {
                return Err("io");
            }
            for (i, s) in data.chunks(SS).enumerate() {
                self.sectors[start as usize + i].copy_from_slice(s);
            }
            self.writes.push((start, data.to_vec()));
            Ok(())
        }
        fn flush(&mut self, _dev: u32) -> Result<(), &'static str> {
            self.flushes += 1;
            Ok(())
        }
    }

    /// `count` sectors, every byte `tag`.
    fn data(tag: u8, count: usize) -> Vec<u8> {
        vec![tag; count * SS]
    }

    /// A read through the filter: the device, overlaid with the cache.
    fn read(c: &Cache, d: &Disk, start: u64, count: u64) -> Vec<u8> {
        let mut v = d.read(start, count);
        c.overlay(start, &mut v);
        v
    }

    #[test]
    fn reads_see_held_writes_latest_first_and_flush_writes_them_in_order() {
        let mut disk = Disk::new(16);
        let mut c = Cache::new();
        c.write(0, 2, data(1, 3), SS as u32); // sectors 2..5
        c.write(0, 4, data(2, 2), SS as u32); // sectors 4..6, over 4
        assert!(disk.writes.is_empty(), "held, not written");
        let mut want = data(0, 8);
        want[2 * SS..4 * SS].fill(1);
        want[4 * SS..6 * SS].fill(2);
        assert_eq!(read(&c, &disk, 0, 8), want);
        // A read inside one write, and one that misses every write.
        assert_eq!(read(&c, &disk, 3, 1), data(1, 1));
        assert_eq!(read(&c, &disk, 10, 2), data(0, 2));
        c.flush(&mut disk, 0).unwrap();
        assert!(c.is_empty());
        assert_eq!(
            disk.writes,
            [(2, data(1, 3)), (4, data(2, 2))],
            "in the order written"
        );
        assert_eq!(disk.flushes, 1);
        assert_eq!(disk.read(0, 8), want);
    }

    #[test]
    fn a_failed_flush_keeps_what_did_not_reach_the_device() {
        let mut disk = Disk::new(8);
        let mut c = Cache::new();
        c.write(0, 0, data(1, 1), SS as u32);
        disk.fail_writes = true;
        assert_eq!(c.flush(&mut disk, 0), Err("io"));
        assert_eq!((c.len(), disk.flushes), (1, 0));
        disk.fail_writes = false;
        c.flush(&mut disk, 0).unwrap();
        assert!(c.is_empty());
    }

    /// Sector `s` of a disk after writes `tag i` at sector `i` (each its own sector):
    /// which tags are on it.
    fn survivors(disk: &Disk, n: usize) -> Vec<u8> {
        (0..n)
            .map(|s| disk.sectors[s][0])
            .filter(|&t| t != 0)
            .collect()
    }

    #[test]
    fn a_cut_keeps_a_seeded_subset_of_the_unflushed_writes_and_all_flushed_ones() {
        let mut seen_sizes = Vec::new();
        for seed in 1..40 {
            let mut disk = Disk::new(64);
            let mut c = Cache::new();
            // Flushed: sectors 0..8 with tags 1..=8.
            for i in 0..8 {
                c.write(0, i, data(i as u8 + 1, 1), SS as u32);
            }
            c.flush(&mut disk, 0).unwrap();
            // Unflushed: sectors 8..40 with tags 9..=40.
            for i in 8..40 {
                c.write(0, i, data(i as u8 + 1, 1), SS as u32);
            }
            // Read-your-writes before the cut.
            assert_eq!(read(&c, &disk, 8, 1), data(9, 1));
            let (pieces, report) = c.plan_cut(seed, 100, false);
            let r = c.cut(&mut disk, 0, seed, 100, false);
            assert_eq!(r, report);
            assert!(c.is_empty());
            assert_eq!(disk.flushes, 2, "the survivors are flushed");
            // The flushed eight always survive; of the rest, exactly the planned ones.
            let on_disk = survivors(&disk, 64);
            assert_eq!(on_disk[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
            let mut planned: Vec<u8> = pieces.iter().map(|p| p.write as u8 + 9).collect();
            planned.sort();
            assert_eq!(on_disk[8..], planned[..]);
            assert_eq!(r.pending, 32);
            assert_eq!(r.survived + r.lost, 32);
            assert_eq!(r.survived, planned.len());
            assert_eq!((r.torn, r.failed), (0, 0));
            seen_sizes.push(r.survived);
            // The same seed and cut, the same outcome.
            let mut again = Cache::new();
            for i in 8..40 {
                again.write(0, i, data(i as u8 + 1, 1), SS as u32);
            }
            assert_eq!(again.plan_cut(seed, 100, false).0, pieces);
        }
        // Over the seeds: everything from few to many survivors, never all-or-nothing.
        assert!(
            seen_sizes.iter().all(|&s| s > 0 && s < 32),
            "{seen_sizes:?}"
        );
        assert!(seen_sizes.iter().min() < seen_sizes.iter().max());
    }

    #[test]
    fn survivors_reach_the_device_in_any_order() {
        // Two writes to the same sector: over seeds, both final states occur (when both
        // survive), so the order is not always the order written.
        let mut finals = Vec::new();
        for seed in 0..200 {
            let mut c = Cache::new();
            c.write(0, 0, data(1, 1), SS as u32);
            c.write(0, 0, data(2, 1), SS as u32);
            let (pieces, r) = c.plan_cut(seed, 7, false);
            if r.survived == 2 {
                let mut disk = Disk::new(1);
                c.cut(&mut disk, 0, seed, 7, false);
                finals.push(disk.sectors[0][0]);
                assert_eq!(pieces.len(), 2);
            }
        }
        assert!(finals.contains(&1) && finals.contains(&2), "{finals:?}");
    }

    #[test]
    fn one_writes_fate_does_not_depend_on_the_others() {
        // Write i's survival is a function of (seed, n, i): holding more writes after it
        // does not change it.
        let fates = |writes: u64| {
            let mut c = Cache::new();
            for i in 0..writes {
                c.write(0, i, data(1, 1), SS as u32);
            }
            let (pieces, _) = c.plan_cut(5, 9, false);
            let mut w: Vec<usize> = pieces.iter().map(|p| p.write).collect();
            w.sort();
            w
        };
        let short = fates(10);
        let long = fates(30);
        assert_eq!(short[..], long[..short.len()]);
        assert!(long[short.len()..].iter().all(|&w| w >= 10));
    }

    #[test]
    fn torn_writes_survive_sector_by_sector() {
        let (mut torn, mut whole, mut lost) = (0, 0, 0);
        for seed in 0..50 {
            let mut disk = Disk::new(64);
            let mut c = Cache::new();
            c.write(0, 0, data(7, 16), SS as u32);
            c.write(0, 32, data(9, 1), SS as u32);
            let r = c.cut(&mut disk, 0, seed, 3, true);
            assert_eq!((r.pending, r.pending_sectors), (2, 17));
            assert_eq!(r.survived_sectors + r.lost_sectors, 17);
            assert_eq!(r.survived + r.torn + r.lost, 2);
            // Every sector of the big write is all old or all new: sector granularity.
            let kept = (0..16)
                .filter(|&s| match disk.sectors[s][0] {
                    7 => true,
                    0 => false,
                    x => panic!("{x}"),
                })
                .count() as u64;
            assert!(disk.sectors.iter().all(|s| s.iter().all(|&b| b == s[0])));
            let one = u64::from(disk.sectors[32][0] == 9);
            assert_eq!(kept + one, r.survived_sectors);
            match kept {
                0 => lost += 1,
                16 => whole += 1,
                _ => torn += 1,
            }
        }
        assert!(
            torn > 10 && lost > 10,
            "torn {torn} whole {whole} lost {lost}"
        );
        // Without torn writes, a write is all or nothing.
        for seed in 0..50 {
            let mut disk = Disk::new(64);
            let mut c = Cache::new();
            c.write(0, 0, data(7, 16), SS as u32);
            let r = c.cut(&mut disk, 0, seed, 3, false);
            let kept = (0..16).filter(|&s| disk.sectors[s][0] == 7).count();
            assert!(kept == 0 || kept == 16);
            assert_eq!(r.torn, 0);
        }
    }

    #[test]
    fn a_cut_with_nothing_held_reports_nothing_and_flushes() {
        let mut disk = Disk::new(4);
        let mut c = Cache::new();
        let r = c.cut(&mut disk, 0, 1, 1, true);
        assert_eq!(r, CutReport::default());
        assert_eq!((disk.writes.len(), disk.flushes), (0, 1));
    }
}
