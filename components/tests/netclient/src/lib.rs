//! `netclient ADDR PORT MESSAGE [CONNECTIONS [EXPECT]]`: connects to ADDR:PORT
//! through the stack, sends MESSAGE, half-closes and reads until the peer
//! closes, CONNECTIONS times (default 1), printing what came back: an echo of
//! MESSAGE, or (given EXPECT) a reply that starts with EXPECT. Connection attempts
//! are retried (the server may still be booting) for up to 30 s; a connection
//! that breaks once any of the message went out is not: it is reported and fails
//! the run (the server has seen that connection, and what came back is no echo).
//!
//! Exit codes: 0 every echo matched, 1 a mismatch, a broken connection or the
//! deadline passed, 2 bad arguments.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
use weft_guest::serve;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

wit_bindgen::generate!({ world: "app", path: "../../../wit" });

use weft::devices::sockets::{self, Endpoint, SocketError};
use weft::devices::{clock, console};

const MS: u64 = 1_000_000;

fn say(s: &str) {
    console::write(s.as_bytes());
}

/// What one exchange needs of the stack and the clock: the bindings, or a test's
/// script.
trait Net {
    fn connect(&mut self) -> Result<u32, SocketError>;
    fn send(&mut self, s: u32, data: &[u8]) -> Result<u32, SocketError>;
    fn shutdown(&mut self, s: u32) -> Result<(), SocketError>;
    /// Up to 64 KiB; empty at the end of the stream.
    fn recv(&mut self, s: u32) -> Result<Vec<u8>, SocketError>;
    fn close(&mut self, s: u32);
    fn now(&mut self) -> u64;
    /// Waits for the stack's next timer or `ms`, whichever comes first.
    fn pause(&mut self, ms: u64);
}

/// The `sockets` and `clock` imports, connecting to `to`.
struct Stack {
    to: Endpoint,
}

impl Net for Stack {
    fn connect(&mut self) -> Result<u32, SocketError> {
        sockets::tcp_connect(self.to)
    }
    fn send(&mut self, s: u32, data: &[u8]) -> Result<u32, SocketError> {
        sockets::tcp_send(s, data)
    }
    fn shutdown(&mut self, s: u32) -> Result<(), SocketError> {
        sockets::tcp_shutdown(s)
    }
    fn recv(&mut self, s: u32) -> Result<Vec<u8>, SocketError> {
        sockets::tcp_recv(s, 64 * 1024)
    }
    fn close(&mut self, s: u32) {
        sockets::close(s)
    }
    fn now(&mut self) -> u64 {
        clock::monotonic_now()
    }
    fn pause(&mut self, ms: u64) {
        let cap = clock::monotonic_now() + ms * MS;
        clock::wait_until(sockets::next_deadline().map_or(cap, |d| d.min(cap)));
    }
}

/// Why an exchange gave no echo.
#[derive(Debug, PartialEq)]
enum Failed {
    /// No connection came about, or it broke before any of the message went out
    /// (the server may still be booting), or the deadline passed: try again while
    /// time is left.
    Retry,
    /// The connection broke after (some of) the message went out: what it says.
    Broken(String),
}

/// The connection `s` broke with `e`: closed, and retried only if none of the
/// message went out.
fn broke(net: &mut impl Net, s: u32, e: SocketError, sent: usize, len: usize, got: &[u8]) -> Failed {
    net.close(s);
    if sent == 0 {
        net.pause(200);
        return Failed::Retry;
    }
    Failed::Broken(format!(
        "{} after {sent} of {len} bytes were sent, {} came back",
        e.name(),
        got.len()
    ))
}

