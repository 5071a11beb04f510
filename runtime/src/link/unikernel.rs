//! Instantiation: the plan of every instance (which provider serves each of
//! its imports, which observers watch its hops), the export indices resolved
//! once per unikernel, and the store set up for a run.

use super::*;
use super::block::block_linker;
use super::net::net_linker;

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
    routes: Routes,
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
                    routes: Routes {
                        clock: leaf_clock,
                        device: leaf,
                        watchers: if observer { Vec::new() } else { core::mem::take(&mut watchers) },
                        ..Routes::default()
                    },
                    ..Slot::default()
                };
                match kind {
                    FilterKind::Block => slot.routes.blocks = alloc::vec![(role.into(), below)],
                    FilterKind::Net => {
                        slot.routes.nets = alloc::vec![(role.into(), below)];
                        slot.routes.capture = Some(*captures);
                        *captures += 1;
                    }
                    _ => slot.routes.clock = Some(below),
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
                    routes: Routes { nets: alloc::vec![net.clone()], clock: leaf_clock, watchers: watchers.clone(), ..Routes::default() },
                    ..Slot::default()
                });
                Some(Provider::Filter(plan.len() - 1))
            }
            None => Some(Provider::Leaf(0)),
        };
        plan.push(Slot {
            name: format!("{} (app)", wiring.app),
            routes: Routes { blocks: app_blocks, clock: Some(clock), sockets, watchers: app_watchers, ..Routes::default() },
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
                routes: s.routes.clone(),
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
