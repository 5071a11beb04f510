//! `wasi:sockets`, denied by default: the program gets a `network` handle, but creating
//! a TCP or UDP socket and resolving a name all fail with `access-denied`, the code
//! WASI gives for EACCES/EPERM. Name lookup uses the same code as sockets so that a
//! program sees one consistent answer, "this unikernel grants no network through
//! WASI", rather than a resolver failure that suggests retrying. Each kind of denial
//! is logged once on topic `wasi`.
//!
//! As in [`crate::fs`], the socket and stream resource types are uninhabited: nothing
//! can create one, so their methods are `match *self {}` and have no code path.

use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::Global;

use crate::exports::wasi::io::poll::Pollable;
use crate::exports::wasi::io::streams::{InputStream, OutputStream};
use crate::exports::wasi::sockets::ip_name_lookup::{
    self, GuestResolveAddressStream, IpAddress, ResolveAddressStream,
};
use crate::exports::wasi::sockets::network::{
    self, ErrorCode, GuestNetwork, IpAddressFamily, IpSocketAddress, NetworkBorrow,
};
use crate::exports::wasi::sockets::tcp::{self, Duration, GuestTcpSocket, ShutdownType, TcpSocket};
use crate::exports::wasi::sockets::udp::{
    self, GuestIncomingDatagramStream, GuestOutgoingDatagramStream, GuestUdpSocket,
    IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use crate::exports::wasi::sockets::{instance_network, tcp_create_socket, udp_create_socket};
use crate::{WasiOnWeft, log_event};

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
                "denied {}: the wasi component grants no network (further denials not logged)",
                what.what()
            ),
            &[("denied", String::from(what.what()))],
        );
    }
    ErrorCode::AccessDenied
}

/// The one network; it grants nothing.
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
    fn create_tcp_socket(_family: IpAddressFamily) -> Result<TcpSocket, ErrorCode> {
        Err(deny(Denied::Tcp))
    }
}

impl udp_create_socket::Guest for WasiOnWeft {
    fn create_udp_socket(_family: IpAddressFamily) -> Result<UdpSocket, ErrorCode> {
        Err(deny(Denied::Udp))
    }
}

impl ip_name_lookup::Guest for WasiOnWeft {
    type ResolveAddressStream = NoResolveStream;

    fn resolve_addresses(
        _network: NetworkBorrow<'_>,
        _name: String,
    ) -> Result<ResolveAddressStream, ErrorCode> {
        Err(deny(Denied::NameLookup))
    }
}

/// A lookup in progress: none exists.
pub enum NoResolveStream {}

impl GuestResolveAddressStream for NoResolveStream {
    fn resolve_next_address(&self) -> Result<Option<IpAddress>, ErrorCode> {
        match *self {}
    }

    fn subscribe(&self) -> Pollable {
        match *self {}
    }
}

/// A TCP socket: none exists.
pub enum NoTcpSocket {}

impl tcp::Guest for WasiOnWeft {
    type TcpSocket = NoTcpSocket;
}

impl GuestTcpSocket for NoTcpSocket {
    fn start_bind(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn finish_bind(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn start_connect(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn finish_connect(&self) -> Result<(InputStream, OutputStream), ErrorCode> {
        match *self {}
    }

    fn start_listen(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn finish_listen(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn accept(&self) -> Result<(TcpSocket, InputStream, OutputStream), ErrorCode> {
        match *self {}
    }

    fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match *self {}
    }

    fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match *self {}
    }

    fn is_listening(&self) -> bool {
        match *self {}
    }

    fn address_family(&self) -> IpAddressFamily {
        match *self {}
    }

    fn set_listen_backlog_size(&self, _: u64) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn keep_alive_enabled(&self) -> Result<bool, ErrorCode> {
        match *self {}
    }

    fn set_keep_alive_enabled(&self, _: bool) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn keep_alive_idle_time(&self) -> Result<Duration, ErrorCode> {
        match *self {}
    }

    fn set_keep_alive_idle_time(&self, _: Duration) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn keep_alive_interval(&self) -> Result<Duration, ErrorCode> {
        match *self {}
    }

    fn set_keep_alive_interval(&self, _: Duration) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn keep_alive_count(&self) -> Result<u32, ErrorCode> {
        match *self {}
    }

    fn set_keep_alive_count(&self, _: u32) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn hop_limit(&self) -> Result<u8, ErrorCode> {
        match *self {}
    }

    fn set_hop_limit(&self, _: u8) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn set_receive_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn set_send_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn subscribe(&self) -> Pollable {
        match *self {}
    }

    fn shutdown(&self, _: ShutdownType) -> Result<(), ErrorCode> {
        match *self {}
    }
}

/// A UDP socket: none exists, nor its datagram streams.
pub enum NoUdpSocket {}
pub enum NoIncomingDatagrams {}
pub enum NoOutgoingDatagrams {}

impl udp::Guest for WasiOnWeft {
    type UdpSocket = NoUdpSocket;
    type IncomingDatagramStream = NoIncomingDatagrams;
    type OutgoingDatagramStream = NoOutgoingDatagrams;
}

impl GuestUdpSocket for NoUdpSocket {
    fn start_bind(&self, _: NetworkBorrow<'_>, _: IpSocketAddress) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn finish_bind(&self) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn stream(
        &self,
        _: Option<IpSocketAddress>,
    ) -> Result<(IncomingDatagramStream, OutgoingDatagramStream), ErrorCode> {
        match *self {}
    }

    fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match *self {}
    }

    fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match *self {}
    }

    fn address_family(&self) -> IpAddressFamily {
        match *self {}
    }

    fn unicast_hop_limit(&self) -> Result<u8, ErrorCode> {
        match *self {}
    }

    fn set_unicast_hop_limit(&self, _: u8) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn set_receive_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn set_send_buffer_size(&self, _: u64) -> Result<(), ErrorCode> {
        match *self {}
    }

    fn subscribe(&self) -> Pollable {
        match *self {}
    }
}

impl GuestIncomingDatagramStream for NoIncomingDatagrams {
    fn receive(&self, _max_results: u64) -> Result<Vec<IncomingDatagram>, ErrorCode> {
        match *self {}
    }

    fn subscribe(&self) -> Pollable {
        match *self {}
    }
}

impl GuestOutgoingDatagramStream for NoOutgoingDatagrams {
    fn check_send(&self) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn send(&self, _datagrams: Vec<OutgoingDatagram>) -> Result<u64, ErrorCode> {
        match *self {}
    }

    fn subscribe(&self) -> Pollable {
        match *self {}
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
