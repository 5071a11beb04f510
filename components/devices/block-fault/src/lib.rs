//! `block-fault`: a block filter that injects faults, in the manner of smoltcp's
//! `FaultInjector` and MirageOS's drop-every-Nth-write test. It holds the device below it
//! (the `block` import) and delegates every call, deciding per operation whether to drop,
//! fail, corrupt, delay or hang it. Every injected fault is exactly one event on the log
//! topic `block-fault`; delays (`latency`) are not faults and are not logged.
//!
//! Config keys (all optional): `drop-every = N`, `drop-chance = p`, `seed = N` (default
//! 1), `fail-every = N`, `corrupt-chance = p`, `latency = "5ms"`, `hang-after = N`.
//! Only read, write and flush are operations; open and info pass straight through.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod faults;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use faults::{Faults, Op, Plan, Verdict};
use weft_guest::Global;

wit_bindgen::generate!({
    world: "block-filter",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, clock, log};

const TOPIC: &str = "block-fault";

struct State {
    faults: Faults,
    /// The role this filter sits on (from `configure`).
    role: String,
    /// Role name and sector size per handle, learnt from `open` and `info`.
    handles: Vec<(Handle, String, Option<block::Geometry>)>,
}

static STATE: Global<Option<State>> = Global::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| {
        // A device call before `configure` breaks the filter contract; behave as a plain
        // pass-through rather than trap.
        let s = s.get_or_insert_with(|| State {
            faults: Faults::new(Plan {
                seed: 1,
                ..Plan::default()
            }),
            role: String::from("?"),
            handles: Vec::new(),
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

    /// Decide the operation's fate; hang, or wait out the latency, here.
    fn begin(&mut self, op: Op, dev: Handle, span: Option<(u64, u64)>, droppable: bool) -> Verdict {
        let v = self.faults.decide(op, droppable);
        if let Verdict::Hang { n } = v {
            let after = self.faults.plan.hang_after.unwrap_or(0);
            let msg = format!(
                "hanging {} #{n}{} on {} (hang-after {after})",
                op.name(),
                span_text(span),
                self.name(dev)
            );
            emit("hang", op, span, n, msg, &[]);
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
        if let Verdict::Fail { n } = v {
            let every = self.faults.plan.fail_every.unwrap_or(0);
            let msg = format!(
                "failed {} #{n}{} on {}: io (fail-every {every})",
                op.name(),
                span_text(span),
                self.name(dev)
            );
            emit("fail", op, span, n, msg, &[]);
        }
        v
    }
}

fn span_text(span: Option<(u64, u64)>) -> String {
    match span {
        Some((sector, count)) => format!(" sector {sector} count {count}"),
        None => String::new(),
    }
}

/// One log event for one injected fault.
fn emit(
    fault: &str,
    op: Op,
    span: Option<(u64, u64)>,
    n: u64,
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
    log::append(TOPIC, &message, &fields);
}

struct BlockFault;

impl FilterGuest for BlockFault {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let plan = Plan::from_config(&config)?;
        STATE.with(|s| {
            *s = Some(State {
                faults: Faults::new(plan),
                role: device,
                handles: Vec::new(),
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
                    if corrupt {
                        if let Some((byte, bit)) = s.faults.flip(&mut data) {
                            let msg = format!(
                                "corrupted read #{n} sector {start} count {count} on {}: flipped bit {bit} of byte {byte}",
                                s.name(dev)
                            );
                            emit(
                                "corrupt",
                                Op::Read,
                                span,
                                n,
                                msg,
                                &[("byte", byte.to_string()), ("bit", bit.to_string())],
                            );
                        }
                    }
                    Ok(data)
                }
                Verdict::Drop { .. } | Verdict::Hang { .. } => unreachable!(),
            }
        })
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        with_state(|s| {
            // Only a write the device would accept may be dropped: dropping an invalid one
            // would turn its `invalid-argument` into a false `ok`.
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
                    // `n` is the write's number, as in the message; `op-n` counts all operations.
                    emit(
                        "drop",
                        Op::Write,
                        span,
                        write,
                        msg,
                        &[("op-n", n.to_string()), ("cause", cause.to_string())],
                    );
                    Ok(())
                }
                Verdict::Pass { .. } => block::write(dev, start, &data),
                Verdict::Hang { .. } => unreachable!(),
            }
        })
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        with_state(|s| match s.begin(Op::Flush, dev, None, false) {
            Verdict::Fail { .. } => Err(ErrorCode::Io),
            _ => block::flush(dev),
        })
    }
}

export!(BlockFault);
