//! The kernel's leaf devices: `SerialConsole`, `TscClock`, `RdRandom`,
//! `SerialLog`, `SerialCapture` (`MemoryBlock`, `SeededRandom` are the
//! runtime's; `virtio::VirtioBlk` and `net::VirtioNet` live with their
//! drivers).

use alloc::string::String;
use core::arch::asm;

use weft_runtime::devices::{Capture, Direction};
use weft_runtime::{Clock, Console, Log, Random};

use crate::arch;
use crate::clock::Tsc;
use crate::serial;

pub struct SerialConsole;

impl Console for SerialConsole {
    fn write(&mut self, bytes: &[u8]) {
        static FIRST: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);
        if FIRST.swap(false, core::sync::atomic::Ordering::Relaxed) {
            crate::phase("output");
        }
        serial::console(bytes);
    }
}

pub struct TscClock(pub &'static Tsc);

impl Clock for TscClock {
    fn monotonic_now(&self) -> u64 {
        self.0.monotonic_now()
    }

    fn wall_now(&self) -> i64 {
        self.0.wall_now()
    }

    fn wait_until(&mut self, deadline: u64) {
        // The 1 kHz timer and the net devices' interrupts wake `hlt`; the
        // last stretch spins for precision. A received frame ends the wait
        // early (the caller re-checks its devices), as on Linux where the
        // wait is a `ppoll` over TAP fds. Interrupts are off from the check
        // to the `hlt`, so a frame arriving in between still wakes it.
        loop {
            let now = self.0.monotonic_now();
            if now >= deadline {
                return;
            }
            arch::cli();
            if crate::net::rx_pending() {
                arch::sti();
                return;
            }
            if deadline - now > 1_000_000 {
                arch::halt();
            } else {
                arch::sti();
                core::hint::spin_loop();
            }
        }
    }
}

/// The CPU's hardware random source.
pub struct RdRandom {
    seed: bool,
}

impl RdRandom {
    /// `None` when the CPU has neither RDSEED nor RDRAND.
    pub fn new() -> Option<RdRandom> {
        let (_, ebx7, _, _) = arch::cpuid(7, 0);
        let (_, _, ecx1, _) = arch::cpuid(1, 0);
        let rdseed = ebx7 & (1 << 18) != 0;
        let rdrand = ecx1 & (1 << 30) != 0;
        (rdseed || rdrand).then_some(RdRandom { seed: rdseed && !rdrand })
    }

    fn next(&self) -> u64 {
        // RDRAND may transiently fail (CF = 0); the Intel guidance is to retry.
        for _ in 0..1000 {
            let (v, ok): (u64, u8);
            // SAFETY: the instruction exists (checked by cpuid in `new`).
            unsafe {
                if self.seed {
                    asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
                } else {
                    asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
                }
            }
            if ok == 1 {
                return v;
            }
        }
        crate::fatal(format_args!("the CPU's random source failed 1000 times in a row"))
    }
}

impl Random for RdRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }
}

pub use weft_runtime::leaves::{MemoryBlock, SeededRandom};

/// Frames a capturing net filter (`net-pcap`) saw, sent on the serial line
/// for `weft boot` to write into the filter's pcap file. The number is the
/// filter's index among all net filters, as `Leaves::captures` is ordered.
pub struct SerialCapture(pub usize);

impl Capture for SerialCapture {
    fn frame(&mut self, _at: u64, direction: Direction, data: &[u8]) {
        serial::capture(self.0, direction == Direction::Inbound, data);
    }
}

/// Events as frames on the serial line (see `serial`).
pub struct SerialLog;

impl Log for SerialLog {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]) {
        serial::event(topic, message, fields);
    }
}
