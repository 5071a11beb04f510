//! `block-trace`: a block filter that logs every operation it passes down (open, info,
//! read, write, flush) as one event on topic `block-trace`, like smoltcp's `Tracer`.
//! Durations are measured on the host's monotonic clock around the call to the device
//! below. It takes no config keys.
//!
//! Message: `write storage sector 12 count 1 -> ok (3.2us)`; fields `op`, `device`,
//! `sector` and `count` (read and write only), `result` (`ok` or the error-code name),
//! `duration-ns`, and for open/info what they returned.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "block-filter",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, clock, log};

const TOPIC: &str = "block-trace";

#[derive(Default)]
struct State {
    role: Option<String>,
    /// Role name and sector size per handle, learnt from `open` and `info`.
    handles: Vec<(Handle, String, Option<u32>)>,
}

static STATE: Global<State> = Global::new(State {
    role: None,
    handles: Vec::new(),
});

impl State {
    fn name(&self, dev: Handle) -> String {
        match self.handles.iter().find(|h| h.0 == dev) {
            Some(h) => h.1.clone(),
            None => self.role.clone().unwrap_or_else(|| format!("handle {dev}")),
        }
    }

    fn entry(&mut self, dev: Handle) -> &mut (Handle, String, Option<u32>) {
        match self.handles.iter().position(|h| h.0 == dev) {
            Some(i) => &mut self.handles[i],
            None => {
                let name = self.name(dev);
                self.handles.push((dev, name, None));
                self.handles.last_mut().unwrap()
            }
        }
    }

    /// Sector size for counting a write's sectors. If the app never asked for `info`, ask
    /// the device ourselves (that call is not traced: the app did not make it).
    fn sector_size(&mut self, dev: Handle) -> Option<u32> {
        if let Some(ss) = self.entry(dev).2 {
            return Some(ss);
        }
        let ss = block::info(dev).ok()?.sector_size;
        self.entry(dev).2 = Some(ss);
        Some(ss)
    }
}

/// Run `f` against the device below and time it.
fn timed<T>(f: impl FnOnce() -> Result<T, ErrorCode>) -> (Result<T, ErrorCode>, u64) {
    let t0 = clock::monotonic_now();
    let r = f();
    let t1 = clock::monotonic_now();
    (r, t1.saturating_sub(t0))
}

fn result_name<T>(r: &Result<T, ErrorCode>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.name(),
    }
}

/// One event per operation. `what` is the message's subject (`write storage sector 12
/// count 1`), `outcome` what follows the arrow.
fn emit(
    op: &str,
    what: String,
    outcome: String,
    name: String,
    result: &str,
    ns: u64,
    mut extra: Vec<(String, String)>,
) {
    let message = format!(
        "{what} -> {outcome} ({})",
        weft_guest::fmt::duration(ns as i64)
    );
    let mut fields = vec![
        ("op".to_string(), op.to_string()),
        ("device".to_string(), name),
    ];
    fields.append(&mut extra);
    fields.push(("result".to_string(), result.to_string()));
    fields.push(("duration-ns".to_string(), ns.to_string()));
    log::append(TOPIC, &message, &fields);
}

fn span_fields(sector: u64, count: u64) -> Vec<(String, String)> {
    vec![
        ("sector".to_string(), sector.to_string()),
        ("count".to_string(), count.to_string()),
    ]
}

struct BlockTrace;

impl FilterGuest for BlockTrace {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        Config::new(&config, &[])?;
        STATE.with(|s| s.role = Some(device));
        Ok(())
    }
}

impl BlockGuest for BlockTrace {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        let (r, ns) = timed(|| block::open(&name));
        let (outcome, extra) = match r {
            Ok(h) => {
                STATE.with(|s| s.entry(h).1 = name.clone());
                (
                    format!("handle {h}"),
                    vec![("handle".to_string(), h.to_string())],
                )
            }
            Err(e) => (e.name().to_string(), vec![]),
        };
        emit(
            "open",
            format!("open {name}"),
            outcome,
            name.clone(),
            result_name(&r),
            ns,
            extra,
        );
        r
    }

    fn info(dev: Handle) -> Result<Geometry, ErrorCode> {
        let (r, ns) = timed(|| block::info(dev));
        let name = STATE.with(|s| {
            if let Ok(g) = &r {
                s.entry(dev).2 = Some(g.sector_size);
            }
            s.name(dev)
        });
        let (outcome, extra) = match &r {
            Ok(g) => (
                format!(
                    "ok {} sectors of {} bytes{}",
                    g.sector_count,
                    g.sector_size,
                    if g.read_only { ", read-only" } else { "" }
                ),
                vec![
                    ("sector-size".to_string(), g.sector_size.to_string()),
                    ("sector-count".to_string(), g.sector_count.to_string()),
                    ("read-only".to_string(), g.read_only.to_string()),
                ],
            ),
            Err(e) => (e.name().to_string(), vec![]),
        };
        emit(
            "info",
            format!("info {name}"),
            outcome,
            name,
            result_name(&r),
            ns,
            extra,
        );
        r.map(|g| Geometry {
            sector_size: g.sector_size,
            sector_count: g.sector_count,
            read_only: g.read_only,
        })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let (r, ns) = timed(|| block::read(dev, start, count));
        let name = STATE.with(|s| s.name(dev));
        let res = result_name(&r);
        let what = format!("read {name} sector {start} count {count}");
        emit(
            "read",
            what,
            res.to_string(),
            name,
            res,
            ns,
            span_fields(start, count as u64),
        );
        r
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        let ss = STATE.with(|s| s.sector_size(dev));
        let (r, ns) = timed(|| block::write(dev, start, &data));
        let name = STATE.with(|s| s.name(dev));
        let count = match ss {
            Some(ss) if ss > 0 => data.len() as u64 / ss as u64,
            _ => 0,
        };
        let res = result_name(&r);
        let what = format!("write {name} sector {start} count {count}");
        let mut extra = span_fields(start, count);
        extra.push(("bytes".to_string(), data.len().to_string()));
        emit("write", what, res.to_string(), name, res, ns, extra);
        r
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        let (r, ns) = timed(|| block::flush(dev));
        let name = STATE.with(|s| s.name(dev));
        let res = result_name(&r);
        emit(
            "flush",
            format!("flush {name}"),
            res.to_string(),
            name,
            res,
            ns,
            vec![],
        );
        r
    }
}

export!(BlockTrace);
