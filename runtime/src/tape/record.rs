//! One trace record per device call, and the encoder/decoder pair that
//! turns them into bytes. Both keep the same running state (the last clock
//! readings, each disk's shadow, the log topics seen) so a record stores
//! only what the other side could not predict.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::shadow::Shadow;
use super::wire::{Malformed, Reader, Res, Wire, Writer, digest64};
use crate::devices::ErrorCode;

pub const MONO: u8 = 1;
pub const WALL: u8 = 2;
pub const WAIT: u8 = 3;
pub const RANDOM: u8 = 4;
pub const READ: u8 = 5;
pub const WRITE: u8 = 6;
pub const FLUSH: u8 = 7;
pub const CONSOLE: u8 = 8;
pub const LOG: u8 = 9;
pub const SEND: u8 = 10;
pub const RECEIVE: u8 = 11;
pub const CAPTURE: u8 = 12;
pub const SOCKETS: u8 = 13;
pub const PHASE: u8 = 14;
pub const END: u8 = 15;
/// Ends the body; a checksum of everything before it follows.
pub const TRAILER: u8 = 0xff;

/// The names of the `sockets` operations, by the code the trace stores.
pub use crate::names::SOCKET_FNS as SOCKET_OPS;

/// How a phase of the recorded run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The app returned (or called `exit`) with this code.
    Exit(u8),
    /// A component trapped (its name and the message).
    Trap { who: String, message: String },
    /// `limits.timeout` passed (or, in a simulation, the fuel ran out).
    Timeout { who: String },
    /// A component hit `limits.memory`.
    Memory { who: String },
    /// A filter cut the power; the next phase boots on what survived.
    PowerCut,
}

impl core::fmt::Display for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Exit(c) => write!(f, "exit {c}"),
            Outcome::Trap { who, message } => write!(f, "{who} trapped: {message}"),
            Outcome::Timeout { who } => write!(f, "timeout in {who}"),
            Outcome::Memory { who } => write!(f, "memory limit in {who}"),
            Outcome::PowerCut => f.write_str("power cut"),
        }
    }
}

impl Outcome {
    fn put(&self, w: &mut Writer) {
        match self {
            Outcome::Exit(c) => {
                w.u8(0);
                w.u8(*c);
            }
            Outcome::Trap { who, message } => {
                w.u8(1);
                w.str(who);
                w.str(message);
            }
            Outcome::Timeout { who } => {
                w.u8(2);
                w.str(who);
            }
            Outcome::Memory { who } => {
                w.u8(3);
                w.str(who);
            }
            Outcome::PowerCut => w.u8(4),
        }
    }

    fn get(r: &mut Reader) -> Res<Outcome> {
        Ok(match r.u8()? {
            0 => Outcome::Exit(r.u8()?),
            1 => Outcome::Trap { who: r.string()?, message: r.string()? },
            2 => Outcome::Timeout { who: r.string()? },
            3 => Outcome::Memory { who: r.string()? },
            4 => Outcome::PowerCut,
            _ => return Err(Malformed("an outcome")),
        })
    }
}

/// A phase: one boot of the app (a simulation's restart after a power cut
/// is phase 2), with the args and filter configs it ran with.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Phase {
    pub n: u32,
    pub args: Vec<String>,
    /// Each filter's config, in link order.
    pub configs: Vec<Vec<(String, String)>>,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    Mono { now: u64 },
    Wall { now: i64 },
    Wait { deadline: u64 },
    Random { bytes: Vec<u8> },
    Read { dev: u32, start: u64, count: u32, result: Result<Vec<u8>, ErrorCode> },
    Write { dev: u32, start: u64, len: u32, digest: u32, result: Result<(), ErrorCode> },
    Flush { dev: u32, result: Result<(), ErrorCode> },
    Console { len: u32, digest: u32 },
    Log { topic: String, digest: u32 },
    Send { dev: u32, frames: u32, digest: u32, result: Result<u32, ErrorCode> },
    Receive { dev: u32, max: u32, result: Result<Vec<Vec<u8>>, ErrorCode> },
    Capture { digest: u32 },
    Sockets { op: u8, digest: u32, result: Vec<u8> },
    Phase(Phase),
    End(Outcome),
}

