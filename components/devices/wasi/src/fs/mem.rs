//! Writable in-memory trees (`preopen = <dir>=memory`), lost when the run ends.
//!
//! Nodes are reference-counted: a removed file stays readable and writable through the
//! descriptors still open on it, as on POSIX, and is freed with the last of them. A file
//! may have several names (hard links, `nlink` counts them); a symbolic link holds its
//! target's text, followed by [`super::path::resolve`].
//! Growth is checked (`try_reserve`), so running out of memory is `insufficient-space`
//! rather than a trap.

use alloc::collections::BTreeMap;
use alloc::rc::{Rc, Weak};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::path::{Kind, check_new_name};
use crate::exports::wasi::filesystem::types::ErrorCode;

/// Largest file, in bytes.
pub const FILE_MAX: u64 = 1 << 31;

pub type MemRef = Rc<RefCell<MemNode>>;

pub enum Body {
    Dir(BTreeMap<String, MemRef>),
    File(Vec<u8>),
    Symlink(String),
}

pub struct MemNode {
    pub ino: u64,
    pub body: Body,
    /// Wall-clock nanoseconds since the epoch.
    pub atime: u64,
    pub mtime: u64,
    /// Names the node has (hard links); 0 once removed.
    pub nlink: u64,
    /// A directory's parent (none for the root and for removed directories).
    pub parent: Weak<RefCell<MemNode>>,
}

impl MemNode {
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Dir(_) => Kind::Dir,
            Body::File(_) => Kind::File,
            Body::Symlink(_) => Kind::Symlink,
        }
    }

    pub fn size(&self) -> u64 {
        match &self.body {
            Body::Dir(m) => m.len() as u64,
            Body::File(d) => d.len() as u64,
            Body::Symlink(t) => t.len() as u64,
        }
    }
}

/// A tree: its root and inode numbers.
pub struct MemTree {
    next_ino: Cell<u64>,
    pub root: MemRef,
}

impl MemTree {
    pub fn new(now: u64) -> MemTree {
        MemTree {
            next_ino: Cell::new(2),
            root: Rc::new(RefCell::new(MemNode {
                ino: 1,
                body: Body::Dir(BTreeMap::new()),
                atime: now,
                mtime: now,
                nlink: 1,
                parent: Weak::new(),
            })),
        }
    }

    /// Add `body` as `name` in directory `dir` (which must not have it yet).
    fn add(&self, dir: &MemRef, name: &str, body: Body, now: u64) -> Result<MemRef, ErrorCode> {
        check_new_name(name)?;
        let mut d = dir.borrow_mut();
        let entries = vacancy(&mut d, name)?;
        let ino = self.next_ino.get();
        self.next_ino.set(ino + 1);
        let parent = match body {
            Body::Dir(_) => Rc::downgrade(dir),
            Body::File(_) | Body::Symlink(_) => Weak::new(),
        };
        let node = Rc::new(RefCell::new(MemNode {
            ino,
            body,
            atime: now,
            mtime: now,
            nlink: 1,
            parent,
        }));
        entries.insert(name.to_string(), node.clone());
        d.mtime = now;
        Ok(node)
    }

    /// A new empty file `name` in `dir` (`exist` if the name is taken).
    pub fn create_file(&self, dir: &MemRef, name: &str, now: u64) -> Result<MemRef, ErrorCode> {
        self.add(dir, name, Body::File(Vec::new()), now)
    }

    /// A new empty directory `name` in `dir`.
    pub fn mkdir(&self, dir: &MemRef, name: &str, now: u64) -> Result<MemRef, ErrorCode> {
        self.add(dir, name, Body::Dir(BTreeMap::new()), now)
    }

    /// A new symbolic link `name` in `dir` holding `target` (not checked: it may dangle).
    pub fn symlink(&self, dir: &MemRef, name: &str, target: &str, now: u64) -> Result<MemRef, ErrorCode> {
        self.add(dir, name, Body::Symlink(target.to_string()), now)
    }
}

