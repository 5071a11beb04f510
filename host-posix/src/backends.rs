//! Linux leaf devices: `FileBlock` (cap-std), `MemoryBlock`, `SystemClock`,
//! `StdioConsole`, `OsRandom`, `StderrLog` (`MemoryBlock` and `SeededRandom`
//! are the runtime's, shared with the bare-metal kernel).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cap_std::fs::{Dir, OpenOptions};
use weft_runtime::devices::{BlockDevice, Clock, Console, ErrorCode, Geometry, Log, Random};
use weft_runtime::manifest::SECTOR_SIZE;
pub use weft_runtime::leaves::{MemoryBlock, SeededRandom};

/// A disk image file, opened through the manifest folder's capability.
pub struct FileBlock {
    file: File,
    geometry: Geometry,
}

impl FileBlock {
    /// Opens `path` inside `dir`, creating it zero-filled with `size` bytes
    /// when it does not exist ([`size_new_image`]: sparse, or written whole
    /// with `preallocate`). An existing image keeps its size; one that is not
    /// a whole number of sectors is refused untouched.
    pub fn open(dir: &Dir, path: &Path, size: Option<u64>, preallocate: bool, read_only: bool, role: &str) -> Result<FileBlock> {
        let shown = path.display();
        let file = match dir.open_with(path, OpenOptions::new().read(true).write(!read_only)) {
            Ok(f) => f.into_std(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(size) = size else {
                    bail!("device `{role}`: disk image {shown} does not exist; create it or add `size = \"16MiB\"` to [devices.{role}] so weft creates it");
                };
                if read_only {
                    bail!("device `{role}`: disk image {shown} does not exist and the device is read-only, so weft will not create it");
                }
                let f = dir
                    .open_with(path, OpenOptions::new().read(true).write(true).create_new(true))
                    .with_context(|| format!("device `{role}`: creating disk image {shown}"))?
                    .into_std();
                if let Err(e) = size_new_image(&f, size, preallocate) {
                    // Leave nothing behind: the image did not exist before.
                    drop(f);
                    let _ = dir.remove_file(path);
                    return Err(e).with_context(|| format!("device `{role}`: sizing disk image {shown} to {size} bytes"));
                }
                f
            }
            Err(e) => return Err(e).with_context(|| format!("device `{role}`: opening disk image {shown}")),
        };
        let meta = file.metadata().with_context(|| format!("device `{role}`: reading {shown}"))?;
        if !meta.is_file() {
            bail!("device `{role}`: {shown} is not a regular file");
        }
        let len = meta.len();
        if len == 0 || len % SECTOR_SIZE != 0 {
            bail!("device `{role}`: disk image {shown} is {len} bytes, not a whole number of {SECTOR_SIZE}-byte sectors; refusing to use it (it was not modified)");
        }
        let geometry = Geometry { sector_size: SECTOR_SIZE as u32, sector_count: len / SECTOR_SIZE, read_only };
        Ok(FileBlock { file, geometry })
    }
}

impl BlockDevice for FileBlock {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let len = count as usize * self.geometry.sector_size as usize;
        let off = start * u64::from(self.geometry.sector_size);
        // Read into the buffer's spare capacity: nothing is cleared only to be
        // overwritten (a megabyte read is a megabyte less to write).
        let mut buf = Vec::with_capacity(len);
        while buf.len() < len {
            let at = off + buf.len() as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(&mut buf), at) {
                // The image ended early (it shrank under us): not a whole read.
                Ok(0) => return Err(ErrorCode::Io),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return Err(ErrorCode::Io),
            }
        }
        Ok(buf)
    }

    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        let off = start * u64::from(self.geometry.sector_size);
        self.file.write_all_at(data, off).map_err(|_| ErrorCode::Io)
    }

    fn flush(&mut self) -> Result<(), ErrorCode> {
        self.file.sync_data().map_err(|_| ErrorCode::Io)
    }
}

