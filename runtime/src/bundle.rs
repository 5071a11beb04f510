//! A bundle: one file holding everything a bare-metal kernel needs to run
//! one unikernel — the wiring, the limits, which leaf backs each device, the
//! app's args and every component precompiled for the kernel's target.
//!
//! `weft build --target baremetal` encodes it (std side); the kernel decodes
//! it (`no_std`) and links it with the same [`Unikernel`](crate::Unikernel)
//! as Linux. Decoding never panics: a file that is not a bundle, a truncated
//! or corrupt one, or one built for another target or engine config is a
//! [`BundleError`] naming what is wrong.
//!
//! ```text
//! "WEFTBNDL" | format u32 | payload length u64 | checksum u64 | payload
//! payload: target, engine config version, debug, manifest path, app, args, limits,
//!          block devices (role, backend, filters),
//!          net devices (role, link, mac, filters, capture paths), clock filters,
//!          random, log, stack (filter, net device index)?, wasi, parts,
//!          simulation (start, tick, fuel, boots: (args, filter configs)*)?,
//!          trace to replay?, components (name, precompiled bytes,
//!          symbols; app first, then filters and the stack in
//!          `Unikernel::new` order)
//! ```
//! Integers are little-endian; strings and byte strings are a u32 length and
//! the bytes. The checksum covers the payload, so corruption is caught before
//! any precompiled code is handed to wasmtime.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::engine::{CONFIG_VERSION, Target};
use crate::link::{Device, Filter, Stack, Wiring};

pub const MAGIC: [u8; 8] = *b"WEFTBNDL";
/// Version of the layout above (3: net devices and the stack; 6: simulation
/// and replay; 7: each component's symbols; 8: the debug flag).
pub const FORMAT: u32 = 8;
const HEADER: usize = 8 + 4 + 8 + 8;

/// The leaf behind one block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockBackend {
    /// A disk image on the host, attached as a virtio-blk drive whose serial
    /// is the device's role. `path` is as written in the manifest, relative
    /// to the manifest's folder.
    File { path: String, size: Option<u64>, read_only: bool, preallocate: bool },
    /// A zeroed disk in the kernel's memory, gone at exit.
    Memory { size: u64, read_only: bool },
}

/// What a net device is attached to on the host; `weft boot` turns it into a
/// QEMU `-netdev` and a virtio-net device with the bundle's MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetLink {
    /// An existing TAP interface on the host, by name.
    Tap { device: String },
    /// Frames as UDP datagrams between `local` and `remote` (QEMU's
    /// `-netdev socket,udp=…,localaddr=…`).
    Udp { local: String, remote: String },
}

/// The leaf behind one net device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetBackend {
    pub link: NetLink,
    /// The MAC `weft boot` gives the virtio-net device (the same one `weft
    /// run` uses); the kernel finds the device for a role by it.
    pub mac: [u8; 6],
    /// One pcap path per filter of the device (relative to the manifest's
    /// folder), for filters that import `capture`.
    pub captures: Vec<String>,
}

/// The random leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomBackend {
    /// The CPU's RDRAND/RDSEED.
    Os,
    /// Deterministic bytes from a seed (the same sequence as on Linux).
    Seeded(u64),
}

/// Where `weft boot` sends the events the kernel frames on the serial line
/// (the kernel itself always just frames them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogBackend {
    /// `[topic] message | k=v` lines on stderr.
    Stderr,
    /// Commits in a git repository (`path` relative to the manifest's folder).
    Git { path: String },
}

/// A simulation (`[sim]`): the kernel's engine is the deterministic one, its
/// clock virtual, and each boot's args and filter configs are the host's
/// (`weft_runtime::sim::configs`), so both hosts run the same boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSim {
    /// Virtual wall-clock time at boot (ns since the epoch).
    pub start: i64,
    pub tick: u64,
    pub fuel: u64,
    /// Boot 1, and boot 2 after a power cut when `[sim] restart` asks.
    pub boots: Vec<(Vec<String>, Vec<Vec<(String, String)>>)>,
}

/// One precompiled component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob<'a> {
    pub name: String,
    pub bytes: &'a [u8],
    /// What `weft boot` needs to turn the kernel's raw backtrace frames
    /// into functions and `file:line` (the component's DWARF, where each
    /// core module lies; host-posix `symbolize`). The kernel never reads it.
    pub symbols: &'a [u8],
}