/// A second name `name` in `dir` for `node` (a hard link): files and symbolic links
/// only (`not-permitted` for a directory, as POSIX's EPERM), never a removed one.
pub fn link(dir: &MemRef, name: &str, node: &MemRef, now: u64) -> Result<(), ErrorCode> {
    check_new_name(name)?;
    if node.borrow().kind() == Kind::Dir {
        return Err(ErrorCode::NotPermitted);
    }
    if node.borrow().nlink == 0 {
        return Err(ErrorCode::NoEntry);
    }
    let mut d = dir.borrow_mut();
    vacancy(&mut d, name)?.insert(name.to_string(), node.clone());
    d.mtime = now;
    node.borrow_mut().nlink += 1;
    Ok(())
}

/// The entries of directory `d`, where `name` is free to add: `no-entry` when `d` was
/// removed, `not-directory` when it is not one, `exist` when `name` is taken.
fn vacancy<'a>(d: &'a mut MemNode, name: &str) -> Result<&'a mut BTreeMap<String, MemRef>, ErrorCode> {
    if d.nlink == 0 {
        return Err(ErrorCode::NoEntry);
    }
    let Body::Dir(entries) = &mut d.body else {
        return Err(ErrorCode::NotDirectory);
    };
    if entries.contains_key(name) {
        return Err(ErrorCode::Exist);
    }
    Ok(entries)
}

/// Entry `name` of `dir`.
pub fn child(dir: &MemRef, name: &str) -> Option<MemRef> {
    match &dir.borrow().body {
        Body::Dir(m) => m.get(name).cloned(),
        _ => None,
    }
}

