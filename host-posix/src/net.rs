//! Linux network leaves: `TapNet`, `UdpNet`, the `PcapCapture` writer and
//! `HostSockets` (the host's own TCP/IP as a `sockets` provider), plus
//! `Readiness`: the file descriptors the clock's `wait-until` watches so a
//! waiting unikernel wakes as soon as a device has input.

use std::collections::HashMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cap_std::fs::{Dir, OpenOptions};
use crate::offload;
use weft_runtime::devices::{Capture, Direction, Endpoint, ErrorCode, NetDevice, NetInfo, SocketError, Sockets};

/// File descriptors whose input should end a `clock.wait-until` early.
#[derive(Clone, Default)]
pub struct Readiness(Arc<Mutex<Vec<RawFd>>>);

impl Readiness {
    pub fn add(&self, fd: RawFd) {
        self.0.lock().unwrap().push(fd);
    }

    pub fn remove(&self, fd: RawFd) {
        self.0.lock().unwrap().retain(|&f| f != fd);
    }

    /// Sleeps up to `timeout`, returning early when any fd is readable.
    pub fn wait(&self, timeout: Duration) {
        let mut fds: Vec<libc::pollfd> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
            .collect();
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return;
        }
        let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds; `ts` lives
        // across the call; a null sigmask keeps the current one.
        unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
    }
}

/// A net device's MAC from its name: the one `weft boot` also gives the
/// virtio-net device (`weft_runtime::leaves::mac_for`), so both targets answer
/// ARP alike.
fn mac_for(name: &str) -> (u8, u8, u8, u8, u8, u8) {
    let [a, b, c, d, e, f] = weft_runtime::leaves::mac_for(name);
    (a, b, c, d, e, f)
}

const MTU: u32 = 1500;
const FRAME_MAX: usize = 14 + MTU as usize;
/// The largest MTU a TAP device may report: a frame must fit the 64 KiB read buffer.
const TAP_MTU_MAX: u32 = 65535 - 14;

/// An existing TAP interface (IFF_TAP | IFF_NO_PI), non-blocking; with `offload`,
/// segmentation offload through virtio-net headers (`crate::offload`).
pub struct TapNet {
    file: File,
    info: NetInfo,
    buf: Vec<u8>,
    offload: bool,
    /// The TAP device's own MTU (the stack's is 64 KiB with offload).
    wire_mtu: u32,
}

/// `TUNSETOFFLOAD` and its flags (linux/if_tun.h; not in the libc crate).
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;

