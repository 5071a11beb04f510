//! The linker: instantiates a unikernel's components and links them by typed
//! forwarding in one `Store`.
//!
//! Every component gets its own `Linker`, whose host functions know who the
//! caller is (`me`). A call is routed to its *provider*: a host leaf
//! (`Provider::Leaf`) or an exported function of another component
//! (`Provider::Filter`), called in the same store. Providers are instantiated
//! first — for each device its filters innermost-first — and the app last, so
//! a provider always exists before its consumer.
//!
//! Handles (`weft:devices/types.handle`) are per-consumer: `open` allocates a
//! slot in the caller's table that remembers the provider and the provider's
//! own handle. This is the one place handles are mapped, for every hop.
//!
//! Here: the wiring, the store's data (`Host`) and the clock, sockets and
//! leaf-only interfaces; `block` and `net` forward those devices' calls
//! (past filters that do not handle them, and to observers); `unikernel`
//! plans the instances and instantiates them.

mod block;
mod net;
mod unikernel;

pub use unikernel::{App, ConfigError, Unikernel};

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Linker, Lower,
    TypedFunc, WasmList,
};
use core::sync::atomic::{AtomicBool, Ordering};
use wasmtime::{AsContextMut, Engine, Result, Store, StoreContextMut};

use crate::devices::{
    BlockDevice, Capture, Clock, Console, Direction, Endpoint, ErrorCode, Geometry, Log, MAX_FRAMES,
    MAX_RANDOM, NetDevice, NetInfo, Random, SocketError, Sockets, check_range,
};
use crate::fault::{Exited, Failure, PowerCut, Stop, Who};
use crate::names;
use crate::stats::{self, Iface, Op, Report as StatsReport, Row, StatClock, Stats};
use crate::tape::{Diverged, Tape};
use crate::watch::{BlockCall, BlockInterest, BlockOp, Interest};

/// The wiring the linker builds: a validated plan, minus everything
/// host-specific (paths, backends). Built by `plan` on Linux and read from the
/// bundle on bare metal.
#[derive(Clone, Debug, Default)]
pub struct Wiring {
    /// The app's display name (`kvstore`).
    pub app: String,
    /// Block devices by role, in the order of the leaves passed to `Host::new`.
    pub blocks: Vec<Device>,
    /// Net devices by role, in the order of `Leaves::nets`.
    pub nets: Vec<Device>,
    /// Filters on the clock, innermost first.
    pub clock_filters: Vec<Filter>,
    /// The TCP/IP stack component serving the app's `sockets`, if any.
    pub stack: Option<Stack>,
    /// `[wasi]` configure entries (`env`, `cwd`, `preopen`) for the `wasi`
    /// component composed into an app that imports WASI; after the args.
    pub wasi: Vec<(String, String)>,
    /// `[components.*]` composed into the app (`kv`): each is configured
    /// through its `<name>-config` export when the app is instantiated.
    pub parts: Vec<Filter>,
}

impl Wiring {
    /// Every filter (and the stack) in link order: each block device's
    /// chain, each net device's, the clock chain, the stack.
    pub fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.blocks
            .iter()
            .chain(&self.nets)
            .flat_map(|d| &d.filters)
            .chain(&self.clock_filters)
            .chain(self.stack.as_ref().map(|s| &s.filter))
    }

    /// [`Wiring::filters`], mutably.
    pub fn filters_mut(&mut self) -> impl Iterator<Item = &mut Filter> {
        self.blocks
            .iter_mut()
            .chain(&mut self.nets)
            .flat_map(|d| &mut d.filters)
            .chain(&mut self.clock_filters)
            .chain(self.stack.as_mut().map(|s| &mut s.filter))
    }
}

/// A stack component: its name/config (`[stack]` keys) and the net device
/// (index into `Wiring::nets`) it drives.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub filter: Filter,
    pub net: usize,
}

/// One device: its role and filter chain.
#[derive(Clone, Debug, Default)]
pub struct Device {
    pub role: String,
    /// Innermost (wrapping the leaf) first.
    pub filters: Vec<Filter>,
}