/// The running state both sides keep.
pub struct State {
    /// Reading without replaying (checking a trace, `weft trace show`): a
    /// block read of sectors a write taught the shadow shows zeros, since
    /// writes store only a digest.
    pub lenient: bool,
    pub mono: u64,
    /// The last wall reading and the monotonic time it was taken at: a wall
    /// reading is stored as its distance from `wall + (mono - at)`.
    wall: i64,
    wall_at: u64,
    pub shadows: Vec<Shadow>,
    topics: Vec<String>,
}

impl State {
    /// A replayer's (or reader's) state: shadows that keep the bytes.
    pub fn new(sector_sizes: impl Iterator<Item = u32>) -> State {
        State { lenient: false, mono: 0, wall: 0, wall_at: 0, shadows: sector_sizes.map(Shadow::new).collect(), topics: Vec::new() }
    }

    /// A recorder's state: shadows that keep a digest per sector.
    pub fn recording(sector_sizes: impl Iterator<Item = u32>) -> State {
        State { shadows: sector_sizes.map(Shadow::digests).collect(), ..State::new(core::iter::empty()) }
    }

    fn predicted_wall(&self) -> i64 {
        self.wall.wrapping_add(self.mono.wrapping_sub(self.wall_at) as i64)
    }

    fn shadow(&mut self, dev: u32) -> Res<&mut Shadow> {
        self.shadows.get_mut(dev as usize).ok_or(Malformed("a block device the header does not declare"))
    }
}

/// Appends records.
pub struct Encoder {
    pub w: Writer,
    pub st: State,
}

impl Encoder {
    pub fn mono(&mut self, now: u64) {
        self.w.u8(MONO);
        self.w.svar(now.wrapping_sub(self.st.mono) as i64);
        self.st.mono = now;
    }

    pub fn wall(&mut self, now: i64) {
        self.w.u8(WALL);
        self.w.svar(now.wrapping_sub(self.st.predicted_wall()));
        self.st.wall = now;
        self.st.wall_at = self.st.mono;
    }

    pub fn wait(&mut self, deadline: u64) {
        self.w.u8(WAIT);
        self.w.svar(deadline.wrapping_sub(self.st.mono) as i64);
    }

    pub fn random(&mut self, bytes: &[u8]) {
        self.w.u8(RANDOM);
        self.w.bytes(bytes);
    }

    pub fn read(&mut self, dev: u32, start: u64, count: u32, result: &Result<Vec<u8>, ErrorCode>) {
        self.w.u8(READ);
        self.w.var(dev.into());
        self.w.var(start);
        self.w.var(count.into());
        match result {
            Ok(data) => {
                self.w.u8(0);
                if let Some(s) = self.st.shadows.get_mut(dev as usize) {
                    s.encode_read(start, data, &mut self.w);
                }
            }
            Err(e) => {
                self.w.u8(1 + *e as u8);
                if let Some(s) = self.st.shadows.get_mut(dev as usize) {
                    s.forget(start, count.into());
                }
            }
        }
    }

    pub fn write(&mut self, dev: u32, start: u64, data: &[u8], result: Result<(), ErrorCode>) {
        // One pass over the data: the record's digest is this one's low half,
        // and a one-sector write's shadow digest is this one whole.
        let whole = digest64(&[data]);
        self.w.u8(WRITE);
        self.w.var(dev.into());
        self.w.var(start);
        self.w.var(data.len() as u64);
        self.w.u32le(whole as u32);
        result.put(&mut self.w);
        if let Some(s) = self.st.shadows.get_mut(dev as usize) {
            match result {
                Ok(()) => s.write_digested(start, data, whole),
                Err(_) => s.forget_bytes(start, data.len()),
            }
        }
    }

    pub fn flush(&mut self, dev: u32, result: Result<(), ErrorCode>) {
        self.w.u8(FLUSH);
        self.w.var(dev.into());
        result.put(&mut self.w);
    }

    pub fn console(&mut self, len: usize, digest: u32) {
        self.w.u8(CONSOLE);
        self.w.var(len as u64);
        self.w.u32le(digest);
    }

    pub fn log(&mut self, topic: &str, digest: u32) {
        self.w.u8(LOG);
        match self.st.topics.iter().position(|t| t == topic) {
            Some(i) => self.w.var(i as u64),
            None => {
                self.w.var(self.st.topics.len() as u64);
                self.w.str(topic);
                self.st.topics.push(topic.into());
            }
        }
        self.w.u32le(digest);
    }

