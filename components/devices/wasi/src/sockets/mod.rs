//! `wasi:sockets` on weft's `sockets` interface: TCP and UDP over IPv4, through the
//! manifest's `[stack]` (the `tcpip` component or the host's stack).
//!
//! weft's sockets are non-blocking; WASI's are too, so each call maps onto one or a few
//! weft calls, and readiness ([`Watch`]) is found by trying the operation and keeping
//! its result (weft has no readiness query). Waiting is [`crate::poll`]'s: `wait-until`
//! the stack's `next-deadline`, woken early by input.
//!
//! Without a `[stack]` the runtime answers every weft `sockets` call with
//! `unreachable`; [`stack_present`] recognises that (a call on a socket that cannot
//! exist gets `invalid-argument` from a real stack; `tcpip` answers `unreachable` too
//! once it has stopped on an address clash) and the WASI calls that would use the
//! network fail with `access-denied`, logged once per kind.

pub mod addr;
pub mod tcp;
pub mod udp;

use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;

use weft_guest::Global;

use crate::exports::wasi::sockets::ip_name_lookup::{
    self, GuestResolveAddressStream, IpAddress, ResolveAddressStream,
};
use crate::exports::wasi::sockets::network::{
    self, ErrorCode, GuestNetwork, IpAddressFamily, NetworkBorrow,
};
use crate::exports::wasi::sockets::tcp::TcpSocket;
use crate::exports::wasi::sockets::udp::UdpSocket;
use crate::exports::wasi::sockets::{instance_network, tcp_create_socket, udp_create_socket};
use crate::poll::Pollable;
use crate::weft::devices::sockets::{self as net, SocketError};
use crate::{WasiOnWeft, log_event};
use tcp::Conn;

/// What was refused; each is logged the first time only, so a program that retries in
/// a loop does not flood the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Tcp,
    Udp,
    NameLookup,
}

