//! Record and replay: every call that crosses from the unikernel into a
//! host leaf device, in order, with what it returned.
//!
//! [`Tape`] sits between the linker and the leaves (`Leaves`). Off, it
//! forwards. Recording, it forwards and appends one record per call (clock
//! readings, random bytes, block reads, received frames, socket results —
//! and a digest of everything sent out, so a replay that sends something
//! else is noticed). Replaying, it never touches an input device: each call
//! is answered from the next record, after checking it is the call the
//! record holds; console and log output still go to their leaves, so a
//! replay prints what the run printed.
//!
//! The file format is in `docs/trace.md`: a header (manifest, component
//! hashes, device geometry), the records, and a checksum trailer.

pub mod record;
pub mod shadow;
pub mod wire;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::devices::{Direction, ErrorCode, Geometry, NetInfo, Sockets};
use crate::fault::Stop;
use crate::link::Leaves;
pub use record::{Outcome, Phase, Rec};
use record::{Decoder, Encoder, State};
use wire::{Malformed, Reader, Wire, Writer, digest};

pub const MAGIC: &[u8; 8] = b"WEFTTRCE";
pub const VERSION: u8 = 1;

/// What a trace says about the run before its first call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Where it was recorded: `linux` or `baremetal`.
    pub host: String,
    /// The manifest's path as the recording run was given it.
    pub manifest_path: String,
    /// The manifest's text.
    pub manifest: String,
    /// The simulation seed, for a simulated run.
    pub sim_seed: Option<u64>,
    /// Every component (app first, its composed parts, then each filter in
    /// link order) with its sha256.
    pub components: Vec<(String, [u8; 32])>,
    /// Block devices by role, in link order.
    pub blocks: Vec<(String, Geometry)>,
    /// Net devices by role, in link order.
    pub nets: Vec<(String, NetInfo)>,
}

impl Header {
    fn put(&self, w: &mut Writer) {
        w.str(&self.host);
        w.str(&self.manifest_path);
        w.str(&self.manifest);
        self.sim_seed.put(w);
        w.var(self.components.len() as u64);
        for (name, sha) in &self.components {
            w.str(name);
            w.out.extend_from_slice(sha);
        }
        w.var(self.blocks.len() as u64);
        for (role, g) in &self.blocks {
            w.str(role);
            w.var(g.sector_size.into());
            w.var(g.sector_count);
            w.u8(g.read_only.into());
        }
        w.var(self.nets.len() as u64);
        for (role, n) in &self.nets {
            w.str(role);
            let (a, b, c, d, e, f) = n.mac;
            w.out.extend_from_slice(&[a, b, c, d, e, f]);
            w.var(n.mtu.into());
            w.u8(n.checksum_offload.into());
        }
    }

    fn get(r: &mut Reader) -> Result<Header, Malformed> {
        let (host, manifest_path, manifest) = (r.string()?, r.string()?, r.string()?);
        let sim_seed = Wire::get(r)?;
        let mut components = Vec::new();
        for _ in 0..r.count()? {
            let name = r.string()?;
            let sha: [u8; 32] = r.take(32)?.try_into().map_err(|_| Malformed("a hash"))?;
            components.push((name, sha));
        }
        let mut blocks = Vec::new();
        for _ in 0..r.count()? {
            let role = r.string()?;
            let sector_size = r.var32()?;
            if !sector_size.is_power_of_two() || sector_size < 512 {
                return Err(Malformed("a block device's sector size"));
            }
            blocks.push((role, Geometry { sector_size, sector_count: r.var()?, read_only: r.u8()? != 0 }));
        }
        let mut nets = Vec::new();
        for _ in 0..r.count()? {
            let role = r.string()?;
            let m = r.take(6)?;
            let info = NetInfo { mac: (m[0], m[1], m[2], m[3], m[4], m[5]), mtu: r.var32()?, checksum_offload: r.u8()? != 0 };
            nets.push((role, info));
        }
        Ok(Header { host, manifest_path, manifest, sim_seed, components, blocks, nets })
    }

    fn state(&self) -> State {
        State::new(self.blocks.iter().map(|(_, g)| g.sector_size))
    }
}

