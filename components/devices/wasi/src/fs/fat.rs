//! Writable FAT trees on a block device (`preopen = <dir>=fat:<role>`), through the
//! vendored `fatfs` crate (components/vendor/fatfs): FAT12/16/32 with long names, as
//! Linux's `vfat`, mtools and `mkfs.fat` read and write it.
//!
//! The device is read and written through a [`Disk`] (a write-back cache of a few MiB),
//! and files stay open between calls (fatfs's handle, with its place in the cluster
//! chain), so a sequential reader or writer never walks the chain again. What a write
//! changed reaches the device at WASI's `sync`/`sync-data` and at the end of the run
//! ([`Tree::sync`], in the order [`Tree`] describes), or earlier when the cache evicts
//! it; a run that traps or is cut keeps what the device had (docs/devices.md). A device
//! whose first sector is all zeros is formatted on first use; anything else that is not a
//! FAT file system is left as it is.
//!
//! Nodes are named by their path from the root: a descriptor follows its name, so a file
//! renamed or removed while open is not found through it any more (unlike POSIX).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use alloc::collections::BTreeMap;
use core::cell::RefCell;

use fatfs::{
    Cut, Date, DateTime, FatType, FileHandle, FileSystem, FormatVolumeOptions, FsOptions, IoBase,
    LossyOemCpConverter, Read, Seek, SeekFrom, Time, TimeProvider, Write,
};

use super::block::{Disk, Sectors};
use crate::exports::wasi::filesystem::types::ErrorCode;

/// Largest FAT file: sizes are 32 bits.
pub const FILE_MAX: u64 = u32::MAX as u64;

/// What a FAT operation failed with: a WASI error, or a device or file-system failure
/// (the message; it becomes `io`, logged naming the device).
#[derive(Debug, PartialEq, Eq)]
pub enum FatErr {
    Code(ErrorCode),
    Io(String),
}

impl From<ErrorCode> for FatErr {
    fn from(c: ErrorCode) -> FatErr {
        FatErr::Code(c)
    }
}

/// A device error as fatfs carries it.
#[derive(Debug)]
pub struct IoErr(String);

impl fatfs::IoError for IoErr {
    fn is_interrupted(&self) -> bool {
        false
    }
    fn new_unexpected_eof_error() -> Self {
        IoErr(String::from("unexpected end of the device"))
    }
    fn new_write_zero_error() -> Self {
        IoErr(String::from("the device took no bytes"))
    }
}

impl core::fmt::Display for IoErr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

type FsError = fatfs::Error<IoErr>;

fn fat_err(e: FsError) -> FatErr {
    use fatfs::Error as E;
    match e {
        E::NotFound => FatErr::Code(ErrorCode::NoEntry),
        E::AlreadyExists => FatErr::Code(ErrorCode::Exist),
        E::DirectoryIsNotEmpty => FatErr::Code(ErrorCode::NotEmpty),
        E::NotEnoughSpace => FatErr::Code(ErrorCode::InsufficientSpace),
        E::InvalidFileNameLength => FatErr::Code(ErrorCode::NameTooLong),
        E::UnsupportedFileNameCharacter | E::InvalidInput => FatErr::Code(ErrorCode::Invalid),
        E::Io(IoErr(m)) => FatErr::Io(m),
        E::CorruptedFileSystem => FatErr::Io(String::from("the FAT file system is corrupted")),
        other => FatErr::Io(format!("{other}")),
    }
}

/// The device as fatfs's storage: a position over a shared [`Disk`].
pub struct Io<S: Sectors> {
    disk: Rc<Disk<S>>,
    pos: u64,
}

impl<S: Sectors> IoBase for Io<S> {
    type Error = IoErr;
}

impl<S: Sectors> Read for Io<S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoErr> {
        let n = (buf.len() as u64).min(self.disk.size().saturating_sub(self.pos)) as usize;
        self.disk.read_at(self.pos, &mut buf[..n]).map_err(IoErr)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Sectors> Write for Io<S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, IoErr> {
        let n = (buf.len() as u64).min(self.disk.size().saturating_sub(self.pos)) as usize;
        self.disk.write_at(self.pos, &buf[..n]).map_err(IoErr)?;
        self.pos += n as u64;
        Ok(n)
    }

    /// Nothing: fatfs flushes after every file operation; the device's `flush` is for
    /// [`Tree::sync`].
    fn flush(&mut self) -> Result<(), IoErr> {
        Ok(())
    }
}

impl<S: Sectors> Seek for Io<S> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, IoErr> {
        let to = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.disk.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| IoErr(String::from("seek out of range")))?;
        Ok(self.pos)
    }
}

