//! Packed batches against lists of lists (issue 14, part 3): what a batch of
//! Ethernet frames costs to cross the component boundary as `net` moves it
//! today (`list<list<u8>>`) and as one `list<u8>` of the frames back to back
//! plus a `list<u32>` of their lengths.
//!
//!     cargo bench -p weft --bench batches              # all, a markdown table (~1 minute)
//!     cargo bench -p weft --bench batches -- hop       # or: leaf | receive | send
//!
//! The guest is `components/tests/batchbench` (its own WIT world there), two
//! instances in one store, on the engine `weft run` makes:
//! - **leaf**: the component calls the host, which is the device (one crossing,
//!   as a stack's `net` calls to a TAP leaf: `send` reads the frames in place
//!   through `WasmList`s, `receive` returns owned `Vec`s);
//! - **hop**: a consumer's import is a host function that calls the provider
//!   instance's export through a `TypedFunc`, as `runtime/src/link.rs`
//!   (`net_linker`) links an app or stack to a filter: on `send` the host copies
//!   each frame into a `Vec` and lowers them into the provider, on `receive` it
//!   lifts the provider's result into `Vec`s and returns them to be lowered into
//!   the consumer, checking sizes on the way as the runtime does.
//!
//! Each cell is the median of `ROUNDS` rounds, each round timing every shape of
//! one row in turn (the first one rotating), and the ratio is the median of
//! the rounds' own ratios: the machine is shared and noisy. Host allocations
//! are counted by this binary's global allocator in a separate pass, so the
//! timed rounds pay no counting.
//!
//! Results and the command are recorded in docs/benchmarks.md ("Packed batches").

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use wasmtime::component::{Component, Instance, Linker, TypedFunc, WasmList};
use wasmtime::{Result, Store, StoreContextMut};

mod common;
use common::{median, root};

/// Rounds per row (≥ 7: medians of alternating rounds).
const ROUNDS: usize = 11;
/// Wall time one shape's sample aims at.
const SAMPLE_NS: f64 = 20e6;
/// The largest frame the guest makes (14 + 1500).
const MAX: usize = 1514;
/// The exported interface, as wasmtime names it.
const FRAMES: &str = "weft:batchbench/frames@0.1.0";

/// `run`'s `which` (components/tests/batchbench/src/lib.rs, `mod which`).
const RECEIVE_LISTS: u32 = 0;
const RECEIVE_PACKED: u32 = 1;
const RECEIVE_PACKED_OWNED: u32 = 2;
const SEND_LISTS: u32 = 3;
const SEND_PACKED: u32 = 4;
const SEND_PACKED_BUILT: u32 = 5;

// --- Counting host allocations ----------------------------------------------

/// `System`, counting allocations (and reallocations) while `COUNTING` is set.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// --- The host side of both paths ---------------------------------------------

/// The provider's `frames` export, as the runtime keeps a filter's `NetFns`.
#[derive(Clone, Copy)]
struct Provider {
    take_lists: TypedFunc<(Vec<Vec<u8>>,), (u32,)>,
    take_packed: TypedFunc<(Vec<u8>, Vec<u32>), (u32,)>,
    give_lists: TypedFunc<(u32, u32), (Vec<Vec<u8>>,)>,
    give_packed: TypedFunc<(u32, u32), ((Vec<u8>, Vec<u32>),)>,
}

struct Bench {
    provider: Option<Provider>,
    /// What the leaf device "receives": the guest's frame contents.
    template: Vec<u8>,
}

/// `touch` (what a reader looks at) and `split` (a packed batch's frames),
/// shared with the guest.
#[path = "../../components/tests/batchbench/src/packed.rs"]
mod packed;
use packed::{split, touch};

