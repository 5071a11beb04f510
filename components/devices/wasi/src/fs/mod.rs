//! `wasi:filesystem`: preopened directories on weft devices only.
//!
//! `preopen` configure entries make the trees, in order: `<dir>=tar:<role>` a read-only
//! tree from the tar archive that fills block device `<role>` ([`tar`], read through
//! [`block`]), `<dir>=fat:<role>` a writable FAT file system on block device `<role>`
//! ([`fat`]; formatted when blank), `<dir>=memory` an empty writable tree ([`mem`]). Paths are resolved by
//! [`path`], the same for all: never above the descriptor they start from, symbolic
//! links (in memory trees, made by `symlink-at`, and in tar archives) followed inside it.
//! Memory trees also have hard links (`link-at`); FAT has neither.
//!
//! A tar or FAT preopen whose device cannot be opened, or does not hold a usable archive
//! or file system, is still listed (so the program's paths reach it), but every call on it fails:
//! `bad-descriptor` when the device is missing, `io` when the archive is broken. The
//! cause is logged once, at `configure`, naming the device.

pub mod block;
pub mod fat;
pub mod mem;
pub mod path;
pub mod tar;

use alloc::format;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use weft_guest::Global;

use crate::WasiOnWeft;
use crate::exports::wasi::filesystem::preopens;
use crate::exports::wasi::filesystem::types::{
    Advice, Datetime, Descriptor, DescriptorBorrow, DescriptorFlags, DescriptorStat,
    DescriptorType, DirectoryEntry, DirectoryEntryStream, ErrorBorrow, ErrorCode, Filesize, Guest,
    GuestDescriptor, GuestDirectoryEntryStream, InputStream, MetadataHashValue, NewTimestamp,
    OpenFlags, OutputStream, PathFlags,
};
use crate::exports::wasi::io::streams::StreamError;
use crate::streams::{self, IoError};
use crate::weft::devices::{block as weft_block, clock};
use crate::{config::Spec, log_event};
use path::{Kind, Node as _};

/// Whether flags `$f` hold all of `$g` (the generated flag types have only `bits`).
macro_rules! has {
    ($f:expr, $g:expr) => {
        ($f).bits() & ($g).bits() == ($g).bits()
    };
}

/// Whether flags `$f` hold any of `$g`.
macro_rules! any {
    ($f:expr, $g:expr) => {
        ($f).bits() & ($g).bits() != 0
    };
}

/// Most bytes one `read` (or one stream read) returns.
pub const READ_MAX: u64 = tar::READ_MAX;

/// A block device opened with weft's `block.open`.
pub struct Device(u32);

impl block::Sectors for Device {
    fn read(&self, start: u64, count: u32) -> Result<Vec<u8>, String> {
        weft_block::read(self.0, start, count).map_err(|e| {
            format!(
                "block.read of {count} sectors at sector {start}: {}",
                e.name()
            )
        })
    }

    fn write(&self, start: u64, data: &[u8]) -> Result<(), String> {
        weft_block::write(self.0, start, data).map_err(|e| {
            format!(
                "block.write of {} bytes at sector {start}: {}",
                data.len(),
                e.name()
            )
        })
    }

    fn flush(&self) -> Result<(), String> {
        weft_block::flush(self.0).map_err(|e| format!("block.flush: {}", e.name()))
    }
}

/// A read-only tree from an archive.
pub struct TarTree {
    id: u64,
    /// The preopen and the block role, for messages.
    guest: String,
    role: String,
    src: block::Disk<Device>,
    index: tar::Index,
}

/// A writable tree in memory.
pub struct MemFs {
    id: u64,
    tree: mem::MemTree,
}

/// A writable FAT file system on a block device.
pub struct FatFs {
    id: u64,
    guest: String,
    role: String,
    tree: fat::Tree<Device>,
}

impl FatFs {
    /// `r` with a device or file-system failure turned into `io`, logged (once) naming
    /// the preopen and the device.
    fn ok<T>(&self, r: Result<T, fat::FatErr>) -> Result<T, ErrorCode> {
        r.map_err(|e| match e {
            fat::FatErr::Code(c) => c,
            fat::FatErr::Io(m) => {
                log_once(&format!(
                    "preopen {}: block device `{}`: {m} (further failures not logged)",
                    self.guest, self.role
                ));
                ErrorCode::Io
            }
        })
    }
}

/// A node of a FAT tree: its path from the root (`""` for the root itself).
pub struct FatNode {
    path: String,
    dir: bool,
}

impl FatNode {
    /// The parent directory's path and the last name.
    fn split(&self) -> (&str, &str) {
        match self.path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", self.path.as_str()),
        }
    }
}

