//! `sleep [SECONDS]`: sleeps (an hour by default) with `std::thread::sleep`,
//! then prints how long it slept by `Instant` and by `SystemTime`. Nothing
//! of weft: under `[sim]` weft's virtual clock makes the hour pass at once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3600);
    let wall = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let (t0, w0) = (Instant::now(), wall());
    println!("sleeping {secs} s from {} s since the epoch", w0.as_secs());
    std::thread::sleep(Duration::from_secs(secs));
    println!("slept {} s (monotonic), the wall clock moved {} s", t0.elapsed().as_secs(), (wall() - w0).as_secs());
}
