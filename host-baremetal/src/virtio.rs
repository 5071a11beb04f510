//! virtio transports, found on PCI (q35: ECAM at 0xB000_0000; the kernel
//! turns it on and assigns BARs when the firmware did not) or virtio-mmio (microvm: 512-byte slots from 0xFEB0_0000),
//! and the virtio-blk drives on them. `weft boot` gives each drive the serial
//! of the manifest role it backs, so drives are matched to devices by name,
//! never by bus order (net devices are matched by MAC, see `net`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{BarInfo, Cam, Command, DeviceFunction, MmioCam, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};
use virtio_drivers::transport::{DeviceType, SomeTransport};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};
use weft_runtime::{BlockDevice, ErrorCode, Geometry};

/// DMA over the identity map: physical address = virtual address.
pub struct IdentityHal;

// SAFETY: memory is identity-mapped, allocations are page-aligned and zeroed
// and live until `dma_dealloc`; MMIO regions are below 4 GiB, all mapped.
unsafe impl Hal for IdentityHal {
    fn dma_alloc(pages: usize, _dir: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = core::alloc::Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let p = NonNull::new(p).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout));
        (p.as_ptr() as PhysAddr, p)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = core::alloc::Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).unwrap();
        // SAFETY: allocated by `dma_alloc` with this layout.
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap()
    }

    unsafe fn share(buffer: NonNull<[u8]>, _dir: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _dir: BufferDirection) {}
}

const ECAM: usize = 0xB000_0000;
const MMIO_BASE: usize = 0xFEB0_0000;
const MMIO_SLOT: usize = 0x200;
const MMIO_SLOTS: usize = 24;
const MAGIC: u32 = 0x7472_6976;

/// The machine QEMU emulates, from its PCI host bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    Q35,
    Microvm,
}

/// q35's host bridge (MCH), vendor and device id.
const Q35_MCH: u32 = 0x29C0_8086;

/// Reads a 32-bit register of bus 0's function `dev`.`func` through the
/// legacy configuration ports (0xCF8/0xCFC), which work before the ECAM
/// window is on.
fn config_port_read(dev: u8, func: u8, reg: u8) -> u32 {
    crate::arch::outl(0xCF8, 0x8000_0000 | u32::from(dev) << 11 | u32::from(func) << 8 | u32::from(reg & 0xFC));
    crate::arch::inl(0xCFC)
}

fn config_port_write(dev: u8, func: u8, reg: u8, v: u32) {
    crate::arch::outl(0xCF8, 0x8000_0000 | u32::from(dev) << 11 | u32::from(func) << 8 | u32::from(reg & 0xFC));
    crate::arch::outl(0xCFC, v);
}

/// q35 has a PCIe host bridge (8086:29c0) at 00:00.0; microvm has no PCI.
/// SeaBIOS turns q35's ECAM window on at 0xB000_0000; qboot (the firmware
/// `weft boot` gives q35, ~37 ms quicker) does not, so the kernel does it
/// (the MCH's PCIEXBAR, 256 buses).
pub fn machine() -> Machine {
    // SAFETY: identity-mapped MMIO; reading a vendor/device id has no effect.
    let ecam_id = || unsafe { core::ptr::read_volatile(ECAM as *const u32) };
    if ecam_id() == Q35_MCH {
        return Machine::Q35;
    }
    if config_port_read(0, 0, 0) == Q35_MCH {
        config_port_write(0, 0, 0x64, 0);
        config_port_write(0, 0, 0x60, ECAM as u32 | 1);
        if ecam_id() == Q35_MCH {
            return Machine::Q35;
        }
    }
    Machine::Microvm
}

/// Where unassigned BARs go: the 32-bit PCI hole above the ECAM window (q35
/// keeps RAM below 0xB000_0000) and the top of the I/O space.
static NEXT_MMIO: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0xC000_0000);
static NEXT_IO: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0xC000);

/// A byte of bus 0's configuration space, through the ECAM window.
fn ecam_byte(f: DeviceFunction, reg: usize) -> *mut u8 {
    (ECAM + ((f.bus as usize) << 20 | (f.device as usize) << 15 | (f.function as usize) << 12) + reg) as *mut u8
}

