//! `tcpip`: smoltcp compiled into a weft component (world `stack`). It drives the net
//! device bound to the role it is configured with and exports `sockets` to the app:
//! ARP, ICMP echo replies, IPv4, TCP (listen with a pool of listening sockets per port,
//! accept, connect, send, recv, shutdown, close) and UDP.
//!
//! `filter.configure(role, keys)` takes the manifest's `[stack]` keys: `ip =
//! "10.0.0.2/24"` (required), `gateway = "10.0.0.1"`, `tcp-rx-buffer`, `tcp-tx-buffer`,
//! `udp-buffer` (bytes per socket), `backlog` (listening sockets kept ready per port),
//! and in a simulation the runtime's `sim-seed` (the stack's random seed, instead of
//! `random`) and `sim-phase` (ignored).
//! It refuses to start when its ARP probe shows the address already in use on the link,
//! and stops using the address if that shows later (see [`stack`]).
//!
//! The protocol work is in [`stack`], which knows nothing of the bindings; this file only
//! adapts the `net`, `clock`, `random` and `log` imports to it.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
#[cfg(test)]
pub mod fuzz;
pub mod stack;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use weft_guest::Global;

wit_bindgen::generate!({
    world: "stack",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::sockets::{Endpoint, Guest as SocketsGuest, Socket, SocketError};
use weft::devices::{clock, log, net, random};

use stack::{Link, SockErr, Stack};

const TOPIC: &str = "tcpip";

/// The net import as the stack's device.
struct NetImport {
    dev: u32,
}

impl stack::Net for NetImport {
    fn receive(&mut self, max: u32) -> Vec<Vec<u8>> {
        net::receive(self.dev, max).unwrap_or_default()
    }

    fn send(&mut self, frames: &[Vec<u8>]) -> Result<usize, ()> {
        net::send(self.dev, frames)
            .map(|n| n as usize)
            .map_err(|_| ())
    }

    fn log(&mut self, message: &str, fields: &[(&str, String)]) {
        let fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        log::append(TOPIC, message, &fields);
    }
}

static STACK: Global<Option<Stack<NetImport>>> = Global::new(None);

fn err(e: SockErr) -> SocketError {
    match e {
        SockErr::WouldBlock => SocketError::WouldBlock,
        SockErr::AddressInUse => SocketError::AddressInUse,
        SockErr::ConnectionReset => SocketError::ConnectionReset,
        SockErr::NotConnected => SocketError::NotConnected,
        SockErr::InvalidArgument => SocketError::InvalidArgument,
        SockErr::Unreachable => SocketError::Unreachable,
        SockErr::NoBuffers => SocketError::NoBuffers,
    }
}

fn ep_out((a, port): stack::Endpoint) -> Endpoint {
    Endpoint {
        addr: (a[0], a[1], a[2], a[3]),
        port,
    }
}

fn ep_in(e: Endpoint) -> stack::Endpoint {
    ([e.addr.0, e.addr.1, e.addr.2, e.addr.3], e.port)
}

/// Run `f` on the configured stack with the current time. Before `configure` there is no
/// device: every call fails (`invalid-argument`) rather than trapping.
fn with<R>(
    f: impl FnOnce(&mut Stack<NetImport>, u64) -> Result<R, SockErr>,
) -> Result<R, SocketError> {
    STACK.with(|s| match s {
        Some(st) => f(st, clock::monotonic_now()).map_err(err),
        None => Err(SocketError::InvalidArgument),
    })
}

struct Tcpip;

impl FilterGuest for Tcpip {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let cfg = config::StackConfig::from_pairs(&config)?;
        let probe_wait = cfg.probe_wait_ns;
        let dev = net::open(&device)
            .map_err(|e| alloc::format!("net device `{device}`: open: {}", e.name()))?;
        let info = net::info(dev)
            .map_err(|e| alloc::format!("net device `{device}`: info: {}", e.name()))?;
        let m = info.mac;
        let mac = [m.0, m.1, m.2, m.3, m.4, m.5];
        // The stack's randomness (smoltcp's ISNs, ephemeral ports) is seeded from
        // `sim-seed` in a simulation, so that one simulation seed reproduces the run
        // (wit/filter.wit); otherwise from `random`.
        let seed = match config::sim_seed(&config)? {
            Some(s) => s.to_le_bytes(),
            None => {
                let seed_bytes = random::fill(8);
                let mut seed = [0u8; 8];
                for (d, s) in seed.iter_mut().zip(seed_bytes.iter()) {
                    *d = *s;
                }
                seed
            }
        };
        let mut st = Stack::new(
            NetImport { dev },
            &device,
            Link {
                mac,
                mtu: info.mtu,
                checksum_offload: info.checksum_offload,
            },
            cfg,
            u64::from_le_bytes(seed),
            clock::monotonic_now(),
        );
        // Listen `probe-wait` for an answer to the probe `Stack::new` sent, and refuse
        // to start on an address in use. `wait-until` returns early on input; the
        // round limit ends the wait under a clock filter that stops time.
        let end = clock::monotonic_now().saturating_add(probe_wait);
        for _ in 0..64 {
            let now = clock::monotonic_now();
            st.poll(now);
            if let Some(c) = st.clash() {
                return Err(alloc::format!(
                    "{}; choose another `ip` in [stack]",
                    c.message()
                ));
            }
            if now >= end {
                break;
            }
            clock::wait_until(end);
        }
        STACK.with(|s| *s = Some(st));
        Ok(())
    }
}

impl SocketsGuest for Tcpip {
    fn tcp_listen(port: u16) -> Result<Socket, SocketError> {
        with(|st, now| st.tcp_listen(now, port))
    }

    fn tcp_accept(listener: Socket) -> Result<(Socket, Endpoint), SocketError> {
        with(|st, now| st.tcp_accept(now, listener)).map(|(s, e)| (s, ep_out(e)))
    }

    fn tcp_connect(remote: Endpoint) -> Result<Socket, SocketError> {
        with(|st, now| st.tcp_connect(now, ep_in(remote)))
    }

    fn tcp_send(s: Socket, data: Vec<u8>) -> Result<u32, SocketError> {
        with(|st, now| st.tcp_send(now, s, &data))
    }

    fn tcp_recv(s: Socket, max: u32) -> Result<Vec<u8>, SocketError> {
        with(|st, now| st.tcp_recv(now, s, max))
    }

    fn tcp_shutdown(s: Socket) -> Result<(), SocketError> {
        with(|st, now| st.tcp_shutdown(now, s))
    }

    fn udp_bind(port: u16) -> Result<Socket, SocketError> {
        with(|st, now| st.udp_bind(now, port))
    }

    fn udp_send_to(s: Socket, data: Vec<u8>, to: Endpoint) -> Result<(), SocketError> {
        with(|st, now| st.udp_send_to(now, s, &data, ep_in(to)))
    }

    fn udp_recv_from(s: Socket, max: u32) -> Result<(Vec<u8>, Endpoint), SocketError> {
        with(|st, now| st.udp_recv_from(now, s, max)).map(|(d, e)| (d, ep_out(e)))
    }

    fn close(s: Socket) {
        let _ = with(|st, now| {
            st.close(now, s);
            Ok(())
        });
    }

    fn next_deadline() -> Option<u64> {
        with(|st, now| Ok(st.next_deadline(now))).ok().flatten()
    }
}

export!(Tcpip);
