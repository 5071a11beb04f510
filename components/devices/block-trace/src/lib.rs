//! `block-trace`: logs every block operation (open, info, read, write, flush) as one
//! event on topic `block-trace`, like smoltcp's `Tracer`.
//!
//! It only observes, so it exports `block-watch` (world `block-observer`,
//! wit/watch.wit): weft links the device above it straight to the device below and
//! hands it a record of each operation it asked for, with the time the call took below
//! on the host's monotonic clock (0 in a simulation: see wit/watch.wit). Its `block`
//! export, which passes every call through and times it itself, is what a runtime
//! without `block-watch` would link in the path; it logs the same events.
//!
//! Message: `write storage sector 12 count 1 -> ok (3.2us)`; fields `op`, `device`,
//! `sector` and `count` (read and write), `bytes` (write), `result` (`ok` or the
//! error-code name), `duration-ns`, and for open/info what they returned.
//!
//! Config: `ops`, the operations to log (`ops = ["write", "flush"]`); default all.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use weft_guest::{Config, Global};

wit_bindgen::generate!({
    world: "block-observer",
    path: "../../../wit",
});

use exports::weft::devices::block::{Geometry, Guest as BlockGuest, Handle};
use exports::weft::devices::block_watch::{Call, Guest as WatchGuest, Interest, Op};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::types::ErrorCode;
use weft::devices::{block, clock, log};

const TOPIC: &str = "block-trace";

const OPS: [&str; 5] = ["open", "info", "read", "write", "flush"];

struct State {
    role: Option<String>,
    /// The operations to log (`ops`), by their index in `OPS`.
    ops: [bool; 5],
    /// Role name and sector size per handle, learnt from `open` and `info` (in the
    /// path only: an observer is handed the count).
    handles: Vec<(Handle, String, Option<u32>)>,
}

static STATE: Global<State> = Global::new(State {
    role: None,
    ops: [true; 5],
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

    fn logs(&self, op: Op) -> bool {
        self.ops[op as usize]
    }
}

/// What one event says about an operation: the in-path filter and the observer build
/// the same one.
struct Event {
    op: Op,
    name: String,
    handle: Handle,
    sector: u64,
    count: u64,
    bytes: u64,
    result: Result<(), ErrorCode>,
    geometry: Option<(u32, u64, bool)>,
    ns: u64,
}

impl Event {
    fn new(op: Op, name: String, handle: Handle, result: Result<(), ErrorCode>, ns: u64) -> Self {
        Event { op, name, handle, sector: 0, count: 0, bytes: 0, result, geometry: None, ns }
    }

    /// The message and fields of the event.
    fn render(&self) -> (String, Vec<(String, String)>) {
        let name = &self.name;
        let res = match &self.result {
            Ok(()) => "ok",
            Err(e) => e.name(),
        };
        let mut extra = Vec::new();
        let (what, outcome) = match self.op {
            Op::Open => {
                let outcome = match self.result {
                    Ok(()) => {
                        extra.push(("handle".to_string(), self.handle.to_string()));
                        format!("handle {}", self.handle)
                    }
                    Err(_) => res.to_string(),
                };
                (format!("open {name}"), outcome)
            }
            Op::Info => {
                let outcome = match (&self.result, self.geometry) {
                    (Ok(()), Some((size, count, ro))) => {
                        extra.push(("sector-size".to_string(), size.to_string()));
                        extra.push(("sector-count".to_string(), count.to_string()));
                        extra.push(("read-only".to_string(), ro.to_string()));
                        format!("ok {count} sectors of {size} bytes{}", if ro { ", read-only" } else { "" })
                    }
                    _ => res.to_string(),
                };
                (format!("info {name}"), outcome)
            }
            Op::Read | Op::Write => {
                extra.push(("sector".to_string(), self.sector.to_string()));
                extra.push(("count".to_string(), self.count.to_string()));
                if self.op == Op::Write {
                    extra.push(("bytes".to_string(), self.bytes.to_string()));
                }
                let op = if self.op == Op::Read { "read" } else { "write" };
                (format!("{op} {name} sector {} count {}", self.sector, self.count), res.to_string())
            }
            Op::Flush => (format!("flush {name}"), res.to_string()),
        };
        let message = format!("{what} -> {outcome} ({})", weft_guest::fmt::duration(self.ns as i64));
        let mut fields = vec![
            ("op".to_string(), OPS[self.op as usize].to_string()),
            ("device".to_string(), self.name.clone()),
        ];
        fields.append(&mut extra);
        fields.push(("result".to_string(), res.to_string()));
        fields.push(("duration-ns".to_string(), self.ns.to_string()));
        (message, fields)
    }

    fn emit(&self) {
        if STATE.with(|s| s.logs(self.op)) {
            let (message, fields) = self.render();
            log::append(TOPIC, &message, &fields);
        }
    }
}

/// Run `f` against the device below and time it.
fn timed<T>(f: impl FnOnce() -> Result<T, ErrorCode>) -> (Result<T, ErrorCode>, u64) {
    let t0 = clock::monotonic_now();
    let r = f();
    let t1 = clock::monotonic_now();
    (r, t1.saturating_sub(t0))
}

fn unit<T>(r: &Result<T, ErrorCode>) -> Result<(), ErrorCode> {
    r.as_ref().map(|_| ()).map_err(|e| *e)
}

struct BlockTrace;

impl FilterGuest for BlockTrace {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let cfg = Config::new(&config, &["ops"])?;
        let ops = cfg.names("ops", &OPS)?.unwrap_or([true; 5]);
        STATE.with(|s| {
            s.role = Some(device);
            s.ops = ops;
        });
        Ok(())
    }
}

