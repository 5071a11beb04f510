//! `wasi:sockets/tcp` on weft's TCP calls.
//!
//! `bind` reserves its port at once with `tcp-listen` (weft has no bind of its own), so
//! `address-in-use` and the port picked for port 0 are known when `bind` returns, as
//! programs expect; `listen` then only starts accepting. A bound socket that connects
//! instead gives the port back: an outgoing connection's local port is the stack's
//! choice, and its `local-address` is `0.0.0.0:0` (weft does not report it).
//!
//! A connection ([`Conn`]) keeps what it received but was not read yet, what was written
//! but not taken by the stack yet, and its first error. Dropping the last handle on it
//! sends what is left (for at most [`LINGER`]) and closes it gracefully.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use super::addr::{self, ANY};
use crate::exports::wasi::io::error::Error;
use crate::exports::wasi::io::streams::{InputStream, OutputStream, StreamError};
use crate::exports::wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, NetworkBorrow,
};
use crate::exports::wasi::sockets::tcp::{self, Duration, GuestTcpSocket, ShutdownType, TcpSocket};
use crate::poll::{self, Pollable};
use crate::streams::{self, IoError};
use crate::weft::devices::clock;
use crate::weft::devices::sockets::{self as net, Endpoint, SocketError};
use crate::{WasiOnWeft, sockets::Watch};

/// Most bytes asked of `tcp-recv` or given to `tcp-send` at once.
pub const CHUNK: u32 = 64 * 1024;

/// Bytes written but not yet taken by the stack before `check-write` grants nothing.
pub const TX_MAX: usize = 64 * 1024;

/// How long a closing connection waits for the stack to take what is left to send.
pub const LINGER: u64 = 2_000_000_000;

/// An established (or establishing) connection.
pub struct Conn {
    s: u32,
    rx: RefCell<Vec<u8>>,
    eof: Cell<bool>,
    /// No more reading: `shutdown(receive)`, or an error was reported.
    rd_closed: Cell<bool>,
    tx: RefCell<Vec<u8>>,
    /// `shutdown(send)` done.
    wr_closed: Cell<bool>,
    failed: Cell<Option<ErrorCode>>,
}

fn failure(code: ErrorCode) -> StreamError {
    StreamError::LastOperationFailed(Error::new(IoError::new(format!("tcp: {}", code.name()))))
}

impl Conn {
    pub fn new(s: u32) -> Rc<Conn> {
        Rc::new(Conn {
            s,
            rx: RefCell::new(Vec::new()),
            eof: Cell::new(false),
            rd_closed: Cell::new(false),
            tx: RefCell::new(Vec::new()),
            wr_closed: Cell::new(false),
            failed: Cell::new(None),
        })
    }

    /// Try to receive if nothing is pending; whether a read would return at once.
    pub fn readable(&self) -> bool {
        if !self.rx.borrow().is_empty()
            || self.eof.get()
            || self.rd_closed.get()
            || self.failed.get().is_some()
        {
            return true;
        }
        match net::tcp_recv(self.s, CHUNK) {
            Ok(d) if d.is_empty() => self.eof.set(true),
            Ok(d) => *self.rx.borrow_mut() = d,
            Err(SocketError::WouldBlock) => return false,
            Err(e) => self.failed.set(Some(addr::code(e))),
        }
        true
    }

    pub fn read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        if self.rd_closed.get() {
            return Err(StreamError::Closed);
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        self.readable();
        let mut rx = self.rx.borrow_mut();
        if !rx.is_empty() {
            let n = rx.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            return Ok(rx.drain(..n).collect());
        }
        if self.eof.get() {
            return Err(StreamError::Closed);
        }
        if let Some(e) = self.failed.get() {
            self.rd_closed.set(true);
            return Err(failure(e));
        }
        Ok(Vec::new())
    }

    pub fn blocking_read(&self, len: u64) -> Result<Vec<u8>, StreamError> {
        loop {
            let d = self.read(len)?;
            if !d.is_empty() || len == 0 {
                return Ok(d);
            }
            poll::wait_io();
        }
    }

