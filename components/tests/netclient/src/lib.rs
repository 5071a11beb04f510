//! `netclient ADDR PORT MESSAGE [CONNECTIONS]`: connects to ADDR:PORT through
//! the stack, sends MESSAGE, half-closes and reads until the peer closes,
//! CONNECTIONS times (default 1), printing what came back. Connection attempts
//! are retried (the server may still be booting) for up to 30 s.
//!
//! Exit codes: 0 every echo matched, 1 a mismatch or the deadline passed,
//! 2 bad arguments.
#![no_std]

extern crate alloc;
use weft_guest as _;

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

/// Waits for the stack's next timer or `ms`, whichever comes first.
fn pause(ms: u64) {
    let cap = clock::monotonic_now() + ms * MS;
    clock::wait_until(sockets::next_deadline().map_or(cap, |d| d.min(cap)));
}

/// One connection: `Ok(echo)` or `Err(())` when it must be retried.
fn exchange(to: Endpoint, msg: &[u8], deadline: u64) -> Result<Vec<u8>, ()> {
    let s = sockets::tcp_connect(to).map_err(|_| pause(100))?;
    let (mut sent, mut shut, mut got) = (0, false, Vec::new());
    loop {
        if clock::monotonic_now() > deadline {
            sockets::close(s);
            return Err(());
        }
        let mut progress = false;
        if sent < msg.len() {
            match sockets::tcp_send(s, &msg[sent..]) {
                Ok(n) => {
                    sent += n as usize;
                    progress = true;
                }
                Err(SocketError::WouldBlock) => {}
                Err(_) => {
                    sockets::close(s);
                    pause(200);
                    return Err(());
                }
            }
        } else if !shut {
            shut = sockets::tcp_shutdown(s).is_ok();
            progress = shut;
        }
        match sockets::tcp_recv(s, 64 * 1024) {
            Ok(d) if d.is_empty() => {
                sockets::close(s);
                return Ok(got);
            }
            Ok(d) => {
                got.extend_from_slice(&d);
                progress = true;
            }
            Err(SocketError::WouldBlock) => {}
            Err(_) if sent == 0 => {
                sockets::close(s);
                pause(200);
                return Err(());
            }
            Err(_) => {
                sockets::close(s);
                return Ok(got);
            }
        }
        if !progress {
            pause(100);
        }
    }
}

struct Client;

impl Guest for Client {
    fn run(args: Vec<String>) -> u8 {
        let usage = "usage: netclient ADDR PORT MESSAGE [CONNECTIONS]\n";
        let parsed = (|| {
            let mut a = args.first()?.split('.').map(|o| o.parse::<u8>().ok());
            let addr = (a.next()??, a.next()??, a.next()??, a.next()??);
            let port = args.get(1)?.parse::<u16>().ok()?;
            let n = args.get(3).map_or(Some(1), |n| n.parse::<u32>().ok())?;
            Some((Endpoint { addr, port }, args.get(2)?.clone(), n))
        })();
        let Some((to, msg, n)) = parsed else {
            say(usage);
            return 2;
        };
        let deadline = clock::monotonic_now() + 30_000 * MS;
        let mut done = 0;
        while done < n {
            if clock::monotonic_now() > deadline {
                say(&format!("netclient: gave up after {done} of {n} connections\n"));
                return 1;
            }
            let Ok(got) = exchange(to, msg.as_bytes(), deadline) else { continue };
            let got = String::from_utf8_lossy(&got);
            say(&format!("netclient: echoed {got:?}\n"));
            if got != msg {
                return 1;
            }
            done += 1;
        }
        // Let the last ACKs go out before the stack stops running.
        pause(200);
        0
    }
}

export!(Client);
