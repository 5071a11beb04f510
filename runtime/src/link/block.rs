//! The block hops: `block` forwarded to a leaf, a filter, or past a filter
//! that does not handle the operation (`block-route`), and the records
//! handed to block observers (`block-watch`).

use super::*;

/// When a filter observing `me`'s calls to `p` asked for `op`: the leaf
/// clock's reading as the call starts (`Host::watch_clock`). One look at an
/// empty list otherwise.
#[inline]
fn watch_start(cx: &mut StoreContextMut<'_, Host>, me: usize, p: Provider, op: BlockOp) -> Result<Option<u64>> {
    let host = cx.data_mut();
    if host.links[me].routes.watchers.is_empty() || !host.block_watched(me, p, op) {
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
    for i in 0..cx.data().links[me].routes.watchers.len() {
        let (q, w) = cx.data().links[me].routes.watchers[i];
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

/// A record of one block operation for its observers; `dev` is the
/// provider's handle.
fn block_call(op: BlockOp, dev: u32, outcome: Result<(), ErrorCode>) -> BlockCall {
    BlockCall { op, dev, sector: 0, count: 0, bytes: 0, outcome, geometry: None, duration_ns: 0 }
}

pub(super) fn block_linker(l: &mut Linker<Host>, me: usize) -> Result<()> {
    let mut i = l.instance(names::BLOCK)?;
    i.func_wrap("open", move |mut cx, (name,): (String,)| {
        cx.data_mut().not_from_seen(me, "block.open")?;
        let host = cx.data();
        let t0 = host.stat_start();
        let Some(&(_, p)) = host.links[me].routes.blocks.iter().find(|(r, _)| *r == name) else {
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
