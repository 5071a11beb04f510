//! `weft.toml`: parsing and validation of everything that can be checked
//! from the text alone. Problems are collected, not thrown: the user sees
//! all of them at once, each with file, line, key and a fix.

use std::path::{Component as PathPart, Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::units::{parse_duration, parse_size};

/// The device kinds of `weft:devices`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Block,
    Net,
    Clock,
    Console,
    Random,
    Log,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Block, Kind::Net, Kind::Clock, Kind::Console, Kind::Random, Kind::Log];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Net => "net",
            Kind::Clock => "clock",
            Kind::Console => "console",
            Kind::Random => "random",
            Kind::Log => "log",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Backends a host offers for this kind; the first is the default.
    pub fn backends(self) -> &'static [&'static str] {
        match self {
            Kind::Block => &["file", "memory"],
            Kind::Net => &["tap", "udp", "sim"],
            Kind::Clock => &["system", "virtual"],
            Kind::Console => &["stdio"],
            Kind::Random => &["os", "seeded"],
            Kind::Log => &["stderr", "git"],
        }
    }

    /// Whether one device of this kind serves the whole unikernel.
    pub fn singleton(self) -> bool {
        !matches!(self, Kind::Block | Kind::Net)
    }

    /// The filter world for this kind, if filters exist for it.
    pub fn filter_world(self) -> Option<&'static str> {
        match self {
            Kind::Block => Some("block-filter"),
            Kind::Net => Some("net-filter"),
            Kind::Clock => Some("clock-filter"),
            _ => None,
        }
    }
}

/// Where a component comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A component shipped with weft, by name (`kvstore`).
    Shipped(String),
    /// A file, relative to the manifest's folder.
    File(PathBuf),
}

impl core::fmt::Display for Source {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Source::Shipped(n) => f.write_str(n),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AppSpec {
    pub component: Source,
    pub args: Vec<String>,
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    /// A file-backed disk (`path` relative to the manifest's folder). An image
    /// weft creates (missing, with `size`) is sparse unless `preallocate`.
    File { path: PathBuf, size: Option<u64>, read_only: bool, preallocate: bool },
    /// A disk in memory, zeroed at start, gone at exit.
    Memory { size: u64, read_only: bool },
    System,
    /// Simulated time: advances only when the app waits (`[sim]`).
    Virtual,
    Stdio,
    Os,
    /// Deterministic random bytes from a seed (for reproducible tests).
    Seeded { seed: u64 },
    Stderr,
    /// Events as commits in a git repository (relative to the manifest).
    Git { path: PathBuf },
    /// An existing TAP interface, by name.
    /// `offload`: segmentation offload through virtio-net headers (Linux only).
    Tap { device: String, offload: bool },
    /// Frames as UDP datagrams between two sockets (QEMU's
    /// `-netdev socket,udp=…,localaddr=…` wire format); needs no privileges.
    Udp { local: String, remote: String },
    /// One end of a simulated link of a cluster (docs/simulation.md).
    SimLink,
}

#[derive(Clone, Debug)]
pub struct FilterSpec {
    pub component: Source,
    pub config: Vec<(String, String)>,
    pub line: usize,
    /// Net filters: the pcap file a `capture` import writes to.
    pub capture: Option<PathBuf>,
    /// Swarm settings (`[sim]` only): config keys given as a range
    /// `[low, high]`, drawn per seed; absent from `config`.
    pub swarm: Vec<Swarm>,
}

pub use crate::sim::Swarm;

/// `[sim]`: the run is a deterministic simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSpec {
    pub seed: u64,
    /// Virtual wall-clock time at boot, ns since the Unix epoch.
    pub start: i64,
    /// Virtual time a clock reading advances by when nothing waits.
    pub tick: u64,
    /// Wasm instructions one boot may execute before it counts as hung.
    pub fuel: u64,
    /// The exit code a passing run ends with (`weft explore`).
    pub expect_exit: u8,
    /// After a power cut: boot the app again with these args.
    pub restart: Option<Vec<String>>,
    /// Line of `[sim]`; 0 when made by `--sim`.
    pub line: usize,
}

/// 2000-01-01T00:00:00Z: the default virtual boot time.
pub const SIM_START: i64 = 946_684_800_000_000_000;

impl SimSpec {
    /// `--sim` on a manifest without `[sim]`.
    pub fn defaults() -> SimSpec {
        SimSpec { seed: 0, start: SIM_START, tick: 1_000, fuel: 10_000_000_000, expect_exit: 0, restart: None, line: 0 }
    }
}

/// What the command line changes about a manifest's simulation.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimOverride {
    /// `--sim`: simulate even without `[sim]`.
    pub enable: bool,
    /// `--seed N`.
    pub seed: Option<u64>,
}

/// `[components.<name>]`: a component that provides interfaces the app
/// imports (e.g. `kv`), composed into the app before linking.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    pub name: String,
    pub component: Source,
    /// For its `filter.configure`.
    pub config: Vec<(String, String)>,
    pub line: usize,
}

/// `[stack]`: what serves the app's `sockets`.
#[derive(Clone, Debug)]
pub struct StackSpec {
    /// `component = "tcpip"`, or `None` for `backend = "host"`.
    pub component: Option<Source>,
    /// The role of the net device the stack drives (component stacks only).
    pub net: Option<String>,
    /// Every other key, for the stack's `configure`.
    pub config: Vec<(String, String)>,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct DeviceSpec {
    pub role: String,
    pub kind: Kind,
    pub backend: Backend,
    pub filters: Vec<FilterSpec>,
    /// Line of `[devices.<role>]`; 0 when bound by default.
    pub line: usize,
}

#[derive(Clone, Debug)]
pub struct LimitsSpec {
    pub memory: u64,
    pub timeout: Option<u64>,
}

pub const DEFAULT_MEMORY: u64 = 256 << 20;
pub const SECTOR_SIZE: u64 = 512;

/// A parsed, text-level-valid manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file as the user named it.
    pub path: PathBuf,
    /// Its folder: every relative path is resolved inside it.
    pub dir: PathBuf,
    pub app: AppSpec,
    /// Declared devices in role order, then defaults for undeclared kinds.
    pub devices: Vec<DeviceSpec>,
    pub stack: Option<StackSpec>,
    pub limits: LimitsSpec,
    /// `[components.<name>]`: components composed into the app, whose
    /// exports satisfy its imports (`kv`), in manifest order.
    pub components: Vec<ComponentSpec>,
    /// `[wasi]`: configure entries for the `wasi` component (`env`, `cwd`,
    /// `preopen`), in the order it takes them; the app's args come first.
    pub wasi: Vec<(String, String)>,
    /// `[sim]` (or `--sim`): a deterministic simulation.
    pub sim: Option<SimSpec>,
}

