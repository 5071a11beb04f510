//! One 4 KiB read through one host-linked hop, as weft links components: the
//! consumer's import is a host function which calls the provider's export in
//! the same `Store` (runtime/src/link/block.rs). Shapes measured:
//!
//! - `list-*`: `read-list: func(count) -> list<u8>`, today's shape. The hop
//!   lifts the provider's list into a host `Vec` and returns it, which wasmtime
//!   lowers into the consumer (its `cabi_realloc` + memcpy).
//! - `stream-*`: `read-stream: async func(count) -> stream<u8>`. The hop hands
//!   the provider's `StreamReader` to the consumer as the import's result; the
//!   consumer's `stream.read` then meets the provider's pending `stream.write`
//!   and wasmtime copies the bytes guest to guest, once.
//! - `open-hop`: one `open-stream` call, then n reads of one long-lived stream:
//!   the stream's own cost once the per-read call is gone.
//! - `alist-*`: `read-alist: async func(count) -> list<u8>`, the list shape
//!   made async.
//!
//! `*-direct` answers the consumer's import on the host (no provider): the
//! floor of each shape. Builds and engines: without the `cma` feature the
//! bench is wasmtime as weft builds it (`no cma`, run by the `cma` build as a
//! child per round when given `baseline=`); `off` has the feature compiled in
//! and `Config::concurrency_support(false)`; `on` has it on. A store with any
//! concurrent host function must be entered through `run_concurrent` +
//! `call_concurrent` (wasmtime sets `async_required`), and there a synchronous
//! host function cannot call another instance at all, so `on/async` has no
//! list hop (see `Rig::new`).

// Without `cma` only the list rows exist.
#![cfg_attr(not(feature = "cma"), allow(dead_code))]

use std::time::Instant;

#[cfg(feature = "cma")]
use futures::executor::block_on;
use wasmtime::component::{Component, Instance, Linker, TypedFunc};
#[cfg(feature = "cma")]
use wasmtime::component::{Accessor, StreamReader};
use wasmtime::error::{Context as _, bail, ensure};
use wasmtime::{Config, Engine, Result, Store, StoreContextMut};

const BLOCK: u32 = 4096;

/// The guest's `DISK`: the same bytes on the host, for the direct variants.
fn disk() -> Vec<u8> {
    (0..BLOCK as usize).map(|i| (i * 7 + 1) as u8).collect()
}

/// What the consumer's `touch` adds per read.
fn per_read() -> u64 {
    let d = disk();
    BLOCK as u64 + d[0] as u64 + d[BLOCK as usize - 1] as u64
}

#[derive(Default)]
struct Data {
    /// The consumer's imports answer themselves (no provider).
    direct: bool,
    list: Option<TypedFunc<(u32,), (Vec<u8>,)>>,
    alist: Option<TypedFunc<(u32,), (Vec<u8>,)>>,
    #[cfg(feature = "cma")]
    stream: Option<TypedFunc<(u32,), (StreamReader<u8>,)>>,
    #[cfg(feature = "cma")]
    open: Option<TypedFunc<(u32, u32), (StreamReader<u8>,)>>,
    disk: Vec<u8>,
}

fn bytes(d: &Data, count: u32) -> Result<Vec<u8>> {
    Ok(d.disk.get(..count as usize).context("read past the disk")?.to_vec())
}

/// `read-list` as weft defines it today: a synchronous host function.
fn add_list_sync(linker: &mut Linker<Data>) -> Result<()> {
    linker.instance("exp:hop/blocks")?.func_wrap(
        "read-list",
        |mut cx: StoreContextMut<'_, Data>, (count,): (u32,)| {
            if cx.data().direct {
                return Ok((bytes(cx.data(), count)?,));
            }
            let f = cx.data().list.context("no provider")?;
            let (got,) = f.call(&mut cx, (count,))?;
            ensure!(got.len() == count as usize, "provider returned {} bytes", got.len());
            Ok((got,))
        },
    )
}

