//! `wasi:io/poll`: pollables, and waiting on them with weft's one wait primitive,
//! `clock.wait-until`.
//!
//! A pollable is ready now (the console, files, stdin at end of file), ready at a
//! monotonic deadline (clocks), or ready when a socket may make progress ([`Watch`]:
//! checked by trying the operation, whose result is kept for the next call). Waiting
//! is `wait-until` the earliest timer deadline; when sockets are watched, also no later
//! than the stack's `next-deadline` and [`IO_CAP`] from now, as weft's own network apps
//! wait: `wait-until` returns early when a device has input, and the stack runs its
//! timers on every call. While any socket is open, a wait on timers alone is split at
//! the stack's deadlines too, so connections are served while the program sleeps. The
//! arithmetic is pure and tested on the host.

use alloc::vec::Vec;

use crate::WasiOnWeft;
use crate::exports::wasi::io::poll::{Guest, GuestPollable, PollableBorrow};
use crate::sockets::{self, Watch};
use crate::weft::devices::clock;

/// The deadline of a wait that nothing can end: the run's timeout (or the host's cap on
/// `wait-until`) ends it instead.
pub const FOREVER: u64 = u64::MAX;

/// Longest single wait while sockets are watched (1 s, as weft's `echo` waits).
pub const IO_CAP: u64 = 1_000_000_000;

/// When a timer pollable is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready now and forever.
    Now,
    /// Ready once `clock.monotonic-now() >= deadline` (nanoseconds).
    At(u64),
}

impl Readiness {
    pub fn is_ready(self, now: u64) -> bool {
        match self {
            Readiness::Now => true,
            Readiness::At(deadline) => now >= deadline,
        }
    }
}

/// Indices of the pollables ready at `now` (empty if none).
pub fn ready_indices(set: &[Readiness], now: u64) -> Vec<u32> {
    set.iter()
        .enumerate()
        .filter(|(_, r)| r.is_ready(now))
        .map(|(i, _)| i as u32)
        .collect()
}

/// What to pass to `wait-until` when nothing in `set` is ready: the earliest deadline,
/// or [`FOREVER`] for an empty set.
pub fn wake_at(set: &[Readiness]) -> u64 {
    set.iter()
        .map(|r| match r {
            Readiness::Now => 0,
            Readiness::At(deadline) => *deadline,
        })
        .min()
        .unwrap_or(FOREVER)
}

/// The wake-up when sockets are watched too: no later than the stack's next deadline
/// nor [`IO_CAP`] from `now`.
pub fn io_wake(timers: u64, now: u64, stack: Option<u64>) -> u64 {
    timers
        .min(stack.unwrap_or(FOREVER))
        .min(now.saturating_add(IO_CAP))
}

/// Whether `set` needs a clock reading: only deadlines do. Deadlines are read even when
/// something else is ready, so a timer polled beside an always-ready stream still fires.
fn needs_clock(set: &[Readiness]) -> bool {
    set.iter().any(|r| matches!(r, Readiness::At(_)))
}

/// Wait once for the network: until input arrives, the stack's next deadline or
/// [`IO_CAP`]. Blocking socket calls loop on this.
pub fn wait_io() {
    let now = clock::monotonic_now();
    clock::wait_until(io_wake(FOREVER, now, sockets::next_deadline()));
}

/// A `wasi:io/poll` pollable.
pub enum Pollable {
    Time(Readiness),
    Io(Watch),
}

impl Pollable {
    /// A pollable that is always ready.
    pub fn ready() -> crate::exports::wasi::io::poll::Pollable {
        crate::exports::wasi::io::poll::Pollable::new(Pollable::Time(Readiness::Now))
    }

    /// A pollable ready once monotonic time reaches `deadline`.
    pub fn at(deadline: u64) -> crate::exports::wasi::io::poll::Pollable {
        crate::exports::wasi::io::poll::Pollable::new(Pollable::Time(Readiness::At(deadline)))
    }

