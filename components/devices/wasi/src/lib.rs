//! `wasi` (crate `wasi-on-weft`): WASI 0.2 for stock programs, built only on weft devices.
//!
//! The component exports every interface of world `wasi` (`wit/worlds.wit`) — the
//! `wasi:cli`, `wasi:clocks`, `wasi:random`, `wasi:io`, `wasi:filesystem` and
//! `wasi:sockets` interfaces at 0.2.12 — and imports nothing but `weft:devices`
//! `console`, `clock`, `random`, `log`, `exit`, `block` and `sockets`. A program's
//! `println!` therefore reaches the console, its `SystemTime::now()` goes through
//! whatever clock filters the manifest chains in front of the clock, its files are weft
//! block devices or memory, and its sockets are the manifest's `[stack]`. Nothing here
//! touches a host facility directly, so the component runs the same under `weft run`
//! and on the bare-metal kernel.
//!
//! # Contract
//!
//! In the manner of Solo5's `solo5.h`: what each part does, including what it refuses.
//!
//! **Configuration.** `filter.configure(device, config)` takes, in order, `arg` (one
//! entry per argument, the program name first), `env` (`NAME=value`, one per variable),
//! `cwd` (at most once) and `preopen` (`<dir>=memory` or `<dir>=tar:<block role>`, one
//! per directory, each directory once). The simulation keys `sim-seed` and `sim-phase`
//! are accepted and ignored. Any other key, an `env` without `=` or with an
//! empty or repeated name, a repeated or empty `cwd`, a malformed `preopen`, or a NUL
//! byte anywhere is an error naming the key. `configure` MAY be skipped: WASI calls then
//! see no arguments, no environment, no initial directory and no preopens. It logs one
//! event on topic `wasi` (the environment's names, never its values), and one per tar
//! preopen (its file and directory counts, or why it is unusable).
//!
//! **cli** ([`cli`]). `stdout` and `stderr` both write to `console`, the one stream for
//! humans; `stdin` is at end of file (`read` gives `closed`). No stream is a terminal:
//! every `get-terminal-*` gives `none`. `exit(ok)` ends the run with code 0, `exit(err)`
//! with 1 and `exit-with-code(n)` with `n`, all through weft's `exit`.
//!
//! **io** ([`streams`], [`poll`]). Console and file output streams grant 64 KiB in
//! `check-write` and write straight through, so `flush` has nothing to wait for and
//! `subscribe` is always ready. A `write` longer than the grant (WASI says that traps) and
//! a `blocking-write-and-flush` longer than 4096 bytes are written whole: trapping would
//! name this component as the culprit of the program's mistake and lose the output. TCP
//! streams buffer up to 64 KiB the stack has not taken yet. A failed file or socket
//! operation gives `last-operation-failed` with an `io/error` whose
//! `filesystem-error-code` is the file error. `poll` returns the indices of the
//! pollables ready now; when none is, it calls `clock.wait-until` with the earliest
//! deadline among them — with sockets among them, no later than the stack's
//! `next-deadline` and 1 s from now — and checks again. An empty list (WASI says that
//! traps) waits until the end of time, i.e. until the run's timeout ends the run as a
//! hang, which is what the program asked for. While any socket is open every wait also
//! wakes at the stack's `next-deadline`, so connections are served during a `sleep`.
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
//! **filesystem** ([`fs`]). `get-directories` gives the preopens in configuration order.
//! A `tar:` tree is read-only (anything that would write is `read-only`); a `memory` tree
//! is writable and lost when the run ends. Paths never leave the directory they are
//! resolved from (`..` above it and absolute paths are `not-permitted`); symbolic links
//! (which only archives hold) are listed and `readlink-at` gives their target, but are
//! never followed (`unsupported`), nor can one be made; `link-at` is `unsupported`.
//! `sync` and `sync-data` succeed and do nothing; `advise` is ignored. A tar preopen
//! whose device is missing fails every call with `bad-descriptor`, one whose device does
//! not hold a usable archive (garbage, truncated, `..` in a name, more than 262144
//! files and directories) with `io`; either is logged at `configure`, naming the device
//! and the problem. A block read that fails later is `io` (logged once).
//!
//! **sockets** ([`sockets`]). TCP and UDP over IPv4 on weft's `sockets`; IPv6 sockets are
//! `not-supported`. Binding any IPv4 address binds the stack's own. `resolve-addresses`
//! resolves dotted-quad IPv4 addresses only (names are `name-unresolvable`). Socket
//! options are kept and reported back but change nothing. Without a `[stack]`,
//! `create-tcp-socket`, `create-udp-socket` and `resolve-addresses` fail with
//! `access-denied` (each logged once on topic `wasi`).
//!
//! Nothing here panics on a program's input or on a device's contents; the one
//! deliberate trap is a host whose `exit` returns, which breaks the device contract.
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
        let preopens: Vec<String> = setup
            .preopens
            .iter()
            .map(|(dir, spec)| match spec {
                config::Spec::Memory => format!("{dir}=memory"),
                config::Spec::Tar(role) => format!("{dir}=tar:{role}"),
                config::Spec::Fat(role) => format!("{dir}=fat:{role}"),
            })
            .collect();
        let message = format!(
            "wasi on {device}: program `{program}`, {} args, env [{}], cwd `{cwd}`, preopens [{}]",
            setup.args.len(),
            names.join(", "),
            preopens.join(", ")
        );
        let fields = vec![
            ("device", device),
            ("program", program),
            ("args", setup.args.len().to_string()),
            ("env", names.join(",")),
            ("cwd", cwd),
            ("preopens", preopens.join(",")),
        ];
        let dirs = setup.preopens.clone();
        SETUP.with(|s| *s = Some(setup));
        log_event(&message, &fields);
        fs::setup(&dirs);
        Ok(())
    }
}

impl exports::weft::devices::shutdown::Guest for WasiOnWeft {
    fn shutdown() {
        fs::shutdown();
    }
}

export!(WasiOnWeft);