/// A decoded bundle; component bytes borrow from the input.
#[derive(Clone, Debug)]
pub struct Bundle<'a> {
    pub target: Target,
    /// Compiled for a debugger (`weft boot --gdb`): native DWARF, no
    /// optimisation (`engine::Codegen::debug`). The kernel's engine must
    /// say the same to load the code, and registers it with the GDB JIT
    /// interface.
    pub debug: bool,
    /// The manifest it was built from (absolute), for messages and for
    /// resolving `file` disk images.
    pub manifest: String,
    pub wiring: Wiring,
    pub args: Vec<String>,
    /// `limits.memory`, bytes.
    pub memory: u64,
    /// `limits.timeout`, ns.
    pub timeout: Option<u64>,
    /// One per `wiring.blocks`, same order.
    pub blocks: Vec<BlockBackend>,
    /// One per `wiring.nets`, same order.
    pub nets: Vec<NetBackend>,
    pub random: RandomBackend,
    pub log: LogBackend,
    /// A simulation's settings.
    pub sim: Option<BundleSim>,
    /// A trace to replay (`weft boot --replay`): the kernel answers every
    /// device call from it and touches no device.
    pub replay: Option<&'a [u8]>,
    /// The app, then every filter in `Unikernel::new` order.
    pub components: Vec<Blob<'a>>,
}

/// Why a bundle cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    NotABundle,
    Format { found: u32 },
    Truncated { expected: u64, found: u64 },
    Corrupt,
    WrongTarget { found: String, expected: &'static str },
    EngineConfig { found: u32 },
    /// The checksum matched but a field is malformed: a bug in `weft`.
    Malformed(&'static str),
}

impl core::fmt::Display for BundleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BundleError::NotABundle => f.write_str("not a weft bundle (no WEFTBNDL header); build one with `weft build --target baremetal`"),
            BundleError::Format { found } => write!(
                f,
                "bundle format {found}, this kernel reads format {FORMAT}; rebuild the bundle with this weft"
            ),
            BundleError::Truncated { expected, found } => write!(
                f,
                "truncated bundle: {found} bytes, the header promises {expected}"
            ),
            BundleError::Corrupt => f.write_str("corrupt bundle: checksum mismatch"),
            BundleError::WrongTarget { found, expected } => write!(
                f,
                "bundle built for target `{found}`, this kernel runs `{expected}`"
            ),
            BundleError::EngineConfig { found } => write!(
                f,
                "bundle built with engine config version {found}, this kernel uses {CONFIG_VERSION}; rebuild the bundle with this weft"
            ),
            BundleError::Malformed(what) => write!(f, "malformed bundle ({what})"),
        }
    }
}

impl core::error::Error for BundleError {}

/// A 64-bit checksum for corruption (not tampering): every step is a
/// bijection of the running state, so any single changed word changes it.
pub fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = 0xCBF2_9CE4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(31);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^ (h >> 33)
}

