//! `httpd`: an HTTP/1.1 server on the `sockets` interface, single-threaded like `echo`:
//! every connection is a state machine driven by non-blocking calls, and when nothing
//! progressed the app waits with `clock.wait-until(min(next-deadline, now + 1 s))`.
//!
//! ```text
//! httpd [PORT [MAX-REQUESTS]]   PORT defaults to 80; with MAX-REQUESTS it exits 0 once
//!                               that many responses have been sent
//! ```
//! Routes are in [`routes`], parsing in [`http`]. `/kv/KEY` is backed by the kvstore
//! format (the `kvstore` app's `format.rs` and `store.rs`, compiled in here) on the block
//! device `storage`; the store is scanned once at start into an in-memory index, and
//! every PUT is a committed, flushed, read-back record before it is answered.
//! Exit codes: 0 done, 1 the port could not be listened on, 2 bad arguments.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[path = "../../kvstore/src/format.rs"]
pub mod format;
pub mod http;
#[path = "../../kvstore/src/indexed.rs"]
pub mod indexed;
pub mod routes;
#[path = "../../kvstore/src/store.rs"]
pub mod store;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use weft_guest::serve::{self, SECOND};

wit_bindgen::generate!({
    world: "app",
    path: "../../../wit",
});

use weft::devices::sockets::{self, SocketError};
use weft::devices::{block, clock, console};

use http::{Parse, Response};

const MAX_HEAD: usize = 8 * 1024;
/// A value must fit one kvstore record (one 1 MiB write with header, key and padding).
const MAX_BODY: usize = 512 * 1024;
const CHUNK: u32 = 16 * 1024;
const ROLE: &str = "storage";

fn say(s: &str) {
    console::write(s.as_bytes());
}

block_device!();

/// The kvstore behind `/kv/`, or why it is not available.
struct Kv(Option<indexed::Indexed<Block>>);

impl Kv {
    fn open() -> Kv {
        let opened = (|| -> Result<indexed::Indexed<Block>, String> {
            let dev = block::open(ROLE).map_err(|e| format!("open {ROLE}: {}", e.name()))?;
            let g = block::info(dev).map_err(|e| format!("info {ROLE}: {}", e.name()))?;
            indexed::Indexed::open(Block(dev), g.sector_size, g.sector_count, g.read_only)
        })();
        match opened {
            Ok(kv) => {
                say(&format!("httpd: kvstore on `{ROLE}`: {} keys ({} valid records)\n", kv.len(), kv.valid));
                Kv(Some(kv))
            }
            Err(e) => {
                say(&format!("httpd: kvstore: {e}; /kv/ disabled\n"));
                Kv(None)
            }
        }
    }
}

impl routes::Kv for Kv {
    fn get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.as_ref()?.get(key).map(<[u8]>::to_vec)
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.0.as_mut().ok_or_else(|| String::from("no store"))?.put(key, value)
    }

    fn available(&self) -> bool {
        self.0.is_some()
    }
}

struct Conn {
    s: u32,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Answered `100 Continue` for the request in `inbuf`.
    continued: bool,
    /// No more requests will be read: close once `out` is sent.
    closing: bool,
}

impl Conn {
    /// Answer every complete request in `inbuf`, up to `budget` responses.
    fn process(&mut self, kv: &mut Kv, budget: &mut Option<u64>, handled: &mut u64) {
        while !self.closing && budget.is_none_or(|b| b > 0) {
            match http::parse(&self.inbuf, MAX_HEAD, MAX_BODY) {
                Parse::Incomplete { expect_continue } => {
                    if expect_continue && !self.continued {
                        self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                        self.continued = true;
                    }
                    return;
                }
                Parse::Done(req, used) => {
                    self.inbuf.drain(..used);
                    self.continued = false;
                    let resp = routes::route(&req, kv);
                    resp.write(req.keep_alive, &mut self.out);
                    if !req.keep_alive {
                        self.closing = true;
                    }
                    *handled += 1;
                    if let Some(b) = budget {
                        *b -= 1;
                    }
                }
                Parse::Error(status) => {
                    Response::status(status).write(false, &mut self.out);
                    self.inbuf.clear();
                    self.closing = true;
                    *handled += 1;
                    if let Some(b) = budget {
                        *b -= 1;
                    }
                }
            }
        }
    }
}

struct Httpd;

impl Guest for Httpd {
    fn run(args: Vec<String>) -> u8 {
        let usage = "usage: httpd [PORT [MAX-REQUESTS]]\n";
        if args.len() > 2 {
            say(usage);
            return 2;
        }
        let port = match args.first().map(|a| a.parse::<u16>()) {
            None => 80,
            Some(Ok(p)) if p != 0 => p,
            _ => {
                say(usage);
                return 2;
            }
        };
        let mut budget = match args.get(1).map(|a| a.parse::<u64>()) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                say(usage);
                return 2;
            }
        };
        let mut kv = Kv::open();
        let listener = match sockets::tcp_listen(port) {
            Ok(l) => l,
            Err(e) => {
                say(&format!("httpd: cannot listen on port {port}: {} ({})\n", e.name(), e.message()));
                return 1;
            }
        };
        say(&format!("httpd: listening on port {port}\n"));
        let mut conns: Vec<Conn> = Vec::new();
        let mut handled = 0u64;
        loop {
            let mut progress = false;
            let done = budget == Some(0);
            while !done {
                match sockets::tcp_accept(listener) {
                    Ok((s, _)) => {
                        conns.push(Conn {
                            s,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            continued: false,
                            closing: false,
                        });
                        progress = true;
                    }
                    Err(_) => break,
                }
            }
            conns.retain_mut(|c| {
                let mut alive = true;
                if !c.closing && budget != Some(0) && c.inbuf.len() < MAX_HEAD + MAX_BODY + 4096 {
                    match sockets::tcp_recv(c.s, CHUNK) {
                        Ok(d) if d.is_empty() => {
                            // The peer is done sending: answer what is complete, then close.
                            c.process(&mut kv, &mut budget, &mut handled);
                            c.closing = true;
                            progress = true;
                        }
                        Ok(d) => {
                            c.inbuf.extend_from_slice(&d);
                            c.process(&mut kv, &mut budget, &mut handled);
                            progress = true;
                        }
                        Err(SocketError::WouldBlock) => {}
                        Err(_) => alive = false,
                    }
                }
                if budget == Some(0) && !c.closing {
                    c.closing = true;
                }
                while alive && !c.out.is_empty() {
                    match sockets::tcp_send(c.s, &c.out) {
                        Ok(n) => {
                            c.out.drain(..n as usize);
                            progress = true;
                        }
                        Err(SocketError::WouldBlock) => break,
                        Err(_) => alive = false,
                    }
                }
                if alive && c.closing && c.out.is_empty() {
                    let _ = sockets::tcp_shutdown(c.s);
                    alive = false;
                }
                if !alive {
                    sockets::close(c.s);
                    progress = true;
                }
                alive
            });
            if budget == Some(0) && conns.is_empty() {
                break;
            }
            if !progress {
                clock::wait_until(serve::idle_until(clock::monotonic_now(), sockets::next_deadline()));
            }
        }
        // Let the last segments and FINs go out before the stack stops running.
        serve::linger(3 * SECOND, clock::monotonic_now, sockets::next_deadline, clock::wait_until);
        sockets::close(listener);
        say(&format!("httpd: answered {handled} requests\n"));
        0
    }
}

export!(Httpd);