/// One filter of a chain.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Component name (`block-fault`).
    pub name: String,
    /// The manifest's `config` table, values in TOML syntax.
    pub config: Vec<(String, String)>,
    /// Where it was declared, for error messages (`weft.toml:14`).
    pub origin: String,
    /// It only observes (`net-watch`, `block-watch`), as the planner found:
    /// a simulation's `sim-seed`s number the other filters without it
    /// (`crate::sim::configs`), so adding an observer draws no other
    /// filter's numbers anew. Not in a bundle (the host computes configs).
    pub observer: bool,
}

/// The host's leaf devices for one run.
pub struct Leaves {
    /// One per `Wiring::blocks`, same order.
    pub blocks: Vec<Box<dyn BlockDevice>>,
    pub clock: Box<dyn Clock>,
    pub console: Box<dyn Console>,
    pub random: Box<dyn Random>,
    pub log: Box<dyn Log>,
    /// One per `Wiring::nets`, same order.
    pub nets: Vec<Box<dyn NetDevice>>,
    /// One per net filter, in link order (each net chain innermost first);
    /// only filters that import `capture` write to theirs.
    pub captures: Vec<Box<dyn Capture>>,
    /// The host's own stack, when `[stack] backend = "host"`.
    pub sockets: Option<Box<dyn Sockets>>,
}

impl Leaves {
    /// Leaves for a unikernel without networking.
    pub fn new(
        blocks: Vec<Box<dyn BlockDevice>>,
        clock: Box<dyn Clock>,
        console: Box<dyn Console>,
        random: Box<dyn Random>,
        log: Box<dyn Log>,
    ) -> Leaves {
        Leaves { blocks, clock, console, random, log, nets: Vec::new(), captures: Vec::new(), sockets: None }
    }
}

/// Per-run limits enforced by the store.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest linear memory (bytes) any component may have.
    pub memory: usize,
    /// Wall-clock budget of the whole run, in ns of the leaf clock.
    pub timeout: Option<u64>,
    /// Period of the host's epoch ticker, in ns (0 = no ticker).
    pub epoch_tick: u64,
    /// A simulation: each boot may execute this many wasm instructions
    /// (fuel), and a clock reading past the timeout stops the run, so a
    /// hang is caught at the same point on every run and host.
    pub fuel: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Leaf(usize),
    Filter(usize),
}

