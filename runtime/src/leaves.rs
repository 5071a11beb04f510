//! Leaf devices that need no operating system, shared by both hosts: a disk
//! in memory and deterministic random bytes. (A seeded app prints the same on
//! Linux and on bare metal because both use this one `SeededRandom`.)

use alloc::vec::Vec;

use crate::devices::{BlockDevice, Clock, Endpoint, ErrorCode, Geometry, Random, SocketError, Sockets};

/// Sector size of the leaves weft creates.
pub const SECTOR: u64 = 512;

/// A zeroed disk in memory, gone at exit (the `memory` backend).
pub struct MemoryBlock {
    data: Vec<u8>,
    geometry: Geometry,
}

impl MemoryBlock {
    pub fn new(size: u64, read_only: bool) -> MemoryBlock {
        let geometry = Geometry { sector_size: SECTOR as u32, sector_count: size / SECTOR, read_only };
        MemoryBlock { data: alloc::vec![0; size as usize], geometry }
    }

    /// [`MemoryBlock::new`], or `None` when the memory cannot be had (an
    /// allocation failure must not abort the host).
    pub fn try_new(size: u64, read_only: bool) -> Option<MemoryBlock> {
        let n = usize::try_from(size).ok().filter(|&n| n > 0)?;
        let layout = core::alloc::Layout::array::<u8>(n).ok()?;
        // Zeroed memory as `vec![0; n]` gets it (calloc: pages the OS maps
        // only when touched), but a failure is `None`, not an abort.
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` was allocated by the global allocator with the layout
        // of `n` bytes, all initialised (zeroed); length and capacity are `n`.
        let data = unsafe { Vec::from_raw_parts(ptr, n, n) };
        let geometry = Geometry { sector_size: SECTOR as u32, sector_count: size / SECTOR, read_only };
        Some(MemoryBlock { data, geometry })
    }

    fn range(&self, start: u64, len: usize) -> core::ops::Range<usize> {
        let off = (start * SECTOR) as usize;
        off..off + len
    }
}

impl BlockDevice for MemoryBlock {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let r = self.range(start, count as usize * SECTOR as usize);
        Ok(self.data[r].to_vec())
    }

    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        let r = self.range(start, data.len());
        self.data[r].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ErrorCode> {
        Ok(())
    }
}

/// A disk image shared read-only by many runs, each seeing its own writes
/// (`weft explore` and `--check-determinism` run every seed on a private copy
/// of a `file` disk, and never change the file).
pub struct OverlayBlock {
    base: alloc::sync::Arc<[u8]>,
    written: alloc::collections::BTreeMap<u64, alloc::boxed::Box<[u8]>>,
    geometry: Geometry,
}

impl OverlayBlock {
    pub fn new(base: alloc::sync::Arc<[u8]>, read_only: bool) -> OverlayBlock {
        let geometry = Geometry { sector_size: SECTOR as u32, sector_count: base.len() as u64 / SECTOR, read_only };
        OverlayBlock { base, written: alloc::collections::BTreeMap::new(), geometry }
    }
}

impl BlockDevice for OverlayBlock {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let mut out = Vec::with_capacity(count as usize * SECTOR as usize);
        for s in start..start + u64::from(count) {
            match self.written.get(&s) {
                Some(b) => out.extend_from_slice(b),
                None => {
                    let off = (s * SECTOR) as usize;
                    out.extend_from_slice(&self.base[off..off + SECTOR as usize]);
                }
            }
        }
        Ok(out)
    }

    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        for (i, chunk) in data.chunks_exact(SECTOR as usize).enumerate() {
            self.written.insert(start + i as u64, chunk.into());
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ErrorCode> {
        Ok(())
    }
}

/// A disk a replay never touches: it only tells its geometry (the trace's).
pub struct StubBlock(pub Geometry);

impl BlockDevice for StubBlock {
    fn geometry(&self) -> Geometry {
        self.0
    }
    fn read(&mut self, _: u64, _: u32) -> Result<Vec<u8>, ErrorCode> {
        Err(ErrorCode::Io)
    }
    fn write(&mut self, _: u64, _: &[u8]) -> Result<(), ErrorCode> {
        Err(ErrorCode::Io)
    }
    fn flush(&mut self) -> Result<(), ErrorCode> {
        Err(ErrorCode::Io)
    }
}

/// A network device a replay never touches: it only tells its info.
pub struct StubNet(pub crate::devices::NetInfo);

impl crate::devices::NetDevice for StubNet {
    fn info(&self) -> crate::devices::NetInfo {
        self.0
    }
    fn send(&mut self, _: &[&[u8]]) -> Result<u32, ErrorCode> {
        Err(ErrorCode::Io)
    }
    fn receive(&mut self, _: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        Err(ErrorCode::Io)
    }
}

/// Deterministic bytes (splitmix64) for reproducible runs (`backend = "seeded"`).
pub struct SeededRandom(pub u64);

impl Random for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Simulated time (the `virtual` clock backend): it stands still until
/// the unikernel waits — `wait-until` jumps straight to the deadline — and
/// each reading advances it by `tick`, so a loop that polls the clock still
/// sees time pass. Wall time is `start` plus monotonic time.
pub struct VirtualClock {
    now: core::cell::Cell<u64>,
    start: i64,
    tick: u64,
}

impl VirtualClock {
    pub fn new(start: i64, tick: u64) -> VirtualClock {
        VirtualClock { now: core::cell::Cell::new(0), start, tick }
    }
}

impl Clock for VirtualClock {
    fn monotonic_now(&self) -> u64 {
        let t = self.now.get().saturating_add(self.tick);
        self.now.set(t);
        t
    }

    fn wall_now(&self) -> i64 {
        self.start.saturating_add(self.monotonic_now() as i64)
    }

    fn wait_until(&mut self, deadline: u64) {
        if deadline > self.now.get() {
            self.now.set(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_jumps_on_waits_and_ticks_on_reads() {
        let mut c = VirtualClock::new(1_000_000, 1_000);
        assert_eq!(c.monotonic_now(), 1_000);
        assert_eq!(c.monotonic_now(), 2_000);
        c.wait_until(3_600_000_000_000);
        assert_eq!(c.monotonic_now(), 3_600_000_001_000);
        c.wait_until(5);
        assert_eq!(c.wall_now(), 1_000_000 + 3_600_000_002_000);
    }

    #[test]
    fn seeded_random_is_deterministic() {
        let (mut a, mut b) = (SeededRandom(7), SeededRandom(7));
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, [0u8; 13]);
    }

    #[test]
    fn overlay_block_keeps_the_base_untouched() {
        let base: alloc::sync::Arc<[u8]> = alloc::vec![3u8; 2048].into();
        let mut o = OverlayBlock::new(base.clone(), false);
        o.write(1, &[9; 512]).unwrap();
        assert_eq!(o.read(0, 3).unwrap(), [[3u8; 512], [9; 512], [3; 512]].concat());
        assert!(base.iter().all(|&b| b == 3));
    }

    #[test]
    fn a_memory_disk_too_big_to_allocate_is_none() {
        assert!(MemoryBlock::try_new(900 << 40, false).is_none());
        let mut m = MemoryBlock::try_new(4096, false).unwrap();
        assert_eq!(m.read(7, 1).unwrap(), alloc::vec![0; 512]);
    }

    #[test]
    fn memory_block_round_trips() {
        let mut m = MemoryBlock::new(4096, false);
        m.write(2, &[9; 1024]).unwrap();
        assert_eq!(m.read(2, 2).unwrap(), alloc::vec![9; 1024]);
        assert_eq!(m.read(0, 1).unwrap(), alloc::vec![0; 512]);
    }
}

/// The MAC a net device gets from its name (a TAP device's name, a UDP
/// link's local address): locally administered, QEMU's 52:54:00 prefix and
/// an FNV-1a hash. `weft boot` gives the virtio-net device the same MAC
/// `weft run` uses, so both targets answer ARP alike.
pub fn mac_for(name: &str) -> [u8; 6] {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    [0x52, 0x54, 0x00, (h >> 16) as u8, (h >> 8) as u8, h as u8]
}

/// The sockets of a unikernel without a `[stack]`: every call fails with
/// `unreachable` (no network). Only a composed part — the `wasi` component,
/// whose `wasi:sockets` sit on `sockets` — can reach it: the plan refuses an
/// app that imports `sockets` itself without a stack.
pub struct NoSockets;

impl Sockets for NoSockets {
    fn tcp_listen(&mut self, _: u16) -> Result<u32, SocketError> {
        Err(SocketError::Unreachable)
    }
    fn tcp_accept(&mut self, _: u32) -> Result<(u32, Endpoint), SocketError> {
        Err(SocketError::Unreachable)
    }
    fn tcp_connect(&mut self, _: Endpoint) -> Result<u32, SocketError> {
        Err(SocketError::Unreachable)
    }
    fn tcp_send(&mut self, _: u32, _: &[u8]) -> Result<u32, SocketError> {
        Err(SocketError::Unreachable)
    }
    fn tcp_recv(&mut self, _: u32, _: u32) -> Result<Vec<u8>, SocketError> {
        Err(SocketError::Unreachable)
    }
    fn tcp_shutdown(&mut self, _: u32) -> Result<(), SocketError> {
        Err(SocketError::Unreachable)
    }
    fn udp_bind(&mut self, _: u16) -> Result<u32, SocketError> {
        Err(SocketError::Unreachable)
    }
    fn udp_send_to(&mut self, _: u32, _: &[u8], _: Endpoint) -> Result<(), SocketError> {
        Err(SocketError::Unreachable)
    }
    fn udp_recv_from(&mut self, _: u32, _: u32) -> Result<(Vec<u8>, Endpoint), SocketError> {
        Err(SocketError::Unreachable)
    }
    fn close(&mut self, _: u32) {}
}
