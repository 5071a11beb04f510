//! weft's runtime: the linker both hosts share.
//!
//! ```text
//! manifest ──plan──▶ Wiring + leaves ──Unikernel::new──▶ InstancePre per component
//!                                       ──instantiate──▶ linked instances ──run──▶ exit code
//! ```
//!
//! The core (`devices`, `link`, `fault`, `engine`, `bundle`) is `#![no_std]` + `alloc`
//! so the bare-metal kernel links bundles with the same code. The `std`
//! feature adds what only a full OS host does: parsing manifests
//! (`manifest`), compiling components and the on-disk AOT cache (`cache`).

#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod bundle;
pub mod devices;
pub mod engine;
pub mod fault;
pub mod leaves;
pub mod link;
pub mod names;
pub mod session;
pub mod sim;
pub mod stats;
pub mod tape;

pub use devices::{BlockDevice, Clock, Console, ErrorCode, Geometry, Log, Random};
pub use fault::{Exited, Failure, PowerCut, Stop, Who};
pub use link::{App, Device, Filter, Host, Leaves, Limits, Unikernel, Wiring};
pub mod units;
pub mod watch;

#[cfg(feature = "std")]
pub mod cache;
#[cfg(feature = "std")]
pub mod cluster;
#[cfg(feature = "std")]
pub mod compose;
#[cfg(feature = "std")]
pub mod manifest;
#[cfg(feature = "std")]
pub mod plan;
