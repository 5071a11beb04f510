//! `wasi:sockets/udp` on weft's UDP calls.
//!
//! `bind` is weft's `udp-bind` (port 0 picks a free port of the dynamic range). After
//! `stream(remote)`, datagrams from other senders are dropped and outgoing ones without
//! an address go to `remote`. Datagram streams of an earlier `stream` call fail with
//! `invalid-state`.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use super::addr::{self, ANY};
use crate::WasiOnWeft;
use crate::exports::wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, NetworkBorrow,
};
use crate::exports::wasi::sockets::udp::{
    self, GuestIncomingDatagramStream, GuestOutgoingDatagramStream, GuestUdpSocket,
    IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
};
use crate::poll::Pollable;
use crate::sockets::Watch;
use crate::weft::devices::sockets::{self as net, Endpoint, SocketError};

/// Largest UDP payload over IPv4.
pub const DATAGRAM_MAX: usize = 65507;

/// What `check-send` grants.
pub const SEND_BATCH: u64 = 64;

pub struct Udp {
    s: Option<u32>,
    local: Endpoint,
    remote: Option<Endpoint>,
    /// Which `stream` call the current datagram streams came from.
    generation: u32,
    /// Datagrams received while checking readiness, not yet returned.
    queue: VecDeque<(Vec<u8>, Endpoint)>,
    binding: bool,
    hop_limit: u8,
    rx_buf: u64,
    tx_buf: u64,
}

impl Drop for Udp {
    fn drop(&mut self) {
        if let Some(s) = self.s {
            super::close(s);
        }
    }
}

impl Udp {
    /// The next datagram from an accepted sender, if one is waiting.
    fn next(&mut self) -> Result<Option<(Vec<u8>, Endpoint)>, ErrorCode> {
        if let Some(d) = self.queue.pop_front() {
            return Ok(Some(d));
        }
        let s = self.s.ok_or(ErrorCode::InvalidState)?;
        loop {
            match net::udp_recv_from(s, DATAGRAM_MAX as u32) {
                Ok((_, from)) if self.remote.is_some_and(|r| !addr::same(r, from)) => {}
                Ok(d) => return Ok(Some(d)),
                Err(SocketError::WouldBlock) => return Ok(None),
                Err(e) => return Err(addr::code(e)),
            }
        }
    }
}

/// Whether a datagram (or an error) waits; a datagram found is kept for `receive`.
pub fn ready(u: &Rc<RefCell<Udp>>) -> bool {
    let mut u = u.borrow_mut();
    match u.next() {
        Ok(Some(d)) => {
            u.queue.push_front(d);
            true
        }
        Ok(None) => false,
        Err(_) => true,
    }
}

/// A `wasi:sockets/udp` socket.
pub struct UdpSock(Rc<RefCell<Udp>>);

impl UdpSock {
    pub fn new() -> UdpSock {
        UdpSock(Rc::new(RefCell::new(Udp {
            s: None,
            local: ANY,
            remote: None,
            generation: 0,
            queue: VecDeque::new(),
            binding: false,
            hop_limit: 64,
            rx_buf: 64 * 1024,
            tx_buf: 64 * 1024,
        })))
    }
}

impl Default for UdpSock {
    fn default() -> UdpSock {
        UdpSock::new()
    }
}

impl udp::Guest for WasiOnWeft {
    type UdpSocket = UdpSock;
    type IncomingDatagramStream = Incoming;
    type OutgoingDatagramStream = Outgoing;
}

impl GuestUdpSocket for UdpSock {
    fn start_bind(&self, _: NetworkBorrow<'_>, local: IpSocketAddress) -> Result<(), ErrorCode> {
        let mut u = self.0.borrow_mut();
        if u.s.is_some() || u.binding {
            return Err(ErrorCode::InvalidState);
        }
        let ep = addr::endpoint(&local).ok_or(ErrorCode::InvalidArgument)?;
        let (s, port) = super::bind_port(ep.port, net::udp_bind)?;
        u.s = Some(s);
        u.local = Endpoint {
            addr: ep.addr,
            port,
        };
        u.binding = true;
        Ok(())
    }

    fn finish_bind(&self) -> Result<(), ErrorCode> {
        let mut u = self.0.borrow_mut();
        if !u.binding {
            return Err(ErrorCode::NotInProgress);
        }
        u.binding = false;
        Ok(())
    }

    fn stream(
        &self,
        remote: Option<IpSocketAddress>,
    ) -> Result<(IncomingDatagramStream, OutgoingDatagramStream), ErrorCode> {
        let mut u = self.0.borrow_mut();
        if u.s.is_none() || u.binding {
            return Err(ErrorCode::InvalidState);
        }
        let remote = match remote {
            None => None,
            Some(a) => {
                let ep = addr::endpoint(&a).ok_or(ErrorCode::InvalidArgument)?;
                if ep.port == 0 || ep.addr == (0, 0, 0, 0) {
                    return Err(ErrorCode::InvalidArgument);
                }
                Some(ep)
            }
        };
        u.remote = remote;
        if let Some(r) = remote {
            u.queue.retain(|(_, from)| addr::same(*from, r));
        }
        u.generation = u.generation.wrapping_add(1);
        let generation = u.generation;
        Ok((
            IncomingDatagramStream::new(Incoming {
                u: self.0.clone(),
                generation,
            }),
            OutgoingDatagramStream::new(Outgoing {
                u: self.0.clone(),
                generation,
            }),
        ))
    }

    fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        let u = self.0.borrow();
        match u.s {
            Some(_) => Ok(addr::socket_address(u.local)),
            None => Err(ErrorCode::InvalidState),
        }
    }

    fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        self.0
            .borrow()
            .remote
            .map(addr::socket_address)
            .ok_or(ErrorCode::InvalidState)
    }

    fn address_family(&self) -> IpAddressFamily {
        IpAddressFamily::Ipv4
    }

    fn unicast_hop_limit(&self) -> Result<u8, ErrorCode> {
        Ok(self.0.borrow().hop_limit)
    }

    fn set_unicast_hop_limit(&self, value: u8) -> Result<(), ErrorCode> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        self.0.borrow_mut().hop_limit = value;
        Ok(())
    }

    fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
        Ok(self.0.borrow().rx_buf)
    }

    fn set_receive_buffer_size(&self, value: u64) -> Result<(), ErrorCode> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        self.0.borrow_mut().rx_buf = value;
        Ok(())
    }

    fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
        Ok(self.0.borrow().tx_buf)
    }

    fn set_send_buffer_size(&self, value: u64) -> Result<(), ErrorCode> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        self.0.borrow_mut().tx_buf = value;
        Ok(())
    }

    /// Binding finishes at once.
    fn subscribe(&self) -> crate::exports::wasi::io::poll::Pollable {
        Pollable::ready()
    }
}

pub struct Incoming {
    u: Rc<RefCell<Udp>>,
    generation: u32,
}

impl GuestIncomingDatagramStream for Incoming {
    fn receive(&self, max_results: u64) -> Result<Vec<IncomingDatagram>, ErrorCode> {
        let mut u = self.u.borrow_mut();
        if u.generation != self.generation {
            return Err(ErrorCode::InvalidState);
        }
        let mut out = Vec::new();
        while (out.len() as u64) < max_results {
            match u.next() {
                Ok(Some((data, from))) => out.push(IncomingDatagram {
                    data,
                    remote_address: addr::socket_address(from),
                }),
                Ok(None) => break,
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    fn subscribe(&self) -> crate::exports::wasi::io::poll::Pollable {
        Pollable::io(Watch::Udp(self.u.clone()))
    }
}

pub struct Outgoing {
    u: Rc<RefCell<Udp>>,
    generation: u32,
}

/// Where datagram `d` goes, given the stream's `remote`.
pub fn destination(
    d: Option<&IpSocketAddress>,
    remote: Option<Endpoint>,
) -> Result<Endpoint, ErrorCode> {
    let to = match (d, remote) {
        (Some(a), r) => {
            let e = addr::endpoint(a).ok_or(ErrorCode::InvalidArgument)?;
            if r.is_some_and(|r| !addr::same(r, e)) {
                return Err(ErrorCode::InvalidArgument);
            }
            e
        }
        (None, Some(r)) => r,
        (None, None) => return Err(ErrorCode::InvalidArgument),
    };
    if to.port == 0 {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(to)
}

impl GuestOutgoingDatagramStream for Outgoing {
    fn check_send(&self) -> Result<u64, ErrorCode> {
        if self.u.borrow().generation != self.generation {
            return Err(ErrorCode::InvalidState);
        }
        Ok(SEND_BATCH)
    }

    fn send(&self, datagrams: Vec<OutgoingDatagram>) -> Result<u64, ErrorCode> {
        let u = self.u.borrow();
        if u.generation != self.generation {
            return Err(ErrorCode::InvalidState);
        }
        let s = u.s.ok_or(ErrorCode::InvalidState)?;
        let mut sent = 0;
        for d in &datagrams {
            let result = destination(d.remote_address.as_ref(), u.remote).and_then(|to| {
                if d.data.len() > DATAGRAM_MAX {
                    return Err(ErrorCode::DatagramTooLarge);
                }
                net::udp_send_to(s, &d.data, to).map_err(|e| match e {
                    SocketError::NoBuffers => ErrorCode::DatagramTooLarge,
                    e => addr::code(e),
                })
            });
            match result {
                Ok(()) => sent += 1,
                Err(ErrorCode::WouldBlock) => break,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    fn subscribe(&self) -> crate::exports::wasi::io::poll::Pollable {
        Pollable::ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::wasi::sockets::network::Ipv4SocketAddress;

    fn v4(a: (u8, u8, u8, u8), port: u16) -> IpSocketAddress {
        IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: a })
    }

    #[test]
    fn destinations() {
        let r = Endpoint {
            addr: (10, 0, 0, 1),
            port: 53,
        };
        let to = destination(Some(&v4((1, 2, 3, 4), 9)), None).unwrap();
        assert!(addr::same(
            to,
            Endpoint {
                addr: (1, 2, 3, 4),
                port: 9
            }
        ));
        assert!(addr::same(destination(None, Some(r)).unwrap(), r));
        assert!(addr::same(
            destination(Some(&v4((10, 0, 0, 1), 53)), Some(r)).unwrap(),
            r
        ));
        assert_eq!(
            destination(Some(&v4((10, 0, 0, 1), 54)), Some(r)).err(),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            destination(None, None).err(),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            destination(Some(&v4((1, 2, 3, 4), 0)), None).err(),
            Some(ErrorCode::InvalidArgument)
        );
    }
}
