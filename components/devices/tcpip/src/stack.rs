//! smoltcp driven over a weft net device, without the bindings: the device is the [`Net`]
//! trait and time is passed in, so the whole stack runs in host unit tests (two stacks
//! wired back to back, or one fed garbage frames).
//!
//! Every public operation first calls [`Stack::poll`] (take pending frames, run the
//! interface, send what it produced), does its work, and operations that queue output
//! run the interface's egress once more so the frames leave in the same call.
//!
//! **Address clashes** (RFC 5227): [`Stack::new`] broadcasts an ARP probe for the
//! configured address (sender 0.0.0.0, so no cache learns anything from it), and every
//! poll looks at incoming ARP: a request or reply whose *sender* is our address but not
//! our MAC means another host uses it (the answer to the probe, its gratuitous ARP, or
//! its ordinary traffic). The stack then stops using the address at once, as RFC 5227
//! requires: frames are drained and dropped, nothing more is sent, one event names the
//! device, the address and the other MAC, and every sockets call fails with
//! `unreachable`. [`Stack::clash`] reports it, so `configure` can refuse to start when
//! the answer came back already (a Linux host answers the probe within the send call).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use weft_guest::Rng;

use crate::config::{StackConfig, fmt_ip, fmt_mac, same_subnet};

/// The net device below the stack, and the log.
pub trait Net {
    /// Up to `max` pending frames (none: empty).
    fn receive(&mut self, max: u32) -> Vec<Vec<u8>>;
    /// Queue frames; how many from the front were accepted (an error: none will be).
    fn send(&mut self, frames: &[Vec<u8>]) -> Result<usize, ()>;
    /// One event on the `tcpip` log topic.
    fn log(&mut self, message: &str, fields: &[(&str, String)]);
}

/// The `sockets` interface's error, without the bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockErr {
    WouldBlock,
    AddressInUse,
    ConnectionReset,
    NotConnected,
    InvalidArgument,
    Unreachable,
    NoBuffers,
}

pub type Endpoint = ([u8; 4], u16);

/// What the stack knows of its net device (`net-info`).
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub mac: [u8; 6],
    /// Largest frame payload.
    pub mtu: u32,
    /// The device fills in and checks TCP and UDP checksums: smoltcp sends them as
    /// zero and skips checking them (see `net-info.checksum-offload`).
    pub checksum_offload: bool,
}

/// Frames per `net.receive` call.
const RX_BATCH: u32 = 64;
/// `net.receive` calls per poll at most, so one poll does bounded work.
const RX_ROUNDS: usize = 16;
/// Frames the stack may queue while the device refuses them.
const TX_QUEUE: usize = 256;
/// Sockets of all kinds at most (listener pools included).
const MAX_SOCKETS: usize = 4096;
/// Connections the app closed that smoltcp holds in TIME-WAIT (10 s), at most: the
/// oldest beyond are forgotten (nothing to send: no RST). Every socket costs time in
/// every poll (smoltcp walks them all), and a server closing thousands of connections a
/// second would otherwise carry tens of thousands: measured, httpd with a new connection
/// per request fell to a few hundred requests/s. TIME-WAIT's guard against old
/// duplicates matters little on the links weft serves; a peer whose last FIN is
/// retransmitted after we forgot gets a RST instead of an ACK, having all its data.
const TIME_WAIT_MAX: usize = 128;
/// A sockets call within this long of a poll that left the device empty does not
/// poll it again (see `Stack::poll_live`).
const RECHECK: u64 = 50_000;
/// A TCP connection with unacknowledged data and a silent peer is aborted after this.
const TCP_TIMEOUT: Duration = Duration::from_secs(60);

/// smoltcp's view of the device: frames already taken from `net.receive`, frames waiting
/// for `net.send`.
struct Phy {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
    /// Buffers of frames sent, for [`TxTok`] to reuse.
    spare: Vec<Vec<u8>>,
    /// Largest frame, Ethernet header included.
    max_frame: usize,
    checksum_offload: bool,
}

struct RxTok(Vec<u8>);
struct TxTok<'a> {
    tx: &'a mut Vec<Vec<u8>>,
    spare: &'a mut Vec<Vec<u8>>,
}

/// Bytes of Ethernet, IPv4 and TCP headers at most.
const HEADERS: usize = 14 + 60 + 60;
/// Buffers of sent frames kept for the next ones.
const SPARE: usize = 32;

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    /// The frame is built in the buffer of one already sent, when there is one long
    /// enough: no allocation, and no zeroing of the 64 KiB a super-frame's payload
    /// overwrites. smoltcp writes every byte of a frame but a TCP header's padding
    /// after its option list's end; the header bytes are zeroed, so nothing of an
    /// earlier frame goes out again.
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = match self.spare.iter().position(|b| b.len() >= len) {
            Some(i) => {
                let mut b = self.spare.swap_remove(i);
                b.truncate(len);
                b[..len.min(HEADERS)].fill(0);
                b
            }
            None => vec![0u8; len],
        };
        let r = f(&mut buf);
        self.tx.push(buf);
        r
    }
}

impl phy::Device for Phy {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxTok, TxTok<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxTok(frame), TxTok { tx: &mut self.tx, spare: &mut self.spare }))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxTok<'_>> {
        if self.tx.len() >= TX_QUEUE {
            None
        } else {
            Some(TxTok { tx: &mut self.tx, spare: &mut self.spare })
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.max_frame;
        if self.checksum_offload {
            caps.checksum.tcp = phy::Checksum::None;
            caps.checksum.udp = phy::Checksum::None;
        }
        caps
    }
}

enum Entry {
    /// A listened port and the sockets listening on it (some may have a connection in
    /// progress or established, waiting for `tcp-accept`).
    Listener {
        port: u16,
        pool: Vec<SocketHandle>,
    },
    /// A connection; `shut` once the app has called `tcp-shutdown`.
    Tcp {
        h: SocketHandle,
        shut: bool,
    },
    Udp {
        h: SocketHandle,
    },
}

pub struct Stack<N: Net> {
    pub net: N,
    phy: Phy,
    iface: Interface,
    sockets: SocketSet<'static>,
    table: BTreeMap<u32, Entry>,
    next_id: u32,
    /// Connections the app closed, kept until their FIN handshake ends.
    closing: VecDeque<SocketHandle>,
    rng: Rng,
    cfg: StackConfig,
    /// Frames the device refused or failed on, for the record.
    pub tx_dropped: u64,
    mac: [u8; 6],
    /// The net device's role, to name it in events.
    role: String,
    /// Another host's MAC that uses our address: the stack is off.
    clash: Option<Clash>,
    /// The local port the next `tcp-connect` tries first (tests reuse ports with it).
    next_local_port: Option<u16>,
    /// When a poll last left the device empty (its last receive returned fewer frames
    /// than asked for), until one does not or the app asks for its next deadline
    /// (see `poll_live`).
    quiet_since: Option<u64>,
}

/// Another host on the link uses the stack's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clash {
    pub ip: [u8; 4],
    pub other_mac: [u8; 6],
    /// The net device's role.
    pub role: String,
    /// How it showed: `ARP reply` or `ARP request`.
    pub how: &'static str,
}

impl Clash {
    /// What happened, naming the device, the address and the other host (the log
    /// event and `configure`'s error each add what follows from it).
    pub fn message(&self) -> String {
        format!(
            "address clash on net device `{}`: {} is already used by {} (seen in an {} from it)",
            self.role,
            fmt_ip(self.ip),
            fmt_mac(self.other_mac),
            self.how
        )
    }
}

fn instant(now_ns: u64) -> Instant {
    Instant::from_micros((now_ns / 1000) as i64)
}

fn ip4(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

fn endpoint_of(e: IpEndpoint) -> Endpoint {
    match e.addr {
        IpAddress::Ipv4(a) => (a.octets(), e.port),
    }
}

fn listening(s: &tcp::Socket) -> bool {
    matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived)
}

