//! `block-fault`: a block filter that injects faults, in the manner of smoltcp's
//! `FaultInjector` and MirageOS's drop-every-Nth-write test. It holds the device below it
//! (the `block` import) and delegates every call, deciding per operation whether to drop,
//! fail, corrupt, delay or hang it, or to cut the power before it. Every injected fault is
//! exactly one event on the log topic `block-fault`, with a field `schedule` =
//! `<fault>@<n>` (`n` the operation's number); delays (`latency`) are not faults and are
//! not logged.
//!
//! Config keys (all optional): `drop-every = N`, `drop-chance = p`, `seed = N` (default
//! the simulation's `sim-seed`, else 1), `fail-every = N`, `corrupt-chance = p`,
//! `latency = "5ms"`, `hang-after = N`, `power-cut-after = N`, `torn-writes = true`,
//! `schedule = [drop@17, corrupt@40, cut@230]` (exactly these faults; the keys that draw
//! faults are then ignored). Only read, write and flush are operations, numbered together
//! from 1; open and info pass straight through. `ops = ["write", "flush"]` narrows the
//! operations the filter handles (default all three): only those are numbered, faulted
//! and delayed, and the runtime makes the others on the device below without calling
//! the filter (wit/watch.wit, `block-route`; `info` always goes past). With a power cut
//! configured `ops` must name all three.
//!
//! With a power cut configured (`power-cut-after`, or `cut@` in the schedule, in
//! `sim-phase` 1 only) the filter is the disk's volatile write cache ([`cache`]): writes
//! are held until `flush`, and at the cut a seeded subset of them reaches the device
//! before `power.cut`. Without one, writes pass straight through.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cache;
pub mod faults;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use cache::{Below, Cache};
use faults::{Faults, Op, Plan, Verdict, token};
use weft_guest::Global;

wit_bindgen::generate!({
    world: "block-router",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::block_route::{Guest as RouteGuest, Interest};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, clock, log, power};

const TOPIC: &str = "block-fault";

struct State {
    faults: Faults,
    /// The role this filter sits on (from `configure`).
    role: String,
    /// Role name and sector size per handle, learnt from `open` and `info`.
    handles: Vec<(Handle, String, Option<block::Geometry>)>,
    /// The unflushed writes, when this boot may cut the power.
    cache: Option<Cache>,
}

/// The device below, as the cache sees it.
struct Device;

impl Below for Device {
    type Error = ErrorCode;
    fn write(&mut self, dev: Handle, start: u64, data: &[u8]) -> Result<(), ErrorCode> {
        block::write(dev, start, data)
    }
    fn flush(&mut self, dev: Handle) -> Result<(), ErrorCode> {
        block::flush(dev)
    }
}

static STATE: Global<Option<State>> = Global::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        // A device call before `configure` breaks the filter contract; behave as a plain
        // pass-through rather than trap.
        let s = s.get_or_insert_with(|| State {
            faults: Faults::new(Plan {
                seed: 1,
                phase: 1,
                ops: [true; 3],
                ..Plan::default()
            }),
            role: String::from("?"),
            handles: Vec::new(),
            cache: None,
        });
        f(s)
    })
}

impl State {
    fn name(&self, dev: Handle) -> &str {
        self.handles
            .iter()
            .find(|h| h.0 == dev)
            .map(|h| h.1.as_str())
            .unwrap_or(&self.role)
    }

    fn geometry(&mut self, dev: Handle) -> Option<block::Geometry> {
        if let Some(h) = self.handles.iter().find(|h| h.0 == dev) {
            if h.2.is_some() {
                return h.2;
            }
        }
        // Not asked for by the app yet: ask the device ourselves.
        let g = block::info(dev).ok()?;
        self.remember(dev, None, Some(g));
        Some(g)
    }

    fn remember(&mut self, dev: Handle, name: Option<&str>, g: Option<block::Geometry>) {
        let role = self.role.clone();
        let entry = match self.handles.iter().position(|h| h.0 == dev) {
            Some(i) => &mut self.handles[i],
            None => {
                self.handles
                    .push((dev, name.unwrap_or(&role).to_string(), None));
                self.handles.last_mut().unwrap()
            }
        };
        if let Some(n) = name {
            entry.1 = n.to_string();
        }
        if g.is_some() {
            entry.2 = g;
        }
    }