impl<'a> Bundle<'a> {
    /// Decodes `bytes`, checking header, length, checksum, target (`expect`)
    /// and engine config version, in that order. `expect = None` accepts
    /// any target (the host reading a bundle it is about to boot).
    pub fn decode(bytes: &'a [u8], expect: Option<Target>) -> Result<Bundle<'a>, BundleError> {
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        let mut r = Reader { bytes: &bytes[8..] };
        let truncated = BundleError::Truncated { expected: HEADER as u64, found: bytes.len() as u64 };
        let format = r.u32().map_err(|_| truncated.clone())?;
        if format != FORMAT {
            return Err(BundleError::Format { found: format });
        }
        let len = r.u64().map_err(|_| truncated.clone())?;
        let sum = r.u64().map_err(|_| truncated)?;
        let expected = (HEADER as u64).saturating_add(len);
        if bytes.len() as u64 != expected {
            return Err(BundleError::Truncated { expected, found: bytes.len() as u64 });
        }
        let payload = &bytes[HEADER..];
        if checksum(payload) != sum {
            return Err(BundleError::Corrupt);
        }
        let mut r = Reader { bytes: payload };
        let target_name = r.str()?;
        let target = Target::from_name(target_name);
        if let Some(want) = expect {
            if target != Some(want) {
                return Err(BundleError::WrongTarget { found: target_name.to_string(), expected: want.name() });
            }
        }
        let target = target.ok_or(BundleError::Malformed("unknown target"))?;
        let config = r.u32()?;
        if config != CONFIG_VERSION {
            return Err(BundleError::EngineConfig { found: config });
        }
        let debug = r.bool()?;
        let manifest = r.string()?;
        let app = r.string()?;
        let args = r.list(|r| r.string())?;
        let memory = r.u64()?;
        let timeout = r.option(|r| r.u64())?;
        let devices = r.list(|r| {
            let role = r.string()?;
            let backend = match r.u8()? {
                0 => BlockBackend::File { path: r.string()?, size: r.option(|r| r.u64())?, read_only: r.bool()?, preallocate: r.bool()? },
                1 => BlockBackend::Memory { size: r.u64()?, read_only: r.bool()? },
                _ => return Err(BundleError::Malformed("block backend")),
            };
            let filters = r.list(filter)?;
            Ok((Device { role, filters }, backend))
        })?;
        let nets = r.list(|r| {
            let role = r.string()?;
            let link = match r.u8()? {
                0 => NetLink::Tap { device: r.string()? },
                1 => NetLink::Udp { local: r.string()?, remote: r.string()? },
                _ => return Err(BundleError::Malformed("net link")),
            };
            let m = r.take(6)?;
            let mac = [m[0], m[1], m[2], m[3], m[4], m[5]];
            let filters = r.list(filter)?;
            let captures = r.list(|r| r.string())?;
            if captures.len() != filters.len() {
                return Err(BundleError::Malformed("capture count"));
            }
            Ok((Device { role, filters }, NetBackend { link, mac, captures }))
        })?;
        let clock_filters = r.list(filter)?;
        let random = match r.u8()? {
            0 => RandomBackend::Os,
            1 => RandomBackend::Seeded(r.u64()?),
            _ => return Err(BundleError::Malformed("random backend")),
        };
        let log = match r.u8()? {
            0 => LogBackend::Stderr,
            1 => LogBackend::Git { path: r.string()? },
            _ => return Err(BundleError::Malformed("log backend")),
        };
        let stack = r.option(|r| Ok(Stack { filter: filter(r)?, net: r.u32()? as usize }))?;
        if stack.as_ref().is_some_and(|s| s.net >= nets.len()) {
            return Err(BundleError::Malformed("stack net device"));
        }
        let wasi = r.list(|r| Ok((r.string()?, r.string()?)))?;
        let parts = r.list(filter)?;
        let sim = r.option(|r| {
            let (start, tick, fuel) = (r.u64()? as i64, r.u64()?, r.u64()?);
            let boots = r.list(|r| Ok((r.list(|r| r.string())?, r.list(|r| r.list(|r| Ok((r.string()?, r.string()?))))?)))?;
            Ok(BundleSim { start, tick, fuel, boots })
        })?;
        let replay = r.option(|r| r.bytes())?;
        let components = r.list(|r| Ok(Blob { name: r.string()?, bytes: r.bytes()?, symbols: r.bytes()? }))?;
        if !r.bytes.is_empty() {
            return Err(BundleError::Malformed("trailing bytes"));
        }
        let filters: usize = devices.iter().map(|(d, _)| d.filters.len()).sum::<usize>()
            + nets.iter().map(|(d, _)| d.filters.len()).sum::<usize>()
            + clock_filters.len()
            + usize::from(stack.is_some());
        if components.len() != filters + 1 {
            return Err(BundleError::Malformed("component count"));
        }
        let (blocks, backends) = devices.into_iter().unzip();
        let (net_devices, net_backends) = nets.into_iter().unzip();
        Ok(Bundle {
            target,
            debug,
            manifest,
            wiring: Wiring { app, blocks, nets: net_devices, clock_filters, stack, wasi, parts },
            args,
            memory,
            timeout,
            blocks: backends,
            nets: net_backends,
            random,
            log,
            sim,
            replay,
            components,
        })
    }

    /// Encodes the bundle (the inverse of `decode`).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer { out: Vec::new() };
        w.str(self.target.name());
        w.u32(CONFIG_VERSION);
        w.u8(self.debug as u8);
        w.str(&self.manifest);
        w.str(&self.wiring.app);
        w.u32(self.args.len() as u32);
        for a in &self.args {
            w.str(a);
        }
        w.u64(self.memory);
        w.option(self.timeout);
        w.u32(self.wiring.blocks.len() as u32);
        for (d, b) in self.wiring.blocks.iter().zip(&self.blocks) {
            w.str(&d.role);
            match b {
                BlockBackend::File { path, size, read_only, preallocate } => {
                    w.u8(0);
                    w.str(path);
                    w.option(*size);
                    w.u8(*read_only as u8);
                    w.u8(*preallocate as u8);
                }
                BlockBackend::Memory { size, read_only } => {
                    w.u8(1);
                    w.u64(*size);
                    w.u8(*read_only as u8);
                }
            }
            w.filters(&d.filters);
        }
        w.u32(self.wiring.nets.len() as u32);
        for (d, n) in self.wiring.nets.iter().zip(&self.nets) {
            w.str(&d.role);
            match &n.link {
                NetLink::Tap { device } => {
                    w.u8(0);
                    w.str(device);
                }
                NetLink::Udp { local, remote } => {
                    w.u8(1);
                    w.str(local);
                    w.str(remote);
                }
            }
            w.out.extend_from_slice(&n.mac);
            w.filters(&d.filters);
            w.u32(n.captures.len() as u32);
            for c in &n.captures {
                w.str(c);
            }
        }
        w.filters(&self.wiring.clock_filters);
        match self.random {
            RandomBackend::Os => w.u8(0),
            RandomBackend::Seeded(s) => {
                w.u8(1);
                w.u64(s);
            }
        }
        match &self.log {
            LogBackend::Stderr => w.u8(0),
            LogBackend::Git { path } => {
                w.u8(1);
                w.str(path);
            }
        }
        match &self.wiring.stack {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.filter(&s.filter);
                w.u32(s.net as u32);
            }
        }
        w.u32(self.wiring.wasi.len() as u32);
        for (k, v) in &self.wiring.wasi {
            w.str(k);
            w.str(v);
        }
        w.filters(&self.wiring.parts);
        match &self.sim {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.u64(s.start as u64);
                w.u64(s.tick);
                w.u64(s.fuel);
                w.u32(s.boots.len() as u32);
                for (args, configs) in &s.boots {
                    w.u32(args.len() as u32);
                    for a in args {
                        w.str(a);
                    }
                    w.u32(configs.len() as u32);
                    for c in configs {
                        w.u32(c.len() as u32);
                        for (k, v) in c {
                            w.str(k);
                            w.str(v);
                        }
                    }
                }
            }
        }
        match self.replay {
            None => w.u8(0),
            Some(t) => {
                w.u8(1);
                w.bytes(t);
            }
        }
        w.u32(self.components.len() as u32);
        for c in &self.components {
            w.str(&c.name);
            w.bytes(c.bytes);
            w.bytes(c.symbols);
        }
        let payload = w.out;
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&checksum(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

fn filter(r: &mut Reader<'_>) -> Result<Filter, BundleError> {
    Ok(Filter {
        name: r.string()?,
        origin: r.string()?,
        config: r.list(|r| Ok((r.string()?, r.string()?)))?,
        observer: false,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if n > self.bytes.len() {
            return Err(BundleError::Malformed("field runs past the end"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, BundleError> {
        Ok(self.take(1)?[0])
    }
    fn bool(&mut self) -> Result<bool, BundleError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BundleError::Malformed("bool")),
        }
    }
    fn u32(&mut self) -> Result<u32, BundleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, BundleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    fn bytes(&mut self) -> Result<&'a [u8], BundleError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, BundleError> {
        core::str::from_utf8(self.bytes()?).map_err(|_| BundleError::Malformed("utf-8"))
    }
    fn string(&mut self) -> Result<String, BundleError> {
        self.str().map(String::from)
    }
    fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, BundleError>) -> Result<Option<T>, BundleError> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(BundleError::Malformed("option")),
        }
    }
    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Result<T, BundleError>) -> Result<Vec<T>, BundleError> {
        let n = self.u32()? as usize;
        // Each element takes at least one byte: a huge count in a short
        // bundle is refused before allocating for it.
        if n > self.bytes.len() {
            return Err(BundleError::Malformed("list length"));
        }
        (0..n).map(|_| f(self)).collect()
    }
}

struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.out.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn option(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
        }
    }
    fn filter(&mut self, f: &Filter) {
        self.str(&f.name);
        self.str(&f.origin);
        self.u32(f.config.len() as u32);
        for (k, v) in &f.config {
            self.str(k);
            self.str(v);
        }
    }
    fn filters(&mut self, fs: &[Filter]) {
        self.u32(fs.len() as u32);
        for f in fs {
            self.filter(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample(code: &[u8]) -> Bundle<'_> {
        let f = Filter { name: "block-fault".into(), config: vec![("drop-every".into(), "100".into())], origin: "weft.toml:9".into(), observer: false };
        let arp = Filter { name: "arp-log".into(), config: vec![], origin: "weft.toml:14".into(), observer: false };
        let tcpip = Filter { name: "tcpip".into(), config: vec![("ip".into(), "\"10.0.0.2/24\"".into())], origin: "weft.toml:17".into(), observer: false };
        Bundle {
            target: Target::BareMetal,
            debug: true,
            manifest: "/x/weft.toml".into(),
            wiring: Wiring {
                app: "kvstore".into(),
                blocks: vec![Device { role: "storage".into(), filters: vec![f] }],
                nets: vec![Device { role: "service".into(), filters: vec![arp] }],
                clock_filters: vec![],
                stack: Some(Stack { filter: tcpip, net: 0 }),
                wasi: vec![("env".into(), "GREETING=hi".into()), ("preopen".into(), "/data=memory".into())],
                parts: vec![Filter { name: "kv".into(), config: vec![("device".into(), "storage".into())], origin: "weft.toml:20".into(), observer: false }],
            },
            args: vec!["fill".into(), "10".into()],
            memory: 1 << 28,
            timeout: Some(2_000_000_000),
            blocks: vec![BlockBackend::File { path: "disk.img".into(), size: Some(1 << 24), read_only: false, preallocate: true }],
            nets: vec![NetBackend {
                link: NetLink::Udp { local: "127.0.0.1:5000".into(), remote: "127.0.0.1:5001".into() },
                mac: [0x52, 0x54, 0, 1, 2, 3],
                captures: vec!["service.pcap".into()],
            }],
            random: RandomBackend::Seeded(7),
            log: LogBackend::Git { path: "events.git".into() },
            sim: Some(BundleSim {
                start: -5,
                tick: 1000,
                fuel: 1 << 40,
                boots: vec![(vec!["fill".into()], vec![vec![("sim-seed".into(), "9".into())]]), (vec!["verify".into()], vec![])],
            }),
            replay: Some(b"WEFTTRCE"),
            components: vec![
                Blob { name: "kvstore".into(), bytes: code, symbols: &code[4..] },
                Blob { name: "block-fault".into(), bytes: &code[1..], symbols: &[] },
                Blob { name: "arp-log".into(), bytes: &code[2..], symbols: &[] },
                Blob { name: "tcpip".into(), bytes: &code[3..], symbols: &code[..1] },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let code = [1u8, 2, 3, 4, 5];
        let bytes = sample(&code).encode();
        let b = Bundle::decode(&bytes, Some(Target::BareMetal)).unwrap();
        assert_eq!(b.wiring.blocks[0].filters[0].config, vec![("drop-every".to_string(), "100".to_string())]);
        assert_eq!(b.blocks, sample(&code).blocks);
        assert_eq!(b.nets, sample(&code).nets);
        assert_eq!(b.wiring.nets[0].role, "service");
        assert_eq!(b.wiring.nets[0].filters[0].name, "arp-log");
        let stack = b.wiring.stack.as_ref().unwrap();
        assert_eq!((stack.filter.name.as_str(), stack.net), ("tcpip", 0));
        assert_eq!(stack.filter.config, vec![("ip".to_string(), "\"10.0.0.2/24\"".to_string())]);
        assert_eq!(b.components, sample(&code).components);
        assert_eq!((b.memory, b.timeout, b.random), (1 << 28, Some(2_000_000_000), RandomBackend::Seeded(7)));
        assert_eq!(b.args, vec!["fill", "10"]);
        assert_eq!(b.log, LogBackend::Git { path: "events.git".into() });
        assert_eq!(b.sim, sample(&code).sim);
        assert_eq!(b.replay, Some(&b"WEFTTRCE"[..]));
        assert!(b.debug);
    }

    #[test]
    fn refuses_bad_bundles_without_panicking() {
        let code = [1u8, 2, 3, 4, 5];
        let bytes = sample(&code).encode();
        assert_eq!(Bundle::decode(b"\0asm\x0d\0\x01\0", None).unwrap_err(), BundleError::NotABundle);
        assert_eq!(Bundle::decode(&[], None).unwrap_err(), BundleError::NotABundle);
        for n in 8..bytes.len() {
            let e = Bundle::decode(&bytes[..n], None).unwrap_err();
            assert!(matches!(e, BundleError::Truncated { .. }), "{n}: {e}");
        }
        for i in HEADER..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert_eq!(Bundle::decode(&bad, None).unwrap_err(), BundleError::Corrupt, "flip at {i}");
        }
        let mut other = sample(&code);
        other.target = Target::BareMetalPulley;
        let e = Bundle::decode(&other.encode(), Some(Target::BareMetal)).unwrap_err();
        assert_eq!(e.to_string(), "bundle built for target `pulley64`, this kernel runs `x86_64-unknown-none`");
        let mut v2 = bytes.clone();
        v2[8] = 9;
        assert_eq!(Bundle::decode(&v2, None).unwrap_err(), BundleError::Format { found: 9 });
    }
}