impl WatchGuest for BlockTrace {
    fn watching() -> Interest {
        let ops = STATE.with(|s| s.ops);
        Interest { open: ops[0], info: ops[1], read: ops[2], write: ops[3], flush: ops[4] }
    }

    fn seen(call: Call) {
        let name = STATE.with(|s| s.role.clone().unwrap_or_else(|| format!("handle {}", call.dev)));
        let mut e = Event::new(call.op, name, call.dev, call.outcome, call.duration_ns);
        e.sector = call.sector;
        e.count = call.count.into();
        e.bytes = call.bytes;
        e.geometry = call.geometry.map(|g| (g.sector_size, g.sector_count, g.read_only));
        e.emit();
    }
}

impl BlockGuest for BlockTrace {
    fn open(name: String) -> Result<Handle, ErrorCode> {
        let (r, ns) = timed(|| block::open(&name));
        if let Ok(h) = r {
            STATE.with(|s| s.entry(h).1 = name.clone());
        }
        Event::new(Op::Open, name, *r.as_ref().unwrap_or(&0), unit(&r), ns).emit();
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
        let mut e = Event::new(Op::Info, name, dev, unit(&r), ns);
        e.geometry = r.as_ref().ok().map(|g| (g.sector_size, g.sector_count, g.read_only));
        e.emit();
        r.map(|g| Geometry {
            sector_size: g.sector_size,
            sector_count: g.sector_count,
            read_only: g.read_only,
        })
    }

    fn read(dev: Handle, start: u64, count: u32) -> Result<Vec<u8>, ErrorCode> {
        let (r, ns) = timed(|| block::read(dev, start, count));
        let mut e = Event::new(Op::Read, STATE.with(|s| s.name(dev)), dev, unit(&r), ns);
        e.sector = start;
        e.count = count.into();
        e.emit();
        r
    }

    fn write(dev: Handle, start: u64, data: Vec<u8>) -> Result<(), ErrorCode> {
        let ss = STATE.with(|s| s.sector_size(dev));
        let (r, ns) = timed(|| block::write(dev, start, &data));
        let mut e = Event::new(Op::Write, STATE.with(|s| s.name(dev)), dev, r, ns);
        e.sector = start;
        e.count = match ss {
            Some(ss) if ss > 0 => data.len() as u64 / ss as u64,
            _ => 0,
        };
        e.bytes = data.len() as u64;
        e.emit();
        r
    }

    fn flush(dev: Handle) -> Result<(), ErrorCode> {
        let (r, ns) = timed(|| block::flush(dev));
        Event::new(Op::Flush, STATE.with(|s| s.name(dev)), dev, r, ns).emit();
        r
    }
}

export!(BlockTrace);

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: Op, result: Result<(), ErrorCode>) -> Event {
        Event::new(op, "storage".into(), 0, result, 3_200)
    }

    #[test]
    fn events_keep_their_format() {
        let mut w = event(Op::Write, Ok(()));
        (w.sector, w.count, w.bytes) = (12, 1, 512);
        let (m, f) = w.render();
        assert_eq!(m, "write storage sector 12 count 1 -> ok (3.2us)");
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["op", "device", "sector", "count", "bytes", "result", "duration-ns"]);
        assert_eq!(f[5].1, "ok");
        assert_eq!(f[6].1, "3200");
        let mut r = event(Op::Read, Err(ErrorCode::InvalidArgument));
        (r.sector, r.count) = (7, 2);
        let (m, f) = r.render();
        assert_eq!(m, "read storage sector 7 count 2 -> invalid-argument (3.2us)");
        assert_eq!(f.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["op", "device", "sector", "count", "result", "duration-ns"]);
        let mut i = event(Op::Info, Ok(()));
        i.geometry = Some((512, 2048, true));
        assert_eq!(i.render().0, "info storage -> ok 2048 sectors of 512 bytes, read-only (3.2us)");
        assert_eq!(event(Op::Open, Ok(())).render().0, "open storage -> handle 0 (3.2us)");
        assert_eq!(event(Op::Open, Err(ErrorCode::NotFound)).render().0, "open storage -> not-found (3.2us)");
        assert_eq!(event(Op::Flush, Ok(())).render().0, "flush storage -> ok (3.2us)");
    }
}
