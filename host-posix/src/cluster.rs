//! Several unikernels in one simulation (a cluster manifest,
//! `weft_runtime::cluster`): their net devices joined by simulated links
//! with seeded loss, delay, duplication and partitions.
//!
//! Each node runs on a thread of its own, but only one runs at a time: a
//! node hands the baton on when it waits (`clock.wait-until`), and the
//! scheduler wakes the node with the earliest wake-up — its deadline, or the
//! arrival of a frame on one of its links — ties broken by node order, and
//! moves the one virtual clock all nodes share to that time. The threads are
//! coroutines; which code runs when depends on the seed alone, so a cluster
//! run repeats byte for byte, and `weft explore` explores it like one
//! unikernel. Each node's trace records the frames it received, so `weft
//! replay` replays one node of a cluster on its own.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::Result;
use wasmtime::Engine;
use weft_runtime::cluster::{Cluster, node_seed};
use weft_runtime::devices::{Clock, Console, ErrorCode, Log, NetDevice, NetInfo};
use weft_runtime::engine::Codegen;
use weft_runtime::link::{Leaves, Unikernel};
use weft_runtime::plan::Plan;
use weft_runtime::sim::mix;
use weft_runtime::tape::{Outcome, Recorder, Tape};

use crate::run::{self, Exit, RunOpts, Session};
use crate::sim::{Captured, NullLog, Run, World};

use crate::exit::invalid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
    /// Has not run yet, or was just woken.
    Ready,
    /// In `wait-until` for this deadline.
    Waiting(u64),
    Done,
}

/// A frame on its way: (arrival time, order sent, bytes).
type InFlight = (u64, u64, Vec<u8>);

/// One link, as the run draws it.
struct LinkRun {
    /// Endpoint ids at each end.
    ends: [usize; 2],
    loss: f64,
    duplicate: f64,
    delay: u64,
    jitter: u64,
    partitions: Vec<(u64, u64)>,
    seed: u64,
    /// Frames sent so far (the counter behind each frame's draws).
    sent: u64,
}

struct State {
    now: u64,
    tick: u64,
    nodes: Vec<NodeState>,
    /// Which node runs; `None` before the start and after the end.
    turn: Option<usize>,
    /// Per endpoint (a node's linked net device): its node and its inbox,
    /// ordered by arrival.
    endpoints: Vec<(usize, VecDeque<InFlight>)>,
    links: Vec<LinkRun>,
    order: u64,
    /// Frames the links dropped and duplicated.
    dropped: u64,
    duplicated: u64,
}

impl State {
    /// When `n` would wake: now when ready, else its deadline or the next
    /// frame for it, whichever is first.
    fn wake(&self, n: usize) -> Option<u64> {
        let arrival = self.endpoints.iter().filter(|(node, _)| *node == n).filter_map(|(_, q)| q.front().map(|f| f.0)).min();
        match self.nodes[n] {
            NodeState::Ready => Some(self.now),
            NodeState::Waiting(d) => Some(arrival.map_or(d, |a| a.min(d))),
            NodeState::Done => None,
        }
    }

    /// Hands the baton to the node that wakes first (ties: node order).
    fn schedule(&mut self) {
        let next = (0..self.nodes.len()).filter_map(|n| Some((self.wake(n)?, n))).min();
        self.turn = next.map(|(at, n)| {
            self.now = self.now.max(at);
            self.nodes[n] = NodeState::Ready;
            n
        });
    }