/// A file or directory of some tree.
#[derive(Clone)]
pub enum Obj {
    Tar(Rc<TarTree>, u32),
    Mem(Rc<MemFs>, mem::MemRef),
    Fat(Rc<FatFs>, Rc<FatNode>),
}

impl path::Node for Obj {
    fn link_target(&self) -> Option<String> {
        match self {
            Obj::Tar(t, n) => match t.index.entry(*n).map(|e| &e.body) {
                Some(tar::Body::Symlink(target)) => Some(target.clone()),
                _ => None,
            },
            Obj::Mem(_, n) => match &n.borrow().body {
                mem::Body::Symlink(target) => Some(target.clone()),
                _ => None,
            },
            Obj::Fat(..) => None,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Obj::Tar(t, n) => match t.index.entry(*n).map(|e| &e.body) {
                Some(tar::Body::Dir(_)) => Kind::Dir,
                Some(tar::Body::File { .. }) => Kind::File,
                Some(tar::Body::Symlink(_)) => Kind::Symlink,
                _ => Kind::Other,
            },
            Obj::Mem(_, n) => n.borrow().kind(),
            Obj::Fat(_, n) if n.dir => Kind::Dir,
            Obj::Fat(..) => Kind::File,
        }
    }

    fn child(&self, name: &str) -> Option<Obj> {
        match self {
            Obj::Tar(t, n) => t.index.child(*n, name).map(|c| Obj::Tar(t.clone(), c)),
            Obj::Mem(fs, n) => mem::child(n, name).map(|c| Obj::Mem(fs.clone(), c)),
            // A failure to read the directory is logged, and the name is not found.
            Obj::Fat(fs, n) => fs
                .ok(fs.tree.lookup(&n.path, name))
                .ok()
                .flatten()
                .map(|e| {
                    Obj::Fat(
                        fs.clone(),
                        Rc::new(FatNode {
                            path: fat::join(&n.path, &e.name),
                            dir: e.dir,
                        }),
                    )
                }),
        }
    }
}

/// Wall-clock nanoseconds (the epoch for times before it).
fn now() -> u64 {
    u64::try_from(clock::wall_now()).unwrap_or(0)
}

fn datetime(ns: u64) -> Datetime {
    Datetime {
        seconds: ns / 1_000_000_000,
        nanoseconds: (ns % 1_000_000_000) as u32,
    }
}