    /// Hand the stack as much of the send buffer as it takes.
    fn push(&self) -> Result<(), ErrorCode> {
        if let Some(e) = self.failed.get() {
            return Err(e);
        }
        let mut tx = self.tx.borrow_mut();
        while !tx.is_empty() {
            let n = tx.len().min(CHUNK as usize);
            match net::tcp_send(self.s, &tx[..n]) {
                Ok(0) | Err(SocketError::WouldBlock) => break,
                Ok(k) => {
                    tx.drain(..(k as usize).min(n));
                }
                Err(e) => {
                    let e = addr::code(e);
                    self.failed.set(Some(e));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    pub fn writable(&self) -> bool {
        self.push().is_err() || self.wr_closed.get() || self.tx.borrow().len() < TX_MAX
    }

    pub fn check_write(&self) -> Result<u64, StreamError> {
        if self.wr_closed.get() {
            return Err(StreamError::Closed);
        }
        self.push().map_err(failure)?;
        Ok(TX_MAX.saturating_sub(self.tx.borrow().len()) as u64)
    }

    pub fn write(&self, bytes: &[u8]) -> Result<(), StreamError> {
        if self.wr_closed.get() {
            return Err(StreamError::Closed);
        }
        if let Some(e) = self.failed.get() {
            return Err(failure(e));
        }
        self.tx.borrow_mut().extend_from_slice(bytes);
        self.push().map_err(failure)
    }

    pub fn flush(&self) -> Result<(), StreamError> {
        self.push().map_err(failure)
    }

    pub fn blocking_flush(&self) -> Result<(), StreamError> {
        loop {
            self.flush()?;
            if self.tx.borrow().is_empty() {
                return Ok(());
            }
            poll::wait_io();
        }
    }

    /// Send what is left, for at most `limit` nanoseconds.
    fn drain(&self, limit: u64) {
        let end = clock::monotonic_now().saturating_add(limit);
        while self.push().is_ok() && !self.tx.borrow().is_empty() {
            let now = clock::monotonic_now();
            if now >= end {
                break;
            }
            clock::wait_until(poll::io_wake(end, now, net::next_deadline()));
        }
    }

    fn shutdown_send(&self) -> Result<(), ErrorCode> {
        if self.wr_closed.replace(true) {
            return Ok(());
        }
        self.drain(LINGER);
        match net::tcp_shutdown(self.s) {
            Ok(()) | Err(SocketError::NotConnected) => Ok(()),
            Err(e) => Err(addr::code(e)),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.drain(LINGER);
        super::close(self.s);
    }
}

/// Whether a connect finished: established, still in progress, or refused.
fn connect_status(conn: &Conn) -> Result<bool, ErrorCode> {
    // Until a connection is established `tcp-send` says `would-block`; once it is, an
    // empty send is taken (host stack) or refused as `invalid-argument` (tcpip).
    match net::tcp_send(conn.s, &[]) {
        Ok(_) | Err(SocketError::InvalidArgument) => Ok(true),
        Err(SocketError::WouldBlock) => Ok(false),
        Err(e) => Err(addr::connect_code(e)),
    }
}

pub enum State {
    Unbound,
    /// The port is reserved by a weft listener.
    Bound {
        local: Endpoint,
        listener: u32,
    },
    Listening {
        local: Endpoint,
        listener: u32,
        queue: VecDeque<(u32, Endpoint)>,
    },
    Connecting {
        remote: Endpoint,
        conn: Rc<Conn>,
    },
    Connected {
        local: Endpoint,
        remote: Endpoint,
        conn: Rc<Conn>,
    },
    /// A connect failed: the socket is done.
    Closed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Bind,
    Listen,
    Connect,
}

/// Options WASI lets a program set; weft has no knobs for them, so they are kept and
/// reported back only.
#[derive(Clone, Copy)]
struct Opts {
    keep_alive: bool,
    keep_idle: Duration,
    keep_interval: Duration,
    keep_count: u32,
    hop_limit: u8,
    rx_buf: u64,
    tx_buf: u64,
}

const DEFAULT_OPTS: Opts = Opts {
    keep_alive: false,
    keep_idle: 7200 * 1_000_000_000,
    keep_interval: 75 * 1_000_000_000,
    keep_count: 9,
    hop_limit: 64,
    rx_buf: 64 * 1024,
    tx_buf: 64 * 1024,
};

pub struct Sock {
    state: State,
    pending: Pending,
    opts: Opts,
}

impl Sock {
    /// Close a reserved or listening port and connections waiting to be accepted.
    fn release(&mut self) {
        match core::mem::replace(&mut self.state, State::Closed) {
            State::Bound { listener, .. } => super::close(listener),
            State::Listening {
                listener, queue, ..
            } => {
                for (s, _) in queue {
                    super::close(s);
                }
                super::close(listener);
            }
            other => self.state = other,
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether a TCP socket's pollable is ready: a connect finished, a connection waits
/// (kept for `accept`), or anything else (ready at once).
pub fn ready(sock: &Rc<RefCell<Sock>>) -> bool {
    let mut s = sock.borrow_mut();
    match &mut s.state {
        State::Connecting { conn, .. } => !matches!(connect_status(conn), Ok(false)),
        State::Listening {
            listener, queue, ..
        } => {
            if !queue.is_empty() {
                return true;
            }
            match net::tcp_accept(*listener) {
                Ok((c, remote)) => {
                    queue.push_back((super::opened(c), remote));
                    true
                }
                Err(SocketError::WouldBlock) => false,
                Err(_) => true,
            }
        }
        _ => true,
    }
}

/// A `wasi:sockets/tcp` socket.
pub struct Tcp(Rc<RefCell<Sock>>);

impl Tcp {
    pub fn new() -> Tcp {
        Tcp::with(State::Unbound, DEFAULT_OPTS)
    }

    fn with(state: State, opts: Opts) -> Tcp {
        Tcp(Rc::new(RefCell::new(Sock {
            state,
            pending: Pending::None,
            opts,
        })))
    }
}

impl Default for Tcp {
    fn default() -> Tcp {
        Tcp::new()
    }
}

fn streams(conn: &Rc<Conn>) -> (InputStream, OutputStream) {
    (
        InputStream::new(streams::InputStream::Tcp(conn.clone())),
        OutputStream::new(streams::OutputStream::Tcp(conn.clone())),
    )
}

impl tcp::Guest for WasiOnWeft {
    type TcpSocket = Tcp;
}

fn nonzero<T: PartialEq + Default>(v: T) -> Result<T, ErrorCode> {
    if v == T::default() {
        Err(ErrorCode::InvalidArgument)
    } else {
        Ok(v)
    }
}

impl GuestTcpSocket for Tcp {
    fn start_bind(&self, _: NetworkBorrow<'_>, local: IpSocketAddress) -> Result<(), ErrorCode> {
        let mut s = self.0.borrow_mut();
        if s.pending != Pending::None || !matches!(s.state, State::Unbound) {
            return Err(ErrorCode::InvalidState);
        }
        let ep = addr::endpoint(&local).ok_or(ErrorCode::InvalidArgument)?;
        let (listener, port) = super::bind_port(ep.port, net::tcp_listen)?;
        s.state = State::Bound {
            local: Endpoint {
                addr: ep.addr,
                port,
            },
            listener,
        };
        s.pending = Pending::Bind;
        Ok(())
    }

    fn finish_bind(&self) -> Result<(), ErrorCode> {
        let mut s = self.0.borrow_mut();
        if s.pending != Pending::Bind {
            return Err(ErrorCode::NotInProgress);
        }
        s.pending = Pending::None;
        Ok(())
    }

    fn start_connect(
        &self,
        _: NetworkBorrow<'_>,
        remote: IpSocketAddress,
    ) -> Result<(), ErrorCode> {
        let mut s = self.0.borrow_mut();
        if s.pending != Pending::None {
            return Err(ErrorCode::ConcurrencyConflict);
        }
        if !matches!(s.state, State::Unbound | State::Bound { .. }) {
            return Err(ErrorCode::InvalidState);
        }
        let ep = addr::endpoint(&remote).ok_or(ErrorCode::InvalidArgument)?;
        if ep.port == 0 || ep.addr == (0, 0, 0, 0) || ep.addr.0 >= 224 {
            return Err(ErrorCode::InvalidArgument);
        }
        s.release();
        match net::tcp_connect(ep) {
            Ok(c) => {
                s.state = State::Connecting {
                    remote: ep,
                    conn: Conn::new(super::opened(c)),
                };
                s.pending = Pending::Connect;
                Ok(())
            }
            Err(e) => {
                s.state = State::Closed;
                Err(addr::connect_code(e))
            }
        }
    }

    fn finish_connect(&self) -> Result<(InputStream, OutputStream), ErrorCode> {
        let mut s = self.0.borrow_mut();
        let (remote, conn) = match (&s.pending, &s.state) {
            (Pending::Connect, State::Connecting { remote, conn }) => (*remote, conn.clone()),
            _ => return Err(ErrorCode::NotInProgress),
        };
        match connect_status(&conn) {
            Ok(false) => Err(ErrorCode::WouldBlock),
            Ok(true) => {
                s.pending = Pending::None;
                let io = streams(&conn);
                s.state = State::Connected {
                    local: ANY,
                    remote,
                    conn,
                };
                Ok(io)
            }
            Err(e) => {
                s.pending = Pending::None;
                s.state = State::Closed;
                Err(e)
            }
        }
    }

    fn start_listen(&self) -> Result<(), ErrorCode> {
        let mut s = self.0.borrow_mut();
        if s.pending != Pending::None {
            return Err(ErrorCode::ConcurrencyConflict);
        }
        let State::Bound { local, listener } = s.state else {
            return Err(ErrorCode::InvalidState);
        };
        s.state = State::Listening {
            local,
            listener,
            queue: VecDeque::new(),
        };
        s.pending = Pending::Listen;
        Ok(())
    }

    fn finish_listen(&self) -> Result<(), ErrorCode> {
        let mut s = self.0.borrow_mut();
        if s.pending != Pending::Listen {
            return Err(ErrorCode::NotInProgress);
        }
        s.pending = Pending::None;
        Ok(())
    }

    fn accept(&self) -> Result<(TcpSocket, InputStream, OutputStream), ErrorCode> {
        let mut s = self.0.borrow_mut();
        let opts = s.opts;
        let State::Listening {
            local,
            listener,
            queue,
        } = &mut s.state
        else {
            return Err(ErrorCode::InvalidState);
        };
        let (c, remote) = match queue.pop_front() {
            Some(c) => c,
            None => {
                let (c, remote) = net::tcp_accept(*listener).map_err(addr::code)?;
                (super::opened(c), remote)
            }
        };
        let conn = Conn::new(c);
        let (input, output) = streams(&conn);
        let state = State::Connected {
            local: *local,
            remote,
            conn,
        };
        Ok((TcpSocket::new(Tcp::with(state, opts)), input, output))
    }

    fn local_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match &self.0.borrow().state {
            State::Bound { local, .. }
            | State::Listening { local, .. }
            | State::Connected { local, .. } => Ok(addr::socket_address(*local)),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    fn remote_address(&self) -> Result<IpSocketAddress, ErrorCode> {
        match &self.0.borrow().state {
            State::Connected { remote, .. } => Ok(addr::socket_address(*remote)),
            _ => Err(ErrorCode::InvalidState),
        }
    }

    fn is_listening(&self) -> bool {
        matches!(self.0.borrow().state, State::Listening { .. })
    }

    fn address_family(&self) -> IpAddressFamily {
        IpAddressFamily::Ipv4
    }

    /// Accepted but ignored: the backlog is the stack's (`[stack] backlog`).
    fn set_listen_backlog_size(&self, value: u64) -> Result<(), ErrorCode> {
        nonzero(value).map(|_| ())
    }

    fn keep_alive_enabled(&self) -> Result<bool, ErrorCode> {
        Ok(self.0.borrow().opts.keep_alive)
    }

    fn set_keep_alive_enabled(&self, value: bool) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.keep_alive = value;
        Ok(())
    }

    fn keep_alive_idle_time(&self) -> Result<Duration, ErrorCode> {
        Ok(self.0.borrow().opts.keep_idle)
    }

    fn set_keep_alive_idle_time(&self, value: Duration) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.keep_idle = nonzero(value)?;
        Ok(())
    }

    fn keep_alive_interval(&self) -> Result<Duration, ErrorCode> {
        Ok(self.0.borrow().opts.keep_interval)
    }

    fn set_keep_alive_interval(&self, value: Duration) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.keep_interval = nonzero(value)?;
        Ok(())
    }

    fn keep_alive_count(&self) -> Result<u32, ErrorCode> {
        Ok(self.0.borrow().opts.keep_count)
    }

    fn set_keep_alive_count(&self, value: u32) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.keep_count = nonzero(value)?;
        Ok(())
    }

    fn hop_limit(&self) -> Result<u8, ErrorCode> {
        Ok(self.0.borrow().opts.hop_limit)
    }

    fn set_hop_limit(&self, value: u8) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.hop_limit = nonzero(value)?;
        Ok(())
    }

    fn receive_buffer_size(&self) -> Result<u64, ErrorCode> {
        Ok(self.0.borrow().opts.rx_buf)
    }

    fn set_receive_buffer_size(&self, value: u64) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.rx_buf = nonzero(value)?;
        Ok(())
    }

    fn send_buffer_size(&self) -> Result<u64, ErrorCode> {
        Ok(self.0.borrow().opts.tx_buf)
    }

    fn set_send_buffer_size(&self, value: u64) -> Result<(), ErrorCode> {
        self.0.borrow_mut().opts.tx_buf = nonzero(value)?;
        Ok(())
    }

    fn subscribe(&self) -> crate::exports::wasi::io::poll::Pollable {
        Pollable::io(Watch::Tcp(self.0.clone()))
    }

    fn shutdown(&self, how: ShutdownType) -> Result<(), ErrorCode> {
        let s = self.0.borrow();
        let State::Connected { conn, .. } = &s.state else {
            return Err(ErrorCode::InvalidState);
        };
        if matches!(how, ShutdownType::Receive | ShutdownType::Both) {
            conn.rd_closed.set(true);
        }
        if matches!(how, ShutdownType::Send | ShutdownType::Both) {
            conn.shutdown_send()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_refused_for_options() {
        assert_eq!(nonzero(0u64), Err(ErrorCode::InvalidArgument));
        assert_eq!(nonzero(5u8), Ok(5));
    }
}