    fn unit(seed: u64, k: u64) -> f64 {
        (mix(seed, k) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Puts `frames` on the link of endpoint `from`.
    fn transmit(&mut self, from: usize, frames: &[&[u8]]) {
        let Some(li) = self.links.iter().position(|l| l.ends.contains(&from)) else { return };
        for f in frames {
            let (now, order) = (self.now, self.order);
            let l = &mut self.links[li];
            let k = l.sent;
            l.sent += 1;
            let cut = l.partitions.iter().any(|(a, b)| (*a..*b).contains(&now));
            if cut || Self::unit(l.seed, 4 * k) < l.loss {
                self.dropped += 1;
                continue;
            }
            let to = if l.ends[0] == from { l.ends[1] } else { l.ends[0] };
            let jitter = (Self::unit(l.seed, 4 * k + 1) * l.jitter as f64) as u64;
            let at = now + l.delay + jitter;
            let copies = if Self::unit(l.seed, 4 * k + 2) < l.duplicate { 2 } else { 1 };
            self.duplicated += copies - 1;
            for c in 0..copies {
                let q = &mut self.endpoints[to].1;
                let frame = (at + c, order, f.to_vec());
                let i = q.partition_point(|x| (x.0, x.1) <= (frame.0, frame.1));
                q.insert(i, frame);
                self.order += 1;
            }
        }
    }
}

/// The scheduler the nodes of one run share.
struct Baton {
    state: Mutex<State>,
    turn: Condvar,
}

impl Baton {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks node `me`'s thread until it is its turn.
    fn wait_turn(&self, me: usize) {
        let mut s = self.lock();
        while s.turn != Some(me) {
            s = self.turn.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// `me` waits until `deadline` (or a frame): another node may run.
    fn wait(&self, me: usize, deadline: u64) {
        {
            let mut s = self.lock();
            if deadline <= s.now {
                return;
            }
            s.nodes[me] = NodeState::Waiting(deadline);
            s.schedule();
        }
        self.turn.notify_all();
        self.wait_turn(me);
    }

    /// `me` has finished.
    fn done(&self, me: usize) {
        {
            let mut s = self.lock();
            s.nodes[me] = NodeState::Done;
            s.schedule();
        }
        self.turn.notify_all();
    }
}

/// A node's view of the shared virtual clock.
struct NodeClock {
    me: usize,
    start: i64,
    baton: Arc<Baton>,
}

impl Clock for NodeClock {
    fn monotonic_now(&self) -> u64 {
        let mut s = self.baton.lock();
        s.now = s.now.saturating_add(s.tick);
        s.now
    }
    fn wall_now(&self) -> i64 {
        self.start.saturating_add(self.monotonic_now() as i64)
    }
    fn wait_until(&mut self, deadline: u64) {
        self.baton.wait(self.me, deadline);
    }
}

/// A node's end of a simulated link.
struct LinkEnd {
    endpoint: usize,
    info: NetInfo,
    baton: Arc<Baton>,
}

impl NetDevice for LinkEnd {
    fn info(&self) -> NetInfo {
        self.info
    }
    fn send(&mut self, frames: &[&[u8]]) -> Result<u32, ErrorCode> {
        self.baton.lock().transmit(self.endpoint, frames);
        Ok(frames.len() as u32)
    }
    fn receive(&mut self, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let mut s = self.baton.lock();
        let now = s.now;
        let Some((_, q)) = s.endpoints.get_mut(self.endpoint) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        while out.len() < max as usize && q.front().is_some_and(|f| f.0 <= now) {
            out.push(q.pop_front().expect("checked").2);
        }
        Ok(out)
    }
}

/// Console lines prefixed with the node's name (`weft run` of a cluster).
struct NodeConsole {
    name: String,
    line: Vec<u8>,
}

impl Console for NodeConsole {
    fn write(&mut self, bytes: &[u8]) {
        self.line.extend_from_slice(bytes);
        while let Some(i) = self.line.iter().position(|&b| b == b'\n') {
            let rest = self.line.split_off(i + 1);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{}| ", self.name).as_bytes()).and_then(|()| out.write_all(&self.line)).and_then(|()| out.flush());
            self.line = rest;
        }
    }
}

/// Events prefixed with the node's name.
struct NodeLog(String);

impl Log for NodeLog {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]) {
        let line = format!("{}| {}", self.0, crate::backends::event_line(topic, message, fields));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// A node, planned.
struct NodeSim {
    name: String,
    plan: Plan,
    unikernel: Unikernel,
    world: World,
    src: String,
}

/// A planned cluster, ready to run any seed.
pub struct ClusterSim {
    cluster: Cluster,
    engine: Engine,
    nodes: Vec<NodeSim>,
}

/// What each node did in one run.
struct NodeEnd {
    code: u8,
    outcome: Outcome,
    console: String,
    trace: Option<Vec<u8>>,
    /// Faults the node's filters injected: (node, boot, token).
    faults: Vec<(usize, u32, String)>,
}

impl ClusterSim {
    pub fn open(path: &Path, src: &str) -> Result<ClusterSim> {
        Self::open_for(path, src, Codegen::default())
    }

    /// [`ClusterSim::open`] compiling as `codegen` asks (always
    /// deterministic; `weft explore`: no symbolized stacks).
    pub fn open_for(path: &Path, src: &str, codegen: Codegen) -> Result<ClusterSim> {
        let cluster = Cluster::parse(path, src).map_err(|p| invalid(p.to_string()))?;
        let manifests = cluster.node_manifests().map_err(|p| invalid(p.to_string()))?;
        let engine = run::engine_for(Codegen { deterministic: true, ..codegen })?;
        let mut nodes = Vec::new();
        for (n, (m, src)) in cluster.nodes.iter().zip(manifests) {
            let (plan, dir) = run::plan_manifest(m, &engine)?;
            let unikernel = run::unikernel(&plan, &engine)?;
            let world = World::new(&plan, &dir)?;
            nodes.push(NodeSim { name: n.name.clone(), plan, unikernel, world, src });
        }
        Ok(ClusterSim { cluster, engine, nodes })
    }

    fn baton(&self, seed: u64) -> (Arc<Baton>, Vec<Vec<(String, usize)>>) {
        let first = &self.nodes[0].plan.manifest;
        let tick = first.sim.as_ref().map_or(1_000, |s| s.tick);
        let mut endpoints = Vec::new();
        let mut per_node: Vec<Vec<(String, usize)>> = vec![Vec::new(); self.nodes.len()];
        let mut links = Vec::new();
        for (i, l) in self.cluster.links.iter().enumerate() {
            let mut ends = [0; 2];
            for (e, (node, role)) in l.ends.iter().enumerate() {
                ends[e] = endpoints.len();
                per_node[*node].push((role.clone(), endpoints.len()));
                endpoints.push((*node, VecDeque::new()));
            }
            links.push(LinkRun {
                ends,
                loss: l.loss.value(seed, i),
                duplicate: l.duplicate.value(seed, i),
                delay: l.delay.value(seed, i) as u64,
                jitter: l.jitter.value(seed, i) as u64,
                partitions: l.partitions.clone(),
                seed: mix(seed, 0x6c69_6e6b + i as u64),
                sent: 0,
            });
        }
        let state = State {
            now: 0,
            tick,
            nodes: vec![NodeState::Ready; self.nodes.len()],
            turn: None,
            endpoints,
            links,
            order: 0,
            dropped: 0,
            duplicated: 0,
        };
        (Arc::new(Baton { state: Mutex::new(state), turn: Condvar::new() }), per_node)
    }

    /// Runs the cluster with `seed`: every node to its end.
    fn run_nodes(&self, seed: u64, record: bool, print: bool) -> (Vec<NodeEnd>, u64, u64, u64) {
        let (baton, ends) = self.baton(seed);
        let results: Vec<NodeEnd> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, node)| {
                    let baton = baton.clone();
                    let ends = &ends[i];
                    s.spawn(move || {
                        let nseed = node_seed(seed, i);
                        let console = Captured::default();
                        let (c, l): (Box<dyn Console>, Box<dyn Log>) = if print {
                            (Box::new(NodeConsole { name: node.name.clone(), line: Vec::new() }), Box::new(NodeLog(node.name.clone())))
                        } else {
                            (Box::new(console.clone()), Box::new(NullLog))
                        };
                        let mut leaves: Leaves = node.world.leaves(&node.plan, nseed, c, l);
                        let start = node.plan.manifest.sim.as_ref().map_or(0, |s| s.start);
                        leaves.clock = Box::new(NodeClock { me: i, start, baton: baton.clone() });
                        for d in node.plan.net_devices() {
                            let endpoint = ends.iter().find(|(r, _)| *r == d.role).map(|(_, e)| *e);
                            let name = format!("{}.{}", node.name, d.role);
                            let m = weft_runtime::leaves::mac_for(&name);
                            let info = NetInfo { mac: (m[0], m[1], m[2], m[3], m[4], m[5]), mtu: 1500, checksum_offload: false };
                            // A device on no link: a cable to nowhere.
                            let endpoint = endpoint.unwrap_or(usize::MAX);
                            leaves.nets.push(Box::new(LinkEnd { endpoint, info, baton: baton.clone() }));
                        }
                        let tape = if record {
                            Tape::Record(Box::new(Recorder::new(&crate::trace::header(&node.plan, &leaves, &node.src, Some(nseed)))))
                        } else {
                            Tape::Off
                        };
                        baton.wait_turn(i);
                        let session = Session::new(&node.plan, &node.unikernel, &self.engine);
                        let ended = session.execute(leaves, tape, &RunOpts { seed: Some(nseed), schedules: None, collect: true, stats: false, profiler: None });
                        baton.done(i);
                        let trace = match ended.tape {
                            Tape::Record(r) => Some(r.finish()),
                            _ => None,
                        };
                        let text = String::from_utf8_lossy(&console.0.lock().expect("console")).into_owned();
                        if let (Some(e), true) = (&ended.error, print) {
                            let msg = e.downcast_ref::<Exit>().map_or(format!("{e:#}"), |x| x.message.clone());
                            eprintln!("{}| {msg}", node.name);
                        }
                        let faults = ended.faults.iter().map(|(_, b, t)| (i, *b, t.clone())).collect();
                        NodeEnd { code: ended.code, outcome: ended.outcome, console: text, trace, faults }
                    })
                })
                .collect();
            {
                // Node 0 starts.
                baton.lock().schedule();
                baton.turn.notify_all();
            }
            handles.into_iter().map(|h| h.join().expect("a node thread panicked")).collect()
        });
        let s = baton.lock();
        (results, s.now, s.dropped, s.duplicated)
    }