/// The store's data: leaves, the links between instances and the fault record.
pub struct Host {
    leaves: Leaves,
    geometry: Vec<Geometry>,
    net_info: Vec<NetInfo>,
    /// Exports of each instantiated filter, by instance id.
    filters: Vec<FilterExports>,
    /// Routing of each consumer's imports, by instance id (the app is last).
    links: Vec<Link>,
    names: Vec<String>,
    limits: Limits,
    deadline: Option<u64>,
    failure: Option<Failure>,
    /// Records or replays every leaf call (off by default).
    tape: Tape,
    /// When collecting: each fault a filter logged, as (instance, its
    /// `schedule` token) — what `weft shrink` minimises.
    faults: Option<Vec<(usize, String)>>,
    /// `--stats`: what crosses each hop (off by default).
    stats: Option<Stats>,
    /// The observer whose `seen` is running, if any: it must not call its
    /// device or cut the power from there (wit/watch.wit).
    observing: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandleKind {
    Block,
    Net,
}

/// Where one instance's imports go: planned once per unikernel
/// (`unikernel::Slot`) and copied into each run's `Link`.
#[derive(Clone, Default)]
struct Routes {
    blocks: Vec<(String, Provider)>,
    nets: Vec<(String, Provider)>,
    clock: Option<Provider>,
    sockets: Option<Provider>,
    /// Index into `Leaves::captures` (net filters only).
    capture: Option<usize>,
    /// Net and block filters that only observe the calls this consumer
    /// makes to a provider, taken out of its path (`crate::watch`):
    /// (provider, filter), innermost first.
    watchers: Vec<(Provider, usize)>,
    /// A block or net filter: its chain's leaf (index into `Leaves::blocks`
    /// or `Leaves::nets`), whose geometry its results are held to until it
    /// reports its own.
    device: usize,
}

/// One instance's links during a run: its routes, and what the run adds.
#[derive(Default)]
struct Link {
    routes: Routes,
    handles: Vec<Opened>,
    /// A net filter that routes (`net-route`): frames it received from the
    /// device below but does not handle, waiting for the consumer above.
    stash: VecDeque<Vec<u8>>,
}

/// One slot of a consumer's handle table.
#[derive(Clone, Copy)]
struct Opened {
    kind: HandleKind,
    provider: Provider,
    /// The provider's own handle.
    handle: u32,
    /// What the provider's results are checked against: the sector size
    /// (block) or the largest frame, `14 + mtu` (net) — as the provider last
    /// reported it through `info` to this consumer, else its device's.
    unit: u32,
}

#[derive(Default)]
struct FilterExports {
    block: Option<BlockFns>,
    clock: Option<ClockFns>,
    net: Option<NetFns>,
    sockets: Option<SocketFns>,
    /// A net filter that only observes: what it asked for, and where to send it.
    watch: Option<(Interest, TypedFunc<(Direction, Vec<Vec<u8>>), ()>)>,
    /// A block filter that only observes: the operations it asked for, and
    /// where to send them.
    block_watch: Option<(BlockInterest, TypedFunc<(BlockCall,), ()>)>,
    /// A net filter in the path that handles only these frames (`net-route`).
    net_route: Option<Interest>,
    /// A block filter in the path that handles only these operations
    /// (`block-route`).
    block_route: Option<BlockInterest>,
}

struct NetFns {
    open: TypedFunc<(String,), (Result<u32, ErrorCode>,)>,
    info: TypedFunc<(u32,), (Result<NetInfo, ErrorCode>,)>,
    send: TypedFunc<(u32, Vec<Vec<u8>>), (Result<u32, ErrorCode>,)>,
    receive: TypedFunc<(u32, u32), (Result<Vec<Vec<u8>>, ErrorCode>,)>,
}

type SockResult<T> = (Result<T, SocketError>,);

struct SocketFns {
    tcp_listen: TypedFunc<(u16,), SockResult<u32>>,
    tcp_accept: TypedFunc<(u32,), SockResult<(u32, Endpoint)>>,
    tcp_connect: TypedFunc<(Endpoint,), SockResult<u32>>,
    tcp_send: TypedFunc<(u32, Vec<u8>), SockResult<u32>>,
    tcp_recv: TypedFunc<(u32, u32), SockResult<Vec<u8>>>,
    tcp_shutdown: TypedFunc<(u32,), SockResult<()>>,
    udp_bind: TypedFunc<(u16,), SockResult<u32>>,
    udp_send_to: TypedFunc<(u32, Vec<u8>, Endpoint), SockResult<()>>,
    udp_recv_from: TypedFunc<(u32, u32), SockResult<(Vec<u8>, Endpoint)>>,
    close: TypedFunc<(u32,), ()>,
    next_deadline: TypedFunc<(), (Option<u64>,)>,
}

struct BlockFns {
    open: TypedFunc<(String,), (Result<u32, ErrorCode>,)>,
    info: TypedFunc<(u32,), (Result<Geometry, ErrorCode>,)>,
    read: TypedFunc<(u32, u64, u32), (Result<Vec<u8>, ErrorCode>,)>,
    write: TypedFunc<(u32, u64, Vec<u8>), (Result<(), ErrorCode>,)>,
    flush: TypedFunc<(u32,), (Result<(), ErrorCode>,)>,
}

struct ClockFns {
    monotonic_now: TypedFunc<(), (u64,)>,
    wall_now: TypedFunc<(), (i64,)>,
    wait_until: TypedFunc<(u64,), (u64,)>,
}

impl Host {
    pub fn new(leaves: Leaves, limits: Limits) -> Self {
        let geometry = leaves.blocks.iter().map(|b| b.geometry()).collect();
        let net_info = leaves.nets.iter().map(|n| n.info()).collect();
        Host {
            leaves,
            geometry,
            net_info,
            filters: Vec::new(),
            links: Vec::new(),
            names: Vec::new(),
            limits,
            deadline: None,
            failure: None,
            tape: Tape::Off,
            faults: None,
            stats: None,
            observing: None,
        }
    }

    /// Count every forwarded call (`--stats`), timed with `clock`.
    pub fn collect_stats(&mut self, clock: StatClock) {
        self.stats = Some(Stats::new(clock));
    }

    /// When counting: the time a forwarded call starts.
    #[inline]
    fn stat_start(&self) -> Option<u64> {
        self.stats.as_ref().map(|s| (s.clock.ticks)())
    }

