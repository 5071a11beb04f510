//! The validated plan: a manifest whose every component is loaded, compiled
//! and checked against the device it is bound to. Built before anything is
//! instantiated; every problem is reported at once.

use std::fmt::Write as _;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::cache::{hex, sha256, Cache, Origin};
use crate::compose;
use crate::engine::Target;
use crate::link::{Device, Filter, Stack, Wiring};
use crate::manifest::{Backend, DeviceSpec, FilterSpec, Kind, Manifest, Problems, Report, Source};
use crate::names;
use crate::units::{format_duration, format_size, format_size_approx};

/// How the host finds component bytes: files relative to the manifest
/// (through a capability-confined directory) and shipped components by name.
pub trait Loader {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    fn shipped(&self, name: &str) -> Option<&[u8]>;
    fn shipped_names(&self) -> Vec<&str>;
}

/// A component resolved from the manifest.
pub struct Resolved {
    pub name: String,
    pub source: Source,
    pub sha256: [u8; 32],
    pub size: usize,
    pub component: Component,
    pub origin: Origin,
    /// The app only: the components composed into it (`wasi`), whose
    /// exports satisfy some of its imports. `component` is the composition.
    pub parts: Vec<Part>,
    /// The app only, when composed: what it imports itself (the composition
    /// also imports what its parts import).
    pub own_imports: Vec<String>,
    /// The weft device interfaces it imports (`block`, `clock`, …): with
    /// the wiring, what it can reach (`weft check` prints it).
    pub imports: Vec<String>,
}

impl Resolved {
    /// The AOT cache entry its compiled code is kept under (for the native
    /// target): by its bytes, or when composed by its inputs' hashes, as
    /// [`Plan::build`] loads it.
    pub fn cache_key(&self, engine: &Engine) -> String {
        if self.parts.is_empty() {
            return Cache::key_of(engine, Target::Native, &self.sha256);
        }
        let inputs: Vec<[u8; 32]> = core::iter::once(self.sha256).chain(self.parts.iter().map(|p| p.sha256)).collect();
        Cache::composed_key(engine, Target::Native, &inputs)
    }

    /// A compiled component from `s`, nothing composed into it.
    fn new(s: &Source, sha256: [u8; 32], size: usize, (component, origin): (Component, Origin)) -> Resolved {
        Resolved { name: display_name(s), source: s.clone(), sha256, size, component, origin, parts: Vec::new(), own_imports: Vec::new(), imports: Vec::new() }
    }
}

/// A component composed into the app.
pub struct Part {
    pub name: String,
    pub source: Source,
    pub sha256: [u8; 32],
    pub size: usize,
}

/// A manifest with all components compiled and checked.
pub struct Plan {
    pub manifest: Manifest,
    pub app: Resolved,
    /// Each device's filter chain, innermost first, parallel to
    /// `manifest.devices`.
    pub chains: Vec<Vec<Resolved>>,
    /// The stack component serving the app's `sockets` (`[stack] component`).
    pub stack: Option<Resolved>,
    pub wiring: Wiring,
}