/// Problems found in a manifest, each already a complete message.
#[derive(Debug, Clone, Default)]
pub struct Problems(pub Vec<String>);

impl core::fmt::Display for Problems {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {p}")?;
        }
        Ok(())
    }
}

impl core::error::Error for Problems {}

/// Collects problems against one source text.
pub struct Report<'a> {
    file: String,
    src: &'a str,
    pub problems: Vec<String>,
}

impl<'a> Report<'a> {
    pub fn new(file: &Path, src: &'a str) -> Self {
        Report { file: file.display().to_string(), src, problems: Vec::new() }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())].bytes().filter(|&b| b == b'\n').count() + 1
    }

    /// A problem at byte `offset`, about `key`.
    pub fn at(&mut self, offset: usize, key: &str, msg: impl core::fmt::Display) {
        let line = self.line_of(offset);
        self.problems.push(clip(&format!("{}:{line}: `{key}`: {msg}", self.file)));
    }

    /// A problem at a known line (0 = the file as a whole).
    pub fn at_line(&mut self, line: usize, key: &str, msg: impl core::fmt::Display) {
        match line {
            0 => self.problems.push(clip(&format!("{}: `{key}`: {msg}", self.file))),
            _ => self.problems.push(clip(&format!("{}:{line}: `{key}`: {msg}", self.file))),
        }
    }

    pub fn finish(self) -> Result<(), Problems> {
        if self.problems.is_empty() { Ok(()) } else { Err(Problems(self.problems)) }
    }
}

/// A message with every overlong word (a value or key from the input, echoed
/// back) cut to its first 60 characters: a 100 KB string in a manifest makes
/// a readable error, not a 100 KB one.
fn clip(msg: &str) -> String {
    const LONG: usize = 100;
    if msg.len() <= LONG {
        return msg.to_string();
    }
    let mut out = String::with_capacity(msg.len().min(4096));
    for (i, word) in msg.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.char_indices().nth(60) {
            Some((cut, _)) if word.len() > LONG => {
                out.push_str(&word[..cut]);
                out.push_str(&format!("… ({} bytes)", word.len()));
            }
            _ => out.push_str(word),
        }
    }
    out
}

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Checks a table's keys against `known`; reports the unknown ones.
fn check_keys(r: &mut Report, t: &Table, prefix: &str, known: &[&str]) {
    for (k, _) in t.iter() {
        if !known.contains(&k.get_ref().as_ref()) {
            let key = join(prefix, k.get_ref());
            let hint = match known {
                [] => "remove it".to_string(),
                _ => format!("remove it or use one of: {}", known.join(", ")),
            };
            r.at(k.span().start, &key, format!("unknown key; {hint}"));
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn get<'t, 'i>(t: &'t Table<'i>, key: &str) -> Option<&'t Value<'i>> {
    t.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v)
}

fn string<'t>(r: &mut Report, v: &'t Value, key: &str) -> Option<&'t str> {
    match v.get_ref().as_str() {
        Some(s) => Some(s),
        None => {
            r.at(v.span().start, key, format!("expected a string, found {}", v.get_ref().type_str()));
            None
        }
    }
}

/// `key` of `t` as a boolean: false when absent, `None` (reported) when not a boolean.
fn flag(r: &mut Report, t: &Table, key: &str, full: &str) -> Option<bool> {
    match get(t, key) {
        None => Some(false),
        Some(v) => match v.get_ref().as_bool() {
            Some(b) => Some(b),
            None => {
                r.at(v.span().start, full, "expected true or false");
                None
            }
        },
    }
}

/// `t.config`, a table of filter or component settings rendered as TOML values;
/// reported when it is not a table.
fn config_table(r: &mut Report, t: &Table, key: &str) -> Vec<(String, String)> {
    let Some(c) = get(t, "config") else { return Vec::new() };
    match c.get_ref().as_table() {
        Some(ct) => ct.iter().map(|(k, v)| (k.get_ref().to_string(), config_value(v.get_ref()))).collect(),
        None => {
            r.at(c.span().start, &format!("{key}.config"), "expected a table: config = { key = value }");
            Vec::new()
        }
    }
}

/// Splits a filter's swarm ranges (`key = [low, high]`, two numbers) out of
/// its config. They need `[sim]`: a range is drawn per simulation seed.
fn swarm_ranges(r: &mut Report, t: &Table, key: &str, sim: bool, config: &mut Vec<(String, String)>) -> Vec<Swarm> {
    let mut out = Vec::new();
    let Some(ct) = get(t, "config").and_then(|c| c.get_ref().as_table()) else { return out };
    for (k, v) in ct.iter() {
        let Some(items) = v.get_ref().as_array() else { continue };
        let nums: Vec<(f64, bool)> = items
            .iter()
            .filter_map(|x| match x.get_ref() {
                DeValue::Integer(_) => integer(x.get_ref()).map(|i| (i as f64, true)),
                DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok().map(|f| (f, false)),
                _ => None,
            })
            .collect();
        if nums.len() != 2 || items.len() != 2 {
            continue;
        }
        let full = format!("{key}.config.{}", k.get_ref());
        let ((low, li), (high, hi)) = (nums[0], nums[1]);
        if !sim {
            r.at(v.span().start, &full, "a range [low, high] is drawn per simulation seed and needs [sim]; add a [sim] table (or run with --sim), or give one value");
        } else if !(low <= high) {
            r.at(v.span().start, &full, format!("range [{low}, {high}] is empty; write [low, high] with low <= high"));
        } else {
            out.push(Swarm { key: k.get_ref().to_string(), low, high, integer: li && hi });
        }
        config.retain(|(ck, _)| ck != k.get_ref().as_ref());
    }
    out
}