impl TapNet {
    pub fn open(device: &str, role: &str, offload: bool, readiness: &Readiness) -> Result<TapNet> {
        if device.is_empty() || device.len() >= libc::IFNAMSIZ || device.contains('/') {
            bail!("device `{role}`: {device:?} is not a valid interface name");
        }
        // TUNSETIFF on a missing name would create a new interface: weft only
        // attaches to one that exists, so the user's network setup is the truth.
        let sys = PathBuf::from("/sys/class/net").join(device);
        if !sys.exists() {
            bail!("device `{role}`: TAP device {device} does not exist; create it with `ip tuntap add dev {device} mode tap && ip link set {device} up` (as root, in the network namespace weft runs in)");
        }
        if !sys.join("tun_flags").exists() {
            bail!("device `{role}`: interface {device} exists but is not a TAP device");
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags_nonblock()
            .open("/dev/net/tun")
            .with_context(|| format!("device `{role}`: opening /dev/net/tun (TAP needs root or CAP_NET_ADMIN)"))?;
        // SAFETY: `ifreq` is plain data; we fill the name and flags as
        // TUNSETIFF expects and pass a pointer valid for the call.
        unsafe {
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in device.bytes().enumerate() {
                req.ifr_name[i] = b as libc::c_char;
            }
            let vnet = if offload { libc::IFF_VNET_HDR } else { 0 };
            req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | vnet) as libc::c_short;
            if libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &req) < 0 {
                let e = std::io::Error::last_os_error();
                bail!("device `{role}`: attaching to TAP device {device}: {e} (is it a TAP, not a TUN, device, owned by this user or used by another process?)");
            }
            // With offload Linux may hand over TCP as unsegmented super-frames with
            // the checksum left to do, which the stack then skips (`offload::check_received`).
            // Without, the device is set back to none: offloads outlive the process
            // that set them, and a plain reader would get frames it cannot take.
            let flags = if offload { TUN_F_CSUM | TUN_F_TSO4 } else { 0 };
            if libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, flags) < 0 {
                let e = std::io::Error::last_os_error();
                bail!("device `{role}`: setting segmentation offload on TAP device {device} to {offload}: {e}");
            }
        }
        // The TAP device's own MTU (`ip link set tap0 mtu 9000` gives the stack jumbo
        // frames: far fewer frames, and so syscalls and component calls, per byte).
        let mtu = std::fs::read_to_string(sys.join("mtu"))
            .ok()
            .and_then(|m| m.trim().parse::<u32>().ok())
            .unwrap_or(MTU)
            .clamp(576, TAP_MTU_MAX);
        // With offload the stack takes and sends super-frames: its MTU is the
        // largest IPv4 packet's (`offload::widen_mss`).
        let wire_mtu = mtu;
        let mtu = if offload { TAP_MTU_MAX } else { mtu };
        wait_link_up(&sys);
        readiness.add(file.as_raw_fd());
        let buf = vec![0; 65536];
        Ok(TapNet { file, info: NetInfo { mac: mac_for(device), mtu, checksum_offload: offload }, buf, offload, wire_mtu })
    }
}

/// Attaching gives the TAP device its carrier, but Linux starts transmitting on it
/// only once its link-watch work has run (until then its queue discipline is `noop`
/// and drops everything, such as the host's answer to the stack's first ARP probe).
/// That work is asynchronous and late on a busy machine, so `open` waits for the
/// operational state it sets, at most a second, when the interface is up at all.
fn wait_link_up(sys: &Path) {
    let flags = std::fs::read_to_string(sys.join("flags")).unwrap_or_default();
    let up = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & libc::IFF_UP as u32 != 0);
    if !up {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match std::fs::read_to_string(sys.join("operstate")).as_deref().map(str::trim) {
            Ok("down" | "lowerlayerdown" | "notpresent") => std::thread::sleep(Duration::from_millis(1)),
            _ => return,
        }
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

impl NetDevice for TapNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode> {
        if self.offload {
            return self.send_offloaded(frames);
        }
        let mut sent = 0;
        for f in frames {
            match self.file.write(f) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return if sent > 0 { Ok(sent) } else { Err(ErrorCode::Io) },
            }
        }
        Ok(sent)
    }

    fn receive(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        if self.offload {
            return self.receive_offloaded(max);
        }
        let mut out = Vec::new();
        while out.len() < max as usize {
            match self.file.read(&mut self.buf) {
                // Frames longer than the MTU (offloads) are dropped, as a NIC would.
                Ok(n) if (14..=14 + self.info.mtu as usize).contains(&n) => out.push(self.buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) if !out.is_empty() => break,
                Err(_) => return Err(ErrorCode::Io),
            }
        }
        Ok(out)
    }
}