impl<N: Net> Stack<N> {
    /// A stack on the net device `role` (its name in events). Broadcasts an ARP probe
    /// for the address at once (see the module docs).
    pub fn new(
        mut net: N,
        role: &str,
        link: Link,
        cfg: StackConfig,
        seed: u64,
        now_ns: u64,
    ) -> Stack<N> {
        let Link { mac, mtu, checksum_offload } = link;
        let mut phy = Phy {
            rx: VecDeque::new(),
            tx: Vec::new(),
            spare: Vec::new(),
            max_frame: 14 + mtu.clamp(576, 65535) as usize,
            checksum_offload,
        };
        let mut icfg = IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        icfg.random_seed = seed;
        let mut iface = Interface::new(icfg, &mut phy, instant(now_ns));
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip4(cfg.ip)), cfg.prefix));
        });
        if let Some(gw) = cfg.gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(ip4(gw));
        }
        let gw = cfg
            .gateway
            .map(fmt_ip)
            .unwrap_or_else(|| String::from("none"));
        net.log(
            &format!(
                "address {}/{} gateway {gw} mac {} mtu {mtu}",
                fmt_ip(cfg.ip),
                cfg.prefix,
                fmt_mac(mac)
            ),
            &[
                ("event", String::from("configured")),
                ("ip", format!("{}/{}", fmt_ip(cfg.ip), cfg.prefix)),
                ("gateway", gw.clone()),
                ("mac", fmt_mac(mac)),
                ("mtu", mtu.to_string()),
            ],
        );
        // RFC 5227 probe: who has our address? Anyone answering is using it.
        phy.tx.push(arp_probe(mac, cfg.ip));
        let mut st = Stack {
            net,
            phy,
            iface,
            sockets: SocketSet::new(Vec::new()),
            table: BTreeMap::new(),
            next_id: 1,
            closing: VecDeque::new(),
            rng: Rng::new(seed ^ 0x7463_7069_70),
            cfg,
            tx_dropped: 0,
            mac,
            role: String::from(role),
            clash: None,
            next_local_port: None,
            quiet_since: None,
        };
        st.flush();
        st
    }

    /// Another host's use of our address, once seen (the stack is off from then on).
    pub fn clash(&self) -> Option<&Clash> {
        self.clash.as_ref()
    }

    fn on_clash(&mut self, other_mac: [u8; 6], how: &'static str) {
        if self.clash.is_some() {
            return;
        }
        let c = Clash {
            ip: self.cfg.ip,
            other_mac,
            role: self.role.clone(),
            how,
        };
        self.net.log(
            &format!(
                "{}; the stack stops using the address: its sockets calls fail with `unreachable`",
                c.message()
            ),
            &[
                ("event", String::from("address-clash")),
                ("device", self.role.clone()),
                ("ip", fmt_ip(c.ip)),
                ("other-mac", fmt_mac(other_mac)),
                ("mac", fmt_mac(self.mac)),
            ],
        );
        self.clash = Some(c);
        self.phy.tx.clear();
        self.phy.rx.clear();
    }

    /// [`Stack::poll`] unless a poll left the device empty less than [`RECHECK`] ago
    /// and the app has not waited since; then `unreachable` if the address clashed.
    ///
    /// A server's loop makes a sockets call per connection (accept, then receive
    /// and send on each), and the first call's poll takes every frame pending:
    /// polling again microseconds later finds nothing, at the cost of a device
    /// call through every filter and a system call. An app waits only after
    /// `next-deadline`, whose poll always looks, and clears the mark, so no frame
    /// that woke the app is missed; one arriving while the app keeps busy is seen
    /// at most [`RECHECK`] late.
    fn poll_live(&mut self, now_ns: u64) -> Result<(), SockErr> {
        let quiet = self.quiet_since.is_some_and(|t| now_ns.saturating_sub(t) < RECHECK);
        if !quiet {
            self.poll(now_ns);
        }
        match self.clash {
            Some(_) => Err(SockErr::Unreachable),
            None => Ok(()),
        }
    }

    /// Take pending frames, run the interface, send its output; re-arm listener pools
    /// and forget finished connections. Returns whether any frame was received: the
    /// frames are then off the device, so a caller about to wait must not rely on the
    /// device waking it for them (see [`Stack::next_deadline`]).
    pub fn poll(&mut self, now_ns: u64) -> bool {
        let (received, drained) = self.poll_device(now_ns);
        // A receive that returned fewer frames than asked for left the device empty.
        self.quiet_since = drained.then_some(now_ns);
        received
    }

    /// [`Stack::poll`]'s work: whether frames were received, and whether the
    /// device was left empty.
    fn poll_device(&mut self, now_ns: u64) -> (bool, bool) {
        let now = instant(now_ns);
        let (mut received, mut full) = (false, false);
        for _ in 0..RX_ROUNDS {
            let frames = self.net.receive(RX_BATCH);
            full = frames.len() as u32 >= RX_BATCH;
            received |= !frames.is_empty();
            for f in &frames {
                if let Some((other, how)) = arp_claim(f, self.cfg.ip, self.mac) {
                    self.on_clash(other, how);
                }
            }
            if self.clash.is_some() {
                // Off: keep draining the device (its readiness would wake the app's
                // every wait otherwise), answer nothing.
                if !full {
                    break;
                }
                continue;
            }
            // Enough listening sockets for every SYN in the batch, so a burst of
            // connections is not refused just because the pool was re-armed too late;
            // a SYN repeated for a connection the stack has already goes no further.
            let mut syns: Vec<(u16, usize)> = Vec::new();
            let mut opened: Vec<([u8; 4], u16, u16)> = Vec::new();
            for f in frames {
                if let Some((src, sport, port)) = syn_of(&f, self.cfg.ip) {
                    self.reuse_time_wait(src, sport, port);
                    if self.listens(port) {
                        let tuple = (src, sport, port);
                        if opened.contains(&tuple) || self.holds(src, sport, port) {
                            // See `Stack::holds`.
                            continue;
                        }
                        opened.push(tuple);
                    }
                    match syns.iter_mut().find(|(p, _)| *p == port) {
                        Some((_, n)) => *n += 1,
                        None => syns.push((port, 1)),
                    }
                }
                match split_fin(&f, self.cfg.ip, self.phy.checksum_offload) {
                    Some((data, fin)) => self.phy.rx.extend([data, fin]),
                    None => self.phy.rx.push_back(f),
                }
            }
            if !syns.is_empty() {
                self.maintain(&syns);
            }
            self.iface.poll(now, &mut self.phy, &mut self.sockets);
            self.flush();
            if !full {
                break;
            }
        }
        self.maintain(&[]);
        (received, !full)
    }

    /// Whether a listener pool serves `port`.
    fn listens(&self, port: u16) -> bool {
        self.table
            .values()
            .any(|e| matches!(e, Entry::Listener { port: p, .. } if *p == port))
    }

    /// Whether a socket past LISTEN holds the 4-tuple `src:sport` → our `dport`.
    ///
    /// A SYN for such a 4-tuple on a listened port repeats one the stack took already
    /// (the SYN-ACK was lost and the client sent it again, or the link duplicated it),
    /// and [`Stack::poll`] drops it before smoltcp sees it (as it drops a second copy
    /// within one batch). smoltcp hands a segment to the first socket in its set that
    /// accepts it, and a listening socket accepts any SYN for its port. The pool is
    /// re-armed into the lowest free slot, which may lie below the connection's: the
    /// repeated SYN would open a second connection on the same 4-tuple, with its own
    /// sequence number in its SYN-ACK, and the peer's ACKs would reach that one
    /// first. It cannot accept them and answers each with a RST whose sequence number
    /// is the peer's acknowledgement number — in the peer's window: the healthy
    /// connection is reset (`weft explore examples/sim-cluster`, seed 33). Delivered
    /// to its own connection the SYN would be dropped as well (smoltcp ignores a
    /// segment without ACK in every state but LISTEN and SYN-SENT), so nothing else
    /// changes. A TIME-WAIT that [`Stack::reuse_time_wait`] ended holds nothing any
    /// more; a connecting socket's port is never a listened one, so a simultaneous
    /// open still reaches its SYN-SENT socket.
    fn holds(&self, src: [u8; 4], sport: u16, dport: u16) -> bool {
        let remote = IpEndpoint::new(IpAddress::Ipv4(ip4(src)), sport);
        self.sockets.iter().any(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(t) => {
                !matches!(t.state(), tcp::State::Listen | tcp::State::Closed)
                    && t.remote_endpoint() == Some(remote)
                    && t.local_endpoint().is_some_and(|e| e.port == dport)
            }
            _ => false,
        })
    }

    /// A new SYN for the 4-tuple of a connection this side closed and still holds in
    /// TIME-WAIT: drop that connection so the SYN reaches a listener. RFC 6191 lets a
    /// TIME-WAIT connection be reused by a SYN whose sequence number or timestamp is
    /// above the old connection's (smoltcp shows neither, so this does not check); a
    /// server that closes first holds the TIME-WAITs, and Linux clients reuse a port
    /// whose connection they saw closed. Left alone, smoltcp answers such a SYN with a
    /// challenge ACK and restarts its 10 s TIME-WAIT timer, and the client retries the
    /// SYN after 1 s, 3 s, …: measured as 1-2 s stalls under wrk with a new connection
    /// per request.
    fn reuse_time_wait(&mut self, src: [u8; 4], sport: u16, dport: u16) {
        let remote = IpEndpoint::new(IpAddress::Ipv4(ip4(src)), sport);
        let sockets = &self.sockets;
        let Some(i) = self.closing.iter().position(|&h| {
            let s = sockets.get::<tcp::Socket>(h);
            s.state() == tcp::State::TimeWait
                && s.remote_endpoint() == Some(remote)
                && s.local_endpoint().is_some_and(|e| e.port == dport)
        }) else {
            return;
        };
        if let Some(h) = self.closing.remove(i) {
            self.sockets.remove(h);
        }
    }

    /// Run egress only (after an operation queued data), then send.
    fn egress(&mut self, now_ns: u64) {
        let now = instant(now_ns);
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        self.flush();
    }

    fn flush(&mut self) {
        if self.clash.is_some() {
            self.phy.tx.clear();
        }
        if self.phy.tx.is_empty() {
            return;
        }
        match self.net.send(&self.phy.tx) {
            Ok(n) => {
                let n = n.min(self.phy.tx.len());
                let room = SPARE.saturating_sub(self.phy.spare.len());
                let sent = self.phy.tx.drain(..n);
                self.phy.spare.extend(sent.take(room));
            }
            Err(()) => {
                self.tx_dropped += self.phy.tx.len() as u64;
                self.phy.tx.clear();
            }
        }
    }

    /// Keep `backlog` sockets in `Listen` on every listened port, or as many as `syns`
    /// asks for a port (pools grow to at most 4 × backlog while connections wait for
    /// `tcp-accept`), and drop closed connections.
    fn maintain(&mut self, syns: &[(u16, usize)]) {
        let backlog = self.cfg.backlog;
        let (rx, tx) = (self.cfg.tcp_rx, self.cfg.tcp_tx);
        let mut pools: Vec<(u16, Vec<SocketHandle>)> = Vec::new();
        for e in self.table.values() {
            if let Entry::Listener { port, pool } = e {
                pools.push((*port, pool.clone()));
            }
        }
        for (port, pool) in pools {
            let mut pool_new = Vec::with_capacity(pool.len());
            let mut ready = 0;
            for h in pool {
                let s = self.sockets.get_mut::<tcp::Socket>(h);
                if s.state() == tcp::State::Closed {
                    // A handshake that failed (or a connection reset before it was
                    // accepted): listen again.
                    let _ = s.listen(port);
                }
                if s.state() == tcp::State::Listen {
                    ready += 1;
                }
                pool_new.push(h);
            }
            let want = syns
                .iter()
                .find(|(p, _)| *p == port)
                .map_or(0, |(_, n)| *n)
                .max(backlog);
            while ready < want
                && pool_new.len() < 4 * backlog
                && self.sockets.iter().count() < MAX_SOCKETS
            {
                let mut s = new_tcp(rx, tx);
                if s.listen(port).is_err() {
                    break;
                }
                pool_new.push(self.sockets.add(s));
                ready += 1;
            }
            for e in self.table.values_mut() {
                if let Entry::Listener { port: p, pool } = e {
                    if *p == port {
                        *pool = pool_new;
                        break;
                    }
                }
            }
        }
        // Forget finished connections, and TIME-WAITs beyond the newest TIME_WAIT_MAX
        // (oldest first: `closing` is in closing order).
        let sockets = &mut self.sockets;
        let time_waits = self
            .closing
            .iter()
            .filter(|&&h| sockets.get::<tcp::Socket>(h).state() == tcp::State::TimeWait)
            .count();
        let mut surplus = time_waits.saturating_sub(TIME_WAIT_MAX);
        self.closing.retain(|&h| {
            let state = sockets.get::<tcp::Socket>(h).state();
            let drop_tw = state == tcp::State::TimeWait && surplus > 0;
            if drop_tw {
                surplus -= 1;
            }
            if state == tcp::State::Closed || drop_tw {
                sockets.remove(h);
                false
            } else {
                true
            }
        });
    }

    fn add_entry(&mut self, e: Entry) -> u32 {
        // Ids are not reused until u32 wraps; skip any still in use.
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.table.contains_key(&id) {
                self.table.insert(id, e);
                return id;
            }
        }
    }

    fn room(&self) -> Result<(), SockErr> {
        if self.sockets.iter().count() >= MAX_SOCKETS {
            Err(SockErr::NoBuffers)
        } else {
            Ok(())
        }
    }

    fn tcp_port_in_use(&self, port: u16) -> bool {
        self.listens(port)
            || self.sockets.iter().any(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    t.local_endpoint().is_some_and(|e| e.port == port)
                }
                _ => false,
            })
    }

    /// Whether `addr` can be reached: on our subnet, or via the gateway.
    fn routable(&self, addr: [u8; 4]) -> bool {
        addr != [0; 4]
            && addr != [255; 4]
            && (same_subnet(self.cfg.ip, addr, self.cfg.prefix) || self.cfg.gateway.is_some())
    }

    pub fn tcp_listen(&mut self, now_ns: u64, port: u16) -> Result<u32, SockErr> {
        self.poll_live(now_ns)?;
        if port == 0 {
            return Err(SockErr::InvalidArgument);
        }
        if self.tcp_port_in_use(port) {
            return Err(SockErr::AddressInUse);
        }
        self.room()?;
        let id = self.add_entry(Entry::Listener {
            port,
            pool: Vec::new(),
        });
        self.maintain(&[]);
        self.net.log(
            &format!("listening on {}:{port}", fmt_ip(self.cfg.ip)),
            &[
                ("event", String::from("listen")),
                ("proto", String::from("tcp")),
                ("port", port.to_string()),
                ("backlog", self.cfg.backlog.to_string()),
            ],
        );
        Ok(id)
    }

    pub fn tcp_accept(&mut self, now_ns: u64, listener: u32) -> Result<(u32, Endpoint), SockErr> {
        self.poll_live(now_ns)?;
        let Some(Entry::Listener { pool, .. }) = self.table.get_mut(&listener) else {
            return Err(SockErr::InvalidArgument);
        };
        let sockets = &mut self.sockets;
        let Some(i) = pool.iter().position(|&h| {
            let s = sockets.get_mut::<tcp::Socket>(h);
            !listening(s) && s.state() != tcp::State::Closed
        }) else {
            return Err(SockErr::WouldBlock);
        };
        let h = pool.remove(i);
        let remote = self
            .sockets
            .get_mut::<tcp::Socket>(h)
            .remote_endpoint()
            .map(endpoint_of)
            .unwrap_or(([0; 4], 0));
        let id = self.add_entry(Entry::Tcp { h, shut: false });
        self.maintain(&[]);
        Ok((id, remote))
    }

    pub fn tcp_connect(&mut self, now_ns: u64, remote: Endpoint) -> Result<u32, SockErr> {
        self.poll_live(now_ns)?;
        if remote.1 == 0 || remote.0 == [0; 4] {
            return Err(SockErr::InvalidArgument);
        }
        if !self.routable(remote.0) {
            return Err(SockErr::Unreachable);
        }
        self.room()?;
        let mut local = 0;
        for _ in 0..64 {
            let p = match self.next_local_port.take() {
                Some(p) => p,
                None => 49152 + self.rng.below(16384) as u16,
            };
            if !self.tcp_port_in_use(p) {
                local = p;
                break;
            }
        }
        if local == 0 {
            return Err(SockErr::NoBuffers);
        }
        let mut s = new_tcp(self.cfg.tcp_rx, self.cfg.tcp_tx);
        let ep = IpEndpoint::new(IpAddress::Ipv4(ip4(remote.0)), remote.1);
        s.connect(self.iface.context(), ep, local)
            .map_err(|_| SockErr::Unreachable)?;
        let h = self.sockets.add(s);
        let id = self.add_entry(Entry::Tcp { h, shut: false });
        self.egress(now_ns);
        Ok(id)
    }

    fn tcp_handle(&self, s: u32) -> Result<(SocketHandle, bool), SockErr> {
        match self.table.get(&s) {
            Some(Entry::Tcp { h, shut }) => Ok((*h, *shut)),
            _ => Err(SockErr::InvalidArgument),
        }
    }

    pub fn tcp_send(&mut self, now_ns: u64, s: u32, data: &[u8]) -> Result<u32, SockErr> {
        self.poll_live(now_ns)?;
        let (h, shut) = self.tcp_handle(s)?;
        let sock = self.sockets.get_mut::<tcp::Socket>(h);
        if shut {
            return Err(SockErr::NotConnected);
        }
        match sock.state() {
            tcp::State::SynSent | tcp::State::SynReceived => return Err(SockErr::WouldBlock),
            tcp::State::Closed => return Err(SockErr::ConnectionReset),
            _ if !sock.may_send() => return Err(SockErr::NotConnected),
            _ => {}
        }
        if data.is_empty() {
            return Err(SockErr::InvalidArgument);
        }
        match sock.send_slice(data) {
            Ok(0) => Err(SockErr::WouldBlock),
            Ok(n) => {
                self.egress(now_ns);
                Ok(n as u32)
            }
            Err(_) => Err(SockErr::NotConnected),
        }
    }

    pub fn tcp_recv(&mut self, now_ns: u64, s: u32, max: u32) -> Result<Vec<u8>, SockErr> {
        self.poll_live(now_ns)?;
        let (h, _) = self.tcp_handle(s)?;
        let sock = self.sockets.get_mut::<tcp::Socket>(h);
        if max == 0 {
            return Err(SockErr::InvalidArgument);
        }
        let window_was_closed = sock.recv_queue() >= sock.recv_capacity() / 2;
        let want = (max as usize).min(sock.recv_queue().max(1));
        let mut buf = Vec::with_capacity(want);
        // smoltcp's ring holds the data in up to two pieces; copied without zeroing
        // the buffer first.
        let mut take = |d: &mut [u8]| {
            let n = d.len().min(want - buf.len());
            buf.extend_from_slice(&d[..n]);
            (n, n)
        };
        match sock.recv(&mut take) {
            Ok(0) => Err(SockErr::WouldBlock),
            Ok(n) => {
                if n < want {
                    let _ = sock.recv(&mut take);
                }
                // Reading freed buffer space: let the peer know the window opened.
                if window_was_closed {
                    self.egress(now_ns);
                }
                Ok(buf)
            }
            Err(tcp::RecvError::Finished) => Ok(Vec::new()),
            Err(tcp::RecvError::InvalidState) => match sock.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(SockErr::WouldBlock),
                _ => Err(SockErr::ConnectionReset),
            },
        }
    }

    pub fn tcp_shutdown(&mut self, now_ns: u64, s: u32) -> Result<(), SockErr> {
        self.poll_live(now_ns)?;
        let (h, _) = self.tcp_handle(s)?;
        let sock = self.sockets.get_mut::<tcp::Socket>(h);
        if sock.state() == tcp::State::Closed {
            return Err(SockErr::NotConnected);
        }
        sock.close();
        if let Some(Entry::Tcp { shut, .. }) = self.table.get_mut(&s) {
            *shut = true;
        }
        self.egress(now_ns);
        Ok(())
    }

    pub fn udp_bind(&mut self, now_ns: u64, port: u16) -> Result<u32, SockErr> {
        self.poll_live(now_ns)?;
        if port == 0 {
            return Err(SockErr::InvalidArgument);
        }
        let in_use = self.sockets.iter().any(|(_, s)| match s {
            smoltcp::socket::Socket::Udp(u) => u.endpoint().port == port,
            _ => false,
        });
        if in_use {
            return Err(SockErr::AddressInUse);
        }
        self.room()?;
        let n = self.cfg.udp_buf;
        let meta = (n / 64).clamp(4, 1024);
        let mut u = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; meta], vec![0u8; n]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; meta], vec![0u8; n]),
        );
        u.bind(port).map_err(|_| SockErr::InvalidArgument)?;
        let h = self.sockets.add(u);
        Ok(self.add_entry(Entry::Udp { h }))
    }

    pub fn udp_send_to(
        &mut self,
        now_ns: u64,
        s: u32,
        data: &[u8],
        to: Endpoint,
    ) -> Result<(), SockErr> {
        self.poll_live(now_ns)?;
        let Some(Entry::Udp { h }) = self.table.get(&s) else {
            return Err(SockErr::InvalidArgument);
        };
        if data.is_empty() || to.1 == 0 {
            return Err(SockErr::InvalidArgument);
        }
        if !self.routable(to.0) && to.0 != [255; 4] {
            return Err(SockErr::Unreachable);
        }
        let h = *h;
        let ep = IpEndpoint::new(IpAddress::Ipv4(ip4(to.0)), to.1);
        match self.sockets.get_mut::<udp::Socket>(h).send_slice(data, ep) {
            Ok(()) => {
                self.egress(now_ns);
                Ok(())
            }
            Err(udp::SendError::BufferFull) => {
                // A datagram larger than the whole buffer will never fit.
                if data.len() > self.cfg.udp_buf {
                    Err(SockErr::NoBuffers)
                } else {
                    Err(SockErr::WouldBlock)
                }
            }
            Err(udp::SendError::Unaddressable) => Err(SockErr::Unreachable),
        }
    }

    pub fn udp_recv_from(
        &mut self,
        now_ns: u64,
        s: u32,
        max: u32,
    ) -> Result<(Vec<u8>, Endpoint), SockErr> {
        self.poll_live(now_ns)?;
        let Some(Entry::Udp { h }) = self.table.get(&s) else {
            return Err(SockErr::InvalidArgument);
        };
        match self.sockets.get_mut::<udp::Socket>(*h).recv() {
            Ok((data, meta)) => {
                let n = data.len().min(max as usize);
                Ok((data[..n].to_vec(), endpoint_of(meta.endpoint)))
            }
            Err(_) => Err(SockErr::WouldBlock),
        }
    }

    pub fn close(&mut self, now_ns: u64, s: u32) {
        self.poll(now_ns);
        match self.table.remove(&s) {
            Some(Entry::Listener { pool, .. }) => {
                for h in pool {
                    let sock = self.sockets.get_mut::<tcp::Socket>(h);
                    if listening(sock) || sock.state() == tcp::State::Closed {
                        self.sockets.remove(h);
                    } else {
                        // An established connection nobody accepted: close it politely.
                        sock.close();
                        self.closing.push_back(h);
                    }
                }
            }
            Some(Entry::Tcp { h, .. }) => {
                self.sockets.get_mut::<tcp::Socket>(h).close();
                self.closing.push_back(h);
                // Bound the lingering connections: abort the oldest beyond the limit.
                while self.closing.len() > MAX_SOCKETS / 2 {
                    let old = self.closing.pop_front().unwrap();
                    self.sockets.get_mut::<tcp::Socket>(old).abort();
                    self.egress(now_ns);
                    self.sockets.remove(old);
                }
            }
            Some(Entry::Udp { h }) => {
                self.sockets.remove(h);
            }
            None => return,
        }
        self.egress(now_ns);
        self.maintain(&[]);
    }

    /// When the interface next needs a poll even without input, in nanoseconds.
    ///
    /// Now if this call's poll received frames: they are off the device, so the wait the
    /// app is about to enter would not return early for them, and what they carried (data
    /// on a connection the app already read dry, a SYN for a listener) would sit until
    /// the next timer, smoltcp's 10 ms delayed ACK at best. Now as well while frames wait
    /// for the device to take them.
    pub fn next_deadline(&mut self, now_ns: u64) -> Option<u64> {
        let received = self.poll(now_ns);
        // The app waits next: whatever wakes it is to be looked at.
        self.quiet_since = None;
        if self.clash.is_some() {
            return None;
        }
        if received || !self.phy.tx.is_empty() {
            return Some(now_ns);
        }
        self.iface
            .poll_at(instant(now_ns), &self.sockets)
            .map(|t| (t.total_micros().max(0) as u64).saturating_mul(1000))
    }

    /// Sockets in the set (listener pools and closing connections included).
    pub fn socket_count(&self) -> usize {
        self.sockets.iter().count()
    }
}

