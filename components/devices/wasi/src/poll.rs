//! `wasi:io/poll`: pollables, and waiting on them with weft's one wait primitive,
//! `clock.wait-until`.
//!
//! Every pollable this component hands out is either ready now (streams: the console
//! takes writes at once, stdin is at end of file) or ready at a monotonic deadline
//! (clocks). So "wait until something is ready" is "wait until the earliest deadline",
//! and the readiness arithmetic below is pure and tested on the host.

use alloc::vec::Vec;

use crate::WasiOnWeft;
use crate::exports::wasi::io::poll::{Guest, GuestPollable, PollableBorrow};
use crate::weft::devices::clock;

/// The deadline of a wait that nothing can end: the run's timeout (or the host's cap on
/// `wait-until`) ends it instead.
pub const FOREVER: u64 = u64::MAX;

/// When a pollable is ready.
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

/// Whether `set` needs a clock reading: only deadlines do. Deadlines are read even when
/// something else is ready, so a timer polled beside an always-ready stream still fires.
fn needs_clock(set: &[Readiness]) -> bool {
    set.iter().any(|r| matches!(r, Readiness::At(_)))
}

/// Block until something in `set` is ready; return the ready indices.
///
/// `wait-until` MAY return early (and a clock filter MAY make time stand still), so the
/// loop re-checks after every wait.
pub fn wait_for(set: &[Readiness]) -> Vec<u32> {
    let mut now = if needs_clock(set) {
        clock::monotonic_now()
    } else {
        0
    };
    loop {
        let ready = ready_indices(set, now);
        if !ready.is_empty() {
            return ready;
        }
        now = clock::wait_until(wake_at(set));
    }
}

/// A `wasi:io/poll` pollable.
pub struct Pollable(pub Readiness);

impl Pollable {
    /// A pollable that is always ready.
    pub fn ready() -> crate::exports::wasi::io::poll::Pollable {
        crate::exports::wasi::io::poll::Pollable::new(Pollable(Readiness::Now))
    }

    /// A pollable ready once monotonic time reaches `deadline`.
    pub fn at(deadline: u64) -> crate::exports::wasi::io::poll::Pollable {
        crate::exports::wasi::io::poll::Pollable::new(Pollable(Readiness::At(deadline)))
    }
}

impl GuestPollable for Pollable {
    fn ready(&self) -> bool {
        match self.0 {
            Readiness::Now => true,
            Readiness::At(_) => self.0.is_ready(clock::monotonic_now()),
        }
    }

    fn block(&self) {
        wait_for(&[self.0]);
    }
}

impl Guest for WasiOnWeft {
    type Pollable = Pollable;

    fn poll(in_: Vec<PollableBorrow<'_>>) -> Vec<u32> {
        let set: Vec<Readiness> = in_.iter().map(|p| p.get::<Pollable>().0).collect();
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
}