fn integer(v: &DeValue) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

/// A size written as `"16MiB"` or as a plain integer of bytes.
fn size(r: &mut Report, v: &Value, key: &str) -> Option<u64> {
    let parsed = match v.get_ref() {
        DeValue::String(s) => parse_size(s),
        other => integer(other).and_then(|i| u64::try_from(i).ok()),
    };
    if parsed.is_none() {
        r.at(v.span().start, key, "expected a size like \"16MiB\", \"512KiB\" or a number of bytes");
    }
    parsed
}

fn duration(r: &mut Report, v: &Value, key: &str) -> Option<i64> {
    let parsed = v.get_ref().as_str().and_then(parse_duration);
    if parsed.is_none() {
        r.at(v.span().start, key, "expected a duration like \"30s\", \"500ms\" or \"1m30s\"");
    }
    parsed
}

/// Renders a config value in TOML syntax (strings unquoted), as the
/// `filter.configure` contract says.
fn config_value(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => n.to_string(),
            Err(_) => i.as_str().to_string(),
        },
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(a) => {
            let items: Vec<String> = a.iter().map(|x| config_value(x.get_ref())).collect();
            format!("[{}]", items.join(", "))
        }
        DeValue::Table(t) => {
            let items: Vec<String> =
                t.iter().map(|(k, x)| format!("{} = {}", k.get_ref(), config_value(x.get_ref()))).collect();
            format!("{{ {} }}", items.join(", "))
        }
    }
}

/// Parses `component = "…"`: a path (contains `/` or ends in `.wasm`) that
/// must stay inside the manifest's folder, or a shipped component's name.
fn source(r: &mut Report, v: &Value, key: &str) -> Option<Source> {
    let s = string(r, v, key)?;
    if s.is_empty() {
        r.at(v.span().start, key, "empty component name; give a shipped component's name or a path to a .wasm file");
        return None;
    }
    if !(s.contains('/') || s.ends_with(".wasm")) {
        return Some(Source::Shipped(s.to_string()));
    }
    let p = confined(r, v, key, s)?;
    Some(Source::File(p))
}

/// A relative path that stays inside the manifest's folder (the host opens
/// it through a cap-std `Dir`, which enforces the same rule).
fn confined(r: &mut Report, v: &Value, key: &str, s: &str) -> Option<PathBuf> {
    let p = Path::new(s);
    if !stays_inside(p) {
        r.at(
            v.span().start,
            key,
            format!("path {s:?} leaves the manifest's folder; paths are relative to the manifest and must stay inside it (copy the file there: a symlink out of it is refused too)"),
        );
        return None;
    }
    Some(p.to_path_buf())
}

/// Whether relative path `p` names something inside its base folder by its
/// words alone: not absolute, and no `..` climbing above the base. (Symlinks
/// are the host's to refuse when it opens the path.)
pub fn stays_inside(p: &Path) -> bool {
    !p.is_absolute()
        && p.components()
            .try_fold(0i32, |depth, c| {
                let d = match c {
                    PathPart::ParentDir => depth - 1,
                    PathPart::Normal(_) => depth + 1,
                    _ => depth,
                };
                (d >= 0).then_some(d)
            })
            .is_some()
}

impl Manifest {
    /// Parses and validates `src`, the contents of the manifest at `path`.
    pub fn parse(path: &Path, src: &str) -> Result<Manifest, Problems> {
        Self::parse_with(path, src, SimOverride::default())
    }

    /// [`Manifest::parse`], with the command line's say on simulation.
    pub fn parse_with(path: &Path, src: &str, over: SimOverride) -> Result<Manifest, Problems> {
        let mut r = Report::new(path, src);
        let doc = match DeTable::parse(src) {
            Ok(d) => d,
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                let line = r.line_of(at);
                let msg = e.message().trim().to_string();
                return Err(Problems(vec![format!("{}:{line}: invalid TOML: {msg}", path.display())]));
            }
        };
        let doc = doc.get_ref();
        check_keys(&mut r, doc, "", &["app", "devices", "log", "stack", "limits", "wasi", "components", "sim"]);

        let app = Self::app(&mut r, doc);
        let sim = Self::sim(&mut r, doc, over);
        let mut devices = Self::devices(&mut r, doc, sim.is_some());
        let limits = Self::limits(&mut r, doc);
        let stack = Self::stack(&mut r, doc, &devices);
        let wasi = Self::wasi(&mut r, doc, &devices);
        let components = Self::components(&mut r, doc);

