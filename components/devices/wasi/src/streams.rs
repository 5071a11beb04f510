//! `wasi:io/streams` and `wasi:io/error`: the console, files and TCP connections.
//!
//! `console.write` is never short and never fails, so the console stream has no buffer:
//! every write goes straight through, flushes complete at once and its pollable is
//! always ready. stdin is at end of file. File streams ([`crate::fs`]) read and write
//! memory or a block device at once, so they too are always ready. TCP streams
//! ([`crate::sockets`]) buffer and wait on the stack.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use crate::WasiOnWeft;
use crate::exports::wasi::filesystem::types::ErrorCode as FsCode;
use crate::exports::wasi::io::error::{Guest as ErrorGuest, GuestError};
use crate::exports::wasi::io::poll::Pollable as PollableHandle;
use crate::exports::wasi::io::streams::{
    Guest as StreamsGuest, GuestInputStream, GuestOutputStream, InputStreamBorrow, StreamError,
};
use crate::fs;
use crate::poll::Pollable;
use crate::sockets::tcp::Conn;
use crate::weft::devices::console;

/// What `check-write` grants on the console and on files. Writes larger than this are
/// still written whole (see the crate docs); the grant only tells well-behaved writers
/// how much to batch.
pub const WRITE_BUDGET: u64 = 64 * 1024;

/// `io/error`: a message, and the filesystem error code when a file operation failed.
pub struct IoError {
    message: String,
    pub fs: Option<FsCode>,
}

impl IoError {
    pub fn new(message: String) -> IoError {
        IoError { message, fs: None }
    }

    pub fn fs(code: FsCode) -> IoError {
        IoError {
            message: String::from(code.name()),
            fs: Some(code),
        }
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

/// An input stream.
pub enum InputStream {
    /// stdin: weft has no input device, so it is at end of file from the start.
    Stdin,
    File(fs::Reader),
    Tcp(Rc<Conn>),
}

impl GuestInputStream for InputStream {
    fn read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        match self {
            InputStream::Stdin => Err(StreamError::Closed),
            InputStream::File(r) => r.read(len),
            InputStream::Tcp(c) => c.read(len),
        }
    }

    fn blocking_read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        match self {
            InputStream::Tcp(c) => c.blocking_read(len),
            _ => self.read(len),
        }
    }

    fn skip(&self, len: u64) -> Result<u64, StreamError> {
        self.read(len).map(|bytes| bytes.len() as u64)
    }

    fn blocking_skip(&self, len: u64) -> Result<u64, StreamError> {
        self.blocking_read(len).map(|bytes| bytes.len() as u64)
    }

    /// End of file and files are "ready" (a read returns at once).
    fn subscribe(&self) -> PollableHandle {
        match self {
            InputStream::Tcp(c) => Pollable::io(crate::sockets::Watch::Read(c.clone())),
            _ => Pollable::ready(),
        }
    }
}

/// An output stream.
pub enum OutputStream {
    /// stdout and stderr.
    Console,
    File(fs::Writer),
    Tcp(Rc<Conn>),
}

impl OutputStream {
    fn put(bytes: &[u8]) {
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
        match self {
            OutputStream::Tcp(c) => c.check_write(),
            _ => Ok(WRITE_BUDGET),
        }
    }

    fn write(&self, contents: Vec<u8>) -> Result<(), StreamError> {
        match self {
            OutputStream::Console => {
                Self::put(&contents);
                Ok(())
            }
            OutputStream::File(w) => w.write(&contents),
            OutputStream::Tcp(c) => c.write(&contents),
        }
    }

    fn blocking_write_and_flush(&self, contents: Vec<u8>) -> Result<(), StreamError> {
        self.write(contents)?;
        self.blocking_flush()
    }

    fn flush(&self) -> Result<(), StreamError> {
        match self {
            OutputStream::Tcp(c) => c.flush(),
            _ => Ok(()),
        }
    }

    fn blocking_flush(&self) -> Result<(), StreamError> {
        match self {
            OutputStream::Tcp(c) => c.blocking_flush(),
            _ => Ok(()),
        }
    }

    fn subscribe(&self) -> PollableHandle {
        match self {
            OutputStream::Tcp(c) => Pollable::io(crate::sockets::Watch::Write(c.clone())),
            _ => Pollable::ready(),
        }
    }

    fn write_zeroes(&self, len: u64) -> Result<(), StreamError> {
        let mut zeroes = Vec::new();
        for n in zero_chunks(len) {
            zeroes.resize(n, 0);
            self.write(zeroes.clone())?;
        }
        Ok(())
    }

    fn blocking_write_zeroes_and_flush(&self, len: u64) -> Result<(), StreamError> {
        self.write_zeroes(len)?;
        self.blocking_flush()
    }

    /// check-write, then read at most that much from `src`, then write it; the first
    /// error ends the splice.
    fn splice(&self, src: InputStreamBorrow<'_>, len: u64) -> Result<u64, StreamError> {
        let grant = self.check_write()?.min(len);
        if grant == 0 {
            return Ok(0);
        }
        let bytes = src.get::<InputStream>().read(grant)?;
        let n = bytes.len() as u64;
        self.write(bytes)?;
        Ok(n)
    }

    /// Block until some input is read, then write and flush it.
    fn blocking_splice(&self, src: InputStreamBorrow<'_>, len: u64) -> Result<u64, StreamError> {
        let bytes = src
            .get::<InputStream>()
            .blocking_read(len.min(WRITE_BUDGET))?;
        let n = bytes.len() as u64;
        self.blocking_write_and_flush(bytes)?;
        Ok(n)
    }
}

impl StreamsGuest for WasiOnWeft {
    type InputStream = InputStream;
    type OutputStream = OutputStream;
}

/// A new output stream handle onto the console.
pub fn console() -> crate::exports::wasi::io::streams::OutputStream {
    crate::exports::wasi::io::streams::OutputStream::new(OutputStream::Console)
}

/// A new stdin handle.
pub fn stdin() -> crate::exports::wasi::io::streams::InputStream {
    crate::exports::wasi::io::streams::InputStream::new(InputStream::Stdin)
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
        let s = InputStream::Stdin;
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
        let e = IoError::fs(FsCode::Io);
        assert_eq!(
            (e.to_debug_string().as_str(), e.fs),
            ("io", Some(FsCode::Io))
        );
    }
}