    /// When counting: a forwarded call `me` made to `p` ended.
    #[allow(clippy::too_many_arguments)]
    fn stat_end(&mut self, t0: Option<u64>, me: usize, p: Provider, iface: Iface, op: Op, bytes: u64, ok: bool) {
        let (Some(t0), Some(st)) = (t0, self.stats.as_mut()) else { return };
        let t = (st.clock.ticks)().saturating_sub(t0);
        let (provider, leaf) = match p {
            Provider::Leaf(d) => (None, d),
            Provider::Filter(f) => (Some(f), 0),
        };
        let row = st.rows.entry(stats::key(me, provider, iface, leaf, op)).or_default();
        row.calls += 1;
        row.bytes += bytes;
        row.errors += u64::from(!ok);
        row.time.add(t);
    }

    /// What the counters say, with devices and hops named (`None` unless
    /// counting).
    pub fn stats_report(&self) -> Option<StatsReport> {
        let st = self.stats.as_ref()?;
        let short = |i: usize| {
            let n = self.names.get(i).map_or("?", |s| s.as_str());
            String::from(n.split(" (").next().unwrap_or(n))
        };
        let mut report = StatsReport::default();
        let ns_per_tick = st.ns_per_tick();
        // Grouped by interface, then from the consumer nearest the app down
        // (the app is the last instance, each chain's outer filters after
        // its inner ones).
        let mut rows: Vec<_> = st.rows.iter().map(|(&k, row)| (stats::unkey(k), row)).collect();
        rows.sort_by_key(|((me, _, iface, leaf, op), _)| (*iface, *leaf, core::cmp::Reverse(*me), *op));
        for ((me, provider, iface, leaf, op), row) in rows {
            let p = provider.map_or(Provider::Leaf(leaf), Provider::Filter);
            // The role under which `me` reaches `p`; for a watcher's `seen`
            // (`p` is no provider of `me`), the device the watcher sits on.
            let role = |list: fn(&Link) -> &[(String, Provider)]| {
                let mine = list(&self.links[me]).iter().find(|(_, q)| *q == p);
                mine.or_else(|| provider.and_then(|f| list(&self.links[f]).first())).map(|(r, _)| r.clone())
            };
            let device = match iface {
                Iface::Block => role(|l| &l.routes.blocks),
                Iface::Net => role(|l| &l.routes.nets),
                Iface::Clock => Some("clock".into()),
                Iface::Sockets => Some("sockets".into()),
                Iface::Console => Some("console".into()),
                Iface::Random => Some("random".into()),
                Iface::Log => Some("log".into()),
            }
            .unwrap_or_else(|| "?".into());
            let to = provider.map_or_else(|| String::from("host"), short);
            report.add((device, format!("{} -> {to}", short(me)), op.name()), &Row { ns_per_tick, ..row.clone() });
        }
        for (&who, &n) in &st.faults {
            report.add_faults(short(who), n);
        }
        Some(report)
    }

    /// Keep every injected fault's `schedule` token (see `faults`).
    pub fn collect_faults(&mut self) {
        self.faults = Some(Vec::new());
    }

    /// The faults collected so far: (instance, token).
    pub fn faults(&self) -> &[(usize, String)] {
        self.faults.as_deref().unwrap_or_default()
    }

    /// A host whose leaf calls go through `tape` (recording or replaying).
    pub fn with_tape(leaves: Leaves, limits: Limits, tape: Tape) -> Self {
        Host { tape, ..Host::new(leaves, limits) }
    }

    pub fn tape_mut(&mut self) -> &mut Tape {
        &mut self.tape
    }

    /// The leaves and the tape back, after the run (to flush or inspect the
    /// leaves, boot the next phase on them, or finish the trace).
    pub fn into_parts(self) -> (Leaves, Tape) {
        (self.leaves, self.tape)
    }

    /// What stopped the run, once it has failed.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Display name of an instance.
    pub fn name(&self, who: Who) -> &str {
        match who {
            Who::Component(i) => self.names.get(i).map_or("?", |s| s.as_str()),
            Who::Host => "host",
        }
    }

    /// The leaves back, after the run (to flush or inspect them).
    pub fn into_leaves(self) -> Leaves {
        self.leaves
    }

    fn blame(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
        }
    }

    fn handle(&self, me: usize, kind: HandleKind, h: u32) -> Option<(Provider, u32)> {
        self.opened(me, kind, h).map(|o| (o.provider, o.handle))
    }