#[cfg(feature = "cma")]
fn add_streams(linker: &mut Linker<Data>) -> Result<()> {
    let mut i = linker.instance("exp:hop/streams")?;
    i.func_wrap_concurrent("read-alist", |acc: &Accessor<Data>, (count,): (u32,)| {
        Box::pin(async move {
            let (direct, f) = acc.with(|mut a| {
                let d = a.get();
                (d.direct, d.alist)
            });
            if direct {
                return acc.with(|mut a| Ok((bytes(a.get(), count)?,)));
            }
            let (got,) = f.context("no provider")?.call_concurrent(acc, (count,)).await?;
            ensure!(got.len() == count as usize, "provider returned {} bytes", got.len());
            Ok((got,))
        })
    })?;
    i.func_wrap_concurrent("read-stream", |acc: &Accessor<Data>, (count,): (u32,)| {
        Box::pin(async move {
            let (direct, f) = acc.with(|mut a| {
                let d = a.get();
                (d.direct, d.stream)
            });
            if direct {
                // The host is the device: a stream over a fresh Vec.
                let r = acc.with(|mut a| {
                    let v = bytes(a.get(), count)?;
                    StreamReader::new(&mut a, v)
                })?;
                return Ok((r,));
            }
            // Forwarded: the provider's reader becomes the consumer's.
            let (r,) = f.context("no provider")?.call_concurrent(acc, (count,)).await?;
            Ok((r,))
        })
    })?;
    i.func_wrap_concurrent("open-stream", |acc: &Accessor<Data>, (count, n): (u32, u32)| {
        Box::pin(async move {
            let (direct, f) = acc.with(|mut a| {
                let d = a.get();
                (d.direct, d.open)
            });
            if direct {
                bail!("open-stream has no direct variant");
            }
            let (r,) = f.context("no provider")?.call_concurrent(acc, (count, n)).await?;
            Ok((r,))
        })
    })?;
    Ok(())
}

fn export<P, R>(
    store: &mut Store<Data>,
    inst: &Instance,
    iface: Option<&str>,
    name: &str,
) -> Result<TypedFunc<P, R>>
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let parent = match iface {
        Some(i) => Some(inst.get_export_index(&mut *store, None, i).context(i.to_string())?),
        None => None,
    };
    let idx = inst
        .get_export_index(&mut *store, parent.as_ref(), name)
        .with_context(|| format!("no export {name}"))?;
    inst.get_typed_func::<P, R>(&mut *store, &idx)
}

/// One store: a consumer and a provider, linked through the host.
struct Rig {
    store: Store<Data>,
    /// Entered through `run_concurrent` (the store has concurrent host functions).
    concurrent: bool,
    run_list: TypedFunc<(u32,), (u64,)>,
    run_alist: Option<TypedFunc<(u32,), (u64,)>>,
    run_stream: Option<TypedFunc<(u32,), (u64,)>>,
    run_open: Option<TypedFunc<(u32,), (u64,)>>,
}

impl Rig {
    fn new(engine: &Engine, component: &Component, concurrent: bool) -> Result<Rig> {
        let mut linker = Linker::new(engine);
        // In a store with concurrent host functions this `read-list` works
        // only `direct`: its hop would `call` the provider, which wasmtime
        // refuses there ("store configuration requires that `*_async`
        // functions are used instead"), and the `call_async` of a
        // `func_wrap_async` fails with "Recursive
        // `StoreContextMut::run_concurrent` calls not supported".
        add_list_sync(&mut linker)?;
        #[cfg(feature = "cma")]
        if concurrent {
            add_streams(&mut linker)?;
        }
        let mut store = Store::new(engine, Data { disk: disk(), ..Data::default() });
        // weft arms a deadline for its timeout; nothing here advances the epoch.
        store.set_epoch_deadline(u64::MAX / 2);
        #[cfg(feature = "cma")]
        let (provider, consumer) = if concurrent {
            let p = block_on(linker.instantiate_async(&mut store, component))?;
            let c = block_on(linker.instantiate_async(&mut store, component))?;
            (p, c)
        } else {
            (linker.instantiate(&mut store, component)?, linker.instantiate(&mut store, component)?)
        };
        #[cfg(not(feature = "cma"))]
        let (provider, consumer) = {
            (linker.instantiate(&mut store, component)?, linker.instantiate(&mut store, component)?)
        };
        let list = export(&mut store, &provider, Some("exp:hop/blocks"), "read-list")?;
        store.data_mut().list = Some(list);
        let run_list = export(&mut store, &consumer, None, "run-list")?;
        #[allow(unused_mut)]
        let (mut run_alist, mut run_stream, mut run_open) = (None, None, None);
        #[cfg(feature = "cma")]
        if concurrent {
            let a = export(&mut store, &provider, Some("exp:hop/streams"), "read-alist")?;
            store.data_mut().alist = Some(a);
            run_alist = Some(export(&mut store, &consumer, None, "run-alist")?);
            let s = export(&mut store, &provider, Some("exp:hop/streams"), "read-stream")?;
            let o = export(&mut store, &provider, Some("exp:hop/streams"), "open-stream")?;
            store.data_mut().stream = Some(s);
            store.data_mut().open = Some(o);
            run_stream = Some(export(&mut store, &consumer, None, "run-stream")?);
            run_open = Some(export(&mut store, &consumer, None, "run-open")?);
        }
        Ok(Rig { store, concurrent, run_list, run_alist, run_stream, run_open })
    }