impl Plan {
    pub fn build(manifest: Manifest, loader: &dyn Loader, engine: &Engine, cache: &Cache) -> Result<Plan, Problems> {
        let src = std::fs::read_to_string(&manifest.path).unwrap_or_default();
        let mut r = Report::new(&manifest.path, &src);
        let env = Env { loader, engine, cache };
        let app = env.app(&mut r, &manifest);
        if let Some(app) = &app {
            check_app(&mut r, &manifest, app, engine);
        }
        let mut chains = Vec::new();
        let mut wiring = Wiring {
            app: app.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            wasi: manifest.wasi.clone(),
            parts: manifest
                .components
                .iter()
                .map(|c| Filter { name: c.name.clone(), config: c.config.clone(), origin: format!("{}:{}", manifest.path.display(), c.line), observer: false })
                .collect(),
            ..Wiring::default()
        };
        let mut missing = false;
        for dev in &manifest.devices {
            let mut chain = Vec::new();
            let mut resolved = Vec::new();
            for (i, f) in dev.filters.iter().enumerate() {
                let key = format!("devices.{}.filters[{i}]", dev.role);
                match env.resolve(&mut r, &f.component, f.line, &key) {
                    Some(c) => {
                        check_filter(&mut r, dev, f, &c, engine, &key);
                        chain.push(Filter { observer: observes(dev.kind, &c), ..filter(&manifest, f, &c) });
                        resolved.push(c);
                    }
                    None => missing = true,
                }
            }
            chains.push(resolved);
            match dev.kind {
                Kind::Block => wiring.blocks.push(Device { role: dev.role.clone(), filters: chain }),
                Kind::Net => wiring.nets.push(Device { role: dev.role.clone(), filters: chain }),
                Kind::Clock => wiring.clock_filters = chain,
                _ => {}
            }
        }
        let mut stack = None;
        if let Some(spec) = &manifest.stack {
            if let (Some(source), Some(net)) = (&spec.component, &spec.net) {
                match env.resolve(&mut r, source, spec.line, "stack.component") {
                    Some(c) => {
                        check_stack(&mut r, spec.line, &c, engine);
                        let filter = Filter {
                            name: c.name.clone(),
                            config: spec.config.clone(),
                            origin: format!("{}:{}", manifest.path.display(), spec.line),
                            observer: false,
                        };
                        let net = wiring.nets.iter().position(|d| d.role == *net).expect("validated by the manifest");
                        wiring.stack = Some(Stack { filter, net });
                        stack = Some(c);
                    }
                    None => missing = true,
                }
            }
        }
        r.finish()?;
        assert!(!missing, "a missing component is reported as a problem");
        let mut plan = Plan { manifest, app: app.expect("reported when missing"), chains, stack, wiring };
        let all = core::iter::once(&mut plan.app).chain(plan.chains.iter_mut().flatten()).chain(plan.stack.as_mut());
        for c in all {
            let mut imports: Vec<String> =
                c.component.component_type().imports(engine).filter_map(|(n, _)| weft_iface(n).map(String::from)).collect();
            imports.retain(|i| !matches!(i.as_str(), "types" | "filter"));
            imports.sort();
            imports.dedup();
            c.imports = imports;
        }
        Ok(plan)
    }

    /// Every filter in the order `Unikernel::new` instantiates them: each
    /// block device's chain in `wiring.blocks` order, then the clock chain.
    pub fn filters_in_link_order(&self) -> impl Iterator<Item = &Resolved> {
        let devices = || self.manifest.devices.iter().zip(&self.chains);
        let of = move |kind: Kind| devices().filter(move |(d, _)| d.kind == kind).flat_map(|(_, c)| c);
        of(Kind::Block).chain(of(Kind::Net)).chain(of(Kind::Clock)).chain(&self.stack)
    }

    /// Each filter's manifest entry in link order (`None` for the stack).
    pub fn filter_specs_in_link_order(&self) -> impl Iterator<Item = Option<&FilterSpec>> {
        let of = move |kind: Kind| self.manifest.devices.iter().filter(move |d| d.kind == kind).flat_map(|d| d.filters.iter().map(Some));
        of(Kind::Block).chain(of(Kind::Net)).chain(of(Kind::Clock)).chain(self.stack.as_ref().map(|_| None))
    }

    /// The app, then every filter and the stack.
    pub fn components(&self) -> impl Iterator<Item = &Resolved> {
        core::iter::once(&self.app).chain(self.chains.iter().flatten()).chain(&self.stack)
    }

    /// The net devices in `wiring.nets` order.
    pub fn net_devices(&self) -> impl Iterator<Item = &DeviceSpec> {
        self.manifest.devices.iter().filter(|d| d.kind == Kind::Net)
    }

    /// The block devices in `wiring.blocks` order.
    pub fn block_devices(&self) -> impl Iterator<Item = &DeviceSpec> {
        self.manifest.devices.iter().filter(|d| d.kind == Kind::Block)
    }

    fn device(&self, kind: Kind) -> Option<&DeviceSpec> {
        self.manifest.devices.iter().find(|d| d.kind == kind)
    }

