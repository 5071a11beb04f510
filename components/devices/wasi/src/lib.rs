//! `wasi` (crate `wasi-on-weft`): WASI 0.2 for stock programs, built only on weft devices.
//!
//! The component exports every interface of world `wasi` (`wit/worlds.wit`) — the
//! `wasi:cli`, `wasi:clocks`, `wasi:random`, `wasi:io`, `wasi:filesystem` and
//! `wasi:sockets` interfaces at 0.2.12 — and imports nothing but `weft:devices`
//! `console`, `clock`, `random`, `log` and `exit`. A program's `println!` therefore
//! reaches the console and its `SystemTime::now()` goes through whatever clock filters
//! the manifest chains in front of the clock.
//!
//! # Contract
//!
//! In the manner of Solo5's `solo5.h`: what each part does, including what it refuses.
//!
//! **Configuration.** `filter.configure(device, config)` takes, in order, `arg` (one
//! entry per argument, the program name first), `env` (`NAME=value`, one per variable)
//! and `cwd` (at most once). Any other key, an `env` without `=` or with an empty or
//! repeated name, a repeated or empty `cwd`, or a NUL byte anywhere is an error naming
//! the key. `configure` MAY be skipped: WASI calls then see no arguments, no environment
//! and no initial directory. It logs one event on topic `wasi` (the environment's names,
//! never its values).
//!
//! **cli** ([`cli`]). `stdout` and `stderr` both write to `console`, the one stream for
//! humans; `stdin` is at end of file (`read` gives `closed`). No stream is a terminal:
//! every `get-terminal-*` gives `none`. `exit(ok)` ends the run with code 0, `exit(err)`
//! with 1 and `exit-with-code(n)` with `n`, all through weft's `exit`.
//!
//! **io** ([`streams`], [`poll`]). Output streams always grant 64 KiB in `check-write`
//! and write straight through to `console`, which is never short, so `flush` has nothing
//! to wait for and `subscribe` is always ready. A `write` longer than the grant (WASI
//! says that traps) and a `blocking-write-and-flush` longer than 4096 bytes are written
//! whole: trapping would name this component as the culprit of the program's mistake and
//! lose the output. No stream operation fails, so no `io/error` is ever produced; the
//! type carries a message for `to-debug-string`. `poll` returns the indices of the
//! pollables ready now; when none is, it calls `clock.wait-until` with the earliest
//! deadline among them and checks again. An empty list (WASI says that traps) waits
//! until the end of time, i.e. until the run's timeout ends the run as a hang, which is
//! what the program asked for.
//!
//! **clocks** ([`clocks`]). `monotonic-clock` reads `clock.monotonic-now`, `wall-clock`
//! reads `clock.wall-now`, both in nanoseconds; both report a resolution of 1 ns (the
//! device's unit; weft's clock has no resolution query). A wall time before 1970 is
//! reported as 1970-01-01T00:00:00Z, since WASI's `datetime` is unsigned.
//! `subscribe-instant`/`subscribe-duration` give pollables ready once `monotonic-now`
//! reaches the deadline; a clock filter that stops or reverses time keeps them waiting.
//!
//! **random** ([`random`]). `random` is `random.fill` (in 64 KiB calls); `insecure` is a
//! xorshift64* seeded once from `random.fill`; `insecure-seed` is fresh `random.fill`
//! bytes. A manifest that binds a seeded random device makes all three deterministic.
//!
//! **filesystem** ([`fs`]), denied: `preopens.get-directories` is empty, so no
//! `descriptor` can exist; the resource types are uninhabited and their methods cannot
//! be reached. `filesystem-error-code` gives `none`.
//!
//! **sockets** ([`sockets`]), denied: `instance-network` returns a network handle, but
//! `create-tcp-socket`, `create-udp-socket` and `resolve-addresses` fail with
//! `access-denied` (each logged once on topic `wasi`). The socket types are uninhabited.
//! A network service uses weft's own `sockets` device instead.
//!
//! Nothing here panics on a program's input; the one deliberate trap is a host whose
//! `exit` returns, which breaks the device contract.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cli;
pub mod clocks;
pub mod config;
pub mod fs;
pub mod poll;
pub mod random;
pub mod sockets;
pub mod streams;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use weft_guest::Global;

wit_bindgen::generate!({
    world: "wasi",
    path: "../../../wit",
});

use config::Setup;
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::log;

/// Topic of this component's log events.
const TOPIC: &str = "wasi";

/// The configuration; `None` until `configure`, read as [`Setup::default`].
static SETUP: Global<Option<Setup>> = Global::new(None);

/// Run `f` on the configuration (empty when `configure` was never called).
fn with_setup<R>(f: impl FnOnce(&Setup) -> R) -> R {
    SETUP.with(|s| f(s.get_or_insert_with(Setup::default)))
}

/// Append one event on topic `wasi`.
fn log_event(message: &str, fields: &[(&str, String)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    log::append(TOPIC, message, &fields);
}

/// The component: every exported interface is implemented on this one type, each in the
/// module named for its WASI package.
pub struct WasiOnWeft;

impl FilterGuest for WasiOnWeft {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let setup = Setup::from_config(&config)?;
        let program = setup.args.first().cloned().unwrap_or_default();
        let names: Vec<&str> = setup.env.iter().map(|(k, _)| k.as_str()).collect();
        let cwd = setup.cwd.clone().unwrap_or_default();
        let message = format!(
            "wasi on {device}: program `{program}`, {} args, env [{}], cwd `{cwd}`",
            setup.args.len(),
            names.join(", ")
        );
        let fields = vec![
            ("device", device),
            ("program", program),
            ("args", setup.args.len().to_string()),
            ("env", names.join(",")),
            ("cwd", cwd),
        ];
        SETUP.with(|s| *s = Some(setup));
        log_event(&message, &fields);
        Ok(())
    }
}

export!(WasiOnWeft);
