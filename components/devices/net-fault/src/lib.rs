//! `net-fault`: a net filter that injects faults both ways, with smoltcp's
//! FaultInjector semantics (see [`faults`]). Config keys, all optional:
//! `drop-chance`, `duplicate-chance`, `corrupt-chance` (probabilities per frame),
//! `delay = "50ms"` (every frame is held that long and released by a later call),
//! `seed` (default the simulation's `sim-seed`, else 1), `schedule = [drop@17,
//! corrupt@40]` (exactly these faults; the chances are then ignored). Every injected
//! drop, duplicate and corruption is one event on log topic `net-fault`, with a field
//! `schedule` = `<fault>@<n>`, `n` the frame's number among all frames the filter saw,
//! in and out together, from 1 (so a token names one frame); delays are not faults and
//! are not logged.
//!
//! `ethertypes = [0x0806]` and `directions = ["inbound"]` narrow the frames the filter
//! handles (default: every frame, both ways): only those are numbered, faulted and
//! delayed; the runtime routes the others past it (wit/watch.wit, `net-route`), and
//! were they handed to it, it would pass them on unchanged and at once. A `net-fault`
//! that may corrupt handles every frame itself, narrowing only what it faults, so that
//! it can complete the checksums of all it passes up.
//!
//! Corruption must stay detectable, as on a wire. Above a device with checksum
//! offload, a `net-fault` that may corrupt (`corrupt-chance`, or `corrupt@` in the
//! schedule) reports none (so the stack checks every checksum), completes the checksums
//! of the frames it passes up (Linux leaves them partial), and never passes down a
//! checksum the device would fill in over the damage (like Linux's netem, which
//! completes checksums before corrupting).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod faults;

use alloc::string::String;
use alloc::vec::Vec;

use faults::{Dir, Faults, Plan};
use weft_guest::Global;
use weft_guest::checksum::{self, L4};

wit_bindgen::generate!({
    world: "net-router",
    path: "../../../wit",
});

use exports::weft::devices::filter::Guest as FilterGuest;
use exports::weft::devices::net::{Guest as NetGuest, NetInfo};
use exports::weft::devices::net_route::{Guest as RouteGuest, Interest};
use weft::devices::types::{ErrorCode, Handle};
use weft::devices::{clock, log, net};

const TOPIC: &str = "net-fault";

struct State {
    plan: Plan,
    role: String,
    devs: Vec<Dev>,
}

/// An open device.
struct Dev {
    handle: Handle,
    /// Its largest frame.
    max: usize,
    /// Whether checksums must be mended around it (see the top).
    mend: bool,
    faults: Faults,
}

static STATE: Global<Option<State>> = Global::new(None);

fn with_dev<R>(dev: Handle, f: impl FnOnce(&mut Dev) -> R) -> Result<R, ErrorCode> {
    STATE.with(|s| {
        let s = s.get_or_insert_with(|| State {
            plan: Plan {
                seed: 1,
                ..Plan::default()
            },
            role: String::from("?"),
            devs: Vec::new(),
        });
        if !s.devs.iter().any(|d| d.handle == dev) {
            // A handle we did not see opened (the runtime may hand out one per role).
            let info = net::info(dev)?;
            s.devs.push(Dev {
                handle: dev,
                max: 14 + info.mtu as usize,
                mend: info.checksum_offload && s.plan.may_corrupt(),
                faults: Faults::new(s.plan.clone(), s.role.clone()),
            });
        }
        let d = s.devs.iter_mut().find(|d| d.handle == dev).unwrap();
        Ok(f(d))
    })
}

/// The time frames are held against: the clock's only with a `delay` (without one
/// every frame is due at once, so no reading — a call to the host — is taken).
fn hold_time(d: &Dev) -> u64 {
    if d.faults.plan.delay_ns > 0 {
        clock::monotonic_now()
    } else {
        0
    }
}

fn emit(events: Vec<faults::Event>) {
    for e in events {
        log::append(TOPIC, &e.message, &e.fields);
    }
}

struct NetFault;

impl FilterGuest for NetFault {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let plan = Plan::from_config(&config)?;
        STATE.with(|s| {
            *s = Some(State {
                plan,
                role: device,
                devs: Vec::new(),
            })
        });
        Ok(())
    }
}

impl NetGuest for NetFault {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        let h = net::open(&name)?;
        with_dev(h, |_| ())?;
        Ok(h)
    }

    fn info(dev: Handle) -> Result<NetInfo, ErrorCode> {
        let i = net::info(dev)?;
        let mend = with_dev(dev, |d| d.mend)?;
        Ok(NetInfo {
            mac: i.mac,
            mtu: i.mtu,
            checksum_offload: i.checksum_offload && !mend,
        })
    }

    fn send(dev: Handle, mut frames: Vec<Vec<u8>>) -> Result<u32, ErrorCode> {
        let (out, delayed) = with_dev(dev, |d| {
            // The contract's length check comes first: a bad batch sends nothing.
            if frames.iter().any(|fr| fr.len() < 14 || fr.len() > d.max) {
                return Err(ErrorCode::InvalidArgument);
            }
            if d.mend {
                // A zero checksum would be the device's to fill, over any damage.
                for fr in &mut frames {
                    if let Some(l4) = L4::of(fr).filter(|l| l.delegated(fr)) {
                        l4.fill(fr);
                    }
                }
            }
            Ok((
                d.faults.pass(Dir::Out, frames, hold_time(d), usize::MAX),
                d.faults.plan.delay_ns > 0,
            ))
        })??;
        emit(out.events);
        let total = out.taken as u32;
        if out.frames.is_empty() {
            return Ok(total);
        }
        let sent = match net::send(dev, &out.frames) {
            Ok(n) => (n as usize).min(out.frames.len()),
            Err(e) if !delayed => return Err(e),
            Err(_) => 0,
        };
        if sent == out.frames.len() {
            return Ok(total);
        }
        if delayed {
            // Released frames the device refused wait for the next call.
            let rest: Vec<Vec<u8>> = out.frames.into_iter().skip(sent).collect();
            with_dev(dev, |d| d.faults.requeue_out(rest, clock::monotonic_now()))?;
            Ok(total)
        } else {
            // Report as accepted only the input frames wholly sent (dropped ones count).
            Ok(out.origin[sent].map_or(total, |i| i as u32))
        }
    }

    fn receive(dev: Handle, max: u32) -> Result<Vec<Vec<u8>>, ErrorCode> {
        let (now, ready, mend) = with_dev(dev, |d| {
            let now = hold_time(d);
            (now, d.faults.due(Dir::In, now), d.mend)
        })?;
        let mut fresh = if ready < max as usize {
            net::receive(dev, max)?
        } else {
            Vec::new()
        };
        if mend {
            fresh.iter_mut().for_each(|f| checksum::fill(f));
        }
        let out = with_dev(dev, |d| d.faults.pass(Dir::In, fresh, now, max as usize))?;
        emit(out.events);
        Ok(out.frames)
    }
}

impl RouteGuest for NetFault {
    fn handling() -> Interest {
        STATE.with(|s| match s {
            Some(State { plan, .. }) if !plan.may_corrupt() => Interest {
                ethertypes: plan.ethertypes.clone(),
                inbound: plan.inbound,
                outbound: plan.outbound,
            },
            // Above a device with checksum offload it reports none, so every frame it
            // passes up must have whole checksums: it handles them all.
            _ => Interest {
                ethertypes: Vec::new(),
                inbound: true,
                outbound: true,
            },
        })
    }
}

export!(NetFault);