/// Wall-clock time for new and modified entries.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub fn() -> u64);

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01 (`days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Nanoseconds since the epoch as a FAT time (1980 to 2107, clamped).
pub fn to_fat(ns: u64) -> DateTime {
    let secs = (ns / 1_000_000_000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (y, m, d) = match y {
        ..1980 => (1980, 1, 1),
        2108.. => (2107, 12, 31),
        _ => (y, m, d),
    };
    DateTime::new(
        Date::new(y as u16, m as u16, d as u16),
        Time::new((s / 3600) as u16, (s / 60 % 60) as u16, (s % 60) as u16, 0),
    )
}

/// A FAT time as nanoseconds since the epoch (nonsense fields from a damaged entry give
/// some time, never a panic).
pub fn from_fat(t: DateTime) -> u64 {
    let dy = days(
        i64::from(t.date.year),
        i64::from(t.date.month.clamp(1, 12)),
        i64::from(t.date.day.clamp(1, 31)),
    );
    let s = dy * 86_400
        + i64::from(t.time.hour.min(23)) * 3600
        + i64::from(t.time.min.min(59)) * 60
        + i64::from(t.time.sec.min(59));
    (s.max(0) as u64) * 1_000_000_000 + u64::from(t.time.millis.min(999)) * 1_000_000
}

impl TimeProvider for Clock {
    fn get_current_date(&self) -> Date {
        to_fat((self.0)()).date
    }
    fn get_current_date_time(&self) -> DateTime {
        to_fat((self.0)())
    }
}

/// An entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name as stored (the long name when it has one).
    pub name: String,
    pub dir: bool,
    pub size: u64,
    pub mtime: u64,
    pub atime: u64,
}

type Fs<S> = FileSystem<Io<S>, Clock, LossyOemCpConverter>;
type FatFile<'a, S> = fatfs::File<'a, Io<S>, Clock, LossyOemCpConverter>;

/// Files kept open at once; past this, a [`Tree::sync`] publishes them and they close.
const OPEN_MAX: usize = 256;

/// Reads of at least this many bytes of a file try [`Disk::read_past_cache`].
const BIG_READ: u64 = 64 * 1024;

/// Zeroed clusters kept past the end of a file that grows in place (fatfs's
/// `File::reserve`), so its next syncs need one device flush, not two.
const RESERVE: u64 = 64 * 1024;

/// A file kept open between calls: fatfs's handle, and its entry as the device has it.
struct Open {
    handle: FileHandle,
    /// The size and first cluster the entry on the device has.
    published: (Option<u32>, Option<u32>),
    /// Bytes `0..zeroed` of the file's cluster chain are durable, and past its size
    /// they are zeros: its entry may grow up to here in the same flush as the data.
    zeroed: u64,
}

impl Open {
    fn new(handle: FileHandle) -> Open {
        Open {
            published: (handle.size(), handle.first_cluster()),
            zeroed: handle.size().map_or(0, u64::from),
            handle,
        }
    }

    fn size(&self) -> u64 {
        self.handle.size().map_or(0, u64::from)
    }

    /// Whether writing the entry now could make it name bytes or clusters that are not
    /// durable yet: the file got a (new) first cluster, or grew past what is durable
    /// (its data, or zeroed clusters reserved past it). A shorter entry names less, and
    /// may be written at any time.
    fn needs_order(&self) -> bool {
        let first = self.handle.first_cluster();
        (first.is_some() && first != self.published.1) || (self.handle.size() > self.published.0 && self.size() > self.zeroed)
    }

    /// Whether the file grew since its entry was written, keeping its first cluster: a
    /// file that grows across syncs (a database), which [`RESERVE`] is for.
    fn grew_in_place(&self) -> bool {
        let first = self.handle.first_cluster();
        first.is_some() && first == self.published.1 && self.handle.size() > self.published.0
    }
}

/// A FAT file system on a device.
///
/// Writes stay in the [`Disk`]'s cache until [`Tree::sync`] (or an eviction) sends them.
/// Everything that may reach the device in any order does so; what may not is held back
/// and ordered by `sync`, so that a power cut never leaves an entry that names clusters
/// the device does not have:
/// - a file's new size and first cluster stay in its open handle until the data and
///   clusters they name are flushed; then the entry is written and flushed — unless it
///   grows into zeroed clusters reserved past its end by an earlier sync ([`RESERVE`]):
///   then data and entry share one flush, and a cut between them shows zeros;
/// - reserved clusters are given back when the file leaves the open set or the run
///   ends (a cut before leaves them on the chain past the size, which `fsck.fat` trims);
/// - a removed entry's clusters stay allocated until the removal is flushed; then they
///   are freed, durable at the next sync (a cut before it leaks them, which `fsck.fat`
///   reclaims);
/// - a truncation publishes the shorter entry (a whole `sync`) before it frees clusters;
/// - a rename first publishes every open file (fatfs copies the entry).
pub struct Tree<S: Sectors> {
    disk: Rc<Disk<S>>,
    fs: Fs<S>,
    /// Open files by [`key`].
    open: RefCell<BTreeMap<String, Open>>,
    /// Clusters of removed entries, freed by the next `sync` once the removal is durable.
    released: RefCell<Vec<Cut>>,
}

/// An open file's name in [`Tree::open`]: FAT names compare without case.
fn key(path: &str) -> String {
    path.to_lowercase()
}

/// How [`Tree::open`] found the device.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A FAT file system already there.
    Existing(FatType),
    /// Blank (its first sector all zeros): formatted now.
    Formatted(FatType),
}

fn fat_name(t: FatType) -> &'static str {
    match t {
        FatType::Fat12 => "FAT12",
        FatType::Fat16 => "FAT16",
        FatType::Fat32 => "FAT32",
    }
}

impl Found {
    pub fn describe(&self) -> String {
        match self {
            Found::Existing(t) => format!("{} file system", fat_name(*t)),
            Found::Formatted(t) => format!("blank, formatted as {}", fat_name(*t)),
        }
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl<S: Sectors> Tree<S> {
    /// Mount the FAT file system on `dev`, formatting it first when blank. The error is a
    /// message for the log.
    pub fn open(dev: S, sector: u32, count: u64, now: fn() -> u64) -> Result<(Tree<S>, Found), String> {
        let disk = Rc::new(Disk::new(dev, sector, count)?);
        let ss = disk.sector_size();
        if ss > 4096 {
            return Err(format!("sector size {ss} is more than FAT's 4096"));
        }
        let total = u32::try_from(count).map_err(|_| format!("{count} sectors are more than FAT's 2^32"))?;
        let mut first = vec![0u8; ss as usize];
        if count == 0 {
            return Err(String::from("the device is empty"));
        }
        disk.read_at(0, &mut first)?;
        let blank = first.iter().all(|b| *b == 0);
        if blank {
            let mut io = Io { disk: disk.clone(), pos: 0 };
            let opts = FormatVolumeOptions::new()
                .bytes_per_sector(ss as u16)
                .total_sectors(total)
                .volume_label(*b"WEFT       ");
            fatfs::format_volume(&mut io, opts).map_err(|e| format!("formatting it failed: {e}"))?;
        }
        let io = Io { disk: disk.clone(), pos: 0 };
        let options = FsOptions::new()
            .time_provider(Clock(now))
            .oem_cp_converter(LossyOemCpConverter::new());
        let fs = FileSystem::new(io, options).map_err(|e| format!("not a usable FAT file system: {e}"))?;
        let t = fs.fat_type();
        let found = if blank { Found::Formatted(t) } else { Found::Existing(t) };
        let tree = Tree {
            disk,
            fs,
            open: RefCell::new(BTreeMap::new()),
            released: RefCell::new(Vec::new()),
        };
        Ok((tree, found))
    }

    /// WASI `sync`: make everything written so far durable, in an order a power cut at
    /// any point leaves consistent (see [`Tree`]). Up to two device flushes: before
    /// entries that grew (or removals whose clusters are to be freed), after the entries.
    /// The clusters of removed entries are then freed in the cache, for the next sync:
    /// a cut before it leaks them, which is harmless.
    pub fn sync(&self) -> Result<(), FatErr> {
        let mut open = self.open.borrow_mut();
        if open.values().any(Open::needs_order) || !self.released.borrow().is_empty() {
            self.disk.flush().map_err(FatErr::Io)?;
        }
        // A file growing in place that is near the end of its zeroed clusters gets more,
        // durable with this sync's last flush (the link to them may land or not: the
        // entry does not name them yet).
        let mut reserved = BTreeMap::new();
        for (k, o) in open.iter_mut().filter(|(_, o)| o.grew_in_place() && o.zeroed < o.size() + RESERVE / 2) {
            let mut f = self.fs.attach(o.handle.clone());
            let r = f.reserve(o.zeroed, o.size() + RESERVE);
            o.handle = f.detach();
            reserved.insert(k.clone(), r.map_err(fat_err)?);
        }
        for o in open.values_mut().filter(|o| o.handle.entry_dirty()) {
            let mut f = self.fs.attach(o.handle.clone());
            let r = f.write_entry();
            o.handle = f.detach();
            r.map_err(fat_err)?;
            o.published = (o.handle.size(), o.handle.first_cluster());
        }
        self.disk.flush().map_err(FatErr::Io)?;
        for (k, o) in open.iter_mut() {
            o.zeroed = reserved.get(k).copied().unwrap_or(o.zeroed).max(o.size());
        }
        let released = core::mem::take(&mut *self.released.borrow_mut());
        for cut in released {
            self.fs.release(cut).map_err(fat_err)?;
        }
        Ok(())
    }

    /// The end of a run: [`Tree::close_all`], then everything it left in the cache.
    pub fn close(&self) -> Result<(), FatErr> {
        self.close_all()?;
        self.disk.flush().map_err(FatErr::Io)
    }

    /// Close every open file: their reserved clusters cut off (released by the sync, as
    /// a removal's are), then a [`Tree::sync`].
    fn close_all(&self) -> Result<(), FatErr> {
        let cs = u64::from(self.fs.cluster_size());
        for o in self.open.borrow_mut().values_mut() {
            let size = o.size();
            if size > 0 && o.zeroed > size.div_ceil(cs) * cs {
                let mut f = self.fs.attach(o.handle.clone());
                let r = f.seek(SeekFrom::Start(size)).map(|_| f.truncate_keeping_clusters());
                o.handle = f.detach();
                if let Some(cut) = r.map_err(fat_err)? {
                    self.released.borrow_mut().push(cut);
                }
                o.zeroed = size;
            }
        }
        self.sync()?;
        self.open.borrow_mut().clear();
        Ok(())
    }

    fn dir(&self, path: &str) -> Result<fatfs::Dir<'_, Io<S>, Clock, LossyOemCpConverter>, FatErr> {
        let root = self.fs.root_dir();
        if path.is_empty() {
            Ok(root)
        } else {
            root.open_dir(path).map_err(fat_err)
        }
    }

    /// The entries of directory `path` (without `.` and `..`), open files as they are now.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, FatErr> {
        let open = self.open.borrow();
        let mut out = Vec::new();
        for e in self.dir(path)?.iter() {
            let e = e.map_err(fat_err)?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let (size, modified, accessed) = match open.get(&key(&join(path, &name))) {
                Some(o) => (
                    o.handle.size().map_or(0, u64::from),
                    o.handle.modified().unwrap_or(e.modified()),
                    o.handle.accessed().unwrap_or(e.accessed()),
                ),
                None => (e.len(), e.modified(), e.accessed()),
            };
            out.push(Entry {
                name,
                dir: e.is_dir(),
                size,
                mtime: from_fat(modified),
                atime: from_fat(DateTime::new(accessed, Time::new(0, 0, 0, 0))),
            });
        }
        Ok(out)
    }

    /// Entry `name` of directory `dir` (names compare as FAT does: without case).
    pub fn lookup(&self, dir: &str, name: &str) -> Result<Option<Entry>, FatErr> {
        Ok(self
            .list(dir)?
            .into_iter()
            .find(|e| e.name.eq_ignore_ascii_case(name) || e.name == name))
    }

    /// Run `f` on file `path` (opened on first use and kept open) and its size.
    fn with_file<R>(&self, path: &str, f: impl FnOnce(&mut FatFile<'_, S>, u64) -> Result<R, FatErr>) -> Result<R, FatErr> {
        let k = key(path);
        let taken = self.open.borrow_mut().remove(&k);
        let open = match taken {
            Some(o) => o,
            None => {
                if self.open.borrow().len() >= OPEN_MAX {
                    self.close_all()?;
                }
                Open::new(self.fs.root_dir().open_file(path).map_err(fat_err)?.detach())
            }
        };
        let size = open.size();
        let mut file = self.fs.attach(open.handle);
        let r = f(&mut file, size);
        let handle = file.detach();
        self.open.borrow_mut().insert(k, Open { handle, ..open });
        r
    }

    /// Up to `len` bytes of file `path` from `offset`, and whether that reaches its end.
    pub fn read(&self, path: &str, offset: u64, len: u64) -> Result<(Vec<u8>, bool), FatErr> {
        self.with_file(path, |f, size| {
            if offset >= size {
                return Ok((Vec::new(), true));
            }
            f.seek(SeekFrom::Start(offset)).map_err(fat_err)?;
            let n = len.min(size - offset) as usize;
            // A big read of clusters that follow one another is one `block.read`, its
            // list returned as it is (no copy through the cache, no buffer to clear).
            if n as u64 >= BIG_READ
                && let Some((at, run)) = f.contiguous_run(n as u64).map_err(fat_err)?
                && run == n as u64
                && let Some(data) = self.disk.read_past_cache(at, n).map_err(FatErr::Io)?
            {
                f.seek(SeekFrom::Start(offset + n as u64)).map_err(fat_err)?;
                return Ok((data, offset + n as u64 >= size));
            }
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf).map_err(fat_err)?;
            Ok((buf, offset + n as u64 >= size))
        })
    }

    /// Write `bytes` at `offset` of file `path` (zero-filling a gap).
    pub fn write(&self, path: &str, offset: u64, bytes: &[u8]) -> Result<u64, FatErr> {
        offset
            .checked_add(bytes.len() as u64)
            .filter(|e| *e <= FILE_MAX)
            .ok_or(ErrorCode::FileTooLarge)?;
        self.with_file(path, |f, size| {
            if offset > size {
                f.seek(SeekFrom::Start(size)).map_err(fat_err)?;
                zeros(f, offset - size)?;
            } else {
                f.seek(SeekFrom::Start(offset)).map_err(fat_err)?;
            }
            f.write_all(bytes).map_err(fat_err)?;
            Ok(bytes.len() as u64)
        })
    }

    /// Truncate or extend file `path` to `size` bytes. A truncation publishes the
    /// shorter entry (a [`Tree::sync`]) before it frees the clusters past it.
    pub fn set_size(&self, path: &str, size: u64) -> Result<(), FatErr> {
        if size > FILE_MAX {
            return Err(ErrorCode::FileTooLarge.into());
        }
        let cut = self.with_file(path, |f, now| {
            if size < now {
                f.seek(SeekFrom::Start(size)).map_err(fat_err)?;
                return Ok(f.truncate_keeping_clusters());
            }
            if size > now {
                f.seek(SeekFrom::Start(now)).map_err(fat_err)?;
                zeros(f, size - now)?;
            }
            Ok(None)
        })?;
        if let Some(cut) = cut {
            // The cut takes the clusters reserved past the end too.
            if let Some(o) = self.open.borrow_mut().get_mut(&key(path)) {
                o.zeroed = o.zeroed.min(size);
            }
            self.sync()?;
            self.fs.release(cut).map_err(fat_err)?;
        }
        Ok(())
    }

    /// A new empty file `name` in directory `dir` (left open).
    pub fn create_file(&self, dir: &str, name: &str) -> Result<(), FatErr> {
        if self.lookup(dir, name)?.is_some() {
            return Err(ErrorCode::Exist.into());
        }
        let f = self.dir(dir)?.create_file(name).map_err(fat_err)?;
        self.open.borrow_mut().insert(key(&join(dir, name)), Open::new(f.detach()));
        Ok(())
    }

    /// A new empty directory `name` in `dir`.
    pub fn mkdir(&self, dir: &str, name: &str) -> Result<(), FatErr> {
        if self.lookup(dir, name)?.is_some() {
            return Err(ErrorCode::Exist.into());
        }
        self.dir(dir)?.create_dir(name).map(|_| ()).map_err(fat_err)
    }

    /// Remove entry `name` of `dir`, keeping its clusters until the next sync.
    fn unlink(&self, dir: &str, name: &str) -> Result<(), FatErr> {
        // An open file's handle knows its first cluster even before its entry does.
        let open = self.open.borrow_mut().remove(&key(&join(dir, name)));
        let on_disk = self.dir(dir)?.remove_keeping_clusters(name).map_err(fat_err)?;
        if let Some(first) = open.map_or(on_disk, |o| o.handle.first_cluster()) {
            self.released.borrow_mut().push(Cut::All(first));
        }
        Ok(())
    }

    /// Remove file (`want_dir` false) or empty directory `name` of `dir`: durable when it
    /// returns (a sync), because SQLite's commit in its default journal mode is the
    /// removal of its journal, and it syncs nothing after it.
    pub fn remove(&self, dir: &str, name: &str, want_dir: bool) -> Result<(), FatErr> {
        let e = self.lookup(dir, name)?.ok_or(ErrorCode::NoEntry)?;
        match (e.dir, want_dir) {
            (true, false) => Err(ErrorCode::IsDirectory.into()),
            (false, true) => Err(ErrorCode::NotDirectory.into()),
            _ => {
                self.unlink(dir, &e.name)?;
                self.sync()
            }
        }
    }

    /// Move `from_dir/from_name` to `to_dir/to_name`, replacing a file with a file or an
    /// empty directory with a directory (POSIX `rename`), durable when it returns. Every
    /// open file is published first (the entry moves as the device has it); then, a sync
    /// after each step: the replaced file's removal, the new name, the old name's removal.
    /// A cut between the steps leaves the old name alone, or both names on one chain
    /// (`fsck.fat` reports them); never neither, and never a freed chain under a name.
    pub fn rename(&self, from_dir: &str, from_name: &str, to_dir: &str, to_name: &str) -> Result<(), FatErr> {
        let src = self.lookup(from_dir, from_name)?.ok_or(ErrorCode::NoEntry)?;
        let from_path = join(from_dir, &src.name);
        if src.dir && (to_dir == from_path || to_dir.starts_with(&format!("{from_path}/"))) {
            return Err(ErrorCode::Invalid.into());
        }
        let dst = self.lookup(to_dir, to_name)?;
        if let Some(dst) = &dst {
            match (dst.dir, src.dir) {
                (true, false) => return Err(ErrorCode::IsDirectory.into()),
                (false, true) => return Err(ErrorCode::NotDirectory.into()),
                _ => {}
            }
        }
        self.close_all()?;
        if let Some(dst) = dst {
            if from_dir == to_dir && dst.name == src.name {
                if src.name == to_name {
                    return Ok(());
                }
                // A change of case only: one directory cannot hold both names (FAT
                // compares them without case), so the file moves through a temporary
                // name, linked before the name it replaces is removed, a sync after each
                // step. A cut in between leaves the old name, the new one, or
                // `<name>.weft-rename` alone (docs/devices.md).
                let tmp = format!("{}.weft-rename", src.name);
                let d = self.dir(from_dir)?;
                for (from, to) in [(src.name.as_str(), tmp.as_str()), (tmp.as_str(), to_name)] {
                    d.link_entry(from, &d, to).map_err(fat_err)?;
                    self.sync()?;
                    d.remove_keeping_clusters(from).map_err(fat_err)?;
                    self.sync()?;
                }
                return Ok(());
            }
            self.unlink(to_dir, &dst.name)?;
            self.sync()?;
        }
        let (from, to) = (self.dir(from_dir)?, self.dir(to_dir)?);
        from.link_entry(&src.name, &to, to_name).map_err(fat_err)?;
        self.sync()?;
        // The chain now has the new name: nothing to release.
        from.remove_keeping_clusters(&src.name).map_err(fat_err)?;
        self.sync()
    }

    /// Set the modification time of `path` (FAT keeps 2-second steps) and its access date.
    pub fn set_times(&self, dir: &str, name: &str, atime: Option<u64>, mtime: Option<u64>) -> Result<(), FatErr> {
        let e = self.lookup(dir, name)?.ok_or(ErrorCode::NoEntry)?;
        if e.dir {
            // fatfs edits only files' entries.
            return Err(ErrorCode::Unsupported.into());
        }
        self.with_file(&join(dir, &e.name), |f, _| {
            if let Some(m) = mtime {
                f.set_modified(to_fat(m));
            }
            if let Some(a) = atime {
                f.set_accessed(to_fat(a).date);
            }
            Ok(())
        })
    }
}

/// Write `n` zero bytes at `f`'s position.
fn zeros<S: Sectors>(
    f: &mut FatFile<'_, S>,
    mut n: u64,
) -> Result<(), FatErr> {
    let z = [0u8; 4096];
    while n > 0 {
        let k = n.min(z.len() as u64) as usize;
        f.write_all(&z[..k]).map_err(fat_err)?;
        n -= k as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::{Cell, RefCell};

    /// A device in memory, counting reads, writes and flushes.
    struct Mem {
        data: RefCell<Vec<u8>>,
        reads: Cell<u32>,
        writes: Cell<u32>,
        flushes: Cell<u32>,
    }

    impl Mem {
        fn new(bytes: usize) -> Rc<Mem> {
            Rc::new(Mem {
                data: RefCell::new(vec![0; bytes]),
                reads: Cell::new(0),
                writes: Cell::new(0),
                flushes: Cell::new(0),
            })
        }
    }

    impl Sectors for Rc<Mem> {
        fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String> {
            self.reads.set(self.reads.get() + 1);
            let (a, b) = (start as usize * 512, (start as usize + count as usize) * 512);
            Ok(self.data.borrow()[a..b].to_vec())
        }
        fn write(&self, start: u64, data: &[u8]) -> Result<(), String> {
            assert_eq!(data.len() % 512, 0, "whole sectors");
            self.writes.set(self.writes.get() + 1);
            let a = start as usize * 512;
            self.data.borrow_mut()[a..a + data.len()].copy_from_slice(data);
            Ok(())
        }
        fn flush(&self) -> Result<(), String> {
            self.flushes.set(self.flushes.get() + 1);
            Ok(())
        }
    }

    fn clock() -> u64 {
        1_700_000_000_000_000_000
    }

    fn open(m: &Rc<Mem>) -> (Tree<Rc<Mem>>, Found) {
        let n = m.data.borrow().len() as u64 / 512;
        Tree::open(m.clone(), 512, n, clock).unwrap()
    }

    #[test]
    fn dates_round_trip() {
        let t = to_fat(clock());
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        assert_eq!(from_fat(t), clock());
        assert_eq!(to_fat(0).date.year, 1980);
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(civil(days(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn a_blank_device_is_formatted_and_files_survive_a_remount() {
        let m = Mem::new(4 << 20);
        let (t, found) = open(&m);
        assert_eq!(found, Found::Formatted(FatType::Fat12));
        t.mkdir("", "sub").unwrap();
        t.create_file("sub", "A Long File Name.txt").unwrap();
        assert_eq!(t.create_file("sub", "a long file name.TXT"), Err(ErrorCode::Exist.into()));
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        t.write("sub/A Long File Name.txt", 0, &big).unwrap();
        t.write("sub/A Long File Name.txt", 100_010, b"tail").unwrap();
        assert_eq!((m.writes.get(), m.flushes.get()), (0, 0), "nothing reaches the device before sync");
        t.sync().unwrap();
        assert_eq!(m.flushes.get(), 2, "the data and clusters, then the entries that name them");
        drop(t);
        let (t, found) = open(&m);
        assert_eq!(found, Found::Existing(FatType::Fat12));
        let e = t.lookup("sub", "a long file name.txt").unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.size, e.dir), ("A Long File Name.txt", 100_014, false));
        let (data, eof) = t.read("sub/A Long File Name.txt", 0, 200_000).unwrap();
        assert!(eof);
        assert_eq!(&data[..100_000], &big[..]);
        assert_eq!(&data[100_000..], b"\0\0\0\0\0\0\0\0\0\0tail");
        assert_eq!(t.read("sub/A Long File Name.txt", 5, 3).unwrap(), (big[5..8].to_vec(), false));
        t.set_size("sub/A Long File Name.txt", 3).unwrap();
        assert_eq!(t.read("sub/A Long File Name.txt", 0, 10).unwrap(), (big[..3].to_vec(), true));
    }

    /// A big read of a file's consecutive clusters is one `block.read` past the cache,
    /// with the same bytes as the cluster-by-cluster path; writes not yet synced are
    /// read from the cache.
    #[test]
    fn big_reads_of_consecutive_clusters_go_past_the_cache() {
        let m = Mem::new(8 << 20);
        let (t, _) = open(&m);
        t.create_file("", "big").unwrap();
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i * 13 % 251) as u8).collect();
        t.write("big", 0, &data).unwrap();
        // Unsynced: the cache has it, and the read takes it from there.
        assert_eq!(t.read("big", 4096, 256 * 1024).unwrap().0, data[4096..4096 + 256 * 1024]);
        t.sync().unwrap();
        let before = m.reads.get();
        let (got, eof) = t.read("big", 4096, 256 * 1024).unwrap();
        assert_eq!((got == data[4096..4096 + 256 * 1024], eof), (true, false));
        assert_eq!(m.reads.get() - before, 1, "one block.read");
        // The position moved past it: the next read follows on, to the end.
        let (tail, eof) = t.read("big", 4096 + 256 * 1024, 1 << 20).unwrap();
        assert_eq!((tail == data[4096 + 256 * 1024..], eof), (true, true));
        // Small reads and reads not in whole sectors take the cache.
        assert_eq!(t.read("big", 100, 70_000).unwrap().0, data[100..70_100]);
    }

    #[test]
    fn remove_and_rename() {
        let m = Mem::new(2 << 20);
        let (t, _) = open(&m);
        t.mkdir("", "d").unwrap();
        t.create_file("d", "x").unwrap();
        t.create_file("", "f").unwrap();
        t.create_file("", "g").unwrap();
        t.write("f", 0, b"ffff").unwrap();
        assert_eq!(t.remove("", "d", true), Err(ErrorCode::NotEmpty.into()));
        assert_eq!(t.remove("", "d", false), Err(ErrorCode::IsDirectory.into()));
        assert_eq!(t.remove("d", "x", true), Err(ErrorCode::NotDirectory.into()));
        // File over file replaces it.
        t.rename("", "f", "", "g").unwrap();
        let names: Vec<String> = t.list("").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["d", "g"]);
        assert_eq!(t.read("g", 0, 10).unwrap().0, b"ffff");
        assert_eq!(t.rename("", "d", "d", "e"), Err(ErrorCode::Invalid.into()));
        assert_eq!(t.rename("", "g", "", "d"), Err(ErrorCode::IsDirectory.into()));
        t.rename("", "g", "d", "G2").unwrap();
        t.rename("d", "g2", "d", "g2").unwrap();
        assert_eq!(t.lookup("d", "G2").unwrap().unwrap().name, "g2");
        t.remove("d", "x", false).unwrap();
        t.remove("d", "g2", false).unwrap();
        t.remove("", "d", true).unwrap();
        assert!(t.list("").unwrap().is_empty());
        assert_eq!(t.read("nope", 0, 1), Err(ErrorCode::NoEntry.into()));
    }

    /// A device that keeps every write and flush in order, to rebuild what a power cut
    /// could leave: everything up to a flush, plus any subset of the writes after it.
    struct Log {
        base: Vec<u8>,
        events: RefCell<Vec<Option<(u64, Vec<u8>)>>>,
    }

    impl Sectors for Rc<Log> {
        fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String> {
            let mut img = self.base.clone();
            for (at, data) in self.events.borrow().iter().flatten() {
                img[*at as usize * 512..][..data.len()].copy_from_slice(data);
            }
            Ok(img[start as usize * 512..][..count as usize * 512].to_vec())
        }
        fn write(&self, start: u64, data: &[u8]) -> Result<(), String> {
            self.events.borrow_mut().push(Some((start, data.to_vec())));
            Ok(())
        }
        fn flush(&self) -> Result<(), String> {
            self.events.borrow_mut().push(None);
            Ok(())
        }
    }

    /// The power cuts `log` could have had: after each of its flushes from event `from`
    /// on, each `masks(k, n)` choice among the `n` writes before the next flush (bit
    /// `i % 64` keeps write `i`) over everything up to the flush. `check(k, mask, tree)`
    /// gets each such image remounted; returns how many there were.
    fn each_cut(log: &Log, from: usize, masks: impl Fn(usize, usize) -> Vec<u64>, mut check: impl FnMut(usize, u64, Tree<Rc<Mem>>)) -> usize {
        let events = log.events.borrow().clone();
        let flushes: Vec<usize> = (from..events.len()).filter(|i| events[*i].is_none()).collect();
        let mut cuts = 0;
        for (k, &f) in flushes.iter().enumerate() {
            let end = flushes.get(k + 1).copied().unwrap_or(events.len());
            let pending: Vec<&(u64, Vec<u8>)> = events[f + 1..end].iter().flatten().collect();
            for mask in masks(k, pending.len()) {
                let mut img = log.base.clone();
                let kept = pending.iter().enumerate().filter(|(i, _)| mask >> (i % 64) & 1 == 1).map(|(_, w)| *w);
                for (at, data) in events[..=f].iter().flatten().chain(kept) {
                    img[*at as usize * 512..][..data.len()].copy_from_slice(data);
                }
                let m = Mem::new(0);
                *m.data.borrow_mut() = img;
                let (t, _) = Tree::open(m, 512, log.base.len() as u64 / 512, clock).unwrap();
                check(k, mask, t);
                cuts += 1;
            }
        }
        cuts
    }

    /// Every file of a tree read whole: a chain shorter than its entry's size is an error.
    fn read_all(t: &Tree<Rc<Mem>>, dir: &str) -> Result<(), FatErr> {
        for e in t.list(dir)? {
            let path = join(dir, &e.name);
            if e.dir {
                read_all(t, &path)?;
            } else {
                let (data, _) = t.read(&path, 0, e.size)?;
                assert_eq!(data.len() as u64, e.size);
            }
        }
        Ok(())
    }

    #[test]
    fn a_power_cut_anywhere_leaves_every_entry_readable() {
        let log = Rc::new(Log { base: vec![0; 2 << 20], events: RefCell::new(Vec::new()) });
        let (t, _) = Tree::open(log.clone(), 512, 4096, clock).unwrap();
        t.sync().unwrap();
        // What SQLite does with a journal, and a file that grows over several syncs.
        let block: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        t.create_file("", "db").unwrap();
        t.write("db", 0, &block).unwrap();
        t.sync().unwrap();
        for round in 0..3u64 {
            t.create_file("", "db-journal").unwrap();
            t.write("db-journal", 0, &block).unwrap();
            t.write("db-journal", 3000, &block).unwrap();
            t.sync().unwrap();
            t.write("db", 3000 * (round + 1), &block).unwrap();
            t.sync().unwrap();
            t.remove("", "db-journal", false).unwrap();
        }
        // A rename over an existing file, then a truncation.
        t.create_file("", "next").unwrap();
        t.write("next", 0, &block).unwrap();
        t.sync().unwrap();
        t.rename("", "next", "", "db").unwrap();
        t.set_size("db", 100).unwrap();
        t.sync().unwrap();
        // A change of case only (durable when it returns, like any rename).
        t.rename("", "db", "", "DB").unwrap();
        let names: Vec<String> = t.list("").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["DB"]);
        let flushes = log.events.borrow().iter().filter(|e| e.is_none()).count();
        assert!(flushes >= 12, "{flushes} flushes");
        // Every subset when few, else 64 drawn ones (and none and all).
        let masks = |k: usize, n: usize| -> Vec<u64> {
            if n <= 6 {
                (0..1u64 << n).collect()
            } else {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ k as u64;
                (0..64).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x }).chain([0, u64::MAX]).collect()
            }
        };
        let cuts = each_cut(&log, 0, masks, |k, mask, t| {
            read_all(&t, "").unwrap_or_else(|e| panic!("cut after flush {k} keeping {mask:#x}: {e:?}"));
            // Once synced, `db` is never lost; the rename over it leaves the old
            // name or the new one (or both), never neither; the change of case,
            // `db`, `DB` or the temporary name.
            let names: Vec<String> = t.list("").unwrap().into_iter().map(|e| e.name).collect();
            let kept = |n: &String| n.eq_ignore_ascii_case("db") || n == "next" || n == "db.weft-rename";
            assert!(k == 0 || names.iter().any(kept), "cut after flush {k}: {names:?}");
        });
        assert!(cuts > 100, "{cuts} cuts");
    }

    /// A file that grows across syncs (a database) gets zeroed clusters reserved past its
    /// end: its next syncs take one device flush instead of two, and a cut between its
    /// data and its entry shows zeros there, never bytes an earlier file left in those
    /// clusters. The reserve goes back at the end of the run.
    #[test]
    fn a_file_growing_in_place_syncs_with_one_flush_and_a_cut_shows_zeros() {
        let log = Rc::new(Log { base: vec![0; 2 << 20], events: RefCell::new(Vec::new()) });
        let (t, _) = Tree::open(log.clone(), 512, 4096, clock).unwrap();
        // An earlier file fills the volume and leaves its bytes in every cluster the
        // database gets later.
        t.create_file("", "old").unwrap();
        let mut at = 0;
        while t.write("old", at, &[0xaa; 4096]).is_ok() {
            at += 4096;
        }
        assert!(at > 1 << 20, "{at}");
        t.sync().unwrap();
        t.remove("", "old", false).unwrap();
        t.sync().unwrap();
        t.create_file("", "db").unwrap();
        t.write("db", 0, &[1; 4096]).unwrap();
        t.sync().unwrap();
        let flushes = || log.events.borrow().iter().filter(|e| e.is_none()).count();
        let mut per_sync = Vec::new();
        let start = log.events.borrow().len();
        for round in 1..=12u8 {
            let before = flushes();
            t.write("db", 4096 * u64::from(round), &[round + 1; 4096]).unwrap();
            t.sync().unwrap();
            per_sync.push(flushes() - before);
        }
        // The first growth orders data before entry and reserves; the reserve (64 KiB,
        // renewed when half is used) keeps the rest at one flush.
        assert_eq!(per_sync[0], 2, "{per_sync:?}");
        assert!(per_sync[1..].iter().all(|n| *n == 1), "{per_sync:?}");
        // Every subset of the first ten writes after each flush.
        let cuts = each_cut(&log, start, |_, n| (0..1u64 << n.min(10)).collect(), |k, mask, t| {
            let e = t.lookup("", "db").unwrap().unwrap();
            let (data, _) = t.read("db", 0, e.size).unwrap();
            assert!(e.size >= 4096 * (k as u64 + 1), "cut after flush {k}: a synced size was lost ({})", e.size);
            // Sector by sector (a cut may keep part of a write): the block's own
            // bytes, or zeros.
            for (i, sector) in data.chunks(512).enumerate() {
                let own = (i / 8) as u8 + 1;
                let ok = sector.iter().all(|b| *b == own) || sector.iter().all(|b| *b == 0);
                assert!(ok, "cut after flush {k} keeping {mask:#x}: sector {i} of db holds {:?}", &sector[..4]);
            }
        });
        assert!(cuts > 50, "{cuts} cuts");
        // The end of the run gives the reserve back: the chain ends with the data.
        t.close().unwrap();
        let mut f = t.fs.root_dir().open_file("db").unwrap();
        let cs = u64::from(t.fs.cluster_size());
        assert_eq!(f.extents().count() as u64, (13 * 4096u64).div_ceil(cs), "db's 13 blocks of 4 KiB in clusters of {cs}");
    }

    #[test]
    fn garbage_is_not_formatted_and_not_written() {
        let m = Mem::new(1 << 20);
        m.data.borrow_mut()[0] = 0xeb;
        m.data.borrow_mut()[700] = 1;
        let err = Tree::open(m.clone(), 512, 2048, clock).err().unwrap();
        assert!(err.contains("not a usable FAT file system"), "{err}");
        assert_eq!(m.writes.get(), 0);
    }

    #[test]
    fn a_full_disk_is_insufficient_space() {
        let m = Mem::new(1 << 20);
        let (t, _) = open(&m);
        t.create_file("", "f").unwrap();
        let big = vec![1u8; 2 << 20];
        assert_eq!(t.write("f", 0, &big), Err(ErrorCode::InsufficientSpace.into()));
    }
}
