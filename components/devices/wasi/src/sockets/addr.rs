//! Addresses and error codes between `wasi:sockets` and weft's `sockets` (pure).

use crate::exports::wasi::sockets::network::{
    ErrorCode, IpAddress, IpSocketAddress, Ipv4SocketAddress,
};
use crate::weft::devices::sockets::{Endpoint, SocketError};

/// First and count of the ports a bind to port 0 picks from (IANA's dynamic range).
pub const EPHEMERAL_FIRST: u16 = 49152;
pub const EPHEMERAL_COUNT: u16 = 16384;

/// The `i`-th port to try for an ephemeral bind, from a random `seed`: a walk over the
/// whole dynamic range with a stride coprime to its size.
pub fn ephemeral(seed: u64, i: u32) -> u16 {
    let n = u64::from(EPHEMERAL_COUNT);
    EPHEMERAL_FIRST + ((seed % n + u64::from(i) * 7919) % n) as u16
}

/// A dotted-quad IPv4 address (four decimal parts, each 0-255, no leading `+`).
pub fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The weft endpoint of an IPv4 socket address; IPv6 is `none`.
pub fn endpoint(a: &IpSocketAddress) -> Option<Endpoint> {
    match a {
        IpSocketAddress::Ipv4(v4) => Some(Endpoint {
            addr: v4.address,
            port: v4.port,
        }),
        IpSocketAddress::Ipv6(_) => None,
    }
}

/// The WASI socket address of a weft endpoint.
pub fn socket_address(e: Endpoint) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: e.port,
        address: e.addr,
    })
}

pub fn ip_address(a: [u8; 4]) -> IpAddress {
    IpAddress::Ipv4((a[0], a[1], a[2], a[3]))
}

/// Whether two endpoints are the same (the generated record has no `PartialEq`).
pub fn same(a: Endpoint, b: Endpoint) -> bool {
    a.addr == b.addr && a.port == b.port
}

/// The unspecified address, port 0.
pub const ANY: Endpoint = Endpoint {
    addr: (0, 0, 0, 0),
    port: 0,
};

/// A weft error as WASI's.
pub fn code(e: SocketError) -> ErrorCode {
    match e {
        SocketError::WouldBlock => ErrorCode::WouldBlock,
        SocketError::AddressInUse => ErrorCode::AddressInUse,
        SocketError::ConnectionReset => ErrorCode::ConnectionReset,
        SocketError::NotConnected => ErrorCode::InvalidState,
        SocketError::InvalidArgument => ErrorCode::InvalidArgument,
        SocketError::Unreachable => ErrorCode::RemoteUnreachable,
        SocketError::NoBuffers => ErrorCode::OutOfMemory,
    }
}

/// A weft error while connecting: a reset is a refusal.
pub fn connect_code(e: SocketError) -> ErrorCode {
    match e {
        SocketError::ConnectionReset | SocketError::NotConnected => ErrorCode::ConnectionRefused,
        SocketError::NoBuffers => ErrorCode::NewSocketLimit,
        e => code(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::wasi::sockets::network::Ipv6SocketAddress;
    use alloc::collections::BTreeSet;

    #[test]
    fn ipv4_literals() {
        assert_eq!(parse_ipv4("127.0.0.1"), Some([127, 0, 0, 1]));
        assert_eq!(parse_ipv4("255.255.255.255"), Some([255; 4]));
        assert_eq!(parse_ipv4("010.0.0.1"), Some([10, 0, 0, 1]));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.3.+4",
            "a.b.c.d",
            "1..2.3",
            "localhost",
            "::1",
            "1.2.3.0004",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn ephemeral_ports_cover_the_range() {
        let all: BTreeSet<u16> = (0..u32::from(EPHEMERAL_COUNT))
            .map(|i| ephemeral(12345, i))
            .collect();
        assert_eq!(all.len(), usize::from(EPHEMERAL_COUNT));
        assert_eq!(*all.first().unwrap(), EPHEMERAL_FIRST);
        assert_eq!(*all.last().unwrap(), u16::MAX);
        assert!(ephemeral(u64::MAX, u32::MAX) >= EPHEMERAL_FIRST);
    }

    #[test]
    fn endpoints() {
        let a = socket_address(Endpoint {
            addr: (10, 0, 0, 2),
            port: 80,
        });
        let e = endpoint(&a).unwrap();
        assert!(same(
            e,
            Endpoint {
                addr: (10, 0, 0, 2),
                port: 80
            }
        ));
        assert!(!same(
            e,
            Endpoint {
                addr: (10, 0, 0, 2),
                port: 81
            }
        ));
        let v6 = IpSocketAddress::Ipv6(Ipv6SocketAddress {
            port: 1,
            flow_info: 0,
            address: (0, 0, 0, 0, 0, 0, 0, 1),
            scope_id: 0,
        });
        assert!(endpoint(&v6).is_none());
    }

    #[test]
    fn error_codes() {
        assert_eq!(code(SocketError::NotConnected), ErrorCode::InvalidState);
        assert_eq!(
            connect_code(SocketError::ConnectionReset),
            ErrorCode::ConnectionRefused
        );
        assert_eq!(
            connect_code(SocketError::Unreachable),
            ErrorCode::RemoteUnreachable
        );
        assert_eq!(
            connect_code(SocketError::NoBuffers),
            ErrorCode::NewSocketLimit
        );
    }
}
