//! The 16550 UART at 0x3F8: the one channel to the host. It carries the
//! app's console bytes as they are, and *frames* — lines that start with
//! 0x1E (ASCII record separator) and a kind letter — that `weft boot` splits
//! off:
//!
//! ```text
//! \x1eE<topic>\x1f<message>\x1f<key>\x1f<value>…\n   a log event
//! \x1eP<filter>\x1f<i|o>\x1f<frame>\n                   a captured frame (`net-pcap`): the
//!                                                      net filter's index, direction, bytes
//! \x1eM<text>\n                                        a kernel message line (to stderr)
//! \x1eB<i>\x1f<component>\x1f<module>\x1f<offset>\x1f<func>\x1f<module name>\x1f<func name>\n
//!                                                      one raw wasm backtrace frame, which
//!                                                      `weft boot` symbolizes (host-posix
//!                                                      `symbolize`); empty fields are unknown
//! \x1eX<code>\n                                        the run's exit code; QEMU stops next
//! \x1ec\n                                              a literal 0x1E console byte
//! ```
//! Fields are percent-escaped (`%`, `\n`, 0x1E, 0x1F), so an event survives
//! any bytes and the host can rebuild exactly what the Linux `StderrLog`
//! prints, or import events into another log backend.

use core::fmt::{self, Write};

use crate::arch::{inb, outb};

const PORT: u16 = 0x3F8;
pub const FRAME: u8 = 0x1E;
pub const SEP: u8 = 0x1F;

pub fn init() {
    for (off, v) in [(1, 0x00), (3, 0x80), (0, 0x01), (1, 0x00), (3, 0x03), (2, 0xC7), (4, 0x0B)] {
        outb(PORT + off, v);
    }
}

fn put(b: u8) {
    while inb(PORT + 5) & 0x20 == 0 {}
    outb(PORT, b);
}

/// Console bytes, unframed (a literal 0x1E is sent as its own frame).
pub fn console(bytes: &[u8]) {
    for &b in bytes {
        if b == FRAME {
            for c in [FRAME, b'c', b'\n'] {
                put(c);
            }
        } else {
            put(b);
        }
    }
}

fn escaped(s: &[u8]) {
    for &b in s {
        match b {
            b'%' | b'\n' | FRAME | SEP => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                put(b'%');
                put(HEX[(b >> 4) as usize]);
                put(HEX[(b & 15) as usize]);
            }
            _ => put(b),
        }
    }
}

/// One log event.
pub fn event(topic: &str, message: &str, fields: &[(alloc::string::String, alloc::string::String)]) {
    put(FRAME);
    put(b'E');
    escaped(topic.as_bytes());
    put(SEP);
    escaped(message.as_bytes());
    for (k, v) in fields {
        put(SEP);
        escaped(k.as_bytes());
        put(SEP);
        escaped(v.as_bytes());
    }
    put(b'\n');
}

/// A frame a capturing filter saw (index among all net filters, in link
/// order); `weft boot` writes it to that filter's pcap file.
pub fn capture(filter: usize, inbound: bool, data: &[u8]) {
    put(FRAME);
    put(b'P');
    let _ = write!(Raw, "{filter}");
    put(SEP);
    put(if inbound { b'i' } else { b'o' });
    put(SEP);
    escaped(data);
    put(b'\n');
}

struct MessageWriter;

impl Write for MessageWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            match b {
                b'\n' => {
                    put(b'\n');
                    put(FRAME);
                    put(b'M');
                }
                FRAME => put(b'?'),
                _ => put(b),
            }
        }
        Ok(())
    }
}

/// A kernel message for the host's stderr (may span lines).
pub fn message(args: fmt::Arguments<'_>) {
    put(FRAME);
    put(b'M');
    let _ = MessageWriter.write_fmt(args);
    put(b'\n');
}

/// One raw backtrace frame (fields as the module docs list them).
pub fn backtrace_frame(fields: &[&str]) {
    put(FRAME);
    put(b'B');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            put(SEP);
        }
        escaped(f.as_bytes());
    }
    put(b'\n');
}

/// Tells the host the run's exit code.
pub fn exit_frame(code: u8) {
    put(FRAME);
    put(b'X');
    let _ = write!(Raw, "{code}");
    put(b'\n');
}

struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put);
        Ok(())
    }
}