    fn call(&mut self, f: TypedFunc<(u32,), (u64,)>, n: u32) -> Result<u64> {
        #[cfg(feature = "cma")]
        if self.concurrent {
            let r = block_on(
                self.store.run_concurrent(async move |acc| f.call_concurrent(acc, (n,)).await),
            )??;
            return Ok(r.0);
        }
        Ok(f.call(&mut self.store, (n,))?.0)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    List,
    AList,
    Stream,
    Open,
}

struct Variant {
    name: &'static str,
    /// Index into the rigs.
    rig: usize,
    shape: Shape,
    direct: bool,
}

const OFF: usize = 0; // engine without concurrency support, synchronous store
const ON_SYNC: usize = 1; // engine with it, store with only synchronous host functions
const ON_ASYNC: usize = 2; // engine with it, store with concurrent host functions

#[cfg(not(feature = "cma"))]
const VARIANTS: &[Variant] = &[
    Variant { name: "list-hop (no cma)", rig: OFF, shape: Shape::List, direct: false },
    Variant { name: "list-direct (no cma)", rig: OFF, shape: Shape::List, direct: true },
];

#[cfg(feature = "cma")]
const VARIANTS: &[Variant] = &[
    Variant { name: "list-hop (off)", rig: OFF, shape: Shape::List, direct: false },
    Variant { name: "list-direct (off)", rig: OFF, shape: Shape::List, direct: true },
    Variant { name: "list-hop (on/sync)", rig: ON_SYNC, shape: Shape::List, direct: false },
    Variant { name: "list-direct (on/sync)", rig: ON_SYNC, shape: Shape::List, direct: true },
    Variant { name: "list-direct (on/async)", rig: ON_ASYNC, shape: Shape::List, direct: true },
    Variant { name: "alist-hop (on/async)", rig: ON_ASYNC, shape: Shape::AList, direct: false },
    Variant { name: "alist-direct (on/async)", rig: ON_ASYNC, shape: Shape::AList, direct: true },
    Variant { name: "stream-hop (on/async)", rig: ON_ASYNC, shape: Shape::Stream, direct: false },
    Variant { name: "stream-direct (on/async)", rig: ON_ASYNC, shape: Shape::Stream, direct: true },
    Variant { name: "open-hop (on/async)", rig: ON_ASYNC, shape: Shape::Open, direct: false },
];

fn engine(concurrency: bool) -> Result<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true); // as weft's engine (runtime/src/engine.rs)
    c.concurrency_support(concurrency);
    #[cfg(feature = "cma")]
    if concurrency {
        c.wasm_component_model_async(true);
    }
    Engine::new(&c)
}