    pub fn send(&mut self, dev: u32, frames: u32, digest: u32, result: Result<u32, ErrorCode>) {
        self.w.u8(SEND);
        self.w.var(dev.into());
        self.w.var(frames.into());
        self.w.u32le(digest);
        result.put(&mut self.w);
    }

    pub fn receive(&mut self, dev: u32, max: u32, result: &Result<Vec<Vec<u8>>, ErrorCode>) {
        self.w.u8(RECEIVE);
        self.w.var(dev.into());
        self.w.var(max.into());
        result.put(&mut self.w);
    }

    pub fn capture(&mut self, digest: u32) {
        self.w.u8(CAPTURE);
        self.w.u32le(digest);
    }

    pub fn sockets<R: Wire>(&mut self, op: u8, digest: u32, result: &R) {
        self.w.u8(SOCKETS);
        self.w.u8(op);
        self.w.u32le(digest);
        let mut inner = Writer::default();
        result.put(&mut inner);
        self.w.bytes(&inner.out);
    }

    pub fn phase(&mut self, p: &Phase) {
        self.w.u8(PHASE);
        self.w.var(p.n.into());
        self.w.var(p.args.len() as u64);
        for a in &p.args {
            self.w.str(a);
        }
        self.w.var(p.configs.len() as u64);
        for c in &p.configs {
            self.w.var(c.len() as u64);
            for (k, v) in c {
                self.w.str(k);
                self.w.str(v);
            }
        }
    }

    pub fn end(&mut self, o: &Outcome) {
        self.w.u8(END);
        o.put(&mut self.w);
    }
}

/// Reads records back, in order.
pub struct Decoder<'a, 's> {
    pub r: Reader<'a>,
    pub st: &'s mut State,
}

impl Decoder<'_, '_> {
    /// The next record, or `None` at the trailer.
    pub fn record(&mut self) -> Res<Option<Rec>> {
        let tag = self.r.u8()?;
        let r = &mut self.r;
        Ok(Some(match tag {
            MONO => {
                let now = self.st.mono.wrapping_add(r.svar()? as u64);
                self.st.mono = now;
                Rec::Mono { now }
            }
            WALL => {
                let now = self.st.predicted_wall().wrapping_add(r.svar()?);
                self.st.wall = now;
                self.st.wall_at = self.st.mono;
                Rec::Wall { now }
            }
            WAIT => Rec::Wait { deadline: self.st.mono.wrapping_add(r.svar()? as u64) },
            RANDOM => Rec::Random { bytes: r.bytes()?.to_vec() },
            READ => {
                let (dev, start, count) = (r.var32()?, r.var()?, r.var32()?);
                let result = match r.u8()? {
                    0 => {
                        let lenient = self.st.lenient;
                        let s = self.st.shadows.get_mut(dev as usize).ok_or(Malformed("a block device the header does not declare"))?;
                        Ok(s.decode_read(start, count, r, lenient)?)
                    }
                    n => {
                        self.st.shadow(dev)?.forget(start, count.into());
                        Err(code(n)?)
                    }
                };
                Rec::Read { dev, start, count, result }
            }
            WRITE => {
                let (dev, start, len, digest) = (r.var32()?, r.var()?, r.var32()?, r.u32le()?);
                let result = <Result<(), ErrorCode>>::get(r)?;
                // The data itself is not stored: the replaying app writes it,
                // and the replayer teaches its shadow from that.
                Rec::Write { dev, start, len, digest, result }
            }
            FLUSH => Rec::Flush { dev: r.var32()?, result: <Result<(), ErrorCode>>::get(r)? },
            CONSOLE => Rec::Console { len: r.var32()?, digest: r.u32le()? },
            LOG => {
                let i = r.var()? as usize;
                if i == self.st.topics.len() {
                    let t = r.string()?;
                    self.st.topics.push(t);
                }
                let topic = self.st.topics.get(i).cloned().ok_or(Malformed("a log topic index"))?;
                Rec::Log { topic, digest: r.u32le()? }
            }
            SEND => Rec::Send { dev: r.var32()?, frames: r.var32()?, digest: r.u32le()?, result: Wire::get(r)? },
            RECEIVE => Rec::Receive { dev: r.var32()?, max: r.var32()?, result: Wire::get(r)? },
            CAPTURE => Rec::Capture { digest: r.u32le()? },
            SOCKETS => {
                let op = r.u8()?;
                if usize::from(op) >= SOCKET_OPS.len() {
                    return Err(Malformed("a sockets operation"));
                }
                Rec::Sockets { op, digest: r.u32le()?, result: r.bytes()?.to_vec() }
            }
            PHASE => {
                let n = r.var32()?;
                let args = (0..r.count()?).map(|_| r.string()).collect::<Res<Vec<_>>>()?;
                let mut configs = Vec::new();
                for _ in 0..r.count()? {
                    configs.push((0..r.count()?).map(|_| Ok((r.string()?, r.string()?))).collect::<Res<Vec<_>>>()?);
                }
                Rec::Phase(Phase { n, args, configs })
            }
            END => Rec::End(Outcome::get(r)?),
            TRAILER => return Ok(None),
            _ => return Err(Malformed("an unknown record tag")),
        }))
    }
}