/// The entries of `dir`, sorted by name.
pub fn entries(dir: &MemRef) -> Vec<(String, Kind)> {
    match &dir.borrow().body {
        Body::Dir(m) => m
            .iter()
            .map(|(n, c)| (n.clone(), c.borrow().kind()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Take entry `name` out of `dir`: the node has one name less (a directory has none).
fn detach(dir: &MemRef, name: &str, now: u64) {
    let mut d = dir.borrow_mut();
    d.mtime = now;
    if let Body::Dir(m) = &mut d.body
        && let Some(node) = m.remove(name)
    {
        let mut n = node.borrow_mut();
        n.nlink = match n.body {
            Body::Dir(_) => 0,
            _ => n.nlink.saturating_sub(1),
        };
        n.parent = Weak::new();
    }
}

/// Remove file `name` from `dir`.
pub fn unlink(dir: &MemRef, name: &str, now: u64) -> Result<(), ErrorCode> {
    let node = child(dir, name).ok_or(ErrorCode::NoEntry)?;
    if node.borrow().kind() == Kind::Dir {
        return Err(ErrorCode::IsDirectory);
    }
    detach(dir, name, now);
    Ok(())
}

/// Remove the empty directory `name` from `dir`.
pub fn rmdir(dir: &MemRef, name: &str, now: u64) -> Result<(), ErrorCode> {
    let node = child(dir, name).ok_or(ErrorCode::NoEntry)?;
    match &node.borrow().body {
        Body::File(_) | Body::Symlink(_) => return Err(ErrorCode::NotDirectory),
        Body::Dir(m) if !m.is_empty() => return Err(ErrorCode::NotEmpty),
        Body::Dir(_) => {}
    }
    detach(dir, name, now);
    Ok(())
}

/// Whether `node` is `dir` or one of its ancestors.
fn is_ancestor(node: &MemRef, dir: &MemRef) -> bool {
    let mut cur = Some(dir.clone());
    while let Some(d) = cur {
        if Rc::ptr_eq(&d, node) {
            return true;
        }
        cur = d.borrow().parent.upgrade();
    }
    false
}

/// Move entry `from_name` of `from` to `to_name` of `to`, replacing a file with a file
/// or an empty directory with a directory (POSIX `rename`).
pub fn rename(
    from: &MemRef,
    from_name: &str,
    to: &MemRef,
    to_name: &str,
    now: u64,
) -> Result<(), ErrorCode> {
    let node = child(from, from_name).ok_or(ErrorCode::NoEntry)?;
    if to.borrow().nlink == 0 {
        return Err(ErrorCode::NoEntry);
    }
    check_new_name(to_name)?;
    let is_dir = node.borrow().kind() == Kind::Dir;
    if is_dir && is_ancestor(&node, to) {
        return Err(ErrorCode::Invalid);
    }
    if let Some(old) = child(to, to_name) {
        if Rc::ptr_eq(&old, &node) {
            return Ok(());
        }
        match (&old.borrow().body, is_dir) {
            (Body::Dir(_), false) => return Err(ErrorCode::IsDirectory),
            (Body::File(_) | Body::Symlink(_), true) => return Err(ErrorCode::NotDirectory),
            (Body::Dir(m), true) if !m.is_empty() => return Err(ErrorCode::NotEmpty),
            _ => {}
        }
        detach(to, to_name, now);
    }
    {
        let mut f = from.borrow_mut();
        f.mtime = now;
        if let Body::Dir(m) = &mut f.body {
            m.remove(from_name);
        }
    }
    {
        let mut t = to.borrow_mut();
        t.mtime = now;
        if let Body::Dir(m) = &mut t.body {
            m.insert(to_name.to_string(), node.clone());
        }
    }
    if is_dir {
        node.borrow_mut().parent = Rc::downgrade(to);
    }
    Ok(())
}

/// Up to `len` bytes (at most `max`) of `file` from `offset`; the flag is end of file.
pub fn read(file: &MemRef, offset: u64, len: u64, max: u64) -> Result<(Vec<u8>, bool), ErrorCode> {
    let f = file.borrow();
    let Body::File(data) = &f.body else {
        return Err(ErrorCode::IsDirectory);
    };
    let size = data.len() as u64;
    if offset >= size {
        return Ok((Vec::new(), true));
    }
    let n = len.min(size - offset).min(max);
    let (start, end) = (offset as usize, (offset + n) as usize);
    Ok((data[start..end].to_vec(), offset + n >= size))
}

/// Resize `data` to `size` bytes, zero-filling; `insufficient-space` when memory runs
/// out, `file-too-large` past [`FILE_MAX`].
fn resize(data: &mut Vec<u8>, size: u64) -> Result<(), ErrorCode> {
    if size > FILE_MAX {
        return Err(ErrorCode::FileTooLarge);
    }
    let size = size as usize;
    if size > data.len() {
        data.try_reserve(size - data.len())
            .map_err(|_| ErrorCode::InsufficientSpace)?;
    }
    data.resize(size, 0);
    Ok(())
}

/// Write `bytes` at `offset` of `file` (zero-filling any gap); returns the bytes written.
pub fn write(file: &MemRef, offset: u64, bytes: &[u8], now: u64) -> Result<u64, ErrorCode> {
    let mut f = file.borrow_mut();
    let Body::File(data) = &mut f.body else {
        return Err(ErrorCode::IsDirectory);
    };
    let end = offset
        .checked_add(bytes.len() as u64)
        .ok_or(ErrorCode::FileTooLarge)?;
    if end > data.len() as u64 {
        resize(data, end)?;
    }
    data[offset as usize..end as usize].copy_from_slice(bytes);
    f.mtime = now;
    Ok(bytes.len() as u64)
}

/// Truncate or extend `file` to `size` bytes.
pub fn set_size(file: &MemRef, size: u64, now: u64) -> Result<(), ErrorCode> {
    let mut f = file.borrow_mut();
    let Body::File(data) = &mut f.body else {
        return Err(ErrorCode::IsDirectory);
    };
    resize(data, size)?;
    f.mtime = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn names(dir: &MemRef) -> Vec<String> {
        entries(dir).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn create_write_read() {
        let t = MemTree::new(5);
        let f = t.create_file(&t.root, "f", 7).unwrap();
        assert_eq!(t.create_file(&t.root, "f", 7).err(), Some(ErrorCode::Exist));
        assert_eq!(write(&f, 0, b"hello", 8), Ok(5));
        assert_eq!(write(&f, 8, b"!", 9), Ok(1));
        assert_eq!(
            read(&f, 0, 100, 1 << 20).unwrap(),
            (b"hello\0\0\0!".to_vec(), true)
        );
        assert_eq!(read(&f, 1, 3, 1 << 20).unwrap(), (b"ell".to_vec(), false));
        assert_eq!(read(&f, 1, 100, 2).unwrap(), (b"el".to_vec(), false));
        assert_eq!(read(&f, 50, 1, 1 << 20).unwrap(), (Vec::new(), true));
        assert_eq!(f.borrow().mtime, 9);
        assert_eq!(t.root.borrow().mtime, 7);
        set_size(&f, 2, 10).unwrap();
        assert_eq!(read(&f, 0, 100, 1 << 20).unwrap().0, b"he");
        assert_eq!(write(&f, u64::MAX, b"x", 0), Err(ErrorCode::FileTooLarge));
        assert_eq!(write(&f, FILE_MAX, b"x", 0), Err(ErrorCode::FileTooLarge));
        assert_eq!(set_size(&t.root, 0, 0), Err(ErrorCode::IsDirectory));
        assert_eq!(read(&t.root, 0, 1, 1).err(), Some(ErrorCode::IsDirectory));
        assert_ne!(f.borrow().ino, t.root.borrow().ino);
    }

    #[test]
    fn directories() {
        let t = MemTree::new(0);
        let d = t.mkdir(&t.root, "d", 1).unwrap();
        t.create_file(&d, "x", 1).unwrap();
        assert_eq!(rmdir(&t.root, "d", 2), Err(ErrorCode::NotEmpty));
        assert_eq!(unlink(&t.root, "d", 2), Err(ErrorCode::IsDirectory));
        assert_eq!(rmdir(&d, "x", 2), Err(ErrorCode::NotDirectory));
        assert_eq!(unlink(&d, "nope", 2), Err(ErrorCode::NoEntry));
        unlink(&d, "x", 2).unwrap();
        rmdir(&t.root, "d", 3).unwrap();
        assert!(names(&t.root).is_empty());
        // A removed directory takes no new entries.
        assert_eq!(t.create_file(&d, "y", 4).err(), Some(ErrorCode::NoEntry));
        let f = t.create_file(&t.root, "f", 4).unwrap();
        assert_eq!(
            t.create_file(&f, "y", 4).err(),
            Some(ErrorCode::NotDirectory)
        );
        let long: String = core::iter::repeat_n('n', 300).collect();
        assert_eq!(
            t.mkdir(&t.root, &long, 0).err(),
            Some(ErrorCode::NameTooLong)
        );
    }

    #[test]
    fn removed_files_live_on_while_open() {
        let t = MemTree::new(0);
        let f = t.create_file(&t.root, "f", 0).unwrap();
        write(&f, 0, b"data", 0).unwrap();
        unlink(&t.root, "f", 1).unwrap();
        assert_eq!(f.borrow().nlink, 0);
        assert_eq!(read(&f, 0, 10, 10).unwrap().0, b"data");
        assert!(child(&t.root, "f").is_none());
    }

    #[test]
    fn renames() {
        let t = MemTree::new(0);
        let a = t.mkdir(&t.root, "a", 0).unwrap();
        let b = t.mkdir(&a, "b", 0).unwrap();
        let f = t.create_file(&t.root, "f", 0).unwrap();
        t.create_file(&t.root, "g", 0).unwrap();
        // File over file replaces it.
        rename(&t.root, "f", &t.root, "g", 1).unwrap();
        assert_eq!(names(&t.root), ["a", "g"]);
        assert!(Rc::ptr_eq(&child(&t.root, "g").unwrap(), &f));
        // Into a subdirectory and back.
        rename(&t.root, "g", &b, "h", 2).unwrap();
        assert!(Rc::ptr_eq(&child(&b, "h").unwrap(), &f));
        rename(&b, "h", &t.root, "g", 3).unwrap();
        // Same name: nothing happens.
        rename(&t.root, "g", &t.root, "g", 4).unwrap();
        assert_eq!(names(&t.root), ["a", "g"]);
        // A directory into itself or below it.
        assert_eq!(rename(&t.root, "a", &b, "a2", 5), Err(ErrorCode::Invalid));
        assert_eq!(rename(&t.root, "a", &a, "a2", 5), Err(ErrorCode::Invalid));
        // Kind clashes.
        assert_eq!(
            rename(&t.root, "g", &t.root, "a", 5),
            Err(ErrorCode::IsDirectory)
        );
        assert_eq!(
            rename(&t.root, "a", &t.root, "g", 5),
            Err(ErrorCode::NotDirectory)
        );
        let e = t.mkdir(&t.root, "e", 0).unwrap();
        assert_eq!(
            rename(&t.root, "e", &t.root, "a", 5),
            Err(ErrorCode::NotEmpty)
        );
        // A directory over an empty one; its parent follows.
        rename(&a, "b", &t.root, "e", 6).unwrap();
        assert_eq!(names(&t.root), ["a", "e", "g"]);
        assert!(Rc::ptr_eq(&b.borrow().parent.upgrade().unwrap(), &t.root));
        assert_eq!(e.borrow().nlink, 0);
        assert_eq!(
            rename(&t.root, "zz", &t.root, "y", 5),
            Err(ErrorCode::NoEntry)
        );
        // Into a removed directory.
        rmdir(&t.root, "a", 7).unwrap();
        assert_eq!(rename(&t.root, "g", &a, "g", 8), Err(ErrorCode::NoEntry));
        let _ = vec![0u8; 0];
    }

    #[test]
    fn hard_links_share_the_file_and_count_names() {
        let t = MemTree::new(0);
        let d = t.mkdir(&t.root, "d", 0).unwrap();
        let f = t.create_file(&t.root, "f", 0).unwrap();
        write(&f, 0, b"one", 1).unwrap();
        link(&d, "g", &f, 2).unwrap();
        assert_eq!(f.borrow().nlink, 2);
        assert!(Rc::ptr_eq(&child(&d, "g").unwrap(), &f));
        // One file: a write through one name shows through the other.
        write(&child(&d, "g").unwrap(), 0, b"two", 3).unwrap();
        assert_eq!(read(&f, 0, 10, 10).unwrap().0, b"two");
        assert_eq!(link(&d, "g", &f, 4), Err(ErrorCode::Exist));
        assert_eq!(link(&t.root, "d2", &d, 4), Err(ErrorCode::NotPermitted));
        assert_eq!(link(&f, "x", &f, 4), Err(ErrorCode::NotDirectory));
        // Renaming one name onto the other does nothing (POSIX).
        rename(&t.root, "f", &d, "g", 5).unwrap();
        assert_eq!(names(&t.root), ["d", "f"]);
        // Removing a name leaves the file under the other.
        unlink(&t.root, "f", 6).unwrap();
        assert_eq!(f.borrow().nlink, 1);
        assert_eq!(read(&child(&d, "g").unwrap(), 0, 10, 10).unwrap().0, b"two");
        unlink(&d, "g", 7).unwrap();
        assert_eq!(f.borrow().nlink, 0);
        // A removed file takes no new name.
        assert_eq!(link(&t.root, "back", &f, 8), Err(ErrorCode::NoEntry));
    }

    #[test]
    fn symlinks_hold_their_target() {
        let t = MemTree::new(0);
        let l = t.symlink(&t.root, "l", "../nowhere", 1).unwrap();
        assert_eq!(l.borrow().kind(), Kind::Symlink);
        assert_eq!(l.borrow().size(), 10);
        assert_eq!(entries(&t.root), [(String::from("l"), Kind::Symlink)]);
        assert_eq!(rmdir(&t.root, "l", 2), Err(ErrorCode::NotDirectory));
        assert!(child(&l, "x").is_none());
        unlink(&t.root, "l", 2).unwrap();
        assert!(names(&t.root).is_empty());
    }
}
