//! Record and replay on Linux: `weft run --record`, `weft replay`,
//! `weft trace show`, and the trace comparison behind
//! `weft run --check-determinism`. The format and the interposer are the
//! runtime's (`weft_runtime::tape`); this module makes headers from plans,
//! and leaves that stand in for the devices a replay never touches.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use weft_runtime::cache::hex;
use weft_runtime::devices::{BlockDevice, NetDevice};
use weft_runtime::leaves::{StubBlock, StubNet};
use weft_runtime::link::Leaves;
use weft_runtime::manifest::SimOverride;
use weft_runtime::plan::Plan;
use weft_runtime::tape::record::describe;
use weft_runtime::tape::{Header, Outcome, Rec, Recorder, Trace};
use weft_runtime::units::format_duration;

use crate::backends::{SeededRandom, StderrLog, StdioConsole};
use crate::exit;
use crate::run::{self, Exit, RunOpts, Session};

use crate::exit::invalid;

/// Every component the plan runs with its hash: the app, its composed
/// parts, then the filters in link order.
pub fn components(plan: &Plan) -> Vec<(String, [u8; 32])> {
    let mut out = vec![(plan.app.name.clone(), plan.app.sha256)];
    out.extend(plan.app.parts.iter().map(|p| (p.name.clone(), p.sha256)));
    out.extend(plan.filters_in_link_order().map(|f| (f.name.clone(), f.sha256)));
    out
}

/// The header of a trace of `plan` running on `leaves`.
pub fn header(plan: &Plan, leaves: &Leaves, manifest_src: &str, seed: Option<u64>) -> Header {
    let m = &plan.manifest;
    let path = std::fs::canonicalize(&m.path).unwrap_or_else(|_| m.path.clone());
    Header {
        host: "linux".into(),
        manifest_path: path.display().to_string(),
        manifest: manifest_src.to_string(),
        sim_seed: seed.or(m.sim.as_ref().map(|s| s.seed)),
        components: components(plan),
        blocks: plan.block_devices().zip(&leaves.blocks).map(|(d, b)| (d.role.clone(), b.geometry())).collect(),
        nets: plan.net_devices().zip(&leaves.nets).map(|(d, n)| (d.role.clone(), n.info())).collect(),
    }
}

/// `weft run --record FILE`: the run as usual, its trace written to `out`
/// whether it succeeds or fails.
pub fn record(manifest: &Path, over: SimOverride, out: &Path) -> Result<u8> {
    let src = std::fs::read_to_string(manifest)
        .map_err(|e| invalid(format!("error: cannot read manifest {}: {e}", manifest.display())))?;
    let (plan, dir, engine) = run::plan_text(manifest, &src, over)?;
    let unikernel = run::unikernel(&plan, &engine)?;
    let (leaves, created) = run::leaves(&plan, &dir)?;
    let recorder = Recorder::new(&header(&plan, &leaves, &src, None));
    let session = Session::new(&plan, &unikernel, &engine);
    if session.limits.epoch_tick > 0 {
        run::start_ticker(&engine);
    }
    let ended = session.execute(leaves, weft_runtime::tape::Tape::Record(Box::new(recorder)), &RunOpts::default());
    let run::Ended { code, error, leaves, tape, .. } = ended;
    // The leaves close before what the run created may go (as in `run::run`).
    drop(leaves);
    created.settle(code);
    let weft_runtime::tape::Tape::Record(r) = tape else { unreachable!("recording") };
    let calls = r.calls();
    let bytes = r.finish();
    std::fs::write(out, &bytes).map_err(|e| anyhow::anyhow!("writing the trace {}: {e}", out.display()))?;
    eprintln!(
        "weft: recorded {calls} device calls in {} ({} bytes, {:.1} bytes/call); replay it with: weft replay {}",
        out.display(),
        bytes.len(),
        bytes.len() as f64 / calls.max(1) as f64,
        out.display()
    );
    match error {
        Some(e) => Err(e),
        None => Ok(code),
    }
}

/// Reads and checks a trace file; every problem is a clear error (exit 2).
pub fn load(path: &Path) -> Result<Trace> {
    let bytes = std::fs::read(path).map_err(|e| invalid(format!("error: cannot read trace {}: {e}", path.display())))?;
    Trace::parse(bytes).map_err(|e| invalid(format!("error: {}: {e}", path.display())))
}

