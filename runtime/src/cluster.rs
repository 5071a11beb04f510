//! A cluster manifest: several unikernels in one simulation, their net
//! devices joined by simulated links with seeded loss, delay, duplication
//! and partitions.
//!
//! ```toml
//! [cluster]
//! seed = 1
//!
//! [nodes.server]
//! manifest = "server.toml"      # a node's own manifest, beside this file
//!
//! [nodes.client]
//! manifest = "client.toml"
//!
//! [[links]]
//! between = ["server.service", "client.service"]   # node.net-role at each end
//! loss = 0.01                   # per frame; a range [low, high] is drawn per seed
//! duplicate = 0.001
//! delay = "1ms"                 # one way
//! jitter = "200us"              # added to the delay, drawn per frame
//! partitions = [["2s", "3s"]]   # the link drops everything in these windows
//! ```
//!
//! Every node runs as a simulation (`[sim]` implied); its net devices on a
//! link use the `sim` backend. Problems are reported all at once, like a
//! node manifest's.

use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use toml::de::{DeTable, DeValue};

use crate::manifest::{Manifest, Problems, Report, SimOverride, SimSpec};
use crate::sim::Swarm;
use crate::units::parse_duration;

/// A parsed cluster manifest.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub seed: u64,
    pub expect_exit: u8,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

/// One unikernel of the cluster.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    /// Its manifest, relative to the cluster's folder.
    pub manifest: PathBuf,
    pub line: usize,
}

/// A simulated link between two net devices.
#[derive(Clone, Debug)]
pub struct Link {
    /// (node index, net role) at each end.
    pub ends: [(usize, String); 2],
    pub loss: Param,
    pub duplicate: Param,
    /// One-way latency, ns.
    pub delay: Param,
    /// Extra latency drawn per frame from [0, jitter], ns.
    pub jitter: Param,
    /// Windows [from, to) of virtual time, ns, in which the link drops all.
    pub partitions: Vec<(u64, u64)>,
    pub line: usize,
}

/// A link setting: a value, or a range drawn per seed (swarm testing).
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Fixed(f64),
    Range(Swarm),
}

impl Param {
    /// The value for `seed` (`index` keeps draws of different links apart).
    pub fn value(&self, seed: u64, index: usize) -> f64 {
        match self {
            Param::Fixed(v) => *v,
            Param::Range(s) => s.draw(seed, index).parse().unwrap_or(s.low),
        }
    }
}

fn get<'t, 'i>(t: &'t DeTable<'i>, key: &str) -> Option<&'t toml::Spanned<DeValue<'i>>> {
    t.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(_, v)| v)
}

fn number(v: &DeValue) -> Option<f64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

/// Whether `src` is a cluster manifest (it has a `[cluster]` table).
pub fn is_cluster(src: &str) -> bool {
    DeTable::parse(src).is_ok_and(|d| get(d.get_ref(), "cluster").is_some())
}

