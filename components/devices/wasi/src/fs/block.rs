//! A block device as bytes: [`Disk`], a cache of 64 KiB chunks, so reading an archive's
//! small headers (tar trees, a [`Source`]) costs one `block.read` per 64 KiB rather than
//! per header; and for FAT trees a write-back cache, sent to the device as runs of whole
//! sectors when the file system above asks ([`Disk::write_back`], [`Disk::flush`]) or a
//! dirty chunk is evicted.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::tar::Source;

/// Bytes per `block.read` (and per cached chunk), unless a sector is bigger.
pub const CHUNK: u64 = 64 * 1024;

/// Whole-sector reads from a device.
pub trait Sectors {
    /// `count` sectors from `start`: exactly `count * sector-size` bytes on success.
    fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String>;
    /// Write whole sectors from `start`.
    fn write(&self, start: u64, data: &[u8]) -> Result<(), String> {
        let _ = (start, data);
        Err(String::from("the device is read-only here"))
    }
    /// The device's durability point.
    fn flush(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Check a device's geometry: sectors are a power of two of at least 512 bytes, and the
/// whole device fits in a `u64` of bytes.
fn check_geometry(sector: u32, count: u64) -> Result<u64, String> {
    if sector < 512 || !sector.is_power_of_two() {
        return Err(format!(
            "sector size {sector} is not a power of two of at least 512"
        ));
    }
    let sector = u64::from(sector);
    if sector.checked_mul(count).is_none() {
        return Err(format!(
            "{count} sectors of {sector} bytes do not fit in 64 bits"
        ));
    }
    Ok(sector)
}

/// Chunks a [`Disk`] keeps (4 MiB with 64 KiB chunks).
pub const DISK_CHUNKS: usize = 64;

/// The most [`Disk::read_past_cache`] asks of the device at once: a `block.read`'s limit
/// (docs/devices.md).
pub const READ_PAST: u64 = 1 << 20;

/// A write of at least this many whole sectors into a chunk the cache does not hold
/// goes straight to the device ([`Disk::write_at`]): a FAT cluster of 32 KiB or more.
pub const WRITE_THROUGH: u64 = 32 * 1024;

/// One cached chunk.
struct Chunk {
    /// Last use (for LRU eviction).
    used: u64,
    data: Vec<u8>,
    /// Sector `i` of the chunk was written and not yet sent to the device (bit `i`).
    dirty: u128,
    /// Sector `i` holds the device's bytes or newer ones (a sector written whole is
    /// never read first).
    valid: u128,
}

/// Bits `from..to` of a chunk's sector mask.
fn sectors(from: u64, to: u64) -> u128 {
    let upto = |n: u64| if n >= 128 { u128::MAX } else { (1u128 << n) - 1 };
    upto(to) & !upto(from)
}

/// A writable device of `count` sectors of `sector` bytes, through a write-back cache
/// of up to [`DISK_CHUNKS`] chunks: a write changes the cache, and reaches the device
/// when [`Disk::write_back`] sends every changed sector (as one `block.write` per run
/// of them), or when its chunk is evicted. [`Disk::flush`] writes back, then flushes
/// the device. The file system above decides what may be written back early
/// (fs/fat.rs: nothing whose order matters).
pub struct Disk<S> {
    dev: S,
    sector: u64,
    count: u64,
    per_chunk: u64,
    /// chunk number -> chunk.
    cache: RefCell<BTreeMap<u64, Chunk>>,
    tick: Cell<u64>,
    /// A `block.write` went down since the last `flush`.
    unflushed: Cell<bool>,
}

impl<S: Sectors> Disk<S> {
    pub fn new(dev: S, sector: u32, count: u64) -> Result<Disk<S>, String> {
        let sector = check_geometry(sector, count)?;
        Ok(Disk {
            dev,
            sector,
            count,
            // At most 128 sectors a chunk: its dirty bits fit in a u128.
            per_chunk: (CHUNK / sector).max(1),
            cache: RefCell::new(BTreeMap::new()),
            tick: Cell::new(0),
            unflushed: Cell::new(false),
        })
    }

    pub fn size(&self) -> u64 {
        self.sector * self.count
    }

    pub fn sector_size(&self) -> u64 {
        self.sector
    }

    fn chunk_bytes(&self) -> u64 {
        self.per_chunk * self.sector
    }

    /// Send chunk `c`'s dirty sectors to the device, one `block.write` per run.
    fn write_chunk(&self, c: u64, chunk: &mut Chunk) -> Result<(), String> {
        let mut i = 0u64;
        while chunk.dirty != 0 {
            if chunk.dirty & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < self.per_chunk && chunk.dirty & (1 << j) != 0 {
                j += 1;
            }
            let (from, to) = ((i * self.sector) as usize, (j * self.sector) as usize);
            // On failure the run stays dirty: the next write-back tries it again.
            self.unflushed.set(true);
            self.dev.write(c * self.per_chunk + i, &chunk.data[from..to])?;
            for k in i..j {
                chunk.dirty &= !(1 << k);
            }
            i = j;
        }
        Ok(())
    }

    /// `n` sectors from `start` (at most a chunk or [`READ_PAST`]), checked for length.
    fn read_sectors(&self, start: u64, n: u64) -> Result<Vec<u8>, String> {
        // n <= max(CHUNK, READ_PAST) / 512: it fits in a u32.
        let data = self.dev.read(start, n as u32)?;
        if data.len() as u64 != n * self.sector {
            return Err(format!(
                "block.read of {n} sectors at sector {start} returned {} bytes",
                data.len()
            ));
        }
        Ok(data)
    }

    /// The pieces of `len` bytes at `offset`, one per chunk they touch: (chunk, offset
    /// in it, offset in the caller's buffer, length).
    fn pieces(&self, offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
        let chunk = self.chunk_bytes();
        let mut done = 0usize;
        core::iter::from_fn(move || {
            (done < len).then(|| {
                let at = offset + done as u64;
                let c = at / chunk;
                let within = (at - c * chunk) as usize;
                let n = (len - done).min(chunk as usize - within);
                let piece = (c, within, done, n);
                done += n;
                piece
            })
        })
    }

    /// Make chunk `c` cached with the sectors in `need` valid (read from the device when
    /// one is not: the whole chunk, under its dirty sectors), evicting the least recently
    /// used chunk past the limit (written back first when dirty).
    fn load(&self, c: u64, need: u128) -> Result<(), String> {
        let t = self.tick.get() + 1;
        self.tick.set(t);
        let mut cache = self.cache.borrow_mut();
        let start = c * self.per_chunk;
        let n = self.per_chunk.min(self.count - start);
        if !cache.contains_key(&c) {
            if cache.len() >= DISK_CHUNKS
                && let Some(old) = cache.iter().min_by_key(|(_, ch)| ch.used).map(|(k, _)| *k)
            {
                let mut victim = cache.remove(&old).expect("the chunk just found");
                if let Err(e) = self.write_chunk(old, &mut victim) {
                    cache.insert(old, victim);
                    return Err(e);
                }
            }
            // A chunk that must be read is taken whole from the device; one written
            // only in whole sectors is never read.
            let (data, valid) = match need {
                0 => (vec![0; (n * self.sector) as usize], 0),
                _ => (self.read_sectors(start, n)?, sectors(0, n)),
            };
            cache.insert(c, Chunk { used: t, data, dirty: 0, valid });
        }
        let ch = cache.get_mut(&c).expect("the chunk just cached");
        ch.used = t;
        if need & !ch.valid == 0 {
            return Ok(());
        }
        let data = self.read_sectors(start, n)?;
        let ss = self.sector as usize;
        for i in 0..n as usize {
            if ch.valid & (1 << i) == 0 {
                ch.data[i * ss..(i + 1) * ss].copy_from_slice(&data[i * ss..(i + 1) * ss]);
            }
        }
        ch.valid = sectors(0, n);
        Ok(())
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<(), String> {
        let end = offset.checked_add(len as u64);
        if end.is_none_or(|e| e > self.size()) {
            return Err(format!(
                "access of {len} bytes at offset {offset} is past the end of the device ({} bytes)",
                self.size()
            ));
        }
        Ok(())
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        self.check_range(offset, buf.len())?;
        for (c, within, done, n) in self.pieces(offset, buf.len()) {
            self.load(c, sectors(within as u64 / self.sector, (within + n).div_ceil(self.sector as usize) as u64))?;
            let cache = self.cache.borrow();
            let Some(ch) = cache.get(&c) else {
                return Err(String::from("block cache lost its chunk"));
            };
            // check_range: the piece is inside the chunk, the last one included.
            buf[done..done + n].copy_from_slice(&ch.data[within..within + n]);
        }
        Ok(())
    }

    /// `len` bytes at `offset` in one `block.read`, past the cache — `None` (nothing
    /// read) unless they are whole sectors, at most [`READ_PAST`], and the cache holds
    /// no unsent write among them. For big reads of file data: the device's list is
    /// the result, with no copy into the cache and out of it.
    pub fn read_past_cache(&self, offset: u64, len: usize) -> Result<Option<Vec<u8>>, String> {
        self.check_range(offset, len)?;
        let (ss, n) = (self.sector, len as u64);
        if len == 0 || n > READ_PAST || offset % ss != 0 || n % ss != 0 {
            return Ok(None);
        }
        let chunk = self.chunk_bytes();
        let (from, to) = (offset / chunk, (offset + n - 1) / chunk);
        if self.cache.borrow().range(from..=to).any(|(_, ch)| ch.dirty != 0) {
            return Ok(None);
        }
        self.read_sectors(offset / ss, n / ss).map(Some)
    }

    /// Write `bytes` at `offset` into the cache: the sectors they touch become dirty.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        self.check_range(offset, bytes.len())?;
        for (c, within, done, n) in self.pieces(offset, bytes.len()) {
            // Only a sector written in part needs its old bytes.
            let ss = self.sector as usize;
            let (first, last) = ((within / ss) as u64, ((within + n - 1) / ss) as u64);
            // A large run of whole sectors in a chunk not cached goes to the device at
            // once: the copy into the cache would be read only by its write-back, and
            // anything the file system writes may reach the device early (fs/fat.rs).
            if within.is_multiple_of(ss) && n.is_multiple_of(ss) && n as u64 >= WRITE_THROUGH && !self.cache.borrow().contains_key(&c) {
                self.unflushed.set(true);
                self.dev.write(c * self.per_chunk + (within / ss) as u64, &bytes[done..done + n])?;
                continue;
            }
            let mut partial = 0u128;
            if !within.is_multiple_of(ss) {
                partial |= 1 << first;
            }
            if !(within + n).is_multiple_of(ss) {
                partial |= 1 << last;
            }
            self.load(c, partial)?;
            let mut cache = self.cache.borrow_mut();
            let Some(ch) = cache.get_mut(&c) else {
                return Err(String::from("block cache lost its chunk"));
            };
            ch.data[within..within + n].copy_from_slice(&bytes[done..done + n]);
            let touched = sectors(first, last + 1);
            ch.dirty |= touched;
            ch.valid |= touched;
        }
        Ok(())
    }

    /// Whether some write has not reached the device yet.
    pub fn is_dirty(&self) -> bool {
        self.cache.borrow().values().any(|c| c.dirty != 0)
    }

    /// Send every dirty sector to the device, in order of address (no flush).
    pub fn write_back(&self) -> Result<(), String> {
        let mut cache = self.cache.borrow_mut();
        for (c, ch) in cache.iter_mut() {
            self.write_chunk(*c, ch)?;
        }
        Ok(())
    }

    /// Write back, then the device's `flush` (none when nothing went down since the last).
    pub fn flush(&self) -> Result<(), String> {
        self.write_back()?;
        if self.unflushed.get() {
            self.dev.flush()?;
            self.unflushed.set(false);
        }
        Ok(())
    }
}

impl<S: Sectors> Source for Disk<S> {
    fn size(&self) -> u64 {
        Disk::size(self)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        Disk::read_at(self, offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::cell::Cell;

    /// A device whose byte `i` is `i % 251`, counting reads.
    struct Dev {
        sector: u64,
        count: u64,
        reads: Cell<u32>,
        fail: bool,
        short: bool,
    }

    impl Dev {
        fn new(sector: u64, count: u64) -> Dev {
            Dev {
                sector,
                count,
                reads: Cell::new(0),
                fail: false,
                short: false,
            }
        }
    }

    impl Sectors for &Dev {
        fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String> {
            assert!(
                count >= 1 && start + u64::from(count) <= self.count,
                "out of range"
            );
            assert!(u64::from(count) * self.sector <= 1 << 20, "over 1 MiB");
            self.reads.set(self.reads.get() + 1);
            if self.fail {
                return Err("io".into());
            }
            let n = u64::from(count) * self.sector - u64::from(self.short);
            Ok((0..n)
                .map(|i| ((start * self.sector + i) % 251) as u8)
                .collect())
        }
    }

    fn expect(offset: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| ((offset + i) % 251) as u8)
            .collect()
    }

    #[test]
    fn reads_across_chunks_and_caches() {
        let dev = Dev::new(512, 600);
        let c = Disk::new(&dev, 512, 600).unwrap();
        assert_eq!(c.size(), 512 * 600);
        let mut buf = vec![0u8; 100];
        c.read_at(10, &mut buf).unwrap();
        assert_eq!(buf, expect(10, 100));
        c.read_at(1000, &mut buf).unwrap();
        assert_eq!(dev.reads.get(), 1, "same chunk: cached");
        let mut big = vec![0u8; 150_000];
        c.read_at(CHUNK - 7, &mut big).unwrap();
        assert_eq!(big, expect(CHUNK - 7, 150_000));
        // The last, partial chunk.
        let mut tail = vec![0u8; 20];
        c.read_at(512 * 600 - 20, &mut tail).unwrap();
        assert_eq!(tail, expect(512 * 600 - 20, 20));
        assert_eq!(dev.reads.get(), 5, "chunks 0, 1, 2, 3, then the last");
        let mut none = [0u8; 0];
        c.read_at(512 * 600, &mut none).unwrap();
    }

    #[test]
    fn big_sectors() {
        let dev = Dev::new(1 << 17, 3);
        let c = Disk::new(&dev, 1 << 17, 3).unwrap();
        let mut buf = vec![0u8; 5];
        c.read_at((1 << 17) * 2 + 1, &mut buf).unwrap();
        assert_eq!(buf, expect((1 << 17) * 2 + 1, 5));
    }

    #[test]
    fn out_of_range_and_device_errors() {
        let dev = Dev::new(512, 4);
        let c = Disk::new(&dev, 512, 4).unwrap();
        let mut buf = [0u8; 10];
        assert!(
            c.read_at(2045, &mut buf)
                .unwrap_err()
                .contains("past the end")
        );
        assert!(
            c.read_at(u64::MAX - 3, &mut buf)
                .unwrap_err()
                .contains("past the end")
        );
        assert_eq!(dev.reads.get(), 0);
        let mut bad = Dev::new(512, 4);
        bad.fail = true;
        let c = Disk::new(&bad, 512, 4).unwrap();
        assert_eq!(c.read_at(0, &mut buf).unwrap_err(), "io");
        let mut short = Dev::new(512, 4);
        short.short = true;
        let c = Disk::new(&short, 512, 4).unwrap();
        assert!(
            c.read_at(0, &mut buf)
                .unwrap_err()
                .contains("returned 2047 bytes")
        );
    }

    /// A writable device in memory, counting reads and writes.
    struct Ram {
        data: core::cell::RefCell<Vec<u8>>,
        reads: Cell<u32>,
        writes: Cell<u32>,
        fail: Cell<bool>,
    }

    fn ram(sectors: u64) -> Ram {
        Ram { data: core::cell::RefCell::new(expect(0, 512 * sectors as usize)), reads: Cell::new(0), writes: Cell::new(0), fail: Cell::new(false) }
    }

    impl Sectors for &Ram {
        fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.data.borrow()[start as usize * 512..][..count as usize * 512].to_vec())
        }
        fn write(&self, start: u64, data: &[u8]) -> Result<(), String> {
            if self.fail.get() {
                return Err("io".into());
            }
            self.writes.set(self.writes.get() + 1);
            self.data.borrow_mut()[start as usize * 512..][..data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn whole_sectors_are_written_without_a_read_and_sent_as_runs() {
        let ram = ram(300);
        let d = Disk::new(&ram, 512, 300).unwrap();
        // Whole sectors 1..=3: nothing to read.
        d.write_at(512, &vec![7u8; 1536]).unwrap();
        assert_eq!((ram.reads.get(), ram.writes.get()), (0, 0));
        // Part of sector 5: its old bytes are read (the whole chunk, once).
        d.write_at(512 * 5 + 10, &[9u8; 4]).unwrap();
        assert_eq!(ram.reads.get(), 1);
        // Reads see the cache over the device.
        let mut buf = vec![0u8; 512 * 6];
        d.read_at(0, &mut buf).unwrap();
        assert_eq!(ram.reads.get(), 1);
        let mut want = expect(0, 512 * 6);
        want[512..2048].fill(7);
        want[512 * 5 + 10..512 * 5 + 14].fill(9);
        assert_eq!(buf, want);
        // A whole sector in a chunk never loaded, then read in part: the read merges
        // the device's bytes under it.
        let far = 512 * 200;
        d.write_at(far, &[3u8; 512]).unwrap();
        assert_eq!(ram.reads.get(), 1);
        let mut two = vec![0u8; 1024];
        d.read_at(far, &mut two).unwrap();
        assert_eq!(ram.reads.get(), 2);
        assert_eq!(&two[..512], &[3u8; 512][..]);
        assert_eq!(two[512..], expect(far + 512, 512)[..]);
        // Sent at flush: one write per run of dirty sectors (1..=3, 5, 200).
        d.flush().unwrap();
        assert_eq!(ram.writes.get(), 3);
        let img = ram.data.borrow();
        assert_eq!(img[..512 * 6], want[..]);
        assert_eq!(img[far as usize..][..512], [3u8; 512]);
    }

    #[test]
    fn a_big_write_to_a_chunk_not_cached_goes_straight_to_the_device() {
        let ram = ram(400);
        let d = Disk::new(&ram, 512, 400).unwrap();
        // 32 KiB of whole sectors in chunk 1, which the cache does not hold: sent now,
        // not cached, nothing read.
        let at = CHUNK + 512 * 4;
        d.write_at(at, &vec![6u8; WRITE_THROUGH as usize]).unwrap();
        assert_eq!((ram.reads.get(), ram.writes.get()), (0, 1));
        assert!(!d.is_dirty());
        assert_eq!(ram.data.borrow()[at as usize..][..WRITE_THROUGH as usize], vec![6u8; WRITE_THROUGH as usize][..]);
        // Less than that, or into a chunk the cache holds, is cached as before.
        d.write_at(512, &vec![1u8; WRITE_THROUGH as usize - 512]).unwrap();
        d.write_at(0, &[2u8; 512]).unwrap();
        d.write_at(2 * 512, &vec![3u8; WRITE_THROUGH as usize]).unwrap();
        assert_eq!(ram.writes.get(), 1);
        let mut buf = vec![0u8; 512 * 70];
        d.read_at(0, &mut buf).unwrap();
        assert_eq!((buf[0], buf[512], buf[1024], buf[512 * 65]), (2, 1, 3, 3));
        d.flush().unwrap();
        assert_eq!(ram.writes.get(), 2, "chunk 0's dirty sectors as one run");
    }

    #[test]
    fn a_big_read_past_the_cache_is_one_device_read_unless_it_holds_unsent_writes() {
        let ram = ram(4096);
        let d = Disk::new(&ram, 512, 4096).unwrap();
        // 256 KiB across five chunks (one cached and clean): one `block.read`.
        d.read_at(CHUNK, &mut [0u8; 10]).unwrap();
        let (at, len) = (CHUNK / 2, 4 * CHUNK as usize);
        assert_eq!(d.read_past_cache(at, len).unwrap(), Some(expect(at, len)));
        assert_eq!(ram.reads.get(), 2);
        // Not whole sectors, too big, or over an unsent write: nothing read.
        assert_eq!(d.read_past_cache(at + 1, len).unwrap(), None);
        assert_eq!(d.read_past_cache(0, READ_PAST as usize + 512).unwrap(), None);
        d.write_at(3 * CHUNK, &[1u8; 512]).unwrap();
        assert_eq!(d.read_past_cache(at, len).unwrap(), None);
        assert_eq!(ram.reads.get(), 2, "nothing read: a whole sector written, no read past it");
        // Once it is sent, the device has it.
        d.flush().unwrap();
        let got = d.read_past_cache(at, len).unwrap().unwrap();
        assert_eq!(got[(3 * CHUNK - at) as usize], 1);
        assert!(d.read_past_cache(4096 * 512 - 512, 1024).is_err(), "past the end of the device");
    }

    #[test]
    fn a_failed_write_back_stays_dirty_and_the_next_flush_sends_it() {
        let n = 128 * (DISK_CHUNKS as u64 + 2);
        let ram = ram(n);
        let d = Disk::new(&ram, 512, n).unwrap();
        d.write_at(0, &[5u8; 1024]).unwrap();
        ram.fail.set(true);
        assert_eq!(d.flush(), Err("io".into()));
        assert!(d.is_dirty());
        // Evicting it fails the same way, and keeps it: nothing is lost in the cache.
        for c in 1..DISK_CHUNKS as u64 {
            d.read_at(c * CHUNK, &mut [0u8; 1]).unwrap();
        }
        assert_eq!(d.read_at(DISK_CHUNKS as u64 * CHUNK, &mut [0u8; 1]), Err("io".into()));
        assert!(d.is_dirty());
        ram.fail.set(false);
        d.flush().unwrap();
        assert!(!d.is_dirty());
        assert_eq!(ram.data.borrow()[..1024], [5u8; 1024]);
    }

    #[test]
    fn geometry_checks() {
        let dev = Dev::new(512, 1);
        assert!(Disk::new(&dev, 500, 1).is_err());
        assert!(Disk::new(&dev, 256, 1).is_err());
        assert!(Disk::new(&dev, 4096, u64::MAX).is_err());
        assert!(Disk::new(&dev, 4096, 0).is_ok());
    }
}