/// Why a trace file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    NotATrace,
    Version(u8),
    Truncated,
    Checksum,
    Malformed { what: &'static str, offset: usize },
}

impl core::fmt::Display for TraceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TraceError::NotATrace => f.write_str("not a weft trace (no WEFTTRCE header)"),
            TraceError::Version(v) => write!(f, "trace format version {v}; this weft reads version {VERSION}: record it again with this weft"),
            TraceError::Truncated => f.write_str("the trace is truncated (no trailer: the recording run did not finish writing it)"),
            TraceError::Checksum => f.write_str("the trace is corrupted (its checksum does not match its contents)"),
            TraceError::Malformed { what, offset } => write!(f, "the trace is malformed at byte {offset}: {what}"),
        }
    }
}

impl core::error::Error for TraceError {}

/// A checked trace file.
pub struct Trace {
    pub header: Header,
    bytes: Vec<u8>,
    /// Offset of the first record.
    body: usize,
    /// Calls in the trace (records other than phases and ends).
    pub calls: u64,
}

impl Trace {
    /// Checks magic, version, trailer and checksum, then decodes every
    /// record once, so a replay never meets a malformed one.
    pub fn parse(bytes: Vec<u8>) -> Result<Trace, TraceError> {
        if bytes.len() < 9 || &bytes[..8] != MAGIC {
            return Err(TraceError::NotATrace);
        }
        if bytes[8] != VERSION {
            return Err(TraceError::Version(bytes[8]));
        }
        if bytes.len() < 18 || bytes[bytes.len() - 9] != record::TRAILER {
            return Err(TraceError::Truncated);
        }
        let sum_at = bytes.len() - 8;
        let stored = u64::from_le_bytes(bytes[sum_at..].try_into().expect("8 bytes"));
        if crate::bundle::checksum(&bytes[..sum_at]) != stored {
            return Err(TraceError::Checksum);
        }
        let mut r = Reader::new(&bytes[..sum_at]);
        r.pos = 9;
        let bad = |r: &Reader, m: Malformed| TraceError::Malformed { what: m.0, offset: r.pos };
        let header = Header::get(&mut r).map_err(|m| bad(&r, m))?;
        let body = r.pos;
        let mut st = header.state();
        st.lenient = true;
        let mut d = Decoder { r, st: &mut st };
        let mut calls = 0;
        loop {
            match d.record() {
                Ok(Some(Rec::Phase(_) | Rec::End(_))) => {}
                Ok(Some(_)) => calls += 1,
                Ok(None) if d.r.pos == sum_at => break,
                Ok(None) => return Err(TraceError::Malformed { what: "a trailer before the end", offset: d.r.pos }),
                Err(m) => return Err(bad(&d.r, m)),
            }
        }
        Ok(Trace { header, bytes, body, calls })
    }

    /// Every record with its call number (0 for phase and end records).
    pub fn records(&self) -> Vec<(u64, Rec)> {
        let mut st = self.header.state();
        st.lenient = true;
        let mut d = Decoder { r: Reader::new(&self.bytes[..self.bytes.len() - 8]), st: &mut st };
        d.r.pos = self.body;
        let mut out = Vec::new();
        let mut n = 0;
        while let Ok(Some(rec)) = d.record() {
            let call = match rec {
                Rec::Phase(_) | Rec::End(_) => 0,
                _ => {
                    n += 1;
                    n
                }
            };
            out.push((call, rec));
        }
        out
    }

    /// The size of the file.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The outcome of the recorded run's last phase.
    pub fn outcome(&self) -> Option<Outcome> {
        self.records().into_iter().rev().find_map(|(_, r)| match r {
            Rec::End(o) => Some(o),
            _ => None,
        })
    }

    /// A replayer positioned at the first record.
    pub fn replayer(self) -> Replayer {
        let st = self.header.state();
        let blocks = self.header.blocks.iter().map(|(r, _)| r.clone()).collect();
        let nets = self.header.nets.iter().map(|(r, _)| r.clone()).collect();
        Replayer { pos: self.body, end: self.bytes.len() - 8, bytes: self.bytes, st, call: 0, blocks, nets }
    }
}

/// A replay asked for something other than what the trace holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diverged {
    /// The call number (as `weft trace show` counts).
    pub call: u64,
    pub expected: String,
    pub got: String,
}