/// An RFC 5227 ARP probe for `ip`: broadcast, sender address 0.0.0.0.
fn arp_probe(mac: [u8; 6], ip: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip);
    f
}

/// Whether an Ethernet frame is ARP (Ethernet/IPv4) sent by another MAC than `mac`
/// with `ip` as its sender address: that host uses our address. Returns its MAC and
/// what kind of ARP showed it.
fn arp_claim(f: &[u8], ip: [u8; 4], mac: [u8; 6]) -> Option<([u8; 6], &'static str)> {
    if f.len() < 14 + 28 || f[12..14] != [0x08, 0x06] {
        return None;
    }
    let a = &f[14..14 + 28];
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] || a[14..18] != ip {
        return None;
    }
    let how = match a[7] {
        1 if a[6] == 0 => "ARP request",
        2 if a[6] == 0 => "ARP reply",
        _ => return None,
    };
    let sha: [u8; 6] = a[8..14].try_into().ok()?;
    if sha == mac || sha == [0; 6] || sha[0] & 1 != 0 {
        return None;
    }
    Some((sha, how))
}

/// A TCP SYN (without ACK) to `ip` in an Ethernet frame: its source address, source
/// port and destination port.
fn syn_of(f: &[u8], ip: [u8; 4]) -> Option<([u8; 4], u16, u16)> {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ipv4 = &f[14..];
    let ihl = (ipv4[0] & 0x0f) as usize * 4;
    if ipv4[0] >> 4 != 4 || ihl < 20 || ipv4[9] != 6 || ipv4[16..20] != ip {
        return None;
    }
    let tcp = ipv4.get(ihl..ihl + 20)?;
    let flags = tcp[13];
    if flags & 0x02 != 0 && flags & 0x10 == 0 {
        let src = [ipv4[12], ipv4[13], ipv4[14], ipv4[15]];
        Some((
            src,
            u16::from_be_bytes([tcp[0], tcp[1]]),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        ))
    } else {
        None
    }
}

