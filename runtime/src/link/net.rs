//! The net hops: `net` forwarded to a leaf, a filter, or past a filter for
//! the frames it does not handle (`net-route`: a `send` cut into runs, a
//! `receive`'s other frames kept in the filter's stash), and the copies
//! handed to net observers (`net-watch`).

use super::*;

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

pub(super) fn net_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::NET)?;
    i.func_wrap("open", move |mut cx, (name,): (String,)| {
        cx.data_mut().not_from_seen(me, "net.open")?;
        let t0 = cx.data().stat_start();
        let Some(&(_, p)) = cx.data().links[me].routes.nets.iter().find(|(r, _)| *r == name) else {
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
        if let (Ok(frames), Some(Some(wants))) = (&mut r, cx.data().filters.get(me).map(|x| &x.net_route))
            && !frames.iter().all(|f| wants.wants(Direction::Inbound, f))
        {
            // (No new list when the filter handles none of them: the common case.)
            let other = if frames.iter().any(|f| wants.wants(Direction::Inbound, f)) {
                let (mine, other): (Vec<_>, Vec<_>) = core::mem::take(frames).into_iter().partition(|f| wants.wants(Direction::Inbound, f));
                *frames = mine;
                other
            } else {
                core::mem::take(frames)
            };
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
            if let Some(c) = host.links[me].routes.capture {
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
        && !cx.data().links[me].routes.watchers.is_empty()
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
                        if !waiting.is_empty() {
                            waiting.append(frames);
                            *frames = waiting;
                        }
                        take(cx, frames);
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
        && !cx.data().links[me].routes.watchers.is_empty()
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
    for &(_, w) in host.links[me].routes.watchers.iter().filter(|(q, _)| *q == p) {
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