/// The component's imports served by the host itself: a leaf device.
fn leaf_linker(l: &mut Linker<Bench>) -> Result<()> {
    let mut i = l.instance(FRAMES)?;
    // As `net_linker`'s `send` to a leaf: the frames are read in the sender's memory.
    i.func_wrap("take-lists", |mut cx: StoreContextMut<'_, Bench>, (frames,): (WasmList<WasmList<u8>>,)| {
        let lists = frames.iter(&mut cx)?.collect::<Result<Vec<WasmList<u8>>>>()?;
        let frames: Vec<&[u8]> = lists.iter().map(|l| l.as_le_slice(&cx)).collect();
        std::hint::black_box(frames.iter().map(|f| touch(f)).sum::<u64>());
        Ok((frames.len() as u32,))
    })?;
    i.func_wrap("take-packed", |cx: StoreContextMut<'_, Bench>, (data, lens): (WasmList<u8>, WasmList<u32>)| {
        let (data, lens) = (data.as_le_slice(&cx), lens.as_le_slice(&cx));
        let n = match split(data, lens) {
            Some(fs) => {
                std::hint::black_box(fs.map(touch).sum::<u64>());
                lens.len() as u32
            }
            None => 0,
        };
        Ok((n,))
    })?;
    // As a leaf's `receive`: fresh `Vec`s the host then lowers.
    i.func_wrap("give-lists", |cx: StoreContextMut<'_, Bench>, (n, size): (u32, u32)| {
        let f = &cx.data().template[..(size as usize).clamp(1, MAX)];
        Ok(((0..n).map(|_| f.to_vec()).collect::<Vec<Vec<u8>>>(),))
    })?;
    i.func_wrap("give-packed", |cx: StoreContextMut<'_, Bench>, (n, size): (u32, u32)| {
        let f = &cx.data().template[..(size as usize).clamp(1, MAX)];
        let mut data = Vec::with_capacity(n as usize * f.len());
        for _ in 0..n {
            data.extend_from_slice(f);
        }
        Ok(((data, vec![f.len() as u32; n as usize]),))
    })?;
    Ok(())
}

/// The component's imports served by another instance's exports: a hop, as
/// `net_linker` links a component to a filter (the same copies, calls and
/// checks; no handles, statistics or observers, which both shapes would pay alike).
fn hop_linker(l: &mut Linker<Bench>) -> Result<()> {
    let mut i = l.instance(FRAMES)?;
    i.func_wrap("take-lists", |mut cx: StoreContextMut<'_, Bench>, (frames,): (WasmList<WasmList<u8>>,)| {
        let lists = frames.iter(&mut cx)?.collect::<Result<Vec<WasmList<u8>>>>()?;
        let frames: Vec<Vec<u8>> = lists.iter().map(|l| l.as_le_slice(&cx).to_vec()).collect();
        let given = frames.len();
        let f = cx.data().provider.expect("linked").take_lists;
        let (n,) = f.call(&mut cx, (frames,))?;
        wasmtime::ensure!(n as usize <= given, "took {n} of {given} frames");
        Ok((n,))
    })?;
    i.func_wrap("take-packed", |mut cx: StoreContextMut<'_, Bench>, (data, lens): (WasmList<u8>, WasmList<u32>)| {
        // The bytes must be copied out of the sender before the receiver's
        // memory can be written (a host function cannot lower borrowed bytes).
        let data = data.as_le_slice(&cx).to_vec();
        let lens = lens.as_le_slice(&cx).to_vec();
        let given = lens.len();
        let f = cx.data().provider.expect("linked").take_packed;
        let (n,) = f.call(&mut cx, (data, lens))?;
        wasmtime::ensure!(n as usize <= given, "took {n} of {given} frames");
        Ok((n,))
    })?;
    i.func_wrap("give-lists", |mut cx: StoreContextMut<'_, Bench>, (n, size): (u32, u32)| {
        let f = cx.data().provider.expect("linked").give_lists;
        let (frames,) = f.call(&mut cx, (n, size))?;
        // `net_linker`'s checks of a filter's `receive`.
        wasmtime::ensure!(frames.len() <= n as usize, "gave {} of at most {n} frames", frames.len());
        wasmtime::ensure!(frames.iter().all(|f| f.len() <= MAX), "a frame over {MAX} bytes");
        Ok((frames,))
    })?;
    i.func_wrap("give-packed", |mut cx: StoreContextMut<'_, Bench>, (n, size): (u32, u32)| {
        let f = cx.data().provider.expect("linked").give_packed;
        let ((data, lens),) = f.call(&mut cx, (n, size))?;
        // The same checks, and the one a packed shape adds: the lengths
        // must cover the buffer exactly.
        wasmtime::ensure!(lens.len() <= n as usize, "gave {} of at most {n} frames", lens.len());
        wasmtime::ensure!(lens.iter().all(|&l| l as usize <= MAX), "a frame over {MAX} bytes");
        let total: usize = lens.iter().map(|&l| l as usize).sum();
        wasmtime::ensure!(total == data.len(), "lengths cover {total} of {} bytes", data.len());
        Ok(((data, lens),))
    })?;
    Ok(())
}