    fn opened(&self, me: usize, kind: HandleKind, h: u32) -> Option<Opened> {
        match self.links[me].handles.get(h as usize) {
            Some(&o) if o.kind == kind => Some(o),
            _ => None,
        }
    }

    fn open_handle(&mut self, me: usize, kind: HandleKind, p: Provider, h: u32) -> u32 {
        let d = match p {
            Provider::Leaf(d) => d,
            Provider::Filter(f) => self.links[f].routes.device,
        };
        let unit = match kind {
            HandleKind::Block => self.geometry[d].sector_size,
            HandleKind::Net => self.net_info[d].mtu.saturating_add(14),
        };
        let handles = &mut self.links[me].handles;
        handles.push(Opened { kind, provider: p, handle: h, unit });
        (handles.len() - 1) as u32
    }

    /// What `me`'s handle `h` holds its provider to, now `unit` (from `info`).
    fn set_unit(&mut self, me: usize, h: u32, unit: u32) {
        if let Some(o) = self.links[me].handles.get_mut(h as usize) {
            o.unit = unit;
        }
    }

    /// Filter `f` answered with a result its `contract` forbids: it is the
    /// culprit (not the consumer its error unwinds through), and the run stops
    /// before the result reaches anyone.
    fn breach(&mut self, f: usize, contract: &'static str, message: String) -> wasmtime::Error {
        let e = wasmtime::Error::msg(format!("broke the {contract} contract: {message}"));
        self.blame(Failure::Contract { who: Who::Component(f), contract, message });
        e
    }

    /// The leaf clock's reading. In a simulation a reading past the
    /// timeout ends the run (virtual time passes only through readings and
    /// waits), with the reader as the one that hung.
    fn leaf_now(&mut self, me: usize) -> Result<u64> {
        let now = self.tape.monotonic_now(&mut self.leaves)?;
        if let (Some(_), Some(end)) = (self.limits.fuel, self.deadline)
            && now >= end
        {
            self.blame(Failure::Timeout { who: Who::Component(me) });
            return Err(wasmtime::Error::new(Stop::Timeout));
        }
        Ok(now)
    }

    /// Whether a filter observing `me`'s calls to `p` asked for `op`.
    fn block_watched(&self, me: usize, p: Provider, op: BlockOp) -> bool {
        self.links[me]
            .routes.watchers
            .iter()
            .any(|&(q, w)| q == p && self.filters[w].block_watch.as_ref().is_some_and(|(i, _)| i.wants(op)))
    }

    /// A reading of the leaf clock that times a call for block observers:
    /// through the tape (a replay hands over the recorded durations), and
    /// none in a simulation, whose virtual time moves when it is read — an
    /// observer must not change what a simulated unikernel sees, so its
    /// durations there are 0 (wit/watch.wit).
    fn watch_clock(&mut self) -> Result<u64> {
        if self.limits.fuel.is_some() {
            return Ok(0);
        }
        self.tape.monotonic_now(&mut self.leaves)
    }

    /// A filter that routes (`net-route`, `block-route`) returns from `open`
    /// the handle its own `open` of the device below returned: calls routed
    /// past it are made with that handle. It broke the contract otherwise.
    fn check_routed_open(&mut self, f: usize, kind: HandleKind, h: u32) -> Result<()> {
        let (routes, contract) = match kind {
            HandleKind::Block => (self.filters[f].block_route.is_some(), "block-route"),
            HandleKind::Net => (self.filters[f].net_route.is_some(), "net-route"),
        };
        if routes && self.opened(f, kind, h).is_none() {
            let m = format!("`open` returned handle {h}, not one its own `open` of the device below returned");
            return Err(self.breach(f, contract, m));
        }
        Ok(())
    }

    /// `me` calls `what` on a device (or cuts the power): refused, with `me`
    /// to blame, while `me` is an observer inside `seen`, whose contract
    /// forbids it (it would change the run it only watches).
    fn not_from_seen(&mut self, me: usize, what: &str) -> Result<()> {
        if self.observing != Some(me) {
            return Ok(());
        }
        let contract = if self.filters[me].block_watch.is_some() { "block-watch" } else { "net-watch" };
        Err(self.breach(me, contract, format!("called `{what}` from `seen`")))
    }