/// A TCP segment to `ip` carrying data and a FIN, as two: the data, then the FIN
/// alone at the sequence number after it. `None` for anything else, and for frames
/// smoltcp would drop anyway (a wrong IPv4 header checksum, or a wrong TCP checksum
/// where the device does not check them), which must not come out repaired.
///
/// smoltcp's segment acceptability test (RFC 9293, 3.10.7.4) leaves the FIN out of
/// a segment's length (smoltcp 0.14 `socket/tcp.rs`: `segment_end = seq_number +
/// payload.len()`): a segment whose data the stack has received already and whose
/// FIN comes next is "outside the window" and dropped whole, FIN and all, with an ACK
/// for the data. That is just what a peer whose ACK for its data was lost resends:
/// data and FIN. The FIN then gets in only with the peer's next retransmission, of
/// the FIN alone, a backed-off timeout later, if the peer still runs (`weft explore
/// examples/sim-cluster`, seeds 549 and 563: the client's last echo arrived, its
/// end never did, and the server had stopped lingering before resending it). Split,
/// the data is taken or acknowledged as a duplicate as before, and the FIN is
/// accepted wherever smoltcp accepts one sent alone. (smoltcp may count the FIN's
/// segment as a duplicate ACK when data of ours is in flight: one, at the end of
/// the peer's stream.)
fn split_fin(f: &[u8], ip: [u8; 4], checksum_offload: bool) -> Option<(Vec<u8>, Vec<u8>)> {
    use weft_guest::checksum::{L4, fold, sum16};
    const FIN: u8 = 0x01;
    const SYN: u8 = 0x02;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    let l4 = L4::of(f)?;
    let (ip_start, tcp) = (14, l4.start);
    if l4.udp || f[ip_start + 16..ip_start + 20] != ip {
        return None;
    }
    let header = (f[tcp + 12] >> 4) as usize * 4;
    let flags = f[tcp + 13];
    if flags & (FIN | SYN | RST | ACK) != FIN | ACK || header < 20 || tcp + header >= l4.end {
        return None;
    }
    if fold(sum16(&f[ip_start..tcp], 0)) != 0xffff || (!checksum_offload && !l4.verify(f)) {
        return None;
    }
    let mut data = f[..l4.end].to_vec();
    data[tcp + 13] &= !FIN;
    l4.fill(&mut data);
    let mut fin = f[..tcp + header].to_vec();
    fin[tcp + 13] &= !PSH;
    let seq = u32::from_be_bytes([f[tcp + 4], f[tcp + 5], f[tcp + 6], f[tcp + 7]]);
    let next = seq.wrapping_add((l4.end - tcp - header) as u32);
    fin[tcp + 4..tcp + 8].copy_from_slice(&next.to_be_bytes());
    fin[ip_start + 2..ip_start + 4].copy_from_slice(&((tcp + header - ip_start) as u16).to_be_bytes());
    fin[ip_start + 10..ip_start + 12].fill(0);
    let sum = !fold(sum16(&fin[ip_start..tcp], 0));
    fin[ip_start + 10..ip_start + 12].copy_from_slice(&sum.to_be_bytes());
    L4::of(&fin)?.fill(&mut fin);
    Some((data, fin))
}