    /// A pollable ready when a socket may make progress.
    pub fn io(w: Watch) -> crate::exports::wasi::io::poll::Pollable {
        crate::exports::wasi::io::poll::Pollable::new(Pollable::Io(w))
    }
}

/// Block until something in `set` is ready; return the ready indices.
///
/// `wait-until` MAY return early (and a clock filter MAY make time stand still), so the
/// loop re-checks after every wait.
pub fn wait_for(set: &[&Pollable]) -> Vec<u32> {
    let timers: Vec<Readiness> = set
        .iter()
        .filter_map(|p| match p {
            Pollable::Time(r) => Some(*r),
            Pollable::Io(_) => None,
        })
        .collect();
    // With sockets open, timer waits also run the stack (see `sockets::active`).
    let io = timers.len() < set.len() || sockets::active();
    let mut now = if io || needs_clock(&timers) {
        clock::monotonic_now()
    } else {
        0
    };
    loop {
        let ready: Vec<u32> = set
            .iter()
            .enumerate()
            .filter(|(_, p)| match p {
                Pollable::Time(r) => r.is_ready(now),
                Pollable::Io(w) => w.ready(),
            })
            .map(|(i, _)| i as u32)
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        let mut wake = wake_at(&timers);
        if io {
            wake = io_wake(wake, now, sockets::next_deadline());
        }
        now = clock::wait_until(wake);
    }
}

impl GuestPollable for Pollable {
    fn ready(&self) -> bool {
        match self {
            Pollable::Time(Readiness::Now) => true,
            Pollable::Time(r) => r.is_ready(clock::monotonic_now()),
            Pollable::Io(w) => w.ready(),
        }
    }

    fn block(&self) {
        wait_for(&[self]);
    }
}

impl Guest for WasiOnWeft {
    type Pollable = Pollable;

    fn poll(in_: Vec<PollableBorrow<'_>>) -> Vec<u32> {
        let set: Vec<&Pollable> = in_.iter().map(|p| p.get::<Pollable>()).collect();
        wait_for(&set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Readiness::{At, Now};

    #[test]
    fn ready_now_and_past_deadlines() {
        let set = [At(100), Now, At(50), At(101)];
        assert_eq!(ready_indices(&set, 100), [0, 1, 2]);
        assert_eq!(ready_indices(&set, 0), [1]);
        assert_eq!(ready_indices(&set, u64::MAX), [0, 1, 2, 3]);
    }

    #[test]
    fn nothing_ready_before_the_earliest_deadline() {
        let set = [At(300), At(200)];
        assert!(ready_indices(&set, 199).is_empty());
        assert_eq!(wake_at(&set), 200);
        assert_eq!(ready_indices(&set, 200), [1]);
    }

    #[test]
    fn a_due_timer_is_reported_beside_an_always_ready_stream() {
        // An event loop that polls [stdout, timer] must see the timer fire.
        let set = [Now, At(10)];
        assert!(needs_clock(&set));
        assert_eq!(ready_indices(&set, 10), [0, 1]);
    }

    #[test]
    fn empty_set_waits_forever() {
        assert!(ready_indices(&[], 5).is_empty());
        assert_eq!(wake_at(&[]), FOREVER);
    }

    #[test]
    fn clock_read_only_when_needed() {
        assert!(needs_clock(&[Now, At(1)]));
        assert!(!needs_clock(&[Now, Now]));
        assert!(!needs_clock(&[]));
    }

    #[test]
    fn socket_waits_are_capped_by_the_stack_and_io_cap() {
        // Only sockets: the cap, or the stack's timer if sooner.
        assert_eq!(io_wake(FOREVER, 5, None), 5 + IO_CAP);
        assert_eq!(io_wake(FOREVER, 5, Some(100)), 100);
        // A timer sooner than both wins.
        assert_eq!(io_wake(50, 5, Some(100)), 50);
        // Near the end of time nothing wraps.
        assert_eq!(io_wake(FOREVER, u64::MAX - 1, None), FOREVER);
    }
}