    /// Where filter `f` sends a block `op` on its handle `h` that it does not
    /// handle (`block-route`): its own slot for the device below, whose
    /// handle it returned from `open`. `None`: `f` handles `op`.
    fn routed(&self, f: usize, h: u32, op: BlockOp) -> Option<Opened> {
        match self.filters[f].block_route {
            Some(i) if !i.wants(op) => self.opened(f, HandleKind::Block, h),
            _ => None,
        }
    }

    fn block_fns(&self, f: usize) -> &BlockFns {
        self.filters[f].block.as_ref().expect("a block provider exports block")
    }

    fn clock_fns(&self, f: usize) -> &ClockFns {
        self.filters[f].clock.as_ref().expect("a clock provider exports clock")
    }

    fn net_fns(&self, f: usize) -> &NetFns {
        self.filters[f].net.as_ref().expect("a net provider exports net")
    }

    fn socket_fns(&self, f: usize) -> &SocketFns {
        self.filters[f].sockets.as_ref().expect("a sockets provider exports sockets")
    }
}

impl wasmtime::ResourceLimiter for Host {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        if desired > self.limits.memory {
            // The component being grown is the innermost one running; the
            // forwarding closures attribute it as the error unwinds.
            return Err(wasmtime::Error::new(Stop::Memory { desired, limit: self.limits.memory }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Calls a provider's export; on failure records the provider as culprit
/// (the innermost failing component wins, since it records first).
fn call<P, R>(cx: &mut StoreContextMut<'_, Host>, who: usize, f: TypedFunc<P, R>, p: P) -> Result<R>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    f.call(&mut *cx, p).inspect_err(|e| {
        // Ends of the run that are nobody's fault.
        if e.downcast_ref::<Exited>().is_some() || e.downcast_ref::<PowerCut>().is_some() || e.downcast_ref::<Diverged>().is_some() {
            return;
        }
        let failure = Failure::from_error(Who::Component(who), e);
        cx.data_mut().blame(failure);
    })
}

/// Runs `body`, a call `me` makes to `p`, and counts it for `--stats`;
/// `measure` gives the bytes it moved and whether it succeeded. (Calls with
/// a handle count themselves: their provider is known only inside.)
fn counted<T>(
    cx: &mut StoreContextMut<'_, Host>,
    me: usize,
    p: Provider,
    iface: Iface,
    op: Op,
    measure: impl FnOnce(&T) -> (u64, bool),
    body: impl FnOnce(&mut StoreContextMut<'_, Host>) -> Result<T>,
) -> Result<T> {
    let t0 = cx.data().stat_start();
    let r = body(cx)?;
    if t0.is_some() {
        let (n, ok) = measure(&r);
        cx.data_mut().stat_end(t0, me, p, iface, op, n, ok);
    }
    Ok(r)
}

/// Runs `f` (an observer's `seen`) outside the run's fuel: in a simulation
/// the observer's instructions are not the run's, so it runs on a budget of
/// its own (a boot's) and the run's fuel is as it was afterwards — the run
/// stops (runs out) at the same instruction with observers as without.
fn on_own_fuel<R>(cx: &mut StoreContextMut<'_, Host>, f: impl FnOnce(&mut StoreContextMut<'_, Host>) -> Result<R>) -> Result<R> {
    let Some(budget) = cx.data().limits.fuel else { return f(cx) };
    let left = cx.get_fuel()?;
    cx.set_fuel(budget)?;
    let r = f(cx)?;
    cx.set_fuel(left)?;
    Ok(r)
}

/// Runs `f`, observer `w`'s `seen`: on fuel of its own, and with its
/// device calls and power cuts refused (`Host::not_from_seen`).
fn observe(cx: &mut StoreContextMut<'_, Host>, w: usize, f: impl FnOnce(&mut StoreContextMut<'_, Host>) -> Result<()>) -> Result<()> {
    cx.data_mut().observing = Some(w);
    let r = on_own_fuel(cx, f);
    cx.data_mut().observing = None;
    r
}

fn clock_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::CLOCK)?;
    let provider = move |cx: &StoreContextMut<'_, Host>| cx.data().links[me].routes.clock.unwrap_or(Provider::Leaf(0));
    i.func_wrap("monotonic-now", move |mut cx, (): ()| {
        let p = provider(&cx);
        counted(&mut cx, me, p, Iface::Clock, Op::MONOTONIC_NOW, |_| (0, true), |cx| match p {
            Provider::Filter(f) => {
                let func = cx.data().clock_fns(f).monotonic_now;
                call(cx, f, func, ())
            }
            Provider::Leaf(_) => Ok((cx.data_mut().leaf_now(me)?,)),
        })
    })?;
    i.func_wrap("wall-now", move |mut cx, (): ()| {
        let p = provider(&cx);
        counted(&mut cx, me, p, Iface::Clock, Op::WALL_NOW, |_| (0, true), |cx| match p {
            Provider::Filter(f) => {
                let func = cx.data().clock_fns(f).wall_now;
                call(cx, f, func, ())
            }
            Provider::Leaf(_) => {
                let host = cx.data_mut();
                Ok((host.tape.wall_now(&mut host.leaves)?,))
            }
        })
    })?;
    i.func_wrap("wait-until", move |mut cx, (deadline,): (u64,)| {
        let p = provider(&cx);
        counted(&mut cx, me, p, Iface::Clock, Op::WAIT_UNTIL, |_| (0, true), |cx| match p {
            Provider::Filter(f) => {
                let func = cx.data().clock_fns(f).wait_until;
                call(cx, f, func, (deadline,))
            }
            Provider::Leaf(_) => {
                let host = cx.data_mut();
                match host.deadline {
                    // Frames a router passed up wait above it (`net_receive`):
                    // input is pending, so the wait ends at once.
                    _ if host.links.iter().any(|l| !l.stash.is_empty()) => Ok((host.leaf_now(me)?,)),
                    // Waiting past the run's deadline: sleep until it, then stop
                    // the run with the waiting component as the one that hung.
                    Some(end) if deadline >= end => {
                        host.tape.wait_until(&mut host.leaves, end)?;
                        host.blame(Failure::Timeout { who: Who::Component(me) });
                        Err(wasmtime::Error::new(Stop::Timeout))
                    }
                    _ => {
                        host.tape.wait_until(&mut host.leaves, deadline)?;
                        Ok((host.leaf_now(me)?,))
                    }
                }
            }
        })
    })?;
    Ok(())
}