fn new_tcp(rx: usize, tx: usize) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; rx]),
        tcp::SocketBuffer::new(vec![0u8; tx]),
    );
    s.set_timeout(Some(TCP_TIMEOUT));
    s.set_nagle_enabled(false);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use core::cell::RefCell;
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetFrame, EthernetProtocol, EthernetRepr,
        Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    };

    type Wire = Rc<RefCell<VecDeque<Vec<u8>>>>;

    /// One end of an in-memory cable: sends into `out`, receives from `inp`.
    struct Cable {
        inp: Wire,
        out: Wire,
        logs: Vec<String>,
        /// `receive` calls so far.
        receives: usize,
    }

    impl Net for Cable {
        fn receive(&mut self, max: u32) -> Vec<Vec<u8>> {
            self.receives += 1;
            let mut q = self.inp.borrow_mut();
            let n = (max as usize).min(q.len());
            q.drain(..n).collect()
        }
        fn send(&mut self, frames: &[Vec<u8>]) -> Result<usize, ()> {
            for f in frames {
                assert!(
                    f.len() >= 14 && f.len() <= 1514,
                    "frame of {} bytes",
                    f.len()
                );
            }
            self.out.borrow_mut().extend(frames.iter().cloned());
            Ok(frames.len())
        }
        fn log(&mut self, message: &str, _: &[(&str, String)]) {
            self.logs.push(message.to_string());
        }
    }

    fn cfg(last: u8) -> StackConfig {
        StackConfig {
            ip: [10, 0, 0, last],
            prefix: 24,
            gateway: None,
            tcp_rx: 4096,
            tcp_tx: 4096,
            udp_buf: 4096,
            backlog: 2,
            probe_wait_ns: 0,
        }
    }

    const SERVER_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];
    const CLIENT_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

    fn link(mac: [u8; 6]) -> Link {
        Link {
            mac,
            mtu: 1500,
            checksum_offload: false,
        }
    }

    fn offloading(mac: [u8; 6]) -> Link {
        Link {
            checksum_offload: true,
            ..link(mac)
        }
    }

    fn pair() -> (Stack<Cable>, Stack<Cable>) {
        pair_of(link(SERVER_MAC), link(CLIENT_MAC))
    }

    fn pair_of(server: Link, client: Link) -> (Stack<Cable>, Stack<Cable>) {
        let a: Wire = Rc::default();
        let b: Wire = Rc::default();
        let server = Stack::new(
            Cable {
                inp: a.clone(),
                out: b.clone(),
                logs: Vec::new(),
                receives: 0,
            },
            "service",
            server,
            cfg(2),
            1,
            0,
        );
        let client = Stack::new(
            Cable {
                inp: b,
                out: a,
                logs: Vec::new(),
                receives: 0,
            },
            "service",
            client,
            cfg(1),
            2,
            0,
        );
        (server, client)
    }

    /// Runs the client's stack a millisecond at a time from `t` until the
    /// server accepts on `listener` (within 100 ms): the accepted socket and
    /// the time it happened.
    fn accepted(srv: &mut Stack<Cable>, cli: &mut Stack<Cable>, listener: u32, mut t: u64) -> (u32, u64) {
        let start = t;
        loop {
            t += 1_000_000;
            assert!(t - start < 100_000_000, "not accepted within 100 ms");
            cli.poll(t);
            if let Ok((s, _)) = srv.tcp_accept(t, listener) {
                return (s, t);
            }
        }
    }

    #[test]
    fn tcp_echo_between_two_stacks() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 7).unwrap();
        assert_eq!(srv.tcp_listen(0, 7), Err(SockErr::AddressInUse));
        assert!(
            srv.net
                .logs
                .iter()
                .any(|m| m.contains("listening on 10.0.0.2:7"))
        );
        let mut t = 0u64;
        let conns: Vec<u32> = (0..3)
            .map(|_| cli.tcp_connect(t, ([10, 0, 0, 2], 7)).unwrap())
            .collect();
        let mut accepted = Vec::new();
        let mut echoed = vec![Vec::new(); 3];
        let mut sent = [false; 3];
        for _ in 0..2000 {
            t += 1_000_000;
            if let Ok((s, ep)) = srv.tcp_accept(t, l) {
                assert_eq!(ep.0, [10, 0, 0, 1]);
                accepted.push(s);
            }
            for &s in &accepted {
                match srv.tcp_recv(t, s, 1000) {
                    Ok(d) if d.is_empty() => {
                        let _ = srv.tcp_shutdown(t, s);
                    }
                    Ok(d) => {
                        assert_eq!(srv.tcp_send(t, s, &d), Ok(d.len() as u32));
                    }
                    Err(SockErr::WouldBlock) | Err(SockErr::NotConnected) => {}
                    Err(e) => panic!("server recv: {e:?}"),
                }
            }
            for (i, &c) in conns.iter().enumerate() {
                if !sent[i] {
                    let msg = format!("hello {i}");
                    match cli.tcp_send(t, c, msg.as_bytes()) {
                        Ok(n) => {
                            assert_eq!(n as usize, msg.len());
                            sent[i] = true;
                            cli.tcp_shutdown(t, c).unwrap();
                        }
                        Err(SockErr::WouldBlock) => {}
                        Err(e) => panic!("client send: {e:?}"),
                    }
                }
                if let Ok(d) = cli.tcp_recv(t, c, 100) {
                    echoed[i].extend_from_slice(&d);
                }
            }
            if (0..3).all(|i| echoed[i] == format!("hello {i}").as_bytes()) {
                break;
            }
        }
        for i in 0..3 {
            assert_eq!(echoed[i], format!("hello {i}").as_bytes(), "connection {i}");
        }
        assert_eq!(accepted.len(), 3);
        for s in accepted {
            srv.close(t, s);
        }
        for c in conns {
            cli.close(t, c);
        }
        for _ in 0..100 {
            t += 1_000_000;
            srv.poll(t);
            cli.poll(t);
        }
        // Only the pool remains once the FIN handshakes are over (TIME-WAIT is the client's).
        assert!(srv.socket_count() <= 2 * 4, "{}", srv.socket_count());
        assert!(srv.next_deadline(t).is_none() || srv.next_deadline(t).unwrap() > t);
    }

    /// One message over a new connection, echoed back: whether it came back.
    fn echoes(srv: &mut Stack<Cable>, cli: &mut Stack<Cable>) -> bool {
        let l = srv.tcp_listen(0, 7).unwrap();
        let c = cli.tcp_connect(0, ([10, 0, 0, 2], 7)).unwrap();
        let (mut s, mut sent, mut got) = (None, false, Vec::new());
        for i in 1..500u64 {
            let t = i * 1_000_000;
            if let Ok((a, _)) = srv.tcp_accept(t, l) {
                s = Some(a);
            }
            if let Some(Ok(d)) = s.map(|a| srv.tcp_recv(t, a, 100)) {
                if !d.is_empty() {
                    srv.tcp_send(t, s.unwrap(), &d).unwrap();
                }
            }
            sent = sent || cli.tcp_send(t, c, b"offload").is_ok();
            if let Ok(d) = cli.tcp_recv(t, c, 100) {
                got.extend_from_slice(&d);
            }
            if got == b"offload" {
                return true;
            }
        }
        false
    }

    /// Checksum offload: the stack sends TCP with a zero checksum for the device to
    /// fill (the IP header's is still its own) and checks none it receives; a stack
    /// whose device does not checksum drops such frames.
    #[test]
    fn with_checksum_offload_tcp_checksums_are_the_devices() {
        let (mut srv, mut cli) = pair_of(offloading(SERVER_MAC), offloading(CLIENT_MAC));
        srv.tcp_listen(0, 9).unwrap();
        cli.tcp_connect(0, ([10, 0, 0, 2], 9)).unwrap();
        // The SYN follows the ARP exchange.
        let mut t = 0;
        let syn = loop {
            t += 1_000_000;
            srv.poll(t);
            cli.poll(t);
            let out = cli.net.out.borrow();
            if let Some(f) = out.iter().find(|f| f[12..14] == [8, 0]) {
                break f.clone();
            }
            assert!(t < 100_000_000, "no SYN");
        };
        let ip = Ipv4Packet::new_checked(&syn[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(u16::from_be_bytes([syn[34 + 16], syn[34 + 17]]), 0, "TCP checksum");
        let (mut srv, mut cli) = pair_of(offloading(SERVER_MAC), offloading(CLIENT_MAC));
        assert!(echoes(&mut srv, &mut cli));
        // Offloading on one side only: the other drops every zero checksum.
        let (mut srv, mut cli) = pair_of(offloading(SERVER_MAC), link(CLIENT_MAC));
        assert!(!echoes(&mut srv, &mut cli));
        let (mut srv, mut cli) = pair();
        assert!(echoes(&mut srv, &mut cli));
    }

    /// The lost wake-up: the app has read its connection dry and asks `next-deadline`
    /// before waiting. That call's poll takes the peer's new data off the device, so the
    /// device has nothing left to wake the wait with; the deadline must be now, not
    /// smoltcp's delayed-ACK timer 10 ms later. With nothing received, it is a timer in
    /// the future again (no busy loop).
    #[test]
    fn next_deadline_is_now_when_its_poll_took_frames() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 7).unwrap();
        let c = cli.tcp_connect(0, ([10, 0, 0, 2], 7)).unwrap();
        let (s, mut t) = accepted(&mut srv, &mut cli, l, 0);
        // Settle: the handshake's last ACK and any timers.
        for _ in 0..50 {
            t += 1_000_000;
            cli.poll(t);
            srv.poll(t);
        }
        assert_eq!(srv.tcp_recv(t, s, 100), Err(SockErr::WouldBlock));
        let idle = srv.next_deadline(t);
        assert!(idle.is_none_or(|d| d > t), "idle deadline {idle:?} at {t}");

        cli.tcp_send(t, c, b"request").unwrap();
        assert!(!srv.net.inp.borrow().is_empty(), "data on the wire");
        t += 1000;
        let d = srv.next_deadline(t);
        assert!(
            srv.net.inp.borrow().is_empty(),
            "next-deadline took the frame"
        );
        assert_eq!(
            d,
            Some(t),
            "data arrived in next-deadline's poll: run again now"
        );
        assert_eq!(srv.tcp_recv(t, s, 100).as_deref(), Ok(&b"request"[..]));
    }

    /// Runs client connection `c` to the end against an echo server on listener `l`:
    /// the client sends `msg` and half-closes, the server echoes and closes. What the
    /// client read back, or its first error.
    fn echo_exchange(
        srv: &mut Stack<Cable>,
        cli: &mut Stack<Cable>,
        l: u32,
        c: u32,
        msg: &[u8],
        t: &mut u64,
    ) -> Result<Vec<u8>, SockErr> {
        let (mut s, mut sent, mut got) = (None, false, Vec::new());
        let start = *t;
        while *t - start < 5_000_000_000 {
            *t += 1_000_000;
            if s.is_none() {
                s = srv.tcp_accept(*t, l).ok().map(|x| x.0);
            }
            if let Some(a) = s {
                match srv.tcp_recv(*t, a, 100) {
                    Ok(d) if d.is_empty() => {
                        srv.tcp_shutdown(*t, a).unwrap();
                        srv.close(*t, a);
                        s = None;
                    }
                    Ok(d) => assert_eq!(srv.tcp_send(*t, a, &d), Ok(d.len() as u32)),
                    Err(SockErr::WouldBlock) => {}
                    Err(e) => panic!("server recv: {e:?}"),
                }
            }
            if !sent {
                match cli.tcp_send(*t, c, msg) {
                    Ok(n) => {
                        assert_eq!(n as usize, msg.len());
                        cli.tcp_shutdown(*t, c).unwrap();
                        sent = true;
                    }
                    Err(SockErr::WouldBlock) => {}
                    Err(e) => return Err(e),
                }
            }
            match cli.tcp_recv(*t, c, 100) {
                Ok(d) if d.is_empty() => {
                    cli.close(*t, c);
                    return Ok(got);
                }
                Ok(d) => got.extend_from_slice(&d),
                Err(SockErr::WouldBlock) => {}
                Err(e) => return Err(e),
            }
        }
        panic!("the exchange did not end within 5 s; echoed {got:?}");
    }

    /// The server sockets (listeners aside) connected to `remote`.
    fn connections_with(st: &Stack<Cable>, remote: Endpoint) -> usize {
        st.sockets
            .iter()
            .filter(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => {
                    t.state() != tcp::State::Listen
                        && t.remote_endpoint().map(endpoint_of) == Some(remote)
                }
                _ => false,
            })
            .count()
    }

    /// A connection's SYN reaches the server twice: the link duplicated it, or the
    /// SYN-ACK was lost and the client sent it again (`weft explore
    /// examples/sim-cluster`, seed 33). Between the two the listener pool was re-armed
    /// in the slot a closed connection had freed, below the half-open connection's; smoltcp
    /// hands a segment to the first socket in its set that takes it, and a listening
    /// socket takes any SYN for its port. The second copy must not open a second
    /// connection on the same 4-tuple: that one's SYN-ACK carries another sequence
    /// number, and it answers the client's ACKs (which it cannot accept) with a RST
    /// that lies in the client's window and resets the healthy connection.
    #[test]
    fn a_repeated_syn_does_not_open_a_second_connection() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 7).unwrap();
        let mut t = 0u64;
        // A first connection, served and closed: its server socket is removed.
        let c = cli.tcp_connect(t, ([10, 0, 0, 2], 7)).unwrap();
        assert_eq!(echo_exchange(&mut srv, &mut cli, l, c, b"first", &mut t), Ok(b"first".to_vec()));
        for _ in 0..50 {
            t += 1_000_000;
            srv.poll(t);
            cli.poll(t);
        }
        assert_eq!(connections_with(&srv, ([10, 0, 0, 1], 0)), 0);

        cli.next_local_port = Some(50_007);
        let c = cli.tcp_connect(t, ([10, 0, 0, 2], 7)).unwrap();
        let syn = srv.net.inp.borrow().back().cloned().expect("the SYN");
        assert_eq!(syn_of(&syn, [10, 0, 0, 2]), Some(([10, 0, 0, 1], 50_007, 7)));
        t += 1_000_000;
        srv.poll(t);
        srv.net.inp.borrow_mut().push_back(syn);
        t += 1_000_000;
        srv.poll(t);
        assert_eq!(
            connections_with(&srv, ([10, 0, 0, 1], 50_007)),
            1,
            "the repeated SYN opened a second connection"
        );
        assert_eq!(
            echo_exchange(&mut srv, &mut cli, l, c, b"second", &mut t),
            Ok(b"second".to_vec())
        );
    }

    /// TCP flags and payload length of an Ethernet/IPv4/TCP frame.
    fn tcp_flags_len(f: &[u8]) -> (u8, usize) {
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        let tcp = ip.payload();
        (tcp[13], tcp.len() - (tcp[12] >> 4) as usize * 4)
    }

    /// The server's data reaches the client, the client's ACK for it is lost, and
    /// the server resends the data together with its FIN (`weft explore
    /// examples/sim-cluster`, seeds 549 and 563). The client has all of the data:
    /// the FIN is the segment's only news, and it must end the stream then, not
    /// wait for a retransmission of the FIN alone (which a server that stopped
    /// lingering never sends).
    #[test]
    fn a_fin_resent_with_data_already_received_ends_the_stream() {
        for (server, client) in [
            (link(SERVER_MAC), link(CLIENT_MAC)),
            (offloading(SERVER_MAC), offloading(CLIENT_MAC)),
        ] {
            let (mut srv, mut cli) = pair_of(server, client);
            let l = srv.tcp_listen(0, 7).unwrap();
            let c = cli.tcp_connect(0, ([10, 0, 0, 2], 7)).unwrap();
            let (s, mut t) = accepted(&mut srv, &mut cli, l, 0);
            for _ in 0..50 {
                t += 1_000_000;
                cli.poll(t);
                srv.poll(t);
            }
            // The data reaches the client; the FIN that follows it is lost.
            srv.tcp_send(t, s, b"bye").unwrap();
            srv.tcp_shutdown(t, s).unwrap();
            let sent: Vec<Vec<u8>> = cli.net.inp.borrow_mut().drain(..).collect();
            assert_eq!(
                sent.iter().map(|f| tcp_flags_len(f)).collect::<Vec<_>>(),
                [(0x18, 3), (0x11, 0)],
                "PSH|ACK with the data, then FIN|ACK"
            );
            cli.net.inp.borrow_mut().push_back(sent[0].clone());
            let mut got = Vec::new();
            for _ in 0..50 {
                t += 1_000_000;
                if let Ok(d) = cli.tcp_recv(t, c, 100) {
                    got.extend_from_slice(&d);
                }
            }
            assert_eq!(got, b"bye");
            // The client's ACKs are lost; the server resends data and FIN in one segment.
            srv.net.inp.borrow_mut().clear();
            while cli.net.inp.borrow().is_empty() {
                t += 1_000_000;
                assert!(t < 5_000_000_000, "no retransmission");
                srv.poll(t);
            }
            let resent = cli.net.inp.borrow().clone();
            assert_eq!(
                resent.iter().map(|f| tcp_flags_len(f)).collect::<Vec<_>>(),
                [(0x11, 3)],
                "FIN|ACK with the data"
            );
            // That segment ends the client's stream at once.
            t += 1_000_000;
            assert_eq!(cli.tcp_recv(t, c, 100), Ok(Vec::new()), "the end of the stream");
        }
    }

    /// A segment with data and FIN goes to smoltcp as the data, then the FIN alone,
    /// with checksums that hold; anything else, and a frame whose checksum is wrong,
    /// goes as it came.
    #[test]
    fn data_and_fin_are_split_and_nothing_else() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 7).unwrap();
        let c = cli.tcp_connect(0, ([10, 0, 0, 2], 7)).unwrap();
        let (_, t) = accepted(&mut srv, &mut cli, l, 0);
        // One segment with data and FIN: Nagle keeps nothing back, so queue both
        // before the client's stack sends (the handshake's last ACK took its turn).
        cli.tcp_send(t, c, b"last words").unwrap();
        let data = srv.net.inp.borrow_mut().pop_back().unwrap();
        assert_eq!(tcp_flags_len(&data), (0x18, 10));
        let ip = [10, 0, 0, 2];
        assert_eq!(split_fin(&data, ip, false), None, "no FIN");
        // The same segment with its FIN bit set, checksums made whole.
        let mut both = data.clone();
        both[14 + 20 + 13] |= 0x01;
        weft_guest::checksum::fill(&mut both);
        let (d, f) = split_fin(&both, ip, false).expect("split");
        assert_eq!(d, data);
        for fr in [&d, &f] {
            let p = Ipv4Packet::new_checked(&fr[14..]).unwrap();
            assert!(p.verify_checksum());
            let l4 = weft_guest::checksum::L4::of(fr).unwrap();
            assert!(l4.verify(fr));
        }
        assert_eq!(tcp_flags_len(&f), (0x11, 0));
        let seq = |fr: &[u8]| u32::from_be_bytes(fr[38..42].try_into().unwrap());
        assert_eq!(seq(&f), seq(&d).wrapping_add(10));
        // Else the headers are the data's: IPv4 but length and checksum, TCP but
        // sequence number, flags and checksum.
        let same = |fr: &[u8]| {
            let mut h = fr[..54].to_vec();
            for i in (16..18).chain(24..26).chain(38..42).chain(47..48).chain(50..52) {
                h[i] = 0;
            }
            h
        };
        assert_eq!(f.len(), 54);
        assert_eq!(same(&f), same(&d));
        assert_eq!(split_fin(&both, [10, 0, 0, 9], false), None, "not ours");
        // A damaged frame is not repaired: smoltcp drops it as it came.
        let mut bad = both.clone();
        bad[60] ^= 0x40;
        assert_eq!(split_fin(&bad, ip, false), None);
        assert!(split_fin(&bad, ip, true).is_some(), "the device checks TCP checksums");
        let mut bad_ip = both.clone();
        bad_ip[14 + 8] ^= 1; // TTL
        assert_eq!(split_fin(&bad_ip, ip, true), None);
    }

    /// The server closes first and holds the connection in TIME-WAIT; the client
    /// connects again from the same port (Linux does, once it saw its side closed). The
    /// SYN must reach the listener at once, not bounce off TIME-WAIT for seconds.
    #[test]
    fn a_syn_reuses_a_closed_connections_time_wait() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 80).unwrap();
        let mut t = 0u64;
        let time_wait = |st: &Stack<Cable>| {
            st.sockets
                .iter()
                .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.state() == tcp::State::TimeWait))
                .count()
        };
        for round in 0..2 {
            cli.next_local_port = Some(50_000);
            let c = cli.tcp_connect(t, ([10, 0, 0, 2], 80)).unwrap();
            let (s, at) = accepted(&mut srv, &mut cli, l, t);
            t = at;
            // The server answers and closes first; the client reads to the end and closes.
            srv.tcp_send(t, s, b"bye").unwrap();
            srv.tcp_shutdown(t, s).unwrap();
            srv.close(t, s);
            let mut got = Vec::new();
            loop {
                t += 1_000_000;
                srv.poll(t);
                match cli.tcp_recv(t, c, 100) {
                    Ok(d) if d.is_empty() => break,
                    Ok(d) => got.extend_from_slice(&d),
                    Err(SockErr::WouldBlock) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(got, b"bye");
            cli.close(t, c);
            for _ in 0..20 {
                t += 1_000_000;
                srv.poll(t);
                cli.poll(t);
            }
            assert_eq!(
                time_wait(&srv),
                1,
                "round {round}: the server holds TIME-WAIT"
            );
        }
    }

    /// A server closing connections first keeps at most TIME_WAIT_MAX of them in
    /// TIME-WAIT (each costs every poll), and still serves new ones.
    #[test]
    fn time_waits_are_bounded() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 80).unwrap();
        let mut t = 0u64;
        let mut done = 0;
        while done < TIME_WAIT_MAX + 72 {
            let conns: Vec<u32> = (0..6)
                .map(|_| cli.tcp_connect(t, ([10, 0, 0, 2], 80)).unwrap())
                .collect();
            let mut open = conns.clone();
            for _ in 0..200 {
                t += 1_000_000;
                while let Ok((s, _)) = srv.tcp_accept(t, l) {
                    srv.tcp_shutdown(t, s).unwrap();
                    srv.close(t, s);
                }
                open.retain(|&c| match cli.tcp_recv(t, c, 10) {
                    Ok(d) if d.is_empty() => {
                        cli.close(t, c);
                        false
                    }
                    _ => true,
                });
                if open.is_empty() {
                    break;
                }
            }
            assert!(open.is_empty(), "{} connections never closed", open.len());
            done += conns.len();
        }
        for _ in 0..20 {
            t += 1_000_000;
            srv.poll(t);
            cli.poll(t);
        }
        let time_waits = srv
            .sockets
            .iter()
            .filter(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.state() == tcp::State::TimeWait))
            .count();
        assert_eq!(time_waits, TIME_WAIT_MAX, "{done} connections closed");
        assert!(
            srv.socket_count() <= TIME_WAIT_MAX + 4 * 2,
            "{}",
            srv.socket_count()
        );
    }

    #[test]
    fn udp_between_two_stacks() {
        let (mut srv, mut cli) = pair();
        let s = srv.udp_bind(0, 53).unwrap();
        assert_eq!(srv.udp_bind(0, 53), Err(SockErr::AddressInUse));
        let c = cli.udp_bind(0, 5353).unwrap();
        assert_eq!(
            cli.udp_send_to(0, c, b"", ([10, 0, 0, 2], 53)),
            Err(SockErr::InvalidArgument)
        );
        assert_eq!(
            cli.udp_send_to(0, c, b"x", ([192, 168, 1, 1], 53)),
            Err(SockErr::Unreachable)
        );
        let mut t = 0;
        let mut got = None;
        let mut sent = false;
        for _ in 0..3000 {
            t += 1_000_000;
            if !sent {
                sent = cli.udp_send_to(t, c, b"query", ([10, 0, 0, 2], 53)).is_ok();
            }
            cli.poll(t);
            if let Ok(r) = srv.udp_recv_from(t, s, 3) {
                got = Some(r);
                break;
            }
        }
        assert_eq!(got, Some((b"que".to_vec(), ([10, 0, 0, 1], 5353))));
    }

    #[test]
    fn connect_refused_and_unreachable() {
        let (mut srv, mut cli) = pair();
        assert_eq!(
            cli.tcp_connect(0, ([10, 9, 0, 2], 80)),
            Err(SockErr::Unreachable)
        );
        assert_eq!(
            cli.tcp_connect(0, ([10, 0, 0, 2], 0)),
            Err(SockErr::InvalidArgument)
        );
        let c = cli.tcp_connect(0, ([10, 0, 0, 2], 81)).unwrap();
        let mut t = 0;
        let mut last = Err(SockErr::WouldBlock);
        for _ in 0..100 {
            t += 1_000_000;
            srv.poll(t);
            last = cli.tcp_send(t, c, b"x");
            if last != Err(SockErr::WouldBlock) {
                break;
            }
        }
        assert_eq!(last, Err(SockErr::ConnectionReset));
        assert_eq!(cli.tcp_recv(t, c, 10), Err(SockErr::ConnectionReset));
        assert_eq!(cli.tcp_send(t, 999, b"x"), Err(SockErr::InvalidArgument));
    }

    /// A megabyte each way through small buffers: window updates and retransmission
    /// timers keep the transfer going to the end.
    #[test]
    fn bulk_transfer_echoed() {
        let (mut srv, mut cli) = pair();
        let l = srv.tcp_listen(0, 9).unwrap();
        let c = cli.tcp_connect(0, ([10, 0, 0, 2], 9)).unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        let (mut sent, mut back) = (0usize, Vec::new());
        let mut s = None;
        let mut pending: Vec<u8> = Vec::new();
        let mut t = 0u64;
        for _ in 0..200_000 {
            t += 100_000;
            if s.is_none() {
                s = srv.tcp_accept(t, l).ok().map(|x| x.0);
            }
            if let Some(s) = s {
                if pending.is_empty() {
                    if let Ok(d) = srv.tcp_recv(t, s, 3000) {
                        pending = d;
                    }
                }
                if !pending.is_empty() {
                    if let Ok(n) = srv.tcp_send(t, s, &pending) {
                        pending.drain(..n as usize);
                    }
                }
            }
            if sent < data.len() {
                if let Ok(n) = cli.tcp_send(t, c, &data[sent..(sent + 5000).min(data.len())]) {
                    sent += n as usize;
                }
            }
            if let Ok(d) = cli.tcp_recv(t, c, 7000) {
                back.extend_from_slice(&d);
            }
            if back.len() == data.len() {
                break;
            }
        }
        assert_eq!(back.len(), data.len(), "sent {sent}");
        assert!(back == data);
    }

    fn frame(dst: [u8; 6], ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + payload.len()];
        let mut e = EthernetFrame::new_unchecked(&mut f[..]);
        EthernetRepr {
            src_addr: EthernetAddress(CLIENT_MAC),
            dst_addr: EthernetAddress(dst),
            ethertype,
        }
        .emit(&mut e);
        e.payload_mut().copy_from_slice(payload);
        f
    }

    fn arp_request() -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(CLIENT_MAC),
            source_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
        };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
        frame([0xff; 6], EthernetProtocol::Arp, &p)
    }

    fn ping() -> Vec<u8> {
        let data = b"weft ping";
        let icmp = Icmpv4Repr::EchoRequest {
            ident: 7,
            seq_no: 1,
            data,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Address::new(10, 0, 0, 1),
            dst_addr: Ipv4Address::new(10, 0, 0, 2),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut p = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let mut pkt = Ipv4Packet::new_unchecked(&mut p[..]);
        ip.emit(&mut pkt, &Default::default());
        icmp.emit(
            &mut Icmpv4Packet::new_unchecked(pkt.payload_mut()),
            &Default::default(),
        );
        frame(SERVER_MAC, EthernetProtocol::Ipv4, &p)
    }

    /// A stack alone, fed by the test through `inp`; what it sends lands in `out`.
    fn lone() -> (Stack<Cable>, Wire, Wire) {
        let inp: Wire = Rc::default();
        let out: Wire = Rc::default();
        let st = Stack::new(
            Cable {
                inp: inp.clone(),
                out: out.clone(),
                logs: Vec::new(),
                receives: 0,
            },
            "service",
            link(SERVER_MAC),
            cfg(2),
            3,
            0,
        );
        // The address probe every stack starts with.
        let probe = out.borrow_mut().pop_front().expect("an ARP probe");
        assert_eq!(probe, arp_probe(SERVER_MAC, [10, 0, 0, 2]));
        assert!(out.borrow().is_empty());
        (st, inp, out)
    }

    /// A sockets call just after a poll left the device empty does not ask it
    /// again; one 50 µs later does, and so does every call after `next-deadline`
    /// (the app waits next, and must see what woke it).
    #[test]
    fn an_empty_device_is_not_asked_again_at_once() {
        let (mut st, inp, _out) = lone();
        let l = st.tcp_listen(1_000, 80).unwrap();
        let n = st.net.receives;
        assert_eq!(st.tcp_accept(2_000, l).map(|_| ()), Err(SockErr::WouldBlock));
        assert_eq!(st.tcp_accept(40_000, l).map(|_| ()), Err(SockErr::WouldBlock));
        assert_eq!(st.net.receives, n, "asked again within 50 µs");
        assert_eq!(st.tcp_accept(60_000, l).map(|_| ()), Err(SockErr::WouldBlock));
        assert_eq!(st.net.receives, n + 1);
        // A frame arriving within the 50 µs waits for `next-deadline`, which
        // always looks (and finds it: the deadline is now).
        inp.borrow_mut().push_back(ping());
        st.tcp_accept(61_000, l).unwrap_err();
        assert_eq!(st.net.receives, n + 1);
        assert_eq!(st.next_deadline(62_000), Some(62_000));
        assert_eq!(st.net.receives, n + 2);
        // After it every call looks until one finds the device empty.
        st.tcp_accept(63_000, l).unwrap_err();
        st.tcp_accept(64_000, l).unwrap_err();
        assert_eq!(st.net.receives, n + 3);
        // A poll that takes fewer frames than it asked for leaves the device empty too.
        inp.borrow_mut().push_back(ping());
        st.tcp_accept(200_000, l).unwrap_err();
        assert_eq!((st.net.receives, inp.borrow().len()), (n + 4, 0));
        st.tcp_accept(201_000, l).unwrap_err();
        assert_eq!(st.net.receives, n + 4);
    }

    #[test]
    fn answers_arp_and_ping() {
        let (mut st, inp, out) = lone();
        inp.borrow_mut().push_back(arp_request());
        st.poll(1_000_000);
        let reply = out.borrow_mut().pop_front().expect("an ARP reply");
        let e = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(e.ethertype(), EthernetProtocol::Arp);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(e.payload()).unwrap()).unwrap();
        match arp {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                ..
            } => {
                assert_eq!(operation, ArpOperation::Reply);
                assert_eq!(source_hardware_addr, EthernetAddress(SERVER_MAC));
                assert_eq!(source_protocol_addr, Ipv4Address::new(10, 0, 0, 2));
            }
            _ => panic!("{arp:?}"),
        }
        inp.borrow_mut().push_back(ping());
        st.poll(2_000_000);
        let reply = out.borrow_mut().pop_front().expect("an echo reply");
        let e = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(e.dst_addr(), EthernetAddress(CLIENT_MAC));
        let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        let r = Icmpv4Repr::parse(&icmp, &Default::default()).unwrap();
        assert_eq!(
            r,
            Icmpv4Repr::EchoReply {
                ident: 7,
                seq_no: 1,
                data: b"weft ping"
            }
        );
    }

    fn arp(op: ArpOperation, smac: [u8; 6], sip: [u8; 4], tmac: [u8; 6], tip: [u8; 4]) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(smac),
            source_protocol_addr: ip4(sip),
            target_hardware_addr: EthernetAddress(tmac),
            target_protocol_addr: ip4(tip),
        };
        let mut p = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
        let mut f = frame(
            if op == ArpOperation::Request {
                [0xff; 6]
            } else {
                tmac
            },
            EthernetProtocol::Arp,
            &p,
        );
        f[6..12].copy_from_slice(&smac);
        f
    }

    const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];

    /// Another host answers the start-up probe for our address: the stack names the
    /// device, the address and that host's MAC once, stops answering (no ARP reply, no
    /// ping reply), and every sockets call fails with `unreachable`.
    #[test]
    fn an_address_clash_names_the_device_and_stops_the_stack() {
        let (mut st, inp, out) = lone();
        let u = st.udp_bind(0, 53).unwrap();
        assert!(st.clash().is_none());
        inp.borrow_mut().push_back(arp(
            ArpOperation::Reply,
            OTHER_MAC,
            [10, 0, 0, 2],
            SERVER_MAC,
            [0; 4],
        ));
        st.poll(1_000);
        let c = st.clash().expect("a clash").clone();
        assert_eq!(
            c.message(),
            "address clash on net device `service`: 10.0.0.2 is already used by 02:00:00:00:00:99 (seen in an ARP reply from it)"
        );
        let logged: Vec<&String> = st
            .net
            .logs
            .iter()
            .filter(|m| m.contains("address clash"))
            .collect();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(
            logged[0].ends_with("its sockets calls fail with `unreachable`"),
            "{}",
            logged[0]
        );
        assert_eq!(st.tcp_listen(2_000, 80), Err(SockErr::Unreachable));
        assert_eq!(st.udp_recv_from(2_000, u, 10), Err(SockErr::Unreachable));
        assert_eq!(
            st.tcp_connect(2_000, ([10, 0, 0, 1], 80)),
            Err(SockErr::Unreachable)
        );
        // It no longer defends or uses the address, and drains the device.
        inp.borrow_mut().push_back(arp_request());
        inp.borrow_mut().push_back(ping());
        inp.borrow_mut().push_back(arp(
            ArpOperation::Request,
            OTHER_MAC,
            [10, 0, 0, 2],
            [0; 6],
            [10, 0, 0, 1],
        ));
        assert_eq!(st.next_deadline(3_000), None);
        assert!(inp.borrow().is_empty());
        assert!(
            out.borrow().is_empty(),
            "sent {} frames after the clash",
            out.borrow().len()
        );
        assert_eq!(
            st.net
                .logs
                .iter()
                .filter(|m| m.contains("address clash"))
                .count(),
            1
        );
        st.close(4_000, u);
        assert!(out.borrow().is_empty());
    }

    /// What is not a clash: our own ARP, another host probing (sender 0.0.0.0),
    /// ordinary ARP between others, garbage in the sender field's place. A gratuitous
    /// ARP request from another MAC with our address is one.
    #[test]
    fn only_another_mac_claiming_our_address_is_a_clash() {
        let (mut st, inp, _out) = lone();
        for f in [
            arp(
                ArpOperation::Reply,
                SERVER_MAC,
                [10, 0, 0, 2],
                OTHER_MAC,
                [10, 0, 0, 9],
            ),
            arp(
                ArpOperation::Request,
                OTHER_MAC,
                [0; 4],
                [0; 6],
                [10, 0, 0, 2],
            ),
            arp(
                ArpOperation::Request,
                OTHER_MAC,
                [10, 0, 0, 9],
                [0; 6],
                [10, 0, 0, 2],
            ),
            arp(
                ArpOperation::Reply,
                [0xff; 6],
                [10, 0, 0, 2],
                SERVER_MAC,
                [0; 4],
            ),
            arp_request(),
        ] {
            inp.borrow_mut().push_back(f);
        }
        let mut truncated = arp(
            ArpOperation::Reply,
            OTHER_MAC,
            [10, 0, 0, 2],
            SERVER_MAC,
            [0; 4],
        );
        truncated.truncate(14 + 27);
        inp.borrow_mut().push_back(truncated);
        st.poll(1_000);
        assert!(st.clash().is_none(), "{:?}", st.clash());
        assert!(st.tcp_listen(1_000, 80).is_ok());
        inp.borrow_mut().push_back(arp(
            ArpOperation::Request,
            OTHER_MAC,
            [10, 0, 0, 2],
            [0; 6],
            [10, 0, 0, 2],
        ));
        st.poll(2_000);
        assert_eq!(
            st.clash().map(|c| (c.other_mac, c.how)),
            Some((OTHER_MAC, "ARP request"))
        );
    }

    /// Thousands of seeded garbage, truncated, oversized and mutated frames through the
    /// stack's frame path, with a listener and a UDP socket open: nothing may panic, and
    /// the stack still answers ARP afterwards.
    #[test]
    fn garbage_frames_never_panic() {
        let (mut st, inp, out) = lone();
        let l = st.tcp_listen(0, 80).unwrap();
        let u = st.udp_bind(0, 53).unwrap();
        let templates = [arp_request(), ping()];
        let mut rng = Rng::new(42);
        let mut t = 0;
        for i in 0..20_000u32 {
            let f = match rng.below(6) {
                0 => {
                    let mut f = vec![0u8; rng.below(2000) as usize];
                    rng.fill(&mut f);
                    f
                }
                1 => {
                    let tpl = &templates[rng.below(2) as usize];
                    tpl[..rng.below(tpl.len() as u64 + 1) as usize].to_vec()
                }
                2 => {
                    let mut f = templates[rng.below(2) as usize].clone();
                    for _ in 0..1 + rng.below(8) {
                        let i = rng.below(f.len() as u64) as usize;
                        f[i] ^= 1 << rng.below(8);
                    }
                    f
                }
                3 => vec![0u8; 65_536 + rng.below(10_000) as usize],
                4 => {
                    // A plausible IPv4/TCP header to our address with random contents after.
                    let mut f = ping();
                    f[23] = 6; // protocol TCP
                    f.resize(14 + 20 + rng.below(100) as usize, 0);
                    let n = f.len();
                    rng.fill(&mut f[34..n]);
                    f
                }
                _ => Vec::new(),
            };
            inp.borrow_mut().push_back(f);
            if i % 16 == 0 {
                t += 1_000_000;
                st.poll(t);
                let _ = st.tcp_accept(t, l);
                let _ = st.udp_recv_from(t, u, 100);
                let _ = st.next_deadline(t);
                out.borrow_mut().clear();
            }
        }
        t += 1_000_000;
        st.poll(t);
        out.borrow_mut().clear();
        inp.borrow_mut().push_back(arp_request());
        st.poll(t + 1);
        assert!(!out.borrow().is_empty(), "no ARP reply after the garbage");
    }
}
