//! `wasi:io/streams` and `wasi:io/error`: stdout and stderr onto `console`, stdin at end
//! of file.
//!
//! `console.write` is never short and never fails, so an output stream has no buffer of
//! its own: every write goes straight through, flushes complete at once and the
//! stream's pollable is always ready.

use alloc::string::String;
use alloc::vec::Vec;

use crate::WasiOnWeft;
use crate::exports::wasi::io::error::{Guest as ErrorGuest, GuestError};
use crate::exports::wasi::io::poll::Pollable as PollableHandle;
use crate::exports::wasi::io::streams::{
    Guest as StreamsGuest, GuestInputStream, GuestOutputStream, InputStreamBorrow, StreamError,
};
use crate::poll::Pollable;
use crate::weft::devices::console;

/// What `check-write` grants. Writes larger than this are still written whole (see the
/// crate docs); the grant only tells well-behaved writers how much to batch.
pub const WRITE_BUDGET: u64 = 64 * 1024;

/// `io/error`: a message. No operation of this component fails today, so none is
/// created; a future failing stream reports its cause through [`IoError::new`].
pub struct IoError {
    message: String,
}

impl IoError {
    pub fn new(message: String) -> IoError {
        IoError { message }
    }
}

impl GuestError for IoError {
    fn to_debug_string(&self) -> String {
        self.message.clone()
    }
}

impl ErrorGuest for WasiOnWeft {
    type Error = IoError;
}

/// An input stream: only stdin exists, and weft has no input device, so it is at end of
/// file from the start.
pub struct InputStream {
    _eof: (),
}

impl InputStream {
    pub fn eof() -> InputStream {
        InputStream { _eof: () }
    }
}

impl GuestInputStream for InputStream {
    fn read(&self, _len: u64) -> Result<Vec<u8>, StreamError> {
        Err(StreamError::Closed)
    }

    fn blocking_read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        self.read(len)
    }

    fn skip(&self, len: u64) -> Result<u64, StreamError> {
        self.read(len).map(|bytes| bytes.len() as u64)
    }

    fn blocking_skip(&self, len: u64) -> Result<u64, StreamError> {
        self.skip(len)
    }

    /// End of file is "ready" (a read returns at once, with `closed`).
    fn subscribe(&self) -> PollableHandle {
        Pollable::ready()
    }
}

/// An output stream onto the console: stdout and stderr are both this.
pub struct OutputStream {
    _console: (),
}

impl OutputStream {
    fn put(&self, bytes: &[u8]) {
        if !bytes.is_empty() {
            console::write(bytes);
        }
    }
}

/// Zeroes to write in pieces of at most [`WRITE_BUDGET`] bytes: the sizes of the pieces.
pub fn zero_chunks(len: u64) -> impl Iterator<Item = usize> {
    let full = len / WRITE_BUDGET;
    let rest = len % WRITE_BUDGET;
    (0..full)
        .map(|_| WRITE_BUDGET as usize)
        .chain((rest > 0).then_some(rest as usize))
}

impl GuestOutputStream for OutputStream {
    fn check_write(&self) -> Result<u64, StreamError> {
        Ok(WRITE_BUDGET)
    }

    fn write(&self, contents: Vec<u8>) -> Result<(), StreamError> {
        self.put(&contents);
        Ok(())
    }

    fn blocking_write_and_flush(&self, contents: Vec<u8>) -> Result<(), StreamError> {
        self.put(&contents);
        Ok(())
    }

    fn flush(&self) -> Result<(), StreamError> {
        Ok(())
    }

    fn blocking_flush(&self) -> Result<(), StreamError> {
        Ok(())
    }

    fn subscribe(&self) -> PollableHandle {
        Pollable::ready()
    }

    fn write_zeroes(&self, len: u64) -> Result<(), StreamError> {
        let mut zeroes = Vec::new();
        for n in zero_chunks(len) {
            zeroes.resize(n, 0);
            self.put(&zeroes);
        }
        Ok(())
    }

    fn blocking_write_zeroes_and_flush(&self, len: u64) -> Result<(), StreamError> {
        self.write_zeroes(len)
    }

    /// check-write, then read at most that much from `src`, then write it; the first
    /// error ends the splice (stdin, the only input, gives `closed`).
    fn splice(&self, src: InputStreamBorrow<'_>, len: u64) -> Result<u64, StreamError> {
        let grant = self.check_write()?.min(len);
        let bytes = src.get::<InputStream>().read(grant)?;
        let n = bytes.len() as u64;
        self.write(bytes)?;
        Ok(n)
    }

    /// Nothing here ever blocks, so this is `splice`.
    fn blocking_splice(&self, src: InputStreamBorrow<'_>, len: u64) -> Result<u64, StreamError> {
        self.splice(src, len)
    }
}

impl StreamsGuest for WasiOnWeft {
    type InputStream = InputStream;
    type OutputStream = OutputStream;
}

/// A new output stream handle onto the console.
pub fn console() -> crate::exports::wasi::io::streams::OutputStream {
    crate::exports::wasi::io::streams::OutputStream::new(OutputStream { _console: () })
}

/// A new stdin handle.
pub fn stdin() -> crate::exports::wasi::io::streams::InputStream {
    crate::exports::wasi::io::streams::InputStream::new(InputStream::eof())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroes_in_budget_sized_pieces() {
        assert_eq!(zero_chunks(0).count(), 0);
        assert_eq!(zero_chunks(5).collect::<Vec<_>>(), vec![5]);
        let b = WRITE_BUDGET as usize;
        assert_eq!(zero_chunks(WRITE_BUDGET).collect::<Vec<_>>(), vec![b]);
        assert_eq!(
            zero_chunks(2 * WRITE_BUDGET + 1).collect::<Vec<_>>(),
            vec![b, b, 1]
        );
    }

    #[test]
    fn stdin_is_at_end_of_file() {
        let s = InputStream::eof();
        assert!(matches!(s.read(0), Err(StreamError::Closed)));
        assert!(matches!(s.blocking_read(10), Err(StreamError::Closed)));
        assert!(matches!(s.skip(10), Err(StreamError::Closed)));
        assert!(matches!(s.blocking_skip(10), Err(StreamError::Closed)));
    }

    #[test]
    fn io_error_message() {
        assert_eq!(
            IoError::new("disk on fire".into()).to_debug_string(),
            "disk on fire"
        );
    }
}