    fn summarise(&self, seed: u64, ends: &[NodeEnd], now: u64) -> Run {
        let expect = self.cluster.expect_exit;
        let failing = ends.iter().position(|e| e.code != expect || e.outcome != Outcome::Exit(expect));
        let at = failing.unwrap_or(0);
        let e = &ends[at];
        let lines: Vec<&str> = e.console.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = format!("{}: {}", self.nodes[at].name, lines[lines.len().saturating_sub(2)..].join(" / "));
        let faults = ends.iter().flat_map(|e| e.faults.iter().cloned()).collect();
        Run { seed, code: e.code, outcome: e.outcome.clone(), tail, virtual_ns: now, faults }
    }
}

impl crate::sim::Explorable for ClusterSim {
    fn path(&self) -> &Path {
        &self.cluster.path
    }
    fn first_seed(&self) -> u64 {
        self.cluster.seed
    }
    fn expect_exit(&self) -> u8 {
        self.cluster.expect_exit
    }
    fn run_seed(&self, seed: u64) -> Run {
        let (ends, now, _, _) = self.run_nodes(seed, false, false);
        self.summarise(seed, &ends, now)
    }
    fn traces(&self, seed: u64) -> (Run, Vec<(String, Vec<u8>)>) {
        let (ends, now, _, _) = self.run_nodes(seed, true, false);
        let traces = ends.iter().zip(&self.nodes).filter_map(|(e, n)| Some((format!(".{}", n.name), e.trace.clone()?))).collect();
        (self.summarise(seed, &ends, now), traces)
    }
    fn shrink(&self, seed: u64, _: &Path) -> Result<()> {
        eprintln!("weft: shrinking a cluster's run is not supported yet; seed {seed}'s traces replay each node (weft replay)");
        Ok(())
    }
}

/// `weft run CLUSTER.toml [--seed N] [--record DIR]`: every node, its console
/// and events prefixed with its name; the exit code is the first failing
/// node's (or 0). `record` writes `<node>.trace` per node into that folder.
pub fn run(path: &Path, src: &str, seed: Option<u64>, record: Option<&Path>) -> Result<u8> {
    let c = ClusterSim::open(path, src)?;
    let seed = seed.unwrap_or(c.cluster.seed);
    let (ends, now, dropped, duplicated) = c.run_nodes(seed, record.is_some(), true);
    if let Some(dir) = record {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        for (e, n) in ends.iter().zip(&c.nodes) {
            if let Some(t) = &e.trace {
                let p: PathBuf = dir.join(format!("{}.trace", n.name));
                std::fs::write(&p, t).map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
            }
        }
    }
    let outcomes: Vec<String> = ends.iter().zip(&c.nodes).map(|(e, n)| format!("{} {}", n.name, e.outcome)).collect();
    eprintln!(
        "weft: cluster seed {seed}: {}; {} of virtual time, links dropped {dropped} and duplicated {duplicated} frames",
        outcomes.join(", "),
        weft_runtime::units::format_duration(now as i64)
    );
    Ok(c.summarise(seed, &ends, now).code)
}