impl core::fmt::Display for Diverged {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "replay diverged at call #{}: the trace holds `{}`, the unikernel made `{}`", self.call, self.expected, self.got)
    }
}

impl core::error::Error for Diverged {}

/// Writes a trace.
pub struct Recorder {
    enc: Encoder,
    calls: u64,
}

impl Recorder {
    pub fn new(header: &Header) -> Recorder {
        let mut w = Writer::default();
        w.out.extend_from_slice(MAGIC);
        w.u8(VERSION);
        header.put(&mut w);
        let st = State::recording(header.blocks.iter().map(|(_, g)| g.sector_size));
        Recorder { enc: Encoder { w, st }, calls: 0 }
    }

    /// The finished file: records, trailer and checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.enc.w.u8(record::TRAILER);
        let sum = crate::bundle::checksum(&self.enc.w.out);
        self.enc.w.u64le(sum);
        self.enc.w.out
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }
}

/// Answers calls from a trace.
pub struct Replayer {
    bytes: Vec<u8>,
    pos: usize,
    end: usize,
    st: State,
    call: u64,
    blocks: Vec<String>,
    nets: Vec<String>,
}

impl Replayer {
    fn next_record(&mut self) -> Option<Rec> {
        let mut d = Decoder { r: Reader { bytes: &self.bytes[..self.end], pos: self.pos }, st: &mut self.st };
        // Every record was decoded once by `Trace::parse`; what fails now is
        // a block read of sectors only a write the replay did not make
        // would have taught the shadow.
        let rec = d.record().unwrap_or_else(|m| Some(Rec::End(Outcome::Trap { who: "trace".into(), message: m.0.into() })));
        self.pos = d.r.pos;
        rec
    }

    /// The next record if it ends the phase (end records change no state).
    fn peek_end(&mut self) -> Option<Outcome> {
        if self.bytes.get(self.pos) != Some(&record::END) {
            return None;
        }
        let pos = self.pos;
        let rec = self.next_record();
        self.pos = pos;
        match rec {
            Some(Rec::End(o)) => Some(o),
            _ => None,
        }
    }

    fn block(&self, d: u32) -> String {
        self.blocks.get(d as usize).cloned().unwrap_or_else(|| format!("block#{d}"))
    }

    fn net(&self, d: u32) -> String {
        self.nets.get(d as usize).cloned().unwrap_or_else(|| format!("net#{d}"))
    }

    /// The next call record, which must be what `want` accepts; `got`
    /// describes the call made, for the error.
    fn expect<T>(&mut self, got: impl FnOnce(&Self) -> String, want: impl FnOnce(&Rec) -> Option<T>) -> wasmtime::Result<T> {
        self.call += 1;
        match self.peek_end() {
            Some(Outcome::Timeout { .. }) => {
                // The recorded run was stopped by its timeout here, between
                // two calls; the replay stops at the same place.
                return Err(wasmtime::Error::new(Stop::Timeout));
            }
            Some(o) => {
                let got = got(self);
                return Err(wasmtime::Error::new(Diverged {
                    call: self.call,
                    expected: format!("the end of the run ({o})"),
                    got,
                }));
            }
            _ => {}
        }
        let rec = self.next_record();
        match rec.as_ref().and_then(want) {
            Some(v) => Ok(v),
            None => {
                let expected = match &rec {
                    Some(r) => record::describe(r, &self.blocks, &self.nets),
                    None => "nothing (the trace ends)".to_string(),
                };
                Err(wasmtime::Error::new(Diverged { call: self.call, expected: squash(&expected), got: squash(&got(self)) }))
            }
        }
    }

    /// The next phase record (the first one, or the one after a power cut).
    pub fn phase(&mut self) -> Result<Phase, Diverged> {
        loop {
            match self.next_record() {
                Some(Rec::Phase(p)) => return Ok(p),
                Some(Rec::End(Outcome::PowerCut)) => continue,
                other => {
                    return Err(Diverged {
                        call: self.call,
                        expected: other.map_or("nothing (the trace ends)".into(), |r| squash(&record::describe(&r, &self.blocks, &self.nets))),
                        got: "a new phase (a boot after a power cut)".into(),
                    });
                }
            }
        }
    }