impl Denied {
    pub fn what(self) -> &'static str {
        match self {
            Denied::Tcp => "tcp socket",
            Denied::Udp => "udp socket",
            Denied::NameLookup => "name lookup",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The denials already logged, one bit per [`Denied`].
static LOGGED: Global<u8> = Global::new(0);

/// Log `what` if it is the first of its kind, and give the error the caller returns.
fn deny(what: Denied) -> ErrorCode {
    let first = LOGGED.with(|l| {
        let first = *l & what.bit() == 0;
        *l |= what.bit();
        first
    });
    if first {
        log_event(
            &alloc::format!(
                "denied {}: no network (the manifest has no [stack], or its stack has stopped; further denials not logged)",
                what.what()
            ),
            &[("denied", String::from(what.what()))],
        );
    }
    ErrorCode::AccessDenied
}

/// A socket number no stack hands out: calls on it probe for a stack.
const PROBE: u32 = u32::MAX;

/// Whether the manifest has a `[stack]` (asked once).
pub fn stack_present() -> bool {
    static PRESENT: Global<Option<bool>> = Global::new(None);
    if let Some(p) = PRESENT.with(|p| *p) {
        return p;
    }
    let p = !matches!(net::tcp_recv(PROBE, 1), Err(SocketError::Unreachable));
    PRESENT.with(|slot| *slot = Some(p));
    p
}

/// The stack's next deadline (none without sockets in use).
pub fn next_deadline() -> Option<u64> {
    net::next_deadline()
}

/// weft sockets this component holds open.
static OPEN: Global<u32> = Global::new(0);

/// Count a socket weft handed out.
fn opened(s: u32) -> u32 {
    OPEN.with(|n| *n += 1);
    s
}

/// Close a socket weft handed out.
fn close(s: u32) {
    OPEN.with(|n| *n = n.saturating_sub(1));
    net::close(s);
}

/// Whether any socket is open: then every wait also wakes for the stack's timers, so a
/// program sleeping on a clock keeps its connections served (retransmissions, ACKs).
pub fn active() -> bool {
    OPEN.with(|n| *n > 0)
}

/// Bind through `open` (weft's `tcp-listen` or `udp-bind`) to `port`, or for port 0 to
/// a free port of the dynamic range picked at random.
fn bind_port(
    port: u16,
    open: impl Fn(u16) -> Result<u32, SocketError>,
) -> Result<(u32, u16), ErrorCode> {
    if port != 0 {
        return open(port).map(|s| (opened(s), port)).map_err(addr::code);
    }
    let seed = crate::random::u64_from_device();
    for i in 0..64 {
        let p = addr::ephemeral(seed, i);
        match open(p) {
            Ok(s) => return Ok((opened(s), p)),
            Err(SocketError::AddressInUse) => {}
            Err(e) => return Err(addr::code(e)),
        }
    }
    Err(ErrorCode::AddressInUse)
}

/// What a socket pollable waits for.
pub enum Watch {
    /// Data, end of stream or an error on a connection.
    Read(Rc<Conn>),
    /// Room in a connection's send buffer.
    Write(Rc<Conn>),
    /// A TCP socket's connect finishing, or a connection to accept.
    Tcp(Rc<RefCell<tcp::Sock>>),
    /// A datagram.
    Udp(Rc<RefCell<udp::Udp>>),
}

impl Watch {
    pub fn ready(&self) -> bool {
        match self {
            Watch::Read(c) => c.readable(),
            Watch::Write(c) => c.writable(),
            Watch::Tcp(s) => tcp::ready(s),
            Watch::Udp(u) => udp::ready(u),
        }
    }
}

/// The one network.
pub struct Network {
    _none: (),
}

impl GuestNetwork for Network {}

impl network::Guest for WasiOnWeft {
    type Network = Network;
}

impl instance_network::Guest for WasiOnWeft {
    fn instance_network() -> network::Network {
        network::Network::new(Network { _none: () })
    }
}

impl tcp_create_socket::Guest for WasiOnWeft {
    fn create_tcp_socket(family: IpAddressFamily) -> Result<TcpSocket, ErrorCode> {
        if !stack_present() {
            return Err(deny(Denied::Tcp));
        }
        if family == IpAddressFamily::Ipv6 {
            return Err(ErrorCode::NotSupported);
        }
        Ok(TcpSocket::new(tcp::Tcp::new()))
    }
}

impl udp_create_socket::Guest for WasiOnWeft {
    fn create_udp_socket(family: IpAddressFamily) -> Result<UdpSocket, ErrorCode> {
        if !stack_present() {
            return Err(deny(Denied::Udp));
        }
        if family == IpAddressFamily::Ipv6 {
            return Err(ErrorCode::NotSupported);
        }
        Ok(UdpSocket::new(udp::UdpSock::new()))
    }
}

/// A lookup's result: numeric addresses only, so at most one.
pub struct Resolved(RefCell<Option<IpAddress>>);

impl GuestResolveAddressStream for Resolved {
    fn resolve_next_address(&self) -> Result<Option<IpAddress>, ErrorCode> {
        Ok(self.0.borrow_mut().take())
    }

    fn subscribe(&self) -> crate::exports::wasi::io::poll::Pollable {
        Pollable::ready()
    }
}

impl ip_name_lookup::Guest for WasiOnWeft {
    type ResolveAddressStream = Resolved;

    /// A dotted-quad IPv4 address resolves to itself; weft has no resolver, so every
    /// name is `name-unresolvable`.
    fn resolve_addresses(
        _network: NetworkBorrow<'_>,
        name: String,
    ) -> Result<ResolveAddressStream, ErrorCode> {
        if !stack_present() {
            return Err(deny(Denied::NameLookup));
        }
        let a = addr::parse_ipv4(&name).ok_or(ErrorCode::NameUnresolvable)?;
        Ok(ResolveAddressStream::new(Resolved(RefCell::new(Some(
            addr::ip_address(a),
        )))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_denial_has_its_own_bit() {
        let all = [Denied::Tcp, Denied::Udp, Denied::NameLookup];
        let bits: u8 = all.iter().map(|d| d.bit()).fold(0, |a, b| a | b);
        assert_eq!(bits.count_ones(), 3);
        assert_eq!(Denied::NameLookup.what(), "name lookup");
    }
}