    /// Decide the operation's fate; cut the power, hang, or wait out the latency, here.
    fn begin(&mut self, op: Op, dev: Handle, span: Option<(u64, u64)>, droppable: bool) -> Verdict {
        let v = self.faults.decide(op, droppable);
        if let Verdict::Cut { n, cause } = v {
            self.cut(op, dev, span, n, cause);
        }
        if let Verdict::Hang { n, cause } = v {
            let why = match cause {
                "hang-after" => format!("hang-after {}", self.faults.plan.hang_after.unwrap_or(0)),
                c => c.to_string(),
            };
            let msg = format!(
                "hanging {} #{n}{} on {} ({why})",
                op.name(),
                span_text(span),
                self.name(dev)
            );
            emit("hang", op, span, n, n, cause, msg, &[]);
            // Never return: the host's run timeout is what stops this.
            #[allow(clippy::empty_loop)]
            loop {}
        }
        let latency = self.faults.plan.latency_ns;
        if latency > 0 {
            let deadline = clock::monotonic_now().saturating_add(latency);
            // `wait-until` MAY return early: re-check.
            while clock::wait_until(deadline) < deadline {}
        }
        if let Verdict::Fail { n, cause } = v {
            let why = match cause {
                "fail-every" => format!("fail-every {}", self.faults.plan.fail_every.unwrap_or(0)),
                c => c.to_string(),
            };
            let msg = format!(
                "failed {} #{n}{} on {}: io ({why})",
                op.name(),
                span_text(span),
                self.name(dev)
            );
            emit("fail", op, span, n, n, cause, msg, &[]);
        }
        v
    }

    /// The power fails before operation `n` starts: the held writes that survive reach
    /// the device below, which is flushed; one event; then `power.cut`, which never
    /// returns.
    fn cut(&mut self, op: Op, dev: Handle, span: Option<(u64, u64)>, n: u64, cause: &str) -> ! {
        let (seed, torn) = (self.faults.plan.seed, self.faults.plan.torn_writes);
        let r = match self.cache.as_mut() {
            Some(c) => c.cut(&mut Device, dev, seed, n, torn),
            // `Plan::cuts` made a cache whenever a cut can happen; flush all the same.
            None => {
                let _ = block::flush(dev);
                cache::CutReport::default()
            }
        };
        let why = match cause {
            "power-cut-after" => format!("power-cut-after {}", n - 1),
            c => c.to_string(),
        };
        let torn_text = if torn {
            format!(", {} torn", r.torn)
        } else {
            String::new()
        };
        let msg = format!(
            "power cut before {} #{n}{} on {} ({why}): {} unflushed writes ({} sectors): {} survived{torn_text}, {} lost; {} of {} sectors written",
            op.name(),
            span_text(span),
            self.name(dev),
            r.pending,
            r.pending_sectors,
            r.survived,
            r.lost,
            r.survived_sectors,
            r.pending_sectors,
        );
        let mut extra = vec![
            ("pending", r.pending.to_string()),
            ("pending-sectors", r.pending_sectors.to_string()),
            ("survived", r.survived.to_string()),
            ("torn", r.torn.to_string()),
            ("lost", r.lost.to_string()),
            ("survived-sectors", r.survived_sectors.to_string()),
            ("lost-sectors", r.lost_sectors.to_string()),
            ("torn-writes", torn.to_string()),
        ];
        if r.failed > 0 {
            // Writes or the flush the device below refused while the power failed.
            extra.push(("failed", r.failed.to_string()));
        }
        emit("cut", op, span, n, n, cause, msg, &extra);
        power::cut();
        unreachable!("power.cut returned")
    }
}

fn span_text(span: Option<(u64, u64)>) -> String {
    match span {
        Some((sector, count)) => format!(" sector {sector} count {count}"),
        None => String::new(),
    }
}

/// One log event for one injected fault: `fault`, `op`, `sector` and `count` (not for
/// flush), `n` (the number in the message), the details in `extra`, `cause` (the config
/// key, or `schedule`) and `schedule` (the token that replays it: the fault at operation
/// `op_n`).
#[allow(clippy::too_many_arguments)]
fn emit(
    fault: &str,
    op: Op,
    span: Option<(u64, u64)>,
    n: u64,
    op_n: u64,
    cause: &str,
    message: String,
    extra: &[(&str, String)],
) {
    let mut fields = vec![
        ("fault".to_string(), fault.to_string()),
        ("op".to_string(), op.name().to_string()),
    ];
    if let Some((sector, count)) = span {
        fields.push(("sector".to_string(), sector.to_string()));
        fields.push(("count".to_string(), count.to_string()));
    }
    fields.push(("n".to_string(), n.to_string()));
    for (k, v) in extra {
        fields.push((k.to_string(), v.clone()));
    }
    fields.push(("cause".to_string(), cause.to_string()));
    fields.push(("schedule".to_string(), token(fault, op_n)));
    log::append(TOPIC, &message, &fields);
}

