//! virtio transports, found on PCI (q35: ECAM at 0xB000_0000, BARs assigned
//! by SeaBIOS) or virtio-mmio (microvm: 512-byte slots from 0xFEB0_0000),
//! and the virtio-blk drives on them. `weft boot` gives each drive the serial
//! of the manifest role it backs, so drives are matched to devices by name,
//! never by bus order (net devices are matched by MAC, see `net`).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;

use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::bus::{Cam, Command, MmioCam, PciRoot};
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

/// q35 has a PCIe host bridge (8086:29c0) at 00:00.0 in the ECAM window;
/// microvm has no PCI, and the window reads as nothing.
pub fn machine() -> Machine {
    // SAFETY: identity-mapped MMIO; reading a vendor/device id has no effect.
    let id = unsafe { core::ptr::read_volatile(ECAM as *const u32) };
    if id == 0x29C0_8086 { Machine::Q35 } else { Machine::Microvm }
}

/// Where a device's interrupt arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Irq {
    /// A legacy PCI INTx line through the 8259 (the interrupt line SeaBIOS
    /// wrote into the function's config space; q35).
    Pic(u8),
    /// A pin of the second IOAPIC (microvm wires virtio-mmio slot `n` to
    /// GSI 24 + n there).
    IoApic2(u8),
    /// Unknown: the device is polled on the timer tick.
    None,
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
                root.set_command(f, Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER);
                let cfg = ECAM + ((f.bus as usize) << 20 | (f.device as usize) << 15 | (f.function as usize) << 12);
                // SAFETY: the function's config space in the ECAM window.
                let (line, pin) = unsafe { (core::ptr::read_volatile((cfg + 0x3C) as *const u8), core::ptr::read_volatile((cfg + 0x3D) as *const u8)) };
                let irq = if pin != 0 && line < 16 { Irq::Pic(line) } else { Irq::None };
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
                let irq = if crate::arch::ioapic2_present() { Irq::IoApic2(i as u8) } else { Irq::None };
                // SAFETY: a virtio-mmio slot, owned by this transport from now on.
                if let Ok(t) = unsafe { MmioTransport::new(header, MMIO_SLOT) } {
                    out.push((t.into(), irq));
                }
            }
        }
    }
    out
}

/// A virtio-blk drive.
pub struct VirtioBlk {
    dev: VirtIOBlk<IdentityHal, SomeTransport<'static>>,
    geometry: Geometry,
}

// SAFETY: the kernel is single-threaded; the driver is only used from the
// one thread that created it.
unsafe impl Send for VirtioBlk {}

/// Every virtio-blk drive, with its serial (`weft boot` sets it to the role).
pub fn drives(m: Machine) -> Vec<(String, Box<VirtioBlk>)> {
    let mut out = Vec::new();
    for (t, _) in transports(m, DeviceType::Block) {
        let Ok(mut dev) = VirtIOBlk::<IdentityHal, _>::new(t) else { continue };
        let mut id = [0u8; 20];
        let serial = match dev.device_id(&mut id) {
            Ok(n) => String::from_utf8_lossy(&id[..n]).into_owned(),
            Err(_) => String::new(),
        };
        let geometry = Geometry { sector_size: 512, sector_count: dev.capacity(), read_only: dev.readonly() };
        out.push((serial, Box::new(VirtioBlk { dev, geometry })));
    }
    out
}

impl VirtioBlk {
    pub fn set_read_only(&mut self) {
        self.geometry.read_only = true;
    }
}

impl BlockDevice for VirtioBlk {
    fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let mut buf = alloc::vec![0; count as usize * 512];
        self.dev.read_blocks(start as usize, &mut buf).map_err(|_| ErrorCode::Io)?;
        Ok(buf)
    }

    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        self.dev.write_blocks(start as usize, data).map_err(|_| ErrorCode::Io)
    }

    fn flush(&mut self) -> Result<(), ErrorCode> {
        self.dev.flush().map_err(|_| ErrorCode::Io)
    }
}