/// The 8259 line a q35 function's INTx arrives on. The chipset wires INTx
/// of a device in slot s (below 25) to PIRQ E + (s + pin - 1) % 4; the LPC
/// bridge (00:1f.0) routes PIRQ E..H to an ISA IRQ (registers 0x68..0x6B,
/// bit 7 = off). SeaBIOS routes them (10, 10, 11, 11, level-triggered) and
/// writes the line into the function; qboot leaves E..H off, so the kernel
/// routes them the same way.
fn intx_route(f: DeviceFunction) -> Irq {
    // SAFETY: configuration space in the ECAM window, identity-mapped.
    let (line, pin) = unsafe { (core::ptr::read_volatile(ecam_byte(f, 0x3C)), core::ptr::read_volatile(ecam_byte(f, 0x3D))) };
    if pin == 0 || pin > 4 {
        return Irq::None;
    }
    if f.bus != 0 || f.device >= 25 {
        return if line < 16 { Irq::Pic(line) } else { Irq::None };
    }
    let pirq = (f.device + pin - 1) % 4; // 0..4 = PIRQ E..H
    let lpc = DeviceFunction { bus: 0, device: 0x1F, function: 0 };
    let route = ecam_byte(lpc, 0x68 + pirq as usize);
    // SAFETY: as above; the LPC bridge's PIRQ routing registers.
    unsafe {
        let cur = core::ptr::read_volatile(route);
        let irq = if cur & 0x80 == 0 {
            cur & 0x0F
        } else {
            let irq = if pirq < 2 { 10 } else { 11 };
            core::ptr::write_volatile(route, irq);
            // ELCR: level-triggered, as a PCI line is.
            crate::arch::outb(0x4D1, crate::arch::inb(0x4D1) | 1 << (irq - 8));
            irq
        };
        core::ptr::write_volatile(ecam_byte(f, 0x3C), irq);
        Irq::Pic(irq)
    }
}

/// Gives every BAR of `f` that the firmware left at 0 an address (qboot
/// assigns none; SeaBIOS all), below 4 GiB where the identity map reaches.
fn assign_bars(root: &mut PciRoot<MmioCam<'static>>, f: DeviceFunction) {
    use core::sync::atomic::Ordering::Relaxed;
    let mut i = 0;
    while i < 6 {
        let Ok(Some(info)) = root.bar_info(f, i) else {
            i += 1;
            continue;
        };
        let two = info.takes_two_entries();
        match info {
            BarInfo::Memory { address: 0, size, .. } if size > 0 => {
                let at = NEXT_MMIO.load(Relaxed).next_multiple_of(size);
                NEXT_MMIO.store(at + size, Relaxed);
                if two { root.set_bar_64(f, i, at) } else { root.set_bar_32(f, i, at as u32) }
            }
            BarInfo::IO { address: 0, size } if size > 0 => {
                let at = NEXT_IO.load(Relaxed).next_multiple_of(size);
                NEXT_IO.store(at + size, Relaxed);
                root.set_bar_32(f, i, at | 1);
            }
            _ => {}
        }
        i += if two { 2 } else { 1 };
    }
}

/// Where a device's interrupt arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    /// A line of the 8259: a legacy PCI INTx (the interrupt line the
    /// firmware wrote into the function's config space, routed there and
    /// made level-triggered; q35), or a virtio-mmio slot's
    /// ISA IRQ (microvm without ACPI).
    Pic(u8),
    /// A pin of the second IOAPIC (microvm with ACPI wires virtio-mmio slot
    /// `n` to GSI 24 + n there).
    IoApic2(u8),
    /// Unknown: the device is polled on the timer tick.
    None,
}

impl Irq {
    /// Prepares the line (routes an IOAPIC pin, masked).
    pub fn route(self) {
        if let Irq::IoApic2(pin) = self {
            crate::arch::ioapic2_route(pin);
        }
    }

    /// Opens the line again after its handler masked it (the driver has
    /// acknowledged the device, which lowered it).
    pub fn unmask(self) {
        match self {
            Irq::Pic(line) => crate::arch::pic_unmask(line),
            Irq::IoApic2(pin) => crate::arch::ioapic2_unmask(pin),
            Irq::None => {}
        }
    }
}

