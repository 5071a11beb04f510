//! `clock-skew`: a clock filter that makes time wrong in controlled ways.
//!
//! Config keys (all optional): `offset` (a duration such as `-2h`, added to wall time
//! only), `rate` (default 1: skewed time advances `rate` times as fast as real time,
//! measured from `configure`; 0 freezes it, negative runs it backwards; applies to both
//! clocks), `jitter` (a duration: each reading gets a uniform extra in
//! `[-jitter, +jitter]`) and `seed` for the jitter (default the simulation's `sim-seed`,
//! else 1).
//!
//! `configure` logs one event on topic `clock-skew` summarising the skew; readings are
//! not logged. See [`skew::Skew::wait`] for how `wait-until` treats `rate <= 0`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod skew;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use skew::{Plan, Skew, Wait};
use weft_guest::Global;

wit_bindgen::generate!({
    world: "clock-filter",
    path: "../../../wit",
});

use exports::weft::devices::clock::{Guest as ClockGuest, Instant};
use exports::weft::devices::filter::Guest as FilterGuest;
use weft::devices::{clock, log};

const TOPIC: &str = "clock-skew";

static STATE: Global<Option<Skew>> = Global::new(None);

fn with_skew<R>(f: impl FnOnce(&mut Skew) -> R) -> R {
    STATE.with(|s| {
        // A reading before `configure` breaks the filter contract; act as no skew.
        let s = s.get_or_insert_with(|| {
            let plan = Plan {
                offset_ns: 0,
                rate: 1.0,
                jitter_ns: 0,
                seed: 1,
            };
            Skew::new(plan, clock::monotonic_now(), clock::wall_now())
        });
        f(s)
    })
}

struct ClockSkew;

impl FilterGuest for ClockSkew {
    fn configure(device: String, config: Vec<(String, String)>) -> Result<(), String> {
        let plan = Plan::from_config(&config)?;
        let d = weft_guest::fmt::duration;
        let message = format!(
            "skewing {device}: offset {}, rate {}, jitter {}, seed {}",
            d(plan.offset_ns),
            plan.rate,
            d(plan.jitter_ns),
            plan.seed
        );
        let fields = vec![
            ("device".to_string(), device),
            ("offset-ns".to_string(), plan.offset_ns.to_string()),
            ("rate".to_string(), format!("{}", plan.rate)),
            ("jitter-ns".to_string(), plan.jitter_ns.to_string()),
            ("seed".to_string(), plan.seed.to_string()),
        ];
        let skew = Skew::new(plan, clock::monotonic_now(), clock::wall_now());
        STATE.with(|s| *s = Some(skew));
        log::append(TOPIC, &message, &fields);
        Ok(())
    }
}

impl ClockGuest for ClockSkew {
    fn monotonic_now() -> Instant {
        let real = clock::monotonic_now();
        with_skew(|s| s.mono(real))
    }

    fn wall_now() -> i64 {
        let real = clock::wall_now();
        with_skew(|s| s.wall(real))
    }

    fn wait_until(deadline: Instant) -> Instant {
        let real_now = clock::monotonic_now();
        if let Wait::Until(real_deadline) = with_skew(|s| s.wait(deadline, real_now)) {
            clock::wait_until(real_deadline);
        }
        Self::monotonic_now()
    }
}

export!(ClockSkew);