/// Forwards one `sockets` function: to the stack component's export
/// (`Filter`), or through the tape to the host's stack (`Leaf`; without a
/// `[stack]`, `NoSockets`). `$op` is its code in the trace, `$args` the bytes
/// a replay checks it was called with.
macro_rules! sockets_fn {
    ($i:ident, $me:ident, $op:literal, $name:literal, $field:ident, ($($arg:ident: $ty:ty),*), $args:expr, |$leaf:ident| $body:expr) => {
        $i.func_wrap($name, move |mut cx, ($($arg,)*): ($($ty,)*)| {
            let p = cx.data().links[$me].routes.sockets.unwrap_or(Provider::Leaf(0));
            counted(&mut cx, $me, p, Iface::Sockets, Op::socket($op), |(r,): &(Result<_, SocketError>,)| (0, r.is_ok()), |cx| match p {
                Provider::Filter(f) => {
                    let func = cx.data().socket_fns(f).$field;
                    call(cx, f, func, ($($arg,)*))
                }
                Provider::Leaf(_) => {
                    let host = cx.data_mut();
                    let args: &[&[u8]] = &$args;
                    Ok((host.tape.sockets(&mut host.leaves, $op, args, |$leaf| $body)?,))
                }
            })
        })?;
    };
}

fn ep(e: Endpoint) -> [u8; 6] {
    let (a, b, c, d) = e.addr;
    let p = e.port.to_le_bytes();
    [a, b, c, d, p[0], p[1]]
}