impl TapNet {
    /// `receive` with virtio-net headers: each frame is read straight into the
    /// buffer it is handed over in (a super-frame is 64 KiB), its checksum left
    /// partial or checked (frames with a bad one dropped) and a SYN's MSS widened
    /// (`offload`).
    fn receive_offloaded(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        const SMALL: usize = 4096;
        let cap = 14 + self.info.mtu as usize;
        let mut out = Vec::new();
        while out.len() < max as usize {
            if self.buf.capacity() < cap {
                self.buf = Vec::with_capacity(cap);
            }
            let mut hdr = [0u8; offload::HDR_LEN];
            let iov = [
                libc::iovec { iov_base: hdr.as_mut_ptr().cast(), iov_len: hdr.len() },
                libc::iovec { iov_base: self.buf.as_mut_ptr().cast(), iov_len: cap },
            ];
            // SAFETY: both iovecs point at writable memory of their lengths (the
            // buffer's capacity is at least `cap`), alive across the call.
            let n = unsafe { libc::readv(self.file.as_raw_fd(), iov.as_ptr(), 2) };
            if n < 0 {
                match std::io::Error::last_os_error().kind() {
                    ErrorKind::WouldBlock => break,
                    _ if !out.is_empty() => break,
                    _ => return Err(ErrorCode::Io),
                }
            }
            if n == 0 {
                break;
            }
            let Some(len) = (n as usize).checked_sub(offload::HDR_LEN).filter(|l| *l >= 14) else { continue };
            // SAFETY: readv wrote `len` bytes into the buffer.
            unsafe { self.buf.set_len(len) };
            // A big frame is handed over as it is (a new buffer is made for the
            // next), a small one copied out of the reused buffer.
            let mut f = if len > SMALL { std::mem::take(&mut self.buf) } else { self.buf.clone() };
            let partial = match offload::check_received(&hdr, &mut f) {
                offload::Received::Bad => continue,
                r => r == offload::Received::Partial,
            };
            offload::widen_mss(&mut f, self.wire_mtu, partial);
            out.push(f);
        }
        Ok(out)
    }

    /// `send` with virtio-net headers, runs of TCP segments merged: the count
    /// returned is of the caller's frames, a merged frame counting for each of its
    /// segments.
    fn send_offloaded(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode> {
        let mut sent = 0u32;
        for out in offload::coalesce(frames, self.wire_mtu) {
            if out.is_dropped() {
                // Lost as on the wire: a bad checksum the receiver would drop.
                sent += out.frames as u32;
                continue;
            }
            let mut iov = Vec::with_capacity(2 + out.parts.len());
            iov.push(std::io::IoSlice::new(&out.hdr));
            iov.push(std::io::IoSlice::new(&out.head));
            iov.extend(out.parts.iter().map(|p| std::io::IoSlice::new(p)));
            match self.file.write_vectored(&iov) {
                Ok(_) => sent += out.frames as u32,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return if sent > 0 { Ok(sent) } else { Err(ErrorCode::Io) },
            }
        }
        Ok(sent)
    }
}

/// Frames as UDP datagrams between `local` and `remote` (one datagram per
/// frame, QEMU's `-netdev socket,udp=` format): unprivileged links between
/// unikernels, or between weft and QEMU.
pub struct UdpNet {
    sock: UdpSocket,
    info: NetInfo,
    buf: Vec<u8>,
}

impl UdpNet {
    pub fn open(local: &str, remote: &str, role: &str, readiness: &Readiness) -> Result<UdpNet> {
        let sock = UdpSocket::bind(local).with_context(|| format!("device `{role}`: binding UDP {local} (in use by another process?)"))?;
        sock.connect(remote).with_context(|| format!("device `{role}`: UDP peer {remote}"))?;
        sock.set_nonblocking(true)?;
        readiness.add(sock.as_raw_fd());
        Ok(UdpNet { sock, info: NetInfo { mac: mac_for(local), mtu: MTU, checksum_offload: false }, buf: vec![0; 65536] })
    }
}

impl NetDevice for UdpNet {
    fn info(&self) -> NetInfo {
        self.info
    }

    fn send(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode> {
        let mut sent = 0;
        for f in frames {
            match self.sock.send(f) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // No peer listening yet: the frame is lost, as on a wire.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => sent += 1,
                Err(_) => return if sent > 0 { Ok(sent) } else { Err(ErrorCode::Io) },
            }
        }
        Ok(sent)
    }