/// One connection: the echo (everything read until the end of the stream).
fn exchange(net: &mut impl Net, msg: &[u8], deadline: u64) -> Result<Vec<u8>, Failed> {
    let s = net.connect().map_err(|_| {
        net.pause(100);
        Failed::Retry
    })?;
    let (mut sent, mut shut, mut got) = (0, false, Vec::new());
    loop {
        if net.now() > deadline {
            net.close(s);
            return Err(Failed::Retry);
        }
        let mut progress = false;
        if sent < msg.len() {
            match net.send(s, &msg[sent..]) {
                Ok(n) => {
                    sent += n as usize;
                    progress = true;
                }
                Err(SocketError::WouldBlock) => {}
                Err(e) => return Err(broke(net, s, e, sent, msg.len(), &got)),
            }
        } else if !shut {
            shut = net.shutdown(s).is_ok();
            progress = shut;
        }
        match net.recv(s) {
            Ok(d) if d.is_empty() => {
                net.close(s);
                return Ok(got);
            }
            Ok(d) => {
                got.extend_from_slice(&d);
                progress = true;
            }
            Err(SocketError::WouldBlock) => {}
            Err(e) => return Err(broke(net, s, e, sent, msg.len(), &got)),
        }
        if !progress {
            net.pause(100);
        }
    }
}

struct Client;

impl Guest for Client {
    fn run(args: Vec<String>) -> u8 {
        let usage = "usage: netclient ADDR PORT MESSAGE [CONNECTIONS [EXPECT]]\n";
        let parsed = (|| {
            let mut a = args.first()?.split('.').map(|o| o.parse::<u8>().ok());
            let addr = (a.next()??, a.next()??, a.next()??, a.next()??);
            let port = args.get(1)?.parse::<u16>().ok()?;
            let n = args.get(3).map_or(Some(1), |n| n.parse::<u32>().ok())?;
            Some((Endpoint { addr, port }, args.get(2)?.clone(), n, args.get(4).cloned()))
        })();
        let Some((to, msg, n, expect)) = parsed else {
            say(usage);
            return 2;
        };
        let mut net = Stack { to };
        let deadline = clock::monotonic_now() + 30_000 * MS;
        let mut done = 0;
        while done < n {
            if clock::monotonic_now() > deadline {
                say(&format!("netclient: gave up after {done} of {n} connections\n"));
                return 1;
            }
            let got = match exchange(&mut net, msg.as_bytes(), deadline) {
                Ok(got) => got,
                Err(Failed::Retry) => continue,
                Err(Failed::Broken(why)) => {
                    say(&format!("netclient: connection {} broke: {why}\n", done + 1));
                    return 1;
                }
            };
            let got = String::from_utf8_lossy(&got);
            // An echo must be the message; any other reply must start with EXPECT
            // (`HTTP/1.1 200` for a web server).
            let ok = match &expect {
                None => {
                    say(&format!("netclient: echoed {got:?}\n"));
                    got == msg
                }
                Some(e) => {
                    let first = got.lines().next().unwrap_or_default();
                    say(&format!("netclient: replied {} bytes: {first:?}\n", got.len()));
                    got.starts_with(e.as_str())
                }
            };
            if !ok {
                return 1;
            }
            done += 1;
        }
        // Let the last ACKs go out before the stack stops running. One wait is not
        // enough: the stack sends what it owes (the ACK of the server's FIN, after
        // smoltcp's 10 ms delay) only when it runs again, after the wait.
        serve::linger(200 * MS, clock::monotonic_now, sockets::next_deadline, clock::wait_until);
        0
    }
}