/// splitmix64's finalizer: spreads tree and inode numbers over the hash.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Obj {
    fn tree_id(&self) -> u64 {
        match self {
            Obj::Tar(t, _) => t.id,
            Obj::Mem(fs, _) => fs.id,
            Obj::Fat(fs, _) => fs.id,
        }
    }

    fn ino(&self) -> u64 {
        match self {
            Obj::Tar(_, n) => u64::from(*n),
            Obj::Mem(_, n) => n.borrow().ino,
            // FAT has no inode numbers: the path, without case, names the node.
            Obj::Fat(_, n) => n.path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01b3)
            }),
        }
    }

    fn same(&self, other: &Obj) -> bool {
        match (self, other) {
            (Obj::Tar(a, x), Obj::Tar(b, y)) => Rc::ptr_eq(a, b) && x == y,
            (Obj::Mem(_, x), Obj::Mem(_, y)) => Rc::ptr_eq(x, y),
            (Obj::Fat(a, x), Obj::Fat(b, y)) => {
                Rc::ptr_eq(a, b) && x.path.eq_ignore_ascii_case(&y.path)
            }
            _ => false,
        }
    }

    fn dtype(&self) -> DescriptorType {
        match self {
            Obj::Tar(t, n) => match t.index.entry(*n).map(|e| &e.body) {
                Some(tar::Body::Other(d)) => *d,
                _ => dtype(self.kind()),
            },
            Obj::Mem(..) | Obj::Fat(..) => dtype(self.kind()),
        }
    }

    fn stat(&self) -> DescriptorStat {
        match self {
            Obj::Tar(t, n) => {
                let (size, nlink, mtime) = match t.index.entry(*n) {
                    Some(e) => {
                        let size = match &e.body {
                            tar::Body::File { size, .. } => *size,
                            tar::Body::Symlink(target) => target.len() as u64,
                            _ => 0,
                        };
                        (size, e.nlink, e.mtime)
                    }
                    None => (0, 1, 0),
                };
                let mtime = Some(Datetime {
                    seconds: mtime,
                    nanoseconds: 0,
                });
                DescriptorStat {
                    type_: self.dtype(),
                    link_count: nlink,
                    size,
                    data_access_timestamp: None,
                    data_modification_timestamp: mtime,
                    status_change_timestamp: mtime,
                }
            }
            Obj::Mem(_, n) => {
                let n = n.borrow();
                let size = match &n.body {
                    mem::Body::Dir(_) => 0,
                    _ => n.size(),
                };
                DescriptorStat {
                    type_: dtype(n.kind()),
                    link_count: n.nlink,
                    size,
                    data_access_timestamp: Some(datetime(n.atime)),
                    data_modification_timestamp: Some(datetime(n.mtime)),
                    status_change_timestamp: Some(datetime(n.mtime)),
                }
            }
            Obj::Fat(fs, n) => {
                let (dir, name) = n.split();
                let e = if n.path.is_empty() {
                    None
                } else {
                    fs.ok(fs.tree.lookup(dir, name)).ok().flatten()
                };
                let (size, atime, mtime) = e.map_or((0, None, None), |e| {
                    (e.size, Some(datetime(e.atime)), Some(datetime(e.mtime)))
                });
                DescriptorStat {
                    type_: self.dtype(),
                    link_count: 1,
                    size: if n.dir { 0 } else { size },
                    data_access_timestamp: atime,
                    data_modification_timestamp: mtime,
                    status_change_timestamp: mtime,
                }
            }
        }
    }

    fn hash(&self) -> MetadataHashValue {
        MetadataHashValue {
            lower: mix(self.ino() ^ (self.tree_id() << 48)),
            upper: mix(self.tree_id()),
        }
    }

    /// Up to `len` bytes of a file from `offset`, and whether that reaches its end.
    pub fn read(&self, offset: u64, len: u64) -> Result<(Vec<u8>, bool), ErrorCode> {
        match self {
            Obj::Tar(t, n) => t.index.read(&t.src, *n, offset, len).map_err(|e| {
                log_once(&format!(
                    "preopen {}: block device `{}`: read failed: {e} (further failures not logged)",
                    t.guest, t.role
                ));
                ErrorCode::Io
            }),
            Obj::Mem(_, n) => mem::read(n, offset, len, READ_MAX),
            Obj::Fat(fs, n) => fs.ok(fs.tree.read(&n.path, offset, len.min(READ_MAX))),
        }
    }

    /// Write `bytes` at `offset` of a writable file; returns the bytes written.
    fn write(&self, offset: u64, bytes: &[u8]) -> Result<u64, ErrorCode> {
        match self {
            Obj::Mem(_, n) => mem::write(n, offset, bytes, now()),
            Obj::Fat(fs, n) => fs.ok(fs.tree.write(&n.path, offset, bytes)),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    /// A file's size.
    fn size(&self) -> Result<u64, ErrorCode> {
        match self {
            Obj::Mem(_, n) => Ok(n.borrow().size()),
            _ => Ok(self.stat().size),
        }
    }

    fn set_size(&self, size: u64) -> Result<(), ErrorCode> {
        match self {
            Obj::Mem(_, n) => mem::set_size(n, size, now()),
            Obj::Fat(fs, n) => fs.ok(fs.tree.set_size(&n.path, size)),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    /// WASI `sync`: a FAT tree's device `flush`; nothing to do elsewhere.
    fn sync(&self) -> Result<(), ErrorCode> {
        match self {
            Obj::Fat(fs, _) => fs.ok(fs.tree.sync()),
            _ => Ok(()),
        }
    }

    fn entries(&self) -> Vec<DirectoryEntry> {
        let list: Vec<(String, DescriptorType)> = match self {
            Obj::Tar(t, n) => match t.index.entry(*n).map(|e| &e.body) {
                Some(tar::Body::Dir(m)) => m
                    .iter()
                    .map(|(name, c)| (name.clone(), Obj::Tar(t.clone(), *c).dtype()))
                    .collect(),
                _ => Vec::new(),
            },
            Obj::Mem(_, n) => mem::entries(n)
                .into_iter()
                .map(|(name, k)| (name, dtype(k)))
                .collect(),
            Obj::Fat(fs, n) => fs
                .ok(fs.tree.list(&n.path))
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.name, dtype(if e.dir { Kind::Dir } else { Kind::File })))
                .collect(),
        };
        list.into_iter()
            .map(|(name, type_)| DirectoryEntry { type_, name })
            .collect()
    }
}

fn dtype(k: Kind) -> DescriptorType {
    match k {
        Kind::Dir => DescriptorType::Directory,
        Kind::File => DescriptorType::RegularFile,
        Kind::Symlink => DescriptorType::SymbolicLink,
        Kind::Other => DescriptorType::Unknown,
    }
}

/// Log a read failure of a tar tree the first time only.
fn log_once(message: &str) {
    static LOGGED: Global<bool> = Global::new(false);
    if !LOGGED.with(|l| core::mem::replace(l, true)) {
        log_event(message, &[]);
    }
}

/// A preopened directory: its root, or why it is unusable.
struct Preopen {
    guest: String,
    root: Result<Obj, ErrorCode>,
}

static PREOPENS: Global<Vec<Preopen>> = Global::new(Vec::new());

/// Logs why preopen `guest` on block device `role` failed; `code` is what its
/// accesses get.
fn preopen_failed(guest: &str, role: &str, why: String, code: ErrorCode) -> ErrorCode {
    log_event(
        &format!("preopen {guest}: block device `{role}`: {why}"),
        &[
            ("preopen", guest.to_string()),
            ("device", role.to_string()),
            ("error", why.clone()),
        ],
    );
    code
}

/// Open block device `role` for preopen `guest`: its handle and geometry.
fn open_device(
    guest: &str,
    role: &str,
) -> Result<(weft_block::Handle, weft_block::Geometry), ErrorCode> {
    let fail = |why: String| preopen_failed(guest, role, why, ErrorCode::BadDescriptor);
    let h = weft_block::open(role).map_err(|e| fail(format!("cannot open it ({})", e.name())))?;
    let g = weft_block::info(h)
        .map_err(|e| fail(format!("cannot read its geometry ({})", e.name())))?;
    Ok((h, g))
}

/// Open the tar tree on block device `role` for preopen `guest`; failures are logged.
fn open_tar(id: u64, guest: &str, role: &str) -> Result<Obj, ErrorCode> {
    let fail = |why: String, code: ErrorCode| preopen_failed(guest, role, why, code);
    let (h, g) = open_device(guest, role)?;
    let src = block::Disk::new(Device(h), g.sector_size, g.sector_count)
        .map_err(|e| fail(e, ErrorCode::Io))?;
    let index = tar::index(&src)
        .map_err(|e| fail(format!("not a usable tar archive: {e}"), ErrorCode::Io))?;
    let (files, dirs) = index.counts();
    log_event(
        &format!(
            "preopen {guest}: tar archive on block device `{role}`, {files} files, {dirs} directories"
        ),
        &[
            ("preopen", guest.to_string()),
            ("device", role.to_string()),
            ("files", files.to_string()),
            ("directories", dirs.to_string()),
        ],
    );
    let tree = TarTree {
        id,
        guest: guest.to_string(),
        role: role.to_string(),
        src,
        index,
    };
    Ok(Obj::Tar(Rc::new(tree), 0))
}

/// Open the FAT file system on block device `role` for preopen `guest` (formatting a
/// blank device); failures are logged.
fn open_fat(id: u64, guest: &str, role: &str) -> Result<Obj, ErrorCode> {
    let fail = |why: String, code: ErrorCode| preopen_failed(guest, role, why, code);
    let (h, g) = open_device(guest, role)?;
    let (tree, found) = fat::Tree::open(Device(h), g.sector_size, g.sector_count, now)
        .map_err(|e| fail(e, ErrorCode::Io))?;
    log_event(
        &format!(
            "preopen {guest}: FAT on block device `{role}`: {}",
            found.describe()
        ),
        &[
            ("preopen", guest.to_string()),
            ("device", role.to_string()),
            ("found", found.describe()),
        ],
    );
    let fs = FatFs {
        id,
        guest: guest.to_string(),
        role: role.to_string(),
        tree,
    };
    let root = FatNode {
        path: String::new(),
        dir: true,
    };
    Ok(Obj::Fat(Rc::new(fs), Rc::new(root)))
}

/// Make the preopened trees (`configure`).
pub fn setup(preopens: &[(String, Spec)]) {
    let list = preopens
        .iter()
        .enumerate()
        .map(|(i, (guest, spec))| {
            let id = i as u64 + 1;
            let root = match spec {
                Spec::Memory => {
                    let fs = Rc::new(MemFs {
                        id,
                        tree: mem::MemTree::new(now()),
                    });
                    let root = fs.tree.root.clone();
                    Ok(Obj::Mem(fs, root))
                }
                Spec::Tar(role) => open_tar(id, guest, role),
                Spec::Fat(role) => open_fat(id, guest, role),
            };
            Preopen {
                guest: guest.clone(),
                root,
            }
        })
        .collect();
    PREOPENS.with(|p| *p = list);
}

/// The end of the run (`shutdown`, or WASI's `exit`): sync every FAT tree, so what the
/// program wrote is on its device (a failure is logged; the run is ending anyway).
pub fn shutdown() {
    PREOPENS.with(|list| {
        for p in list.iter() {
            if let Ok(Obj::Fat(fs, _)) = &p.root {
                let _ = fs.ok(fs.tree.close());
            }
        }
    });
}

/// A descriptor: a node and what it was opened for (or the error every call gives).
pub struct Desc {
    obj: Result<Obj, ErrorCode>,
    flags: DescriptorFlags,
}

/// The flags a preopen is granted.
fn preopen_flags(root: &Result<Obj, ErrorCode>) -> DescriptorFlags {
    match root {
        Ok(Obj::Mem(..) | Obj::Fat(..)) => {
            DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY
        }
        _ => DescriptorFlags::READ,
    }
}

impl Desc {
    fn obj(&self) -> Result<&Obj, ErrorCode> {
        self.obj.as_ref().map_err(|e| *e)
    }

    /// The file, if this descriptor was opened with `need`.
    fn file(&self, need: DescriptorFlags) -> Result<&Obj, ErrorCode> {
        let o = self.obj()?;
        match o.kind() {
            Kind::Dir => Err(ErrorCode::IsDirectory),
            Kind::File if has!(self.flags, need) => Ok(o),
            Kind::File => Err(ErrorCode::BadDescriptor),
            _ => Err(ErrorCode::Unsupported),
        }
    }

    /// A file of a writable tree, opened for writing.
    fn mem_file(&self) -> Result<&Obj, ErrorCode> {
        match self.file(DescriptorFlags::WRITE)? {
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
            o => Ok(o),
        }
    }

    /// This directory, when its tree is writable.
    fn mem_dir(&self) -> Result<&Obj, ErrorCode> {
        match self.obj()? {
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
            o if o.kind() != Kind::Dir => Err(ErrorCode::NotDirectory),
            o => Ok(o),
        }
    }

    /// Resolve `p` from this directory.
    fn lookup(&self, p: &str, follow: bool) -> Result<Obj, ErrorCode> {
        let parsed = path::parse(p)?;
        path::resolve(self.obj()?, &parsed, follow)?
            .node
            .ok_or(ErrorCode::NoEntry)
    }

    /// The parent directory and last name of `p` (a writable tree); `name-less`
    /// paths (`.`, `a/..`) give `none_err`.
    fn entry_of(
        &self,
        p: &str,
        none_err: ErrorCode,
    ) -> Result<(Obj, String, Option<Obj>), ErrorCode> {
        self.mem_dir()?;
        let parsed = path::parse(p)?;
        let found = path::resolve(self.obj()?, &parsed, false)?;
        let name = found.name.ok_or(none_err)?;
        match found.parent {
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
            dir => Ok((dir, name.to_string(), found.node)),
        }
    }
}

fn follows(f: PathFlags) -> bool {
    has!(f, PathFlags::SYMLINK_FOLLOW)
}

/// Apply `set-times` to a memory node.
fn set_times(n: &mem::MemRef, atime: NewTimestamp, mtime: NewTimestamp) {
    let t = now();
    let pick = |new: NewTimestamp, old: u64| match new {
        NewTimestamp::NoChange => old,
        NewTimestamp::Now => t,
        NewTimestamp::Timestamp(d) => d
            .seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.nanoseconds)),
    };
    let mut n = n.borrow_mut();
    n.atime = pick(atime, n.atime);
    n.mtime = pick(mtime, n.mtime);
}

