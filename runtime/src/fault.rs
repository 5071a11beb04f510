//! What stops a run other than the app returning: a trap, the timeout, the
//! memory limit — and which component it happened in.

use alloc::string::{String, ToString};

/// Which part of the unikernel a failure belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// An instance, by id (filters in instantiation order, the app last).
    Component(usize),
    /// The runtime or a leaf device.
    Host,
}

/// Errors the runtime raises inside a run to stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The run's `timeout` passed.
    Timeout,
    /// A component tried to grow a memory past the `memory` limit.
    Memory { desired: usize, limit: usize },
}

impl core::fmt::Display for Stop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Stop::Timeout => f.write_str("the run's timeout passed"),
            Stop::Memory { desired, limit } => write!(
                f,
                "memory limit hit: tried to grow a linear memory to {desired} bytes, limit is {limit}"
            ),
        }
    }
}

impl core::error::Error for Stop {}

/// A component called `weft:devices/exit.exit(code)`: the run ends with
/// `code`. Raised as an error so wasmtime unwinds every component frame; the
/// runtime turns it back into an exit code, and never reports it as a trap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exited(pub u8);

impl core::fmt::Display for Exited {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "exit({})", self.0)
    }
}

impl core::error::Error for Exited {}

/// A filter called `weft:devices/power.cut`: the machine lost power. Raised
/// as an error so every component frame unwinds; not a failure of anyone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCut;

impl core::fmt::Display for PowerCut {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("power cut")
    }
}

impl core::error::Error for PowerCut {}

/// How a run failed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A wasm trap (`unreachable`, out-of-bounds access, a panic in a guest…).
    Trap { who: Who, message: String },
    /// A component was still running (or waiting) when the timeout passed.
    Timeout { who: Who },
    /// A component asked for more memory than `limits.memory`.
    Memory { who: Who, desired: usize, limit: usize },
    /// A provider answered a call with a result its device contract forbids
    /// (a read of the wrong length, more frames than asked for): the runtime
    /// stopped the run at the hop, before the result reached the caller.
    /// `contract` is the interface (`block`, `net`), `message` what was wrong.
    Contract { who: Who, contract: &'static str, message: String },
}

impl Failure {
    /// Classifies an error raised while `who` was running.
    pub fn from_error(who: Who, e: &wasmtime::Error) -> Failure {
        if let Some(stop) = e.downcast_ref::<Stop>() {
            return match *stop {
                Stop::Timeout => Failure::Timeout { who },
                Stop::Memory { desired, limit } => Failure::Memory { who, desired, limit },
            };
        }
        match e.downcast_ref::<wasmtime::Trap>() {
            // A simulation's fuel is its deterministic timeout.
            Some(wasmtime::Trap::Interrupt | wasmtime::Trap::OutOfFuel) => Failure::Timeout { who },
            Some(t) => Failure::Trap { who, message: t.to_string() },
            None => Failure::Trap { who, message: alloc::format!("{e}") },
        }
    }

    pub fn who(&self) -> Who {
        match self {
            Failure::Trap { who, .. }
            | Failure::Timeout { who }
            | Failure::Memory { who, .. }
            | Failure::Contract { who, .. } => *who,
        }
    }
}