/// Every virtio transport of device type `kind` on the machine, with its
/// interrupt.
pub fn transports(m: Machine, kind: DeviceType) -> Vec<(SomeTransport<'static>, Irq)> {
    let mut out = Vec::new();
    match m {
        Machine::Q35 => {
            // SAFETY: the ECAM window is identity-mapped and only used here.
            let mut root = PciRoot::new(unsafe { MmioCam::new(ECAM as *mut u8, Cam::Ecam) });
            let found: Vec<_> = root
                .enumerate_bus(0)
                .filter(|(_, info)| virtio_device_type(info) == Some(kind))
                .map(|(f, _)| f)
                .collect();
            for f in found {
                assign_bars(&mut root, f);
                root.set_command(f, Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER);
                let irq = intx_route(f);
                if let Ok(t) = PciTransport::new::<IdentityHal, _>(&mut root, f) {
                    out.push((t.into(), irq));
                }
            }
        }
        Machine::Microvm => {
            for i in 0..MMIO_SLOTS {
                let base = MMIO_BASE + i * MMIO_SLOT;
                // SAFETY: microvm's virtio-mmio slots are identity-mapped.
                let (magic, id) = unsafe {
                    (core::ptr::read_volatile(base as *const u32), core::ptr::read_volatile((base + 8) as *const u32))
                };
                if magic != MAGIC || id != kind as u32 {
                    continue;
                }
                let header = NonNull::new(base as *mut VirtIOHeader).unwrap();
                // With ACPI, microvm wires slot n to GSI 24 + n on a second
                // IOAPIC; without (`acpi=off`, how `weft boot` starts it
                // when 8 slots are enough), to GSI 5 + n for n < 8, which
                // the 8259 sees as ISA IRQ 5 + n.
                let irq = if crate::arch::ioapic2_present() {
                    Irq::IoApic2(i as u8)
                } else if i < 8 {
                    Irq::Pic(5 + i as u8)
                } else {
                    Irq::None
                };
                // SAFETY: a virtio-mmio slot, owned by this transport from now on.
                if let Ok(t) = unsafe { MmioTransport::new(header, MMIO_SLOT) } {
                    out.push((t.into(), irq));
                }
            }
        }
    }
    out
}

/// Contiguous writes are merged into one request up to this size.
const BATCH: usize = 256 * 1024;
/// Requests in flight at most (the driver's queue has 16 descriptors; with
/// indirect descriptors a request takes one).
const IN_FLIGHT: usize = 8;

/// A write the device has not finished: its buffers stay put until then.
struct InFlight {
    token: u16,
    start: u64,
    end: u64,
    req: Box<BlkReq>,
    data: Vec<u8>,
    resp: Box<BlkResp>,
}

/// A virtio-blk drive.
///
/// Writes are written behind, as a disk's volatile cache does: `write`
/// copies the data and returns; contiguous writes are merged into one
/// request of up to `BATCH` bytes, which goes to the device when the next
/// write is elsewhere or the batch is full, while the app goes on (up to
/// `IN_FLIGHT` requests at once). A read sends the batch if it overlaps it
/// and waits for the writes in flight (then the next request the device
/// uses is the read); `flush` sends everything, waits for it and then
/// flushes the device (virtio-blk `FLUSH`, an fdatasync on the host) — as
/// on Linux, where `write` lands in the page cache and `flush` is the
/// fdatasync. A write the device failed is reported by the next `write` or
/// `flush`. Everything still queued reaches the device when the drive is
/// dropped (the run's end), so a disk holds the same bytes after `weft boot`
/// as after `weft run`. Waiting sleeps in `hlt` until the drive's interrupt.
///
/// One request per call otherwise: a `read` of n sectors is one request.
pub struct VirtioBlk {
    dev: VirtIOBlk<IdentityHal, SomeTransport<'static>>,
    geometry: Geometry,
    irq: Irq,
    /// Writes not sent yet: first sector, bytes (contiguous).
    pending: Option<(u64, Vec<u8>)>,
    in_flight: Vec<InFlight>,
    /// A written-behind request failed (at this sector); reported once.
    failed: Option<u64>,
}

// SAFETY: the kernel is single-threaded; the driver is only used from the
// one thread that created it.
unsafe impl Send for VirtioBlk {}

/// Every virtio-blk drive, with its serial (`weft boot` sets it to the role).
pub fn drives(m: Machine) -> Vec<(String, Box<VirtioBlk>)> {
    let mut out = Vec::new();
    for (t, irq) in transports(m, DeviceType::Block) {
        let Ok(mut dev) = VirtIOBlk::<IdentityHal, _>::new(t) else { continue };
        let mut id = [0u8; 20];
        let serial = match dev.device_id(&mut id) {
            Ok(n) => String::from_utf8_lossy(&id[..n]).into_owned(),
            Err(_) => String::new(),
        };
        irq.route();
        let geometry = Geometry { sector_size: 512, sector_count: dev.capacity(), read_only: dev.readonly() };
        out.push((serial, Box::new(VirtioBlk { dev, geometry, irq, pending: None, in_flight: Vec::new(), failed: None })));
    }
    out
}

impl VirtioBlk {
    pub fn set_read_only(&mut self) {
        self.geometry.read_only = true;
    }

    /// Sleeps until the device has used a request (its interrupt, or the
    /// next timer tick). Interrupts are off from the check to the `hlt`, so
    /// a completion in between still ends it.
    fn wait_used(&mut self) {
        loop {
            if self.dev.peek_used().is_some() {
                return;
            }
            crate::arch::cli();
            self.dev.ack_interrupt();
            self.irq.unmask();
            if self.dev.peek_used().is_some() {
                crate::arch::sti();
                return;
            }
            crate::arch::halt();
        }
    }

