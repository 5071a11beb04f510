//! `wasi:clocks`: both clocks read weft's `clock` import, so clock filters (skew, freeze,
//! jitter) show in the program's time.

use crate::WasiOnWeft;
use crate::exports::wasi::clocks::monotonic_clock::{self, Duration, Instant};
use crate::exports::wasi::clocks::wall_clock::{self, Datetime};
use crate::exports::wasi::io::poll::Pollable as PollableHandle;
use crate::poll::Pollable;
use crate::weft::devices::clock;

const NS_PER_S: i64 = 1_000_000_000;

/// A weft wall reading (ns since the epoch, negative before it) as WASI's unsigned
/// `datetime`; times before 1970 become the epoch itself.
pub fn datetime(wall_ns: i64) -> Datetime {
    if wall_ns < 0 {
        return Datetime {
            seconds: 0,
            nanoseconds: 0,
        };
    }
    Datetime {
        seconds: (wall_ns / NS_PER_S) as u64,
        nanoseconds: (wall_ns % NS_PER_S) as u32,
    }
}

/// The deadline `duration` ns after `now`; saturates at the end of time rather than
/// wrapping into the past.
pub fn deadline_after(now: Instant, duration: Duration) -> Instant {
    now.saturating_add(duration)
}

impl monotonic_clock::Guest for WasiOnWeft {
    fn now() -> Instant {
        clock::monotonic_now()
    }

    /// weft's clock counts nanoseconds and has no resolution query.
    fn resolution() -> Duration {
        1
    }

    fn subscribe_instant(when: Instant) -> PollableHandle {
        Pollable::at(when)
    }

    fn subscribe_duration(when: Duration) -> PollableHandle {
        Pollable::at(deadline_after(clock::monotonic_now(), when))
    }
}

impl wall_clock::Guest for WasiOnWeft {
    fn now() -> Datetime {
        datetime(clock::wall_now())
    }

    fn resolution() -> Datetime {
        Datetime {
            seconds: 0,
            nanoseconds: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(d: Datetime) -> (u64, u32) {
        (d.seconds, d.nanoseconds)
    }

    #[test]
    fn wall_time_as_datetime() {
        assert_eq!(pair(datetime(0)), (0, 0));
        assert_eq!(pair(datetime(1_500_000_001)), (1, 500_000_001));
        // 2024-01-01T00:00:00.25Z
        assert_eq!(
            pair(datetime(1_704_067_200_250_000_000)),
            (1_704_067_200, 250_000_000)
        );
        assert_eq!(pair(datetime(i64::MAX)), (9_223_372_036, 854_775_807));
    }

    #[test]
    fn before_the_epoch_is_the_epoch() {
        assert_eq!(pair(datetime(-1)), (0, 0));
        assert_eq!(pair(datetime(i64::MIN)), (0, 0));
    }

    #[test]
    fn deadlines_saturate() {
        assert_eq!(deadline_after(10, 5), 15);
        assert_eq!(deadline_after(10, 0), 10);
        assert_eq!(deadline_after(10, u64::MAX), u64::MAX);
    }
}