fn typed<P, R>(store: &mut Store<Bench>, c: &Component, inst: &Instance, iface: Option<&str>, name: &str) -> TypedFunc<P, R>
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let parent = iface.map(|i| c.get_export_index(None, i).expect("the frames export"));
    let idx = c.get_export_index(parent.as_ref(), name).unwrap_or_else(|| panic!("export {name}"));
    inst.get_typed_func(&mut *store, &idx).unwrap()
}

type Run = TypedFunc<(u32, u32, u32, u32), (u64,)>;

/// One store: the provider (its imports served by the leaf) and the consumer
/// whose imports hop to the provider. The leaf rows run the provider's own `run`.
struct Setup {
    store: Store<Bench>,
    leaf: Run,
    hop: Run,
}

fn setup() -> Setup {
    let engine = weft::run::engine().unwrap();
    let path = root().join("components/target/wasm32-wasip2/release/batchbench.wasm");
    let c = Component::from_file(&engine, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let template: Vec<u8> = (0..MAX).map(|i| (i * 7 + 1) as u8).collect();
    let mut store = Store::new(&engine, Bench { provider: None, template });
    // As `Unikernel::instantiate`: no run timeout, so the epoch never ends a call.
    store.set_epoch_deadline(1 << 62);
    store.epoch_deadline_trap();
    let mut l = Linker::new(&engine);
    leaf_linker(&mut l).unwrap();
    let provider = l.instantiate(&mut store, &c).unwrap();
    let p = Provider {
        take_lists: typed(&mut store, &c, &provider, Some(FRAMES), "take-lists"),
        take_packed: typed(&mut store, &c, &provider, Some(FRAMES), "take-packed"),
        give_lists: typed(&mut store, &c, &provider, Some(FRAMES), "give-lists"),
        give_packed: typed(&mut store, &c, &provider, Some(FRAMES), "give-packed"),
    };
    store.data_mut().provider = Some(p);
    let mut h = Linker::new(&engine);
    hop_linker(&mut h).unwrap();
    let consumer = h.instantiate(&mut store, &c).unwrap();
    let leaf = typed(&mut store, &c, &provider, None, "run");
    let hop = typed(&mut store, &c, &consumer, None, "run");
    Setup { store, leaf, hop }
}

/// ns per batch of `iters` batches, and the guest's checksum.
fn time(s: &mut Setup, run: Run, which: u32, n: u32, size: u32, iters: u32) -> (f64, u64) {
    let t = Instant::now();
    let (sum,) = run.call(&mut s.store, (which, n, size, iters)).unwrap();
    (t.elapsed().as_nanos() as f64 / f64::from(iters), sum)
}

/// Host allocations per batch.
fn allocs(s: &mut Setup, run: Run, which: u32, n: u32, size: u32) -> f64 {
    const ITERS: u32 = 256;
    let before = ALLOCS.load(Relaxed);
    COUNTING.store(true, Relaxed);
    run.call(&mut s.store, (which, n, size, ITERS)).unwrap();
    COUNTING.store(false, Relaxed);
    // `run` itself allocates a few `Vec`s in the guest, none on the host; a
    // run of no batches measures what the call costs outside the loop.
    let loop_ = ALLOCS.load(Relaxed) - before;
    let before = ALLOCS.load(Relaxed);
    COUNTING.store(true, Relaxed);
    run.call(&mut s.store, (which, n, size, 0)).unwrap();
    COUNTING.store(false, Relaxed);
    let call = ALLOCS.load(Relaxed) - before;
    (loop_ - call) as f64 / f64::from(ITERS)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// One row: `shapes[0]` is the list of lists, the rest packed variants.
fn row(s: &mut Setup, path: &str, run: Run, dir: &str, shapes: [u32; 3], n: u32, size: u32) {
    // Warm up, then size a sample to ~SAMPLE_NS of the slowest shape.
    let mut slowest = 0f64;
    for &w in &shapes {
        time(s, run, w, n, size, 8);
        slowest = slowest.max(time(s, run, w, n, size, 64).0);
    }
    let iters = ((SAMPLE_NS / slowest) as u32).clamp(64, 1 << 20);
    let mut ns = [const { Vec::new() }; 3];
    for r in 0..ROUNDS {
        let mut sums = [0u64; 3];
        for k in 0..3 {
            let k = (k + r) % 3;
            let (t, sum) = time(s, run, shapes[k], n, size, iters);
            ns[k].push(t);
            sums[k] = sum;
        }
        // Every shape read the same frames.
        assert!(sums.iter().all(|&x| x == sums[0]), "{dir} {path} n={n} size={size}: checksums {sums:?}");
    }
    let ratio = |k: usize| median(ns[k].iter().zip(&ns[0]).map(|(p, l)| p / l).collect());
    let a: Vec<f64> = shapes.iter().map(|&w| allocs(s, run, w, n, size)).collect();
    let med: Vec<f64> = ns.iter().map(|v| median(v.clone())).collect();
    println!(
        "| {dir} | {path} | {n} | {size} | {:.0} | {:.0} | **{:.2}** | {:.0} | {:.0} | {:.2} | {} / {} / {} |",
        med[0],
        med[1],
        ratio(1),
        (med[0] - med[1]) / f64::from(n),
        med[2],
        ratio(2),
        fmt_allocs(a[0]),
        fmt_allocs(a[1]),
        fmt_allocs(a[2]),
    );
}

fn fmt_allocs(a: f64) -> String {
    if (a - a.round()).abs() < 0.05 { format!("{}", a.round()) } else { format!("{a:.1}") }
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |words: &[&str]| filter.iter().all(|f| words.contains(&f.as_str()));
    let mut s = setup();
    println!(
        "batches: ns per batch, median of {ROUNDS} alternating rounds; ratio = median of the rounds' packed/lists ({} cores; load {})\n",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load()
    );
    println!("receive: packed′ = packed, each frame then copied into a Vec of its own; send: packed′ = packed, built per batch by copying separately built frames into the buffer\n");
    println!("Guest `cabi_realloc` calls per batch lowered into a component, by the canonical ABI (wasmtime's `lower_list` calls it once per list, empty or not): lists n + 1, packed 2.\n");
    println!("| direction | path | n | bytes | lists | packed | packed/lists | saved per frame | packed′ | packed′/lists | host allocs/batch lists / packed / packed′ |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let paths = [("leaf", s.leaf), ("hop", s.hop)];
    for (dir, shapes) in [("receive", [RECEIVE_LISTS, RECEIVE_PACKED, RECEIVE_PACKED_OWNED]), ("send", [SEND_LISTS, SEND_PACKED, SEND_PACKED_BUILT])] {
        for (path, run) in paths {
            if !want(&[dir, path]) {
                continue;
            }
            for size in [64, 1514] {
                for n in [1, 8, 32, 64] {
                    row(&mut s, path, run, dir, shapes, n, size);
                }
            }
        }
    }
    println!("\nload at the end: {}", load());
}