fn code(n: u8) -> Res<ErrorCode> {
    use super::wire::Code;
    ErrorCode::ALL.get(usize::from(n) - 1).copied().ok_or(Malformed("an error code"))
}

/// The record as `weft trace show` prints it (after the call number and
/// time): device, operation, result.
pub fn describe(rec: &Rec, blocks: &[String], nets: &[String]) -> String {
    let block = |d: &u32| blocks.get(*d as usize).cloned().unwrap_or_else(|| format!("block#{d}"));
    let net = |d: &u32| nets.get(*d as usize).cloned().unwrap_or_else(|| format!("net#{d}"));
    let res = |r: &Result<(), ErrorCode>| match r {
        Ok(()) => String::from("ok"),
        Err(e) => format!("error {e}"),
    };
    match rec {
        Rec::Mono { now } => format!("clock     monotonic-now -> {now}"),
        Rec::Wall { now } => format!("clock     wall-now -> {now}"),
        Rec::Wait { deadline } => format!("clock     wait-until {deadline}"),
        Rec::Random { bytes } => format!("random    fill {} -> {}", bytes.len(), hex_prefix(bytes)),
        Rec::Read { dev, start, count, result } => format!(
            "{:<9} read sector {start} count {count} -> {}",
            block(dev),
            match result {
                Ok(d) => format!("{} bytes {}", d.len(), hex_prefix(d)),
                Err(e) => format!("error {e}"),
            }
        ),
        Rec::Write { dev, start, len, digest, result } => {
            format!("{:<9} write sector {start} {len} bytes (digest {digest:08x}) -> {}", block(dev), res(result))
        }
        Rec::Flush { dev, result } => format!("{:<9} flush -> {}", block(dev), res(result)),
        Rec::Console { len, digest } => format!("console   write {len} bytes (digest {digest:08x})"),
        Rec::Log { topic, digest } => format!("log       append [{topic}] (digest {digest:08x})"),
        Rec::Send { dev, frames, digest, result } => format!(
            "{:<9} send {frames} frames (digest {digest:08x}) -> {}",
            net(dev),
            match result {
                Ok(n) => format!("{n} taken"),
                Err(e) => format!("error {e}"),
            }
        ),
        Rec::Receive { dev, max, result } => format!(
            "{:<9} receive max {max} -> {}",
            net(dev),
            match result {
                Ok(f) => format!("{} frames, {} bytes", f.len(), f.iter().map(Vec::len).sum::<usize>()),
                Err(e) => format!("error {e}"),
            }
        ),
        Rec::Capture { digest } => format!("capture   frame (digest {digest:08x})"),
        Rec::Sockets { op, result, .. } => {
            format!("sockets   {} -> {} result bytes", SOCKET_OPS.get(usize::from(*op)).unwrap_or(&"?"), result.len())
        }
        Rec::Phase(p) => format!("phase {}   args [{}]", p.n, p.args.join(", ")),
        Rec::End(o) => format!("end       {o}"),
    }
}

fn hex_prefix(b: &[u8]) -> String {
    let mut s: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    if b.len() > 8 {
        s.push('…');
    }
    s
}
