//! virtio-net devices (virtio-drivers 0.13's `VirtIONetRaw`, PCI on q35,
//! virtio-mmio on microvm) as the `NetDevice` leaf.
//!
//! `weft boot` gives each device the MAC of the manifest device it backs
//! (the MAC `weft run` uses for the same device), so devices are matched to
//! roles by MAC, never by bus order.
//!
//! Frames move in batches without waiting for the device: `send` queues
//! every frame that fits in the transmit ring (one descriptor per frame:
//! header and frame in one buffer) and reclaims finished buffers on the
//! next call; `receive` takes what the device has put in the used ring and
//! hands the buffer straight back. Every device registers itself so the
//! clock's `wait-until` can return as soon as a frame is waiting
//! ([`rx_pending`]), as `ppoll` over the TAP fds does on Linux; its
//! interrupt (INTx through the 8259 on q35; on microvm the second IOAPIC,
//! or ISA IRQ 5 + slot through the 8259 without ACPI)
//! wakes the `hlt` in between, so a frame is seen within microseconds, not at
//! the next 1 ms timer tick.

use alloc::boxed::Box;
use alloc::vec::Vec;

use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::{DeviceType, SomeTransport};
use weft_runtime::devices::{ErrorCode, NetDevice, NetInfo};

use crate::virtio::{IdentityHal, Irq, Machine, transports};

/// Descriptors per ring (QEMU's default virtio-net queue size).
const QUEUE: usize = 256;
/// One receive buffer: the virtio-net header and a 1514-byte frame fit.
const RX_BUF: usize = 2048;
const MTU: u32 = 1500;
const FRAME_MAX: usize = 14 + MTU as usize;

struct Nic {
    raw: VirtIONetRaw<IdentityHal, SomeTransport<'static>, QUEUE>,
    /// Receive buffers the device owns, by descriptor token.
    rx: Vec<Option<Box<[u8]>>>,
    /// Transmit buffers in flight, by descriptor token.
    tx: Vec<Option<Vec<u8>>>,
    /// Size of the virtio-net header that precedes every frame.
    header: usize,
    irq: Irq,
}

/// Every device, for [`rx_pending`]. Leaked at discovery: they live as long
/// as the kernel.
static mut NICS: Vec<*mut Nic> = Vec::new();

/// Whether any device has a received frame waiting (its used ring moved).
/// Also re-arms each device's interrupt: acknowledges it at the device
/// (which lowers the line) and unmasks the line the interrupt handler
/// masked. Call it with interrupts disabled and `hlt` right after (see
/// `arch::halt`), so a frame that arrives after the check still wakes it.
pub fn rx_pending() -> bool {
    let mut pending = false;
    // SAFETY: single-threaded; the pointers are leaked boxes that live
    // forever, and `wait-until` (the only caller) never runs inside a
    // `NetDevice` call, so no other `&mut Nic` is live meanwhile.
    for &n in unsafe { (*core::ptr::addr_of!(NICS)).iter() } {
        let nic = unsafe { &mut *n };
        nic.raw.ack_interrupt();
        pending |= nic.raw.poll_receive().is_some();
        nic.irq.unmask();
    }
    pending
}

/// A virtio-net device.
pub struct VirtioNet {
    nic: *mut Nic,
    info: NetInfo,
}

// SAFETY: the kernel is single-threaded; the device is only used from the
// one thread that created it.
unsafe impl Send for VirtioNet {}

/// Every virtio-net device on the machine, with its MAC. A device the driver
/// cannot set up is skipped (the role it should back is then reported
/// missing).
pub fn devices(m: Machine) -> Vec<([u8; 6], VirtioNet)> {
    let mut out = Vec::new();
    for (t, irq) in transports(m, DeviceType::Network) {
        let Ok(raw) = VirtIONetRaw::<IdentityHal, _, QUEUE>::new(t) else { continue };
        let mut scratch = [0u8; 16];
        let Ok(header) = raw.fill_buffer_header(&mut scratch) else { continue };
        let mac = raw.mac_address();
        let nic = Box::leak(Box::new(Nic {
            raw,
            rx: (0..QUEUE).map(|_| None).collect(),
            tx: (0..QUEUE).map(|_| None).collect(),
            header,
            irq,
        }));
        irq.route();
        for _ in 0..QUEUE {
            let mut buf = alloc::vec![0u8; RX_BUF].into_boxed_slice();
            // SAFETY: the buffer is kept in `nic.rx` untouched until the
            // device returns it through the used ring.
            match unsafe { nic.raw.receive_begin(&mut buf) } {
                Ok(token) => nic.rx[token as usize] = Some(buf),
                Err(_) => break,
            }
        }
        let nic: *mut Nic = nic;
        // SAFETY: single-threaded boot.
        unsafe { (*core::ptr::addr_of_mut!(NICS)).push(nic) };
        let m = mac;
        let info = NetInfo { mac: (m[0], m[1], m[2], m[3], m[4], m[5]), mtu: MTU, checksum_offload: false };
        out.push((mac, VirtioNet { nic, info }));
    }
    out
}

impl Nic {
    /// Takes back the buffers of finished transmissions.
    fn reclaim(&mut self) -> Result<(), ErrorCode> {
        while let Some(token) = self.raw.poll_transmit() {
            let buf = self.tx[token as usize].take().ok_or(ErrorCode::Io)?;
            // SAFETY: `buf` is the buffer `transmit_begin` returned `token` for.
            unsafe { self.raw.transmit_complete(token, &buf) }.map_err(|_| ErrorCode::Io)?;
        }
        Ok(())
    }
}

impl NetDevice for VirtioNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode> {
        // SAFETY: the leaked `Nic` is only reached through this device and
        // `rx_pending`, never at the same time.
        let nic = unsafe { &mut *self.nic };
        nic.reclaim()?;
        let mut sent = 0;
        for f in frames {
            if !nic.raw.can_send() {
                nic.reclaim()?;
                if !nic.raw.can_send() {
                    break;
                }
            }
            let mut buf = alloc::vec![0u8; nic.header + f.len()];
            nic.raw.fill_buffer_header(&mut buf).map_err(|_| ErrorCode::Io)?;
            buf[nic.header..].copy_from_slice(f);
            // SAFETY: the buffer is kept in `nic.tx` untouched until the
            // device is done with it (`reclaim`).
            match unsafe { nic.raw.transmit_begin(&buf) } {
                Ok(token) => {
                    nic.tx[token as usize] = Some(buf);
                    sent += 1;
                }
                Err(_) if sent > 0 => break,
                Err(_) => return Err(ErrorCode::Io),
            }
        }
        Ok(sent)
    }

    fn receive(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        // SAFETY: as in `send`.
        let nic = unsafe { &mut *self.nic };
        let mut out = Vec::new();
        while out.len() < max as usize {
            let Some(token) = nic.raw.poll_receive() else { break };
            let mut buf = nic.rx[token as usize].take().ok_or(ErrorCode::Io)?;
            // SAFETY: `buf` is the buffer `receive_begin` returned `token` for.
            let (header, len) = unsafe { nic.raw.receive_complete(token, &mut buf) }.map_err(|_| ErrorCode::Io)?;
            // Frames longer than the MTU are dropped, as `TapNet` does.
            if (14..=FRAME_MAX).contains(&len) {
                out.push(buf[header..header + len].to_vec());
            }
            // SAFETY: as at discovery.
            let token = unsafe { nic.raw.receive_begin(&mut buf) }.map_err(|_| ErrorCode::Io)?;
            nic.rx[token as usize] = Some(buf);
        }
        Ok(out)
    }
}
