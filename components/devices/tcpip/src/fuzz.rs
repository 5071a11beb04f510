//! The fuzz hook over the stack's frame path (`fuzz/`, target `tcpip_frames`;
//! a seeded smoke run of it is a unit test). Compiled for tests and for `cargo fuzz`
//! (which includes this file by path) only.
//!
//! Two stacks on an in-memory cable run a real exchange — a TCP connection that echoes
//! what the client sends, UDP both ways, ARP and ping — while the input decides, one
//! record at a time, what happens to the frames in flight: corrupt a byte, truncate,
//! drop, duplicate, reorder, or inject raw bytes, plus how far time moves and what the
//! apps do. So the fuzzer reaches deep TCP states (established, closing, retransmitting)
//! with damaged frames, not only frames the first parser rejects.
//!
//! What must hold: nothing panics, every frame a stack sends is a whole Ethernet frame of
//! at most the MTU, and the socket set stays bounded.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::config::StackConfig;
use crate::stack::{Link, Net, SockErr, Stack};

type Wire = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// Frames one wire holds at most (the fuzzer can duplicate frames).
const WIRE_MAX: usize = 512;

struct Cable {
    inp: Wire,
    out: Wire,
}

impl Net for Cable {
    fn receive(&mut self, max: u32) -> Vec<Vec<u8>> {
        let mut q = self.inp.borrow_mut();
        let n = (max as usize).min(q.len());
        q.drain(..n).collect()
    }

    fn send(&mut self, frames: &[Vec<u8>]) -> Result<usize, ()> {
        for f in frames {
            assert!(
                (14..=14 + 1500).contains(&f.len()),
                "the stack sent a frame of {} bytes",
                f.len()
            );
        }
        let mut q = self.out.borrow_mut();
        let room = WIRE_MAX.saturating_sub(q.len()).min(frames.len());
        q.extend(frames[..room].iter().cloned());
        Ok(room)
    }

    fn log(&mut self, _: &str, _: &[(&str, String)]) {}
}

const SRV_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];
const CLI_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn cfg(last: u8) -> StackConfig {
    StackConfig {
        ip: [10, 0, 0, last],
        prefix: 24,
        gateway: Some([10, 0, 0, 254]),
        tcp_rx: 2048,
        tcp_tx: 2048,
        udp_buf: 2048,
        backlog: 2,
        probe_wait_ns: 0,
    }
}

/// The input, read front to back; past its end every read is 0.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
}

struct App {
    listener: u32,
    udp: u32,
    accepted: Vec<u32>,
    /// The client's connection (reconnected when it ends).
    conn: Option<u32>,
    cudp: u32,
}

/// Runs one input through the two stacks (see the module docs).
pub fn frames(data: &[u8]) {
    let a: Wire = Rc::default();
    let b: Wire = Rc::default();
    let mut srv = Stack::new(
        Cable {
            inp: a.clone(),
            out: b.clone(),
        },
        "fuzz",
        Link { mac: SRV_MAC, mtu: 1500, checksum_offload: false },
        cfg(2),
        1,
        0,
    );
    let mut cli = Stack::new(
        Cable {
            inp: b.clone(),
            out: a.clone(),
        },
        "fuzz",
        Link { mac: CLI_MAC, mtu: 1500, checksum_offload: false },
        cfg(1),
        2,
        0,
    );
    let mut app = App {
        listener: srv.tcp_listen(0, 80).expect("listen"),
        udp: srv.udp_bind(0, 53).expect("bind"),
        accepted: Vec::new(),
        conn: cli.tcp_connect(0, ([10, 0, 0, 2], 80)).ok(),
        cudp: cli.udp_bind(0, 5353).expect("bind"),
    };
    let mut t: u64 = 0;
    let mut input = Input(data);
    // Records until the input runs out, at most a bounded number of them.
    for _ in 0..4096 {
        if input.0.is_empty() {
            break;
        }
        let op = input.byte();
        // Which direction a frame operation applies to: towards the server (a) or the
        // client (b).
        let wire = if op & 0x80 == 0 { &a } else { &b };
        match op & 0x0f {
            0..=2 => {
                t += u64::from(input.byte()) * 200_000 + 1000;
                step(&mut srv, &mut cli, &mut app, t);
            }
            3 => {
                let at = input.u16() as usize;
                let x = input.byte().max(1);
                if let Some(f) = wire.borrow_mut().front_mut()
                    && !f.is_empty()
                {
                    let i = at % f.len();
                    f[i] ^= x;
                }
            }
            4 => {
                wire.borrow_mut().pop_front();
            }
            5 => {
                let mut q = wire.borrow_mut();
                if let Some(f) = q.front().cloned()
                    && q.len() < WIRE_MAX
                {
                    q.push_back(f);
                }
            }
            6 => {
                let at = input.u16() as usize;
                if let Some(f) = wire.borrow_mut().front_mut() {
                    f.truncate(at % (f.len() + 1));
                }
            }
            7 => {
                let mut q = wire.borrow_mut();
                if q.len() > 1 {
                    let f = q.pop_front().unwrap();
                    q.push_back(f);
                }
            }
            8 => {
                // Raw bytes, possibly far over the MTU (a device must never hand those
                // up, but the stack must survive them).
                let n = input.u16() as usize;
                let f = input.bytes(n).to_vec();
                let mut q = wire.borrow_mut();
                if q.len() < WIRE_MAX {
                    q.push_back(f);
                }
            }
            9 => {
                // Overwrite a run of bytes of the frame in flight.
                let at = input.u16() as usize;
                let n = input.byte() as usize;
                let src = input.bytes(n).to_vec();
                if let Some(f) = wire.borrow_mut().front_mut() {
                    for (i, v) in src.iter().enumerate() {
                        if let Some(d) = f.get_mut(at + i) {
                            *d = *v;
                        }
                    }
                }
            }
            10 => {
                let n = input.byte() as usize * 8 + 1;
                let data = vec![op; n];
                if let Some(c) = app.conn {
                    let _ = cli.tcp_send(t, c, &data);
                }
                let _ = cli.udp_send_to(t, app.cudp, &data[..n.min(600)], ([10, 0, 0, 2], 53));
            }
            11 => {
                if let Some(c) = app.conn {
                    let _ = cli.tcp_shutdown(t, c);
                }
            }
            12 => {
                if let Some(c) = app.conn.take() {
                    cli.close(t, c);
                }
                app.conn = cli.tcp_connect(t, ([10, 0, 0, 2], 80)).ok();
            }
            13 => {
                if let Some(s) = app.accepted.pop() {
                    srv.close(t, s);
                }
            }
            14 => {
                // A big jump in time: retransmission and keep-alive timers, timeouts.
                t += u64::from(input.u16()) * 10_000_000;
                step(&mut srv, &mut cli, &mut app, t);
            }
            _ => {
                let d = srv.next_deadline(t);
                assert!(d.is_none_or(|d| d >= t), "deadline {d:?} before now {t}");
                let _ = cli.next_deadline(t);
            }
        }
    }
    for _ in 0..8 {
        t += 50_000_000;
        step(&mut srv, &mut cli, &mut app, t);
    }
    assert!(srv.socket_count() <= 64, "{} sockets", srv.socket_count());
}