impl Cluster {
    pub fn parse(path: &Path, src: &str) -> Result<Cluster, Problems> {
        let mut r = Report::new(path, src);
        let doc = match DeTable::parse(src) {
            Ok(d) => d,
            Err(e) => {
                let line = r.line_of(e.span().map_or(0, |s| s.start));
                return Err(Problems(vec![format!("{}:{line}: invalid TOML: {}", path.display(), e.message().trim())]));
            }
        };
        let doc = doc.get_ref();
        let known = ["cluster", "nodes", "links"];
        for (k, _) in doc.iter() {
            if !known.contains(&k.get_ref().as_ref()) {
                r.at(k.span().start, k.get_ref(), "unknown key; remove it or use one of: cluster, nodes, links");
            }
        }
        let mut seed = 0;
        let mut expect_exit = 0;
        if let Some(c) = get(doc, "cluster").and_then(|c| c.get_ref().as_table()) {
            for (k, v) in c.iter() {
                let key = format!("cluster.{}", k.get_ref());
                let n = number(v.get_ref()).filter(|n| *n >= 0.0 && n.fract() == 0.0);
                match (k.get_ref().as_ref(), n) {
                    ("seed", Some(n)) => seed = n as u64,
                    ("expect-exit", Some(n)) if n <= 255.0 => expect_exit = n as u8,
                    ("seed" | "expect-exit", _) => r.at(v.span().start, &key, "expected a non-negative integer (expect-exit at most 255)"),
                    _ => r.at(k.span().start, &key, "unknown key; use seed or expect-exit"),
                }
            }
        }
        let mut nodes = Vec::new();
        match get(doc, "nodes").map(|n| (n, n.get_ref().as_table())) {
            Some((_, Some(t))) => {
                for (name, v) in t.iter() {
                    let key = format!("nodes.{}", name.get_ref());
                    let manifest = v.get_ref().as_table().and_then(|nt| get(nt, "manifest")).and_then(|m| m.get_ref().as_str());
                    match manifest {
                        Some(m) if !Path::new(m).is_absolute() && !m.split('/').any(|p| p == "..") => nodes.push(Node {
                            name: name.get_ref().to_string(),
                            manifest: PathBuf::from(m),
                            line: r.line_of(name.span().start),
                        }),
                        Some(m) => r.at(v.span().start, &format!("{key}.manifest"), format!("path {m:?} leaves the cluster's folder; keep node manifests beside it")),
                        None => r.at(v.span().start, &format!("{key}.manifest"), "missing; each node names its manifest: manifest = \"server.toml\""),
                    }
                }
            }
            _ => r.at_line(0, "nodes", "missing; a cluster lists its unikernels:\n  [nodes.server]\n  manifest = \"server.toml\""),
        }
        let mut links = Vec::new();
        if let Some(l) = get(doc, "links") {
            let Some(items) = l.get_ref().as_array() else {
                r.at(l.span().start, "links", "expected [[links]] tables");
                return Err(Problems(r.problems));
            };
            for (i, item) in items.iter().enumerate() {
                let key = format!("links[{i}]");
                let Some(t) = item.get_ref().as_table() else {
                    r.at(item.span().start, &key, "expected a table with `between`");
                    continue;
                };
                if let Some(link) = Self::link(&mut r, t, &key, &nodes, item.span().start) {
                    links.push(link);
                }
            }
        }
        let dir = path.parent().map(Path::to_path_buf).filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."));
        r.finish()?;
        Ok(Cluster { path: path.to_path_buf(), dir, seed, expect_exit, nodes, links })
    }

    fn link(r: &mut Report, t: &DeTable, key: &str, nodes: &[Node], at: usize) -> Option<Link> {
        let line = r.line_of(at);
        for (k, _) in t.iter() {
            if !["between", "loss", "duplicate", "delay", "jitter", "partitions"].contains(&k.get_ref().as_ref()) {
                r.at(k.span().start, &format!("{key}.{}", k.get_ref()), "unknown key; use between, loss, duplicate, delay, jitter, partitions");
            }
        }
        let mut ends = Vec::new();
        match get(t, "between").and_then(|b| b.get_ref().as_array()) {
            Some(items) if items.len() == 2 => {
                for e in items.iter() {
                    let s = e.get_ref().as_str().unwrap_or("");
                    match s.split_once('.').and_then(|(n, role)| Some((nodes.iter().position(|x| x.name == n)?, role))) {
                        Some((n, role)) => ends.push((n, role.to_string())),
                        None => {
                            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                            r.at(e.span().start, &format!("{key}.between"), format!("{s:?} is not `<node>.<net role>` of a node here (nodes: {})", names.join(", ")));
                        }
                    }
                }
            }
            _ => r.at(at, &format!("{key}.between"), "expected two ends: between = [\"server.service\", \"client.service\"]"),
        }
        let prob = |r: &mut Report, name: &str| Self::param(r, t, key, name, false);
        let (loss, duplicate) = (prob(r, "loss")?, prob(r, "duplicate")?);
        let (delay, jitter) = (Self::param(r, t, key, "delay", true)?, Self::param(r, t, key, "jitter", true)?);
        let mut partitions = Vec::new();
        if let Some(p) = get(t, "partitions") {
            let ok = p.get_ref().as_array().map(|items| {
                items.iter().all(|w| {
                    let pair: Option<Vec<i64>> = w.get_ref().as_array().map(|a| a.iter().filter_map(|x| x.get_ref().as_str().and_then(parse_duration)).collect());
                    match pair.as_deref() {
                        Some([from, to]) if 0 <= *from && from < to => {
                            partitions.push((*from as u64, *to as u64));
                            true
                        }
                        _ => false,
                    }
                })
            });
            if ok != Some(true) {
                r.at(p.span().start, &format!("{key}.partitions"), "expected windows of virtual time: partitions = [[\"2s\", \"3s\"]]");
            }
        }
        if ends.len() != 2 {
            return None;
        }
        let ends = [ends[0].clone(), ends[1].clone()];
        Some(Link { ends, loss, duplicate, delay, jitter, partitions, line })
    }