export!(Client);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted stack: `send` takes everything once `sends` runs dry; `recv`
    /// answers from `recvs`, `would-block` once it runs dry.
    #[derive(Default)]
    struct Script {
        connects: VecDeque<Result<u32, SocketError>>,
        sends: VecDeque<Result<u32, SocketError>>,
        recvs: VecDeque<Result<Vec<u8>, SocketError>>,
        closed: Vec<u32>,
        now: u64,
    }

    impl Net for Script {
        fn connect(&mut self) -> Result<u32, SocketError> {
            self.connects.pop_front().unwrap_or(Ok(1))
        }
        fn send(&mut self, _: u32, data: &[u8]) -> Result<u32, SocketError> {
            self.sends.pop_front().unwrap_or(Ok(data.len() as u32))
        }
        fn shutdown(&mut self, _: u32) -> Result<(), SocketError> {
            Ok(())
        }
        fn recv(&mut self, _: u32) -> Result<Vec<u8>, SocketError> {
            self.recvs.pop_front().unwrap_or(Err(SocketError::WouldBlock))
        }
        fn close(&mut self, s: u32) {
            self.closed.push(s);
        }
        fn now(&mut self) -> u64 {
            self.now += 1_000;
            self.now
        }
        fn pause(&mut self, ms: u64) {
            self.now += ms * MS;
        }
    }

    const DEADLINE: u64 = 30_000 * MS;

    /// A script whose `send` and `recv` answer `sends` and `recvs` first.
    fn script<const S: usize, const R: usize>(
        sends: [Result<u32, SocketError>; S],
        recvs: [Result<&[u8], SocketError>; R],
    ) -> Script {
        Script {
            sends: VecDeque::from(sends),
            recvs: recvs.into_iter().map(|r| r.map(<[u8]>::to_vec)).collect(),
            ..Script::default()
        }
    }

    #[test]
    fn the_echo_is_what_came_back_before_the_end_of_the_stream() {
        let mut net = script([], [Err(SocketError::WouldBlock), Ok(b"hel"), Ok(b"lo"), Ok(b"")]);
        assert_eq!(exchange(&mut net, b"hello", DEADLINE), Ok(b"hello".to_vec()));
        assert_eq!(net.closed, [1]);
    }

    /// `weft explore examples/sim-cluster` (seed 33): the server's stack reset the
    /// connection after the message went out, and the client printed `echoed ""`
    /// as if the server had echoed nothing and closed.
    #[test]
    fn a_reset_after_the_message_went_out_is_no_echo() {
        let mut net = script([], [Err(SocketError::WouldBlock), Err(SocketError::ConnectionReset)]);
        assert_eq!(
            exchange(&mut net, b"hello", DEADLINE),
            Err(Failed::Broken(String::from(
                "connection-reset after 5 of 5 bytes were sent, 0 came back"
            )))
        );
        assert_eq!(net.closed, [1]);
        // Part of the echo back, then the reset: still no echo.
        let mut net = script([], [Ok(b"he"), Err(SocketError::ConnectionReset)]);
        assert_eq!(
            exchange(&mut net, b"hello", DEADLINE),
            Err(Failed::Broken(String::from(
                "connection-reset after 5 of 5 bytes were sent, 2 came back"
            )))
        );
        // A send that fails after part of the message went out.
        let mut net = script([Ok(2), Err(SocketError::ConnectionReset)], []);
        assert!(matches!(exchange(&mut net, b"hello", DEADLINE), Err(Failed::Broken(_))));
    }

    /// A server still booting refuses the connection before anything is sent:
    /// that is retried, as is a connect that fails and a deadline that passes.
    #[test]
    fn a_connection_refused_before_anything_went_out_is_retried() {
        let mut net = script([Err(SocketError::WouldBlock), Err(SocketError::ConnectionReset)], []);
        assert_eq!(exchange(&mut net, b"hello", DEADLINE), Err(Failed::Retry));
        assert_eq!(net.closed, [1]);
        let mut net = script([Err(SocketError::WouldBlock)], [Err(SocketError::ConnectionReset)]);
        assert_eq!(exchange(&mut net, b"hello", DEADLINE), Err(Failed::Retry));
        let mut net = Script { connects: VecDeque::from([Err(SocketError::Unreachable)]), ..Script::default() };
        assert_eq!(exchange(&mut net, b"hello", DEADLINE), Err(Failed::Retry));
        assert!(net.closed.is_empty());
        let mut net = Script::default();
        assert_eq!(exchange(&mut net, b"hello", 50 * MS), Err(Failed::Retry));
        assert_eq!(net.closed, [1]);
    }
}
