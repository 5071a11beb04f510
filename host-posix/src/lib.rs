//! weft on Linux: the leaf devices (`backends`) and the path from a manifest
//! to a finished run (`run`). The `weft` binary is a thin CLI over this.

pub mod backends;
pub mod cluster;
pub mod container;
pub mod gitlog;
pub mod graph;
pub mod image;
pub mod net;
pub mod new;
pub mod oci;
mod offload;
pub mod profile;
pub mod boot;
pub mod run;
pub mod sim;
pub mod symbolize;
pub mod trace;

/// Exit codes of `weft` itself; an app's own code passes through unchanged.
pub mod exit {
    /// A bad manifest, component, disk image or filter config: nothing ran.
    pub const INVALID: u8 = 2;
    /// A component trapped.
    pub const TRAP: u8 = 70;
    /// A replay diverged from its trace.
    pub const DIVERGED: u8 = 72;
    /// A power cut ended the run, and no `[sim] restart` boots it again.
    pub const POWER_CUT: u8 = 75;
    /// The bare-metal kernel failed (CPU exception, kernel panic) or QEMU
    /// stopped without the kernel reporting an exit code.
    pub const KERNEL: u8 = 71;
    /// `limits.timeout` passed.
    pub const TIMEOUT: u8 = 124;
    /// A component hit `limits.memory`.
    pub const MEMORY: u8 = 125;

    /// A bad manifest, component, disk image or argument: exit [`INVALID`]
    /// with `message` (already a complete report).
    pub fn invalid(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(crate::run::Exit { code: INVALID, message: message.into() })
    }

    /// Prints a failed command's report to stderr; returns its exit code
    /// (a [`crate::run::Exit`]'s, else 1).
    pub fn report(e: &anyhow::Error) -> u8 {
        match e.downcast_ref::<crate::run::Exit>() {
            Some(x) => {
                eprintln!("{}", x.message);
                x.code
            }
            None => {
                eprintln!("error: {e:#}");
                1
            }
        }
    }
}

