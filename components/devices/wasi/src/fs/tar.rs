//! Read-only trees from tar archives: ustar, POSIX pax (`path`, `linkpath`, `size`,
//! `mtime`) and GNU long names (`L`, `K`).
//!
//! The archive is untrusted: every header is checksummed, every number is parsed with
//! overflow checks, and every member's data must lie inside the source, so a truncated
//! or garbage image is an error naming the offset where it went wrong, never a panic or
//! a read out of range. Only headers are read while indexing; file data is read from
//! the source when a program reads it.
//!
//! Like Python's `tarfile`, data blocks follow only regular files (`0`, NUL, `7`), pax
//! and GNU metadata, and unknown types; an unknown type is listed as type `unknown`.
//! Member names may not contain `..` (they would leave the tree). A later member
//! replaces an earlier one of the same name, as when extracting; directories merge. An
//! index holds at most [`NODES_MAX`] nodes.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::exports::wasi::filesystem::types::DescriptorType;

/// Bytes read from wherever the archive lives.
pub trait Source {
    /// Size of the source in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`. Errors (including a range past the end) are messages.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String>;
}

/// A tar block.
pub const BLOCK: u64 = 512;

/// Largest pax header or GNU long name accepted.
const META_MAX: u64 = 1 << 20;

/// Most nodes an index holds (files, directories, links): a hostile archive of many
/// tiny members or very deep paths is an error, not an out-of-memory trap.
pub const NODES_MAX: usize = 1 << 18;

/// Most bytes one read returns (a bigger request is a short read).
pub const READ_MAX: u64 = 1 << 20;

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Dir(BTreeMap<String, u32>),
    /// `size` bytes at `offset` of the source.
    File {
        offset: u64,
        size: u64,
    },
    Symlink(String),
    Other(DescriptorType),
}

/// One node: node 0 is the root directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub body: Body,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Names this node has (hard links share a node).
    pub nlink: u64,
}

/// The tree of an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub nodes: Vec<Entry>,
    /// [`NODES_MAX`], or less in tests.
    limit: usize,
}

/// Metadata that applies to the next member (pax `x` headers, GNU `L`/`K`).
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
    mtime: Option<u64>,
}

/// The bytes of a header field up to its first NUL.
fn field(h: &[u8], start: usize, len: usize) -> &[u8] {
    let f = &h[start..start + len];
    let end = f.iter().position(|&b| b == 0).unwrap_or(len);
    &f[..end]
}