/// Apply `set-times` to a FAT node (a directory's times cannot be set).
fn fat_times(o: &Obj, atime: NewTimestamp, mtime: NewTimestamp) -> Result<(), ErrorCode> {
    let Obj::Fat(fs, n) = o else {
        return Err(ErrorCode::Invalid);
    };
    let t = now();
    let pick = |new: NewTimestamp| match new {
        NewTimestamp::NoChange => None,
        NewTimestamp::Now => Some(t),
        NewTimestamp::Timestamp(d) => Some(
            d.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(u64::from(d.nanoseconds)),
        ),
    };
    let (dir, name) = n.split();
    fs.ok(fs.tree.set_times(dir, name, pick(atime), pick(mtime)))
}

/// A stream error carrying a filesystem error code.
pub fn stream_error(code: ErrorCode) -> StreamError {
    StreamError::LastOperationFailed(crate::exports::wasi::io::error::Error::new(IoError::fs(
        code,
    )))
}

/// A file's input stream: reads from a position that advances.
pub struct Reader {
    file: Obj,
    pos: Cell<u64>,
}

impl Reader {
    pub fn read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let (data, eof) = self.file.read(self.pos.get(), len).map_err(stream_error)?;
        if data.is_empty() && eof {
            return Err(StreamError::Closed);
        }
        self.pos.set(self.pos.get() + data.len() as u64);
        Ok(data)
    }
}

