//! hello as a stock Rust program: std's `println!`, `SystemTime` and
//! `Instant`, nothing of weft. Built for wasm32-wasip2, it runs on weft
//! through the shipped `wasi` component.
//!
//! `wasi-hello now N` is the call-cost benchmark instead: N `Instant::now()`
//! (wasi:clocks/monotonic-clock.now, served by the `wasi` component from
//! weft's clock), printed as `ns/call X`.

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("now") {
        let n: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000).max(1);
        let t0 = Instant::now();
        for _ in 0..n {
            black_box(Instant::now());
        }
        println!("ns/call {:.1}", t0.elapsed().as_nanos() as f64 / f64::from(n));
        return;
    }
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    println!("Hello from weft!");
    println!("wall clock: {} s since the epoch", since_epoch.as_secs());
    println!("monotonic: {} ns since main", start.elapsed().as_nanos());
}