/// A numeric field: octal text (leading spaces, then digits, then spaces or NULs) or
/// GNU base-256 (high bit set). `None` if malformed, negative or too large.
pub fn number(f: &[u8]) -> Option<u64> {
    let (&first, rest) = f.split_first()?;
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return None;
        }
        let mut v = u64::from(first & 0x3f);
        for &b in rest {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let start = f.iter().position(|&b| b != b' ').unwrap_or(f.len());
    let digits = &f[start..];
    let end = digits
        .iter()
        .position(|b| !(b'0'..=b'7').contains(b))
        .unwrap_or(digits.len());
    if !digits[end..].iter().all(|&b| b == b' ' || b == 0) {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |v, &d| {
        v.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether the header's checksum matches (unsigned sum, or the historic signed one).
fn checksum_ok(h: &[u8; 512]) -> bool {
    let Some(stored) = number(&h[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || u64::try_from(signed) == Ok(stored)
}

/// The components of a member name; `.` and empty ones dropped, `..` refused.
fn components(name: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A decimal number in a pax record (`mtime` may have a fraction, which is dropped; a
/// negative time is the epoch).
fn pax_number(v: &str, time: bool) -> Option<u64> {
    let v = if time { v.split('.').next()? } else { v };
    if time && v.starts_with('-') {
        return v[1..].bytes().all(|b| b.is_ascii_digit()).then_some(0);
    }
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Apply the records of a pax extended header (`len key=value\n` each).
fn pax(data: &[u8], p: &mut Pending, at: u64) -> Result<(), String> {
    let bad = |why: &str| format!("bad pax header at offset {at}: {why}");
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("a record without a length"))?;
        let len: usize = core::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a record length that is not a number"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad("a record length that does not fit"));
        }
        let record = core::str::from_utf8(&rest[sp + 1..len - 1])
            .map_err(|_| bad("a record that is not UTF-8"))?;
        let (key, value) = record
            .split_once('=')
            .ok_or_else(|| bad("a record without `=`"))?;
        match key {
            "path" => p.path = Some(value.to_string()),
            "linkpath" => p.link = Some(value.to_string()),
            "size" => p.size = Some(pax_number(value, false).ok_or_else(|| bad("a bad size"))?),
            "mtime" => p.mtime = Some(pax_number(value, true).ok_or_else(|| bad("a bad mtime"))?),
            _ => {}
        }
        rest = &rest[len..];
    }
    Ok(())
}

/// Text of a GNU long name or link: NUL-terminated.
fn long_name(data: &[u8], at: u64) -> Result<String, String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    core::str::from_utf8(&data[..end])
        .map(String::from)
        .map_err(|_| format!("GNU long name at offset {at} is not UTF-8"))
}

/// A link's target: from a pax or GNU header, or the header's own field.
fn link_name(p: &mut Pending, h: &[u8; 512], at: u64) -> Result<String, String> {
    match p.link.take() {
        Some(l) => Ok(l),
        None => String::from_utf8(field(h, 157, 100).to_vec())
            .map_err(|_| format!("link name at offset {at} is not UTF-8")),
    }
}

impl Index {
    fn empty(limit: usize) -> Index {
        Index {
            nodes: vec![Entry {
                body: Body::Dir(BTreeMap::new()),
                mtime: 0,
                nlink: 1,
            }],
            limit,
        }
    }

    /// Entry `name` of directory `dir`.
    pub fn child(&self, dir: u32, name: &str) -> Option<u32> {
        match &self.nodes.get(dir as usize)?.body {
            Body::Dir(m) => m.get(name).copied(),
            _ => None,
        }
    }

    pub fn entry(&self, node: u32) -> Option<&Entry> {
        self.nodes.get(node as usize)
    }

    fn is_dir(&self, node: u32) -> bool {
        matches!(self.nodes[node as usize].body, Body::Dir(_))
    }

    fn add(&mut self, dir: u32, name: &str, body: Body, mtime: u64) -> Result<u32, String> {
        if self.nodes.len() >= self.limit {
            return Err(format!(
                "more than {} files and directories (the most a tree may hold)",
                self.limit
            ));
        }
        let id = u32::try_from(self.nodes.len()).map_err(|_| String::from("too many members"))?;
        self.nodes.push(Entry {
            body,
            mtime,
            nlink: 1,
        });
        self.link(dir, name, id);
        Ok(id)
    }

    fn link(&mut self, dir: u32, name: &str, id: u32) {
        if let Body::Dir(m) = &mut self.nodes[dir as usize].body {
            m.insert(name.to_string(), id);
        }
    }

    /// The directory `comps` names, created (implicitly, mtime 0) where missing.
    fn dir_for(&mut self, comps: &[&str], name: &str, at: u64) -> Result<u32, String> {
        let mut dir = 0;
        for c in comps {
            dir = match self.child(dir, c) {
                Some(i) if self.is_dir(i) => i,
                Some(_) => {
                    return Err(format!(
                        "member `{name}` at offset {at}: `{c}` in its path is not a directory"
                    ));
                }
                None => self.add(dir, c, Body::Dir(BTreeMap::new()), 0)?,
            };
        }
        Ok(dir)
    }

    /// Add a member; a directory merges with one already there, anything else replaces.
    fn insert(&mut self, name: &str, body: Body, mtime: u64, at: u64) -> Result<(), String> {
        let comps = components(name)
            .ok_or_else(|| format!("member `{name}` at offset {at} has `..` in its name"))?;
        let Some((last, parents)) = comps.split_last() else {
            return match body {
                Body::Dir(_) => {
                    self.nodes[0].mtime = mtime;
                    Ok(())
                }
                _ => Err(format!("member at offset {at} has an empty name")),
            };
        };
        let dir = self.dir_for(parents, name, at)?;
        match self.child(dir, last) {
            Some(i) if self.is_dir(i) && matches!(body, Body::Dir(_)) => {
                self.nodes[i as usize].mtime = mtime
            }
            _ => {
                self.add(dir, last, body, mtime)?;
            }
        }
        Ok(())
    }

    /// A hard link: `name` becomes another name of the file `target`.
    fn hard_link(&mut self, name: &str, target: &str, at: u64) -> Result<(), String> {
        let missing = || {
            format!(
                "hard link `{name}` at offset {at}: `{target}` is not a file earlier in the archive"
            )
        };
        let tcomps = components(target).ok_or_else(missing)?;
        let mut node = 0;
        for c in &tcomps {
            node = self.child(node, c).ok_or_else(missing)?;
        }
        if !matches!(self.nodes[node as usize].body, Body::File { .. }) {
            return Err(missing());
        }
        let comps = components(name)
            .ok_or_else(|| format!("member `{name}` at offset {at} has `..` in its name"))?;
        let Some((last, parents)) = comps.split_last() else {
            return Err(format!("member at offset {at} has an empty name"));
        };
        let dir = self.dir_for(parents, name, at)?;
        if self.child(dir, last) != Some(node) {
            self.link(dir, last, node);
            self.nodes[node as usize].nlink += 1;
        }
        Ok(())
    }

    /// Read up to `len` bytes (at most [`READ_MAX`]) of file `node` from `offset`; the
    /// flag is end of file.
    pub fn read(
        &self,
        src: &dyn Source,
        node: u32,
        offset: u64,
        len: u64,
    ) -> Result<(Vec<u8>, bool), String> {
        let Some(Entry {
            body: Body::File {
                offset: start,
                size,
            },
            ..
        }) = self.entry(node)
        else {
            return Err(String::from("not a file"));
        };
        if offset >= *size {
            return Ok((Vec::new(), true));
        }
        let n = len.min(size - offset).min(READ_MAX);
        let mut buf = vec![0u8; n as usize];
        src.read_at(start + offset, &mut buf)?;
        Ok((buf, offset + n >= *size))
    }

    /// (regular files, directories) reachable by name.
    pub fn counts(&self) -> (usize, usize) {
        let files = self
            .nodes
            .iter()
            .filter(|e| matches!(e.body, Body::File { .. }))
            .count();
        let dirs = self
            .nodes
            .iter()
            .filter(|e| matches!(e.body, Body::Dir(_)))
            .count();
        (files, dirs)
    }
}

/// Index the archive that fills `src`. It ends at a zero block or at the end of the
/// source; anything that does not parse is an error naming its offset.
pub fn index(src: &dyn Source) -> Result<Index, String> {
    index_with_limit(src, NODES_MAX)
}

/// [`index`] with at most `limit` nodes.
pub fn index_with_limit(src: &dyn Source, limit: usize) -> Result<Index, String> {
    let len = src.size();
    let mut ix = Index::empty(limit);
    let mut pending = Pending::default();
    let mut pos = 0u64;
    let mut h = [0u8; 512];
    while pos < len {
        if len - pos < BLOCK {
            return Err(format!(
                "truncated: {} bytes at offset {pos} are too few for a header",
                len - pos
            ));
        }
        src.read_at(pos, &mut h)?;
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if !checksum_ok(&h) {
            let hint = if pos == 0 {
                " (not a tar archive?)"
            } else {
                ""
            };
            return Err(format!("bad header checksum at offset {pos}{hint}"));
        }
        let typ = h[156];
        let meta = matches!(typ, b'x' | b'g' | b'L' | b'K');
        let raw_size = number(&h[124..136])
            .ok_or_else(|| format!("bad size field in the header at offset {pos}"))?;
        let size = if meta {
            raw_size
        } else {
            pending.size.take().unwrap_or(raw_size)
        };
        let has_data = meta || !matches!(typ, b'1'..=b'6');
        let data = pos + BLOCK;
        let name = match pending.path.take().filter(|_| !meta) {
            Some(n) => n,
            None => {
                let name = field(&h, 0, 100);
                let prefix = field(&h, 345, 155);
                let joined = if &h[257..263] == b"ustar\0" && !prefix.is_empty() {
                    [prefix, b"/", name].concat()
                } else {
                    name.to_vec()
                };
                String::from_utf8(joined)
                    .map_err(|_| format!("member name at offset {pos} is not UTF-8"))?
            }
        };
        let next = if has_data {
            let end = data.checked_add(size).filter(|&e| e <= len).ok_or_else(|| {
                format!("truncated: member `{name}` at offset {pos} holds {size} bytes but the archive ends at {len}")
            })?;
            end.div_ceil(BLOCK).saturating_mul(BLOCK).min(len)
        } else {
            data
        };
        if meta && size > META_MAX {
            return Err(format!(
                "metadata header at offset {pos} is {size} bytes (most: {META_MAX})"
            ));
        }
        let meta_data = || -> Result<Vec<u8>, String> {
            let mut d = vec![0u8; size as usize];
            src.read_at(data, &mut d)?;
            Ok(d)
        };
        let mtime = pending
            .mtime
            .take()
            .or_else(|| number(&h[136..148]))
            .unwrap_or(0);
        match typ {
            b'x' => pax(&meta_data()?, &mut pending, pos)?,
            b'g' => {}
            b'L' => pending.path = Some(long_name(&meta_data()?, pos)?),
            b'K' => pending.link = Some(long_name(&meta_data()?, pos)?),
            b'0' | 0 | b'7' => ix.insert(&name, Body::File { offset: data, size }, mtime, pos)?,
            b'1' => {
                let target = link_name(&mut pending, &h, pos)?;
                ix.hard_link(&name, &target, pos)?;
            }
            b'2' => {
                let target = link_name(&mut pending, &h, pos)?;
                ix.insert(&name, Body::Symlink(target), mtime, pos)?;
            }
            b'3' => ix.insert(
                &name,
                Body::Other(DescriptorType::CharacterDevice),
                mtime,
                pos,
            )?,
            b'4' => ix.insert(&name, Body::Other(DescriptorType::BlockDevice), mtime, pos)?,
            b'5' => ix.insert(&name, Body::Dir(BTreeMap::new()), mtime, pos)?,
            b'6' => ix.insert(&name, Body::Other(DescriptorType::Fifo), mtime, pos)?,
            _ => ix.insert(&name, Body::Other(DescriptorType::Unknown), mtime, pos)?,
        }
        if !meta {
            pending = Pending::default();
        }
        pos = next;
    }
    if pending.path.is_some() || pending.link.is_some() || pending.size.is_some() {
        return Err(String::from(
            "truncated: the archive ends after a metadata header",
        ));
    }
    Ok(ix)
}

/// Building archives for tests (also used by `fs::block`'s tests).
#[cfg(test)]
pub mod build {
    use super::*;

    /// One ustar header for `name` of type `typ`, with `size` and `link`.
    pub fn header(name: &str, typ: u8, size: u64, link: &str) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        let s = format!("{size:011o}");
        h[124..135].copy_from_slice(s.as_bytes());
        h[136..147].copy_from_slice(b"14461462000");
        h[156] = typ;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        seal(&mut h);
        h
    }

    /// Recompute the checksum.
    pub fn seal(h: &mut [u8; 512]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
    }

    /// Append a member with `data`.
    pub fn member(out: &mut Vec<u8>, name: &str, typ: u8, data: &[u8], link: &str) {
        out.extend_from_slice(&header(name, typ, data.len() as u64, link));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    /// Append a pax header with the given records.
    pub fn pax_header(out: &mut Vec<u8>, records: &[(&str, &str)]) {
        let mut body = Vec::new();
        for (k, v) in records {
            let base = k.len() + v.len() + 3;
            let mut len = base + 1;
            while format!("{len}").len() + base != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {k}={v}\n").as_bytes());
        }
        member(out, "PaxHeader", b'x', &body, "");
    }

    /// End of archive: two zero blocks.
    pub fn end(out: &mut Vec<u8>) {
        out.extend_from_slice(&[0u8; 1024]);
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    struct Mem(Vec<u8>);

    impl Source for Mem {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
            let start = offset as usize;
            let src = self.0.get(start..start + buf.len()).ok_or("past the end")?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    fn lookup(ix: &Index, path: &str) -> Option<u32> {
        let mut n = 0;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            n = ix.child(n, c)?;
        }
        Some(n)
    }

    fn contents(ix: &Index, src: &Mem, path: &str) -> Vec<u8> {
        let n = lookup(ix, path).unwrap();
        ix.read(src, n, 0, u64::MAX).unwrap().0
    }

    fn sample() -> Vec<u8> {
        let mut t = Vec::new();
        member(&mut t, "./", b'5', b"", "");
        member(&mut t, "./etc/", b'5', b"", "");
        member(&mut t, "./etc/hosts", b'0', b"127.0.0.1 localhost\n", "");
        member(&mut t, "docs/a/b/readme.txt", b'0', &[b'x'; 700], "");
        member(&mut t, "empty", 0, b"", "");
        member(&mut t, "hosts2", b'1', b"", "etc/hosts");
        member(&mut t, "link", b'2', b"", "etc/hosts");
        member(&mut t, "fifo", b'6', b"", "");
        end(&mut t);
        t
    }

    #[test]
    fn indexes_files_dirs_links() {
        let src = Mem(sample());
        let ix = index(&src).unwrap();
        assert_eq!(contents(&ix, &src, "etc/hosts"), b"127.0.0.1 localhost\n");
        assert_eq!(contents(&ix, &src, "docs/a/b/readme.txt"), [b'x'; 700]);
        assert_eq!(contents(&ix, &src, "empty"), b"");
        // Implicit directories exist.
        let b = lookup(&ix, "docs/a/b").unwrap();
        assert!(ix.is_dir(b));
        assert_eq!(ix.entry(b).unwrap().mtime, 0);
        // A hard link is the same node.
        assert_eq!(lookup(&ix, "hosts2"), lookup(&ix, "etc/hosts"));
        assert_eq!(ix.entry(lookup(&ix, "hosts2").unwrap()).unwrap().nlink, 2);
        let l = lookup(&ix, "link").unwrap();
        assert_eq!(ix.entry(l).unwrap().body, Body::Symlink("etc/hosts".into()));
        let f = lookup(&ix, "fifo").unwrap();
        assert_eq!(ix.entry(f).unwrap().body, Body::Other(DescriptorType::Fifo));
        assert_eq!(ix.entry(0).unwrap().mtime, 0o14461462000);
        assert_eq!(ix.counts(), (3, 5));
    }

    #[test]
    fn reads_at_offsets_and_caps() {
        let src = Mem(sample());
        let ix = index(&src).unwrap();
        let n = lookup(&ix, "etc/hosts").unwrap();
        assert_eq!(ix.read(&src, n, 10, 3).unwrap(), (b"loc".to_vec(), false));
        assert_eq!(
            ix.read(&src, n, 10, 100).unwrap(),
            (b"localhost\n".to_vec(), true)
        );
        assert_eq!(ix.read(&src, n, 20, 5).unwrap(), (Vec::new(), true));
        assert_eq!(
            ix.read(&src, n, u64::MAX, u64::MAX).unwrap(),
            (Vec::new(), true)
        );
        assert!(ix.read(&src, 0, 0, 1).is_err());
        assert!(ix.read(&src, 999, 0, 1).is_err());
    }

    #[test]
    fn pax_and_gnu_long_names() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let mut t = Vec::new();
        pax_header(
            &mut t,
            &[
                ("path", &long),
                ("mtime", "1700000000.5"),
                ("comment", "hi"),
            ],
        );
        member(&mut t, "ignored-short-name", b'0', b"pax", "");
        member(
            &mut t,
            "././@LongLink",
            b'L',
            format!("gnu/{long}\0").as_bytes(),
            "",
        );
        member(&mut t, "gnu-short", b'0', b"gnu", "");
        pax_header(&mut t, &[("size", "3")]);
        let mut h = header("sized", b'0', 0, "");
        seal(&mut h);
        t.extend_from_slice(&h);
        t.extend_from_slice(&[b'z'; 512]);
        end(&mut t);
        let src = Mem(t);
        let ix = index(&src).unwrap();
        assert_eq!(contents(&ix, &src, &long), b"pax");
        assert_eq!(
            ix.entry(lookup(&ix, &long).unwrap()).unwrap().mtime,
            1_700_000_000
        );
        assert_eq!(contents(&ix, &src, &format!("gnu/{long}")), b"gnu");
        assert_eq!(contents(&ix, &src, "sized"), b"zzz");
        assert!(lookup(&ix, "ignored-short-name").is_none());
    }

    #[test]
    fn ustar_prefix() {
        let mut h = header("name.txt", b'0', 0, "");
        h[345..351].copy_from_slice(b"pre/fx");
        seal(&mut h);
        let mut t = h.to_vec();
        end(&mut t);
        let ix = index(&Mem(t)).unwrap();
        assert!(lookup(&ix, "pre/fx/name.txt").is_some());
    }

    #[test]
    fn later_members_replace_and_dirs_merge() {
        let mut t = Vec::new();
        member(&mut t, "d/f", b'0', b"old", "");
        member(&mut t, "d/", b'5', b"", "");
        member(&mut t, "d/f", b'0', b"new", "");
        end(&mut t);
        let src = Mem(t);
        let ix = index(&src).unwrap();
        assert_eq!(contents(&ix, &src, "d/f"), b"new");
    }

    #[test]
    fn empty_device_and_no_end_marker() {
        assert_eq!(index(&Mem(vec![0; 4096])).unwrap(), Index::empty(NODES_MAX));
        assert_eq!(index(&Mem(Vec::new())).unwrap(), Index::empty(NODES_MAX));
        let mut t = Vec::new();
        member(&mut t, "f", b'0', b"abc", "");
        let src = Mem(t);
        let ix = index(&src).unwrap();
        assert_eq!(contents(&ix, &src, "f"), b"abc");
        // Data that ends exactly at the end of the source, without padding.
        let mut t = header("g", b'0', 3, "").to_vec();
        t.extend_from_slice(b"xyz");
        let src = Mem(t);
        assert_eq!(contents(&index(&src).unwrap(), &src, "g"), b"xyz");
    }

    fn err(t: Vec<u8>) -> String {
        index(&Mem(t)).unwrap_err()
    }

    #[test]
    fn garbage_is_an_error_naming_the_offset() {
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(
            err(junk),
            "bad header checksum at offset 0 (not a tar archive?)"
        );
        let mut t = sample();
        t[512 + 3] ^= 0x55;
        assert_eq!(err(t), "bad header checksum at offset 512");
        let mut h = header("f", b'0', 0, "");
        h[124..136].copy_from_slice(b"99999999999\0");
        seal(&mut h);
        assert_eq!(err(h.to_vec()), "bad size field in the header at offset 0");
    }

    #[test]
    fn truncation_is_an_error() {
        let t = sample();
        // Cut inside the data of docs/a/b/readme.txt (header at 2048).
        let e = err(t[..2560 + 100].to_vec());
        assert_eq!(
            e,
            "truncated: member `docs/a/b/readme.txt` at offset 2048 holds 700 bytes but the archive ends at 2660"
        );
        let e = err(t[..2048 + 100].to_vec());
        assert_eq!(
            e,
            "truncated: 100 bytes at offset 2048 are too few for a header"
        );
        let e = err(t[..600].to_vec());
        assert_eq!(
            e,
            "truncated: 88 bytes at offset 512 are too few for a header"
        );
        // A size that overflows.
        let mut h = header("big", b'0', 0, "");
        h[124] = 0x80;
        h[125..136].copy_from_slice(&[0xff; 11]);
        seal(&mut h);
        assert!(err(h.to_vec()).starts_with("bad size field"));
        let mut h = header("big", b'0', 0, "");
        h[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        seal(&mut h);
        assert!(
            err(h.to_vec())
                .starts_with("truncated: member `big` at offset 0 holds 18446744073709551615")
        );
        let mut t = Vec::new();
        pax_header(&mut t, &[("path", "x")]);
        assert_eq!(
            err(t),
            "truncated: the archive ends after a metadata header"
        );
    }

    #[test]
    fn hostile_names_and_metadata() {
        let mut t = Vec::new();
        member(&mut t, "../etc/passwd", b'0', b"x", "");
        assert_eq!(
            err(t),
            "member `../etc/passwd` at offset 0 has `..` in its name"
        );
        let mut t = Vec::new();
        member(&mut t, "f", b'0', b"x", "");
        member(&mut t, "f/g", b'0', b"x", "");
        assert_eq!(
            err(t),
            "member `f/g` at offset 1024: `f` in its path is not a directory"
        );
        let mut t = Vec::new();
        member(&mut t, "l", b'1', b"", "nowhere");
        assert_eq!(
            err(t),
            "hard link `l` at offset 0: `nowhere` is not a file earlier in the archive"
        );
        let mut t = Vec::new();
        member(&mut t, "PaxHeader", b'x', b"99 path=x\n", "");
        assert_eq!(
            err(t),
            "bad pax header at offset 0: a record length that does not fit"
        );
        let mut t = Vec::new();
        member(&mut t, "PaxHeader", b'x', b"abc", "");
        assert_eq!(
            err(t),
            "bad pax header at offset 0: a record without a length"
        );
        let mut t = Vec::new();
        member(&mut t, "\u{e9}", b'0', b"", "");
        t[0] = 0xff;
        let mut h: [u8; 512] = t[..512].try_into().unwrap();
        seal(&mut h);
        assert_eq!(err(h.to_vec()), "member name at offset 0 is not UTF-8");
        let mut h = header("huge", b'x', META_MAX + 1, "");
        seal(&mut h);
        let mut t = h.to_vec();
        t.resize(512 + META_MAX as usize + 512, 0);
        assert!(err(t).starts_with("metadata header at offset 0 is"));
    }

    #[test]
    fn node_limit() {
        let src = Mem(sample());
        assert_eq!(index_with_limit(&src, 10).unwrap().nodes.len(), 10);
        assert_eq!(
            index_with_limit(&src, 9).unwrap_err(),
            "more than 9 files and directories (the most a tree may hold)"
        );
        // Deep implicit directories count too.
        let mut t = Vec::new();
        member(&mut t, "a/b/c/d/e/f", b'0', b"", "");
        assert!(index_with_limit(&Mem(t), 4).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"   17 \0"), Some(0o17));
        assert_eq!(number(b"\0\0\0"), Some(0));
        assert_eq!(number(b""), None);
        assert_eq!(number(b"12a"), None);
        assert_eq!(number(b"9"), None);
        assert_eq!(number(&[0x80, 0, 1, 0]), Some(256));
        assert_eq!(number(&[0xff, 0xff]), None);
        assert_eq!(number(b"77777777777777777777777"), None);
        assert_eq!(pax_number("-5.5", true), Some(0));
        assert_eq!(pax_number("12.9", true), Some(12));
        assert_eq!(pax_number("12.9", false), None);
        assert_eq!(pax_number("", false), None);
    }
}