/// A file's output stream: writes at a position that advances, or always at the end.
pub struct Writer {
    file: Obj,
    /// `None`: append.
    pos: Option<Cell<u64>>,
}

impl Writer {
    pub fn write(&self, bytes: &[u8]) -> Result<(), StreamError> {
        let at = match &self.pos {
            Some(p) => p.get(),
            None => self.file.size().map_err(stream_error)?,
        };
        let n = self.file.write(at, bytes).map_err(stream_error)?;
        if let Some(p) = &self.pos {
            p.set(at + n);
        }
        Ok(())
    }
}

/// A directory listing, taken when `read-directory` was called.
pub struct Entries(RefCell<alloc::vec::IntoIter<DirectoryEntry>>);

impl GuestDirectoryEntryStream for Entries {
    fn read_directory_entry(&self) -> Result<Option<DirectoryEntry>, ErrorCode> {
        Ok(self.0.borrow_mut().next())
    }
}

impl Guest for WasiOnWeft {
    type Descriptor = Desc;
    type DirectoryEntryStream = Entries;

    fn filesystem_error_code(err: ErrorBorrow<'_>) -> Option<ErrorCode> {
        err.get::<IoError>().fs
    }
}

impl preopens::Guest for WasiOnWeft {
    fn get_directories() -> Vec<(Descriptor, String)> {
        PREOPENS.with(|list| {
            list.iter()
                .map(|p| {
                    let d = Desc {
                        obj: p.root.clone(),
                        flags: preopen_flags(&p.root),
                    };
                    (Descriptor::new(d), p.guest.clone())
                })
                .collect()
        })
    }
}