    /// The replay ended with `outcome`: the trace must end the same way.
    pub fn end(&mut self, outcome: &Outcome) -> Result<(), Diverged> {
        let pos = self.pos;
        match self.next_record() {
            Some(Rec::End(o)) if o == *outcome || matches!((&o, outcome), (Outcome::Timeout { .. }, Outcome::Timeout { .. })) => Ok(()),
            Some(Rec::End(o)) => Err(Diverged { call: self.call, expected: format!("the run to end with {o}"), got: format!("it ended with {outcome}") }),
            other => {
                self.pos = pos;
                let expected = other.map_or("nothing".into(), |r| squash(&record::describe(&r, &self.blocks, &self.nets)));
                Err(Diverged { call: self.call + 1, expected, got: format!("the end of the run ({outcome})") })
            }
        }
    }

    pub fn calls(&self) -> u64 {
        self.call
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The interposer between the linker and the leaves.
#[derive(Default)]
pub enum Tape {
    #[default]
    Off,
    Record(Box<Recorder>),
    Replay(Box<Replayer>),
}

type Wres<T> = wasmtime::Result<T>;

impl Tape {
    pub fn is_replay(&self) -> bool {
        matches!(self, Tape::Replay(_))
    }

    pub fn monotonic_now(&mut self, l: &mut Leaves) -> Wres<u64> {
        match self {
            Tape::Off => Ok(l.clock.monotonic_now()),
            Tape::Record(r) => {
                let now = l.clock.monotonic_now();
                r.calls += 1;
                r.enc.mono(now);
                Ok(now)
            }
            Tape::Replay(p) => p.expect(|_| "clock monotonic-now".into(), |r| match r {
                Rec::Mono { now } => Some(*now),
                _ => None,
            }),
        }
    }

    pub fn wall_now(&mut self, l: &mut Leaves) -> Wres<i64> {
        match self {
            Tape::Off => Ok(l.clock.wall_now()),
            Tape::Record(r) => {
                let now = l.clock.wall_now();
                r.calls += 1;
                r.enc.wall(now);
                Ok(now)
            }
            Tape::Replay(p) => p.expect(|_| "clock wall-now".into(), |r| match r {
                Rec::Wall { now } => Some(*now),
                _ => None,
            }),
        }
    }

    pub fn wait_until(&mut self, l: &mut Leaves, deadline: u64) -> Wres<()> {
        match self {
            Tape::Off => {
                l.clock.wait_until(deadline);
                Ok(())
            }
            Tape::Record(r) => {
                l.clock.wait_until(deadline);
                r.calls += 1;
                r.enc.wait(deadline);
                Ok(())
            }
            Tape::Replay(p) => p.expect(|_| format!("clock wait-until {deadline}"), |r| match r {
                Rec::Wait { deadline: d } if *d == deadline => Some(()),
                _ => None,
            }),
        }
    }

    pub fn random(&mut self, l: &mut Leaves, buf: &mut [u8]) -> Wres<()> {
        match self {
            Tape::Off => {
                l.random.fill(buf);
                Ok(())
            }
            Tape::Record(r) => {
                l.random.fill(buf);
                r.calls += 1;
                r.enc.random(buf);
                Ok(())
            }
            Tape::Replay(p) => {
                let n = buf.len();
                let bytes = p.expect(|_| format!("random fill {n}"), |r| match r {
                    Rec::Random { bytes } if bytes.len() == n => Some(bytes.clone()),
                    _ => None,
                })?;
                buf.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }

    pub fn block_read(&mut self, l: &mut Leaves, d: usize, start: u64, count: u32) -> Wres<Result<Vec<u8>, ErrorCode>> {
        match self {
            Tape::Off => Ok(l.blocks[d].read(start, count)),
            Tape::Record(r) => {
                let v = l.blocks[d].read(start, count);
                r.calls += 1;
                r.enc.read(d as u32, start, count, &v);
                Ok(v)
            }
            Tape::Replay(p) => p.expect(
                |p| format!("{} read sector {start} count {count}", p.block(d as u32)),
                |r| match r {
                    Rec::Read { dev, start: s, count: c, result } if *dev as usize == d && *s == start && *c == count => {
                        Some(result.clone())
                    }
                    _ => None,
                },
            ),
        }
    }

    pub fn block_write(&mut self, l: &mut Leaves, d: usize, start: u64, data: &[u8]) -> Wres<Result<(), ErrorCode>> {
        match self {
            Tape::Off => Ok(l.blocks[d].write(start, data)),
            Tape::Record(r) => {
                let v = l.blocks[d].write(start, data);
                r.calls += 1;
                r.enc.write(d as u32, start, data, v);
                Ok(v)
            }
            Tape::Replay(p) => {
                let sum = digest(&[data]);
                let len = data.len();
                let v = p.expect(
                    |p| format!("{} write sector {start} {len} bytes (digest {sum:08x})", p.block(d as u32)),
                    |r| match r {
                        Rec::Write { dev, start: s, len: n, digest: g, result } if *dev as usize == d && *s == start && *n as usize == len && *g == sum => {
                            Some(*result)
                        }
                        _ => None,
                    },
                )?;
                if let Some(s) = p.st.shadows.get_mut(d) {
                    match v {
                        Ok(()) => s.write(start, data),
                        Err(_) => s.forget_bytes(start, len),
                    }
                }
                Ok(v)
            }
        }
    }

    pub fn block_flush(&mut self, l: &mut Leaves, d: usize) -> Wres<Result<(), ErrorCode>> {
        match self {
            Tape::Off => Ok(l.blocks[d].flush()),
            Tape::Record(r) => {
                let v = l.blocks[d].flush();
                r.calls += 1;
                r.enc.flush(d as u32, v);
                Ok(v)
            }
            Tape::Replay(p) => p.expect(|p| format!("{} flush", p.block(d as u32)), |r| match r {
                Rec::Flush { dev, result } if *dev as usize == d => Some(*result),
                _ => None,
            }),
        }
    }

    /// Console output reaches the console in every mode.
    pub fn console(&mut self, l: &mut Leaves, bytes: &[u8]) -> Wres<()> {
        match self {
            Tape::Off => {}
            Tape::Record(r) => {
                r.calls += 1;
                r.enc.console(bytes.len(), digest(&[bytes]));
            }
            Tape::Replay(p) => {
                let (n, sum) = (bytes.len(), digest(&[bytes]));
                p.expect(
                    |_| format!("console write {n} bytes (digest {sum:08x}): {:?}", String::from_utf8_lossy(&bytes[..n.min(60)])),
                    |r| matches!(r, Rec::Console { len, digest } if *len as usize == n && *digest == sum).then_some(()),
                )?;
            }
        }
        l.console.write(bytes);
        Ok(())
    }

    /// Events reach the log in every mode.
    pub fn log(&mut self, l: &mut Leaves, topic: &str, message: &str, fields: &[(String, String)]) -> Wres<()> {
        let sum = || {
            let mut parts: Vec<&[u8]> = alloc::vec![topic.as_bytes(), message.as_bytes()];
            for (k, v) in fields {
                parts.push(k.as_bytes());
                parts.push(v.as_bytes());
            }
            digest(&parts)
        };
        match self {
            Tape::Off => {}
            Tape::Record(r) => {
                r.calls += 1;
                let s = sum();
                r.enc.log(topic, s);
            }
            Tape::Replay(p) => {
                let s = sum();
                p.expect(
                    |_| format!("log append [{topic}] {message} (digest {s:08x})"),
                    |r| matches!(r, Rec::Log { topic: t, digest } if t == topic && *digest == s).then_some(()),
                )?;
            }
        }
        l.log.append(topic, message, fields);
        Ok(())
    }

    /// `send` hands the frames to the leaf (which the caller holds apart
    /// from the store while the frames are borrowed from guest memory).
    pub fn net_send(&mut self, d: usize, frames: &[&[u8]], send: impl FnOnce() -> Result<u32, ErrorCode>) -> Wres<Result<u32, ErrorCode>> {
        match self {
            Tape::Off => Ok(send()),
            Tape::Record(r) => {
                let v = send();
                r.calls += 1;
                r.enc.send(d as u32, frames.len() as u32, digest(frames), v);
                Ok(v)
            }
            Tape::Replay(p) => {
                let (n, sum) = (frames.len() as u32, digest(frames));
                p.expect(|p| format!("{} send {n} frames (digest {sum:08x})", p.net(d as u32)), |r| match r {
                    Rec::Send { dev, frames, digest, result } if *dev as usize == d && *frames == n && *digest == sum => Some(*result),
                    _ => None,
                })
            }
        }
    }

    pub fn net_receive(&mut self, l: &mut Leaves, d: usize, max: u32) -> Wres<Result<Vec<Vec<u8>>, ErrorCode>> {
        match self {
            Tape::Off => Ok(l.nets[d].receive(max)),
            Tape::Record(r) => {
                let v = l.nets[d].receive(max);
                r.calls += 1;
                r.enc.receive(d as u32, max, &v);
                Ok(v)
            }
            Tape::Replay(p) => p.expect(|p| format!("{} receive max {max}", p.net(d as u32)), |r| match r {
                Rec::Receive { dev, max: m, result } if *dev as usize == d && *m == max => Some(result.clone()),
                _ => None,
            }),
        }
    }

    /// Captured frames reach their capture only when not replaying (a
    /// replay must not overwrite the recorded run's pcap file).
    pub fn capture(&mut self, l: &mut Leaves, c: usize, at: u64, dir: Direction, data: &[u8]) -> Wres<()> {
        let sum = || digest(&[&at.to_le_bytes(), &[dir as u8], data]);
        match self {
            Tape::Off => {}
            Tape::Record(r) => {
                r.calls += 1;
                let s = sum();
                r.enc.capture(s);
            }
            Tape::Replay(p) => {
                let s = sum();
                return p.expect(|_| format!("capture frame of {} bytes", data.len()), |r| {
                    matches!(r, Rec::Capture { digest } if *digest == s).then_some(())
                });
            }
        }
        if let Some(cap) = l.captures.get_mut(c) {
            cap.frame(at, dir, data);
        }
        Ok(())
    }

    /// A call to the host's sockets (or to the absent stack's `NoSockets`):
    /// `op` indexes `record::SOCKET_OPS`, `args` are what it was given.
    pub fn sockets<R: Wire>(&mut self, l: &mut Leaves, op: u8, args: &[&[u8]], f: impl FnOnce(&mut dyn Sockets) -> R) -> Wres<R> {
        let mut none = crate::leaves::NoSockets;
        let s: &mut dyn Sockets = match l.sockets.as_mut() {
            Some(s) => &mut **s,
            None => &mut none,
        };
        match self {
            Tape::Off => Ok(f(s)),
            Tape::Record(r) => {
                let v = f(s);
                r.calls += 1;
                r.enc.sockets(op, digest(args), &v);
                Ok(v)
            }
            Tape::Replay(p) => {
                let sum = digest(args);
                let name = record::SOCKET_OPS[usize::from(op)];
                let bytes = p.expect(|_| format!("sockets {name}"), |r| match r {
                    Rec::Sockets { op: o, digest, result } if *o == op && *digest == sum => Some(result.clone()),
                    _ => None,
                })?;
                let mut rd = Reader::new(&bytes);
                R::get(&mut rd).map_err(|m| wasmtime::Error::msg(format!("trace: sockets {name} result: {}", m.0)))
            }
        }
    }

    /// Starts a phase: recording writes it, replaying reads the recorded one
    /// (whose args and configs the replay must use).
    pub fn phase(&mut self, p: Phase) -> Result<Phase, Diverged> {
        match self {
            Tape::Off => Ok(p),
            Tape::Record(r) => {
                r.enc.phase(&p);
                Ok(p)
            }
            Tape::Replay(rp) => rp.phase(),
        }
    }

    /// Ends a phase with `outcome`.
    pub fn end(&mut self, outcome: &Outcome) -> Result<(), Diverged> {
        match self {
            Tape::Off => Ok(()),
            Tape::Record(r) => {
                r.enc.end(outcome);
                Ok(())
            }
            Tape::Replay(p) => p.end(outcome),
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        match self {
            Tape::Off => 0,
            Tape::Record(r) => r.calls,
            Tape::Replay(p) => p.call,
        }
    }
}