/// Plans the trace's manifest as it was recorded (its seed, its folder) and
/// checks every component against the recorded hashes.
pub fn plan_for(trace: &Trace, path: &Path, allow_changed: bool) -> Result<(Plan, cap_std::fs::Dir, wasmtime::Engine)> {
    let h = &trace.header;
    let over = SimOverride { enable: h.sim_seed.is_some(), seed: h.sim_seed };
    let manifest = PathBuf::from(&h.manifest_path);
    let (plan, dir, engine) = run::plan_text(&manifest, &h.manifest, over).map_err(|e| {
        let msg = e.downcast_ref::<Exit>().map_or(format!("{e:#}"), |x| x.message.clone());
        invalid(format!("{msg}\nweft: (the manifest as recorded in {})", path.display()))
    })?;
    let now = components(&plan);
    if !allow_changed {
        let changed: Vec<String> = h
            .components
            .iter()
            .zip(now.iter().map(Some).chain(std::iter::repeat(None)))
            .filter_map(|((name, sha), cur)| match cur {
                Some((n, s)) if n == name && s == sha => None,
                Some((n, s)) => Some(format!("{name} (sha256:{}) is now {n} (sha256:{})", &hex(sha)[..16], &hex(s)[..16])),
                None => Some(format!("{name} (sha256:{}) is gone", &hex(sha)[..16])),
            })
            .chain(now.iter().skip(h.components.len()).map(|(n, _)| format!("{n} was added")))
            .collect();
        if !changed.is_empty() {
            return Err(invalid(format!(
                "error: {}: the components differ from the recorded run's: {}; a replay needs the same components (pass --allow-changed to replay anyway and see where it diverges)",
                path.display(),
                changed.join("; ")
            )));
        }
    }
    Ok((plan, dir, engine))
}

/// Leaves for a replay: geometry from the header, console and log real.
pub fn replay_leaves(h: &Header) -> Leaves {
    let blocks = h.blocks.iter().map(|(_, g)| Box::new(StubBlock(*g)) as Box<dyn BlockDevice>).collect();
    let mut l = Leaves::new(
        blocks,
        Box::new(weft_runtime::leaves::VirtualClock::new(0, 0)),
        Box::new(StdioConsole),
        Box::new(SeededRandom(0)),
        Box::new(StderrLog),
    );
    l.nets = h.nets.iter().map(|(_, n)| Box::new(StubNet(*n)) as Box<dyn NetDevice>).collect();
    l
}

/// `weft replay FILE`: the recorded run again, every device answered from
/// the trace; exit code and console as recorded, or a divergence (72).
pub fn replay(path: &Path, allow_changed: bool) -> Result<u8> {
    let trace = load(path)?;
    let (plan, _dir, engine) = plan_for(&trace, path, allow_changed)?;
    let unikernel = run::unikernel(&plan, &engine)?;
    let leaves = replay_leaves(&trace.header);
    let calls = trace.calls;
    let session = Session::new(&plan, &unikernel, &engine);
    if session.limits.epoch_tick > 0 {
        run::start_ticker(&engine);
    }
    let tape = weft_runtime::tape::Tape::Replay(Box::new(trace.replayer()));
    let ended = session.execute(leaves, tape, &RunOpts::default());
    match ended.error {
        Some(e) if ended.code == exit::DIVERGED => Err(e),
        other => {
            eprintln!("weft: replayed {calls} device calls from {}: the run ended as recorded ({})", path.display(), ended.outcome);
            match other {
                Some(e) => Err(e),
                None => Ok(ended.code),
            }
        }
    }
}

/// `weft trace show FILE`.
pub fn show(path: &Path, out: &mut dyn Write) -> Result<()> {
    let t = load(path)?;
    let h = &t.header;
    writeln!(out, "trace     {} ({} bytes, {} calls, {:.1} bytes/call)", path.display(), t.len(), t.calls, t.len() as f64 / t.calls.max(1) as f64)?;
    writeln!(out, "recorded  on {} from {}", h.host, h.manifest_path)?;
    match h.sim_seed {
        Some(s) => writeln!(out, "sim       seed {s}")?,
        None => writeln!(out, "sim       no (a run on real devices)")?,
    }
    for (name, sha) in &h.components {
        writeln!(out, "component {name:<12} sha256:{}", &hex(sha)[..16])?;
    }
    for (role, g) in &h.blocks {
        writeln!(out, "block     {role:<12} {} sectors of {} bytes{}", g.sector_count, g.sector_size, if g.read_only { ", read-only" } else { "" })?;
    }
    for (role, n) in &h.nets {
        let (a, b, c, d, e, f) = n.mac;
        writeln!(out, "net       {role:<12} {a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x} mtu {}", n.mtu)?;
    }
    let blocks: Vec<String> = h.blocks.iter().map(|(r, _)| r.clone()).collect();
    let nets: Vec<String> = h.nets.iter().map(|(r, _)| r.clone()).collect();
    writeln!(out, "{:>7}  {:>14}  call", "#", "time")?;
    let mut time = 0u64;
    for (n, rec) in t.records() {
        if let Rec::Mono { now } = rec {
            time = now;
        }
        let num = if n == 0 { String::new() } else { n.to_string() };
        writeln!(out, "{num:>7}  {:>14}  {}", format_time(time), describe(&rec, &blocks, &nets))?;
        // Received frames are in the trace whole: say what each one is.
        if let Rec::Receive { result: Ok(frames), .. } = &rec {
            for f in frames {
                writeln!(out, "{:>7}  {:>14}    {}", "", "", frame_summary(f))?;
            }
        }
    }
    Ok(())
}