fn sockets_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::SOCKETS)?;
    sockets_fn!(i, me, 0, "tcp-listen", tcp_listen, (port: u16), [&port.to_le_bytes()], |s| s.tcp_listen(port));
    sockets_fn!(i, me, 1, "tcp-accept", tcp_accept, (ls: u32), [&ls.to_le_bytes()], |s| s.tcp_accept(ls));
    sockets_fn!(i, me, 2, "tcp-connect", tcp_connect, (to: Endpoint), [&ep(to)], |s| s.tcp_connect(to));
    sockets_fn!(i, me, 3, "tcp-send", tcp_send, (so: u32, data: Vec<u8>), [&so.to_le_bytes(), &data], |s| s.tcp_send(so, &data));
    sockets_fn!(i, me, 4, "tcp-recv", tcp_recv, (so: u32, max: u32), [&so.to_le_bytes(), &max.to_le_bytes()], |s| s.tcp_recv(so, max));
    sockets_fn!(i, me, 5, "tcp-shutdown", tcp_shutdown, (so: u32), [&so.to_le_bytes()], |s| s.tcp_shutdown(so));
    sockets_fn!(i, me, 6, "udp-bind", udp_bind, (port: u16), [&port.to_le_bytes()], |s| s.udp_bind(port));
    sockets_fn!(i, me, 7, "udp-send-to", udp_send_to, (so: u32, data: Vec<u8>, to: Endpoint), [&so.to_le_bytes(), &data, &ep(to)], |s| s.udp_send_to(so, &data, to));
    sockets_fn!(i, me, 8, "udp-recv-from", udp_recv_from, (so: u32, max: u32), [&so.to_le_bytes(), &max.to_le_bytes()], |s| s.udp_recv_from(so, max));
    i.func_wrap("close", move |mut cx, (so,): (u32,)| match cx.data().links[me].routes.sockets {
        Some(Provider::Filter(f)) => {
            let func = cx.data().socket_fns(f).close;
            call(&mut cx, f, func, (so,))
        }
        _ => {
            let host = cx.data_mut();
            host.tape.sockets(&mut host.leaves, 9, &[&so.to_le_bytes()], |s| s.close(so))
        }
    })?;
    // The host stack has no timers of its own to run: its readiness wakes
    // the leaf clock's wait instead. (No leaf is asked: nothing to record.)
    i.func_wrap("next-deadline", move |mut cx, (): ()| match cx.data().links[me].routes.sockets {
        Some(Provider::Filter(f)) => {
            let func = cx.data().socket_fns(f).next_deadline;
            call(&mut cx, f, func, ())
        }
        _ => Ok((None::<u64>,)),
    })?;
    Ok(())
}

fn leaf_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    l.instance(names::TYPES)?;
    l.instance(names::EXIT)?.func_wrap("exit", |_cx, (code,): (u8,)| -> Result<()> {
        Err(wasmtime::Error::new(Exited(code)))
    })?;
    l.instance(names::POWER)?.func_wrap("cut", move |mut cx, (): ()| -> Result<()> {
        cx.data_mut().not_from_seen(me, "power.cut")?;
        Err(wasmtime::Error::new(PowerCut))
    })?;
    l.instance(names::CONSOLE)?.func_wrap("write", move |mut cx, (bytes,): (Vec<u8>,)| {
        let n = bytes.len() as u64;
        counted(&mut cx, me, Provider::Leaf(0), Iface::Console, Op::WRITE, |_| (n, true), |cx| {
            let host = cx.data_mut();
            host.tape.console(&mut host.leaves, &bytes)
        })
    })?;
    l.instance(names::RANDOM)?.func_wrap("fill", move |mut cx, (len,): (u32,)| {
        if len > MAX_RANDOM {
            return Err(wasmtime::Error::msg(format!(
                "random.fill({len}) breaks the contract: at most {MAX_RANDOM} bytes per call"
            )));
        }
        counted(&mut cx, me, Provider::Leaf(0), Iface::Random, Op::FILL, |_| (u64::from(len), true), |cx| {
            let mut buf = alloc::vec![0; len as usize];
            let host = cx.data_mut();
            host.tape.random(&mut host.leaves, &mut buf)?;
            Ok((buf,))
        })
    })?;
    l.instance(names::LOG)?.func_wrap(
        "append",
        move |mut cx, (topic, message, fields): (String, String, Vec<(String, String)>)| {
            let host = cx.data_mut();
            if let Some(faults) = host.faults.as_mut() {
                if let Some((_, token)) = fields.iter().find(|(k, _)| k == "schedule") {
                    faults.push((me, token.clone()));
                }
            }
            if let Some(st) = host.stats.as_mut()
                && fields.iter().any(|(k, _)| k == "fault")
            {
                *st.faults.entry(me).or_default() += 1;
            }
            let n = (topic.len() + message.len() + fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()) as u64;
            counted(&mut cx, me, Provider::Leaf(0), Iface::Log, Op::APPEND, |_| (n, true), |cx| {
                let host = cx.data_mut();
                host.tape.log(&mut host.leaves, &topic, &message, &fields)
            })
        },
    )?;
    Ok(())
}