struct BlockFault;

impl FilterGuest for BlockFault {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let plan = Plan::from_config(&config)?;
        let cache = plan.cuts().then(Cache::new);
        STATE.with(|s| {
            *s = Some(State {
                faults: Faults::new(plan),
                role: device,
                handles: Vec::new(),
                cache,
            })
        });
        Ok(())
    }
}

impl BlockGuest for BlockFault {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        let h = block::open(&name)?;
        with_state(|s| s.remember(h, Some(&name), None));
        Ok(h)
    }

    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        let g = block::info(dev)?;
        with_state(|s| s.remember(dev, None, Some(g)));
        Ok(Geometry {
            sector_size: g.sector_size,
            sector_count: g.sector_count,
            read_only: g.read_only,
        })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        with_state(|s| {
            let span = Some((start, count as u64));
            match s.begin(Op::Read, dev, span, false) {
                Verdict::Fail { .. } => Err(ErrorCode::Io),
                Verdict::Pass { n, corrupt } => {
                    let mut data = block::read(dev, start, count)?;
                    if let Some(c) = &s.cache {
                        // The disk's cache answers for the sectors it holds.
                        c.overlay(start, &mut data);
                    }
                    if let Some(cause) = corrupt
                        && let Some((byte, bit)) = s.faults.flip(n, &mut data)
                    {
                        let msg = format!(
                            "corrupted read #{n} sector {start} count {count} on {}: flipped bit {bit} of byte {byte}",
                            s.name(dev)
                        );
                        emit(
                            "corrupt",
                            Op::Read,
                            span,
                            n,
                            n,
                            cause,
                            msg,
                            &[("byte", byte.to_string()), ("bit", bit.to_string())],
                        );
                    }
                    Ok(data)
                }
                _ => unreachable!(),
            }
        })
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        with_state(|s| {
            // Only a write the device would accept may be dropped (or held): dropping an
            // invalid one would turn its `invalid-argument` into a false `ok`.
            let g = s.geometry(dev);
            let (count, valid) = match g {
                Some(g) => {
                    let ss = g.sector_size as u64;
                    let count = data.len() as u64 / ss;
                    let valid = !data.is_empty()
                        && data.len() as u64 % ss == 0
                        && start
                            .checked_add(count)
                            .is_some_and(|end| end <= g.sector_count)
                        && !g.read_only;
                    (count, valid)
                }
                None => (0, false),
            };
            let span = Some((start, count));
            match s.begin(Op::Write, dev, span, valid) {
                Verdict::Fail { .. } => Err(ErrorCode::Io),
                Verdict::Drop { n, write, cause } => {
                    let msg = format!(
                        "dropped write #{write} sector {start} count {count} on {} ({cause})",
                        s.name(dev)
                    );
                    // `n` is the write's number, as in the message; `op-n` counts all
                    // operations, as the `schedule` token does.
                    emit(
                        "drop",
                        Op::Write,
                        span,
                        write,
                        n,
                        cause,
                        msg,
                        &[("op-n", n.to_string())],
                    );
                    Ok(())
                }
                Verdict::Pass { .. } => match (&mut s.cache, g) {
                    // Held until a flush; an invalid write goes down to be refused.
                    (Some(c), Some(g)) if valid => {
                        c.write(dev, start, data, g.sector_size);
                        Ok(())
                    }
                    _ => block::write(dev, start, &data),
                },
                _ => unreachable!(),
            }
        })
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        with_state(|s| match s.begin(Op::Flush, dev, None, false) {
            Verdict::Fail { .. } => Err(ErrorCode::Io),
            _ => match &mut s.cache {
                Some(c) => c.flush(&mut Device, dev),
                None => block::flush(dev),
            },
        })
    }
}

impl RouteGuest for BlockFault {
    fn handling() -> Interest {
        let [read, write, flush] = with_state(|s| s.faults.plan.ops);
        // `info` passes through unchanged (the filter asks the device itself when it
        // needs the geometry); `open` always reaches the filter.
        Interest {
            open: true,
            info: false,
            read,
            write,
            flush,
        }
    }
}

export!(BlockFault);