    /// A probability (0..=1) or a duration (`"1ms"`), or a range of either.
    fn param(r: &mut Report, t: &DeTable, key: &str, name: &str, duration: bool) -> Option<Param> {
        let Some(v) = get(t, name) else { return Some(Param::Fixed(0.0)) };
        let full = format!("{key}.{name}");
        let one = |x: &DeValue| -> Option<f64> {
            if duration { x.as_str().and_then(parse_duration).filter(|d| *d >= 0).map(|d| d as f64) } else { number(x).filter(|p| (0.0..=1.0).contains(p)) }
        };
        let what = if duration { "a duration like \"1ms\"" } else { "a probability from 0 to 1" };
        match v.get_ref() {
            DeValue::Array(a) => {
                let ends: Vec<f64> = a.iter().filter_map(|x| one(x.get_ref())).collect();
                match ends.as_slice() {
                    [low, high] if a.len() == 2 && low <= high => {
                        Some(Param::Range(Swarm { key: full, low: *low, high: *high, integer: duration }))
                    }
                    _ => {
                        r.at(v.span().start, &full, format!("expected a range [low, high] of {what}s"));
                        None
                    }
                }
            }
            x => match one(x) {
                Some(f) => Some(Param::Fixed(f)),
                None => {
                    r.at(v.span().start, &full, format!("expected {what}, or a range [low, high] drawn per seed"));
                    None
                }
            },
        }
    }

    /// Parses every node's manifest as a simulation with the cluster's seed
    /// (each node's own seed is derived from it, so nodes draw differently).
    pub fn node_manifests(&self) -> Result<Vec<(Manifest, String)>, Problems> {
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let path = self.dir.join(&n.manifest);
            let src = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{}:{}: `nodes.{}.manifest`: cannot read {}: {e}", self.path.display(), n.line, n.name, path.display()));
                    continue;
                }
            };
            let over = SimOverride { enable: true, seed: Some(node_seed(self.seed, i)) };
            match Manifest::parse_with(&path, &src, over) {
                Ok(m) => out.push((m, src)),
                Err(p) => problems.extend(p.0),
            }
        }
        for l in &self.links {
            for (node, role) in &l.ends {
                if let Some((m, _)) = out.get(*node) {
                    let ok = m.devices.iter().any(|d| d.role == *role && d.backend == crate::manifest::Backend::SimLink);
                    if !ok {
                        problems.push(format!(
                            "{}:{}: `links.between`: node `{}` has no net device `{role}` with backend = \"sim\"; declare [devices.{role}] kind = \"net\", backend = \"sim\" in {}",
                            self.path.display(),
                            l.line,
                            self.nodes[*node].name,
                            m.path.display()
                        ));
                    }
                }
            }
        }
        if problems.is_empty() { Ok(out) } else { Err(Problems(problems)) }
    }
}

/// The simulation seed of node `index` in a cluster run with `seed`.
pub fn node_seed(seed: u64, index: usize) -> u64 {
    crate::sim::mix(crate::sim::mix(seed, 0x6e6f_6465), index as u64) >> 1
}

/// The simulation settings every node shares (the clock's start and tick).
pub fn shared_sim(first: &Manifest) -> SimSpec {
    first.sim.clone().unwrap_or_else(SimSpec::defaults)
}
