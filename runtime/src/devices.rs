//! The leaf-device traits a host implements, and the WIT types they share
//! with components.
//!
//! A host (Linux process or bare-metal kernel) provides only these leaves, as
//! Solo5's tenders do; everything between a leaf and the app is a component.
//! The runtime checks the block contract (ranges, sizes, read-only) before a
//! call reaches a leaf, so a backend only moves bytes.

use alloc::string::String;
use alloc::vec::Vec;
use wasmtime::component::{ComponentType, Lift, Lower};

/// `weft:devices/types.error-code`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum ErrorCode {
    #[component(name = "not-found")]
    NotFound,
    #[component(name = "invalid-argument")]
    InvalidArgument,
    #[component(name = "read-only")]
    ReadOnly,
    #[component(name = "io")]
    Io,
    #[component(name = "unsupported")]
    Unsupported,
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorCode::NotFound => "not-found",
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::ReadOnly => "read-only",
            ErrorCode::Io => "io",
            ErrorCode::Unsupported => "unsupported",
        })
    }
}

/// `weft:devices/block.geometry`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(record)]
pub struct Geometry {
    #[component(name = "sector-size")]
    pub sector_size: u32,
    #[component(name = "sector-count")]
    pub sector_count: u64,
    #[component(name = "read-only")]
    pub read_only: bool,
}

/// Largest transfer of one `read` or `write` call (the contract lets devices
/// refuse more; leaves always do, so every stack behaves the same).
pub const MAX_TRANSFER: usize = 1 << 20;

/// Largest `random.fill` request.
pub const MAX_RANDOM: u32 = 65536;

/// A block device backend: `FileBlock`, `MemoryBlock`, `VirtioBlk`.
///
/// Calls arrive already checked against [`Geometry`]: `start + count` is in
/// range, `data` is a non-empty whole number of sectors, writes are not sent
/// to read-only devices.
pub trait BlockDevice: Send {
    fn geometry(&self) -> Geometry;
    fn read(&mut self, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode>;
    fn write(&mut self, start: u64, data: &[u8]) -> Result<(), ErrorCode>;
    fn flush(&mut self) -> Result<(), ErrorCode>;
}

/// A clock backend. Both readings are in nanoseconds.
pub trait Clock: Send {
    fn monotonic_now(&self) -> u64;
    fn wall_now(&self) -> i64;
    /// Sleep until `monotonic_now() >= deadline` (or return early).
    fn wait_until(&mut self, deadline: u64);
}

/// A console backend.
pub trait Console: Send {
    fn write(&mut self, bytes: &[u8]);
}

/// A random-bytes backend.
pub trait Random: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// An event-log backend.
pub trait Log: Send {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]);
}

/// Checks a block request against the device's geometry; shared by every
/// host so leaves never see an out-of-range call.
pub fn check_range(g: &Geometry, start: u64, count: u64) -> Result<(), ErrorCode> {
    let bytes = count.checked_mul(u64::from(g.sector_size)).ok_or(ErrorCode::InvalidArgument)?;
    let end = start.checked_add(count).ok_or(ErrorCode::InvalidArgument)?;
    if count == 0 || end > g.sector_count || bytes > MAX_TRANSFER as u64 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry { sector_size: 512, sector_count: 100, read_only: false };

    #[test]
    fn range_checks() {
        assert_eq!(check_range(&G, 0, 1), Ok(()));
        assert_eq!(check_range(&G, 99, 1), Ok(()));
        assert_eq!(check_range(&G, 99, 2), Err(ErrorCode::InvalidArgument));
        assert_eq!(check_range(&G, 0, 0), Err(ErrorCode::InvalidArgument));
        assert_eq!(check_range(&G, u64::MAX, 1), Err(ErrorCode::InvalidArgument));
        let big = Geometry { sector_count: u64::MAX, ..G };
        assert_eq!(check_range(&big, 0, 2048), Ok(()));
        assert_eq!(check_range(&big, 0, 2049), Err(ErrorCode::InvalidArgument));
    }
}

/// `weft:devices/net.net-info`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(record)]
pub struct NetInfo {
    pub mac: (u8, u8, u8, u8, u8, u8),
    pub mtu: u32,
    #[component(name = "checksum-offload")]
    pub checksum_offload: bool,
}

/// Largest number of frames one `net.receive` returns.
pub const MAX_FRAMES: u32 = 256;

/// A network device backend: `TapNet`, `UdpNet`, `VirtioNet`.
pub trait NetDevice: Send {
    fn info(&self) -> NetInfo;
    /// Queue frames (already checked: 14..=14+mtu bytes; on `weft run` they
    /// are the sender's own memory); returns how many were taken from the front.
    fn send(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode>;
    /// Up to `max` pending frames; never blocks.
    fn receive(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode>;
}

/// `weft:devices/capture.direction`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum Direction {
    #[component(name = "inbound")]
    Inbound,
    #[component(name = "outbound")]
    Outbound,
}

/// Where a capturing filter's frames go (a pcap file on Linux).
pub trait Capture: Send {
    fn frame(&mut self, at: u64, direction: Direction, data: &[u8]);
}

/// `weft:devices/sockets.endpoint`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(record)]
pub struct Endpoint {
    pub addr: (u8, u8, u8, u8),
    pub port: u16,
}

/// `weft:devices/sockets.socket-error`.
#[derive(ComponentType, Lift, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum SocketError {
    #[component(name = "would-block")]
    WouldBlock,
    #[component(name = "address-in-use")]
    AddressInUse,
    #[component(name = "connection-reset")]
    ConnectionReset,
    #[component(name = "not-connected")]
    NotConnected,
    #[component(name = "invalid-argument")]
    InvalidArgument,
    #[component(name = "unreachable")]
    Unreachable,
    #[component(name = "no-buffers")]
    NoBuffers,
}

/// The host's own TCP/IP stack as a `sockets` provider (`[stack] backend =
/// "host"`). Same contract as `weft:devices/sockets`.
pub trait Sockets: Send {
    fn tcp_listen(&mut self, port: u16) -> Result<u32, SocketError>;
    fn tcp_accept(&mut self, listener: u32) -> Result<(u32, Endpoint), SocketError>;
    fn tcp_connect(&mut self, remote: Endpoint) -> Result<u32, SocketError>;
    fn tcp_send(&mut self, s: u32, data: &[u8]) -> Result<u32, SocketError>;
    fn tcp_recv(&mut self, s: u32, max: u32) -> Result<Vec<u8>, SocketError>;
    fn tcp_shutdown(&mut self, s: u32) -> Result<(), SocketError>;
    fn udp_bind(&mut self, port: u16) -> Result<u32, SocketError>;
    fn udp_send_to(&mut self, s: u32, data: &[u8], to: Endpoint) -> Result<(), SocketError>;
    fn udp_recv_from(&mut self, s: u32, max: u32) -> Result<(Vec<u8>, Endpoint), SocketError>;
    fn close(&mut self, s: u32);
}