    fn receive(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let mut out = Vec::new();
        while out.len() < max as usize {
            match self.sock.recv(&mut self.buf) {
                Ok(n) if (14..=FRAME_MAX).contains(&n) => out.push(self.buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(_) if !out.is_empty() => break,
                Err(_) => return Err(ErrorCode::Io),
            }
        }
        Ok(out)
    }
}

/// Writes captured frames as a classic pcap file (LINKTYPE_ETHERNET), created
/// on the first frame inside the manifest's folder.
pub struct PcapCapture {
    dir: Arc<Dir>,
    path: PathBuf,
    file: Option<cap_std::fs::File>,
}

impl PcapCapture {
    pub fn new(dir: Arc<Dir>, path: PathBuf) -> PcapCapture {
        PcapCapture { dir, path, file: None }
    }
}

impl Capture for PcapCapture {
    fn frame(&mut self, _at: u64, _direction: Direction, data: &[u8]) {
        if self.file.is_none() {
            let Ok(mut f) = self.dir.open_with(&self.path, OpenOptions::new().write(true).create(true).truncate(true)) else {
                eprintln!("weft: warning: cannot create capture file {}", self.path.display());
                return;
            };
            let mut h = Vec::with_capacity(24);
            h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
            h.extend_from_slice(&2u16.to_le_bytes());
            h.extend_from_slice(&4u16.to_le_bytes());
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&65535u32.to_le_bytes());
            h.extend_from_slice(&1u32.to_le_bytes());
            let _ = f.write_all(&h);
            self.file = Some(f);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut rec = Vec::with_capacity(16 + data.len());
        rec.extend_from_slice(&(now.as_secs() as u32).to_le_bytes());
        rec.extend_from_slice(&now.subsec_micros().to_le_bytes());
        rec.extend_from_slice(&(data.len() as u32).to_le_bytes());
        rec.extend_from_slice(&(data.len() as u32).to_le_bytes());
        rec.extend_from_slice(data);
        if let Some(f) = &mut self.file {
            let _ = f.write_all(&rec).and_then(|()| f.flush());
        }
    }
}

enum Sock {
    Listener(TcpListener),
    Stream(TcpStream),
    Udp(UdpSocket),
}

impl Sock {
    fn fd(&self) -> RawFd {
        match self {
            Sock::Listener(s) => s.as_raw_fd(),
            Sock::Stream(s) => s.as_raw_fd(),
            Sock::Udp(s) => s.as_raw_fd(),
        }
    }
}

/// The host kernel's TCP/IP as the app's `sockets` (MirageOS's `--net
/// socket`): listens and binds on 127.0.0.1, needs no TAP and no privileges.
pub struct HostSockets {
    socks: HashMap<u32, Sock>,
    next: u32,
    readiness: Readiness,
    address: Ipv4Addr,
}

fn endpoint(a: SocketAddr) -> Endpoint {
    match a {
        SocketAddr::V4(v4) => {
            let o = v4.ip().octets();
            Endpoint { addr: (o[0], o[1], o[2], o[3]), port: v4.port() }
        }
        SocketAddr::V6(v6) => Endpoint { addr: (0, 0, 0, 0), port: v6.port() },
    }
}

fn addr(e: Endpoint) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(e.addr.0, e.addr.1, e.addr.2, e.addr.3), e.port))
}

fn sock_err(e: std::io::Error) -> SocketError {
    match e.kind() {
        ErrorKind::WouldBlock => SocketError::WouldBlock,
        ErrorKind::AddrInUse => SocketError::AddressInUse,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            SocketError::ConnectionReset
        }
        ErrorKind::NotConnected => SocketError::NotConnected,
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable | ErrorKind::TimedOut => SocketError::Unreachable,
        _ => SocketError::InvalidArgument,
    }
}

impl HostSockets {
    /// Listening and binding on `address` (`[stack] address`: 127.0.0.1 by
    /// default, 0.0.0.0 in a container that serves its pod).
    pub fn new(readiness: Readiness, address: Ipv4Addr) -> HostSockets {
        HostSockets { socks: HashMap::new(), next: 0, readiness, address }
    }