/// Both apps take one turn: the server accepts and echoes (TCP and UDP), the client
/// reads what came back and reconnects when its connection is over.
fn step(srv: &mut Stack<Cable>, cli: &mut Stack<Cable>, app: &mut App, t: u64) {
    while let Ok((s, _)) = srv.tcp_accept(t, app.listener) {
        app.accepted.push(s);
        if app.accepted.len() > 8 {
            let old = app.accepted.remove(0);
            srv.close(t, old);
        }
    }
    let mut gone = Vec::new();
    for &s in &app.accepted {
        match srv.tcp_recv(t, s, 4096) {
            Ok(d) if d.is_empty() => {
                let _ = srv.tcp_shutdown(t, s);
            }
            Ok(d) => {
                let _ = srv.tcp_send(t, s, &d);
            }
            Err(SockErr::WouldBlock) => {}
            Err(_) => gone.push(s),
        }
    }
    for s in gone {
        app.accepted.retain(|&x| x != s);
        srv.close(t, s);
    }
    while let Ok((d, from)) = srv.udp_recv_from(t, app.udp, 2048) {
        let _ = srv.udp_send_to(t, app.udp, &d, from);
    }
    while cli.udp_recv_from(t, app.cudp, 2048).is_ok() {}
    if let Some(c) = app.conn {
        match cli.tcp_recv(t, c, 4096) {
            Ok(d) if d.is_empty() => {
                cli.close(t, c);
                app.conn = None;
            }
            Ok(_) | Err(SockErr::WouldBlock) => {}
            Err(_) => {
                cli.close(t, c);
                app.conn = None;
            }
        }
    }
    srv.poll(t);
    cli.poll(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_guest::Rng;

    /// The CI smoke run of the fuzz target: seeded random inputs, biased towards
    /// time steps and client sends so connections get somewhere, for about a second.
    /// Real fuzzing: `cargo fuzz run tcpip_frames` (docs/fuzzing.md).
    #[test]
    fn fuzz_hook_smoke() {
        let mut rng = Rng::new(7);
        let start = std::time::Instant::now();
        let mut runs = 0;
        while runs < 20 || (start.elapsed().as_millis() < 1000 && runs < 2000) {
            let mut input = Vec::new();
            for _ in 0..rng.below(200) {
                match rng.below(4) {
                    0 => input.extend_from_slice(&[0, rng.below(20) as u8]),
                    1 => input.extend_from_slice(&[10, rng.below(50) as u8]),
                    _ => {
                        let mut rec = vec![0u8; 1 + rng.below(12) as usize];
                        rng.fill(&mut rec);
                        input.extend_from_slice(&rec);
                    }
                }
            }
            frames(&input);
            runs += 1;
        }
        frames(&[]);
        frames(&[8, 0xff, 0xff]);
    }
}