/// One line about an Ethernet frame, tcpdump-style: ARP, ICMP, UDP and TCP
/// over IPv4 (addresses, ports, flags, sequence numbers, payload length).
pub fn frame_summary(f: &[u8]) -> String {
    if f.len() < 14 {
        return format!("{} bytes: too short for Ethernet", f.len());
    }
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let p = &f[14..];
    let ip4 = |b: &[u8]| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    match ethertype {
        0x0806 if p.len() >= 28 => {
            if u16::from_be_bytes([p[6], p[7]]) == 1 {
                format!("ARP who-has {} tell {}", ip4(&p[24..28]), ip4(&p[14..18]))
            } else {
                let m = &p[8..14];
                format!("ARP reply {} is-at {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", ip4(&p[14..18]), m[0], m[1], m[2], m[3], m[4], m[5])
            }
        }
        0x0800 if p.len() < 20 => format!("IPv4 {} bytes, truncated", p.len()),
        0x0800 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
            if ihl < 20 || total < ihl {
                return format!("IPv4 {} bytes, bad header", p.len());
            }
            let (src, dst, l4) = (ip4(&p[12..16]), ip4(&p[16..20]), &p[ihl..total]);
            match p[9] {
                6 if l4.len() >= 20 => {
                    let port = |i: usize| u16::from_be_bytes([l4[i], l4[i + 1]]);
                    let word = |i: usize| u32::from_be_bytes([l4[i], l4[i + 1], l4[i + 2], l4[i + 3]]);
                    let flags: String = [(0x02, 'S'), (0x10, '.'), (0x01, 'F'), (0x04, 'R'), (0x08, 'P')]
                        .iter()
                        .filter(|(bit, _)| l4[13] & bit != 0)
                        .map(|(_, c)| *c)
                        .collect();
                    let off = usize::from(l4[12] >> 4) * 4;
                    let len = l4.len().saturating_sub(off);
                    format!("TCP {src}:{} > {dst}:{} [{flags}] seq {} ack {} win {} len {len}", port(0), port(2), word(4), word(8), port(14))
                }
                17 if l4.len() >= 8 => {
                    let port = |i: usize| u16::from_be_bytes([l4[i], l4[i + 1]]);
                    format!("UDP {src}:{} > {dst}:{} len {}", port(0), port(2), l4.len() - 8)
                }
                1 if !l4.is_empty() => format!("ICMP {src} > {dst} type {}", l4[0]),
                proto => format!("IPv4 {src} > {dst} proto {proto}, {} bytes", l4.len()),
            }
        }
        other => format!("ethertype {other:#06x}, {} bytes", f.len()),
    }
}

fn format_time(ns: u64) -> String {
    format!("{}.{:06}s", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

#[cfg(test)]
mod tests {
    use super::frame_summary;

    #[test]
    fn frames_are_summarised_like_tcpdump() {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 0, 0, 3]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&59668u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&7u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&296303254u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
        assert_eq!(frame_summary(&f), "TCP 10.0.0.3:59668 > 10.0.0.2:7 [S] seq 296303254 ack 0 win 1024 len 0");
        assert_eq!(frame_summary(&f[..20]), "IPv4 6 bytes, truncated");
        f[14] = 0x41; // a header length of 4 bytes
        assert_eq!(frame_summary(&f), "IPv4 40 bytes, bad header");
        assert_eq!(frame_summary(&[1, 2]), "2 bytes: too short for Ethernet");
    }
}

/// The first place two traces of one manifest differ: (call number, one's
/// record, the other's), or `None` when identical.
pub fn first_difference(a: &Trace, b: &Trace) -> Option<(u64, String, String)> {
    let blocks: Vec<String> = a.header.blocks.iter().map(|(r, _)| r.clone()).collect();
    let nets: Vec<String> = a.header.nets.iter().map(|(r, _)| r.clone()).collect();
    let (ra, rb) = (a.records(), b.records());
    let mut call = 0;
    for i in 0..ra.len().max(rb.len()) {
        let (x, y) = (ra.get(i), rb.get(i));
        if let Some((n, _)) = x.or(y) {
            if *n > 0 {
                call = *n;
            }
        }
        if x.map(|r| &r.1) != y.map(|r| &r.1) {
            let d = |r: Option<&(u64, Rec)>| r.map_or("nothing (the trace ends)".to_string(), |r| describe(&r.1, &blocks, &nets));
            return Some((call, d(x), d(y)));
        }
    }
    None
}

/// `weft trace diff A B`: where two traces part (exit 1), or that they agree.
pub fn diff(a: &Path, b: &Path) -> Result<u8> {
    let (ta, tb) = (load(a)?, load(b)?);
    match first_difference(&ta, &tb) {
        None => {
            println!("the same {} device calls", ta.calls);
            Ok(0)
        }
        Some((call, x, y)) => {
            println!("differ at call #{call}:\n  {}: {x}\n  {}: {y}", a.display(), b.display());
            Ok(1)
        }
    }
}

/// A short description of how a run ended, for summaries.
pub fn outcome_text(o: &Outcome, virtual_ns: Option<u64>) -> String {
    match virtual_ns {
        Some(t) => format!("{o} after {} of virtual time", format_duration(t as i64)),
        None => o.to_string(),
    }
}
