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

#[derive(Default)]
struct Link {
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
                Iface::Block => role(|l| &l.blocks),
                Iface::Net => role(|l| &l.nets),
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
            Provider::Filter(f) => self.links[f].device,
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
            .watchers
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

/// Stands in for a net leaf while `send` has it out of the store.
struct Detached;

impl NetDevice for Detached {
    fn info(&self) -> NetInfo {
        NetInfo { mac: (0, 0, 0, 0, 0, 0), mtu: 0, checksum_offload: false }
    }
    fn send(&mut self, _: &[&[u8]]) -> Result<u32, ErrorCode> {
        Err(ErrorCode::Io)
    }
    fn receive(&mut self, _: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        Err(ErrorCode::Io)
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

/// When a filter observing `me`'s calls to `p` asked for `op`: the leaf
/// clock's reading as the call starts (`Host::watch_clock`). One look at an
/// empty list otherwise.
#[inline]
fn watch_start(cx: &mut StoreContextMut<'_, Host>, me: usize, p: Provider, op: BlockOp) -> Result<Option<u64>> {
    let host = cx.data_mut();
    if host.links[me].watchers.is_empty() || !host.block_watched(me, p, op) {
        return Ok(None);
    }
    Ok(Some(host.watch_clock()?))
}

/// Hands `call`, which `me` made to `p` and which started at `t0`, to each
/// filter observing that hop that asked for its operation (`seen`),
/// innermost first.
fn block_notify(cx: &mut StoreContextMut<'_, Host>, me: usize, p: Provider, t0: u64, mut call: BlockCall) -> Result<()> {
    let t1 = cx.data_mut().watch_clock()?;
    call.duration_ns = t1.saturating_sub(t0);
    for i in 0..cx.data().links[me].watchers.len() {
        let (q, w) = cx.data().links[me].watchers[i];
        let Some((interest, seen)) = cx.data().filters[w].block_watch else { continue };
        if q != p || !interest.wants(call.op) {
            continue;
        }
        let t = cx.data().stat_start();
        observe(cx, w, |cx| self::call(cx, w, seen, (call.clone(),)))?;
        cx.data_mut().stat_end(t, me, Provider::Filter(w), Iface::Block, Op::SEEN, 0, true);
    }
    Ok(())
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

/// A record of one block operation for its observers; `dev` is the
/// provider's handle.
fn block_call(op: BlockOp, dev: u32, outcome: Result<(), ErrorCode>) -> BlockCall {
    BlockCall { op, dev, sector: 0, count: 0, bytes: 0, outcome, geometry: None, duration_ns: 0 }
}

fn block_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::BLOCK)?;
    i.func_wrap("open", move |mut cx, (name,): (String,)| {
        cx.data_mut().not_from_seen(me, "block.open")?;
        let host = cx.data();
        let t0 = host.stat_start();
        let Some(&(_, p)) = host.links[me].blocks.iter().find(|(r, _)| *r == name) else {
            return Ok((Err(ErrorCode::NotFound),));
        };
        let w0 = watch_start(&mut cx, me, p, BlockOp::Open)?;
        let r = match p {
            Provider::Leaf(_) => Ok(0),
            Provider::Filter(f) => {
                let func = cx.data().block_fns(f).open;
                let r = call(&mut cx, f, func, (name,))?.0;
                if let Ok(h) = r {
                    cx.data_mut().check_routed_open(f, HandleKind::Block, h)?;
                }
                r
            }
        };
        if let Some(w0) = w0 {
            block_notify(&mut cx, me, p, w0, block_call(BlockOp::Open, *r.as_ref().unwrap_or(&0), r.map(|_| ())))?;
        }
        let host = cx.data_mut();
        host.stat_end(t0, me, p, Iface::Block, Op::OPEN, 0, r.is_ok());
        Ok((r.map(|h| host.open_handle(me, HandleKind::Block, p, h)),))
    })?;
    i.func_wrap("info", move |mut cx, (mine,): (u32,)| {
        cx.data_mut().not_from_seen(me, "block.info")?;
        let Some(o) = cx.data().opened(me, HandleKind::Block, mine) else { return Ok((Err(ErrorCode::NotFound),)) };
        let r = block_info(&mut cx, me, o)?;
        if let (Ok(g), Provider::Filter(_)) = (&r, o.provider) {
            cx.data_mut().set_unit(me, mine, g.sector_size);
        }
        Ok((r,))
    })?;
    i.func_wrap("read", move |mut cx, (h, start, count): (u32, u64, u32)| {
        cx.data_mut().not_from_seen(me, "block.read")?;
        let Some(o) = cx.data().opened(me, HandleKind::Block, h) else { return Ok((Err(ErrorCode::NotFound),)) };
        Ok((block_read(&mut cx, me, o, start, count)?,))
    })?;
    i.func_wrap("write", move |mut cx, (h, start, data): (u32, u64, Vec<u8>)| {
        cx.data_mut().not_from_seen(me, "block.write")?;
        let Some(o) = cx.data().opened(me, HandleKind::Block, h) else { return Ok((Err(ErrorCode::NotFound),)) };
        Ok((block_write(&mut cx, me, o, start, data)?,))
    })?;
    i.func_wrap("flush", move |mut cx, (h,): (u32,)| {
        cx.data_mut().not_from_seen(me, "block.flush")?;
        let Some(o) = cx.data().opened(me, HandleKind::Block, h) else { return Ok((Err(ErrorCode::NotFound),)) };
        Ok((block_flush(&mut cx, me, o)?,))
    })?;
    Ok(())
}

/// `me`'s `info` on its handle `o`. Each block operation below is one hop:
/// to a leaf, to a filter's export, or — an operation the filter does not
/// handle (`block-route`) — past the filter, as the filter's own call on
/// the hop below.
fn block_info(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened) -> Result<Result<Geometry, ErrorCode>> {
    let (p, h) = (o.provider, o.handle);
    let t0 = cx.data().stat_start();
    let w0 = watch_start(cx, me, p, BlockOp::Info)?;
    let mut routed = false;
    let r = match p {
        Provider::Leaf(d) => Ok(cx.data().geometry[d]),
        Provider::Filter(f) => match cx.data().routed(f, h, BlockOp::Info) {
            Some(below) => {
                routed = true;
                block_info(cx, f, below)?
            }
            None => {
                let func = cx.data().block_fns(f).info;
                let r = call(cx, f, func, (h,))?.0;
                if let Ok(g) = &r
                    && (g.sector_size < 512 || !g.sector_size.is_power_of_two())
                {
                    let m = format!("`info` reported {}-byte sectors (a power of two, at least 512)", g.sector_size);
                    return Err(cx.data_mut().breach(f, "block", m));
                }
                r
            }
        },
    };
    if let Some(w0) = w0 {
        let call = BlockCall { geometry: r.ok(), ..block_call(BlockOp::Info, h, r.map(|_| ())) };
        block_notify(cx, me, p, w0, call)?;
    }
    // A routed call is counted on the hop below only: it never reached `f`.
    if !routed {
        cx.data_mut().stat_end(t0, me, p, Iface::Block, Op::INFO, 0, r.is_ok());
    }
    Ok(r)
}

/// `me`'s `read` on its handle `o` (see [`block_info`]).
fn block_read(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened, start: u64, count: u32) -> Result<Result<Vec<u8>, ErrorCode>> {
    let Opened { provider: p, handle: h, unit, .. } = o;
    let t0 = cx.data().stat_start();
    let w0 = watch_start(cx, me, p, BlockOp::Read)?;
    let mut routed = false;
    let r = match p {
        Provider::Leaf(d) => {
            let host = cx.data_mut();
            match check_range(&host.geometry[d], start, count.into()) {
                Ok(()) => host.tape.block_read(&mut host.leaves, d, start, count)?,
                Err(e) => Err(e),
            }
        }
        Provider::Filter(f) => match cx.data().routed(f, h, BlockOp::Read) {
            Some(below) => {
                routed = true;
                block_read(cx, f, below, start, count)?
            }
            None => {
                let func = cx.data().block_fns(f).read;
                let r = call(cx, f, func, (h, start, count))?.0;
                // Reads are never short (nor long): one multiplication per hop.
                if let Ok(data) = &r {
                    let want = u64::from(count) * u64::from(unit);
                    if data.len() as u64 != want {
                        let m = format!(
                            "`read` of {count} sector{} at sector {start} returned {} bytes, not {want} ({unit}-byte sectors)",
                            if count == 1 { "" } else { "s" },
                            data.len()
                        );
                        return Err(cx.data_mut().breach(f, "block", m));
                    }
                }
                r
            }
        },
    };
    let n = r.as_ref().map_or(0, |d| d.len() as u64);
    if let Some(w0) = w0 {
        let result = r.as_ref().map(|_| ()).map_err(|e| *e);
        let call = BlockCall { sector: start, count, bytes: n, ..block_call(BlockOp::Read, h, result) };
        block_notify(cx, me, p, w0, call)?;
    }
    // A routed call is counted on the hop below only: it never reached `f`.
    if !routed {
        cx.data_mut().stat_end(t0, me, p, Iface::Block, Op::READ, n, r.is_ok());
    }
    Ok(r)
}

/// `me`'s `write` on its handle `o` (see [`block_info`]).
fn block_write(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened, start: u64, data: Vec<u8>) -> Result<Result<(), ErrorCode>> {
    let Opened { provider: p, handle: h, unit, .. } = o;
    let t0 = cx.data().stat_start();
    let n = data.len() as u64;
    let w0 = watch_start(cx, me, p, BlockOp::Write)?;
    let mut routed = false;
    let r = match p {
        Provider::Leaf(d) => {
            let host = cx.data_mut();
            let g = host.geometry[d];
            let size = u64::from(g.sector_size);
            if g.read_only {
                Err(ErrorCode::ReadOnly)
            } else if n % size != 0 {
                Err(ErrorCode::InvalidArgument)
            } else {
                match check_range(&g, start, n / size) {
                    Ok(()) => host.tape.block_write(&mut host.leaves, d, start, &data)?,
                    Err(e) => Err(e),
                }
            }
        }
        Provider::Filter(f) => match cx.data().routed(f, h, BlockOp::Write) {
            Some(below) => {
                routed = true;
                block_write(cx, f, below, start, data)?
            }
            None => {
                let func = cx.data().block_fns(f).write;
                call(cx, f, func, (h, start, data))?.0
            }
        },
    };
    if let Some(w0) = w0 {
        let count = u32::try_from(n / u64::from(unit.max(1))).unwrap_or(u32::MAX);
        let call = BlockCall { sector: start, count, bytes: n, ..block_call(BlockOp::Write, h, r) };
        block_notify(cx, me, p, w0, call)?;
    }
    // A routed call is counted on the hop below only: it never reached `f`.
    if !routed {
        cx.data_mut().stat_end(t0, me, p, Iface::Block, Op::WRITE, n, r.is_ok());
    }
    Ok(r)
}

/// `me`'s `flush` on its handle `o` (see [`block_info`]).
fn block_flush(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened) -> Result<Result<(), ErrorCode>> {
    let (p, h) = (o.provider, o.handle);
    let t0 = cx.data().stat_start();
    let w0 = watch_start(cx, me, p, BlockOp::Flush)?;
    let mut routed = false;
    let r = match p {
        Provider::Leaf(d) => {
            let host = cx.data_mut();
            host.tape.block_flush(&mut host.leaves, d)?
        }
        Provider::Filter(f) => match cx.data().routed(f, h, BlockOp::Flush) {
            Some(below) => {
                routed = true;
                block_flush(cx, f, below)?
            }
            None => {
                let func = cx.data().block_fns(f).flush;
                call(cx, f, func, (h,))?.0
            }
        },
    };
    if let Some(w0) = w0 {
        block_notify(cx, me, p, w0, block_call(BlockOp::Flush, h, r))?;
    }
    // A routed call is counted on the hop below only: it never reached `f`.
    if !routed {
        cx.data_mut().stat_end(t0, me, p, Iface::Block, Op::FLUSH, 0, r.is_ok());
    }
    Ok(r)
}

fn clock_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::CLOCK)?;
    let provider = move |cx: &StoreContextMut<'_, Host>| cx.data().links[me].clock.unwrap_or(Provider::Leaf(0));
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

fn net_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::NET)?;
    i.func_wrap("open", move |mut cx, (name,): (String,)| {
        cx.data_mut().not_from_seen(me, "net.open")?;
        let t0 = cx.data().stat_start();
        let Some(&(_, p)) = cx.data().links[me].nets.iter().find(|(r, _)| *r == name) else {
            return Ok((Err(ErrorCode::NotFound),));
        };
        let r = match p {
            Provider::Leaf(_) => Ok(0),
            Provider::Filter(f) => {
                let func = cx.data().net_fns(f).open;
                let r = call(&mut cx, f, func, (name,))?.0;
                if let Ok(h) = r {
                    cx.data_mut().check_routed_open(f, HandleKind::Net, h)?;
                }
                r
            }
        };
        let host = cx.data_mut();
        host.stat_end(t0, me, p, Iface::Net, Op::OPEN, 0, r.is_ok());
        Ok((r.map(|h| host.open_handle(me, HandleKind::Net, p, h)),))
    })?;
    i.func_wrap("info", move |mut cx, (mine,): (u32,)| {
        cx.data_mut().not_from_seen(me, "net.info")?;
        let t0 = cx.data().stat_start();
        let Some((p, h)) = cx.data().handle(me, HandleKind::Net, mine) else { return Ok((Err(ErrorCode::NotFound),)) };
        let r = match p {
            Provider::Leaf(d) => Ok(cx.data().net_info[d]),
            Provider::Filter(f) => {
                let func = cx.data().net_fns(f).info;
                let r = call(&mut cx, f, func, (h,))?.0;
                if let Ok(i) = &r {
                    cx.data_mut().set_unit(me, mine, i.mtu.saturating_add(14));
                }
                r
            }
        };
        cx.data_mut().stat_end(t0, me, p, Iface::Net, Op::INFO, 0, r.is_ok());
        Ok((r,))
    })?;
    // Frames are read where the sender has them: a leaf writes them straight
    // from its memory, and a filter gets a copy.
    i.func_wrap("send", move |mut cx, (h, frames): (u32, WasmList<WasmList<u8>>)| {
        cx.data_mut().not_from_seen(me, "net.send")?;
        let Some(o) = cx.data().opened(me, HandleKind::Net, h) else { return Ok((Err(ErrorCode::NotFound),)) };
        // Sized up front: `collect` from the lists' iterator (no size hint)
        // grew it by doubling, 1 + log2 n allocations a batch.
        let mut lists = Vec::with_capacity(frames.len());
        for l in frames.iter(&mut cx)? {
            lists.push(l?);
        }
        Ok((net_send(&mut cx, me, o, &lists)?,))
    })?;
    i.func_wrap("receive", move |mut cx, (h, max): (u32, u32)| {
        cx.data_mut().not_from_seen(me, "net.receive")?;
        let Some(o) = cx.data().opened(me, HandleKind::Net, h) else { return Ok((Err(ErrorCode::NotFound),)) };
        let mut r = net_receive(&mut cx, me, o, max)?;
        // A router's own receive: what it does not handle waits, past it, for
        // the consumer above (`net_receive` on the hop above).
        if let (Ok(frames), Some(Some(wants))) = (&mut r, cx.data().filters.get(me).map(|x| &x.net_route)) {
            let (mine, other): (Vec<_>, Vec<_>) = core::mem::take(frames).into_iter().partition(|f| wants.wants(Direction::Inbound, f));
            *frames = mine;
            let stash = &mut cx.data_mut().links[me].stash;
            let room = STASH.saturating_sub(stash.len());
            stash.extend(other.into_iter().take(room));
        }
        Ok((r,))
    })?;
    l.instance(names::CAPTURE)?.func_wrap(
        "frame",
        move |mut cx, (at, direction, data): (u64, Direction, Vec<u8>)| {
            let host = cx.data_mut();
            if let Some(c) = host.links[me].capture {
                host.tape.capture(&mut host.leaves, c, at, direction, &data)?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// The most frames a router's stash holds (`Link::stash`); more are
/// dropped, as a full queue drops them.
const STASH: usize = 4 * MAX_FRAMES as usize;

/// `me` sends `lists` (in the sender's memory) on its handle `o`: one hop,
/// to a leaf or a filter's export. Past a filter that handles only some
/// frames (`net-route`), the batch goes in runs of handled and other
/// frames, in order, the others as the filter's own `send` on the hop below;
/// it stops at the first run not wholly accepted.
fn net_send(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened, lists: &[WasmList<u8>]) -> Result<Result<u32, ErrorCode>> {
    let (p, h) = (o.provider, o.handle);
    let t0 = cx.data().stat_start();
    let n: u64 = if t0.is_some() { lists.iter().map(|l| l.len() as u64).sum() } else { 0 };
    // Whether the call reached `p` (a batch wholly routed past a filter did not).
    let mut reached = true;
    let r = match p {
        Provider::Leaf(d) => {
            // The device and the tape leave the store while they read the
            // sender's memory.
            let host = cx.data_mut();
            let mut dev = core::mem::replace(&mut host.leaves.nets[d], Box::new(Detached));
            let mut tape = core::mem::take(&mut host.tape);
            let max = 14 + cx.data().net_info[d].mtu as usize;
            let frames: Vec<&[u8]> = lists.iter().map(|l| l.as_le_slice(&*cx)).collect();
            let r = if frames.iter().any(|f| f.len() < 14 || f.len() > max) {
                Ok(Err(ErrorCode::InvalidArgument))
            } else {
                tape.net_send(d, &frames, || dev.send(&frames))
            };
            let host = cx.data_mut();
            host.leaves.nets[d] = dev;
            host.tape = tape;
            r?
        }
        Provider::Filter(f) => {
            let routes = cx.data().filters[f].net_route.clone();
            let below = cx.data().opened(f, HandleKind::Net, h);
            match (routes, below) {
                (Some(wants), Some(below)) => {
                    reached = false;
                    let mut sent = 0u32;
                    let mut rest = lists;
                    let mut r = Ok(0);
                    while let Some(first) = rest.first() {
                        let handled = wants.wants(Direction::Outbound, first.as_le_slice(&*cx));
                        let len = rest.iter().position(|l| wants.wants(Direction::Outbound, l.as_le_slice(&*cx)) != handled).unwrap_or(rest.len());
                        let (run, next) = rest.split_at(len);
                        reached |= handled;
                        r = if handled { filter_send(cx, f, h, run)? } else { net_send(cx, f, below, run)? };
                        match r {
                            Ok(k) => sent += k,
                            Err(_) if sent > 0 => break,
                            Err(_) => {}
                        }
                        if r != Ok(len as u32) {
                            break;
                        }
                        rest = next;
                    }
                    if sent > 0 { Ok(sent) } else { r }
                }
                _ => filter_send(cx, f, h, lists)?,
            }
        }
    };
    if let Ok(sent) = r
        && !cx.data().links[me].watchers.is_empty()
    {
        let frames = lists.iter().take(sent as usize).map(|l| l.as_le_slice(&*cx));
        let watched = watched(cx.data(), me, p, Direction::Outbound, frames);
        notify(cx, me, Direction::Outbound, watched)?;
    }
    if reached {
        cx.data_mut().stat_end(t0, me, p, Iface::Net, Op::SEND, n, r.is_ok());
    }
    Ok(r)
}

/// Filter `f`'s `send` export, given copies of `lists`.
fn filter_send(cx: &mut StoreContextMut<'_, Host>, f: usize, h: u32, lists: &[WasmList<u8>]) -> Result<Result<u32, ErrorCode>> {
    let frames: Vec<Vec<u8>> = lists.iter().map(|l| l.as_le_slice(&*cx).to_vec()).collect();
    let given = frames.len();
    let func = cx.data().net_fns(f).send;
    let r = call(cx, f, func, (h, frames))?.0;
    if let Ok(n) = r
        && n as usize > given
    {
        let m = format!("`send` of {given} frame{} claimed {n} were accepted", if given == 1 { "" } else { "s" });
        return Err(cx.data_mut().breach(f, "net", m));
    }
    Ok(r)
}

/// `me` takes up to `max` frames on its handle `o`: one hop, to a leaf or a
/// filter's export. Past a filter that handles only some frames
/// (`net-route`), the frames it did not handle (its stash) come too: those
/// waiting from before first, then the filter's own, then those that
/// arrived while it ran, up to `max`.
fn net_receive(cx: &mut StoreContextMut<'_, Host>, me: usize, o: Opened, max: u32) -> Result<Result<Vec<Vec<u8>>, ErrorCode>> {
    let Opened { provider: p, handle: h, unit, .. } = o;
    let t0 = cx.data().stat_start();
    // Whether the call reached `p` (frames a router passed up, alone, did not).
    let mut reached = true;
    let r = match p {
        Provider::Leaf(d) => {
            let host = cx.data_mut();
            host.tape.net_receive(&mut host.leaves, d, max.min(MAX_FRAMES))?
        }
        Provider::Filter(f) => {
            let routes = cx.data().filters[f].net_route.is_some();
            let take = |cx: &mut StoreContextMut<'_, Host>, out: &mut Vec<Vec<u8>>| {
                let stash = &mut cx.data_mut().links[f].stash;
                let k = (max as usize).saturating_sub(out.len()).min(stash.len());
                out.extend(stash.drain(..k));
            };
            let mut waiting = Vec::new();
            if routes {
                take(cx, &mut waiting);
            }
            let room = max - waiting.len() as u32;
            let mut r = if room == 0 && routes {
                reached = false;
                Ok(Vec::new())
            } else {
                let func = cx.data().net_fns(f).receive;
                let r = call(cx, f, func, (h, room))?.0;
                if let Ok(frames) = &r {
                    let m = if frames.len() as u64 > u64::from(room) {
                        Some(format!("`receive` of at most {room} frames returned {}", frames.len()))
                    } else {
                        frames.iter().find(|fr| fr.len() as u64 > u64::from(unit)).map(|fr| {
                            format!("`receive` returned a {}-byte frame; the device's largest is {unit} bytes (14 + mtu)", fr.len())
                        })
                    };
                    if let Some(m) = m {
                        return Err(cx.data_mut().breach(f, "net", m));
                    }
                }
                r
            };
            if routes {
                match &mut r {
                    Ok(frames) => {
                        waiting.append(frames);
                        take(cx, &mut waiting);
                        *frames = waiting;
                    }
                    // The filter failed: what waited is still delivered.
                    Err(_) if !waiting.is_empty() => r = Ok(waiting),
                    Err(_) => {}
                }
            }
            r
        }
    };
    if let Ok(frames) = &r
        && !frames.is_empty()
        && !cx.data().links[me].watchers.is_empty()
    {
        let watched = watched(cx.data(), me, p, Direction::Inbound, frames.iter().map(Vec::as_slice));
        notify(cx, me, Direction::Inbound, watched)?;
    }
    let n = r.as_ref().map_or(0, |fs| fs.iter().map(|f| f.len() as u64).sum());
    if reached {
        cx.data_mut().stat_end(t0, me, p, Iface::Net, Op::RECEIVE, n, r.is_ok());
    }
    Ok(r)
}

/// Copies of `frames` (passed between `me` and its provider `p`) for each
/// filter that observes that hop and asked for some of them (`crate::watch`).
fn watched<'a>(
    host: &Host,
    me: usize,
    p: Provider,
    direction: Direction,
    frames: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<(usize, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for &(_, w) in host.links[me].watchers.iter().filter(|(q, _)| *q == p) {
        if let Some((interest, _)) = &host.filters[w].watch {
            let picked = interest.pick(direction, frames.clone());
            if !picked.is_empty() {
                out.push((w, picked));
            }
        }
    }
    out
}

/// Hands each observer of `me`'s calls its frames (`seen`), innermost first.
fn notify(cx: &mut StoreContextMut<'_, Host>, me: usize, direction: Direction, watched: Vec<(usize, Vec<Vec<u8>>)>) -> Result<()> {
    for (w, frames) in watched {
        let Some((_, seen)) = cx.data().filters[w].watch else { continue };
        let t0 = cx.data().stat_start();
        let n = if t0.is_some() { frames.iter().map(|f| f.len() as u64).sum() } else { 0 };
        observe(cx, w, |cx| call(cx, w, seen, (direction, frames)))?;
        cx.data_mut().stat_end(t0, me, Provider::Filter(w), Iface::Net, Op::SEEN, n, true);
    }
    Ok(())
}

/// Forwards one `sockets` function: to the stack component's export
/// (`Filter`), or through the tape to the host's stack (`Leaf`; without a
/// `[stack]`, `NoSockets`). `$op` is its code in the trace, `$args` the bytes
/// a replay checks it was called with.
macro_rules! sockets_fn {
    ($i:ident, $me:ident, $op:literal, $name:literal, $field:ident, ($($arg:ident: $ty:ty),*), $args:expr, |$leaf:ident| $body:expr) => {
        $i.func_wrap($name, move |mut cx, ($($arg,)*): ($($ty,)*)| {
            let p = cx.data().links[$me].sockets.unwrap_or(Provider::Leaf(0));
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
    i.func_wrap("close", move |mut cx, (so,): (u32,)| match cx.data().links[me].sockets {
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
    i.func_wrap("next-deadline", move |mut cx, (): ()| match cx.data().links[me].sockets {
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

/// A unikernel ready to instantiate: every component type-checked against
/// the linker that will serve it. Cheap to instantiate many times.
pub struct Unikernel {
    wiring: Wiring,
    /// Filters in instantiation order, then the app.
    pres: Vec<InstancePre<Host>>,
    /// For each instance: (kind of device it filters, its routing).
    plan: Vec<Slot>,
    /// For each instance: its export indices.
    indices: Vec<Indices>,
    /// An instantiation has type-checked every export `instantiate` uses.
    checked: AtomicBool,
}

#[derive(Clone, Default)]
struct Slot {
    name: String,
    kind: Option<FilterKind>,
    /// The role passed to `configure` (the device the filter sits on).
    role: String,
    config: Vec<(String, String)>,
    origin: String,
    blocks: Vec<(String, Provider)>,
    nets: Vec<(String, Provider)>,
    clock: Option<Provider>,
    sockets: Option<Provider>,
    capture: Option<usize>,
    /// Observers of this consumer's calls (see `Link::watchers`).
    watchers: Vec<(Provider, usize)>,
    /// Block and net filters: their chain's leaf.
    device: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FilterKind {
    Block,
    Clock,
    Net,
    Stack,
}

impl FilterKind {
    /// The export by which a filter of this kind says it only observes
    /// (`crate::watch`), where the kind has one.
    fn watch_export(self) -> Option<&'static str> {
        match self {
            FilterKind::Net => Some(names::NET_WATCH),
            FilterKind::Block => Some(names::BLOCK_WATCH),
            FilterKind::Clock | FilterKind::Stack => None,
        }
    }

    /// The export by which a filter of this kind in the path says what it
    /// handles (the rest is routed past it), where the kind has one.
    fn route_export(self) -> Option<&'static str> {
        match self {
            FilterKind::Net => Some(names::NET_ROUTE),
            FilterKind::Block => Some(names::BLOCK_ROUTE),
            FilterKind::Clock | FilterKind::Stack => None,
        }
    }
}

/// A filter whose `configure` rejected its manifest config.
#[derive(Debug)]
pub struct ConfigError {
    pub filter: String,
    pub origin: String,
    pub message: String,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: filter `{}` rejected its config: {}", self.origin, self.filter, self.message)
    }
}

impl core::error::Error for ConfigError {}

impl Unikernel {
    /// `app` and `filters` are compiled components; `filters` in link order:
    /// each block device's chain (`wiring.blocks` order), each net device's
    /// chain, the clock chain, then the stack — every chain innermost first.
    pub fn new(engine: &Engine, wiring: Wiring, app: &Component, filters: &[Component]) -> Result<Self> {
        let mut plan: Vec<Slot> = Vec::new();
        // Leaf routing for filters' side imports (clock, log): never through a
        // chain, so chains cannot form cycles and traces time real time.
        let leaf_clock = Some(Provider::Leaf(0));
        // A net filter that exports `net-watch`, or a block filter that
        // exports `block-watch`, only observes: it is instantiated and
        // configured, but the next consumer up is linked to the provider
        // below it and notifies it (`crate::watch`).
        let components = filters;
        let chain = |plan: &mut Vec<Slot>, kind: FilterKind, role: &str, leaf: usize, filters: &[Filter], captures: &mut usize| {
            let mut below = Provider::Leaf(leaf);
            let mut watchers = Vec::new();
            for f in filters {
                let observer =
                    kind.watch_export().is_some_and(|w| components.get(plan.len()).is_some_and(|c| c.get_export_index(None, w).is_some()));
                let mut slot = Slot {
                    name: format!("{} (filter of device `{role}`)", f.name),
                    kind: Some(kind),
                    role: role.into(),
                    config: f.config.clone(),
                    origin: f.origin.clone(),
                    clock: leaf_clock,
                    device: leaf,
                    watchers: if observer { Vec::new() } else { core::mem::take(&mut watchers) },
                    ..Slot::default()
                };
                match kind {
                    FilterKind::Block => slot.blocks = alloc::vec![(role.into(), below)],
                    FilterKind::Net => {
                        slot.nets = alloc::vec![(role.into(), below)];
                        slot.capture = Some(*captures);
                        *captures += 1;
                    }
                    _ => slot.clock = Some(below),
                }
                plan.push(slot);
                if observer {
                    watchers.push((below, plan.len() - 1));
                } else {
                    below = Provider::Filter(plan.len() - 1);
                }
            }
            ((role.to_string(), below), watchers)
        };
        let mut captures = 0;
        // The app observes through the outermost observers of every block device.
        let mut app_watchers = Vec::new();
        let app_blocks: Vec<_> = wiring
            .blocks
            .iter()
            .enumerate()
            .map(|(d, dev)| {
                let (link, watchers) = chain(&mut plan, FilterKind::Block, &dev.role, d, &dev.filters, &mut captures);
                app_watchers.extend(watchers);
                link
            })
            .collect();
        let nets: Vec<_> = wiring
            .nets
            .iter()
            .enumerate()
            .map(|(d, dev)| chain(&mut plan, FilterKind::Net, &dev.role, d, &dev.filters, &mut captures))
            .collect();
        let ((_, clock), _) = chain(&mut plan, FilterKind::Clock, "clock", 0, &wiring.clock_filters, &mut captures);
        let sockets = match &wiring.stack {
            Some(stack) => {
                let Some((net, watchers)) = nets.get(stack.net) else {
                    wasmtime::bail!("the stack drives net device #{}, but there are {}", stack.net, nets.len());
                };
                plan.push(Slot {
                    name: format!("{} (stack on device `{}`)", stack.filter.name, net.0),
                    kind: Some(FilterKind::Stack),
                    role: net.0.clone(),
                    config: stack.filter.config.clone(),
                    origin: stack.filter.origin.clone(),
                    nets: alloc::vec![net.clone()],
                    clock: leaf_clock,
                    watchers: watchers.clone(),
                    ..Slot::default()
                });
                Some(Provider::Filter(plan.len() - 1))
            }
            None => Some(Provider::Leaf(0)),
        };
        plan.push(Slot {
            name: format!("{} (app)", wiring.app),
            blocks: app_blocks,
            clock: Some(clock),
            sockets,
            watchers: app_watchers,
            ..Slot::default()
        });
        if filters.len() + 1 != plan.len() {
            wasmtime::bail!("{} filter components given for {} filters", filters.len(), plan.len() - 1);
        }
        let mut pres = Vec::with_capacity(plan.len());
        let mut indices = Vec::with_capacity(plan.len());
        for (me, component) in filters.iter().chain([app]).enumerate() {
            let x = Indices::new(component, plan[me].kind, engine, &wiring.parts)
                .map_err(|e| e.context(format!("cannot link {}", plan[me].name)))?;
            indices.push(x);
            let mut linker = Linker::new(engine);
            leaf_linker(&mut linker, me)?;
            block_linker(&mut linker, me)?;
            clock_linker(&mut linker, me)?;
            net_linker(&mut linker, me)?;
            sockets_linker(&mut linker, me)?;
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| e.context(format!("cannot link {}", plan[me].name)))?;
            pres.push(pre);
        }
        Ok(Unikernel { wiring, pres, plan, indices, checked: AtomicBool::new(false) })
    }

    pub fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// Sets up `store` for a run: limits, deadline, and every instance linked
    /// and configured. Returns the app, ready to `run`.
    pub fn instantiate(&self, store: &mut Store<Host>) -> Result<App> {
        self.instantiate_with(store, None)
    }

    /// [`Unikernel::instantiate`], with each filter's config (link order)
    /// given instead of the wiring's: a simulation's seeds, swarm draws and
    /// fault schedules differ per run of one unikernel.
    pub fn instantiate_with(&self, store: &mut Store<Host>, configs: Option<&[Vec<(String, String)>]>) -> Result<App> {
        store.limiter(|h| h as &mut dyn wasmtime::ResourceLimiter);
        let limits = store.data().limits;
        // Epoch ticks until the run is interrupted. wasmtime adds this to the
        // engine's current epoch, so "never" must leave room for that sum.
        const NEVER: u64 = 1 << 62;
        let ticks = match limits.timeout {
            Some(t) if limits.epoch_tick > 0 => t.div_ceil(limits.epoch_tick).max(1),
            _ => NEVER,
        };
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel)?;
        }
        if let Some(t) = limits.timeout {
            let host = store.data_mut();
            let now = host.tape.monotonic_now(&mut host.leaves)?;
            host.deadline = Some(now.saturating_add(t));
        }
        let host = store.data_mut();
        host.names = self.plan.iter().map(|s| s.name.clone()).collect();
        host.links = self
            .plan
            .iter()
            .map(|s| Link {
                blocks: s.blocks.clone(),
                nets: s.nets.clone(),
                clock: s.clock,
                sockets: s.sockets,
                capture: s.capture,
                watchers: s.watchers.clone(),
                device: s.device,
                handles: Vec::new(),
                stash: VecDeque::new(),
            })
            .collect();
        host.filters.clear();
        let check = if self.checked.load(Ordering::Acquire) { Check::Checked } else { Check::Types };
        let last = self.pres.len() - 1;
        for (me, pre) in self.pres.iter().enumerate() {
            // An observer's instantiation, `configure` and `watching` run on
            // fuel the run gets back (as its `seen` calls do: `on_own_fuel`).
            let observer = self.indices[me].watch.is_some();
            let given_back = match limits.fuel {
                Some(_) if observer => Some(store.get_fuel()?),
                _ => None,
            };
            let instance = pre.instantiate(&mut *store).inspect_err(|e| {
                let f = Failure::from_error(Who::Component(me), e);
                store.data_mut().blame(f);
            })?;
            let x = &self.indices[me];
            if me == last {
                let entry = if x.command {
                    Entry::Command(typed(&instance, &mut *store, &x.entry, check)?)
                } else {
                    Entry::Weft(typed(&instance, &mut *store, &x.entry, check)?)
                };
                let wasi = match &x.wasi {
                    Some(i) => Some(typed(&instance, &mut *store, i, check)?),
                    None => None,
                };
                let shutdowns = x.shutdowns.iter().map(|i| typed(&instance, &mut *store, i, check)).collect::<Result<_>>()?;
                for (part, idx) in self.wiring.parts.iter().zip(&x.parts) {
                    let configure: Configure = typed(&instance, &mut *store, idx, check)?;
                    let mut cx = store.as_context_mut();
                    if let Err(message) = call(&mut cx, me, configure, (part.name.clone(), part.config.clone()))?.0 {
                        let (filter, origin) = (part.name.clone(), part.origin.clone());
                        return Err(wasmtime::Error::new(ConfigError { filter, origin, message }));
                    }
                }
                self.checked.store(true, Ordering::Release);
                let program = self.wiring.app.clone();
                return Ok(App { entry, wasi, shutdowns, program, wasi_config: self.wiring.wasi.clone(), who: me });
            }
            let slot = &self.plan[me];
            let exports = FilterExports {
                block: match slot.kind {
                    Some(FilterKind::Block) => Some(block_fns(&instance, &mut *store, x, check)?),
                    _ => None,
                },
                clock: match slot.kind {
                    Some(FilterKind::Clock) => Some(clock_fns(&instance, &mut *store, x, check)?),
                    _ => None,
                },
                net: match slot.kind {
                    Some(FilterKind::Net) => Some(net_fns(&instance, &mut *store, x, check)?),
                    _ => None,
                },
                sockets: match slot.kind {
                    Some(FilterKind::Stack) => Some(socket_fns(&instance, &mut *store, x, check)?),
                    _ => None,
                },
                watch: None,
                block_watch: None,
                net_route: None,
                block_route: None,
            };
            store.data_mut().filters.push(exports);
            let configure =
                typed::<(String, Vec<(String, String)>), (Result<(), String>,)>(&instance, &mut *store, &x.entry, check)?;
            let role = slot.role.clone();
            let config = configs.and_then(|c| c.get(me)).unwrap_or(&slot.config).clone();
            let mut cx = store.as_context_mut();
            if let Err(message) = call(&mut cx, me, configure, (role, config))?.0 {
                let name = slot.name.split(' ').next().unwrap_or_default().to_string();
                return Err(wasmtime::Error::new(ConfigError { filter: name, origin: slot.origin.clone(), message }));
            }
            match (&x.watch, slot.kind) {
                (Some((interest, seen)), Some(FilterKind::Net)) => {
                    let interest: TypedFunc<(), (Interest,)> = typed(&instance, &mut *store, interest, check)?;
                    let seen = typed(&instance, &mut *store, seen, check)?;
                    let (wants,) = call(&mut store.as_context_mut(), me, interest, ())?;
                    store.data_mut().filters[me].watch = Some((wants, seen));
                }
                (Some((interest, seen)), Some(FilterKind::Block)) => {
                    let interest: TypedFunc<(), (BlockInterest,)> = typed(&instance, &mut *store, interest, check)?;
                    let seen = typed(&instance, &mut *store, seen, check)?;
                    let (wants,) = call(&mut store.as_context_mut(), me, interest, ())?;
                    store.data_mut().filters[me].block_watch = Some((wants, seen));
                }
                _ => {}
            }
            if let Some(handling) = &x.route {
                match slot.kind {
                    Some(FilterKind::Net) => {
                        let handling: TypedFunc<(), (Interest,)> = typed(&instance, &mut *store, handling, check)?;
                        let (wants,) = call(&mut store.as_context_mut(), me, handling, ())?;
                        store.data_mut().filters[me].net_route = Some(wants);
                    }
                    _ => {
                        let handling: TypedFunc<(), (BlockInterest,)> = typed(&instance, &mut *store, handling, check)?;
                        let (wants,) = call(&mut store.as_context_mut(), me, handling, ())?;
                        store.data_mut().filters[me].block_route = Some(wants);
                    }
                }
            }
            if let Some(left) = given_back {
                store.set_fuel(left)?;
            }
        }
        unreachable!("the app is the last instance")
    }
}

/// Finds `iface#func` (or the root function `func`) in a compiled component,
/// once, so instantiation does no name lookups.
fn export_index(c: &Component, iface: Option<&str>, func: &str) -> Result<ComponentExportIndex> {
    let parent = match iface {
        Some(i) => Some(
            c.get_export_index(None, i)
                .ok_or_else(|| wasmtime::format_err!("component does not export `{i}`"))?,
        ),
        None => None,
    };
    c.get_export_index(parent.as_ref(), func)
        .ok_or_else(|| wasmtime::format_err!("component does not export `{}#{func}`", iface.unwrap_or("")))
}

fn typed<P, R>(instance: &Instance, mut store: impl AsContextMut, idx: &ComponentExportIndex, check: Check) -> Result<TypedFunc<P, R>>
where
    P: ComponentNamedList + Lower,
    R: ComponentNamedList + Lift,
{
    let f = instance
        .get_func(&mut store, idx)
        .ok_or_else(|| wasmtime::format_err!("an indexed export is missing from its instance"))?;
    match check {
        Check::Types => f.typed(&mut store).map_err(|e| e.context("a device export has the wrong type")),
        // SAFETY: `Unikernel::instantiate` passes `Checked` only after one
        // instance of the same component, with the same export indices, passed
        // `Check::Types`: every instance of a component has its exports' types.
        Check::Checked => Ok(unsafe { TypedFunc::new_unchecked(f) }),
    }
}

/// Whether `typed` must type-check (the first instantiation of a unikernel)
/// or may trust the check an earlier instantiation made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Types,
    Checked,
}

const BLOCK_FNS: [&str; 5] = ["open", "info", "read", "write", "flush"];
const CLOCK_FNS: [&str; 3] = ["monotonic-now", "wall-now", "wait-until"];
const NET_FNS: [&str; 4] = ["open", "info", "send", "receive"];

/// Export indices of one instance, resolved when the unikernel is built.
#[derive(Clone)]
struct Indices {
    /// The device interface's functions (`BLOCK_FNS` or `CLOCK_FNS` order).
    device: Vec<ComponentExportIndex>,
    /// `filter#configure` for filters, root `run` (or `wasi:cli/run#run`) for the app.
    entry: ComponentExportIndex,
    /// The app only: the composed `wasi` component's `configure`.
    wasi: Option<ComponentExportIndex>,
    /// The app only: `entry` is `wasi:cli/run#run` (no args, result).
    command: bool,
    /// The app only: each `Wiring::parts` entry's configure.
    parts: Vec<ComponentExportIndex>,
    /// The app only: the composed parts' (and `wasi`'s) `shutdown`, where they have one.
    shutdowns: Vec<ComponentExportIndex>,
    /// A filter that only observes: `net-watch` (or `block-watch`)
    /// `#watching` and `#seen`.
    watch: Option<(ComponentExportIndex, ComponentExportIndex)>,
    /// A filter in the path that handles only part of the traffic:
    /// `net-route` (or `block-route`) `#handling`.
    route: Option<ComponentExportIndex>,
}

impl Indices {
    fn new(c: &Component, kind: Option<FilterKind>, engine: &Engine, parts: &[Filter]) -> Result<Indices> {
        let (iface, fns): (&str, &[&str]) = match kind {
            Some(FilterKind::Block) => (names::BLOCK, &BLOCK_FNS),
            Some(FilterKind::Clock) => (names::CLOCK, &CLOCK_FNS),
            Some(FilterKind::Net) => (names::NET, &NET_FNS),
            Some(FilterKind::Stack) => (names::SOCKETS, &names::SOCKET_FNS),
            None => return Indices::app(c, engine, parts),
        };
        let device = fns.iter().map(|f| export_index(c, Some(iface), f)).collect::<Result<_>>()?;
        let watch = match kind.and_then(FilterKind::watch_export) {
            Some(w) if c.get_export_index(None, w).is_some() => Some((export_index(c, Some(w), "watching")?, export_index(c, Some(w), "seen")?)),
            _ => None,
        };
        let route = match kind.and_then(FilterKind::route_export) {
            // An observer is out of the path: nothing to route past it.
            Some(r) if watch.is_none() && c.get_export_index(None, r).is_some() => Some(export_index(c, Some(r), "handling")?),
            _ => None,
        };
        Ok(Indices {
            device,
            entry: export_index(c, Some(names::FILTER), "configure")?,
            wasi: None,
            command: false,
            parts: Vec::new(),
            shutdowns: Vec::new(),
            watch,
            route,
        })
    }

    /// The app's entry: its own `run`, or — a WASI command composed with the
    /// `wasi` component — `wasi:cli/run@0.2.x#run`, plus `wasi`'s configure.
    fn app(c: &Component, engine: &Engine, parts: &[Filter]) -> Result<Indices> {
        let wasi = export_index(c, Some(names::WASI_CONFIG), "configure").ok();
        let shutdowns = core::iter::once("wasi")
            .chain(parts.iter().map(|p| p.name.as_str()))
            .filter_map(|n| export_index(c, Some(&names::shutdown_export(n)), "shutdown").ok())
            .collect();
        let parts = parts
            .iter()
            .map(|p| export_index(c, Some(&names::config_export(&p.name)), "configure"))
            .collect::<Result<Vec<_>>>()?;
        if let Ok(entry) = export_index(c, None, "run") {
            return Ok(Indices { device: Vec::new(), entry, wasi, command: false, parts, shutdowns, watch: None, route: None });
        }
        let ty = c.component_type();
        let run = ty.exports(engine).map(|(n, _)| n).find(|n| n.starts_with(names::WASI_RUN_PREFIX));
        match run {
            Some(iface) => {
                let iface = iface.to_string();
                let entry = export_index(c, Some(&iface), "run")?;
                Ok(Indices { device: Vec::new(), entry, wasi, command: true, parts, shutdowns, watch: None, route: None })
            }
            None => wasmtime::bail!("the app exports neither `run` (world weft:devices/app) nor wasi:cli/run (a WASI command)"),
        }
    }
}

fn block_fns(i: &Instance, mut s: impl AsContextMut, x: &Indices, c: Check) -> Result<BlockFns> {
    let d = &x.device;
    Ok(BlockFns {
        open: typed(i, &mut s, &d[0], c)?,
        info: typed(i, &mut s, &d[1], c)?,
        read: typed(i, &mut s, &d[2], c)?,
        write: typed(i, &mut s, &d[3], c)?,
        flush: typed(i, &mut s, &d[4], c)?,
    })
}

fn clock_fns(i: &Instance, mut s: impl AsContextMut, x: &Indices, c: Check) -> Result<ClockFns> {
    let d = &x.device;
    Ok(ClockFns {
        monotonic_now: typed(i, &mut s, &d[0], c)?,
        wall_now: typed(i, &mut s, &d[1], c)?,
        wait_until: typed(i, &mut s, &d[2], c)?,
    })
}

fn net_fns(i: &Instance, mut s: impl AsContextMut, x: &Indices, c: Check) -> Result<NetFns> {
    let d = &x.device;
    Ok(NetFns {
        open: typed(i, &mut s, &d[0], c)?,
        info: typed(i, &mut s, &d[1], c)?,
        send: typed(i, &mut s, &d[2], c)?,
        receive: typed(i, &mut s, &d[3], c)?,
    })
}

fn socket_fns(i: &Instance, mut s: impl AsContextMut, x: &Indices, c: Check) -> Result<SocketFns> {
    let d = &x.device;
    Ok(SocketFns {
        tcp_listen: typed(i, &mut s, &d[0], c)?,
        tcp_accept: typed(i, &mut s, &d[1], c)?,
        tcp_connect: typed(i, &mut s, &d[2], c)?,
        tcp_send: typed(i, &mut s, &d[3], c)?,
        tcp_recv: typed(i, &mut s, &d[4], c)?,
        tcp_shutdown: typed(i, &mut s, &d[5], c)?,
        udp_bind: typed(i, &mut s, &d[6], c)?,
        udp_send_to: typed(i, &mut s, &d[7], c)?,
        udp_recv_from: typed(i, &mut s, &d[8], c)?,
        close: typed(i, &mut s, &d[9], c)?,
        next_deadline: typed(i, &mut s, &d[10], c)?,
    })
}

type Configure = TypedFunc<(String, Vec<(String, String)>), (Result<(), String>,)>;

enum Entry {
    /// `weft:devices/app`: `run(args) -> u8`.
    Weft(TypedFunc<(Vec<String>,), (u8,)>),
    /// A WASI command: `wasi:cli/run.run() -> result`.
    Command(TypedFunc<(), (Result<(), ()>,)>),
}

/// The app instance of a linked unikernel.
pub struct App {
    entry: Entry,
    /// The composed `wasi` component's configure, when the app uses WASI.
    wasi: Option<Configure>,
    /// `weft:devices/shutdown` of each composed part that has one.
    shutdowns: Vec<TypedFunc<(), ()>>,
    program: String,
    /// `Wiring::wasi`.
    wasi_config: Vec<(String, String)>,
    who: usize,
}

impl App {
    /// Runs the app to completion. On error, `store.data().failure()` names
    /// the component that failed and how. A call to `weft:devices/exit`
    /// (WASI's `exit`) ends the run with its code, like a return from `run`.
    /// After a return from `run`, each composed part's `shutdown` is called (a
    /// part that implements `exit` shuts itself down before it exits).
    pub fn run(&self, store: &mut Store<Host>, args: Vec<String>) -> Result<u8> {
        let mut cx = store.as_context_mut();
        let result = self.start(&mut cx, args);
        match result {
            Err(e) if e.downcast_ref::<Exited>().is_some() => Ok(e.downcast_ref::<Exited>().map_or(1, |x| x.0)),
            Ok(code) => {
                for shutdown in &self.shutdowns {
                    call(&mut cx, self.who, *shutdown, ())?;
                }
                Ok(code)
            }
            other => other,
        }
    }

    fn start(&self, cx: &mut StoreContextMut<'_, Host>, args: Vec<String>) -> Result<u8> {
        if let Some(configure) = self.wasi {
            // WASI programs see a program name first, as on a POSIX host.
            let mut config = alloc::vec![("arg".to_string(), self.program.clone())];
            config.extend(args.iter().map(|a| ("arg".to_string(), a.clone())));
            config.extend(self.wasi_config.iter().cloned());
            if let Err(message) = call(cx, self.who, configure, ("wasi".into(), config))?.0 {
                wasmtime::bail!("the wasi component rejected its configuration: {message}");
            }
        }
        match self.entry {
            Entry::Weft(run) => Ok(call(cx, self.who, run, (args,))?.0),
            Entry::Command(run) => Ok(match call(cx, self.who, run, ())?.0 {
                Ok(()) => 0,
                Err(()) => 1,
            }),
        }
    }
}
