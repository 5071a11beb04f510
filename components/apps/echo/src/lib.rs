//! `echo`: a TCP echo server on the `sockets` interface, serving many connections from one
//! thread: it tries every non-blocking operation, and when none made progress waits with
//! `clock.wait-until(min(next-deadline, now + 1 s))`.
//!
//! ```text
//! echo [PORT [MAX-CONNECTIONS]]   PORT defaults to 7; with MAX-CONNECTIONS it exits 0
//!                                 once that many connections have been served and closed
//! ```
//! Exit codes: 0 done, 1 the port could not be listened on, 2 bad arguments.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

// The allocator, panic handler and `cabi_realloc` come from weft-guest.
use weft_guest::serve::{self, SECOND};

wit_bindgen::generate!({
    world: "app",
    path: "../../../wit",
});

use weft::devices::sockets::{self, SocketError};
use weft::devices::{clock, console};

/// Bytes read per `tcp-recv` (a stack with jumbo frames or segmentation offload
/// holds 64 KiB segments), and most bytes held for one connection before it is read
/// no further (until the peer has taken some back).
const CHUNK: u32 = 64 * 1024;
const HOLD: usize = 256 * 1024;

/// How long, at most, the server keeps its stack running after the last connection
/// closed, until the peers have acknowledged everything (see `serve::linger`): long
/// enough for three retransmissions of a lost last segment (smoltcp resends after
/// 1 s, then 2 s and 4 s more). With 3 s, a last FIN lost twice (dropped by the link,
/// or arriving before the data it follows, which smoltcp discards) left the client
/// waiting for the end of its echo after the server had gone (`weft explore
/// examples/sim-cluster`: 10 of 10,000 seeds).
const LINGER: u64 = 10 * SECOND;

struct Conn {
    s: u32,
    /// Bytes read and not yet sent back: `buf[sent..]`.
    buf: Vec<u8>,
    sent: usize,
    eof: bool,
}

impl Conn {
    fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// `n` more bytes went out; the buffer is compacted only once the sent part
    /// outweighs the rest, so the bytes still pending move rarely.
    fn took(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent > self.buf.len() / 2 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }
}

fn say(s: &str) {
    console::write(s.as_bytes());
}

struct Echo;

impl Guest for Echo {
    fn run(args: Vec<String>) -> u8 {
        let usage = "usage: echo [PORT [MAX-CONNECTIONS]]\n";
        if args.len() > 2 {
            say(usage);
            return 2;
        }
        let port = match args.first().map(|a| a.parse::<u16>()) {
            None => 7,
            Some(Ok(p)) if p != 0 => p,
            _ => {
                say(usage);
                return 2;
            }
        };
        let max = match args.get(1).map(|a| a.parse::<u64>()) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                say(usage);
                return 2;
            }
        };
        let listener = match sockets::tcp_listen(port) {
            Ok(l) => l,
            Err(e) => {
                say(&format!("echo: cannot listen on port {port}: {} ({})\n", e.name(), e.message()));
                return 1;
            }
        };
        say(&format!("echo: listening on port {port}\n"));
        let mut conns: Vec<Conn> = Vec::new();
        let (mut accepted, mut served, mut bytes) = (0u64, 0u64, 0u64);
        loop {
            let mut progress = false;
            while max.is_none_or(|m| accepted < m) {
                match sockets::tcp_accept(listener) {
                    Ok((s, _)) => {
                        conns.push(Conn {
                            s,
                            buf: Vec::new(),
                            sent: 0,
                            eof: false,
                        });
                        accepted += 1;
                        progress = true;
                    }
                    Err(_) => break,
                }
            }
            conns.retain_mut(|c| {
                let mut keep = true;
                if !c.pending().is_empty() {
                    match sockets::tcp_send(c.s, c.pending()) {
                        Ok(n) => {
                            c.took(n as usize);
                            bytes += n as u64;
                            progress = true;
                        }
                        Err(SocketError::WouldBlock) => {}
                        Err(_) => keep = false,
                    }
                }
                if keep && !c.eof && c.pending().len() < HOLD {
                    match sockets::tcp_recv(c.s, CHUNK) {
                        Ok(d) if d.is_empty() => {
                            c.eof = true;
                            progress = true;
                        }
                        Ok(d) => {
                            c.buf.extend_from_slice(&d);
                            progress = true;
                        }
                        Err(SocketError::WouldBlock) => {}
                        Err(_) => keep = false,
                    }
                }
                if keep && c.eof && c.pending().is_empty() {
                    let _ = sockets::tcp_shutdown(c.s);
                    keep = false;
                }
                if !keep {
                    sockets::close(c.s);
                    served += 1;
                    progress = true;
                }
                keep
            });
            if max.is_some_and(|m| served >= m) {
                break;
            }
            if !progress {
                clock::wait_until(serve::idle_until(clock::monotonic_now(), sockets::next_deadline()));
            }
        }
        // Let the last FINs and ACKs go out before the stack stops running.
        serve::linger(LINGER, clock::monotonic_now, sockets::next_deadline, clock::wait_until);
        sockets::close(listener);
        say(&format!(
            "echo: served {served} connections, {bytes} bytes\n"
        ));
        0
    }
}

export!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bytes_stay_in_order_across_partial_sends() {
        let mut c = Conn { s: 0, buf: Vec::new(), sent: 0, eof: false };
        let mut out = Vec::new();
        let mut next = 0u8;
        for round in 0..50usize {
            for _ in 0..(round % 7 + 1) * 100 {
                c.buf.push(next);
                next = next.wrapping_add(1);
            }
            let n = (c.pending().len() * (round % 3 + 1)) / 3;
            out.extend_from_slice(&c.pending()[..n]);
            c.took(n);
            assert!(c.sent <= c.buf.len());
        }
        out.extend_from_slice(c.pending());
        let expect: Vec<u8> = (0..out.len()).map(|i| i as u8).collect();
        assert_eq!(out, expect);
    }
}