    fn add(&mut self, s: Sock) -> u32 {
        self.readiness.add(s.fd());
        let id = self.next;
        self.next += 1;
        self.socks.insert(id, s);
        id
    }

    fn stream(&mut self, s: u32) -> Result<&mut TcpStream, SocketError> {
        match self.socks.get_mut(&s) {
            Some(Sock::Stream(t)) => Ok(t),
            _ => Err(SocketError::InvalidArgument),
        }
    }
}


impl Sockets for HostSockets {
    fn tcp_listen(&mut self, port: u16) -> Result<u32, SocketError> {
        if port == 0 {
            return Err(SocketError::InvalidArgument);
        }
        let l = TcpListener::bind((self.address, port)).map_err(sock_err)?;
        l.set_nonblocking(true).map_err(sock_err)?;
        Ok(self.add(Sock::Listener(l)))
    }

    fn tcp_accept(&mut self, listener: u32) -> Result<(u32, Endpoint), SocketError> {
        let Some(Sock::Listener(l)) = self.socks.get(&listener) else { return Err(SocketError::InvalidArgument) };
        let (s, peer) = l.accept().map_err(sock_err)?;
        s.set_nonblocking(true).map_err(sock_err)?;
        let _ = s.set_nodelay(true);
        Ok((self.add(Sock::Stream(s)), endpoint(peer)))
    }

    fn tcp_connect(&mut self, remote: Endpoint) -> Result<u32, SocketError> {
        let s = TcpStream::connect_timeout(&addr(remote), Duration::from_secs(1)).map_err(sock_err)?;
        s.set_nonblocking(true).map_err(sock_err)?;
        let _ = s.set_nodelay(true);
        Ok(self.add(Sock::Stream(s)))
    }

    fn tcp_send(&mut self, s: u32, data: &[u8]) -> Result<u32, SocketError> {
        match self.stream(s)?.write(data) {
            Ok(0) if !data.is_empty() => Err(SocketError::WouldBlock),
            Ok(n) => Ok(n as u32),
            Err(e) => Err(sock_err(e)),
        }
    }

    fn tcp_recv(&mut self, s: u32, max: u32) -> Result<Vec<u8>, SocketError> {
        let mut buf = vec![0; max.min(1 << 20) as usize];
        let n = self.stream(s)?.read(&mut buf).map_err(sock_err)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn tcp_shutdown(&mut self, s: u32) -> Result<(), SocketError> {
        self.stream(s)?.shutdown(Shutdown::Write).map_err(sock_err)
    }

    fn udp_bind(&mut self, port: u16) -> Result<u32, SocketError> {
        let u = UdpSocket::bind((self.address, port)).map_err(sock_err)?;
        u.set_nonblocking(true).map_err(sock_err)?;
        Ok(self.add(Sock::Udp(u)))
    }

    fn udp_send_to(&mut self, s: u32, data: &[u8], to: Endpoint) -> Result<(), SocketError> {
        let Some(Sock::Udp(u)) = self.socks.get(&s) else { return Err(SocketError::InvalidArgument) };
        u.send_to(data, addr(to)).map(|_| ()).map_err(sock_err)
    }

    fn udp_recv_from(&mut self, s: u32, max: u32) -> Result<(Vec<u8>, Endpoint), SocketError> {
        let Some(Sock::Udp(u)) = self.socks.get(&s) else { return Err(SocketError::InvalidArgument) };
        let mut buf = vec![0; 65536];
        let (n, from) = u.recv_from(&mut buf).map_err(sock_err)?;
        buf.truncate(n.min(max as usize));
        Ok((buf, endpoint(from)))
    }

    fn close(&mut self, s: u32) {
        if let Some(sock) = self.socks.remove(&s) {
            self.readiness.remove(sock.fd());
        }
    }
}