impl GuestDescriptor for Desc {
    fn read_via_stream(&self, offset: Filesize) -> Result<InputStream, ErrorCode> {
        let file = self.file(DescriptorFlags::READ)?.clone();
        Ok(InputStream::new(streams::InputStream::File(Reader {
            file,
            pos: Cell::new(offset),
        })))
    }

    fn write_via_stream(&self, offset: Filesize) -> Result<OutputStream, ErrorCode> {
        let file = self.mem_file()?.clone();
        Ok(OutputStream::new(streams::OutputStream::File(Writer {
            file,
            pos: Some(Cell::new(offset)),
        })))
    }

    fn append_via_stream(&self) -> Result<OutputStream, ErrorCode> {
        let file = self.mem_file()?.clone();
        Ok(OutputStream::new(streams::OutputStream::File(Writer {
            file,
            pos: None,
        })))
    }

    fn advise(&self, _: Filesize, _: Filesize, _: Advice) -> Result<(), ErrorCode> {
        self.obj().map(|_| ())
    }

    fn sync_data(&self) -> Result<(), ErrorCode> {
        self.obj()?.sync()
    }

    fn get_flags(&self) -> Result<DescriptorFlags, ErrorCode> {
        self.obj().map(|_| self.flags)
    }

    fn get_type(&self) -> Result<DescriptorType, ErrorCode> {
        // Only an unusable preopen has no object, and a preopen is a
        // directory. The preview1 adapter (C programs linked by
        // wasm-component-ld) asks every preopen's type at its first file
        // call and traps without one: the program would never see the I/O
        // errors its accesses get.
        Ok(self.obj.as_ref().map_or(DescriptorType::Directory, Obj::dtype))
    }

    fn set_size(&self, size: Filesize) -> Result<(), ErrorCode> {
        self.mem_file()?.set_size(size)
    }

    fn set_times(&self, atime: NewTimestamp, mtime: NewTimestamp) -> Result<(), ErrorCode> {
        match self.obj()? {
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
            Obj::Mem(_, n) => {
                set_times(n, atime, mtime);
                Ok(())
            }
            o @ Obj::Fat(..) => fat_times(o, atime, mtime),
        }
    }

    fn read(&self, len: Filesize, offset: Filesize) -> Result<(Vec<u8>, bool), ErrorCode> {
        self.file(DescriptorFlags::READ)?.read(offset, len)
    }

    fn write(&self, buffer: Vec<u8>, offset: Filesize) -> Result<Filesize, ErrorCode> {
        self.mem_file()?.write(offset, &buffer)
    }

    fn read_directory(&self) -> Result<DirectoryEntryStream, ErrorCode> {
        let o = self.obj()?;
        if o.kind() != Kind::Dir {
            return Err(ErrorCode::NotDirectory);
        }
        Ok(DirectoryEntryStream::new(Entries(RefCell::new(
            o.entries().into_iter(),
        ))))
    }