    /// The plan as `weft check` prints it: the wiring from the app down to each
    /// backend, every component with its hash, and what a run will create.
    /// `exists(path)` tells whether a file backend's image is already there.
    pub fn describe(&self, exists: &dyn Fn(&Path) -> bool) -> String {
        let m = &self.manifest;
        let mut out = String::new();
        let _ = writeln!(out, "manifest  {}", m.path.display());
        let args: Vec<String> = m.app.args.iter().map(|a| format!("{a:?}")).collect();
        let _ = writeln!(out, "app       {}  args [{}]", self.app.name, args.join(", "));
        let _ = writeln!(out, "devices");
        let mut creates = Vec::new();
        for (d, chain) in m.devices.iter().zip(&self.chains) {
            let consumer = if d.kind == Kind::Net { "stack" } else { "app" };
            let mut path = vec![consumer.to_string()];
            path.extend(chain.iter().rev().filter(|c| !observes(d.kind, c)).map(|c| c.name.clone()));
            path.push(backend_text(&d.backend));
            let default = if d.line == 0 { "  (default)" } else { "" };
            let _ = writeln!(out, "  {:<9} {:<8} {}{default}", d.role, d.kind.name(), path.join(" -> "));
            for (i, c) in chain.iter().enumerate().rev().filter(|(_, c)| observes(d.kind, c)) {
                let (above, below) = watched_hop(d, chain, i);
                let _ = writeln!(out, "  {:<9} {:<8}   {}: watches {above} -> {below} (only observes: out of the path)", "", "", c.name);
            }
            for (f, c) in d.filters.iter().zip(chain) {
                let cfg: Vec<String> = f.config.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                if !cfg.is_empty() {
                    let _ = writeln!(out, "  {:<9} {:<8}   {}: {}", "", "", c.name, cfg.join(", "));
                }
            }
            if let Backend::File { path, size, preallocate, .. } = &d.backend {
                if !exists(&m.dir.join(path)) {
                    let size = size.map_or("(no size given: the run will fail)".to_string(), format_size);
                    let how = if *preallocate { "zero-filled, preallocated" } else { "zero-filled" };
                    creates.push(format!("{} ({size}, {how})", path.display()));
                }
            }
        }
        if let Some(st) = &m.stack {
            match (&self.stack, &st.net) {
                (Some(c), Some(net)) => {
                    let cfg: Vec<String> = st.config.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    let _ = writeln!(out, "stack     app sockets -> {} -> net `{net}`  ({})", c.name, cfg.join(", "));
                }
                _ => {
                    let address = st.config.iter().find(|(k, _)| k == "address").map_or("127.0.0.1", |(_, v)| v.as_str());
                    let _ = writeln!(out, "stack     app sockets -> host TCP/IP ({address})");
                }
            }
        }
        let _ = writeln!(out, "components");
        for c in self.components() {
            let from = match &c.source {
                Source::Shipped(_) => "shipped".to_string(),
                Source::File(p) => p.display().to_string(),
            };
            let _ = writeln!(out, "  {:<12} sha256:{}  {:>9}  {from}", c.name, &hex(&c.sha256)[..16], format_size_approx(c.size as u64));
            for p in &c.parts {
                let from = match &p.source {
                    Source::Shipped(_) => "shipped".to_string(),
                    Source::File(f) => f.display().to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {:<12} sha256:{}  {:>9}  {from}, composed into {}",
                    p.name,
                    &hex(&p.sha256)[..16],
                    format_size_approx(p.size as u64),
                    c.name
                );
            }
        }
        self.describe_reach(&mut out);
        let _ = writeln!(out, "creates   {}", if creates.is_empty() { "nothing".to_string() } else { creates.join(", ") });
        if let Some(sim) = &m.sim {
            let restart = sim.restart.as_ref().map_or(String::new(), |a| format!(", restart with args [{}]", a.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ")));
            let swarm: Vec<String> = m
                .devices
                .iter()
                .flat_map(|d| d.filters.iter().flat_map(move |f| f.swarm.iter().map(move |s| format!("{}.{} in [{}, {}]", d.role, s.key, s.low, s.high))))
                .collect();
            let _ = writeln!(
                out,
                "sim       seed {}, virtual clock from {} ns since the epoch, tick {}, fuel {}, expect exit {}{restart}",
                sim.seed,
                sim.start,
                format_duration(sim.tick as i64),
                sim.fuel,
                sim.expect_exit
            );
            if !swarm.is_empty() {
                let _ = writeln!(out, "swarm     {}", swarm.join(", "));
            }
        }
        let timeout = m.limits.timeout.map_or("none".to_string(), |t| format_duration(t as i64));
        let _ = writeln!(out, "limits    memory {} per component, timeout {timeout}", format_size(m.limits.memory));
        out
    }

    /// `weft check`'s `reaches` lines: what each component can call, from
    /// its imports and the wiring (the linker gives it nothing else).
    fn describe_reach(&self, out: &mut String) {
        let m = &self.manifest;
        // Each device of kind `k`: its role and the path its calls take.
        let role = |k: Kind| {
            m.devices
                .iter()
                .zip(&self.chains)
                .filter(|(d, _)| d.kind == k)
                .map(|(d, chain)| {
                    let hops: Vec<String> =
                        chain.iter().rev().filter(|c| !observes(k, c)).map(|c| c.name.clone()).chain([backend_text(&d.backend)]).collect();
                    format!("`{}` ({})", d.role, hops.join(" -> "))
                })
                .collect::<Vec<_>>()
        };
        let sockets = match (&self.stack, &m.stack) {
            (Some(c), _) => format!("sockets through {}", c.name),
            (None, Some(_)) => "sockets through the host's TCP/IP".to_string(),
            (None, None) => "no sockets (no [stack])".to_string(),
        };
        let mut app: Vec<String> = Vec::new();
        for i in &self.app.imports {
            match i.as_str() {
                "block" => {
                    let b = role(Kind::Block);
                    app.push(if b.is_empty() { "no block device".into() } else { format!("block {}", b.join(", ")) });
                }
                "sockets" => app.push(sockets.clone()),
                "exit" => {}
                i => match Kind::ALL.into_iter().find(|k| k.name() == i) {
                    Some(k) => app.push(format!("{i} {}", role(k).join(", "))),
                    None => app.push(i.to_string()),
                },
            }
        }
        let _ = writeln!(out, "reaches   (what each component can call; the linker gives it nothing else)");
        let _ = writeln!(out, "  {:<12} app: {}", self.app.name, app.join("; "));
        for p in &self.app.parts {
            if p.name != "wasi" {
                let _ = writeln!(out, "  {:<12} composed into the app: the devices it imports, as the app", p.name);
                continue;
            }
            let files: Vec<String> = m
                .wasi
                .iter()
                .filter(|(k, _)| k == "preopen")
                .map(|(_, v)| match v.split_once('=') {
                    Some((guest, spec)) => match (spec.strip_prefix("tar:"), spec.strip_prefix("fat:")) {
                        (Some(r), _) => format!("{guest} (tar on block `{r}`, read-only)"),
                        (_, Some(r)) => format!("{guest} (FAT on block `{r}`, writable)"),
                        _ => format!("{guest} ({spec}, gone at exit)"),
                    },
                    None => v.clone(),
                })
                .collect();
            let files = if files.is_empty() { "no files (no [wasi] preopens)".to_string() } else { format!("files under {} only", files.join(", ")) };
            let _ = writeln!(out, "  {:<12} WASI for the app: {files}; {sockets}; console, clock, random and log as the app", p.name);
        }
        for (d, chain) in m.devices.iter().zip(&self.chains) {
            for (i, (c, f)) in chain.iter().zip(&d.filters).enumerate() {
                // Observers are in no path: the next hop is the nearest filter below that is not one.
                let next = chain[..i].iter().rev().find(|n| !observes(d.kind, n)).map_or_else(|| backend_text(&d.backend), |n| n.name.clone());
                let watches = if observes(d.kind, c) {
                    let (above, below) = watched_hop(d, chain, i);
                    format!("; handed what it watches on {above} -> {below}")
                } else {
                    String::new()
                };
                let extra = match (d.kind, &f.capture) {
                    (Kind::Block, _) => "; power (a simulation's power cuts)".to_string(),
                    (Kind::Net, Some(path)) => format!("; writes frames to {:?}", path.display().to_string()),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {:<12} filter of `{}`: the next hop only ({next}); the host's own clock and log{extra}{watches}",
                    c.name, d.role
                );
            }
        }
        if let (Some(c), Some(net)) = (&self.stack, m.stack.as_ref().and_then(|s| s.net.as_ref())) {
            let _ = writeln!(out, "  {:<12} stack: net `{net}` (through its filters); the host's own clock, log and random", c.name);
        }
    }

    /// The wiring as a Graphviz digraph: an edge from each consumer to the
    /// provider its calls go to.
    pub fn graph(&self) -> String {
        let mut out = String::from("digraph weft {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        let _ = writeln!(out, "  app [label=\"{} (app)\", style=bold];", self.app.name);
        for (d, chain) in self.manifest.devices.iter().zip(&self.chains) {
            let leaf = format!("\"{}.backend\"", d.role);
            let _ = writeln!(out, "  {leaf} [label=\"{}\\n{} {}\", shape=cylinder];", esc(&backend_text(&d.backend)), d.role, d.kind.name());
            let mut above = if d.kind == Kind::Net { "stack" } else { "app" }.to_string();
            for (i, c) in chain.iter().enumerate().rev() {
                let node = format!("\"{}.{i}\"", d.role);
                let _ = writeln!(out, "  {node} [label=\"{}\\n{} filter {i}\"];", esc(&c.name), d.role);
                if observes(d.kind, c) {
                    // Out of the path: handed what crosses the hop it sits on.
                    let _ = writeln!(out, "  {node} -> {above} [style=dotted, label=\"watches\"];");
                    continue;
                }
                let _ = writeln!(out, "  {above} -> {node} [label=\"{}\"];", d.kind.name());
                above = node;
            }
            let _ = writeln!(out, "  {above} -> {leaf} [label=\"{}\"];", d.kind.name());
            // A filter's side imports (clock, log) go to the host's leaves.
            for (i, _) in chain.iter().enumerate() {
                for side in ["clock", "log"] {
                    if let Some(s) = self.device(if side == "clock" { Kind::Clock } else { Kind::Log }) {
                        let _ = writeln!(out, "  \"{}.{i}\" -> \"{}.backend\" [style=dashed, label=\"{side}\"];", d.role, s.role);
                    }
                }
            }
        }
        if let Some(st) = &self.manifest.stack {
            match (&self.stack, &st.net) {
                (Some(c), Some(net)) => {
                    let _ = writeln!(out, "  stack [label=\"{}\\nstack\"];", esc(&c.name));
                    let _ = writeln!(out, "  app -> stack [label=\"sockets\"];");
                    let _ = net; // the net chain's edges start at `stack` above
                }
                _ => {
                    let _ = writeln!(out, "  hostnet [label=\"host TCP/IP\", shape=cylinder];");
                    let _ = writeln!(out, "  app -> hostnet [label=\"sockets\"];");
                }
            }
        }
        out.push_str("}\n");
        out
    }
}

/// A filter that only observes (`net-watch` / `block-watch`): the linker
/// takes it out of the path (`crate::link`).
fn observes(kind: Kind, c: &Resolved) -> bool {
    let watch = match kind {
        Kind::Block => crate::names::BLOCK_WATCH,
        Kind::Net => crate::names::NET_WATCH,
        _ => return false,
    };
    c.component.get_export_index(None, watch).is_some()
}

/// The hop observer `chain[i]` watches: the nearest consumer above it and
/// provider below it that are in the path.
fn watched_hop(d: &DeviceSpec, chain: &[Resolved], i: usize) -> (String, String) {
    let above = chain[i + 1..]
        .iter()
        .find(|c| !observes(d.kind, c))
        .map_or_else(|| if d.kind == Kind::Net { "stack" } else { "app" }.to_string(), |c| c.name.clone());
    let below = chain[..i].iter().rev().find(|c| !observes(d.kind, c)).map_or_else(|| backend_text(&d.backend), |c| c.name.clone());
    (above, below)
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn backend_text(b: &Backend) -> String {
    match b {
        Backend::File { path, size, read_only, preallocate } => {
            let size = size.map(|s| format!(", {}", format_size(s))).unwrap_or_default();
            let pre = if *preallocate { ", preallocated" } else { "" };
            format!("file {:?}{size}{pre}{}", path.display().to_string(), if *read_only { ", read-only" } else { "" })
        }
        Backend::Memory { size, read_only } => {
            format!("memory {}{}", format_size(*size), if *read_only { ", read-only" } else { "" })
        }
        Backend::System => "system".into(),
        Backend::Virtual => "virtual".into(),
        Backend::Stdio => "stdio".into(),
        Backend::Os => "os".into(),
        Backend::Seeded { seed } => format!("seeded {seed}"),
        Backend::Stderr => "stderr".into(),
        Backend::Tap { device, offload } => format!("tap {device:?}{}", if *offload { ", offload" } else { "" }),
        Backend::Git { path } => format!("git {:?}", path.display().to_string()),
        Backend::Udp { local, remote } => format!("udp {local} <-> {remote}"),
        Backend::SimLink => "simulated link".into(),
    }
}

fn filter(m: &Manifest, f: &FilterSpec, c: &Resolved) -> Filter {
    Filter { name: c.name.clone(), config: f.config.clone(), origin: format!("{}:{}", m.path.display(), f.line), observer: false }
}

fn display_name(s: &Source) -> String {
    match s {
        Source::Shipped(n) => n.clone(),
        Source::File(p) => p.file_stem().map_or("component".into(), |s| s.to_string_lossy().into_owned()),
    }
}

/// Where components come from and go: what turns a manifest's component
/// entries into compiled [`Resolved`]s. Its problems go to the caller's
/// [`Report`], each at the manifest `line` and `key` of the entry.
struct Env<'a> {
    loader: &'a dyn Loader,
    engine: &'a Engine,
    cache: &'a Cache,
}

impl Env<'_> {
    /// Reads and compiles (through the cache) one component entry.
    fn resolve(&self, r: &mut Report, s: &Source, line: usize, key: &str) -> Option<Resolved> {
        let bytes = read(r, self.loader, s, line, key)?;
        self.compile(r, s, line, key, &bytes)
    }

    /// Compiles (through the cache) a component whose bytes are already read.
    fn compile(&self, r: &mut Report, s: &Source, line: usize, key: &str, bytes: &[u8]) -> Option<Resolved> {
        let digest = sha256(bytes);
        match self.cache.load(self.engine, Target::Native, &display_name(s), &digest, bytes) {
            Ok(compiled) => Some(Resolved::new(s, digest, bytes.len(), compiled)),
            Err(e) => {
                r.at_line(line, key, format!("{s} is not a valid component: {e:#}"));
                None
            }
        }
    }

    /// The app's entry: read, composed with its parts when it has any, compiled.
    fn app(&self, r: &mut Report, m: &Manifest) -> Option<Resolved> {
        let (s, line, key) = (&m.app.component, m.app.line, "app.component");
        let bytes = read(r, self.loader, s, line, key)?;
        let imports = compose::imports(&bytes).unwrap_or_default();
        let wanted = parts_for(m, &imports);
        if wanted.is_empty() {
            return self.compile(r, s, line, key, &bytes);
        }
        let mut parts = Vec::new();
        let mut provided: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, source, pline, pkey) in wanted {
            if name == "wasi" && self.loader.shipped("wasi").is_none() {
                r.at_line(line, key, format!("{} imports WASI, but this weft was built without the `wasi` component", display_name(s)));
                return None;
            }
            let b = read(r, self.loader, &source, pline, &pkey)?;
            parts.push(Part { name: name.clone(), source, sha256: sha256(&b), size: b.len() });
            provided.push((name, b));
        }
        let digest = sha256(&bytes);
        let inputs: Vec<[u8; 32]> = core::iter::once(digest).chain(parts.iter().map(|p| p.sha256)).collect();
        let composed = self.cache.load_composed(self.engine, Target::Native, &display_name(s), &inputs, || {
            let providers: Vec<compose::Provider<'_>> =
                provided.iter().map(|(name, bytes)| compose::Provider { name, bytes }).collect();
            compose::compose(&bytes, &providers).map_err(wasmtime::Error::new)
        });
        match composed {
            Ok(compiled) => Some(Resolved { parts, own_imports: imports, ..Resolved::new(s, digest, bytes.len(), compiled) }),
            Err(e) => {
                let (at, k, fix) = match e.downcast_ref::<compose::ComposeError>() {
                    Some(compose::ComposeError::Unprovided(_)) => (line, key.to_string(), "; weft's `wasi` component provides wasi:cli, wasi:clocks, wasi:random, wasi:io, wasi:filesystem and wasi:sockets, any version 0.2.0-0.2.12: build the app without the others".to_string()),
                    Some(compose::ComposeError::Unused(name)) => {
                        let c = m.components.iter().find(|c| c.name == *name);
                        (c.map_or(line, |c| c.line), format!("components.{name}"), format!("; remove [components.{name}], or use an app that imports its interfaces"))
                    }
                    _ => (line, key.to_string(), String::new()),
                };
                r.at_line(at, &k, format!("{} {e:#}{fix}", display_name(s)));
                None
            }
        }
    }
}

/// What an app is composed with: `wasi` when it imports any `wasi:*`
/// interface, then every `[components.*]` entry. (name, source, line, key)
fn parts_for(m: &Manifest, imports: &[String]) -> Vec<(String, Source, usize, String)> {
    let mut parts = Vec::new();
    if compose::wants_wasi(imports) {
        parts.push(("wasi".to_string(), Source::Shipped("wasi".into()), m.app.line, "app.component".to_string()));
    }
    for c in &m.components {
        parts.push((c.name.clone(), c.component.clone(), c.line, format!("components.{}.component", c.name)));
    }
    parts
}

/// A component's bytes, or what a user reads when they cannot be had.
fn fetch(loader: &dyn Loader, s: &Source) -> Result<Vec<u8>, String> {
    match s {
        Source::Shipped(name) => loader.shipped(name).map(<[u8]>::to_vec).ok_or_else(|| {
            let known = loader.shipped_names().join(", ");
            format!("no shipped component named {name:?}; shipped: {known}; or give a path ending in .wasm")
        }),
        Source::File(p) => loader
            .read(p)
            .map_err(|e| format!("cannot read {}: {e}; paths are relative to the manifest's folder", p.display())),
    }
}

/// The app's bytes as the linker sees them: composed with its parts.
/// (`weft build` precompiles these for the kernel.)
pub fn app_bytes(loader: &dyn Loader, app: &Resolved) -> Result<Vec<u8>, String> {
    let bytes = fetch(loader, &app.source)?;
    if app.parts.is_empty() {
        return Ok(bytes);
    }
    let parts: Vec<(String, Vec<u8>)> =
        app.parts.iter().map(|p| Ok((p.name.clone(), fetch(loader, &p.source)?))).collect::<Result<_, String>>()?;
    let providers: Vec<compose::Provider<'_>> =
        parts.iter().map(|(name, bytes)| compose::Provider { name, bytes }).collect();
    compose::compose(&bytes, &providers).map_err(|e| e.to_string())
}

/// Reads a component's bytes and checks it is a component at all.
fn read(r: &mut Report, loader: &dyn Loader, s: &Source, line: usize, key: &str) -> Option<Vec<u8>> {
    let bytes = match fetch(loader, s) {
        Ok(b) => b,
        Err(e) => {
            r.at_line(line, key, e);
            return None;
        }
    };
    if !bytes.starts_with(b"\0asm") {
        r.at_line(line, key, format!("{s} is not a WebAssembly file (no \\0asm header)"));
        return None;
    }
    // Version and layer: 01 00 00 00 is a core module, 0d 00 01 00 a component.
    if bytes.get(4..8) == Some(&[0x01, 0x00, 0x00, 0x00]) {
        r.at_line(line, key, format!("{s} is a core wasm module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"));
        return None;
    }
    Some(bytes)
}

/// The weft interface an import/export names (`block`, `types`…), if any.
fn weft_iface(name: &str) -> Option<&str> {
    let (base, version) = names::split_version(name);
    let iface = base.strip_prefix(names::PACKAGE)?.strip_prefix('/')?;
    // Semver-compatible with 0.1.0: the linker matches any 0.1.x.
    match version {
        Some(v) if v.starts_with("0.1.") => Some(iface),
        _ => None,
    }
}

fn check_app(r: &mut Report, m: &Manifest, app: &Resolved, engine: &Engine) {
    let ty = app.component.component_type();
    let mut foreign = Vec::new();
    // A part's device imports (the `wasi` component's block and sockets) are
    // optional: they fail softly when the manifest has no such device.
    let own = |name: &str| app.parts.is_empty() || app.own_imports.iter().any(|i| weft_iface(i) == weft_iface(name));
    for (name, _) in ty.imports(engine) {
        if !own(name) && matches!(weft_iface(name), Some("block" | "sockets")) {
            continue;
        }
        let kind = match weft_iface(name) {
            Some("types" | "exit") => continue,
            Some("kv") => {
                r.at_line(
                    m.app.line,
                    "app.component",
                    format!("{} imports `{name}`, which a component provides, not a device; add one:\n  [components.kv]\n  component = \"kv\"                 # the kvstore on a block device\n  config = {{ device = \"storage\" }}", app.name),
                );
                continue;
            }
            Some("sockets") => {
                if m.stack.is_none() {
                    r.at_line(
                        m.app.line,
                        "app.component",
                        format!("{} imports `{name}` but the manifest has no [stack]; add one:\n  [stack]\n  backend = \"host\"          # the host's own TCP/IP, or:\n  # component = \"tcpip\"\n  # net = \"service\"\n  # ip = \"10.0.0.2/24\"", app.name),
                    );
                }
                continue;
            }
            Some(i) => Kind::ALL.into_iter().find(|k| k.name() == i),
            None => None,
        };
        match kind {
            Some(Kind::Block) if !m.devices.iter().any(|d| d.kind == Kind::Block) => r.at_line(
                m.app.line,
                "app.component",
                format!("{} imports `{name}` but the manifest declares no block device; add one:\n  [devices.storage]\n  kind = \"block\"\n  backend = \"file\"\n  path = \"disk.img\"\n  size = \"16MiB\"", app.name),
            ),
            Some(_) => {}
            None => foreign.push(name.to_string()),
        }
    }
    if !foreign.is_empty() {
        r.at_line(
            m.app.line,
            "app.component",
            format!(
                "{} imports interfaces no weft device provides: {}; an app may import only weft:devices@0.1.x (block, clock, console, random, log, sockets, exit) and WASI 0.2 (through weft's `wasi` component)",
                app.name,
                foreign.join(", ")
            ),
        );
    }
    let runs = ty.exports(engine).any(|(n, item)| {
        (n == "run" && matches!(item.ty, ComponentItem::ComponentFunc(_))) || n.starts_with(names::WASI_RUN_PREFIX)
    });
    if !runs {
        r.at_line(
            m.app.line,
            "app.component",
            format!("{} exports neither `run` nor wasi:cli/run; an app targets the world weft:devices/app (or is a WASI 0.2 command)", app.name),
        );
    }
}

fn check_filter(r: &mut Report, dev: &DeviceSpec, f: &FilterSpec, c: &Resolved, engine: &Engine, key: &str) {
    let ty = c.component.component_type();
    let exported: Vec<&str> = ty.exports(engine).filter_map(|(n, _)| weft_iface(n)).collect();
    let want = dev.kind.name();
    let world = dev.kind.filter_world().unwrap_or("?");
    if !exported.contains(&want) || !exported.contains(&"filter") {
        let is = Kind::ALL.into_iter().find(|k| exported.contains(&k.name()) && k.filter_world().is_some());
        let what = match is {
            Some(k) if exported.contains(&"filter") => format!("is a {} filter", k.name()),
            _ => "is not a filter (it exports neither a device interface nor weft:devices/filter)".into(),
        };
        r.at_line(f.line, key, format!("{} {what}, but `{}` is a {want} device: use a component built for the world weft:devices/{world}", c.name, dev.role));
        return;
    }
    let foreign: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| n)
        .filter(|n| {
            let side: &[&str] = match dev.kind {
                Kind::Net => &["types", "clock", "log", "capture"],
                Kind::Block => &["types", "clock", "log", "power"],
                _ => &["types", "clock", "log"],
            };
            !matches!(weft_iface(n), Some(i) if i == want || side.contains(&i))
        })
        .map(ToString::to_string)
        .collect();
    if !foreign.is_empty() {
        let extra = match dev.kind {
            Kind::Net => ", capture",
            Kind::Block => ", power",
            _ => "",
        };
        r.at_line(f.line, key, format!("{} imports {}, which a {world} cannot have (only {want}, clock, log{extra})", c.name, foreign.join(", ")));
    }
}

fn check_stack(r: &mut Report, line: usize, c: &Resolved, engine: &Engine) {
    let ty = c.component.component_type();
    let exported: Vec<&str> = ty.exports(engine).filter_map(|(n, _)| weft_iface(n)).collect();
    if !exported.contains(&"sockets") || !exported.contains(&"filter") {
        r.at_line(line, "stack.component", format!("{} is not a stack: it must export weft:devices/sockets and weft:devices/filter (the world weft:devices/stack)", c.name));
        return;
    }
    let foreign: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| n)
        .filter(|n| !matches!(weft_iface(n), Some(i) if ["types", "net", "clock", "log", "random"].contains(&i)))
        .map(ToString::to_string)
        .collect();
    if !foreign.is_empty() {
        r.at_line(line, "stack.component", format!("{} imports {}, which a stack cannot have (only net, clock, log, random)", c.name, foreign.join(", ")));
    }
}