/// Gives a new, empty disk image its `size`: sparse (`set_len`: the host file
/// system allocates each block when it is first written, and a `flush` then also
/// commits that allocation), or with `preallocate` every byte written as zeros
/// and made durable, so writes during a run only overwrite (qemu-img's
/// `preallocation=full`; `fallocate` would not do: its unwritten extents are
/// converted on first write, at the same cost as a sparse block).
pub fn size_new_image(f: &File, size: u64, preallocate: bool) -> std::io::Result<()> {
    f.set_len(size)?;
    if preallocate {
        let zeros = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < size {
            let n = (size - at).min(zeros.len() as u64) as usize;
            f.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        f.sync_all()?;
    }
    Ok(())
}

/// The system clock: `Instant` for monotonic time, `SystemTime` for wall.
/// Its waits end early when a network device or host socket has input
/// (Solo5's `yield`: one way to wait, for time and devices alike).
pub struct SystemClock {
    start: Instant,
    readiness: crate::net::Readiness,
}

impl SystemClock {
    pub fn new(readiness: crate::net::Readiness) -> SystemClock {
        SystemClock { start: Instant::now(), readiness }
    }
}

impl Clock for SystemClock {
    fn monotonic_now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn wall_now(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i64,
            Err(e) => -(e.duration().as_nanos() as i64),
        }
    }

    fn wait_until(&mut self, deadline: u64) {
        let now = self.monotonic_now();
        if deadline > now {
            self.readiness.wait(Duration::from_nanos(deadline - now));
        }
    }
}

/// The console on stdout.
pub struct StdioConsole;

impl Console for StdioConsole {
    fn write(&mut self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (a pipe whose reader left) is not the app's fault.
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
}

/// Random bytes from the OS.
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the OS random source failed");
    }
}

/// The event log on stderr: one line per event,
/// `[topic] message | key=value …`.
pub struct StderrLog;

impl Log for StderrLog {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]) {
        let _ = std::io::stderr().lock().write_all(event_line(topic, message, fields).as_bytes());
    }
}

/// One event as `StderrLog` prints it: `[topic] message | key=value …\n`.
pub fn event_line(topic: &str, message: &str, fields: &[(String, String)]) -> String {
    let mut line = format!("[{topic}] {}", message.replace('\n', " "));
    if !fields.is_empty() {
        line.push_str(" |");
        for (k, v) in fields {
            line.push_str(&format!(" {k}={v}"));
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn tmpdir() -> (std::path::PathBuf, Dir) {
        let p = std::env::temp_dir().join(format!("weft-backends-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&p).unwrap();
        let d = Dir::open_ambient_dir(&p, ambient_authority()).unwrap();
        (p, d)
    }

    #[test]
    fn file_block_creates_reads_writes() {
        let (p, dir) = tmpdir();
        let _ = std::fs::remove_file(p.join("a.img"));
        let mut b = FileBlock::open(&dir, Path::new("a.img"), Some(8192), false, false, "s").unwrap();
        assert_eq!(b.geometry().sector_count, 16);
        b.write(3, &[7u8; 1024]).unwrap();
        b.flush().unwrap();
        assert_eq!(b.read(3, 2).unwrap(), vec![7u8; 1024]);
        assert_eq!(b.read(5, 1).unwrap(), vec![0u8; 512]);
        drop(b);
        // Reopened: the size given now is ignored, the data is there.
        let mut b = FileBlock::open(&dir, Path::new("a.img"), Some(4096), false, false, "s").unwrap();
        assert_eq!(b.geometry().sector_count, 16);
        assert_eq!(b.read(4, 1).unwrap(), vec![7u8; 512]);
        assert_eq!(b.read(0, 16).unwrap().len(), 8192);
        // An image cut short under weft: a read past its new end is an I/O error, not
        // a short or zero-padded read.
        std::fs::OpenOptions::new().write(true).open(p.join("a.img")).unwrap().set_len(2048).unwrap();
        assert_eq!(b.read(3, 2), Err(ErrorCode::Io));
        assert_eq!(b.read(2, 2).unwrap(), [vec![0u8; 512], vec![7u8; 512]].concat());
    }

    #[test]
    fn file_block_refuses_bad_images_untouched() {
        let (p, dir) = tmpdir();
        std::fs::write(p.join("odd.img"), [1u8; 1000]).unwrap();
        let e = FileBlock::open(&dir, Path::new("odd.img"), None, false, false, "s").err().unwrap().to_string();
        assert!(e.contains("1000 bytes, not a whole number of 512-byte sectors"), "{e}");
        assert_eq!(std::fs::read(p.join("odd.img")).unwrap(), vec![1u8; 1000]);
        let e = FileBlock::open(&dir, Path::new("none.img"), None, false, false, "s").err().unwrap().to_string();
        assert!(e.contains("does not exist; create it or add `size"), "{e}");
        let e = FileBlock::open(&dir, Path::new("../x.img"), Some(512), false, false, "s").err().unwrap();
        assert!(format!("{e:#}").contains("outside") || format!("{e:#}").contains("escape"), "{e:#}");
    }
}
