//! How an app serving sockets waits, whatever its bindings: the caller passes
//! its own `clock` and `sockets` functions.

pub const SECOND: u64 = 1_000_000_000;

/// When an app that found nothing to do should wake: the stack's next deadline
/// (`sockets.next-deadline`), at most a second from `now`.
pub fn idle_until(now: u64, next_deadline: Option<u64>) -> u64 {
    let cap = now.saturating_add(SECOND);
    next_deadline.map_or(cap, |d| d.min(cap))
}

/// Keeps the stack running until it has nothing left to send or resend (no
/// next deadline: every segment and FIN acknowledged), for `ns` at most, so
/// the last segments go out before the app returns and the stack stops with
/// it. Give it more than the stack's retransmission timeout (smoltcp's
/// minimum is 1 s): a lost last segment must be resent before the app
/// leaves (`weft explore examples/sim-cluster` found a server that left its
/// client waiting for an echo lost on a lossy link).
pub fn linger(
    ns: u64,
    now: impl Fn() -> u64,
    next_deadline: impl Fn() -> Option<u64>,
    wait_until: impl Fn(u64) -> u64,
) {
    let end = now().saturating_add(ns);
    loop {
        let t = now();
        let next = next_deadline();
        if t >= end || next.is_none() {
            break;
        }
        wait_until(next.map_or(end, |d| d.clamp(t + 1, end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    #[test]
    fn idle_is_capped_at_a_second() {
        assert_eq!(idle_until(5, None), 5 + SECOND);
        assert_eq!(idle_until(5, Some(7)), 7);
        assert_eq!(idle_until(5, Some(u64::MAX)), 5 + SECOND);
    }

    #[test]
    fn linger_ends_when_nothing_is_left_to_send() {
        let clock = Cell::new(100u64);
        let pending = Cell::new(2);
        linger(
            1_000,
            || clock.get(),
            || (pending.get() > 0).then(|| clock.get() + 20),
            |d| {
                pending.set(pending.get() - 1);
                clock.set(d);
                d
            },
        );
        assert_eq!(clock.get(), 140);
    }

    #[test]
    fn linger_waits_out_its_time_in_the_stacks_steps() {
        let clock = Cell::new(100u64);
        let waits = Cell::new(0);
        linger(
            50,
            || clock.get(),
            || Some(clock.get() + 20),
            |d| {
                waits.set(waits.get() + 1);
                clock.set(d);
                d
            },
        );
        assert_eq!(clock.get(), 150);
        assert_eq!(waits.get(), 3);
    }
}