/// ns per read of one pass of `n` reads.
fn pass(rigs: &mut [Rig], v: &Variant, n: u32) -> Result<f64> {
    let rig = &mut rigs[v.rig];
    rig.store.data_mut().direct = v.direct;
    let f = match v.shape {
        Shape::List => rig.run_list,
        Shape::AList => rig.run_alist.context("no streams in this rig")?,
        Shape::Stream => rig.run_stream.context("no streams in this rig")?,
        Shape::Open => rig.run_open.context("no streams in this rig")?,
    };
    let t = Instant::now();
    let sum = rig.call(f, n)?;
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    ensure!(sum == per_read() * n as u64, "{}: checksum {sum}, expected {}", v.name, per_read() * n as u64);
    Ok(ns)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    ensure!(
        args.len() >= 3,
        "usage: stream-hop SYNC.wasm STREAMS.wasm [reads=N] [rounds=R] [only=NAME] [baseline=BIN] [raw]"
    );
    let (mut reads, mut rounds, mut only) = (100_000u32, 9usize, None::<String>);
    let (mut baseline, mut raw) = (None::<String>, false);
    for a in &args[3..] {
        match a.split_once('=') {
            Some(("reads", v)) => reads = v.parse()?,
            Some(("rounds", v)) => rounds = v.parse()?,
            Some(("only", v)) => only = Some(v.to_string()),
            // A build without `component-model-async` (run.sh), run as a
            // child once per round: its rows lead the table.
            Some(("baseline", v)) => baseline = Some(v.to_string()),
            None if a == "raw" => raw = true,
            _ => bail!("unknown argument {a}"),
        }
    }
    let off = engine(false)?;
    let sync_c = Component::from_file(&off, &args[1]).context("hop-sync component")?;
    #[allow(unused_mut)]
    let mut rigs = vec![Rig::new(&off, &sync_c, false)?];
    #[cfg(feature = "cma")]
    {
        let on = engine(true)?;
        let sync_on = Component::from_file(&on, &args[1])?;
        let streams_c = Component::from_file(&on, &args[2]).context("hop component")?;
        rigs.push(Rig::new(&on, &sync_on, false)?);
        rigs.push(Rig::new(&on, &streams_c, true)?);
    }

    if let Some(name) = only {
        // One variant, for `perf record`: a warm-up pass, then one long pass.
        let v = VARIANTS
            .iter()
            .find(|v| v.name.split(' ').next() == Some(name.as_str()) || v.name == name)
            .with_context(|| format!("no variant {name}"))?;
        pass(&mut rigs, v, reads / 10 + 1)?;
        let ns = pass(&mut rigs, v, reads)?;
        println!("{}: {ns:.1} ns/read ({reads} reads)", v.name);
        return Ok(());
    }

    for v in VARIANTS {
        pass(&mut rigs, v, reads / 10 + 1)?; // warm-up, and a check that it works
    }
    if raw {
        // One round for a parent's table: ns per read, one per variant.
        let ns: Vec<String> =
            VARIANTS.iter().map(|v| pass(&mut rigs, v, reads).map(|x| format!("{x}"))).collect::<Result<_>>()?;
        println!("{}", ns.join(" "));
        return Ok(());
    }
    let mut names: Vec<String> = Vec::new();
    if baseline.is_some() {
        names.extend(["list-hop (no cma)".to_string(), "list-direct (no cma)".to_string()]);
    }
    let own = names.len();
    names.extend(VARIANTS.iter().map(|v| v.name.to_string()));
    let k = names.len();
    let child = |b: &str| -> Result<Vec<f64>> {
        let out = std::process::Command::new(b)
            .args([&args[1], &args[2], &format!("reads={reads}"), "raw"])
            .output()?;
        ensure!(out.status.success(), "baseline: {}", String::from_utf8_lossy(&out.stderr));
        let v: Vec<f64> =
            String::from_utf8(out.stdout)?.split_whitespace().map(|x| x.parse()).collect::<Result<_, _>>()?;
        ensure!(v.len() == own, "baseline printed {} figures", v.len());
        Ok(v)
    };
    let mut ns = vec![Vec::new(); k];
    let mut ratio = vec![Vec::new(); k];
    for r in 0..rounds {
        let mut this = vec![0.0; k];
        // The child runs first in even rounds, last in odd ones.
        if let (Some(b), 0) = (&baseline, r % 2) {
            this[..own].copy_from_slice(&child(b)?);
        }
        for j in 0..VARIANTS.len() {
            let i = (r + j) % VARIANTS.len(); // the first variant rotates
            this[own + i] = pass(&mut rigs, &VARIANTS[i], reads)?;
        }
        if let (Some(b), 1) = (&baseline, r % 2) {
            this[..own].copy_from_slice(&child(b)?);
        }
        for i in 0..k {
            ns[i].push(this[i]);
            ratio[i].push(this[i] / this[0]);
        }
        eprintln!("round {}: {}", r + 1, this.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" "));
    }
    println!("{rounds} rounds of {reads} reads of {BLOCK} bytes; ns per read (median, min-max); ratio = median of the rounds' own ratios to the first row");
    println!("| variant | ns/read | min | max | / {} |", names[0]);
    println!("|---|---:|---:|---:|---:|");
    for i in 0..k {
        let min = ns[i].iter().cloned().fold(f64::INFINITY, f64::min);
        let max = ns[i].iter().cloned().fold(0.0, f64::max);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} |",
            names[i],
            median(ns[i].clone()),
            min,
            max,
            median(ratio[i].clone())
        );
    }
    Ok(())
}