        // Kinds with one obvious default are bound to it when left out; a
        // simulation's defaults are its deterministic backends.
        for kind in Kind::ALL.into_iter().filter(|k| k.singleton()) {
            if !devices.iter().any(|d| d.kind == kind) {
                let backend = match (kind, &sim) {
                    (Kind::Clock, None) => Backend::System,
                    (Kind::Clock, Some(_)) => Backend::Virtual,
                    (Kind::Console, _) => Backend::Stdio,
                    (Kind::Random, None) => Backend::Os,
                    (Kind::Random, Some(s)) => Backend::Seeded { seed: crate::sim::mix(s.seed, crate::sim::RANDOM_SALT) },
                    _ => Backend::Stderr,
                };
                devices.push(DeviceSpec { role: kind.name().into(), kind, backend, filters: vec![], line: 0 });
            }
        }
        if let Some(s) = &sim {
            Self::refuse_nondeterminism(&mut r, s, &devices, stack.as_ref());
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        r.finish()?;
        Ok(Manifest {
            path: path.to_path_buf(),
            dir: if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir },
            app: app.expect("no problems means [app] parsed"),
            devices,
            stack,
            limits,
            components,
            wasi,
            sim,
        })
    }

    /// `[sim]`, or the defaults `--sim` asks for; `--seed` wins over `seed`.
    fn sim(r: &mut Report, doc: &Table, over: SimOverride) -> Option<SimSpec> {
        let mut s = SimSpec::defaults();
        match get(doc, "sim") {
            None if !over.enable => return None,
            None => {}
            Some(v) => {
                s.line = r.line_of(v.span().start);
                let Some(t) = v.get_ref().as_table() else {
                    r.at(v.span().start, "sim", "expected a table: [sim]");
                    return None;
                };
                check_keys(r, t, "sim", &["seed", "start", "tick", "fuel", "expect-exit", "restart"]);
                let uint = |r: &mut Report, key: &str, max: u64| -> Option<u64> {
                    let v = get(t, key)?;
                    match integer(v.get_ref()).and_then(|i| u64::try_from(i).ok()).filter(|&n| n <= max) {
                        Some(n) => Some(n),
                        None => {
                            r.at(v.span().start, &format!("sim.{key}"), format!("expected an integer from 0 to {max}"));
                            None
                        }
                    }
                };
                if let Some(n) = uint(r, "seed", u64::MAX >> 1) {
                    s.seed = n;
                }
                if let Some(n) = uint(r, "fuel", u64::MAX >> 2) {
                    s.fuel = n.max(1);
                }
                if let Some(n) = uint(r, "expect-exit", 255) {
                    s.expect_exit = n as u8;
                }
                if let Some(v) = get(t, "tick") {
                    match duration(r, v, "sim.tick") {
                        Some(ns) if ns < 0 => r.at(v.span().start, "sim.tick", "must not be negative"),
                        Some(ns) => s.tick = ns as u64,
                        None => {}
                    }
                }
                if let Some(v) = get(t, "start") {
                    let text = match v.get_ref() {
                        DeValue::Datetime(d) => Some(d.to_string()),
                        DeValue::String(x) => Some(x.to_string()),
                        _ => None,
                    };
                    match text.as_deref().and_then(crate::units::parse_rfc3339) {
                        Some(ns) => s.start = ns,
                        None => r.at(v.span().start, "sim.start", "expected an RFC 3339 time like 2026-01-01T00:00:00Z"),
                    }
                }
                if let Some(v) = get(t, "restart") {
                    match v.get_ref().as_table() {
                        Some(rt) => {
                            check_keys(r, rt, "sim.restart", &["args"]);
                            let mut args = Vec::new();
                            if let Some(a) = get(rt, "args") {
                                match a.get_ref().as_array() {
                                    Some(items) => {
                                        for item in items.iter() {
                                            match item.get_ref() {
                                                DeValue::Table(_) | DeValue::Array(_) => r.at(item.span().start, "sim.restart.args", "expected strings"),
                                                other => args.push(config_value(other)),
                                            }
                                        }
                                    }
                                    None => r.at(a.span().start, "sim.restart.args", "expected an array of strings: args = [\"verify\"]"),
                                }
                            }
                            s.restart = Some(args);
                        }
                        None => r.at(v.span().start, "sim.restart", "expected a table: restart = { args = [\"verify\"] }"),
                    }
                }
            }
        }
        if let Some(seed) = over.seed {
            s.seed = seed;
        }
        Some(s)
    }

    /// A simulation must not read anything weft does not control: a backend
    /// that brings the outside world in is refused, with the deterministic
    /// one to use instead.
    fn refuse_nondeterminism(r: &mut Report, sim: &SimSpec, devices: &[DeviceSpec], stack: Option<&StackSpec>) {
        let why = if sim.line == 0 { "--sim".to_string() } else { format!("[sim] (line {})", sim.line) };
        for d in devices.iter().filter(|d| d.line > 0) {
            let (what, fix) = match &d.backend {
                Backend::System => ("the system clock", "backend = \"virtual\" (or leave the device out)"),
                Backend::Os => ("the OS random source", "backend = \"seeded\" (or leave the device out: it is seeded from the simulation's seed)"),
                Backend::Tap { .. } => ("a TAP device (traffic from outside)", "a simulated link (coming in `weft explore` clusters); run it without --sim"),
                Backend::Udp { .. } => ("a UDP link (traffic from outside)", "a simulated link; run it without --sim"),
                _ => continue,
            };
            r.at_line(d.line, &format!("devices.{}.backend", d.role), format!("{what} is not deterministic, and {why} makes this run a simulation; use {fix}"));
        }
        if let Some(st) = stack.filter(|s| s.component.is_none()) {
            r.at_line(st.line, "stack.backend", format!("the host's TCP/IP stack is not deterministic, and {why} makes this run a simulation; use component = \"tcpip\" on a net device"));
        }
    }

    fn components(r: &mut Report, doc: &Table) -> Vec<ComponentSpec> {
        let mut out = Vec::new();
        let Some(v) = get(doc, "components") else { return out };
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "components", "expected tables: [components.kv]");
            return out;
        };
        for (name, cv) in t {
            let key = format!("components.{}", name.get_ref());
            if !valid_role(name.get_ref()) || name.get_ref() == "wasi" {
                r.at(name.span().start, &key, "a component name is lowercase letters, digits and `-`, and not `wasi` (weft composes that one itself)");
                continue;
            }
            let Some(ct) = cv.get_ref().as_table() else {
                r.at(cv.span().start, &key, format!("expected a table: [{key}] with component = \"…\""));
                continue;
            };
            check_keys(r, ct, &key, &["component", "config"]);
            let component = match get(ct, "component") {
                Some(c) => source(r, c, &format!("{key}.component")),
                None => {
                    r.at(cv.span().start, &format!("{key}.component"), "missing; name the component (shipped, or a path ending in .wasm)");
                    None
                }
            };
            let config = config_table(r, ct, &key);
            if let Some(component) = component {
                out.push(ComponentSpec { name: name.get_ref().to_string(), component, config, line: r.line_of(cv.span().start) });
            }
        }
        out
    }

    /// `[wasi]`: `env` (a table of strings), `cwd`, and `preopens`, a table
    /// from guest directory to `"memory"` (an empty in-memory directory) or
    /// `"tar:<role>"` (a read-only tree: the tar archive on block device `<role>`) or
    /// `"fat:<role>"` (a writable FAT file system on block device `<role>`).
    fn wasi(r: &mut Report, doc: &Table, devices: &[DeviceSpec]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(v) = get(doc, "wasi") else { return out };
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "wasi", "expected a table: [wasi]");
            return out;
        };
        check_keys(r, t, "wasi", &["env", "cwd", "preopens"]);
        if let Some(env) = get(t, "env") {
            match env.get_ref().as_table() {
                Some(vars) => {
                    for (name, value) in vars {
                        let key = format!("wasi.env.{}", name.get_ref());
                        if name.get_ref().is_empty() || name.get_ref().contains(['=', '\0']) {
                            r.at(name.span().start, &key, "a variable name cannot be empty or contain `=`");
                        } else if let Some(value) = string(r, value, &key) {
                            out.push(("env".into(), format!("{}={value}", name.get_ref())));
                        }
                    }
                }
                None => r.at(env.span().start, "wasi.env", "expected a table of strings: env = { NAME = \"value\" }"),
            }
        }
        if let Some(cwd) = get(t, "cwd") {
            if let Some(c) = string(r, cwd, "wasi.cwd") {
                if c.starts_with('/') {
                    out.push(("cwd".into(), c.to_string()));
                } else {
                    r.at(cwd.span().start, "wasi.cwd", "must be an absolute guest path such as \"/data\"");
                }
            }
        }
        if let Some(pre) = get(t, "preopens") {
            let Some(dirs) = pre.get_ref().as_table() else {
                r.at(pre.span().start, "wasi.preopens", "expected a table: preopens = { \"/data\" = \"tar:files\", \"/tmp\" = \"memory\" }");
                return out;
            };
            for (guest, spec) in dirs {
                let key = format!("wasi.preopens.\"{}\"", guest.get_ref());
                let Some(spec_s) = string(r, spec, &key) else { continue };
                if !guest.get_ref().starts_with('/') {
                    r.at(guest.span().start, &key, "a preopen is an absolute guest path such as \"/data\"");
                    continue;
                }
                let on_block = spec_s.strip_prefix("tar:").map(|r| (r, "a tar archive")).or_else(|| spec_s.strip_prefix("fat:").map(|r| (r, "a FAT file system (or nothing: a blank device is formatted)")));
                match on_block {
                    None if spec_s == "memory" => {}
                    Some((role, _)) if devices.iter().any(|d| d.role == role && d.kind == Kind::Block) => {}
                    Some((role, holding)) => {
                        let blocks: Vec<&str> = devices.iter().filter(|d| d.kind == Kind::Block).map(|d| d.role.as_str()).collect();
                        let have = if blocks.is_empty() { "none is declared".to_string() } else { format!("declared: {}", blocks.join(", ")) };
                        r.at(spec.span().start, &key, format!("`{role}` is not a block device ({have}); declare [devices.{role}] with kind = \"block\" holding {holding}"));
                        continue;
                    }
                    None => {
                        r.at(spec.span().start, &key, "expected \"memory\", \"tar:<block device role>\" or \"fat:<block device role>\"");
                        continue;
                    }
                }
                out.push(("preopen".into(), format!("{}={spec_s}", guest.get_ref())));
            }
        }
        out
    }

    fn stack(r: &mut Report, doc: &Table, devices: &[DeviceSpec]) -> Option<StackSpec> {
        let v = get(doc, "stack")?;
        let line = r.line_of(v.span().start);
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "stack", "expected a table: [stack]");
            return None;
        };
        let backend = get(t, "backend").and_then(|b| string(r, b, "stack.backend"));
        let component = get(t, "component");
        match (backend, component) {
            (Some("host"), None) => {
                check_keys(r, t, "stack", &["backend", "address"]);
                let mut config = vec![];
                if let Some(a) = get(t, "address")
                    && let Some(s) = string(r, a, "stack.address")
                {
                    match s.parse::<core::net::Ipv4Addr>() {
                        Ok(_) => config.push(("address".to_string(), s.to_string())),
                        Err(_) => r.at(a.span().start, "stack.address", format!("{s:?} is not an IPv4 address; address = \"0.0.0.0\" listens on every address (a container's, a pod's), \"127.0.0.1\" (the default) on loopback only")),
                    }
                }
                Some(StackSpec { component: None, net: None, config, line })
            }
            (Some(other), None) => {
                let b = get(t, "backend").expect("read above");
                r.at(b.span().start, "stack.backend", format!("unknown stack backend {other:?}; use backend = \"host\" (the host's own TCP/IP) or component = \"tcpip\""));
                None
            }
            (Some(_), Some(c)) => {
                r.at(c.span().start, "stack", "give either `component` (a stack component on a net device) or `backend = \"host\"`, not both");
                None
            }
            (None, c) => {
                let component = match c {
                    Some(c) => source(r, c, "stack.component")?,
                    None => Source::Shipped("tcpip".into()),
                };
                let nets: Vec<&str> = devices.iter().filter(|d| d.kind == Kind::Net).map(|d| d.role.as_str()).collect();
                let net = match get(t, "net") {
                    Some(n) => {
                        let name = string(r, n, "stack.net")?;
                        if !nets.contains(&name) {
                            r.at(n.span().start, "stack.net", format!("no net device `{name}`; declare [devices.{name}] with kind = \"net\"{}", if nets.is_empty() { String::new() } else { format!(" or use one of: {}", nets.join(", ")) }));
                            return None;
                        }
                        name.to_string()
                    }
                    None => match nets.as_slice() {
                        [one] => one.to_string(),
                        _ => {
                            r.at_line(line, "stack.net", "missing; name the net device the stack drives: net = \"<role>\"");
                            return None;
                        }
                    },
                };
                let config = t
                    .iter()
                    .filter(|(k, _)| !["component", "net"].contains(&k.get_ref().as_ref()))
                    .map(|(k, v)| (k.get_ref().to_string(), config_value(v.get_ref())))
                    .collect();
                Some(StackSpec { component: Some(component), net: Some(net), config, line })
            }
        }
    }

    fn app(r: &mut Report, doc: &Table) -> Option<AppSpec> {
        let Some(v) = get(doc, "app") else {
            r.at_line(0, "app", "missing [app] table; add:\n  [app]\n  component = \"hello\"");
            return None;
        };
        let line = r.line_of(v.span().start);
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "app", "expected a table: [app]");
            return None;
        };
        check_keys(r, t, "app", &["component", "args"]);
        let component = match get(t, "component") {
            Some(c) => source(r, c, "app.component"),
            None => {
                r.at_line(line, "app.component", "missing; name a shipped component (\"hello\") or a .wasm file");
                None
            }
        };
        let mut args = Vec::new();
        if let Some(a) = get(t, "args") {
            match a.get_ref().as_array() {
                Some(items) => {
                    for item in items.iter() {
                        match item.get_ref() {
                            DeValue::String(s) => args.push(s.to_string()),
                            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                                args.push(config_value(item.get_ref()))
                            }
                            other => r.at(item.span().start, "app.args", format!("expected strings, found {}", other.type_str())),
                        }
                    }
                }
                None => r.at(a.span().start, "app.args", "expected an array of strings: args = [\"fill\", \"1000\"]"),
            }
        }
        Some(AppSpec { component: component?, args, line })
    }

    fn devices(r: &mut Report, doc: &Table, sim: bool) -> Vec<DeviceSpec> {
        let mut out: Vec<DeviceSpec> = Vec::new();
        let Some(v) = get(doc, "devices") else { return out };
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "devices", "expected a table of devices: [devices.<role>]");
            return out;
        };
        for (role, dv) in t.iter() {
            let role_name = role.get_ref().to_string();
            let prefix = format!("devices.{role_name}");
            let line = r.line_of(role.span().start);
            if !valid_role(&role_name) {
                r.at(role.span().start, &prefix, "a role name is lowercase letters, digits and '-', starting with a letter");
            }
            if let Some(d) = Self::device(r, &out, role_name, &prefix, line, dv, None, sim) {
                out.push(d);
            }
        }
        // `[log]` is shorthand for `[devices.log]` with `kind = "log"`.
        if let Some(lv) = get(doc, "log") {
            let line = r.line_of(lv.span().start);
            if let Some(d) = Self::device(r, &out, "log".into(), "log", line, lv, Some(Kind::Log), sim) {
                out.push(d);
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn device(r: &mut Report, out: &[DeviceSpec], role_name: String, prefix: &str, line: usize, dv: &Value, forced: Option<Kind>, sim: bool) -> Option<DeviceSpec> {
        let Some(dt) = dv.get_ref().as_table() else {
            r.at(dv.span().start, prefix, "expected a table: [devices.<role>] with kind and backend");
            return None;
        };
        let kind = match (forced, get(dt, "kind")) {
            (Some(k), None) => Some(k),
            (Some(_), Some(k)) => {
                r.at(k.span().start, &format!("{prefix}.kind"), "`[log]` is always kind = \"log\"; remove the key");
                None
            }
            (None, k) => match k {
                None => {
                    r.at_line(line, &format!("{prefix}.kind"), "missing; one of: block, net, clock, console, random, log");
                    None
                }
                Some(k) => {
                    let s = string(r, k, &format!("{prefix}.kind"));
                    let kind = s.and_then(Kind::parse);
                    if s.is_some() && kind.is_none() {
                        r.at(k.span().start, &format!("{prefix}.kind"), format!("unknown kind {:?}; one of: block, net, clock, console, random, log", s.unwrap_or_default()));
                    }
                    kind
                }
            },
        };
        let kind = kind?;
            if kind.singleton() {
                if let Some(other) = out.iter().find(|d| d.kind == kind) {
                    r.at_line(line, prefix, format!("a unikernel has one {} device, already declared as `devices.{}`", kind.name(), other.role));
                }
            }
            let mut known = vec!["kind", "backend", "filters"];
            let backend = Self::backend(r, dt, prefix, kind, line, &mut known);
            check_keys(r, dt, prefix, &known);
            let filters = Self::filters(r, dt, prefix, kind, sim);
        Some(DeviceSpec { role: role_name, kind, backend: backend?, filters, line })
    }

    fn backend(r: &mut Report, dt: &Table, prefix: &str, kind: Kind, line: usize, known: &mut Vec<&'static str>) -> Option<Backend> {
        let key = format!("{prefix}.backend");
        let choices = kind.backends().join(" | ");
        let name = match get(dt, "backend") {
            Some(b) => {
                let s = string(r, b, &key)?;
                if !kind.backends().contains(&s) {
                    r.at(b.span().start, &key, format!("unknown {} backend {s:?}; use one of: {choices}", kind.name()));
                    return None;
                }
                s
            }
            None if kind == Kind::Block => {
                r.at_line(line, &key, format!("missing; a block device needs a backend: {choices}"));
                return None;
            }
            None => kind.backends()[0],
        };
        let read_only = |r: &mut Report| flag(r, dt, "read-only", &format!("{prefix}.read-only")).unwrap_or(false);
        let sized = |r: &mut Report| -> Option<u64> {
            let v = get(dt, "size")?;
            let n = size(r, v, &format!("{prefix}.size"))?;
            if n == 0 || n % SECTOR_SIZE != 0 {
                r.at(v.span().start, &format!("{prefix}.size"), format!("{n} bytes is not a positive whole number of {SECTOR_SIZE}-byte sectors"));
                return None;
            }
            Some(n)
        };
        Some(match name {
            "file" => {
                known.extend(["path", "size", "read-only", "preallocate"]);
                let Some(p) = get(dt, "path") else {
                    r.at_line(line, &format!("{prefix}.path"), "missing; the disk image file, relative to the manifest (created with `size` if missing)");
                    return None;
                };
                let s = string(r, p, &format!("{prefix}.path"))?;
                let path = confined(r, p, &format!("{prefix}.path"), s)?;
                let preallocate = flag(r, dt, "preallocate", &format!("{prefix}.preallocate")).unwrap_or(false);
                Backend::File { path, size: sized(r), read_only: read_only(r), preallocate }
            }
            "memory" => {
                known.extend(["size", "read-only"]);
                let Some(size) = sized(r) else {
                    if get(dt, "size").is_none() {
                        r.at_line(line, &format!("{prefix}.size"), "missing; a memory disk needs a size, e.g. size = \"16MiB\"");
                    }
                    return None;
                };
                Backend::Memory { size, read_only: read_only(r) }
            }
            "seeded" => {
                known.push("seed");
                let seed = match get(dt, "seed") {
                    Some(v) => match integer(v.get_ref()).and_then(|i| u64::try_from(i).ok()) {
                        Some(s) => s,
                        None => {
                            r.at(v.span().start, &format!("{prefix}.seed"), "expected a non-negative integer");
                            return None;
                        }
                    },
                    None => 0,
                };
                Backend::Seeded { seed }
            }
            "tap" => {
                known.extend(["device", "offload"]);
                let Some(d) = get(dt, "device") else {
                    r.at_line(line, &format!("{prefix}.device"), "missing; the TAP interface's name, e.g. device = \"tap0\" (create it with `ip tuntap add dev tap0 mode tap`)");
                    return None;
                };
                let device = string(r, d, &format!("{prefix}.device"))?.to_string();
                let offload = flag(r, dt, "offload", &format!("{prefix}.offload"))?;
                Backend::Tap { device, offload }
            }
            "udp" => {
                known.extend(["local", "remote"]);
                let mut addr = |key: &str| -> Option<String> {
                    let full = format!("{prefix}.{key}");
                    let Some(v) = get(dt, key) else {
                        r.at_line(line, &full, "missing; an address like \"127.0.0.1:5000\"");
                        return None;
                    };
                    let s = string(r, v, &full)?;
                    if s.parse::<std::net::SocketAddr>().is_err() {
                        r.at(v.span().start, &full, format!("{s:?} is not an address like \"127.0.0.1:5000\""));
                        return None;
                    }
                    Some(s.to_string())
                };
                let (local, remote) = (addr("local"), addr("remote"));
                Backend::Udp { local: local?, remote: remote? }
            }
            "git" => {
                known.push("path");
                let Some(p) = get(dt, "path") else {
                    r.at_line(line, &format!("{prefix}.path"), "missing; the git repository for events, e.g. path = \"events.git\" (created if missing)");
                    return None;
                };
                let s = string(r, p, &format!("{prefix}.path"))?;
                Backend::Git { path: confined(r, p, &format!("{prefix}.path"), s)? }
            }
            "sim" => Backend::SimLink,
            "system" => Backend::System,
            "virtual" => Backend::Virtual,
            "stdio" => Backend::Stdio,
            "os" => Backend::Os,
            _ => Backend::Stderr,
        })
    }

    fn filters(r: &mut Report, dt: &Table, prefix: &str, kind: Kind, sim: bool) -> Vec<FilterSpec> {
        let mut out = Vec::new();
        let Some(fv) = get(dt, "filters") else { return out };
        let key = format!("{prefix}.filters");
        if kind.filter_world().is_none() {
            r.at(fv.span().start, &key, format!("{} devices take no filters (filter worlds exist for block and clock)", kind.name()));
            return out;
        }
        let Some(items) = fv.get_ref().as_array() else {
            r.at(fv.span().start, &key, "expected an array: filters = [{ component = \"block-trace\" }]");
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ikey = format!("{key}[{i}]");
            let Some(t) = item.get_ref().as_table() else {
                r.at(item.span().start, &ikey, "expected an inline table: { component = \"…\", config = { … } }");
                continue;
            };
            let known: &[&str] = if kind == Kind::Net { &["component", "config", "capture"] } else { &["component", "config"] };
            check_keys(r, t, &ikey, known);
            let capture = match get(t, "capture") {
                Some(c) if kind == Kind::Net => string(r, c, &format!("{ikey}.capture")).and_then(|s| confined(r, c, &format!("{ikey}.capture"), s)),
                _ => None,
            };
            let component = match get(t, "component") {
                Some(c) => source(r, c, &format!("{ikey}.component")),
                None => {
                    r.at(item.span().start, &format!("{ikey}.component"), "missing; name the filter component");
                    None
                }
            };
            let mut config = config_table(r, t, &ikey);
            let swarm = swarm_ranges(r, t, &ikey, sim, &mut config);
            if let Some(component) = component {
                out.push(FilterSpec { component, config, line: r.line_of(item.span().start), capture, swarm });
            }
        }
        out
    }

    fn limits(r: &mut Report, doc: &Table) -> LimitsSpec {
        let mut l = LimitsSpec { memory: DEFAULT_MEMORY, timeout: None };
        let Some(v) = get(doc, "limits") else { return l };
        let Some(t) = v.get_ref().as_table() else {
            r.at(v.span().start, "limits", "expected a table: [limits]");
            return l;
        };
        check_keys(r, t, "limits", &["memory", "timeout"]);
        if let Some(m) = get(t, "memory") {
            match size(r, m, "limits.memory") {
                Some(n) if n < 64 << 10 => r.at(m.span().start, "limits.memory", "at least 64KiB (one wasm page)"),
                Some(n) => l.memory = n,
                None => {}
            }
        }
        if let Some(d) = get(t, "timeout") {
            match duration(r, d, "limits.timeout") {
                Some(ns) if ns <= 0 => r.at(d.span().start, "limits.timeout", "must be positive"),
                Some(ns) => l.timeout = Some(ns as u64),
                None => {}
            }
        }
        l
    }
}

fn valid_role(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Manifest, Problems> {
        Manifest::parse(Path::new("dir/weft.toml"), src)
    }

    fn errors(src: &str) -> String {
        parse(src).unwrap_err().to_string()
    }

    #[test]
    fn app_alone_binds_defaults() {
        let m = parse("[app]\ncomponent = \"hello\"\n").unwrap();
        assert_eq!(m.app.component, Source::Shipped("hello".into()));
        let kinds: Vec<_> = m.devices.iter().map(|d| (d.kind, d.backend.clone())).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Clock, Backend::System),
                (Kind::Console, Backend::Stdio),
                (Kind::Random, Backend::Os),
                (Kind::Log, Backend::Stderr)
            ]
        );
        assert_eq!(m.dir, PathBuf::from("dir"));
    }

    #[test]
    fn preallocate_is_a_flag_of_file_disks() {
        let disk = |extra: &str| format!("[app]\ncomponent = \"kvstore\"\n[devices.disk]\nkind = \"block\"\nbackend = \"file\"\npath = \"d.img\"\nsize = \"1MiB\"\n{extra}\n");
        let m = parse(&disk("preallocate = true")).unwrap();
        let d = m.devices.iter().find(|d| d.role == "disk").unwrap();
        assert_eq!(d.backend, Backend::File { path: "d.img".into(), size: Some(1 << 20), read_only: false, preallocate: true });
        let e = errors(&disk("preallocate = \"full\""));
        assert!(e.contains("devices.disk.preallocate") && e.contains("expected true or false"), "{e}");
        let e = errors("[app]\ncomponent = \"kvstore\"\n[devices.disk]\nkind = \"block\"\nbackend = \"memory\"\nsize = \"1MiB\"\npreallocate = true\n");
        assert!(e.contains("preallocate"), "a memory disk has no image to preallocate: {e}");
    }

    #[test]
    fn full_example() {
        let m = parse(
            r#"
[app]
component = "kvstore.wasm"
args = ["fill", "1000"]

[devices.storage]
kind = "block"
backend = "file"
path = "disk.img"
size = "16MiB"
filters = [
  { component = "block-fault", config = { drop-every = 100 } },
  { component = "block-trace" },
]

[devices.clock]
kind = "clock"
backend = "system"
filters = [{ component = "clock-skew", config = { offset = "-2h", rate = 0.5 } }]

[limits]
memory = "256MiB"
timeout = "30s"
"#,
        )
        .unwrap();
        assert_eq!(m.app.component, Source::File("kvstore.wasm".into()));
        assert_eq!(m.app.args, ["fill", "1000"]);
        let s = &m.devices[1];
        assert_eq!(s.role, "storage");
        assert_eq!(s.backend, Backend::File { path: "disk.img".into(), size: Some(16 << 20), read_only: false, preallocate: false });
        assert_eq!(s.filters.len(), 2);
        assert_eq!(s.filters[0].config, [("drop-every".to_string(), "100".to_string())]);
        assert_eq!(s.filters[0].line, 12);
        let c = &m.devices[0];
        assert_eq!(c.filters[0].config, [("offset".into(), "-2h".into()), ("rate".into(), "0.5".into())]);
        assert_eq!(m.limits.timeout, Some(30_000_000_000));
    }

    #[test]
    fn every_problem_at_once() {
        let e = errors(
            "[app]\ncomponent = \"hello\"\ncolour = 1\n\n[devices.storage]\nkind = \"block\"\nbackend = \"fil\"\n\n[devices.d2]\nkind = \"block\"\nbackend = \"file\"\npath = \"../etc/passwd\"\n\n[limits]\ntimeout = \"soon\"\n",
        );
        assert!(e.contains("dir/weft.toml:3: `app.colour`: unknown key"), "{e}");
        assert!(e.contains("dir/weft.toml:7: `devices.storage.backend`: unknown block backend \"fil\"; use one of: file | memory"), "{e}");
        assert!(e.contains("dir/weft.toml:12: `devices.d2.path`: path \"../etc/passwd\" leaves the manifest's folder"), "{e}");
        assert!(e.contains("dir/weft.toml:15: `limits.timeout`: expected a duration"), "{e}");
        assert_eq!(e.lines().filter(|l| l.starts_with("error: ")).count(), 4, "{e}");
    }

    #[test]
    fn bad_toml_names_the_line() {
        let e = errors("[app]\ncomponent = \"hello\n");
        assert!(e.starts_with("error: dir/weft.toml:2: invalid TOML"), "{e}");
    }

    #[test]
    fn missing_pieces() {
        let e = errors("[devices.storage]\nkind = \"block\"\n");
        assert!(e.contains("`app`: missing [app] table"), "{e}");
        assert!(e.contains("dir/weft.toml:1: `devices.storage.backend`: missing"), "{e}");
        let e = errors("[app]\ncomponent = \"hello\"\n[devices.a]\nkind = \"clock\"\n[devices.b]\nkind = \"clock\"\n");
        assert!(e.contains("one clock device, already declared as `devices.a`"), "{e}");
        let e = errors("[app]\ncomponent = \"hello\"\n[devices.c]\nkind = \"console\"\nfilters = []\n");
        assert!(e.contains("console devices take no filters"), "{e}");
    }

    #[test]
    fn path_rules() {
        assert!(parse("[app]\ncomponent = \"sub/../app.wasm\"\n").is_ok());
        let e = errors("[app]\ncomponent = \"/tmp/app.wasm\"\n");
        assert!(e.contains("leaves the manifest's folder"), "{e}");
        let e = errors("[app]\ncomponent = \"a/../../app.wasm\"\n");
        assert!(e.contains("leaves the manifest's folder"), "{e}");
    }

    #[test]
    fn sizes_must_be_sectors() {
        let e = errors("[app]\ncomponent = \"x\"\n[devices.s]\nkind = \"block\"\nbackend = \"memory\"\nsize = 1000\n");
        assert!(e.contains("1000 bytes is not a positive whole number of 512-byte sectors"), "{e}");
        let e = errors("[app]\ncomponent = \"x\"\n[devices.s]\nkind = \"block\"\nbackend = \"memory\"\n");
        assert!(e.contains("`devices.s.size`: missing"), "{e}");
    }
}