    fn sync(&self) -> Result<(), ErrorCode> {
        self.obj()?.sync()
    }

    fn create_directory_at(&self, path: String) -> Result<(), ErrorCode> {
        let (dir, name, node) = self.entry_of(&path, ErrorCode::Exist)?;
        if node.is_some() {
            return Err(ErrorCode::Exist);
        }
        match &dir {
            Obj::Mem(fs, d) => fs.tree.mkdir(d, &name, now()).map(|_| ()),
            Obj::Fat(fs, d) => fs.ok(fs.tree.mkdir(&d.path, &name)),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    fn stat(&self) -> Result<DescriptorStat, ErrorCode> {
        self.obj().map(Obj::stat)
    }

    fn stat_at(&self, flags: PathFlags, path: String) -> Result<DescriptorStat, ErrorCode> {
        self.lookup(&path, follows(flags)).map(|o| o.stat())
    }

    fn set_times_at(
        &self,
        flags: PathFlags,
        path: String,
        atime: NewTimestamp,
        mtime: NewTimestamp,
    ) -> Result<(), ErrorCode> {
        self.mem_dir()?;
        match self.lookup(&path, follows(flags))? {
            Obj::Mem(_, n) => {
                set_times(&n, atime, mtime);
                Ok(())
            }
            o @ Obj::Fat(..) => fat_times(&o, atime, mtime),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    fn link_at(
        &self,
        old_flags: PathFlags,
        old_path: String,
        new_desc: DescriptorBorrow<'_>,
        new_path: String,
    ) -> Result<(), ErrorCode> {
        let src = self.lookup(&old_path, follows(old_flags))?;
        let other = new_desc.get::<Desc>();
        let (dir, name, node) = other.entry_of(&new_path, ErrorCode::Exist)?;
        if node.is_some() {
            return Err(ErrorCode::Exist);
        }
        // A new name ending in `/` names a directory that is not there (Linux: ENOENT).
        if path::parse(&new_path)?.dir_only {
            return Err(ErrorCode::NoEntry);
        }
        match (&src, &dir) {
            (Obj::Mem(a, n), Obj::Mem(b, d)) if Rc::ptr_eq(a, b) => mem::link(d, &name, n, now()),
            // FAT has no hard links (Linux's vfat: EPERM).
            (Obj::Fat(a, _), Obj::Fat(b, _)) if Rc::ptr_eq(a, b) => Err(ErrorCode::NotPermitted),
            _ => Err(ErrorCode::CrossDevice),
        }
    }

    fn open_at(
        &self,
        path_flags: PathFlags,
        path: String,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Descriptor, ErrorCode> {
        let base = self.obj()?;
        let writes = any!(
            flags,
            DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY
        ) || any!(open, OpenFlags::CREATE | OpenFlags::TRUNCATE);
        if writes && matches!(base, Obj::Tar(..)) {
            return Err(ErrorCode::ReadOnly);
        }
        let parsed = path::parse(&path)?;
        let found = path::resolve(base, &parsed, follows(path_flags))?;
        let obj = match found.node {
            Some(_) if has!(open, OpenFlags::CREATE | OpenFlags::EXCLUSIVE) => {
                return Err(ErrorCode::Exist);
            }
            Some(o) => o,
            None if !has!(open, OpenFlags::CREATE) => return Err(ErrorCode::NoEntry),
            None if has!(open, OpenFlags::DIRECTORY) => return Err(ErrorCode::Invalid),
            None if parsed.dir_only => return Err(ErrorCode::IsDirectory),
            None => {
                let name = found.name.ok_or(ErrorCode::NoEntry)?;
                match &found.parent {
                    Obj::Mem(fs, dir) => {
                        Obj::Mem(fs.clone(), fs.tree.create_file(dir, &name, now())?)
                    }
                    Obj::Fat(fs, dir) => {
                        fs.ok(fs.tree.create_file(&dir.path, &name))?;
                        // Found again, for the name as stored.
                        found.parent.child(&name).ok_or(ErrorCode::Io)?
                    }
                    Obj::Tar(..) => return Err(ErrorCode::ReadOnly),
                }
            }
        };
        match obj.kind() {
            Kind::Dir if has!(flags, DescriptorFlags::WRITE) || has!(open, OpenFlags::TRUNCATE) => {
                return Err(ErrorCode::IsDirectory);
            }
            Kind::Dir => {}
            _ if has!(open, OpenFlags::DIRECTORY) => return Err(ErrorCode::NotDirectory),
            Kind::File => {
                if has!(open, OpenFlags::TRUNCATE) && !matches!(obj, Obj::Tar(..)) {
                    obj.set_size(0)?;
                }
            }
            // Not followed (no `symlink-follow`): POSIX's O_NOFOLLOW gives ELOOP.
            Kind::Symlink => return Err(ErrorCode::Loop),
            Kind::Other => return Err(ErrorCode::Unsupported),
        }
        Ok(Descriptor::new(Desc {
            obj: Ok(obj),
            flags,
        }))
    }

    fn readlink_at(&self, path: String) -> Result<String, ErrorCode> {
        match self.lookup(&path, false)? {
            Obj::Tar(t, n) => match t.index.entry(n).map(|e| &e.body) {
                Some(tar::Body::Symlink(target)) => Ok(target.clone()),
                _ => Err(ErrorCode::Invalid),
            },
            Obj::Mem(_, n) => match &n.borrow().body {
                mem::Body::Symlink(target) => Ok(target.clone()),
                _ => Err(ErrorCode::Invalid),
            },
            Obj::Fat(..) => Err(ErrorCode::Invalid),
        }
    }

    fn remove_directory_at(&self, path: String) -> Result<(), ErrorCode> {
        let (dir, name, _) = self.entry_of(&path, ErrorCode::Invalid)?;
        match &dir {
            Obj::Mem(_, d) => mem::rmdir(d, &name, now()),
            Obj::Fat(fs, d) => fs.ok(fs.tree.remove(&d.path, &name, true)),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    fn rename_at(
        &self,
        old: String,
        new_desc: DescriptorBorrow<'_>,
        new: String,
    ) -> Result<(), ErrorCode> {
        let other = new_desc.get::<Desc>();
        if self.mem_dir()?.tree_id() != other.mem_dir()?.tree_id() {
            return Err(ErrorCode::CrossDevice);
        }
        let (from, from_name, node) = self.entry_of(&old, ErrorCode::Invalid)?;
        if node.is_none() {
            return Err(ErrorCode::NoEntry);
        }
        let (to, to_name, _) = other.entry_of(&new, ErrorCode::Invalid)?;
        match (&from, &to) {
            (Obj::Mem(_, f), Obj::Mem(_, t)) => mem::rename(f, &from_name, t, &to_name, now()),
            (Obj::Fat(fs, f), Obj::Fat(_, t)) => {
                fs.ok(fs.tree.rename(&f.path, &from_name, &t.path, &to_name))
            }
            _ => Err(ErrorCode::CrossDevice),
        }
    }

    fn symlink_at(&self, old_path: String, new_path: String) -> Result<(), ErrorCode> {
        let (dir, name, node) = self.entry_of(&new_path, ErrorCode::Exist)?;
        if node.is_some() {
            return Err(ErrorCode::Exist);
        }
        // A link is no directory: a new name ending in `/` is not there (Linux: ENOENT).
        if path::parse(&new_path)?.dir_only {
            return Err(ErrorCode::NoEntry);
        }
        // As wasmtime: an absolute target could only mean the host's root.
        if old_path.starts_with('/') {
            return Err(ErrorCode::NotPermitted);
        }
        if old_path.is_empty() || old_path.contains('\0') {
            return Err(ErrorCode::Invalid);
        }
        match &dir {
            Obj::Mem(fs, d) => fs.tree.symlink(d, &name, &old_path, now()).map(|_| ()),
            // FAT has no symbolic links (Linux's vfat: EPERM).
            Obj::Fat(..) => Err(ErrorCode::NotPermitted),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    fn unlink_file_at(&self, path: String) -> Result<(), ErrorCode> {
        let (dir, name, _) = self.entry_of(&path, ErrorCode::IsDirectory)?;
        match &dir {
            Obj::Mem(_, d) => mem::unlink(d, &name, now()),
            Obj::Fat(fs, d) => fs.ok(fs.tree.remove(&d.path, &name, false)),
            Obj::Tar(..) => Err(ErrorCode::ReadOnly),
        }
    }

    fn is_same_object(&self, other: DescriptorBorrow<'_>) -> bool {
        match (&self.obj, &other.get::<Desc>().obj) {
            (Ok(a), Ok(b)) => a.same(b),
            _ => false,
        }
    }

    fn metadata_hash(&self) -> Result<MetadataHashValue, ErrorCode> {
        self.obj().map(Obj::hash)
    }

    fn metadata_hash_at(
        &self,
        flags: PathFlags,
        path: String,
    ) -> Result<MetadataHashValue, ErrorCode> {
        self.lookup(&path, follows(flags)).map(|o| o.hash())
    }
}