    /// Takes back every write the device has finished.
    fn reap(&mut self) {
        while let Some(token) = self.dev.peek_used() {
            let Some(i) = self.in_flight.iter().position(|w| w.token == token) else {
                crate::fatal(format_args!("virtio-blk: the device used request {token}, which the kernel never made"));
            };
            let mut w = self.in_flight.swap_remove(i);
            // SAFETY: the buffers `write_blocks_nb` was given for `token`.
            if unsafe { self.dev.complete_write_blocks(token, &w.req, &w.data, &mut w.resp) }.is_err() {
                self.failed.get_or_insert(w.start);
            }
        }
    }

    /// Waits until no write in flight overlaps sectors `start..end`.
    fn wait_for(&mut self, start: u64, end: u64) {
        self.reap();
        while self.in_flight.iter().any(|w| w.start < end && start < w.end) {
            self.wait_used();
            self.reap();
        }
    }

    /// Sends the pending writes to the device.
    fn submit(&mut self) {
        let Some((start, data)) = self.pending.take() else { return };
        let end = start + data.len() as u64 / 512;
        // The device may complete requests in any order: one that overlaps
        // an earlier write waits for it.
        self.wait_for(start, end);
        let (mut req, mut resp) = (Box::new(BlkReq::default()), Box::new(BlkResp::default()));
        loop {
            if self.in_flight.len() < IN_FLIGHT {
                // SAFETY: `req`, `data` and `resp` are heap buffers kept
                // untouched in `in_flight` until the device used them (`reap`).
                match unsafe { self.dev.write_blocks_nb(start as usize, &mut req, &data, &mut resp) } {
                    Ok(token) => {
                        self.in_flight.push(InFlight { token, start, end, req, data, resp });
                        return;
                    }
                    Err(virtio_drivers::Error::QueueFull) => {}
                    Err(_) => {
                        self.failed.get_or_insert(start);
                        return;
                    }
                }
            }
            self.wait_used();
            self.reap();
        }
    }

    /// Everything queued reaches the device.
    fn drain(&mut self) {
        self.submit();
        while !self.in_flight.is_empty() {
            self.wait_used();
            self.reap();
        }
    }

    fn take_failure(&mut self) -> Result<(), ErrorCode> {
        match self.failed.take() {
            Some(_) => Err(ErrorCode::Io),
            None => Ok(()),
        }
    }
}

impl Drop for VirtioBlk {
    fn drop(&mut self) {
        self.drain();
        if let Some(sector) = self.failed {
            crate::serial::message(format_args!(
                "weft kernel: error: a write to the virtio-blk drive `{}` at sector {sector} failed and was never flushed",
                {
                    let mut id = [0u8; 20];
                    let n = self.dev.device_id(&mut id).unwrap_or(0);
                    String::from_utf8_lossy(&id[..n]).into_owned()
                }
            ));
        }
    }
}

impl BlockDevice for VirtioBlk {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let end = start + u64::from(count);
        if self.pending.as_ref().is_some_and(|(s, data)| *s < end && start < s + data.len() as u64 / 512) {
            self.submit();
        }
        // Whatever is in flight finishes first: then the next used request
        // is this read.
        self.wait_for(0, u64::MAX);
        let mut buf = alloc::vec![0; count as usize * 512];
        let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
        // SAFETY: the buffers outlive the request: it completes before they
        // are touched again, below.
        let token = unsafe { self.dev.read_blocks_nb(start as usize, &mut req, &mut buf, &mut resp) }.map_err(|_| ErrorCode::Io)?;
        self.wait_used();
        // SAFETY: the buffers given to `read_blocks_nb` for `token`.
        unsafe { self.dev.complete_read_blocks(token, &req, &mut buf, &mut resp) }.map_err(|_| ErrorCode::Io)?;
        Ok(buf)
    }

    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        self.reap();
        self.take_failure()?;
        if let Some((s, buf)) = &mut self.pending {
            let end = *s + buf.len() as u64 / 512;
            if start == end && buf.len() + data.len() <= BATCH {
                buf.extend_from_slice(data);
                return Ok(());
            }
            // Inside the batch: overwrite in place.
            if start >= *s && start + data.len() as u64 / 512 <= end {
                let off = (start - *s) as usize * 512;
                buf[off..off + data.len()].copy_from_slice(data);
                return Ok(());
            }
        }
        self.submit();
        let mut buf = Vec::with_capacity(BATCH.max(data.len()));
        buf.extend_from_slice(data);
        self.pending = Some((start, buf));
        if data.len() >= BATCH {
            self.submit();
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ErrorCode> {
        self.drain();
        self.take_failure()?;
        self.dev.flush().map_err(|_| ErrorCode::Io)
    }
}
